/* One dot-product micro-kernel, instantiated by ukernel.c for each (ISA,
 * type):
 *
 *   C[r, q] += sum_{l < n} X[r, l] * Y[q, l]      r < m <= DMR, q < nq <= DNR
 *
 * with X and Y rows contiguous along l (row strides ldx, ldy).  grad_weight
 * is such a product, of output-gradient rows and im2col rows, so neither
 * operand needs transposing.  Each (r, q) sums its vector lanes in a fixed
 * order, then the scalar tail: the result does not depend on tiling or on
 * the thread count.  Parameters (macros): DOT_NAME, UK_TARGET, TYPE, DMR,
 * DNR, VL, VEC, VZERO, VLOAD, VFMA, VREDUCE (sum of the lanes). */

UK_TARGET static void DOT_NAME(ptrdiff_t n, const TYPE *restrict x,
                               ptrdiff_t ldx, const TYPE *restrict y,
                               ptrdiff_t ldy, TYPE *restrict c, ptrdiff_t ldc,
                               ptrdiff_t m, ptrdiff_t nq)
{
    const TYPE *xr[DMR], *yr[DNR];
    for (int r = 0; r < DMR; ++r) xr[r] = x + (r < m ? r : 0) * ldx;
    for (int q = 0; q < DNR; ++q) yr[q] = y + (q < nq ? q : 0) * ldy;
    VEC acc[DMR][DNR];
#pragma GCC unroll 8
    for (int r = 0; r < DMR; ++r)
#pragma GCC unroll 8
        for (int q = 0; q < DNR; ++q) acc[r][q] = VZERO();
    const ptrdiff_t nv = n - n % VL;
    for (ptrdiff_t l = 0; l < nv; l += VL) {
        VEC xv[DMR], yv[DNR];
#pragma GCC unroll 8
        for (int r = 0; r < DMR; ++r) xv[r] = VLOAD(xr[r] + l);
#pragma GCC unroll 8
        for (int q = 0; q < DNR; ++q) yv[q] = VLOAD(yr[q] + l);
#pragma GCC unroll 8
        for (int r = 0; r < DMR; ++r)
#pragma GCC unroll 8
            for (int q = 0; q < DNR; ++q) acc[r][q] = VFMA(xv[r], yv[q], acc[r][q]);
    }
    for (ptrdiff_t r = 0; r < m; ++r) {
        for (ptrdiff_t q = 0; q < nq; ++q) {
            TYPE s = VREDUCE(acc[r][q]);
            for (ptrdiff_t l = nv; l < n; ++l) s += xr[r][l] * yr[q][l];
            c[r * ldc + q] += s;
        }
    }
}
