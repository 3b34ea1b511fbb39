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

/* The column budget of a forward tile: a K x NC block of B stays in L2
 * (FC_GEMM_B_BYTES), so layers with K shorter than FC_GEMM_KC (the first
 * layer's 27, 1x1 layers on few channels) get wider tiles, up to 4x, and
 * pay the per-tile work (slab, edges) less often. */
static ptrdiff_t CAT(tile_cols_for_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t K = fc_mul_sat(g->C, fc_mul_sat(g->kh, g->kw));
    const ptrdiff_t kc = fc_max(fc_min(K, FC_GEMM_KC), FC_GEMM_KC / 4);
    const ptrdiff_t n = FC_GEMM_B_BYTES / ((ptrdiff_t)sizeof(TYPE) * kc);
    return fc_max(nr, n / nr * nr);
}

/* Whether a banded tile copies each kc x NR panel of B off the slab into
 * an aligned panel before the filter panels pass: the slab's rows start at
 * any column, so reading them in place splits most vector loads across two
 * cache lines; the copy (one load and store per vector) pays for itself
 * where enough filter panels reuse it.  On an AVX-512 core (and its AVX2
 * kernels): alexnet-1 (96 filters) 1.07x, strided (128) 1.02-1.05x, but
 * dilated (64) 0.98x. */
static int CAT(pack_panels_, TYPE)(ptrdiff_t F)
{
    return F >= 96;
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
    const ptrdiff_t nc = CAT(tile_cols_for_, TYPE)(g);
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

static ptrdiff_t CAT(gcd_, TYPE)(ptrdiff_t a, ptrdiff_t b)
{
    while (b) {
        const ptrdiff_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The used phases of one axis (kernel k, dilation d, stride s) are those
 * some tap lands on, t*d % s for t < k (a 1x1 stride-2 layer reads one
 * phase of four).  t*d % s repeats with period s / gcd(d, s), so taps
 * t < phase_taps_ land on distinct phases, one per used phase: loops over
 * the used phases run over these taps, never over the stride (which may be
 * 2**61). */
static inline ptrdiff_t CAT(phase_taps_, TYPE)(ptrdiff_t k, ptrdiff_t d, ptrdiff_t s)
{
    if (d == 1 || s == 1) return fc_min(k, s);
    return fc_min(k, s / CAT(gcd_, TYPE)(d, s));
}

/* Used phases are numbered in increasing order.  Returns p's number (-1 if
 * unused) and sets *count to the axis' used phases.  In O(k), whatever the
 * stride. */
static inline ptrdiff_t CAT(phase_rank_, TYPE)(ptrdiff_t k, ptrdiff_t d,
                                               ptrdiff_t s, ptrdiff_t p,
                                               ptrdiff_t *count)
{
    if (d == 1 || s == 1) {     /* taps 0 .. k-1 land on phases t % s */
        *count = fc_min(k, s);
        return p < *count ? p : -1;
    }
    const ptrdiff_t gd = CAT(gcd_, TYPE)(d, s), period = s / gd;
    if (k >= period) {          /* every multiple of gcd(d, s) */
        *count = period;
        return p % gd == 0 ? p / gd : -1;
    }
    ptrdiff_t rank = 0;         /* k distinct phases t*d % s */
    int used = 0;
    for (ptrdiff_t t = 0; t < k; ++t) {
        const ptrdiff_t q = (t * d) % s;
        rank += q < p;
        used |= q == p;
    }
    *count = k;
    return used ? rank : -1;
}

/* The slab's phase slot of channel c, phase (ph, pw) (used phases only). */
static inline ptrdiff_t CAT(phase_slot_, TYPE)(const fc_geom *g, ptrdiff_t c,
                                               ptrdiff_t ph, ptrdiff_t pw)
{
    ptrdiff_t uh, uw;
    const ptrdiff_t rh = CAT(phase_rank_, TYPE)(g->kh, g->dh, g->sh, ph, &uh);
    const ptrdiff_t rw = CAT(phase_rank_, TYPE)(g->kw, g->dw, g->sw, pw, &uw);
    return (c * uh + rh) * uw + rw;
}

/* Slab elements for nt images side by side (see side_images_): C * (used
 * phases) of slab_rows x nt*Wv, plus one panel of slack for the reads past
 * the last column of the last tile.  Saturated: with huge strides or
 * dilations the product overflows 64 bits, and a wrapped size once chose
 * the slab and wrote past the workspace. */
static ptrdiff_t CAT(slab_size_n_, TYPE)(const fc_geom *g, ptrdiff_t nt)
{
    ptrdiff_t uh, uw;
    CAT(phase_rank_, TYPE)(g->kh, g->dh, g->sh, 0, &uh);
    CAT(phase_rank_, TYPE)(g->kw, g->dw, g->sw, 0, &uw);
    const ptrdiff_t phases = fc_mul_sat(g->C, uh * uw);
    const ptrdiff_t plane = fc_mul_sat(CAT(slab_rows_, TYPE)(g),
                                       fc_mul_sat(nt, CAT(virtual_width_, TYPE)(g)));
    return fc_add_sat(fc_mul_sat(phases, plane), UK->nr);
}

static ptrdiff_t CAT(slab_size_, TYPE)(const fc_geom *g)
{
    return CAT(slab_size_n_, TYPE)(g, 1);
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

/* Banded tiles, except for pointwise layers written densely, whose B rows
 * need no slab (their tiles are runs of pixels, written straight into y).
 * Short columns too (K = 27 at cifar-first: 1.2x over runs of positions
 * packed from the input, since the micro-kernel reads the slab in place). */
static int CAT(banded_, TYPE)(const fc_geom *g, int dense)
{
    if (dense && CAT(pointwise_, TYPE)(g)) return 0;
    return CAT(slab_fits_, TYPE)(g, CAT(slab_size_, TYPE)(g));
}

/* Whether y's layout is the plain (F, Ho, Wo) one per image. */
static int CAT(dense_, TYPE)(const fc_geom *g, const fc_ylayout *ly)
{
    return ly->col == 1 && ly->row == g->Wo && ly->plane == g->Ho * g->Wo;
}

/* Images side by side: where a whole image takes at most half a tile
 * (small images: 8x8 to 16x16 outputs), a banded tile holds all Ho rows of
 * several images, row r of the slab being the images' padded rows r one
 * after the other, Wv columns each.  Each row of B is still one run of the
 * slab (reads past an image's last column land in the next one's left
 * padding, as past a row's end), and the micro-kernel's panels are full
 * rather than an image's 64 or 72 columns rounded up to 96.  The most
 * images a tile takes (at most FC_GEMM_SLAB_BYTES of slab), or 1. */
static ptrdiff_t CAT(side_max_, TYPE)(const fc_geom *g, int dense)
{
    if (!CAT(banded_, TYPE)(g, dense)) return 1;
    const ptrdiff_t nc = CAT(tile_cols_for_, TYPE)(g);
    const ptrdiff_t fit = nc / fc_mul_sat(g->Ho, CAT(virtual_width_, TYPE)(g));
    const ptrdiff_t slab = fc_mul_sat(CAT(slab_size_, TYPE)(g), (ptrdiff_t)sizeof(TYPE));
    const ptrdiff_t most = fc_min(fit, fc_max(1, FC_GEMM_SLAB_BYTES / slab));
    return most >= 2 ? most : 1;
}

/* Images per tile for a batch of N: as many as fit, but at least
 * FC_GEMM_MIN_ITEMS tiles (or N) so that threads share the batch evenly;
 * 1 when images are not put side by side. */
static ptrdiff_t CAT(side_images_, TYPE)(const fc_geom *g, ptrdiff_t N, int dense)
{
    const ptrdiff_t most = CAT(side_max_, TYPE)(g, dense);
    if (most < 2 || N < 2) return 1;
    const ptrdiff_t tiles = fc_max((N + most - 1) / most, fc_min(N, FC_GEMM_MIN_ITEMS));
    return (N + tiles - 1) / tiles;
}

/* Columns of one tile of one image, rounded up to whole panels. */
static ptrdiff_t CAT(tile_width_, TYPE)(const fc_geom *g, int dense)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t n = CAT(banded_, TYPE)(g, dense)
        ? CAT(band_rows_, TYPE)(g) * CAT(virtual_width_, TYPE)(g)
        : fc_min(g->Ho * g->Wo, CAT(tile_cols_for_, TYPE)(g));
    return (n + nr - 1) / nr * nr;
}

/* Tiles of one image. */
static ptrdiff_t CAT(image_tiles_, TYPE)(const fc_geom *g, int dense)
{
    if (CAT(banded_, TYPE)(g, dense)) {
        const ptrdiff_t rows = CAT(band_rows_, TYPE)(g);
        return (g->Ho + rows - 1) / rows;
    }
    const ptrdiff_t nc = CAT(tile_cols_for_, TYPE)(g);
    return (g->Ho * g->Wo + nc - 1) / nc;
}

static ptrdiff_t CAT(work_size_, TYPE)(const fc_geom *g, ptrdiff_t F, int dense)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t width = CAT(tile_width_, TYPE)(g, dense);
    if (!CAT(banded_, TYPE)(g, dense))
        return FC_GEMM_KC * width;                        /* packed B block */
    const ptrdiff_t nt = CAT(side_max_, TYPE)(g, dense);
    /* nt > 1: the nt images' Ho*nt*Wv columns take at most a tile */
    const ptrdiff_t side = nt > 1 ? (g->Ho * nt * CAT(virtual_width_, TYPE)(g) + nr - 1) / nr * nr : 0;
    const ptrdiff_t panel = CAT(pack_panels_, TYPE)(F) ? FC_GEMM_KC * nr : 0;
    return fc_add_sat(fc_add_sat(panel, CAT(slab_size_n_, TYPE)(g, nt)),
                      fc_mul_sat(F, fc_max(width, side)));  /* B panel, slab, Y band */
}

ptrdiff_t CAT(fc_gemm_tiles_, TYPE)(const fc_geom *g)
{
    return CAT(image_tiles_, TYPE)(g, 1);
}

ptrdiff_t CAT(fc_gemm_work_size_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    return CAT(work_size_, TYPE)(g, F, 1);
}

ptrdiff_t CAT(fc_gemm_items_, TYPE)(const fc_geom *g, ptrdiff_t N,
                                    const fc_ylayout *ly)
{
    const int dense = CAT(dense_, TYPE)(g, ly);
    const ptrdiff_t per = CAT(side_images_, TYPE)(g, N, dense);
    if (per > 1) return (N + per - 1) / per;
    return N * CAT(image_tiles_, TYPE)(g, dense);
}

ptrdiff_t CAT(fc_gemm_item_work_size_, TYPE)(const fc_geom *g, ptrdiff_t F,
                                             const fc_ylayout *ly)
{
    return CAT(work_size_, TYPE)(g, F, CAT(dense_, TYPE)(g, ly));
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
                bias ? bias + f0 : NULL);
    }
}

/* Row k of a panel: nr elements from src (nr a compile-time constant in the
 * usual cases, so that the copy is whole vectors). */
FC_ALWAYS_INLINE void CAT(panel_row_, TYPE)(const TYPE *restrict src,
                                           ptrdiff_t nr, TYPE *restrict dst)
{
    if (nr == 48) {
        for (ptrdiff_t q = 0; q < 48; ++q) dst[q] = src[q];
    } else if (nr == 24) {
        for (ptrdiff_t q = 0; q < 24; ++q) dst[q] = src[q];
    } else {
        for (ptrdiff_t q = 0; q < nr; ++q) dst[q] = src[q];
    }
}

/* The same with row k of the block at rowp[k] (n_valid rounded up to whole
 * panels must be readable there): read in place, or copied panel by panel
 * into bpanel (kc x NR) where pack_panels_ says so. */
static void CAT(gemm_block_rows_, TYPE)(const TYPE *restrict wpack, ptrdiff_t F,
                                        ptrdiff_t K, ptrdiff_t k0, ptrdiff_t kc,
                                        const TYPE *const *restrict rowp,
                                        ptrdiff_t n_valid, TYPE *restrict c,
                                        ptrdiff_t ldc, const TYPE *restrict bias,
                                        TYPE *restrict bpanel)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr;
    const int pack = CAT(pack_panels_, TYPE)(F);
    for (ptrdiff_t q0 = 0; q0 < n_valid; q0 += nr) {
        const ptrdiff_t nq = fc_min(nr, n_valid - q0);
        if (pack) {
            for (ptrdiff_t k = 0; k < kc; ++k)
                CAT(panel_row_, TYPE)(rowp[k] + q0, nr, bpanel + k * nr);
            for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
                UK_RUN(nq)(kc, wpack + f0 * K + k0 * mr, bpanel,
                           c + f0 * ldc + q0, ldc, fc_min(mr, F - f0), nq,
                           k0 > 0, bias ? bias + f0 : NULL);
            continue;
        }
        for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
            UK_RUN_ROWS(nq)(
                kc, wpack + f0 * K + k0 * mr, rowp, q0, c + f0 * ldc + q0, ldc,
                fc_min(mr, F - f0), nq, k0 > 0, bias ? bias + f0 : NULL);
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

/* fill_slab_ex_ for column stride 2 and short rows (cifar's 16x16 and 32x32
 * stride-2 layers: phase rows of 8 or 16 columns, where a strided copy per
 * phase row is mostly loop overhead): input rows are copied into a
 * zero-padded buffer, row t at buf[t * span + pl ..], and split into their
 * two column phases by 8-wide deinterleaving (phase pw, column q:
 * buf[2q + pw]).  Several rows are copied before the first is split, so
 * that the split's vector loads do not wait on the copy's stores. */
FC_ALWAYS_INLINE void CAT(fill_slab_s2_, TYPE)(const TYPE *restrict x,
                                               ptrdiff_t x_stride, ptrdiff_t nt,
                                               const fc_geom *g, ptrdiff_t c0,
                                               ptrdiff_t c1, ptrdiff_t oh0,
                                               ptrdiff_t rows,
                                               TYPE *restrict slab)
{
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g), Wrow = nt * Wv;
    const ptrdiff_t HW = g->H * g->W;
    const ptrdiff_t span = 2 * fc_round8(Wv), full = Wv / 8 * 8;
    const ptrdiff_t chunk = FC_GEMM_ROW_BUF / span;     /* rows per pass */
    const ptrdiff_t n_in = fc_max(0, fc_min(g->W, span - g->pl));
    ptrdiff_t uw;
    TYPE buf[FC_GEMM_ROW_BUF];
    for (ptrdiff_t t = 0; t < chunk * span; ++t) buf[t] = 0;
    const int use0 = CAT(phase_rank_, TYPE)(g->kw, g->dw, 2, 0, &uw) >= 0;
    const int two = uw == 2;            /* both column phases used */
    const ptrdiff_t o0 = use0 ? 0 : 1;  /* the first used one */
    const ptrdiff_t next = rows * Wrow; /* from phase o0's slot to phase 1's */
    const ptrdiff_t th = CAT(phase_taps_, TYPE)(g->kh, g->dh, g->sh);
    for (ptrdiff_t m = 0; m < nt; ++m)      /* image by image: one stream */
        for (ptrdiff_t c = c0; c < c1; ++c)
            for (ptrdiff_t ti = 0; ti < th; ++ti) {   /* the used row phases */
            const ptrdiff_t ph = ti * g->dh % g->sh;
            TYPE *restrict p0 = slab + CAT(phase_slot_, TYPE)(g, c - c0, ph, o0) * next;
                for (ptrdiff_t r0 = 0; r0 < rows; r0 += chunk) {
                    const ptrdiff_t r1 = fc_min(rows, r0 + chunk);
                    for (ptrdiff_t r = r0; r < r1; ++r) {
                        const ptrdiff_t ih = (oh0 + r) * g->sh + ph - g->pt;
                        TYPE *restrict bt = buf + (r - r0) * span + g->pl;
                        if (ih < 0 || ih >= g->H) {
                            for (ptrdiff_t t = 0; t < n_in; ++t) bt[t] = 0;
                        } else {
                            const TYPE *restrict src = x + m * x_stride + c * HW + ih * g->W;
                            for (ptrdiff_t t = 0; t < n_in; ++t) bt[t] = src[t];
                        }
                    }
                    for (ptrdiff_t r = r0; r < r1; ++r) {
                        const TYPE *restrict br = buf + (r - r0) * span;
                        TYPE *restrict d = p0 + r * Wrow + m * Wv;
                        ptrdiff_t q = 0;
                        if (two) {
                            for (; q < full; q += 8) {
                                TYPE e[8], o[8];
                                for (int k = 0; k < 8; ++k) {
                                    e[k] = br[2 * q + 2 * k];
                                    o[k] = br[2 * q + 2 * k + 1];
                                }
                                for (int k = 0; k < 8; ++k) d[q + k] = e[k];
                                for (int k = 0; k < 8; ++k) d[next + q + k] = o[k];
                            }
                            for (; q < Wv; ++q) {
                                d[q] = br[2 * q];
                                d[next + q] = br[2 * q + 1];
                            }
                        } else {
                            for (; q < full; q += 8) {
                                TYPE e[8];
                                for (int k = 0; k < 8; ++k) e[k] = br[2 * q + 2 * k + o0];
                                for (int k = 0; k < 8; ++k) d[q + k] = e[k];
                            }
                            for (; q < Wv; ++q) d[q] = br[2 * q + o0];
                        }
                    }
                }
        }
}

/* The slab of output rows [oh0, oh0 + rows) of channels [c0, c1) of nt
 * images side by side (image m at x + m * x_stride): used phase (ph, pw) of
 * channel c at slab + phase_slot(c - c0, ph, pw) * rows * nt*Wv,
 * row-major, nt*Wv wide, image m's row in columns [m*Wv, m*Wv + Wv). */
FC_ALWAYS_INLINE void CAT(fill_slab_ex_, TYPE)(const TYPE *restrict x,
                                               ptrdiff_t x_stride, ptrdiff_t nt,
                                               const fc_geom *g, ptrdiff_t c0,
                                               ptrdiff_t c1, ptrdiff_t oh0,
                                               ptrdiff_t rows,
                                               TYPE *restrict slab)
{
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g), Wrow = nt * Wv;
    const ptrdiff_t HW = g->H * g->W;
    if (g->sw == 2 && fc_round8(Wv) <= FC_GEMM_ROW_BUF / 8) {  /* 4+ rows */
        CAT(fill_slab_s2_, TYPE)(x, x_stride, nt, g, c0, c1, oh0, rows, slab);
        return;
    }
    /* the used phases only (phase_taps_), never all sh x sw */
    const ptrdiff_t th = CAT(phase_taps_, TYPE)(g->kh, g->dh, g->sh);
    const ptrdiff_t tw = CAT(phase_taps_, TYPE)(g->kw, g->dw, g->sw);
    for (ptrdiff_t m = 0; m < nt; ++m)      /* image by image: one stream */
    for (ptrdiff_t c = c0; c < c1; ++c)
        for (ptrdiff_t ti = 0; ti < th; ++ti) {
            const ptrdiff_t ph = ti * g->dh % g->sh;
            for (ptrdiff_t tj = 0; tj < tw; ++tj) {
                const ptrdiff_t pw = tj * g->dw % g->sw;
                ptrdiff_t a, b;     /* columns q reading x[.., q*sw + off] */
                const ptrdiff_t off = pw - g->pl;
                fc_valid_range(off, g->sw, g->W, Wv, &a, &b);
                TYPE *restrict phase = slab + CAT(phase_slot_, TYPE)(g, c - c0, ph, pw) * rows * Wrow;
                for (ptrdiff_t r = 0; r < rows; ++r) {
                    const ptrdiff_t ih = (oh0 + r) * g->sh + ph - g->pt;
                    {
                        TYPE *restrict dst = phase + r * Wrow + m * Wv;
                        if (ih < 0 || ih >= g->H) {
                            for (ptrdiff_t q = 0; q < Wv; ++q) dst[q] = 0;
                            continue;
                        }
                        for (ptrdiff_t q = 0; q < a; ++q) dst[q] = 0;
                        if (b > a) {    /* a*sw + off in [0, W): no pointer
                                         * off the row (huge strides) */
                            const TYPE *restrict src = x + m * x_stride + c * HW
                                                       + ih * g->W + (a * g->sw + off);
                            CAT(strided_copy_, TYPE)(src, g->sw, b - a, dst + a);
                        }
                        for (ptrdiff_t q = b; q < Wv; ++q) dst[q] = 0;
                    }
                }
            }
        }
}

/* p[q] = max(p[q], 0), NaN kept (the conv epilogue's ReLU) */
FC_ALWAYS_INLINE void CAT(relu_run_, TYPE)(TYPE *restrict p, ptrdiff_t n)
{
    for (ptrdiff_t q = 0; q < n; ++q) p[q] = p[q] < 0 ? 0 : p[q];
}

/* A banded tile: output rows [oh0, oh1) of nt images side by side, image m
 * read at x + m * x_stride and written at y + m * ly->img (element (f, oh,
 * ow) at f * ly->plane + oh * ly->row + ow * ly->col); relu: max(., 0) as
 * the columns are copied out (NaN stays NaN). */
FC_ALWAYS_INLINE void CAT(band_tile_, TYPE)(const TYPE *restrict x,
                                            ptrdiff_t x_stride, ptrdiff_t nt,
                                            ptrdiff_t oh0, ptrdiff_t oh1,
                                            const fc_geom *g,
                                            const TYPE *restrict wpack,
                                            ptrdiff_t F, const TYPE *restrict bias,
                                            int relu, TYPE *restrict work, TYPE *restrict y,
                                            const fc_ylayout *ly)
{
    const ptrdiff_t nr = UK->nr, K = g->C * g->kh * g->kw;
    const ptrdiff_t kb = CAT(k_block_, TYPE)(K);
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g), Wrow = nt * Wv;
    const ptrdiff_t n = (oh1 - oh0) * Wrow, panels = (n + nr - 1) / nr;
    const ptrdiff_t width = panels * nr;
    const ptrdiff_t KK = g->kh * g->kw, rows = CAT(slab_rows_, TYPE)(g);
    const ptrdiff_t pstride = rows * Wrow;  /* per phase */
    TYPE *restrict bpanel = work;           /* first: on a line boundary */
    TYPE *restrict slab = bpanel + (CAT(pack_panels_, TYPE)(F) ? FC_GEMM_KC * nr : 0);
    TYPE *restrict yband = slab + CAT(slab_size_n_, TYPE)(g, nt);
    const ptrdiff_t chan = CAT(phase_slot_, TYPE)(g, 1, 0, 0)     /* slots per */
                           - CAT(phase_slot_, TYPE)(g, 0, 0, 0);  /* channel */
    const TYPE *rowp[FC_GEMM_KC];
    ptrdiff_t filled = 0;                   /* channels in the slab so far */
    {   /* the slack past the last channel, for reads past the last column */
        const ptrdiff_t used = CAT(slab_size_n_, TYPE)(g, nt) - nr;
        for (ptrdiff_t q = used; q < used + nr; ++q) slab[q] = 0;
    }

    for (ptrdiff_t k0 = 0; k0 < K; k0 += kb) {
        const ptrdiff_t kc = fc_min(kb, K - k0);
        /* the block's channels, just before it reads them: they are still
         * in cache (the whole slab of a wide layer is not) */
        const ptrdiff_t c_hi = (k0 + kc - 1) / KK + 1;
        if (c_hi > filled) {
            CAT(fill_slab_ex_, TYPE)(x, x_stride, nt, g, filled, c_hi, oh0, rows,
                                     slab + filled * chan * pstride);
            filled = c_hi;
        }
        for (ptrdiff_t k = k0; k < k0 + kc; ++k) {
            ptrdiff_t c, i, j;
            fc_tap(k, g->kh, g->kw, &c, &i, &j);
            const ptrdiff_t ri = i * g->dh, rj = j * g->dw;
            const ptrdiff_t slot = CAT(phase_slot_, TYPE)(g, c, ri % g->sh, rj % g->sw);
            rowp[k - k0] = slab + slot * pstride + ri / g->sh * Wrow + rj / g->sw;
        }
        CAT(gemm_block_rows_, TYPE)(wpack, F, K, k0, kc, rowp, width, yband,
                                    width, bias, bpanel);
    }

    /* keep the Wo real columns of each image's virtual rows */
    for (ptrdiff_t m = 0; m < nt; ++m)
        for (ptrdiff_t f = 0; f < F; ++f)
            for (ptrdiff_t r = 0; r < oh1 - oh0; ++r) {
                const TYPE *restrict src = yband + f * width + r * Wrow + m * Wv;
                TYPE *restrict dst = y + m * ly->img + f * ly->plane
                                     + (oh0 + r) * ly->row;
                if (relu) {
                    for (ptrdiff_t q = 0; q < g->Wo; ++q)
                        dst[q * ly->col] = src[q] < 0 ? 0 : src[q];
                } else if (ly->col == 1) {
                    for (ptrdiff_t q = 0; q < g->Wo; ++q) dst[q] = src[q];
                } else {
                    for (ptrdiff_t q = 0; q < g->Wo; ++q) dst[q * ly->col] = src[q];
                }
            }
}

/* Runs of output positions (pointwise layers, and strided ones whose slab
 * would be large): tile t of one image, written densely into y. */
FC_ALWAYS_INLINE void CAT(run_tile_, TYPE)(const TYPE *restrict x,
                                           const fc_geom *g,
                                           const TYPE *restrict wpack,
                                           ptrdiff_t F, const TYPE *restrict bias,
                                           int relu, ptrdiff_t tile,
                                           TYPE *restrict work, TYPE *restrict y)
{
    const ptrdiff_t nr = UK->nr;
    const ptrdiff_t KK = g->kh * g->kw, K = g->C * KK, L = g->Ho * g->Wo;
    const ptrdiff_t HW = g->H * g->W, kb = CAT(k_block_, TYPE)(K);
    const ptrdiff_t nc = CAT(tile_cols_for_, TYPE)(g);
    const ptrdiff_t l0 = tile * nc, l1 = fc_min(L, l0 + nc);
    const ptrdiff_t n = l1 - l0, panels = (n + nr - 1) / nr;
    const int pointwise = CAT(pointwise_, TYPE)(g);
    TYPE *restrict bpack = work;
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
    if (relu)                                   /* the tile is still in cache */
        for (ptrdiff_t f = 0; f < F; ++f) CAT(relu_run_, TYPE)(y + f * L + l0, n);
}

FC_CLONES void CAT(fc_conv2d_gemm_item_, TYPE)(const TYPE *restrict x,
                                               ptrdiff_t x_stride, ptrdiff_t N,
                                               const fc_geom *g,
                                               const TYPE *restrict wpack,
                                               ptrdiff_t F,
                                               const TYPE *restrict bias,
                                               int relu, ptrdiff_t item,
                                               TYPE *restrict work,
                                               TYPE *restrict y,
                                               const fc_ylayout *ly)
{
    const int dense = CAT(dense_, TYPE)(g, ly);
    const ptrdiff_t per = CAT(side_images_, TYPE)(g, N, dense);
    if (per > 1) {
        const ptrdiff_t n0 = item * per;
        CAT(band_tile_, TYPE)(x + n0 * x_stride, x_stride, fc_min(per, N - n0),
                              0, g->Ho, g, wpack, F, bias, relu, work,
                              y + n0 * ly->img, ly);
        return;
    }
    const ptrdiff_t tiles = CAT(image_tiles_, TYPE)(g, dense);
    const ptrdiff_t n = item / tiles, t = item - n * tiles;
    if (!CAT(banded_, TYPE)(g, dense)) {
        CAT(run_tile_, TYPE)(x + n * x_stride, g, wpack, F, bias, relu, t, work,
                             y + n * ly->img);
        return;
    }
    const ptrdiff_t band = CAT(band_rows_, TYPE)(g);
    CAT(band_tile_, TYPE)(x + n * x_stride, x_stride, 1, t * band,
                          fc_min(g->Ho, t * band + band), g, wpack, F, bias,
                          relu, work, y + n * ly->img, ly);
}

void CAT(fc_conv2d_gemm_tile_, TYPE)(const TYPE *restrict x, const fc_geom *g,
                                     const TYPE *restrict wpack, ptrdiff_t F,
                                     const TYPE *restrict bias, int relu,
                                     ptrdiff_t tile, TYPE *restrict work,
                                     TYPE *restrict y)
{
    const fc_ylayout dense = {g->Ho * g->Wo * F, g->Ho * g->Wo, g->Wo, 1};
    CAT(fc_conv2d_gemm_item_, TYPE)(x, 0, 1, g, wpack, F, bias, relu, tile,
                                    work, y, &dense);
}


/* ---- grad_x of a strided layer, phase by phase ----------------------------
 * grad_x[c, ih, iw] sums w[f, c, i, j] * gy[f, oh, ow] over ih + pt =
 * oh*sh + i*dh and iw + pl = ow*sw + j*dw.  The input cells of one phase
 * (a, b), ih = a + sh*v and iw = b + sw*u, take only the taps i with
 * i*dh = a + pt (mod sh), at oh = v + (a + pt - i*dh)/sh (j alike): a
 * stride-1 convolution of gy with those taps, in reverse order (the
 * polyphase form of the transposed convolution).  Each phase runs on the
 * forward banded tiles, written straight into its cells of grad_x: no
 * column matrix and no col2im; a phase no tap reaches is zeroed.  The sums
 * are the col2im path's products in another order. */

/* One axis (input size n, kernel k, stride s, padding p, dilation d) of
 * phase a: its cells (*cells), and its taps i = *last - t * *step for
 * t < *taps, the sub-convolution's tap t reading gy cell v + t * *dil - *pad
 * for phase cell v.  *taps is 0 if no tap reaches the phase. */
static void CAT(phase_axis_, TYPE)(ptrdiff_t n, ptrdiff_t k, ptrdiff_t s,
                                   ptrdiff_t p, ptrdiff_t d, ptrdiff_t a,
                                   ptrdiff_t *cells, ptrdiff_t *taps,
                                   ptrdiff_t *last, ptrdiff_t *step,
                                   ptrdiff_t *dil, ptrdiff_t *pad)
{
    ptrdiff_t first = -1;
    for (ptrdiff_t i = 0; i < k && first < 0; ++i)
        if (((i * d - a - p) % s + s) % s == 0) first = i;
    *cells = a < n ? (n - a + s - 1) / s : 0;
    *step = s / CAT(gcd_, TYPE)(d, s);
    *taps = first < 0 ? 0 : (k - 1 - first) / *step + 1;
    *last = first + (*taps - 1) * *step;
    *dil = d / (s / *step);     /* lcm(d, s) / s, without the product */
    *pad = first < 0 ? 0 : (*last * d - a - p) / s;
}

/* Phase (a, b)'s sub-convolution of gy (F channels of Ho x Wo) into the
 * phase's cells of C channels; returns 0 when no tap reaches it (or it has
 * no cells).  *lh, *sth, *lw, *stw: the taps (see phase_axis_). */
static int CAT(phase_geom_, TYPE)(const fc_geom *g, ptrdiff_t F, ptrdiff_t a,
                                  ptrdiff_t b, fc_geom *gp, ptrdiff_t *lh,
                                  ptrdiff_t *sth, ptrdiff_t *lw, ptrdiff_t *stw)
{
    ptrdiff_t nh, th, dh, ph, nw, tw, dw, pw;
    CAT(phase_axis_, TYPE)(g->H, g->kh, g->sh, g->pt, g->dh, a, &nh, &th, lh,
                           sth, &dh, &ph);
    CAT(phase_axis_, TYPE)(g->W, g->kw, g->sw, g->pl, g->dw, b, &nw, &tw, lw,
                           stw, &dw, &pw);
    gp->C = F;
    gp->H = g->Ho;
    gp->W = g->Wo;
    gp->kh = fc_max(th, 1);
    gp->kw = fc_max(tw, 1);
    gp->sh = gp->sw = 1;
    gp->pt = ph;
    gp->pl = pw;
    gp->dh = dh;
    gp->dw = dw;
    gp->Ho = nh;
    gp->Wo = nw;
    return th > 0 && tw > 0 && nh > 0 && nw > 0;
}

/* Phases a >= H (b >= W) have no cells: the loops over phases stop at
 * min(sh, H) x min(sw, W), never at a huge stride.  A phase's
 * sub-convolution runs on banded tiles only (band_tile_, sized by
 * work_size_): its slab must fit (slab_fits_), else col2im is used. */
int CAT(fc_gemm_phases_fit_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    fc_geom gp;
    ptrdiff_t lh, sth, lw, stw;
    for (ptrdiff_t a = 0; a < fc_min(g->sh, g->H); ++a)
        for (ptrdiff_t b = 0; b < fc_min(g->sw, g->W); ++b)
            if (CAT(phase_geom_, TYPE)(g, F, a, b, &gp, &lh, &sth, &lw, &stw)
                && (gp.pt < 0 || gp.pl < 0 || !CAT(banded_, TYPE)(&gp, 0)))
                return 0;
    return 1;
}

ptrdiff_t CAT(fc_gemm_phase_weights_size_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    const ptrdiff_t mr = UK->mr, Cp = (g->C + mr - 1) / mr * mr;
    fc_geom gp;
    ptrdiff_t lh, sth, lw, stw, size = 0;
    for (ptrdiff_t a = 0; a < fc_min(g->sh, g->H); ++a)
        for (ptrdiff_t b = 0; b < fc_min(g->sw, g->W); ++b)
            if (CAT(phase_geom_, TYPE)(g, F, a, b, &gp, &lh, &sth, &lw, &stw))
                size = fc_add_sat(size, fc_mul_sat(fc_mul_sat(Cp, F), gp.kh * gp.kw));
    return size;
}

void CAT(fc_gemm_pack_phase_weights_, TYPE)(const TYPE *restrict w,
                                            const fc_geom *g, ptrdiff_t F,
                                            TYPE *restrict packed)
{
    const ptrdiff_t mr = UK->mr, KK = g->kh * g->kw, C = g->C;
    fc_geom gp;
    ptrdiff_t lh, sth, lw, stw;
    for (ptrdiff_t a = 0; a < fc_min(g->sh, g->H); ++a)
        for (ptrdiff_t b = 0; b < fc_min(g->sw, g->W); ++b) {
            if (!CAT(phase_geom_, TYPE)(g, F, a, b, &gp, &lh, &sth, &lw, &stw))
                continue;
            /* W'[c, f, t, u] = w[f, c, lh - t*sth, lw - u*stw], packed as
             * fc_gemm_pack_weights packs (C, F*kh'*kw') filters */
            const ptrdiff_t K = F * gp.kh * gp.kw;
            for (ptrdiff_t c0 = 0; c0 < C; c0 += mr) {
                const ptrdiff_t m = fc_min(mr, C - c0);
                for (ptrdiff_t k = 0; k < K; ++k, packed += mr) {
                    ptrdiff_t f, t, u;
                    fc_tap(k, gp.kh, gp.kw, &f, &t, &u);
                    const ptrdiff_t tap = (lh - t * sth) * g->kw + lw - u * stw;
                    for (ptrdiff_t r = 0; r < m; ++r)
                        packed[r] = w[(f * C + c0 + r) * KK + tap];
                    for (ptrdiff_t r = m; r < mr; ++r) packed[r] = 0;
                }
            }
        }
}

/* Images per item: what every phase's tiles take side by side. */
static ptrdiff_t CAT(phase_images_, TYPE)(const fc_geom *g, ptrdiff_t F,
                                          ptrdiff_t N)
{
    fc_geom gp;
    ptrdiff_t lh, sth, lw, stw, per = N;
    for (ptrdiff_t a = 0; a < fc_min(g->sh, g->H); ++a)
        for (ptrdiff_t b = 0; b < fc_min(g->sw, g->W); ++b)
            if (CAT(phase_geom_, TYPE)(g, F, a, b, &gp, &lh, &sth, &lw, &stw))
                per = fc_min(per, CAT(side_images_, TYPE)(&gp, N, 0));
    return fc_max(per, 1);
}

ptrdiff_t CAT(fc_gemm_phase_items_, TYPE)(const fc_geom *g, ptrdiff_t F,
                                          ptrdiff_t N)
{
    const ptrdiff_t per = CAT(phase_images_, TYPE)(g, F, N);
    return (N + per - 1) / per;
}

ptrdiff_t CAT(fc_gemm_phase_work_size_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    fc_geom gp;
    ptrdiff_t lh, sth, lw, stw, size = 0;
    for (ptrdiff_t a = 0; a < fc_min(g->sh, g->H); ++a)
        for (ptrdiff_t b = 0; b < fc_min(g->sw, g->W); ++b)
            if (CAT(phase_geom_, TYPE)(g, F, a, b, &gp, &lh, &sth, &lw, &stw))
                size = fc_max(size, CAT(work_size_, TYPE)(&gp, g->C, 0));
    return size;
}

FC_CLONES void CAT(fc_conv2d_gemm_grad_input_phases_, TYPE)(
    const TYPE *restrict gy, ptrdiff_t gy_stride, ptrdiff_t N,
    const fc_geom *g, const TYPE *restrict packed, ptrdiff_t F,
    ptrdiff_t item, TYPE *restrict work, TYPE *restrict gx,
    ptrdiff_t gx_stride)
{
    const ptrdiff_t mr = UK->mr, Cp = (g->C + mr - 1) / mr * mr;
    const ptrdiff_t per = CAT(phase_images_, TYPE)(g, F, N);
    const ptrdiff_t n0 = item * per, nt = fc_min(per, N - n0);
    const ptrdiff_t HW = g->H * g->W;
    gy += n0 * gy_stride;
    gx += n0 * gx_stride;
    fc_geom gp;
    ptrdiff_t lh, sth, lw, stw;
    for (ptrdiff_t a = 0; a < fc_min(g->sh, g->H); ++a)
        for (ptrdiff_t b = 0; b < fc_min(g->sw, g->W); ++b) {
            const fc_ylayout ly = {gx_stride, HW, g->sh * g->W, g->sw};
            TYPE *restrict y = gx + a * g->W + b;
            if (!CAT(phase_geom_, TYPE)(g, F, a, b, &gp, &lh, &sth, &lw, &stw)) {
                const ptrdiff_t nh = a < g->H ? (g->H - a + g->sh - 1) / g->sh : 0;
                const ptrdiff_t nw = b < g->W ? (g->W - b + g->sw - 1) / g->sw : 0;
                for (ptrdiff_t m = 0; m < nt; ++m)
                    for (ptrdiff_t c = 0; c < g->C; ++c)
                        for (ptrdiff_t v = 0; v < nh; ++v)
                            for (ptrdiff_t u = 0; u < nw; ++u)
                                y[m * ly.img + c * ly.plane + v * ly.row + u * ly.col] = 0;
                continue;
            }
            if (nt > 1) {
                CAT(band_tile_, TYPE)(gy, gy_stride, nt, 0, gp.Ho, &gp, packed,
                                      g->C, NULL, 0, work, y, &ly);
            } else {
                const ptrdiff_t band = CAT(band_rows_, TYPE)(&gp);
                for (ptrdiff_t oh0 = 0; oh0 < gp.Ho; oh0 += band)
                    CAT(band_tile_, TYPE)(gy, gy_stride, 1, oh0,
                                          fc_min(gp.Ho, oh0 + band), &gp, packed,
                                          g->C, NULL, 0, work, y, &ly);
            }
            packed += Cp * F * gp.kh * gp.kw;
        }
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

FC_CLONES void CAT(fc_conv2d_gemm_grad_input_, TYPE)(const TYPE *restrict gy,
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
FC_CLONES void CAT(fc_conv2d_gemm_grad_weight_, TYPE)(const TYPE *restrict x,
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
        return;
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
}



/* ---- grad_w by blocks of its columns ---------------------------------------
 * Gw (F x K) = sum over the batch's positions p of Gy[:, p] cols[:, p]^T on
 * "virtual" positions: the forward tiles' rows of Wv columns (virtual_width_),
 * numbered image after image, p = n*Ho*Wv + oh*Wv + q, with zero gradients
 * (and zero inputs) in the Wv - Wo extra columns, so that im2col row (c, i,
 * j) of a run of positions is one run of a phase slab of the input (any
 * stride; no im2col pass).  Positions go in blocks of gw_kc_ (the
 * micro-kernel's reduction length).  Each block's gradients are packed
 * transposed once, for all items (fc_gemm_gw_pack_a_).  An item computes a
 * block of Gw's columns (all F rows, about FC_GW_C_BYTES: it stays in L2)
 * over a run of position blocks: for each block, the slab of the block's
 * input rows (the column block's channels only) is filled, its im2col rows
 * packed transposed NR at a time, and the micro-kernel adds the block into
 * Gw.  Every element of Gw sums its blocks in order, whatever the split into
 * items, so no partial sums are needed for the thread count's sake. */

/* Positions per block: a kc x NR panel of B about FC_GW_B_BYTES (in L1). */
static ptrdiff_t CAT(gw_kc_, TYPE)(void)
{
    const ptrdiff_t n = FC_GW_B_BYTES / (UK->nr * (ptrdiff_t)sizeof(TYPE));
    return fc_min(256, fc_max(64, n));
}

/* Columns of Gw per item: F x kb about FC_GW_C_BYTES, whole panels. */
static ptrdiff_t CAT(gw_kb_, TYPE)(ptrdiff_t F)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr, Fp = (F + mr - 1) / mr * mr;
    return fc_max(nr, FC_GW_C_BYTES / ((ptrdiff_t)sizeof(TYPE) * Fp) / nr * nr);
}


ptrdiff_t CAT(fc_gemm_gw_blocks_, TYPE)(const fc_geom *g, ptrdiff_t N)
{
    const ptrdiff_t lc = CAT(gw_kc_, TYPE)();
    const ptrdiff_t P = N * g->Ho * CAT(virtual_width_, TYPE)(g);
    return (P + lc - 1) / lc;
}

ptrdiff_t CAT(fc_gemm_gw_col_blocks_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    const ptrdiff_t K = g->C * g->kh * g->kw, kb = CAT(gw_kb_, TYPE)(F);
    return (K + kb - 1) / kb;
}

ptrdiff_t CAT(fc_gemm_gw_apack_size_, TYPE)(ptrdiff_t F)
{
    const ptrdiff_t mr = UK->mr, Fp = (F + mr - 1) / mr * mr;
    return fc_mul_sat(Fp, CAT(gw_kc_, TYPE)());
}

void CAT(fc_gemm_gw_pack_a_, TYPE)(const TYPE *restrict gy, ptrdiff_t gy_stride,
                                   const fc_geom *g, ptrdiff_t F, ptrdiff_t N,
                                   ptrdiff_t block, TYPE *restrict apack)
{
    const ptrdiff_t mr = UK->mr, Fp = (F + mr - 1) / mr * mr;
    const ptrdiff_t lc = CAT(gw_kc_, TYPE)(), Wo = g->Wo, L = g->Ho * Wo;
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g), Lv = g->Ho * Wv;
    const ptrdiff_t p0 = block * lc, len = fc_min(lc, N * Lv - p0);
    for (ptrdiff_t p = p0; p < p0 + len;) {
        const ptrdiff_t n = p / Lv, oh = (p - n * Lv) / Wv, ow = p - n * Lv - oh * Wv;
        const ptrdiff_t run = fc_min(Wv - ow, p0 + len - p);
        const ptrdiff_t real = fc_max(0, fc_min(Wo - ow, run));
        if (real > 0)
            UK->pack_t(gy + n * gy_stride + oh * Wo + ow, L, NULL, F, real, mr,
                       len * mr, apack + (p - p0) * mr);
        for (ptrdiff_t f = 0; f < Fp / mr; ++f) {
            TYPE *restrict z = apack + f * len * mr + (p - p0 + real) * mr;
            for (ptrdiff_t q = 0; q < (run - real) * mr; ++q) z[q] = 0;
        }
        p += run;
    }
}

/* Slab rows for one image's part of a block: its output rows, the taps'
 * reach, one more for the reads past the end of the last row. */
static ptrdiff_t CAT(gw_slab_rows_max_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t Wv = CAT(virtual_width_, TYPE)(g);
    const ptrdiff_t out = fc_min(g->Ho, (CAT(gw_kc_, TYPE)() - 1) / Wv + 2);
    return out + (g->kh - 1) * g->dh / g->sh + 1;
}

/* Images a block touches, at most. */
static ptrdiff_t CAT(gw_segments_, TYPE)(const fc_geom *g)
{
    const ptrdiff_t Lv = g->Ho * CAT(virtual_width_, TYPE)(g);
    return (CAT(gw_kc_, TYPE)() - 1) / Lv + 2;
}

/* Channels of a column block, at most. */
static ptrdiff_t CAT(gw_channels_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    const ptrdiff_t KK = g->kh * g->kw;
    return fc_min(g->C, (CAT(gw_kb_, TYPE)(F) - 1) / KK + 2);
}

/* Elements of an item's slabs: a segment per image a block touches, each
 * of a column block's channels (used phases of gw_slab_rows_max x Wv).
 * Saturated, as slab_size_n_. */
static ptrdiff_t CAT(gw_slabs_size_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    ptrdiff_t uh, uw;
    CAT(phase_rank_, TYPE)(g->kh, g->dh, g->sh, 0, &uh);
    CAT(phase_rank_, TYPE)(g->kw, g->dw, g->sw, 0, &uw);
    const ptrdiff_t seg = fc_mul_sat(fc_mul_sat(CAT(gw_channels_, TYPE)(g, F), uh * uw),
                                     fc_mul_sat(CAT(gw_slab_rows_max_, TYPE)(g),
                                                CAT(virtual_width_, TYPE)(g)));
    return fc_mul_sat(CAT(gw_segments_, TYPE)(g), seg);
}

/* Virtual positions cost at most an eighth more products (resnet-14's
 * 14 + 1 columns: yes; 4x4 images with 5 columns: no), and the slabs fit
 * (slab_fits_: not a huge dilation's reach of padding rows). */
int CAT(fc_gemm_gw_fits_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    return CAT(virtual_width_, TYPE)(g) - g->Wo <= g->Wo / 8   /* 8*Wv <= 9*Wo */
           && g->kh <= FC_GW_TAPS && g->kw <= FC_GW_TAPS
           && CAT(slab_fits_, TYPE)(g, CAT(gw_slabs_size_, TYPE)(g, F));
}

/* The B panel (NR x kc), the block's own packed gradients (apack == NULL:
 * fc_gemm_gw_apack_size, F rounded up to whole MR panels), the slabs. */
ptrdiff_t CAT(fc_gemm_gw_work_size_, TYPE)(const fc_geom *g, ptrdiff_t F)
{
    const ptrdiff_t b = fc_mul_sat(UK->nr, CAT(gw_kc_, TYPE)());
    return fc_add_sat(fc_add_sat(b, CAT(fc_gemm_gw_apack_size_, TYPE)(F)),
                      CAT(gw_slabs_size_, TYPE)(g, F));
}

/* Columns [kb*gw_kb, ...) of Gw (ldc K) over position blocks [b0, b1) (their
 * packed gradients at apack + (b - b0) * fc_gemm_gw_apack_size, or, if
 * apack is NULL, packed here from gy block by block), added into gw, or
 * stored for b0 when first. */
FC_CLONES void CAT(fc_conv2d_gemm_gw_item_, TYPE)(const TYPE *restrict x,
                                                  ptrdiff_t x_stride,
                                                  const TYPE *restrict gy,
                                                  ptrdiff_t gy_stride,
                                                  const fc_geom *g, ptrdiff_t F,
                                                  ptrdiff_t N, ptrdiff_t b0,
                                                  ptrdiff_t b1, ptrdiff_t kb,
                                                  const TYPE *restrict apack,
                                                  int first, TYPE *restrict work,
                                                  TYPE *restrict gw)
{
    const ptrdiff_t mr = UK->mr, nr = UK->nr, lc = CAT(gw_kc_, TYPE)();
    const ptrdiff_t KK = g->kh * g->kw, K = g->C * KK, kbw = CAT(gw_kb_, TYPE)(F);
    const ptrdiff_t k0 = kb * kbw, k1 = fc_min(K, k0 + kbw);
    const ptrdiff_t c0 = k0 / KK, c1 = (k1 - 1) / KK + 1;
    const ptrdiff_t Wo = g->Wo, Wv = CAT(virtual_width_, TYPE)(g), Lv = g->Ho * Wv;
    const ptrdiff_t P = N * Lv, HW = g->H * g->W;
    const ptrdiff_t asize = CAT(fc_gemm_gw_apack_size_, TYPE)(F);
    const int pointwise = CAT(pointwise_, TYPE)(g);
    ptrdiff_t uh, uw;
    CAT(phase_rank_, TYPE)(g->kh, g->dh, g->sh, 0, &uh);
    CAT(phase_rank_, TYPE)(g->kw, g->dw, g->sw, 0, &uw);
    const ptrdiff_t seg_size = (c1 - c0) * uh * uw
                               * CAT(gw_slab_rows_max_, TYPE)(g) * Wv;
    TYPE *restrict bpack = work;
    TYPE *restrict own = work + nr * lc;               /* apack == NULL */
    TYPE *restrict slabs = own + asize;
    const TYPE *rowp[FC_UK_NR_MAX];
    /* tap row i: slab row offset and phase rank; tap column j alike */
    ptrdiff_t row_i[FC_GW_TAPS], rank_i[FC_GW_TAPS], col_j[FC_GW_TAPS], rank_j[FC_GW_TAPS];
    for (ptrdiff_t i = 0; i < g->kh; ++i) {
        row_i[i] = i * g->dh / g->sh;
        rank_i[i] = CAT(phase_rank_, TYPE)(g->kh, g->dh, g->sh, i * g->dh % g->sh, &uh);
    }
    for (ptrdiff_t j = 0; j < g->kw; ++j) {
        col_j[j] = j * g->dw / g->sw;
        rank_j[j] = CAT(phase_rank_, TYPE)(g->kw, g->dw, g->sw, j * g->dw % g->sw, &uw);
    }

    for (ptrdiff_t b = b0; b < b1; ++b) {
        const ptrdiff_t p0 = b * lc, len = fc_min(lc, P - p0);
        const ptrdiff_t n0 = p0 / Lv, n1 = (p0 + len - 1) / Lv + 1;
        if (!apack) CAT(fc_gemm_gw_pack_a_, TYPE)(gy, gy_stride, g, F, N, b, own);
        /* the slab of each image's rows in the block (unless 1x1: x) */
        if (!pointwise)
            for (ptrdiff_t n = n0; n < n1; ++n) {
                const ptrdiff_t la = fc_max(p0, n * Lv) - n * Lv;
                const ptrdiff_t lb = fc_min(p0 + len, (n + 1) * Lv) - n * Lv;
                const ptrdiff_t oh_a = la / Wv, oh_b = (lb - 1) / Wv;
                const ptrdiff_t R = oh_b - oh_a + 1 + (g->kh - 1) * g->dh / g->sh + 1;
                CAT(fill_slab_ex_, TYPE)(x + n * x_stride, 0, 1, g, c0, c1, oh_a, R,
                                         slabs + (n - n0) * seg_size);
            }
        for (ptrdiff_t kp = k0; kp < k1; kp += nr) {
            const ptrdiff_t nk = fc_min(nr, k1 - kp);
            /* B: the block's im2col rows kp .. kp+nk, transposed, image by
             * image; the extra columns' positions zeroed */
            for (ptrdiff_t n = n0; n < n1; ++n) {
                const ptrdiff_t pa = fc_max(p0, n * Lv), pb = fc_min(p0 + len, (n + 1) * Lv);
                const ptrdiff_t la = pa - n * Lv, oh_a = la / Wv;
                const ptrdiff_t R = ((pb - n * Lv) - 1) / Wv - oh_a + 1
                                    + (g->kh - 1) * g->dh / g->sh + 1;
                const TYPE *slab = slabs + (n - n0) * seg_size + (la - oh_a * Wv);
                ptrdiff_t c, i, j;      /* tap kp, then stepped */
                fc_tap(kp, g->kh, g->kw, &c, &i, &j);
                for (ptrdiff_t k = 0; k < nk; ++k) {
                    if (pointwise) {
                        rowp[k] = x + n * x_stride + (c + k) * HW + la;
                        continue;
                    }
                    const ptrdiff_t slot = ((c - c0) * uh + rank_i[i]) * uw + rank_j[j];
                    rowp[k] = slab + (slot * R + row_i[i]) * Wv + col_j[j];
                    if (++j == g->kw) {
                        j = 0;
                        if (++i == g->kh) {
                            i = 0;
                            ++c;
                        }
                    }
                }
                UK->pack_t(NULL, 0, rowp, nk, pb - pa, nr, 0, bpack + (pa - p0) * nr);
            }
            /* the extra columns' positions (p % Wv >= Wo) read real cells
             * too (the next row's): zeroed, so that 0 * inf gives no NaN */
            for (ptrdiff_t p = p0; p < p0 + len && Wv > Wo;) {
                const ptrdiff_t q = p % Wv;
                if (q < Wo) {
                    p += Wo - q;
                    continue;
                }
                const ptrdiff_t e = fc_min(Wv - q, p0 + len - p);
                for (ptrdiff_t t = 0; t < e * nr; ++t) bpack[(p - p0) * nr + t] = 0;
                p += e;
            }
            const TYPE *restrict ab = apack ? apack + (b - b0) * asize : own;
            for (ptrdiff_t f0 = 0; f0 < F; f0 += mr)
                UK_RUN(nk)(len, ab + f0 * len, bpack, gw + f0 * K + kp, K,
                           fc_min(mr, F - f0), nk, !(first && b == b0), NULL);
        }
    }
}
