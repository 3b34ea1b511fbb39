/* One GEMM micro-kernel, instantiated by ukernel.c for each (ISA, type):
 *
 *   C[r, q] = (accumulate ? C[r, q] : bias[r]) + sum_k A[k, r] * B[k, q]
 *
 * (bias NULL: 0)
 *
 * for r < m <= MR rows and q < n <= NR columns, where A is a packed panel of
 * kc x MR (k-major) and B a packed panel of kc x NR.  The MR x NR accumulators
 * live in registers; k runs in order, so a given output element is summed in
 * the same order wherever its tile falls (results do not depend on tiling or
 * thread count).  Parameters (macros): UK_NAME, UK_TARGET, TYPE, MR, NV
 * (vectors per row), VL (lanes per vector), VEC, VZERO, VLOAD, VSTORE, VSET1,
 * VFMA(a, b, c) = a*b + c, VADD, and optionally UK_LDB, the row stride of B
 * (default NR). */

#define NR (NV * VL)
#ifndef UK_LDB
#define UK_LDB NR       /* B row stride; a narrow kernel reads a wider panel */
#endif

/* Row k of B is b + k * ldb (a packed panel: ldb = UK_LDB), or brow[k] +
 * boff when rows is set (the rows read in place, e.g. off a
 * zero-padded slab: no packing); A[k, r] is a[k * MR + r] (a_mode 0: a
 * packed panel), a[r * lda + k] (1: rows of A read in place, lda apart:
 * Winograd's transformed tiles) or a[k * lda + r] (2: columns read in
 * place).  Each caller passes constants for rows and a_mode, so every form
 * compiles to its own loop. */
FC_ALWAYS_INLINE UK_TARGET void CAT(UK_NAME, _body)(
    ptrdiff_t kc, const TYPE *restrict a, int a_mode, ptrdiff_t lda,
    const TYPE *restrict b, ptrdiff_t ldb, int rows,
    const TYPE *const *restrict brow, ptrdiff_t boff, TYPE *restrict c,
    ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, int accumulate,
    const TYPE *restrict bias)
{
    VEC acc[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = VZERO();

#pragma GCC unroll 2
    for (ptrdiff_t k = 0; k < kc; ++k) {
        VEC bv[NV];
        const TYPE *restrict bk = rows ? brow[k] + boff : b + k * ldb;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = VLOAD(bk + v * VL);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
            const VEC ar = VSET1(a_mode == 1 ? a[r * lda + k]
                                 : a_mode == 2 ? a[k * lda + r] : a[k * MR + r]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] = VFMA(ar, bv[v], acc[r][v]);
        }
    }

    if (m == MR && n == NR) {
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
            TYPE *restrict cr = c + r * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                const VEC base = accumulate ? VLOAD(cr + v * VL)
                               : bias ? VSET1(bias[r]) : VZERO();
                VSTORE(cr + v * VL, VADD(base, acc[r][v]));
            }
        }
    } else {                    /* edge tile: spill, then copy what is valid */
        TYPE tmp[MR * NR];
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) VSTORE(tmp + r * NR + v * VL, acc[r][v]);
        for (ptrdiff_t r = 0; r < m; ++r) {
            TYPE *restrict cr = c + r * ldc;
            for (ptrdiff_t q = 0; q < n; ++q)
                cr[q] = (accumulate ? cr[q] : bias ? bias[r] : 0) + tmp[r * NR + q];
        }
    }
}

UK_TARGET static void UK_NAME(ptrdiff_t kc, const TYPE *restrict a,
                              const TYPE *restrict b, TYPE *restrict c,
                              ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                              int accumulate, const TYPE *restrict bias)
{
    CAT(UK_NAME, _body)(kc, a, 0, 0, b, UK_LDB, 0, NULL, 0, c, ldc, m, n, accumulate,
                        bias);
}

UK_TARGET static void CAT(UK_NAME, _rows)(ptrdiff_t kc, const TYPE *restrict a,
                                          const TYPE *const *restrict brow,
                                          ptrdiff_t boff, TYPE *restrict c,
                                          ptrdiff_t ldc, ptrdiff_t m,
                                          ptrdiff_t n, int accumulate,
                                          const TYPE *restrict bias)
{
    CAT(UK_NAME, _body)(kc, a, 0, 0, NULL, 0, 1, brow, boff, c, ldc, m, n, accumulate,
                        bias);
}

UK_TARGET static void CAT(UK_NAME, _at)(ptrdiff_t kc, const TYPE *restrict a,
                                        ptrdiff_t lda, const TYPE *restrict b,
                                        ptrdiff_t ldb, TYPE *restrict c,
                                        ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                                        int accumulate, const TYPE *restrict bias)
{
    CAT(UK_NAME, _body)(kc, a, 1, lda, b, ldb, 0, NULL, 0, c, ldc, m, n, accumulate,
                        bias);
}

UK_TARGET static void CAT(UK_NAME, _kn)(ptrdiff_t kc, const TYPE *restrict a,
                                        ptrdiff_t lda, const TYPE *restrict b,
                                        ptrdiff_t ldb, TYPE *restrict c,
                                        ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                                        int accumulate, const TYPE *restrict bias)
{
    CAT(UK_NAME, _body)(kc, a, 2, lda, b, ldb, 0, NULL, 0, c, ldc, m, n, accumulate,
                        bias);
}

#undef NR
#undef UK_LDB
