/* Instantiates pool.tmpl.h for float and double. */
#include <math.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

/* column taps whose output ranges are precomputed per plane */
#define FC_POOL_TAPS 32

#define TYPE float
#include "pool.tmpl.h"
#undef TYPE

#define TYPE double
#include "pool.tmpl.h"
#undef TYPE
