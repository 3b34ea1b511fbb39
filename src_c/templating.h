/* Token pasting for the float/double instantiations of the *.tmpl.h kernels:
 * CAT(fc_im2col_, TYPE) becomes fc_im2col_float or fc_im2col_double. */
#ifndef FC_TEMPLATING_H
#define FC_TEMPLATING_H
#define CAT_HELPER(a, b) a##b
#define CAT(a, b) CAT_HELPER(a, b)
#endif
