/* Helpers shared by the kernel templates (type independent). */
#ifndef FC_COMMON_H
#define FC_COMMON_H

#include <stddef.h>

/* Output positions o in [*lo, *hi) whose input coordinate o*stride + offset
 * lies inside [0, size); the range is clipped to [0, n_out) and may be empty
 * (*lo == *hi).  Lets the kernels split every row into zero padding and a
 * bounds-check-free middle. */
static inline void fc_valid_range(ptrdiff_t offset, ptrdiff_t stride,
                                  ptrdiff_t size, ptrdiff_t n_out,
                                  ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t a = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    ptrdiff_t b = offset > size - 1 ? 0 : (size - 1 - offset) / stride + 1;
    if (b > n_out) b = n_out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* FC_CLONES: compile a hot loop also for AVX2 and AVX-512 and pick the best
 * version when the library loads (GCC function multiversioning, ELF ifunc).
 * A no-op elsewhere, where the baseline build is used. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__ELF__) && !defined(FC_NO_CLONES)
#define FC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
/* For loops over short rows: 512-bit vectors leave long scalar remainders. */
#define FC_CLONES_AVX2 __attribute__((target_clones("avx2", "default")))
#else
#define FC_CLONES
#define FC_CLONES_AVX2
#endif

/* Force inlining into every clone, so each one is compiled for its target. */
#if defined(__GNUC__)
#define FC_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define FC_ALWAYS_INLINE static inline
#endif

/* Row k of a column matrix is kernel tap (i, j) of input channel c, with
 * k = (c*kh + i)*kw + j. */
static inline void fc_tap(ptrdiff_t k, ptrdiff_t kh, ptrdiff_t kw,
                          ptrdiff_t *c, ptrdiff_t *i, ptrdiff_t *j)
{
    *c = k / (kh * kw);
    *i = (k - *c * kh * kw) / kw;
    *j = k - (*c * kh + *i) * kw;
}

static inline ptrdiff_t fc_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static inline ptrdiff_t fc_max(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

#endif
