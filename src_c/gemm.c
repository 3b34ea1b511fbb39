/* Instantiates gemm.tmpl.h (convolution by packed GEMM) for float and double. */
#include "fastconv.h"
#include "common.h"
#include "templating.h"
#include "ukernel.h"

/* K block: a KC x NR panel of B (24 KiB with AVX-512) stays in L1 across
 * the filter panels; a KC x NC block of B (512 KiB) stays in L2.  Chosen by
 * measurement on Zen 5 (1 MiB L2): KC 96-384 and 256 KiB-1 MiB blocks are
 * within noise of each other except for 1x1 layers, which like wide tiles. */
#define FC_GEMM_B_BYTES (512 * 1024)     /* FC_GEMM_KC: in ukernel.h */
/* Strided layers tile by bands over a phase slab (gemm.tmpl.h) while it
 * takes at most this much; beyond (wide strides on many channels), by runs
 * of output positions, which need no slab. */
#define FC_GEMM_SLAB_BYTES (8 * 1024 * 1024)
/* grad_x: rows of dcols per block (whole channels; at least one channel) */
#define FC_GEMM_MB 128
/* grad_w: output positions per block, the GEMM's reduction length (a
 * 256 x 32 f32 panel of im2col columns is 32 KiB, in L1) */
#define FC_GW_KC 256

#define TYPE float
#include "im2col_row.tmpl.h"
#include "gemm.tmpl.h"
#undef TYPE

#define TYPE double
#include "im2col_row.tmpl.h"
#include "gemm.tmpl.h"
#undef TYPE
