/* Max and average pooling of one plane, written once on TYPE (see pool.c).
 * Documented in fastconv.h.  Window bounds follow PyTorch's CPU kernels
 * exactly, so values, indices and divisors match it. */

int CAT(fc_max_pool2d_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                              TYPE *restrict y, int64_t *restrict indices)
{
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        ptrdiff_t hstart = oh * g->sh - g->pt;
        const ptrdiff_t hend = fc_min(hstart + (g->kh - 1) * g->dh + 1, g->H);
        while (hstart < 0) hstart += g->dh;
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            ptrdiff_t wstart = ow * g->sw - g->pl;
            const ptrdiff_t wend = fc_min(wstart + (g->kw - 1) * g->dw + 1, g->W);
            while (wstart < 0) wstart += g->dw;
            /* PyTorch's rule: start at -inf on the first real cell; a larger
             * value or any NaN takes over, so ties keep the first maximum. */
            ptrdiff_t best = hstart * g->W + wstart;
            TYPE maxval = -INFINITY;
            for (ptrdiff_t ih = hstart; ih < hend; ih += g->dh) {
                for (ptrdiff_t iw = wstart; iw < wend; iw += g->dw) {
                    const ptrdiff_t p = ih * g->W + iw;
                    const TYPE v = x[p];
                    if (v > maxval || isnan(v)) {
                        maxval = v;
                        best = p;
                    }
                }
            }
            y[oh * g->Wo + ow] = maxval;
            if (indices) indices[oh * g->Wo + ow] = (int64_t)best;
        }
    }
    return FC_OK;
}

int CAT(fc_max_pool2d_backward_, TYPE)(const TYPE *restrict grad_y,
                                       const int64_t *restrict indices,
                                       ptrdiff_t n_out, ptrdiff_t hw,
                                       TYPE *restrict grad_x)
{
    for (ptrdiff_t o = 0; o < n_out; ++o) {
        const int64_t p = indices[o];
        if (p < 0 || p >= hw) return FC_EINDEX;
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

int CAT(fc_avg_pool2d_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                              int count_include_pad, TYPE *restrict y)
{
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
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
    return FC_OK;
}

int CAT(fc_avg_pool2d_backward_, TYPE)(const TYPE *restrict grad_y,
                                       const fc_geom *g, int count_include_pad,
                                       TYPE *restrict grad_x)
{
    for (ptrdiff_t oh = 0; oh < g->Ho; ++oh) {
        for (ptrdiff_t ow = 0; ow < g->Wo; ++ow) {
            ptrdiff_t h0, h1, w0, w1;
            const TYPE divisor = CAT(avg_window_, TYPE)(
                g, oh, ow, count_include_pad, &h0, &h1, &w0, &w1);
            if (h0 >= h1 || w0 >= w1) continue;
            const TYPE delta = grad_y[oh * g->Wo + ow] / divisor;
            for (ptrdiff_t ih = h0; ih < h1; ++ih)
                for (ptrdiff_t iw = w0; iw < w1; ++iw) grad_x[ih * g->W + iw] += delta;
        }
    }
    return FC_OK;
}
