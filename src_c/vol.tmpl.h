/* 3-D kernels on NCDHW data, written once on TYPE (see vol.c); documented
 * in fastconv.h.  Every kernel pools one (D, H, W) volume with one thread.
 * Rows of outputs (fixed od, oh) are split by fc_valid_range() into padding
 * and a bounds-check-free middle; pooling windows follow PyTorch's CPU
 * kernels, so values, indices and divisors match it.  (The 3-D convolution
 * needs no kernel of its own: it runs the 2-D ones, one per depth tap.) */

#include "pool_tap.tmpl.h"   /* max_tap */

/* Whether the row taps k in [*k0, *k1) that reach the input (fc_row_taps)
 * are too many for the tap-by-tap loops: windows far wider than the input
 * (a huge kernel with its padding) run output by output instead, clipped to
 * the input, so time is bounded by the cells read. */
static int CAT(wide_windows3d_, TYPE)(const fc_vgeom *g, ptrdiff_t *k0, ptrdiff_t *k1)
{
    fc_row_taps(g->Wo, g->sw, g->pl, g->dw, g->W, g->kw, k0, k1);
    return *k1 - *k0 > g->W + g->Wo + 32;
}

/* Max pooling output by output over windows clipped to the input, cells in
 * (d, h, w) row-major order with max_tap's rule: the values and indices of
 * the row-wise loop. */
static void CAT(max_pool3d_clipped_, TYPE)(const TYPE *restrict x,
                                           const fc_vgeom *g, TYPE *restrict y,
                                           int64_t *restrict indices)
{
    const ptrdiff_t HW = g->H * g->W;
    for (ptrdiff_t od = 0; od < g->Do; ++od)
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
    for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
        const ptrdiff_t ds = od * g->sd - g->pf, hs = oh * g->sh - g->pt;
        const ptrdiff_t ws = ow * g->sw - g->pl;
        ptrdiff_t i0, i1, j0, j1, k0, k1;
        fc_valid_range(ds, g->dd, g->D, g->kd, &i0, &i1);
        fc_valid_range(hs, g->dh, g->H, g->kh, &j0, &j1);
        fc_valid_range(ws, g->dw, g->W, g->kw, &k0, &k1);
        TYPE best = -INFINITY;
        ptrdiff_t at = fc_first_cell(ds, g->dd) * HW + fc_first_cell(hs, g->dh) * g->W
                       + fc_first_cell(ws, g->dw);
        for (ptrdiff_t i = i0; i < i1; ++i)
            for (ptrdiff_t j = j0; j < j1; ++j)
                for (ptrdiff_t k = k0; k < k1; ++k) {
                    const ptrdiff_t p = (ds + i * g->dd) * HW + (hs + j * g->dh) * g->W
                                        + ws + k * g->dw;
                    const TYPE v = x[p];
                    if (v > best || v != v) {
                        best = v;
                        at = p;
                    }
                }
        const ptrdiff_t o = (od * g->Ho + oh) * g->Wo + ow;
        y[o] = best;
        if (indices) indices[o] = (int64_t)at;
    }
}

/* Row (od, oh) of outputs: start at -inf on the window's first real cell,
 * then apply the taps (i, j, k) in the window's row-major order, each to the
 * whole row, with PyTorch's rule (larger or NaN takes over).  Only the taps
 * that reach the input are visited. */
static void CAT(max_pool3d_rows_, TYPE)(const TYPE *restrict x,
                                        const fc_vgeom *g, TYPE *restrict y,
                                        int64_t *restrict indices)
{
    const ptrdiff_t HW = g->H * g->W, sw = g->sw;
    ptrdiff_t k0, k1;
    if (CAT(wide_windows3d_, TYPE)(g, &k0, &k1)) {
        CAT(max_pool3d_clipped_, TYPE)(x, g, y, indices);
        return;
    }
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
        ptrdiff_t i0, i1, j0, j1;
        fc_valid_range(od * g->sd - g->pf, g->dd, g->D, g->kd, &i0, &i1);
        fc_valid_range(oh * g->sh - g->pt, g->dh, g->H, g->kh, &j0, &j1);
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const ptrdiff_t id = od * g->sd - g->pf + i * g->dd;
            for (ptrdiff_t j = j0; j < j1; ++j) {
                const ptrdiff_t ih = oh * g->sh - g->pt + j * g->dh;
                for (ptrdiff_t k = k0; k < k1; ++k) {
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

FC_CLONES_AVX2 void CAT(fc_max_pool3d_, TYPE)(const TYPE *restrict x,
                                              const fc_vgeom *g,
                                              TYPE *restrict y,
                                              int64_t *restrict indices)
{
    if (indices)
        CAT(max_pool3d_rows_, TYPE)(x, g, y, indices);
    else
        CAT(max_pool3d_rows_, TYPE)(x, g, y, NULL);    /* no index stores */
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

/* The cells of output (od, oh, ow)'s window inside the input: [i0, i1) x
 * [j0, j1) x [k0, k1) (dilation 1). */
static inline void CAT(avg3d_window_, TYPE)(const fc_vgeom *g, ptrdiff_t od,
                                            ptrdiff_t oh, ptrdiff_t ow,
                                            ptrdiff_t r[6])
{
    fc_valid_range(od * g->sd - g->pf, 1, g->D, g->kd, &r[0], &r[1]);
    fc_valid_range(oh * g->sh - g->pt, 1, g->H, g->kh, &r[2], &r[3]);
    fc_valid_range(ow * g->sw - g->pl, 1, g->W, g->kw, &r[4], &r[5]);
    r[0] += od * g->sd - g->pf;
    r[1] += od * g->sd - g->pf;
    r[2] += oh * g->sh - g->pt;
    r[3] += oh * g->sh - g->pt;
    r[4] += ow * g->sw - g->pl;
    r[5] += ow * g->sw - g->pl;
}

/* Each output sums its window's cells in row-major (i, j, k) order from 0,
 * as PyTorch does, then divides by its divisor.  Windows far wider than the
 * input (wide_windows3d_) are summed output by output over their cells
 * inside the input, in the same order. */
FC_CLONES_AVX2 void CAT(fc_avg_pool3d_, TYPE)(const TYPE *restrict x,
                                              const fc_vgeom *g,
                                              int count_include_pad,
                                              TYPE *restrict y)
{
    const ptrdiff_t HW = g->H * g->W, sw = g->sw;
    ptrdiff_t k0, k1;
    if (CAT(wide_windows3d_, TYPE)(g, &k0, &k1)) {
        for (ptrdiff_t od = 0; od < g->Do; ++od)
        for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            ptrdiff_t r[6];
            CAT(avg3d_window_, TYPE)(g, od, oh, ow, r);
            TYPE sum = 0;
            for (ptrdiff_t id = r[0]; id < r[1]; ++id)
                for (ptrdiff_t ih = r[2]; ih < r[3]; ++ih)
                    for (ptrdiff_t iw = r[4]; iw < r[5]; ++iw)
                        sum += x[id * HW + ih * g->W + iw];
            const TYPE divisor = CAT(avg3d_divisor_, TYPE)(g, od, oh, ow,
                                                           count_include_pad);
            y[(od * g->Ho + oh) * g->Wo + ow] = divisor > 0 ? sum / divisor : 0;
        }
        return;
    }
    for (ptrdiff_t od = 0; od < g->Do; ++od)
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        TYPE *restrict sum = y + (od * g->Ho + oh) * g->Wo;
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) sum[ow] = 0;
        ptrdiff_t i0, i1, j0, j1;
        fc_valid_range(od * g->sd - g->pf, 1, g->D, g->kd, &i0, &i1);
        fc_valid_range(oh * g->sh - g->pt, 1, g->H, g->kh, &j0, &j1);
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const ptrdiff_t id = od * g->sd - g->pf + i;
            for (ptrdiff_t j = j0; j < j1; ++j) {
                const ptrdiff_t ih = oh * g->sh - g->pt + j;
                for (ptrdiff_t k = k0; k < k1; ++k) {
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
}

/* Each output adds grad / divisor to every cell of its window; rows of
 * outputs in order, taps in row-major order. */
FC_CLONES_AVX2 void CAT(fc_avg_pool3d_backward_, TYPE)(const TYPE *restrict grad_y,
                                                       const fc_vgeom *g,
                                                       int count_include_pad,
                                                       TYPE *restrict grad_x)
{
    enum { CHUNK = 256 };
    TYPE delta[CHUNK];
    const ptrdiff_t HW = g->H * g->W, sw = g->sw;
    ptrdiff_t k0, k1;
    if (CAT(wide_windows3d_, TYPE)(g, &k0, &k1)) {     /* as fc_avg_pool3d */
        for (ptrdiff_t od = 0; od < g->Do; ++od)
        for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            ptrdiff_t r[6];
            CAT(avg3d_window_, TYPE)(g, od, oh, ow, r);
            const TYPE divisor = CAT(avg3d_divisor_, TYPE)(g, od, oh, ow,
                                                           count_include_pad);
            const TYPE d = divisor > 0 ? grad_y[(od * g->Ho + oh) * g->Wo + ow] / divisor : 0;
            for (ptrdiff_t id = r[0]; id < r[1]; ++id)
                for (ptrdiff_t ih = r[2]; ih < r[3]; ++ih)
                    for (ptrdiff_t iw = r[4]; iw < r[5]; ++iw)
                        grad_x[id * HW + ih * g->W + iw] += d;
        }
        return;
    }
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
        ptrdiff_t i0, i1, j0, j1;
        fc_valid_range(od * g->sd - g->pf, 1, g->D, g->kd, &i0, &i1);
        fc_valid_range(oh * g->sh - g->pt, 1, g->H, g->kh, &j0, &j1);
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const ptrdiff_t id = od * g->sd - g->pf + i;
            for (ptrdiff_t j = j0; j < j1; ++j) {
                const ptrdiff_t ih = oh * g->sh - g->pt + j;
                for (ptrdiff_t k = k0; k < k1; ++k) {
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
}
