/* Direct convolution for one filter / one input channel, written once on TYPE
 * (see conv2d.c).  Documented in fastconv.h.  g->C is the channel count of one
 * group.  Each kernel tap (c, i, j) is one pass of axpy's over output rows;
 * fc_valid_range() splits off the padding so the inner loops have no tests. */

FC_CLONES int CAT(fc_conv2d_direct_, TYPE)(const TYPE *restrict x,
                                 const TYPE *restrict w, TYPE bias,
                                 const fc_geom *g, TYPE *restrict y)
{
    const ptrdiff_t HW = g->H * g->W, L = g->Ho * g->Wo;
    for (ptrdiff_t l = 0; l < L; ++l) y[l] = bias;
    for (ptrdiff_t c = 0; c < g->C; ++c) {
        for (ptrdiff_t i = 0; i < g->kh; ++i) {
            const ptrdiff_t off_h = i * g->dh - g->pt;
            ptrdiff_t hlo, hhi;
            fc_valid_range(off_h, g->sh, g->H, g->Ho, &hlo, &hhi);
            for (ptrdiff_t j = 0; j < g->kw; ++j) {
                const TYPE wv = w[(c * g->kh + i) * g->kw + j];
                const ptrdiff_t off_w = j * g->dw - g->pl;
                ptrdiff_t lo, hi;
                fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
                const ptrdiff_t n = hi - lo;
                for (ptrdiff_t oh = hlo; oh < hhi; ++oh) {
                    const TYPE *restrict in = x + c * HW
                        + (oh * g->sh + off_h) * g->W + lo * g->sw + off_w;
                    TYPE *restrict out = y + oh * g->Wo + lo;
                    if (g->sw == 1) {
                        for (ptrdiff_t k = 0; k < n; ++k) out[k] += wv * in[k];
                    } else {
                        for (ptrdiff_t k = 0; k < n; ++k)
                            out[k] += wv * in[k * g->sw];
                    }
                }
            }
        }
    }
    return FC_OK;
}

FC_CLONES int CAT(fc_conv2d_direct_grad_input_, TYPE)(const TYPE *restrict grad_y,
                                            const TYPE *restrict w,
                                            ptrdiff_t n_filters,
                                            const fc_geom *g,
                                            TYPE *restrict grad_x)
{
    const ptrdiff_t HW = g->H * g->W, L = g->Ho * g->Wo;
    const ptrdiff_t w_stride = g->C * g->kh * g->kw;   /* between filters */
    for (ptrdiff_t p = 0; p < HW; ++p) grad_x[p] = 0;
    for (ptrdiff_t f = 0; f < n_filters; ++f) {
        for (ptrdiff_t i = 0; i < g->kh; ++i) {
            const ptrdiff_t off_h = i * g->dh - g->pt;
            ptrdiff_t hlo, hhi;
            fc_valid_range(off_h, g->sh, g->H, g->Ho, &hlo, &hhi);
            for (ptrdiff_t j = 0; j < g->kw; ++j) {
                const TYPE wv = w[f * w_stride + i * g->kw + j];
                const ptrdiff_t off_w = j * g->dw - g->pl;
                ptrdiff_t lo, hi;
                fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
                const ptrdiff_t n = hi - lo;
                for (ptrdiff_t oh = hlo; oh < hhi; ++oh) {
                    const TYPE *restrict gy = grad_y + f * L + oh * g->Wo + lo;
                    TYPE *restrict gx = grad_x
                        + (oh * g->sh + off_h) * g->W + lo * g->sw + off_w;
                    if (g->sw == 1) {
                        for (ptrdiff_t k = 0; k < n; ++k) gx[k] += wv * gy[k];
                    } else {
                        for (ptrdiff_t k = 0; k < n; ++k)
                            gx[k * g->sw] += wv * gy[k];
                    }
                }
            }
        }
    }
    return FC_OK;
}

FC_CLONES int CAT(fc_conv2d_direct_grad_weight_, TYPE)(const TYPE *restrict x,
                                             const TYPE *restrict grad_y,
                                             const fc_geom *g,
                                             TYPE *restrict grad_w)
{
    const ptrdiff_t HW = g->H * g->W;
    for (ptrdiff_t c = 0; c < g->C; ++c) {
        for (ptrdiff_t i = 0; i < g->kh; ++i) {
            const ptrdiff_t off_h = i * g->dh - g->pt;
            ptrdiff_t hlo, hhi;
            fc_valid_range(off_h, g->sh, g->H, g->Ho, &hlo, &hhi);
            for (ptrdiff_t j = 0; j < g->kw; ++j) {
                const ptrdiff_t off_w = j * g->dw - g->pl;
                ptrdiff_t lo, hi;
                fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
                const ptrdiff_t n = hi - lo;
                TYPE acc = 0;
                for (ptrdiff_t oh = hlo; oh < hhi; ++oh) {
                    const TYPE *restrict gy = grad_y + oh * g->Wo + lo;
                    const TYPE *restrict in = x + c * HW
                        + (oh * g->sh + off_h) * g->W + lo * g->sw + off_w;
                    for (ptrdiff_t k = 0; k < n; ++k) acc += gy[k] * in[k * g->sw];
                }
                grad_w[(c * g->kh + i) * g->kw + j] += acc;
            }
        }
    }
    return FC_OK;
}

/* sum over n < N, l < L of gy[n * stride + l], for one filter's grad_bias:
 * double partial sums in 16 lanes (so the loop vectorises, where one
 * running sum is a chain of dependent adds), added up in a fixed order. */
FC_CLONES double CAT(fc_bias_grad_, TYPE)(const TYPE *restrict gy, ptrdiff_t N,
                                          ptrdiff_t stride, ptrdiff_t L)
{
    double acc[16] = {0};
    const ptrdiff_t L16 = L - L % 16;
    for (ptrdiff_t n = 0; n < N; ++n) {
        const TYPE *restrict p = gy + n * stride;
        for (ptrdiff_t l = 0; l < L16; l += 16)
            for (int k = 0; k < 16; ++k) acc[k] += (double)p[l + k];
        for (ptrdiff_t l = L16; l < L; ++l) acc[l - L16] += (double)p[l];
    }
    for (int width = 8; width > 0; width /= 2)
        for (int k = 0; k < width; ++k) acc[k] += acc[k + width];
    return acc[0];
}
