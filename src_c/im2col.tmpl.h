/* im2col / col2im for one image, written once on TYPE (see im2col.c).
 * Documented in fastconv.h.  Each row (c, i, j) of the column matrix is a
 * shifted, strided copy of plane c and col2im adds it back
 * (both in im2col_row.tmpl.h). */

/* Where row (c, i, j) goes: c*kh*kw + i*kw + j, or (i*kw + j)*C + c when
 * tap_major (a window equal to its stride then lists the stride phases of
 * all channels one after the other: the phases as images). */
static inline ptrdiff_t CAT(col_row_, TYPE)(const fc_geom *g, int tap_major, ptrdiff_t c,
                                           ptrdiff_t i, ptrdiff_t j)
{
    return tap_major ? (i * g->kw + j) * g->C + c : (c * g->kh + i) * g->kw + j;
}

FC_CLONES_AVX2 void CAT(fc_im2col_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                           ptrdiff_t l0, ptrdiff_t l1, int tap_major,
                           TYPE *restrict cols)
{
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t i = 0; i < g->kh; ++i)
            for (ptrdiff_t j = 0; j < g->kw; ++j)
                CAT(im2col_row_, TYPE)(x + c * g->H * g->W, g, i, j, l0, l1,
                                       cols + CAT(col_row_, TYPE)(g, tap_major, c, i, j)
                                              * (l1 - l0));
}

FC_CLONES_AVX2 void CAT(fc_col2im_, TYPE)(const TYPE *restrict cols, const fc_geom *g,
                           ptrdiff_t l0, ptrdiff_t l1, int tap_major,
                           TYPE *restrict x)
{
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t i = 0; i < g->kh; ++i)
            for (ptrdiff_t j = 0; j < g->kw; ++j)
                CAT(col2im_row_, TYPE)(cols + CAT(col_row_, TYPE)(g, tap_major, c, i, j)
                                              * (l1 - l0),
                                       g, i, j, l0, l1, x + c * g->H * g->W);
}

/* One row of n cells from its column phases, phase j's row at
 * src + j*pstride: row[p] = src[j*pstride + k] for the padded columns
 * p = j + k*s in [pl, pl + n), row = dst - pl (s = 2 with both phases as
 * constants, so the compiler interleaves whole vectors). */
FC_ALWAYS_INLINE void CAT(interleave_, TYPE)(const TYPE *restrict src, ptrdiff_t pstride,
                                             ptrdiff_t phases, ptrdiff_t s, ptrdiff_t pl,
                                             ptrdiff_t n, TYPE *restrict dst)
{
    if (s == 2 && phases == 2) {
        const TYPE *restrict s0 = src, *restrict s1 = src + pstride;
        ptrdiff_t p = pl;
        if (p % 2 && p < pl + n) {                  /* an odd first column */
            dst[0] = s1[p / 2];
            ++p;
        }
        TYPE *restrict d = dst + (p - pl);
        const ptrdiff_t k0 = p / 2, pairs = (pl + n - p) / 2;
        for (ptrdiff_t k = 0; k < pairs; ++k) {
            d[2 * k] = s0[k0 + k];
            d[2 * k + 1] = s1[k0 + k];
        }
        if ((pl + n - p) % 2) d[2 * pairs] = s0[k0 + pairs];
        return;
    }
    for (ptrdiff_t j = 0; j < phases; ++j) {
        const ptrdiff_t k0 = pl > j ? (pl - j + s - 1) / s : 0;
        for (ptrdiff_t k = k0; j + k * s < pl + n; ++k)
            dst[j + k * s - pl] = src[j * pstride + k];
    }
}

FC_CLONES_AVX2 void CAT(fc_phase_merge_, TYPE)(const TYPE *restrict cols, const fc_geom *g,
                                                int tap_major, TYPE *restrict x)
{
    const ptrdiff_t L = g->Ho * g->Wo;
    const ptrdiff_t next = CAT(col_row_, TYPE)(g, tap_major, 0, 0, 1) * L;  /* phase j+1 */
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t h = 0; h < g->H; ++h) {
            const ptrdiff_t i = (h + g->pt) % g->sh, a = (h + g->pt) / g->sh;
            const ptrdiff_t row = CAT(col_row_, TYPE)(g, tap_major, c, i, 0);
            CAT(interleave_, TYPE)(cols + row * L + a * g->Wo, next, g->kw, g->sw, g->pl,
                                   g->W, x + (c * g->H + h) * g->W);
        }
}
