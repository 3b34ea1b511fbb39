/* Locally connected layer, written once on TYPE (see local.c).  Documented
 * in fastconv.h.
 *
 * The kernels read the input as xt (C, Hp, Wp, N): zero padded and image
 * innermost, so that the values of one kernel tap at one output position
 * are a contiguous row over the images; a window is a fixed table of row
 * offsets (fc_lc_offsets) from its top-left cell, and no kernel tests
 * bounds.  With W[l] the (K x F) filters of position l (K = C*kh*kw), P^T
 * the (K x nb) patch rows of a block of nb images and G the (nb x F) output
 * gradient at l, the work per position is three small products, none of
 * which needs a transposed copy:
 *   forward      Y^T (F x nb)  = W[l]^T @ P^T   (+ bias; P^T packed)
 *   grad_weight  W'[l] (K x F) += P^T @ G
 *   grad_x       dP^T (K x nb) = W[l] @ G^T    added into the rows of gxt
 * all by lc_gemm: an axpy-form product whose inner loop runs along
 * contiguous rows of B and C (it vectorises without reassociation), each
 * element of C summed over r in order: the result depends on nothing but the
 * operands. */

/* C[i, q0 + q] += sum_{r < R} ar[i][r*acs] * b[r*ldb + q0 + q]
 * i < m <= LC_MR, q < qn <= LC_QB, C rows cr[i] (rows past m repeat row 0:
 * computed, never stored).  Called with qn == LC_QB, a constant after
 * inlining, for all but the last columns. */
FC_ALWAYS_INLINE void CAT(lc_tile_, TYPE)(const TYPE *const *ar, ptrdiff_t acs,
                                         ptrdiff_t R, const TYPE *b,
                                         ptrdiff_t ldb, TYPE *const *cr,
                                         ptrdiff_t q0, ptrdiff_t m,
                                         ptrdiff_t qn)
{
    TYPE acc0[LC_QB], acc1[LC_QB], acc2[LC_QB], acc3[LC_QB];
    const TYPE *a0p = ar[0], *a1p = ar[1], *a2p = ar[2], *a3p = ar[3];
    for (ptrdiff_t q = 0; q < LC_QB; ++q) {
        acc0[q] = 0;
        acc1[q] = 0;
        acc2[q] = 0;
        acc3[q] = 0;
    }
    for (ptrdiff_t r = 0; r < R; ++r) {
        const TYPE a0 = a0p[r * acs], a1 = a1p[r * acs];
        const TYPE a2 = a2p[r * acs], a3 = a3p[r * acs];
        const TYPE *restrict br = b + r * ldb + q0;
        for (ptrdiff_t q = 0; q < qn; ++q) {
            const TYPE bq = br[q];
            acc0[q] += a0 * bq;
            acc1[q] += a1 * bq;
            acc2[q] += a2 * bq;
            acc3[q] += a3 * bq;
        }
    }
    const TYPE *acc[LC_MR] = {acc0, acc1, acc2, acc3};
    for (ptrdiff_t i = 0; i < m; ++i) {
        TYPE *restrict c = cr[i] + q0;
        for (ptrdiff_t q = 0; q < qn; ++q) c[q] += acc[i][q];
    }
}

/* C (M x Q) += A (M x R) @ B (R x Q), A and C addressed by rows:
 *   A[i, r] = a[(arow ? arow[i] : i*lda) + r*acs]
 *   B[r, q] = b[r*ldb + q]
 *   C[i, q] = c[(crow ? crow[i] : i*ldc) + q]
 * The row tables make rows of A and C the taps of a window in xt / gxt. */
FC_ALWAYS_INLINE void CAT(lc_gemm_, TYPE)(ptrdiff_t M, ptrdiff_t Q,
                                         ptrdiff_t R, const TYPE *a,
                                         ptrdiff_t lda, const ptrdiff_t *arow,
                                         ptrdiff_t acs, const TYPE *b,
                                         ptrdiff_t ldb, TYPE *c, ptrdiff_t ldc,
                                         const ptrdiff_t *crow)
{
    for (ptrdiff_t i0 = 0; i0 < M; i0 += LC_MR) {
        const ptrdiff_t m = fc_min(LC_MR, M - i0);
        const TYPE *ar[LC_MR];
        TYPE *cr[LC_MR];
        for (ptrdiff_t i = 0; i < LC_MR; ++i) {
            const ptrdiff_t row = i0 + (i < m ? i : 0);
            ar[i] = a + (arow ? arow[row] : row * lda);
            cr[i] = c + (crow ? crow[row] : row * ldc);
        }
        ptrdiff_t q0 = 0;
        for (; q0 + LC_QB <= Q; q0 += LC_QB)
            CAT(lc_tile_, TYPE)(ar, acs, R, b, ldb, cr, q0, m, LC_QB);
        if (q0 < Q)
            CAT(lc_tile_, TYPE)(ar, acs, R, b, ldb, cr, q0, m, Q - q0);
    }
}

void CAT(fc_lc_pack_row_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                                ptrdiff_t N, ptrdiff_t row, TYPE *restrict xt)
{
    fc_geom gp;
    fc_lc_padded_geom(g, &gp);
    const ptrdiff_t c = row / gp.H, h = row - c * gp.H - g->pt;
    TYPE *restrict dst = xt + row * gp.W * N;
    if (h < 0 || h >= g->H) {
        for (ptrdiff_t e = 0; e < gp.W * N; ++e) dst[e] = 0;
        return;
    }
    for (ptrdiff_t e = 0; e < g->pl * N; ++e) dst[e] = 0;
    for (ptrdiff_t e = (g->pl + g->W) * N; e < gp.W * N; ++e) dst[e] = 0;
    for (ptrdiff_t n = 0; n < N; ++n) {
        const TYPE *restrict src = x + ((n * g->C + c) * g->H + h) * g->W;
        TYPE *restrict d = dst + g->pl * N + n;
        for (ptrdiff_t w = 0; w < g->W; ++w) d[w * N] = src[w];
    }
}

void CAT(fc_lc_unpack_row_, TYPE)(const TYPE *restrict xt, const fc_geom *g,
                                  ptrdiff_t N, ptrdiff_t row,
                                  TYPE *restrict x)
{
    fc_geom gp;
    fc_lc_padded_geom(g, &gp);
    const ptrdiff_t c = row / g->H, h = row - c * g->H;
    const TYPE *restrict src = xt + ((c * gp.H + h + g->pt) * gp.W + g->pl) * N;
    for (ptrdiff_t n = 0; n < N; ++n) {
        TYPE *restrict d = x + ((n * g->C + c) * g->H + h) * g->W;
        for (ptrdiff_t w = 0; w < g->W; ++w) d[w] = src[w * N + n];
    }
}

FC_CLONES void CAT(fc_lc_forward_, TYPE)(const TYPE *restrict xt,
                                         const fc_geom *gp,
                                         const ptrdiff_t *xoff, ptrdiff_t N,
                                         const TYPE *restrict w,
                                         const TYPE *restrict bias, ptrdiff_t F,
                                         ptrdiff_t l0, ptrdiff_t l1,
                                         TYPE *restrict work, TYPE *restrict y)
{
    const ptrdiff_t K = gp->C * gp->kh * gp->kw, L = gp->Ho * gp->Wo;
    const ptrdiff_t NB = fc_min(N, LC_NB);
    TYPE *restrict pt = work;                 /* P^T of an image block, K x nb */
    TYPE *restrict yt = pt + K * NB;          /* Y^T, F x nb */
    for (ptrdiff_t l = l0; l < l1; ++l) {
        const ptrdiff_t oh = l / gp->Wo, ow = l - oh * gp->Wo;
        const TYPE *restrict win = xt + (oh * gp->sh * gp->W + ow * gp->sw) * N;
        const TYPE *wl = w + l * K * F;
        for (ptrdiff_t n0 = 0; n0 < N; n0 += LC_NB) {
            const ptrdiff_t nb = fc_min(LC_NB, N - n0);
            /* the window's rows of xt, packed: xt's 4 KiB-multiple strides
             * would otherwise make the product's re-reads miss L1 */
            for (ptrdiff_t k = 0; k < K; ++k) {
                const TYPE *restrict src = win + xoff[k] + n0;
                TYPE *restrict dst = pt + k * nb;
                for (ptrdiff_t i = 0; i < nb; ++i) dst[i] = src[i];
            }
            for (ptrdiff_t f = 0; f < F; ++f) {
                const TYPE b0 = bias ? bias[f * L + l] : 0;
                for (ptrdiff_t i = 0; i < nb; ++i) yt[f * nb + i] = b0;
            }
            /* Y^T += W[l]^T @ P^T: row f of W[l]^T at wl + f, F apart */
            CAT(lc_gemm_, TYPE)(F, nb, K, wl, 1, NULL, F, pt, nb, yt, nb,
                                NULL);
            for (ptrdiff_t i = 0; i < nb; ++i)
                for (ptrdiff_t f = 0; f < F; ++f)
                    y[((n0 + i) * F + f) * L + l] = yt[f * nb + i];
        }
    }
}

FC_CLONES void CAT(fc_lc_backward_, TYPE)(const TYPE *restrict gy,
                                          const TYPE *restrict xt,
                                          const fc_geom *gp,
                                          const ptrdiff_t *xoff, ptrdiff_t N,
                                          const TYPE *restrict w, ptrdiff_t F,
                                          ptrdiff_t l0, ptrdiff_t l1,
                                          TYPE *restrict work,
                                          TYPE *restrict gxt,
                                          TYPE *restrict gw,
                                          TYPE *restrict gb)
{
    const ptrdiff_t K = gp->C * gp->kh * gp->kw, L = gp->Ho * gp->Wo;
    const ptrdiff_t NB = fc_min(N, LC_NB);
    TYPE *restrict g = work;                  /* grad_out at l, nb x F */
    TYPE *restrict gt = g + NB * F;           /* its transpose, F x nb */
    for (ptrdiff_t l = l0; l < l1; ++l) {
        const ptrdiff_t oh = l / gp->Wo, ow = l - oh * gp->Wo;
        const ptrdiff_t base = (oh * gp->sh * gp->W + ow * gp->sw) * N;
        const TYPE *wl = w + l * K * F;
        TYPE *gwl = gw + l * K * F;
        for (ptrdiff_t e = 0; e < K * F; ++e) gwl[e] = 0;
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
            /* W'[l] (K x F) += P^T (rows of xt) @ G */
            CAT(lc_gemm_, TYPE)(K, F, nb, xt + base + n0, 0, xoff, 1,
                                g, F, gwl, F, NULL);
            /* rows of gxt += W[l] @ G^T */
            CAT(lc_gemm_, TYPE)(K, nb, F, wl, F, NULL, 1, gt, nb,
                                gxt + base + n0, 0, xoff);
        }
    }
}
