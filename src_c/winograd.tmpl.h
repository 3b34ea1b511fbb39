/* Winograd F(m x m, 3x3) convolution, m = 2 or 4, written once on TYPE (see
 * winograd.c).  Documented in fastconv.h.
 *
 * A tile of m x m outputs needs an n x n patch d (n = m + 2) of the padded
 * input per channel.  With the transforms of Lavin and Gray (2015),
 *   V = B^T d B,   U = G g G^T,   Y = A^T M A,   M[xi] = sum_c U[xi] V[xi],
 * the n*n positions xi of the transformed domain are independent matrix
 * products M_xi (tiles x F) = V_xi (tiles x C) @ U_xi (C x F): n*n*C
 * multiplications per filter and tile where the direct sum takes 9*m*m*C
 * (2.25x fewer for m = 2, 4x for m = 4).  The matrices are built from
 * interpolation points (Toom-Cook): 0, 1, -1 and infinity for m = 2;
 * 0, 1, -1, 1/2, -2 and infinity for m = 4, which the set's symmetry
 * x -> -1/x balances between A, B and G (README, "Exactness": float32
 * errors 2-4x below those of the usual 0, +-1, +-2).  tests/test_winograd.py
 * rebuilds them in exact rational arithmetic from the points and checks the
 * functions below against them.
 *
 * The transforms run across CB channels (or filters) at once in vectors of
 * 64 bytes, so they need no gathers whatever the image size:
 *  - the input rows a block of tiles needs are transposed (UK->pack_t) into
 *    a zero-padded staging area of pixels x CB channels, each tile's patch
 *    read from it as n*n vectors, and V written tile-major (tile, channel);
 *  - the products run on the GEMM micro-kernels reading V's rows in place
 *    (UK->run_at) against U packed into NR-wide filter panels (filters in
 *    lanes), for every filter of a group at a time;
 *  - the output transform (filters in lanes) writes its tiles row-ordered,
 *    one transpose (UK->pack_t) turns them into runs of output rows, and
 *    bias and ReLU are applied as they are written to y.
 * The filter transform runs in double, rounded once.  Each output sums its
 * channels in the same order whatever the blocks: results do not depend on
 * the thread count. */

#define WV CAT(fc_wv_, TYPE)
#define CB ((ptrdiff_t)(sizeof(WV) / sizeof(TYPE)))   /* lanes per vector */

/* ---- the 1-D transforms (on vectors; G on doubles) ----------------------- */

/* o = B^T d, n = m + 2 entries.  m = 2: points 0, 1, -1, inf; m = 4: points
 * 0, 1, -1, 1/2, -2, inf (rows scaled to small integers). */
FC_ALWAYS_INLINE void CAT(wino_bt_, TYPE)(int m, const WV *d, WV *o)
{
    if (m == 2) {
        o[0] = d[0] - d[2];
        o[1] = d[1] + d[2];
        o[2] = d[2] - d[1];
        o[3] = d[1] - d[3];
        return;
    }
    const WV t = d[1] - d[3], s = d[2] - d[4], u = s - 2 * t;
    o[0] = 2 * (d[0] + d[4]) - 4 * d[2] - 3 * t;
    o[1] = u + 3 * (d[3] + d[4]);
    o[2] = u + s + 3 * (d[2] - d[3]);
    o[3] = 2 * t + s;
    o[4] = t - 2 * s;
    o[5] = 2 * (d[1] + d[5]) - 4 * d[3] - 3 * s;
}

/* o = A^T p: m entries from n. */
FC_ALWAYS_INLINE void CAT(wino_at_, TYPE)(int m, const WV *p, WV *o)
{
    if (m == 2) {
        o[0] = p[0] + p[1] + p[2];
        o[1] = p[1] - p[2] - p[3];
        return;
    }
    const WV s = p[1] + p[2], t = p[1] - p[2];
    o[0] = p[0] + s + (p[3] + p[4]);
    o[1] = t + (TYPE)0.5 * p[3] - 2 * p[4];
    o[2] = s + (TYPE)0.25 * p[3] + 4 * p[4];
    o[3] = t + (TYPE)0.125 * p[3] - 8 * p[4] + p[5];
}

/* o = A q: n entries from m (A^T's transpose: grad_weight's transform of
 * the output gradient). */
FC_ALWAYS_INLINE void CAT(wino_a_, TYPE)(int m, const WV *q, WV *o)
{
    if (m == 2) {
        o[0] = q[0];
        o[1] = q[0] + q[1];
        o[2] = q[0] - q[1];
        o[3] = -q[1];
        return;
    }
    const WV s = q[0] + q[2], t = q[1] + q[3];
    o[0] = q[0];
    o[1] = s + t;
    o[2] = s - t;
    o[3] = q[0] + (TYPE)0.5 * (q[1] + (TYPE)0.5 * (q[2] + (TYPE)0.5 * q[3]));
    o[4] = q[0] - 2 * (q[1] - 2 * (q[2] - 2 * q[3]));
    o[5] = q[3];
}

/* u = G g: n entries from the 3 taps g, 8 filters in lanes, in double
 * (rounded once, later).  m = 4: products with the reciprocals (one more
 * rounding, in double: far below float's precision; divisions would
 * dominate the packing). */
FC_ALWAYS_INLINE void CAT(wino_g_, TYPE)(int m, const fc_wd *g, fc_wd *u)
{
    if (m == 2) {
        u[0] = g[0];
        u[1] = 0.5 * (g[0] + g[1] + g[2]);
        u[2] = 0.5 * (g[0] - g[1] + g[2]);
        u[3] = g[2];
        return;
    }
    u[0] = 0.5 * g[0];
    u[1] = (g[0] + g[1] + g[2]) * (1.0 / 6);
    u[2] = (g[0] - g[1] + g[2]) * (1.0 / 6);
    u[3] = (4 * g[0] + 2 * g[1] + g[2]) * (4.0 / 15);
    u[4] = (g[0] - 2 * g[1] + 4 * g[2]) * (1.0 / 30);
    u[5] = 0.5 * g[2];
}

/* o = G^T p: 3 entries from n (grad_weight's last step, in double). */
FC_ALWAYS_INLINE void CAT(wino_gt_, TYPE)(int m, const fc_wd *p, fc_wd *o)
{
    if (m == 2) {
        o[0] = p[0] + 0.5 * (p[1] + p[2]);
        o[1] = 0.5 * (p[1] - p[2]);
        o[2] = 0.5 * (p[1] + p[2]) + p[3];
        return;
    }
    const fc_wd s = (p[1] + p[2]) * (1.0 / 6), d = (p[1] - p[2]) * (1.0 / 6);
    o[0] = 0.5 * p[0] + s + p[3] * (16.0 / 15) + p[4] * (1.0 / 30);
    o[1] = d + p[3] * (8.0 / 15) - p[4] * (1.0 / 15);
    o[2] = s + p[3] * (4.0 / 15) + p[4] * (2.0 / 15) + 0.5 * p[5];
}

/* The matrices as the functions above compute them (for tests): bt n x n,
 * g n x 3, at m x n, a n x m, row-major. */
void CAT(fc_wino_matrices_, TYPE)(int m, double *bt, double *g, double *at, double *a)
{
    const int n = m + 2;
    for (int k = 0; k < n; ++k) {
        WV d[6] = {{0}}, o[6];
        d[k][0] = 1;
        CAT(wino_bt_, TYPE)(m, d, o);
        for (int i = 0; i < n; ++i) bt[i * n + k] = (double)o[i][0];
        CAT(wino_at_, TYPE)(m, d, o);
        for (int i = 0; i < m; ++i) at[i * n + k] = (double)o[i][0];
        if (k < m) {
            CAT(wino_a_, TYPE)(m, d, o);
            for (int i = 0; i < n; ++i) a[i * m + k] = (double)o[i][0];
        }
    }
    for (int k = 0; k < 3; ++k) {
        fc_wd e[3] = {{0}}, u[6];
        e[k][0] = 1;
        CAT(wino_g_, TYPE)(m, e, u);
        for (int i = 0; i < n; ++i) g[i * 3 + k] = u[i][0];
    }
}

FC_ALWAYS_INLINE void CAT(wino_zero_, TYPE)(TYPE *restrict p, ptrdiff_t len)
{
    for (ptrdiff_t q = 0; q < len; ++q) p[q] = 0;
}

/* ---- filters ---------------------------------------------------------------- */

ptrdiff_t CAT(fc_wino_panel_filters_, TYPE)(void) { return UK->nr; }

/* Elements from U_xi to U_xi+1: the panels, and a cache line more, so that
 * the n*n positions written together by the packing do not all map to one
 * set of the L1 cache (with 4 KiB-multiple strides, e.g. 256 channels, they
 * did, and the packing ran 1.7x slower). */
static ptrdiff_t CAT(wino_xi_stride_, TYPE)(ptrdiff_t F, ptrdiff_t C)
{
    const ptrdiff_t nr = UK->nr;
    return (F + nr - 1) / nr * C * nr + 64 / (ptrdiff_t)sizeof(TYPE);
}

ptrdiff_t CAT(fc_wino_packed_weights_size_, TYPE)(ptrdiff_t F, ptrdiff_t C, int m)
{
    const ptrdiff_t n = m + 2;
    return n * n * CAT(wino_xi_stride_, TYPE)(F, C);
}

FC_ALWAYS_INLINE void CAT(wino_pack_, TYPE)(int m, const TYPE *restrict w, ptrdiff_t F,
                                            ptrdiff_t C, ptrdiff_t panel, int flip,
                                            TYPE *restrict packed)
{
    /* Filters in lanes, R at a time, channels CC a step.  All the panel's
     * filter groups (NR/R rounded up, at most GR) are transposed
     * first, so that each channel's U_xi rows are then written whole, group
     * after group: the packed panel is written in order, a cache line at a
     * time, instead of revisiting it once per group. */
    enum { R = 8, CC = 16, GR = (FC_UK_NR_MAX + R - 1) / R };
    const ptrdiff_t nr = UK->nr, n = m + 2, np = (F + nr - 1) / nr;
    const ptrdiff_t xs = CAT(wino_xi_stride_, TYPE)(F, C);
    const ptrdiff_t first = panel * nr, groups = (nr + R - 1) / R;
    TYPE wt[GR][CC * 9 * R];                    /* (group)(channel, tap, filter) */
    if (panel == 0) {                           /* the padding after each U_xi */
        const ptrdiff_t used = np * C * nr;
        for (ptrdiff_t xi = 0; xi < n * n; ++xi)
            CAT(wino_zero_, TYPE)(packed + xi * xs + used, xs - used);
    }
    for (ptrdiff_t c0 = 0; c0 < C; c0 += CC) {
        const ptrdiff_t cc = fc_min(CC, C - c0);
        for (ptrdiff_t gi = 0; gi < groups && first + gi * R < F; ++gi) {
            /* R filters' taps side by side (zeros past F) */
            const ptrdiff_t f0 = first + gi * R, cnt = fc_min(R, F - f0);
            if (!flip) {
                UK->pack_t(w + (f0 * C + c0) * 9, C * 9, NULL, cnt, cc * 9, R, 0,
                           wt[gi]);
                continue;
            }
            /* w is (C, F, 3, 3): filter f0 + r's taps on channel c0 + c are
             * w[c0 + c, f0 + r] rotated, one run of cnt * 9 per channel */
            for (ptrdiff_t c = 0; c < cc; ++c) {
                const TYPE *restrict run = w + ((c0 + c) * F + f0) * 9;
                for (int k = 0; k < 9; ++k) {
                    TYPE *restrict d = wt[gi] + (c * 9 + k) * R;
                    for (ptrdiff_t r = 0; r < cnt; ++r) d[r] = run[r * 9 + 8 - k];
                    for (ptrdiff_t r = cnt; r < R; ++r) d[r] = 0;
                }
            }
        }
        for (ptrdiff_t c = 0; c < cc; ++c)
            for (ptrdiff_t gi = 0; gi < groups; ++gi) {
                /* G g G^T of the group's R filters at once */
                const ptrdiff_t f0 = first + gi * R, cnt = fc_min(R, first + nr - f0);
                if (f0 >= F) {                  /* past the last filter: zeros */
                    for (ptrdiff_t xi = 0; xi < n * n; ++xi) {
                        TYPE *restrict dst = packed + xi * xs + (panel * C + c0 + c) * nr
                                             + f0 - first;
                        for (ptrdiff_t r = 0; r < cnt; ++r) dst[r] = 0;
                    }
                    continue;
                }
                fc_wd g[9], t[6][3], u[36];
                for (int k = 0; k < 9; ++k)
                    for (ptrdiff_t r = 0; r < R; ++r)
                        g[k][r] = (double)wt[gi][(c * 9 + k) * R + r];
                for (int j = 0; j < 3; ++j) {       /* G g, column by column */
                    const fc_wd col[3] = {g[j], g[3 + j], g[6 + j]};
                    fc_wd o[6];
                    CAT(wino_g_, TYPE)(m, col, o);
                    for (ptrdiff_t i = 0; i < n; ++i) t[i][j] = o[i];
                }
                for (ptrdiff_t i = 0; i < n; ++i)   /* (G g) G^T, row by row */
                    CAT(wino_g_, TYPE)(m, t[i], u + i * n);
                for (ptrdiff_t xi = 0; xi < n * n; ++xi) {   /* U_xi's panel row */
                    TYPE *restrict dst = packed + xi * xs + (panel * C + c0 + c) * nr
                                         + f0 - first;
                    for (ptrdiff_t r = 0; r < cnt; ++r) dst[r] = (TYPE)u[xi][r];
                }
            }
    }
}

FC_CLONES void CAT(fc_wino_pack_weights_, TYPE)(const TYPE *restrict w, ptrdiff_t F,
                                                ptrdiff_t C, int m, ptrdiff_t panel,
                                                int flip, TYPE *restrict packed)
{
    if (m == 4)
        CAT(wino_pack_, TYPE)(4, w, F, C, panel, flip, packed);
    else
        CAT(wino_pack_, TYPE)(2, w, F, C, panel, flip, packed);
}

/* ---- blocks of tiles -------------------------------------------------------- */

static ptrdiff_t CAT(wino_up_, TYPE)(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b * b; }

/* Columns of M written per filter group (a multiple of NR, or all). */
static ptrdiff_t CAT(wino_group_, TYPE)(ptrdiff_t F, int m, ptrdiff_t tbp)
{
    const ptrdiff_t nr = UK->nr, n = m + 2;
    const ptrdiff_t fv = CAT(wino_up_, TYPE)(F, CB);
    const ptrdiff_t per_panel = n * n * tbp * nr * (ptrdiff_t)sizeof(TYPE);
    const ptrdiff_t panels = fc_max(1, FC_WINO_M_BYTES / per_panel);
    return fc_min(fv, panels * nr);
}

void CAT(fc_wino_schedule_, TYPE)(const fc_geom *g, ptrdiff_t N, ptrdiff_t F,
                                  int m, ptrdiff_t groups, int threads,
                                  fc_wino_sched *s)
{
    const ptrdiff_t mr = UK->mr, n = m + 2;
    const ptrdiff_t Cp = CAT(wino_up_, TYPE)(g->C, CB);
    const ptrdiff_t tw = (g->Wo + m - 1) / m, th = (g->Ho + m - 1) / m;
    const ptrdiff_t T = N * th * tw;
    /* V of a block stays in L2: tiles by the budget, whole MR panels */
    ptrdiff_t tbmax = FC_WINO_V_BYTES / (n * n * Cp * (ptrdiff_t)sizeof(TYPE));
    tbmax = fc_min(FC_WINO_MAX_PANELS, fc_max(FC_WINO_MIN_PANELS, tbmax / mr)) * mr;
    ptrdiff_t blocks = (T + tbmax - 1) / tbmax;
    /* enough blocks to share out (block size does not change the sums) */
    if (threads > 1) {
        blocks = fc_max(blocks, fc_min((T + mr - 1) / mr, 2 * (ptrdiff_t)threads));
        blocks = CAT(wino_up_, TYPE)(blocks, threads);
    }
    blocks = fc_max(blocks, 1);
    const ptrdiff_t tbp = fc_max(mr, CAT(wino_up_, TYPE)((T + blocks - 1) / blocks, mr));
    const ptrdiff_t Wp = m * tw + 2;
    const ptrdiff_t srows = fc_min(th, tbp / tw + 2) * m + 2;
    s->tb = tbp;
    s->blocks = (T + tbp - 1) / tbp;
    s->work = n * n * tbp * Cp                                  /* V */
              + n * n * tbp * CAT(wino_group_, TYPE)(F, m, tbp) /* M */
              + srows * (Wp + g->W) * CB;                       /* staging */
    /* phased (wino_phase_) where threads share the memory bandwidth, every
     * block would stream a large U, and V and M of all tiles stay within
     * their budget (one thread: streaming U measured cheaper than V and M
     * going through memory) */
    const ptrdiff_t size = (ptrdiff_t)sizeof(TYPE);
    const ptrdiff_t ubytes = fc_mul_sat(n * n * size, CAT(wino_xi_stride_, TYPE)(F, g->C));
    const ptrdiff_t Tp = CAT(wino_up_, TYPE)(T, mr);
    const ptrdiff_t shared = fc_mul_sat(n * n * Tp,
                                        Cp + CAT(wino_up_, TYPE)(F, CB));
    s->phased = threads > 1 && s->blocks > 1 && ubytes > FC_WINO_PHASED_U_BYTES
                && fc_mul_sat(fc_mul_sat(shared, size), groups) <= FC_WINO_PHASED_BYTES;
    s->shared = s->phased ? shared : 0;
}

/* A run of output cells: y[q] = src[q] + b, then max(., 0) if relu (NaN
 * stays NaN). */
FC_ALWAYS_INLINE void CAT(wino_put_, TYPE)(const TYPE *restrict src, ptrdiff_t len,
                                           TYPE b, int relu, TYPE *restrict y)
{
    if (relu) {
        for (ptrdiff_t q = 0; q < len; ++q) {
            const TYPE v = src[q] + b;
            y[q] = v < 0 ? 0 : v;
        }
    } else {
        for (ptrdiff_t q = 0; q < len; ++q) y[q] = src[q] + b;
    }
}

/* Rows h0 .. h0 + rows of nc planes (H x W, cs apart), transposed to
 * (row, column, CB channel lanes) with zero padding: stage column j holds
 * plane column j - pl, Wp columns; lanes past nc and cells outside the
 * plane are zero.  Short rows (fewer than CB cells) are transposed all at
 * once through flat, a row at a time otherwise. */
FC_ALWAYS_INLINE void CAT(wino_stage_, TYPE)(const TYPE *restrict plane, ptrdiff_t cs,
                                             ptrdiff_t nc, ptrdiff_t H, ptrdiff_t W,
                                             ptrdiff_t h0, ptrdiff_t rows,
                                             ptrdiff_t pl, ptrdiff_t Wp,
                                             TYPE *restrict flat,
                                             TYPE *restrict stage)
{
    const ptrdiff_t ha = fc_max(0, h0), hb = fc_min(H, h0 + rows);
    const ptrdiff_t wl = fc_min(pl, Wp), wn = fc_max(0, fc_min(W, Wp - wl));
    const int whole = wn < CB && hb > ha;
    if (whole)
        UK->pack_t(plane + ha * W, cs, NULL, nc, (hb - ha) * W, CB, 0, flat);
    for (ptrdiff_t r = 0; r < rows; ++r) {
        TYPE *restrict dst = stage + r * Wp * CB;
        const ptrdiff_t h = h0 + r;
        if (h < ha || h >= hb) {
            CAT(wino_zero_, TYPE)(dst, Wp * CB);
            continue;
        }
        CAT(wino_zero_, TYPE)(dst, wl * CB);
        if (whole) {
            const TYPE *restrict src = flat + (h - ha) * W * CB;
            for (ptrdiff_t e = 0; e < wn * CB; ++e) dst[wl * CB + e] = src[e];
        } else if (wn > 0) {
            UK->pack_t(plane + h * W, cs, NULL, nc, wn, CB, 0, dst + wl * CB);
        }
        CAT(wino_zero_, TYPE)(dst + (wl + wn) * CB, (Wp - wl - wn) * CB);
    }
}

/* The input transform V = B^T d B of tiles t0 .. t0 + nt (of N images, in
 * order of image, tile row, tile column), channels ca .. cb (multiples of
 * CB, or cb past C), CB channels at a time, one
 * image's tiles at a time: tile u's position xi of channel c to
 * v[u * ts + xi * xs + c] (lanes past C are zero). */
FC_ALWAYS_INLINE void CAT(wino_input_, TYPE)(int m, const TYPE *restrict x,
                                             ptrdiff_t x_stride, const fc_geom *g,
                                             ptrdiff_t ca, ptrdiff_t cb,
                                             ptrdiff_t t0, ptrdiff_t nt, ptrdiff_t ts,
                                             ptrdiff_t xs, TYPE *restrict stage,
                                             TYPE *restrict flat, TYPE *restrict v)
{
    const ptrdiff_t n = m + 2, C = g->C, H = g->H, W = g->W;
    const ptrdiff_t tw = (g->Wo + m - 1) / m, T = ((g->Ho + m - 1) / m) * tw;
    const ptrdiff_t Wp = m * tw + 2;
    for (ptrdiff_t c0 = ca; c0 < fc_min(C, cb); c0 += CB) {
        for (ptrdiff_t q = 0; q < nt;) {
            const ptrdiff_t t = t0 + q, img = t / T, tl = t - img * T;
            const ptrdiff_t qe = fc_min(nt, q + T - tl);
            const ptrdiff_t tha = tl / tw, thb = (tl + qe - q - 1) / tw;
            CAT(wino_stage_, TYPE)(x + img * x_stride + c0 * H * W, H * W,
                                   fc_min(CB, C - c0), H, W, tha * m - g->pt,
                                   (thb - tha) * m + n, g->pl, Wp, flat, stage);
            for (ptrdiff_t u = q; u < qe; ++u) {
                const ptrdiff_t tt = tl + u - q, ti = tt / tw, tj = tt - ti * tw;
                const TYPE *restrict p = stage + ((ti - tha) * m * Wp + tj * m) * CB;
                WV e[36], o[6];
                for (ptrdiff_t k = 0; k < n; ++k) {        /* columns */
                    WV col[6];
                    for (ptrdiff_t i = 0; i < n; ++i)
                        memcpy(&col[i], p + (i * Wp + k) * CB, sizeof(WV));
                    CAT(wino_bt_, TYPE)(m, col, o);
                    for (ptrdiff_t i = 0; i < n; ++i) e[i * n + k] = o[i];
                }
                TYPE *restrict vt = v + u * ts + c0;
                for (ptrdiff_t i = 0; i < n; ++i) {        /* rows */
                    CAT(wino_bt_, TYPE)(m, e + i * n, o);
                    for (ptrdiff_t j = 0; j < n; ++j)
                        memcpy(vt + (i * n + j) * xs, &o[j], sizeof(WV));
                }
            }
            q = qe;
        }
    }
}

/* The products M_xi (tiles x filters) = V_xi @ U_xi of positions [xa, xb),
 * filters [f0, f1) (whole panels), rows r0 .. nt of V (tile t of position
 * xi at v + t*vts + xi*vxs, channel c at + c), into m (tile t, position
 * xi, filter f at mm + t*mts + xi*mxs + f - f0). */
FC_ALWAYS_INLINE void CAT(wino_products_, TYPE)(ptrdiff_t C, const TYPE *restrict upack,
                                                ptrdiff_t us, ptrdiff_t xa, ptrdiff_t xb,
                                                ptrdiff_t f0, ptrdiff_t f1,
                                                const TYPE *restrict v, ptrdiff_t vts,
                                                ptrdiff_t vxs, ptrdiff_t nt,
                                                TYPE *restrict mm, ptrdiff_t mts,
                                                ptrdiff_t mxs)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr;
    const ptrdiff_t kblocks = (C + FC_GEMM_KC - 1) / FC_GEMM_KC;
    const ptrdiff_t kb = (C + kblocks - 1) / kblocks;
    for (ptrdiff_t xi = xa; xi < xb; ++xi)
        for (ptrdiff_t k0 = 0; k0 < C; k0 += kb) {
            const ptrdiff_t kc = fc_min(kb, C - k0);
            for (ptrdiff_t fp = f0; fp < f1; fp += nr) {
                const ptrdiff_t nq = fc_min(nr, f1 - fp);
                const TYPE *restrict b = upack + xi * us + (fp / nr * C + k0) * nr;
                for (ptrdiff_t r0 = 0; r0 < nt; r0 += mr)
                    UK_RUN_AT(nq)(kc, v + r0 * vts + xi * vxs + k0, vts, b, nr,
                                  mm + r0 * mts + xi * mxs + (fp - f0), mts,
                                  fc_min(mr, nt - r0), nq, k0 > 0, NULL);
            }
        }
}

/* The output transform of tiles t0 .. t0 + nt, filters [fa, fb) (fb <= F;
 * tile q's products at mm + q*mts + xi*mxs + f - foff), CB filters at a
 * time, chunks of ct tiles of a tile row at a time (ct*m = 16 output
 * columns): A^T M A of each tile, then for each row of the chunk its 16
 * cells x CB filters are transposed (UK->pack_t) into runs of output row,
 * written to y with the bias and ReLU. */
FC_ALWAYS_INLINE void CAT(wino_output_, TYPE)(int m, const fc_geom *g, ptrdiff_t t0,
                                              ptrdiff_t nt, ptrdiff_t fa, ptrdiff_t fb,
                                              ptrdiff_t foff,
                                              const TYPE *restrict mm, ptrdiff_t mts,
                                              ptrdiff_t mxs, const TYPE *restrict bias,
                                              int relu, TYPE *restrict y,
                                              ptrdiff_t y_stride)
{
    const ptrdiff_t n = m + 2, Ho = g->Ho, Wo = g->Wo;
    const ptrdiff_t tw = (Wo + m - 1) / m, T = ((Ho + m - 1) / m) * tw;
    const ptrdiff_t ct = 16 / m;                    /* tiles per output chunk */
    for (ptrdiff_t fc0 = fa; fc0 < fb; fc0 += CB) {
        const ptrdiff_t nf = fc_min(CB, fb - fc0);
        TYPE bv[64];
        for (ptrdiff_t l = 0; l < CB; ++l) bv[l] = bias && l < nf ? bias[fc0 + l] : 0;
        for (ptrdiff_t q = 0; q < nt;) {
            const ptrdiff_t t = t0 + q, img = t / T, tl = t - img * T;
            const ptrdiff_t ti = tl / tw, tj0 = tl - ti * tw;
            const ptrdiff_t len = fc_min(fc_min(nt - q, tw - tj0), ct);
            const ptrdiff_t cnt = fc_min(len * m, Wo - tj0 * m);
            TYPE buf[4 * 16 * 16], tr[16 * 16];     /* (i, cell, filter); (filter, cell) */
            for (ptrdiff_t u = 0; u < len; ++u) {
                const TYPE *restrict mp = mm + (q + u) * mts + (fc0 - foff);
                WV b[24], o[6];
                for (ptrdiff_t k = 0; k < n; ++k) {    /* columns */
                    WV col[6];
                    for (ptrdiff_t i = 0; i < n; ++i)
                        memcpy(&col[i], mp + (i * n + k) * mxs, sizeof(WV));
                    CAT(wino_at_, TYPE)(m, col, o);
                    for (ptrdiff_t i = 0; i < m; ++i) b[i * n + k] = o[i];
                }
                for (ptrdiff_t i = 0; i < m; ++i) {    /* rows */
                    CAT(wino_at_, TYPE)(m, b + i * n, o);
                    for (ptrdiff_t j = 0; j < m; ++j)
                        memcpy(buf + (i * 16 + u * m + j) * CB, &o[j], sizeof(WV));
                }
            }
            TYPE *restrict yt = y + img * y_stride + fc0 * Ho * Wo + tj0 * m;
            for (ptrdiff_t i = 0; i < m && ti * m + i < Ho; ++i) {
                UK->pack_t(buf + i * 16 * CB, CB, NULL, 16, nf, 16, 0, tr);
                TYPE *restrict yr = yt + (ti * m + i) * Wo;
                for (ptrdiff_t l = 0; l < nf; ++l) {
                    TYPE *restrict yl = yr + l * Ho * Wo;
                    const TYPE *restrict tl_ = tr + l * 16;
                    if (cnt == 16) {
                        if (relu)
                            for (ptrdiff_t e = 0; e < 16; ++e) {
                                const TYPE val = tl_[e] + bv[l];
                                yl[e] = val < 0 ? 0 : val;
                            }
                        else
                            for (ptrdiff_t e = 0; e < 16; ++e) yl[e] = tl_[e] + bv[l];
                    } else {
                        CAT(wino_put_, TYPE)(tl_, cnt, bv[l], relu, yl);
                    }
                }
            }
            q += len;
        }
    }
}

FC_ALWAYS_INLINE void CAT(wino_block_, TYPE)(
    int m, const TYPE *restrict x, ptrdiff_t x_stride, ptrdiff_t N,
    const fc_geom *g, const TYPE *restrict upack, ptrdiff_t F,
    const TYPE *restrict bias, int relu, const fc_wino_sched *s,
    ptrdiff_t block, TYPE *restrict work, TYPE *restrict y, ptrdiff_t y_stride)
{
    const ptrdiff_t n = m + 2, nn = n * n;
    const ptrdiff_t C = g->C, Ho = g->Ho, Wo = g->Wo;
    const ptrdiff_t tw = (Wo + m - 1) / m, th = (Ho + m - 1) / m, T = th * tw;
    const ptrdiff_t tbp = s->tb, t0 = block * tbp, nt = fc_min(tbp, N * T - t0);
    const ptrdiff_t Cp = CAT(wino_up_, TYPE)(C, CB), Wp = m * tw + 2;
    const ptrdiff_t us = CAT(wino_xi_stride_, TYPE)(F, C), fv = CAT(wino_up_, TYPE)(F, CB);
    const ptrdiff_t fg = CAT(wino_group_, TYPE)(F, m, tbp);
    const ptrdiff_t srows = fc_min(th, tbp / tw + 2) * m + 2;
    TYPE *restrict v = work;                        /* tbp x nn x Cp */
    TYPE *restrict mm = v + tbp * nn * Cp;          /* tbp x nn x fg */
    TYPE *restrict stage = mm + tbp * nn * fg;      /* srows x Wp x CB */
    TYPE *restrict flat = stage + srows * Wp * CB;  /* srows x W x CB */

    CAT(wino_input_, TYPE)(m, x, x_stride, g, 0, C, t0, nt, nn * Cp, Cp, stage, flat, v);
    /* the last panel's spare rows */
    CAT(wino_zero_, TYPE)(v + nt * nn * Cp, (tbp - nt) * nn * Cp);

    for (ptrdiff_t f0 = 0; f0 < fv; f0 += fg) {
        const ptrdiff_t f1 = fc_min(fv, f0 + fg);
        CAT(wino_products_, TYPE)(C, upack, us, 0, nn, f0, f1, v, nn * Cp, Cp, nt, mm,
                                  nn * fg, fg);
        CAT(wino_output_, TYPE)(m, g, t0, nt, f0, fc_min(f1, F), f0, mm, nn * fg, fg,
                                bias, relu, y, y_stride);
    }
}

/* The phased form (s->phased): V and M of all tiles, position-major (tile
 * t of position xi at xi*Tp*Cp + t*Cp of V and xi*Tp*fv + t*fv of M, Tp
 * tiles rounded up to MR), so that each U_xi is read once, by the products
 * of its position, instead of once per block of tiles. */
FC_ALWAYS_INLINE void CAT(wino_phase_, TYPE)(
    int m, int phase, const TYPE *restrict x, ptrdiff_t x_stride, ptrdiff_t N,
    const fc_geom *g, const TYPE *restrict upack, ptrdiff_t F,
    const TYPE *restrict bias, int relu, const fc_wino_sched *s, ptrdiff_t item,
    TYPE *restrict work, TYPE *restrict shared, TYPE *restrict y, ptrdiff_t y_stride)
{
    const ptrdiff_t mr = UK->mr, n = m + 2, nn = n * n, C = g->C;
    const ptrdiff_t tw = (g->Wo + m - 1) / m, th = (g->Ho + m - 1) / m;
    const ptrdiff_t T = N * th * tw, Tp = CAT(wino_up_, TYPE)(T, mr);
    const ptrdiff_t Cp = CAT(wino_up_, TYPE)(C, CB), fv = CAT(wino_up_, TYPE)(F, CB);
    const ptrdiff_t tb = s->tb, t0 = item * tb, nt = fc_min(tb, T - t0);
    TYPE *restrict v = shared, *restrict mm = shared + nn * Tp * Cp;
    if (phase == 0) {               /* input transform of block item */
        const ptrdiff_t Wp = m * tw + 2, srows = fc_min(th, tb / tw + 2) * m + 2;
        TYPE *restrict stage = work, *restrict flat = stage + srows * Wp * CB;
        CAT(wino_input_, TYPE)(m, x, x_stride, g, 0, C, t0, nt, Cp, Tp * Cp, stage,
                               flat, v + t0 * Cp);
        if (t0 + nt == T)           /* the last panel's spare rows */
            for (ptrdiff_t xi = 0; xi < nn; ++xi)
                CAT(wino_zero_, TYPE)(v + xi * Tp * Cp + T * Cp, (Tp - T) * Cp);
    } else if (phase == 1) {        /* the products of position item */
        CAT(wino_products_, TYPE)(C, upack, CAT(wino_xi_stride_, TYPE)(F, C), item,
                                  item + 1, 0, fv, v, Cp, Tp * Cp, T, mm, fv, Tp * fv);
    } else {                        /* output transform of block item */
        CAT(wino_output_, TYPE)(m, g, t0, nt, 0, F, 0, mm + t0 * fv, fv, Tp * fv, bias,
                                relu, y, y_stride);
    }
}

FC_CLONES void CAT(fc_conv2d_wino_, TYPE)(const TYPE *restrict x, ptrdiff_t x_stride,
                                          ptrdiff_t N, const fc_geom *g, int m,
                                          const TYPE *restrict upack, ptrdiff_t F,
                                          const TYPE *restrict bias, int relu,
                                          const fc_wino_sched *s, ptrdiff_t block,
                                          TYPE *restrict work, TYPE *restrict y,
                                          ptrdiff_t y_stride)
{
    if (m == 4)
        CAT(wino_block_, TYPE)(4, x, x_stride, N, g, upack, F, bias, relu, s, block,
                               work, y, y_stride);
    else
        CAT(wino_block_, TYPE)(2, x, x_stride, N, g, upack, F, bias, relu, s, block,
                               work, y, y_stride);
}

FC_CLONES void CAT(fc_conv2d_wino_phase_, TYPE)(int phase, const TYPE *restrict x,
                                                ptrdiff_t x_stride, ptrdiff_t N,
                                                const fc_geom *g, int m,
                                                const TYPE *restrict upack, ptrdiff_t F,
                                                const TYPE *restrict bias, int relu,
                                                const fc_wino_sched *s, ptrdiff_t item,
                                                TYPE *restrict work, TYPE *restrict shared,
                                                TYPE *restrict y, ptrdiff_t y_stride)
{
    if (m == 4)
        CAT(wino_phase_, TYPE)(4, phase, x, x_stride, N, g, upack, F, bias, relu, s,
                               item, work, shared, y, y_stride);
    else
        CAT(wino_phase_, TYPE)(2, phase, x, x_stride, N, g, upack, F, bias, relu, s,
                               item, work, shared, y, y_stride);
}

/* ---- grad_weight ------------------------------------------------------------
 * dL/dU[xi] = sum over tiles of Z[xi] V[xi] per filter and channel, with
 * Z = A dY A^T the tile's output gradient transformed (n x n) and V its
 * input patch as in the forward pass; then grad_w = G^T (dL/dU) G.  The n*n
 * products W_xi (F x C) = Z_xi^T (F x tiles) @ V_xi (tiles x C) have the
 * tiles as their long reduction, on the micro-kernels (UK->run_kn, both
 * operands read in place).  Blocks of tiles have a size fixed by the
 * shapes, and chunks of blocks sum into partial W in order (added up in
 * chunk order by fc_wino_gw_finish): the sums do not depend on the thread
 * count (work items split the positions xi, not the sums). */

void CAT(fc_wino_gw_schedule_, TYPE)(const fc_geom *g, ptrdiff_t N, ptrdiff_t F,
                                     int m, fc_wino_gw_sched *s)
{
    const ptrdiff_t n = m + 2, nn = n * n;
    const ptrdiff_t Cp = CAT(wino_up_, TYPE)(g->C, CB), Fp = CAT(wino_up_, TYPE)(F, CB);
    const ptrdiff_t tw = (g->Wo + m - 1) / m, th = (g->Ho + m - 1) / m;
    const ptrdiff_t T = N * th * tw, size = (ptrdiff_t)sizeof(TYPE);
    /* chunks (partial sums): a power of two within the budget, so that
     * they share out evenly; V and Z of a block within the budget, but
     * blocks long enough that W (F x C per xi, read and written once a
     * block) costs no more than V and Z do; blocks of equal size, as many
     * in every chunk */
    const ptrdiff_t wsize = nn * F * Cp;
    ptrdiff_t chunks = 1;
    while (2 * chunks <= FC_WINO_GW_CHUNKS && 2 * chunks * wsize * size <= FC_WINO_GW_PARTIAL_BYTES)
        chunks *= 2;
    const ptrdiff_t tbw = fc_max(1, F * Cp / (Cp + Fp));
    const ptrdiff_t tb0 = fc_min(FC_WINO_GW_MAX_TILES,
                                 fc_max(FC_WINO_GW_BYTES / (nn * (Cp + Fp) * size), tbw));
    chunks = fc_max(1, fc_min(chunks, T / tbw));
    const ptrdiff_t blocks = CAT(wino_up_, TYPE)(fc_max(1, (T + tb0 - 1) / tb0), chunks);
    const ptrdiff_t tb = fc_max(1, (T + blocks - 1) / blocks);
    const ptrdiff_t Wp = m * tw + 2;
    const ptrdiff_t srows = fc_min(th, tb / tw + 2) * m + 2;
    s->tb = tb;
    s->blocks = (T + tb - 1) / tb;
    s->wsize = wsize;
    s->chunks = fc_min(chunks, s->blocks);
    s->tsize = tb * nn * (Cp + Fp) + CB;                 /* V, Z (+ a row's reach) */
    s->parts = (g->C + CB - 1) / CB + (F + CB - 1) / CB;
    const ptrdiff_t pre = fc_mul_sat(s->tsize, s->blocks);   /* one group's */
    s->pre = fc_mul_sat(pre, size) <= FC_WINO_GW_SHARED_BYTES ? pre : 0;
    s->work = s->tsize + srows * (Wp + fc_max(g->W, g->Wo)) * CB; /* staging */
}

/* V and Z of a block: position-major, so that the products read each xi's
 * tiles in a row, unless 16 channels and 16 filters: then a tile's n*n
 * vectors together (the transforms write one run; the products' rows of
 * 36 vectors are still short).  Tile, position strides of V and Z. */
typedef struct {
    ptrdiff_t vts, vxs, zts, zxs;
} CAT(gw_layout_, TYPE);

static CAT(gw_layout_, TYPE) CAT(gw_layout_of_, TYPE)(ptrdiff_t Cp, ptrdiff_t Fp,
                                                      ptrdiff_t nn, ptrdiff_t tb)
{
    const int tmaj = Cp + Fp <= 2 * CB;
    CAT(gw_layout_, TYPE) l;
    l.vts = tmaj ? nn * Cp : Cp;
    l.vxs = tmaj ? Cp : tb * Cp;
    l.zts = tmaj ? nn * Fp : Fp;
    l.zxs = tmaj ? Fp : tb * Fp;
    return l;
}

/* Transforms of block `block`: V of channels [ca, cb) and Z of filters
 * [fa, fb) (multiples of CB) into vz (V, then Z at tb*nn*Cp), staging in
 * stage (s->work - s->tsize elements). */
FC_ALWAYS_INLINE void CAT(wino_gw_transform_, TYPE)(
    int m, const TYPE *restrict x, ptrdiff_t x_stride, const TYPE *restrict gy,
    ptrdiff_t gy_stride, ptrdiff_t N, const fc_geom *g, ptrdiff_t F,
    const fc_wino_gw_sched *s, ptrdiff_t block, ptrdiff_t ca, ptrdiff_t cb,
    ptrdiff_t fa, ptrdiff_t fb, TYPE *restrict vz, TYPE *restrict stage)
{
    const ptrdiff_t n = m + 2, nn = n * n;
    const ptrdiff_t C = g->C, Ho = g->Ho, Wo = g->Wo;
    const ptrdiff_t tw = (Wo + m - 1) / m, th = (Ho + m - 1) / m, T = th * tw;
    const ptrdiff_t tb = s->tb, t0 = block * tb, nt = fc_min(tb, N * T - t0);
    const ptrdiff_t Cp = CAT(wino_up_, TYPE)(C, CB), Fp = CAT(wino_up_, TYPE)(F, CB);
    const ptrdiff_t Wp = m * tw + 2, Wq = m * tw;
    const ptrdiff_t srows = fc_min(th, tb / tw + 2) * m + 2;
    const CAT(gw_layout_, TYPE) l = CAT(gw_layout_of_, TYPE)(Cp, Fp, nn, tb);
    TYPE *restrict v = vz;                          /* tb x nn x Cp */
    TYPE *restrict z = v + tb * nn * Cp;            /* tb x nn x Fp (+ CB) */
    TYPE *restrict flat = stage + srows * Wp * CB;  /* srows x max(W, Wo) x CB */

    if (cb > ca)
        CAT(wino_input_, TYPE)(m, x, x_stride, g, ca, cb, t0, nt, l.vts, l.vxs, stage,
                               flat, v);
    /* Z = A dY A^T, CB filters at a time, one image's tiles at a time (the
     * tiles' overhang past Ho x Wo reads zeros) */
    for (ptrdiff_t f0 = fa; f0 < fc_min(F, fb); f0 += CB) {
        for (ptrdiff_t q = 0; q < nt;) {
            const ptrdiff_t t = t0 + q, img = t / T, tl = t - img * T;
            const ptrdiff_t qe = fc_min(nt, q + T - tl);
            const ptrdiff_t tha = tl / tw, thb = (tl + qe - q - 1) / tw;
            CAT(wino_stage_, TYPE)(gy + img * gy_stride + f0 * Ho * Wo, Ho * Wo,
                                   fc_min(CB, F - f0), Ho, Wo, tha * m,
                                   (thb - tha + 1) * m, 0, Wq, flat, stage);
            for (ptrdiff_t u = q; u < qe; ++u) {
                const ptrdiff_t tt = tl + u - q, ti = tt / tw, tj = tt - ti * tw;
                const TYPE *restrict p = stage + ((ti - tha) * m * Wq + tj * m) * CB;
                WV e[24], o[6];
                for (ptrdiff_t j = 0; j < m; ++j) {        /* columns */
                    WV col[4];
                    for (ptrdiff_t i = 0; i < m; ++i)
                        memcpy(&col[i], p + (i * Wq + j) * CB, sizeof(WV));
                    CAT(wino_a_, TYPE)(m, col, o);
                    for (ptrdiff_t k = 0; k < n; ++k) e[k * m + j] = o[k];
                }
                TYPE *restrict zt = z + u * l.zts + f0;
                for (ptrdiff_t k = 0; k < n; ++k) {        /* rows */
                    CAT(wino_a_, TYPE)(m, e + k * m, o);
                    for (ptrdiff_t ll = 0; ll < n; ++ll)
                        memcpy(zt + (k * n + ll) * l.zxs, &o[ll], sizeof(WV));
                }
            }
            q = qe;
        }
    }
}

/* The products of block `block` (its transforms at vz) into positions
 * [xi0, xi1) of wsum, and its grad_bias into bsum. */
FC_ALWAYS_INLINE void CAT(wino_gw_products_, TYPE)(
    int m, ptrdiff_t N, const fc_geom *g, ptrdiff_t F, const fc_wino_gw_sched *s,
    ptrdiff_t block, ptrdiff_t xi0, ptrdiff_t xi1, const TYPE *restrict vz,
    TYPE *restrict wsum, double *restrict bsum)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr, n = m + 2, nn = n * n;
    const ptrdiff_t tw = (g->Wo + m - 1) / m, T = ((g->Ho + m - 1) / m) * tw;
    const ptrdiff_t tb = s->tb, nt = fc_min(tb, N * T - block * tb);
    const ptrdiff_t Cp = CAT(wino_up_, TYPE)(g->C, CB), Fp = CAT(wino_up_, TYPE)(F, CB);
    const CAT(gw_layout_, TYPE) l = CAT(gw_layout_of_, TYPE)(Cp, Fp, nn, tb);
    const TYPE *restrict v = vz, *restrict z = vz + tb * nn * Cp;
    /* grad_bias: position (1, 1) of Z sums the tile's m x m gradients
     * (the points 1 of A's rows are all ones), in double */
    const ptrdiff_t xb = n + 1;
    if (bsum && xi0 <= xb && xb < xi1)
        for (ptrdiff_t u = 0; u < nt; ++u) {
            const TYPE *restrict zb = z + xb * l.zxs + u * l.zts;
            for (ptrdiff_t f = 0; f < F; ++f) bsum[f] += (double)zb[f];
        }
    /* W_xi (F x Cp) += Z_xi^T V_xi: mr filters by nr channels, the block's
     * tiles as the reduction */
    for (ptrdiff_t xi = xi0; xi < xi1; ++xi)
        for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
            for (ptrdiff_t c0 = 0; c0 < Cp; c0 += nr) {
                const ptrdiff_t nq = fc_min(nr, Cp - c0);
                UK_RUN_KN(nq)(nt, z + xi * l.zxs + f0, l.zts, v + xi * l.vxs + c0, l.vts,
                              wsum + (xi * F + f0) * Cp + c0, Cp, fc_min(mr, F - f0), nq,
                              1, NULL);
            }
}

FC_CLONES void CAT(fc_wino_gw_transform_, TYPE)(const TYPE *restrict x, ptrdiff_t x_stride,
                                                const TYPE *restrict gy, ptrdiff_t gy_stride,
                                                ptrdiff_t N, const fc_geom *g, int m,
                                                ptrdiff_t F, const fc_wino_gw_sched *s,
                                                ptrdiff_t block, ptrdiff_t part,
                                                TYPE *restrict work, TYPE *restrict dst)
{
    const ptrdiff_t cparts = (g->C + CB - 1) / CB;  /* V's parts, then Z's */
    const ptrdiff_t ca = part < cparts ? part * CB : 0, cb = part < cparts ? ca + CB : 0;
    const ptrdiff_t fa = part < cparts ? 0 : (part - cparts) * CB;
    const ptrdiff_t fb = part < cparts ? 0 : fa + CB;
    if (m == 4)
        CAT(wino_gw_transform_, TYPE)(4, x, x_stride, gy, gy_stride, N, g, F, s, block,
                                      ca, cb, fa, fb, dst, work);
    else
        CAT(wino_gw_transform_, TYPE)(2, x, x_stride, gy, gy_stride, N, g, F, s, block,
                                      ca, cb, fa, fb, dst, work);
}

FC_CLONES void CAT(fc_wino_grad_weight_, TYPE)(const TYPE *restrict x, ptrdiff_t x_stride,
                                               const TYPE *restrict gy, ptrdiff_t gy_stride,
                                               ptrdiff_t N, const fc_geom *g, int m,
                                               ptrdiff_t F, const fc_wino_gw_sched *s,
                                               ptrdiff_t chunk, ptrdiff_t xi0, ptrdiff_t xi1,
                                               TYPE *restrict work,
                                               const TYPE *restrict pre,
                                               TYPE *restrict wsum, double *restrict bsum)
{
    const ptrdiff_t Cp = CAT(wino_up_, TYPE)(g->C, CB), xb = m + 3;
    const ptrdiff_t b0 = chunk * s->blocks / s->chunks;
    const ptrdiff_t b1 = (chunk + 1) * s->blocks / s->chunks;
    CAT(wino_zero_, TYPE)(wsum + xi0 * F * Cp, (xi1 - xi0) * F * Cp);
    if (bsum && xi0 <= xb && xb < xi1)
        for (ptrdiff_t f = 0; f < F; ++f) bsum[f] = 0;
    for (ptrdiff_t b = b0; b < b1; ++b) {
        const TYPE *vz = pre ? pre + b * s->tsize : work;
        if (m == 4) {
            if (!pre)
                CAT(wino_gw_transform_, TYPE)(4, x, x_stride, gy, gy_stride, N, g, F, s,
                                              b, 0, g->C, 0, F, work, work + s->tsize);
            CAT(wino_gw_products_, TYPE)(4, N, g, F, s, b, xi0, xi1, vz, wsum, bsum);
        } else {
            if (!pre)
                CAT(wino_gw_transform_, TYPE)(2, x, x_stride, gy, gy_stride, N, g, F, s,
                                              b, 0, g->C, 0, F, work, work + s->tsize);
            CAT(wino_gw_products_, TYPE)(2, N, g, F, s, b, xi0, xi1, vz, wsum, bsum);
        }
    }
}

FC_ALWAYS_INLINE void CAT(wino_gw_finish_, TYPE)(int m, const TYPE *restrict wsum,
                                                 ptrdiff_t chunks, ptrdiff_t wstride,
                                                 ptrdiff_t F, ptrdiff_t C, ptrdiff_t f,
                                                 TYPE *restrict gw)
{
    enum { R = 8 };                                 /* channels in lanes */
    const ptrdiff_t n = m + 2, nn = n * n, Cp = CAT(wino_up_, TYPE)(C, CB);
    for (ptrdiff_t c0 = 0; c0 < C; c0 += R) {
        fc_wd w[36], t[6][3], u[3][3];
        for (ptrdiff_t xi = 0; xi < nn; ++xi) {     /* the chunks in order */
            const TYPE *restrict src = wsum + (xi * F + f) * Cp + c0;
            double acc[R] = {0};                    /* c0 + R <= Cp */
            for (ptrdiff_t ch = 0; ch < chunks; ++ch)
                for (ptrdiff_t r = 0; r < R; ++r) acc[r] += (double)src[ch * wstride + r];
            memcpy(&w[xi], acc, sizeof acc);
        }
        /* G^T W G: G^T on the columns of W, then on the rows (the transpose
         * of wino_g_, in double) */
        for (ptrdiff_t i = 0; i < n; ++i) {
            fc_wd row[6];
            for (ptrdiff_t l = 0; l < n; ++l) row[l] = w[i * n + l];
            CAT(wino_gt_, TYPE)(m, row, t[i]);
        }
        for (int j = 0; j < 3; ++j) {
            fc_wd col[6], o[3];
            for (ptrdiff_t i = 0; i < n; ++i) col[i] = t[i][j];
            CAT(wino_gt_, TYPE)(m, col, o);
            for (int i = 0; i < 3; ++i) u[i][j] = o[i];
        }
        for (ptrdiff_t r = 0; r < R && c0 + r < C; ++r)
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j) gw[(c0 + r) * 9 + i * 3 + j] = (TYPE)u[i][j][r];
    }
}

FC_CLONES void CAT(fc_wino_gw_finish_, TYPE)(const TYPE *restrict wsum, ptrdiff_t chunks,
                                             ptrdiff_t wstride, ptrdiff_t F, ptrdiff_t C,
                                             int m, ptrdiff_t f, TYPE *restrict gw)
{
    if (m == 4)
        CAT(wino_gw_finish_, TYPE)(4, wsum, chunks, wstride, F, C, f, gw);
    else
        CAT(wino_gw_finish_, TYPE)(2, wsum, chunks, wstride, F, C, f, gw);
}

#undef CB
#undef WV
