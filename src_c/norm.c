/* Instantiates norm.tmpl.h (batch normalisation) for float and double. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

#define TYPE float
#define UTYPE uint32_t
#include "norm.tmpl.h"
#undef UTYPE
#undef TYPE

#define TYPE double
#define UTYPE uint64_t
#include "norm.tmpl.h"
#undef UTYPE
#undef TYPE
