/* Instantiates winograd.tmpl.h (F(2x2, 3x3) convolution on the GEMM
 * micro-kernels) for float and double. */
#include "fastconv.h"
#include "common.h"
#include "templating.h"
#include "ukernel.h"

#define TYPE float
#include "winograd.tmpl.h"
#undef TYPE

#define TYPE double
#include "winograd.tmpl.h"
#undef TYPE
