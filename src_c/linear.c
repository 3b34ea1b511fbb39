/* Instantiates linear.tmpl.h (the fully connected layer's matrix products
 * on the GEMM micro-kernels) for float and double. */
#include "fastconv.h"
#include "common.h"
#include "templating.h"
#include "ukernel.h"

#define TYPE float
#include "linear.tmpl.h"
#undef TYPE

#define TYPE double
#include "linear.tmpl.h"
#undef TYPE
