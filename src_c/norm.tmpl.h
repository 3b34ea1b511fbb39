/* Batch normalisation of one channel, written once on TYPE (see norm.c).
 * Documented in fastconv.h.
 *
 * A channel's values are N planes of L elements, plane n at x + n*stride.
 * Sums run in double over 16 lanes (each lane in order, then the lanes
 * pairwise): a fixed order, whatever the thread count, that vectorises. */

/* acc[k] += f(p[l + k]) over one plane, 16 lanes at a time */
#define FC_LANES 16

FC_ALWAYS_INLINE double CAT(lanes_total_, TYPE)(double *acc)
{
    for (int width = FC_LANES / 2; width > 0; width /= 2)
        for (int k = 0; k < width; ++k) acc[k] += acc[k + width];
    return acc[0];
}

FC_ALWAYS_INLINE void CAT(bn_stats_, TYPE)(const TYPE *restrict x, ptrdiff_t N,
                                       ptrdiff_t stride, ptrdiff_t L,
                                       double *mean, double *var)
{
    const ptrdiff_t L16 = L - L % FC_LANES;
    double acc[FC_LANES] = {0};
    for (ptrdiff_t n = 0; n < N; ++n) {
        const TYPE *restrict p = x + n * stride;
        for (ptrdiff_t l = 0; l < L16; l += FC_LANES)
            for (int k = 0; k < FC_LANES; ++k) acc[k] += (double)p[l + k];
        for (ptrdiff_t l = L16; l < L; ++l) acc[l - L16] += (double)p[l];
    }
    const double m = CAT(lanes_total_, TYPE)(acc) / (double)(N * L);
    double sq[FC_LANES] = {0};
    for (ptrdiff_t n = 0; n < N; ++n) {      /* second pass: no cancellation */
        const TYPE *restrict p = x + n * stride;
        for (ptrdiff_t l = 0; l < L16; l += FC_LANES)
            for (int k = 0; k < FC_LANES; ++k) {
                const double d = (double)p[l + k] - m;
                sq[k] += d * d;
            }
        for (ptrdiff_t l = L16; l < L; ++l) {
            const double d = (double)p[l] - m;
            sq[l - L16] += d * d;
        }
    }
    *mean = m;
    *var = CAT(lanes_total_, TYPE)(sq) / (double)(N * L);
}

/* y may be x (in place): no restrict between them */
FC_CLONES void CAT(fc_bn_apply_, TYPE)(const TYPE *x, ptrdiff_t N,
                                       ptrdiff_t stride, ptrdiff_t L,
                                       TYPE scale, TYPE shift, int relu,
                                       TYPE *y)
{
    for (ptrdiff_t n = 0; n < N; ++n) {
        const TYPE *p = x + n * stride;
        TYPE *q = y + n * stride;
        if (relu)
            for (ptrdiff_t l = 0; l < L; ++l) {
                const TYPE v = p[l] * scale + shift;
                q[l] = v < 0 ? (TYPE)0 : v;     /* NaN stays NaN */
            }
        else
            for (ptrdiff_t l = 0; l < L; ++l) q[l] = p[l] * scale + shift;
    }
}

/* g: gy, or gy zeroed where y <= 0 when y is given: ReLU's backward.
 * Each loop is written out for both, so that each vectorises. */
FC_ALWAYS_INLINE TYPE CAT(masked_, TYPE)(TYPE g, TYPE y)
{
    /* a bit mask rather than a branch or select, which GCC left scalar */
    UTYPE bits;
    memcpy(&bits, &g, sizeof bits);
    bits &= (UTYPE)0 - (UTYPE)!(y <= 0);    /* torch: NaN passes */
    memcpy(&g, &bits, sizeof bits);
    return g;
}

FC_ALWAYS_INLINE void CAT(bn_backward_sums_, TYPE)(const TYPE *restrict gy,
                                                   const TYPE *restrict x,
                                                   const TYPE *restrict y,
                                                   ptrdiff_t N, ptrdiff_t stride,
                                                   ptrdiff_t L, double mean,
                                                   double *sum_g, double *sum_gx)
{
    const ptrdiff_t L16 = L - L % FC_LANES;
    double a[FC_LANES] = {0}, b[FC_LANES] = {0};
    for (ptrdiff_t n = 0; n < N; ++n) {
        const TYPE *restrict g = gy + n * stride, *restrict p = x + n * stride;
        const TYPE *restrict r = y ? y + n * stride : NULL;
        if (r)
            for (ptrdiff_t l = 0; l < L16; l += FC_LANES)
                for (int k = 0; k < FC_LANES; ++k) {
                    const double gv = (double)CAT(masked_, TYPE)(g[l + k], r[l + k]);
                    a[k] += gv;
                    b[k] += gv * ((double)p[l + k] - mean);
                }
        else
            for (ptrdiff_t l = 0; l < L16; l += FC_LANES)
                for (int k = 0; k < FC_LANES; ++k) {
                    const double gv = (double)g[l + k];
                    a[k] += gv;
                    b[k] += gv * ((double)p[l + k] - mean);
                }
        for (ptrdiff_t l = L16; l < L; ++l) {
            const double gv = (double)(r ? CAT(masked_, TYPE)(g[l], r[l]) : g[l]);
            a[l - L16] += gv;
            b[l - L16] += gv * ((double)p[l] - mean);
        }
    }
    *sum_g = CAT(lanes_total_, TYPE)(a);
    *sum_gx = CAT(lanes_total_, TYPE)(b);
}

/* gx = a*g + (b*(x - m) + c), or a*g when x is NULL; gx may be gy (in
 * place): no restrict between them */
FC_ALWAYS_INLINE void CAT(bn_backward_apply_, TYPE)(const TYPE *gy,
                                                    const TYPE *restrict x,
                                                    const TYPE *restrict y,
                                                    ptrdiff_t N, ptrdiff_t stride,
                                                    ptrdiff_t L, TYPE a, TYPE b,
                                                    TYPE m, TYPE c, TYPE *gx)
{
    for (ptrdiff_t n = 0; n < N; ++n) {
        const TYPE *g = gy + n * stride;
        const TYPE *restrict p = x ? x + n * stride : NULL;
        const TYPE *restrict r = y ? y + n * stride : NULL;
        TYPE *q = gx + n * stride;
        if (p && r)
            for (ptrdiff_t l = 0; l < L; ++l)
                q[l] = a * CAT(masked_, TYPE)(g[l], r[l]) + (b * (p[l] - m) + c);
        else if (p)
            for (ptrdiff_t l = 0; l < L; ++l) q[l] = a * g[l] + (b * (p[l] - m) + c);
        else if (r)
            for (ptrdiff_t l = 0; l < L; ++l) q[l] = a * CAT(masked_, TYPE)(g[l], r[l]);
        else
            for (ptrdiff_t l = 0; l < L; ++l) q[l] = a * g[l];
    }
}

FC_CLONES void CAT(fc_bn_train_channel_, TYPE)(const TYPE *x, ptrdiff_t N,
                                               ptrdiff_t stride, ptrdiff_t L,
                                               double gamma, double beta,
                                               double eps, int relu, TYPE *y,
                                               double *mean, double *var)
{
    CAT(bn_stats_, TYPE)(x, N, stride, L, mean, var);
    const double scale = gamma / sqrt(*var + eps);
    CAT(fc_bn_apply_, TYPE)(x, N, stride, L, (TYPE)scale,
                            (TYPE)(beta - *mean * scale), relu, y);
}

FC_CLONES void CAT(fc_bn_backward_channel_, TYPE)(const TYPE *gy,
                                                  const TYPE *x, const TYPE *y,
                                                  ptrdiff_t N, ptrdiff_t stride,
                                                  ptrdiff_t L, double mean,
                                                  double invstd, double gamma,
                                                  int training, TYPE *gx,
                                                  double *g_gamma,
                                                  double *g_beta)
{
    double sum_g, sum_gx;
    CAT(bn_backward_sums_, TYPE)(gy, x, y, N, stride, L, mean, &sum_g, &sum_gx);
    *g_beta = sum_g;
    *g_gamma = sum_gx * invstd;
    const double scale = gamma * invstd;
    if (!training) {            /* the statistics are constants */
        CAT(bn_backward_apply_, TYPE)(gy, NULL, y, N, stride, L, (TYPE)scale, 0, 0, 0,
                                      gx);
        return;
    }
    /* gx = scale * (g - sum_g/n - xhat * g_gamma/n), xhat = (x - mean)*invstd */
    const double n = (double)(N * L), b = -scale * invstd * *g_gamma / n;
    CAT(bn_backward_apply_, TYPE)(gy, x, y, N, stride, L, (TYPE)scale, (TYPE)b,
                                  (TYPE)mean, (TYPE)(-scale * sum_g / n), gx);
}

#undef FC_LANES
