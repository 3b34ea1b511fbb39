/* Instantiates im2col.tmpl.h for float and double. */
#include "fastconv.h"
#include "common.h"
#include "templating.h"

#define TYPE float
#include "im2col_row.tmpl.h"
#include "im2col.tmpl.h"
#undef TYPE

#define TYPE double
#include "im2col_row.tmpl.h"
#include "im2col.tmpl.h"
#undef TYPE
