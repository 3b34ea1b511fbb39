/* Instantiates pool.tmpl.h for float and double. */
#include <math.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

/* column taps whose output ranges are precomputed per plane */
#define FC_POOL_TAPS 32
/* 3x3/s2 rows: outputs per chunk, and per vector group (8 floats fill an
 * AVX2 register) */
#define FC_POOL_CH 128
#define FC_POOL_G 8

#define TYPE float
#include "pool.tmpl.h"
#undef TYPE

#define TYPE double
#include "pool.tmpl.h"
#undef TYPE
