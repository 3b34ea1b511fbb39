/* Locally connected layer (unshared convolution): the type-independent
 * helpers, then local.tmpl.h instantiated for float and double.  Documented
 * in fastconv.h. */
#include "fastconv.h"
#include "common.h"
#include "templating.h"

/* Images per block: bounds the per-thread workspace whatever N is. */
#define LC_NB 64
/* Micro-kernel tile: LC_MR rows of C by LC_QB columns (128 bytes: 32 floats,
 * 16 doubles), held in registers across the sum. */
#define LC_MR 4
#define LC_QB ((ptrdiff_t)(128 / sizeof(TYPE)))

static ptrdiff_t lc_extent(ptrdiff_t out, ptrdiff_t stride, ptrdiff_t dilation,
                           ptrdiff_t kernel)
{
    return (out - 1) * stride + dilation * (kernel - 1) + 1;
}

void fc_lc_padded_geom(const fc_geom *g, fc_geom *gp)
{
    *gp = *g;
    gp->H = fc_max(g->pt + g->H, lc_extent(g->Ho, g->sh, g->dh, g->kh));
    gp->W = fc_max(g->pl + g->W, lc_extent(g->Wo, g->sw, g->dw, g->kw));
    gp->pt = 0;
    gp->pl = 0;
}

void fc_lc_offsets(const fc_geom *gp, ptrdiff_t N, ptrdiff_t *off)
{
    const ptrdiff_t HW = gp->H * gp->W;
    for (ptrdiff_t c = 0; c < gp->C; ++c)
        for (ptrdiff_t i = 0; i < gp->kh; ++i)
            for (ptrdiff_t j = 0; j < gp->kw; ++j)
                off[(c * gp->kh + i) * gp->kw + j] =
                    (c * HW + i * gp->dh * gp->W + j * gp->dw) * N;
}

ptrdiff_t fc_lc_work_size(const fc_geom *g, ptrdiff_t N, ptrdiff_t F)
{
    const ptrdiff_t K = g->C * g->kh * g->kw, nb = fc_min(N, LC_NB);
    return fc_max(1, fc_max(fc_mul_sat(nb, fc_add_sat(K, F)), fc_mul_sat(2 * nb, F)));
}

ptrdiff_t fc_lc_band_rows(const fc_geom *g)
{
    const ptrdiff_t reach = (g->kh - 1) * g->dh;
    return fc_max(1, (reach + g->sh - 1) / g->sh);
}

#define TYPE float
#include "local.tmpl.h"
#undef TYPE

#define TYPE double
#include "local.tmpl.h"
#undef TYPE
