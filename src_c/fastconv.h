/* fastconv's C kernels: the only header the Cython glue sees.
 *
 * Every kernel works on ONE image (or one plane) with one thread; the Cython
 * layer owns threading and allocation.  Inputs are C-contiguous and already
 * checked by fastconv/_validation.py.  Sizes are ptrdiff_t so that arrays
 * larger than 2**31 elements index correctly.
 *
 * Return codes: 0 on success, FC_EINDEX when an index argument lies outside
 * its plane (nothing out of bounds is ever written).
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stddef.h>
#include <stdint.h>

#define FC_OK 0
#define FC_EINDEX (-1)

/* Geometry of a sliding window over a (C, H, W) image producing (Ho, Wo)
 * positions: kernel kh x kw, stride sh x sw, top/left padding pt/pl (the
 * bottom/right padding is whatever Ho/Wo imply), dilation dh x dw. */
typedef struct {
    ptrdiff_t C, H, W;
    ptrdiff_t kh, kw, sh, sw, pt, pl, dh, dw;
    ptrdiff_t Ho, Wo;
} fc_geom;

/* Where a kernel writes output element (image n, channel f, row oh, column
 * ow): at n*img + f*plane + oh*row + ow*col from its base pointer. */
typedef struct {
    ptrdiff_t img, plane, row, col;
} fc_ylayout;

/* ---- im2col.c ----------------------------------------------------------
 * fc_im2col_<T>(x, g, l0, l1, cols)
 *   x    IN  (C, H, W) image
 *   l0, l1   the output positions l = oh*Wo + ow to unfold, 0 <= l0 < l1 <= Ho*Wo
 *   cols OUT (C*kh*kw, l1 - l0), row c*kh*kw + i*kw + j; zeros where the
 *            window reads padding.  Overwritten.
 * fc_col2im_<T>(cols, g, l0, l1, x)
 *   cols IN  (C*kh*kw, l1 - l0) as above
 *   x    OUT (C, H, W): ACCUMULATES (adds into x; zero it first for a fold).
 */
int fc_im2col_float(const float *x, const fc_geom *g, ptrdiff_t l0,
                    ptrdiff_t l1, float *cols);
int fc_im2col_double(const double *x, const fc_geom *g, ptrdiff_t l0,
                     ptrdiff_t l1, double *cols);
int fc_col2im_float(const float *cols, const fc_geom *g, ptrdiff_t l0,
                    ptrdiff_t l1, float *x);
int fc_col2im_double(const double *cols, const fc_geom *g, ptrdiff_t l0,
                     ptrdiff_t l1, double *x);

/* ---- conv2d.c: direct convolution --------------------------------------
 * g->C is the number of input channels of one group (C/groups).
 * work is a scratch buffer of fc_conv2d_direct_work_size_<T>(g, n_filters)
 * elements (0: none needed, any pointer will do), one per thread.
 * fc_conv2d_direct_<T>(x, w, bias, g, work, y)
 *   x    IN  (C/groups, H, W): the channels of the filter's group
 *   w    IN  (C/groups, kh, kw): one filter
 *   bias     the filter's bias value (0 for none)
 *   y    OUT (Ho, Wo): overwritten
 * fc_conv2d_direct_grad_input_<T>(grad_y, w, n_filters, g, work, grad_x)
 *   grad_y IN  (n_filters, Ho, Wo): the output gradients of the group's filters
 *   w      IN  (n_filters, C/groups, kh, kw), pre-offset to input channel c
 *              of the group: element (f, i, j) is w[f*(C/groups)*kh*kw + i*kw + j]
 *   grad_x OUT (H, W): one input channel's gradient, overwritten
 * fc_conv2d_direct_grad_weight_<T>(x, grad_y, g, work, grad_w)
 *   x      IN  (C/groups, H, W) one image's group channels
 *   grad_y IN  (Ho, Wo) one image's output gradient for the filter
 *   grad_w OUT (C/groups, kh, kw): ACCUMULATES
 */
ptrdiff_t fc_conv2d_direct_work_size_float(const fc_geom *g, ptrdiff_t n_filters);
ptrdiff_t fc_conv2d_direct_work_size_double(const fc_geom *g, ptrdiff_t n_filters);
int fc_conv2d_direct_float(const float *x, const float *w, float bias,
                           const fc_geom *g, float *work, float *y);
int fc_conv2d_direct_double(const double *x, const double *w, double bias,
                            const fc_geom *g, double *work, double *y);
int fc_conv2d_direct_grad_input_float(const float *grad_y, const float *w,
                                      ptrdiff_t n_filters, const fc_geom *g,
                                      float *work, float *grad_x);
int fc_conv2d_direct_grad_input_double(const double *grad_y, const double *w,
                                       ptrdiff_t n_filters, const fc_geom *g,
                                       double *work, double *grad_x);
int fc_conv2d_direct_grad_weight_float(const float *x, const float *grad_y,
                                       const fc_geom *g, float *work,
                                       float *grad_w);
int fc_conv2d_direct_grad_weight_double(const double *x, const double *grad_y,
                                        const fc_geom *g, double *work,
                                        double *grad_w);
/* fc_bias_grad_<T>(gy, N, stride, L): the sum of gy[n * stride + l] over
 * n < N, l < L (one filter's grad_bias), in double, in a fixed order. */
double fc_bias_grad_float(const float *gy, ptrdiff_t N, ptrdiff_t stride,
                          ptrdiff_t L);
double fc_bias_grad_double(const double *gy, ptrdiff_t N, ptrdiff_t stride,
                           ptrdiff_t L);

/* ---- pool.c: one (H, W) plane -> one (Ho, Wo) plane --------------------
 * fc_max_pool2d_<T>(x, g, y, indices)
 *   x       IN  (H, W)
 *   y       OUT (Ho, Wo) window maxima (PyTorch's rule: first maximum in
 *               scan order; NaN wins, the last NaN in scan order)
 *   indices OUT (Ho, Wo) int64 ih*W + iw of each maximum, or NULL to skip
 * fc_max_pool2d_backward_<T>(grad_y, indices, n_out, hw, grad_x)
 *   grad_y, indices IN (n_out,)
 *   grad_x  OUT (hw,): ACCUMULATES; returns FC_EINDEX (and stops) on an
 *               index outside [0, hw)
 * fc_avg_pool2d_<T>(x, g, count_include_pad, y)           y OUT (Ho, Wo)
 * fc_avg_pool2d_backward_<T>(grad_y, g, count_include_pad, grad_x)
 *   grad_x OUT (H, W): ACCUMULATES
 */
int fc_max_pool2d_float(const float *x, const fc_geom *g, float *y,
                        int64_t *indices);
int fc_max_pool2d_double(const double *x, const fc_geom *g, double *y,
                         int64_t *indices);
int fc_max_pool2d_backward_float(const float *grad_y, const int64_t *indices,
                                 ptrdiff_t n_out, ptrdiff_t hw, float *grad_x);
int fc_max_pool2d_backward_double(const double *grad_y, const int64_t *indices,
                                  ptrdiff_t n_out, ptrdiff_t hw,
                                  double *grad_x);
int fc_avg_pool2d_float(const float *x, const fc_geom *g,
                        int count_include_pad, float *y);
int fc_avg_pool2d_double(const double *x, const fc_geom *g,
                         int count_include_pad, double *y);
int fc_avg_pool2d_backward_float(const float *grad_y, const fc_geom *g,
                                 int count_include_pad, float *grad_x);
int fc_avg_pool2d_backward_double(const double *grad_y, const fc_geom *g,
                                  int count_include_pad, double *grad_x);

/* ---- gemm.c / ukernel.c: convolution as a packed GEMM ------------------
 * fc_gemm_init(isa): choose the micro-kernels: "avx512", "avx2", "generic",
 *   or NULL/"" for the best the CPU supports.  Returns FC_EINDEX if the
 *   named one is unknown or unsupported.  Call once, before any kernel.
 * fc_gemm_isa(): the name of the kernels in use.
 * fc_gemm_packed_weights_size_<T>(F, K): elements of packed weights.
 * fc_gemm_pack_weights_<T>(w, F, K, packed)
 *   w      IN  (F, K) one group's filters, K = C/groups*kh*kw
 *   packed OUT fc_gemm_packed_weights_size elements
 * fc_gemm_tile_cols_<T>(): the column budget of a tile (fixed by the
 *   kernels, never by the thread count).
 * fc_gemm_tiles_<T>(g): tiles per image and group (bands of output rows over
 *   a slab of the input split into stride phases, or runs of output
 *   positions: see gemm.tmpl.h for which).
 * fc_gemm_work_size_<T>(g, F): scratch elements per thread.
 * fc_conv2d_gemm_tile_<T>(x, g, wpack, F, bias, tile, work, y)
 *   x      IN  (C/groups, H, W) one image's group channels; g->C = C/groups
 *   wpack  IN  the group's packed weights
 *   bias   IN  (F,) the group's biases
 *   tile       0 <= tile < fc_gemm_tiles(g)
 *   work       fc_gemm_work_size(g, F) elements of scratch
 *   y      OUT (F, Ho*Wo) the group's output planes; the tile's part written
 * fc_gemm_items_<T>(g, N, ly): work items for a batch of N images written
 *   with layout ly (small images go several to a tile).
 * fc_gemm_item_work_size_<T>(g, F, ly): scratch elements per thread.
 * fc_conv2d_gemm_item_<T>(x, x_stride, N, g, wpack, F, bias, item, work, y, ly)
 *   x      IN  image 0's group channels; image n at x + n*x_stride
 *   item       0 <= item < fc_gemm_items(g, N, ly)
 *   y      OUT image 0's group output (see fc_ylayout); the item's part
 *              written.  Any layout; the plain one (plane Ho*Wo, row Wo,
 *              col 1) may take faster paths.
 */
int fc_gemm_init(const char *isa);
const char *fc_gemm_isa(void);
ptrdiff_t fc_gemm_packed_weights_size_float(ptrdiff_t F, ptrdiff_t K);
ptrdiff_t fc_gemm_packed_weights_size_double(ptrdiff_t F, ptrdiff_t K);
void fc_gemm_pack_weights_float(const float *w, ptrdiff_t F, ptrdiff_t K,
                                float *packed);
void fc_gemm_pack_weights_double(const double *w, ptrdiff_t F, ptrdiff_t K,
                                 double *packed);
ptrdiff_t fc_gemm_tile_cols_float(void);
ptrdiff_t fc_gemm_tile_cols_double(void);
ptrdiff_t fc_gemm_tiles_float(const fc_geom *g);
ptrdiff_t fc_gemm_tiles_double(const fc_geom *g);
ptrdiff_t fc_gemm_work_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_work_size_double(const fc_geom *g, ptrdiff_t F);
int fc_conv2d_gemm_tile_float(const float *x, const fc_geom *g,
                              const float *wpack, ptrdiff_t F,
                              const float *bias, ptrdiff_t tile,
                              float *work, float *y);
ptrdiff_t fc_gemm_items_float(const fc_geom *g, ptrdiff_t N, const fc_ylayout *ly);
ptrdiff_t fc_gemm_items_double(const fc_geom *g, ptrdiff_t N, const fc_ylayout *ly);
ptrdiff_t fc_gemm_item_work_size_float(const fc_geom *g, ptrdiff_t F,
                                       const fc_ylayout *ly);
ptrdiff_t fc_gemm_item_work_size_double(const fc_geom *g, ptrdiff_t F,
                                        const fc_ylayout *ly);
int fc_conv2d_gemm_item_float(const float *x, ptrdiff_t x_stride, ptrdiff_t N,
                              const fc_geom *g, const float *wpack, ptrdiff_t F,
                              const float *bias, ptrdiff_t item, float *work,
                              float *y, const fc_ylayout *ly);
int fc_conv2d_gemm_item_double(const double *x, ptrdiff_t x_stride, ptrdiff_t N,
                               const fc_geom *g, const double *wpack,
                               ptrdiff_t F, const double *bias, ptrdiff_t item,
                               double *work, double *y, const fc_ylayout *ly);
/* Backward, by the same micro-kernels (g->C = C/groups, F = F/groups):
 * fc_gemm_grad_input_blocks_<T>(g): blocks of whole input channels that
 *   grad_x is computed in (independent: they write disjoint planes).
 * fc_gemm_packed_weights_t_size_<T>(g, F), fc_gemm_pack_weights_t_<T>(w, g,
 *   F, packed): the group's (F, K) filters packed transposed, per block.
 * fc_gemm_grad_input_work_size_<T>(g, F): scratch elements per thread.
 * fc_conv2d_gemm_grad_input_<T>(gy, g, wtpack, F, block, work, gx)
 *   gy  IN  (F, Ho*Wo) one image's group output gradient
 *   gx  OUT (C/groups, H, W) the group's input gradient; the planes of the
 *           block's channels ACCUMULATE (zero them first)
 * fc_gemm_grad_weight_work_size_<T>(g, F): scratch elements per thread.
 * fc_conv2d_gemm_grad_weight_<T>(x, x_stride, gy, gy_stride, g, F, p0, p1,
 *                                work, gw)
 *   x   IN  image 0's group channels (C/groups, H, W); image n at
 *           x + n*x_stride
 *   gy  IN  image 0's group output gradient (F, Ho*Wo); image n at
 *           gy + n*gy_stride
 *   gw  OUT (F, K) ACCUMULATES the products over the batch's output
 *           positions [p0, p1), position n*Ho*Wo + l
 */
ptrdiff_t fc_gemm_grad_input_blocks_float(const fc_geom *g);
ptrdiff_t fc_gemm_grad_input_blocks_double(const fc_geom *g);
ptrdiff_t fc_gemm_packed_weights_t_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_packed_weights_t_size_double(const fc_geom *g, ptrdiff_t F);
void fc_gemm_pack_weights_t_float(const float *w, const fc_geom *g,
                                  ptrdiff_t F, float *packed);
void fc_gemm_pack_weights_t_double(const double *w, const fc_geom *g,
                                   ptrdiff_t F, double *packed);
ptrdiff_t fc_gemm_grad_input_work_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_grad_input_work_size_double(const fc_geom *g, ptrdiff_t F);
int fc_conv2d_gemm_grad_input_float(const float *gy, const fc_geom *g,
                                    const float *wtpack, ptrdiff_t F,
                                    ptrdiff_t block, float *work, float *gx);
int fc_conv2d_gemm_grad_input_double(const double *gy, const fc_geom *g,
                                     const double *wtpack, ptrdiff_t F,
                                     ptrdiff_t block, double *work,
                                     double *gx);
ptrdiff_t fc_gemm_grad_weight_work_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_grad_weight_work_size_double(const fc_geom *g, ptrdiff_t F);
int fc_conv2d_gemm_grad_weight_float(const float *x, ptrdiff_t x_stride,
                                     const float *gy, ptrdiff_t gy_stride,
                                     const fc_geom *g, ptrdiff_t F,
                                     ptrdiff_t p0, ptrdiff_t p1, float *work,
                                     float *gw);
int fc_conv2d_gemm_grad_weight_double(const double *x, ptrdiff_t x_stride,
                                      const double *gy, ptrdiff_t gy_stride,
                                      const fc_geom *g, ptrdiff_t F,
                                      ptrdiff_t p0, ptrdiff_t p1,
                                      double *work, double *gw);
int fc_conv2d_gemm_tile_double(const double *x, const fc_geom *g,
                               const double *wpack, ptrdiff_t F,
                               const double *bias, ptrdiff_t tile,
                               double *work, double *y);

/* ---- threads.c --------------------------------------------------------
 * fc_openmp_enabled(): 1 if this build has OpenMP, else 0.
 * fc_default_threads(): omp_get_max_threads() (OMP_NUM_THREADS or the core
 * count, and what threadpoolctl limits), 1 without OpenMP. */
int fc_openmp_enabled(void);
int fc_default_threads(void);

/* ==== 3-D (volumetric) kernels: vol.c =================================== */

/* Geometry of a sliding window over a (C, D, H, W) image producing
 * (Do, Ho, Wo) positions: kernel kd x kh x kw, stride sd x sh x sw,
 * front/top/left padding pf/pt/pl (the back/bottom/right padding is whatever
 * Do/Ho/Wo imply), dilation dd x dh x dw. */
typedef struct {
    ptrdiff_t C, D, H, W;
    ptrdiff_t kd, kh, kw, sd, sh, sw, pf, pt, pl, dd, dh, dw;
    ptrdiff_t Do, Ho, Wo;
} fc_vgeom;

/* Pooling of one (D, H, W) volume into one (Do, Ho, Wo) volume (g->C is
 * ignored); PyTorch's window rules, as the 2-D kernels.
 * fc_max_pool3d_<T>(x, g, y, indices)
 *   y       OUT window maxima (a larger value or a NaN takes over, windows
 *               scanned in (d, h, w) row-major order)
 *   indices OUT (id*H + ih)*W + iw of each maximum, or NULL: not computed
 *   (The backward pass is fc_max_pool2d_backward_<T> with hw = D*H*W.)
 * fc_avg_pool3d_<T>(x, g, count_include_pad, y)
 *   y       OUT window sums divided by PyTorch's divisor (0 for a window
 *               with no input cell)
 * fc_avg_pool3d_backward_<T>(grad_y, g, count_include_pad, grad_x)
 *   grad_x  OUT (D, H, W): ACCUMULATES grad_y / divisor over each window
 */
int fc_max_pool3d_float(const float *x, const fc_vgeom *g, float *y,
                        int64_t *indices);
int fc_max_pool3d_double(const double *x, const fc_vgeom *g, double *y,
                         int64_t *indices);
int fc_avg_pool3d_float(const float *x, const fc_vgeom *g,
                        int count_include_pad, float *y);
int fc_avg_pool3d_double(const double *x, const fc_vgeom *g,
                         int count_include_pad, double *y);
int fc_avg_pool3d_backward_float(const float *grad_y, const fc_vgeom *g,
                                 int count_include_pad, float *grad_x);
int fc_avg_pool3d_backward_double(const double *grad_y, const fc_vgeom *g,
                                  int count_include_pad, double *grad_x);
/* ==== local.c: locally connected layer (unshared weights) ===============
 * Weights W of shape (Ho, Wo, C, kh, kw, F): position l = oh*Wo + ow owns the
 * filters W[l] (K x F, K = C*kh*kw, one filter per column); bias (F, Ho, Wo).
 * The kernels read xt, a zero-padded, image-innermost copy of the input:
 * xt[((c*Hp + h)*Wp + w)*N + n] = x[n, c, h - pt, w - pl] (0 outside x),
 * with Hp, Wp = gp->H, gp->W from fc_lc_padded_geom; they write the input
 * gradient in the same layout (gxt), and positions [l0, l1) of the rest.
 * fc_lc_padded_geom(g, gp): g with H, W grown to cover every window and
 *   pt = pl = 0.
 * fc_lc_offsets(gp, N, off): off[(c*kh + i)*kw + j] = offset in xt of tap
 *   (c, i, j) from its window's top-left cell; K entries.
 * fc_lc_work_size(g, N, F): scratch elements per thread (either type).
 * fc_lc_band_rows(g): output rows per band of the backward pass: bands b and
 *   b + 2 touch disjoint input rows, so every other band can run at once.
 * fc_lc_pack_row_<T>(x, g, N, row, xt)
 *   x  IN  (N, C, H, W); row = c*Hp + h, 0 <= row < C*Hp: that row of xt
 *          (Wp*N elements) written
 * fc_lc_unpack_row_<T>(xt, g, N, row, x)
 *   row = c*H + h, 0 <= row < C*H: x[:, c, h, :] written from xt
 * fc_lc_forward_<T>(xt, gp, off, N, w, bias, F, l0, l1, work, y)
 *   xt   IN  (C, Hp, Wp, N); off from fc_lc_offsets; bias IN (F, Ho, Wo)
 *            or NULL; work fc_lc_work_size elements
 *   y    OUT (N, F, Ho, Wo): positions [l0, l1) of every image written
 * fc_lc_backward_<T>(gy, xt, gp, off, N, w, F, l0, l1, work, gxt, gw, gb)
 *   gy   IN  (N, F, Ho, Wo)
 *   gxt  OUT (C, Hp, Wp, N): ACCUMULATES the windows of [l0, l1)
 *   gw   OUT (Ho, Wo, C, kh, kw, F), gb OUT (F, Ho, Wo) or NULL: positions
 *            [l0, l1) written (summed over the images in order)
 */
void fc_lc_padded_geom(const fc_geom *g, fc_geom *gp);
void fc_lc_offsets(const fc_geom *gp, ptrdiff_t N, ptrdiff_t *off);
ptrdiff_t fc_lc_work_size(const fc_geom *g, ptrdiff_t N, ptrdiff_t F);
ptrdiff_t fc_lc_band_rows(const fc_geom *g);
int fc_lc_pack_row_float(const float *x, const fc_geom *g, ptrdiff_t N,
                         ptrdiff_t row, float *xt);
int fc_lc_pack_row_double(const double *x, const fc_geom *g, ptrdiff_t N,
                          ptrdiff_t row, double *xt);
int fc_lc_unpack_row_float(const float *xt, const fc_geom *g, ptrdiff_t N,
                           ptrdiff_t row, float *x);
int fc_lc_unpack_row_double(const double *xt, const fc_geom *g, ptrdiff_t N,
                            ptrdiff_t row, double *x);
int fc_lc_forward_float(const float *xt, const fc_geom *gp,
                        const ptrdiff_t *off, ptrdiff_t N, const float *w,
                        const float *bias, ptrdiff_t F, ptrdiff_t l0,
                        ptrdiff_t l1, float *work, float *y);
int fc_lc_forward_double(const double *xt, const fc_geom *gp,
                         const ptrdiff_t *off, ptrdiff_t N, const double *w,
                         const double *bias, ptrdiff_t F, ptrdiff_t l0,
                         ptrdiff_t l1, double *work, double *y);
int fc_lc_backward_float(const float *gy, const float *xt, const fc_geom *gp,
                         const ptrdiff_t *off, ptrdiff_t N, const float *w,
                         ptrdiff_t F, ptrdiff_t l0, ptrdiff_t l1, float *work,
                         float *gxt, float *gw, float *gb);
int fc_lc_backward_double(const double *gy, const double *xt,
                          const fc_geom *gp, const ptrdiff_t *off,
                          ptrdiff_t N, const double *w, ptrdiff_t F,
                          ptrdiff_t l0, ptrdiff_t l1, double *work,
                          double *gxt, double *gw, double *gb);

/* ---- gemm.c: grad_x of a unit-stride convolution as a forward one -------
 * grad_x = conv2d(grad_y, W'), with W'[c, f, i, j] = W[f, c, kh-1-i, kw-1-j]
 * on the geometry: C = F, H = Ho, W = Wo, stride 1, the same dilation,
 * padding (kh-1)*dh - pt and (kw-1)*dw - pl (both >= 0), Ho = H, Wo = W.
 * fc_gemm_pack_weights_flip_<T>(w, F, C, kh, kw, panel, packed)
 *   w       IN  (F, C, kh, kw) one group's filters
 *   panel       the panel of mr channels to pack, 0 <= panel < ceil(C/mr),
 *               mr = fc_gemm_packed_weights_size(1, 1) (the micro-kernel's rows)
 *   packed  OUT fc_gemm_packed_weights_size(C, F*kh*kw) elements: W' packed
 *               as fc_gemm_pack_weights packs (C, F*kh*kw) filters; the
 *               panel's part written
 */
void fc_gemm_pack_weights_flip_float(const float *w, ptrdiff_t F, ptrdiff_t C,
                                     ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t panel,
                                     float *packed);
void fc_gemm_pack_weights_flip_double(const double *w, ptrdiff_t F,
                                      ptrdiff_t C, ptrdiff_t kh, ptrdiff_t kw,
                                      ptrdiff_t panel, double *packed);

/* grad_w by blocks of its columns (gemm.tmpl.h), on "virtual" positions
 * p = n*Ho*Wv + oh*Wv + q of Wv-column rows (the forward tiles' width):
 * fc_gemm_gw_fits_<T>(g, F): 1 when the extra columns cost at most an
 *   eighth and the slabs fit (else use fc_conv2d_gemm_grad_weight).
 * fc_gemm_gw_blocks_<T>(g, N): blocks of positions of the batch.
 * fc_gemm_gw_col_blocks_<T>(g, F): blocks of Gw's K columns (work items).
 * fc_gemm_gw_apack_size_<T>(F): elements of one block's packed gradients.
 * fc_gemm_gw_pack_a_<T>(gy, gy_stride, g, F, N, block, apack)
 *   gy    IN  image 0's group output gradient (F, Ho*Wo); image n at
 *             gy + n*gy_stride
 *   apack OUT the block's gradients, packed (fc_gemm_gw_apack_size elements)
 * fc_gemm_gw_work_size_<T>(g, F): scratch elements per thread.
 * fc_conv2d_gemm_gw_item_<T>(x, x_stride, gy, gy_stride, g, F, N, b0, b1,
 *                            kb, apack, first, work, gw)
 *   x     IN  image 0's group channels; image n at x + n*x_stride
 *   gy    IN  as for fc_gemm_gw_pack_a (read only when apack is NULL)
 *   apack IN  blocks b0 .. b1-1 packed, fc_gemm_gw_apack_size apart, or
 *             NULL: each block packed here (when no other item reuses it)
 *   gw    OUT (F, K) the group's grad_w: column block kb ACCUMULATES the
 *             blocks' products (each element in block order), or is SET by
 *             block b0 when first
 */
int fc_gemm_gw_fits_float(const fc_geom *g, ptrdiff_t F);
int fc_gemm_gw_fits_double(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_gw_blocks_float(const fc_geom *g, ptrdiff_t N);
ptrdiff_t fc_gemm_gw_blocks_double(const fc_geom *g, ptrdiff_t N);
ptrdiff_t fc_gemm_gw_col_blocks_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_gw_col_blocks_double(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_gw_apack_size_float(ptrdiff_t F);
ptrdiff_t fc_gemm_gw_apack_size_double(ptrdiff_t F);
void fc_gemm_gw_pack_a_float(const float *gy, ptrdiff_t gy_stride,
                             const fc_geom *g, ptrdiff_t F, ptrdiff_t N,
                             ptrdiff_t block, float *apack);
void fc_gemm_gw_pack_a_double(const double *gy, ptrdiff_t gy_stride,
                              const fc_geom *g, ptrdiff_t F, ptrdiff_t N,
                              ptrdiff_t block, double *apack);
ptrdiff_t fc_gemm_gw_work_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_gw_work_size_double(const fc_geom *g, ptrdiff_t F);
int fc_conv2d_gemm_gw_item_float(const float *x, ptrdiff_t x_stride,
                                 const float *gy, ptrdiff_t gy_stride,
                                 const fc_geom *g, ptrdiff_t F, ptrdiff_t N,
                                 ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t kb,
                                 const float *apack, int first, float *work,
                                 float *gw);
int fc_conv2d_gemm_gw_item_double(const double *x, ptrdiff_t x_stride,
                                  const double *gy, ptrdiff_t gy_stride,
                                  const fc_geom *g, ptrdiff_t F, ptrdiff_t N,
                                  ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t kb,
                                  const double *apack, int first, double *work,
                                  double *gw);

/* grad_x of a strided layer by phases (gemm.tmpl.h): input cells
 * (a + sh*v, b + sw*u) of phase (a, b) are a stride-1 convolution of grad_y
 * with the taps that reach them, flipped, run on the forward tiles and
 * written in place.  g->C = C/groups, F = F/groups.
 * fc_gemm_phases_fit_<T>(g, F): 1 when every phase's sub-convolution has
 *   non-negative padding and runs on banded tiles (its slab fits; else use
 *   fc_conv2d_gemm_grad_input).
 * fc_gemm_phase_weights_size_<T>(g, F), fc_gemm_pack_phase_weights_<T>(w,
 *   g, F, packed): the group's (F, C/groups, kh, kw) filters, each phase's
 *   taps packed as the forward packs filters, phase after phase.
 * fc_gemm_phase_items_<T>(g, F, N): work items (groups of images).
 * fc_gemm_phase_work_size_<T>(g, F): scratch elements per thread.
 * fc_conv2d_gemm_grad_input_phases_<T>(gy, gy_stride, N, g, packed, F,
 *                                      item, work, gx, gx_stride)
 *   gy  IN  image 0's group output gradient (F, Ho, Wo); image n at
 *           gy + n*gy_stride
 *   gx  OUT image 0's group input gradient (C/groups, H, W); image n at
 *           gx + n*gx_stride: the item's images overwritten
 */
int fc_gemm_phases_fit_float(const fc_geom *g, ptrdiff_t F);
int fc_gemm_phases_fit_double(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_phase_weights_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_phase_weights_size_double(const fc_geom *g, ptrdiff_t F);
void fc_gemm_pack_phase_weights_float(const float *w, const fc_geom *g,
                                      ptrdiff_t F, float *packed);
void fc_gemm_pack_phase_weights_double(const double *w, const fc_geom *g,
                                       ptrdiff_t F, double *packed);
ptrdiff_t fc_gemm_phase_items_float(const fc_geom *g, ptrdiff_t F, ptrdiff_t N);
ptrdiff_t fc_gemm_phase_items_double(const fc_geom *g, ptrdiff_t F, ptrdiff_t N);
ptrdiff_t fc_gemm_phase_work_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_phase_work_size_double(const fc_geom *g, ptrdiff_t F);
int fc_conv2d_gemm_grad_input_phases_float(const float *gy, ptrdiff_t gy_stride,
                                           ptrdiff_t N, const fc_geom *g,
                                           const float *packed, ptrdiff_t F,
                                           ptrdiff_t item, float *work,
                                           float *gx, ptrdiff_t gx_stride);
int fc_conv2d_gemm_grad_input_phases_double(const double *gy,
                                            ptrdiff_t gy_stride, ptrdiff_t N,
                                            const fc_geom *g,
                                            const double *packed, ptrdiff_t F,
                                            ptrdiff_t item, double *work,
                                            double *gx, ptrdiff_t gx_stride);

/* ---- winograd.c: F(2x2, 3x3) convolution on the GEMM micro-kernels ----
 * For 3x3 filters at stride 1, dilation 1 (any padding); one group.
 * fc_wino_packed_weights_size_<T>(F, C): elements of the transformed filters.
 * fc_wino_pack_weights_<T>(w, F, C, panel, packed)
 *   w      IN  (F, C, 3, 3) one group's filters
 *   panel      the panel of mr filters to transform, 0 <= panel < ceil(F/mr),
 *              mr = fc_gemm_packed_weights_size(1, 1)
 *   packed OUT U = G g G^T for the 16 positions, packed as the GEMM packs
 *              filters; the panel's part written
 * fc_wino_tiles_<T>(g, N): blocks of 2x2 output tiles over N images (one
 *   group), taken in order of image, tile row, tile column.
 * fc_wino_work_size_<T>(g, F): scratch elements per thread.
 * fc_conv2d_wino_tile_<T>(x, x_stride, N, g, upack, F, bias, block, work, y,
 *                         y_stride)
 *   x      IN  image 0's group channels (C/groups, H, W), g->C = C/groups;
 *              image n at x + n*x_stride
 *   upack  IN  the group's transformed filters
 *   bias   IN  (F,)
 *   block      0 <= block < fc_wino_tiles(g, N)
 *   work       fc_wino_work_size(g, F) elements of scratch
 *   y      OUT image 0's group output planes (F, Ho*Wo), image n at
 *              y + n*y_stride; the block's tiles written
 */
ptrdiff_t fc_wino_packed_weights_size_float(ptrdiff_t F, ptrdiff_t C);
ptrdiff_t fc_wino_packed_weights_size_double(ptrdiff_t F, ptrdiff_t C);
void fc_wino_pack_weights_float(const float *w, ptrdiff_t F, ptrdiff_t C,
                                ptrdiff_t panel, float *packed);
void fc_wino_pack_weights_double(const double *w, ptrdiff_t F, ptrdiff_t C,
                                 ptrdiff_t panel, double *packed);
ptrdiff_t fc_wino_tiles_float(const fc_geom *g, ptrdiff_t N);
ptrdiff_t fc_wino_tiles_double(const fc_geom *g, ptrdiff_t N);
ptrdiff_t fc_wino_work_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_wino_work_size_double(const fc_geom *g, ptrdiff_t F);
int fc_conv2d_wino_tile_float(const float *x, ptrdiff_t x_stride, ptrdiff_t N,
                              const fc_geom *g, const float *upack, ptrdiff_t F,
                              const float *bias, ptrdiff_t block, float *work,
                              float *y, ptrdiff_t y_stride);
int fc_conv2d_wino_tile_double(const double *x, ptrdiff_t x_stride, ptrdiff_t N,
                               const fc_geom *g, const double *upack,
                               ptrdiff_t F, const double *bias, ptrdiff_t block,
                               double *work, double *y, ptrdiff_t y_stride);

#endif /* FASTCONV_H */
