"""Argument checking and output-shape arithmetic, shared by both paths.

Every public kernel in :mod:`fastconv.functional` and its twin in
:mod:`fastconv.reference` calls the ``check_*`` function of the same name here
first, so both paths accept the same inputs and raise the same errors.  The
compiled kernels trust what these functions return: 4-D, C-contiguous arrays of
one float dtype and a geometry whose every output size is at least 1.

The module is private to the package and public within it: every helper that
another fastconv module uses has a public name and is listed in ``__all__``;
underscored names belong to this module alone (``tests/test_imports.py``).
"""

import math
import numbers
from collections import namedtuple

import numpy as np

__all__ = [
    # records and constants
    "SUPPORTED_DTYPES", "ALGORITHMS", "Geometry", "ConvGeometry", "VolGeometry",
    "VolConvGeometry", "LocalGeometry",
    # scalar and per-axis arguments
    "is_int", "int_items", "as_rng", "positive_int", "check_flag", "check_float",
    "ntuple", "pair", "positive_tuple", "non_negative_tuple", "positive_pair",
    "non_negative_pair", "single",
    # the range check of every integer that reaches the kernels
    "INDEX_LIMIT", "check_index_range",
    # arrays, shapes and outputs
    "check_array", "check_dtype", "check_ndim", "check_shape", "nhwc_hint",
    "check_input_shape", "check_input_shape_1d", "check_grad_out", "check_grad_out_1d",
    "check_grad_out3d", "check_out", "check_like", "check_any_array",
    # sliding-window geometry
    "out_size", "window_geometry",
    # im2col / col2im
    "check_im2col", "check_col2im",
    # convolution
    "conv_padding", "conv_axes", "conv1d_geometry", "conv2d_geometry",
    "check_conv1d", "check_conv2d", "check_conv3d", "check_bias",
    "check_algorithm", "check_select_algorithm", "check_winograd", "winograd_fits",
    # locally connected (unshared) convolution
    "check_locally_connected2d", "check_local_bias",
    # pooling windows (max, average and Lp-norm pooling)
    "pool_out_size", "pool1d_geometry", "pool_geometry", "vol_pool_geometry",
    # max pooling
    "check_max_pool1d", "check_max_pool1d_backward", "indices_out_of_range_1d",
    "check_max_pool2d", "check_max_pool2d_backward", "indices_out_of_range",
    "check_max_pool3d", "check_max_pool3d_backward",
    # average pooling
    "check_avg_pool1d", "check_avg_pool1d_backward", "check_avg_pool2d",
    "check_avg_pool2d_backward", "check_avg_pool3d", "check_avg_pool3d_backward",
    # Lp-norm pooling
    "check_norm_type", "check_lp_pool1d", "check_lp_pool1d_backward",
    "check_lp_pool2d", "check_lp_pool2d_backward",
    # global average pooling
    "global_geometry", "check_global_avg_pool2d", "check_global_avg_pool2d_backward",
    # batch normalisation
    "check_channel_vector", "check_batch_norm2d", "check_batch_norm2d_backward",
    # fully connected
    "check_linear",
]


# ---- records and constants -----------------------------------------------

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
ALGORITHMS = ("auto", "gemm", "direct", "winograd", "winograd2x2", "winograd4x4")

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

# As Geometry, with a depth axis: pf is the front padding (the back padding
# is implied by Do, as the bottom/right ones are).
VolGeometry = namedtuple(
    "VolGeometry",
    "N C D H W kd kh kw sd sh sw pf pt pl dd dh dw Do Ho Wo",
)
VolConvGeometry = namedtuple(
    "VolConvGeometry", VolGeometry._fields + ("F", "groups")
)
_DHW = ("D", "H", "W")
_NCDHW = "(N, C, D, H, W)"

LocalGeometry = namedtuple("LocalGeometry", Geometry._fields + ("F",))


# ---- scalar and per-axis arguments ---------------------------------------

def is_int(value):
    """Whether ``value`` is an integer (NumPy's included), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_items(value):
    """The entries of a tuple, list or 1-D integer ndarray as Python ints;
    None for anything else (so shapes may come from ``np.array(x.shape)``)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "iu":
            return None
        return tuple(int(v) for v in value.tolist())
    if isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        return tuple(int(v) for v in value)
    return None


def as_rng(rng):
    """An int seed, a Generator (used as is) or None (fresh) -> Generator."""
    if rng is None or isinstance(rng, np.random.Generator):
        return rng if rng is not None else np.random.default_rng()
    if is_int(rng):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng must be None, an int seed or a numpy.random.Generator, got "
        f"{type(rng).__name__}"
    )


def positive_int(value, name, op):
    """Return ``value`` as an int >= 1, or raise ValueError naming ``name``."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return int(value)


def check_flag(value, name, op):
    """Return ``value`` as a bool; only bool and NumPy bool are flags (a
    string such as 'no' or an int would otherwise count as true/false)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{op}: {name} must be a bool (True or False), got {value!r}")


def check_float(value, name, op, minimum=None):
    """A real number (not bool), at least ``minimum`` if given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    value = float(value)
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return value


# How "an int or a tuple" is spelled in messages, by number of spatial axes.
_TUPLE_WORDS = {1: "a 1-tuple of ints (l,)", 2: "a pair of ints (h, w)",
                3: "a triple of ints (d, h, w)"}


def ntuple(value, n, name, op):
    """Return ``value`` as an n-tuple of Python ints; accepts an int or an n-tuple."""
    if is_int(value):
        return (int(value),) * n
    items = int_items(value)
    if items is not None and len(items) == n:
        return items
    raise TypeError(
        f"{op}: {name} must be an int or {_TUPLE_WORDS[n]}, got {value!r}"
    )


def pair(value, name, op):
    """Return ``value`` as a pair of Python ints; accepts an int or a pair."""
    return ntuple(value, 2, name, op)


def positive_tuple(value, n, name, op):
    result = ntuple(value, n, name, op)
    if min(result) < 1:
        hint = ""
        if name == "dilation" and min(result) == 0:
            # Some texts count the gaps between taps (0 = dense).
            hint = (
                "; fastconv counts dilation as PyTorch does: 1 is a dense "
                "kernel, 2 leaves one pixel between taps (a 'dilation 0' "
                "elsewhere is dilation=1 here)"
            )
        raise ValueError(f"{op}: {name} must be positive, got {value!r}{hint}")
    return result


def non_negative_tuple(value, n, name, op):
    result = ntuple(value, n, name, op)
    if min(result) < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {value!r}")
    return result


def positive_pair(value, name, op):
    return positive_tuple(value, 2, name, op)


def non_negative_pair(value, name, op):
    return non_negative_tuple(value, 2, name, op)


def single(value, name, op):
    """Return ``value`` as a Python int; accepts an int or a 1-tuple ``(l,)``."""
    return ntuple(value, 1, name, op)[0]


def _positive_single(value, name, op):
    return positive_tuple(value, 1, name, op)[0]


def _non_negative_single(value, name, op):
    return non_negative_tuple(value, 1, name, op)[0]


# ---- the range check of every integer that reaches the kernels -----------
# The C kernels index with 64-bit integers and add two indices at a time (a
# window's start and a tap's offset, a padded size and a stride): every
# geometry value, shape entry and padded or output element count that
# reaches them is kept below 2**62, so no such sum overflows.  Products
# (N*C*H*W, padded sizes) are taken here in Python ints; workspaces are
# sized the same way in the extension (MemoryError stating the size).
INDEX_LIMIT = 2**62


def check_index_range(op, **values):
    """Raise ValueError naming the argument unless every value (an int or a
    tuple of ints) is below INDEX_LIMIT."""
    for name, value in values.items():
        items = value if isinstance(value, tuple) else (value,)
        if any(v >= INDEX_LIMIT for v in items):
            raise ValueError(
                f"{op}: {name} {value!r} is too large for the kernels to "
                f"index: every size and geometry value must be below 2**62 "
                f"= {INDEX_LIMIT}"
            )


_MAX_ELEMENTS = INDEX_LIMIT - 1


def _check_indexable(op, padding, name, shape, padded, out_shape):
    """Raise ValueError unless the padded input and the output can be indexed.

    ``padded`` holds the padded spatial sizes of ``name`` (of ``shape``, whose
    first two entries are N and C); ``out_shape`` is the full output shape.
    Either element count (N and C counted as at least 1) of 2**62 or more
    (absurd padding) would otherwise surface as OverflowError or MemoryError
    from NumPy or the kernels, or overflow the kernels' index sums.  A large
    but indexable request is not rejected here.
    """
    shape = tuple(shape)
    # An empty batch (or channel axis) does not make absurd padding valid.
    n_padded = max(shape[0], 1) * max(shape[1], 1) * math.prod(padded)
    n_out = math.prod(max(v, 1) for v in out_shape)
    if max(n_padded, n_out) > _MAX_ELEMENTS:
        what = (f"the padded input {(*shape[:2], *padded)} ({n_padded} "
                f"elements)" if n_padded > _MAX_ELEMENTS else
                f"the output {tuple(out_shape)} ({n_out} elements)")
        raise ValueError(
            f"{op}: padding {padding!r} makes {what} too large for {name} "
            f"of shape {shape}: at most {_MAX_ELEMENTS} elements can be "
            f"indexed"
        )


# ---- arrays, shapes and outputs ------------------------------------------

def check_array(x, name, op, shape_doc="(N, C, H, W)"):
    """Return ``x`` as a C-contiguous, aligned 4-D float32/float64 array (no
    copy if it is one)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{op}: {name} must be a numpy.ndarray, got {type(x).__name__}"
        )
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{op}: {name} must have dtype float32 or float64, got {x.dtype} "
            f"(shape {x.shape}); convert it with {name}.astype(np.float32)"
        )
    check_ndim(x.shape, name, op, shape_doc)
    return _c_aligned(x)


def _c_aligned(a):
    """``a`` itself if C-contiguous and aligned, else an aligned C copy: the
    kernels read whole elements (an unaligned view, e.g. np.frombuffer at an
    odd offset, is undefined behaviour in C; UBSan flags it)."""
    return np.require(a, requirements=["C_CONTIGUOUS", "ALIGNED"])


def _same_dtype(reference, reference_name, other, other_name, op):
    if other.dtype != reference.dtype:
        raise TypeError(
            f"{op}: {other_name} has dtype {other.dtype} but {reference_name} "
            f"has dtype {reference.dtype}; they must match"
        )


def check_dtype(dtype, name, op):
    """``dtype`` as a numpy.dtype, float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in SUPPORTED_DTYPES:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {dtype!r}")
    return dt


def check_ndim(shape, name, op, shape_doc="(N, C, H, W)"):
    """Raise the rank error of :func:`check_array` for a bare shape."""
    ndim = shape_doc.count(",") + 1
    if len(shape) != ndim:
        raise ValueError(
            f"{op}: {name} must have {ndim} dimensions {shape_doc}, got shape "
            f"{tuple(shape)}"
        )


def check_shape(shape, name, op, shape_doc=None):
    """Return ``shape`` as a tuple of non-negative Python ints; with
    ``shape_doc`` (e.g. "(N, C, L)"), also check its rank as
    :func:`check_array` checks an array's."""
    items = int_items(shape)
    if items is None or (items and min(items) < 0):
        doc = f" {shape_doc}" if shape_doc else ""
        raise TypeError(
            f"{op}: {name} must be a tuple of non-negative ints{doc}, got "
            f"{shape!r}"
        )
    shape = items
    if shape_doc is not None:
        check_ndim(shape, name, op, shape_doc)
    return shape


def nhwc_hint(shape, channels):
    """A hint for a channel mismatch when ``shape`` looks channels-last."""
    ndim = len(shape)
    if ndim >= 3 and shape[-1] == channels and shape[1] != channels:
        layout = {3: ("NLC", "NCL"), 4: ("NHWC", "NCHW"),
                  5: ("NDHWC", "NCDHW")}.get(ndim, ("channels-last", "channels-first"))
        order = (0, ndim - 1) + tuple(range(1, ndim - 1))
        return (
            f"; x looks like {layout[0]} (channels last, C={channels} on the "
            f"last axis), but fastconv expects {layout[1]}: pass "
            f"x.transpose{order}"
        )
    return ""


def check_input_shape(op, input_shape, shape_doc="(N, C, H, W)"):
    ndim = shape_doc.count(",") + 1
    shape = int_items(input_shape)
    if shape is None or len(shape) != ndim or min(shape) < 0:
        raise ValueError(
            f"{op}: input_shape must be {ndim} non-negative ints {shape_doc}, "
            f"got {input_shape!r}"
        )
    return _check_shape_size(op, "input_shape", shape)


def _check_shape_size(op, name, shape):
    """``shape`` unless its entries or its element count reach INDEX_LIMIT."""
    check_index_range(op, **{name: shape})
    if math.prod(shape) > _MAX_ELEMENTS:
        raise ValueError(
            f"{op}: {name} {shape} has {math.prod(shape)} elements, more than "
            f"the {_MAX_ELEMENTS} the kernels can index"
        )
    return shape


def check_input_shape_1d(op, input_shape):
    return check_input_shape(op, input_shape, "(N, C, L)")


def check_grad_out(op, grad_out, x, expected_shape, shape_doc="(N, C, H, W)"):
    grad_out = check_array(grad_out, "grad_out", op, shape_doc=shape_doc)
    _same_dtype(x, "x", grad_out, "grad_out", op)
    if grad_out.shape != tuple(expected_shape):
        raise ValueError(
            f"{op}: grad_out must have the forward output's shape "
            f"{tuple(expected_shape)}, got shape {grad_out.shape}"
        )
    return grad_out


def check_grad_out_1d(op, grad_out, x, expected_shape):
    return check_grad_out(op, grad_out, x, expected_shape, "(N, C, L)")


def check_grad_out3d(op, grad_out, x, expected_shape):
    return check_grad_out(op, grad_out, x, expected_shape, _NCDHW)


def check_out(out, shape, dtype, op, name="out"):
    """``out`` is None or a writeable, aligned, C-contiguous array of the result's
    ``shape`` and ``dtype``; returns it."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray or None, got "
                        f"{type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(
            f"{op}: {name} must have the result's shape {tuple(shape)} and dtype "
            f"{np.dtype(dtype)}, got shape {out.shape} and dtype {out.dtype}")
    if not (out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
        raise ValueError(f"{op}: {name} must be a writeable, aligned, C-contiguous array")
    return out


def check_like(op, x, x_name, other, name):
    """``other`` as a C-contiguous, aligned array of x's shape and dtype."""
    if not isinstance(other, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got "
                        f"{type(other).__name__}")
    _same_dtype(x, x_name, other, name, op)
    if other.shape != x.shape:
        raise ValueError(f"{op}: {name} must have {x_name}'s shape {x.shape}, got "
                         f"shape {other.shape}")
    return _c_aligned(other)


def check_any_array(x, name, op):
    """A float32/float64 ndarray of any shape, C-contiguous and aligned."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{op}: {name} must have dtype float32 or float64, got "
                        f"{x.dtype} (shape {x.shape})")
    return _c_aligned(x)


# ---- sliding-window geometry ---------------------------------------------

def out_size(size, pad_total, kernel, stride, dilation):
    """Output length along one axis: ``(size + pad - d*(k-1) - 1) // s + 1``.

    The one place this arithmetic lives (convolution, im2col, pooling
    without ceil_mode, :mod:`fastconv.shapes`).
    """
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def _check_fits(op, name, shape, size, pad, kernel, dilation, out,
                axes=("H", "W")):
    """Raise unless the (dilated) window fits inside the padded input.

    ``size``, ``pad`` (total), ``kernel``, ``dilation`` and ``out`` hold one
    entry per spatial axis, named by ``axes``.
    """
    hw = axes
    for axis in range(len(axes)):
        if out[axis] < 1:
            effective = dilation[axis] * (kernel[axis] - 1) + 1
            raise ValueError(
                f"{op}: {name} {kernel} (dilated extent {effective} along "
                f"{hw[axis]}) is larger than the padded input: {hw[axis]}="
                f"{size[axis]} plus padding {pad[axis]} for {name.split()[0]} "
                f"of shape {shape}; the output size would be {out[axis]}"
            )


def window_geometry(op, x_shape, kernel_size, stride, padding, dilation,
                     name="x"):
    """Geometry of a symmetric-padding sliding window (unfold, conv, pool)."""
    kh, kw = positive_pair(kernel_size, "kernel_size", op)
    sh, sw = positive_pair(stride, "stride", op)
    ph, pw = non_negative_pair(padding, "padding", op)
    dh, dw = positive_pair(dilation, "dilation", op)
    N, C, H, W = x_shape
    Ho = out_size(H, 2 * ph, kh, sh, dh)
    Wo = out_size(W, 2 * pw, kw, sw, dw)
    _check_fits(op, f"{name} with kernel_size", x_shape, (H, W),
                (2 * ph, 2 * pw), (kh, kw), (dh, dw), (Ho, Wo))
    # The im2col matrix (N, C*kh*kw, Ho*Wo) is the largest output here.
    _check_indexable(op, padding, name, x_shape, (H + 2 * ph, W + 2 * pw),
                     (N, C * kh * kw, Ho * Wo))
    check_index_range(op, kernel_size=(kh, kw), stride=(sh, sw),
                      padding=(ph, pw), dilation=(dh, dw))
    return Geometry(N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


# The 1-D kernels run the compiled 2-D kernels on (N, C, 1, L) views, so the
# 1-D checks validate the (N, C, L) arguments in 1-D terms (messages name L
# and the 3-D shapes the caller passed) and return a 4-D Geometry with H = 1,
# kh = 1, sh = 1, no top padding and dh = 1.
def _geometry_1d(N, C, L, k, s, p, d, Lo):
    """The (N, C, 1, L) geometry the 2-D kernels run for a 1-D window."""
    return Geometry(N, C, 1, L, 1, k, 1, s, 0, p, 1, d, 1, Lo)


def _check_fits_1d(op, what, L, pad_total, k, d, out):
    if out < 1:
        raise ValueError(
            f"{op}: kernel_size {k} (dilated extent {d * (k - 1) + 1}) is "
            f"larger than the padded input: L={L} plus padding {pad_total} "
            f"for {what}; the output length would be {out}"
        )


# ---- im2col / col2im -----------------------------------------------------

def check_im2col(x, kernel_size, stride, padding, dilation):
    op = "im2col"
    x = check_array(x, "x", op)
    geom = window_geometry(op, x.shape, kernel_size, stride, padding, dilation)
    return x, geom


def check_col2im(cols, output_size, kernel_size, stride, padding, dilation):
    op = "col2im"
    cols = check_array(cols, "cols", op, shape_doc="(N, C*kh*kw, L)")
    H, W = positive_pair(output_size, "output_size", op)
    kh, kw = positive_pair(kernel_size, "kernel_size", op)
    N, rows, L = cols.shape
    if rows % (kh * kw):
        raise ValueError(
            f"{op}: cols has {rows} rows (shape {cols.shape}), which is not a "
            f"multiple of kh*kw = {kh * kw} for kernel_size {(kh, kw)}"
        )
    C = rows // (kh * kw)
    geom = window_geometry(op, (N, C, H, W), (kh, kw), stride, padding,
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


# ---- convolution ---------------------------------------------------------

def conv_padding(op, padding, kernel, stride, dilation):
    """Padding (before, after) per axis, flattened: (top, bottom, left, right)
    in 2-D, (front, back, top, bottom, left, right) in 3-D; for an int, an
    n-tuple, 'same' or 'valid'.  The number of axes is ``len(kernel)``."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * (2 * n)
        if padding == "same":
            if any(s != 1 for s in stride):
                shown = stride[0] if n == 1 else stride   # 1-D: an int
                raise ValueError(
                    f"{op}: padding='same' needs stride 1, got stride {shown}"
                )
            # PyTorch puts the odd extra row/column at the bottom/right.
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return tuple(pads)
        raise ValueError(
            f"{op}: padding must be an int, {_TUPLE_WORDS[n].split(' of ')[0]}, "
            f"'same' or 'valid', got {padding!r}"
        )
    pads = non_negative_tuple(padding, n, "padding", op)
    return tuple(p for p in pads for _ in range(2))


def _conv_padding_1d(op, padding, k, s, d):
    """Return (left, right) padding for an int, a 1-tuple, 'same' or 'valid'."""
    return conv_padding(op, padding, (k,), (s,), (d,))


def _check_channels(op, x_shape, w_shape, groups):
    """Channel, filter and group checks shared by every convolution."""
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    C = x_shape[1]
    F, Cg = w_shape[:2]
    if C < 1 or F < 1 or min(w_shape[2:]) < 1:
        raise ValueError(
            f"{op}: x of shape {x_shape} and weight of shape {w_shape} "
            f"must have at least one channel, filter and kernel element"
        )
    if C % groups or F % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the input channels "
            f"(x of shape {x_shape}: C={C}) and the filters (weight of shape "
            f"{w_shape}: F={F})"
        )
    if Cg * groups != C:
        raise ValueError(
            f"{op}: x of shape {x_shape} has C={C} channels but weight of "
            f"shape {w_shape} expects C/groups*groups = {Cg}*{groups} = "
            f"{Cg * groups}{nhwc_hint(x_shape, Cg * groups)}"
        )


def conv_axes(op, x_shape, w_shape, stride, padding, dilation, groups, axes):
    """The shape checks of :func:`_check_conv`, on bare shapes.

    Returns per-axis tuples (kernel, stride, pad_before, dilation, out).
    """
    n = len(axes)
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    _check_channels(op, x_shape, w_shape, groups)
    kernel = w_shape[2:]
    stride = positive_tuple(stride, n, "stride", op)
    dilation = positive_tuple(dilation, n, "dilation", op)
    flat = conv_padding(op, padding, kernel, stride, dilation)
    before, total = flat[0::2], [a + b for a, b in zip(flat[0::2], flat[1::2])]
    sizes = x_shape[2:]
    out = tuple(out_size(*a) for a in zip(sizes, total, kernel, stride, dilation))
    _check_fits(op, "weight with kernel_size", w_shape, sizes, total,
                kernel, dilation, out, axes)
    _check_indexable(op, padding, "x", x_shape,
                     tuple(a + b for a, b in zip(sizes, total)),
                     (x_shape[0], w_shape[0]) + out)
    check_index_range(op, stride=stride, dilation=dilation, padding=flat)
    return kernel, stride, before, dilation, out


def conv1d_geometry(op, x_shape, w_shape, stride, padding, dilation, groups):
    """ConvGeometry of conv1d for (N, C, L) and (F, C/groups, k) shapes."""
    _check_channels(op, x_shape, w_shape, groups)
    N, C, L = x_shape
    F, Cg, k = w_shape
    s = _positive_single(stride, "stride", op)
    d = _positive_single(dilation, "dilation", op)
    pl, pr = _conv_padding_1d(op, padding, k, s, d)
    Lo = out_size(L, pl + pr, k, s, d)
    _check_fits_1d(op, f"weight of shape {w_shape} and x of shape "
                   f"{x_shape}", L, pl + pr, k, d, Lo)
    _check_indexable(op, padding, "x", x_shape, (L + pl + pr,), (N, F, Lo))
    check_index_range(op, stride=s, dilation=d, padding=(pl, pr))
    return ConvGeometry(*_geometry_1d(N, C, L, k, s, pl, d, Lo), F, groups)


def conv2d_geometry(op, x_shape, w_shape, stride, padding, dilation, groups):
    """ConvGeometry of conv2d for (N, C, H, W) and (F, C/groups, kh, kw)
    shapes (checked as check_conv2d checks the arrays')."""
    x_shape = check_shape(x_shape, "x_shape", op, "(N, C, H, W)")
    w_shape = check_shape(w_shape, "weight_shape", op, "(F, C/groups, kh, kw)")
    k, s, p, d, out = conv_axes(op, x_shape, w_shape, stride, padding, dilation,
                                 groups, ("H", "W"))
    return ConvGeometry(*x_shape, *k, *s, *p, *d, *out, w_shape[0], groups)


def _check_conv(op, x, weight, stride, padding, dilation, groups, axes):
    """Checks shared by the convolutions over len(axes) spatial axes.

    Returns (x, weight, pads, out): ``pads`` the padding before each axis
    and ``out`` the output size of each axis, after every check passed.
    """
    taps = ", ".join("k" + a.lower() for a in axes)
    x = check_array(x, "x", op, shape_doc=f"(N, C, {', '.join(axes)})")
    weight = check_array(weight, "weight", op,
                         shape_doc=f"(F, C/groups, {taps})")
    _same_dtype(x, "x", weight, "weight", op)
    return x, weight, conv_axes(op, x.shape, weight.shape, stride, padding,
                                 dilation, groups, axes)


def check_conv1d(op, x, weight, stride, padding, dilation, groups):
    """Check conv1d arguments; return (x, weight, ConvGeometry) (3-D arrays)."""
    x = check_array(x, "x", op, shape_doc="(N, C, L)")
    weight = check_array(weight, "weight", op, shape_doc="(F, C/groups, k)")
    _same_dtype(x, "x", weight, "weight", op)
    geom = conv1d_geometry(op, x.shape, weight.shape, stride, padding,
                           dilation, groups)
    return x, weight, geom


def check_conv2d(op, x, weight, stride, padding, dilation, groups):
    """Check conv2d arguments; return (x, weight, ConvGeometry)."""
    x, weight, (k, s, p, d, out) = _check_conv(
        op, x, weight, stride, padding, dilation, groups, ("H", "W"))
    N, C, H, W = x.shape
    geom = ConvGeometry(N, C, H, W, *k, *s, *p, *d, *out, weight.shape[0],
                        groups)
    return x, weight, geom


def check_conv3d(op, x, weight, stride, padding, dilation, groups):
    """Check conv3d arguments; return (x, weight, VolConvGeometry)."""
    x, weight, (k, s, p, d, out) = _check_conv(
        op, x, weight, stride, padding, dilation, groups, _DHW)
    geom = VolConvGeometry(*x.shape, *k, *s, *p, *d, *out, weight.shape[0],
                           groups)
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


def check_algorithm(algorithm, op):
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"{op}: algorithm must be one of {ALGORITHMS}, got {algorithm!r}"
        )
    return algorithm


def check_select_algorithm(x_shape, weight_shape, groups, stride, dilation):
    """select_algorithm's arguments as (x_shape, weight_shape, groups): two
    4-D shapes, a positive int, positive int-or-pair stride and dilation."""
    op = "select_algorithm"
    x_shape = check_shape(x_shape, "x_shape", op, "(N, C, H, W)")
    weight_shape = check_shape(weight_shape, "weight_shape", op,
                               "(F, C/groups, kh, kw)")
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    positive_pair(stride, "stride", op)
    positive_pair(dilation, "dilation", op)
    return x_shape, weight_shape, int(groups)


def winograd_fits(kernel, stride, dilation):
    """Whether Winograd F(m x m, 3x3) computes a convolution of this kernel,
    stride and dilation: 3x3 filters at stride 1 and any dilation (split
    into the dilation's phases), or at dilation 1 any kernel whose stride
    phases are 3x3 (ceil(k / s) == 3 both ways: 5x5 and 6x6 at stride 2,
    AlexNet's 11x11 at stride 4)."""
    if tuple(stride) == (1, 1) and tuple(kernel) == (3, 3):
        return True
    return (tuple(dilation) == (1, 1)
            and all(-(-k // s) == 3 for k, s in zip(kernel, stride)))


def check_winograd(op, algorithm, kernel, stride, dilation):
    """The compiled path's rule (winograd_fits), for the reference twins."""
    if algorithm.startswith("winograd") and not winograd_fits(kernel, stride, dilation):
        raise ValueError(
            f"{op}: algorithm={algorithm!r} computes 3x3 filters at stride 1 (any "
            f"dilation) and, at dilation 1, kernels whose stride phases are 3x3 "
            f"(ceil(k / stride) == 3: 5x5 at stride 2, 11x11 at stride 4) only; got "
            f"kernel {tuple(kernel)}, stride {tuple(stride)}, dilation "
            f"{tuple(dilation)}: use 'gemm' or 'auto'")


# ---- locally connected (unshared) convolution ----------------------------

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
            f"{nhwc_hint(x.shape, Cw)}"
        )
    g = window_geometry(op, x.shape, (kh, kw), stride, padding, dilation)
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


# ---- pooling windows: max, average and Lp-norm pooling -------------------

def pool_out_size(size, kernel, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling output size, including its ceil_mode rule."""
    if not ceil_mode:
        return out_size(size, 2 * pad, kernel, stride, dilation)
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1
    out = -(-numerator // stride) + 1
    # The last window must start inside the input or the left padding.
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


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


def _pool_axes(op, x_shape, kernel_size, stride, padding, dilation,
               ceil_mode, name, axes):
    """Checked pooling geometry over len(axes) spatial axes.

    Returns per-axis tuples (kernel, stride, padding, dilation, out).
    """
    n = len(axes)
    ceil_mode = check_flag(ceil_mode, "ceil_mode", op)
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    s = k if stride is None else positive_tuple(stride, n, "stride", op)
    p = non_negative_tuple(padding, n, "padding", op)
    d = positive_tuple(dilation, n, "dilation", op)
    # PyTorch's rule: padding at most half the (undilated) kernel size.
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(
            f"{op}: padding {p} must be at most half of kernel_size {k}"
        )
    sizes = tuple(x_shape[2:])
    out = tuple(pool_out_size(*a, ceil_mode) for a in zip(sizes, k, s, p, d))
    _check_fits(op, f"{name} with kernel_size", x_shape, sizes,
                tuple(2 * pi for pi in p), k, d, out, axes)
    _check_indexable(op, padding, name, x_shape,
                     tuple(a + 2 * pi for a, pi in zip(sizes, p)),
                     tuple(x_shape[:2]) + out)
    check_index_range(op, kernel_size=k, stride=s, padding=p, dilation=d)
    for axis in range(n):
        o = _empty_window(sizes[axis], k[axis], s[axis], p[axis], d[axis],
                          out[axis])
        if o is not None:
            # PyTorch returns -inf with an index outside the plane here.
            raise ValueError(
                f"{op}: with kernel_size {k}, stride {s}, "
                f"padding {p} and dilation {d}, output position "
                f"{o} along {axes[axis]} has a window that skips every cell of "
                f"{name} of shape {tuple(x_shape)}; use less padding or "
                f"dilation"
            )
    return k, s, p, d, out


def pool1d_geometry(op, x_shape, kernel_size, stride, padding, dilation,
                     ceil_mode, name="x"):
    ceil_mode = check_flag(ceil_mode, "ceil_mode", op)
    k = _positive_single(kernel_size, "kernel_size", op)
    s = k if stride is None else _positive_single(stride, "stride", op)
    p = _non_negative_single(padding, "padding", op)
    d = _positive_single(dilation, "dilation", op)
    if p > k // 2:                   # PyTorch's rule, as in 2-D
        raise ValueError(
            f"{op}: padding {p} must be at most half of kernel_size {k}"
        )
    N, C, L = x_shape
    Lo = pool_out_size(L, k, s, p, d, ceil_mode)
    _check_fits_1d(op, f"{name} of shape {tuple(x_shape)}", L, 2 * p, k, d,
                   Lo)
    _check_indexable(op, padding, name, x_shape, (L + 2 * p,), (N, C, Lo))
    check_index_range(op, kernel_size=k, stride=s, padding=p, dilation=d)
    o = _empty_window(L, k, s, p, d, Lo)
    if o is not None:
        raise ValueError(
            f"{op}: with kernel_size {k}, stride {s}, padding {p} and "
            f"dilation {d}, output position {o} along L has a window that "
            f"skips every cell of {name} of shape {tuple(x_shape)}; use less "
            f"padding or dilation"
        )
    return _geometry_1d(N, C, L, k, s, p, d, Lo)


def pool_geometry(op, x_shape, kernel_size, stride, padding, dilation,
                   ceil_mode, name="x"):
    k, s, p, d, out = _pool_axes(op, x_shape, kernel_size, stride, padding,
                                 dilation, ceil_mode, name, ("H", "W"))
    return Geometry(*x_shape, *k, *s, *p, *d, *out)


def vol_pool_geometry(op, x_shape, kernel_size, stride, padding, dilation,
                       ceil_mode, name="x"):
    k, s, p, d, out = _pool_axes(op, x_shape, kernel_size, stride, padding,
                                 dilation, ceil_mode, name, _DHW)
    return VolGeometry(*x_shape, *k, *s, *p, *d, *out)


# ---- max pooling ---------------------------------------------------------

def _check_max_pool_backward(op, grad_out, indices, input_shape, shape_doc,
                             forward, grad_doc=None):
    input_shape = check_input_shape(op, input_shape, shape_doc)
    grad_out = check_array(grad_out, "grad_out", op, grad_doc or shape_doc)
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError(
            f"{op}: indices must be an int64 numpy.ndarray as returned by "
            f"{forward}(..., return_indices=True), got "
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
    return grad_out, _c_aligned(indices), input_shape


def check_max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode):
    op = "max_pool1d"
    x = check_array(x, "x", op, shape_doc="(N, C, L)")
    geom = pool1d_geometry(op, x.shape, kernel_size, stride, padding,
                            dilation, ceil_mode)
    return x, geom


def check_max_pool1d_backward(grad_out, indices, input_shape):
    return _check_max_pool_backward("max_pool1d_backward", grad_out, indices,
                                    input_shape, "(N, C, L)", "max_pool1d",
                                    grad_doc="(N, C, Lo)")


def indices_out_of_range_1d(input_shape):
    """The error both paths raise for an index outside [0, L)."""
    L = input_shape[2]
    return ValueError(
        f"max_pool1d_backward: indices must lie in [0, L) = [0, {L}) for "
        f"input_shape {tuple(input_shape)}"
    )


def check_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode):
    op = "max_pool2d"
    x = check_array(x, "x", op)
    geom = pool_geometry(op, x.shape, kernel_size, stride, padding, dilation,
                          ceil_mode)
    return x, geom


def check_max_pool2d_backward(grad_out, indices, input_shape):
    return _check_max_pool_backward("max_pool2d_backward", grad_out, indices,
                                    input_shape, "(N, C, H, W)", "max_pool2d")


def indices_out_of_range(input_shape, op="max_pool2d_backward"):
    """The error both paths raise for an index outside the plane (volume)."""
    sizes = tuple(input_shape[2:])
    names = ("H", "W") if len(sizes) == 2 else ("D", "H", "W")
    return ValueError(
        f"{op}: indices must lie in [0, {'*'.join(names)}) = "
        f"[0, {int(np.prod(sizes))}) for input_shape {tuple(input_shape)}"
    )


def check_max_pool3d(x, kernel_size, stride, padding, dilation, ceil_mode):
    op = "max_pool3d"
    x = check_array(x, "x", op, shape_doc=_NCDHW)
    geom = vol_pool_geometry(op, x.shape, kernel_size, stride, padding,
                              dilation, ceil_mode)
    return x, geom


def check_max_pool3d_backward(grad_out, indices, input_shape):
    return _check_max_pool_backward("max_pool3d_backward", grad_out, indices,
                                    input_shape, _NCDHW, "max_pool3d")


# ---- average pooling -----------------------------------------------------

def _check_avg_pool_backward(op, grad_out, input_shape, kernel_size, stride,
                             padding, ceil_mode, geometry, shape_doc,
                             grad_doc=None):
    """The avg_pool{1,2,3}d_backward checks; ``geometry`` is the rank's
    pooling geometry, whose last len(spatial) fields are the output sizes."""
    input_shape = check_input_shape(op, input_shape, shape_doc)
    grad_out = check_array(grad_out, "grad_out", op, grad_doc or shape_doc)
    geom = geometry(op, input_shape, kernel_size, stride, padding, 1,
                    ceil_mode, name="input_shape")
    expected = (geom.N, geom.C) + tuple(geom[2 - len(input_shape):])
    if grad_out.shape != expected:
        raise ValueError(
            f"{op}: grad_out must have the forward output's shape {expected} "
            f"for input_shape {input_shape}, got shape {grad_out.shape}"
        )
    return grad_out, geom


def check_avg_pool1d(x, kernel_size, stride, padding, ceil_mode):
    op = "avg_pool1d"
    x = check_array(x, "x", op, shape_doc="(N, C, L)")
    geom = pool1d_geometry(op, x.shape, kernel_size, stride, padding, 1,
                            ceil_mode)
    return x, geom


def check_avg_pool1d_backward(grad_out, input_shape, kernel_size, stride,
                              padding, ceil_mode):
    return _check_avg_pool_backward("avg_pool1d_backward", grad_out,
                                    input_shape, kernel_size, stride, padding,
                                    ceil_mode, pool1d_geometry, "(N, C, L)",
                                    grad_doc="(N, C, Lo)")


def check_avg_pool2d(x, kernel_size, stride, padding, ceil_mode):
    op = "avg_pool2d"
    x = check_array(x, "x", op)
    geom = pool_geometry(op, x.shape, kernel_size, stride, padding, 1,
                          ceil_mode)
    return x, geom


def check_avg_pool2d_backward(grad_out, input_shape, kernel_size, stride,
                              padding, ceil_mode):
    return _check_avg_pool_backward("avg_pool2d_backward", grad_out,
                                    input_shape, kernel_size, stride, padding,
                                    ceil_mode, pool_geometry, "(N, C, H, W)")


def check_avg_pool3d(x, kernel_size, stride, padding, ceil_mode):
    op = "avg_pool3d"
    x = check_array(x, "x", op, shape_doc=_NCDHW)
    geom = vol_pool_geometry(op, x.shape, kernel_size, stride, padding, 1,
                              ceil_mode)
    return x, geom


def check_avg_pool3d_backward(grad_out, input_shape, kernel_size, stride,
                              padding, ceil_mode):
    return _check_avg_pool_backward("avg_pool3d_backward", grad_out,
                                    input_shape, kernel_size, stride, padding,
                                    ceil_mode, vol_pool_geometry, _NCDHW)


# ---- Lp-norm pooling -----------------------------------------------------

def check_norm_type(op, norm_type):
    """Return norm_type as a float: any real number but 0 and NaN.

    The rule is the definition's, ``(sum of x**p) ** (1/p)`` (PyTorch's):
    every p with a 1/p, so negative p (power means, as in PyTorch) and
    +-inf (max / min of |x|) are accepted; 0 (no 1/p: PyTorch raises
    ZeroDivisionError), NaN and values no float holds are not.
    """
    if (not isinstance(norm_type, numbers.Real)
            or isinstance(norm_type, (bool, np.bool_))):
        raise TypeError(
            f"{op}: norm_type must be a real number (the p of the p-norm), "
            f"got {norm_type!r}"
        )
    try:
        p = float(norm_type)
    except OverflowError:
        p = float("nan")
    if p != p or p == 0.0:
        raise ValueError(
            f"{op}: norm_type must be a non-zero number that a float holds "
            f"(the output is (sum of x**p) ** (1/p); negative values, inf "
            f"and -inf are accepted, as in PyTorch), got {norm_type!r}"
        )
    return p


def check_lp_pool1d(op, x, norm_type, kernel_size, stride, ceil_mode):
    """Return (x, p, Geometry) for lp_pool1d, x of shape (N, C, L)."""
    x = check_array(x, "x", op, shape_doc="(N, C, L)")
    p = check_norm_type(op, norm_type)
    geom = pool1d_geometry(op, x.shape, kernel_size, stride, 0, 1, ceil_mode)
    return x, p, geom


def check_lp_pool1d_backward(grad_out, x, norm_type, kernel_size, stride,
                             ceil_mode):
    op = "lp_pool1d_backward"
    x, p, g = check_lp_pool1d(op, x, norm_type, kernel_size, stride,
                              ceil_mode)
    grad_out = check_grad_out_1d(op, grad_out, x, (g.N, g.C, g.Wo))
    return grad_out, x, p, g


def check_lp_pool2d(op, x, norm_type, kernel_size, stride, ceil_mode):
    """Return (x, p, Geometry) for lp_pool2d (no padding, no dilation)."""
    x = check_array(x, "x", op)
    p = check_norm_type(op, norm_type)
    geom = pool_geometry(op, x.shape, kernel_size, stride, 0, 1, ceil_mode)
    return x, p, geom


def check_lp_pool2d_backward(grad_out, x, norm_type, kernel_size, stride,
                             ceil_mode):
    op = "lp_pool2d_backward"
    x, p, g = check_lp_pool2d(op, x, norm_type, kernel_size, stride,
                              ceil_mode)
    grad_out = check_grad_out(op, grad_out, x, (g.N, g.C, g.Ho, g.Wo))
    return grad_out, x, p, g


# ---- global average pooling ----------------------------------------------

def global_geometry(op, shape, name):
    N, C, H, W = shape
    if H < 1 or W < 1:
        raise ValueError(
            f"{op}: {name} of shape {tuple(shape)} has an empty H x W plane; "
            f"the mean of no values is undefined"
        )
    return Geometry(N, C, H, W, H, W, H, W, 0, 0, 1, 1, 1, 1)


def check_global_avg_pool2d(x):
    op = "global_avg_pool2d"
    x = check_array(x, "x", op)
    return x, global_geometry(op, x.shape, "x")


def check_global_avg_pool2d_backward(grad_out, input_shape):
    op = "global_avg_pool2d_backward"
    input_shape = check_input_shape(op, input_shape)
    grad_out = check_array(grad_out, "grad_out", op, shape_doc="(N, C, 1, 1)")
    geom = global_geometry(op, input_shape, "input_shape")
    expected = (geom.N, geom.C, 1, 1)
    if grad_out.shape != expected:
        raise ValueError(
            f"{op}: grad_out must have the forward output's shape {expected} "
            f"for input_shape {input_shape}, got shape {grad_out.shape}"
        )
    return grad_out, geom


# ---- batch normalisation -------------------------------------------------

def check_channel_vector(op, v, name, x, optional=True):
    """A (C,) array of x's dtype for x of shape (N, C, ...), or None."""
    if v is None:
        if optional:
            return None
        raise TypeError(f"{op}: {name} must be an array of shape ({x.shape[1]},), "
                        f"got None")
    if not isinstance(v, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(v).__name__}")
    _same_dtype(x, "x", v, name, op)
    if v.shape != (x.shape[1],):
        raise ValueError(f"{op}: {name} must have shape ({x.shape[1]},) for x of "
                         f"shape {x.shape}, got shape {v.shape}")
    return v


def check_batch_norm2d(x, running_mean, running_var, weight, bias, training,
                       momentum, eps, relu):
    """Check batch_norm2d's arguments; returns x (C-contiguous) and the
    normalised scalars.  The running statistics, updated in place, must be
    writeable when training."""
    op = "batch_norm2d"
    x = check_array(x, "x", op)
    training = check_flag(training, "training", op)
    relu = check_flag(relu, "relu", op)
    momentum = check_float(momentum, "momentum", op, 0.0)
    eps = check_float(eps, "eps", op, 0.0)
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        check_channel_vector(op, v, name, x, optional=training)
        if v is not None and training and not v.flags.writeable:
            raise ValueError(f"{op}: {name} is updated in place in training and "
                             f"must be writeable")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    check_channel_vector(op, weight, "weight", x)
    check_channel_vector(op, bias, "bias", x)
    N, C, H, W = x.shape
    if training and N * H * W < 2:
        raise ValueError(f"{op}: training needs more than 1 value per channel, got "
                         f"x of shape {x.shape}")
    return x, training, momentum, eps, relu


def check_batch_norm2d_backward(grad_out, x, mean, invstd, weight, training, y):
    op = "batch_norm2d_backward"
    x = check_array(x, "x", op)
    grad_out = check_grad_out(op, grad_out, x, x.shape)
    mean = check_channel_vector(op, mean, "mean", x, optional=False)
    invstd = check_channel_vector(op, invstd, "invstd", x, optional=False)
    check_channel_vector(op, weight, "weight", x)
    training = check_flag(training, "training", op)
    if y is not None:
        y = check_like(op, x, "x", y, "y")
    return grad_out, x, training, y


# ---- fully connected -----------------------------------------------------

def check_linear(op, x, weight, bias):
    """Check F.linear's arguments on 2-D x; returns (x, weight, bias)."""
    x = check_array(x, "x", op, shape_doc="(N, in_features)")
    weight = check_array(weight, "weight", op, shape_doc="(out_features, in_features)")
    _same_dtype(x, "x", weight, "weight", op)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: weight must have shape (out_features, {x.shape[1]}) "
                         f"for x of shape {x.shape}, got shape {weight.shape}")
    if bias is not None:
        bias = check_array(bias, "bias", op, shape_doc="(out_features)")
        _same_dtype(x, "x", bias, "bias", op)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},), got "
                             f"shape {bias.shape}")
    return x, weight, bias
