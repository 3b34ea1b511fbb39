# cython: language_level=3
"""Compiled kernels of fastconv: dtype dispatch, allocation and threading.

The functions here trust their arguments: 4-D C-contiguous arrays of one
float dtype and a geometry checked by fastconv/_validation.py.  They allocate
the outputs with NumPy and the bounded per-thread workspaces from a pool,
release the GIL, and run the C kernels of src_c/ over independent work items
(images, tiles, planes) with OpenMP: the drivers with workspaces through one
skeleton (_scratch, _run), which also turns the C statuses into exceptions.
Call them through fastconv's public functions, never directly.
"""
import threading

import numpy as np

cimport cython
from cpython.pyport cimport PY_SSIZE_T_MAX
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
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
# The drivers' skeleton.  A driver (conv2d_gemm, wino_grad_weight, ...)
# takes its scratch memory (_scratch: sized in Python ints, so that no size
# wraps), fills a context struct, lists its loops over work items (_loop: an
# _item_* function, its context and how many items) and calls _run: the C
# loop of src_c/threads.c runs them on OpenMP threads without the GIL, each
# item with its thread's workspace, and once all have run the worst status
# an item returned becomes an exception (_check_status).
# --------------------------------------------------------------------------

cdef int _check_status(op, int status, index_error=None) except -1:
    """Raise the exception for a status of the C code (src_c/fastconv.h);
    0 for FC_OK.  FC_EINDEX, an index outside its plane, is a ValueError:
    index_error() if given (the caller's message), else a generic one.  Any
    other status is a RuntimeError."""
    if status == c.FC_OK:
        return 0
    if status == c.FC_EINDEX:
        if index_error is not None:
            raise index_error()
        raise ValueError(f"{op}: an index lies outside its plane")
    raise RuntimeError(f"{op}: the C kernels returned status {status}, which "
                       f"fastconv does not know")


def _raise_for_status(op, int status):
    """_check_status, for the tests: the exception of each C status."""
    _check_status(op, status)


cdef class _Scratch:
    """The scratch memory of one driver call, in one pooled buffer: a part
    the call shares (``shared``), then one workspace per thread, ``stride``
    bytes apart from ``work`` (NULL: none).  Every part is whole 64-byte
    lines from a line boundary, so no two threads write to one line."""
    cdef object buf
    cdef char *shared
    cdef char *work
    cdef Py_ssize_t stride
    cdef int threads

    cdef void release(self):
        """Give the buffer back to the pool (once)."""
        if self.buf is not None:
            _ws_give(self.buf)
            self.buf = None


cdef object _whole_lines(nbytes):
    return -(-nbytes // 64) * 64


cdef _Scratch _scratch(op, what, int threads, per_thread=0, shared=0):
    """Scratch for ``threads`` threads: ``per_thread`` bytes each and
    ``shared`` bytes for the call, Python ints (sizes multiplied in Python
    never wrap); MemoryError stating the size when no allocation can hold
    it."""
    cdef _Scratch s = _Scratch.__new__(_Scratch)
    head = _whole_lines(shared)
    stride = _whole_lines(per_thread)
    nbytes = head + threads * stride
    if nbytes > PY_SSIZE_T_MAX - 64:            # _ws_take adds a line
        raise MemoryError(f"{op}: the {what} would take {nbytes} bytes, more "
                          f"than can be allocated")
    s.threads = threads
    s.stride = stride
    if nbytes > 0:
        try:
            s.buf = _ws_take(nbytes)
        except MemoryError:
            raise MemoryError(f"{op}: could not allocate the {what} ({nbytes} "
                              f"bytes)") from None
        s.shared = <char *> _ws_ptr(s.buf)
        if stride > 0:
            s.work = s.shared + <Py_ssize_t> head
    return s


cdef inline c.fc_loop _loop(c.fc_fn run, const void *ctx, Py_ssize_t items,
                            bint dynamic, Py_ssize_t arg=0) noexcept nogil:
    """A loop over items 0 .. items-1 of run (an _item_* function of the
    call's dtype), ctx and arg passed through; dynamic: OpenMP's dynamic
    schedule (items of uneven cost), else the static one."""
    cdef c.fc_loop r
    r.run = run
    r.ctx = ctx
    r.arg = arg
    r.items = items
    r.dynamic = dynamic
    return r


cdef int _run(op, _Scratch s, const c.fc_loop *loops, Py_ssize_t n,
              floating *tag, index_error=None) except -1:
    """Run the n loops in order (src_c/fastconv.h: fc_run_loops) on
    s.threads threads without the GIL, each item with its thread's
    workspace; then give s back to the pool and raise for the worst status
    an item returned (index_error: see _check_status)."""
    cdef int status
    with nogil:
        if floating is float:
            status = c.fc_run_loops_float(loops, n, s.threads, <float *> s.work,
                                          s.stride // sizeof(float))
        else:
            status = c.fc_run_loops_double(loops, n, s.threads, <double *> s.work,
                                           s.stride // sizeof(double))
    s.release()
    return _check_status(op, status, index_error)


cdef struct _conv:
    # One convolution call as its work items see it; the pointers are of the
    # call's dtype (the items cast them back).  Forward: x (N, C, H, W) ->
    # y (N, F, Ho, Wo) in groups of Cg input and Fg output channels, K =
    # Cg*kh*kw taps, L = Ho*Wo outputs and HW = H*W inputs a plane.
    # Backward: gy is grad_out, gx grad_x, gw grad_weight and gb grad_bias.
    const fc_geom *g            # one group's geometry (g.C = Cg)
    const fc_ylayout *ly        # where the GEMM items write
    const void *sched           # Winograd: its fc_wino_sched / fc_wino_gw_sched
    const void *x
    const void *gy
    const void *w               # filters: plain, or packed wsize a group
    const void *bias            # (F,) or NULL
    void *y
    void *gx
    void *gw
    void *gb
    void *partial               # grad_weight's partial sums (chunks of them)
    void *apack                 # GEMM grad_weight: packed grad_out, or NULL
    void *pre                   # Winograd: the blocks' transforms (grad_weight), or
                                # V and M of all tiles (phased forward); or NULL
    double *bsum                # Winograd grad_weight: the chunks' grad_bias
    Py_ssize_t N, C, F, groups, Cg, Fg, K, L, HW, wsize
    int relu, m
    Py_ssize_t per              # direct: planes per item
    Py_ssize_t chunks           # partial sums of grad_weight
    Py_ssize_t nblocks          # GEMM grad_x: channel blocks
    Py_ssize_t gblocks, gcols, rblocks, asz  # GEMM grad_w by column blocks
    Py_ssize_t nxg              # Winograd grad_w: shares of the positions


cdef _conv _conv_of(g):
    """A _conv of geometry g (a _validation.ConvGeometry), pointers NULL."""
    cdef _conv a
    memset(&a, 0, sizeof(a))
    a.N = g.N
    a.C = g.C
    a.F = g.F
    a.groups = g.groups
    a.Cg = g.C // g.groups
    a.Fg = g.F // g.groups
    a.K = a.Cg * g.kh * g.kw
    a.L = g.Ho * g.Wo
    a.HW = g.H * g.W
    return a


cdef int _forward_args(_conv *a, const fc_geom *g, const floating *x, const void *w,
                       b, bint relu, floating *y) except -1:
    """A forward call's arrays into a: input x, filters w (plain or packed),
    bias b (an array, or None), output y."""
    cdef const floating[::1] bv
    if b is not None:
        bv = b
        a.bias = &bv[0]
    a.g = g
    a.x = x
    a.w = w
    a.relu = relu
    a.y = y
    return 0


# --------------------------------------------------------------------------
# fused-type dispatch to the C kernels
# --------------------------------------------------------------------------

cdef inline void _im2col(const floating *x, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, int tap_major, floating *cols) noexcept nogil:
    if floating is float:
        c.fc_im2col_float(x, g, l0, l1, tap_major, cols)
    else:
        c.fc_im2col_double(x, g, l0, l1, tap_major, cols)


cdef inline void _col2im(const floating *cols, const fc_geom *g, Py_ssize_t l0,
                         Py_ssize_t l1, int tap_major, floating *x) noexcept nogil:
    if floating is float:
        c.fc_col2im_float(cols, g, l0, l1, tap_major, x)
    else:
        c.fc_col2im_double(cols, g, l0, l1, tap_major, x)


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

def im2col(const floating[:, :, :, ::1] x, g, out=None, bint tap_major=False):
    """(N, C, H, W) -> (N, C*kh*kw, Ho*Wo), rows (c, i, j), or (i, j, c) if
    tap_major.  # IN x  # OUT out or new"""
    cdef fc_geom gc = _geom(g, g.C)
    cdef Py_ssize_t N = g.N, C = g.C, L = g.Ho * g.Wo
    cdef Py_ssize_t K = C * g.kh * g.kw, HW = g.H * g.W, n
    out = _output(out, (N, K, L), np.asarray(x).dtype, "im2col columns")
    cdef floating[:, :, ::1] cols = out
    if out.size == 0:
        return out
    with nogil:
        for n in prange(N, schedule='dynamic', num_threads=_threads_for(N * K * L)):
            _im2col(&x[0, 0, 0, 0] + n * C * HW, &gc, 0, L, tap_major,
                    &cols[0, 0, 0] + n * K * L)
    return out


def col2im(const floating[:, :, ::1] cols, g, out=None, bint tap_major=False):
    """(N, C*kh*kw, Ho*Wo) -> (N, C, H, W), overlaps summed; rows as
    im2col's.  # IN cols  # OUT out or new"""
    cdef fc_geom gc = _geom(g, g.C)
    cdef Py_ssize_t N = g.N, C = g.C, L = g.Ho * g.Wo
    cdef Py_ssize_t K = C * g.kh * g.kw, HW = g.H * g.W, n
    out = _output(out, (N, C, g.H, g.W), np.asarray(cols).dtype, "col2im image")
    if cols.size == 0:
        out[...] = 0
        return out
    cdef floating[:, :, :, ::1] x = out
    if out.size == 0:
        return out
    with nogil:
        for n in prange(N, schedule='dynamic', num_threads=_threads_for(N * K * L)):
            _zero(&x[0, 0, 0, 0] + n * C * HW, C * HW)
            _col2im(&cols[0, 0, 0] + n * K * L, &gc, 0, L, tap_major,
                    &x[0, 0, 0, 0] + n * C * HW)
    return out


def _windows_tile(Py_ssize_t n, Py_ssize_t k, Py_ssize_t s, Py_ssize_t p, Py_ssize_t d,
                  Py_ssize_t out):
    """Whether the windows along one axis (input n, kernel k, stride s,
    padding p, dilation d, out windows) cover each input cell exactly once:
    k <= s, no gaps between them (k == s, or a single window), and they
    reach past the input's last cell."""
    return d == 1 and 0 < k <= s and (k == s or out == 1) and p >= 0 \
        and p + n <= (out - 1) * s + k


def phase_tiles(g):
    """Whether phase_merge can bring back g's im2col (see _windows_tile)."""
    return (_windows_tile(g.H, g.kh, g.sh, g.pt, g.dh, g.Ho)
            and _windows_tile(g.W, g.kw, g.sw, g.pl, g.dw, g.Wo))


def phase_merge(const floating[:, :, ::1] cols, g, floating[:, :, :, ::1] out,
                bint tap_major=False):
    """col2im of an im2col (rows as its tap_major) whose windows cover every
    cell of the image once (phase_tiles): each cell assigned once, out not
    read.  # IN cols  # OUT out"""
    cdef fc_geom gc = _geom(g, g.C)
    cdef Py_ssize_t N = g.N, K = g.C * g.kh * g.kw, L = g.Ho * g.Wo
    cdef Py_ssize_t CHW = g.C * g.H * g.W, n
    if not phase_tiles(g):
        raise ValueError("phase_merge: the windows must cover each cell once")
    if cols.shape[0] != N or cols.shape[1] != K or cols.shape[2] != L or out.shape[0] != N \
            or out.shape[1] != g.C or out.shape[2] != g.H or out.shape[3] != g.W:
        raise ValueError("phase_merge: cols or out does not match the geometry")
    if out.size == 0:
        return out
    with nogil:
        for n in prange(N, schedule='dynamic', num_threads=_threads_for(N * CHW)):
            if floating is float:
                c.fc_phase_merge_float(&cols[0, 0, 0] + n * K * L, &gc, tap_major,
                                       &out[0, 0, 0, 0] + n * CHW)
            else:
                c.fc_phase_merge_double(&cols[0, 0, 0] + n * K * L, &gc, tap_major,
                                        &out[0, 0, 0, 0] + n * CHW)
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


cdef int _item_gemm(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                    floating *work) noexcept nogil:
    """GEMM forward: item (a tile, or images side by side) of every group.
    Also grad_x of the flip route: a forward convolution of grad_out."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const floating *bias = <const floating *> a.bias
    cdef Py_ssize_t gi
    for gi in range(a.groups):
        _gemm_item(<const floating *> a.x + gi * a.Cg * a.HW, a.C * a.HW, a.N, a.g,
                   <const floating *> a.w + gi * a.wsize, a.Fg,
                   (bias + gi * a.Fg) if bias != NULL else NULL, a.relu, item, work,
                   <floating *> a.y + gi * a.Fg * a.L, a.ly)
    return c.FC_OK


def conv2d_gemm(const floating[:, :, :, ::1] x, const floating[::1] packed,
                b, g, bint relu, floating[:, :, :, ::1] y):
    """Forward convolution by the packed GEMM into y, from gemm_pack's
    filters; b the bias or None.  # IN x, packed, b  # OUT y"""
    cdef floating *tag = NULL
    cdef _conv a = _conv_of(g)
    cdef fc_geom gc = _geom(g, a.Cg)
    cdef fc_ylayout ly = _dense(a.F * a.L, g.Ho, g.Wo)
    cdef c.fc_loop loops[1]
    a.wsize = _packed_size(a.Fg, a.K, tag)
    _check_packed(packed.shape[0], a.groups * a.wsize, "GEMM")
    if a.N * a.F * a.L == 0:
        return
    _forward_args(&a, &gc, &x[0, 0, 0, 0], &packed[0], b, relu, &y[0, 0, 0, 0])
    a.ly = &ly
    cdef int nt = _threads_for(_mul(_mul(a.N, a.F), _mul(a.L, a.K)))
    cdef _Scratch s = _scratch("conv2d", "GEMM workspace", nt,
                               _work_size(&gc, a.Fg, &ly, tag) * <object> sizeof(floating))
    # work items: tiles over the batch
    loops[0] = _loop(<c.fc_fn> _item_gemm[floating], &a, _items(&gc, a.N, &ly, tag), True)
    _run("conv2d", s, loops, 1, tag)


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


cdef int _item_gw_pack(const void *ctx, Py_ssize_t r, Py_ssize_t item,
                       floating *work) noexcept nogil:
    """GEMM grad_weight, round r: grad_out's position block
    r*rblocks + item // groups of group item % groups, packed."""
    cdef const _conv *a = <const _conv *> ctx
    cdef Py_ssize_t r0 = r * a.rblocks, b = r0 + item // a.groups
    cdef Py_ssize_t gi = item % a.groups
    _gw_pack_a(<const floating *> a.gy + gi * a.Fg * a.L, a.F * a.L, a.g, a.Fg, a.N, b,
               <floating *> a.apack + (gi * a.rblocks + b - r0) * a.asz)
    return c.FC_OK


cdef int _item_gw_cols(const void *ctx, Py_ssize_t r, Py_ssize_t item,
                       floating *work) noexcept nogil:
    """GEMM grad_weight by column blocks, round r of position blocks: item
    (chunk, column block, group), chunk ch summing blocks
    [ch*gblocks/chunks, ...) into its partial sums (or grad_weight)."""
    cdef const _conv *a = <const _conv *> ctx
    cdef floating *gwout = <floating *> (a.partial if a.partial != NULL else a.gw)
    cdef const floating *apack = <const floating *> a.apack
    cdef Py_ssize_t r0 = r * a.rblocks, r1 = min(a.gblocks, r0 + a.rblocks)
    cdef Py_ssize_t ch = item // (a.gcols * a.groups), cb = (item // a.groups) % a.gcols
    cdef Py_ssize_t gi = item % a.groups
    cdef Py_ssize_t first = ch * a.gblocks // a.chunks
    cdef Py_ssize_t lo = max(r0, first), hi = min(r1, (ch + 1) * a.gblocks // a.chunks)
    if lo < hi:
        _gw_item(<const floating *> a.x + gi * a.Cg * a.HW, a.C * a.HW,
                 <const floating *> a.gy + gi * a.Fg * a.L, a.F * a.L, a.g, a.Fg, a.N,
                 lo, hi, cb, (apack + (gi * a.rblocks + lo - r0) * a.asz)
                 if apack != NULL else NULL, lo == first, work,
                 gwout + ch * a.F * a.K + gi * a.Fg * a.K)
    return c.FC_OK


cdef int _item_gw_chunk(const void *ctx, Py_ssize_t arg, Py_ssize_t ch,
                        floating *work) noexcept nogil:
    """GEMM grad_weight: chunk ch of the batch's positions,
    [ch*P/chunks, ...) with P = N*L, every group, into its partial sums
    (or grad_weight), zeroed here."""
    cdef const _conv *a = <const _conv *> ctx
    cdef floating *gwout = <floating *> (a.partial if a.partial != NULL else a.gw)
    cdef Py_ssize_t FK = a.F * a.K, P = a.N * a.L, gi
    _zero(gwout + ch * FK, FK)
    for gi in range(a.groups):
        _grad_weight(<const floating *> a.x + gi * a.Cg * a.HW, a.C * a.HW,
                     <const floating *> a.gy + gi * a.Fg * a.L, a.F * a.L, a.g, a.Fg,
                     ch * P // a.chunks, (ch + 1) * P // a.chunks, work,
                     gwout + ch * FK + gi * a.Fg * a.K)
    return c.FC_OK


cdef int _item_chunk_sum(const void *ctx, Py_ssize_t parts, Py_ssize_t item,
                         floating *work) noexcept nogil:
    """grad_weight elements [item*F*K/parts, ...): each the sum of its
    chunks' partial sums, in chunk order, so any split (and so any thread
    count) gives the same bits."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const floating *partial = <const floating *> a.partial
    cdef floating *gw = <floating *> a.gw
    cdef Py_ssize_t FK = a.F * a.K, p, ch
    cdef floating acc
    for p in range(item * FK // parts, (item + 1) * FK // parts):
        acc = 0
        for ch in range(a.chunks):
            acc = acc + partial[ch * FK + p]
        gw[p] = acc
    return c.FC_OK


cdef int _item_phases(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                      floating *work) noexcept nogil:
    """GEMM grad_x of a strided layer, phase by phase: item (images) of
    every group."""
    cdef const _conv *a = <const _conv *> ctx
    cdef Py_ssize_t gi
    for gi in range(a.groups):
        _grad_input_phases(<const floating *> a.gy + gi * a.Fg * a.L, a.F * a.L, a.N,
                           a.g, <const floating *> a.w + gi * a.wsize, a.Fg, item,
                           work, <floating *> a.gx + gi * a.Cg * a.HW, a.C * a.HW)
    return c.FC_OK


cdef int _item_col2im(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                      floating *work) noexcept nogil:
    """GEMM grad_x through col2im: item (image, group, channel block)."""
    cdef const _conv *a = <const _conv *> ctx
    cdef Py_ssize_t n = item // (a.groups * a.nblocks)
    cdef Py_ssize_t gi = (item // a.nblocks) % a.groups, blk = item % a.nblocks
    _grad_input(<const floating *> a.gy + (n * a.F + gi * a.Fg) * a.L, a.g,
                <const floating *> a.w + gi * a.wsize, a.Fg, blk, work,
                <floating *> a.gx + (n * a.C + gi * a.Cg) * a.HW)
    return c.FC_OK


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
    cdef floating *tag = NULL
    cdef _conv a = _conv_of(g)
    cdef Py_ssize_t N = a.N, C = a.C, F = a.F, groups = a.groups
    cdef Py_ssize_t Cg = a.Cg, Fg = a.Fg, FK = F * a.K, P = N * a.L
    cdef fc_geom gc = _geom(g, Cg)
    cdef Py_ssize_t wsize = _grad_work_size(&gc, Fg, tag)
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(a.L, a.K)))
    cdef const floating[::1] wtv
    cdef floating[:, :, :, ::1] gx
    cdef floating[:, :, :, ::1] gw
    # grad_x as a forward convolution of grad_out (flip route): its _conv
    # has the roles of x and y swapped
    cdef fc_geom gf = _flip_geom(&gc, Fg)
    cdef fc_ylayout fly = _dense(C * a.HW, g.H, g.W)
    cdef _conv flipped
    cdef bint flip = grad_input and _flip_route(g)
    # grad_x of a strided layer with as many channels, not 1x1 (whose col2im
    # is a plain scatter): phase by phase, each phase of grad_x a stride-1
    # convolution of grad_out (gemm.tmpl.h), on the forward tiles, written
    # in place: no col2im.
    cdef bint phases = grad_input and _phases_route(g, tag)
    cdef Py_ssize_t fitems = 0
    a.nblocks = _grad_input_blocks(&gc, tag)
    a.wsize = _grad_input_packed_size(g, tag)
    a.chunks = min(P, MAX_CHUNKS, max(1, CHUNK_BYTES // (FK * <Py_ssize_t> sizeof(floating))))
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
    cdef Py_ssize_t nrounds = 0, r, nloops = 0
    a.rblocks = 1
    if gwcols:
        a.gcols = _gw_col_blocks(&gc, Fg, tag)
        # measured: it pays for wide grad_w (many column blocks) and for
        # strided layers (a phase slab instead of im2col rows); 1x1 and
        # narrow stride-1 layers keep the per-chunk path
        gwcols = g.kh * g.kw > 1 and (a.gcols >= GW_MIN_COL_BLOCKS
                                      or g.sh > 1 or g.sw > 1)
    if gwcols:
        a.gblocks = _gw_blocks(&gc, N, tag)
        a.asz = _gw_apack_size(Fg, tag)
        if a.gcols >= GW_MIN_COL_BLOCKS:
            a.chunks = 1
        else:
            a.chunks = min(a.gblocks, MAX_CHUNKS,
                           max(1, CHUNK_BYTES // (FK * <Py_ssize_t> sizeof(floating))))
        # grad_out packed once for all column blocks, if there are several;
        # with one, each item packs its blocks as it goes (in cache)
        prepack = a.gcols > 1
        a.rblocks = max(1, min(a.gblocks, GW_A_BYTES // max(1, groups * a.asz * <Py_ssize_t> sizeof(floating))))
        if not prepack:
            a.rblocks = max(1, a.gblocks)
        nrounds = (a.gblocks + a.rblocks - 1) // a.rblocks
        wsize = max(wsize, _gw_work_size(&gc, Fg, tag))
    grad_x = None
    if grad_input:
        grad_x = _output(gx_out, (N, C, g.H, g.W), dtype, "grad_x")
        if not (flip or phases) or P == 0:      # col2im accumulates
            grad_x[...] = 0
        if wtpack is None:
            wtpack = gemm_pack_grad_input(w, g)
        _check_packed(wtpack.shape[0], groups * a.wsize, "GEMM grad_x")
        if wtpack.shape[0] > 0:
            wtv = wtpack
            a.w = &wtv[0]
        if grad_x.size > 0:
            gx = grad_x
            a.gx = &gx[0, 0, 0, 0]
    grad_w = _output(gw_out, (F, Cg, g.kh, g.kw), dtype, "grad_weight")
    if P == 0:
        grad_w[...] = 0
        return grad_x, grad_w
    gw = grad_w
    a.g = &gc
    a.x = &x[0, 0, 0, 0]
    a.gy = &gy[0, 0, 0, 0]
    a.gw = &gw[0, 0, 0, 0]
    # the shared scratch: grad_w's partial sums (none for one chunk: grad_w
    # is written in place), then packed grad_out
    cdef Py_ssize_t npartial = a.chunks * FK if a.chunks > 1 else 0
    cdef _Scratch s = _scratch(
        "conv2d_backward", "GEMM workspace", nt, wsize * <object> sizeof(floating),
        ((a.chunks * <object> FK if a.chunks > 1 else 0)
         + (groups * <object> a.rblocks * a.asz if prepack else 0)) * sizeof(floating))
    if a.chunks > 1:
        a.partial = s.shared
    if prepack:
        a.apack = <floating *> s.shared + npartial
    # the loops, in order: grad_w (rounds of position blocks, in each their
    # grad_out packed, then the items; or the chunks), grad_x, the sums of
    # the chunks
    loops_mem = bytearray((2 * nrounds + 3) * sizeof(c.fc_loop))
    cdef c.fc_loop *loops = <c.fc_loop *> <char *> loops_mem
    if gwcols:
        for r in range(nrounds):
            if prepack:
                loops[nloops] = _loop(<c.fc_fn> _item_gw_pack[floating], &a,
                                      (min(a.gblocks, (r + 1) * a.rblocks) - r * a.rblocks)
                                      * groups, False, r)
                nloops += 1
            loops[nloops] = _loop(<c.fc_fn> _item_gw_cols[floating], &a,
                                  a.chunks * a.gcols * groups, True, r)
            nloops += 1
    else:
        loops[nloops] = _loop(<c.fc_fn> _item_gw_chunk[floating], &a, a.chunks, True)
        nloops += 1
    if flip:
        # x -> y of the forward is grad_out -> grad_x here
        flipped = a
        flipped.g = &gf
        flipped.ly = &fly
        flipped.x = a.gy
        flipped.y = a.gx
        flipped.C = F
        flipped.Cg = Fg
        flipped.HW = a.L
        flipped.F = C
        flipped.Fg = Cg
        flipped.L = a.HW
        flipped.bias = NULL
        flipped.relu = 0
        loops[nloops] = _loop(<c.fc_fn> _item_gemm[floating], &flipped, fitems, True)
        nloops += 1
    elif phases:
        loops[nloops] = _loop(<c.fc_fn> _item_phases[floating], &a, fitems, True)
        nloops += 1
    elif grad_input:
        loops[nloops] = _loop(<c.fc_fn> _item_col2im[floating], &a,
                              N * groups * a.nblocks, True)
        nloops += 1
    if a.chunks > 1:
        loops[nloops] = _loop(<c.fc_fn> _item_chunk_sum[floating], &a, nt, False, nt)
        nloops += 1
    _run("conv2d_backward", s, loops, nloops, tag)
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
                            Py_ssize_t panel, int flip, floating *packed) noexcept nogil:
    if floating is float:
        c.fc_wino_pack_weights_float(w, F, C, m, panel, flip, packed)
    else:
        c.fc_wino_pack_weights_double(w, F, C, m, panel, flip, packed)


cdef inline void _wino_schedule(const fc_geom *g, Py_ssize_t N, Py_ssize_t F, int m,
                                Py_ssize_t groups, int threads, c.fc_wino_sched *s,
                                floating *tag) noexcept nogil:
    if floating is float:
        c.fc_wino_schedule_float(g, N, F, m, groups, threads, s)
    else:
        c.fc_wino_schedule_double(g, N, F, m, groups, threads, s)


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


def wino_pack(const floating[:, :, :, ::1] w, Py_ssize_t groups, int m, out=None,
              bint flip=False):
    """The transformed filters U = G g G^T of every group, (groups * size,),
    into out if given (its size checked); flip: those of the transposed
    convolution (grad_x), whose filter c has per group the layer's filters
    as channels, each kernel rotated by 180 degrees.  # IN w  # OUT out or new"""
    cdef Py_ssize_t F = w.shape[0], Cg = w.shape[1], Fg = F // groups
    cdef Py_ssize_t fp = Cg if flip else Fg, cp = Fg if flip else Cg  # packed F, C
    cdef floating *tag = NULL
    cdef Py_ssize_t size = _wino_packed_size(fp, cp, m, tag)
    cdef Py_ssize_t nr = _wino_panel(tag), npan = (fp + nr - 1) // nr
    cdef Py_ssize_t pw, pg
    out = _output(out, (groups * size,), np.asarray(w).dtype, "packed filters", True)
    cdef floating[::1] u = out
    if out.size == 0:
        return out
    with nogil:
        for pw in prange(groups * npan, schedule='static',
                         num_threads=_threads_for(F * Cg * 36 * (m + 2) * (m + 2))):
            pg = pw // npan
            _wino_pack(&w[0, 0, 0, 0] + pg * Fg * Cg * 9, fp, cp, m, pw - pg * npan,
                       flip, &u[0] + pg * size)
    return out


cdef int _item_wino_phase(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                          floating *work) noexcept nogil:
    """Winograd forward, phased (sched.phased): phase arg of item item //
    groups of group item % groups, V and M in the group's part of a.pre."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const c.fc_wino_sched *s = <const c.fc_wino_sched *> a.sched
    cdef const floating *bias = <const floating *> a.bias
    cdef Py_ssize_t gi = item % a.groups
    cdef const floating *x = <const floating *> a.x + gi * a.Cg * a.HW
    cdef const floating *w = <const floating *> a.w + gi * a.wsize
    cdef const floating *b = (bias + gi * a.Fg) if bias != NULL else NULL
    cdef floating *shared = <floating *> a.pre + gi * s.shared
    cdef floating *y = <floating *> a.y + gi * a.Fg * a.L
    if floating is float:
        c.fc_conv2d_wino_phase_float(<int> arg, x, a.C * a.HW, a.N, a.g, a.m, w, a.Fg, b,
                                     a.relu, s, item // a.groups, work, shared, y,
                                     a.F * a.L)
    else:
        c.fc_conv2d_wino_phase_double(<int> arg, x, a.C * a.HW, a.N, a.g, a.m, w, a.Fg, b,
                                      a.relu, s, item // a.groups, work, shared, y,
                                      a.F * a.L)
    return c.FC_OK


cdef int _item_wino(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                    floating *work) noexcept nogil:
    """Winograd forward: block item // groups of group item % groups."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const floating *bias = <const floating *> a.bias
    cdef Py_ssize_t gi = item % a.groups
    _wino(<const floating *> a.x + gi * a.Cg * a.HW, a.C * a.HW, a.N, a.g, a.m,
          <const floating *> a.w + gi * a.wsize, a.Fg,
          (bias + gi * a.Fg) if bias != NULL else NULL, a.relu,
          <const c.fc_wino_sched *> a.sched, item // a.groups, work,
          <floating *> a.y + gi * a.Fg * a.L, a.F * a.L)
    return c.FC_OK


def conv2d_winograd(const floating[:, :, :, ::1] x, const floating[::1] packed,
                    b, g, int m, bint relu, floating[:, :, :, ::1] y):
    """Forward 3x3 stride-1 convolution by Winograd F(m x m, 3x3) into y,
    from wino_pack's filters.  # IN x, packed, b  # OUT y"""
    cdef floating *tag = NULL
    cdef _conv a = _conv_of(g)
    cdef fc_geom gc = _geom(g, a.Cg)
    cdef int nt = _threads_for(_mul(_mul(a.N, a.F), _mul(a.L, a.Cg * 9)))
    cdef c.fc_wino_sched sched
    cdef c.fc_loop loops[3]
    a.wsize = _wino_packed_size(a.Fg, a.Cg, m, tag)
    _check_packed(packed.shape[0], a.groups * a.wsize, f"Winograd F({m}x{m})")
    if a.N * a.L == 0:
        return
    _forward_args(&a, &gc, &x[0, 0, 0, 0], &packed[0], b, relu, &y[0, 0, 0, 0])
    _wino_schedule(&gc, a.N, a.Fg, m, a.groups, nt, &sched, tag)
    a.sched = &sched
    a.m = m
    cdef _Scratch s = _scratch("conv2d", "Winograd workspace", nt,
                               sched.work * <object> sizeof(floating),
                               a.groups * <object> sched.shared * sizeof(floating))
    if not sched.phased:
        loops[0] = _loop(<c.fc_fn> _item_wino[floating], &a, sched.blocks * a.groups, True)
        _run("conv2d", s, loops, 1, tag)
        return
    # phased: V of all tiles, the products position by position, then y
    a.pre = s.shared
    loops[0] = _loop(<c.fc_fn> _item_wino_phase[floating], &a, sched.blocks * a.groups,
                     True, 0)
    loops[1] = _loop(<c.fc_fn> _item_wino_phase[floating], &a,
                     (m + 2) * (m + 2) * a.groups, True, 1)
    loops[2] = _loop(<c.fc_fn> _item_wino_phase[floating], &a, sched.blocks * a.groups,
                     True, 2)
    _run("conv2d", s, loops, 3, tag)


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
                          const floating *pre, floating *wsum, double *bsum) noexcept nogil:
    if floating is float:
        c.fc_wino_grad_weight_float(x, x_stride, gy, gy_stride, N, g, m, F, s,
                                    chunk, xi0, xi1, work, pre, wsum, bsum)
    else:
        c.fc_wino_grad_weight_double(x, x_stride, gy, gy_stride, N, g, m, F, s,
                                     chunk, xi0, xi1, work, pre, wsum, bsum)


cdef inline void _wino_gw_transform(const floating *x, Py_ssize_t x_stride,
                                    const floating *gy, Py_ssize_t gy_stride, Py_ssize_t N,
                                    const fc_geom *g, int m, Py_ssize_t F,
                                    const c.fc_wino_gw_sched *s, Py_ssize_t block,
                                    Py_ssize_t part, floating *work,
                                    floating *dst) noexcept nogil:
    if floating is float:
        c.fc_wino_gw_transform_float(x, x_stride, gy, gy_stride, N, g, m, F, s, block,
                                     part, work, dst)
    else:
        c.fc_wino_gw_transform_double(x, x_stride, gy, gy_stride, N, g, m, F, s, block,
                                      part, work, dst)


cdef inline void _wino_gw_finish(const floating *wsum, Py_ssize_t chunks,
                                 Py_ssize_t wstride, Py_ssize_t F, Py_ssize_t C, int m,
                                 Py_ssize_t f, floating *gw) noexcept nogil:
    if floating is float:
        c.fc_wino_gw_finish_float(wsum, chunks, wstride, F, C, m, f, gw)
    else:
        c.fc_wino_gw_finish_double(wsum, chunks, wstride, F, C, m, f, gw)


cdef int _item_wino_gw_transform(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                                 floating *work) noexcept nogil:
    """Winograd grad_weight, positions shared between items: item (group,
    block, part) of the blocks' transforms, into a.pre."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const c.fc_wino_gw_sched *s = <const c.fc_wino_gw_sched *> a.sched
    cdef Py_ssize_t part = item % s.parts, b = (item // s.parts) % s.blocks
    cdef Py_ssize_t gi = item // (s.parts * s.blocks)
    _wino_gw_transform(<const floating *> a.x + gi * a.Cg * a.HW, a.C * a.HW,
                       <const floating *> a.gy + gi * a.Fg * a.L, a.F * a.L, a.N, a.g,
                       a.m, a.Fg, s, b, part, work,
                       <floating *> a.pre + (gi * s.blocks + b) * s.tsize)
    return c.FC_OK


cdef int _item_wino_gw(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                       floating *work) noexcept nogil:
    """Winograd grad_weight: item (group, chunk, share of the transformed
    positions) into the chunk's partial sums and grad_bias."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const c.fc_wino_gw_sched *s = <const c.fc_wino_gw_sched *> a.sched
    cdef Py_ssize_t nn = (a.m + 2) * (a.m + 2), xg = item % a.nxg
    cdef Py_ssize_t ch = (item // a.nxg) % s.chunks, gi = item // (a.nxg * s.chunks)
    cdef const floating *pre = NULL
    if a.pre != NULL:
        pre = <const floating *> a.pre + gi * s.blocks * s.tsize
    _wino_gw(<const floating *> a.x + gi * a.Cg * a.HW, a.C * a.HW,
             <const floating *> a.gy + gi * a.Fg * a.L, a.F * a.L, a.N, a.g, a.m, a.Fg,
             s, ch, xg * nn // a.nxg, (xg + 1) * nn // a.nxg, work, pre,
             <floating *> a.partial + (gi * s.chunks + ch) * s.wsize,
             a.bsum + ch * a.F + gi * a.Fg)
    return c.FC_OK


cdef int _item_wino_gw_finish(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                              floating *work) noexcept nogil:
    """Winograd grad_weight: filter item's gradient from its chunks' partial
    sums, and its grad_bias (the chunks in order)."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const c.fc_wino_gw_sched *s = <const c.fc_wino_gw_sched *> a.sched
    cdef Py_ssize_t gi = item // a.Fg, ch
    cdef double acc = 0
    _wino_gw_finish(<const floating *> a.partial + gi * s.chunks * s.wsize, s.chunks,
                    s.wsize, a.Fg, a.Cg, a.m, item - gi * a.Fg,
                    <floating *> a.gw + item * a.Cg * 9)
    for ch in range(s.chunks):
        acc = acc + a.bsum[ch * a.F + item]
    (<floating *> a.gb)[item] = <floating> acc
    return c.FC_OK


def wino_grad_weight(const floating[:, :, :, ::1] gy, const floating[:, :, :, ::1] x,
                     g, int m, gw_out=None):
    """(grad_weight, grad_bias) of a 3x3 stride-1 layer by Winograd
    F(m x m, 3x3); grad_bias summed in double along the way.
    # IN gy, x  # OUT gw_out or new, new

    Chunks of tiles (fixed by the shapes) sum into partial sums added in
    order, so the result does not depend on the thread count; with fewer
    chunks than threads the work items also split the transformed
    positions xi, after a first loop has transformed every block once
    (shared, within the schedule's budget; beyond, each item redoes its
    chunk's transforms)."""
    cdef floating *tag = NULL
    cdef _conv a = _conv_of(g)
    cdef fc_geom gc = _geom(g, a.Cg)
    cdef c.fc_wino_gw_sched sched
    cdef int nt = _threads_for(_mul(_mul(a.N, a.F), _mul(a.L, a.Cg * 9)))
    cdef floating[:, :, :, ::1] gw
    cdef floating[::1] gbv
    cdef c.fc_loop loops[3]
    dtype = np.asarray(x).dtype
    grad_w = _output(gw_out, (a.F, a.Cg, 3, 3), dtype, "grad_weight")
    grad_b = np.zeros(a.F, dtype=dtype)
    if a.N * a.L == 0 or a.Cg == 0:
        grad_w[...] = 0
        return grad_w, grad_b
    gw = grad_w
    gbv = grad_b
    _wino_gw_schedule(&gc, a.N, a.Fg, m, &sched, tag)
    a.g = &gc
    a.sched = &sched
    a.x = &x[0, 0, 0, 0]
    a.gy = &gy[0, 0, 0, 0]
    a.gw = &gw[0, 0, 0, 0]
    a.gb = &gbv[0]
    a.m = m
    # items: (group, chunk, share of the positions xi)
    a.nxg = min((m + 2) * (m + 2),
                max(1, (nt + a.groups * sched.chunks - 1) // (a.groups * sched.chunks)))
    # items sharing a chunk's positions: its blocks transformed once, first
    # (sched.pre: 0 beyond the schedule's budget)
    pre = (_whole_lines(a.groups * <object> sched.pre * sizeof(floating))
           if a.nxg > 1 else 0)
    # shared: the transforms (or none), the chunks' grad_bias (chunks, F) in
    # double, then the partial sums
    cdef _Scratch s = _scratch(
        "conv2d_backward", "Winograd workspace", nt, sched.work * <object> sizeof(floating),
        pre + a.F * <object> sched.chunks * sizeof(double)
        + a.groups * <object> sched.chunks * sched.wsize * sizeof(floating))
    a.bsum = <double *> (s.shared + <Py_ssize_t> pre)
    a.partial = a.bsum + a.F * sched.chunks
    cdef int n = 0
    if pre:
        a.pre = s.shared
        loops[n] = _loop(<c.fc_fn> _item_wino_gw_transform[floating], &a,
                         a.groups * sched.blocks * sched.parts, True)
        n += 1
    loops[n] = _loop(<c.fc_fn> _item_wino_gw[floating], &a,
                     a.groups * sched.chunks * a.nxg, True)
    loops[n + 1] = _loop(<c.fc_fn> _item_wino_gw_finish[floating], &a, a.F, False)
    _run("conv2d_backward", s, loops, n + 2, tag)
    return grad_w, grad_b


# --------------------------------------------------------------------------
# conv2d, direct path: one output plane (n, f) / input plane (n, c) / filter
# f per iteration.
# --------------------------------------------------------------------------

cdef int _item_direct(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                      floating *work) noexcept nogil:
    """Direct forward: output planes (n, f), p = n*F + f in
    [item*per, (item+1)*per)."""
    cdef const _conv *a = <const _conv *> ctx
    cdef const floating *bias = <const floating *> a.bias
    cdef Py_ssize_t p, n, f
    for p in range(item * a.per, min((item + 1) * a.per, a.N * a.F)):
        n = p // a.F
        f = p - n * a.F
        _direct(<const floating *> a.x + (n * a.C + (f // a.Fg) * a.Cg) * a.HW,
                <const floating *> a.w + f * a.K, bias[f] if bias != NULL else 0,
                a.relu, a.g, work, <floating *> a.y + p * a.L)
    return c.FC_OK


cdef int _item_direct_gx(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                         floating *work) noexcept nogil:
    """Direct grad_x: input planes (n, c), p = n*C + c in
    [item*per, (item+1)*per)."""
    cdef const _conv *a = <const _conv *> ctx
    cdef Py_ssize_t KK = a.g.kh * a.g.kw, p, n, ch, gi
    for p in range(item * a.per, min((item + 1) * a.per, a.N * a.C)):
        n = p // a.C
        ch = p - n * a.C
        gi = ch // a.Cg
        _direct_grad_input(<const floating *> a.gy + (n * a.F + gi * a.Fg) * a.L,
                           <const floating *> a.w + gi * a.Fg * a.K + (ch - gi * a.Cg) * KK,
                           a.Fg, a.g, work, <floating *> a.gx + p * a.HW)
    return c.FC_OK


cdef int _item_direct_gw(const void *ctx, Py_ssize_t arg, Py_ssize_t f,
                         floating *work) noexcept nogil:
    """Direct grad_weight of filter f, summed over the images in order (no
    shared reduction)."""
    cdef const _conv *a = <const _conv *> ctx
    cdef Py_ssize_t n
    for n in range(a.N):
        _direct_grad_weight(<const floating *> a.x + (n * a.C + (f // a.Fg) * a.Cg) * a.HW,
                            <const floating *> a.gy + (n * a.F + f) * a.L, a.g, work,
                            <floating *> a.gw + f * a.K)
    return c.FC_OK


def conv2d_direct(const floating[:, :, :, ::1] x,
                  const floating[:, :, :, ::1] w,
                  b, g, bint relu, floating[:, :, :, ::1] y):
    """Forward convolution by the direct kernel into y; b the bias or None.
    # IN x, w, b  # OUT y"""
    cdef floating *tag = NULL
    cdef _conv a = _conv_of(g)
    cdef fc_geom gc = _geom(g, a.Cg)
    cdef int nt = _threads_for(_mul(_mul(a.N, a.F), _mul(a.L, a.K)))
    cdef c.fc_loop loops[1]
    if a.N * a.F * a.L == 0:
        return
    _forward_args(&a, &gc, &x[0, 0, 0, 0], &w[0, 0, 0, 0], b, relu, &y[0, 0, 0, 0])
    # depthwise planes are small: chunks of them, not one scheduler round
    # trip each (that made 2 threads slower than 1)
    a.per = _plane_chunk(_mul(a.L, a.K))
    # one cache line more per thread (and whole lines), so threads never
    # share one
    cdef _Scratch s = _scratch(
        "conv2d", "direct workspace", nt,
        _direct_work_size(&gc, 1, tag) * <object> sizeof(floating) + 64)
    loops[0] = _loop(<c.fc_fn> _item_direct[floating], &a,
                     (a.N * a.F + a.per - 1) // a.per, True)
    _run("conv2d", s, loops, 1, tag)


def conv2d_direct_backward(const floating[:, :, :, ::1] gy,
                           const floating[:, :, :, ::1] x,
                           const floating[:, :, :, ::1] w, g,
                           bint grad_input=True, gx_out=None, gw_out=None):
    """(grad_x, grad_weight) by the direct kernels; grad_x is None unless
    grad_input; gx_out, gw_out: outputs (checked by the caller) or None.
    # IN gy, x, w  # OUT gx_out, gw_out or new"""
    cdef floating *tag = NULL
    cdef _conv a = _conv_of(g)
    cdef fc_geom gc = _geom(g, a.Cg)
    cdef int nt = _threads_for(_mul(_mul(a.N, a.F), _mul(a.L, a.K)))
    cdef floating[:, :, :, ::1] gx
    cdef floating[:, :, :, ::1] gw
    cdef c.fc_loop loops[2]
    cdef int nloops = 0
    dtype = np.asarray(x).dtype
    grad_x = _output(gx_out, (a.N, a.C, g.H, g.W), dtype, "grad_x") if grad_input else None
    grad_w = _output(gw_out, (a.F, a.Cg, g.kh, g.kw), dtype, "grad_weight")
    grad_w[...] = 0
    if a.N == 0 or a.L == 0:
        if grad_x is not None:
            grad_x[...] = 0
        return grad_x, grad_w
    gw = grad_w
    a.g = &gc
    a.x = &x[0, 0, 0, 0]
    a.gy = &gy[0, 0, 0, 0]
    a.w = &w[0, 0, 0, 0]
    a.gw = &gw[0, 0, 0, 0]
    if grad_input:
        gx = grad_x                                     # every plane written
        a.gx = &gx[0, 0, 0, 0]
        a.per = _plane_chunk(_mul(a.HW, a.Fg * g.kh * g.kw))
        loops[nloops] = _loop(<c.fc_fn> _item_direct_gx[floating], &a,
                              (a.N * a.C + a.per - 1) // a.per, True)
        nloops += 1
    loops[nloops] = _loop(<c.fc_fn> _item_direct_gw[floating], &a, a.F, True)
    nloops += 1
    # one cache line more per thread (and whole lines), so threads never
    # share one
    cdef _Scratch s = _scratch(
        "conv2d_backward", "direct workspace", nt,
        _direct_work_size(&gc, a.Fg, tag) * <object> sizeof(floating) + 64)
    _run("conv2d_backward", s, loops, nloops, tag)
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


cdef struct _unpool:
    # max-pool backward over planes (or volumes) of L outputs and HW inputs
    const void *gy
    const int64_t *idx
    void *gx
    Py_ssize_t planes, per, L, HW


cdef int _item_unpool(const void *ctx, Py_ssize_t arg, Py_ssize_t item,
                      floating *work) noexcept nogil:
    """Max-pool backward: planes [item*per, (item+1)*per) of grad_x zeroed,
    then grad_out added at the indices.  Returns the worst status of its
    planes (FC_EINDEX: an index outside its plane)."""
    cdef const _unpool *u = <const _unpool *> ctx
    cdef floating *gx = <floating *> u.gx
    cdef Py_ssize_t p
    cdef int status, worst = c.FC_OK
    for p in range(item * u.per, min((item + 1) * u.per, u.planes)):
        _zero(gx + p * u.HW, u.HW)
        status = _max_pool_backward(<const floating *> u.gy + p * u.L, u.idx + p * u.L,
                                    u.L, u.HW, gx + p * u.HW)
        if status < worst:
            worst = status
    return worst


cdef int _max_unpool(op, const floating *gy, const int64_t *idx, floating *gx,
                     Py_ssize_t planes, Py_ssize_t L, Py_ssize_t HW,
                     index_error) except -1:
    """grad_x (planes, HW) of max pooling from gy and the indices (planes,
    L); a ValueError (index_error()) for an index outside its plane, once
    every plane is done."""
    cdef _unpool u
    cdef c.fc_loop loops[1]
    u.gy = gy
    u.idx = idx
    u.gx = gx
    u.planes = planes
    u.L = L
    u.HW = HW
    u.per = _plane_chunk(HW + L)
    cdef _Scratch s = _scratch(op, "workspace", _threads_for(_mul(planes, HW + L)))
    loops[0] = _loop(<c.fc_fn> _item_unpool[floating], &u, (planes + u.per - 1) // u.per,
                     True)
    return _run(op, s, loops, 1, gx, index_error)


def max_pool2d_backward(const floating[:, :, :, ::1] gy,
                        const int64_t[:, :, :, ::1] indices, input_shape,
                        index_error=None):
    """Scatter-add gy through the indices into a new grad_x.  An index
    outside its plane is a ValueError, index_error() if given.
    # IN gy, indices  # OUT new"""
    cdef Py_ssize_t N = input_shape[0], C = input_shape[1]
    cdef Py_ssize_t HW = input_shape[2] * input_shape[3]
    if gy.size == 0:
        return np.zeros(tuple(input_shape), dtype=np.asarray(gy).dtype)
    out = np.empty(tuple(input_shape), dtype=np.asarray(gy).dtype)
    cdef floating[:, :, :, ::1] gx = out
    if out.size == 0:           # every index is out of range of an empty plane
        _check_status("max_pool2d_backward", c.FC_EINDEX, index_error)
    _max_unpool("max_pool2d_backward", &gy[0, 0, 0, 0], &indices[0, 0, 0, 0],
                &gx[0, 0, 0, 0], N * C, gy.shape[2] * gy.shape[3], HW, index_error)
    return out


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
                        const int64_t[:, :, :, :, ::1] indices, input_shape,
                        index_error=None):
    """Scatter-add gy through the indices into a new grad_x.  An index
    outside its volume is a ValueError, index_error() if given.
    # IN gy, indices  # OUT new"""
    cdef Py_ssize_t N = input_shape[0], C = input_shape[1]
    cdef Py_ssize_t DHW = input_shape[2] * input_shape[3] * input_shape[4]
    if gy.size == 0:
        return np.zeros(tuple(input_shape), dtype=np.asarray(gy).dtype)
    out = np.empty(tuple(input_shape), dtype=np.asarray(gy).dtype)
    cdef floating[:, :, :, :, ::1] gx = out
    if out.size == 0:           # every index is out of range of an empty volume
        _check_status("max_pool3d_backward", c.FC_EINDEX, index_error)
    _max_unpool("max_pool3d_backward", &gy[0, 0, 0, 0, 0], &indices[0, 0, 0, 0, 0],
                &gx[0, 0, 0, 0, 0], N * C, gy.shape[2] * gy.shape[3] * gy.shape[4],
                DHW, index_error)
    return out


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


cdef struct _lc:
    # a locally connected call as its work items see it (pointers of the
    # call's dtype): xt/gxt the padded image-innermost input and its
    # gradient, gp their geometry, off the taps' offsets in them
    const fc_geom *g
    const fc_geom *gp
    const Py_ssize_t *off
    const void *xt
    const void *w
    const void *bias
    const void *gy
    void *y
    void *gxt
    void *gx
    void *gw
    void *gb
    Py_ssize_t N, F, Ho, Wo, band


cdef int _item_lc(const void *ctx, Py_ssize_t arg, Py_ssize_t r,
                  floating *work) noexcept nogil:
    """Locally connected forward: output row r of every image."""
    cdef const _lc *a = <const _lc *> ctx
    _lc_forward(<const floating *> a.xt, a.gp, a.off, a.N, <const floating *> a.w,
                <const floating *> a.bias, a.F, r * a.Wo, (r + 1) * a.Wo, work,
                <floating *> a.y)
    return c.FC_OK


cdef int _item_lc_band(const void *ctx, Py_ssize_t phase, Py_ssize_t item,
                       floating *work) noexcept nogil:
    """Locally connected backward: band 2*item + phase of output rows (the
    even bands' input windows are disjoint, and so are the odd ones')."""
    cdef const _lc *a = <const _lc *> ctx
    cdef Py_ssize_t b0 = (2 * item + phase) * a.band, b1 = min(b0 + a.band, a.Ho)
    _lc_backward(<const floating *> a.gy, <const floating *> a.xt, a.gp, a.off, a.N,
                 <const floating *> a.w, a.F, b0 * a.Wo, b1 * a.Wo, work,
                 <floating *> a.gxt, <floating *> a.gw, <floating *> a.gb)
    return c.FC_OK


cdef int _item_lc_unpack(const void *ctx, Py_ssize_t arg, Py_ssize_t row,
                         floating *work) noexcept nogil:
    """Locally connected backward: grad_x's row (c, h) from gxt."""
    cdef const _lc *a = <const _lc *> ctx
    _lc_unpack_row(<const floating *> a.gxt, a.g, a.N, row, <floating *> a.gx)
    return c.FC_OK


cdef _Scratch _lc_scratch(op, fc_geom *g, fc_geom *gp, _lc *a, int nt,
                          Py_ssize_t itemsize):
    """The scratch of a locally connected call: the taps' offsets (shared),
    written here, and the threads' workspaces."""
    cdef Py_ssize_t K = g.C * g.kh * g.kw
    cdef _Scratch s = _scratch(op, "workspace", nt,
                               c.fc_lc_work_size(g, a.N, a.F) * <object> itemsize,
                               K * <object> sizeof(Py_ssize_t))
    c.fc_lc_offsets(gp, a.N, <Py_ssize_t *> s.shared)
    a.g = g
    a.gp = gp
    a.off = <const Py_ssize_t *> s.shared
    return s


def locally_connected2d(const floating[:, :, :, ::1] x,
                        const floating[:, :, :, :, :, ::1] w,
                        const floating[:, :, ::1] b, g):
    """Forward pass; b may be None.  # IN x, w, b  # OUT new array"""
    cdef floating *tag = NULL
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, L = g.Ho * g.Wo
    cdef Py_ssize_t K = C * g.kh * g.kw
    cdef fc_geom gc = _geom(g, C)
    cdef fc_geom gp
    c.fc_lc_padded_geom(&gc, &gp)
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef _lc a
    cdef c.fc_loop loops[1]
    memset(&a, 0, sizeof(a))
    a.N = N
    a.F = F
    a.Ho = g.Ho
    a.Wo = g.Wo
    if b is not None:
        a.bias = &b[0, 0, 0]
    out = np.empty((N, F, g.Ho, g.Wo), dtype=np.asarray(x).dtype)
    cdef floating[:, :, :, ::1] y = out
    if out.size == 0:
        return out
    cdef const floating[:, :, :, ::1] xt = _lc_pack(x, &gc, &gp, nt)
    cdef _Scratch s = _lc_scratch("locally_connected2d", &gc, &gp, &a, nt,
                                  sizeof(floating))
    a.xt = &xt[0, 0, 0, 0]
    a.w = &w[0, 0, 0, 0, 0, 0]
    a.y = &y[0, 0, 0, 0]
    loops[0] = _loop(<c.fc_fn> _item_lc[floating], &a, a.Ho, True)
    _run("locally_connected2d", s, loops, 1, tag)
    return out


def locally_connected2d_backward(const floating[:, :, :, ::1] gy,
                                 const floating[:, :, :, ::1] x,
                                 const floating[:, :, :, :, :, ::1] w, g):
    """(grad_x, grad_weight, grad_bias).  # IN all  # OUT new arrays"""
    cdef floating *tag = NULL
    cdef Py_ssize_t N = g.N, C = g.C, F = g.F, L = g.Ho * g.Wo
    cdef Py_ssize_t K = C * g.kh * g.kw
    cdef fc_geom gc = _geom(g, C)
    cdef fc_geom gp
    c.fc_lc_padded_geom(&gc, &gp)
    cdef int nt = _threads_for(_mul(_mul(N, F), _mul(L, K)))
    cdef _lc a
    cdef c.fc_loop loops[3]
    cdef Py_ssize_t nbands
    memset(&a, 0, sizeof(a))
    a.N = N
    a.F = F
    a.Ho = g.Ho
    a.Wo = g.Wo
    a.band = c.fc_lc_band_rows(&gc)
    nbands = (a.Ho + a.band - 1) // a.band
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
    cdef _Scratch s = _lc_scratch("locally_connected2d_backward", &gc, &gp, &a, nt,
                                  sizeof(floating))
    a.gy = &gy[0, 0, 0, 0]
    a.xt = &xt[0, 0, 0, 0]
    a.w = &w[0, 0, 0, 0, 0, 0]
    a.gxt = &gxt[0, 0, 0, 0]
    a.gx = &gx[0, 0, 0, 0]
    a.gw = &gw[0, 0, 0, 0, 0, 0]
    a.gb = &gb[0, 0, 0]
    # phase 0: even bands (disjoint input rows), then phase 1: odd, then
    # grad_x's rows out of gxt
    loops[0] = _loop(<c.fc_fn> _item_lc_band[floating], &a, (nbands + 1) // 2, True, 0)
    loops[1] = _loop(<c.fc_fn> _item_lc_band[floating], &a, nbands // 2, True, 1)
    loops[2] = _loop(<c.fc_fn> _item_lc_unpack[floating], &a, C * g.H, False)
    _run("locally_connected2d_backward", s, loops, 3, tag)
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


cdef struct _mm:
    # out (M x Ncols) = A (M x Kd) @ B (Kd x Ncols) (+ bias, ReLU), as the
    # work items see it (pointers of the call's dtype); A packed first
    const void *a
    const void *b
    const void *bias
    void *packed
    void *out
    Py_ssize_t lda, ldb, ldc, M, Kd, Ncols
    int at, bt, relu


cdef int _item_mm_pack(const void *ctx, Py_ssize_t arg, Py_ssize_t panel,
                       floating *work) noexcept nogil:
    """Matrix product: A's panel of mr rows, packed."""
    cdef const _mm *m = <const _mm *> ctx
    if floating is float:
        c.fc_matmul_pack_a_float(<const float *> m.a, m.lda, m.at, m.M, m.Kd, panel,
                                 <float *> m.packed)
    else:
        c.fc_matmul_pack_a_double(<const double *> m.a, m.lda, m.at, m.M, m.Kd, panel,
                                  <double *> m.packed)
    return c.FC_OK


cdef int _item_mm_panel(const void *ctx, Py_ssize_t arg, Py_ssize_t panel,
                        floating *work) noexcept nogil:
    """Matrix product: the output's column panel."""
    cdef const _mm *m = <const _mm *> ctx
    if floating is float:
        c.fc_matmul_panel_float(<const float *> m.packed, m.M, m.Kd, <const float *> m.b,
                                m.ldb, m.bt, m.Ncols, <const float *> m.bias, m.relu, 0,
                                panel, work, <float *> m.out, m.ldc)
    else:
        c.fc_matmul_panel_double(<const double *> m.packed, m.M, m.Kd,
                                 <const double *> m.b, m.ldb, m.bt, m.Ncols,
                                 <const double *> m.bias, m.relu, 0, panel, work,
                                 <double *> m.out, m.ldc)
    return c.FC_OK


cdef int _matmul(const floating *a, Py_ssize_t lda, bint at, Py_ssize_t M,
                 Py_ssize_t Kd, const floating *b, Py_ssize_t ldb, bint bt,
                 Py_ssize_t Ncols, const floating *bias, bint relu,
                 floating *out, Py_ssize_t ldc) except -1:
    """out (M x Ncols) = A @ B (+ bias per column, ReLU'd if relu)."""
    cdef Py_ssize_t mr, psize, panels, wsize
    cdef int nt = _threads_for(M * Ncols * max(Kd, 1))
    cdef _mm m
    cdef c.fc_loop loops[2]
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
    cdef _Scratch s = _scratch("linear", "workspace", nt, wsize * <object> sizeof(floating),
                               max(psize, 1) * <object> sizeof(floating))
    m.a = a
    m.b = b
    m.bias = bias
    m.packed = s.shared
    m.out = out
    m.lda = lda
    m.ldb = ldb
    m.ldc = ldc
    m.M = M
    m.Kd = Kd
    m.Ncols = Ncols
    m.at = at
    m.bt = bt
    m.relu = relu
    loops[0] = _loop(<c.fc_fn> _item_mm_pack[floating], &m, (M + mr - 1) // mr, False)
    loops[1] = _loop(<c.fc_fn> _item_mm_panel[floating], &m, panels, True)
    return _run("linear", s, loops, 2, out)


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
