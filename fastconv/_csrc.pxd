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

    int fc_im2col_float(const float *x, const fc_geom *g, Py_ssize_t l0,
                        Py_ssize_t l1, float *cols)
    int fc_im2col_double(const double *x, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, double *cols)
    int fc_col2im_float(const float *cols, const fc_geom *g, Py_ssize_t l0,
                        Py_ssize_t l1, float *x)
    int fc_col2im_double(const double *cols, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, double *x)

    Py_ssize_t fc_conv2d_direct_work_size_float(const fc_geom *g,
                                                Py_ssize_t n_filters)
    Py_ssize_t fc_conv2d_direct_work_size_double(const fc_geom *g,
                                                 Py_ssize_t n_filters)
    int fc_conv2d_direct_float(const float *x, const float *w, float bias,
                               const fc_geom *g, float *work, float *y)
    int fc_conv2d_direct_double(const double *x, const double *w, double bias,
                                const fc_geom *g, double *work, double *y)
    int fc_conv2d_direct_grad_input_float(const float *grad_y, const float *w,
                                          Py_ssize_t n_filters,
                                          const fc_geom *g, float *work,
                                          float *grad_x)
    int fc_conv2d_direct_grad_input_double(const double *grad_y,
                                           const double *w,
                                           Py_ssize_t n_filters,
                                           const fc_geom *g, double *work,
                                           double *grad_x)
    int fc_conv2d_direct_grad_weight_float(const float *x, const float *grad_y,
                                           const fc_geom *g, float *work,
                                           float *grad_w)
    int fc_conv2d_direct_grad_weight_double(const double *x,
                                            const double *grad_y,
                                            const fc_geom *g, double *work,
                                            double *grad_w)
    double fc_bias_grad_float(const float *gy, Py_ssize_t N, Py_ssize_t stride,
                              Py_ssize_t L)
    double fc_bias_grad_double(const double *gy, Py_ssize_t N,
                               Py_ssize_t stride, Py_ssize_t L)

    int fc_max_pool2d_float(const float *x, const fc_geom *g, float *y,
                            int64_t *indices)
    int fc_max_pool2d_double(const double *x, const fc_geom *g, double *y,
                             int64_t *indices)
    int fc_max_pool2d_backward_float(const float *grad_y,
                                     const int64_t *indices, Py_ssize_t n_out,
                                     Py_ssize_t hw, float *grad_x)
    int fc_max_pool2d_backward_double(const double *grad_y,
                                      const int64_t *indices, Py_ssize_t n_out,
                                      Py_ssize_t hw, double *grad_x)
    int fc_avg_pool2d_float(const float *x, const fc_geom *g,
                            int count_include_pad, float *y)
    int fc_avg_pool2d_double(const double *x, const fc_geom *g,
                             int count_include_pad, double *y)
    int fc_avg_pool2d_backward_float(const float *grad_y, const fc_geom *g,
                                     int count_include_pad, float *grad_x)
    int fc_avg_pool2d_backward_double(const double *grad_y, const fc_geom *g,
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
    int fc_conv2d_gemm_tile_float(const float *x, const fc_geom *g,
                                  const float *wpack, Py_ssize_t F,
                                  const float *bias, Py_ssize_t tile,
                                  float *work, float *y)
    int fc_conv2d_gemm_tile_double(const double *x, const fc_geom *g,
                                   const double *wpack, Py_ssize_t F,
                                   const double *bias, Py_ssize_t tile,
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
    int fc_conv2d_gemm_gw_item_float(const float *x, Py_ssize_t x_stride,
                                     const float *gy, Py_ssize_t gy_stride,
                                     const fc_geom *g, Py_ssize_t F, Py_ssize_t N,
                                     Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t kb,
                                     const float *apack, int first, float *work,
                                     float *gw)
    int fc_conv2d_gemm_gw_item_double(const double *x, Py_ssize_t x_stride,
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
    int fc_conv2d_gemm_grad_input_phases_float(const float *gy, Py_ssize_t gy_stride,
                                               Py_ssize_t N, const fc_geom *g,
                                               const float *packed, Py_ssize_t F,
                                               Py_ssize_t item, float *work,
                                               float *gx, Py_ssize_t gx_stride)
    int fc_conv2d_gemm_grad_input_phases_double(const double *gy,
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
    int fc_conv2d_gemm_item_float(const float *x, Py_ssize_t x_stride,
                                  Py_ssize_t N, const fc_geom *g,
                                  const float *wpack, Py_ssize_t F,
                                  const float *bias, Py_ssize_t item,
                                  float *work, float *y, const fc_ylayout *ly)
    int fc_conv2d_gemm_item_double(const double *x, Py_ssize_t x_stride,
                                   Py_ssize_t N, const fc_geom *g,
                                   const double *wpack, Py_ssize_t F,
                                   const double *bias, Py_ssize_t item,
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
    int fc_conv2d_gemm_grad_input_float(const float *gy, const fc_geom *g,
                                        const float *wtpack, Py_ssize_t F,
                                        Py_ssize_t block, float *work, float *gx)
    int fc_conv2d_gemm_grad_input_double(const double *gy, const fc_geom *g,
                                         const double *wtpack, Py_ssize_t F,
                                         Py_ssize_t block, double *work,
                                         double *gx)
    Py_ssize_t fc_gemm_grad_weight_work_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_gemm_grad_weight_work_size_double(const fc_geom *g, Py_ssize_t F)
    int fc_conv2d_gemm_grad_weight_float(const float *x, Py_ssize_t x_stride,
                                         const float *gy, Py_ssize_t gy_stride,
                                         const fc_geom *g, Py_ssize_t F,
                                         Py_ssize_t p0, Py_ssize_t p1,
                                         float *work, float *gw)
    int fc_conv2d_gemm_grad_weight_double(const double *x, Py_ssize_t x_stride,
                                          const double *gy, Py_ssize_t gy_stride,
                                          const fc_geom *g, Py_ssize_t F,
                                          Py_ssize_t p0, Py_ssize_t p1,
                                          double *work, double *gw)

    int fc_openmp_enabled()
    int fc_default_threads()

    # ---- 3-D (volumetric) kernels: vol.c ----
    ctypedef struct fc_vgeom:
        Py_ssize_t C, D, H, W
        Py_ssize_t kd, kh, kw, sd, sh, sw, pf, pt, pl, dd, dh, dw
        Py_ssize_t Do, Ho, Wo

    int fc_max_pool3d_float(const float *x, const fc_vgeom *g, float *y,
                            int64_t *indices)
    int fc_max_pool3d_double(const double *x, const fc_vgeom *g, double *y,
                             int64_t *indices)
    int fc_avg_pool3d_float(const float *x, const fc_vgeom *g,
                            int count_include_pad, float *y)
    int fc_avg_pool3d_double(const double *x, const fc_vgeom *g,
                             int count_include_pad, double *y)
    int fc_avg_pool3d_backward_float(const float *grad_y, const fc_vgeom *g,
                                     int count_include_pad, float *grad_x)
    int fc_avg_pool3d_backward_double(const double *grad_y,
                                      const fc_vgeom *g,
                                      int count_include_pad, double *grad_x)

    # ==== local.c: locally connected layer ====
    void fc_lc_padded_geom(const fc_geom *g, fc_geom *gp)
    void fc_lc_offsets(const fc_geom *gp, Py_ssize_t N, Py_ssize_t *off)
    Py_ssize_t fc_lc_work_size(const fc_geom *g, Py_ssize_t N, Py_ssize_t F)
    Py_ssize_t fc_lc_band_rows(const fc_geom *g)
    int fc_lc_pack_row_float(const float *x, const fc_geom *g, Py_ssize_t N,
                             Py_ssize_t row, float *xt)
    int fc_lc_pack_row_double(const double *x, const fc_geom *g, Py_ssize_t N,
                              Py_ssize_t row, double *xt)
    int fc_lc_unpack_row_float(const float *xt, const fc_geom *g, Py_ssize_t N,
                               Py_ssize_t row, float *x)
    int fc_lc_unpack_row_double(const double *xt, const fc_geom *g,
                                Py_ssize_t N, Py_ssize_t row, double *x)
    int fc_lc_forward_float(const float *xt, const fc_geom *gp,
                            const Py_ssize_t *off, Py_ssize_t N, const float *w,
                            const float *bias, Py_ssize_t F, Py_ssize_t l0,
                            Py_ssize_t l1, float *work, float *y)
    int fc_lc_forward_double(const double *xt, const fc_geom *gp,
                             const Py_ssize_t *off, Py_ssize_t N,
                             const double *w, const double *bias, Py_ssize_t F,
                             Py_ssize_t l0, Py_ssize_t l1, double *work,
                             double *y)
    int fc_lc_backward_float(const float *gy, const float *xt,
                             const fc_geom *gp, const Py_ssize_t *off,
                             Py_ssize_t N, const float *w, Py_ssize_t F,
                             Py_ssize_t l0, Py_ssize_t l1, float *work,
                             float *gxt, float *gw, float *gb)
    int fc_lc_backward_double(const double *gy, const double *xt,
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

    # ---- winograd.c: F(2x2, 3x3) convolution ----
    Py_ssize_t fc_wino_packed_weights_size_float(Py_ssize_t F, Py_ssize_t C)
    Py_ssize_t fc_wino_packed_weights_size_double(Py_ssize_t F, Py_ssize_t C)
    void fc_wino_pack_weights_float(const float *w, Py_ssize_t F, Py_ssize_t C,
                                    Py_ssize_t panel, float *packed)
    void fc_wino_pack_weights_double(const double *w, Py_ssize_t F, Py_ssize_t C,
                                     Py_ssize_t panel, double *packed)
    Py_ssize_t fc_wino_tiles_float(const fc_geom *g, Py_ssize_t N)
    Py_ssize_t fc_wino_tiles_double(const fc_geom *g, Py_ssize_t N)
    Py_ssize_t fc_wino_work_size_float(const fc_geom *g, Py_ssize_t F)
    Py_ssize_t fc_wino_work_size_double(const fc_geom *g, Py_ssize_t F)
    int fc_conv2d_wino_tile_float(const float *x, Py_ssize_t x_stride, Py_ssize_t N,
                                  const fc_geom *g, const float *upack, Py_ssize_t F,
                                  const float *bias, Py_ssize_t block,
                                  float *work, float *y, Py_ssize_t y_stride)
    int fc_conv2d_wino_tile_double(const double *x, Py_ssize_t x_stride, Py_ssize_t N,
                                   const fc_geom *g, const double *upack,
                                   Py_ssize_t F, const double *bias, Py_ssize_t block,
                                   double *work, double *y, Py_ssize_t y_stride)
