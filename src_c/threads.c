/* What the build's OpenMP support is; compiled with or without -fopenmp. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fastconv.h"

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
