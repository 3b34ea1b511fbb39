/* Convolution as a packed GEMM with im2col fused into the packing, written
 * once on TYPE (see gemm.c).  Documented in fastconv.h.
 *
 * For one image, one group and a tile of output positions [l0, l1):
 *   Y (F x n) = bias + Wp (F x K) @ B (K x n),  B = im2col columns l0..l1.
 * B is never formed as a whole: K is walked in blocks of KC, and for each
 * block its rows are unfolded into a short buffer and cut into NR-wide
 * panels (k-major) in the workspace (L2-sized).  Each kc x NR panel then
 * stays in L1 while the micro-kernel streams the weights (packed once per
 * call into MR-row panels) past it. */

#define UK CAT(fc_uk_, TYPE)

ptrdiff_t CAT(fc_gemm_packed_weights_size_, TYPE)(ptrdiff_t F, ptrdiff_t K)
{
    const ptrdiff_t mr = UK->mr;
    return (F + mr - 1) / mr * mr * K;
}

void CAT(fc_gemm_pack_weights_, TYPE)(const TYPE *restrict w, ptrdiff_t F,
                                      ptrdiff_t K, TYPE *restrict packed)
{
    const ptrdiff_t mr = UK->mr;
    for (ptrdiff_t f0 = 0; f0 < F; f0 += mr) {
        const ptrdiff_t m = fc_min(mr, F - f0);
        for (ptrdiff_t k = 0; k < K; ++k, packed += mr) {
            for (ptrdiff_t r = 0; r < m; ++r) packed[r] = w[(f0 + r) * K + k];
            for (ptrdiff_t r = m; r < mr; ++r) packed[r] = 0;
        }
    }
}

ptrdiff_t CAT(fc_gemm_tile_cols_, TYPE)(void)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t n = FC_GEMM_B_BYTES / ((ptrdiff_t)sizeof(TYPE) * FC_GEMM_KC);
    return fc_max(nr, n / nr * nr);
}

ptrdiff_t CAT(fc_gemm_work_size_, TYPE)(void)
{
    const ptrdiff_t nc = CAT(fc_gemm_tile_cols_, TYPE)();
    return FC_GEMM_KC * nc + nc;     /* packed B block + one unfolded row */
}

int CAT(fc_conv2d_gemm_tile_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                                    const TYPE *restrict wpack, ptrdiff_t F,
                                    const TYPE *restrict bias, ptrdiff_t l0,
                                    ptrdiff_t l1, TYPE *restrict work,
                                    TYPE *restrict y)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr;
    const ptrdiff_t KK = g->kh * g->kw, K = g->C * KK, L = g->Ho * g->Wo;
    const ptrdiff_t n = l1 - l0, panels = (n + nr - 1) / nr;
    TYPE *restrict bpack = work;
    TYPE *restrict row = work + FC_GEMM_KC * CAT(fc_gemm_tile_cols_, TYPE)();

    /* K blocks of equal size, at most FC_GEMM_KC */
    const ptrdiff_t kblocks = (K + FC_GEMM_KC - 1) / FC_GEMM_KC;
    const ptrdiff_t kb = (K + kblocks - 1) / kblocks;
    for (ptrdiff_t k0 = 0; k0 < K; k0 += kb) {
        const ptrdiff_t kc = fc_min(kb, K - k0);
        /* Pack rows k0..k0+kc of B: panel p holds columns [p*nr, p*nr + nr)
         * as kc rows of nr, zero-padded past n. */
        for (ptrdiff_t k = k0; k < k0 + kc; ++k) {
            const ptrdiff_t c = k / KK, i = (k - c * KK) / g->kw;
            const ptrdiff_t j = k - c * KK - i * g->kw;
            CAT(im2col_row_, TYPE)(x + c * g->H * g->W, g, i, j, l0, l1, row);
            for (ptrdiff_t q = n; q < panels * nr; ++q) row[q] = 0;
            for (ptrdiff_t p = 0; p < panels; ++p)
                memcpy(bpack + (p * kc + k - k0) * nr, row + p * nr,
                       (size_t)nr * sizeof(TYPE));
        }
        /* Each kc x nr panel of B stays in L1 while the filter panels pass. */
        for (ptrdiff_t p = 0; p < panels; ++p) {
            const ptrdiff_t q0 = p * nr, nq = fc_min(nr, n - q0);
            const int narrow = nq <= UK->nr_narrow;
            for (ptrdiff_t f0 = 0; f0 < F; f0 += mr) {
                (narrow ? UK->run_narrow : UK->run)(
                    kc, wpack + f0 * K + k0 * mr, bpack + p * kc * nr,
                    y + f0 * L + l0 + q0, L, fc_min(mr, F - f0), nq, k0 > 0,
                    bias + f0);
            }
        }
    }
    return FC_OK;
}

#undef UK
