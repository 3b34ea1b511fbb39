/* Instantiates vol.tmpl.h (3-D pooling) for float and double. */
#include <math.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

#define TYPE float
#include "vol.tmpl.h"
#undef TYPE

#define TYPE double
#include "vol.tmpl.h"
#undef TYPE
