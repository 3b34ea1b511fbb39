/* im2col / col2im for one image, written once on TYPE (see im2col.c).
 * Documented in fastconv.h.  Each row (c, i, j) of the column matrix is a
 * shifted, strided copy of plane c and col2im adds it back
 * (both in im2col_row.tmpl.h). */

FC_CLONES_AVX2 void CAT(fc_im2col_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                           ptrdiff_t l0, ptrdiff_t l1, TYPE *restrict cols)
{
    TYPE *restrict dst = cols;
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t i = 0; i < g->kh; ++i)
            for (ptrdiff_t j = 0; j < g->kw; ++j, dst += l1 - l0)
                CAT(im2col_row_, TYPE)(x + c * g->H * g->W, g, i, j, l0, l1, dst);
}

FC_CLONES_AVX2 void CAT(fc_col2im_, TYPE)(const TYPE *restrict cols, const fc_geom *g,
                           ptrdiff_t l0, ptrdiff_t l1, TYPE *restrict x)
{
    const TYPE *restrict src = cols;
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t i = 0; i < g->kh; ++i)
            for (ptrdiff_t j = 0; j < g->kw; ++j, src += l1 - l0)
                CAT(col2im_row_, TYPE)(src, g, i, j, l0, l1, x + c * g->H * g->W);
}
