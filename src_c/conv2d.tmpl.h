/* Direct convolution for one filter / one input channel, written once on TYPE
 * (see conv2d.c).  Documented in fastconv.h.  g->C is the channel count of one
 * group.
 *
 * Unit column stride (the common case) runs on zero-padded copies of the
 * planes in the caller's workspace, so that whole vectors of VL columns are
 * read with no bounds tests:
 *  - forward and (stride 1) grad_input keep a block of up to 4 vectors of
 *    output columns in registers across all taps and store it once; grad_input
 *    is the same stencil on grad_y with the filter flipped;
 *  - grad_weight sums each tap in 2 vector accumulators (2*VL lane partial
 *    sums), added up in a fixed order at the end.
 * Forward and grad_input outputs add their products in the same order as the
 * scalar loops below (taps (c, i, j) in order); padded columns count as zero
 * products, as on the GEMM path.  Other strides keep the scalar tap-by-tap
 * loops (grad_weight with 4 partial sums); fc_valid_range() splits off the
 * padding so they have no tests.  No result depends on the thread count. */

#define VEC CAT(fc_vec_, TYPE)
#define VL ((ptrdiff_t)(sizeof(VEC) / sizeof(TYPE)))

ptrdiff_t CAT(fc_conv2d_direct_work_size_, TYPE)(const fc_geom *g,
                                                 ptrdiff_t n_filters)
{
    ptrdiff_t fwd = 0, gin = 0;     /* saturated, never wrapped */
    if (g->sw == 1)     /* forward and grad_weight: padded x planes */
        fwd = fc_mul_sat(g->C * g->H, fc_round_up(g->Wo, VL) + (g->kw - 1) * g->dw);
    if (g->sw == 1 && g->sh == 1)   /* grad_input: padded grad_y planes */
        gin = fc_mul_sat(n_filters * g->Ho,
                         fc_round_up(g->W, VL) + (g->kw - 1) * g->dw);
    return fc_max(fwd, gin);
}

/* p[q] = max(p[q], 0), NaN kept (the conv epilogue's ReLU) */
FC_ALWAYS_INLINE void CAT(relu_run_, TYPE)(TYPE *restrict p, ptrdiff_t n)
{
    for (ptrdiff_t q = 0; q < n; ++q) p[q] = p[q] < 0 ? 0 : p[q];
}

/* dst (planes, rows, Wp): row r holds src row r shifted right by shift
 * columns (shift may be negative), zero outside src's Wsrc columns. */
static void CAT(pad_rows_, TYPE)(const TYPE *restrict src, ptrdiff_t rows,
                                 ptrdiff_t Wsrc, ptrdiff_t shift, ptrdiff_t Wp,
                                 TYPE *restrict dst)
{
    const ptrdiff_t lo = fc_min(fc_max(shift, 0), Wp);
    const ptrdiff_t hi = fc_max(fc_min(shift + Wsrc, Wp), lo);
    for (ptrdiff_t r = 0; r < rows; ++r) {
        const TYPE *restrict s = src + r * Wsrc;
        TYPE *restrict d = dst + r * Wp;
        for (ptrdiff_t t = 0; t < lo; ++t) d[t] = 0;
        for (ptrdiff_t t = lo; t < hi; ++t) d[t] = s[t - shift];
        for (ptrdiff_t t = hi; t < Wp; ++t) d[t] = 0;
    }
}

/* One output row, columns [ox, ox + nv*VL) clipped to Wo, of the stencil
 *   out[ox'] = init + sum over (c, i, j) of w[c*wc + i*kw + j]
 *                     * P[c][row0 + i*ri][ox' + c0 + j*cj]
 * P: (C, Hp, Wp) padded planes; rows outside [0, Hp) are skipped.
 * nv (1 to 4) is a constant at each call: the tests on it fold away and
 * a0..a3 live in registers. */
FC_ALWAYS_INLINE void CAT(stencil_block_, TYPE)(
    int nv, const TYPE *restrict P, ptrdiff_t C, ptrdiff_t Hp, ptrdiff_t Wp,
    const TYPE *restrict w, ptrdiff_t wc, ptrdiff_t kh, ptrdiff_t kw,
    ptrdiff_t row0, ptrdiff_t ri, ptrdiff_t c0, ptrdiff_t cj, TYPE init,
    ptrdiff_t ox, ptrdiff_t Wo, TYPE *restrict out)
{
    const VEC zero = {0};
    VEC a0 = init - zero, a1 = a0, a2 = a0, a3 = a0;    /* x - 0 keeps -0.0 */
    for (ptrdiff_t c = 0; c < C; ++c) {
        for (ptrdiff_t i = 0; i < kh; ++i) {
            const ptrdiff_t ih = row0 + i * ri;
            if (ih < 0 || ih >= Hp) continue;
            const TYPE *restrict row = P + (c * Hp + ih) * Wp + ox + c0;
            for (ptrdiff_t j = 0; j < kw; ++j) {
                const TYPE wv = w[c * wc + i * kw + j];
                const TYPE *restrict q = row + j * cj;
                VEC t0, t1, t2, t3;
                memcpy(&t0, q, sizeof t0);
                a0 += t0 * wv;
                if (nv > 1) { memcpy(&t1, q + VL, sizeof t1); a1 += t1 * wv; }
                if (nv > 2) { memcpy(&t2, q + 2 * VL, sizeof t2); a2 += t2 * wv; }
                if (nv > 3) { memcpy(&t3, q + 3 * VL, sizeof t3); a3 += t3 * wv; }
            }
        }
    }
#define STORE_ACC(o) do { memcpy((o), &a0, sizeof a0);                       \
        if (nv > 1) memcpy((o) + VL, &a1, sizeof a1);                           \
        if (nv > 2) memcpy((o) + 2 * VL, &a2, sizeof a2);                       \
        if (nv > 3) memcpy((o) + 3 * VL, &a3, sizeof a3); } while (0)
    if (ox + nv * VL <= Wo) {
        STORE_ACC(out + ox);
    } else {            /* the row's last block is partial */
        TYPE tmp[4 * VL] = {0};
        STORE_ACC(tmp);
        for (ptrdiff_t l = 0; l < Wo - ox; ++l) out[ox + l] = tmp[l];
    }
#undef STORE_ACC
}

/* All Ho output rows of the stencil above, output row r reading P rows
 * r*rs + r0 + i*ri.  P needs Wp >= fc_round_up(Wo, VL) + max column offset. */
FC_ALWAYS_INLINE void CAT(stencil_, TYPE)(
    const TYPE *restrict P, ptrdiff_t C, ptrdiff_t Hp, ptrdiff_t Wp,
    const TYPE *restrict w, ptrdiff_t wc, ptrdiff_t kh, ptrdiff_t kw,
    ptrdiff_t rs, ptrdiff_t r0, ptrdiff_t ri, ptrdiff_t c0, ptrdiff_t cj,
    TYPE init, int relu, ptrdiff_t Ho, ptrdiff_t Wo, TYPE *restrict y)
{
    for (ptrdiff_t r = 0; r < Ho; ++r) {
        TYPE *restrict out = y + r * Wo;
        const ptrdiff_t row0 = r * rs + r0;
        ptrdiff_t ox = 0;
        for (; Wo - ox > 3 * VL; ox += 4 * VL)     /* the last may be partial */
            CAT(stencil_block_, TYPE)(4, P, C, Hp, Wp, w, wc, kh, kw, row0, ri,
                                      c0, cj, init, ox, Wo, out);
        switch ((Wo - ox + VL - 1) / VL) {
        case 3:
            CAT(stencil_block_, TYPE)(3, P, C, Hp, Wp, w, wc, kh, kw, row0, ri,
                                      c0, cj, init, ox, Wo, out);
            break;
        case 2:
            CAT(stencil_block_, TYPE)(2, P, C, Hp, Wp, w, wc, kh, kw, row0, ri,
                                      c0, cj, init, ox, Wo, out);
            break;
        case 1:
            CAT(stencil_block_, TYPE)(1, P, C, Hp, Wp, w, wc, kh, kw, row0, ri,
                                      c0, cj, init, ox, Wo, out);
            break;
        default:
            break;
        }
        if (relu) CAT(relu_run_, TYPE)(out, Wo);    /* the row is in cache */
    }
}

FC_CLONES void CAT(fc_conv2d_direct_, TYPE)(const TYPE *restrict x,
                                  const TYPE *restrict w, TYPE bias, int relu,
                                  const fc_geom *g, TYPE *restrict work,
                                  TYPE *restrict y)
{
    const ptrdiff_t HW = g->H * g->W, L = g->Ho * g->Wo;
    if (g->sw == 1) {
        const ptrdiff_t Wp = fc_round_up(g->Wo, VL) + (g->kw - 1) * g->dw;
        CAT(pad_rows_, TYPE)(x, g->C * g->H, g->W, g->pl, Wp, work);
        CAT(stencil_, TYPE)(work, g->C, g->H, Wp, w, g->kh * g->kw, g->kh,
                            g->kw, g->sh, -g->pt, g->dh, 0, g->dw, bias, relu,
                            g->Ho, g->Wo, y);
        return;
    }
    for (ptrdiff_t l = 0; l < L; ++l) y[l] = bias;
    for (ptrdiff_t c = 0; c < g->C; ++c) {
        for (ptrdiff_t i = 0; i < g->kh; ++i) {
            const ptrdiff_t off_h = i * g->dh - g->pt;
            ptrdiff_t hlo, hhi;
            fc_valid_range(off_h, g->sh, g->H, g->Ho, &hlo, &hhi);
            for (ptrdiff_t j = 0; j < g->kw; ++j) {
                const TYPE wv = w[(c * g->kh + i) * g->kw + j];
                const ptrdiff_t off_w = j * g->dw - g->pl;
                ptrdiff_t lo, hi;
                fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
                const ptrdiff_t n = hi - lo;
                for (ptrdiff_t oh = hlo; oh < hhi; ++oh) {
                    const TYPE *restrict in = x + c * HW
                        + (oh * g->sh + off_h) * g->W + lo * g->sw + off_w;
                    TYPE *restrict out = y + oh * g->Wo + lo;
                    for (ptrdiff_t k = 0; k < n; ++k)
                        out[k] += wv * in[k * g->sw];
                }
            }
        }
    }
    if (relu) CAT(relu_run_, TYPE)(y, L);
}

FC_CLONES void CAT(fc_conv2d_direct_grad_input_, TYPE)(const TYPE *restrict grad_y,
                                             const TYPE *restrict w,
                                             ptrdiff_t n_filters,
                                             const fc_geom *g,
                                             TYPE *restrict work,
                                             TYPE *restrict grad_x)
{
    const ptrdiff_t HW = g->H * g->W, L = g->Ho * g->Wo;
    const ptrdiff_t w_stride = g->C * g->kh * g->kw;   /* between filters */
    if (g->sw == 1 && g->sh == 1) {
        /* grad_x[ih][iw] sums w[f][i][j] * grad_y[f][ih - i*dh + pt]
         * [iw - j*dw + pl]: grad_y padded by (kw-1)*dw - pl on the left (a
         * negative shift crops), read at column iw + (kw-1-j)*dw. */
        const ptrdiff_t span = (g->kw - 1) * g->dw;
        const ptrdiff_t Wp = fc_round_up(g->W, VL) + span;
        CAT(pad_rows_, TYPE)(grad_y, n_filters * g->Ho, g->Wo, span - g->pl, Wp,
                             work);
        CAT(stencil_, TYPE)(work, n_filters, g->Ho, Wp, w, w_stride, g->kh,
                            g->kw, 1, g->pt, -g->dh, span, -g->dw, 0, 0, g->H,
                            g->W, grad_x);
        return;
    }
    for (ptrdiff_t p = 0; p < HW; ++p) grad_x[p] = 0;
    for (ptrdiff_t f = 0; f < n_filters; ++f) {
        for (ptrdiff_t i = 0; i < g->kh; ++i) {
            const ptrdiff_t off_h = i * g->dh - g->pt;
            ptrdiff_t hlo, hhi;
            fc_valid_range(off_h, g->sh, g->H, g->Ho, &hlo, &hhi);
            for (ptrdiff_t j = 0; j < g->kw; ++j) {
                const TYPE wv = w[f * w_stride + i * g->kw + j];
                const ptrdiff_t off_w = j * g->dw - g->pl;
                ptrdiff_t lo, hi;
                fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
                const ptrdiff_t n = hi - lo;
                for (ptrdiff_t oh = hlo; oh < hhi; ++oh) {
                    const TYPE *restrict gy = grad_y + f * L + oh * g->Wo + lo;
                    TYPE *restrict gx = grad_x
                        + (oh * g->sh + off_h) * g->W + lo * g->sw + off_w;
                    if (g->sw == 1) {
                        for (ptrdiff_t k = 0; k < n; ++k) gx[k] += wv * gy[k];
                    } else {
                        for (ptrdiff_t k = 0; k < n; ++k)
                            gx[k * g->sw] += wv * gy[k];
                    }
                }
            }
        }
    }
}

/* grad_w of nj (constant at each call) neighbouring taps (c, i, j0..j0+nj-1)
 * over output rows [hlo, hhi): grad_y row against padded x row P[ih], read
 * from column j*dw.  Output column ox goes to lane ox % VL of accumulator
 * (ox / VL) % 2 (a partial last vector to accumulator 1); the 2*VL lanes are
 * added in a fixed order at the end. */
FC_ALWAYS_INLINE void CAT(grad_weight_taps_, TYPE)(
    int nj, const TYPE *restrict P, ptrdiff_t Wp, ptrdiff_t sh, ptrdiff_t off_h,
    ptrdiff_t dw, const TYPE *restrict grad_y, ptrdiff_t Wo, ptrdiff_t hlo,
    ptrdiff_t hhi, TYPE *restrict gw)
{
    const VEC zero = {0};
    VEC acc[4][2];
    for (int t = 0; t < nj; ++t) acc[t][0] = acc[t][1] = zero;
    for (ptrdiff_t oh = hlo; oh < hhi; ++oh) {
        const TYPE *restrict gy = grad_y + oh * Wo;
        const TYPE *restrict row = P + (oh * sh + off_h) * Wp;
        ptrdiff_t ox = 0;
        for (; ox + 2 * VL <= Wo; ox += 2 * VL) {
            VEC g0, g1;
            memcpy(&g0, gy + ox, sizeof g0);
            memcpy(&g1, gy + ox + VL, sizeof g1);
            for (int t = 0; t < nj; ++t) {
                VEC r0, r1;
                memcpy(&r0, row + t * dw + ox, sizeof r0);
                memcpy(&r1, row + t * dw + ox + VL, sizeof r1);
                acc[t][0] += g0 * r0;
                acc[t][1] += g1 * r1;
            }
        }
        if (ox + VL <= Wo) {
            VEC g0;
            memcpy(&g0, gy + ox, sizeof g0);
            for (int t = 0; t < nj; ++t) {
                VEC r0;
                memcpy(&r0, row + t * dw + ox, sizeof r0);
                acc[t][0] += g0 * r0;
            }
            ox += VL;
        }
        if (ox < Wo) {
            /* the last n < VL columns: lanes past them read padding (or
             * real x, which may be inf), so their products are cleared */
            const ptrdiff_t n = Wo - ox;
            VEC g0 = zero;
            for (ptrdiff_t l = 0; l < n; ++l) g0[l] = gy[ox + l];
            for (int t = 0; t < nj; ++t) {
                VEC r0, p;
                memcpy(&r0, row + t * dw + ox, sizeof r0);
                p = g0 * r0;
                for (ptrdiff_t l = n; l < VL; ++l) p[l] = 0;
                acc[t][1] += p;
            }
        }
    }
    for (int t = 0; t < nj; ++t) {
        const VEC s = acc[t][0] + acc[t][1];
        TYPE sum = s[0];
        for (ptrdiff_t l = 1; l < VL; ++l) sum += s[l];
        gw[t] += sum;
    }
}

FC_CLONES void CAT(fc_conv2d_direct_grad_weight_, TYPE)(const TYPE *restrict x,
                                              const TYPE *restrict grad_y,
                                              const fc_geom *g,
                                              TYPE *restrict work,
                                              TYPE *restrict grad_w)
{
    const ptrdiff_t HW = g->H * g->W;
    ptrdiff_t Wp = 0;
    if (g->sw == 1) {
        Wp = fc_round_up(g->Wo, VL) + (g->kw - 1) * g->dw;
        CAT(pad_rows_, TYPE)(x, g->C * g->H, g->W, g->pl, Wp, work);
    }
    for (ptrdiff_t c = 0; c < g->C; ++c) {
        for (ptrdiff_t i = 0; i < g->kh; ++i) {
            const ptrdiff_t off_h = i * g->dh - g->pt;
            ptrdiff_t hlo, hhi;
            fc_valid_range(off_h, g->sh, g->H, g->Ho, &hlo, &hhi);
            TYPE *restrict gw = grad_w + (c * g->kh + i) * g->kw;
            if (g->sw == 1) {
                const TYPE *restrict P = work + c * g->H * Wp;
                for (ptrdiff_t j = 0; j < g->kw; j += 4) {
                    const TYPE *restrict Pj = P + j * g->dw;
                    switch (fc_min(g->kw - j, 4)) {
                    case 4:
                        CAT(grad_weight_taps_, TYPE)(4, Pj, Wp, g->sh, off_h, g->dw,
                                                     grad_y, g->Wo, hlo, hhi, gw + j);
                        break;
                    case 3:
                        CAT(grad_weight_taps_, TYPE)(3, Pj, Wp, g->sh, off_h, g->dw,
                                                     grad_y, g->Wo, hlo, hhi, gw + j);
                        break;
                    case 2:
                        CAT(grad_weight_taps_, TYPE)(2, Pj, Wp, g->sh, off_h, g->dw,
                                                     grad_y, g->Wo, hlo, hhi, gw + j);
                        break;
                    default:
                        CAT(grad_weight_taps_, TYPE)(1, Pj, Wp, g->sh, off_h, g->dw,
                                                     grad_y, g->Wo, hlo, hhi, gw + j);
                        break;
                    }
                }
                continue;
            }
            for (ptrdiff_t j = 0; j < g->kw; ++j) {
                const ptrdiff_t off_w = j * g->dw - g->pl;
                ptrdiff_t lo, hi;
                fc_valid_range(off_w, g->sw, g->W, g->Wo, &lo, &hi);
                const ptrdiff_t n = hi - lo;
                /* 4 partial sums: 4 independent dependency chains */
                TYPE a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (ptrdiff_t oh = hlo; oh < hhi; ++oh) {
                    const TYPE *restrict gy = grad_y + oh * g->Wo + lo;
                    const TYPE *restrict in = x + c * HW
                        + (oh * g->sh + off_h) * g->W + lo * g->sw + off_w;
                    ptrdiff_t k = 0;
                    for (; k + 4 <= n; k += 4) {
                        a0 += gy[k] * in[k * g->sw];
                        a1 += gy[k + 1] * in[(k + 1) * g->sw];
                        a2 += gy[k + 2] * in[(k + 2) * g->sw];
                        a3 += gy[k + 3] * in[(k + 3) * g->sw];
                    }
                    for (; k < n; ++k) a0 += gy[k] * in[k * g->sw];
                }
                gw[j] += (a0 + a1) + (a2 + a3);
            }
        }
    }
}

#undef VEC
#undef VL

/* sum over n < N, l < L of gy[n * stride + l], for one filter's grad_bias:
 * double partial sums in 16 lanes (so the loop vectorises, where one
 * running sum is a chain of dependent adds), added up in a fixed order. */
FC_CLONES double CAT(fc_bias_grad_, TYPE)(const TYPE *restrict gy, ptrdiff_t N,
                                          ptrdiff_t stride, ptrdiff_t L)
{
    double acc[16] = {0};
    const ptrdiff_t L16 = L - L % 16;
    for (ptrdiff_t n = 0; n < N; ++n) {
        const TYPE *restrict p = gy + n * stride;
        for (ptrdiff_t l = 0; l < L16; l += 16)
            for (int k = 0; k < 16; ++k) acc[k] += (double)p[l + k];
        for (ptrdiff_t l = L16; l < L; ++l) acc[l - L16] += (double)p[l];
    }
    for (int width = 8; width > 0; width /= 2)
        for (int k = 0; k < width; ++k) acc[k] += acc[k + width];
    return acc[0];
}
