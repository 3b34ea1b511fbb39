/* The micro-kernel table shared by ukernel.c (which fills it) and gemm.c
 * (which calls it).  Internal to src_c/. */
#ifndef FC_UKERNEL_H
#define FC_UKERNEL_H

#include <stddef.h>

#define FC_UK_PIECES 3
/* The widest panel of any micro-kernel (AVX-512 floats: 48 columns). */
#define FC_UK_NR_MAX 48

/* In a template on TYPE (gemm.tmpl.h, winograd.tmpl.h): the micro-kernels of
 * that type, and the one for a panel whose first n columns are wanted. */
#define UK CAT(fc_uk_, TYPE)
#define UK_RUN(n) (UK->run[((n) - 1) / UK->piece])
#define UK_RUN_ROWS(n) (UK->run_rows[((n) - 1) / UK->piece])
#define UK_RUN_AT(n) (UK->run_at[((n) - 1) / UK->piece])
#define UK_RUN_KN(n) (UK->run_kn[((n) - 1) / UK->piece])

/* K block of the GEMM and of Winograd's products: a KC x NR panel of B
 * (24 KiB with AVX-512 floats) stays in L1 across the filter panels (see
 * gemm.c for how it was chosen). */
#define FC_GEMM_KC 128

typedef struct {
    const char *isa;
    ptrdiff_t mr, nr;
    /* run[(n - 1) / piece] computes a panel's first n columns (B keeps its
     * nr stride), so edge panels skip the pieces past n; run[nr / piece - 1]
     * is the full kernel (UK_RUN in gemm.tmpl.h picks). */
    ptrdiff_t piece;
    void (*run[FC_UK_PIECES])(ptrdiff_t kc, const float *a, const float *b, float *c,
                      ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, int accumulate,
                      const float *bias);
    /* The same with row k of B at brow[k] + boff (rows read in place). */
    void (*run_rows[FC_UK_PIECES])(ptrdiff_t kc, const float *a,
                                   const float *const *brow, ptrdiff_t boff,
                                   float *c, ptrdiff_t ldc, ptrdiff_t m,
                                   ptrdiff_t n, int accumulate, const float *bias);
    /* The same with A[k, r] at a[r * lda + k] (rows of A read in place)
     * and row k of B at b + k * ldb. */
    void (*run_at[FC_UK_PIECES])(ptrdiff_t kc, const float *a, ptrdiff_t lda,
                                 const float *b, ptrdiff_t ldb, float *c,
                                 ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                                 int accumulate, const float *bias);
    /* The same with A[k, r] at a[k * lda + r] and row k of B at b + k * ldb
     * (both read in place). */
    void (*run_kn[FC_UK_PIECES])(ptrdiff_t kc, const float *a, ptrdiff_t lda,
                                 const float *b, ptrdiff_t ldb, float *c,
                                 ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                                 int accumulate, const float *bias);
    /* Transposing packer (grad_weight): element (q, l) of the m x n block
     * src (row q at src + q * lds, or at rowp[q] if rowp is not NULL) goes
     * to dst[(q / w) * ps + l * w + q % w], rows m .. roundup(m, w) are
     * zero: panels of w rows, l-major. */
    void (*pack_t)(const float *src, ptrdiff_t lds, const float *const *rowp,
                   ptrdiff_t m, ptrdiff_t n, ptrdiff_t w, ptrdiff_t ps,
                   float *dst);
} fc_ukernel_float;

typedef struct {
    const char *isa;
    ptrdiff_t mr, nr;
    /* run[(n - 1) / piece] computes a panel's first n columns (B keeps its
     * nr stride), so edge panels skip the pieces past n; run[nr / piece - 1]
     * is the full kernel (UK_RUN in gemm.tmpl.h picks). */
    ptrdiff_t piece;
    void (*run[FC_UK_PIECES])(ptrdiff_t kc, const double *a, const double *b, double *c,
                       ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, int accumulate,
                       const double *bias);
    /* The same with row k of B at brow[k] + boff (rows read in place). */
    void (*run_rows[FC_UK_PIECES])(ptrdiff_t kc, const double *a,
                                   const double *const *brow, ptrdiff_t boff,
                                   double *c, ptrdiff_t ldc, ptrdiff_t m,
                                   ptrdiff_t n, int accumulate, const double *bias);
    /* The same with A[k, r] at a[r * lda + k] (rows of A read in place)
     * and row k of B at b + k * ldb. */
    void (*run_at[FC_UK_PIECES])(ptrdiff_t kc, const double *a, ptrdiff_t lda,
                                 const double *b, ptrdiff_t ldb, double *c,
                                 ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                                 int accumulate, const double *bias);
    /* The same with A[k, r] at a[k * lda + r] and row k of B at b + k * ldb
     * (both read in place). */
    void (*run_kn[FC_UK_PIECES])(ptrdiff_t kc, const double *a, ptrdiff_t lda,
                                 const double *b, ptrdiff_t ldb, double *c,
                                 ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                                 int accumulate, const double *bias);
    /* Transposing packer (grad_weight): element (q, l) of the m x n block
     * src (row q at src + q * lds, or at rowp[q] if rowp is not NULL) goes
     * to dst[(q / w) * ps + l * w + q % w], rows m .. roundup(m, w) are
     * zero: panels of w rows, l-major. */
    void (*pack_t)(const double *src, ptrdiff_t lds, const double *const *rowp,
                   ptrdiff_t m, ptrdiff_t n, ptrdiff_t w, ptrdiff_t ps,
                   double *dst);
} fc_ukernel_double;

extern const fc_ukernel_float *fc_uk_float;
extern const fc_ukernel_double *fc_uk_double;

#endif
