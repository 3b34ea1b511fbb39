/* Element-wise layer kernels and optimiser updates, written once on TYPE
 * (see eltwise.c).  Documented in fastconv.h.  Outputs may alias inputs
 * element for element (in place), so those pointers are not restrict. */

FC_CLONES void CAT(fc_relu_, TYPE)(const TYPE *x, ptrdiff_t n, TYPE *y)
{
    for (ptrdiff_t i = 0; i < n; ++i) y[i] = x[i] < 0 ? (TYPE)0 : x[i];
}

FC_CLONES void CAT(fc_relu_backward_, TYPE)(const TYPE *g, const TYPE *y,
                                            ptrdiff_t n, TYPE *gx)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        /* a bit mask (vector code; a select stayed scalar in norm.tmpl.h) */
        UTYPE bits;
        memcpy(&bits, &g[i], sizeof bits);
        bits &= (UTYPE)0 - (UTYPE)!(y[i] <= 0);   /* torch: NaN passes */
        memcpy(&gx[i], &bits, sizeof bits);
    }
}

FC_CLONES void CAT(fc_add_, TYPE)(const TYPE *a, const TYPE *b, ptrdiff_t n,
                                  int relu, TYPE *y)
{
    if (relu)
        for (ptrdiff_t i = 0; i < n; ++i) {
            const TYPE v = a[i] + b[i];
            y[i] = v < 0 ? (TYPE)0 : v;
        }
    else
        for (ptrdiff_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

/* torch.optim.SGD's update, one element at a time in its order of
 * operations (dampening 0). */
FC_CLONES void CAT(fc_sgd_step_, TYPE)(TYPE *restrict p, const TYPE *restrict g,
                                       TYPE *restrict buf, ptrdiff_t n,
                                       TYPE lr, TYPE momentum,
                                       TYPE weight_decay, int nesterov,
                                       int first)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        TYPE d = weight_decay != 0 ? g[i] + weight_decay * p[i] : g[i];
        if (buf) {
            const TYPE v = first ? d : momentum * buf[i] + d;
            buf[i] = v;
            d = nesterov ? d + momentum * v : v;
        }
        p[i] = p[i] - lr * d;
    }
}

/* torch.optim.Adam's update (no amsgrad): m.lerp_(g, 1 - beta1),
 * v = beta2 v + (1 - beta2) g g, p -= step_size m / (sqrt(v) / bc2_sqrt + eps) */
FC_CLONES void CAT(fc_adam_step_, TYPE)(TYPE *restrict p, const TYPE *restrict g,
                                        TYPE *restrict m, TYPE *restrict v,
                                        ptrdiff_t n, TYPE beta1, TYPE beta2,
                                        TYPE eps, TYPE weight_decay,
                                        TYPE step_size, TYPE bc2_sqrt)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        const TYPE d = weight_decay != 0 ? g[i] + weight_decay * p[i] : g[i];
        const TYPE mi = m[i] + (1 - beta1) * (d - m[i]);
        const TYPE vi = beta2 * v[i] + (1 - beta2) * (d * d);
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - step_size * (mi / (SQRT(vi) / bc2_sqrt + eps));
    }
}

/* One row of softmax cross-entropy: returns log(sum exp(s - max)) -
 * (s[label] - max) and writes (softmax(s) - onehot(label)) * scale. */
double CAT(fc_softmax_xent_row_, TYPE)(const TYPE *restrict s, ptrdiff_t C,
                                       ptrdiff_t label, TYPE scale,
                                       TYPE *restrict grad)
{
    TYPE mx = s[0];
    for (ptrdiff_t c = 1; c < C; ++c)
        if (s[c] > mx || s[c] != s[c]) mx = s[c];
    double total = 0;
    for (ptrdiff_t c = 0; c < C; ++c) {
        grad[c] = EXP(s[c] - mx);
        total += (double)grad[c];
    }
    const TYPE inv = (TYPE)(1.0 / total) * scale;
    for (ptrdiff_t c = 0; c < C; ++c) grad[c] *= inv;
    grad[label] -= scale;
    return log(total) - (double)(s[label] - mx);
}
