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

static inline ptrdiff_t fc_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static inline ptrdiff_t fc_max(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

#endif
