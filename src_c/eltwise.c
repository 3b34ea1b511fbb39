/* Instantiates eltwise.tmpl.h (element-wise layers, optimiser steps, the
 * softmax cross-entropy) for float and double. */
#include <math.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

#define TYPE float
#define SQRT sqrtf
#define EXP expf
#include "eltwise.tmpl.h"
#undef EXP
#undef SQRT
#undef TYPE

#define TYPE double
#define SQRT sqrt
#define EXP exp
#include "eltwise.tmpl.h"
#undef EXP
#undef SQRT
#undef TYPE
