/* Max and average pooling of one plane, written once on TYPE (see pool.c).
 * Documented in fastconv.h.  Window bounds follow PyTorch's CPU kernels
 * exactly, so values, indices and divisors match it. */

#include "pool_tap.tmpl.h"   /* max_tap */

/* Row-wise: every output of a row starts at -inf on its first real cell,
 * then the taps (i, j) are applied in the window's row-major order, each to
 * all outputs of the row at once.  The outputs each column tap reaches are
 * found once per plane (for up to FC_POOL_TAPS columns). */
/* The common 2x2/s2 and 3x3/s2 pools whose windows all lie inside the
 * input (no padding, no dilation, no ceil_mode overhang): fused rows. */
static int CAT(inside_s2_, TYPE)(const fc_geom *g)
{
    return g->pt == 0 && g->pl == 0 && g->dh == 1 && g->dw == 1
        && g->sw == 2 && g->kh == g->kw && (g->kw == 2 || g->kw == 3)
        && (g->Ho - 1) * g->sh + g->kh <= g->H
        && (g->Wo - 1) * g->sw + g->kw <= g->W;
}

/* A whole output row of windows that lie inside the input (no padding),
 * with the window and stride as compile-time constants after inlining, so
 * the compiler unrolls the taps and vectorises across outputs: one pass
 * instead of one per tap.  Same rule and scan order as max_tap. */
FC_ALWAYS_INLINE void CAT(max_row_inside_, TYPE)(const TYPE *restrict row,
                                                 ptrdiff_t W, ptrdiff_t Wo,
                                                 ptrdiff_t base, int kh, int kw,
                                                 int sw, TYPE *restrict m,
                                                 int64_t *restrict idx)
{
    for (ptrdiff_t ow = 0; ow < Wo; ++ow) {
        TYPE best = -INFINITY;
        ptrdiff_t at = base + ow * sw;
        for (int i = 0; i < kh; ++i) {
            for (int j = 0; j < kw; ++j) {
                const TYPE v = row[i * W + ow * sw + j];
                const int take = v > best || v != v;
                best = take ? v : best;
                at = take ? base + i * W + ow * sw + j : at;
            }
        }
        m[ow] = best;
        if (idx) idx[ow] = (int64_t)at;
    }
}

/* The same for 3x3 windows at stride 2, FC_POOL_CH outputs at a time: the
 * three input rows are first split into their even and odd columns, so
 * every tap is a contiguous load (tap j = 0, 1, 2 of output k is ev[k],
 * od[k], ev[k + 1]), and outputs are computed in groups of FC_POOL_G (the last
 * group padded), so the loop is all vector code; strided loads and scalar
 * remainders of short rows kept it at about 11 cycles per output. */
/* Outputs [k0, k0 + G) of a chunk (see max_row_3s2_); with_idx a constant
 * after inlining, so the values-only pass carries no index selects. */
FC_ALWAYS_INLINE void CAT(max_group_3s2_, TYPE)(TYPE ev[3][FC_POOL_CH + 1],
                                                TYPE od[3][FC_POOL_CH],
                                                ptrdiff_t k0, ptrdiff_t W,
                                                ptrdiff_t at0, int with_idx,
                                                TYPE *restrict mb,
                                                int64_t *restrict ib)
{
    for (int q = 0; q < FC_POOL_G; ++q) {
        const ptrdiff_t k = k0 + q;
        TYPE best = -INFINITY;
        int64_t at = (int64_t)(at0 + 2 * k);
        for (int i = 0; i < 3; ++i) {
            const TYPE v[3] = {ev[i][k], od[i][k], ev[i][k + 1]};
            for (int j = 0; j < 3; ++j) {
                const int take = v[j] > best || v[j] != v[j];
                best = take ? v[j] : best;
                if (with_idx) at = take ? (int64_t)(at0 + i * W + 2 * k + j) : at;
            }
        }
        mb[k] = best;
        if (with_idx) ib[k] = at;
    }
}

FC_ALWAYS_INLINE void CAT(max_row_3s2_, TYPE)(const TYPE *restrict row,
                                              ptrdiff_t W, ptrdiff_t Wo,
                                              ptrdiff_t base, TYPE *restrict m,
                                              int64_t *restrict idx)
{
    TYPE ev[3][FC_POOL_CH + 1], od[3][FC_POOL_CH], mb[FC_POOL_CH];
    int64_t ib[FC_POOL_CH];
    for (ptrdiff_t c0 = 0; c0 < Wo; c0 += FC_POOL_CH) {
        const ptrdiff_t n = fc_min(FC_POOL_CH, Wo - c0);
        const ptrdiff_t ng = (n + FC_POOL_G - 1) / FC_POOL_G * FC_POOL_G;
        for (int i = 0; i < 3; ++i) {
            /* columns 2*c0 .. 2*(c0 + n): inside, as (Wo-1)*2 + 3 <= W */
            const TYPE *restrict r = row + i * W + 2 * c0;
            for (ptrdiff_t k = 0; k < n; ++k) {
                ev[i][k] = r[2 * k];
                od[i][k] = r[2 * k + 1];
            }
            ev[i][n] = r[2 * n];
            for (ptrdiff_t k = n; k < ng; ++k) {    /* padding, dropped */
                ev[i][k + 1] = 0;
                od[i][k] = 0;
            }
        }
        const ptrdiff_t at0 = base + 2 * c0;
        for (ptrdiff_t k0 = 0; k0 < ng; k0 += FC_POOL_G) {
            if (idx)
                CAT(max_group_3s2_, TYPE)(ev, od, k0, W, at0, 1, mb, ib);
            else
                CAT(max_group_3s2_, TYPE)(ev, od, k0, W, at0, 0, mb, ib);
        }
        for (ptrdiff_t k = 0; k < n; ++k) m[c0 + k] = mb[k];
        if (idx)
            for (ptrdiff_t k = 0; k < n; ++k) idx[c0 + k] = ib[k];
    }
}

/* Whether a row's column taps that reach the input are too many for the
 * tap-by-tap loops (each costs a few operations even where it reads nothing
 * for most outputs): only windows far wider than the input, with their
 * padding, have more than the input and output columns together. */
static int CAT(wide_windows_, TYPE)(const fc_geom *g, ptrdiff_t *j0, ptrdiff_t *j1)
{
    fc_row_taps(g->Wo, g->sw, g->pl, g->dw, g->W, g->kw, j0, j1);
    return *j1 - *j0 > g->W + g->Wo + FC_POOL_TAPS;
}

/* Max pooling output by output, each window clipped to the input and
 * scanned in row-major order with max_tap's rule: the same values and
 * indices as the row-wise loops, in time bounded by the cells read (for
 * wide_windows_ geometry). */
static void CAT(max_pool_clipped_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                                         TYPE *restrict y, int64_t *restrict indices)
{
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        const ptrdiff_t hs = oh * g->sh - g->pt;
        ptrdiff_t i0, i1;
        fc_valid_range(hs, g->dh, g->H, g->kh, &i0, &i1);
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            const ptrdiff_t ws = ow * g->sw - g->pl;
            ptrdiff_t j0, j1;
            fc_valid_range(ws, g->dw, g->W, g->kw, &j0, &j1);
            TYPE best = -INFINITY;
            ptrdiff_t at = fc_first_cell(hs, g->dh) * g->W + fc_first_cell(ws, g->dw);
            for (ptrdiff_t i = i0; i < i1; ++i)
                for (ptrdiff_t j = j0; j < j1; ++j) {
                    const ptrdiff_t p = (hs + i * g->dh) * g->W + ws + j * g->dw;
                    const TYPE v = x[p];
                    if (v > best || v != v) {
                        best = v;
                        at = p;
                    }
                }
            y[oh * g->Wo + ow] = best;
            if (indices) indices[oh * g->Wo + ow] = (int64_t)at;
        }
    }
}

FC_ALWAYS_INLINE void CAT(max_pool_rows_, TYPE)(const TYPE *restrict x,
                                              const fc_geom *g,
                                              TYPE *restrict y,
                                              int64_t *restrict indices)
{
    ptrdiff_t los[FC_POOL_TAPS], his[FC_POOL_TAPS], j0, j1;
    if (CAT(wide_windows_, TYPE)(g, &j0, &j1)) {
        CAT(max_pool_clipped_, TYPE)(x, g, y, indices);
        return;
    }
    for (ptrdiff_t j = j0; j < j1 && j - j0 < FC_POOL_TAPS; ++j)
        fc_valid_range(j * g->dw - g->pl, g->sw, g->W, g->Wo, &los[j - j0],
                       &his[j - j0]);
    if (CAT(inside_s2_, TYPE)(g)) {     /* fused rows */
        for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
            const ptrdiff_t base = oh * g->sh * g->W;
            TYPE *m = y + oh * g->Wo;
            int64_t *idx = indices ? indices + oh * g->Wo : NULL;
            if (g->kw == 2)
                CAT(max_row_inside_, TYPE)(x + base, g->W, g->Wo, base, 2, 2, 2, m, idx);
            else
                CAT(max_row_3s2_, TYPE)(x + base, g->W, g->Wo, base, m, idx);
        }
        return;
    }
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        TYPE *restrict m = y + oh * g->Wo;
        int64_t *restrict idx = indices ? indices + oh * g->Wo : NULL;
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) m[ow] = -INFINITY;
        if (idx) {
            const ptrdiff_t h0 = fc_first_cell(oh * g->sh - g->pt, g->dh);
            for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
                const ptrdiff_t w0 = fc_first_cell(ow * g->sw - g->pl, g->dw);
                idx[ow] = (int64_t)(h0 * g->W + w0);
            }
        }
        ptrdiff_t i0, i1;           /* the taps on rows of the input */
        fc_valid_range(oh * g->sh - g->pt, g->dh, g->H, g->kh, &i0, &i1);
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const ptrdiff_t ih = oh * g->sh - g->pt + i * g->dh;
            for (ptrdiff_t j = j0; j < j1; ++j) {
                const ptrdiff_t off = j * g->dw - g->pl;
                ptrdiff_t lo, hi;
                if (j - j0 < FC_POOL_TAPS) {
                    lo = los[j - j0];
                    hi = his[j - j0];
                } else {
                    fc_valid_range(off, g->sw, g->W, g->Wo, &lo, &hi);
                }
                if (lo >= hi) continue;
                const ptrdiff_t base = ih * g->W + lo * g->sw + off;
                const TYPE *src = x + base;
                int64_t *id = idx ? idx + lo : NULL;
                /* constant strides let the compiler vectorise the common cases */
                if (g->sw == 1)
                    CAT(max_tap_, TYPE)(src, 1, hi - lo, base, m + lo, id);
                else if (g->sw == 2)
                    CAT(max_tap_, TYPE)(src, 2, hi - lo, base, m + lo, id);
                else
                    CAT(max_tap_, TYPE)(src, g->sw, hi - lo, base, m + lo, id);
            }
        }
    }
}

/* With indices: the int64 selects vectorise only with AVX2 / AVX-512. */
FC_CLONES_AVX2 static void CAT(fc_max_pool2d_indices_, TYPE)(const TYPE *restrict x,
                                                        const fc_geom *g,
                                                        TYPE *restrict y,
                                                        int64_t *restrict indices)
{
    CAT(max_pool_rows_, TYPE)(x, g, y, indices);
}

FC_CLONES_AVX2 void CAT(fc_max_pool2d_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                               TYPE *restrict y, int64_t *restrict indices)
{
    if (indices)
        CAT(fc_max_pool2d_indices_, TYPE)(x, g, y, indices);
    else
        CAT(max_pool_rows_, TYPE)(x, g, y, NULL);
}

int CAT(fc_max_pool2d_backward_, TYPE)(const TYPE *restrict grad_y,
                                       const int64_t *restrict indices,
                                       ptrdiff_t n_out, ptrdiff_t hw,
                                       TYPE *restrict grad_x)
{
    /* four at a time, one test for all four (unsigned: a negative index
     * fails it too) */
    const uint64_t n = (uint64_t)hw;
    ptrdiff_t o = 0;
    for (; o + 4 <= n_out; o += 4) {
        const int64_t p0 = indices[o], p1 = indices[o + 1];
        const int64_t p2 = indices[o + 2], p3 = indices[o + 3];
        if (((uint64_t)p0 >= n) | ((uint64_t)p1 >= n) | ((uint64_t)p2 >= n)
            | ((uint64_t)p3 >= n))
            return FC_EINDEX;
        grad_x[p0] += grad_y[o];
        grad_x[p1] += grad_y[o + 1];
        grad_x[p2] += grad_y[o + 2];
        grad_x[p3] += grad_y[o + 3];
    }
    for (; o < n_out; ++o) {
        const int64_t p = indices[o];
        if ((uint64_t)p >= n) return FC_EINDEX;
        grad_x[p] += grad_y[o];
    }
    return FC_OK;
}

/* The clipped window of output (oh, ow) and its divisor, as PyTorch computes
 * them: the window is first clipped to the padded input (that size is the
 * count_include_pad divisor), then to the input itself. */
static inline TYPE CAT(avg_window_, TYPE)(const fc_geom *g, ptrdiff_t oh,
                                          ptrdiff_t ow, int count_include_pad,
                                          ptrdiff_t *h0, ptrdiff_t *h1,
                                          ptrdiff_t *w0, ptrdiff_t *w1)
{
    ptrdiff_t hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;
    ptrdiff_t he = fc_min(hs + g->kh, g->H + g->pt);
    ptrdiff_t we = fc_min(ws + g->kw, g->W + g->pl);
    const ptrdiff_t padded = (he - hs) * (we - ws);
    hs = fc_max(hs, 0);
    ws = fc_max(ws, 0);
    he = fc_min(he, g->H);
    we = fc_min(we, g->W);
    *h0 = hs; *h1 = he; *w0 = ws; *w1 = we;
    return (TYPE)(count_include_pad ? padded : (he - hs) * (we - ws));
}

/* avg_pool2d over a row of windows inside the input (constants after
 * inlining, as max_row_inside): taps summed in row-major order from 0, as
 * PyTorch does, then divided by the window size. */
FC_ALWAYS_INLINE void CAT(avg_row_inside_, TYPE)(const TYPE *restrict row,
                                                 ptrdiff_t W, ptrdiff_t Wo,
                                                 int kh, int kw, int sw,
                                                 TYPE *restrict y)
{
    const TYPE divisor = (TYPE)(kh * kw);
    for (ptrdiff_t ow = 0; ow < Wo; ++ow) {
        TYPE sum = 0;
        for (int i = 0; i < kh; ++i)
            for (int j = 0; j < kw; ++j) sum += row[i * W + ow * sw + j];
        y[ow] = sum / divisor;
    }
}

/* Row-wise: each output row sums its taps (i, j) in the window's row-major
 * order, as PyTorch does, then divides by its divisor. */
/* avg_pool2d output by output over windows clipped to the input (for
 * wide_windows_ geometry): each sums its cells in row-major order from 0,
 * as the row-wise loop does, so the results are the same. */
static void CAT(avg_pool_clipped_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                                         int count_include_pad, TYPE *restrict y)
{
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            ptrdiff_t h0, h1, w0, w1;
            const TYPE divisor = CAT(avg_window_, TYPE)(
                g, oh, ow, count_include_pad, &h0, &h1, &w0, &w1);
            TYPE sum = 0;
            for (ptrdiff_t ih = h0; ih < h1; ++ih)
                for (ptrdiff_t iw = w0; iw < w1; ++iw) sum += x[ih * g->W + iw];
            y[oh * g->Wo + ow] = (h0 < h1 && w0 < w1) ? sum / divisor : 0;
        }
}

FC_CLONES_AVX2 void CAT(fc_avg_pool2d_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                               int count_include_pad, TYPE *restrict y)
{
    ptrdiff_t j0, j1;
    if (CAT(wide_windows_, TYPE)(g, &j0, &j1)) {
        CAT(avg_pool_clipped_, TYPE)(x, g, count_include_pad, y);
        return;
    }
    if (CAT(inside_s2_, TYPE)(g)) {     /* the divisor is then kh*kw */
        for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
            const TYPE *row = x + oh * g->sh * g->W;
            TYPE *out = y + oh * g->Wo;
            if (g->kw == 2)
                CAT(avg_row_inside_, TYPE)(row, g->W, g->Wo, 2, 2, 2, out);
            else
                CAT(avg_row_inside_, TYPE)(row, g->W, g->Wo, 3, 3, 2, out);
        }
        return;
    }
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        TYPE *restrict sum = y + oh * g->Wo;
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) sum[ow] = 0;
        ptrdiff_t i0, i1;           /* the taps on rows of the input */
        fc_valid_range(oh * g->sh - g->pt, 1, g->H, g->kh, &i0, &i1);
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const ptrdiff_t ih = oh * g->sh - g->pt + i;
            for (ptrdiff_t j = j0; j < j1; ++j) {
                ptrdiff_t lo, hi;
                fc_valid_range(j - g->pl, g->sw, g->W, g->Wo, &lo, &hi);
                const TYPE *restrict src = x + ih * g->W + lo * g->sw + j - g->pl;
                TYPE *restrict s = sum + lo;
                const ptrdiff_t n = hi - lo;
                if (g->sw == 1) {
                    for (ptrdiff_t k = 0; k < n; ++k) s[k] += src[k];
                } else if (g->sw == 2) {
                    for (ptrdiff_t k = 0; k < n; ++k) s[k] += src[2 * k];
                } else {
                    for (ptrdiff_t k = 0; k < n; ++k) s[k] += src[k * g->sw];
                }
            }
        }
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            ptrdiff_t h0, h1, w0, w1;
            const TYPE divisor = CAT(avg_window_, TYPE)(
                g, oh, ow, count_include_pad, &h0, &h1, &w0, &w1);
            sum[ow] = (h0 < h1 && w0 < w1) ? sum[ow] / divisor : 0;
        }
    }
}

/* avg_pool2d_backward over a row of windows inside the input: each output
 * adds grad / (kh*kw) to its window's cells, outputs in increasing ow and
 * taps in row-major order, PyTorch's order. */
FC_ALWAYS_INLINE void CAT(avg_back_row_inside_, TYPE)(const TYPE *restrict gy,
                                                      ptrdiff_t W, ptrdiff_t Wo,
                                                      int kh, int kw, int sw,
                                                      TYPE *restrict row)
{
    const TYPE divisor = (TYPE)(kh * kw);
    for (ptrdiff_t ow = 0; ow < Wo; ++ow) {
        const TYPE d = gy[ow] / divisor;
        for (int i = 0; i < kh; ++i)
            for (int j = 0; j < kw; ++j) row[i * W + ow * sw + j] += d;
    }
}

/* The same for 3x3 windows at stride 2, in vector code: in each input row
 * even cell 2k takes d[k-1] (tap j = 2 of window k-1), then d[k] (tap 0 of
 * window k), and odd cell 2k+1 takes d[k], as in the loop above.  Window
 * -1 adds +0, which leaves every sum as it is (no cell is ever -0: they
 * start at +0). */
FC_ALWAYS_INLINE void CAT(avg_back_row_3s2_, TYPE)(const TYPE *restrict gy,
                                                   ptrdiff_t W, ptrdiff_t Wo,
                                                   TYPE *restrict row)
{
    TYPE d[FC_POOL_CH + 1];
    d[0] = 0;
    for (ptrdiff_t c0 = 0; c0 < Wo; c0 += FC_POOL_CH) {
        const ptrdiff_t n = fc_min(FC_POOL_CH, Wo - c0);
        for (ptrdiff_t k = 0; k < n; ++k) d[k + 1] = gy[c0 + k] / (TYPE)9;
        for (int i = 0; i < 3; ++i) {
            TYPE *restrict r = row + i * W + 2 * c0;
            for (ptrdiff_t k = 0; k < n; ++k) {
                r[2 * k] = (r[2 * k] + d[k]) + d[k + 1];
                r[2 * k + 1] += d[k + 1];
            }
        }
        d[0] = d[n];                    /* window c0 + n - 1, for the next */
    }
    for (int i = 0; i < 3; ++i) row[i * W + 2 * Wo] += d[0];
}

/* Row-wise, in chunks of outputs: delta = grad / divisor once per output,
 * then each tap adds it to its input cells.  Taps run with j descending so a
 * cell receives its contributions in increasing ow, PyTorch's order. */
/* avg_pool2d_backward output by output over windows clipped to the input
 * (for wide_windows_ geometry): a cell still receives its windows' deltas
 * in increasing ow within a row, as in the row-wise loop. */
static void CAT(avg_pool_backward_clipped_, TYPE)(const TYPE *restrict grad_y,
                                                  const fc_geom *g,
                                                  int count_include_pad,
                                                  TYPE *restrict grad_x)
{
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh)
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            ptrdiff_t h0, h1, w0, w1;
            const TYPE divisor = CAT(avg_window_, TYPE)(
                g, oh, ow, count_include_pad, &h0, &h1, &w0, &w1);
            const TYPE d = grad_y[oh * g->Wo + ow] / divisor;
            for (ptrdiff_t ih = h0; ih < h1; ++ih)
                for (ptrdiff_t iw = w0; iw < w1; ++iw) grad_x[ih * g->W + iw] += d;
        }
}

FC_CLONES_AVX2 void CAT(fc_avg_pool2d_backward_, TYPE)(const TYPE *restrict grad_y,
                                        const fc_geom *g, int count_include_pad,
                                        TYPE *restrict grad_x)
{
    enum { CHUNK = 256 };
    TYPE delta[CHUNK];
    ptrdiff_t j0, j1;
    if (CAT(wide_windows_, TYPE)(g, &j0, &j1)) {
        CAT(avg_pool_backward_clipped_, TYPE)(grad_y, g, count_include_pad, grad_x);
        return;
    }
    if (CAT(inside_s2_, TYPE)(g)) {     /* the divisor is then kh*kw */
        for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
            const TYPE *gyr = grad_y + oh * g->Wo;
            TYPE *row = grad_x + oh * g->sh * g->W;
            if (g->kw == 2)
                CAT(avg_back_row_inside_, TYPE)(gyr, g->W, g->Wo, 2, 2, 2, row);
            else
                CAT(avg_back_row_3s2_, TYPE)(gyr, g->W, g->Wo, row);
        }
        return;
    }
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        for (ptrdiff_t c0 = 0; c0 < g->Wo; c0 += CHUNK) {
            const ptrdiff_t c1 = fc_min(g->Wo, c0 + CHUNK);
            for (ptrdiff_t ow = c0; ow < c1; ++ow) {
                ptrdiff_t h0, h1, w0, w1;
                const TYPE divisor = CAT(avg_window_, TYPE)(
                    g, oh, ow, count_include_pad, &h0, &h1, &w0, &w1);
                delta[ow - c0] = grad_y[oh * g->Wo + ow] / divisor;
            }
            ptrdiff_t i0, i1;       /* the taps on rows of the input */
            fc_valid_range(oh * g->sh - g->pt, 1, g->H, g->kh, &i0, &i1);
            for (ptrdiff_t i = i0; i < i1; ++i) {
                const ptrdiff_t ih = oh * g->sh - g->pt + i;
                for (ptrdiff_t j = j1 - 1; j >= j0; --j) {
                    ptrdiff_t lo, hi;
                    fc_valid_range(j - g->pl, g->sw, g->W, g->Wo, &lo, &hi);
                    lo = fc_max(lo, c0);
                    hi = fc_min(hi, c1);
                    if (lo >= hi) continue;
                    TYPE *restrict dst = grad_x + ih * g->W + lo * g->sw + j - g->pl;
                    const TYPE *restrict d = delta + (lo - c0);
                    const ptrdiff_t n = hi - lo;
                    if (g->sw == 1) {
                        for (ptrdiff_t k = 0; k < n; ++k) dst[k] += d[k];
                    } else {
                        for (ptrdiff_t k = 0; k < n; ++k) dst[k * g->sw] += d[k];
                    }
                }
            }
        }
    }
}
