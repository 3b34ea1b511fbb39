/* Instantiates winograd.tmpl.h (F(2x2, 3x3) and F(4x4, 3x3) convolution on
 * the GEMM micro-kernels) for float and double. */
/* Let the compiler fuse the transforms' multiply-adds (FMA in the AVX2 and
 * AVX-512 clones): a third fewer operations. */
#pragma GCC optimize("fp-contract=fast")

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
/* Products of a filter group (M): filters per group from this budget. */
#define FC_WINO_M_BYTES (512 * 1024)

#define TYPE float
#include "winograd.tmpl.h"
#undef TYPE

#define TYPE double
#include "winograd.tmpl.h"
#undef TYPE
