/* Locally connected layer, written once on TYPE (see local.c).  Documented
 * in fastconv.h.  Every kernel reads a zero-padded image (geometry gp: no
 * padding left), so a window is a fixed table of offsets (fc_lc_offsets)
 * from its top-left cell and no kernel tests bounds.
 *
 * Per output position l the work is three small matrix products with the
 * position's own filters W[l] (F x K, K = C*kh*kw), over a block of nb
 * images whose patches P (nb x K) are the rows of the im2col matrix:
 *   forward      Y  (nb x F) = P   @ W[l]^T  (+ bias)
 *   grad_weight  GW (F x K) += G^T @ P        G = grad_out at l (nb x F)
 *   grad_x       dP (nb x K) = G   @ W[l]     (scattered back into grad_x)
 * all by lc_gemm below: an axpy-form product whose inner loop runs along
 * contiguous rows of B and C (it vectorises without reassociation), each
 * element of C summed over r in order: the result depends on nothing but the
 * operands. */

/* C[i, q] += sum_{r < R} a_i[r] * b[r*ldb + q]    i < m <= LC_MR, q < LC_QB,
 * a_i = rows[i] (rows past m repeat a valid row; their sums are dropped). */
FC_ALWAYS_INLINE void CAT(lc_tile_, TYPE)(const TYPE *const *rows,
                                         ptrdiff_t R,
                                         const TYPE *restrict b, ptrdiff_t ldb,
                                         TYPE *restrict c, ptrdiff_t ldc,
                                         ptrdiff_t m)
{
    TYPE acc0[LC_QB], acc1[LC_QB], acc2[LC_QB], acc3[LC_QB];
    const TYPE *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
    for (ptrdiff_t q = 0; q < LC_QB; ++q) {
        acc0[q] = 0;
        acc1[q] = 0;
        acc2[q] = 0;
        acc3[q] = 0;
    }
    for (ptrdiff_t r = 0; r < R; ++r) {
        const TYPE a0 = r0[r], a1 = r1[r], a2 = r2[r], a3 = r3[r];
        const TYPE *restrict br = b + r * ldb;
        for (ptrdiff_t q = 0; q < LC_QB; ++q) {
            const TYPE bq = br[q];
            acc0[q] += a0 * bq;
            acc1[q] += a1 * bq;
            acc2[q] += a2 * bq;
            acc3[q] += a3 * bq;
        }
    }
    const TYPE *acc[LC_MR] = {acc0, acc1, acc2, acc3};
    for (ptrdiff_t i = 0; i < m; ++i)
        for (ptrdiff_t q = 0; q < LC_QB; ++q) c[i * ldc + q] += acc[i][q];
}

/* As lc_tile for the last qn < LC_QB columns. */
FC_ALWAYS_INLINE void CAT(lc_tile_tail_, TYPE)(const TYPE *const *rows,
                                              ptrdiff_t R,
                                              const TYPE *restrict b,
                                              ptrdiff_t ldb, TYPE *restrict c,
                                              ptrdiff_t ldc, ptrdiff_t m,
                                              ptrdiff_t qn)
{
    TYPE acc0[LC_QB], acc1[LC_QB], acc2[LC_QB], acc3[LC_QB];
    const TYPE *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
    for (ptrdiff_t q = 0; q < LC_QB; ++q) {
        acc0[q] = 0;
        acc1[q] = 0;
        acc2[q] = 0;
        acc3[q] = 0;
    }
    for (ptrdiff_t r = 0; r < R; ++r) {
        const TYPE a0 = r0[r], a1 = r1[r], a2 = r2[r], a3 = r3[r];
        const TYPE *restrict br = b + r * ldb;
        for (ptrdiff_t q = 0; q < qn; ++q) {
            const TYPE bq = br[q];
            acc0[q] += a0 * bq;
            acc1[q] += a1 * bq;
            acc2[q] += a2 * bq;
            acc3[q] += a3 * bq;
        }
    }
    const TYPE *acc[LC_MR] = {acc0, acc1, acc2, acc3};
    for (ptrdiff_t i = 0; i < m; ++i)
        for (ptrdiff_t q = 0; q < qn; ++q) c[i * ldc + q] += acc[i][q];
}

/* C (M x Q, row stride ldc) += A (M x R, row stride lda) @ B (R x Q, row
 * stride ldb). */
FC_ALWAYS_INLINE void CAT(lc_gemm_, TYPE)(ptrdiff_t M, ptrdiff_t Q,
                                         ptrdiff_t R, const TYPE *a,
                                         ptrdiff_t lda,
                                         const TYPE *b, ptrdiff_t ldb,
                                         TYPE *c, ptrdiff_t ldc)
{
    for (ptrdiff_t i0 = 0; i0 < M; i0 += LC_MR) {
        const ptrdiff_t m = fc_min(LC_MR, M - i0);
        const TYPE *rows[LC_MR];
        for (ptrdiff_t i = 0; i < LC_MR; ++i)
            rows[i] = a + (i0 + (i < m ? i : 0)) * lda;
        ptrdiff_t q0 = 0;
        for (; q0 + LC_QB <= Q; q0 += LC_QB)
            CAT(lc_tile_, TYPE)(rows, R, b + q0, ldb,
                                c + i0 * ldc + q0, ldc, m);
        if (q0 < Q)
            CAT(lc_tile_tail_, TYPE)(rows, R, b + q0, ldb,
                                     c + i0 * ldc + q0, ldc, m, Q - q0);
    }
}

/* The patches of position base (offset of its window's top-left cell) in
 * images 0..nb-1 of xp: p (nb x K). */
FC_ALWAYS_INLINE void CAT(lc_gather_, TYPE)(const TYPE *restrict xp,
                                           ptrdiff_t CHW, ptrdiff_t base,
                                           const ptrdiff_t *restrict xoff,
                                           ptrdiff_t nb, ptrdiff_t K,
                                           TYPE *restrict p)
{
    for (ptrdiff_t i = 0; i < nb; ++i) {
        const TYPE *restrict src = xp + i * CHW + base;
        for (ptrdiff_t k = 0; k < K; ++k) p[i * K + k] = src[xoff[k]];
    }
}

int CAT(fc_lc_pad_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                          TYPE *restrict xp)
{
    fc_geom gp;
    fc_lc_padded_geom(g, &gp);
    for (ptrdiff_t c = 0; c < g->C; ++c) {
        TYPE *restrict plane = xp + c * gp.H * gp.W;
        for (ptrdiff_t p = 0; p < gp.H * gp.W; ++p) plane[p] = 0;
        for (ptrdiff_t h = 0; h < g->H; ++h) {
            const TYPE *restrict src = x + (c * g->H + h) * g->W;
            TYPE *restrict dst = plane + (h + g->pt) * gp.W + g->pl;
            for (ptrdiff_t w = 0; w < g->W; ++w) dst[w] = src[w];
        }
    }
    return FC_OK;
}

int CAT(fc_lc_unpad_, TYPE)(const TYPE *restrict xp, const fc_geom *g,
                            TYPE *restrict x)
{
    fc_geom gp;
    fc_lc_padded_geom(g, &gp);
    for (ptrdiff_t c = 0; c < g->C; ++c) {
        for (ptrdiff_t h = 0; h < g->H; ++h) {
            const TYPE *restrict src = xp + (c * gp.H + h + g->pt) * gp.W + g->pl;
            TYPE *restrict dst = x + (c * g->H + h) * g->W;
            for (ptrdiff_t w = 0; w < g->W; ++w) dst[w] = src[w];
        }
    }
    return FC_OK;
}

FC_CLONES int CAT(fc_lc_forward_, TYPE)(const TYPE *restrict xp,
                                        const fc_geom *gp,
                                        const ptrdiff_t *xoff, ptrdiff_t N,
                                        const TYPE *restrict w,
                                        const TYPE *restrict bias, ptrdiff_t F,
                                        ptrdiff_t l0, ptrdiff_t l1,
                                        TYPE *restrict work, TYPE *restrict y)
{
    const ptrdiff_t K = gp->C * gp->kh * gp->kw, L = gp->Ho * gp->Wo;
    const ptrdiff_t CHW = gp->C * gp->H * gp->W;
    const ptrdiff_t NB = fc_min(N, LC_NB);
    TYPE *restrict wt = work;                 /* W[l]^T, K x F */
    TYPE *restrict p = wt + K * F;            /* patches, nb x K */
    TYPE *restrict yb = p + NB * K;           /* outputs, nb x F */
    for (ptrdiff_t l = l0; l < l1; ++l) {
        const ptrdiff_t oh = l / gp->Wo, ow = l - oh * gp->Wo;
        const ptrdiff_t base = oh * gp->sh * gp->W + ow * gp->sw;
        const TYPE *restrict wl = w + l * F * K;
        for (ptrdiff_t f = 0; f < F; ++f)
            for (ptrdiff_t k = 0; k < K; ++k) wt[k * F + f] = wl[f * K + k];
        for (ptrdiff_t n0 = 0; n0 < N; n0 += LC_NB) {
            const ptrdiff_t nb = fc_min(LC_NB, N - n0);
            for (ptrdiff_t i = 0; i < nb; ++i)
                for (ptrdiff_t f = 0; f < F; ++f)
                    yb[i * F + f] = bias ? bias[f * L + l] : 0;
            CAT(lc_gather_, TYPE)(xp + n0 * CHW, CHW, base, xoff, nb, K, p);
            CAT(lc_gemm_, TYPE)(nb, F, K, p, K, wt, F, yb, F);
            for (ptrdiff_t i = 0; i < nb; ++i)
                for (ptrdiff_t f = 0; f < F; ++f)
                    y[((n0 + i) * F + f) * L + l] = yb[i * F + f];
        }
    }
    return FC_OK;
}

FC_CLONES int CAT(fc_lc_backward_, TYPE)(const TYPE *restrict gy,
                                         const TYPE *restrict xp,
                                         const fc_geom *gp,
                                         const ptrdiff_t *xoff, ptrdiff_t N,
                                         const TYPE *restrict w, ptrdiff_t F,
                                         ptrdiff_t l0, ptrdiff_t l1,
                                         TYPE *restrict work,
                                         TYPE *restrict gxp,
                                         TYPE *restrict gw,
                                         TYPE *restrict gb)
{
    const ptrdiff_t K = gp->C * gp->kh * gp->kw, L = gp->Ho * gp->Wo;
    const ptrdiff_t CHW = gp->C * gp->H * gp->W, NB = fc_min(N, LC_NB);
    TYPE *restrict p = work;                  /* patches, nb x K */
    TYPE *restrict dp = p + NB * K;           /* their gradient, nb x K */
    TYPE *restrict g = dp + NB * K;           /* grad_out at l, nb x F */
    TYPE *restrict gt = g + NB * F;           /* its transpose, F x nb */
    for (ptrdiff_t l = l0; l < l1; ++l) {
        const ptrdiff_t oh = l / gp->Wo, ow = l - oh * gp->Wo;
        const ptrdiff_t base = oh * gp->sh * gp->W + ow * gp->sw;
        const TYPE *restrict wl = w + l * F * K;
        TYPE *restrict gwl = gw + l * F * K;
        for (ptrdiff_t e = 0; e < F * K; ++e) gwl[e] = 0;
        if (gb)
            for (ptrdiff_t f = 0; f < F; ++f) gb[f * L + l] = 0;
        for (ptrdiff_t n0 = 0; n0 < N; n0 += LC_NB) {
            const ptrdiff_t nb = fc_min(LC_NB, N - n0);
            for (ptrdiff_t i = 0; i < nb; ++i) {
                for (ptrdiff_t f = 0; f < F; ++f) {
                    const TYPE v = gy[((n0 + i) * F + f) * L + l];
                    g[i * F + f] = v;
                    gt[f * nb + i] = v;
                }
            }
            if (gb) {
                for (ptrdiff_t f = 0; f < F; ++f) {
                    TYPE s = gb[f * L + l];
                    for (ptrdiff_t i = 0; i < nb; ++i) s += gt[f * nb + i];
                    gb[f * L + l] = s;
                }
            }
            CAT(lc_gather_, TYPE)(xp + n0 * CHW, CHW, base, xoff, nb, K, p);
            CAT(lc_gemm_, TYPE)(F, K, nb, gt, nb, p, K, gwl, K);
            for (ptrdiff_t e = 0; e < nb * K; ++e) dp[e] = 0;
            CAT(lc_gemm_, TYPE)(nb, K, F, g, F, wl, K, dp, K);
            for (ptrdiff_t i = 0; i < nb; ++i) {
                TYPE *restrict dst = gxp + (n0 + i) * CHW + base;
                for (ptrdiff_t k = 0; k < K; ++k) dst[xoff[k]] += dp[i * K + k];
            }
        }
    }
    return FC_OK;
}
