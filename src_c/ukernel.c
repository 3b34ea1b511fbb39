/* The GEMM micro-kernels for each instruction set, and the runtime choice
 * between them.  The AVX2 and AVX-512 kernels are compiled for their target
 * with function attributes, so the library itself needs no -m flags and runs
 * on any x86-64 CPU; fc_gemm_init() picks the best kernel the CPU supports. */
#include <string.h>

#include "fastconv.h"
#include "common.h"
#include "ukernel.h"
#include "templating.h"

/* ---- generic C: the compiler vectorises for the baseline ISA ---------- */
#define UK_TARGET
#define VZERO() 0
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) (x)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VADD(a, b) ((a) + (b))
#define VL 1
#define MR 4

#define TYPE float
#define VEC float
#define NV 16
#define UK_NAME uk_generic_float
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#undef VEC
#undef TYPE

#define TYPE double
#define VEC double
#define NV 8
#define UK_NAME uk_generic_double
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#undef VEC
#undef TYPE

#undef MR
#undef VL
#undef UK_TARGET
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef VADD


/* ---- transposing packers (see ukernel.h) -------------------------------
 * Portable version: rows are read in order, each a stream along l. */
#define PACK_T_GENERIC(TYPE)                                                  \
    static void pack_t_generic_##TYPE(const TYPE *restrict src,             \
                                      ptrdiff_t lds,                        \
                                      const TYPE *const *rowp, ptrdiff_t m, \
                                      ptrdiff_t n, ptrdiff_t w,             \
                                      ptrdiff_t ps, TYPE *restrict dst)     \
    {                                                                       \
        for (ptrdiff_t q0 = 0; q0 < m; q0 += w) {                           \
            TYPE *restrict p = dst + (q0 / w) * ps;                         \
            const ptrdiff_t rows = m - q0 < w ? m - q0 : w;                 \
            for (ptrdiff_t q = 0; q < rows; ++q) {                          \
                const TYPE *restrict s =                                    \
                    rowp ? rowp[q0 + q] : src + (q0 + q) * lds;             \
                for (ptrdiff_t l = 0; l < n; ++l) p[l * w + q] = s[l];      \
            }                                                               \
            for (ptrdiff_t q = rows; q < w; ++q)                            \
                for (ptrdiff_t l = 0; l < n; ++l) p[l * w + q] = 0;         \
        }                                                                   \
    }
PACK_T_GENERIC(float)
PACK_T_GENERIC(double)
#undef PACK_T_GENERIC

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FC_HAVE_X86 1

/* The intrinsics of one vector width and type, from a prefix and a suffix:
 * VOP(loadu) is _mm256_loadu_ps for VP _mm256_ and VS _ps.  The three parts
 * are pasted in one step, so no partial name is formed that a compiler's
 * macro could expand (clang defines _mm512_setzero). */
#define VOP_PASTE(p, op, s) p##op##s
#define VOP_(p, op, s) VOP_PASTE(p, op, s)
#define VOP(op) VOP_(VP, op, VS)
#define VZERO() VOP(setzero)()
#define VLOAD(p) VOP(loadu)(p)
#define VSTORE(p, v) VOP(storeu)((p), (v))
#define VSET1(x) VOP(set1)(x)
#define VFMA(a, b, c) VOP(fmadd)((a), (b), (c))
#define VADD(a, b) VOP(add)((a), (b))

/* ---- AVX2 + FMA: 16 ymm registers: 4 x 3 accumulators (three B vectors
 * and four broadcasts: 7 loads per 12 FMAs, where 6 x 2 needs 8; MR = 4
 * divides the usual filter counts, where 6 wastes up to an eighth of the
 * rows), and one- and two-vector kernels for edge panels.
 * ---------------------------------------------------------------------- */
#define UK_TARGET __attribute__((target("avx2,fma")))
#define VP _mm256_
#define MR 4

#define TYPE float
#define VEC __m256
#define VL 8
#define VS _ps
#define NV 3
#define UK_NAME uk_avx2_float
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 2
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx2_float_2
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 1
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx2_float_1
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#undef VS
#undef VL
#undef VEC
#undef TYPE

#define TYPE double
#define VEC __m256d
#define VL 4
#define VS _pd
#define NV 3
#define UK_NAME uk_avx2_double
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 2
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx2_double_2
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 1
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx2_double_1
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#undef VS
#undef VL
#undef VEC
#undef TYPE

#undef MR
#undef VP
#undef UK_TARGET

/* ---- AVX-512F: 8 x 3 zmm accumulators (MR = 8 divides the usual filter
 * counts: no wasted rows; three vectors per row need 11 loads per 24 FMAs,
 * where two need 10 per 16, which held an Intel core at 93% of its peak),
 * and one- and two-vector kernels for edge panels.
 * ---------------------------------------------------------------------- */
#define UK_TARGET __attribute__((target("avx512f")))
#define VP _mm512_
#define MR 8

#define TYPE float
#define VEC __m512
#define VL 16
#define VS _ps
#define NV 3
#define UK_NAME uk_avx512_float
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 2
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx512_float_2
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 1
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx512_float_1
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#undef VS
#undef VL
#undef VEC
#undef TYPE

#define TYPE double
#define VEC __m512d
#define VL 8
#define VS _pd
#define NV 3
#define UK_NAME uk_avx512_double
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 2
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx512_double_2
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 1
#define UK_LDB (3 * VL)
#define UK_NAME uk_avx512_double_1
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#undef VS
#undef VL
#undef VEC
#undef TYPE

#undef MR
#undef VP
#undef UK_TARGET

/* ---- AVX-512 float transposing packer: 16 x 16 register transposes ----- */
__attribute__((target("avx512f"))) static inline void tr16_avx512(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 4; ++i) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; ++i) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}

/* Groups of 16 rows (two panels when w == 8, half of one when w == 32)
 * by blocks of 16 positions; w must be a multiple of 8 (else generic). */
__attribute__((target("avx512f"))) static void pack_t_avx512_float(
    const float *restrict src, ptrdiff_t lds, const float *const *rowp,
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t w, ptrdiff_t ps, float *restrict dst)
{
    if (w % 8 != 0) {
        pack_t_generic_float(src, lds, rowp, m, n, w, ps, dst);
        return;
    }
    const ptrdiff_t m_pad = (m + w - 1) / w * w;
    for (ptrdiff_t q0 = 0; q0 < m_pad; q0 += 16) {
        const ptrdiff_t rows = m - q0 < 16 ? (m - q0 > 0 ? m - q0 : 0) : 16;
        const int two = m_pad - q0 >= 16;        /* else only 8 rows to store */
        float *restrict d0 = dst + (q0 / w) * ps + q0 % w;
        float *restrict d1 = dst + ((q0 + 8) / w) * ps + (q0 + 8) % w;
        const float *row[16];
        for (ptrdiff_t i = 0; i < rows; ++i)
            row[i] = rowp ? rowp[q0 + i] : src + (q0 + i) * lds;
        for (ptrdiff_t l0 = 0; l0 < n; l0 += 16) {
            const ptrdiff_t nl = n - l0 < 16 ? n - l0 : 16;
            const __mmask16 mask = (__mmask16)((1u << nl) - 1u);
            __m512 r[16];
            for (ptrdiff_t i = 0; i < 16; ++i)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, row[i] + l0)
                                : _mm512_setzero_ps();
            tr16_avx512(r);
            if (two && d1 == d0 + 8) {      /* one panel (w % 16 == 0): whole rows */
                for (ptrdiff_t l = 0; l < nl; ++l) _mm512_storeu_ps(d0 + (l0 + l) * w, r[l]);
                continue;
            }
            for (ptrdiff_t l = 0; l < nl; ++l) {
                _mm256_storeu_ps(d0 + (l0 + l) * w, _mm512_castps512_ps256(r[l]));
                if (two)
                    _mm256_storeu_ps(d1 + (l0 + l) * w,
                                     _mm256_castpd_ps(_mm512_extractf64x4_pd(
                                         _mm512_castps_pd(r[l]), 1)));
            }
        }
    }
}

/* ---- AVX-512 double transposing packer: 8 x 8 register transposes ------ */
__attribute__((target("avx512f"))) static inline void tr8_avx512(__m512d r[8])
{
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    __m512d t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; ++h) {       /* rows 4h .. 4h+3, columns j and j+4 */
        u[4 * h] = _mm512_permutex2var_pd(t[4 * h], lo, t[4 * h + 2]);
        u[4 * h + 1] = _mm512_permutex2var_pd(t[4 * h + 1], lo, t[4 * h + 3]);
        u[4 * h + 2] = _mm512_permutex2var_pd(t[4 * h], hi, t[4 * h + 2]);
        u[4 * h + 3] = _mm512_permutex2var_pd(t[4 * h + 1], hi, t[4 * h + 3]);
    }
    for (int j = 0; j < 4; ++j) {
        r[j] = _mm512_shuffle_f64x2(u[j], u[4 + j], 0x44);
        r[4 + j] = _mm512_shuffle_f64x2(u[j], u[4 + j], 0xEE);
    }
}

/* Groups of 8 rows by blocks of 8 positions; w a multiple of 8 (else
 * generic). */
__attribute__((target("avx512f"))) static void pack_t_avx512_double(
    const double *restrict src, ptrdiff_t lds, const double *const *rowp,
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t w, ptrdiff_t ps, double *restrict dst)
{
    if (w % 8 != 0) {
        pack_t_generic_double(src, lds, rowp, m, n, w, ps, dst);
        return;
    }
    const ptrdiff_t m_pad = (m + w - 1) / w * w;
    for (ptrdiff_t q0 = 0; q0 < m_pad; q0 += 8) {
        const ptrdiff_t rows = m - q0 < 8 ? (m - q0 > 0 ? m - q0 : 0) : 8;
        double *restrict d = dst + (q0 / w) * ps + q0 % w;
        const double *row[8];
        for (ptrdiff_t i = 0; i < rows; ++i)
            row[i] = rowp ? rowp[q0 + i] : src + (q0 + i) * lds;
        for (ptrdiff_t l0 = 0; l0 < n; l0 += 8) {
            const ptrdiff_t nl = n - l0 < 8 ? n - l0 : 8;
            const __mmask8 mask = (__mmask8)((1u << nl) - 1u);
            __m512d r[8];
            for (ptrdiff_t i = 0; i < 8; ++i)
                r[i] = i < rows ? _mm512_maskz_loadu_pd(mask, row[i] + l0)
                                : _mm512_setzero_pd();
            tr8_avx512(r);
            for (ptrdiff_t l = 0; l < nl; ++l) _mm512_storeu_pd(d + (l0 + l) * w, r[l]);
        }
    }
}
/* ---- AVX2 transposing packers: 8 x 8 float / 4 x 4 double transposes ----
 * Rows go in chunks of h <= 8 that never straddle a panel (h = w when
 * w <= 8, else 8, or 4 for double panels of 12), each chunk's h values per
 * position stored exactly (4 + 2 + 1 lane pieces for h < 8; grad_w's A
 * panels are w = MR = 4 rows wide). */
#define AVX2 __attribute__((target("avx2,fma")))

static ptrdiff_t pack_t_chunk(ptrdiff_t w)
{
    return w <= 8 ? w : (w % 8 == 0 ? 8 : 0);
}

/* The double packer's chunks are two 4-row halves: 4 will do. */
static ptrdiff_t pack_t_chunk_d(ptrdiff_t w)
{
    return w <= 8 ? w : (w % 8 == 0 ? 8 : (w % 4 == 0 ? 4 : 0));
}

AVX2 static inline void tr8_avx2(__m256 r[8])
{
    __m256 t[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {       /* rows 4i .. 4i+3, columns j, j+4 */
        r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
        t[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
        t[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
    }
    for (int j = 0; j < 8; ++j) r[j] = t[j];
}

/* The first h (1..8) lanes of v to p. */
AVX2 static inline void store_lanes_f(float *p, __m256 v, ptrdiff_t h)
{
    if (h == 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 part = _mm256_castps256_ps128(v);
    if (h >= 4) {
        _mm_storeu_ps(p, part);
        part = _mm256_extractf128_ps(v, 1);
        p += 4;
        h -= 4;
    }
    if (h >= 2) {
        _mm_storel_pi((__m64 *)(void *)p, part);
        part = _mm_movehl_ps(part, part);
        p += 2;
        h -= 2;
    }
    if (h) _mm_store_ss(p, part);
}

AVX2 static void pack_t_avx2_float(const float *restrict src, ptrdiff_t lds,
                                   const float *const *rowp, ptrdiff_t m,
                                   ptrdiff_t n, ptrdiff_t w, ptrdiff_t ps,
                                   float *restrict dst)
{
    const ptrdiff_t h = pack_t_chunk(w);
    if (h == 0) {
        pack_t_generic_float(src, lds, rowp, m, n, w, ps, dst);
        return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const ptrdiff_t m_pad = (m + w - 1) / w * w;
    for (ptrdiff_t q0 = 0; q0 < m_pad; q0 += h) {
        const ptrdiff_t rows = m - q0 < h ? (m - q0 > 0 ? m - q0 : 0) : h;
        float *restrict d = dst + (q0 / w) * ps + q0 % w;
        const float *row[8];
        for (ptrdiff_t i = 0; i < rows; ++i)
            row[i] = rowp ? rowp[q0 + i] : src + (q0 + i) * lds;
        for (ptrdiff_t l0 = 0; l0 < n; l0 += 8) {
            const ptrdiff_t nl = n - l0 < 8 ? n - l0 : 8;
            const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nl), lane);
            __m256 r[8];
            for (ptrdiff_t i = 0; i < 8; ++i)
                r[i] = i >= rows ? _mm256_setzero_ps()
                       : nl == 8 ? _mm256_loadu_ps(row[i] + l0)
                                 : _mm256_maskload_ps(row[i] + l0, mask);
            tr8_avx2(r);
            for (ptrdiff_t l = 0; l < nl; ++l) store_lanes_f(d + (l0 + l) * w, r[l], h);
        }
    }
}

AVX2 static inline void tr4_avx2(__m256d r[4])
{
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]);
    const __m256d t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]);
    const __m256d t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* The first h (0..4) lanes of v to p. */
AVX2 static inline void store_lanes_d(double *p, __m256d v, ptrdiff_t h)
{
    if (h == 4) {
        _mm256_storeu_pd(p, v);
        return;
    }
    __m128d part = _mm256_castpd256_pd128(v);
    if (h >= 2) {
        _mm_storeu_pd(p, part);
        part = _mm256_extractf128_pd(v, 1);
        p += 2;
        h -= 2;
    }
    if (h) _mm_store_sd(p, part);
}

/* Chunks of up to 8 rows as two 4 x 4 transposes (rows 0-3 and 4-7). */
AVX2 static void pack_t_avx2_double(const double *restrict src, ptrdiff_t lds,
                                    const double *const *rowp, ptrdiff_t m,
                                    ptrdiff_t n, ptrdiff_t w, ptrdiff_t ps,
                                    double *restrict dst)
{
    const ptrdiff_t h = pack_t_chunk_d(w);
    if (h == 0) {
        pack_t_generic_double(src, lds, rowp, m, n, w, ps, dst);
        return;
    }
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    const ptrdiff_t m_pad = (m + w - 1) / w * w;
    for (ptrdiff_t q0 = 0; q0 < m_pad; q0 += h) {
        const ptrdiff_t rows = m - q0 < h ? (m - q0 > 0 ? m - q0 : 0) : h;
        double *restrict d = dst + (q0 / w) * ps + q0 % w;
        const double *row[8];
        for (ptrdiff_t i = 0; i < rows; ++i)
            row[i] = rowp ? rowp[q0 + i] : src + (q0 + i) * lds;
        for (ptrdiff_t l0 = 0; l0 < n; l0 += 4) {
            const ptrdiff_t nl = n - l0 < 4 ? n - l0 : 4;
            const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(nl), lane);
            for (ptrdiff_t half = 0; half * 4 < h; ++half) {
                __m256d r[4];
                for (ptrdiff_t i = 0; i < 4; ++i) {
                    const ptrdiff_t q = half * 4 + i;
                    r[i] = q >= rows ? _mm256_setzero_pd()
                           : nl == 4 ? _mm256_loadu_pd(row[q] + l0)
                                     : _mm256_maskload_pd(row[q] + l0, mask);
                }
                tr4_avx2(r);
                const ptrdiff_t hh = h - half * 4 < 4 ? h - half * 4 : 4;
                for (ptrdiff_t l = 0; l < nl; ++l)
                    store_lanes_d(d + (l0 + l) * w + half * 4, r[l], hh);
            }
        }
    }
}
#undef AVX2
#endif /* x86-64 */

static const fc_ukernel_float kernels_float[] = {
#ifdef FC_HAVE_X86
    {"avx512", 8, 48, 16, {uk_avx512_float_1, uk_avx512_float_2, uk_avx512_float},
     {uk_avx512_float_1_rows, uk_avx512_float_2_rows, uk_avx512_float_rows},
     {uk_avx512_float_1_at, uk_avx512_float_2_at, uk_avx512_float_at},
     {uk_avx512_float_1_kn, uk_avx512_float_2_kn, uk_avx512_float_kn},
     pack_t_avx512_float},
    {"avx2", 4, 24, 8, {uk_avx2_float_1, uk_avx2_float_2, uk_avx2_float},
     {uk_avx2_float_1_rows, uk_avx2_float_2_rows, uk_avx2_float_rows},
     {uk_avx2_float_1_at, uk_avx2_float_2_at, uk_avx2_float_at},
     {uk_avx2_float_1_kn, uk_avx2_float_2_kn, uk_avx2_float_kn},
     pack_t_avx2_float},
#endif
    {"generic", 4, 16, 16, {uk_generic_float}, {uk_generic_float_rows},
     {uk_generic_float_at}, {uk_generic_float_kn}, pack_t_generic_float},
};
static const fc_ukernel_double kernels_double[] = {
#ifdef FC_HAVE_X86
    {"avx512", 8, 24, 8, {uk_avx512_double_1, uk_avx512_double_2, uk_avx512_double},
     {uk_avx512_double_1_rows, uk_avx512_double_2_rows, uk_avx512_double_rows},
     {uk_avx512_double_1_at, uk_avx512_double_2_at, uk_avx512_double_at},
     {uk_avx512_double_1_kn, uk_avx512_double_2_kn, uk_avx512_double_kn},
     pack_t_avx512_double},
    {"avx2", 4, 12, 4, {uk_avx2_double_1, uk_avx2_double_2, uk_avx2_double},
     {uk_avx2_double_1_rows, uk_avx2_double_2_rows, uk_avx2_double_rows},
     {uk_avx2_double_1_at, uk_avx2_double_2_at, uk_avx2_double_at},
     {uk_avx2_double_1_kn, uk_avx2_double_2_kn, uk_avx2_double_kn},
     pack_t_avx2_double},
#endif
    {"generic", 4, 8, 8, {uk_generic_double}, {uk_generic_double_rows},
     {uk_generic_double_at}, {uk_generic_double_kn}, pack_t_generic_double},
};
#define N_KERNELS (sizeof(kernels_float) / sizeof(kernels_float[0]))

/* The kernels in use; generic until fc_gemm_init() runs. */
const fc_ukernel_float *fc_uk_float = &kernels_float[N_KERNELS - 1];
const fc_ukernel_double *fc_uk_double = &kernels_double[N_KERNELS - 1];

static int cpu_supports(const char *isa)
{
#ifdef FC_HAVE_X86
    __builtin_cpu_init();
    if (strcmp(isa, "avx512") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(isa, "generic") == 0;
}

int fc_gemm_init(const char *isa)
{
    for (size_t i = 0; i < N_KERNELS; ++i) {
        const char *name = kernels_float[i].isa;
        const int wanted = (isa == NULL || isa[0] == '\0') ? 1 : strcmp(isa, name) == 0;
        if (wanted && cpu_supports(name)) {
            fc_uk_float = &kernels_float[i];
            fc_uk_double = &kernels_double[i];
            return FC_OK;
        }
    }
    return FC_EINDEX;
}

const char *fc_gemm_isa(void) { return fc_uk_float->isa; }
