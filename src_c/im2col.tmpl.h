/* im2col / col2im for one image, written once on TYPE (see im2col.c).
 * Documented in fastconv.h.  Each row (c, i, j) of the column matrix is a
 * shifted, strided copy of plane c (im2col_row.tmpl.h); col2im walks the same
 * segments and adds instead of copying. */

int CAT(fc_im2col_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                          ptrdiff_t l0, ptrdiff_t l1, TYPE *restrict cols)
{
    TYPE *restrict dst = cols;
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t i = 0; i < g->kh; ++i)
            for (ptrdiff_t j = 0; j < g->kw; ++j, dst += l1 - l0)
                CAT(im2col_row_, TYPE)(x + c * g->H * g->W, g, i, j, l0, l1, dst);
    return FC_OK;
}

int CAT(fc_col2im_, TYPE)(const TYPE *restrict cols, const fc_geom *g,
                          ptrdiff_t l0, ptrdiff_t l1, TYPE *restrict x)
{
    const ptrdiff_t ld = l1 - l0;
    const TYPE *restrict src = cols;
    for (ptrdiff_t c = 0; c < g->C; ++c) {
        TYPE *plane = x + c * g->H * g->W;
        for (ptrdiff_t i = 0; i < g->kh; ++i) {
            for (ptrdiff_t j = 0; j < g->kw; ++j, src += ld) {
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
                        TYPE *restrict row =
                            plane + ih * g->W + a * g->sw + off_w;
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
        }
    }
    return FC_OK;
}
