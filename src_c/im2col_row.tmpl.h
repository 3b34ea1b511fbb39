/* Rows of the column matrix, written once on TYPE: row (c, i, j) for output
 * positions [l0, l1) of one image is the (i, j) kernel tap of plane c,
 * shifted and strided, zero where the window reads padding.  Shared by
 * im2col (which stacks the rows), col2im (which adds them back) and the GEMM
 * packer (which cuts them into panels).  Rows are walked one output row (oh)
 * at a time, so the middle of each segment is a plain copy with no bounds
 * tests. */

/* dst[k] = src[k * s] for k < n; strides 1, 2 and 4 as constants, so the
 * compiler vectorises them (whole-vector loads and shuffles), where a
 * stride known only at run time leaves a scalar loop. */
FC_ALWAYS_INLINE void CAT(strided_copy_, TYPE)(const TYPE *restrict src,
                                               ptrdiff_t s, ptrdiff_t n,
                                               TYPE *restrict dst)
{
    if (s == 1) {
        for (ptrdiff_t k = 0; k < n; ++k) dst[k] = src[k];
    } else if (s == 2) {
        for (ptrdiff_t k = 0; k < n; ++k) dst[k] = src[2 * k];
    } else if (s == 4) {
        for (ptrdiff_t k = 0; k < n; ++k) dst[k] = src[4 * k];
    } else {
        for (ptrdiff_t k = 0; k < n; ++k) dst[k] = src[k * s];
    }
}

/* Row (c, i, j) into B panels: output position l0 + q goes to
 * dst[(q / nr) * pstride + q % nr], so the GEMM packer writes each row of B
 * straight into its NR-wide panels.  Segments (one output row each) are cut
 * at panel boundaries, with counters instead of divisions; positions past l1
 * are not written. */
FC_ALWAYS_INLINE void CAT(im2col_row_panels_, TYPE)(const TYPE *restrict plane,
                                                 const fc_geom *g, ptrdiff_t i,
                                                 ptrdiff_t j, ptrdiff_t l0,
                                                 ptrdiff_t l1, ptrdiff_t nr,
                                                 ptrdiff_t pstride,
                                                 TYPE *restrict dst)
{
    const ptrdiff_t off_w = j * g->dw - g->pl;
    ptrdiff_t lo, hi;
    fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
    ptrdiff_t oh = l0 / g->Wo, ow0 = l0 - oh * g->Wo;
    ptrdiff_t left = l1 - l0, qp = 0;        /* position within the panel */
    TYPE *restrict panel = dst;
    while (left > 0) {
        const ptrdiff_t len = fc_min(fc_min(g->Wo - ow0, left), nr - qp);
        const ptrdiff_t ow1 = ow0 + len;
        TYPE *restrict out = panel + qp;         /* out[ow - ow0] */
        const ptrdiff_t ih = oh * g->sh - g->pt + i * g->dh;
        ptrdiff_t a = ow1, b = ow1;
        if (ih >= 0 && ih < g->H) {
            a = fc_min(fc_max(ow0, lo), ow1);
            b = fc_max(a, fc_min(ow1, hi));
        }
        for (ptrdiff_t ow = ow0; ow < a; ++ow) out[ow - ow0] = 0;
        if (a < b) {
            CAT(strided_copy_, TYPE)(plane + ih * g->W + a * g->sw + off_w, g->sw,
                                     b - a, out + (a - ow0));
        }
        for (ptrdiff_t ow = b; ow < ow1; ++ow) out[ow - ow0] = 0;
        left -= len;
        qp += len;
        if (qp == nr) {
            qp = 0;
            panel += pstride;
        }
        ow0 = ow1;
        if (ow0 == g->Wo) {
            ow0 = 0;
            ++oh;
        }
    }
}

/* Rows that are one shifted run of the plane: unit strides, Wo == W and a
 * tap that reads its own column (j*dw == pl: 1x1 layers, the middle column
 * of "same" ones), so position l reads plane cell l + shift.  Positions
 * [*a, *b) of [l0, l1) read inside the plane; the rest is padding. */
static inline int CAT(shifted_run_, TYPE)(const fc_geom *g, ptrdiff_t i,
                                          ptrdiff_t j, ptrdiff_t l0,
                                          ptrdiff_t l1, ptrdiff_t *shift,
                                          ptrdiff_t *a, ptrdiff_t *b)
{
    if (g->sh != 1 || g->sw != 1 || j * g->dw != g->pl || g->Wo != g->W) return 0;
    *shift = (i * g->dh - g->pt) * g->W;
    *a = fc_min(fc_max(l0, -*shift), l1);
    *b = fc_max(*a, fc_min(l1, g->H * g->W - *shift));
    return 1;
}

/* Row (c, i, j) into dst[0 .. l1 - l0): a single panel as wide as the row. */
FC_ALWAYS_INLINE void CAT(im2col_row_, TYPE)(const TYPE *restrict plane,
                                             const fc_geom *g, ptrdiff_t i,
                                             ptrdiff_t j, ptrdiff_t l0,
                                             ptrdiff_t l1, TYPE *restrict dst)
{
    ptrdiff_t shift, a, b;
    if (CAT(shifted_run_, TYPE)(g, i, j, l0, l1, &shift, &a, &b)) {
        for (ptrdiff_t l = l0; l < a; ++l) dst[l - l0] = 0;
        for (ptrdiff_t l = a; l < b; ++l) dst[l - l0] = plane[l + shift];
        for (ptrdiff_t l = b; l < l1; ++l) dst[l - l0] = 0;
        return;
    }
    CAT(im2col_row_panels_, TYPE)(plane, g, i, j, l0, l1, l1 - l0, 0, dst);
}

/* The adjoint of im2col_row: ADD row (c, i, j) of a column matrix, for output
 * positions [l0, l1), back into plane c. */
FC_ALWAYS_INLINE void CAT(col2im_row_, TYPE)(const TYPE *restrict src,
                                          const fc_geom *g, ptrdiff_t i,
                                          ptrdiff_t j, ptrdiff_t l0,
                                          ptrdiff_t l1, TYPE *restrict plane)
{
    ptrdiff_t shift, la, lb;
    if (CAT(shifted_run_, TYPE)(g, i, j, l0, l1, &shift, &la, &lb)) {
        for (ptrdiff_t l = la; l < lb; ++l) plane[l + shift] += src[l - l0];
        return;
    }
    const ptrdiff_t off_w = j * g->dw - g->pl;
    ptrdiff_t lo, hi;
    fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
    ptrdiff_t l = l0;
    while (l < l1) {
        const ptrdiff_t oh = l / g->Wo;
        const ptrdiff_t ow0 = l - oh * g->Wo;
        const ptrdiff_t ow1 = fc_min(g->Wo, ow0 + (l1 - l));
        const ptrdiff_t ih = oh * g->sh - g->pt + i * g->dh;
        const ptrdiff_t a = fc_min(fc_max(ow0, lo), ow1);
        const ptrdiff_t b = fc_min(ow1, hi);
        if (ih >= 0 && ih < g->H && a < b) {
            const TYPE *restrict in = src + (l - l0) + (a - ow0);
            TYPE *restrict row = plane + ih * g->W + a * g->sw + off_w;
            const ptrdiff_t n = b - a;
            if (g->sw == 1) {
                for (ptrdiff_t k = 0; k < n; ++k) row[k] += in[k];
            } else {
                for (ptrdiff_t k = 0; k < n; ++k) row[k * g->sw] += in[k];
            }
        }
        l += ow1 - ow0;
    }
}
