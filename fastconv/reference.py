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
from ._docstrings import docfiller
from ._typing import (
    Algorithm,
    Algorithm1d,
    Array,
    Float,
    Grads,
    Indices,
    Int,
    Padding1,
    Padding2,
    Padding3,
    PoolOutput,
    Shape,
    Size1,
    Size2,
    Size3,
)

__all__ = [
    # im2col / col2im
    "im2col", "col2im",
    # convolution
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward",
    # locally connected (unshared) convolution
    "locally_connected2d", "locally_connected2d_backward",
    # max pooling
    "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward",
    "max_pool3d", "max_pool3d_backward",
    # average pooling
    "avg_pool1d", "avg_pool1d_backward", "avg_pool2d", "avg_pool2d_backward",
    "avg_pool3d", "avg_pool3d_backward",
    # Lp-norm pooling
    "lp_pool1d", "lp_pool1d_backward", "lp_pool2d", "lp_pool2d_backward",
    # global average pooling
    "global_avg_pool2d", "global_avg_pool2d_backward",
    # batch normalisation
    "batch_norm2d", "batch_norm2d_backward",
    # activation and element-wise: ReLU, residual add
    "relu", "relu_backward", "add",
    # fully connected
    "linear", "linear_backward",
]


# ---- shared helpers: padding, window views, outputs ----------------------

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


def _into(out, y, op):
    """y, or y copied into the checked ``out``."""
    out = _v.check_out(out, y.shape, y.dtype, op)
    if out is None:
        return y
    out[...] = y
    return out


# ---- shared helpers: 3-D (volumetric) windows, NCDHW ---------------------
# The same recipe as the 2-D twins, written over the spatial axes as lists
# (depth, height, width); the only Python loops run over the kd*kh*kw taps.

def _vol_axes(g):
    """Per-axis (size, kernel, stride, pad_before, dilation, out) of a VolGeometry."""
    return list(zip((g.D, g.H, g.W), (g.kd, g.kh, g.kw), (g.sd, g.sh, g.sw),
                    (g.pf, g.pt, g.pl), (g.dd, g.dh, g.dw),
                    (g.Do, g.Ho, g.Wo)))


def _vol_padded(x, g, fill):
    """``x`` padded for geometry ``g`` (before from ``g``, after as needed)
    with ``fill``; ``x`` itself when nothing is padded (callers only read)."""
    pads = [(p, max(0, _extent(o, s, d, k) - n - p))
            for n, k, s, p, d, o in _vol_axes(g)]
    if not any(a or b for a, b in pads):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + pads, constant_values=fill)


def _vol_taps(g):
    """Kernel taps (i, j, k) in row-major order."""
    return [(i, j, k) for i in range(g.kd) for j in range(g.kh)
            for k in range(g.kw)]


def _vol_tap_slice(g, tap):
    """Index of the (Do, Ho, Wo) cells tap (i, j, k) reads in the padded input."""
    return (slice(None), slice(None)) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, (n, k, s, p, d, o) in zip(tap, _vol_axes(g)))


def _vol_cols(x, g):
    """Read-only window view (N, C, kd, kh, kw, Do, Ho, Wo) of the zero-padded x."""
    xp = _vol_padded(x, g, 0)
    axes = _vol_axes(g)
    sp = xp.strides[2:]
    return as_strided(
        xp, shape=xp.shape[:2] + (g.kd, g.kh, g.kw, g.Do, g.Ho, g.Wo),
        strides=xp.strides[:2] + tuple(st * a[4] for st, a in zip(sp, axes))
        + tuple(st * a[2] for st, a in zip(sp, axes)),
        writeable=False,
    )


def _col2vol(cols8, g):
    """Adjoint of :func:`_vol_cols`: add (N, C, kd, kh, kw, Do, Ho, Wo) columns
    into an (N, C, D, H, W) array; what lands on padding is dropped."""
    axes = _vol_axes(g)
    padded = [max(p + n, _extent(o, s, d, k)) for n, k, s, p, d, o in axes]
    buf = np.zeros(cols8.shape[:2] + tuple(padded), dtype=cols8.dtype)
    for tap in _vol_taps(g):
        buf[_vol_tap_slice(g, tap)] += cols8[(slice(None), slice(None)) + tap]
    inner = tuple(slice(p, p + n) for n, k, s, p, d, o in axes)
    return np.ascontiguousarray(buf[(slice(None), slice(None)) + inner])


# ---- shared helpers: 1-D pooling on (N, C, 1, L) views -------------------
# The 1-D and Lp pooling twins check their arguments as the compiled
# functions do, then run the 2-D twins on (N, C, 1, L) views.

def _as4d(a):
    return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])


def _as3d(a):
    return a.reshape(a.shape[0], a.shape[1], a.shape[3])


def _args_2d(g):
    """2-D pooling arguments equivalent to a 1-D geometry's."""
    return dict(kernel_size=(1, g.kw), stride=(1, g.sw), padding=(0, g.pl))


# ---- im2col / col2im -----------------------------------------------------

@docfiller
def im2col(x: Array[Float], kernel_size: Size2, stride: Size2 = 1, padding: Size2 = 0,
           dilation: Size2 = 1) -> Array[Float]:
    """Unfold sliding windows into columns (``torch.nn.functional.unfold``).

    Parameters
    ----------
    %(x2d)s
    %(kernel_size2d)s
    %(stride2d)s
    %(padding_zero2d)s
    %(dilation2d)s

    Returns
    -------
    %(cols_out)s
    """
    x, g = _v.check_im2col(x, kernel_size, stride, padding, dilation)
    cols = _im2col6(x, g, copy=True)   # never a view of x
    return cols.reshape(g.N, g.C * g.kh * g.kw, g.Ho * g.Wo)


@docfiller
def col2im(cols: Array[Float], output_size: Size2, kernel_size: Size2,
           stride: Size2 = 1, padding: Size2 = 0, dilation: Size2 = 1) -> Array[Float]:
    """Fold columns back into an image, summing overlaps (``torch.nn.functional.fold``).

    The adjoint of :func:`im2col`.

    Parameters
    ----------
    %(cols)s
    %(output_size)s
    %(kernel_size2d)s
    %(stride2d)s
    %(padding_zero2d)s
    %(dilation2d)s

    Returns
    -------
    %(x_out_col2im)s
    """
    cols, g = _v.check_col2im(cols, output_size, kernel_size, stride, padding,
                              dilation)
    cols6 = cols.reshape(g.N, g.C, g.kh, g.kw, g.Ho, g.Wo)
    return _col2im6(cols6, g, g.N, g.C)


# ---- convolution ---------------------------------------------------------
# conv1d is computed here directly in 1-D (padded input -> strided window
# view -> grouped matmul).

def _conv1d_windows(x, g):
    """Read-only (N, C, k, Lo) view of x zero-padded for geometry g."""
    N, C, L = x.shape
    pr = max(0, _extent(g.Wo, g.sw, g.dw, g.kw) - L - g.pl)
    xp = x
    if g.pl or pr:
        xp = np.zeros((N, C, g.pl + L + pr), dtype=x.dtype)
        xp[:, :, g.pl:g.pl + L] = x
    sN, sC, sL = xp.strides
    return as_strided(xp, shape=(N, C, g.kw, g.Wo),
                      strides=(sN, sC, sL * g.dw, sL * g.sw), writeable=False)


@docfiller
def conv1d(x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None,
           stride: Size1 = 1, padding: Padding1 = 0, dilation: Size1 = 1,
           groups: Int = 1, *, algorithm: Algorithm1d = "auto") -> Array[Float]:
    """1-D cross-correlation (``torch.nn.functional.conv1d``).

    Parameters
    ----------
    %(x1d)s
    %(weight_conv1d)s
    %(bias_conv)s
    %(stride1d)s
    %(padding_conv1d)s
    %(dilation1d)s
    %(groups)s
    %(algorithm1d)s

    Returns
    -------
    %(y_conv1d)s
    """
    _v.check_algorithm(algorithm, "conv1d")
    x, weight, g = _v.check_conv1d("conv1d", x, weight, stride, padding,
                                   dilation, groups)
    bias = _v.check_bias("conv1d", bias, x, g)
    _v.check_winograd("conv1d", algorithm, (g.kh, g.kw), (g.sh, g.sw),
                      (g.dh, g.dw))
    G, Fg, Cg = g.groups, g.F // g.groups, g.C // g.groups
    cols = np.ascontiguousarray(_conv1d_windows(x, g)).reshape(
        g.N, G, Cg * g.kw, g.Wo)
    y = np.matmul(weight.reshape(G, Fg, Cg * g.kw), cols)   # (N, G, Fg, Lo)
    y = y.reshape(g.N, g.F, g.Wo)
    if bias is not None:
        y += bias[:, None]
    return y


@docfiller
def conv1d_backward(grad_out: Array[Float], x: Array[Float], weight: Array[Float],
                    stride: Size1 = 1, padding: Padding1 = 0, dilation: Size1 = 1,
                    groups: Int = 1, *,
                    algorithm: Algorithm1d = "auto") -> Grads[Float]:
    """Gradients of :func:`conv1d` (autograd of ``F.conv1d``).

    Parameters
    ----------
    %(grad_out_conv1d)s
    %(x1d)s
    %(weight_conv1d)s
    %(stride1d)s
    %(padding_conv1d)s
    %(dilation1d)s
    %(groups)s
    %(algorithm1d)s

    Returns
    -------
    %(grads_conv1d)s
    """
    op = "conv1d_backward"
    _v.check_algorithm(algorithm, op)
    x, weight, g = _v.check_conv1d(op, x, weight, stride, padding, dilation,
                                   groups)
    grad_out = _v.check_grad_out_1d(op, grad_out, x, (g.N, g.F, g.Wo))
    _v.check_winograd(op, algorithm, (g.kh, g.kw), (g.sh, g.sw), (g.dh, g.dw))
    G, Fg, Cg = g.groups, g.F // g.groups, g.C // g.groups
    K = Cg * g.kw
    cols = np.ascontiguousarray(_conv1d_windows(x, g)).reshape(
        g.N, G, K, g.Wo)
    go = grad_out.reshape(g.N, G, Fg, g.Wo)
    # sum over n and l of go[n, G, f, l] * cols[n, G, K, l]
    grad_weight = np.matmul(go, cols.transpose(0, 1, 3, 2)).sum(axis=0)
    w = weight.reshape(G, Fg, K)
    dcols = np.matmul(w.transpose(0, 2, 1), go).reshape(
        g.N, g.C, g.kw, g.Wo)                               # (N, C, k, Lo)
    Lp = max(g.pl + g.W, _extent(g.Wo, g.sw, g.dw, g.kw))
    buf = np.zeros((g.N, g.C, Lp), dtype=x.dtype)
    for j in range(g.kw):
        w0 = j * g.dw
        buf[:, :, w0:w0 + (g.Wo - 1) * g.sw + 1:g.sw] += dcols[:, :, j]
    grad_x = np.ascontiguousarray(buf[:, :, g.pl:g.pl + g.W])
    return (grad_x, np.ascontiguousarray(grad_weight.reshape(weight.shape)),
            grad_out.sum(axis=(0, 2)))


@docfiller
def conv2d(x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None,
           stride: Size2 = 1, padding: Padding2 = 0, dilation: Size2 = 1,
           groups: Int = 1, *, algorithm: Algorithm = "auto",
           relu: bool = False) -> Array[Float]:
    """2-D cross-correlation (``torch.nn.functional.conv2d``).

    Computed as zero-padded input -> strided window view -> one im2col copy ->
    grouped GEMM (:func:`numpy.matmul`).

    Parameters
    ----------
    %(x2d)s
    %(weight_conv2d)s
    %(bias_conv)s
    %(stride2d)s
    %(padding_conv2d)s
    %(dilation2d)s
    %(groups)s
    %(algorithm)s
    %(relu)s

    Returns
    -------
    %(y_conv2d)s
    """
    _v.check_algorithm(algorithm, "conv2d")
    x, weight, g = _v.check_conv2d("conv2d", x, weight, stride, padding,
                                   dilation, groups)
    bias = _v.check_bias("conv2d", bias, x, g)
    _v.check_winograd("conv2d", algorithm, (g.kh, g.kw), (g.sh, g.sw),
                      (g.dh, g.dw))
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
    if relu:
        np.maximum(y, 0, out=y)
    return y


@docfiller
def conv2d_backward(grad_out: Array[Float], x: Array[Float], weight: Array[Float],
                    stride: Size2 = 1, padding: Padding2 = 0, dilation: Size2 = 1,
                    groups: Int = 1, *, algorithm: Algorithm = "auto") -> Grads[Float]:
    """Gradients of :func:`conv2d` (autograd of ``torch.nn.functional.conv2d``).

    Parameters
    ----------
    %(grad_out_conv2d)s
    %(x2d)s
    %(weight_conv2d)s
    %(stride2d)s
    %(padding_conv2d)s
    %(dilation2d)s
    %(groups)s
    %(algorithm_backward)s

    Returns
    -------
    %(grads_conv2d)s
    """
    _v.check_algorithm(algorithm, "conv2d_backward")
    x, weight, g = _v.check_conv2d("conv2d_backward", x, weight, stride,
                                   padding, dilation, groups)
    grad_out = _v.check_grad_out("conv2d_backward", grad_out, x,
                                 (g.N, g.F, g.Ho, g.Wo))
    _v.check_winograd("conv2d_backward", algorithm, (g.kh, g.kw),
                      (g.sh, g.sw), (g.dh, g.dw))
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


@docfiller
def conv3d(x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None,
           stride: Size3 = 1, padding: Padding3 = 0, dilation: Size3 = 1,
           groups: Int = 1) -> Array[Float]:
    """3-D cross-correlation (``torch.nn.functional.conv3d``).

    Zero-padded input -> strided window view -> one vol2col copy -> grouped
    GEMM (:func:`numpy.matmul`).

    Parameters
    ----------
    %(x3d)s
    %(weight_conv3d)s
    %(bias_conv)s
    %(stride3d)s
    %(padding_conv3d)s
    %(dilation3d)s
    %(groups)s

    Returns
    -------
    %(y_conv3d)s
    """
    op = "conv3d"
    x, weight, g = _v.check_conv3d(op, x, weight, stride, padding, dilation,
                                   groups)
    bias = _v.check_bias(op, bias, x, g)
    G = g.groups
    K = (g.C // G) * g.kd * g.kh * g.kw
    cols = np.ascontiguousarray(_vol_cols(x, g)).reshape(
        g.N, G, K, g.Do * g.Ho * g.Wo)
    y = np.matmul(weight.reshape(G, g.F // G, K), cols)      # (N, G, Fg, L)
    y = y.reshape(g.N, g.F, g.Do, g.Ho, g.Wo)
    if bias is not None:
        y += bias[:, None, None, None]
    return y


@docfiller
def conv3d_backward(grad_out: Array[Float], x: Array[Float], weight: Array[Float],
                    stride: Size3 = 1, padding: Padding3 = 0, dilation: Size3 = 1,
                    groups: Int = 1) -> Grads[Float]:
    """Gradients of :func:`conv3d` (autograd of ``torch.nn.functional.conv3d``).

    Parameters
    ----------
    %(grad_out_conv3d)s
    %(x3d)s
    %(weight_conv3d)s
    %(stride3d)s
    %(padding_conv3d)s
    %(dilation3d)s
    %(groups)s

    Returns
    -------
    %(grads_conv3d)s
    """
    op = "conv3d_backward"
    x, weight, g = _v.check_conv3d(op, x, weight, stride, padding, dilation,
                                   groups)
    grad_out = _v.check_grad_out3d(op, grad_out, x,
                                   (g.N, g.F, g.Do, g.Ho, g.Wo))
    G, Fg = g.groups, g.F // g.groups
    K = (g.C // G) * g.kd * g.kh * g.kw
    L = g.Do * g.Ho * g.Wo
    grad_bias = grad_out.sum(axis=(0, 2, 3, 4))
    # Channel-major columns (C, kd, kh, kw, N, L) -> (G, K, N*L).
    cols = np.ascontiguousarray(
        _vol_cols(x, g).transpose(1, 2, 3, 4, 0, 5, 6, 7)).reshape(G, K, g.N * L)
    go = np.ascontiguousarray(
        grad_out.reshape(g.N, G, Fg, L).transpose(1, 2, 0, 3)).reshape(G, Fg, g.N * L)
    grad_weight = np.matmul(go, cols.transpose(0, 2, 1)).reshape(weight.shape)
    del cols
    dcols = np.matmul(weight.reshape(G, Fg, K).transpose(0, 2, 1), go)
    dcols8 = dcols.reshape(g.C, g.kd, g.kh, g.kw, g.N, g.Do, g.Ho, g.Wo)
    grad_x = _col2vol(dcols8.transpose(4, 0, 1, 2, 3, 5, 6, 7), g)
    return grad_x, np.ascontiguousarray(grad_weight), grad_bias


# ---- locally connected (unshared) convolution ----------------------------

def _position_major_cols(x, g):
    """Patches as a C-contiguous (Ho*Wo, N, C*kh*kw) array: one matrix per position."""
    view = _window_view(_padded(x, g, 0), g)          # (N, C, kh, kw, Ho, Wo)
    cols = np.ascontiguousarray(view.transpose(4, 5, 0, 1, 2, 3))
    return cols.reshape(g.Ho * g.Wo, g.N, g.C * g.kh * g.kw)


@docfiller
def locally_connected2d(x: Array[Float], weight: Array[Float],
                        bias: Array[Float] | None = None, stride: Size2 = 1,
                        padding: Size2 = 0, dilation: Size2 = 1) -> Array[Float]:
    """Locally connected 2-D layer: one filter bank per output position.

    Computed as one im2col copy, position-major, then a batched
    :func:`numpy.matmul` of (Ho*Wo, N, K) patches by (Ho*Wo, K, F) filters,
    K = C*kh*kw.

    Parameters
    ----------
    %(x2d)s
    %(weight_lc)s
    %(bias_lc)s
    %(stride2d)s
    %(padding_zero2d)s
    %(dilation2d)s

    Returns
    -------
    %(y_lc)s
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


@docfiller
def locally_connected2d_backward(grad_out: Array[Float], x: Array[Float],
                                 weight: Array[Float], stride: Size2 = 1,
                                 padding: Size2 = 0,
                                 dilation: Size2 = 1) -> Grads[Float]:
    """Gradients of :func:`locally_connected2d` for x, weight and bias.

    Parameters
    ----------
    %(grad_out_lc)s
    %(x2d)s
    %(weight_lc)s
    %(stride2d)s
    %(padding_zero2d)s
    %(dilation2d)s

    Returns
    -------
    %(grads_lc)s
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


# ---- max pooling ---------------------------------------------------------

def _first_lattice_cell(start, dilation):
    """First window cell at or after 0: ``start + k*dilation`` for the least k >= 0."""
    neg = start < 0
    steps = np.where(neg, (-start + dilation - 1) // dilation, 0)
    return start + steps * dilation


@docfiller
def max_pool1d(x: Array[Float], kernel_size: Size1, stride: Size1 | None = None,
               padding: Size1 = 0, dilation: Size1 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolOutput:
    """1-D max pooling (``torch.nn.functional.max_pool1d``).

    Parameters
    ----------
    %(x1d)s
    %(kernel_size1d)s
    %(stride_pool1d)s
    %(padding_max1d)s
    %(dilation1d)s
    %(ceil_mode1d)s
    %(return_indices)s

    Returns
    -------
    %(y_pool1d)s
    %(indices_out1d)s

    Raises
    ------
    %(raises_empty_window1d)s
    """
    x, g = _v.check_max_pool1d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    return_indices = _v.check_flag(return_indices, "return_indices",
                                   "max_pool1d")
    res = max_pool2d(_as4d(x), **_args_2d(g), dilation=(1, g.dw),
                     ceil_mode=ceil_mode, return_indices=return_indices)
    if return_indices:
        return _as3d(res[0]), _as3d(res[1])
    return _as3d(res)


@docfiller
def max_pool1d_backward(grad_out: Array[Float], indices: Indices,
                        input_shape: Shape) -> Array[Float]:
    """Gradient of :func:`max_pool1d` with respect to its input.

    Parameters
    ----------
    %(grad_out_max_pool1d)s
    %(indices1d)s
    %(input_shape1d)s

    Returns
    -------
    %(grad_x_max_pool)s
    """
    grad_out, indices, input_shape = _v.check_max_pool1d_backward(
        grad_out, indices, input_shape)
    N, C, L = input_shape
    if indices.size and (indices.min() < 0 or indices.max() >= L):
        raise _v.indices_out_of_range_1d(input_shape)
    return _as3d(max_pool2d_backward(_as4d(grad_out), _as4d(indices),
                                     (N, C, 1, L)))


@docfiller
def max_pool2d(x: Array[Float], kernel_size: Size2, stride: Size2 | None = None,
               padding: Size2 = 0, dilation: Size2 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolOutput:
    """2-D max pooling (``torch.nn.functional.max_pool2d``).

    Follows PyTorch's CPU rule exactly: each window is scanned in row-major
    order over its cells inside ``x``; a cell replaces the current maximum if
    it is greater or NaN.  So ties go to the first maximum, a window holding a
    NaN yields NaN with the index of its last NaN, a window of only ``-inf``
    yields ``-inf`` with the index of its first cell inside ``x``, and padding
    never wins.

    Parameters
    ----------
    %(x2d)s
    %(kernel_size2d)s
    %(stride_pool2d)s
    %(padding_max2d)s
    %(dilation2d)s
    %(ceil_mode2d)s
    %(return_indices)s

    Returns
    -------
    %(y_pool2d)s
    %(indices_out2d)s

    Raises
    ------
    %(raises_empty_window2d)s
    """
    x, g = _v.check_max_pool2d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    return_indices = _v.check_flag(return_indices, "return_indices",
                                   "max_pool2d")
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


@docfiller
def max_pool2d_backward(grad_out: Array[Float], indices: Indices,
                        input_shape: Shape) -> Array[Float]:
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    %(grad_out_max_pool2d)s
    %(indices2d)s
    %(input_shape2d)s

    Returns
    -------
    %(grad_x_max_pool)s

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


@docfiller
def max_pool3d(x: Array[Float], kernel_size: Size3, stride: Size3 | None = None,
               padding: Size3 = 0, dilation: Size3 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolOutput:
    """3-D max pooling (``torch.nn.functional.max_pool3d``).

    PyTorch's CPU rule: each window is scanned in (d, h, w) row-major order
    over its cells inside ``x``; a cell replaces the current maximum if it is
    greater or NaN.  Ties go to the first maximum, a window holding NaN yields
    NaN indexed at its last NaN, padding never wins.

    Parameters
    ----------
    %(x3d)s
    %(kernel_size3d)s
    %(stride_pool3d)s
    %(padding_max3d)s
    %(dilation3d)s
    %(ceil_mode3d)s
    %(return_indices)s

    Returns
    -------
    %(y_pool3d)s
    %(indices_out3d)s

    Raises
    ------
    %(raises_empty_window3d)s
    """
    x, g = _v.check_max_pool3d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    return_indices = _v.check_flag(return_indices, "return_indices",
                                   "max_pool3d")
    xp = _vol_padded(x, g, -np.inf)
    out_shape = (g.N, g.C, g.Do, g.Ho, g.Wo)
    best = np.full(out_shape, -np.inf, dtype=x.dtype)
    taps = _vol_taps(g)
    if not return_indices:
        for tap in taps:       # np.maximum propagates NaN
            np.maximum(best, xp[_vol_tap_slice(g, tap)], out=best)
        return best
    kidx = np.zeros(out_shape, dtype=np.int64)
    mask = np.empty(out_shape, dtype=bool)
    for t, tap in enumerate(taps):
        v = xp[_vol_tap_slice(g, tap)]
        np.greater(v, best, out=mask)
        mask |= np.isnan(v)                   # torch: val > max or isnan(val)
        np.maximum(best, v, out=best)
        np.copyto(kidx, t, where=mask)
    # Tap number -> flat index (id*H + ih)*W + iw in the volume.
    tap_off = np.array([(i * g.dd * g.H + j * g.dh) * g.W + k * g.dw
                        for i, j, k in taps], dtype=np.int64)
    starts = [np.arange(o, dtype=np.int64) * s - p
              for n, k, s, p, d, o in _vol_axes(g)]
    origin = ((starts[0][:, None, None] * g.H + starts[1][None, :, None]) * g.W
              + starts[2][None, None, :])
    idx = tap_off[kidx] + origin
    # No update <=> -inf: torch keeps the window's first cell inside x.
    untouched = best == -np.inf
    if untouched.any():
        first = [_first_lattice_cell(st, a[4]) for st, a in zip(starts, _vol_axes(g))]
        first = ((first[0][:, None, None] * g.H + first[1][None, :, None]) * g.W
                 + first[2][None, None, :])
        np.copyto(idx, np.broadcast_to(first, out_shape), where=untouched)
    return best, idx


@docfiller
def max_pool3d_backward(grad_out: Array[Float], indices: Indices,
                        input_shape: Shape) -> Array[Float]:
    """Gradient of :func:`max_pool3d` with respect to its input.

    Parameters
    ----------
    %(grad_out_max_pool3d)s
    %(indices3d)s
    %(input_shape3d)s

    Returns
    -------
    %(grad_x_max_pool)s
    """
    grad_out, indices, input_shape = _v.check_max_pool3d_backward(
        grad_out, indices, input_shape)
    N, C = input_shape[:2]
    vol = int(np.prod(input_shape[2:]))
    if indices.size and (indices.min() < 0 or indices.max() >= vol):
        raise _v.indices_out_of_range(input_shape, "max_pool3d_backward")
    flat = indices + (np.arange(N * C, dtype=np.int64) * vol).reshape(
        N, C, 1, 1, 1)
    grad_x = np.zeros(N * C * vol, dtype=grad_out.dtype)
    np.add.at(grad_x, flat.ravel(), grad_out.ravel())
    return grad_x.reshape(input_shape)


# ---- average pooling -----------------------------------------------------

@docfiller
def avg_pool1d(x: Array[Float], kernel_size: Size1, stride: Size1 | None = None,
               padding: Size1 = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Array[Float]:
    """1-D average pooling (``torch.nn.functional.avg_pool1d``).

    Parameters
    ----------
    %(x1d)s
    %(kernel_size1d)s
    %(stride_pool1d)s
    %(padding_avg1d)s
    %(ceil_mode1d)s
    %(count_include_pad)s

    Returns
    -------
    %(y_avg_pool1d)s
    """
    x, g = _v.check_avg_pool1d(x, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool1d")
    return _as3d(avg_pool2d(_as4d(x), **_args_2d(g), ceil_mode=ceil_mode,
                            count_include_pad=count_include_pad))


@docfiller
def avg_pool1d_backward(grad_out: Array[Float], input_shape: Shape, kernel_size: Size1,
                        stride: Size1 | None = None, padding: Size1 = 0,
                        ceil_mode: bool = False,
                        count_include_pad: bool = True) -> Array[Float]:
    """Gradient of :func:`avg_pool1d` with respect to its input.

    Parameters
    ----------
    %(grad_out_avg_pool1d)s
    %(input_shape1d)s
    %(kernel_size1d)s
    %(stride_pool1d)s
    %(padding_avg1d)s
    %(ceil_mode1d)s
    %(count_include_pad)s

    Returns
    -------
    %(grad_x_avg_pool)s
    """
    grad_out, g = _v.check_avg_pool1d_backward(
        grad_out, input_shape, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool1d_backward")
    return _as3d(avg_pool2d_backward(
        _as4d(grad_out), (g.N, g.C, 1, g.W), **_args_2d(g),
        ceil_mode=ceil_mode, count_include_pad=count_include_pad))


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


@docfiller
def avg_pool2d(x: Array[Float], kernel_size: Size2, stride: Size2 | None = None,
               padding: Size2 = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Array[Float]:
    """2-D average pooling (``torch.nn.functional.avg_pool2d``).

    Each window's sum over its cells inside ``x`` is divided by PyTorch's
    divisor: with ``count_include_pad`` the window size clipped to the padded
    input (so a ``ceil_mode`` overhang past the padding does not count),
    otherwise the number of cells inside ``x``.

    Parameters
    ----------
    %(x2d)s
    %(kernel_size2d)s
    %(stride_pool2d)s
    %(padding_avg2d)s
    %(ceil_mode2d)s
    %(count_include_pad)s

    Returns
    -------
    %(y_avg_pool2d)s
    """
    x, g = _v.check_avg_pool2d(x, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool2d")
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


@docfiller
def avg_pool2d_backward(grad_out: Array[Float], input_shape: Shape, kernel_size: Size2,
                        stride: Size2 | None = None, padding: Size2 = 0,
                        ceil_mode: bool = False,
                        count_include_pad: bool = True) -> Array[Float]:
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    %(grad_out_avg_pool2d)s
    %(input_shape2d)s
    %(kernel_size2d)s
    %(stride_pool2d)s
    %(padding_avg2d)s
    %(ceil_mode2d)s
    %(count_include_pad)s

    Returns
    -------
    %(grad_x_avg_pool)s
    """
    grad_out, g = _v.check_avg_pool2d_backward(
        grad_out, input_shape, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool2d_backward")
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


def _avg3d_divisor(g, count_include_pad):
    """PyTorch's per-window divisor, shape (Do, Ho, Wo), and the mask of
    windows holding no input cell."""
    pools, valids = [], []
    for n, k, s, p, d, o in _vol_axes(g):
        start = np.arange(o, dtype=np.int64) * s - p
        end = np.minimum(start + k, n + p)
        pools.append(end - start)
        valids.append(np.minimum(end, n) - np.maximum(start, 0))
    pick = pools if count_include_pad else valids
    div = pick[0][:, None, None] * pick[1][None, :, None] * pick[2][None, None, :]
    empty = ((valids[0] <= 0)[:, None, None] | (valids[1] <= 0)[None, :, None]
             | (valids[2] <= 0)[None, None, :])
    return np.where(empty, 1, div), empty


@docfiller
def avg_pool3d(x: Array[Float], kernel_size: Size3, stride: Size3 | None = None,
               padding: Size3 = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Array[Float]:
    """3-D average pooling (``torch.nn.functional.avg_pool3d``).

    Parameters
    ----------
    %(x3d)s
    %(kernel_size3d)s
    %(stride_pool3d)s
    %(padding_avg3d)s
    %(ceil_mode3d)s
    %(count_include_pad)s

    Returns
    -------
    %(y_avg_pool3d)s
    """
    x, g = _v.check_avg_pool3d(x, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool3d")
    xp = _vol_padded(x, g, 0)
    total = np.zeros((g.N, g.C, g.Do, g.Ho, g.Wo), dtype=x.dtype)
    div, empty = _avg3d_divisor(g, count_include_pad)
    with np.errstate(over="ignore", invalid="ignore"):   # inf/NaN as torch
        for tap in _vol_taps(g):
            total += xp[_vol_tap_slice(g, tap)]
        total /= div.astype(x.dtype)
    if empty.any():
        total[:, :, empty] = 0
    return total


@docfiller
def avg_pool3d_backward(grad_out: Array[Float], input_shape: Shape, kernel_size: Size3,
                        stride: Size3 | None = None, padding: Size3 = 0,
                        ceil_mode: bool = False,
                        count_include_pad: bool = True) -> Array[Float]:
    """Gradient of :func:`avg_pool3d` with respect to its input.

    Parameters
    ----------
    %(grad_out_avg_pool3d)s
    %(input_shape3d)s
    %(kernel_size3d)s
    %(stride_pool3d)s
    %(padding_avg3d)s
    %(ceil_mode3d)s
    %(count_include_pad)s

    Returns
    -------
    %(grad_x_avg_pool)s
    """
    grad_out, g = _v.check_avg_pool3d_backward(
        grad_out, input_shape, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool3d_backward")
    div, empty = _avg3d_divisor(g, count_include_pad)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = grad_out / div.astype(grad_out.dtype)
    if empty.any():
        scaled[:, :, empty] = 0
    # Every tap of a window receives its output's scaled gradient.
    cols8 = np.broadcast_to(
        scaled[:, :, None, None, None],
        (g.N, g.C, g.kd, g.kh, g.kw, g.Do, g.Ho, g.Wo))
    return _col2vol(cols8, g)


# ---- Lp-norm pooling -----------------------------------------------------

def _sign0(a):
    """torch.sign: NaN -> 0."""
    s = np.sign(a)
    s[np.isnan(s)] = 0
    return s


def _lp_forward(x4, p, g, ceil_mode):
    kw = dict(kernel_size=(g.kh, g.kw), stride=(g.sh, g.sw),
              ceil_mode=ceil_mode)
    if np.isinf(p):
        if p > 0:
            return max_pool2d(np.abs(x4), **kw)
        return -max_pool2d(-np.abs(x4), **kw)
    with np.errstate(all="ignore"):
        out = avg_pool2d(x4 ** x4.dtype.type(p), **kw)
        # torch's definition, literally: sign(out) * relu(|out|) * kh*kw.
        t = _sign0(out) * np.maximum(np.abs(out), 0) * (g.kh * g.kw)
        return t ** x4.dtype.type(1.0 / p)


def _lp_backward(gy4, x4, p, g, ceil_mode):
    kw = dict(kernel_size=(g.kh, g.kw), stride=(g.sh, g.sw),
              ceil_mode=ceil_mode)
    dt = x4.dtype.type
    if np.isinf(p):
        a = np.abs(x4) if p > 0 else -np.abs(x4)
        _, idx = max_pool2d(a, **kw, return_indices=True)
        return max_pool2d_backward(gy4, idx, x4.shape) * _sign0(x4)
    K = g.kh * g.kw
    with np.errstate(all="ignore"):
        out = avg_pool2d(x4 ** dt(p), **kw)
        s = _sign0(out)
        r = np.maximum(np.abs(out), 0)
        u = s * r * K
        # Reverse through pow(1/p), mul(K), mul(sign), relu, abs, avg, pow(p).
        g_u = gy4 * (dt(1.0 / p) * u ** dt(1.0 / p - 1.0))
        # relu's backward (threshold_backward) zeroes where r <= 0; NaN passes.
        g_r = np.where(r <= 0, 0, g_u * K * s).astype(x4.dtype)
        g_out = g_r * s
        g_pow = avg_pool2d_backward(g_out, x4.shape, **kw)
        return g_pow * (dt(p) * x4 ** dt(p - 1.0))


@docfiller
def lp_pool1d(x: Array[Float], norm_type: float, kernel_size: Size1,
              stride: Size1 | None = None, ceil_mode: bool = False) -> Array[Float]:
    """1-D power-average pooling (``torch.nn.functional.lp_pool1d``).

    Parameters
    ----------
    %(x1d)s
    %(norm_type)s
    %(kernel_size1d)s
    %(stride_pool1d)s
    %(ceil_mode_lp)s

    Returns
    -------
    %(y_lp_pool1d)s
    """
    x, p, g = _v.check_lp_pool1d("lp_pool1d", x, norm_type, kernel_size,
                                 stride, ceil_mode)
    return _as3d(_lp_forward(_as4d(x), p, g, ceil_mode))


@docfiller
def lp_pool1d_backward(grad_out: Array[Float], x: Array[Float], norm_type: float,
                       kernel_size: Size1, stride: Size1 | None = None,
                       ceil_mode: bool = False) -> Array[Float]:
    """Gradient of :func:`lp_pool1d`.

    Parameters
    ----------
    %(grad_out_lp_pool1d)s
    %(x1d)s
    %(norm_type)s
    %(kernel_size1d)s
    %(stride_pool1d)s
    %(ceil_mode_lp)s

    Returns
    -------
    %(grad_x_lp1d)s
    """
    grad_out, x, p, g = _v.check_lp_pool1d_backward(
        grad_out, x, norm_type, kernel_size, stride, ceil_mode)
    return _as3d(_lp_backward(_as4d(grad_out), _as4d(x), p, g, ceil_mode))


@docfiller
def lp_pool2d(x: Array[Float], norm_type: float, kernel_size: Size2,
              stride: Size2 | None = None, ceil_mode: bool = False) -> Array[Float]:
    """2-D power-average pooling (``torch.nn.functional.lp_pool2d``).

    Parameters
    ----------
    %(x2d)s
    %(norm_type)s
    %(kernel_size2d)s
    %(stride_pool2d)s
    %(ceil_mode_lp)s

    Returns
    -------
    %(y_lp_pool2d)s
    """
    x, p, g = _v.check_lp_pool2d("lp_pool2d", x, norm_type, kernel_size,
                                 stride, ceil_mode)
    return _lp_forward(x, p, g, ceil_mode)


@docfiller
def lp_pool2d_backward(grad_out: Array[Float], x: Array[Float], norm_type: float,
                       kernel_size: Size2, stride: Size2 | None = None,
                       ceil_mode: bool = False) -> Array[Float]:
    """Gradient of :func:`lp_pool2d` (torch's autograd, 0 where the window's sum is 0).

    Parameters
    ----------
    %(grad_out_lp_pool2d)s
    %(x2d)s
    %(norm_type)s
    %(kernel_size2d)s
    %(stride_pool2d)s
    %(ceil_mode_lp)s

    Returns
    -------
    %(grad_x_lp2d)s
    """
    grad_out, x, p, g = _v.check_lp_pool2d_backward(
        grad_out, x, norm_type, kernel_size, stride, ceil_mode)
    return _lp_backward(grad_out, x, p, g, ceil_mode)


# ---- global average pooling ----------------------------------------------

@docfiller
def global_avg_pool2d(x: Array[Float]) -> Array[Float]:
    """Mean over each (H, W) plane (``F.adaptive_avg_pool2d(x, 1)``).

    Parameters
    ----------
    %(x2d)s

    Returns
    -------
    %(y_global)s
    """
    x, g = _v.check_global_avg_pool2d(x)
    return x.mean(axis=(2, 3), keepdims=True, dtype=x.dtype)


@docfiller
def global_avg_pool2d_backward(grad_out: Array[Float],
                               input_shape: Shape) -> Array[Float]:
    """Gradient of :func:`global_avg_pool2d`: ``grad_out / (H*W)`` everywhere.

    Parameters
    ----------
    %(grad_out_global)s
    %(input_shape2d)s

    Returns
    -------
    %(grad_x_global)s
    """
    grad_out, g = _v.check_global_avg_pool2d_backward(grad_out, input_shape)
    scaled = grad_out / grad_out.dtype.type(g.H * g.W)
    return np.ascontiguousarray(np.broadcast_to(scaled, (g.N, g.C, g.H, g.W)))


# ---- batch normalisation -------------------------------------------------

@docfiller
def batch_norm2d(x, running_mean, running_var, weight=None, bias=None,
                 training=False, momentum=0.1, eps=1e-5, *, relu=False, out=None,
                 return_stats=False):
    """Twin of :func:`fastconv.batch_norm2d`.

    Parameters
    ----------
    %(x2d)s
    %(running_stats)s
    %(bn_weight_bias)s
    %(bn_training)s
    %(bn_momentum_eps)s
    %(relu)s
    %(out_x)s
    %(bn_return_stats)s

    Returns
    -------
    %(returns_bn)s
    """
    x, training, momentum, eps, relu = _v.check_batch_norm2d(
        x, running_mean, running_var, weight, bias, training, momentum, eps, relu)
    N, C, H, W = x.shape
    if training:
        mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
        var = np.square(x - mean[:, None, None]).mean(axis=(0, 2, 3))
        if running_mean is not None:
            n = N * H * W
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            running_var[...] = ((1 - momentum) * running_var
                                + momentum * var * (n / (n - 1)))
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    scale = invstd * (1.0 if weight is None else weight)
    shift = (0.0 if bias is None else bias) - mean * scale
    y = (x * scale[:, None, None] + shift[:, None, None]).astype(x.dtype)
    if relu:
        y = np.maximum(y, x.dtype.type(0))
    y = _into(out, y, "batch_norm2d")
    if return_stats:
        return y, mean.astype(x.dtype), invstd.astype(x.dtype)
    return y


@docfiller
def batch_norm2d_backward(grad_out, x, mean, invstd, weight=None, *, training=True,
                          y=None, out=None):
    """Twin of :func:`fastconv.batch_norm2d_backward`.

    Parameters
    ----------
    %(bn_grad_out_x)s
    %(bn_stats)s
    %(bn_weight)s
    %(bn_backward_training)s
    %(bn_backward_y)s
    %(out_grad)s

    Returns
    -------
    %(grads_bn)s
    """
    grad_out, x, training, y = _v.check_batch_norm2d_backward(
        grad_out, x, mean, invstd, weight, training, y)
    axes = (0, 2, 3)
    g = grad_out if y is None else np.where(y <= 0, 0, grad_out)
    m = mean.astype(np.float64)[:, None, None]
    s = invstd.astype(np.float64)[:, None, None]
    xhat = (x - m) * s
    g_bias = g.sum(axis=axes, dtype=np.float64)
    g_weight = (g * xhat).sum(axis=axes)
    scale = s * (1.0 if weight is None else weight[:, None, None])
    if training:
        n = max(1, x.shape[0] * x.shape[2] * x.shape[3])   # an empty batch: gx is empty
        gx = scale * (g - (g_bias / n)[:, None, None] - xhat * (g_weight / n)[:, None, None])
    else:
        gx = g * scale
    gx = _into(out, gx.astype(x.dtype), "batch_norm2d_backward")
    return gx, g_weight.astype(x.dtype), g_bias.astype(x.dtype)


# ---- activation and element-wise: ReLU, residual add ---------------------

@docfiller
def relu(x, *, out=None):
    """Twin of :func:`fastconv.relu`.

    Parameters
    ----------
    %(x_any)s
    %(out_x)s

    Returns
    -------
    %(y_relu)s
    """
    x = _v.check_any_array(x, "x", "relu")
    return _into(out, np.maximum(x, x.dtype.type(0)), "relu")


@docfiller
def relu_backward(grad_out, y, *, out=None):
    """Twin of :func:`fastconv.relu_backward`.

    Parameters
    ----------
    %(relu_backward_grad_out)s
    %(relu_backward_y)s
    %(out_grad)s

    Returns
    -------
    %(grad_x_relu)s
    """
    op = "relu_backward"
    grad_out = _v.check_any_array(grad_out, "grad_out", op)
    y = _v.check_like(op, grad_out, "grad_out", y, "y")
    return _into(out, np.where(y <= 0, grad_out.dtype.type(0), grad_out), op)


@docfiller
def add(a, b, *, relu=False, out=None):
    """Twin of :func:`fastconv.add`.

    Parameters
    ----------
    %(add_ab)s
    %(add_relu)s
    %(add_out)s

    Returns
    -------
    %(y_add)s
    """
    op = "add"
    a = _v.check_any_array(a, "a", op)
    b = _v.check_like(op, a, "a", b, "b")
    y = a + b
    if _v.check_flag(relu, "relu", op):
        y = np.maximum(y, a.dtype.type(0))
    return _into(out, y, op)


# ---- fully connected -----------------------------------------------------

@docfiller
def linear(x, weight, bias=None, *, relu=False, out=None):
    """Twin of :func:`fastconv.linear` (NumPy's matmul, so BLAS).

    Parameters
    ----------
    %(x_linear)s
    %(weight_linear)s
    %(bias_linear)s
    %(relu)s
    %(out_linear)s

    Returns
    -------
    %(y_linear)s
    """
    op = "linear"
    x, weight, bias = _v.check_linear(op, x, weight, bias)
    relu = _v.check_flag(relu, "relu", op)
    if out is not None and np.may_share_memory(out, x):
        raise ValueError(f"{op}: out must not overlap x")
    y = x @ weight.T
    if bias is not None:
        y += bias
    if relu:
        y = np.maximum(y, x.dtype.type(0))
    return _into(out, y, op)


@docfiller
def linear_backward(grad_out, x, weight):
    """Twin of :func:`fastconv.linear_backward`.

    Parameters
    ----------
    %(grad_out_linear)s
    %(x_linear)s
    %(weight_linear)s

    Returns
    -------
    %(grads_linear)s
    """
    op = "linear_backward"
    x, weight, _ = _v.check_linear(op, x, weight, None)
    grad_out = _v.check_grad_out(op, grad_out, x, (x.shape[0], weight.shape[0]),
                                 shape_doc="(N, out_features)")
    return (grad_out @ weight, grad_out.T @ x,
            grad_out.sum(axis=0, dtype=np.float64).astype(x.dtype))
