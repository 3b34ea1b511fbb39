/* Instantiates norm.tmpl.h (batch normalisation) for float and double. */
#include <math.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

#define TYPE float
#include "norm.tmpl.h"
#undef TYPE

#define TYPE double
#include "norm.tmpl.h"
#undef TYPE
