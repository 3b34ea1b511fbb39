"""fastconv's public kernels: check, normalise, run the compiled kernel.

Every function follows :mod:`torch.nn.functional` (same arguments, defaults,
output shapes and values) on NumPy arrays in NCHW layout, float32 or float64;
outputs have the input's dtype.  Every ``int`` geometry argument also accepts
a pair ``(h, w)``.  Inputs are never modified; non-contiguous inputs are
copied once to C order.  The pure-NumPy twin of each function, with the same
signature, is in :mod:`fastconv.reference`.

Notes
-----
Differences from ``torch.nn.functional``: arrays must be 4-D (no unbatched
3-D input); ``conv2d_backward`` and the ``*_backward`` pooling functions are
explicit functions rather than autograd; ``algorithm=`` picks a conv kernel.
"""
import numpy as np

from . import _ext
from . import _validation as _v
from ._convplan import WINOGRAD_MIN_CHANNELS, ConvPacked, ConvPlan, choose_algorithm, conv_plan  # noqa: F401
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
    # convolution, and the choice of its algorithm
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward",
    "select_algorithm", "conv_plan",
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


# ---- shared helpers ------------------------------------------------------
# The 1-D functions check their (N, C, L) arguments in 1-D terms, then run
# the compiled 2-D kernels on zero-copy (N, C, 1, L) views (a 1 x k window);
# results are reshaped back, also without copying.

def _as4d(a):
    """(N, C, L) C-contiguous -> its (N, C, 1, L) view (no copy)."""
    return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])


def _as3d(a):
    """(N, C, 1, L) -> its (N, C, L) view (no copy)."""
    return a.reshape(a.shape[0], a.shape[1], a.shape[3])


def _result(out, shape, dtype, op):
    """``out`` checked, or a new array for the result."""
    out = _v.check_out(out, shape, dtype, op)
    return np.empty(shape, dtype) if out is None else out


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

    Raises
    ------
    TypeError
        If x is not a float32/float64 ndarray or a geometry argument is not an
        int or a pair of ints.
    ValueError
        If x is not 4-D, a size is out of range, or the window does not fit.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> fc.im2col(x, 3).shape
    (1, 9, 4)
    """
    x, g = _v.check_im2col(x, kernel_size, stride, padding, dilation)
    return _ext.im2col(x, g)


@docfiller
def col2im(cols: Array[Float], output_size: Size2, kernel_size: Size2,
           stride: Size2 = 1, padding: Size2 = 0, dilation: Size2 = 1) -> Array[Float]:
    """Fold columns back into an image, summing overlaps (``F.fold``).

    The adjoint of :func:`im2col`: ``<im2col(x), c> == <x, col2im(c)>``.

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

    Raises
    ------
    TypeError, ValueError
        As :func:`im2col`; also if L or the row count of cols does not match
        the geometry.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> ones = np.ones((1, 9, 4), dtype=np.float32)
    >>> fc.col2im(ones, (4, 4), 3)[0, 0]      # how many windows cover each cell
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]], dtype=float32)
    """
    cols, g = _v.check_col2im(cols, output_size, kernel_size, stride, padding,
                              dilation)
    return _ext.col2im(cols, g)


# ---- convolution: 1-D, 2-D, 3-D, and the choice of algorithm -------------

def _conv_run(algorithm, x4, w4, bias, g, relu=False, op="conv2d"):
    """The compiled 2-D convolution (conv2d; conv1d on (N, C, 1, L) views)."""
    return ConvPlan(g, x4.dtype, algorithm, op).forward(x4, w4, bias, relu=relu)


def _conv_backward_run(algorithm, gy4, x4, w4, g, op="conv2d_backward"):
    """(grad_x, grad_w, grad_b) of :func:`_conv_run`."""
    return ConvPlan(g, x4.dtype, algorithm, op).backward(gy4, x4, w4)


@docfiller
def conv1d(x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None,
           stride: Size1 = 1, padding: Padding1 = 0, dilation: Size1 = 1,
           groups: Int = 1, *, algorithm: Algorithm1d = "auto") -> Array[Float]:
    """1-D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    Runs :func:`conv2d`'s compiled kernels on (N, C, 1, L) views.

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

    Raises
    ------
    TypeError
        Unsupported or mismatched dtypes, geometry not an int or 1-tuple.
    ValueError
        Wrong ranks, channel mismatch, groups not dividing C and F, bias of
        the wrong shape, non-positive stride/dilation, negative padding,
        a kernel longer than the padded input, an unknown algorithm.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.arange(5, dtype=np.float32).reshape(1, 1, 5)
    >>> w = np.array([[[1, 0, -1]]], dtype=np.float32)
    >>> fc.conv1d(x, w, padding="same")
    array([[[-1., -2., -2., -2.,  3.]]], dtype=float32)
    """
    _v.check_algorithm(algorithm, "conv1d")
    x, weight, g = _v.check_conv1d("conv1d", x, weight, stride, padding,
                                   dilation, groups)
    bias = _v.check_bias("conv1d", bias, x, g)
    return _as3d(_conv_run(algorithm, _as4d(x), _as4d(weight), bias, g, op="conv1d"))


@docfiller
def conv1d_backward(grad_out: Array[Float], x: Array[Float], weight: Array[Float],
                    stride: Size1 = 1, padding: Padding1 = 0, dilation: Size1 = 1,
                    groups: Int = 1, *,
                    algorithm: Algorithm1d = "auto") -> Grads[Float]:
    """Gradients of :func:`conv1d` with respect to x, weight and bias.

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

    Raises
    ------
    TypeError, ValueError
        As :func:`conv1d`; also if grad_out does not have the forward
        output's shape or dtype.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((1, 1, 5)); w = np.ones((1, 1, 3))
    >>> gx, gw, gb = fc.conv1d_backward(np.ones((1, 1, 3)), x, w)
    >>> gx
    array([[[1., 2., 3., 2., 1.]]])
    """
    op = "conv1d_backward"
    _v.check_algorithm(algorithm, op)
    x, weight, g = _v.check_conv1d(op, x, weight, stride, padding, dilation,
                                   groups)
    grad_out = _v.check_grad_out_1d(op, grad_out, x, (g.N, g.F, g.Wo))
    grad_x, grad_w, grad_b = _conv_backward_run(
        algorithm, _as4d(grad_out), _as4d(x), _as4d(weight), g, op)
    return _as3d(grad_x), _as3d(grad_w), grad_b


@docfiller
def conv2d(x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None,
           stride: Size2 = 1, padding: Padding2 = 0, dilation: Size2 = 1,
           groups: Int = 1, *, algorithm: Algorithm = "auto",
           relu: bool = False) -> Array[Float]:
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

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

    Raises
    ------
    TypeError
        Unsupported or mismatched dtypes, non-int geometry.
    ValueError
        Wrong ranks, channel mismatch, groups not dividing C and F, bias of
        the wrong shape, non-positive stride/dilation, negative padding,
        a kernel larger than the padded input, an unknown algorithm.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((2, 3, 227, 227), dtype=np.float32)
    >>> w = np.ones((96, 3, 11, 11), dtype=np.float32)
    >>> fc.conv2d(x, w, stride=4).shape          # AlexNet's first layer
    (2, 96, 55, 55)
    """
    _v.check_algorithm(algorithm, "conv2d")
    x, weight, g = _v.check_conv2d("conv2d", x, weight, stride, padding,
                                   dilation, groups)
    bias = _v.check_bias("conv2d", bias, x, g)
    return _conv_run(algorithm, x, weight, bias, g, relu)


@docfiller
def conv2d_backward(grad_out: Array[Float], x: Array[Float], weight: Array[Float],
                    stride: Size2 = 1, padding: Padding2 = 0, dilation: Size2 = 1,
                    groups: Int = 1, *, algorithm: Algorithm = "auto") -> Grads[Float]:
    """Gradients of :func:`conv2d` with respect to x, weight and bias.

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

    Raises
    ------
    TypeError, ValueError
        As :func:`conv2d`; also if grad_out does not have the forward
        output's shape or dtype.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((1, 1, 4, 4)); w = np.ones((1, 1, 3, 3))
    >>> gx, gw, gb = fc.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gb
    array([4.])
    """
    op = "conv2d_backward"
    _v.check_algorithm(algorithm, op)
    x, weight, g = _v.check_conv2d(op, x, weight, stride, padding, dilation,
                                   groups)
    grad_out = _v.check_grad_out(op, grad_out, x, (g.N, g.F, g.Ho, g.Wo))
    return _conv_backward_run(algorithm, grad_out, x, weight, g, op)


def _depth_taps(x, g):
    """The 3-D convolution as 2-D ones: returns (xt, g2, taps).

    ``xt`` is x zero-padded along depth and laid out depth-major, (N, Dp, C,
    H, W); depth tap ``i`` of the kernel reads planes ``i*dd + od*sd`` of it
    for every output depth od: ``xt[:, taps[i]]``, an (N, Do, C, H, W) view
    that, flattened to (N*Do, C, H, W), is the input of a 2-D convolution
    with geometry ``g2`` and weight ``weight[:, :, i]``.
    """
    span = (g.Do - 1) * g.sd + 1
    Dp = max(g.pf + g.D, (g.kd - 1) * g.dd + span)
    N, C, D, H, W = x.shape
    xt = np.zeros((N, Dp, C, H, W), dtype=x.dtype)
    xt[:, g.pf:g.pf + D] = x.transpose(0, 2, 1, 3, 4)
    g2 = _v.ConvGeometry(N * g.Do, C, H, W, g.kh, g.kw, g.sh, g.sw, g.pt,
                         g.pl, g.dh, g.dw, g.Ho, g.Wo, g.F, g.groups)
    taps = [slice(i * g.dd, i * g.dd + span, g.sd) for i in range(g.kd)]
    return xt, g2, taps


def _tap_input(xt, tap, g2):
    return np.ascontiguousarray(xt[:, tap]).reshape(g2.N, g2.C, g2.H, g2.W)


@docfiller
def conv3d(x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None,
           stride: Size3 = 1, padding: Padding3 = 0, dilation: Size3 = 1,
           groups: Int = 1) -> Array[Float]:
    """3-D convolution (cross-correlation), as ``torch.nn.functional.conv3d``.

    Computed as kd 2-D convolutions, one per depth tap of the kernel, on the
    compiled kernels of :func:`conv2d` (the packed GEMM, or the direct kernel
    for depthwise convolutions) with the output depths as extra images; their
    outputs are added in tap order.  Extra memory: a depth-padded copy of x,
    one tap's input and two output-sized arrays; no column matrix.

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

    Raises
    ------
    TypeError
        Unsupported or mismatched dtypes, non-int geometry.
    ValueError
        Wrong ranks, channel mismatch, groups not dividing C and F, bias of
        the wrong shape, non-positive stride/dilation, negative padding, a
        kernel larger than the padded input.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((2, 3, 16, 32, 32), dtype=np.float32)
    >>> w = np.ones((8, 3, 3, 3, 3), dtype=np.float32)
    >>> y = fc.conv3d(x, w, padding=1)
    >>> y.shape
    (2, 8, 16, 32, 32)
    >>> float(y[0, 0, 5, 5, 5]), float(y[0, 0, 0, 0, 0])   # 3*27 and 3*8 taps
    (81.0, 24.0)
    """
    op = "conv3d"
    x, weight, g = _v.check_conv3d(op, x, weight, stride, padding, dilation,
                                   groups)
    bias = _v.check_bias(op, bias, x, g)
    y = np.empty((g.N, g.F, g.Do, g.Ho, g.Wo), dtype=x.dtype)
    if y.size == 0:
        return y
    xt, g2, taps = _depth_taps(x, g)
    acc = None
    for i, tap in enumerate(taps):
        # Taps added in a fixed order: results do not depend on threads.
        yi = _conv_run("auto", _tap_input(xt, tap, g2),
                       np.ascontiguousarray(weight[:, :, i]),
                       bias if i == 0 else None, g2, op=op)
        acc = yi if acc is None else np.add(acc, yi, out=acc)
    y[...] = acc.reshape(g.N, g.Do, g.F, g.Ho, g.Wo).transpose(0, 2, 1, 3, 4)
    return y


@docfiller
def conv3d_backward(grad_out: Array[Float], x: Array[Float], weight: Array[Float],
                    stride: Size3 = 1, padding: Padding3 = 0, dilation: Size3 = 1,
                    groups: Int = 1) -> Grads[Float]:
    """Gradients of :func:`conv3d` with respect to x, weight and bias.

    Computed as :func:`conv3d` is, by depth taps: each tap's 2-D backward
    pass gives its slice of grad_weight and an input gradient added into
    grad_x in tap order, so results are bitwise the same whatever
    ``set_num_threads`` says.

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

    Raises
    ------
    TypeError, ValueError
        As :func:`conv3d`; also if grad_out does not have the forward
        output's shape or dtype.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((1, 1, 4, 4, 4)); w = np.ones((1, 1, 3, 3, 3))
    >>> gx, gw, gb = fc.conv3d_backward(np.ones((1, 1, 2, 2, 2)), x, w)
    >>> gb, float(gw[0, 0, 1, 1, 1]), float(gx[0, 0, 1, 1, 1])
    (array([8.]), 8.0, 8.0)
    """
    op = "conv3d_backward"
    x, weight, g = _v.check_conv3d(op, x, weight, stride, padding, dilation,
                                   groups)
    grad_out = _v.check_grad_out3d(op, grad_out, x,
                                   (g.N, g.F, g.Do, g.Ho, g.Wo))
    grad_b = _ext.bias_grad(grad_out.reshape(g.N, g.F, g.Do * g.Ho, g.Wo))
    if grad_out.size == 0:
        return (np.zeros(x.shape, dtype=x.dtype),
                np.zeros(weight.shape, dtype=x.dtype), grad_b)
    grad_w = np.empty(weight.shape, dtype=x.dtype)
    xt, g2, taps = _depth_taps(x, g)
    grad_xt = np.zeros_like(xt)
    gy = np.ascontiguousarray(grad_out.transpose(0, 2, 1, 3, 4)).reshape(
        g2.N, g.F, g.Ho, g.Wo)
    # Every tap has the same 2-D shapes, so the same kernel.
    kernel = (_ext.conv2d_direct_backward
              if ConvPlan(g2, x.dtype, "auto", op).algorithm == "direct"
              else _ext.conv2d_gemm_backward)
    for i, tap in enumerate(taps):
        gxi, grad_w[:, :, i] = kernel(gy, _tap_input(xt, tap, g2),
                                      np.ascontiguousarray(weight[:, :, i]), g2)
        grad_xt[:, tap] += gxi.reshape(xt[:, tap].shape)
    grad_x = np.ascontiguousarray(
        grad_xt[:, g.pf:g.pf + g.D].transpose(0, 2, 1, 3, 4))
    return grad_x, grad_w, grad_b


def select_algorithm(x_shape: Shape, weight_shape: Shape, groups: Int = 1,
                     stride: Size2 = 1, dilation: Size2 = 1) -> str:
    """The kernel ``algorithm="auto"`` runs for these shapes.

    The rule depends on shapes only, so a given layer always runs the same
    kernel: ``"direct"`` for grouped convolutions whose filters each see a
    single input channel (depthwise, ``groups > 1`` and ``C // groups == 1``),
    where each group's matrix product would be a single row; ``"winograd"``
    for 3x3 filters at stride 1, dilation 1 where it measured faster than
    the GEMM (forward and backward, 1 thread): at least 32 input channels
    and filters per group and ``N*H*W >= 1024`` (``>= 4096`` if either is
    not a multiple of 16), or 16 to 31 of them, both multiples of 16, and
    ``N*H*W >= 16384`` (its transforms cost per channel what its products
    save, and conv2d transforms the filters on every call); its output tile
    by the rule of :func:`fastconv.conv_plan` (F(4x4, 3x3) unless the
    tiles' overhang makes F(2x2, 3x3) do no more multiplications);
    ``"winograd"`` too for dilated 3x3 filters at stride 1 with at least 64
    input channels and filters per group and ``ceil(H / dh)`` and
    ``ceil(W / dw)`` at least 14 (split into the dilation's ``dh * dw``
    phases, each an image at dilation 1), by the rule above; and for strided
    kernels whose stride phases are 3x3
    (``ceil(kh / sh) == ceil(kw / sw) == 3``: 11x11 at stride 4, 6x6 at
    stride 2) with their taps filling at least 3/4 of those phases
    (``4 * kh * kw >= 27 * sh * sw``: not 5x5 at stride 2), split into
    ``sh * sw`` phase channels per channel of ``ceil(H / sh) x ceil(W / sw)``,
    by the same rule on those channels and positions;
    ``"gemm"`` (packed matrix product) otherwise, including single-channel
    inputs (``C == 1``, ``groups == 1``), where one product covers all
    filters.  The backward pass of a Winograd convolution computes grad_x
    (paddings up to 2) and grad_weight by Winograd too.

    Parameters
    ----------
    x_shape : tuple (N, C, H, W)
    weight_shape : tuple (F, C // groups, kh, kw)
    groups : int
    stride, dilation : int or (int, int)

    Returns
    -------
    str
        ``"direct"``, ``"winograd"`` or ``"gemm"``.

    Examples
    --------
    >>> import fastconv as fc
    >>> fc.select_algorithm((8, 64, 56, 56), (64, 64, 3, 3))
    'winograd'
    >>> fc.select_algorithm((8, 64, 56, 56), (128, 64, 3, 3), stride=2)
    'gemm'
    >>> fc.select_algorithm((8, 3, 227, 227), (96, 3, 11, 11), stride=4)
    'winograd'
    >>> fc.select_algorithm((8, 64, 56, 56), (64, 64, 3, 3), dilation=2)
    'winograd'
    """
    x_shape, weight_shape, groups = _v.check_select_algorithm(
        x_shape, weight_shape, groups, stride, dilation)
    op = "select_algorithm"
    return choose_algorithm(tuple(x_shape), tuple(weight_shape), groups,
                            _v.pair(stride, "stride", op), _v.pair(dilation, "dilation", op))


# ---- locally connected (unshared) convolution ----------------------------

@docfiller
def locally_connected2d(x: Array[Float], weight: Array[Float],
                        bias: Array[Float] | None = None, stride: Size2 = 1,
                        padding: Size2 = 0, dilation: Size2 = 1) -> Array[Float]:
    """Locally connected 2-D layer: a convolution whose filters are not shared.

    Every output position ``(oh, ow)`` has its own bank of F filters, as
    Keras' ``LocallyConnected2D`` (the cs231n notes' relaxed parameter
    sharing, for centred inputs such as faces)::

        y[n, :, oh, ow] = patch(n, oh, ow) @ weight[oh, ow].reshape(C*kh*kw, F)
                          + bias[:, oh, ow]

    where ``patch(n, oh, ow)`` is column ``oh*Wo + ow`` of
    ``im2col(x, (kh, kw), stride, padding, dilation)[n]``.  With every
    position holding the same filters, the result is :func:`conv2d`'s.

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

    Raises
    ------
    TypeError
        Unsupported or mismatched dtypes, non-int geometry.
    ValueError
        Wrong ranks, channel mismatch, weight's (Ho, Wo) or bias's shape not
        matching the output size the geometry gives, non-positive stride or
        dilation, negative padding, a kernel larger than the padded input.

    Notes
    -----
    The compiled kernel first copies x, zero padded, to an image-innermost
    layout (C, Hp, Wp, N) (the backward pass also builds grad_x in that
    layout): one kernel tap then reads a contiguous row over the images.
    Per output position it runs the (F x C*kh*kw) by (C*kh*kw x N) product of
    the position's filters and patches, in parallel over output rows; results
    do not depend on the thread count.  Where that padded copy would be far
    larger than the input and its windows (huge padding with a stride that
    skips most of it), the columns of :func:`im2col` are multiplied by the
    filters instead (``numpy.einsum``), so memory and time follow the input
    and the output, not the padding.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((2, 3, 8, 8), dtype=np.float32)
    >>> w = np.ones((6, 6, 3, 3, 3, 4), dtype=np.float32)  # (Ho, Wo, C, kh, kw, F)
    >>> y = fc.locally_connected2d(x, w)
    >>> y.shape, float(y[0, 0, 0, 0])
    ((2, 4, 6, 6), 27.0)
    >>> w_conv = np.ones((4, 3, 3, 3), dtype=np.float32)       # (F, C, kh, kw)
    >>> w_shared = np.broadcast_to(w_conv.transpose(1, 2, 3, 0), w.shape)
    >>> np.array_equal(fc.locally_connected2d(x, w_shared), fc.conv2d(x, w_conv))
    True
    """
    op = "locally_connected2d"
    x, weight, g = _v.check_locally_connected2d(op, x, weight, stride,
                                                padding, dilation)
    bias = _v.check_local_bias(op, bias, x, g)
    if _lc_sparse(g):
        y = np.einsum("nkl,lkf->nfl", _ext.im2col(x, g),
                      weight.reshape(g.Ho * g.Wo, -1, g.F))
        y = y.reshape(g.N, g.F, g.Ho, g.Wo)
        return y if bias is None else np.add(y, bias, out=y)
    return _ext.locally_connected2d(x, weight, bias, g)


def _lc_sparse(g):
    """Whether the kernels' zero-padded copy of x (C, Hp, Wp, N) would hold
    far more than the input and the cells of the windows together."""
    Hp = max(g.pt + g.H, (g.Ho - 1) * g.sh + (g.kh - 1) * g.dh + 1)
    Wp = max(g.pl + g.W, (g.Wo - 1) * g.sw + (g.kw - 1) * g.dw + 1)
    windows = g.C * g.kh * g.kw * g.Ho * g.Wo
    return g.C * Hp * Wp > 4 * (g.C * g.H * g.W + windows) + 2**16


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

    Raises
    ------
    TypeError, ValueError
        As :func:`locally_connected2d`; also if grad_out does not have the
        forward output's shape or dtype.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((2, 1, 3, 3)); w = np.ones((1, 1, 1, 3, 3, 1))
    >>> gx, gw, gb = fc.locally_connected2d_backward(np.ones((2, 1, 1, 1)), x, w)
    >>> gx.shape, gw.shape, gb
    ((2, 1, 3, 3), (1, 1, 1, 3, 3, 1), array([[[2.]]]))
    """
    op = "locally_connected2d_backward"
    x, weight, g = _v.check_locally_connected2d(op, x, weight, stride,
                                                padding, dilation)
    grad_out = _v.check_grad_out(op, grad_out, x, (g.N, g.F, g.Ho, g.Wo))
    if _lc_sparse(g):                          # as in locally_connected2d
        L = g.Ho * g.Wo
        cols, w = _ext.im2col(x, g), weight.reshape(L, -1, g.F)
        gy = grad_out.reshape(g.N, g.F, L)
        gcols = np.ascontiguousarray(np.einsum("nfl,lkf->nkl", gy, w))
        grad_x = _ext.col2im(gcols, g)
        grad_w = np.einsum("nkl,nfl->lkf", cols, gy).reshape(weight.shape)
        return grad_x, grad_w, grad_out.sum(axis=0)
    return _ext.locally_connected2d_backward(grad_out, x, weight, g)


# ---- max pooling ---------------------------------------------------------

@docfiller
def max_pool1d(x: Array[Float], kernel_size: Size1, stride: Size1 | None = None,
               padding: Size1 = 0, dilation: Size1 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolOutput:
    """1-D max pooling with optional argmax indices (``F.max_pool1d``).

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
    TypeError, ValueError
        Bad dtype, rank or geometry; padding larger than half the window.
    %(raises_empty_window1d)s

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[1, 3, 2, 5, 4]]], dtype=np.float32)
    >>> fc.max_pool1d(x, 2, return_indices=True)
    (array([[[3., 5.]]], dtype=float32), array([[[1, 3]]]))
    """
    x, g = _v.check_max_pool1d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    return_indices = _v.check_flag(return_indices, "return_indices", "max_pool1d")
    res = _ext.max_pool2d(_as4d(x), g, return_indices)
    if return_indices:
        return _as3d(res[0]), _as3d(res[1])
    return _as3d(res)


@docfiller
def max_pool1d_backward(grad_out: Array[Float], indices: Indices,
                        input_shape: Shape) -> Array[Float]:
    """Route each output gradient to its window's maximum.

    Parameters
    ----------
    %(grad_out_max_pool1d)s
    %(indices1d)s
    %(input_shape1d)s

    Returns
    -------
    %(grad_x_max_pool)s

    Raises
    ------
    TypeError
        indices not int64, grad_out of an unsupported dtype.
    ValueError
        Shapes that disagree, or an index outside [0, L).

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[1, 3, 2, 5]]], dtype=np.float32)
    >>> y, idx = fc.max_pool1d(x, 2, return_indices=True)
    >>> fc.max_pool1d_backward(np.ones_like(y), idx, x.shape)
    array([[[0., 1., 0., 1.]]], dtype=float32)
    """
    grad_out, indices, input_shape = _v.check_max_pool1d_backward(
        grad_out, indices, input_shape)
    N, C, L = input_shape
    grad_x = _ext.max_pool2d_backward(
        _as4d(grad_out), _as4d(indices), (N, C, 1, L),
        lambda: _v.indices_out_of_range_1d(input_shape))
    return _as3d(grad_x)


@docfiller
def max_pool2d(x: Array[Float], kernel_size: Size2, stride: Size2 | None = None,
               padding: Size2 = 0, dilation: Size2 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolOutput:
    """2-D max pooling with optional argmax "switches" (``F.max_pool2d``).

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
    TypeError, ValueError
        Bad dtype, rank or geometry; padding larger than half the window.
    %(raises_empty_window2d)s

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[[1, 3], [2, 3]]]], dtype=np.float32)
    >>> fc.max_pool2d(x, 2, return_indices=True)
    (array([[[[3.]]]], dtype=float32), array([[[[1]]]]))
    """
    x, g = _v.check_max_pool2d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    return_indices = _v.check_flag(return_indices, "return_indices", "max_pool2d")
    return _ext.max_pool2d(x, g, return_indices)


@docfiller
def max_pool2d_backward(grad_out: Array[Float], indices: Indices,
                        input_shape: Shape) -> Array[Float]:
    """Route each output gradient to its window's maximum.

    Parameters
    ----------
    %(grad_out_max_pool2d)s
    %(indices2d)s
    %(input_shape2d)s

    Returns
    -------
    %(grad_x_max_pool)s

    Raises
    ------
    TypeError
        indices not int64, grad_out of an unsupported dtype.
    ValueError
        Shapes that disagree, or an index outside [0, H*W) (checked before
        anything is written out of place).

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[[1, 3], [2, 0]]]], dtype=np.float32)
    >>> y, idx = fc.max_pool2d(x, 2, return_indices=True)
    >>> fc.max_pool2d_backward(np.ones_like(y), idx, x.shape)[0, 0]
    array([[0., 1.],
           [0., 0.]], dtype=float32)
    """
    grad_out, indices, input_shape = _v.check_max_pool2d_backward(
        grad_out, indices, input_shape)
    return _ext.max_pool2d_backward(grad_out, indices, input_shape,
                                    lambda: _v.indices_out_of_range(input_shape))


@docfiller
def max_pool3d(x: Array[Float], kernel_size: Size3, stride: Size3 | None = None,
               padding: Size3 = 0, dilation: Size3 = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolOutput:
    """3-D max pooling with optional argmax indices (``F.max_pool3d``).

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
    TypeError, ValueError
        Bad dtype, rank or geometry; padding larger than half the window.
    %(raises_empty_window3d)s

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    >>> fc.max_pool3d(x, 2, return_indices=True)
    (array([[[[[7.]]]]], dtype=float32), array([[[[[7]]]]]))
    """
    x, g = _v.check_max_pool3d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    return_indices = _v.check_flag(return_indices, "return_indices", "max_pool3d")
    return _ext.max_pool3d(x, g, return_indices)


@docfiller
def max_pool3d_backward(grad_out: Array[Float], indices: Indices,
                        input_shape: Shape) -> Array[Float]:
    """Route each output gradient to its window's maximum.

    Parameters
    ----------
    %(grad_out_max_pool3d)s
    %(indices3d)s
    %(input_shape3d)s

    Returns
    -------
    %(grad_x_max_pool)s

    Raises
    ------
    TypeError
        indices not int64, grad_out of an unsupported dtype.
    ValueError
        Shapes that disagree, or an index outside [0, D*H*W) (nothing is
        written out of place).

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    >>> y, idx = fc.max_pool3d(x, 2, return_indices=True)
    >>> fc.max_pool3d_backward(np.ones_like(y), idx, x.shape).ravel()
    array([0., 0., 0., 0., 0., 0., 0., 1.], dtype=float32)
    """
    grad_out, indices, input_shape = _v.check_max_pool3d_backward(
        grad_out, indices, input_shape)
    return _ext.max_pool3d_backward(
        grad_out, indices, input_shape,
        lambda: _v.indices_out_of_range(input_shape, "max_pool3d_backward"))


# ---- average pooling -----------------------------------------------------

@docfiller
def avg_pool1d(x: Array[Float], kernel_size: Size1, stride: Size1 | None = None,
               padding: Size1 = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Array[Float]:
    """1-D average pooling, as ``torch.nn.functional.avg_pool1d``.

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

    Raises
    ------
    TypeError, ValueError
        As :func:`max_pool1d`.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[1, 3, 2, 6]]], dtype=np.float32)
    >>> fc.avg_pool1d(x, 2)
    array([[[2., 4.]]], dtype=float32)
    """
    x, g = _v.check_avg_pool1d(x, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad", "avg_pool1d")
    return _as3d(_ext.avg_pool2d(_as4d(x), g, count_include_pad))


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

    Raises
    ------
    TypeError, ValueError
        As :func:`avg_pool1d`; also if grad_out does not have the forward
        output's shape.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> fc.avg_pool1d_backward(np.ones((1, 1, 2)), (1, 1, 4), 2)
    array([[[0.5, 0.5, 0.5, 0.5]]])
    """
    grad_out, g = _v.check_avg_pool1d_backward(grad_out, input_shape,
                                               kernel_size, stride, padding,
                                               ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool1d_backward")
    return _as3d(_ext.avg_pool2d_backward(_as4d(grad_out), g,
                                          count_include_pad))


@docfiller
def avg_pool2d(x: Array[Float], kernel_size: Size2, stride: Size2 | None = None,
               padding: Size2 = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Array[Float]:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

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

    Raises
    ------
    TypeError, ValueError
        As :func:`max_pool2d`.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((1, 1, 2, 2), dtype=np.float32)
    >>> fc.avg_pool2d(x, 2, stride=1, padding=1)[0, 0]
    array([[0.25, 0.5 , 0.25],
           [0.5 , 1.  , 0.5 ],
           [0.25, 0.5 , 0.25]], dtype=float32)
    """
    x, g = _v.check_avg_pool2d(x, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad", "avg_pool2d")
    return _ext.avg_pool2d(x, g, count_include_pad)


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

    Raises
    ------
    TypeError, ValueError
        As :func:`avg_pool2d`; also if grad_out does not have the forward
        output's shape.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> g = np.ones((1, 1, 1, 1), dtype=np.float32)
    >>> fc.avg_pool2d_backward(g, (1, 1, 2, 2), 2)[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]], dtype=float32)
    """
    grad_out, g = _v.check_avg_pool2d_backward(grad_out, input_shape,
                                               kernel_size, stride, padding,
                                               ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool2d_backward")
    return _ext.avg_pool2d_backward(grad_out, g, count_include_pad)


@docfiller
def avg_pool3d(x: Array[Float], kernel_size: Size3, stride: Size3 | None = None,
               padding: Size3 = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Array[Float]:
    """3-D average pooling, as ``torch.nn.functional.avg_pool3d``.

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

    Raises
    ------
    TypeError, ValueError
        As :func:`max_pool3d`.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((1, 1, 2, 2, 2), dtype=np.float32)
    >>> fc.avg_pool3d(x, 2, stride=1, padding=1)[0, 0, 0]
    array([[0.125, 0.25 , 0.125],
           [0.25 , 0.5  , 0.25 ],
           [0.125, 0.25 , 0.125]], dtype=float32)
    """
    x, g = _v.check_avg_pool3d(x, kernel_size, stride, padding, ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad", "avg_pool3d")
    return _ext.avg_pool3d(x, g, count_include_pad)


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

    Raises
    ------
    TypeError, ValueError
        As :func:`avg_pool3d`; also if grad_out does not have the forward
        output's shape.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> g = np.ones((1, 1, 1, 1, 1), dtype=np.float32)
    >>> fc.avg_pool3d_backward(g, (1, 1, 2, 2, 2), 2).ravel()
    array([0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125],
          dtype=float32)
    """
    grad_out, g = _v.check_avg_pool3d_backward(grad_out, input_shape,
                                               kernel_size, stride, padding,
                                               ceil_mode)
    count_include_pad = _v.check_flag(count_include_pad, "count_include_pad",
                                      "avg_pool3d_backward")
    return _ext.avg_pool3d_backward(grad_out, g, count_include_pad)


# ---- Lp-norm pooling -----------------------------------------------------
# Lp-norm and global pooling are compositions of the compiled pooling
# kernels with whole-array NumPy element-wise operations.

def _torch_sign(a):
    """torch.sign / torch.sgn: -1, 0 or 1, and 0 for NaN (np.sign gives NaN)."""
    return (np.greater(a, 0).astype(a.dtype)
            - np.less(a, 0).astype(a.dtype))


def _lp_forward(x4, p, g):
    """Lp pooling of a C-contiguous (N, C, H, W) x for geometry g."""
    if p == np.inf:
        return _ext.max_pool2d(np.abs(x4), g, False)
    if p == -np.inf:
        return np.negative(_ext.max_pool2d(-np.abs(x4), g, False))
    with np.errstate(all="ignore"):          # NaN/inf as torch gives them
        o = _ext.avg_pool2d(np.power(x4, p), g, True)
        # torch: (sign(o) * relu(|o|)) * (kh*kw), which is o * (kh*kw)
        # (NaN and +-inf included), then ** (1/p).
        o *= g.kh * g.kw
        return np.power(o, 1.0 / p, out=o)


def _lp_backward(gy4, x4, p, g):
    """torch's autograd of lp_pool2d, step by step, for C-contiguous 4-D arrays."""
    shape = x4.shape
    if p in (np.inf, -np.inf):
        # d|x|/dx = sgn(x); the maximum's gradient goes to the argmax of
        # |x| (inf) or of -|x| (-inf); -(-g) = g for the latter.
        a = np.abs(x4) if p > 0 else -np.abs(x4)
        _, idx = _ext.max_pool2d(a, g, True)
        grad_a = _ext.max_pool2d_backward(gy4, idx, shape)
        grad_a *= _torch_sign(x4)
        return grad_a
    K = g.kh * g.kw
    with np.errstate(all="ignore"):
        o = _ext.avg_pool2d(np.power(x4, p), g, True)
        s = _torch_sign(o)
        r = np.abs(o)                                   # relu(|o|)
        u = s * r * K
        gu = gy4 * ((1.0 / p) * np.power(u, 1.0 / p - 1.0))    # pow
        gr = gu * K * s                                 # mul(K), mul(sign)
        gr[r <= 0] = 0                                  # relu: 0 where |o| = 0
        go = gr * s                                     # abs: * sgn(o)
        ga = _ext.avg_pool2d_backward(go, g, True)
        ga *= p * np.power(x4, p - 1.0)                 # pow
    return ga


@docfiller
def lp_pool1d(x: Array[Float], norm_type: float, kernel_size: Size1,
              stride: Size1 | None = None, ceil_mode: bool = False) -> Array[Float]:
    """1-D power-average (Lp-norm) pooling, as ``F.lp_pool1d``.

    ``y = (k * avg_pool1d(x ** p)) ** (1/p)``; see :func:`lp_pool2d`.
    kernel_size may be a 1-tuple (PyTorch's lp_pool1d fails on one).

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

    Raises
    ------
    TypeError, ValueError
        As :func:`lp_pool2d`, in 1-D terms.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[3, 4, 1, 0]]], dtype=np.float32)
    >>> fc.lp_pool1d(x, 2, 2)
    array([[[5., 1.]]], dtype=float32)
    """
    x, p, g = _v.check_lp_pool1d("lp_pool1d", x, norm_type, kernel_size,
                                 stride, ceil_mode)
    return _as3d(_lp_forward(_as4d(x), p, g))


@docfiller
def lp_pool1d_backward(grad_out: Array[Float], x: Array[Float], norm_type: float,
                       kernel_size: Size1, stride: Size1 | None = None,
                       ceil_mode: bool = False) -> Array[Float]:
    """Gradient of :func:`lp_pool1d` with respect to x (see :func:`lp_pool2d_backward`).

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

    Raises
    ------
    TypeError, ValueError
        As :func:`lp_pool1d`; also if grad_out does not have the forward
        output's shape or dtype.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[3., 4., 0., 0.]]])
    >>> fc.lp_pool1d_backward(np.ones((1, 1, 2)), x, 2, 2)
    array([[[0.6, 0.8, 0. , 0. ]]])
    """
    grad_out, x, p, g = _v.check_lp_pool1d_backward(
        grad_out, x, norm_type, kernel_size, stride, ceil_mode)
    return _as3d(_lp_backward(_as4d(grad_out), _as4d(x), p, g))


@docfiller
def lp_pool2d(x: Array[Float], norm_type: float, kernel_size: Size2,
              stride: Size2 | None = None, ceil_mode: bool = False) -> Array[Float]:
    """2-D power-average (Lp-norm) pooling, as ``F.lp_pool2d``.

    ``y = (kh*kw * avg_pool2d(x ** p)) ** (1/p)``, which is
    ``(sum of x**p over the window) ** (1/p)``; ``p = 2`` is the L2 pooling
    of the cs231n notes, ``p = inf`` max pooling of ``|x|`` and
    ``p = -inf`` min pooling of ``|x|`` (as PyTorch).  There is no padding.

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

    Raises
    ------
    TypeError
        x of an unsupported dtype, norm_type not a real number, geometry
        not an int or pair of ints.
    ValueError
        norm_type 0 or NaN, x not 4-D, a window larger than the input.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[[3, 0], [0, 4]]]], dtype=np.float32)
    >>> fc.lp_pool2d(x, 2, 2)                  # sqrt(3**2 + 4**2)
    array([[[[5.]]]], dtype=float32)
    """
    x, p, g = _v.check_lp_pool2d("lp_pool2d", x, norm_type, kernel_size,
                                 stride, ceil_mode)
    return _lp_forward(x, p, g)


@docfiller
def lp_pool2d_backward(grad_out: Array[Float], x: Array[Float], norm_type: float,
                       kernel_size: Size2, stride: Size2 | None = None,
                       ceil_mode: bool = False) -> Array[Float]:
    """Gradient of :func:`lp_pool2d` with respect to x, as torch's autograd.

    Where a window's sum of ``x**p`` is 0 the gradient is 0 (PyTorch's
    ``relu`` in the definition gives this), for example an all-zero window
    with ``p = 2``.  NaN is returned where PyTorch returns NaN: windows whose
    output is NaN, and zero inputs with ``p < 1`` (``0 * inf``); ``inf``
    where PyTorch returns it.  For ``p = +-inf`` the gradient goes to the
    max (min) of ``|x|``, times ``sign(x)`` (0 at ``x == 0``).

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

    Raises
    ------
    TypeError, ValueError
        As :func:`lp_pool2d`; also if grad_out does not have the forward
        output's shape or dtype.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[[3., 0.], [0., 4.]]]])
    >>> fc.lp_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2, 2)  # x / |x|_2
    array([[[[0.6, 0. ],
             [0. , 0.8]]]])
    """
    grad_out, x, p, g = _v.check_lp_pool2d_backward(
        grad_out, x, norm_type, kernel_size, stride, ceil_mode)
    return _lp_backward(grad_out, x, p, g)


# ---- global average pooling ----------------------------------------------

@docfiller
def global_avg_pool2d(x: Array[Float]) -> Array[Float]:
    """Mean over each H x W plane: ``F.adaptive_avg_pool2d(x, 1)``.

    Parameters
    ----------
    %(x2d)s

    Returns
    -------
    %(y_global)s

    Raises
    ------
    TypeError
        x not a float32/float64 ndarray.
    ValueError
        x not 4-D, or H or W is 0.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    >>> fc.global_avg_pool2d(x).ravel()
    array([1.5, 5.5], dtype=float32)
    """
    x, g = _v.check_global_avg_pool2d(x)
    return _ext.avg_pool2d(x, g, True)


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

    Raises
    ------
    TypeError, ValueError
        Bad dtype or ranks, an empty plane, or grad_out not (N, C, 1, 1).

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> fc.global_avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2))
    array([[[[0.25, 0.25],
             [0.25, 0.25]]]])
    """
    grad_out, g = _v.check_global_avg_pool2d_backward(grad_out, input_shape)
    return _ext.avg_pool2d_backward(grad_out, g, True)


# ---- batch normalisation -------------------------------------------------

def _channel_values(v, C, default):
    """A (C,) float64 copy of an optional per-channel array."""
    return np.full(C, default) if v is None else v.astype(np.float64)


@docfiller
def batch_norm2d(x: Array[Float], running_mean: Array[Float] | None,
                 running_var: Array[Float] | None, weight: Array[Float] | None = None,
                 bias: Array[Float] | None = None, training: bool = False,
                 momentum: float = 0.1, eps: float = 1e-5, *, relu: bool = False,
                 out: Array[Float] | None = None, return_stats: bool = False
                 ) -> Array[Float] | tuple[Array[Float], Array[Float], Array[Float]]:
    """Batch normalisation over (N, H, W) per channel (``F.batch_norm``).

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

    Raises
    ------
    TypeError, ValueError
        Bad dtypes or shapes, a non-bool flag, negative momentum or eps,
        missing running statistics in evaluation, one value per channel in
        training, or a bad ``out``.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.arange(8, dtype=np.float64).reshape(2, 1, 2, 2)
    >>> fc.batch_norm2d(x, None, None, training=True).ravel().round(2)
    array([-1.53, -1.09, -0.65, -0.22,  0.22,  0.65,  1.09,  1.53])
    """
    x, training, momentum, eps, relu = _v.check_batch_norm2d(
        x, running_mean, running_var, weight, bias, training, momentum, eps, relu)
    y = _result(out, x.shape, x.dtype, "batch_norm2d")
    N, C, H, W = x.shape
    gamma, beta = _channel_values(weight, C, 1.0), _channel_values(bias, C, 0.0)
    if training:
        mean, var = _ext.batch_norm_train(x, gamma, beta, eps, relu, y)
        if running_mean is not None:
            n = N * H * W
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            running_var[...] = ((1 - momentum) * running_var
                                + momentum * var * (n / (n - 1)))
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
        scale = gamma / np.sqrt(var + eps)
        _ext.batch_norm_apply(x, scale, beta - mean * scale, relu, y)
    if return_stats:
        return y, mean.astype(x.dtype), (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    return y


@docfiller
def batch_norm2d_backward(grad_out: Array[Float], x: Array[Float], mean: Array[Float],
                          invstd: Array[Float], weight: Array[Float] | None = None, *,
                          training: bool = True, y: Array[Float] | None = None,
                          out: Array[Float] | None = None) -> Grads[Float]:
    """Gradients of :func:`batch_norm2d` with respect to x, weight and bias.

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

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.arange(8, dtype=np.float64).reshape(2, 1, 2, 2)
    >>> y, mean, invstd = fc.batch_norm2d(x, None, None, training=True, return_stats=True)
    >>> gx, gw, gb = fc.batch_norm2d_backward(np.ones_like(x), x, mean, invstd)
    >>> float(abs(gx).max()) < 1e-12, gb
    (True, array([8.]))
    """
    grad_out, x, training, y = _v.check_batch_norm2d_backward(
        grad_out, x, mean, invstd, weight, training, y)
    gx = _result(out, x.shape, x.dtype, "batch_norm2d_backward")
    C = x.shape[1]
    g_gamma, g_beta = _ext.batch_norm_backward(
        grad_out, x, y, mean.astype(np.float64), invstd.astype(np.float64),
        _channel_values(weight, C, 1.0), training, gx)
    return gx, g_gamma.astype(x.dtype), g_beta.astype(x.dtype)


# ---- activation and element-wise: ReLU, residual add ---------------------

def _flat(a):
    return a.reshape(-1)


@docfiller
def relu(x: Array[Float], *, out: Array[Float] | None = None) -> Array[Float]:
    """``max(x, 0)`` element-wise (``F.relu``; NaN stays NaN).

    Parameters
    ----------
    %(x_any)s
    %(out_x)s

    Returns
    -------
    %(y_relu)s

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> fc.relu(np.array([-1.0, 0.5]))
    array([0. , 0.5])
    """
    x = _v.check_any_array(x, "x", "relu")
    y = _result(out, x.shape, x.dtype, "relu")
    _ext.relu(_flat(x), _flat(y))
    return y


@docfiller
def relu_backward(grad_out: Array[Float], y: Array[Float], *,
                  out: Array[Float] | None = None) -> Array[Float]:
    """Gradient of :func:`relu`: 0 where the output ``y <= 0``, else grad_out.

    Parameters
    ----------
    %(relu_backward_grad_out)s
    %(relu_backward_y)s
    %(out_grad)s

    Returns
    -------
    %(grad_x_relu)s

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> fc.relu_backward(np.array([3.0, 3.0]), np.array([0.0, 2.0]))
    array([0., 3.])
    """
    op = "relu_backward"
    grad_out = _v.check_any_array(grad_out, "grad_out", op)
    y = _v.check_like(op, grad_out, "grad_out", y, "y")
    gx = _result(out, grad_out.shape, grad_out.dtype, op)
    _ext.relu_backward(_flat(grad_out), _flat(y), _flat(gx))
    return gx


@docfiller
def add(a: Array[Float], b: Array[Float], *, relu: bool = False,
        out: Array[Float] | None = None) -> Array[Float]:
    """``a + b``, optionally ``max(a + b, 0)`` in the same pass (a residual
    connection and the ReLU after it).

    Parameters
    ----------
    %(add_ab)s
    %(add_relu)s
    %(add_out)s

    Returns
    -------
    %(y_add)s

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> fc.add(np.array([1.0, -3.0]), np.array([1.0, 1.0]), relu=True)
    array([2., 0.])
    """
    op = "add"
    a = _v.check_any_array(a, "a", op)
    b = _v.check_like(op, a, "a", b, "b")
    relu = _v.check_flag(relu, "relu", op)
    y = _result(out, a.shape, a.dtype, op)
    _ext.add(_flat(a), _flat(b), relu, _flat(y))
    return y


# ---- fully connected -----------------------------------------------------

@docfiller
def linear(x: Array[Float], weight: Array[Float], bias: Array[Float] | None = None, *,
           relu: bool = False, out: Array[Float] | None = None) -> Array[Float]:
    """``x @ weight.T + bias`` (``F.linear``) on fastconv's GEMM micro-kernels.

    No BLAS is called: the product runs on the same packed micro-kernels and
    OpenMP threads as the convolutions, and every output sums its terms in
    a fixed order (the same bits whatever the thread count and batch size).

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

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> fc.linear(np.ones((2, 3)), np.ones((4, 3)), np.arange(4.0))
    array([[3., 4., 5., 6.],
           [3., 4., 5., 6.]])
    """
    op = "linear"
    x, weight, bias = _v.check_linear(op, x, weight, bias)
    relu = _v.check_flag(relu, "relu", op)
    if out is not None and np.may_share_memory(out, x):
        raise ValueError(f"{op}: out must not overlap x")
    y = _result(out, (x.shape[0], weight.shape[0]), x.dtype, op)
    _ext.linear(x, weight, bias, relu, y)
    return y


@docfiller
def linear_backward(grad_out: Array[Float], x: Array[Float],
                    weight: Array[Float]) -> Grads[Float]:
    """Gradients of :func:`linear` with respect to x, weight and bias.

    Parameters
    ----------
    %(grad_out_linear)s
    %(x_linear)s
    %(weight_linear)s

    Returns
    -------
    %(grads_linear)s

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> gx, gw, gb = fc.linear_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((4, 3)))
    >>> gx[0], gb
    (array([4., 4., 4.]), array([2., 2., 2., 2.]))
    """
    op = "linear_backward"
    x, weight, _ = _v.check_linear(op, x, weight, None)
    grad_out = _v.check_grad_out(op, grad_out, x, (x.shape[0], weight.shape[0]),
                                 shape_doc="(N, out_features)")
    grad_x = np.empty(x.shape, x.dtype)
    grad_w = np.empty(weight.shape, x.dtype)
    _ext.linear_backward(grad_out, x, weight, grad_x, grad_w)
    return grad_x, grad_w, _ext.bias_grad(grad_out.reshape(grad_out.shape + (1, 1)))
