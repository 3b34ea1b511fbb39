/* Matrix products of the fully connected layer on the GEMM micro-kernels,
 * written once on TYPE (see linear.c).  Documented in fastconv.h.
 *
 * C (M x Ncols) = [C +] A (M x Kd) @ B (Kd x Ncols): A is packed once per
 * call into MR-row panels (k-major), and each work item is one NR-wide
 * column panel of C: its B panel is packed a K block at a time (KC x NR,
 * in L1) and every A panel streams past it.  Every C element sums its k in
 * order, whatever the thread count. */

ptrdiff_t CAT(fc_matmul_packed_a_size_, TYPE)(ptrdiff_t M, ptrdiff_t Kd)
{
    const ptrdiff_t mr = UK->mr;
    return (M + mr - 1) / mr * mr * Kd;
}

ptrdiff_t CAT(fc_matmul_panels_, TYPE)(ptrdiff_t M, ptrdiff_t Ncols)
{
    (void)M;
    return (Ncols + UK->nr - 1) / UK->nr;
}

ptrdiff_t CAT(fc_matmul_work_size_, TYPE)(void)
{
    return FC_GEMM_KC * UK->nr;
}

void CAT(fc_matmul_pack_a_, TYPE)(const TYPE *restrict a, ptrdiff_t lda,
                                  int at, ptrdiff_t M, ptrdiff_t Kd,
                                  ptrdiff_t panel, TYPE *restrict packed)
{
    const ptrdiff_t mr = UK->mr, i0 = panel * mr, m = fc_min(mr, M - i0);
    TYPE *restrict dst = packed + i0 * Kd;
    if (!at) {                  /* rows of A: transpose into the panel */
        UK->pack_t(a + i0 * lda, lda, NULL, m, Kd, mr, 0, dst);
        return;
    }
    for (ptrdiff_t k = 0; k < Kd; ++k, dst += mr) {   /* columns of A^T */
        const TYPE *restrict src = a + k * lda + i0;
        for (ptrdiff_t r = 0; r < m; ++r) dst[r] = src[r];
        for (ptrdiff_t r = m; r < mr; ++r) dst[r] = 0;
    }
}

FC_CLONES void CAT(fc_matmul_panel_, TYPE)(const TYPE *restrict apack,
                                           ptrdiff_t M, ptrdiff_t Kd,
                                           const TYPE *restrict b,
                                           ptrdiff_t ldb, int bt,
                                           ptrdiff_t Ncols,
                                           const TYPE *restrict bias, int relu,
                                           int accumulate, ptrdiff_t panel,
                                           TYPE *restrict work,
                                           TYPE *restrict c, ptrdiff_t ldc)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr, j0 = panel * nr;
    const ptrdiff_t nq = fc_min(nr, Ncols - j0);
    if (bias)                   /* the bias starts every row's sums */
        for (ptrdiff_t i = 0; i < M; ++i)
            for (ptrdiff_t q = 0; q < nq; ++q) c[i * ldc + j0 + q] = bias[j0 + q];
    else if (Kd == 0 && !accumulate)    /* an empty sum: no product writes C */
        for (ptrdiff_t i = 0; i < M; ++i)
            for (ptrdiff_t q = 0; q < nq; ++q) c[i * ldc + j0 + q] = 0;
    for (ptrdiff_t k0 = 0; k0 < Kd; k0 += FC_GEMM_KC) {
        const ptrdiff_t kc = fc_min(FC_GEMM_KC, Kd - k0);
        if (bt) {               /* B^T given: rows of B^T are B's columns */
            UK->pack_t(b + j0 * ldb + k0, ldb, NULL, nq, kc, nr, 0, work);
        } else {
            for (ptrdiff_t k = 0; k < kc; ++k) {
                const TYPE *restrict src = b + (k0 + k) * ldb + j0;
                TYPE *restrict dst = work + k * nr;
                for (ptrdiff_t q = 0; q < nq; ++q) dst[q] = src[q];
                for (ptrdiff_t q = nq; q < nr; ++q) dst[q] = 0;
            }
        }
        const int acc = bias != NULL || accumulate || k0 > 0;
        for (ptrdiff_t i0 = 0; i0 < M; i0 += mr)
            UK_RUN(nq)(kc, apack + i0 * Kd + k0 * mr, work, c + i0 * ldc + j0,
                       ldc, fc_min(mr, M - i0), nq, acc, NULL);
    }
    if (relu)
        for (ptrdiff_t i = 0; i < M; ++i) {
            TYPE *restrict row = c + i * ldc + j0;
            for (ptrdiff_t q = 0; q < nq; ++q) row[q] = row[q] < 0 ? (TYPE)0 : row[q];
        }
}
