/* Instantiates conv2d.tmpl.h (direct convolution) for float and double. */
#include "fastconv.h"
#include "common.h"
#include "templating.h"

#define TYPE float
#include "conv2d.tmpl.h"
#undef TYPE

#define TYPE double
#include "conv2d.tmpl.h"
#undef TYPE
