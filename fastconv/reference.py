"""Pure-NumPy twins of every compiled fastconv kernel.

Each function here has the name, signature, defaults, dtypes, output layout
and errors of the compiled kernel of the same name in :mod:`fastconv`: it calls
the same ``fastconv._validation.check_*`` function first, then computes the
result with vectorised NumPy only (strided window views, one copy, and BLAS
through :func:`numpy.matmul`).  The only Python loops are over the kernel
offsets ``(i, j)`` -- ``kh*kw`` iterations -- never over pixels, batch or
channels.

The module is the correctness oracle for the compiled path and the baseline
the benchmarks compare against, so it aims to be a fair, reasonably fast NumPy
implementation rather than a literal transcription of the definitions.
Results follow ``torch.nn.functional`` (``unfold``, ``fold``, ``conv2d``,
``max_pool2d``, ``avg_pool2d`` and their autograd gradients).  Outputs have
the input's dtype and are C-contiguous; inputs are never modified.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _validation as _v

__all__ = [
    "im2col",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _extent(out, stride, dilation, kernel):
    """Rows (or columns) of padded input touched by ``out`` windows."""
    return (out - 1) * stride + dilation * (kernel - 1) + 1


def _pad(x, pt, pb, pl, pr, fill):
    """Return ``x`` padded by (top, bottom, left, right) with ``fill``.

    Returns ``x`` itself (no copy) when there is nothing to pad; callers only
    ever read the result.
    """
    if not (pt or pb or pl or pr):
        return x
    N, C, H, W = x.shape
    out = np.empty((N, C, pt + H + pb, pl + W + pr), dtype=x.dtype)
    out[:, :, :pt, :] = fill
    out[:, :, pt + H:, :] = fill
    out[:, :, pt:pt + H, :pl] = fill
    out[:, :, pt:pt + H, pl + W:] = fill
    out[:, :, pt:pt + H, pl:pl + W] = x
    return out


def _padded(x, g, fill):
    """Pad ``x`` for geometry ``g``: top/left from ``g``, bottom/right as needed."""
    pb = max(0, _extent(g.Ho, g.sh, g.dh, g.kh) - g.H - g.pt)
    pr = max(0, _extent(g.Wo, g.sw, g.dw, g.kw) - g.W - g.pl)
    return _pad(x, g.pt, pb, g.pl, pr, fill)


def _window_view(xp, g):
    """Read-only view of shape (N, C, kh, kw, Ho, Wo) of the padded input.

    ``view[n, c, i, j, oh, ow] = xp[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    """
    sN, sC, sH, sW = xp.strides
    return as_strided(
        xp,
        shape=(xp.shape[0], xp.shape[1], g.kh, g.kw, g.Ho, g.Wo),
        strides=(sN, sC, sH * g.dh, sW * g.dw, sH * g.sh, sW * g.sw),
        writeable=False,
    )


def _offset_slice(g, i, j):
    """Index of the (Ho, Wo) cells kernel offset (i, j) reads in the padded input."""
    h0 = i * g.dh
    w0 = j * g.dw
    return (
        slice(None),
        slice(None),
        slice(h0, h0 + (g.Ho - 1) * g.sh + 1, g.sh),
        slice(w0, w0 + (g.Wo - 1) * g.sw + 1, g.sw),
    )


def _im2col6(x, g, copy=False):
    """Columns as a C-contiguous (N, C, kh, kw, Ho, Wo) array (zero padding).

    Without ``copy`` the result may be a read-only view of ``x`` itself (a
    1x1, stride-1, unpadded window), which internal callers only read.
    """
    view = _window_view(_padded(x, g, 0), g)
    if copy:
        return np.array(view, order="C", copy=True)
    return np.ascontiguousarray(view)


def _col2im6(cols6, g, N, C):
    """Adjoint of :func:`_im2col6`: scatter-add (N, C, kh, kw, Ho, Wo) -> (N, C, H, W).

    ``cols6`` may be any strided view.  Contributions landing on padding are
    dropped.  Offsets are added in row-major (i, j) order, as ``F.fold`` does.
    """
    Hp = max(g.pt + g.H, _extent(g.Ho, g.sh, g.dh, g.kh))
    Wp = max(g.pl + g.W, _extent(g.Wo, g.sw, g.dw, g.kw))
    buf = np.zeros((N, C, Hp, Wp), dtype=cols6.dtype)
    for i in range(g.kh):
        for j in range(g.kw):
            buf[_offset_slice(g, i, j)] += cols6[:, :, i, j]
    if Hp == g.H and Wp == g.W:
        return buf
    return np.ascontiguousarray(buf[:, :, g.pt:g.pt + g.H, g.pl:g.pl + g.W])


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------

def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold sliding windows into columns (``torch.nn.functional.unfold``).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    kernel_size, stride, padding, dilation : int or pair of ints (h, w)
        ``padding`` is zero padding on both sides.

    Returns
    -------
    cols : ndarray of shape (N, C*kh*kw, Ho*Wo), dtype of ``x``
        ``cols[n, c*kh*kw + i*kw + j, oh*Wo + ow] =
        x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]`` (0 outside ``x``).
    """
    x, g = _v.check_im2col(x, kernel_size, stride, padding, dilation)
    cols = _im2col6(x, g, copy=True)   # never a view of x
    return cols.reshape(g.N, g.C * g.kh * g.kw, g.Ho * g.Wo)


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns back into an image, summing overlaps (``torch.nn.functional.fold``).

    The adjoint of :func:`im2col`.

    Parameters
    ----------
    cols : ndarray of shape (N, C*kh*kw, L), dtype float32 or float64
        ``L`` must equal ``Ho*Wo`` for the given geometry.
    output_size : int or pair of ints (H, W)
    kernel_size, stride, padding, dilation : int or pair of ints (h, w)

    Returns
    -------
    x : ndarray of shape (N, C, H, W), dtype of ``cols``
    """
    cols, g = _v.check_col2im(cols, output_size, kernel_size, stride, padding,
                              dilation)
    cols6 = cols.reshape(g.N, g.C, g.kh, g.kw, g.Ho, g.Wo)
    return _col2im6(cols6, g, g.N, g.C)


# --------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           algorithm="auto"):
    """2-D cross-correlation (``torch.nn.functional.conv2d``).

    Computed as zero-padded input -> strided window view -> one im2col copy ->
    grouped GEMM (:func:`numpy.matmul`).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    weight : ndarray of shape (F, C/groups, kh, kw), dtype of ``x``
    bias : ndarray of shape (F,), dtype of ``x``, or None
    stride, dilation : int or pair of ints (h, w)
    padding : int, pair of ints (h, w), ``"valid"`` or ``"same"``
        ``"same"`` needs stride 1; an odd total padding puts the extra
        row/column at the bottom/right, as PyTorch does.
    groups : int
        Must divide both C and F.
    algorithm : {"auto", "gemm", "direct"}
        Validated like the compiled kernel's, otherwise ignored here.

    Returns
    -------
    y : ndarray of shape (N, F, Ho, Wo), dtype of ``x``
    """
    _v.check_algorithm(algorithm, "conv2d")
    x, weight, g = _v.check_conv2d("conv2d", x, weight, stride, padding,
                                   dilation, groups)
    bias = _v.check_bias("conv2d", bias, x, g)
    G = g.groups
    Fg = g.F // G
    K = (g.C // G) * g.kh * g.kw
    L = g.Ho * g.Wo
    cols = _im2col6(x, g).reshape(g.N, G, K, L)
    w = weight.reshape(G, Fg, K)
    y = np.matmul(w, cols)                       # (N, G, Fg, L)
    y = y.reshape(g.N, g.F, g.Ho, g.Wo)
    if bias is not None:
        y += bias[:, None, None]
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1,
                    groups=1, *, algorithm="auto"):
    """Gradients of :func:`conv2d` (autograd of ``torch.nn.functional.conv2d``).

    Parameters
    ----------
    grad_out : ndarray of shape (N, F, Ho, Wo), dtype of ``x``
        Gradient of the loss with respect to the forward output.
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    weight : ndarray of shape (F, C/groups, kh, kw), dtype of ``x``
    stride, padding, dilation, groups
        As for :func:`conv2d`.
    algorithm : {"auto", "gemm", "direct"}
        Validated like the compiled kernel's, otherwise ignored here.

    Returns
    -------
    grad_x : ndarray of shape (N, C, H, W), dtype of ``x``
    grad_weight : ndarray of shape (F, C/groups, kh, kw), dtype of ``x``
    grad_bias : ndarray of shape (F,), dtype of ``x``
        ``grad_out`` summed over N, Ho and Wo (returned even without a bias).
    """
    _v.check_algorithm(algorithm, "conv2d_backward")
    x, weight, g = _v.check_conv2d("conv2d_backward", x, weight, stride,
                                   padding, dilation, groups)
    grad_out = _v.check_grad_out("conv2d_backward", grad_out, x,
                                 (g.N, g.F, g.Ho, g.Wo))
    G = g.groups
    Fg = g.F // G
    Cg = g.C // G
    K = Cg * g.kh * g.kw
    NL = g.N * g.Ho * g.Wo

    grad_bias = grad_out.sum(axis=(0, 2, 3))

    # Channel-major columns (C, kh, kw, N, Ho, Wo) -> (G, K, N*L), so each
    # group's weight gradient is one GEMM over the whole batch.
    xp = _padded(x, g, 0)
    cols = np.ascontiguousarray(
        _window_view(xp, g).transpose(1, 2, 3, 0, 4, 5)).reshape(G, K, NL)
    go = np.ascontiguousarray(
        grad_out.reshape(g.N, G, Fg, g.Ho * g.Wo).transpose(1, 2, 0, 3)
    ).reshape(G, Fg, NL)
    grad_weight = np.matmul(go, cols.transpose(0, 2, 1))   # (G, Fg, K)
    grad_weight = grad_weight.reshape(g.F, Cg, g.kh, g.kw)
    del cols

    w = weight.reshape(G, Fg, K)
    dcols = np.matmul(w.transpose(0, 2, 1), go)            # (G, K, N*L)
    dcols6 = dcols.reshape(g.C, g.kh, g.kw, g.N, g.Ho, g.Wo).transpose(
        3, 0, 1, 2, 4, 5)
    grad_x = _col2im6(dcols6, g, g.N, g.C)
    return grad_x, np.ascontiguousarray(grad_weight), grad_bias


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------

def _first_lattice_cell(start, dilation):
    """First window cell at or after 0: ``start + k*dilation`` for the least k >= 0."""
    neg = start < 0
    steps = np.where(neg, (-start + dilation - 1) // dilation, 0)
    return start + steps * dilation


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False, return_indices=False):
    """2-D max pooling (``torch.nn.functional.max_pool2d``).

    Follows PyTorch's CPU rule exactly: each window is scanned in row-major
    order over its cells inside ``x``; a cell replaces the current maximum if
    it is greater or NaN.  So ties go to the first maximum, a window holding a
    NaN yields NaN with the index of its last NaN, a window of only ``-inf``
    yields ``-inf`` with the index of its first cell inside ``x``, and padding
    never wins.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    kernel_size, padding, dilation : int or pair of ints (h, w)
        ``padding`` is implicit ``-inf``.
    stride : int, pair of ints (h, w), or None
        None means ``kernel_size``.
    ceil_mode : bool
        Round the output size up; the last window may hang past the input and
        its padding, and only its cells inside ``x`` count.
    return_indices : bool
        Also return the argmax positions.

    Returns
    -------
    y : ndarray of shape (N, C, Ho, Wo), dtype of ``x``
    indices : ndarray of shape (N, C, Ho, Wo), dtype int64
        Only if ``return_indices``; flat positions ``ih*W + iw`` in each
        (H, W) plane of ``x``.

    Notes
    -----
    With dilation a window can hold no cell of ``x`` at all (e.g. H=1,
    kernel 2, padding 1, dilation 2: rows -1 and 1).  PyTorch then returns
    ``-inf`` and the index ``ih0*W + iw0`` of the window's first lattice cell
    at or after row/column 0, which lies outside the plane; this function
    does the same, and :func:`max_pool2d_backward` rejects such indices.
    """
    x, g = _v.check_max_pool2d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    xp = _padded(x, g, -np.inf)
    out_shape = (g.N, g.C, g.Ho, g.Wo)
    best = np.full(out_shape, -np.inf, dtype=x.dtype)

    if not return_indices:
        # np.maximum propagates NaN, and -inf padding never raises the max.
        for i in range(g.kh):
            for j in range(g.kw):
                np.maximum(best, xp[_offset_slice(g, i, j)], out=best)
        return best

    # Track the winning kernel offset k = i*kw + j per output.  The mask is
    # torch's update rule "val > maxval or isnan(val)", evaluated before the
    # running maximum absorbs ``v``; np.maximum gives the same running value
    # (NaN propagates).  kidx = where(mask, k, kidx) is done branch-free with
    # integer bit ops (kidx ^= (kidx ^ k) & -mask), several times faster than
    # np.where / np.copyto(where=) on large arrays.
    K = g.kh * g.kw
    kdt = np.uint8 if K <= 256 else np.int32
    kidx = np.zeros(out_shape, dtype=kdt)
    tmp = np.empty(out_shape, dtype=kdt)
    mask = np.empty(out_shape, dtype=bool)
    mask_is_bits = kdt is np.uint8
    mbits = mask.view(np.uint8) if mask_is_bits else np.empty(out_shape, kdt)
    nan_mask = np.empty(out_shape, dtype=bool) if np.isnan(x).any() else None
    k = 0
    for i in range(g.kh):
        for j in range(g.kw):
            v = xp[_offset_slice(g, i, j)]
            np.greater(v, best, out=mask)
            if nan_mask is not None:
                np.isnan(v, out=nan_mask)
                mask |= nan_mask
            np.maximum(best, v, out=best)
            if not mask_is_bits:
                np.copyto(mbits, mask)
            np.negative(mbits, out=mbits)        # 0 / all bits set
            np.bitwise_xor(kidx, kdt(k), out=tmp)
            tmp &= mbits
            kidx ^= tmp
            k += 1

    # Offset index -> flat index ih*W + iw into the (H, W) plane.
    hs = np.arange(g.Ho, dtype=np.int64) * g.sh - g.pt
    ws = np.arange(g.Wo, dtype=np.int64) * g.sw - g.pl
    offsets = (np.arange(g.kh, dtype=np.int64)[:, None] * (g.dh * g.W)
               + np.arange(g.kw, dtype=np.int64)[None, :] * g.dw).ravel()
    idx = offsets[kidx]
    idx += hs[:, None] * g.W + ws[None, :]
    # No update happened <=> the result is -inf: torch keeps its initial
    # index, the window's first cell at or after row/column 0.
    untouched = best == -np.inf
    if untouched.any():
        first = (_first_lattice_cell(hs, g.dh)[:, None] * g.W
                 + _first_lattice_cell(ws, g.dw)[None, :])
        np.copyto(idx, np.broadcast_to(first, out_shape), where=untouched)
    return best, idx


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    grad_out : ndarray of shape (N, C, Ho, Wo), dtype float32 or float64
    indices : ndarray of shape (N, C, Ho, Wo), dtype int64
        As returned by ``max_pool2d(..., return_indices=True)``.
    input_shape : tuple of 4 ints (N, C, H, W)

    Returns
    -------
    grad_x : ndarray of shape (N, C, H, W), dtype of ``grad_out``
        Each ``grad_out`` element added at its index in its (n, c) plane;
        overlapping windows sum.

    Notes
    -----
    Uses :func:`numpy.add.at` in the input's dtype, in output order -- the
    accumulation order of PyTorch's CPU kernel (and, with NumPy >= 1.25, faster
    than :func:`numpy.bincount`, which would also accumulate in float64).
    """
    grad_out, indices, input_shape = _v.check_max_pool2d_backward(
        grad_out, indices, input_shape)
    N, C, H, W = input_shape
    plane = H * W
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        raise _v.indices_out_of_range(input_shape)
    flat = indices + (np.arange(N * C, dtype=np.int64) * plane).reshape(
        N, C, 1, 1)
    grad_x = np.zeros(N * C * plane, dtype=grad_out.dtype)
    np.add.at(grad_x, flat.ravel(), grad_out.ravel())
    return grad_x.reshape(input_shape)


def _avg_divisor(g, count_include_pad):
    """PyTorch's per-window divisor, shape (Ho, Wo), and a zero-size-window mask."""

    def axis(out, stride, pad, kernel, size):
        start = np.arange(out, dtype=np.int64) * stride - pad
        end = np.minimum(start + kernel, size + pad)
        pool = end - start
        valid = np.minimum(end, size) - np.maximum(start, 0)
        return pool, valid

    pool_h, valid_h = axis(g.Ho, g.sh, g.pt, g.kh, g.H)
    pool_w, valid_w = axis(g.Wo, g.sw, g.pl, g.kw, g.W)
    if count_include_pad:
        div = pool_h[:, None] * pool_w[None, :]
    else:
        div = valid_h[:, None] * valid_w[None, :]
    empty = (valid_h <= 0)[:, None] | (valid_w <= 0)[None, :]
    return np.where(empty, 1, div), empty


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """2-D average pooling (``torch.nn.functional.avg_pool2d``).

    Each window's sum over its cells inside ``x`` is divided by PyTorch's
    divisor: with ``count_include_pad`` the window size clipped to the padded
    input (so a ``ceil_mode`` overhang past the padding does not count),
    otherwise the number of cells inside ``x``.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    kernel_size, padding : int or pair of ints (h, w)
        ``padding`` (implicit zeros) is at most half the kernel.
    stride : int, pair of ints (h, w), or None
        None means ``kernel_size``.
    ceil_mode : bool
        Round the output size up.
    count_include_pad : bool
        Whether zero padding counts in the divisor.

    Returns
    -------
    y : ndarray of shape (N, C, Ho, Wo), dtype of ``x``
    """
    x, g = _v.check_avg_pool2d(x, kernel_size, stride, padding, ceil_mode)
    xp = _padded(x, g, 0)
    total = np.zeros((g.N, g.C, g.Ho, g.Wo), dtype=x.dtype)
    div, empty = _avg_divisor(g, count_include_pad)
    with np.errstate(over="ignore", invalid="ignore"):   # inf/NaN as torch
        for i in range(g.kh):
            for j in range(g.kw):
                total += xp[_offset_slice(g, i, j)]
        total /= div.astype(x.dtype)
    if empty.any():
        total[:, :, empty] = 0
    return total


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None,
                        padding=0, ceil_mode=False, count_include_pad=True):
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_out : ndarray of shape (N, C, Ho, Wo), dtype float32 or float64
    input_shape : tuple of 4 ints (N, C, H, W)
    kernel_size, stride, padding, ceil_mode, count_include_pad
        As for the forward :func:`avg_pool2d`.

    Returns
    -------
    grad_x : ndarray of shape (N, C, H, W), dtype of ``grad_out``
        Each cell receives ``grad_out / divisor`` of every window that holds it.
    """
    grad_out, g = _v.check_avg_pool2d_backward(
        grad_out, input_shape, kernel_size, stride, padding, ceil_mode)
    div, empty = _avg_divisor(g, count_include_pad)
    Hp = max(g.pt + g.H, _extent(g.Ho, g.sh, 1, g.kh))
    Wp = max(g.pl + g.W, _extent(g.Wo, g.sw, 1, g.kw))
    buf = np.zeros((g.N, g.C, Hp, Wp), dtype=grad_out.dtype)
    with np.errstate(over="ignore", invalid="ignore"):   # inf/NaN as torch
        scaled = grad_out / div.astype(grad_out.dtype)
        if empty.any():
            scaled[:, :, empty] = 0
        # Reversed offsets: each cell then receives its windows in output
        # (row-major) order, the order PyTorch's CPU kernel adds them in.
        for i in reversed(range(g.kh)):
            for j in reversed(range(g.kw)):
                buf[_offset_slice(g, i, j)] += scaled
    if Hp == g.H and Wp == g.W:
        return buf
    return np.ascontiguousarray(buf[:, :, g.pt:g.pt + g.H, g.pl:g.pl + g.W])


# ==========================================================================
# locally connected layer (unshared convolution)
# ==========================================================================

__all__ += ["locally_connected2d", "locally_connected2d_backward"]


def _position_major_cols(x, g):
    """Patches as a C-contiguous (Ho*Wo, N, C*kh*kw) array: one matrix per position."""
    view = _window_view(_padded(x, g, 0), g)          # (N, C, kh, kw, Ho, Wo)
    cols = np.ascontiguousarray(view.transpose(4, 5, 0, 1, 2, 3))
    return cols.reshape(g.Ho * g.Wo, g.N, g.C * g.kh * g.kw)


def locally_connected2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Locally connected 2-D layer: one filter bank per output position.

    Computed as one im2col copy, position-major, then a batched
    :func:`numpy.matmul` of (Ho*Wo, N, K) patches by (Ho*Wo, K, F) filters,
    K = C*kh*kw.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    weight : ndarray of shape (Ho, Wo, C, kh, kw, F), dtype of ``x``
    bias : ndarray of shape (F, Ho, Wo), dtype of ``x``, or None
    stride, padding, dilation : int or pair of ints (h, w)

    Returns
    -------
    y : ndarray of shape (N, F, Ho, Wo), dtype of ``x``
        ``y[n, :, oh, ow] = patch @ weight[oh, ow].reshape(-1, F) + bias[:, oh, ow]``.
    """
    op = "locally_connected2d"
    x, weight, g = _v.check_locally_connected2d(op, x, weight, stride,
                                                padding, dilation)
    bias = _v.check_local_bias(op, bias, x, g)
    L = g.Ho * g.Wo
    cols = _position_major_cols(x, g)                  # (L, N, K)
    w = weight.reshape(L, g.C * g.kh * g.kw, g.F)
    y = np.matmul(cols, w)                             # (L, N, F)
    y = np.ascontiguousarray(
        y.reshape(g.Ho, g.Wo, g.N, g.F).transpose(2, 3, 0, 1))
    if bias is not None:
        y += bias
    return y


def locally_connected2d_backward(grad_out, x, weight, stride=1, padding=0,
                                 dilation=1):
    """Gradients of :func:`locally_connected2d` for x, weight and bias.

    Parameters
    ----------
    grad_out : ndarray of shape (N, F, Ho, Wo), dtype of ``x``
    x, weight, stride, padding, dilation
        As for :func:`locally_connected2d`.

    Returns
    -------
    grad_x : ndarray of shape (N, C, H, W), dtype of ``x``
    grad_weight : ndarray of shape (Ho, Wo, C, kh, kw, F), dtype of ``x``
    grad_bias : ndarray of shape (F, Ho, Wo), dtype of ``x``
        ``grad_out`` summed over N (returned even without a bias).
    """
    op = "locally_connected2d_backward"
    x, weight, g = _v.check_locally_connected2d(op, x, weight, stride,
                                                padding, dilation)
    grad_out = _v.check_grad_out(op, grad_out, x, (g.N, g.F, g.Ho, g.Wo))
    L = g.Ho * g.Wo
    K = g.C * g.kh * g.kw
    grad_bias = grad_out.sum(axis=0)
    go = np.ascontiguousarray(
        grad_out.reshape(g.N, g.F, L).transpose(2, 0, 1))    # (L, N, F)
    cols = _position_major_cols(x, g)                          # (L, N, K)
    grad_weight = np.matmul(cols.transpose(0, 2, 1), go)       # (L, K, F)
    del cols
    w = weight.reshape(L, K, g.F)
    dcols = np.matmul(go, w.transpose(0, 2, 1))                # (L, N, K)
    dcols6 = dcols.reshape(g.Ho, g.Wo, g.N, g.C, g.kh, g.kw).transpose(
        2, 3, 4, 5, 0, 1)
    grad_x = _col2im6(dcols6, g, g.N, g.C)
    return (grad_x, grad_weight.reshape(weight.shape), grad_bias)
