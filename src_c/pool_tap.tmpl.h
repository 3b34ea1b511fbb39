/* The max-pool update rule, shared by pool.tmpl.h (2-D) and vol.tmpl.h
 * (3-D); included once per TYPE. */

/* One window tap over a run of n outputs: src[k*sw] is the tap's input for
 * output k, at flat index base + k*sw.  PyTorch's rule, elementwise, so the
 * loop vectorises: a larger value or a NaN takes over. */
FC_ALWAYS_INLINE void CAT(max_tap_, TYPE)(const TYPE *restrict src, ptrdiff_t sw,
                                       ptrdiff_t n, ptrdiff_t base,
                                       TYPE *restrict m,
                                       int64_t *restrict idx)
{
    if (idx) {
        for (ptrdiff_t k = 0; k < n; ++k) {
            const TYPE v = src[k * sw];
            const int take = v > m[k] || v != v;
            m[k] = take ? v : m[k];
            idx[k] = take ? (int64_t)(base + k * sw) : idx[k];
        }
    } else {
        for (ptrdiff_t k = 0; k < n; ++k) {
            const TYPE v = src[k * sw];
            m[k] = (v > m[k] || v != v) ? v : m[k];
        }
    }
}
