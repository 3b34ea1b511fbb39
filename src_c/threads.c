/* OpenMP: what the build supports, and the drivers' parallel loop
 * (threads.tmpl.h), the one parallel region of the C code; compiled with or
 * without -fopenmp (without it the loops run in order on the calling
 * thread). */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastconv.h"
#include "templating.h"

int fc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int fc_thread(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#define TYPE float
#include "threads.tmpl.h"
#undef TYPE

#define TYPE double
#include "threads.tmpl.h"
#undef TYPE
