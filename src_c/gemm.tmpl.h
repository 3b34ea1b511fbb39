/* Convolution as a packed GEMM with im2col fused into the packing, written
 * once on TYPE (see gemm.c).  Documented in fastconv.h.
 *
 * For one image, one group and a tile of output positions [l0, l1):
 *   Y (F x n) = bias + Wp (F x K) @ B (K x n),  B = im2col columns l0..l1.
 * B is never formed as a whole: K is walked in blocks of KC, and for each
 * block its rows are read off a zero-padded slab of the input (banded
 * tiles, below) or unfolded into NR-wide panels (k-major) in the workspace
 * (L2-sized).  Each kc x NR panel then stays in L1 while the micro-kernel
 * streams the weights (packed once per call into MR-row panels) past it. */


ptrdiff_t CAT(fc_gemm_packed_weights_size_, TYPE)(ptrdiff_t F, ptrdiff_t K)
{
    const ptrdiff_t mr = UK->mr;
    return fc_mul_sat((F + mr - 1) / mr * mr, K);
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

void CAT(fc_gemm_pack_weights_flip_, TYPE)(const TYPE *restrict w, ptrdiff_t F,
                                           ptrdiff_t C, ptrdiff_t kh,
                                           ptrdiff_t kw, ptrdiff_t panel,
                                           TYPE *restrict packed)
{
    const ptrdiff_t mr = UK->mr, KK = kh * kw, K = F * KK;
    const ptrdiff_t c0 = panel * mr, m = fc_min(mr, C - c0);
    packed += panel * mr * K;
    for (ptrdiff_t k = 0; k < K; ++k, packed += mr) {
        const ptrdiff_t f = k / KK, t = KK - 1 - (k - f * KK);  /* flipped tap */
        for (ptrdiff_t r = 0; r < m; ++r)
            packed[r] = w[(f * C + c0 + r) * KK + t];
        for (ptrdiff_t r = m; r < mr; ++r) packed[r] = 0;
    }
}

ptrdiff_t CAT(fc_gemm_tile_cols_, TYPE)(void)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t n = FC_GEMM_B_BYTES / ((ptrdiff_t)sizeof(TYPE) * FC_GEMM_KC);
    return fc_max(nr, n / nr * nr);
}

/* ---- forward tiling ------------------------------------------------------
 * Banded tiles: a tile is a band of whole output rows, computed on a
 * "virtual" output width Wv = Wo + (kw-1)*dw/sw (or less, see
 * virtual_width_), over a slab of the band's
 * zero-padded input split into sh x sw phases: phase (ph, pw) of channel c
 * holds the padded input cells (sh*a + ph, sw*b + pw).  Tap (i, j) of an
 * output cell (oh, ow) reads padded cell (sh*oh + i*dh, sw*ow + j*dw), which
 * is cell (oh + i*dh/sh, ow + j*dw/sw) of phase (i*dh%sh, j*dw%sw) (integer
 * division).  So row (c, i, j) of B is one contiguous run of the slab,
 * whatever the stride, and the micro-kernel reads it there (row pointers:
 * no packing); the Wv - Wo extra columns per row are computed and dropped.
 * For stride 1 there is one phase, and the slab is the padded band itself.
 * Where the slab would be large (wide strides on many channels) a tile is a
 * run of output positions instead, packed by im2col_row_panels. */

/* At stride 1, when the right padding the windows reach is no wider than
 * the left padding (3x3 pad 1, odd "same"), rows share their padding: the
 * reads past a row's end land in the next row's left padding, so Wv = pl + W
 * and only (kw-1)*dw - pl columns per row are extra (1 instead of 2 at
 * 3x3 pad 1: 15 rather than 16 columns for resnet-14's 14). */
static ptrdiff_t CAT(virtual_width_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t reach = g->Wo + (g->kw - 1) * g->dw;    /* at stride 1 */
    if (g->sw == 1 && reach - g->W - g->pl <= g->pl && g->pl + g->W >= g->Wo)
        return g->pl + g->W;
    return g->Wo + (g->kw - 1) * g->dw / g->sw;
}

/* Output rows per band: as many as fit in a tile, spread evenly. */
static ptrdiff_t CAT(band_rows_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t nc = CAT(fc_gemm_tile_cols_, TYPE)();
    const ptrdiff_t most = fc_max(1, nc / CAT(virtual_width_, TYPE)(g));
    const ptrdiff_t bands = (g->Ho + most - 1) / most;
    return (g->Ho + bands - 1) / bands;
}

/* Rows of each phase of the slab: the band's, the taps' reach, and one more
 * for the reads past the end of the last row. */
static ptrdiff_t CAT(slab_rows_, TYPE)(const fc_geom *g)
{
    return CAT(band_rows_, TYPE)(g) + (g->kh - 1) * g->dh / g->sh + 1;
}

/* Slab elements: C * sh * sw phases of slab_rows x Wv, plus one panel of
 * slack for the reads past the last column of the last tile.  Saturated:
 * with huge strides the product overflows 64 bits (2**31 x 2**31 phases),
 * and a wrapped size once chose the slab and wrote past the workspace. */
static ptrdiff_t CAT(slab_size_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t phases = fc_mul_sat(fc_mul_sat(g->C, g->sh), g->sw);
    const ptrdiff_t plane = fc_mul_sat(CAT(slab_rows_, TYPE)(g),
                                       CAT(virtual_width_, TYPE)(g));
    return fc_add_sat(fc_mul_sat(phases, plane), UK->nr);
}

/* Whether a slab of this many elements is worth its memory: within
 * FC_GEMM_SLAB_BYTES, or (stride 1, where the slab is the padded band
 * itself) within a few times the input.  Past that the window's reach is
 * mostly padding (huge padding with dilation), and runs of positions cost
 * only the output's size. */
static int CAT(slab_fits_, TYPE)(const fc_geom *g, ptrdiff_t elements)
{
    if (elements <= FC_GEMM_SLAB_BYTES / (ptrdiff_t)sizeof(TYPE)) return 1;
    const ptrdiff_t input = fc_mul_sat(fc_mul_sat(4, g->C),
                                       fc_mul_sat(fc_add_sat(g->H, g->kh),
                                                  fc_add_sat(g->W, g->kw)));
    return g->sh == 1 && g->sw == 1 && elements <= input;
}

/* 1x1, stride 1, no padding: row k of B is input plane k itself. */
static int CAT(pointwise_, TYPE)(const fc_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1
           && g->pt == 0 && g->pl == 0 && g->Ho == g->H && g->Wo == g->W;
}

/* Banded tiles, except for pointwise layers, whose B rows need no slab
 * (their tiles are runs of pixels, written straight into y).  Short
 * columns too (K = 27 at cifar-first: 1.2x over runs of positions packed
 * from the input, since the micro-kernel reads the slab in place). */
static int CAT(banded_, TYPE)(const fc_geom *g)
{
    if (CAT(pointwise_, TYPE)(g)) return 0;
    return CAT(slab_fits_, TYPE)(g, CAT(slab_size_, TYPE)(g));
}

/* Columns of one tile, rounded up to whole panels. */
static ptrdiff_t CAT(tile_width_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t n = CAT(banded_, TYPE)(g)
        ? CAT(band_rows_, TYPE)(g) * CAT(virtual_width_, TYPE)(g)
        : fc_min(g->Ho * g->Wo, CAT(fc_gemm_tile_cols_, TYPE)());
    return (n + nr - 1) / nr * nr;
}

ptrdiff_t CAT(fc_gemm_tiles_, TYPE)(const fc_geom *g)
{
    if (CAT(banded_, TYPE)(g)) {
        const ptrdiff_t rows = CAT(band_rows_, TYPE)(g);
        return (g->Ho + rows - 1) / rows;
    }
    const ptrdiff_t nc = CAT(fc_gemm_tile_cols_, TYPE)();
    return (g->Ho * g->Wo + nc - 1) / nc;
}

ptrdiff_t CAT(fc_gemm_work_size_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    const ptrdiff_t width = CAT(tile_width_, TYPE)(g);
    if (CAT(banded_, TYPE)(g))                  /* B is read off the slab */
        return fc_add_sat(CAT(slab_size_, TYPE)(g), fc_mul_sat(F, width));
    return FC_GEMM_KC * width;                            /* packed B block */
}

/* K is cut into blocks of equal size, at most FC_GEMM_KC. */
static ptrdiff_t CAT(k_block_, TYPE)(ptrdiff_t K)
{
    const ptrdiff_t blocks = (K + FC_GEMM_KC - 1) / FC_GEMM_KC;
    return (K + blocks - 1) / blocks;
}

/* C (F x n) (+)= Wp[:, k0:k0+kc] @ Bblock: each kc x nr panel of the packed
 * block stays in L1 while the filter panels pass.  Columns past n_valid are
 * not written; the first K block adds the bias, later ones accumulate. */
static void CAT(gemm_block_, TYPE)(const TYPE *restrict wpack, ptrdiff_t F,
                                   ptrdiff_t K, ptrdiff_t k0, ptrdiff_t kc,
                                   const TYPE *restrict bpack,
                                   ptrdiff_t n_valid, TYPE *restrict c,
                                   ptrdiff_t ldc, const TYPE *restrict bias)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr;
    for (ptrdiff_t q0 = 0, p = 0; q0 < n_valid; q0 += nr, ++p) {
        const ptrdiff_t nq = fc_min(nr, n_valid - q0);
        for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
            UK_RUN(nq)(
                kc, wpack + f0 * K + k0 * mr, bpack + p * kc * nr,
                c + f0 * ldc + q0, ldc, fc_min(mr, F - f0), nq, k0 > 0,
                bias + f0);
    }
}

/* The same with row k of the block at rowp[k] (read in place, n_valid
 * rounded up to whole panels must be readable there). */
static void CAT(gemm_block_rows_, TYPE)(const TYPE *restrict wpack, ptrdiff_t F,
                                        ptrdiff_t K, ptrdiff_t k0, ptrdiff_t kc,
                                        const TYPE *const *restrict rowp,
                                        ptrdiff_t n_valid, TYPE *restrict c,
                                        ptrdiff_t ldc, const TYPE *restrict bias)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr;
    for (ptrdiff_t q0 = 0; q0 < n_valid; q0 += nr) {
        const ptrdiff_t nq = fc_min(nr, n_valid - q0);
        for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
            UK_RUN_ROWS(nq)(
                kc, wpack + f0 * K + k0 * mr, rowp, q0, c + f0 * ldc + q0, ldc,
                fc_min(mr, F - f0), nq, k0 > 0, bias + f0);
    }
}

/* A contiguous run src[0 .. n) as one row of B: element q goes to
 * dst[(q / nr) * pstride + q % nr]. */
FC_ALWAYS_INLINE void CAT(run_into_panels_, TYPE)(const TYPE *restrict src,
                                                  ptrdiff_t n, ptrdiff_t pstride,
                                                  TYPE *restrict dst)
{
    const ptrdiff_t nr = UK->nr;
    for (ptrdiff_t p = 0; p * nr < n; ++p) {
        const ptrdiff_t m = fc_min(nr, n - p * nr);
        for (ptrdiff_t q = 0; q < m; ++q) dst[p * pstride + q] = src[p * nr + q];
    }
}

/* The slab of output rows [oh0, oh0 + slab_rows): phase (ph, pw) of channel
 * c at slab + ((c*sh + ph)*sw + pw) * slab_rows * Wv, row-major, Wv wide. */
FC_ALWAYS_INLINE void CAT(fill_slab_, TYPE)(const TYPE *restrict x,
                                            const fc_geom *g, ptrdiff_t oh0,
                                            TYPE *restrict slab)
{
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g);
    const ptrdiff_t rows = CAT(slab_rows_, TYPE)(g), HW = g->H * g->W;
    for (ptrdiff_t c = 0; c < g->C; ++c)
        for (ptrdiff_t ph = 0; ph < g->sh; ++ph)
            for (ptrdiff_t pw = 0; pw < g->sw; ++pw) {
                ptrdiff_t a, b;         /* columns q reading x[.., q*sw + off] */
                const ptrdiff_t off = pw - g->pl;
                fc_valid_range(off, g->sw, g->W, Wv, &a, &b);
                TYPE *restrict phase = slab + ((c * g->sh + ph) * g->sw + pw) * rows * Wv;
                for (ptrdiff_t r = 0; r < rows; ++r) {
                    TYPE *restrict dst = phase + r * Wv;
                    const ptrdiff_t ih = (oh0 + r) * g->sh + ph - g->pt;
                    if (ih < 0 || ih >= g->H) {
                        for (ptrdiff_t q = 0; q < Wv; ++q) dst[q] = 0;
                        continue;
                    }
                    const TYPE *restrict src = x + c * HW + ih * g->W + off;
                    for (ptrdiff_t q = 0; q < a; ++q) dst[q] = 0;
                    CAT(strided_copy_, TYPE)(src + a * g->sw, g->sw, b - a, dst + a);
                    for (ptrdiff_t q = b; q < Wv; ++q) dst[q] = 0;
                }
            }
    const ptrdiff_t used = g->C * g->sh * g->sw * rows * Wv;
    for (ptrdiff_t q = used; q < used + UK->nr; ++q) slab[q] = 0;
}

/* p[q] = max(p[q], 0), NaN kept (the conv epilogue's ReLU) */
FC_ALWAYS_INLINE void CAT(relu_run_, TYPE)(TYPE *restrict p, ptrdiff_t n)
{
    for (ptrdiff_t q = 0; q < n; ++q) p[q] = p[q] < 0 ? 0 : p[q];
}

FC_CLONES int CAT(fc_conv2d_gemm_tile_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                                    const TYPE *restrict wpack, ptrdiff_t F,
                                    const TYPE *restrict bias, int relu,
                                    ptrdiff_t tile, TYPE *restrict work,
                                    TYPE *restrict y)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t KK = g->kh * g->kw, K = g->C * KK, L = g->Ho * g->Wo;
    const ptrdiff_t HW = g->H * g->W, width = CAT(tile_width_, TYPE)(g);
    const ptrdiff_t kb = CAT(k_block_, TYPE)(K);
    TYPE *restrict bpack = work;

    if (!CAT(banded_, TYPE)(g)) {
        const ptrdiff_t nc = CAT(fc_gemm_tile_cols_, TYPE)();
        const ptrdiff_t l0 = tile * nc, l1 = fc_min(L, l0 + nc);
        const ptrdiff_t n = l1 - l0, panels = (n + nr - 1) / nr;
        const int pointwise = CAT(pointwise_, TYPE)(g);
        for (ptrdiff_t k0 = 0; k0 < K; k0 += kb) {
            const ptrdiff_t kc = fc_min(kb, K - k0);
            for (ptrdiff_t k = k0; k < k0 + kc; ++k) {
                TYPE *restrict dst = bpack + (k - k0) * nr;
                if (pointwise) {
                    CAT(run_into_panels_, TYPE)(x + k * HW + l0, n, kc * nr, dst);
                } else {
                    ptrdiff_t c, i, j;
                    fc_tap(k, g->kh, g->kw, &c, &i, &j);
                    CAT(im2col_row_panels_, TYPE)(x + c * HW, g, i, j, l0, l1, nr,
                                                  kc * nr, dst);
                }
                TYPE *restrict last = dst + (panels - 1) * kc * nr;
                for (ptrdiff_t q = n - (panels - 1) * nr; q < nr; ++q) last[q] = 0;
            }
            CAT(gemm_block_, TYPE)(wpack, F, K, k0, kc, bpack, n, y + l0, L, bias);
        }
        if (relu)                               /* the tile is still in cache */
            for (ptrdiff_t f = 0; f < F; ++f) CAT(relu_run_, TYPE)(y + f * L + l0, n);
        return FC_OK;
    }

    /* a band of output rows [oh0, oh1) over the phase slab */
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g);
    const ptrdiff_t band = CAT(band_rows_, TYPE)(g);
    const ptrdiff_t oh0 = tile * band, oh1 = fc_min(g->Ho, oh0 + band);
    const ptrdiff_t n = (oh1 - oh0) * Wv, panels = (n + nr - 1) / nr;
    const ptrdiff_t pstride = CAT(slab_rows_, TYPE)(g) * Wv;  /* per phase */
    TYPE *restrict slab = work;
    TYPE *restrict yband = slab + CAT(slab_size_, TYPE)(g);
    const TYPE *rowp[FC_GEMM_KC];
    CAT(fill_slab_, TYPE)(x, g, oh0, slab);

    for (ptrdiff_t k0 = 0; k0 < K; k0 += kb) {
        const ptrdiff_t kc = fc_min(kb, K - k0);
        for (ptrdiff_t k = k0; k < k0 + kc; ++k) {
            ptrdiff_t c, i, j;
            fc_tap(k, g->kh, g->kw, &c, &i, &j);
            const ptrdiff_t ri = i * g->dh, rj = j * g->dw;
            const ptrdiff_t phase = (c * g->sh + ri % g->sh) * g->sw + rj % g->sw;
            rowp[k - k0] = slab + phase * pstride + ri / g->sh * Wv + rj / g->sw;
        }
        CAT(gemm_block_rows_, TYPE)(wpack, F, K, k0, kc, rowp, panels * nr,
                                    yband, width, bias);
    }

    /* keep the Wo real columns of each virtual row (and the ReLU) */
    for (ptrdiff_t f = 0; f < F; ++f)
        for (ptrdiff_t r = 0; r < oh1 - oh0; ++r) {
            const TYPE *restrict src = yband + f * width + r * Wv;
            TYPE *restrict dst = y + f * L + (oh0 + r) * g->Wo;
            if (relu)
                for (ptrdiff_t q = 0; q < g->Wo; ++q) dst[q] = src[q] < 0 ? 0 : src[q];
            else
                for (ptrdiff_t q = 0; q < g->Wo; ++q) dst[q] = src[q];
        }
    return FC_OK;
}


/* ---- backward ------------------------------------------------------------
 * grad_x: dcols (K x n) = W^T (K x F) @ Gy (F x n), then col2im.  The rows of
 * dcols are split into blocks of whole channels (fc_gemm_grad_input_block_
 * rows), so blocks write disjoint planes of grad_x and run in parallel.
 * grad_w: Gw (F x K) += Gy (F x l) @ cols^T (l x K) by the same GEMM
 * micro-kernels, l being the reduction index: both operands are packed
 * transposed (UK->pack_t). */

static ptrdiff_t CAT(block_rows_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t KK = g->kh * g->kw;
    return fc_max(1, FC_GEMM_MB / KK) * KK;
}

ptrdiff_t CAT(fc_gemm_grad_input_blocks_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t R = CAT(block_rows_, TYPE)(g);
    return (g->C * g->kh * g->kw + R - 1) / R;
}

ptrdiff_t CAT(fc_gemm_packed_weights_t_size_, TYPE)(const fc_geom *g,
                                                    ptrdiff_t F)
{
    const ptrdiff_t mr = UK->mr, R = CAT(block_rows_, TYPE)(g);
    return fc_mul_sat(CAT(fc_gemm_grad_input_blocks_, TYPE)(g) * ((R + mr - 1) / mr * mr), F);
}

void CAT(fc_gemm_pack_weights_t_, TYPE)(const TYPE *restrict w,
                                        const fc_geom *g, ptrdiff_t F,
                                        TYPE *restrict packed)
{
    const ptrdiff_t mr = UK->mr, R = CAT(block_rows_, TYPE)(g);
    const ptrdiff_t K = g->C * g->kh * g->kw;
    const ptrdiff_t blocks = CAT(fc_gemm_grad_input_blocks_, TYPE)(g);
    for (ptrdiff_t b = 0; b < blocks; ++b) {
        TYPE *restrict out = packed + b * ((R + mr - 1) / mr * mr) * F;
        const ptrdiff_t r1 = fc_min(K, (b + 1) * R);
        for (ptrdiff_t r0 = b * R; r0 < r1; r0 += mr) {
            const ptrdiff_t m = fc_min(mr, r1 - r0);
            for (ptrdiff_t f = 0; f < F; ++f, out += mr) {
                for (ptrdiff_t r = 0; r < m; ++r) out[r] = w[f * K + r0 + r];
                for (ptrdiff_t r = m; r < mr; ++r) out[r] = 0;
            }
        }
    }
}

ptrdiff_t CAT(fc_gemm_grad_input_work_size_, TYPE)(const fc_geom *g,
                                                   ptrdiff_t F)
{
    const ptrdiff_t nc = CAT(fc_gemm_tile_cols_, TYPE)();
    return fc_add_sat(fc_mul_sat(nc, F), CAT(block_rows_, TYPE)(g) * nc);
}

FC_CLONES int CAT(fc_conv2d_gemm_grad_input_, TYPE)(const TYPE *restrict gy,
                                          const fc_geom *g,
                                          const TYPE *restrict wtpack,
                                          ptrdiff_t F, ptrdiff_t block,
                                          TYPE *restrict work,
                                          TYPE *restrict gx)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr, nc = CAT(fc_gemm_tile_cols_, TYPE)();
    const ptrdiff_t KK = g->kh * g->kw, K = g->C * KK, L = g->Ho * g->Wo;
    const ptrdiff_t HW = g->H * g->W, R = CAT(block_rows_, TYPE)(g);
    const ptrdiff_t r_start = block * R, rows = fc_min(R, K - r_start);
    const int pointwise = CAT(pointwise_, TYPE)(g);
    const TYPE *restrict ap = wtpack + block * ((R + mr - 1) / mr * mr) * F;
    TYPE *restrict bpack = work;
    TYPE *restrict dcols = work + nc * F;

    for (ptrdiff_t l0 = 0; l0 < L; l0 += nc) {
        const ptrdiff_t n = fc_min(nc, L - l0), panels = (n + nr - 1) / nr;
        /* Pack Gy (F x n): panel p holds columns [p*nr, p*nr + nr) */
        for (ptrdiff_t p = 0; p < panels; ++p) {
            const ptrdiff_t nq = fc_min(nr, n - p * nr);
            for (ptrdiff_t f = 0; f < F; ++f) {
                TYPE *restrict dst = bpack + (p * F + f) * nr;
                const TYPE *restrict src = gy + f * L + l0 + p * nr;
                for (ptrdiff_t q = 0; q < nq; ++q) dst[q] = src[q];
                for (ptrdiff_t q = nq; q < nr; ++q) dst[q] = 0;
            }
        }
        for (ptrdiff_t f0 = 0; f0 < F; f0 += FC_GEMM_KC) {
            const ptrdiff_t fc = fc_min(FC_GEMM_KC, F - f0);
            for (ptrdiff_t p = 0; p < panels; ++p) {
                const ptrdiff_t nq = fc_min(nr, n - p * nr);
                for (ptrdiff_t r0 = 0; r0 < rows; r0 += mr) {
                    TYPE *c = pointwise ? gx + (r_start + r0) * L + l0 + p * nr
                                        : dcols + r0 * n + p * nr;
                    UK_RUN(nq)(
                        fc, ap + r0 * F + f0 * mr, bpack + (p * F + f0) * nr, c,
                        pointwise ? L : n, fc_min(mr, rows - r0), nq, f0 > 0,
                        NULL);
                }
            }
        }
        if (!pointwise) {
            for (ptrdiff_t r = 0; r < rows; ++r) {
                ptrdiff_t ch, i, j;
                fc_tap(r_start + r, g->kh, g->kw, &ch, &i, &j);
                CAT(col2im_row_, TYPE)(dcols + r * n, g, i, j, l0, l0 + n,
                                       gx + ch * HW);
            }
        }
    }
    return FC_OK;
}

/* Slab rows for a block: the output rows it touches, the taps, one more
 * for the reads past the end of a row (zero-gradient columns). */
static ptrdiff_t CAT(gw_slab_rows_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g);
    return (FC_GW_KC - 1) / Wv + 2 + (g->kh - 1) * g->dh + 1;
}

static ptrdiff_t CAT(gw_slab_size_, TYPE)(const fc_geom *g)
{
    return fc_mul_sat(g->C, fc_mul_sat(CAT(gw_slab_rows_, TYPE)(g),
                                       CAT(virtual_width_, TYPE)(g)));
}

/* grad_w on "virtual" positions (unit stride, not 1x1): as the forward
 * tiles, output rows are widened to Wv (virtual_width_) with zero gradients
 * in the extra columns, so that im2col row (c, i, j) of a block is one
 * contiguous run of a zero-padded slab of input rows: the transposing
 * packer reads it there (no im2col pass).  Used while the extra columns
 * cost at most an eighth more products (resnet-14's 14 + 2 columns did
 * not pay) and the slab fits (slab_fits_). */
static int CAT(gw_virtual_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g);
    return g->sh == 1 && g->sw == 1 && g->kh * g->kw > 1
           && Wv - g->Wo <= g->Wo / 8      /* 8*Wv <= 9*Wo, without overflow */
           && CAT(slab_fits_, TYPE)(g, CAT(gw_slab_size_, TYPE)(g));
}

ptrdiff_t CAT(fc_gemm_grad_weight_work_size_, TYPE)(const fc_geom *g,
                                                    ptrdiff_t F)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr;
    ptrdiff_t size = fc_mul_sat((F + mr - 1) / mr * mr + 2 * nr, FC_GW_KC);
    if (CAT(gw_virtual_, TYPE)(g))
        size = fc_add_sat(size, CAT(gw_slab_size_, TYPE)(g));
    return size;
}

/* Virtual-position grad_w of image n's real positions [la, lb). */
static void CAT(grad_weight_virtual_, TYPE)(const TYPE *restrict x,
                                            const TYPE *restrict gy,
                                            const fc_geom *g, ptrdiff_t F,
                                            ptrdiff_t la, ptrdiff_t lb,
                                            TYPE *restrict work,
                                            TYPE *restrict gw)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr, Fp = (F + mr - 1) / mr * mr;
    const ptrdiff_t K = g->C * g->kh * g->kw, L = g->Ho * g->Wo;
    const ptrdiff_t HW = g->H * g->W, Wo = g->Wo;
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g);
    const ptrdiff_t a = fc_min(g->pl, Wv), b = fc_min(Wv, g->pl + g->W);
    TYPE *restrict apack = work;
    TYPE *restrict bpack = apack + Fp * FC_GW_KC;
    TYPE *restrict slab = bpack + 2 * nr * FC_GW_KC;
    const TYPE *rowp[64];
    const ptrdiff_t va = la / Wo * Wv + la % Wo, vb = lb / Wo * Wv + lb % Wo;

    for (ptrdiff_t v0 = va; v0 < vb; v0 += FC_GW_KC) {
        const ptrdiff_t lc = fc_min(FC_GW_KC, vb - v0);
        const ptrdiff_t oh_a = v0 / Wv, oh_b = (v0 + lc - 1) / Wv;
        const ptrdiff_t R = oh_b - oh_a + (g->kh - 1) * g->dh + 2;
        /* A: the gradients of each output row, zeros for its extra columns */
        for (ptrdiff_t v = v0; v < v0 + lc;) {
            const ptrdiff_t oh = v / Wv, ow = v - oh * Wv;
            const ptrdiff_t len = fc_min(Wv - ow, v0 + lc - v);
            const ptrdiff_t real = fc_max(0, fc_min(Wo - ow, len));
            if (real > 0)
                UK->pack_t(gy + oh * Wo + ow, L, NULL, F, real, mr, lc * mr,
                           apack + (v - v0) * mr);
            for (ptrdiff_t p = 0; p < Fp / mr; ++p) {
                TYPE *restrict z = apack + p * lc * mr + (v - v0 + real) * mr;
                for (ptrdiff_t q = 0; q < (len - real) * mr; ++q) z[q] = 0;
            }
            v += len;
        }
        /* the slab: input rows oh_a - pt .. + R, zero-padded to Wv */
        for (ptrdiff_t c = 0; c < g->C; ++c) {
            for (ptrdiff_t r = 0; r < R; ++r) {
                TYPE *restrict dst = slab + (c * R + r) * Wv;
                const ptrdiff_t ih = oh_a - g->pt + r;
                if (ih < 0 || ih >= g->H) {
                    for (ptrdiff_t q = 0; q < Wv; ++q) dst[q] = 0;
                    continue;
                }
                const TYPE *restrict src = x + c * HW + ih * g->W;
                for (ptrdiff_t q = 0; q < a; ++q) dst[q] = 0;
                for (ptrdiff_t q = a; q < b; ++q) dst[q] = src[q - g->pl];
                for (ptrdiff_t q = b; q < Wv; ++q) dst[q] = 0;
            }
        }
        const ptrdiff_t off = v0 - oh_a * Wv;
        for (ptrdiff_t k0 = 0; k0 < K; k0 += nr) {
            const ptrdiff_t nk = fc_min(nr, K - k0);
            for (ptrdiff_t k = k0; k < k0 + nk; ++k) {
                ptrdiff_t c, i, j;
                fc_tap(k, g->kh, g->kw, &c, &i, &j);
                rowp[k - k0] = slab + (c * R + i * g->dh) * Wv + j * g->dw + off;
            }
            UK->pack_t(NULL, 0, rowp, nk, lc, nr, 0, bpack);
            for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
                UK_RUN(nk)(
                    lc, apack + f0 * lc, bpack, gw + f0 * K + k0, K,
                    fc_min(mr, F - f0), nk, 1, NULL);
        }
    }
}

/* Gw (F x K) += Gy (F x l) @ cols^T (l x K) by the GEMM micro-kernel, the
 * output positions l being its reduction index, over the global positions
 * [p0, p1) of the batch (position n*L + l).  Blocks of FC_GW_KC positions,
 * which may span several small images, are packed transposed (l-major):
 * the gradients into MR-row panels (A), and the im2col rows, NR at a time,
 * into one NR-wide panel (B), which stays in L1 while the gradient panels
 * pass.  Each Gw element sums its block in order, then is added to
 * gw: the result does not depend on the thread count. */
FC_CLONES int CAT(fc_conv2d_gemm_grad_weight_, TYPE)(const TYPE *restrict x,
                                                     ptrdiff_t x_stride,
                                                     const TYPE *restrict gy,
                                                     ptrdiff_t gy_stride,
                                                     const fc_geom *g,
                                                     ptrdiff_t F, ptrdiff_t p0,
                                                     ptrdiff_t p1,
                                                     TYPE *restrict work,
                                                     TYPE *restrict gw)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr;
    const ptrdiff_t KK = g->kh * g->kw, K = g->C * KK, L = g->Ho * g->Wo;
    const ptrdiff_t HW = g->H * g->W;
    const int pointwise = CAT(pointwise_, TYPE)(g);
    TYPE *restrict apack = work;
    TYPE *restrict bpack = apack + (F + mr - 1) / mr * mr * FC_GW_KC;
    TYPE *restrict rows = bpack + nr * FC_GW_KC;

    if (CAT(gw_virtual_, TYPE)(g)) {
        for (ptrdiff_t n = p0 / L; n * L < p1; ++n)
            CAT(grad_weight_virtual_, TYPE)(x + n * x_stride, gy + n * gy_stride,
                                            g, F, fc_max(p0 - n * L, 0),
                                            fc_min(p1 - n * L, L), work, gw);
        return FC_OK;
    }
    for (ptrdiff_t b0 = p0; b0 < p1; b0 += FC_GW_KC) {
        const ptrdiff_t lc = fc_min(FC_GW_KC, p1 - b0);
        /* A: the gradients, transposed image segment by image segment */
        for (ptrdiff_t q = b0; q < b0 + lc;) {
            const ptrdiff_t n = q / L, l = q - n * L;
            const ptrdiff_t len = fc_min(L - l, b0 + lc - q);
            UK->pack_t(gy + n * gy_stride + l, L, NULL, F, len, mr, lc * mr,
                       apack + (q - b0) * mr);
            q += len;
        }
        for (ptrdiff_t k0 = 0; k0 < K; k0 += nr) {
            const ptrdiff_t nk = fc_min(nr, K - k0);
            /* B: nk rows of cols, unfolded (unless 1x1), then transposed */
            for (ptrdiff_t q = b0; q < b0 + lc;) {
                const ptrdiff_t n = q / L, l = q - n * L;
                const ptrdiff_t len = fc_min(L - l, b0 + lc - q);
                if (pointwise) {
                    UK->pack_t(x + n * x_stride + k0 * HW + l, HW, NULL, nk, len, nr,
                               0, bpack + (q - b0) * nr);
                } else {
                    for (ptrdiff_t k = k0; k < k0 + nk; ++k) {
                        ptrdiff_t ch, i, j;
                        fc_tap(k, g->kh, g->kw, &ch, &i, &j);
                        CAT(im2col_row_, TYPE)(x + n * x_stride + ch * HW, g, i,
                                               j, l, l + len,
                                               rows + (k - k0) * lc + (q - b0));
                    }
                }
                q += len;
            }
            if (!pointwise) UK->pack_t(rows, lc, NULL, nk, lc, nr, 0, bpack);
            for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
                UK_RUN(nk)(
                    lc, apack + f0 * lc, bpack, gw + f0 * K + k0, K,
                    fc_min(mr, F - f0), nk, 1, NULL);
        }
    }
    return FC_OK;
}

