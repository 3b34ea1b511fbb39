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

__all__ = [
    "im2col", "col2im", "conv2d", "conv2d_backward", "max_pool2d",
    "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
]


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold sliding windows into columns (``torch.nn.functional.unfold``).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    kernel_size, stride, padding, dilation : int or (int, int)
        Window geometry; zero padding.

    Returns
    -------
    cols : ndarray of shape (N, C*kh*kw, L), L = Ho*Wo
        ``cols[n, c*kh*kw + i*kw + j, oh*Wo + ow]`` is
        ``x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]`` (0 in the padding),
        with ``Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1`` and likewise Wo.

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


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns back into an image, summing overlaps (``F.fold``).

    The adjoint of :func:`im2col`: ``<im2col(x), c> == <x, col2im(c)>``.

    Parameters
    ----------
    cols : ndarray of shape (N, C*kh*kw, L), dtype float32 or float64
    output_size : int or (int, int)
        The image size (H, W).
    kernel_size, stride, padding, dilation : int or (int, int)

    Returns
    -------
    x : ndarray of shape (N, C, H, W)

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


def select_algorithm(x_shape, weight_shape, groups=1):
    """The kernel ``algorithm="auto"`` runs for these shapes.

    The rule depends on shapes only, so a given layer always runs the same
    kernel: ``"direct"`` for grouped convolutions whose filters each see a
    single input channel (depthwise, ``groups > 1`` and ``C // groups == 1``),
    where each group's matrix product would be a single row; ``"gemm"``
    (packed matrix product) otherwise, including single-channel inputs
    (``C == 1``, ``groups == 1``), where one product covers all filters.

    Parameters
    ----------
    x_shape : tuple (N, C, H, W)
    weight_shape : tuple (F, C // groups, kh, kw)
    groups : int

    Returns
    -------
    str
        ``"direct"`` or ``"gemm"``.
    """
    return "direct" if groups > 1 and weight_shape[1] == 1 else "gemm"


def _pick(algorithm, x, weight, g):
    if algorithm == "auto":
        return select_algorithm(x.shape, weight.shape, g.groups)
    return algorithm


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           algorithm="auto"):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    weight : ndarray of shape (F, C // groups, kh, kw), same dtype
    bias : ndarray of shape (F,), same dtype, optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), "same" or "valid"
        Zero padding on both sides; ``"same"`` (stride 1 only) keeps H and W,
        putting an odd extra row/column at the bottom/right as PyTorch does.
    groups : int
        Input channels and filters are split into ``groups`` independent
        groups; ``groups == C`` is a depthwise convolution.
    algorithm : {"auto", "gemm", "direct"}
        ``"gemm"``: fastconv's packed matrix product (AVX-512 / AVX2 /
        generic micro-kernels chosen at run time), with im2col fused into
        the packing of bounded per-thread tiles: the column matrix is never
        formed.  ``"direct"``: a loop over kernel
        taps, no column matrix.  ``"auto"``: see :func:`select_algorithm`.

    Returns
    -------
    y : ndarray of shape (N, F, Ho, Wo)
        ``Ho = (H + pad_top + pad_bottom - dh*(kh-1) - 1) // sh + 1``, Wo alike.

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
    if bias is None:
        bias = np.zeros(g.F, dtype=x.dtype)
    if _pick(algorithm, x, weight, g) == "direct":
        return _ext.conv2d_direct(x, weight, bias, g)
    return _ext.conv2d_gemm(x, weight, bias, g)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1,
                    groups=1, *, algorithm="auto"):
    """Gradients of :func:`conv2d` with respect to x, weight and bias.

    Parameters
    ----------
    grad_out : ndarray of shape (N, F, Ho, Wo)
        Gradient of the loss with respect to conv2d's output.
    x, weight, stride, padding, dilation, groups, algorithm
        As given to :func:`conv2d`.

    Returns
    -------
    grad_x : ndarray of shape (N, C, H, W)
    grad_weight : ndarray of shape (F, C // groups, kh, kw)
    grad_bias : ndarray of shape (F,)
        Always returned; ignore it for a convolution without bias.

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
    if _pick(algorithm, x, weight, g) == "direct":
        grad_x, grad_w = _ext.conv2d_direct_backward(grad_out, x, weight, g)
    else:
        grad_x, grad_w = _ext.conv2d_gemm_backward(grad_out, x, weight, g)
    return grad_x, grad_w, _ext.bias_grad(grad_out)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False, return_indices=False):
    """2-D max pooling with optional argmax "switches" (``F.max_pool2d``).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to kernel_size.
    padding : int or (int, int)
        Implicit -inf padding, at most half the (dilated) window; padded
        cells never win.
    dilation : int or (int, int)
    ceil_mode : bool
        Round the output size up; the last window must start inside the
        input or its left/top padding.
    return_indices : bool
        Also return the argmax of each window.

    Returns
    -------
    y : ndarray of shape (N, C, Ho, Wo)
    indices : ndarray of shape (N, C, Ho, Wo), int64
        Only with ``return_indices=True``: ``ih*W + iw`` of each maximum,
        flat into its H*W plane.  Ties go to the first maximum in row-major
        scan order; a window holding NaN yields NaN, indexed at its last NaN
        (PyTorch's rule).

    Raises
    ------
    TypeError, ValueError
        Bad dtype, rank or geometry (see :func:`im2col`); padding larger
        than half the window.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> x = np.array([[[[1, 3], [2, 3]]]], dtype=np.float32)
    >>> fc.max_pool2d(x, 2, return_indices=True)
    (array([[[[3.]]]], dtype=float32), array([[[[1]]]]))
    """
    x, g = _v.check_max_pool2d(x, kernel_size, stride, padding, dilation,
                               ceil_mode)
    return _ext.max_pool2d(x, g, bool(return_indices))


def max_pool2d_backward(grad_out, indices, input_shape):
    """Route each output gradient to its window's maximum.

    Parameters
    ----------
    grad_out : ndarray of shape (N, C, Ho, Wo), dtype float32 or float64
    indices : ndarray of shape (N, C, Ho, Wo), int64
        As returned by ``max_pool2d(..., return_indices=True)``.
    input_shape : tuple (N, C, H, W)
        The shape of max_pool2d's input.

    Returns
    -------
    grad_x : ndarray of shape input_shape
        Gradients of overlapping windows that share a maximum are summed.

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
    grad_x, n_bad = _ext.max_pool2d_backward(grad_out, indices, input_shape)
    if n_bad:
        raise _v.indices_out_of_range(input_shape)
    return grad_x


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to kernel_size.
    padding : int or (int, int)
        Zero padding, at most half the window.
    ceil_mode : bool
        Round the output size up (as :func:`max_pool2d`).
    count_include_pad : bool
        Divide by the window size including zero padding (but not the part
        of a ceil_mode window hanging past the padding), or by the number of
        real input cells.

    Returns
    -------
    y : ndarray of shape (N, C, Ho, Wo)

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
    return _ext.avg_pool2d(x, g, bool(count_include_pad))


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None,
                        padding=0, ceil_mode=False, count_include_pad=True):
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_out : ndarray of shape (N, C, Ho, Wo), dtype float32 or float64
    input_shape : tuple (N, C, H, W)
        The shape of avg_pool2d's input.
    kernel_size, stride, padding, ceil_mode, count_include_pad
        As given to :func:`avg_pool2d`.

    Returns
    -------
    grad_x : ndarray of shape input_shape
        Each output gradient divided by its window's divisor and added to
        every input cell of the window.

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
    return _ext.avg_pool2d_backward(grad_out, g, bool(count_include_pad))


# ==========================================================================
# locally connected layer (unshared convolution)
# ==========================================================================

__all__ += ["locally_connected2d", "locally_connected2d_backward"]


def locally_connected2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
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
    x : ndarray of shape (N, C, H, W), dtype float32 or float64
    weight : ndarray of shape (Ho, Wo, C, kh, kw, F), same dtype
        ``weight[oh, ow, ..., f]`` is filter f of position (oh, ow), a
        (C, kh, kw) filter as in :func:`conv2d`.  The filters come last so
        that each position's bank is one contiguous (C*kh*kw, F) matrix, as
        Keras' kernel is, and the compiled kernels need no transposed copy
        of it.  Keras' kernel ``k`` of shape (Ho*Wo, kh*kw*C, F) is
        ``k.reshape(Ho, Wo, kh, kw, C, F).transpose(0, 1, 4, 2, 3, 5)``; a
        conv2d weight ``wc`` of shape (F, C, kh, kw) shared by every position
        is ``np.broadcast_to(wc.transpose(1, 2, 3, 0), (Ho, Wo, C, kh, kw, F))``.
    bias : ndarray of shape (F, Ho, Wo), same dtype, optional
        One bias per filter and position.
    stride, padding, dilation : int or (int, int)
        Window geometry as :func:`conv2d` (zero padding on both sides).
        ``Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1`` (Wo alike) must equal
        weight's first two sizes.

    Returns
    -------
    y : ndarray of shape (N, F, Ho, Wo)

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
    do not depend on the thread count.

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
    return _ext.locally_connected2d(x, weight, bias, g)


def locally_connected2d_backward(grad_out, x, weight, stride=1, padding=0,
                                 dilation=1):
    """Gradients of :func:`locally_connected2d` for x, weight and bias.

    Parameters
    ----------
    grad_out : ndarray of shape (N, F, Ho, Wo)
        Gradient of the loss with respect to the layer's output.
    x, weight, stride, padding, dilation
        As given to :func:`locally_connected2d`.

    Returns
    -------
    grad_x : ndarray of shape (N, C, H, W)
    grad_weight : ndarray of shape (Ho, Wo, C, kh, kw, F)
        ``grad_weight[oh, ow]`` sums over the batch only (no sharing).
    grad_bias : ndarray of shape (F, Ho, Wo)
        ``grad_out.sum(axis=0)``; always returned, ignore it without bias.

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
    return _ext.locally_connected2d_backward(grad_out, x, weight, g)
