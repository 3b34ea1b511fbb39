/* Instantiates vol.tmpl.h (3-D pooling) for float and double. */
#include <math.h>

#include "fastconv.h"
#include "common.h"
#include "templating.h"

/* First coordinate start + k*dilation (k >= 0) at or after 0: the first
 * real cell of a pooling window along one axis, as PyTorch finds it. */
static inline ptrdiff_t fc_first_cell(ptrdiff_t start, ptrdiff_t dilation)
{
    while (start < 0) start += dilation;
    return start;
}

#define TYPE float
#include "vol.tmpl.h"
#undef TYPE

#define TYPE double
#include "vol.tmpl.h"
#undef TYPE
