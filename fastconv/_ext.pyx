# cython: language_level=3
"""Compiled kernels of fastconv: dtype dispatch, allocation and threading.

The functions here trust their arguments: 4-D C-contiguous arrays of one
float dtype and a geometry checked by fastconv/_validation.py.  They allocate
the outputs with NumPy and the bounded per-thread workspaces with malloc,
release the GIL, and run the C kernels of src_c/ over independent work items
(images, tiles, planes) with OpenMP.  Call them through fastconv's public
functions, never directly.
"""
import threading

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


cdef inline Py_ssize_t _lines(Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    """n elements rounded up to whole 64-byte lines, plus one line."""
    cdef Py_ssize_t per = 64 // itemsize
    return (n + per - 1) // per * per + per


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


# Scratch buffers reused from call to call: a fresh malloc of megabytes
# costs a page fault per 4 KiB on first touch, often more than the
# arithmetic (a layer's backward pass took 60% longer).  A small pool of
# free buffers (taken and given back under a lock, so concurrent calls from
# several Python threads each get their own).
_POOL_LOCK = threading.Lock()
_POOL = []                  # free buffers, smallest first
POOL_BUFFERS = 4
POOL_BYTES = 256 << 20


def _ws_take(nbytes):
    """A scratch buffer (uint8 ndarray) of at least nbytes bytes from a
    64-byte boundary on (_ws_ptr); nbytes a Python int."""
    nbytes += 64
    with _POOL_LOCK:
        for i in range(len(_POOL)):
            if _POOL[i].nbytes >= nbytes:
                return _POOL.pop(i)
    try:
        return np.empty(nbytes, dtype=np.uint8)
    except MemoryError:
        raise MemoryError(f"fastconv: could not allocate {nbytes} bytes of workspace") from None
    except ValueError:              # more than an array can hold
        raise MemoryError(f"fastconv: {nbytes} bytes of workspace is more than can be "
                          f"allocated") from None


def _ws_give(buf):
    """Return a buffer of _ws_take to the pool (the largest are kept)."""
    with _POOL_LOCK:
        _POOL.append(buf)
        _POOL.sort(key=lambda b: b.nbytes)
        while len(_POOL) > POOL_BUFFERS or sum(b.nbytes for b in _POOL) > POOL_BYTES:
            _POOL.pop(0)


cdef inline void *_ws_ptr(buf):
    """The buffer's first 64-byte boundary: the kernels' 64-byte vectors
    then never straddle two cache lines (which cost up to 15%, varying from
    process to process with malloc's alignment)."""
    cdef unsigned char[::1] mv = buf
    cdef size_t a = <size_t> &mv[0]
    return <void *> ((a + 63) & ~(<size_t> 63))


def _aligned_empty(n, dtype):
    """A new 1-D array of n elements starting on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + 64, dtype=np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip:skip + n * dtype.itemsize].view(dtype)


def _output(out, shape, dtype, name, aligned=False):
    """out if given (checked: a writeable C-contiguous ndarray of this shape
    and dtype), else a new array (1-D and on a 64-byte boundary if
    aligned)."""
    if out is None:
        return _aligned_empty(shape[0], dtype) if aligned else np.empty(shape, dtype=dtype)
    if not (isinstance(out, np.ndarray) and out.shape == tuple(shape)
            and out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"{name}: expected a writeable C-contiguous array of shape "
                         f"{tuple(shape)} and dtype {np.dtype(dtype)}, got "
                         f"{getattr(out, 'shape', type(out).__name__)}")
    return out


def _check_packed(Py_ssize_t have, Py_ssize_t want, kind):
    if have != want:
        raise ValueError(
            f"packed filters hold {have} values where this layer's {kind} filters "
            f"take {want}: pack them with this plan (ConvPlan.pack)")


# --------------------------------------------------------------------------
# fused-type dispatch to the C kernels
# --------------------------------------------------------------------------

cdef inline void _im2col(const floating *x, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, floating *cols) noexcept nogil:
    if floating is float:
        c.fc_im2col_float(x, g, l0, l1, cols)
    else:
        c.fc_im2col_double(x, g, l0, l1, cols)


cdef inline void _col2im(const floating *cols, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, floating *x) noexcept nogil:
    if floating is float:
        c.fc_col2im_float(cols, g, l0, l1, x)
    else:
        c.fc_col2im_double(cols, g, l0, l1, x)


cdef inline Py_ssize_t _direct_work_size(const fc_geom *g, Py_ssize_t n_filters,
                                         floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_conv2d_direct_work_size_float(g, n_filters)
    else:
        return c.fc_conv2d_direct_work_size_double(g, n_filters)


cdef inline void _direct(const floating *x, const floating *w, floating bias,
                         int relu, const fc_geom *g, floating *work,
                         floating *y) noexcept nogil:
    if floating is float:
        c.fc_conv2d_direct_float(x, w, bias, relu, g, work, y)
    else:
        c.fc_conv2d_direct_double(x, w, bias, relu, g, work, y)


cdef inline void _direct_grad_input(const floating *gy, const floating *w,
                                    Py_ssize_t n_filters, const fc_geom *g,
                                    floating *work, floating *gx) noexcept nogil:
    if floating is float:
        c.fc_conv2d_direct_grad_input_float(gy, w, n_filters, g, work, gx)
    else:
        c.fc_conv2d_direct_grad_input_double(gy, w, n_filters, g, work, gx)


cdef inline void _direct_grad_weight(const floating *x, const floating *gy,
                                     const fc_geom *g, floating *work,
                                     floating *gw) noexcept nogil:
    if floating is float:
        c.fc_conv2d_direct_grad_weight_float(x, gy, g, work, gw)
    else:
        c.fc_conv2d_direct_grad_weight_double(x, gy, g, work, gw)


cdef inline double _bias_grad(const floating *gy, Py_ssize_t N,
                              Py_ssize_t stride, Py_ssize_t L) noexcept nogil:
    if floating is float:
        return c.fc_bias_grad_float(gy, N, stride, L)
    else:
        return c.fc_bias_grad_double(gy, N, stride, L)


cdef inline void _max_pool(const floating *x, const fc_geom *g, floating *y,
                           int64_t *idx) noexcept nogil:
    if floating is float:
        c.fc_max_pool2d_float(x, g, y, idx)
    else:
        c.fc_max_pool2d_double(x, g, y, idx)


cdef inline int _max_pool_backward(const floating *gy, const int64_t *idx,
                                   Py_ssize_t n_out, Py_ssize_t hw,
                                   floating *gx) noexcept nogil:
    if floating is float:
        return c.fc_max_pool2d_backward_float(gy, idx, n_out, hw, gx)
    else:
        return c.fc_max_pool2d_backward_double(gy, idx, n_out, hw, gx)


cdef inline void _avg_pool(const floating *x, const fc_geom *g, int count_include_pad,
                           floating *y) noexcept nogil:
    if floating is float:
        c.fc_avg_pool2d_float(x, g, count_include_pad, y)
    else:
        c.fc_avg_pool2d_double(x, g, count_include_pad, y)


cdef inline void _avg_pool_backward(const floating *gy, const fc_geom *g,
                                    int count_include_pad, floating *gx) noexcept nogil:
    if floating is float:
        c.fc_avg_pool2d_backward_float(gy, g, count_include_pad, gx)
    else:
        c.fc_avg_pool2d_backward_double(gy, g, count_include_pad, gx)


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


cdef inline void _gemm_item(const floating *x, Py_ssize_t x_stride, Py_ssize_t N,
                            const fc_geom *g, const floating *wpack, Py_ssize_t F,
                            const floating *bias, int relu, Py_ssize_t item,
                            floating *work, floating *y,
                            const fc_ylayout *ly) noexcept nogil:
    if floating is float:
        c.fc_conv2d_gemm_item_float(x, x_stride, N, g, wpack, F, bias, relu,
                                    item, work, y, ly)
    else:
        c.fc_conv2d_gemm_item_double(x, x_stride, N, g, wpack, F, bias, relu,
                                     item, work, y, ly)


cdef inline fc_ylayout _dense(Py_ssize_t img, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """The plain layout of (F, Ho, Wo) output planes, images img apart."""
    cdef fc_ylayout r
    r.img = img
    r.plane = Ho * Wo
    r.row = Wo
    r.col = 1
    return r


def gemm_pack(const floating[:, :, :, ::1] w, Py_ssize_t groups, out=None):
    """The forward GEMM's packed filters of every group, (groups * size,),
    into out if given (checked by the caller).  # IN w  # OUT out or new"""
    cdef Py_ssize_t F = w.shape[0], Fg = F // groups
    cdef Py_ssize_t K = w.shape[1] * w.shape[2] * w.shape[3]
    cdef floating *tag = NULL
    cdef Py_ssize_t psize = _packed_size(Fg, K, tag)
    cdef Py_ssize_t mr = _packed_size(1, 1, tag)    # filters per weight panel
    cdef Py_ssize_t fpanels = _panels(Fg, tag)
    cdef Py_ssize_t pw, pg, f0
    out = _output(out, (groups * psize,), np.asarray(w).dtype, "packed filters", True)
    cdef floating[::1] packed = out
    if out.size == 0:
        return out
    with nogil:
        for pw in prange(groups * fpanels, schedule='static',
                         num_threads=_threads_for(F * K * 8)):
            pg = pw // fpanels
            f0 = (pw - pg * fpanels) * mr
            _pack_weights(&w[0, 0, 0, 0] + (pg * Fg + f0) * K, min(mr, Fg - f0),
                          K, &packed[0] + pg * psize + f0 * K)
    return out


def conv2d_gemm(const floating[:, :, :, ::1] x, const floating[::1] packed,
                b, g, bint relu, floating[:, :, :, ::1] y):
    """Forward convolution by the packed GEMM into y, from gemm_pack's
    filters; b the bias or None.  # IN x, packed, b  # OUT y"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t K = Cg * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef Py_ssize_t psize = _packed_size(Fg, K, tag)
    cdef fc_ylayout ly = _dense(F * L, g.Ho, g.Wo)
    cdef Py_ssize_t nitems = _items(&gc, N, &ly, tag)   # tiles over the batch
    cdef Py_ssize_t wsize = _work_size(&gc, Fg, &ly, tag)
    cdef Py_ssize_t item, gi
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef floating *zeros = NULL
    cdef const floating *bp = NULL
    cdef const floating[::1] bv
    _check_packed(packed.shape[0], groups * psize, "GEMM")
    if N * F * L == 0:
        return
    if b is not None:
        bv = b
        bp = &bv[0]
    wbuf = _ws_take(_nbytes("conv2d", "GEMM workspace", nt * <object> wsize,
                            sizeof(floating)))
    buf = <floating *> _ws_ptr(wbuf)
    zeros = <floating *> calloc(F, sizeof(floating))
    if zeros == NULL:
        raise MemoryError("conv2d: could not allocate the GEMM workspace")
    if bp == NULL:
        bp = zeros
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            for item in prange(nitems, schedule='dynamic'):
                for gi in range(groups):
                    _gemm_item(&x[0, 0, 0, 0] + gi * Cg * HW, C * HW, N, &gc,
                               &packed[0] + gi * psize, Fg, bp + gi * Fg, relu, item,
                               ws, &y[0, 0, 0, 0] + gi * Fg * L, &ly)
    free(zeros)
    _ws_give(wbuf)


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


cdef inline void _grad_input(const floating *gy, const fc_geom *g,
                             const floating *wtpack, Py_ssize_t F,
                             Py_ssize_t block, floating *work,
                             floating *gx) noexcept nogil:
    if floating is float:
        c.fc_conv2d_gemm_grad_input_float(gy, g, wtpack, F, block, work, gx)
    else:
        c.fc_conv2d_gemm_grad_input_double(gy, g, wtpack, F, block, work, gx)


cdef inline void _grad_weight(const floating *x, Py_ssize_t x_stride,
                              const floating *gy, Py_ssize_t gy_stride,
                              const fc_geom *g, Py_ssize_t F, Py_ssize_t p0,
                              Py_ssize_t p1, floating *work,
                              floating *gw) noexcept nogil:
    if floating is float:
        c.fc_conv2d_gemm_grad_weight_float(x, x_stride, gy, gy_stride, g,
                                           F, p0, p1, work, gw)
    else:
        c.fc_conv2d_gemm_grad_weight_double(x, x_stride, gy, gy_stride,
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


cdef inline void _gw_item(const floating *x, Py_ssize_t x_stride,
                          const floating *gy, Py_ssize_t gy_stride, const fc_geom *g,
                          Py_ssize_t F, Py_ssize_t N, Py_ssize_t b0, Py_ssize_t b1,
                          Py_ssize_t kb, const floating *apack, int first,
                          floating *work, floating *gw) noexcept nogil:
    if floating is float:
        c.fc_conv2d_gemm_gw_item_float(x, x_stride, gy, gy_stride, g, F, N,
                                       b0, b1, kb, apack, first, work, gw)
    else:
        c.fc_conv2d_gemm_gw_item_double(x, x_stride, gy, gy_stride, g, F, N,
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


cdef inline void _grad_input_phases(const floating *gy, Py_ssize_t gy_stride,
                                    Py_ssize_t N, const fc_geom *g,
                                    const floating *packed, Py_ssize_t F,
                                    Py_ssize_t item, floating *work, floating *gx,
                                    Py_ssize_t gx_stride) noexcept nogil:
    if floating is float:
        c.fc_conv2d_gemm_grad_input_phases_float(gy, gy_stride, N, g, packed,
                                                 F, item, work, gx, gx_stride)
    else:
        c.fc_conv2d_gemm_grad_input_phases_double(gy, gy_stride, N, g, packed,
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


cdef bint _flip_route(g):
    """Whether grad_x of a unit-stride layer, not 1x1 (whose GEMM needs no
    col2im), with at least FLIP_MIN_CHANNELS input channels per group, runs
    as a forward convolution of grad_out with the flipped, transposed
    filters (gemm.c): bands of output rows, no col2im."""
    cdef fc_geom gc = _geom(g, g.C // g.groups)
    cdef fc_geom gf = _flip_geom(&gc, g.F // g.groups)
    return (g.sh == 1 and g.sw == 1 and gf.pt >= 0 and gf.pl >= 0
            and g.kh * g.kw > 1 and g.C // g.groups >= FLIP_MIN_CHANNELS)


cdef bint _phases_route(g, floating *tag):
    """Whether grad_x of a strided layer (not on the flip route), not 1x1
    (whose col2im is a plain scatter), with at least FLIP_MIN_CHANNELS input
    channels per group, runs phase by phase (gemm.tmpl.h): each phase of
    grad_x a stride-1 convolution of grad_out on the forward tiles, written
    in place, no col2im."""
    cdef Py_ssize_t Cg = g.C // g.groups, Fg = g.F // g.groups
    cdef fc_geom gc = _geom(g, Cg)
    return ((g.sh > 1 or g.sw > 1) and not _flip_route(g)
            and g.kh * g.kw > 1 and Cg >= FLIP_MIN_CHANNELS
            and _phases_fit(&gc, Fg, tag))


cdef Py_ssize_t _grad_input_packed_size(g, floating *tag):
    """Elements of one group's gemm_pack_grad_input filters."""
    cdef Py_ssize_t Cg = g.C // g.groups, Fg = g.F // g.groups
    cdef fc_geom gc = _geom(g, Cg)
    if _flip_route(g):
        return _packed_size(Cg, Fg * gc.kh * gc.kw, tag)
    if _phases_route(g, tag):
        return _phase_weights_size(&gc, Fg, tag)
    return _packed_t_size(&gc, Fg, tag)


def gemm_pack_grad_input(const floating[:, :, :, ::1] w, g, out=None):
    """The filters packed for conv2d_gemm_backward's grad_x, every group:
    flipped and transposed (forward convolution route), each stride phase's
    taps (phase route) or transposed by channel blocks (col2im route).
    # IN w  # OUT out or new"""
    cdef Py_ssize_t F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = g.C // groups, Fg = F // groups
    cdef Py_ssize_t K = Cg * g.kh * g.kw
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef bint flip = _flip_route(g)
    cdef bint phases = not flip and _phases_route(g, tag)
    cdef Py_ssize_t wtsize = _grad_input_packed_size(g, tag)
    cdef Py_ssize_t cpanels = _panels(Cg, tag)
    cdef Py_ssize_t pw, pg, gi
    out = _output(out, (groups * wtsize,), np.asarray(w).dtype, "packed filters", True)
    cdef floating[::1] wt = out
    if out.size == 0:
        return out
    with nogil:
        if flip:    # the flipped weights' panels (of mr channels), shared out
            for pw in prange(groups * cpanels, schedule='static',
                             num_threads=_threads_for(F * K * 8)):
                pg = pw // cpanels
                _pack_weights_flip(&w[0, 0, 0, 0] + pg * Fg * K, Fg, Cg, gc.kh,
                                   gc.kw, pw - pg * cpanels, &wt[0] + pg * wtsize)
        elif phases:
            for gi in prange(groups, schedule='static',
                             num_threads=_threads_for(F * K * 8)):
                _pack_phase_weights(&w[0, 0, 0, 0] + gi * Fg * K, &gc, Fg,
                                    &wt[0] + gi * wtsize)
        else:
            for gi in range(groups):
                _pack_weights_t(&w[0, 0, 0, 0] + gi * Fg * K, &gc, Fg,
                                &wt[0] + gi * wtsize)
    return out


def conv2d_gemm_backward(const floating[:, :, :, ::1] gy,
                         const floating[:, :, :, ::1] x,
                         const floating[:, :, :, ::1] w, g,
                         bint grad_input=True, wtpack=None, gx_out=None,
                         gw_out=None):
    """(grad_x, grad_weight) by the packed GEMM; grad_x is None unless
    grad_input.  wtpack: gemm_pack_grad_input's filters (packed here if
    None); gx_out, gw_out: outputs (checked by the caller) or None.
    # IN gy, x, w, wtpack  # OUT gx_out, gw_out or new

    grad_weight sums over the batch's output positions in order: its work
    items own blocks of its columns (or, for few columns, the positions are
    split into a fixed number of chunks whose partial sums are added in
    order): bitwise the same result for any thread count.  grad_x runs over
    items (images or groups of images, channel blocks, phases) that write
    disjoint cells.
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
    cdef Py_ssize_t wsize = _grad_work_size(&gc, Fg, tag)
    cdef Py_ssize_t wtsize = _grad_input_packed_size(g, tag)
    cdef Py_ssize_t ch, n, gi, it, blk, p
    cdef floating acc
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef floating *partial = NULL
    cdef floating *zero_bias = NULL
    cdef floating *gxp = NULL
    cdef const floating *wt = NULL
    cdef const floating[::1] wtv
    cdef floating[:, :, :, ::1] gx
    cdef floating[:, :, :, ::1] gw
    cdef fc_geom gf = _flip_geom(&gc, Fg)
    cdef bint flip = grad_input and _flip_route(g)
    # grad_x of a strided layer with as many channels, not 1x1 (whose col2im
    # is a plain scatter): phase by phase, each phase of grad_x a stride-1
    # convolution of grad_out (gemm.tmpl.h), on the forward tiles, written
    # in place: no col2im.
    cdef bint phases = grad_input and _phases_route(g, tag)
    cdef fc_ylayout fly = _dense(C * HW, g.H, g.W)
    cdef Py_ssize_t fitems = 0
    dtype = np.asarray(x).dtype
    if flip:
        fitems = _items(&gf, N, &fly, tag)
        wsize = max(wsize, _work_size(&gf, Cg, &fly, tag))
    elif phases:
        fitems = _phase_items(&gc, Fg, N, tag)
        wsize = max(wsize, _phase_work_size(&gc, Fg, tag))
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
        rblocks = max(1, min(gblocks, GW_A_BYTES // max(1, groups * asz * <Py_ssize_t> sizeof(floating))))
        if not prepack:
            rblocks = max(1, gblocks)
        nrounds = (gblocks + rblocks - 1) // rblocks
        wsize = max(wsize, _gw_work_size(&gc, Fg, tag))
    grad_x = None
    if grad_input:
        grad_x = _output(gx_out, (N, C, g.H, g.W), dtype, "grad_x")
        if not (flip or phases) or P == 0:      # col2im accumulates
            grad_x[...] = 0
        if wtpack is None:
            wtpack = gemm_pack_grad_input(w, g)
        _check_packed(wtpack.shape[0], groups * wtsize, "GEMM grad_x")
        if wtpack.shape[0] > 0:
            wtv = wtpack
            wt = &wtv[0]
        if grad_x.size > 0:
            gx = grad_x
            gxp = &gx[0, 0, 0, 0]
    grad_w = _output(gw_out, (F, Cg, g.kh, g.kw), dtype, "grad_weight")
    if P == 0:
        grad_w[...] = 0
        return grad_x, grad_w
    gw = grad_w
    # one pooled buffer: the threads' scratch, grad_w's partial sums (none
    # for one chunk: grad_w is written in place), packed grad_out
    cdef Py_ssize_t npartial = n_chunks * FK if n_chunks > 1 else 0
    cdef Py_ssize_t napack = groups * rblocks * asz if prepack else 0
    wbuf = _ws_take(_nbytes("conv2d_backward", "GEMM workspace",
                            nt * <object> wsize + (n_chunks if n_chunks > 1 else 0) * <object> FK
                            + (groups * <object> rblocks * asz if prepack else 0),
                            sizeof(floating)))
    buf = <floating *> _ws_ptr(wbuf)
    partial = buf + nt * wsize
    apack = partial + npartial
    zero_bias = <floating *> calloc(Cg, sizeof(floating))
    if zero_bias == NULL:
        _ws_give(wbuf)
        raise MemoryError("conv2d_backward: could not allocate the workspace")
    gwout = &gw[0, 0, 0, 0] if n_chunks == 1 else partial
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
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
                                   wt + gi * wtsize, Cg, zero_bias, 0, it, ws,
                                   gxp + gi * Cg * HW, &fly)
            elif phases:
                for it in prange(fitems, schedule='dynamic'):
                    for gi in range(groups):
                        _grad_input_phases(&gy[0, 0, 0, 0] + gi * Fg * L, F * L, N,
                                           &gc, wt + gi * wtsize, Fg, it, ws,
                                           gxp + gi * Cg * HW, C * HW)
            elif grad_input:
                for it in prange(N * groups * nblocks, schedule='dynamic'):
                    n = it // (groups * nblocks)
                    gi = (it // nblocks) % groups
                    blk = it % nblocks
                    _grad_input(&gy[0, 0, 0, 0] + (n * F + gi * Fg) * L, &gc,
                                wt + gi * wtsize, Fg, blk, ws,
                                gxp + (n * C + gi * Cg) * HW)
            # each element adds its chunks in order: any split over p (and
            # so any thread count) gives the same bits
            if n_chunks > 1:
                for p in prange(FK, schedule='static'):
                    acc = 0
                    for ch in range(n_chunks):
                        acc = acc + partial[ch * FK + p]
                    (&gw[0, 0, 0, 0])[p] = acc
    free(zero_bias)
    _ws_give(wbuf)
    return grad_x, grad_w


# --------------------------------------------------------------------------
# conv2d, Winograd path (src_c/winograd.c): F(m x m, 3x3), m = 2 or 4, on the
# GEMM micro-kernels; work items are blocks of output tiles over the batch.
# --------------------------------------------------------------------------

cdef inline Py_ssize_t _wino_panel(floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_wino_panel_filters_float()
    else:
        return c.fc_wino_panel_filters_double()


cdef inline Py_ssize_t _wino_packed_size(Py_ssize_t F, Py_ssize_t C, int m,
                                         floating *tag) noexcept nogil:
    if floating is float:
        return c.fc_wino_packed_weights_size_float(F, C, m)
    else:
        return c.fc_wino_packed_weights_size_double(F, C, m)


cdef inline void _wino_pack(const floating *w, Py_ssize_t F, Py_ssize_t C, int m,
                            Py_ssize_t panel, floating *packed) noexcept nogil:
    if floating is float:
        c.fc_wino_pack_weights_float(w, F, C, m, panel, packed)
    else:
        c.fc_wino_pack_weights_double(w, F, C, m, panel, packed)


cdef inline void _wino_schedule(const fc_geom *g, Py_ssize_t N, Py_ssize_t F, int m,
                                int threads, c.fc_wino_sched *s,
                                floating *tag) noexcept nogil:
    if floating is float:
        c.fc_wino_schedule_float(g, N, F, m, threads, s)
    else:
        c.fc_wino_schedule_double(g, N, F, m, threads, s)


cdef inline void _wino(const floating *x, Py_ssize_t x_stride, Py_ssize_t N,
                       const fc_geom *g, int m, const floating *upack, Py_ssize_t F,
                       const floating *bias, int relu, const c.fc_wino_sched *s,
                       Py_ssize_t block, floating *work, floating *y,
                       Py_ssize_t y_stride) noexcept nogil:
    if floating is float:
        c.fc_conv2d_wino_float(x, x_stride, N, g, m, upack, F, bias, relu,
                               s, block, work, y, y_stride)
    else:
        c.fc_conv2d_wino_double(x, x_stride, N, g, m, upack, F, bias, relu,
                                s, block, work, y, y_stride)


def packed_size(kind, dtype, g, int m=0):
    """Elements of the filters packed by wino_pack ("winograd", m; of g's
    filters), gemm_pack ("gemm") or gemm_pack_grad_input ("gemm_grad")."""
    cdef float *f32 = NULL
    cdef double *f64 = NULL
    cdef bint single = np.dtype(dtype) == np.float32
    cdef Py_ssize_t Cg = g.C // g.groups, Fg = g.F // g.groups, K = Cg * g.kh * g.kw
    cdef Py_ssize_t one
    if kind == "winograd":
        one = _wino_packed_size(Fg, Cg, m, f32) if single else _wino_packed_size(Fg, Cg, m, f64)
    elif kind == "gemm":
        one = _packed_size(Fg, K, f32) if single else _packed_size(Fg, K, f64)
    else:
        one = _grad_input_packed_size(g, f32) if single else _grad_input_packed_size(g, f64)
    return g.groups * one


def scratch_array(Py_ssize_t n, dtype):
    """(buffer, array): a 1-D array of n elements on a 64-byte boundary in a
    pooled scratch buffer; give the buffer back with scratch_release."""
    dtype = np.dtype(dtype)
    buf = _ws_take(n * dtype.itemsize)
    skip = -buf.ctypes.data % 64
    return buf, buf[skip:skip + n * dtype.itemsize].view(dtype)


def scratch_release(buf):
    _ws_give(buf)


def wino_pack(const floating[:, :, :, ::1] w, Py_ssize_t groups, int m, out=None):
    """The transformed filters U = G g G^T of every group, (groups * size,),
    into out if given (its size checked).  # IN w  # OUT out or new"""
    cdef Py_ssize_t F = w.shape[0], Cg = w.shape[1], Fg = F // groups
    cdef floating *tag = NULL
    cdef Py_ssize_t size = _wino_packed_size(Fg, Cg, m, tag)
    cdef Py_ssize_t nr = _wino_panel(tag), npan = (Fg + nr - 1) // nr
    cdef Py_ssize_t pw, pg
    out = _output(out, (groups * size,), np.asarray(w).dtype, "packed filters", True)
    cdef floating[::1] u = out
    if out.size == 0:
        return out
    with nogil:
        for pw in prange(groups * npan, schedule='static',
                         num_threads=_threads_for(F * Cg * 36 * (m + 2) * (m + 2))):
            pg = pw // npan
            _wino_pack(&w[0, 0, 0, 0] + pg * Fg * Cg * 9, Fg, Cg, m, pw - pg * npan,
                       &u[0] + pg * size)
    return out


def conv2d_winograd(const floating[:, :, :, ::1] x, const floating[::1] packed,
                    b, g, int m, bint relu, floating[:, :, :, ::1] y):
    """Forward 3x3 stride-1 convolution by Winograd F(m x m, 3x3) into y,
    from wino_pack's filters.  # IN x, packed, b  # OUT y"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef Py_ssize_t psize = _wino_packed_size(Fg, Cg, m, tag)
    cdef Py_ssize_t item, gi
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, Cg * 9)))
    cdef c.fc_wino_sched s
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef const floating *bp = NULL
    cdef const floating[::1] bv
    _check_packed(packed.shape[0], groups * psize, f"Winograd F({m}x{m})")
    if b is not None:
        bv = b
        bp = &bv[0]
    if N * L == 0:
        return
    _wino_schedule(&gc, N, Fg, m, nt, &s, tag)
    wbuf = _ws_take(_nbytes("conv2d", "Winograd workspace", nt * <object> s.work,
                            sizeof(floating)))
    buf = <floating *> _ws_ptr(wbuf)
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * s.work
            for item in prange(s.blocks * groups, schedule='dynamic'):
                gi = item % groups
                _wino(&x[0, 0, 0, 0] + gi * Cg * HW, C * HW, N, &gc, m,
                      &packed[0] + gi * psize, Fg,
                      (bp + gi * Fg) if bp != NULL else NULL, relu, &s,
                      item // groups, ws, &y[0, 0, 0, 0] + gi * Fg * L, F * L)
    _ws_give(wbuf)


def wino_matrices(dtype, int m):
    """(B^T, G, A^T, A) as the kernels of this dtype compute them (A: the
    grad_weight's transform of grad_out), for the tests."""
    n = m + 2
    bt = np.zeros((n, n))
    gm = np.zeros((n, 3))
    at = np.zeros((m, n))
    am = np.zeros((n, m))
    cdef double[:, ::1] b_ = bt
    cdef double[:, ::1] g_ = gm
    cdef double[:, ::1] a_ = at
    cdef double[:, ::1] aa = am
    if np.dtype(dtype) == np.float32:
        c.fc_wino_matrices_float(m, &b_[0, 0], &g_[0, 0], &a_[0, 0], &aa[0, 0])
    else:
        c.fc_wino_matrices_double(m, &b_[0, 0], &g_[0, 0], &a_[0, 0], &aa[0, 0])
    return bt, gm, at, am


cdef inline void _wino_gw_schedule(const fc_geom *g, Py_ssize_t N, Py_ssize_t F, int m,
                                   c.fc_wino_gw_sched *s, floating *tag) noexcept nogil:
    if floating is float:
        c.fc_wino_gw_schedule_float(g, N, F, m, s)
    else:
        c.fc_wino_gw_schedule_double(g, N, F, m, s)


cdef inline void _wino_gw(const floating *x, Py_ssize_t x_stride, const floating *gy,
                          Py_ssize_t gy_stride, Py_ssize_t N, const fc_geom *g, int m,
                          Py_ssize_t F, const c.fc_wino_gw_sched *s, Py_ssize_t chunk,
                          Py_ssize_t xi0, Py_ssize_t xi1, floating *work,
                          floating *wsum, double *bsum) noexcept nogil:
    if floating is float:
        c.fc_wino_grad_weight_float(x, x_stride, gy, gy_stride, N, g, m, F, s,
                                    chunk, xi0, xi1, work, wsum, bsum)
    else:
        c.fc_wino_grad_weight_double(x, x_stride, gy, gy_stride, N, g, m, F, s,
                                     chunk, xi0, xi1, work, wsum, bsum)


cdef inline void _wino_gw_finish(const floating *wsum, Py_ssize_t chunks,
                                 Py_ssize_t wstride, Py_ssize_t F, Py_ssize_t C, int m,
                                 Py_ssize_t f, floating *gw) noexcept nogil:
    if floating is float:
        c.fc_wino_gw_finish_float(wsum, chunks, wstride, F, C, m, f, gw)
    else:
        c.fc_wino_gw_finish_double(wsum, chunks, wstride, F, C, m, f, gw)


def wino_grad_weight(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] x,
                     g, int m, gw_out=None):
    """(grad_weight, grad_bias) of a 3x3 stride-1 layer by Winograd
    F(m x m, 3x3); grad_bias summed in double along the way.
    # IN gy, x  # OUT gw_out or new, new

    Chunks of tiles (fixed by the shapes) sum into partial sums added in
    order, so the result does not depend on the thread count; with fewer
    chunks than threads the work items also split the transformed
    positions xi (each item then redoes its chunk's transforms)."""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups, nn = (m + 2) * (m + 2)
    cdef Py_ssize_t L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    cdef c.fc_wino_gw_sched s
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, Cg * 9)))
    cdef Py_ssize_t nxg, item, gi, ch, xg, f, per
    cdef floating *buf = NULL
    cdef floating *partial = NULL
    cdef floating *ws = NULL
    cdef double *bparts = NULL
    cdef double acc
    cdef floating[:, :, :, ::1] gw
    cdef floating[::1] gbv
    dtype = np.asarray(x).dtype
    grad_w = _output(gw_out, (F, Cg, 3, 3), dtype, "grad_weight")
    grad_b = np.zeros(F, dtype=dtype)
    if N * L == 0 or Cg == 0:
        grad_w[...] = 0
        return grad_w, grad_b
    gw = grad_w
    gbv = grad_b
    _wino_gw_schedule(&gc, N, Fg, m, &s, tag)
    # items: (group, chunk, share of the positions xi)
    nxg = min(nn, max(1, (nt + groups * s.chunks - 1) // (groups * s.chunks)))
    per = groups * s.chunks * s.wsize
    wbuf = _ws_take(_nbytes("conv2d_backward", "Winograd workspace",
                            per + nt * <object> s.work, sizeof(floating))
                    + F * <object> s.chunks * sizeof(double))
    bparts = <double *> _ws_ptr(wbuf)                 # (chunks, F)
    partial = <floating *> (bparts + F * s.chunks)
    buf = partial + per
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * s.work
            for item in prange(groups * s.chunks * nxg, schedule='dynamic'):
                xg = item % nxg
                ch = (item // nxg) % s.chunks
                gi = item // (nxg * s.chunks)
                _wino_gw(&x[0, 0, 0, 0] + gi * Cg * HW, C * HW,
                         &gy[0, 0, 0, 0] + gi * Fg * L, F * L, N, &gc, m, Fg, &s, ch,
                         xg * nn // nxg, (xg + 1) * nn // nxg, ws,
                         partial + (gi * s.chunks + ch) * s.wsize,
                         bparts + ch * F + gi * Fg)
            for item in prange(F, schedule='static'):
                gi = item // Fg
                f = item - gi * Fg
                _wino_gw_finish(partial + gi * s.chunks * s.wsize, s.chunks, s.wsize, Fg,
                                Cg, m, f, &gw[0, 0, 0, 0] + item * Cg * 9)
                acc = 0                         # the chunks in order
                for ch in range(s.chunks):
                    acc = acc + bparts[ch * F + item]
                gbv[item] = <floating> acc
    _ws_give(wbuf)
    return grad_w, grad_b


# --------------------------------------------------------------------------
# conv2d, direct path: one output plane (n, f) / input plane (n, c) / filter
# f per iteration.
# --------------------------------------------------------------------------

def conv2d_direct(const floating[:, :, :, ::1] x,
                  const floating[:, :, :, ::1] w,
                  b, g, bint relu, floating[:, :, :, ::1] y):
    """Forward convolution by the direct kernel into y; b the bias or None.
    # IN x, w, b  # OUT y"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef Py_ssize_t K = Cg * g.kh * g.kw, L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    # whole cache lines per thread, so threads never share one
    cdef Py_ssize_t wsize = _lines(_direct_work_size(&gc, 1, tag), sizeof(floating))
    cdef Py_ssize_t p, n, f
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef const floating *bp = NULL
    cdef const floating[::1] bv
    if N * F * L == 0:
        return
    if b is not None:
        bv = b
        bp = &bv[0]
    wbuf = _ws_take(_nbytes("conv2d", "direct workspace", nt * <object> wsize,
                            sizeof(floating)))
    buf = <floating *> _ws_ptr(wbuf)
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            # depthwise planes are small: chunks of them, not one scheduler
            # round trip each (that made 2 threads slower than 1)
            for p in prange(N * F, schedule='dynamic', chunksize=_plane_chunk(_mul(L, K))):
                n = p // F
                f = p - n * F
                _direct(&x[0, 0, 0, 0] + (n * C + (f // Fg) * Cg) * HW,
                        &w[0, 0, 0, 0] + f * K, bp[f] if bp != NULL else 0, relu,
                        &gc, ws, &y[0, 0, 0, 0] + p * L)
    _ws_give(wbuf)


def conv2d_direct_backward(const floating[:, :, :, ::1] gy,
                           const floating[:, :, :, ::1] x,
                           const floating[:, :, :, ::1] w, g,
                           bint grad_input=True, gx_out=None, gw_out=None):
    """(grad_x, grad_weight) by the direct kernels; grad_x is None unless
    grad_input; gx_out, gw_out: outputs (checked by the caller) or None.
    # IN gy, x, w  # OUT gx_out, gw_out or new"""
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, groups = g.groups
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups, KK = g.kh * g.kw
    cdef Py_ssize_t K = Cg * KK, L = g.Ho * g.Wo, HW = g.H * g.W
    cdef fc_geom gc = _geom(g, Cg)
    cdef floating *tag = NULL
    # whole cache lines per thread, so threads never share one
    cdef Py_ssize_t wsize = _lines(_direct_work_size(&gc, Fg, tag), sizeof(floating))
    cdef Py_ssize_t p, n, ch, gi, f
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef floating *buf = NULL
    cdef floating *ws = NULL
    cdef floating *gxp = NULL
    cdef floating[:, :, :, ::1] gx
    cdef floating[:, :, :, ::1] gw
    dtype = np.asarray(x).dtype
    grad_x = _output(gx_out, (N, C, g.H, g.W), dtype, "grad_x") if grad_input else None
    grad_w = _output(gw_out, (F, Cg, g.kh, g.kw), dtype, "grad_weight")
    grad_w[...] = 0
    if N == 0 or L == 0:
        if grad_x is not None:
            grad_x[...] = 0
        return grad_x, grad_w
    if grad_input:
        gx = grad_x                                     # every plane written
        gxp = &gx[0, 0, 0, 0]
    gw = grad_w
    wbuf = _ws_take(_nbytes("conv2d_backward", "direct workspace", nt * <object> wsize,
                            sizeof(floating)))
    buf = <floating *> _ws_ptr(wbuf)
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            if grad_input:
                for p in prange(N * C, schedule='dynamic',
                                chunksize=_plane_chunk(_mul(HW, Fg * KK))):
                    n = p // C
                    ch = p - n * C
                    gi = ch // Cg
                    _direct_grad_input(&gy[0, 0, 0, 0] + (n * F + gi * Fg) * L,
                                       &w[0, 0, 0, 0] + gi * Fg * K + (ch - gi * Cg) * KK,
                                       Fg, &gc, ws, gxp + p * HW)
            # Each filter sums over the images in order: no shared reduction.
            for f in prange(F, schedule='dynamic'):
                for n in range(N):
                    _direct_grad_weight(&x[0, 0, 0, 0] + (n * C + (f // Fg) * Cg) * HW,
                                        &gy[0, 0, 0, 0] + (n * F + f) * L, &gc, ws,
                                        &gw[0, 0, 0, 0] + f * K)
    _ws_give(wbuf)
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
        for f in prange(F, schedule='dynamic', num_threads=_threads_for(_mul(N * F, L))):
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


cdef inline void _max_pool3d(const floating *x, const fc_vgeom *g, floating *y,
                             int64_t *idx) noexcept nogil:
    if floating is float:
        c.fc_max_pool3d_float(x, g, y, idx)
    else:
        c.fc_max_pool3d_double(x, g, y, idx)


cdef inline void _avg_pool3d(const floating *x, const fc_vgeom *g,
                             int count_include_pad, floating *y) noexcept nogil:
    if floating is float:
        c.fc_avg_pool3d_float(x, g, count_include_pad, y)
    else:
        c.fc_avg_pool3d_double(x, g, count_include_pad, y)


cdef inline void _avg_pool3d_backward(const floating *gy, const fc_vgeom *g,
                                      int count_include_pad,
                                      floating *gx) noexcept nogil:
    if floating is float:
        c.fc_avg_pool3d_backward_float(gy, g, count_include_pad, gx)
    else:
        c.fc_avg_pool3d_backward_double(gy, g, count_include_pad, gx)


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

cdef inline void _lc_pack_row(const floating *x, const fc_geom *g, Py_ssize_t N,
                              Py_ssize_t row, floating *xt) noexcept nogil:
    if floating is float:
        c.fc_lc_pack_row_float(x, g, N, row, xt)
    else:
        c.fc_lc_pack_row_double(x, g, N, row, xt)


cdef inline void _lc_unpack_row(const floating *xt, const fc_geom *g,
                                Py_ssize_t N, Py_ssize_t row,
                                floating *x) noexcept nogil:
    if floating is float:
        c.fc_lc_unpack_row_float(xt, g, N, row, x)
    else:
        c.fc_lc_unpack_row_double(xt, g, N, row, x)


cdef inline void _lc_forward(const floating *xt, const fc_geom *gp,
                             const Py_ssize_t *off, Py_ssize_t N,
                             const floating *w, const floating *b, Py_ssize_t F,
                             Py_ssize_t l0, Py_ssize_t l1, floating *work,
                             floating *y) noexcept nogil:
    if floating is float:
        c.fc_lc_forward_float(xt, gp, off, N, w, b, F, l0, l1, work, y)
    else:
        c.fc_lc_forward_double(xt, gp, off, N, w, b, F, l0, l1, work, y)


cdef inline void _lc_backward(const floating *gy, const floating *xt,
                              const fc_geom *gp, const Py_ssize_t *off,
                              Py_ssize_t N, const floating *w, Py_ssize_t F,
                              Py_ssize_t l0, Py_ssize_t l1, floating *work,
                              floating *gxt, floating *gw,
                              floating *gb) noexcept nogil:
    if floating is float:
        c.fc_lc_backward_float(gy, xt, gp, off, N, w, F, l0, l1, work,
                               gxt, gw, gb)
    else:
        c.fc_lc_backward_double(gy, xt, gp, off, N, w, F, l0, l1, work,
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


# --------------------------------------------------------------------------
# layer kernels (src_c/norm.c, eltwise.c, linear.c): batch normalisation one
# channel per item; element-wise kernels over fixed chunks; the fully
# connected layer's products over column panels.  Outputs are passed in
# (out=, reused buffers) and may be the inputs where fastconv.h allows.
# --------------------------------------------------------------------------

cdef enum:
    # elements per work item of the element-wise kernels
    ELT_CHUNK = 1 << 15
    # their cost per element in MIN_PARALLEL_WORK's units (an add of 1M
    # float32 takes about 0.45 ms on one core, 20x a GEMM element's share):
    # from about 128k elements they run on every thread
    ELT_WORK = 16


cdef inline void _bn_train(const floating *x, Py_ssize_t N, Py_ssize_t stride,
                           Py_ssize_t L, double gamma, double beta, double eps,
                           int relu, floating *y, double *mean,
                           double *var) noexcept nogil:
    if floating is float:
        c.fc_bn_train_channel_float(x, N, stride, L, gamma, beta, eps, relu, y, mean, var)
    else:
        c.fc_bn_train_channel_double(x, N, stride, L, gamma, beta, eps, relu, y, mean, var)


cdef inline void _bn_apply(const floating *x, Py_ssize_t N, Py_ssize_t stride,
                           Py_ssize_t L, double scale, double shift, int relu,
                           floating *y) noexcept nogil:
    if floating is float:
        c.fc_bn_apply_float(x, N, stride, L, <float> scale, <float> shift, relu, y)
    else:
        c.fc_bn_apply_double(x, N, stride, L, scale, shift, relu, y)


cdef inline void _bn_backward(const floating *gy, const floating *x,
                              const floating *y, Py_ssize_t N, Py_ssize_t stride,
                              Py_ssize_t L, double mean, double invstd,
                              double gamma, int training, floating *gx,
                              double *g_gamma, double *g_beta) noexcept nogil:
    if floating is float:
        c.fc_bn_backward_channel_float(gy, x, y, N, stride, L, mean, invstd, gamma,
                                training, gx, g_gamma, g_beta)
    else:
        c.fc_bn_backward_channel_double(gy, x, y, N, stride, L, mean, invstd, gamma,
                                 training, gx, g_gamma, g_beta)


def batch_norm_train(const floating[:, :, :, ::1] x, const double[::1] gamma,
                     const double[::1] beta, double eps, bint relu,
                     floating[:, :, :, ::1] y):
    """Batch statistics and the normalised output of (N, C, H, W) x.
    # IN x, gamma, beta  # OUT y (may be x)  -> (mean, var) float64 (C,)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2] * x.shape[3], ch
    mean = np.empty(C)
    var = np.empty(C)
    cdef double[::1] m = mean
    cdef double[::1] v = var
    if N * L == 0:                  # no values: no statistics (the caller refuses)
        mean[:] = np.nan
        var[:] = np.nan
        return mean, var
    with nogil:
        for ch in prange(C, schedule='static',
                         num_threads=_threads_for(_mul(N * C * L, ELT_WORK))):
            _bn_train(&x[0, 0, 0, 0] + ch * L, N, C * L, L, gamma[ch], beta[ch], eps,
                      relu, &y[0, 0, 0, 0] + ch * L, &m[ch], &v[ch])
    return mean, var


def batch_norm_apply(const floating[:, :, :, ::1] x, const double[::1] scale,
                     const double[::1] shift, bint relu, floating[:, :, :, ::1] y):
    """y = x*scale + shift per channel (ReLU'd if relu).  # OUT y (may be x)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2] * x.shape[3], ch
    if N * L == 0:
        return
    with nogil:
        for ch in prange(C, schedule='static',
                         num_threads=_threads_for(_mul(N * C * L, ELT_WORK))):
            _bn_apply(&x[0, 0, 0, 0] + ch * L, N, C * L, L, scale[ch], shift[ch], relu,
                      &y[0, 0, 0, 0] + ch * L)


def batch_norm_backward(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] x,
                        y, const double[::1] mean, const double[::1] invstd,
                        const double[::1] gamma, bint training,
                        floating[:, :, :, ::1] gx):
    """grad_x into gx (may be gy), and (grad_gamma, grad_beta) float64 (C,);
    y: the ReLU'd forward output whose zeros mask gy, or None."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2] * x.shape[3], ch
    cdef const floating[:, :, :, ::1] yv
    cdef const floating *yp = NULL
    if N * L == 0:                  # empty sums; no grad_x to write
        return np.zeros(C), np.zeros(C)
    if y is not None:
        yv = y
        yp = &yv[0, 0, 0, 0]
    g_gamma = np.empty(C)
    g_beta = np.empty(C)
    cdef double[::1] gg = g_gamma
    cdef double[::1] gb = g_beta
    with nogil:
        for ch in prange(C, schedule='static',
                         num_threads=_threads_for(_mul(N * C * L, ELT_WORK))):
            _bn_backward(&gy[0, 0, 0, 0] + ch * L, &x[0, 0, 0, 0] + ch * L,
                         (yp + ch * L) if yp != NULL else NULL, N, C * L, L, mean[ch],
                         invstd[ch], gamma[ch], training, &gx[0, 0, 0, 0] + ch * L,
                         &gg[ch], &gb[ch])
    return g_gamma, g_beta


cdef inline void _relu(const floating *x, Py_ssize_t n, floating *y) noexcept nogil:
    if floating is float:
        c.fc_relu_float(x, n, y)
    else:
        c.fc_relu_double(x, n, y)


cdef inline void _relu_backward(const floating *g, const floating *y, Py_ssize_t n,
                                floating *gx) noexcept nogil:
    if floating is float:
        c.fc_relu_backward_float(g, y, n, gx)
    else:
        c.fc_relu_backward_double(g, y, n, gx)


cdef inline void _add_arrays(const floating *a, const floating *b, Py_ssize_t n,
                             int relu, floating *y) noexcept nogil:
    if floating is float:
        c.fc_add_float(a, b, n, relu, y)
    else:
        c.fc_add_double(a, b, n, relu, y)


def relu(const floating[::1] x, floating[::1] y):
    """y = max(x, 0) over flat arrays.  # OUT y (may be x)"""
    cdef Py_ssize_t n = x.shape[0], i, k
    with nogil:
        for i in prange((n + ELT_CHUNK - 1) // ELT_CHUNK, schedule='static',
                        num_threads=_threads_for(_mul(n, ELT_WORK))):
            k = i * ELT_CHUNK
            _relu(&x[0] + k, min(<Py_ssize_t> ELT_CHUNK, n - k), &y[0] + k)


def relu_backward(const floating[::1] g, const floating[::1] y, floating[::1] gx):
    """gx = 0 where y <= 0, else g, over flat arrays.  # OUT gx (may be g)"""
    cdef Py_ssize_t n = g.shape[0], i, k
    with nogil:
        for i in prange((n + ELT_CHUNK - 1) // ELT_CHUNK, schedule='static',
                        num_threads=_threads_for(_mul(n, ELT_WORK))):
            k = i * ELT_CHUNK
            _relu_backward(&g[0] + k, &y[0] + k, min(<Py_ssize_t> ELT_CHUNK, n - k),
                           &gx[0] + k)


def add(const floating[::1] a, const floating[::1] b, bint relu, floating[::1] y):
    """y = a + b (ReLU'd if relu) over flat arrays.  # OUT y (may be a or b)"""
    cdef Py_ssize_t n = a.shape[0], i, k
    with nogil:
        for i in prange((n + ELT_CHUNK - 1) // ELT_CHUNK, schedule='static',
                        num_threads=_threads_for(_mul(n, ELT_WORK))):
            k = i * ELT_CHUNK
            _add_arrays(&a[0] + k, &b[0] + k, min(<Py_ssize_t> ELT_CHUNK, n - k), relu,
                        &y[0] + k)


def sgd_step(floating[::1] p, const floating[::1] g, buf, double lr,
             double momentum, double weight_decay, bint nesterov, bint first):
    """torch.optim.SGD's update in place on flat p (and buf, or None)."""
    cdef Py_ssize_t n = p.shape[0], i, k
    cdef floating[::1] bv
    cdef floating *bp = NULL
    if buf is not None:
        bv = buf
        bp = &bv[0]
    with nogil:
        for i in prange((n + ELT_CHUNK - 1) // ELT_CHUNK, schedule='static',
                        num_threads=_threads_for(n * 4)):
            k = i * ELT_CHUNK
            if floating is float:
                c.fc_sgd_step_float(&p[0] + k, &g[0] + k, (bp + k) if bp != NULL else NULL,
                                    min(<Py_ssize_t> ELT_CHUNK, n - k), <float> lr,
                                    <float> momentum, <float> weight_decay, nesterov,
                                    first)
            else:
                c.fc_sgd_step_double(&p[0] + k, &g[0] + k, (bp + k) if bp != NULL else NULL,
                                     min(<Py_ssize_t> ELT_CHUNK, n - k), lr, momentum,
                                     weight_decay, nesterov, first)


def adam_step(floating[::1] p, const floating[::1] g, floating[::1] m,
              floating[::1] v, double beta1, double beta2, double eps,
              double weight_decay, double step_size, double bc2_sqrt):
    """torch.optim.Adam's update in place on flat p, m, v."""
    cdef Py_ssize_t n = p.shape[0], i, k
    with nogil:
        for i in prange((n + ELT_CHUNK - 1) // ELT_CHUNK, schedule='static',
                        num_threads=_threads_for(n * 8)):
            k = i * ELT_CHUNK
            if floating is float:
                c.fc_adam_step_float(&p[0] + k, &g[0] + k, &m[0] + k, &v[0] + k,
                                     min(<Py_ssize_t> ELT_CHUNK, n - k), <float> beta1,
                                     <float> beta2, <float> eps, <float> weight_decay,
                                     <float> step_size, <float> bc2_sqrt)
            else:
                c.fc_adam_step_double(&p[0] + k, &g[0] + k, &m[0] + k, &v[0] + k,
                                      min(<Py_ssize_t> ELT_CHUNK, n - k), beta1, beta2,
                                      eps, weight_decay, step_size, bc2_sqrt)


def softmax_xent(const floating[:, ::1] s, const int64_t[::1] labels,
                 floating[:, ::1] grad):
    """Mean softmax cross-entropy of (N, C) scores; grad OUT (N, C)."""
    cdef Py_ssize_t N = s.shape[0], C = s.shape[1], i
    losses = np.empty(N)
    cdef double[::1] lv = losses
    cdef floating scale = <floating> (1.0 / N)
    with nogil:
        for i in prange(N, schedule='static', num_threads=_threads_for(N * C * 8)):
            if floating is float:
                lv[i] = c.fc_softmax_xent_row_float(&s[i, 0], C, labels[i], scale,
                                                    &grad[i, 0])
            else:
                lv[i] = c.fc_softmax_xent_row_double(&s[i, 0], C, labels[i], scale,
                                                     &grad[i, 0])
    return float(np.sum(losses) / N)        # row losses added in order


cdef int _matmul(const floating *a, Py_ssize_t lda, bint at, Py_ssize_t M,
                 Py_ssize_t Kd, const floating *b, Py_ssize_t ldb, bint bt,
                 Py_ssize_t Ncols, const floating *bias, bint relu,
                 floating *out, Py_ssize_t ldc) except -1:
    """out (M x Ncols) = A @ B (+ bias per column, ReLU'd if relu)."""
    cdef Py_ssize_t mr, psize, panels, wsize, p
    cdef floating *packed = NULL
    cdef floating *buf = NULL
    cdef floating *ws
    cdef int nt = _threads_for(M * Ncols * max(Kd, 1))
    if floating is float:
        mr = c.fc_gemm_packed_weights_size_float(1, 1)
        psize = c.fc_matmul_packed_a_size_float(M, Kd)
        panels = c.fc_matmul_panels_float(M, Ncols)
        wsize = c.fc_matmul_work_size_float()
    else:
        mr = c.fc_gemm_packed_weights_size_double(1, 1)
        psize = c.fc_matmul_packed_a_size_double(M, Kd)
        panels = c.fc_matmul_panels_double(M, Ncols)
        wsize = c.fc_matmul_work_size_double()
    packed = <floating *> malloc(max(psize, 1) * sizeof(floating))
    buf = <floating *> malloc(nt * wsize * sizeof(floating))
    if packed == NULL or buf == NULL:
        free(packed)
        free(buf)
        raise MemoryError(
            f"linear: could not allocate {(psize + nt * wsize) * sizeof(floating)} "
            f"bytes of workspace")
    with nogil:
        with parallel(num_threads=nt):
            ws = buf + threadid() * wsize
            for p in prange((M + mr - 1) // mr, schedule='static'):
                if floating is float:
                    c.fc_matmul_pack_a_float(a, lda, at, M, Kd, p, packed)
                else:
                    c.fc_matmul_pack_a_double(a, lda, at, M, Kd, p, packed)
            for p in prange(panels, schedule='dynamic'):
                if floating is float:
                    c.fc_matmul_panel_float(packed, M, Kd, b, ldb, bt, Ncols, bias, relu,
                                            0, p, ws, out, ldc)
                else:
                    c.fc_matmul_panel_double(packed, M, Kd, b, ldb, bt, Ncols, bias, relu,
                                             0, p, ws, out, ldc)
    free(packed)
    free(buf)
    return 0


def linear(const floating[:, ::1] x, const floating[:, ::1] w, b, bint relu,
           floating[:, ::1] y):
    """y (N, F) = x (N, K) @ w (F, K)^T + b (ReLU'd if relu).  # OUT y"""
    cdef Py_ssize_t N = x.shape[0], K = x.shape[1], F = w.shape[0]
    cdef const floating[::1] bv
    cdef const floating *bp = NULL
    if b is not None:
        bv = b
        bp = &bv[0]
    if N == 0 or F == 0:
        return
    _matmul(&x[0, 0] if K else NULL, K, False, N, K, &w[0, 0] if K else NULL, K, True,
            F, bp, relu, &y[0, 0], F)


def linear_backward(const floating[:, ::1] gy, const floating[:, ::1] x,
                    const floating[:, ::1] w, floating[:, ::1] gx,
                    floating[:, ::1] gw):
    """gx = gy @ w, gw = gy^T @ x (each summed in order).  # OUT gx, gw"""
    cdef Py_ssize_t N = x.shape[0], K = x.shape[1], F = w.shape[0]
    if N and K:
        _matmul(&gy[0, 0] if F else NULL, F, False, N, F, &w[0, 0] if F else NULL, K,
                False, K, NULL, False, &gx[0, 0], K)
    if F and K:
        _matmul(&gy[0, 0] if N else NULL, F, True, F, N, &x[0, 0] if N else NULL, K,
                False, K, NULL, False, &gw[0, 0], K)
