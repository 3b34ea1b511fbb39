/* Instantiates winograd.tmpl.h (F(2x2, 3x3) and F(4x4, 3x3) convolution on
 * the GEMM micro-kernels) for float and double. */
/* Let the compiler fuse the transforms' multiply-adds (FMA in the AVX2 and
 * AVX-512 clones): a third fewer operations. */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

#include <string.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"
#include "ukernel.h"

/* 64-byte vectors (GCC/Clang vector extension) of channels or filters: one
 * AVX-512 register, two AVX2 ones, four SSE ones in the baseline clone. */
typedef float fc_wv_float __attribute__((vector_size(64)));
typedef double fc_wv_double __attribute__((vector_size(64)));
typedef double fc_wd __attribute__((vector_size(64)));   /* filter transform */

/* Tiles per block: a block's transformed tiles (V) within this budget, in
 * MIN to MAX micro-kernel row panels (each block streams all of U, so
 * blocks may not get too small). */
#define FC_WINO_V_BYTES (1024 * 1024)
#define FC_WINO_MIN_PANELS 4
#define FC_WINO_MAX_PANELS 16
/* The phased form (winograd.tmpl.h, wino_phase_): where U exceeds this
 * (each block of tiles would stream it from memory again), and V and M of
 * all tiles fit the other budget; with 2+ threads only.  Measured on a
 * 2 MiB L2 (Sapphire Rapids): 10.6 MB (256 x 256 filters) 1.17x faster at
 * 2 threads but 7% slower at 1; 2.7 MB (128 x 128) 3-9% slower. */
#define FC_WINO_PHASED_U_BYTES (8 * 1024 * 1024)
#define FC_WINO_PHASED_BYTES (64 * 1024 * 1024)
/* Products of a filter group (M): filters per group from this budget. */
#define FC_WINO_M_BYTES (512 * 1024)
/* grad_weight: a block's V and Z within this budget (see the schedule),
 * at most this many tiles; partial sums (chunks of blocks added in
 * order: the parallel work) within this many bytes (they are written and
 * read again), at most this many chunks. */
#define FC_WINO_GW_BYTES (1536 * 1024)
#define FC_WINO_GW_MAX_TILES 256
#define FC_WINO_GW_PARTIAL_BYTES (2 * 1024 * 1024)
#define FC_WINO_GW_CHUNKS 8
/* grad_weight: the most the blocks' transforms may take when they are
 * computed once for the threads that share a chunk (beyond it, each thread
 * redoes its chunk's transforms). */
#define FC_WINO_GW_SHARED_BYTES (64 * 1024 * 1024)

#define TYPE float
#include "winograd.tmpl.h"
#undef TYPE

#define TYPE double
#include "winograd.tmpl.h"
#undef TYPE
