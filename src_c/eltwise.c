/* Instantiates eltwise.tmpl.h (element-wise layers, optimiser steps, the
 * softmax cross-entropy) for float and double. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

#define TYPE float
#define UTYPE uint32_t
#define SQRT sqrtf
#define EXP expf
#include "eltwise.tmpl.h"
#undef EXP
#undef SQRT
#undef UTYPE
#undef TYPE

#define TYPE double
#define UTYPE uint64_t
#define SQRT sqrt
#define EXP exp
#include "eltwise.tmpl.h"
#undef EXP
#undef SQRT
#undef UTYPE
#undef TYPE
