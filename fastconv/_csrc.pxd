# Declarations of the C kernels in src_c/fastconv.h, nothing else.
from libc.stdint cimport int64_t

cdef extern from "fastconv.h" nogil:
    int FC_OK
    int FC_EINDEX

    ctypedef struct fc_geom:
        Py_ssize_t C, H, W
        Py_ssize_t kh, kw, sh, sw, pt, pl, dh, dw
        Py_ssize_t Ho, Wo

    ctypedef struct fc_ylayout:
        Py_ssize_t img, plane, row, col

    void fc_im2col_float(const float *x, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, int tap_major, float *cols)
    void fc_im2col_double(const double *x, const fc_geom *g, Py_ssize_t l0,
                          Py_ssize_t l1, int tap_major, double *cols)
    void fc_col2im_float(const float *cols, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, int tap_major, float *x)
    void fc_col2im_double(const double *cols, const fc_geom *g, Py_ssize_t l0,
                          Py_ssize_t l1, int tap_major, double *x)
    void fc_phase_merge_float(const float *cols, const fc_geom *g, int tap_major, float *x)
    void fc_phase_merge_double(const double *cols, const fc_geom *g, int tap_major,
                               double *x)

    Py_ssize_t fc_conv2d_direct_work_size_float(const fc_geom *g,
                                                Py_ssize_t n_filters)
    Py_ssize_t fc_conv2d_direct_work_size_double(const fc_geom *g,
                                                 Py_ssize_t n_filters)
    void fc_conv2d_direct_float(const float *x, const float *w, float bias,
                                int relu, const fc_geom *g, float *work, float *y)
    void fc_conv2d_direct_double(const double *x, const double *w, double bias,
                                 int relu, const fc_geom *g, double *work, double *y)
    void fc_conv2d_direct_grad_input_float(const float *grad_y, const float *w,
                                           Py_ssize_t n_filters,
                                           const fc_geom *g, float *work,
                                           float *grad_x)
    void fc_conv2d_direct_grad_input_double(const double *grad_y,
                                            const double *w,
                                            Py_ssize_t n_filters,
                                            const fc_geom *g, double *work,
                                            double *grad_x)
    void fc_conv2d_direct_grad_weight_float(const float *x, const float *grad_y,
                                            const fc_geom *g, float *work,
                                            float *grad_w)
    void fc_conv2d_direct_grad_weight_double(const double *x,
                                             const double *grad_y,
                                             const fc_geom *g, double *work,
                                             double *grad_w)
    double fc_bias_grad_float(const float *gy, Py_ssize_t N, Py_ssize_t stride,
                              Py_ssize_t L)
    double fc_bias_grad_double(const double *gy, Py_ssize_t N,
                               Py_ssize_t stride, Py_ssize_t L)

    void fc_max_pool2d_float(const float *x, const fc_geom *g, float *y,
                             int64_t *indices)
    void fc_max_pool2d_double(const double *x, const fc_geom *g, double *y,
                              int64_t *indices)
    int fc_max_pool2d_backward_float(const float *grad_y,
                                     const int64_t *indices, Py_ssize_t n_out,
                                     Py_ssize_t hw, float *grad_x)
    int fc_max_pool2d_backward_double(const double *grad_y,
                                      const int64_t *indices, Py_ssize_t n_out,
                                      Py_ssize_t hw, double *grad_x)
    void fc_avg_pool2d_float(const float *x, const fc_geom *g,
                             int count_include_pad, float *y)
    void fc_avg_pool2d_double(const double *x, const fc_geom *g,
                              int count_include_pad, double *y)
    void fc_avg_pool2d_backward_float(const float *grad_y, const fc_geom *g,
                                      int count_include_pad, float *grad_x)
    void fc_avg_pool2d_backward_double(const double *grad_y, const fc_geom *g,
                                       int count_include_pad, double *grad_x)

    int fc_gemm_init(const char *isa)
    const char *fc_gemm_isa()
    Py_ssize_t fc_gemm_packed_weights_size_float(Py_ssize_t F, Py_ssize_t K)
    Py_ssize_t fc_gemm_packed_weights_size_double(Py_ssize_t F, Py_ssize_t K)
    void fc_gemm_pack_weights_float(const float *w, Py_ssize_t F, Py_ssize_t K,
                                    float *packed)
    void fc_gemm_pack_weights_double(const double *w, Py_ssize_t F,
                                     Py_ssize_t K, double *packed)
    Py_ssize_t fc_gemm_tile_cols_float()
    Py_ssize_t fc_gemm_tile_cols_double()
    Py_ssize_t fc_gemm_tiles_float(const fc_geom *g)
    Py_ssize_t fc_gemm_tiles_double(const fc_geom *g)
    Py_ssize_t fc_gemm_work_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_work_size_double(const fc_geom *g, Py_ssize_t F)
    void fc_conv2d_gemm_tile_float(const float *x, const fc_geom *g,
                                   const float *wpack, Py_ssize_t F,
                                   const float *bias, int relu, Py_ssize_t tile,
                                   float *work, float *y)
    void fc_conv2d_gemm_tile_double(const double *x, const fc_geom *g,
                                    const double *wpack, Py_ssize_t F,
                                    const double *bias, int relu, Py_ssize_t tile,
                                    double *work, double *y)
    int fc_gemm_gw_fits_float(const fc_geom *g, Py_ssize_t F)
    int fc_gemm_gw_fits_double(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_gw_blocks_float(const fc_geom *g, Py_ssize_t N)
    Py_ssize_t fc_gemm_gw_blocks_double(const fc_geom *g, Py_ssize_t N)
    Py_ssize_t fc_gemm_gw_col_blocks_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_gw_col_blocks_double(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_gw_apack_size_float(Py_ssize_t F)
    Py_ssize_t fc_gemm_gw_apack_size_double(Py_ssize_t F)
    void fc_gemm_gw_pack_a_float(const float *gy, Py_ssize_t gy_stride,
                                 const fc_geom *g, Py_ssize_t F, Py_ssize_t N,
                                 Py_ssize_t block, float *apack)
    void fc_gemm_gw_pack_a_double(const double *gy, Py_ssize_t gy_stride,
                                  const fc_geom *g, Py_ssize_t F, Py_ssize_t N,
                                  Py_ssize_t block, double *apack)
    Py_ssize_t fc_gemm_gw_work_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_gw_work_size_double(const fc_geom *g, Py_ssize_t F)
    void fc_conv2d_gemm_gw_item_float(const float *x, Py_ssize_t x_stride,
                                      const float *gy, Py_ssize_t gy_stride,
                                      const fc_geom *g, Py_ssize_t F, Py_ssize_t N,
                                      Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t kb,
                                      const float *apack, int first, float *work,
                                      float *gw)
    void fc_conv2d_gemm_gw_item_double(const double *x, Py_ssize_t x_stride,
                                       const double *gy, Py_ssize_t gy_stride,
                                       const fc_geom *g, Py_ssize_t F, Py_ssize_t N,
                                       Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t kb,
                                       const double *apack, int first, double *work,
                                       double *gw)
    int fc_gemm_phases_fit_float(const fc_geom *g, Py_ssize_t F)
    int fc_gemm_phases_fit_double(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_phase_weights_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_phase_weights_size_double(const fc_geom *g, Py_ssize_t F)
    void fc_gemm_pack_phase_weights_float(const float *w, const fc_geom *g,
                                          Py_ssize_t F, float *packed)
    void fc_gemm_pack_phase_weights_double(const double *w, const fc_geom *g,
                                           Py_ssize_t F, double *packed)
    Py_ssize_t fc_gemm_phase_items_float(const fc_geom *g, Py_ssize_t F, Py_ssize_t N)
    Py_ssize_t fc_gemm_phase_items_double(const fc_geom *g, Py_ssize_t F, Py_ssize_t N)
    Py_ssize_t fc_gemm_phase_work_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_phase_work_size_double(const fc_geom *g, Py_ssize_t F)
    void fc_conv2d_gemm_grad_input_phases_float(const float *gy, Py_ssize_t gy_stride,
                                                Py_ssize_t N, const fc_geom *g,
                                                const float *packed, Py_ssize_t F,
                                                Py_ssize_t item, float *work,
                                                float *gx, Py_ssize_t gx_stride)
    void fc_conv2d_gemm_grad_input_phases_double(const double *gy,
                                                 Py_ssize_t gy_stride, Py_ssize_t N,
                                                 const fc_geom *g,
                                                 const double *packed, Py_ssize_t F,
                                                 Py_ssize_t item, double *work,
                                                 double *gx, Py_ssize_t gx_stride)
    Py_ssize_t fc_gemm_items_float(const fc_geom *g, Py_ssize_t N,
                                   const fc_ylayout *ly)
    Py_ssize_t fc_gemm_items_double(const fc_geom *g, Py_ssize_t N,
                                    const fc_ylayout *ly)
    Py_ssize_t fc_gemm_item_work_size_float(const fc_geom *g, Py_ssize_t F,
                                            const fc_ylayout *ly)
    Py_ssize_t fc_gemm_item_work_size_double(const fc_geom *g, Py_ssize_t F,
                                             const fc_ylayout *ly)
    void fc_conv2d_gemm_item_float(const float *x, Py_ssize_t x_stride,
                                   Py_ssize_t N, const fc_geom *g,
                                   const float *wpack, Py_ssize_t F,
                                   const float *bias, int relu, Py_ssize_t item,
                                   float *work, float *y, const fc_ylayout *ly)
    void fc_conv2d_gemm_item_double(const double *x, Py_ssize_t x_stride,
                                    Py_ssize_t N, const fc_geom *g,
                                    const double *wpack, Py_ssize_t F,
                                    const double *bias, int relu, Py_ssize_t item,
                                    double *work, double *y,
                                    const fc_ylayout *ly)

    Py_ssize_t fc_gemm_grad_input_blocks_float(const fc_geom *g)
    Py_ssize_t fc_gemm_grad_input_blocks_double(const fc_geom *g)
    Py_ssize_t fc_gemm_packed_weights_t_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_packed_weights_t_size_double(const fc_geom *g, Py_ssize_t F)
    void fc_gemm_pack_weights_t_float(const float *w, const fc_geom *g,
                                      Py_ssize_t F, float *packed)
    void fc_gemm_pack_weights_t_double(const double *w, const fc_geom *g,
                                       Py_ssize_t F, double *packed)
    Py_ssize_t fc_gemm_grad_input_work_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_grad_input_work_size_double(const fc_geom *g, Py_ssize_t F)
    void fc_conv2d_gemm_grad_input_float(const float *gy, const fc_geom *g,
                                         const float *wtpack, Py_ssize_t F,
                                         Py_ssize_t block, float *work, float *gx)
    void fc_conv2d_gemm_grad_input_double(const double *gy, const fc_geom *g,
                                          const double *wtpack, Py_ssize_t F,
                                          Py_ssize_t block, double *work,
                                          double *gx)
    Py_ssize_t fc_gemm_grad_weight_work_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_grad_weight_work_size_double(const fc_geom *g, Py_ssize_t F)
    void fc_conv2d_gemm_grad_weight_float(const float *x, Py_ssize_t x_stride,
                                          const float *gy, Py_ssize_t gy_stride,
                                          const fc_geom *g, Py_ssize_t F,
                                          Py_ssize_t p0, Py_ssize_t p1,
                                          float *work, float *gw)
    void fc_conv2d_gemm_grad_weight_double(const double *x, Py_ssize_t x_stride,
                                           const double *gy, Py_ssize_t gy_stride,
                                           const fc_geom *g, Py_ssize_t F,
                                           Py_ssize_t p0, Py_ssize_t p1,
                                           double *work, double *gw)

    int fc_openmp_enabled()
    int fc_default_threads()

    ctypedef void (*fc_fn)() noexcept nogil
    ctypedef struct fc_loop:
        fc_fn run
        const void *ctx
        Py_ssize_t arg, items
        int dynamic
    int fc_run_loops_float(const fc_loop *loops, Py_ssize_t n, int threads,
                           float *work, Py_ssize_t work_stride)
    int fc_run_loops_double(const fc_loop *loops, Py_ssize_t n, int threads,
                            double *work, Py_ssize_t work_stride)

    # ---- 3-D (volumetric) kernels: vol.c ----
    ctypedef struct fc_vgeom:
        Py_ssize_t C, D, H, W
        Py_ssize_t kd, kh, kw, sd, sh, sw, pf, pt, pl, dd, dh, dw
        Py_ssize_t Do, Ho, Wo

    void fc_max_pool3d_float(const float *x, const fc_vgeom *g, float *y,
                             int64_t *indices)
    void fc_max_pool3d_double(const double *x, const fc_vgeom *g, double *y,
                              int64_t *indices)
    void fc_avg_pool3d_float(const float *x, const fc_vgeom *g,
                             int count_include_pad, float *y)
    void fc_avg_pool3d_double(const double *x, const fc_vgeom *g,
                              int count_include_pad, double *y)
    void fc_avg_pool3d_backward_float(const float *grad_y, const fc_vgeom *g,
                                      int count_include_pad, float *grad_x)
    void fc_avg_pool3d_backward_double(const double *grad_y,
                                       const fc_vgeom *g,
                                       int count_include_pad, double *grad_x)

    # ==== local.c: locally connected layer ====
    void fc_lc_padded_geom(const fc_geom *g, fc_geom *gp)
    void fc_lc_offsets(const fc_geom *gp, Py_ssize_t N, Py_ssize_t *off)
    Py_ssize_t fc_lc_work_size(const fc_geom *g, Py_ssize_t N, Py_ssize_t F)
    Py_ssize_t fc_lc_band_rows(const fc_geom *g)
    void fc_lc_pack_row_float(const float *x, const fc_geom *g, Py_ssize_t N,
                              Py_ssize_t row, float *xt)
    void fc_lc_pack_row_double(const double *x, const fc_geom *g, Py_ssize_t N,
                               Py_ssize_t row, double *xt)
    void fc_lc_unpack_row_float(const float *xt, const fc_geom *g, Py_ssize_t N,
                                Py_ssize_t row, float *x)
    void fc_lc_unpack_row_double(const double *xt, const fc_geom *g,
                                 Py_ssize_t N, Py_ssize_t row, double *x)
    void fc_lc_forward_float(const float *xt, const fc_geom *gp,
                             const Py_ssize_t *off, Py_ssize_t N, const float *w,
                             const float *bias, Py_ssize_t F, Py_ssize_t l0,
                             Py_ssize_t l1, float *work, float *y)
    void fc_lc_forward_double(const double *xt, const fc_geom *gp,
                              const Py_ssize_t *off, Py_ssize_t N,
                              const double *w, const double *bias, Py_ssize_t F,
                              Py_ssize_t l0, Py_ssize_t l1, double *work,
                              double *y)
    void fc_lc_backward_float(const float *gy, const float *xt,
                              const fc_geom *gp, const Py_ssize_t *off,
                              Py_ssize_t N, const float *w, Py_ssize_t F,
                              Py_ssize_t l0, Py_ssize_t l1, float *work,
                              float *gxt, float *gw, float *gb)
    void fc_lc_backward_double(const double *gy, const double *xt,
                               const fc_geom *gp, const Py_ssize_t *off,
                               Py_ssize_t N, const double *w, Py_ssize_t F,
                               Py_ssize_t l0, Py_ssize_t l1, double *work,
                               double *gxt, double *gw, double *gb)

    # ---- gemm.c: grad_x of a unit-stride convolution as a forward one ----
    void fc_gemm_pack_weights_flip_float(const float *w, Py_ssize_t F,
                                         Py_ssize_t C, Py_ssize_t kh,
                                         Py_ssize_t kw, Py_ssize_t panel,
                                         float *packed)
    void fc_gemm_pack_weights_flip_double(const double *w, Py_ssize_t F,
                                          Py_ssize_t C, Py_ssize_t kh,
                                          Py_ssize_t kw, Py_ssize_t panel,
                                          double *packed)

    # ---- winograd.c: F(m x m, 3x3) convolution, m = 2 or 4 ----
    ctypedef struct fc_wino_sched:
        Py_ssize_t tb, blocks, work, phased, shared
    Py_ssize_t fc_wino_panel_filters_float()
    Py_ssize_t fc_wino_panel_filters_double()
    Py_ssize_t fc_wino_packed_weights_size_float(Py_ssize_t F, Py_ssize_t C, int m)
    Py_ssize_t fc_wino_packed_weights_size_double(Py_ssize_t F, Py_ssize_t C, int m)
    void fc_wino_pack_weights_float(const float *w, Py_ssize_t F, Py_ssize_t C,
                                    int m, Py_ssize_t panel, int flip, float *packed)
    void fc_wino_pack_weights_double(const double *w, Py_ssize_t F, Py_ssize_t C,
                                     int m, Py_ssize_t panel, int flip, double *packed)
    void fc_wino_schedule_float(const fc_geom *g, Py_ssize_t N, Py_ssize_t F,
                                int m, Py_ssize_t groups, int threads, fc_wino_sched *s)
    void fc_wino_schedule_double(const fc_geom *g, Py_ssize_t N, Py_ssize_t F,
                                 int m, Py_ssize_t groups, int threads, fc_wino_sched *s)
    void fc_conv2d_wino_float(const float *x, Py_ssize_t x_stride, Py_ssize_t N,
                              const fc_geom *g, int m, const float *upack,
                              Py_ssize_t F, const float *bias, int relu,
                              const fc_wino_sched *s, Py_ssize_t block,
                              float *work, float *y, Py_ssize_t y_stride)
    void fc_conv2d_wino_double(const double *x, Py_ssize_t x_stride, Py_ssize_t N,
                               const fc_geom *g, int m, const double *upack,
                               Py_ssize_t F, const double *bias, int relu,
                               const fc_wino_sched *s, Py_ssize_t block,
                               double *work, double *y, Py_ssize_t y_stride)
    void fc_conv2d_wino_phase_float(int phase, const float *x, Py_ssize_t x_stride,
                                    Py_ssize_t N, const fc_geom *g, int m,
                                    const float *upack, Py_ssize_t F, const float *bias,
                                    int relu, const fc_wino_sched *s, Py_ssize_t item,
                                    float *work, float *shared, float *y,
                                    Py_ssize_t y_stride)
    void fc_conv2d_wino_phase_double(int phase, const double *x, Py_ssize_t x_stride,
                                     Py_ssize_t N, const fc_geom *g, int m,
                                     const double *upack, Py_ssize_t F,
                                     const double *bias, int relu,
                                     const fc_wino_sched *s, Py_ssize_t item,
                                     double *work, double *shared, double *y,
                                     Py_ssize_t y_stride)
    void fc_wino_matrices_float(int m, double *bt, double *g, double *at, double *a)
    void fc_wino_matrices_double(int m, double *bt, double *g, double *at, double *a)
    ctypedef struct fc_wino_gw_sched:
        Py_ssize_t tb, blocks, chunks, wsize, tsize, parts, pre, work
    void fc_wino_gw_schedule_float(const fc_geom *g, Py_ssize_t N, Py_ssize_t F, int m,
                                   fc_wino_gw_sched *s)
    void fc_wino_gw_schedule_double(const fc_geom *g, Py_ssize_t N, Py_ssize_t F, int m,
                                    fc_wino_gw_sched *s)
    void fc_wino_gw_transform_float(const float *x, Py_ssize_t x_stride, const float *gy,
                                    Py_ssize_t gy_stride, Py_ssize_t N, const fc_geom *g,
                                    int m, Py_ssize_t F, const fc_wino_gw_sched *s,
                                    Py_ssize_t block, Py_ssize_t part, float *work,
                                    float *dst)
    void fc_wino_gw_transform_double(const double *x, Py_ssize_t x_stride,
                                     const double *gy, Py_ssize_t gy_stride, Py_ssize_t N,
                                     const fc_geom *g, int m, Py_ssize_t F,
                                     const fc_wino_gw_sched *s, Py_ssize_t block,
                                     Py_ssize_t part, double *work, double *dst)
    void fc_wino_grad_weight_float(const float *x, Py_ssize_t x_stride, const float *gy,
                                   Py_ssize_t gy_stride, Py_ssize_t N, const fc_geom *g,
                                   int m, Py_ssize_t F, const fc_wino_gw_sched *s,
                                   Py_ssize_t chunk, Py_ssize_t xi0, Py_ssize_t xi1,
                                   float *work, const float *pre, float *wsum, double *bsum)
    void fc_wino_grad_weight_double(const double *x, Py_ssize_t x_stride,
                                    const double *gy, Py_ssize_t gy_stride, Py_ssize_t N,
                                    const fc_geom *g, int m, Py_ssize_t F,
                                    const fc_wino_gw_sched *s, Py_ssize_t chunk,
                                    Py_ssize_t xi0, Py_ssize_t xi1, double *work,
                                    const double *pre, double *wsum, double *bsum)
    void fc_wino_gw_finish_float(const float *wsum, Py_ssize_t chunks,
                                 Py_ssize_t wstride, Py_ssize_t F, Py_ssize_t C, int m,
                                 Py_ssize_t f, float *gw)
    void fc_wino_gw_finish_double(const double *wsum, Py_ssize_t chunks,
                                  Py_ssize_t wstride, Py_ssize_t F, Py_ssize_t C, int m,
                                  Py_ssize_t f, double *gw)

    # ---- layer kernels: norm.c, eltwise.c, linear.c ----
    void fc_bn_train_channel_float(const float *x, Py_ssize_t N, Py_ssize_t stride,
                                   Py_ssize_t L, double gamma, double beta,
                                   double eps, int relu, float *y, double *mean,
                                   double *var)
    void fc_bn_train_channel_double(const double *x, Py_ssize_t N, Py_ssize_t stride,
                                    Py_ssize_t L, double gamma, double beta,
                                    double eps, int relu, double *y, double *mean,
                                    double *var)
    void fc_bn_apply_float(const float *x, Py_ssize_t N, Py_ssize_t stride,
                           Py_ssize_t L, float scale, float shift, int relu, float *y)
    void fc_bn_apply_double(const double *x, Py_ssize_t N, Py_ssize_t stride,
                            Py_ssize_t L, double scale, double shift, int relu,
                            double *y)
    void fc_bn_backward_channel_float(const float *gy, const float *x, const float *y,
                                      Py_ssize_t N, Py_ssize_t stride, Py_ssize_t L,
                                      double mean, double invstd, double gamma,
                                      int training, float *gx, double *g_gamma,
                                      double *g_beta)
    void fc_bn_backward_channel_double(const double *gy, const double *x,
                                       const double *y, Py_ssize_t N,
                                       Py_ssize_t stride, Py_ssize_t L, double mean,
                                       double invstd, double gamma, int training,
                                       double *gx, double *g_gamma, double *g_beta)
    void fc_relu_float(const float *x, Py_ssize_t n, float *y)
    void fc_relu_double(const double *x, Py_ssize_t n, double *y)
    void fc_relu_backward_float(const float *g, const float *y, Py_ssize_t n, float *gx)
    void fc_relu_backward_double(const double *g, const double *y, Py_ssize_t n,
                                 double *gx)
    void fc_add_float(const float *a, const float *b, Py_ssize_t n, int relu, float *y)
    void fc_add_double(const double *a, const double *b, Py_ssize_t n, int relu,
                       double *y)
    void fc_sgd_step_float(float *p, const float *g, float *buf, Py_ssize_t n,
                           float lr, float momentum, float weight_decay,
                           int nesterov, int first)
    void fc_sgd_step_double(double *p, const double *g, double *buf, Py_ssize_t n,
                            double lr, double momentum, double weight_decay,
                            int nesterov, int first)
    void fc_adam_step_float(float *p, const float *g, float *m, float *v,
                            Py_ssize_t n, float beta1, float beta2, float eps,
                            float weight_decay, float step_size, float bc2_sqrt)
    void fc_adam_step_double(double *p, const double *g, double *m, double *v,
                             Py_ssize_t n, double beta1, double beta2, double eps,
                             double weight_decay, double step_size, double bc2_sqrt)
    double fc_softmax_xent_row_float(const float *s, Py_ssize_t C, Py_ssize_t label,
                                     float scale, float *grad)
    double fc_softmax_xent_row_double(const double *s, Py_ssize_t C, Py_ssize_t label,
                                      double scale, double *grad)
    Py_ssize_t fc_matmul_packed_a_size_float(Py_ssize_t M, Py_ssize_t Kd)
    Py_ssize_t fc_matmul_packed_a_size_double(Py_ssize_t M, Py_ssize_t Kd)
    void fc_matmul_pack_a_float(const float *a, Py_ssize_t lda, int at, Py_ssize_t M,
                                Py_ssize_t Kd, Py_ssize_t panel, float *packed)
    void fc_matmul_pack_a_double(const double *a, Py_ssize_t lda, int at, Py_ssize_t M,
                                 Py_ssize_t Kd, Py_ssize_t panel, double *packed)
    Py_ssize_t fc_matmul_panels_float(Py_ssize_t M, Py_ssize_t Ncols)
    Py_ssize_t fc_matmul_panels_double(Py_ssize_t M, Py_ssize_t Ncols)
    Py_ssize_t fc_matmul_work_size_float()
    Py_ssize_t fc_matmul_work_size_double()
    void fc_matmul_panel_float(const float *apack, Py_ssize_t M, Py_ssize_t Kd,
                               const float *b, Py_ssize_t ldb, int bt, Py_ssize_t Ncols,
                               const float *bias, int relu, int accumulate,
                               Py_ssize_t panel, float *work, float *c, Py_ssize_t ldc)
    void fc_matmul_panel_double(const double *apack, Py_ssize_t M, Py_ssize_t Kd,
                                const double *b, Py_ssize_t ldb, int bt, Py_ssize_t Ncols,
                                const double *bias, int relu, int accumulate,
                                Py_ssize_t panel, double *work, double *c,
                                Py_ssize_t ldc)
