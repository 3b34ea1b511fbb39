/* fastconv's C kernels: the only header the Cython glue sees.
 *
 * Every kernel works on ONE image (or one plane) with one thread; the Cython
 * layer owns threading and allocation.  Inputs are C-contiguous and already
 * checked by fastconv/_validation.py.  Sizes are ptrdiff_t so that arrays
 * larger than 2**31 elements index correctly.
 *
 * Statuses: a function that cannot fail returns void.  The few that can
 * (fc_max_pool2d_backward_<T>, fc_gemm_init, and the work items that
 * fc_run_loops_<T> runs) return FC_OK (0) or a negative FC_E* code, lower
 * meaning worse; the caller checks every one (fastconv/_ext.pyx turns it
 * into a Python exception: _check_status).
 *   FC_EINDEX  an index argument lies outside its plane (nothing out of
 *              bounds is ever written), or fc_gemm_init got an unknown or
 *              unsupported ISA.
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
 * fc_im2col_<T>(x, g, l0, l1, tap_major, cols)
 *   x    IN  (C, H, W) image
 *   l0, l1   the output positions l = oh*Wo + ow to unfold, 0 <= l0 < l1 <= Ho*Wo
 *   tap_major  0: row c*kh*kw + i*kw + j; 1: row (i*kw + j)*C + c
 *   cols OUT (C*kh*kw, l1 - l0), rows as tap_major says; zeros where the
 *            window reads padding.  Overwritten.
 * fc_col2im_<T>(cols, g, l0, l1, tap_major, x)
 *   cols IN  (C*kh*kw, l1 - l0) as above
 *   x    OUT (C, H, W): ACCUMULATES (adds into x; zero it first for a fold).
 */
void fc_im2col_float(const float *x, const fc_geom *g, ptrdiff_t l0,
                     ptrdiff_t l1, int tap_major, float *cols);
void fc_im2col_double(const double *x, const fc_geom *g, ptrdiff_t l0,
                      ptrdiff_t l1, int tap_major, double *cols);
void fc_col2im_float(const float *cols, const fc_geom *g, ptrdiff_t l0,
                     ptrdiff_t l1, int tap_major, float *x);
void fc_col2im_double(const double *cols, const fc_geom *g, ptrdiff_t l0,
                      ptrdiff_t l1, int tap_major, double *x);
/* fc_phase_merge_<T>(cols, g, tap_major, x): col2im of cols (rows as
 * above) whose windows (kh <= sh, kw <= sw, dilation 1) cover every cell of
 * x once, by assignment: x is only written. */
void fc_phase_merge_float(const float *cols, const fc_geom *g, int tap_major, float *x);
void fc_phase_merge_double(const double *cols, const fc_geom *g, int tap_major,
                           double *x);

/* ---- conv2d.c: direct convolution --------------------------------------
 * g->C is the number of input channels of one group (C/groups).
 * work is a scratch buffer of fc_conv2d_direct_work_size_<T>(g, n_filters)
 * elements (0: none needed, any pointer will do), one per thread.
 * fc_conv2d_direct_<T>(x, w, bias, relu, g, work, y)
 *   x    IN  (C/groups, H, W): the channels of the filter's group
 *   w    IN  (C/groups, kh, kw): one filter
 *   bias     the filter's bias value (0 for none)
 *   relu     1: y = max(y, 0) (NaN stays NaN), applied row by row as written
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
void fc_conv2d_direct_float(const float *x, const float *w, float bias, int relu,
                            const fc_geom *g, float *work, float *y);
void fc_conv2d_direct_double(const double *x, const double *w, double bias,
                             int relu, const fc_geom *g, double *work, double *y);
void fc_conv2d_direct_grad_input_float(const float *grad_y, const float *w,
                                       ptrdiff_t n_filters, const fc_geom *g,
                                       float *work, float *grad_x);
void fc_conv2d_direct_grad_input_double(const double *grad_y, const double *w,
                                        ptrdiff_t n_filters, const fc_geom *g,
                                        double *work, double *grad_x);
void fc_conv2d_direct_grad_weight_float(const float *x, const float *grad_y,
                                        const fc_geom *g, float *work,
                                        float *grad_w);
void fc_conv2d_direct_grad_weight_double(const double *x, const double *grad_y,
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
void fc_max_pool2d_float(const float *x, const fc_geom *g, float *y,
                         int64_t *indices);
void fc_max_pool2d_double(const double *x, const fc_geom *g, double *y,
                          int64_t *indices);
int fc_max_pool2d_backward_float(const float *grad_y, const int64_t *indices,
                                 ptrdiff_t n_out, ptrdiff_t hw, float *grad_x);
int fc_max_pool2d_backward_double(const double *grad_y, const int64_t *indices,
                                  ptrdiff_t n_out, ptrdiff_t hw,
                                  double *grad_x);
void fc_avg_pool2d_float(const float *x, const fc_geom *g,
                         int count_include_pad, float *y);
void fc_avg_pool2d_double(const double *x, const fc_geom *g,
                          int count_include_pad, double *y);
void fc_avg_pool2d_backward_float(const float *grad_y, const fc_geom *g,
                                  int count_include_pad, float *grad_x);
void fc_avg_pool2d_backward_double(const double *grad_y, const fc_geom *g,
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
 * fc_conv2d_gemm_tile_<T>(x, g, wpack, F, bias, relu, tile, work, y)
 *   x      IN  (C/groups, H, W) one image's group channels; g->C = C/groups
 *   wpack  IN  the group's packed weights
 *   bias   IN  (F,) the group's biases, or NULL (none)
 *   relu       1: y = max(y, 0) (NaN stays NaN), applied to the tile's
 *              outputs as they are written
 *   tile       0 <= tile < fc_gemm_tiles(g)
 *   work       fc_gemm_work_size(g, F) elements of scratch
 *   y      OUT (F, Ho*Wo) the group's output planes; the tile's part written
 * fc_gemm_items_<T>(g, N, ly): work items for a batch of N images written
 *   with layout ly (small images go several to a tile).
 * fc_gemm_item_work_size_<T>(g, F, ly): scratch elements per thread.
 * fc_conv2d_gemm_item_<T>(x, x_stride, N, g, wpack, F, bias, relu, item, work,
 *                         y, ly)
 *   x      IN  image 0's group channels; image n at x + n*x_stride
 *   bias, relu as for fc_conv2d_gemm_tile
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
void fc_conv2d_gemm_tile_float(const float *x, const fc_geom *g,
                               const float *wpack, ptrdiff_t F,
                               const float *bias, int relu, ptrdiff_t tile,
                               float *work, float *y);
ptrdiff_t fc_gemm_items_float(const fc_geom *g, ptrdiff_t N, const fc_ylayout *ly);
ptrdiff_t fc_gemm_items_double(const fc_geom *g, ptrdiff_t N, const fc_ylayout *ly);
ptrdiff_t fc_gemm_item_work_size_float(const fc_geom *g, ptrdiff_t F,
                                       const fc_ylayout *ly);
ptrdiff_t fc_gemm_item_work_size_double(const fc_geom *g, ptrdiff_t F,
                                        const fc_ylayout *ly);
void fc_conv2d_gemm_item_float(const float *x, ptrdiff_t x_stride, ptrdiff_t N,
                               const fc_geom *g, const float *wpack, ptrdiff_t F,
                               const float *bias, int relu, ptrdiff_t item,
                               float *work, float *y, const fc_ylayout *ly);
void fc_conv2d_gemm_item_double(const double *x, ptrdiff_t x_stride, ptrdiff_t N,
                                const fc_geom *g, const double *wpack,
                                ptrdiff_t F, const double *bias, int relu,
                                ptrdiff_t item, double *work, double *y,
                                const fc_ylayout *ly);
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
void fc_conv2d_gemm_grad_input_float(const float *gy, const fc_geom *g,
                                     const float *wtpack, ptrdiff_t F,
                                     ptrdiff_t block, float *work, float *gx);
void fc_conv2d_gemm_grad_input_double(const double *gy, const fc_geom *g,
                                      const double *wtpack, ptrdiff_t F,
                                      ptrdiff_t block, double *work,
                                      double *gx);
ptrdiff_t fc_gemm_grad_weight_work_size_float(const fc_geom *g, ptrdiff_t F);
ptrdiff_t fc_gemm_grad_weight_work_size_double(const fc_geom *g, ptrdiff_t F);
void fc_conv2d_gemm_grad_weight_float(const float *x, ptrdiff_t x_stride,
                                      const float *gy, ptrdiff_t gy_stride,
                                      const fc_geom *g, ptrdiff_t F,
                                      ptrdiff_t p0, ptrdiff_t p1, float *work,
                                      float *gw);
void fc_conv2d_gemm_grad_weight_double(const double *x, ptrdiff_t x_stride,
                                       const double *gy, ptrdiff_t gy_stride,
                                       const fc_geom *g, ptrdiff_t F,
                                       ptrdiff_t p0, ptrdiff_t p1,
                                       double *work, double *gw);
void fc_conv2d_gemm_tile_double(const double *x, const fc_geom *g,
                                const double *wpack, ptrdiff_t F,
                                const double *bias, int relu, ptrdiff_t tile,
                                double *work, double *y);

/* ---- threads.c --------------------------------------------------------
 * fc_openmp_enabled(): 1 if this build has OpenMP, else 0.
 * fc_default_threads(): omp_get_max_threads() (OMP_NUM_THREADS or the core
 * count, and what threadpoolctl limits), 1 without OpenMP.
 *
 * The drivers' parallel loop, the only parallel region of the C code (every
 * kernel above runs on one thread; the drivers in fastconv/_ext.pyx split a
 * call into work items and run them here):
 * fc_item_<T>(ctx, arg, item, work): one work item, 0 <= item < items;
 *   ctx and arg as the loop gives them, work the calling thread's scratch.
 *   Returns FC_OK or a failure status.
 * fc_loop: a loop over items 0 .. items-1 of run, an fc_item_<T> of the
 *   call's type stored as the generic fc_fn (converted back before it is
 *   called); dynamic: 1 for OpenMP's dynamic schedule (items of uneven
 *   cost), 0 for the static one (a contiguous range of items per thread).
 * fc_run_loops_<T>(loops, n, threads, work, work_stride): the n loops in
 *   order, in one parallel region of `threads` threads; every item of a loop
 *   finishes before the next loop starts.  Thread t's scratch is
 *   work + t*work_stride (work NULL: none).  Returns the worst (lowest)
 *   status that any item returned, FC_OK if none failed; a failure does not
 *   stop the other items.
 */
int fc_openmp_enabled(void);
int fc_default_threads(void);
typedef void (*fc_fn)(void);
typedef int (*fc_item_float)(const void *ctx, ptrdiff_t arg, ptrdiff_t item,
                             float *work);
typedef int (*fc_item_double)(const void *ctx, ptrdiff_t arg, ptrdiff_t item,
                              double *work);
typedef struct {
    fc_fn run;
    const void *ctx;
    ptrdiff_t arg, items;
    int dynamic;
} fc_loop;
int fc_run_loops_float(const fc_loop *loops, ptrdiff_t n, int threads,
                       float *work, ptrdiff_t work_stride);
int fc_run_loops_double(const fc_loop *loops, ptrdiff_t n, int threads,
                        double *work, ptrdiff_t work_stride);

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
void fc_max_pool3d_float(const float *x, const fc_vgeom *g, float *y,
                         int64_t *indices);
void fc_max_pool3d_double(const double *x, const fc_vgeom *g, double *y,
                          int64_t *indices);
void fc_avg_pool3d_float(const float *x, const fc_vgeom *g,
                         int count_include_pad, float *y);
void fc_avg_pool3d_double(const double *x, const fc_vgeom *g,
                          int count_include_pad, double *y);
void fc_avg_pool3d_backward_float(const float *grad_y, const fc_vgeom *g,
                                  int count_include_pad, float *grad_x);
void fc_avg_pool3d_backward_double(const double *grad_y, const fc_vgeom *g,
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
void fc_lc_pack_row_float(const float *x, const fc_geom *g, ptrdiff_t N,
                          ptrdiff_t row, float *xt);
void fc_lc_pack_row_double(const double *x, const fc_geom *g, ptrdiff_t N,
                           ptrdiff_t row, double *xt);
void fc_lc_unpack_row_float(const float *xt, const fc_geom *g, ptrdiff_t N,
                            ptrdiff_t row, float *x);
void fc_lc_unpack_row_double(const double *xt, const fc_geom *g, ptrdiff_t N,
                             ptrdiff_t row, double *x);
void fc_lc_forward_float(const float *xt, const fc_geom *gp,
                         const ptrdiff_t *off, ptrdiff_t N, const float *w,
                         const float *bias, ptrdiff_t F, ptrdiff_t l0,
                         ptrdiff_t l1, float *work, float *y);
void fc_lc_forward_double(const double *xt, const fc_geom *gp,
                          const ptrdiff_t *off, ptrdiff_t N, const double *w,
                          const double *bias, ptrdiff_t F, ptrdiff_t l0,
                          ptrdiff_t l1, double *work, double *y);
void fc_lc_backward_float(const float *gy, const float *xt, const fc_geom *gp,
                          const ptrdiff_t *off, ptrdiff_t N, const float *w,
                          ptrdiff_t F, ptrdiff_t l0, ptrdiff_t l1, float *work,
                          float *gxt, float *gw, float *gb);
void fc_lc_backward_double(const double *gy, const double *xt,
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
void fc_conv2d_gemm_gw_item_float(const float *x, ptrdiff_t x_stride,
                                  const float *gy, ptrdiff_t gy_stride,
                                  const fc_geom *g, ptrdiff_t F, ptrdiff_t N,
                                  ptrdiff_t b0, ptrdiff_t b1, ptrdiff_t kb,
                                  const float *apack, int first, float *work,
                                  float *gw);
void fc_conv2d_gemm_gw_item_double(const double *x, ptrdiff_t x_stride,
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
void fc_conv2d_gemm_grad_input_phases_float(const float *gy, ptrdiff_t gy_stride,
                                            ptrdiff_t N, const fc_geom *g,
                                            const float *packed, ptrdiff_t F,
                                            ptrdiff_t item, float *work,
                                            float *gx, ptrdiff_t gx_stride);
void fc_conv2d_gemm_grad_input_phases_double(const double *gy,
                                             ptrdiff_t gy_stride, ptrdiff_t N,
                                             const fc_geom *g,
                                             const double *packed, ptrdiff_t F,
                                             ptrdiff_t item, double *work,
                                             double *gx, ptrdiff_t gx_stride);

/* ---- winograd.c: F(m x m, 3x3) convolution on the GEMM micro-kernels ----
 * For 3x3 filters at stride 1, dilation 1 (any padding); one group; output
 * tiles of m x m, m = 2 or 4.
 * fc_wino_packed_weights_size_<T>(F, C, m): elements of the transformed
 *   filters.
 * fc_wino_pack_weights_<T>(w, F, C, m, panel, flip, packed)
 *   w      IN  (F, C, 3, 3) one group's filters; flip: (C, F, 3, 3), and
 *              filter f's taps on channel c are w[c, f] rotated by 180
 *              degrees (grad_x's filters, packed from the layer's own)
 *   panel      the panel of nr filters to transform, 0 <= panel < ceil(F/nr),
 *              nr = fc_wino_panel_filters_<T>() (the micro-kernel's columns)
 *   packed OUT U = G g G^T for the (m+2)^2 positions (computed in double),
 *              in nr-wide filter panels; the panel's part written
 * fc_wino_schedule_<T>(g, N, F, m, groups, threads, s): blocks of tiles
 *   (taken in order of image, tile row, tile column over N images of one
 *   group), scratch elements per thread (s->work) for that many threads,
 *   and whether the phased form runs (s->phased; s->shared elements per
 *   group, budgeted for all groups); the results do not depend on the
 *   schedule.
 * fc_conv2d_wino_<T>(x, x_stride, N, g, m, upack, F, bias, relu, s, block,
 *                    work, y, y_stride)
 *   x      IN  image 0's group channels (C/groups, H, W), g->C = C/groups;
 *              image n at x + n*x_stride
 *   upack  IN  the group's transformed filters (fc_wino_pack_weights, same m)
 *   bias   IN  (F,) or NULL; relu: 1 to write max(y, 0) (NaN stays NaN)
 *   block      0 <= block < s->blocks
 *   work       s->work elements of scratch
 *   y      OUT image 0's group output planes (F, Ho*Wo), image n at
 *              y + n*y_stride; the block's tiles written
 * fc_conv2d_wino_phase_<T>(phase, x, x_stride, N, g, m, upack, F, bias, relu,
 *                          s, item, work, shared, y, y_stride)
 *   where s->phased, in place of fc_conv2d_wino: phase 0 (the input
 *   transform of block item < s->blocks), then 1 (the products of position
 *   item < (m+2)^2), then 2 (the output transform of block item into y),
 *   each phase done for every item before the next; shared: s->shared
 *   elements for the call.  The same sums in the same order: the same y.
 * fc_wino_matrices_<T>(m, bt, g, at, a): the transforms' matrices as the
 *   kernels compute them (B^T n x n, G n x 3, A^T m x n, and A n x m of
 *   grad_weight, row-major; n = m+2).
 *
 * grad_weight (3x3, stride 1, dilation 1, one group):
 * fc_wino_gw_schedule_<T>(g, N, F, m, s): blocks of tiles, chunks of blocks
 *   (s->chunks partial sums of s->wsize elements each), the elements of a
 *   block's transforms (s->tsize) and its parts (s->parts), the elements
 *   of all blocks' transforms if within budget, else 0 (s->pre: the shared
 *   transforms of fc_wino_gw_transform), and scratch elements per thread
 *   (s->work), from the shapes only.
 * fc_wino_gw_transform_<T>(x, x_stride, gy, gy_stride, N, g, m, F, s, block,
 *                          part, work, dst)
 *   part of block's transforms (0 <= part < s->parts: CB channels of V or
 *   CB filters of Z) into dst (s->tsize elements for the block), for
 *   fc_wino_grad_weight's pre: threads that share the positions xi of one
 *   chunk then transform each block once between them
 * fc_wino_grad_weight_<T>(x, x_stride, gy, gy_stride, N, g, m, F, s, chunk,
 *                         xi0, xi1, work, pre, wsum, bsum)
 *   x      IN  image 0's group channels (C/groups, H, W); image n at
 *              x + n*x_stride
 *   gy     IN  image 0's group output gradient (F, Ho, Wo); image n at
 *              gy + n*gy_stride
 *   chunk      0 <= chunk < s->chunks; xi0 <= xi < xi1 the transformed
 *              positions to sum (0 .. (m+2)^2 for all)
 *   pre    IN  NULL: each block transformed here, in work; else block b's
 *              transforms at pre + b*s->tsize (fc_wino_gw_transform)
 *   wsum   OUT the chunk's partial sums (s->wsize elements): positions
 *              xi0 .. xi1 written
 *   bsum   OUT (F,) the chunk's grad_bias, in double (the sum of the
 *              chunk's gy), written if xi0 <= m + 3 < xi1; or NULL
 * fc_wino_gw_finish_<T>(wsum, chunks, wstride, F, C, m, f, gw)
 *   wsum   IN  the chunks' partial sums, wstride apart
 *   gw     OUT (C, 3, 3) filter f's gradient: written
 */
typedef struct {
    ptrdiff_t tb, blocks, work;   /* tiles per block, blocks, scratch elements */
    ptrdiff_t phased, shared;     /* phased form; its shared elements */
} fc_wino_sched;
typedef struct {
    ptrdiff_t tb, blocks, chunks, wsize, tsize, parts, pre, work;
} fc_wino_gw_sched;

ptrdiff_t fc_wino_panel_filters_float(void);
ptrdiff_t fc_wino_panel_filters_double(void);
ptrdiff_t fc_wino_packed_weights_size_float(ptrdiff_t F, ptrdiff_t C, int m);
ptrdiff_t fc_wino_packed_weights_size_double(ptrdiff_t F, ptrdiff_t C, int m);
void fc_wino_pack_weights_float(const float *w, ptrdiff_t F, ptrdiff_t C, int m,
                                ptrdiff_t panel, int flip, float *packed);
void fc_wino_pack_weights_double(const double *w, ptrdiff_t F, ptrdiff_t C, int m,
                                 ptrdiff_t panel, int flip, double *packed);
void fc_wino_schedule_float(const fc_geom *g, ptrdiff_t N, ptrdiff_t F, int m,
                            ptrdiff_t groups, int threads, fc_wino_sched *s);
void fc_wino_schedule_double(const fc_geom *g, ptrdiff_t N, ptrdiff_t F, int m,
                             ptrdiff_t groups, int threads, fc_wino_sched *s);
void fc_conv2d_wino_float(const float *x, ptrdiff_t x_stride, ptrdiff_t N,
                          const fc_geom *g, int m, const float *upack, ptrdiff_t F,
                          const float *bias, int relu, const fc_wino_sched *s,
                          ptrdiff_t block, float *work, float *y, ptrdiff_t y_stride);
void fc_conv2d_wino_double(const double *x, ptrdiff_t x_stride, ptrdiff_t N,
                           const fc_geom *g, int m, const double *upack, ptrdiff_t F,
                           const double *bias, int relu, const fc_wino_sched *s,
                           ptrdiff_t block, double *work, double *y,
                           ptrdiff_t y_stride);
void fc_conv2d_wino_phase_float(int phase, const float *x, ptrdiff_t x_stride, ptrdiff_t N,
                                const fc_geom *g, int m, const float *upack, ptrdiff_t F,
                                const float *bias, int relu, const fc_wino_sched *s,
                                ptrdiff_t item, float *work, float *shared, float *y,
                                ptrdiff_t y_stride);
void fc_wino_matrices_float(int m, double *bt, double *g, double *at, double *a);
void fc_conv2d_wino_phase_double(int phase, const double *x, ptrdiff_t x_stride, ptrdiff_t N,
                                const fc_geom *g, int m, const double *upack, ptrdiff_t F,
                                const double *bias, int relu, const fc_wino_sched *s,
                                ptrdiff_t item, double *work, double *shared, double *y,
                                ptrdiff_t y_stride);
void fc_wino_matrices_double(int m, double *bt, double *g, double *at, double *a);
void fc_wino_gw_schedule_float(const fc_geom *g, ptrdiff_t N, ptrdiff_t F, int m,
                               fc_wino_gw_sched *s);
void fc_wino_gw_schedule_double(const fc_geom *g, ptrdiff_t N, ptrdiff_t F, int m,
                                fc_wino_gw_sched *s);
void fc_wino_gw_transform_float(const float *x, ptrdiff_t x_stride, const float *gy,
                                ptrdiff_t gy_stride, ptrdiff_t N, const fc_geom *g, int m,
                                ptrdiff_t F, const fc_wino_gw_sched *s, ptrdiff_t block,
                                ptrdiff_t part, float *work, float *dst);
void fc_wino_gw_transform_double(const double *x, ptrdiff_t x_stride, const double *gy,
                                 ptrdiff_t gy_stride, ptrdiff_t N, const fc_geom *g,
                                 int m, ptrdiff_t F, const fc_wino_gw_sched *s,
                                 ptrdiff_t block, ptrdiff_t part, double *work,
                                 double *dst);
void fc_wino_grad_weight_float(const float *x, ptrdiff_t x_stride, const float *gy,
                               ptrdiff_t gy_stride, ptrdiff_t N, const fc_geom *g, int m,
                               ptrdiff_t F, const fc_wino_gw_sched *s, ptrdiff_t chunk,
                               ptrdiff_t xi0, ptrdiff_t xi1, float *work, const float *pre,
                               float *wsum, double *bsum);
void fc_wino_grad_weight_double(const double *x, ptrdiff_t x_stride, const double *gy,
                                ptrdiff_t gy_stride, ptrdiff_t N, const fc_geom *g, int m,
                                ptrdiff_t F, const fc_wino_gw_sched *s, ptrdiff_t chunk,
                                ptrdiff_t xi0, ptrdiff_t xi1, double *work,
                                const double *pre, double *wsum, double *bsum);
void fc_wino_gw_finish_float(const float *wsum, ptrdiff_t chunks, ptrdiff_t wstride,
                             ptrdiff_t F, ptrdiff_t C, int m, ptrdiff_t f, float *gw);
void fc_wino_gw_finish_double(const double *wsum, ptrdiff_t chunks, ptrdiff_t wstride,
                              ptrdiff_t F, ptrdiff_t C, int m, ptrdiff_t f, double *gw);

/* ==== layer kernels: norm.c, eltwise.c, linear.c =========================
 * Batch normalisation, one channel: its values are N planes of L elements,
 * plane n at x + n*stride.  Sums are in double, in a fixed order.
 * fc_bn_train_channel_<T>(x, N, stride, L, gamma, beta, eps, relu, y, mean,
 *   var): the batch mean and biased variance (two passes over x), then y OUT
 *   = (x - mean)/sqrt(var + eps)*gamma + beta, max(., 0) if relu (NaN stays
 *   NaN).  y may be x.
 * fc_bn_apply_<T>(x, N, stride, L, scale, shift, relu, y)
 *   y OUT = x*scale + shift, max(., 0) if relu; y may be x.
 * fc_bn_backward_channel_<T>(gy, x, y, N, stride, L, mean, invstd, gamma,
 *   training, gx, g_gamma, g_beta): with g = gy, or gy zeroed where y <= 0
 *   when y (the output of a relu forward) is not NULL: g_beta = sum g,
 *   g_gamma = sum g*(x - mean)*invstd, and gx OUT = gamma*invstd*(g -
 *   g_beta/n - (x - mean)*invstd*g_gamma/n), n = N*L, if training, else
 *   gamma*invstd*g.  gx may be gy.
 */
void fc_bn_train_channel_float(const float *x, ptrdiff_t N, ptrdiff_t stride,
                               ptrdiff_t L, double gamma, double beta,
                               double eps, int relu, float *y, double *mean,
                               double *var);
void fc_bn_train_channel_double(const double *x, ptrdiff_t N, ptrdiff_t stride,
                                ptrdiff_t L, double gamma, double beta,
                                double eps, int relu, double *y, double *mean,
                                double *var);
void fc_bn_apply_float(const float *x, ptrdiff_t N, ptrdiff_t stride,
                       ptrdiff_t L, float scale, float shift, int relu,
                       float *y);
void fc_bn_apply_double(const double *x, ptrdiff_t N, ptrdiff_t stride,
                        ptrdiff_t L, double scale, double shift, int relu,
                        double *y);
void fc_bn_backward_channel_float(const float *gy, const float *x,
                                  const float *y, ptrdiff_t N, ptrdiff_t stride,
                                  ptrdiff_t L, double mean, double invstd,
                                  double gamma, int training, float *gx,
                                  double *g_gamma, double *g_beta);
void fc_bn_backward_channel_double(const double *gy, const double *x,
                                   const double *y, ptrdiff_t N,
                                   ptrdiff_t stride, ptrdiff_t L, double mean,
                                   double invstd, double gamma, int training,
                                   double *gx, double *g_gamma, double *g_beta);

/* Element-wise, n elements; outputs may be their inputs (in place).
 * fc_relu_<T>(x, n, y): y = max(x, 0), NaN stays NaN.
 * fc_relu_backward_<T>(g, y, n, gx): gx = 0 where y <= 0, else g (NaN y passes).
 * fc_add_<T>(a, b, n, relu, y): y = a + b, then max(., 0) if relu.
 * fc_sgd_step_<T>(p, g, buf, n, lr, momentum, weight_decay, nesterov, first)
 *   torch.optim.SGD (dampening 0) in place on p and buf (NULL: no momentum;
 *   first: buf starts as the gradient).
 * fc_adam_step_<T>(p, g, m, v, n, beta1, beta2, eps, weight_decay,
 *   step_size, bc2_sqrt): torch.optim.Adam (no amsgrad) in place on p, m, v;
 *   step_size = lr / (1 - beta1**t), bc2_sqrt = sqrt(1 - beta2**t).
 * fc_softmax_xent_row_<T>(s, C, label, scale, grad): one row of C scores;
 *   returns logsumexp(s) - s[label] (in double) and writes grad OUT =
 *   (softmax(s) - onehot(label)) * scale.
 */
void fc_relu_float(const float *x, ptrdiff_t n, float *y);
void fc_relu_double(const double *x, ptrdiff_t n, double *y);
void fc_relu_backward_float(const float *g, const float *y, ptrdiff_t n,
                            float *gx);
void fc_relu_backward_double(const double *g, const double *y, ptrdiff_t n,
                             double *gx);
void fc_add_float(const float *a, const float *b, ptrdiff_t n, int relu,
                  float *y);
void fc_add_double(const double *a, const double *b, ptrdiff_t n, int relu,
                   double *y);
void fc_sgd_step_float(float *p, const float *g, float *buf, ptrdiff_t n,
                       float lr, float momentum, float weight_decay,
                       int nesterov, int first);
void fc_sgd_step_double(double *p, const double *g, double *buf, ptrdiff_t n,
                        double lr, double momentum, double weight_decay,
                        int nesterov, int first);
void fc_adam_step_float(float *p, const float *g, float *m, float *v,
                        ptrdiff_t n, float beta1, float beta2, float eps,
                        float weight_decay, float step_size, float bc2_sqrt);
void fc_adam_step_double(double *p, const double *g, double *m, double *v,
                         ptrdiff_t n, double beta1, double beta2, double eps,
                         double weight_decay, double step_size,
                         double bc2_sqrt);
double fc_softmax_xent_row_float(const float *s, ptrdiff_t C, ptrdiff_t label,
                                 float scale, float *grad);
double fc_softmax_xent_row_double(const double *s, ptrdiff_t C,
                                  ptrdiff_t label, double scale, double *grad);

/* Matrix products on the GEMM micro-kernels (the fully connected layer):
 * C (M x Ncols) = [C +] A (M x Kd) @ B (Kd x Ncols).
 * fc_matmul_packed_a_size_<T>(M, Kd): elements of packed A.
 * fc_matmul_pack_a_<T>(a, lda, at, M, Kd, panel, packed): A's panel of mr
 *   rows (0 <= panel < ceil(M/mr), mr = fc_gemm_packed_weights_size(1, 1));
 *   element (i, k) of A at a[i*lda + k], or at a[k*lda + i] if at.
 * fc_matmul_panels_<T>(M, Ncols): column panels (work items).
 * fc_matmul_work_size_<T>(): scratch elements per thread.
 * fc_matmul_panel_<T>(apack, M, Kd, b, ldb, bt, Ncols, bias, relu,
 *   accumulate, panel, work, c, ldc): the panel's columns of C (row i at
 *   c + i*ldc) written (added to C if accumulate): element (k, j) of B at
 *   b[k*ldb + j], or at b[j*ldb + k] if bt; bias (Ncols,) or NULL starts
 *   each row; relu: max(., 0) at the end.
 */
ptrdiff_t fc_matmul_packed_a_size_float(ptrdiff_t M, ptrdiff_t Kd);
ptrdiff_t fc_matmul_packed_a_size_double(ptrdiff_t M, ptrdiff_t Kd);
void fc_matmul_pack_a_float(const float *a, ptrdiff_t lda, int at, ptrdiff_t M,
                            ptrdiff_t Kd, ptrdiff_t panel, float *packed);
void fc_matmul_pack_a_double(const double *a, ptrdiff_t lda, int at,
                             ptrdiff_t M, ptrdiff_t Kd, ptrdiff_t panel,
                             double *packed);
ptrdiff_t fc_matmul_panels_float(ptrdiff_t M, ptrdiff_t Ncols);
ptrdiff_t fc_matmul_panels_double(ptrdiff_t M, ptrdiff_t Ncols);
ptrdiff_t fc_matmul_work_size_float(void);
ptrdiff_t fc_matmul_work_size_double(void);
void fc_matmul_panel_float(const float *apack, ptrdiff_t M, ptrdiff_t Kd,
                           const float *b, ptrdiff_t ldb, int bt,
                           ptrdiff_t Ncols, const float *bias, int relu,
                           int accumulate, ptrdiff_t panel, float *work,
                           float *c, ptrdiff_t ldc);
void fc_matmul_panel_double(const double *apack, ptrdiff_t M, ptrdiff_t Kd,
                            const double *b, ptrdiff_t ldb, int bt,
                            ptrdiff_t Ncols, const double *bias, int relu,
                            int accumulate, ptrdiff_t panel, double *work,
                            double *c, ptrdiff_t ldc);

#endif /* FASTCONV_H */
