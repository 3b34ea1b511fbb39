/* Instantiates gemm.tmpl.h (convolution by packed GEMM) for float and double. */
#include <string.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"
#include "ukernel.h"

/* Packed B of one tile: about this many bytes (L2-resident). */
#define FC_GEMM_B_BYTES (256 * 1024)
#define FC_GEMM_MAX_COLS 4096
/* K block: a kc x NR panel of B (8-16 KiB) stays in L1 across filter panels. */
#define FC_GEMM_KC 128

#define TYPE float
#include "im2col_row.tmpl.h"
#include "gemm.tmpl.h"
#undef TYPE

#define TYPE double
#include "im2col_row.tmpl.h"
#include "gemm.tmpl.h"
#undef TYPE
