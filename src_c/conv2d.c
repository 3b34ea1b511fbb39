/* Instantiates conv2d.tmpl.h (direct convolution) for float and double. */
#include <string.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

/* 32-byte vectors (GCC/Clang vector extension): AVX registers in the AVX2
 * and AVX-512 clones, pairs of SSE registers in the baseline one.  Loaded
 * and stored with memcpy, which allows any alignment. */
typedef float fc_vec_float __attribute__((vector_size(32)));
typedef double fc_vec_double __attribute__((vector_size(32)));

static inline ptrdiff_t fc_round_up(ptrdiff_t a, ptrdiff_t m)
{
    return (a + m - 1) / m * m;
}

#define TYPE float
#include "conv2d.tmpl.h"
#undef TYPE

#define TYPE double
#include "conv2d.tmpl.h"
#undef TYPE
