/* Helpers shared by the kernel templates (type independent). */
#ifndef FC_COMMON_H
#define FC_COMMON_H

#include <stddef.h>
#include <stdint.h>

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

/* The first coordinate start + k*dilation (k >= 0) at or after 0: the first
 * real cell of a pooling window along one axis, as PyTorch finds it (in
 * O(1): the padding before it may be huge). */
static inline ptrdiff_t fc_first_cell(ptrdiff_t start, ptrdiff_t dilation)
{
    return start >= 0 ? start : start + (-start + dilation - 1) / dilation * dilation;
}

/* Column taps j in [*j0, *j1) of a row of n_out windows (stride, left
 * padding pad, dilation, kernel taps) that read a cell of [0, size) for at
 * least one output: j*dilation - pad + ow*stride in [0, size) for some
 * ow < n_out.  Pooling loops over these only, so a window far wider than
 * the input (a huge kernel with its padding) costs nothing per padded tap. */
static inline void fc_row_taps(ptrdiff_t n_out, ptrdiff_t stride, ptrdiff_t pad,
                               ptrdiff_t dilation, ptrdiff_t size,
                               ptrdiff_t kernel, ptrdiff_t *j0, ptrdiff_t *j1)
{
    const ptrdiff_t last = (n_out - 1) * stride;      /* the last window's start + pad */
    fc_valid_range(last - pad, dilation, last + size, kernel, j0, j1);
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

/* a*b and a+b of sizes (a, b >= 0), saturated at PTRDIFF_MAX instead of
 * wrapping: workspace sizes and the tests that choose a kernel use them, so
 * a geometry too large for 64 bits reads as "too large" (the caller then
 * picks another kernel or reports the size), never as a small number. */
static inline ptrdiff_t fc_mul_sat(ptrdiff_t a, ptrdiff_t b)
{
    return (a != 0 && b > PTRDIFF_MAX / a) ? PTRDIFF_MAX : a * b;
}
static inline ptrdiff_t fc_add_sat(ptrdiff_t a, ptrdiff_t b)
{
    return a > PTRDIFF_MAX - b ? PTRDIFF_MAX : a + b;
}
static inline ptrdiff_t fc_max(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

#endif
