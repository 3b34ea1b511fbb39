/* 3-D kernels on NCDHW data, written once on TYPE (see vol.c); documented
 * in fastconv.h.  Every kernel pools one (D, H, W) volume with one thread.
 * Rows of outputs (fixed od, oh) are split by fc_valid_range() into padding
 * and a bounds-check-free middle; pooling windows follow PyTorch's CPU
 * kernels, so values, indices and divisors match it.  (The 3-D convolution
 * needs no kernel of its own: it runs the 2-D ones, one per depth tap.) */

#include "pool_tap.tmpl.h"   /* max_tap */

/* Row (od, oh) of outputs: start at -inf on the window's first real cell,
 * then apply the taps (i, j, k) in the window's row-major order, each to the
 * whole row, with PyTorch's rule (larger or NaN takes over). */
static void CAT(max_pool3d_rows_, TYPE)(const TYPE *restrict x,
                                        const fc_vgeom *g, TYPE *restrict y,
                                        int64_t *restrict indices)
{
    const ptrdiff_t HW = g->H * g->W, sw = g->sw;
    for (ptrdiff_t od = 0; od < g->Do; ++od)
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        const ptrdiff_t row_out = (od * g->Ho + oh) * g->Wo;
        TYPE *restrict m = y + row_out;
        int64_t *restrict idx = indices ? indices + row_out : NULL;
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) m[ow] = -INFINITY;
        if (idx) {
            const ptrdiff_t d0 = fc_first_cell(od * g->sd - g->pf, g->dd);
            const ptrdiff_t h0 = fc_first_cell(oh * g->sh - g->pt, g->dh);
            for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
                const ptrdiff_t w0 = fc_first_cell(ow * sw - g->pl, g->dw);
                idx[ow] = (int64_t)(d0 * HW + h0 * g->W + w0);
            }
        }
        for (ptrdiff_t i = 0; i < g->kd; ++i) {
            const ptrdiff_t id = od * g->sd - g->pf + i * g->dd;
            if (id < 0 || id >= g->D) continue;
            for (ptrdiff_t j = 0; j < g->kh; ++j) {
                const ptrdiff_t ih = oh * g->sh - g->pt + j * g->dh;
                if (ih < 0 || ih >= g->H) continue;
                for (ptrdiff_t k = 0; k < g->kw; ++k) {
                    const ptrdiff_t off = k * g->dw - g->pl;
                    ptrdiff_t lo, hi;
                    fc_valid_range(off, sw, g->W, g->Wo, &lo, &hi);
                    if (lo >= hi) continue;
                    const ptrdiff_t base = id * HW + ih * g->W + lo * sw + off;
                    int64_t *id_out = idx ? idx + lo : NULL;
                    /* constant strides let the compiler vectorise */
                    if (sw == 1)
                        CAT(max_tap_, TYPE)(x + base, 1, hi - lo, base, m + lo, id_out);
                    else if (sw == 2)
                        CAT(max_tap_, TYPE)(x + base, 2, hi - lo, base, m + lo, id_out);
                    else
                        CAT(max_tap_, TYPE)(x + base, sw, hi - lo, base, m + lo, id_out);
                }
            }
        }
    }
}

FC_CLONES_AVX2 int CAT(fc_max_pool3d_, TYPE)(const TYPE *restrict x,
                                             const fc_vgeom *g,
                                             TYPE *restrict y,
                                             int64_t *restrict indices)
{
    if (indices)
        CAT(max_pool3d_rows_, TYPE)(x, g, y, indices);
    else
        CAT(max_pool3d_rows_, TYPE)(x, g, y, NULL);    /* no index stores */
    return FC_OK;
}

/* Divisor of output (od, oh, ow), as PyTorch computes it: the window
 * clipped to the padded input (the count_include_pad divisor), then to the
 * input; 0 for a window holding no input cell. */
static inline TYPE CAT(avg3d_divisor_, TYPE)(const fc_vgeom *g, ptrdiff_t od,
                                             ptrdiff_t oh, ptrdiff_t ow,
                                             int count_include_pad)
{
    const ptrdiff_t s[3] = {od * g->sd - g->pf, oh * g->sh - g->pt,
                            ow * g->sw - g->pl};
    const ptrdiff_t k[3] = {g->kd, g->kh, g->kw};
    const ptrdiff_t size[3] = {g->D, g->H, g->W};
    const ptrdiff_t pad[3] = {g->pf, g->pt, g->pl};
    ptrdiff_t padded = 1, inside = 1;
    for (int a = 0; a < 3; ++a) {
        const ptrdiff_t e = fc_min(s[a] + k[a], size[a] + pad[a]);
        padded *= e - s[a];
        const ptrdiff_t n = fc_min(e, size[a]) - fc_max(s[a], 0);
        if (n <= 0) return 0;
        inside *= n;
    }
    return (TYPE)(count_include_pad ? padded : inside);
}

/* Each output sums its window's cells in row-major (i, j, k) order from 0,
 * as PyTorch does, then divides by its divisor. */
FC_CLONES_AVX2 int CAT(fc_avg_pool3d_, TYPE)(const TYPE *restrict x,
                                             const fc_vgeom *g,
                                             int count_include_pad,
                                             TYPE *restrict y)
{
    const ptrdiff_t HW = g->H * g->W, sw = g->sw;
    for (ptrdiff_t od = 0; od < g->Do; ++od)
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        TYPE *restrict sum = y + (od * g->Ho + oh) * g->Wo;
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) sum[ow] = 0;
        for (ptrdiff_t i = 0; i < g->kd; ++i) {
            const ptrdiff_t id = od * g->sd - g->pf + i;
            if (id < 0 || id >= g->D) continue;
            for (ptrdiff_t j = 0; j < g->kh; ++j) {
                const ptrdiff_t ih = oh * g->sh - g->pt + j;
                if (ih < 0 || ih >= g->H) continue;
                for (ptrdiff_t k = 0; k < g->kw; ++k) {
                    ptrdiff_t lo, hi;
                    fc_valid_range(k - g->pl, sw, g->W, g->Wo, &lo, &hi);
                    const TYPE *restrict src = x + id * HW + ih * g->W;
                    const ptrdiff_t off = k - g->pl;
                    if (sw == 1) {
                        for (ptrdiff_t o = lo; o < hi; ++o) sum[o] += src[o + off];
                    } else {
                        for (ptrdiff_t o = lo; o < hi; ++o) sum[o] += src[o * sw + off];
                    }
                }
            }
        }
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            const TYPE divisor = CAT(avg3d_divisor_, TYPE)(g, od, oh, ow,
                                                           count_include_pad);
            sum[ow] = divisor > 0 ? sum[ow] / divisor : 0;
        }
    }
    return FC_OK;
}

/* Each output adds grad / divisor to every cell of its window; rows of
 * outputs in order, taps in row-major order. */
FC_CLONES_AVX2 int CAT(fc_avg_pool3d_backward_, TYPE)(const TYPE *restrict grad_y,
                                                      const fc_vgeom *g,
                                                      int count_include_pad,
                                                      TYPE *restrict grad_x)
{
    enum { CHUNK = 256 };
    TYPE delta[CHUNK];
    const ptrdiff_t HW = g->H * g->W, sw = g->sw;
    for (ptrdiff_t od = 0; od < g->Do; ++od)
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
    for (ptrdiff_t c0 = 0; c0 < g->Wo; c0 += CHUNK) {
        const ptrdiff_t c1 = fc_min(g->Wo, c0 + CHUNK);
        const TYPE *restrict gy = grad_y + (od * g->Ho + oh) * g->Wo;
        for (ptrdiff_t ow = c0; ow < c1; ++ow) {
            const TYPE divisor = CAT(avg3d_divisor_, TYPE)(g, od, oh, ow,
                                                           count_include_pad);
            delta[ow - c0] = divisor > 0 ? gy[ow] / divisor : 0;
        }
        for (ptrdiff_t i = 0; i < g->kd; ++i) {
            const ptrdiff_t id = od * g->sd - g->pf + i;
            if (id < 0 || id >= g->D) continue;
            for (ptrdiff_t j = 0; j < g->kh; ++j) {
                const ptrdiff_t ih = oh * g->sh - g->pt + j;
                if (ih < 0 || ih >= g->H) continue;
                for (ptrdiff_t k = 0; k < g->kw; ++k) {
                    ptrdiff_t lo, hi;
                    fc_valid_range(k - g->pl, sw, g->W, g->Wo, &lo, &hi);
                    lo = fc_max(lo, c0);
                    hi = fc_min(hi, c1);
                    TYPE *restrict dst = grad_x + id * HW + ih * g->W;
                    const ptrdiff_t off = k - g->pl;
                    if (sw == 1) {
                        for (ptrdiff_t o = lo; o < hi; ++o) dst[o + off] += delta[o - c0];
                    } else {
                        for (ptrdiff_t o = lo; o < hi; ++o) dst[o * sw + off] += delta[o - c0];
                    }
                }
            }
        }
    }
    return FC_OK;
}
