/* Winograd F(2x2, 3x3) convolution, written once on TYPE (see winograd.c).
 * Documented in fastconv.h.
 *
 * A 2x2 block of outputs (a "tile") needs a 4x4 patch d of the padded input
 * per channel.  With the transforms of Lavin and Gray (2015),
 *   V = B^T d B,   U = G g G^T,   Y = A^T M A,   M[xi] = sum_c U[xi] V[xi],
 * the 16 positions xi of the 4x4 transformed domain are 16 independent
 * matrix products M_xi (F x tiles) = U_xi (F x C) @ V_xi (C x tiles): 16*C
 * multiplications per filter and tile, where the direct sum takes 36*C
 * (2.25x fewer).  They run on the GEMM micro-kernels: U is packed once per
 * call into MR-row panels, V is written by the input transform straight
 * into NR-wide panels for a block of tiles (blocks run over the whole
 * batch, so small images still fill the panels), and the output transform
 * reads M back.  Each output sums its channels in order, in one place:
 * results do not depend on the thread count. */


/* Tiles per block: two panels of the micro-kernel's width. */
static ptrdiff_t CAT(wino_block_, TYPE)(void) { return 2 * UK->nr; }

ptrdiff_t CAT(fc_wino_packed_weights_size_, TYPE)(ptrdiff_t F, ptrdiff_t C)
{
    const ptrdiff_t mr = UK->mr;
    return 16 * ((F + mr - 1) / mr * mr) * C;
}

void CAT(fc_wino_pack_weights_, TYPE)(const TYPE *restrict w, ptrdiff_t F,
                                      ptrdiff_t C, ptrdiff_t panel,
                                      TYPE *restrict packed)
{
    enum { R = 8 };                             /* lanes: every kernel's mr <= 8 */
    const ptrdiff_t mr = UK->mr, Fp = (F + mr - 1) / mr * mr, f0 = panel * mr;
    const ptrdiff_t m = fc_min(mr, F - f0);
    /* channel by channel, the panel's filters side by side in R lanes (the
     * arithmetic vectorises); the 16 U_xi are written as 16 sequential
     * streams of mr values */
    for (ptrdiff_t c = 0; c < C; ++c) {
        TYPE g[9][R], t[4][3][R], u[16][R];
        for (int k = 0; k < 9; ++k)
            for (ptrdiff_t r = 0; r < R; ++r)
                g[k][r] = r < m ? w[((f0 + r) * C + c) * 9 + k] : 0;
        for (int j = 0; j < 3; ++j)             /* G g */
            for (int r = 0; r < R; ++r) {
                t[0][j][r] = g[j][r];
                t[1][j][r] = (TYPE)0.5 * (g[j][r] + g[3 + j][r] + g[6 + j][r]);
                t[2][j][r] = (TYPE)0.5 * (g[j][r] - g[3 + j][r] + g[6 + j][r]);
                t[3][j][r] = g[6 + j][r];
            }
        for (int i = 0; i < 4; ++i)             /* (G g) G^T */
            for (int r = 0; r < R; ++r) {
                u[4 * i][r] = t[i][0][r];
                u[4 * i + 1][r] = (TYPE)0.5 * (t[i][0][r] + t[i][1][r] + t[i][2][r]);
                u[4 * i + 2][r] = (TYPE)0.5 * (t[i][0][r] - t[i][1][r] + t[i][2][r]);
                u[4 * i + 3][r] = t[i][2][r];
            }
        /* U_xi packed as the GEMM packs filters: MR-row panels, c-major */
        for (int xi = 0; xi < 16; ++xi)
            for (ptrdiff_t r = 0; r < mr; ++r)
                packed[xi * Fp * C + f0 * C + c * mr + r] = u[xi][r];
    }
}

ptrdiff_t CAT(fc_wino_tiles_, TYPE)(const fc_geom *g, ptrdiff_t N)
{
    const ptrdiff_t tiles = N * ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2);
    const ptrdiff_t tb = CAT(wino_block_, TYPE)();
    return (tiles + tb - 1) / tb;
}

ptrdiff_t CAT(fc_wino_work_size_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    /* V, then M (which holds the gathered patches, B^T d and four padded
     * input rows until the products run) */
    const ptrdiff_t tb = CAT(wino_block_, TYPE)();
    return 16 * g->C * tb + fc_max(16 * F * tb, 32 * tb + 4 * (2 * tb + 2));
}

/* One row step of B^T (.) over n lanes: (a - c, b + c, c - b, b - d).
 * A function of its own so that restrict holds and the loop vectorises. */
FC_ALWAYS_INLINE void CAT(wino_bt_, TYPE)(const TYPE *restrict a,
                                          const TYPE *restrict b,
                                          const TYPE *restrict c,
                                          const TYPE *restrict d,
                                          ptrdiff_t n, TYPE *restrict o0,
                                          TYPE *restrict o1, TYPE *restrict o2,
                                          TYPE *restrict o3)
{
    for (ptrdiff_t q = 0; q < n; ++q) {
        o0[q] = a[q] - c[q];
        o1[q] = b[q] + c[q];
        o2[q] = c[q] - b[q];
        o3[q] = b[q] - d[q];
    }
}

/* Row i of Y = A^T M A over n lanes, from rows r0 = M[i'], r1, r2 of M
 * (s = 1: rows 0 + 1 + 2; s = -1: rows 1 - 2 - 3), xs apart per column. */
FC_ALWAYS_INLINE void CAT(wino_at_, TYPE)(const TYPE *restrict r0,
                                          const TYPE *restrict r1,
                                          const TYPE *restrict r2, TYPE s,
                                          ptrdiff_t xs, ptrdiff_t n, TYPE bias,
                                          TYPE *restrict o0, TYPE *restrict o1)
{
    for (ptrdiff_t q = 0; q < n; ++q) {
        TYPE t[4];
        for (int j = 0; j < 4; ++j)
            t[j] = r0[j * xs + q] + s * (r1[j * xs + q] + r2[j * xs + q]);
        o0[q] = bias + (t[0] + t[1] + t[2]);
        o1[q] = bias + (t[1] - t[2] - t[3]);
    }
}

/* dst[q] = src[2q] (a tap of the patches of a tile row) */
FC_ALWAYS_INLINE void CAT(wino_even_, TYPE)(const TYPE *restrict src, ptrdiff_t n,
                                            TYPE *restrict dst)
{
    for (ptrdiff_t q = 0; q < n; ++q) dst[q] = src[2 * q];
}

/* row[2q] = a[q], row[2q + 1] = b[q] (an output row of n tiles) */
FC_ALWAYS_INLINE void CAT(wino_interleave_, TYPE)(const TYPE *restrict a,
                                                  const TYPE *restrict b,
                                                  ptrdiff_t n, TYPE *restrict row)
{
    for (ptrdiff_t q = 0; q < n; ++q) {
        row[2 * q] = a[q];
        row[2 * q + 1] = b[q];
    }
}

FC_CLONES int CAT(fc_conv2d_wino_tile_, TYPE)(const TYPE *restrict x,
                                              ptrdiff_t x_stride, ptrdiff_t N,
                                              const fc_geom *g,
                                              const TYPE *restrict upack,
                                              ptrdiff_t F,
                                              const TYPE *restrict bias,
                                              ptrdiff_t block,
                                              TYPE *restrict work,
                                              TYPE *restrict y,
                                              ptrdiff_t y_stride)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr, tb = CAT(wino_block_, TYPE)();
    const ptrdiff_t C = g->C, H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
    const ptrdiff_t tw = (Wo + 1) / 2, T = ((Ho + 1) / 2) * tw;  /* per image */
    const ptrdiff_t t0 = block * tb, n = fc_min(tb, N * T - t0);
    const ptrdiff_t panels = (n + nr - 1) / nr, Fp = (F + mr - 1) / mr * mr;
    const ptrdiff_t kb = fc_min(C, FC_GEMM_KC);
    TYPE *restrict v = work;                    /* 16 x (C x panels*nr) */
    TYPE *restrict m = work + 16 * C * tb;      /* 16 x (F x tb) */

    /* input transform, one channel at a time: the block's 4x4 patches are
     * gathered into d (16 rows of n), a tile row at a time from four
     * zero-padded input rows, then V = B^T d B is computed along the rows
     * (vector code) and written to each V_xi's NR-wide panels, where the
     * tiles of a panel are contiguous */
    TYPE *restrict d = m;                       /* 16 x tb, free until the products */
    TYPE *restrict e = m + 16 * tb;             /* B^T d */
    TYPE *restrict rows = m + 32 * tb;          /* 4 padded rows of 2*tb + 2 */
    const ptrdiff_t np = panels * nr, vs = C * np, rl = 2 * tb + 2;
    for (ptrdiff_t c = 0; c < C; ++c) {
        for (ptrdiff_t qa = 0; qa < n;) {
            const ptrdiff_t t = t0 + qa, img = t / T, tl = t - img * T;
            const ptrdiff_t th = tl / tw, tw0 = tl - th * tw;
            const TYPE *restrict plane = x + img * x_stride + c * H * W;
            const ptrdiff_t len = fc_min(n - qa, tw - tw0);   /* one tile row */
            const ptrdiff_t w0 = 2 * tw0 - g->pl, span = 2 * len + 2;
            for (int i = 0; i < 4; ++i) {
                const ptrdiff_t ih = 2 * th - g->pt + i;
                TYPE *restrict r = rows + i * rl;
                if (ih < 0 || ih >= H) {
                    for (ptrdiff_t u = 0; u < span; ++u) r[u] = 0;
                    continue;
                }
                ptrdiff_t lo, hi;               /* u with 0 <= w0 + u < W */
                fc_valid_range(w0, 1, W, span, &lo, &hi);
                const TYPE *restrict src = plane + ih * W + w0;
                for (ptrdiff_t u = 0; u < lo; ++u) r[u] = 0;
                for (ptrdiff_t u = lo; u < hi; ++u) r[u] = src[u];
                for (ptrdiff_t u = hi; u < span; ++u) r[u] = 0;
            }
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j)
                    CAT(wino_even_, TYPE)(rows + i * rl + j, len,
                                          d + (4 * i + j) * tb + qa);
            qa += len;
        }
        for (int ij = 0; ij < 16; ++ij)
            for (ptrdiff_t q = n; q < np; ++q) d[ij * tb + q] = 0;
        for (int j = 0; j < 4; ++j)             /* rows of B^T d */
            CAT(wino_bt_, TYPE)(d + j * tb, d + (4 + j) * tb, d + (8 + j) * tb,
                                d + (12 + j) * tb, np, e + j * tb, e + (4 + j) * tb,
                                e + (8 + j) * tb, e + (12 + j) * tb);
        for (int i = 0; i < 4; ++i)             /* (B^T d) B, into the panels */
            for (ptrdiff_t p = 0; p < panels; ++p) {
                const TYPE *restrict r0 = e + (4 * i) * tb + p * nr;
                TYPE *restrict v0 = v + (4 * i) * vs + p * C * nr + c * nr;
                CAT(wino_bt_, TYPE)(r0, r0 + tb, r0 + 2 * tb, r0 + 3 * tb, nr,
                                    v0, v0 + vs, v0 + 2 * vs, v0 + 3 * vs);
            }
    }

    /* the 16 products M_xi (F x n) = U_xi (F x C) @ V_xi (C x n) */
    for (int xi = 0; xi < 16; ++xi) {
        const TYPE *restrict u = upack + xi * Fp * C;
        const TYPE *restrict vx = v + xi * C * panels * nr;
        TYPE *restrict mx = m + xi * F * tb;
        for (ptrdiff_t k0 = 0; k0 < C; k0 += kb) {
            const ptrdiff_t kc = fc_min(kb, C - k0);
            for (ptrdiff_t p = 0; p < panels; ++p) {
                const ptrdiff_t nq = fc_min(nr, n - p * nr);
                for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
                    UK_RUN(nq)(kc, u + f0 * C + k0 * mr, vx + p * C * nr + k0 * nr,
                               mx + f0 * tb + p * nr, tb, fc_min(mr, F - f0), nq,
                               k0 > 0, NULL);
            }
        }
    }

    /* output transform, one filter at a time: Y = A^T M A along the rows of
     * M (vector code), plus the bias, then the real outputs to y */
    TYPE *restrict o = work;                    /* 4 x tb: y00, y01, y10, y11 */
    const ptrdiff_t xs = F * tb;                /* M_xi to M_xi+1 */
    for (ptrdiff_t f = 0; f < F; ++f) {
        const TYPE b = bias[f];
        for (int i = 0; i < 2; ++i) {
            const TYPE *restrict r0 = m + f * tb + (4 * i) * xs;
            CAT(wino_at_, TYPE)(r0, r0 + 4 * xs, r0 + 8 * xs, i == 0 ? 1 : -1, xs, n,
                                b, o + (2 * i) * tb, o + (2 * i + 1) * tb);
        }
        for (ptrdiff_t qa = 0; qa < n;) {       /* a tile row at a time */
            const ptrdiff_t t = t0 + qa, img = t / T, tl = t - img * T;
            const ptrdiff_t th = tl / tw, tw0 = tl - th * tw;
            TYPE *restrict yf = y + img * y_stride + f * Ho * Wo;
            const ptrdiff_t len = fc_min(n - qa, tw - tw0);
            for (int i = 0; i < 2 && 2 * th + i < Ho; ++i) {
                TYPE *restrict row = yf + (2 * th + i) * Wo + 2 * tw0;
                const TYPE *restrict a0 = o + (2 * i) * tb + qa, *restrict a1 = a0 + tb;
                const ptrdiff_t full = fc_min(len, (Wo - 2 * tw0) / 2);
                CAT(wino_interleave_, TYPE)(a0, a1, full, row);
                if (full < len) row[2 * full] = a0[full];   /* odd Wo: last column */
            }
            qa += len;
        }
    }
    return FC_OK;
}

