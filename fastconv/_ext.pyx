# cython: language_level=3
"""Compiled kernels of fastconv: dtype dispatch, allocation and threading.

The functions here trust their arguments: 4-D C-contiguous arrays of one
float dtype and a geometry checked by fastconv/_validation.py.  They allocate
the outputs with NumPy and the bounded per-thread workspaces with malloc,
release the GIL, and run the C kernels of src_c/ over independent work items
(images, tiles, planes) with OpenMP.  Call them through fastconv's public
functions, never directly.
"""
import numpy as np

cimport cython
from cpython.pyport cimport PY_SSIZE_T_MAX
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

cimport fastconv._csrc as c
from fastconv._csrc cimport fc_geom, fc_ylayout

cdef enum:
    # Fixed number of partial sums for grad_weight on the GEMM path (bounded
    # in memory); they are added in order, whatever the thread count.
    MAX_CHUNKS = 8
    CHUNK_BYTES = 16 * 1024 * 1024
    # grad_x by a forward convolution from this many channels per group
    # (fewer would leave most rows of the micro-kernel's 8-row panels empty)
    FLIP_MIN_CHANNELS = 16
    # Below this many element operations (about 50 us of work), a call runs
    # on one thread: waking a second one would cost more than it saves.
    MIN_PARALLEL_WORK = 1 << 21
    # grad_weight by blocks of its columns: no chunks of positions (partial
    # sums) from this many column blocks (enough work items), and at most
    # this much packed grad_out at a time
    GW_MIN_COL_BLOCKS = 4
    GW_A_BYTES = 16 << 20

cdef int _n_threads = 0      # 0: follow OpenMP (OMP_NUM_THREADS, threadpoolctl)
cdef int _max_threads = 1    # the cap, set by fastconv._threads at import


def openmp_enabled():
    """True if the extension was built with OpenMP."""
    return bool(c.fc_openmp_enabled())


def set_num_threads(int n):
    """Use ``n`` threads (``n >= 1``); ``0`` restores the OpenMP default."""
    global _n_threads
    _n_threads = n


def set_thread_limit(int n):
    """Never run more than ``n`` threads (``n >= 1``), whatever OpenMP's
    default (OMP_NUM_THREADS) says."""
    global _max_threads
    _max_threads = n


def get_num_threads():
    """Number of threads the next kernel call will use."""
    return _threads()


cdef inline int _threads() noexcept nogil:
    cdef int n = _n_threads if _n_threads > 0 else c.fc_default_threads()
    return n if n < _max_threads else _max_threads


@cython.cdivision(True)
cdef inline Py_ssize_t _mul(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """a*b of sizes (>= 0), saturated instead of wrapped: the thread
    heuristics need only its order of magnitude."""
    if a != 0 and b > PY_SSIZE_T_MAX / a:
        return PY_SSIZE_T_MAX
    return a * b


cdef inline Py_ssize_t _add(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return PY_SSIZE_T_MAX if a > PY_SSIZE_T_MAX - b else a + b


cdef Py_ssize_t _nbytes(str op, str what, elements,
                        Py_ssize_t itemsize) except -1:
    """Bytes of a workspace of ``elements`` items, a Python int (the sizes
    are multiplied in Python, never wrapped); MemoryError stating the size
    when no allocation can hold it."""
    nbytes = max(1, elements) * itemsize
    if nbytes > PY_SSIZE_T_MAX:
        raise MemoryError(f"{op}: the {what} would take {nbytes} bytes, more "
                          f"than can be allocated")
    return nbytes


def _no_memory(op, what, nbytes):
    return MemoryError(f"{op}: could not allocate the {what} ({nbytes} bytes)")


cdef inline int _threads_for(Py_ssize_t work) noexcept nogil:
    """Threads for a call touching about ``work`` elements: one for small
    calls, where waking a second thread costs more than it saves (and, with
    the other core busy, can stall a whole scheduler time slice)."""
    return 1 if work < MIN_PARALLEL_WORK else _threads()


cdef inline Py_ssize_t _plane_chunk(Py_ssize_t elements) noexcept nogil:
    """Planes (or volumes) per dynamic-schedule chunk for pooling: about 32k
    elements, so small planes do not pay a scheduler round trip each (at 2
    threads that made 64x32x32x32 pooling slower than at 1)."""
    return max(1, min(64, 32768 // max(1, elements)))


cdef inline void _zero(floating *p, Py_ssize_t n) noexcept nogil:
    """Zero n elements.  Kernels that accumulate into np.empty outputs zero
    each plane in their own parallel item, just before adding into it (in
    cache), instead of a single-threaded np.zeros pass over the whole output."""
    memset(p, 0, n * sizeof(floating))


cdef fc_geom _geom(g, Py_ssize_t channels):
    """C view of a _validation.Geometry, for ``channels`` input channels."""
    cdef fc_geom r
    r.C = channels
    r.H = g.H
    r.W = g.W
    r.kh = g.kh
    r.kw = g.kw
    r.sh = g.sh
    r.sw = g.sw
    r.pt = g.pt
    r.pl = g.pl
    r.dh = g.dh
    r.dw = g.dw
    r.Ho = g.Ho
    r.Wo = g.Wo
    return r


# --------------------------------------------------------------------------
# fused-type dispatch to the C kernels
# --------------------------------------------------------------------------

cdef inline int _im2col(const floating *x, const fc_geom *g, Py_ssize_t l0,
                        Py_ssize_t l1, floating *cols) noexcept nogil:
    if floating is float:
        return c.fc_im2col_float(x, g, l0, l1, cols)
    else:
        return c.fc_im2col_double(x, g, l0, l1, cols)


cdef inline int _col2im(const floating *cols, const fc_geom *g, Py_ssize_t l0,
                        Py_ssize_t l1, floating *x) noexcept nogil:
    if floating is float:
        return c.fc_col2im_float(cols, g, l0, l1, x)
    else:
        return c.fc_col2im_double(cols, g, l0, l1, x)


cdef inline Py_ssize_t _direct_work_size(const fc_geom *g, Py_ssize_t n_filters,
                                         floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_direct_work_size_float(g, n_filters)
    else:
        return c.fc_conv2d_direct_work_size_double(g, n_filters)


cdef inline int _direct(const floating *x, const floating *w, floating bias,
                        const fc_geom *g, floating *work,
                        floating *y) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_direct_float(x, w, bias, g, work, y)
    else:
        return c.fc_conv2d_direct_double(x, w, bias, g, work, y)


cdef inline int _direct_grad_input(const floating *gy, const floating *w,
                                   Py_ssize_t n_filters, const fc_geom *g,
                                   floating *work, floating *gx) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_direct_grad_input_float(gy, w, n_filters, g, work, gx)
    else:
        return c.fc_conv2d_direct_grad_input_double(gy, w, n_filters, g, work, gx)


cdef inline int _direct_grad_weight(const floating *x, const floating *gy,
                                    const fc_geom *g, floating *work,
                                    floating *gw) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_direct_grad_weight_float(x, gy, g, work, gw)
    else:
        return c.fc_conv2d_direct_grad_weight_double(x, gy, g, work, gw)


cdef inline double _bias_grad(const floating *gy, Py_ssize_t N,
                              Py_ssize_t stride, Py_ssize_t L) noexcept nogil:
    if floating is float:
        return c.fc_bias_grad_float(gy, N, stride, L)
    else:
        return c.fc_bias_grad_double(gy, N, stride, L)


cdef inline int _max_pool(const floating *x, const fc_geom *g, floating *y,
                          int64_t *idx) noexcept nogil:
    if floating is float:
        return c.fc_max_pool2d_float(x, g, y, idx)
    else:
        return c.fc_max_pool2d_double(x, g, y, idx)


cdef inline int _max_pool_backward(const floating *gy, const int64_t *idx,
                                   Py_ssize_t n_out, Py_ssize_t hw,
                                   floating *gx) noexcept nogil:
    if floating is float:
        return c.fc_max_pool2d_backward_float(gy, idx, n_out, hw, gx)
    else:
        return c.fc_max_pool2d_backward_double(gy, idx, n_out, hw, gx)


cdef inline int _avg_pool(const floating *x, const fc_geom *g, int count_include_pad,
                          floating *y) noexcept nogil:
    if floating is float:
        return c.fc_avg_pool2d_float(x, g, count_include_pad, y)
    else:
        return c.fc_avg_pool2d_double(x, g, count_include_pad, y)


cdef inline int _avg_pool_backward(const floating *gy, const fc_geom *g,
                                   int count_include_pad, floating *gx) noexcept nogil:
    if floating is float:
        return c.fc_avg_pool2d_backward_float(gy, g, count_include_pad, gx)
    else:
        return c.fc_avg_pool2d_backward_double(gy, g, count_include_pad, gx)


# --------------------------------------------------------------------------
# im2col / col2im: one image per iteration
# --------------------------------------------------------------------------

def im2col(const floating[:, :, :, ::1] x, g):
    """(N, C, H, W) -> (N, C*kh*kw, Ho*Wo).  # IN x  # OUT new array"""
    cdef fc_geom gc = _geom(g, g.C)
    cdef Py_ssize_t N = g.N, C = g.C, L = g.Ho * g.Wo
    cdef Py_ssize_t K = C * g.kh * g.kw, HW = g.H * g.W, n
    out = np.empty((N, K, L), dtype=np.asarray(x).dtype)
    cdef floating[:, :, ::1] cols = out
    if out.size == 0:
        return out
    with nogil:
        for n in prange(N, schedule='dynamic', num_threads=_threads_for(N * K * L)):
            _im2col(&x[0, 0, 0, 0] + n * C * HW, &gc, 0, L,
                    &cols[0, 0, 0] + n * K * L)
    return out


def col2im(const floating[:, :, ::1] cols, g):
    """(N, C*kh*kw, Ho*Wo) -> (N, C, H, W), overlaps summed.  # IN cols"""
    cdef fc_geom gc = _geom(g, g.C)
    cdef Py_ssize_t N = g.N, C = g.C, L = g.Ho * g.Wo
    cdef Py_ssize_t K = C * g.kh * g.kw, HW = g.H * g.W, n
    if cols.size == 0:
        return np.zeros((N, C, g.H, g.W), dtype=np.asarray(cols).dtype)
    out = np.empty((N, C, g.H, g.W), dtype=np.asarray(cols).dtype)
    cdef floating[:, :, :, ::1] x = out
    if out.size == 0:
        return out
    with nogil:
        for n in prange(N, schedule='dynamic', num_threads=_threads_for(N * K * L)):
            _zero(&x[0, 0, 0, 0] + n * C * HW, C * HW)
            _col2im(&cols[0, 0, 0] + n * K * L, &gc, 0, L,
                    &x[0, 0, 0, 0] + n * C * HW)
    return out


# --------------------------------------------------------------------------
# conv2d, GEMM path: fastconv's own packed GEMM (src_c/gemm.c, ukernel.c),
# im2col fused into the packing of bounded tiles.  Work items are (image,
# tile) pairs forward, channel blocks and chunks of output positions backward.
# --------------------------------------------------------------------------

def gemm_isa():
    """The micro-kernels in use: "avx512", "avx2" or "generic"."""
    return c.fc_gemm_isa().decode()


def _init_gemm(isa):
    cdef bytes name = (isa or "").encode()
    if c.fc_gemm_init(name) != c.FC_OK:
        known = ("avx512", "avx2", "generic")
        here = [k for k in known if c.fc_gemm_init(k.encode()) == c.FC_OK]
        what = ("is not supported by this CPU" if isa in known
                else f"is not one of {', '.join(known)}")
        raise ImportError(f"fastconv: FASTCONV_ISA={isa!r} {what}; this CPU supports "
                          f"{', '.join(here)} (unset FASTCONV_ISA for the best of them)")


cdef inline Py_ssize_t _packed_size(Py_ssize_t F, Py_ssize_t K,
                                    floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_packed_weights_size_float(F, K)
    else:
        return c.fc_gemm_packed_weights_size_double(F, K)


cdef inline Py_ssize_t _panels(Py_ssize_t F, floating *tag) noexcept nogil:
    """Weight panels of the micro-kernel's rows (mr) covering F filters."""
    return _packed_size(F, 1, tag) // _packed_size(1, 1, tag)


cdef inline void _pack_weights(const floating *w, Py_ssize_t F, Py_ssize_t K,
                               floating *packed) noexcept nogil:
    if floating is float:
        c.fc_gemm_pack_weights_float(w, F, K, packed)
    else:
        c.fc_gemm_pack_weights_double(w, F, K, packed)


cdef inline Py_ssize_t _items(const fc_geom *g, Py_ssize_t N, const fc_ylayout *ly,
                             floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_items_float(g, N, ly)
    else:
        return c.fc_gemm_items_double(g, N, ly)


cdef inline Py_ssize_t _work_size(const fc_geom *g, Py_ssize_t F, const fc_ylayout *ly,
                                  floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_item_work_size_float(g, F, ly)
    else:
        return c.fc_gemm_item_work_size_double(g, F, ly)


cdef inline int _gemm_item(const floating *x, Py_ssize_t x_stride, Py_ssize_t N,
                           const fc_geom *g, const floating *wpack, Py_ssize_t F,
                           const floating *bias, Py_ssize_t item, floating *work,
                           floating *y, const fc_ylayout *ly) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_gemm_item_float(x, x_stride, N, g, wpack, F, bias, item,
                                           work, y, ly)
    else:
        return c.fc_conv2d_gemm_item_double(x, x_stride, N, g, wpack, F, bias, item,
                                            work, y, ly)


cdef inline fc_ylayout _dense(Py_ssize_t img, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """The plain layout of (F, Ho, Wo) output planes, images img apart."""
    cdef fc_ylayout r
    r.img = img
    r.plane = Ho * Wo
    r.row = Wo
    r.col = 1
    return r


def conv2d_gemm(const floating[:, :, :, ::1] x,
                const floating[:, :, :, ::1] w,
                const floating[::1] b, g):
    """Forward convolution by the packed GEMM.  # IN x, w, b  # OUT new"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t K = Cg * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef Py_ssize_t psize = _packed_size(Fg, K, tag)
    cdef fc_ylayout ly = _dense(F * L, g.Ho, g.Wo)
    cdef Py_ssize_t nitems = _items(&gc, N, &ly, tag)   # tiles over the batch
    cdef Py_ssize_t wsize = _work_size(&gc, Fg, &ly, tag)
    cdef Py_ssize_t mr = _packed_size(1, 1, tag)    # filters per weight panel
    cdef Py_ssize_t fpanels = _panels(Fg, tag)
    cdef Py_ssize_t item, gi, pw, pg, f0
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *packed = NULL
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef Py_ssize_t pbytes = _nbytes("conv2d", "GEMM packed weights",
                                     groups * <object> psize, sizeof(floating))
    cdef Py_ssize_t wbytes = _nbytes("conv2d", "GEMM workspace",
                                     nt * <object> wsize, sizeof(floating))
    out = np.empty((N, F, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, ::1] y = out
    if out.size == 0:
        return out
    packed = <floating *> malloc(pbytes)
    buf = <floating *> malloc(wbytes)
    if packed == NULL or buf == NULL:
        free(packed)
        free(buf)
        raise _no_memory("conv2d", "GEMM workspace", pbytes + wbytes)
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            # the weight panels first, shared out (the loop ends in a barrier)
            for pw in prange(groups * fpanels, schedule='static'):
                pg = pw // fpanels
                f0 = (pw - pg * fpanels) * mr
                _pack_weights(&w[0, 0, 0, 0] + (pg * Fg + f0) * K, min(mr, Fg - f0),
                              K, packed + pg * psize + f0 * K)
            for item in prange(nitems, schedule='dynamic'):
                for gi in range(groups):
                    _gemm_item(&x[0, 0, 0, 0] + gi * Cg * HW, C * HW, N, &gc,
                               packed + gi * psize, Fg, &b[0] + gi * Fg, item, ws,
                               &y[0, 0, 0, 0] + gi * Fg * L, &ly)
    free(packed)
    free(buf)
    return out


cdef inline Py_ssize_t _grad_input_blocks(const fc_geom *g,
                                          floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_grad_input_blocks_float(g)
    else:
        return c.fc_gemm_grad_input_blocks_double(g)


cdef inline Py_ssize_t _packed_t_size(const fc_geom *g, Py_ssize_t F,
                                      floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_packed_weights_t_size_float(g, F)
    else:
        return c.fc_gemm_packed_weights_t_size_double(g, F)


cdef inline void _pack_weights_t(const floating *w, const fc_geom *g,
                                 Py_ssize_t F, floating *packed) noexcept nogil:
    if floating is float:
        c.fc_gemm_pack_weights_t_float(w, g, F, packed)
    else:
        c.fc_gemm_pack_weights_t_double(w, g, F, packed)


cdef inline Py_ssize_t _grad_work_size(const fc_geom *g, Py_ssize_t F,
                                       floating *tag) noexcept nogil:
    cdef Py_ssize_t a, b
    if floating is float:
        a = c.fc_gemm_grad_input_work_size_float(g, F)
        b = c.fc_gemm_grad_weight_work_size_float(g, F)
    else:
        a = c.fc_gemm_grad_input_work_size_double(g, F)
        b = c.fc_gemm_grad_weight_work_size_double(g, F)
    return a if a > b else b


cdef inline int _grad_input(const floating *gy, const fc_geom *g,
                            const floating *wtpack, Py_ssize_t F,
                            Py_ssize_t block, floating *work,
                            floating *gx) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_gemm_grad_input_float(gy, g, wtpack, F, block, work, gx)
    else:
        return c.fc_conv2d_gemm_grad_input_double(gy, g, wtpack, F, block, work, gx)


cdef inline int _grad_weight(const floating *x, Py_ssize_t x_stride,
                             const floating *gy, Py_ssize_t gy_stride,
                             const fc_geom *g, Py_ssize_t F, Py_ssize_t p0,
                             Py_ssize_t p1, floating *work,
                             floating *gw) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_gemm_grad_weight_float(x, x_stride, gy, gy_stride, g,
                                                  F, p0, p1, work, gw)
    else:
        return c.fc_conv2d_gemm_grad_weight_double(x, x_stride, gy, gy_stride,
                                                   g, F, p0, p1, work, gw)


cdef inline bint _gw_fits(const fc_geom *g, Py_ssize_t F,
                          floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_gw_fits_float(g, F)
    else:
        return c.fc_gemm_gw_fits_double(g, F)


cdef inline Py_ssize_t _gw_blocks(const fc_geom *g, Py_ssize_t N,
                                  floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_gw_blocks_float(g, N)
    else:
        return c.fc_gemm_gw_blocks_double(g, N)


cdef inline Py_ssize_t _gw_col_blocks(const fc_geom *g, Py_ssize_t F,
                                      floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_gw_col_blocks_float(g, F)
    else:
        return c.fc_gemm_gw_col_blocks_double(g, F)


cdef inline Py_ssize_t _gw_apack_size(Py_ssize_t F, floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_gw_apack_size_float(F)
    else:
        return c.fc_gemm_gw_apack_size_double(F)


cdef inline Py_ssize_t _gw_work_size(const fc_geom *g, Py_ssize_t F,
                                     floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_gw_work_size_float(g, F)
    else:
        return c.fc_gemm_gw_work_size_double(g, F)


cdef inline void _gw_pack_a(const floating *gy, Py_ssize_t gy_stride,
                            const fc_geom *g, Py_ssize_t F, Py_ssize_t N,
                            Py_ssize_t block, floating *apack) noexcept nogil:
    if floating is float:
        c.fc_gemm_gw_pack_a_float(gy, gy_stride, g, F, N, block, apack)
    else:
        c.fc_gemm_gw_pack_a_double(gy, gy_stride, g, F, N, block, apack)


cdef inline int _gw_item(const floating *x, Py_ssize_t x_stride,
                         const floating *gy, Py_ssize_t gy_stride, const fc_geom *g,
                         Py_ssize_t F, Py_ssize_t N, Py_ssize_t b0, Py_ssize_t b1,
                         Py_ssize_t kb, const floating *apack, int first,
                         floating *work, floating *gw) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_gemm_gw_item_float(x, x_stride, gy, gy_stride, g, F, N,
                                              b0, b1, kb, apack, first, work, gw)
    else:
        return c.fc_conv2d_gemm_gw_item_double(x, x_stride, gy, gy_stride, g, F, N,
                                               b0, b1, kb, apack, first, work, gw)


cdef inline bint _phases_fit(const fc_geom *g, Py_ssize_t F,
                             floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_phases_fit_float(g, F)
    else:
        return c.fc_gemm_phases_fit_double(g, F)


cdef inline Py_ssize_t _phase_weights_size(const fc_geom *g, Py_ssize_t F,
                                           floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_phase_weights_size_float(g, F)
    else:
        return c.fc_gemm_phase_weights_size_double(g, F)


cdef inline void _pack_phase_weights(const floating *w, const fc_geom *g,
                                     Py_ssize_t F, floating *packed) noexcept nogil:
    if floating is float:
        c.fc_gemm_pack_phase_weights_float(w, g, F, packed)
    else:
        c.fc_gemm_pack_phase_weights_double(w, g, F, packed)


cdef inline Py_ssize_t _phase_items(const fc_geom *g, Py_ssize_t F, Py_ssize_t N,
                                    floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_phase_items_float(g, F, N)
    else:
        return c.fc_gemm_phase_items_double(g, F, N)


cdef inline Py_ssize_t _phase_work_size(const fc_geom *g, Py_ssize_t F,
                                        floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_gemm_phase_work_size_float(g, F)
    else:
        return c.fc_gemm_phase_work_size_double(g, F)


cdef inline int _grad_input_phases(const floating *gy, Py_ssize_t gy_stride,
                                   Py_ssize_t N, const fc_geom *g,
                                   const floating *packed, Py_ssize_t F,
                                   Py_ssize_t item, floating *work, floating *gx,
                                   Py_ssize_t gx_stride) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_gemm_grad_input_phases_float(gy, gy_stride, N, g, packed,
                                                        F, item, work, gx, gx_stride)
    else:
        return c.fc_conv2d_gemm_grad_input_phases_double(gy, gy_stride, N, g, packed,
                                                         F, item, work, gx, gx_stride)


cdef inline void _pack_weights_flip(const floating *w, Py_ssize_t F,
                                    Py_ssize_t C, Py_ssize_t kh, Py_ssize_t kw,
                                    Py_ssize_t panel, floating *packed) noexcept nogil:
    if floating is float:
        c.fc_gemm_pack_weights_flip_float(w, F, C, kh, kw, panel, packed)
    else:
        c.fc_gemm_pack_weights_flip_double(w, F, C, kh, kw, panel, packed)


cdef fc_geom _flip_geom(const fc_geom *g, Py_ssize_t F) noexcept nogil:
    """The forward geometry whose output is grad_x of a unit-stride layer
    (src_c/fastconv.h, fc_gemm_pack_weights_flip); pt or pl < 0: none."""
    cdef fc_geom r = g[0]
    r.C = F
    r.H = g.Ho
    r.W = g.Wo
    r.pt = (g.kh - 1) * g.dh - g.pt
    r.pl = (g.kw - 1) * g.dw - g.pl
    r.Ho = g.H
    r.Wo = g.W
    return r


def conv2d_gemm_backward(const floating[:, :, :, ::1] gy,
                         const floating[:, :, :, ::1] x,
                         const floating[:, :, :, ::1] w, g,
                         bint grad_input=True):
    """(grad_x, grad_weight) by the packed GEMM; grad_x is None unless
    grad_input.  # IN all  # OUT new

    grad_weight sums over the batch's output positions in order: its work
    items own blocks of its columns (or, for few columns, the positions are
    split into a fixed number of chunks whose partial sums are added in
    order): bitwise the same result for any thread count.  grad_x runs over
    items (images or groups of images, channel blocks) that write disjoint
    cells.
    """
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t K = Cg * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W
    cdef Py_ssize_t FK = F * K
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef Py_ssize_t P = N * L
    cdef Py_ssize_t n_chunks = min(P, MAX_CHUNKS,
                                   max(1, CHUNK_BYTES // (FK * <Py_ssize_t> sizeof(floating))))
    cdef Py_ssize_t nblocks = _grad_input_blocks(&gc, tag)
    cdef Py_ssize_t wtsize = _packed_t_size(&gc, Fg, tag)
    cdef Py_ssize_t wsize = _grad_work_size(&gc, Fg, tag)
    cdef Py_ssize_t ch, n, gi, it, blk, p, pw, pg
    cdef Py_ssize_t cpanels = _panels(Cg, tag)        # flipped weight panels
    cdef floating acc
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef floating *partial = NULL
    cdef floating *wtpack = NULL
    cdef floating *zero_bias = NULL
    # grad_x of a unit-stride layer, not 1x1 (whose GEMM needs no col2im),
    # with at least FLIP_MIN_CHANNELS input channels per group, is a forward
    # convolution of grad_out with the flipped, transposed filters (gemm.c):
    # bands of output rows, no col2im.
    cdef fc_geom gf = _flip_geom(&gc, Fg)
    cdef bint flip = (grad_input and g.sh == 1 and g.sw == 1 and gf.pt >= 0
                      and gf.pl >= 0 and g.kh * g.kw > 1
                      and Cg >= FLIP_MIN_CHANNELS)
    cdef fc_ylayout fly = _dense(C * HW, g.H, g.W)
    cdef Py_ssize_t fitems = 0
    if flip:
        fitems = _items(&gf, N, &fly, tag)
        wsize = max(wsize, _work_size(&gf, Cg, &fly, tag))
        wtsize = _packed_size(Cg, Fg * gc.kh * gc.kw, tag)
    # grad_x of a strided layer with as many channels, not 1x1 (whose col2im
    # is a plain scatter): phase by phase, each phase of grad_x a stride-1
    # convolution of grad_out (gemm.tmpl.h), on the forward tiles, written
    # in place: no col2im.
    cdef bint phases = (grad_input and not flip and (g.sh > 1 or g.sw > 1)
                        and g.kh * g.kw > 1 and Cg >= FLIP_MIN_CHANNELS
                        and _phases_fit(&gc, Fg, tag))
    if phases:
        fitems = _phase_items(&gc, Fg, N, tag)
        wsize = max(wsize, _phase_work_size(&gc, Fg, tag))
        wtsize = _phase_weights_size(&gc, Fg, tag)
    # grad_w by blocks of its columns over virtual positions (gemm.tmpl.h),
    # where their extra columns are few: each item owns columns of grad_w,
    # so the positions need splitting into chunks (partial sums added in
    # order) only when grad_w has few columns.
    cdef bint gwcols = _gw_fits(&gc, Fg, tag), prepack = False
    cdef Py_ssize_t gblocks = 0, gcols = 0, asz = 0, rblocks = 1, nrounds = 0
    cdef Py_ssize_t r, r0, r1, lo, hi, cb, b
    cdef floating *apack = NULL
    cdef floating *gwout = NULL
    if gwcols:
        gcols = _gw_col_blocks(&gc, Fg, tag)
        # measured: it pays for wide grad_w (many column blocks) and for
        # strided layers (a phase slab instead of im2col rows); 1x1 and
        # narrow stride-1 layers keep the per-chunk path
        gwcols = g.kh * g.kw > 1 and (gcols >= GW_MIN_COL_BLOCKS
                                      or g.sh > 1 or g.sw > 1)
    if gwcols:
        gblocks = _gw_blocks(&gc, N, tag)
        asz = _gw_apack_size(Fg, tag)
        if gcols >= GW_MIN_COL_BLOCKS:
            n_chunks = 1
        else:
            n_chunks = min(gblocks, MAX_CHUNKS,
                           max(1, CHUNK_BYTES // (FK * <Py_ssize_t> sizeof(floating))))
        # grad_out packed once for all column blocks, if there are several;
        # with one, each item packs its blocks as it goes (in cache)
        prepack = gcols > 1
        rblocks = max(1, min(gblocks, GW_A_BYTES // (groups * asz * <Py_ssize_t> sizeof(floating))))
        if not prepack:
            rblocks = max(1, gblocks)
        nrounds = (gblocks + rblocks - 1) // rblocks
        wsize = max(wsize, _gw_work_size(&gc, Fg, tag))
    dtype = np.asarray(x).dtype
    grad_x = (np.empty if flip or phases else np.zeros)((N, C, g.H, g.W) if grad_input else (0, 0, 0, 0),
                                              dtype=dtype)
    if P == 0:
        return grad_x, np.zeros((F, Cg, g.kh, g.kw), dtype=dtype)
    grad_w = np.empty((F, Cg, g.kh, g.kw), dtype=dtype)
    cdef floating[:, :, :, ::1] gx = grad_x
    cdef floating[:, :, :, ::1] gw = grad_w
    op = "conv2d_backward"
    cdef Py_ssize_t isize = sizeof(floating)
    cdef Py_ssize_t sizes[4]
    # one chunk: grad_w is written in place, no partial sums
    sizes[0] = _nbytes(op, "grad_weight partial sums",
                       (n_chunks if n_chunks > 1 else 0) * <object> FK, isize)
    sizes[1] = _nbytes(op, "GEMM workspace", nt * <object> wsize, isize)
    sizes[2] = _nbytes(op, "packed weights", groups * <object> wtsize, isize)
    sizes[3] = _nbytes(op, "packed grad_out",
                       (groups * <object> rblocks * asz) if prepack else 0, isize)
    partial = <floating *> malloc(sizes[0])
    buf = <floating *> malloc(sizes[1])
    wtpack = <floating *> malloc(sizes[2])
    zero_bias = <floating *> calloc(Cg, sizeof(floating))
    apack = <floating *> malloc(sizes[3])
    if (partial == NULL or buf == NULL or wtpack == NULL or zero_bias == NULL
            or apack == NULL):
        free(partial)
        free(buf)
        free(wtpack)
        free(zero_bias)
        free(apack)
        raise _no_memory(op, "workspace", sizes[0] + sizes[1] + sizes[2] + sizes[3])
    # one chunk: grad_w is written in place
    gwout = &gw[0, 0, 0, 0] if n_chunks == 1 else partial
    with nogil:
        if phases:
            for gi in range(groups):
                _pack_phase_weights(&w[0, 0, 0, 0] + gi * Fg * K, &gc, Fg,
                                    wtpack + gi * wtsize)
        elif grad_input and not flip:
            for gi in range(groups):
                _pack_weights_t(&w[0, 0, 0, 0] + gi * Fg * K, &gc, Fg,
                                wtpack + gi * wtsize)
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            if flip:    # the flipped weights' panels (of mr channels), shared out
                for pw in prange(groups * cpanels, schedule='static'):
                    pg = pw // cpanels
                    _pack_weights_flip(&w[0, 0, 0, 0] + pg * Fg * K, Fg, Cg, gc.kh,
                                       gc.kw, pw - pg * cpanels, wtpack + pg * wtsize)
            if gwcols:
                # rounds of position blocks; in each, their grad_out packed
                # once, then items (chunk, column block, group), chunk ch
                # summing blocks [ch*gblocks/n_chunks, ...)
                for r in range(nrounds):
                    r0 = r * rblocks
                    r1 = min(gblocks, r0 + rblocks)
                    for it in prange((r1 - r0) * groups if prepack else 0,
                                     schedule='static'):
                        b = r0 + it // groups
                        gi = it - (it // groups) * groups
                        _gw_pack_a(&gy[0, 0, 0, 0] + gi * Fg * L, F * L, &gc, Fg, N, b,
                                   apack + (gi * rblocks + b - r0) * asz)
                    for it in prange(n_chunks * gcols * groups, schedule='dynamic'):
                        ch = it // (gcols * groups)
                        cb = (it // groups) % gcols
                        gi = it % groups
                        lo = max(r0, ch * gblocks // n_chunks)
                        hi = min(r1, (ch + 1) * gblocks // n_chunks)
                        if lo < hi:
                            _gw_item(&x[0, 0, 0, 0] + gi * Cg * HW, C * HW,
                                     &gy[0, 0, 0, 0] + gi * Fg * L, F * L, &gc, Fg, N,
                                     lo, hi, cb,
                                     (apack + (gi * rblocks + lo - r0) * asz) if prepack
                                     else NULL,
                                     lo == ch * gblocks // n_chunks, ws,
                                     gwout + ch * FK + gi * Fg * K)
            else:
                # chunk ch sums positions [ch*P/n_chunks, ...) of the batch
                for ch in prange(n_chunks, schedule='dynamic'):
                    _zero(gwout + ch * FK, FK)
                    for gi in range(groups):
                        _grad_weight(&x[0, 0, 0, 0] + gi * Cg * HW, C * HW,
                                     &gy[0, 0, 0, 0] + gi * Fg * L, F * L,
                                     &gc, Fg, ch * P // n_chunks,
                                     (ch + 1) * P // n_chunks, ws,
                                     gwout + ch * FK + gi * Fg * K)
            if flip:
                for it in prange(fitems, schedule='dynamic'):
                    for gi in range(groups):
                        _gemm_item(&gy[0, 0, 0, 0] + gi * Fg * L, F * L, N, &gf,
                                   wtpack + gi * wtsize, Cg, zero_bias, it, ws,
                                   &gx[0, 0, 0, 0] + gi * Cg * HW, &fly)
            elif phases:
                for it in prange(fitems, schedule='dynamic'):
                    for gi in range(groups):
                        _grad_input_phases(&gy[0, 0, 0, 0] + gi * Fg * L, F * L, N,
                                           &gc, wtpack + gi * wtsize, Fg, it, ws,
                                           &gx[0, 0, 0, 0] + gi * Cg * HW, C * HW)
            elif grad_input:
                for it in prange(N * groups * nblocks, schedule='dynamic'):
                    n = it // (groups * nblocks)
                    gi = (it // nblocks) % groups
                    blk = it % nblocks
                    _grad_input(&gy[0, 0, 0, 0] + (n * F + gi * Fg) * L, &gc,
                                wtpack + gi * wtsize, Fg, blk, ws,
                                &gx[0, 0, 0, 0] + (n * C + gi * Cg) * HW)
            # each element adds its chunks in order: any split over p (and
            # so any thread count) gives the same bits
            if n_chunks > 1:
                for p in prange(FK, schedule='static'):
                    acc = 0
                    for ch in range(n_chunks):
                        acc = acc + partial[ch * FK + p]
                    (&gw[0, 0, 0, 0])[p] = acc
    free(apack)
    free(partial)
    free(zero_bias)
    free(buf)
    free(wtpack)
    return (grad_x if grad_input else None), grad_w


# --------------------------------------------------------------------------
# conv2d, Winograd path (src_c/winograd.c): F(2x2, 3x3) on the GEMM
# micro-kernels; work items are blocks of 2x2 output tiles over the batch.
# --------------------------------------------------------------------------

cdef inline Py_ssize_t _wino_packed_size(Py_ssize_t F, Py_ssize_t C,
                                         floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_wino_packed_weights_size_float(F, C)
    else:
        return c.fc_wino_packed_weights_size_double(F, C)


cdef inline void _wino_pack(const floating *w, Py_ssize_t F, Py_ssize_t C,
                            Py_ssize_t panel, floating *packed) noexcept nogil:
    if floating is float:
        c.fc_wino_pack_weights_float(w, F, C, panel, packed)
    else:
        c.fc_wino_pack_weights_double(w, F, C, panel, packed)


cdef inline Py_ssize_t _wino_tiles(const fc_geom *g, Py_ssize_t N,
                                   floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_wino_tiles_float(g, N)
    else:
        return c.fc_wino_tiles_double(g, N)


cdef inline Py_ssize_t _wino_work_size(const fc_geom *g, Py_ssize_t F,
                                       floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_wino_work_size_float(g, F)
    else:
        return c.fc_wino_work_size_double(g, F)


cdef inline int _wino_tile(const floating *x, Py_ssize_t x_stride, Py_ssize_t N,
                           const fc_geom *g, const floating *upack, Py_ssize_t F,
                           const floating *bias, Py_ssize_t block,
                           floating *work, floating *y,
                           Py_ssize_t y_stride) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_wino_tile_float(x, x_stride, N, g, upack, F, bias,
                                           block, work, y, y_stride)
    else:
        return c.fc_conv2d_wino_tile_double(x, x_stride, N, g, upack, F, bias,
                                            block, work, y, y_stride)


def conv2d_winograd(const floating[:, :, :, ::1] x,
                    const floating[:, :, :, ::1] w,
                    const floating[::1] b, g):
    """Forward 3x3 stride-1 convolution by Winograd F(2x2, 3x3).
    # IN x, w, b  # OUT new"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef Py_ssize_t psize = _wino_packed_size(Fg, Cg, tag)
    cdef Py_ssize_t nblocks = _wino_tiles(&gc, N, tag)   # over the batch
    cdef Py_ssize_t wsize = _wino_work_size(&gc, Fg, tag)
    cdef Py_ssize_t fpanels = _panels(Fg, tag)
    cdef Py_ssize_t item, gi, pg, pw
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, Cg * 9)))
    cdef floating *packed = NULL
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef Py_ssize_t pbytes = _nbytes("conv2d", "Winograd filters",
                                     groups * <object> psize, sizeof(floating))
    cdef Py_ssize_t wbytes = _nbytes("conv2d", "Winograd workspace",
                                     nt * <object> wsize, sizeof(floating))
    out = np.empty((N, F, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, ::1] y = out
    if out.size == 0:
        return out
    packed = <floating *> malloc(pbytes)
    buf = <floating *> malloc(wbytes)
    if packed == NULL or buf == NULL:
        free(packed)
        free(buf)
        raise _no_memory("conv2d", "Winograd workspace", pbytes + wbytes)
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            # the transformed filters, panel by panel (the loop ends in a barrier)
            for pw in prange(groups * fpanels, schedule='static'):
                pg = pw // fpanels
                _wino_pack(&w[0, 0, 0, 0] + pg * Fg * Cg * 9, Fg, Cg, pw - pg * fpanels,
                           packed + pg * psize)
            for item in prange(nblocks, schedule='dynamic'):
                for gi in range(groups):
                    _wino_tile(&x[0, 0, 0, 0] + gi * Cg * HW, C * HW, N, &gc,
                               packed + gi * psize, Fg, &b[0] + gi * Fg, item, ws,
                               &y[0, 0, 0, 0] + gi * Fg * L, F * L)
    free(packed)
    free(buf)
    return out


# --------------------------------------------------------------------------
# conv2d, direct path: one output plane (n, f) / input plane (n, c) / filter
# f per iteration.
# --------------------------------------------------------------------------

def conv2d_direct(const floating[:, :, :, ::1] x,
                  const floating[:, :, :, ::1] w,
                  const floating[::1] b, g):
    """Forward convolution by the direct kernel.  # IN x, w, b  # OUT new"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t K = Cg * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef Py_ssize_t wsize = _direct_work_size(&gc, 1, tag)
    cdef Py_ssize_t p, n, f
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef Py_ssize_t wbytes = _nbytes("conv2d", "direct workspace",
                                     nt * <object> wsize, sizeof(floating))
    out = np.empty((N, F, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, ::1] y = out
    if out.size == 0:
        return out
    buf = <floating *> malloc(wbytes)
    if buf == NULL:
        raise _no_memory("conv2d", "direct workspace", wbytes)
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            for p in prange(N * F, schedule='dynamic'):
                n = p // F
                f = p - n * F
                _direct(&x[0, 0, 0, 0] + (n * C + (f // Fg) * Cg) * HW,
                        &w[0, 0, 0, 0] + f * K, b[f], &gc, ws,
                        &y[0, 0, 0, 0] + p * L)
    free(buf)
    return out


def conv2d_direct_backward(const floating[:, :, :, ::1] gy,
                           const floating[:, :, :, ::1] x,
                           const floating[:, :, :, ::1] w, g):
    """(grad_x, grad_weight) by the direct kernels.  # IN all"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups, KK = g.kh * g.kw
    cdef Py_ssize_t K = Cg * KK, L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef Py_ssize_t wsize = _direct_work_size(&gc, Fg, tag)
    cdef Py_ssize_t p, n, ch, gi, f
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef Py_ssize_t wbytes = _nbytes("conv2d_backward", "direct workspace",
                                     nt * <object> wsize, sizeof(floating))
    dtype = np.asarray(x).dtype
    if N == 0 or L == 0:
        return (np.zeros((N, C, g.H, g.W), dtype=dtype),
                np.zeros((F, Cg, g.kh, g.kw), dtype=dtype))
    grad_x = np.empty((N, C, g.H, g.W), dtype=dtype)    # every plane written
    grad_w = np.zeros((F, Cg, g.kh, g.kw), dtype=dtype)
    cdef floating[:, :, :, ::1] gx = grad_x
    cdef floating[:, :, :, ::1] gw = grad_w
    buf = <floating *> malloc(wbytes)
    if buf == NULL:
        raise _no_memory("conv2d_backward", "direct workspace", wbytes)
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            for p in prange(N * C, schedule='dynamic'):
                n = p // C
                ch = p - n * C
                gi = ch // Cg
                _direct_grad_input(&gy[0, 0, 0, 0] + (n * F + gi * Fg) * L,
                                   &w[0, 0, 0, 0] + gi * Fg * K + (ch - gi * Cg) * KK,
                                   Fg, &gc, ws, &gx[0, 0, 0, 0] + p * HW)
            # Each filter sums over the images in order: no shared reduction.
            for f in prange(F, schedule='dynamic'):
                for n in range(N):
                    _direct_grad_weight(&x[0, 0, 0, 0] + (n * C + (f // Fg) * Cg) * HW,
                                        &gy[0, 0, 0, 0] + (n * F + f) * L, &gc, ws,
                                        &gw[0, 0, 0, 0] + f * K)
    free(buf)
    return grad_x, grad_w


def bias_grad(const floating[:, :, :, ::1] gy):
    """grad_bias[f] = sum of gy[:, f]: double partial sums, fixed order."""
    cdef Py_ssize_t N = gy.shape[0], F = gy.shape[1]
    cdef Py_ssize_t L = gy.shape[2] * gy.shape[3], f
    out = np.zeros(F, dtype=np.asarray(gy).dtype)
    cdef floating[::1] gb = out
    if N == 0 or L == 0 or F == 0:
        return out
    with nogil:
        for f in prange(F, schedule='dynamic', num_threads=_threads_for(N * F * L)):
            gb[f] = <floating> _bias_grad(&gy[0, 0, 0, 0] + f * L, N, F * L, L)
    return out


# --------------------------------------------------------------------------
# pooling: one (n, c) plane per iteration
# --------------------------------------------------------------------------

def max_pool2d(const floating[:, :, :, ::1] x, g, bint return_indices):
    """Window maxima and, if asked, their flat indices.  # IN x  # OUT new"""
    cdef fc_geom gc = _geom(g, 1)
    cdef Py_ssize_t P = g.N * g.C, HW = g.H * g.W, L = g.Ho * g.Wo, p
    cdef Py_ssize_t KK = _mul(g.kh, g.kw)      # may exceed HW (ceil_mode)
    out = np.empty((g.N, g.C, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    idx = np.empty((g.N, g.C, g.Ho, g.Wo) if return_indices else (0, 0, 0, 0),
                   dtype=np.int64)
    cdef floating[:, :, :, ::1] y = out
    cdef int64_t[:, :, :, ::1] ind = idx
    if out.size == 0:
        return (out, idx) if return_indices else out
    with nogil:
        for p in prange(P, schedule='dynamic', chunksize=_plane_chunk(HW + L),
                        num_threads=_threads_for(_mul(P, _add(HW, _mul(L, KK))))):
            _max_pool(&x[0, 0, 0, 0] + p * HW, &gc, &y[0, 0, 0, 0] + p * L,
                      (&ind[0, 0, 0, 0] + p * L) if return_indices else NULL)
    return (out, idx) if return_indices else out


def max_pool2d_backward(const floating[:, :, :, ::1] gy,
                        const int64_t[:, :, :, ::1] indices, input_shape):
    """Scatter-add gy through the indices.  Returns (grad_x, n_bad_planes)."""
    cdef Py_ssize_t N = input_shape[0], C = input_shape[1]
    cdef Py_ssize_t HW = input_shape[2] * input_shape[3]
    cdef Py_ssize_t L = gy.shape[2] * gy.shape[3], p
    cdef int bad = 0
    if gy.size == 0:
        return np.zeros(tuple(input_shape), dtype=np.asarray(gy).dtype), 0
    out = np.empty(tuple(input_shape), dtype=np.asarray(gy).dtype)
    cdef floating[:, :, :, ::1] gx = out
    if out.size == 0:
        return out, 1          # every index is out of range of an empty plane
    with nogil:
        for p in prange(N * C, schedule='dynamic', chunksize=_plane_chunk(HW + L),
                        num_threads=_threads_for(N * C * (HW + L))):
            _zero(&gx[0, 0, 0, 0] + p * HW, HW)
            bad += _max_pool_backward(&gy[0, 0, 0, 0] + p * L,
                                      &indices[0, 0, 0, 0] + p * L, L, HW,
                                      &gx[0, 0, 0, 0] + p * HW) != 0
    return out, bad


def avg_pool2d(const floating[:, :, :, ::1] x, g, bint count_include_pad):
    """Window means.  # IN x  # OUT new"""
    cdef fc_geom gc = _geom(g, 1)
    cdef Py_ssize_t P = g.N * g.C, HW = g.H * g.W, L = g.Ho * g.Wo, p
    cdef Py_ssize_t KK = _mul(g.kh, g.kw)      # may exceed HW (ceil_mode)
    out = np.empty((g.N, g.C, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, ::1] y = out
    if out.size == 0:
        return out
    with nogil:
        for p in prange(P, schedule='dynamic', chunksize=_plane_chunk(HW + L),
                        num_threads=_threads_for(_mul(P, _add(HW, _mul(L, KK))))):
            _avg_pool(&x[0, 0, 0, 0] + p * HW, &gc, count_include_pad,
                      &y[0, 0, 0, 0] + p * L)
    return out


def avg_pool2d_backward(const floating[:, :, :, ::1] gy, g,
                        bint count_include_pad):
    """Spread each gradient evenly over its window.  # IN gy  # OUT new"""
    cdef fc_geom gc = _geom(g, 1)
    cdef Py_ssize_t P = g.N * g.C, HW = g.H * g.W, L = g.Ho * g.Wo, p
    cdef Py_ssize_t KK = _mul(g.kh, g.kw)      # may exceed HW (ceil_mode)
    if gy.size == 0:
        return np.zeros((g.N, g.C, g.H, g.W), dtype=np.asarray(gy).dtype)
    out = np.empty((g.N, g.C, g.H, g.W), dtype=np.asarray(gy).dtype)
    cdef floating[:, :, :, ::1] gx = out
    if out.size == 0:
        return out
    with nogil:
        for p in prange(P, schedule='dynamic', chunksize=_plane_chunk(HW + L),
                        num_threads=_threads_for(_mul(P, _add(HW, _mul(L, KK))))):
            _zero(&gx[0, 0, 0, 0] + p * HW, HW)
            _avg_pool_backward(&gy[0, 0, 0, 0] + p * L, &gc, count_include_pad,
                               &gx[0, 0, 0, 0] + p * HW)
    return out


# ==========================================================================
# 3-D (volumetric) kernels on NCDHW arrays; geometry from
# _validation.VolGeometry / VolConvGeometry.
# ==========================================================================

from fastconv._csrc cimport fc_vgeom


cdef fc_vgeom _vgeom(g, Py_ssize_t channels):
    """C view of a _validation.VolGeometry, for ``channels`` input channels."""
    cdef fc_vgeom r
    r.C = channels
    r.D = g.D
    r.H = g.H
    r.W = g.W
    r.kd = g.kd
    r.kh = g.kh
    r.kw = g.kw
    r.sd = g.sd
    r.sh = g.sh
    r.sw = g.sw
    r.pf = g.pf
    r.pt = g.pt
    r.pl = g.pl
    r.dd = g.dd
    r.dh = g.dh
    r.dw = g.dw
    r.Do = g.Do
    r.Ho = g.Ho
    r.Wo = g.Wo
    return r


cdef inline int _max_pool3d(const floating *x, const fc_vgeom *g, floating *y,
                            int64_t *idx) noexcept nogil:
    if floating is float:
        return c.fc_max_pool3d_float(x, g, y, idx)
    else:
        return c.fc_max_pool3d_double(x, g, y, idx)


cdef inline int _avg_pool3d(const floating *x, const fc_vgeom *g,
                            int count_include_pad, floating *y) noexcept nogil:
    if floating is float:
        return c.fc_avg_pool3d_float(x, g, count_include_pad, y)
    else:
        return c.fc_avg_pool3d_double(x, g, count_include_pad, y)


cdef inline int _avg_pool3d_backward(const floating *gy, const fc_vgeom *g,
                                     int count_include_pad,
                                     floating *gx) noexcept nogil:
    if floating is float:
        return c.fc_avg_pool3d_backward_float(gy, g, count_include_pad, gx)
    else:
        return c.fc_avg_pool3d_backward_double(gy, g, count_include_pad, gx)


def max_pool3d(const floating[:, :, :, :, ::1] x, g, bint return_indices):
    """Window maxima and, if asked, their flat indices.  # IN x  # OUT new"""
    cdef fc_vgeom gc = _vgeom(g, 1)
    cdef Py_ssize_t P = g.N * g.C, DHW = g.D * g.H * g.W
    cdef Py_ssize_t L = g.Do * g.Ho * g.Wo, KK = _mul(g.kd, _mul(g.kh, g.kw)), p
    shape = (g.N, g.C, g.Do, g.Ho, g.Wo)
    out = np.empty(shape, dtype=np.asarray(x).dtype)
    idx = np.empty(shape if return_indices else (0, 0, 0, 0, 0), dtype=np.int64)
    cdef floating[:, :, :, :, ::1] y = out
    cdef int64_t[:, :, :, :, ::1] ind = idx
    if out.size == 0:
        return (out, idx) if return_indices else out
    with nogil:
        for p in prange(P, schedule='dynamic', chunksize=_plane_chunk(DHW + L),
                        num_threads=_threads_for(_mul(P, _add(DHW, _mul(L, KK))))):
            _max_pool3d(&x[0, 0, 0, 0, 0] + p * DHW, &gc,
                        &y[0, 0, 0, 0, 0] + p * L,
                        (&ind[0, 0, 0, 0, 0] + p * L) if return_indices else NULL)
    return (out, idx) if return_indices else out


def max_pool3d_backward(const floating[:, :, :, :, ::1] gy,
                        const int64_t[:, :, :, :, ::1] indices, input_shape):
    """Scatter-add gy through the indices.  Returns (grad_x, n_bad_volumes)."""
    cdef Py_ssize_t N = input_shape[0], C = input_shape[1]
    cdef Py_ssize_t DHW = input_shape[2] * input_shape[3] * input_shape[4]
    cdef Py_ssize_t L = gy.shape[2] * gy.shape[3] * gy.shape[4], p
    cdef int bad = 0
    if gy.size == 0:
        return np.zeros(tuple(input_shape), dtype=np.asarray(gy).dtype), 0
    out = np.empty(tuple(input_shape), dtype=np.asarray(gy).dtype)
    cdef floating[:, :, :, :, ::1] gx = out
    if out.size == 0:
        return out, 1          # every index is out of range of an empty volume
    with nogil:
        for p in prange(N * C, schedule='dynamic', chunksize=_plane_chunk(DHW + L),
                        num_threads=_threads_for(N * C * (DHW + L))):
            _zero(&gx[0, 0, 0, 0, 0] + p * DHW, DHW)
            bad += _max_pool_backward(&gy[0, 0, 0, 0, 0] + p * L,
                                      &indices[0, 0, 0, 0, 0] + p * L, L, DHW,
                                      &gx[0, 0, 0, 0, 0] + p * DHW) != 0
    return out, bad


def avg_pool3d(const floating[:, :, :, :, ::1] x, g, bint count_include_pad):
    """Window means.  # IN x  # OUT new"""
    cdef fc_vgeom gc = _vgeom(g, 1)
    cdef Py_ssize_t P = g.N * g.C, DHW = g.D * g.H * g.W
    cdef Py_ssize_t L = g.Do * g.Ho * g.Wo, KK = _mul(g.kd, _mul(g.kh, g.kw)), p
    out = np.empty((g.N, g.C, g.Do, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, :, ::1] y = out
    if out.size == 0:
        return out
    with nogil:
        for p in prange(P, schedule='dynamic', chunksize=_plane_chunk(DHW + L),
                        num_threads=_threads_for(_mul(P, _add(DHW, _mul(L, KK))))):
            _avg_pool3d(&x[0, 0, 0, 0, 0] + p * DHW, &gc, count_include_pad,
                        &y[0, 0, 0, 0, 0] + p * L)
    return out


def avg_pool3d_backward(const floating[:, :, :, :, ::1] gy, g,
                        bint count_include_pad):
    """Spread each gradient evenly over its window.  # IN gy  # OUT new"""
    cdef fc_vgeom gc = _vgeom(g, 1)
    cdef Py_ssize_t P = g.N * g.C, DHW = g.D * g.H * g.W
    cdef Py_ssize_t L = g.Do * g.Ho * g.Wo, KK = _mul(g.kd, _mul(g.kh, g.kw)), p
    if gy.size == 0:
        return np.zeros((g.N, g.C, g.D, g.H, g.W), dtype=np.asarray(gy).dtype)
    out = np.empty((g.N, g.C, g.D, g.H, g.W), dtype=np.asarray(gy).dtype)
    cdef floating[:, :, :, :, ::1] gx = out
    if out.size == 0:
        return out
    with nogil:
        for p in prange(P, schedule='dynamic', chunksize=_plane_chunk(DHW + L),
                        num_threads=_threads_for(_mul(P, _add(DHW, _mul(L, KK))))):
            _zero(&gx[0, 0, 0, 0, 0] + p * DHW, DHW)
            _avg_pool3d_backward(&gy[0, 0, 0, 0, 0] + p * L, &gc,
                                 count_include_pad, &gx[0, 0, 0, 0, 0] + p * DHW)
    return out


# ==========================================================================
# locally connected layer (src_c/local.c): unshared weights, one filter bank
# per output position.  The input is first copied, zero padded, to an
# image-innermost layout xt (C, Hp, Wp, N), in parallel over its rows.  Work
# items are then output rows forward; backward, bands of output rows whose
# input windows overlap only their neighbours', in two phases (even bands,
# then odd), so the input gradient accumulates in a fixed order and
# grad_weight / grad_bias are per position: bitwise the same for any thread
# count.
# --------------------------------------------------------------------------

cdef inline int _lc_pack_row(const floating *x, const fc_geom *g, Py_ssize_t N,
                             Py_ssize_t row, floating *xt) noexcept nogil:
    if floating is float:
        return c.fc_lc_pack_row_float(x, g, N, row, xt)
    else:
        return c.fc_lc_pack_row_double(x, g, N, row, xt)


cdef inline int _lc_unpack_row(const floating *xt, const fc_geom *g,
                               Py_ssize_t N, Py_ssize_t row,
                               floating *x) noexcept nogil:
    if floating is float:
        return c.fc_lc_unpack_row_float(xt, g, N, row, x)
    else:
        return c.fc_lc_unpack_row_double(xt, g, N, row, x)


cdef inline int _lc_forward(const floating *xt, const fc_geom *gp,
                            const Py_ssize_t *off, Py_ssize_t N,
                            const floating *w, const floating *b, Py_ssize_t F,
                            Py_ssize_t l0, Py_ssize_t l1, floating *work,
                            floating *y) noexcept nogil:
    if floating is float:
        return c.fc_lc_forward_float(xt, gp, off, N, w, b, F, l0, l1, work, y)
    else:
        return c.fc_lc_forward_double(xt, gp, off, N, w, b, F, l0, l1, work, y)


cdef inline int _lc_backward(const floating *gy, const floating *xt,
                             const fc_geom *gp, const Py_ssize_t *off,
                             Py_ssize_t N, const floating *w, Py_ssize_t F,
                             Py_ssize_t l0, Py_ssize_t l1, floating *work,
                             floating *gxt, floating *gw,
                             floating *gb) noexcept nogil:
    if floating is float:
        return c.fc_lc_backward_float(gy, xt, gp, off, N, w, F, l0, l1, work,
                                      gxt, gw, gb)
    else:
        return c.fc_lc_backward_double(gy, xt, gp, off, N, w, F, l0, l1, work,
                                       gxt, gw, gb)


cdef _lc_pack(const floating[:, :, :, ::1] x, fc_geom *g, fc_geom *gp, int nt):
    """The padded, image-innermost copy xt (C, Hp, Wp, N) of x."""
    cdef Py_ssize_t N = x.shape[0], rows = g.C * gp.H, row
    xt_arr = np.empty((g.C, gp.H, gp.W, N), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, ::1] xt = xt_arr
    with nogil:
        for row in prange(rows, schedule='static', num_threads=nt):
            _lc_pack_row(&x[0, 0, 0, 0], g, N, row, &xt[0, 0, 0, 0])
    return xt_arr


def locally_connected2d(const floating[:, :, :, ::1] x,
                        const floating[:, :, :, :, :, ::1] w,
                        const floating[:, :, ::1] b, g):
    """Forward pass; b may be None.  # IN x, w, b  # OUT new array"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, L = g.Ho * g.Wo
    cdef Py_ssize_t K = C * g.kh * g.kw, Ho = g.Ho, Wo = g.Wo, r
    cdef fc_geom gc = _geom(g, C)
    cdef fc_geom gp
    c.fc_lc_padded_geom(&gc, &gp)
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef Py_ssize_t wsize = c.fc_lc_work_size(&gc, N, F)
    cdef Py_ssize_t obytes = _nbytes("locally_connected2d", "tap offsets", K,
                                     sizeof(Py_ssize_t))
    cdef Py_ssize_t wbytes = _nbytes("locally_connected2d", "workspace",
                                     nt * <object> wsize, sizeof(floating))
    cdef const floating *bp = NULL
    if b is not None:
        bp = &b[0, 0, 0]
    out = np.empty((N, F, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, ::1] y = out
    if out.size == 0:
        return out
    cdef const floating[:, :, :, ::1] xt = _lc_pack(x, &gc, &gp, nt)
    cdef Py_ssize_t *off = <Py_ssize_t *> malloc(obytes)
    cdef floating *buf = <floating *> malloc(wbytes)
    cdef floating *ws = NULL
    if off == NULL or buf == NULL:
        free(off)
        free(buf)
        raise _no_memory("locally_connected2d", "workspace", obytes + wbytes)
    with nogil:
        c.fc_lc_offsets(&gp, N, off)
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            for r in prange(Ho, schedule='dynamic'):
                _lc_forward(&xt[0, 0, 0, 0], &gp, off, N, &w[0, 0, 0, 0, 0, 0],
                            bp, F, r * Wo, (r + 1) * Wo, ws, &y[0, 0, 0, 0])
    free(off)
    free(buf)
    return out


def locally_connected2d_backward(const floating[:, :, :, ::1] gy,
                                 const floating[:, :, :, ::1] x,
                                 const floating[:, :, :, :, :, ::1] w, g):
    """(grad_x, grad_weight, grad_bias).  # IN all  # OUT new arrays"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, L = g.Ho * g.Wo, Ho = g.Ho
    cdef Py_ssize_t K = C * g.kh * g.kw, Wo = g.Wo, H = g.H, it, b0, b1, row
    cdef fc_geom gc = _geom(g, C)
    cdef fc_geom gp
    c.fc_lc_padded_geom(&gc, &gp)
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef Py_ssize_t wsize = c.fc_lc_work_size(&gc, N, F)
    cdef Py_ssize_t obytes = _nbytes("locally_connected2d_backward",
                                     "tap offsets", K, sizeof(Py_ssize_t))
    cdef Py_ssize_t wbytes = _nbytes("locally_connected2d_backward",
                                     "workspace", nt * <object> wsize,
                                     sizeof(floating))
    cdef Py_ssize_t band = c.fc_lc_band_rows(&gc)
    cdef Py_ssize_t nbands = (Ho + band - 1) // band
    dtype = np.asarray(x).dtype
    grad_x = np.empty((N, C, g.H, g.W), dtype=dtype)
    grad_w = np.zeros(np.asarray(w).shape, dtype=dtype)
    grad_b = np.zeros((F, g.Ho, g.Wo), dtype=dtype)
    if N == 0:
        return grad_x, grad_w, grad_b
    cdef floating[:, :, :, ::1] gx = grad_x
    cdef floating[:, :, :, :, :, ::1] gw = grad_w
    cdef floating[:, :, ::1] gb = grad_b
    cdef const floating[:, :, :, ::1] xt = _lc_pack(x, &gc, &gp, nt)
    gxt_arr = np.zeros((C, gp.H, gp.W, N), dtype=dtype)
    cdef floating[:, :, :, ::1] gxt = gxt_arr
    cdef Py_ssize_t *off = <Py_ssize_t *> malloc(obytes)
    cdef floating *buf = <floating *> malloc(wbytes)
    cdef floating *ws = NULL
    if off == NULL or buf == NULL:
        free(off)
        free(buf)
        raise _no_memory("locally_connected2d_backward", "workspace",
                         obytes + wbytes)
    with nogil:
        c.fc_lc_offsets(&gp, N, off)
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            # phase 0: even bands (disjoint input rows), then phase 1: odd
            for it in prange((nbands + 1) // 2, schedule='dynamic'):
                b0 = 2 * it * band
                b1 = min(b0 + band, Ho)
                _lc_backward(&gy[0, 0, 0, 0], &xt[0, 0, 0, 0], &gp, off, N,
                             &w[0, 0, 0, 0, 0, 0], F, b0 * Wo, b1 * Wo, ws,
                             &gxt[0, 0, 0, 0], &gw[0, 0, 0, 0, 0, 0],
                             &gb[0, 0, 0])
            for it in prange(nbands // 2, schedule='dynamic'):
                b0 = (2 * it + 1) * band
                b1 = min(b0 + band, Ho)
                _lc_backward(&gy[0, 0, 0, 0], &xt[0, 0, 0, 0], &gp, off, N,
                             &w[0, 0, 0, 0, 0, 0], F, b0 * Wo, b1 * Wo, ws,
                             &gxt[0, 0, 0, 0], &gw[0, 0, 0, 0, 0, 0],
                             &gb[0, 0, 0])
            for row in prange(C * H, schedule='static'):
                _lc_unpack_row(&gxt[0, 0, 0, 0], &gc, N, row, &gx[0, 0, 0, 0])
    free(off)
    free(buf)
    return grad_x, grad_w, grad_b
