/* The micro-kernel table shared by ukernel.c (which fills it) and gemm.c
 * (which calls it).  Internal to src_c/. */
#ifndef FC_UKERNEL_H
#define FC_UKERNEL_H

#include <stddef.h>

typedef struct {
    const char *isa;
    ptrdiff_t mr, nr;
    void (*run)(ptrdiff_t kc, const float *a, const float *b, float *c,
                ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, int accumulate,
                const float *bias);
    /* for edge panels of at most nr_narrow columns (B keeps its nr stride) */
    ptrdiff_t nr_narrow;
    void (*run_narrow)(ptrdiff_t kc, const float *a, const float *b, float *c,
                       ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, int accumulate,
                       const float *bias);
    /* C (dmr x dnr) += X (dmr x n) Y^T, rows contiguous (see dot.tmpl.h) */
    ptrdiff_t dmr, dnr;
    void (*dot)(ptrdiff_t n, const float *x, ptrdiff_t ldx, const float *y,
                ptrdiff_t ldy, float *c, ptrdiff_t ldc, ptrdiff_t m,
                ptrdiff_t nq);
} fc_ukernel_float;

typedef struct {
    const char *isa;
    ptrdiff_t mr, nr;
    void (*run)(ptrdiff_t kc, const double *a, const double *b, double *c,
                ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, int accumulate,
                const double *bias);
    /* for edge panels of at most nr_narrow columns (B keeps its nr stride) */
    ptrdiff_t nr_narrow;
    void (*run_narrow)(ptrdiff_t kc, const double *a, const double *b, double *c,
                       ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, int accumulate,
                       const double *bias);
    /* C (dmr x dnr) += X (dmr x n) Y^T, rows contiguous (see dot.tmpl.h) */
    ptrdiff_t dmr, dnr;
    void (*dot)(ptrdiff_t n, const double *x, ptrdiff_t ldx, const double *y,
                ptrdiff_t ldy, double *c, ptrdiff_t ldc, ptrdiff_t m,
                ptrdiff_t nq);
} fc_ukernel_double;

extern const fc_ukernel_float *fc_uk_float;
extern const fc_ukernel_double *fc_uk_double;

#endif
