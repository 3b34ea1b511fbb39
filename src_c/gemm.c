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
/* Tiles of images side by side: at least this many per batch (or one per
 * image), so that two or more threads share them evenly. */
#define FC_GEMM_MIN_ITEMS 8
/* Stride-2 slab rows of up to half this many columns are split into their
 * phases through a buffer of this many elements on the stack (gemm.tmpl.h,
 * fill_slab_s2_); 16 KiB of floats. */
#define FC_GEMM_ROW_BUF 4096
static inline ptrdiff_t fc_round8(ptrdiff_t n) { return (n + 7) / 8 * 8; }
/* grad_x: rows of dcols per block (whole channels; at least one channel) */
#define FC_GEMM_MB 128
/* grad_w: output positions per block, the GEMM's reduction length (a
 * 256 x 32 f32 panel of im2col columns is 32 KiB, in L1) */
#define FC_GW_KC 256
/* grad_w by column blocks: a block of positions x NR panel of B about this
 * size (in L1), and a block of Gw's columns about this size (in L2) */
#define FC_GW_B_BYTES (48 * 1024)
#define FC_GW_C_BYTES (256 * 1024)
/* ... for kernels of at most this many rows and columns (tap tables) */
#define FC_GW_TAPS 32

#define TYPE float
#include "im2col_row.tmpl.h"
#include "gemm.tmpl.h"
#undef TYPE

#define TYPE double
#include "im2col_row.tmpl.h"
#include "gemm.tmpl.h"
#undef TYPE
