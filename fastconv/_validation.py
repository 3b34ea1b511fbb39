"""Argument checking and output-shape arithmetic, shared by both paths.

Every public kernel in :mod:`fastconv.functional` and its twin in
:mod:`fastconv.reference` calls the ``check_*`` function of the same name here
first, so both paths accept the same inputs and raise the same errors.  The
compiled kernels trust what these functions return: 4-D, C-contiguous arrays of
one float dtype and a geometry whose every output size is at least 1.
"""

import numbers
from collections import namedtuple

import numpy as np

__all__ = []

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
ALGORITHMS = ("auto", "gemm", "direct")

# One geometry record for every op.  pt/pl are the top/left paddings; the
# bottom/right padding is implied by the output size (Ho, Wo), which is all the
# kernels need, so asymmetric "same" padding costs nothing extra.
Geometry = namedtuple(
    "Geometry",
    "N C H W kh kw sh sw pt pl dh dw Ho Wo",
)
ConvGeometry = namedtuple(
    "ConvGeometry", Geometry._fields + ("F", "groups")
)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def pair(value, name, op):
    """Return ``value`` as a pair of Python ints; accepts an int or a pair."""
    if _is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        _is_int(v) for v in value
    ):
        return (int(value[0]), int(value[1]))
    raise TypeError(
        f"{op}: {name} must be an int or a pair of ints (h, w), got {value!r}"
    )


def _positive_pair(value, name, op):
    result = pair(value, name, op)
    if min(result) < 1:
        raise ValueError(f"{op}: {name} must be positive, got {value!r}")
    return result


def _non_negative_pair(value, name, op):
    result = pair(value, name, op)
    if min(result) < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {value!r}")
    return result


def check_array(x, name, op, shape_doc="(N, C, H, W)"):
    """Return ``x`` as a C-contiguous 4-D float32/float64 array (no copy if it is one)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{op}: {name} must be a numpy.ndarray, got {type(x).__name__}"
        )
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{op}: {name} must have dtype float32 or float64, got {x.dtype} "
            f"(shape {x.shape}); convert it with {name}.astype(np.float32)"
        )
    ndim = shape_doc.count(",") + 1
    if x.ndim != ndim:
        raise ValueError(
            f"{op}: {name} must have {ndim} dimensions {shape_doc}, got shape {x.shape}"
        )
    return np.ascontiguousarray(x)


def _same_dtype(reference, reference_name, other, other_name, op):
    if other.dtype != reference.dtype:
        raise TypeError(
            f"{op}: {other_name} has dtype {other.dtype} but {reference_name} "
            f"has dtype {reference.dtype}; they must match"
        )


def _out_size(size, pad_total, kernel, stride, dilation):
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def _check_fits(op, name, shape, size, pad, kernel, dilation, out):
    """Raise unless the (dilated) window fits inside the padded input."""
    hw = ("H", "W")
    for axis in range(2):
        if out[axis] < 1:
            effective = dilation[axis] * (kernel[axis] - 1) + 1
            raise ValueError(
                f"{op}: {name} {kernel} (dilated extent {effective} along "
                f"{hw[axis]}) is larger than the padded input: {hw[axis]}="
                f"{size[axis]} plus padding {pad[axis]} for {name.split()[0]} "
                f"of shape {shape}; the output size would be {out[axis]}"
            )


def _window_geometry(op, x_shape, kernel_size, stride, padding, dilation,
                     name="x"):
    """Geometry of a symmetric-padding sliding window (unfold, conv, pool)."""
    kh, kw = _positive_pair(kernel_size, "kernel_size", op)
    sh, sw = _positive_pair(stride, "stride", op)
    ph, pw = _non_negative_pair(padding, "padding", op)
    dh, dw = _positive_pair(dilation, "dilation", op)
    N, C, H, W = x_shape
    Ho = _out_size(H, 2 * ph, kh, sh, dh)
    Wo = _out_size(W, 2 * pw, kw, sw, dw)
    _check_fits(op, f"{name} with kernel_size", x_shape, (H, W),
                (2 * ph, 2 * pw), (kh, kw), (dh, dw), (Ho, Wo))
    return Geometry(N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------

def check_im2col(x, kernel_size, stride, padding, dilation):
    op = "im2col"
    x = check_array(x, "x", op)
    geom = _window_geometry(op, x.shape, kernel_size, stride, padding, dilation)
    return x, geom


def check_col2im(cols, output_size, kernel_size, stride, padding, dilation):
    op = "col2im"
    cols = check_array(cols, "cols", op, shape_doc="(N, C*kh*kw, L)")
    H, W = _positive_pair(output_size, "output_size", op)
    kh, kw = _positive_pair(kernel_size, "kernel_size", op)
    N, rows, L = cols.shape
    if rows % (kh * kw):
        raise ValueError(
            f"{op}: cols has {rows} rows (shape {cols.shape}), which is not a "
            f"multiple of kh*kw = {kh * kw} for kernel_size {(kh, kw)}"
        )
    C = rows // (kh * kw)
    geom = _window_geometry(op, (N, C, H, W), (kh, kw), stride, padding,
                            dilation, name="output_size")
    if L != geom.Ho * geom.Wo:
        raise ValueError(
            f"{op}: cols has L = {L} columns (shape {cols.shape}) but "
            f"output_size {(H, W)} with kernel_size {(kh, kw)}, stride "
            f"{(geom.sh, geom.sw)}, padding {(geom.pt, geom.pl)} and dilation "
            f"{(geom.dh, geom.dw)} gives {geom.Ho}x{geom.Wo} = "
            f"{geom.Ho * geom.Wo} blocks"
        )
    return cols, geom


# --------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------

def check_algorithm(algorithm, op):
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"{op}: algorithm must be one of {ALGORITHMS}, got {algorithm!r}"
        )
    return algorithm


def _conv_padding(op, padding, kernel, stride, dilation):
    """Return (top, bottom, left, right) padding for int, pair, 'same', 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"{op}: padding='same' needs stride 1, got stride {stride}"
                )
            # PyTorch puts the odd extra row/column at the bottom/right.
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return (*pads[0], *pads[1])
        raise ValueError(
            f"{op}: padding must be an int, a pair, 'same' or 'valid', "
            f"got {padding!r}"
        )
    ph, pw = _non_negative_pair(padding, "padding", op)
    return (ph, ph, pw, pw)


def check_conv2d(op, x, weight, stride, padding, dilation, groups):
    """Check conv2d arguments; return (x, weight, ConvGeometry)."""
    x = check_array(x, "x", op)
    weight = check_array(weight, "weight", op, shape_doc="(F, C/groups, kh, kw)")
    _same_dtype(x, "x", weight, "weight", op)
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    N, C, H, W = x.shape
    F, Cg, kh, kw = weight.shape
    if C < 1 or F < 1 or kh < 1 or kw < 1:
        raise ValueError(
            f"{op}: x of shape {x.shape} and weight of shape {weight.shape} "
            f"must have at least one channel, filter and kernel element"
        )
    if C % groups or F % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the input channels "
            f"(x of shape {x.shape}: C={C}) and the filters (weight of shape "
            f"{weight.shape}: F={F})"
        )
    if Cg * groups != C:
        raise ValueError(
            f"{op}: x of shape {x.shape} has C={C} channels but weight of "
            f"shape {weight.shape} expects C/groups*groups = {Cg}*{groups} = "
            f"{Cg * groups}"
        )
    sh, sw = _positive_pair(stride, "stride", op)
    dh, dw = _positive_pair(dilation, "dilation", op)
    pt, pb, pl, pr = _conv_padding(op, padding, (kh, kw), (sh, sw), (dh, dw))
    Ho = _out_size(H, pt + pb, kh, sh, dh)
    Wo = _out_size(W, pl + pr, kw, sw, dw)
    _check_fits(op, "weight with kernel_size", weight.shape, (H, W),
                (pt + pb, pl + pr), (kh, kw), (dh, dw), (Ho, Wo))
    geom = ConvGeometry(N, C, H, W, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo,
                        F, groups)
    return x, weight, geom


def check_bias(op, bias, x, geom):
    if bias is None:
        return None
    bias = check_array(bias, "bias", op, shape_doc="(F)")
    _same_dtype(x, "x", bias, "bias", op)
    if bias.shape != (geom.F,):
        raise ValueError(
            f"{op}: bias must have shape ({geom.F},) to match weight's F={geom.F}, "
            f"got shape {bias.shape}"
        )
    return bias


def check_grad_out(op, grad_out, x, expected_shape):
    grad_out = check_array(grad_out, "grad_out", op)
    _same_dtype(x, "x", grad_out, "grad_out", op)
    if grad_out.shape != tuple(expected_shape):
        raise ValueError(
            f"{op}: grad_out must have the forward output's shape "
            f"{tuple(expected_shape)}, got shape {grad_out.shape}"
        )
    return grad_out


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------

def _pool_out_size(size, kernel, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling output size, including its ceil_mode rule."""
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-numerator // stride) + 1
        # The last window must start inside the input or the left padding.
        if (out - 1) * stride >= size + pad:
            out -= 1
    else:
        out = numerator // stride + 1
    return out


def _pool_geometry(op, x_shape, kernel_size, stride, padding, dilation,
                   ceil_mode, name="x"):
    kh, kw = _positive_pair(kernel_size, "kernel_size", op)
    sh, sw = (kh, kw) if stride is None else _positive_pair(stride, "stride", op)
    ph, pw = _non_negative_pair(padding, "padding", op)
    dh, dw = _positive_pair(dilation, "dilation", op)
    # PyTorch's rule: padding at most half the (undilated) kernel size.
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"{op}: padding {(ph, pw)} must be at most half of kernel_size "
            f"{(kh, kw)}"
        )
    N, C, H, W = x_shape
    Ho = _pool_out_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = _pool_out_size(W, kw, sw, pw, dw, ceil_mode)
    _check_fits(op, f"{name} with kernel_size", x_shape, (H, W),
                (2 * ph, 2 * pw), (kh, kw), (dh, dw), (Ho, Wo))
    hw = ("H", "W")
    for axis, (size, k, s, p, d, out) in enumerate(
        ((H, kh, sh, ph, dh, Ho), (W, kw, sw, pw, dw, Wo))
    ):
        o = _empty_window(size, k, s, p, d, out)
        if o is not None:
            # PyTorch returns -inf with an index outside the plane here.
            raise ValueError(
                f"{op}: with kernel_size {(kh, kw)}, stride {(sh, sw)}, "
                f"padding {(ph, pw)} and dilation {(dh, dw)}, output position "
                f"{o} along {hw[axis]} has a window that skips every cell of "
                f"{name} of shape {tuple(x_shape)}; use less padding or "
                f"dilation"
            )
    return Geometry(N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def _empty_window(size, kernel, stride, pad, dilation, n_out):
    """First output position whose dilated window holds no input cell, or None.

    Only windows that reach into the padding or past the end can be empty,
    so only those (a few at each border) are examined.
    """
    if dilation == 1:
        return None
    extent = dilation * (kernel - 1)
    n_left = min(n_out, pad // stride + 1)
    n_right = min(n_out, extent // stride + 2)
    for o in sorted(set(range(n_left)) | set(range(n_out - n_right, n_out))):
        start = o * stride - pad
        first = max(0, -(-(-start) // dilation))     # first tap at >= 0
        if first >= kernel or start + first * dilation >= size:
            return o
    return None


def check_input_shape(op, input_shape):
    if not (
        isinstance(input_shape, (tuple, list))
        and len(input_shape) == 4
        and all(_is_int(v) and v >= 0 for v in input_shape)
    ):
        raise ValueError(
            f"{op}: input_shape must be 4 non-negative ints (N, C, H, W), "
            f"got {input_shape!r}"
        )
    return tuple(int(v) for v in input_shape)


def check_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode):
    op = "max_pool2d"
    x = check_array(x, "x", op)
    geom = _pool_geometry(op, x.shape, kernel_size, stride, padding, dilation,
                          ceil_mode)
    return x, geom


def check_max_pool2d_backward(grad_out, indices, input_shape):
    op = "max_pool2d_backward"
    input_shape = check_input_shape(op, input_shape)
    grad_out = check_array(grad_out, "grad_out", op)
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError(
            f"{op}: indices must be an int64 numpy.ndarray as returned by "
            f"max_pool2d(..., return_indices=True), got "
            f"{getattr(indices, 'dtype', type(indices).__name__)}"
        )
    if indices.shape != grad_out.shape:
        raise ValueError(
            f"{op}: indices of shape {indices.shape} must have grad_out's "
            f"shape {grad_out.shape}"
        )
    if grad_out.shape[:2] != input_shape[:2]:
        raise ValueError(
            f"{op}: grad_out of shape {grad_out.shape} and input_shape "
            f"{input_shape} must agree on N and C"
        )
    return grad_out, np.ascontiguousarray(indices), input_shape


def indices_out_of_range(input_shape):
    """The error both paths raise for an index outside the H*W plane."""
    H, W = input_shape[2:]
    return ValueError(
        f"max_pool2d_backward: indices must lie in [0, H*W) = [0, {H * W}) "
        f"for input_shape {tuple(input_shape)}"
    )


def check_avg_pool2d(x, kernel_size, stride, padding, ceil_mode):
    op = "avg_pool2d"
    x = check_array(x, "x", op)
    geom = _pool_geometry(op, x.shape, kernel_size, stride, padding, 1,
                          ceil_mode)
    return x, geom


def check_avg_pool2d_backward(grad_out, input_shape, kernel_size, stride,
                              padding, ceil_mode):
    op = "avg_pool2d_backward"
    input_shape = check_input_shape(op, input_shape)
    grad_out = check_array(grad_out, "grad_out", op)
    geom = _pool_geometry(op, input_shape, kernel_size, stride, padding, 1,
                          ceil_mode, name="input_shape")
    expected = (geom.N, geom.C, geom.Ho, geom.Wo)
    if grad_out.shape != expected:
        raise ValueError(
            f"{op}: grad_out must have the forward output's shape {expected} "
            f"for input_shape {input_shape}, got shape {grad_out.shape}"
        )
    return grad_out, geom


# ==========================================================================
# locally connected layer
# ==========================================================================

LocalGeometry = namedtuple("LocalGeometry", Geometry._fields + ("F",))


def check_locally_connected2d(op, x, weight, stride, padding, dilation):
    """Check locally_connected2d arguments; return (x, weight, LocalGeometry).

    ``weight`` has shape (Ho, Wo, C, kh, kw, F): the output size it implies
    must be the one the input geometry gives.
    """
    x = check_array(x, "x", op)
    weight = check_array(weight, "weight", op,
                         shape_doc="(Ho, Wo, C, kh, kw, F)")
    _same_dtype(x, "x", weight, "weight", op)
    N, C, H, W = x.shape
    wHo, wWo, Cw, kh, kw, F = weight.shape
    if C < 1 or min(weight.shape) < 1:
        raise ValueError(
            f"{op}: x of shape {x.shape} and weight of shape {weight.shape} "
            f"must have at least one channel, output position, filter and "
            f"kernel element"
        )
    if Cw != C:
        raise ValueError(
            f"{op}: x of shape {x.shape} has C={C} channels but weight of "
            f"shape {weight.shape} (Ho, Wo, C, kh, kw, F) expects C={Cw}"
        )
    g = _window_geometry(op, x.shape, (kh, kw), stride, padding, dilation)
    if (wHo, wWo) != (g.Ho, g.Wo):
        raise ValueError(
            f"{op}: weight of shape {weight.shape} (Ho, Wo, C, kh, kw, F) "
            f"holds filters for {wHo}x{wWo} output positions but x of shape "
            f"{x.shape} with kernel_size {(kh, kw)}, stride {(g.sh, g.sw)}, "
            f"padding {(g.pt, g.pl)} and dilation {(g.dh, g.dw)} gives a "
            f"{g.Ho}x{g.Wo} output"
        )
    return x, weight, LocalGeometry(*g, F)


def check_local_bias(op, bias, x, geom):
    """None, or bias as a C-contiguous (F, Ho, Wo) array of x's dtype."""
    if bias is None:
        return None
    bias = check_array(bias, "bias", op, shape_doc="(F, Ho, Wo)")
    _same_dtype(x, "x", bias, "bias", op)
    expected = (geom.F, geom.Ho, geom.Wo)
    if bias.shape != expected:
        raise ValueError(
            f"{op}: bias must have shape (F, Ho, Wo) = {expected} to match "
            f"weight's F={geom.F} and the {geom.Ho}x{geom.Wo} output, got "
            f"shape {bias.shape}"
        )
    return bias
