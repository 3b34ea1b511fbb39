/* The GEMM micro-kernels for each instruction set, and the runtime choice
 * between them.  The AVX2 and AVX-512 kernels are compiled for their target
 * with function attributes, so the library itself needs no -m flags and runs
 * on any x86-64 CPU; fc_gemm_init() picks the best kernel the CPU supports. */
#include <string.h>

#include "fastconv.h"
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

#define DMR 2
#define DNR 2
#define VREDUCE(v) (v)
#define TYPE float
#define VEC float
#define DOT_NAME dot_generic_float
#include "dot.tmpl.h"
#undef DOT_NAME
#undef VEC
#undef TYPE
#define TYPE double
#define VEC double
#define DOT_NAME dot_generic_double
#include "dot.tmpl.h"
#undef DOT_NAME
#undef VEC
#undef TYPE
#undef VREDUCE
#undef DNR
#undef DMR

#undef MR
#undef VL
#undef UK_TARGET
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef VADD

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FC_HAVE_X86 1

/* Horizontal sums of one AVX2 register, lanes added in a fixed order. */
__attribute__((target("avx2,fma"))) static inline float hsum_avx2_float(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static inline double hsum_avx2_double(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

/* The intrinsics of one vector width and type, from a prefix and a suffix:
 * VOP(loadu) is _mm256_loadu_ps for VP _mm256_ and VS _ps. */
#define VOP(op) CAT(CAT(VP, op), VS)
#define VZERO() VOP(setzero)()
#define VLOAD(p) VOP(loadu)(p)
#define VSTORE(p, v) VOP(storeu)((p), (v))
#define VSET1(x) VOP(set1)(x)
#define VFMA(a, b, c) VOP(fmadd)((a), (b), (c))
#define VADD(a, b) VOP(add)((a), (b))

/* ---- AVX2 + FMA: 16 ymm registers: 6 x 2 accumulators, 2 x 4 for dot --- */
#define UK_TARGET __attribute__((target("avx2,fma")))
#define VP _mm256_
#define MR 6
#define NV 2
#define DMR 2
#define DNR 4

#define TYPE float
#define VEC __m256
#define VL 8
#define VS _ps
#define VREDUCE(v) hsum_avx2_float(v)
#define UK_NAME uk_avx2_float
#define DOT_NAME dot_avx2_float
#include "ukernel.tmpl.h"
#include "dot.tmpl.h"
#undef DOT_NAME
#undef UK_NAME
#undef VREDUCE
#undef VS
#undef VL
#undef VEC
#undef TYPE

#define TYPE double
#define VEC __m256d
#define VL 4
#define VS _pd
#define VREDUCE(v) hsum_avx2_double(v)
#define UK_NAME uk_avx2_double
#define DOT_NAME dot_avx2_double
#include "ukernel.tmpl.h"
#include "dot.tmpl.h"
#undef DOT_NAME
#undef UK_NAME
#undef VREDUCE
#undef VS
#undef VL
#undef VEC
#undef TYPE

#undef DNR
#undef DMR
#undef NV
#undef MR
#undef VP
#undef UK_TARGET

/* ---- AVX-512F: 8 x 2 zmm accumulators (MR = 8 divides the usual filter
 * counts: no wasted rows), a one-vector kernel for narrow edge panels, and
 * 4 x 4 for dot. -------------------------------------------------------- */
#define UK_TARGET __attribute__((target("avx512f")))
#define VP _mm512_
#define MR 8
#define DMR 4
#define DNR 4

#define TYPE float
#define VEC __m512
#define VL 16
#define VS _ps
#define VREDUCE(v) _mm512_reduce_add_ps(v)
#define NV 2
#define UK_NAME uk_avx512_float
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 1
#define UK_LDB (2 * VL)
#define UK_NAME uk_avx512_float_narrow
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define DOT_NAME dot_avx512_float
#include "dot.tmpl.h"
#undef DOT_NAME
#undef VREDUCE
#undef VS
#undef VL
#undef VEC
#undef TYPE

#define TYPE double
#define VEC __m512d
#define VL 8
#define VS _pd
#define VREDUCE(v) _mm512_reduce_add_pd(v)
#define NV 2
#define UK_NAME uk_avx512_double
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define NV 1
#define UK_LDB (2 * VL)
#define UK_NAME uk_avx512_double_narrow
#include "ukernel.tmpl.h"
#undef UK_NAME
#undef NV
#define DOT_NAME dot_avx512_double
#include "dot.tmpl.h"
#undef DOT_NAME
#undef VREDUCE
#undef VS
#undef VL
#undef VEC
#undef TYPE

#undef DNR
#undef DMR
#undef MR
#undef VP
#undef UK_TARGET
#endif /* x86-64 */

static const fc_ukernel_float kernels_float[] = {
#ifdef FC_HAVE_X86
    {"avx512", 8, 32, uk_avx512_float, 16, uk_avx512_float_narrow, 4, 4, dot_avx512_float},
    {"avx2", 6, 16, uk_avx2_float, 16, uk_avx2_float, 2, 4, dot_avx2_float},
#endif
    {"generic", 4, 16, uk_generic_float, 16, uk_generic_float, 2, 2, dot_generic_float},
};
static const fc_ukernel_double kernels_double[] = {
#ifdef FC_HAVE_X86
    {"avx512", 8, 16, uk_avx512_double, 8, uk_avx512_double_narrow, 4, 4, dot_avx512_double},
    {"avx2", 6, 8, uk_avx2_double, 8, uk_avx2_double, 2, 4, dot_avx2_double},
#endif
    {"generic", 4, 8, uk_generic_double, 8, uk_generic_double, 2, 2, dot_generic_double},
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
