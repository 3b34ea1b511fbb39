"""The cs231n ConvNet notes' calculations: sizes, parameters, fields, memory.

Plain functions on ints and shapes; none of them runs a kernel or allocates
an array.  Each geometry argument is an int (one axis) or a pair ``(h, w)``;
a function given only ints answers with an int, one given a pair anywhere
answers per axis with pairs.  The output-size functions also take explicit
``(before, after)`` padding: ``padding=(0, 1)`` when every other geometry
argument is an int (one axis), ``padding=((0, 1), (1, 1))`` for two axes;
so :func:`same_padding`'s result can be fed back as ``padding``.

Output size
    :func:`conv_output_size`, :func:`pool_output_size` (torch's arithmetic,
    ``strict=True`` for the notes' "must be an integer" rule) and
    :func:`explain_output_size` (the arithmetic as text).
Padding
    :func:`same_padding`: TensorFlow's "same" padding at any stride.
Parameters
    :func:`conv_params`, :func:`linear_params`, :func:`count_params`.
Receptive field
    :func:`receptive_field`: size, jump and start of a stack of layers.
Memory
    :func:`tensor_bytes`, :func:`param_bytes`, :func:`activation_bytes`
    and :func:`im2col_bytes` (the column matrix fastconv never builds).

The output-size arithmetic is :mod:`fastconv._validation`'s, the code the
kernels themselves use, so the calculators and the kernels cannot disagree.

Examples
--------
>>> from fastconv import shapes
>>> shapes.conv_output_size(227, 11, stride=4)       # AlexNet's CONV1
55
>>> print(shapes.explain_output_size(227, 11, stride=4))
(227 - 11 + 2*0)/4 + 1 = 55
>>> shapes.conv_output_size(10, 3, stride=2)          # torch floors 4.5
4
>>> shapes.receptive_field([(3, 1, 1, 1)] * 3).size   # three 3x3 convs
7
>>> shapes.same_padding(10, 3, stride=2)              # (before, after)
(0, 1)
"""

import math
import numbers
from collections import namedtuple
from fractions import Fraction
from typing import Any

import numpy as np

from . import _receptive_field as _rf
from . import _validation as _v
from ._typing import DTypeLike, Int, LayerSpecs, Model, PaddingN, PerAxis, Shape, SizeN

__all__ = [
    "conv_output_size", "pool_output_size", "explain_output_size",
    "same_padding", "conv_params", "linear_params", "count_params",
    "receptive_field", "ReceptiveField", "tensor_bytes", "param_bytes",
    "activation_bytes", "im2col_bytes",
]

ReceptiveField = namedtuple("ReceptiveField", "size jump start")
ReceptiveField.__doc__ = """Receptive field of a stack's output, in input pixels.

Attributes
----------
size : int or (int, int)
    Extent of the input that one output value depends on (for dilated
    layers the span from the first to the last tap: the effective field).
jump : int or (int, int)
    Distance in input pixels between neighbouring outputs (the product of
    the strides).
start : float or (float, float)
    Centre of the first output's field, in input pixel coordinates (pixel
    ``i`` has its centre at ``i``; negative values lie in the padding).
"""


# ---------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------

def _is_pair(value):
    return isinstance(value, (tuple, list)) and len(value) == 2


_TUPLE_DOCS = {2: "a pair of ints (h, w)", 3: "a triple of ints (d, h, w)"}


def _axes(value, name, op, n, minimum):
    """``value`` (an int or a tuple of n ints) as an n-tuple of ints >=
    minimum (1 or 0)."""
    if _v.is_int(value):
        out = (int(value),) * n
    elif (isinstance(value, (tuple, list)) and len(value) == n
          and all(_v.is_int(v) for v in value)):
        out = tuple(int(v) for v in value)
    else:
        want = "an int" if n == 1 else (
            "an int or " + _TUPLE_DOCS.get(n, f"a tuple of {n} ints"))
        raise TypeError(f"{op}: {name} must be {want}, got {value!r}")
    # The kernels' own range checks (and messages, e.g. the dilation=0 hint).
    # (``value`` is known to be an int or n ints here.)
    check = _v.positive_tuple if minimum == 1 else _v.non_negative_tuple
    check(value, n, name, op)
    return out


def _n_axes(*values):
    return 2 if any(_is_pair(v) for v in values) else 1


def _result(values, n):
    return values[0] if n == 1 else tuple(values)


def _itemsize(dtype, op):
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        raise TypeError(f"{op}: dtype must be a NumPy dtype, got {dtype!r}") from None


def _output_axes(size, kernel_size, stride, padding, dilation):
    """Number of axes of an output-size question: 2 if size, kernel_size,
    stride or dilation is a pair, or padding is a pair holding a
    (before, after) pair; else 1 (and a pair padding is (before, after))."""
    n = _n_axes(size, kernel_size, stride, dilation)
    if n == 1 and _is_pair(padding) and any(_is_pair(p) for p in padding):
        n = 2
    return n


def _padding_axes(padding, size, kernel, stride, dilation, op, n):
    """Per-axis (before, after) padding.

    ``padding`` is an int (every side), 'same', 'valid', or a tuple: for one
    axis (n == 1) ``(before, after)`` (or ``(p,)``); for n axes one entry per
    axis, each an int (both sides) or a ``(before, after)`` pair.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            return [_same_axis(*a) for a in zip(size, kernel, stride, dilation)]
        raise ValueError(
            f"{op}: padding must be an int, a pair, 'same' or 'valid', got "
            f"{padding!r}"
        )
    if _v.is_int(padding):
        pads = [(int(padding),) * 2] * n
    elif n == 1 and isinstance(padding, (tuple, list)) and len(padding) in (
            1, 2) and all(_v.is_int(p) for p in padding):
        pads = [(int(padding[0]), int(padding[-1]))]
    elif n > 1 and isinstance(padding, (tuple, list)) and len(padding) == n \
            and all(_v.is_int(p) or (_is_pair(p) and all(
                _v.is_int(q) for q in p)) for p in padding):
        pads = [(int(p),) * 2 if _v.is_int(p) else (int(p[0]), int(p[1]))
                for p in padding]
    else:
        want = ("an int, (before, after)" if n == 1 else
                f"an int, a tuple of {n} ints (one per axis, both sides) or "
                f"of {n} (before, after) pairs")
        raise TypeError(
            f"{op}: padding must be {want}, 'same' or 'valid', got "
            f"{padding!r}")
    if min(min(p) for p in pads) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return pads


def _same_axis(size, kernel, stride, dilation):
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return (total // 2, total - total // 2)


# ---------------------------------------------------------------------------
# output size
# ---------------------------------------------------------------------------

_AXIS_NAMES = ("H", "W")
_AXIS_NAMES_N = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _fmt(value):
    """A Fraction as '= 4.5' (exact) or '~ 4.33333' (rounded); ASCII only."""
    text = f"{float(value):g}"
    return ("= " if Fraction(text) == value else "~ ") + text


def _formula(size, keff, stride, pb, pa):
    pad = f"2*{pb}" if pb == pa else f"{pb}+{pa}"
    return f"({size} - {keff} + {pad})/{stride} + 1"


def _suggest(size, kernel, stride, pb, pa, dilation):
    """Nearby paddings, strides and input sizes that fit exactly, as text.

    ``pb``/``pa``: the padding before/after that does not fit.  Symmetric
    paddings come first; only when none fits (stride even, W - F_eff odd)
    an asymmetric (before, after) one is offered, :func:`same_padding`'s
    when it fits.
    """
    keff = dilation * (kernel - 1) + 1
    total = pb + pa

    def out(w, t, s):                   # t: total padding
        n = w - keff + t
        return n // s + 1 if n >= 0 and n % s == 0 else None

    pads = [q for q in range(0, max(pb, pa, keff) + stride + 1)
            if (q, q) != (pb, pa) and out(size, 2 * q, stride)]
    pads = sorted(pads, key=lambda q: (abs(2 * q - total), q))[:2]
    strides = [t for t in range(1, max(stride, keff) + 1)
               if t != stride and out(size, total, t)]
    strides = sorted(strides, key=lambda t: (abs(t - stride), t))[:2]
    sizes = [w for w in range(max(1, size - stride), size + stride + 1)
             if w != size and out(w, total, stride)]
    sizes = sorted(sizes, key=lambda w: (abs(w - size), w))[:2]
    asym = None
    if not pads:
        same = _same_axis(size, kernel, stride, dilation)
        if same[0] != same[1] and out(size, sum(same), stride):
            asym = (same, ", as same_padding gives")
        else:
            odd = [t for t in range(1, 2 * (max(pb, pa, keff) + stride) + 2, 2)
                   if out(size, t, stride)]
            if odd:
                t = min(odd, key=lambda t: (abs(t - total), t))
                asym = ((t // 2, t - t // 2), "")
    parts = []
    if pads:
        parts.append(" or ".join(
            f"padding={q} (output {out(size, 2 * q, stride)})" for q in pads))
    if strides:
        parts.append(" or ".join(
            f"stride={t} (output {out(size, total, t)})" for t in strides))
    if asym:
        (b, a), why = asym
        parts.append(f"or pad ({b}, {a}) (before, after){why}: output "
                     f"{out(size, b + a, stride)}")
    if sizes:
        parts.append("or an input of size " + " or ".join(
            f"{w} (output {out(w, total, stride)})" for w in sizes))
    text = "try " + "; ".join(parts)
    if pads:
        return "To fit, " + text
    return (f"No symmetric padding fits stride {stride} (W - F = "
            f"{size - keff} is odd and 2*P is even); to fit, {text}")


def _axis_size(size, kernel, stride, pb, pa, dilation, ceil_mode, strict, op,
               axis):
    """Output length along one axis, or the ValueError explaining why not."""
    keff = dilation * (kernel - 1) + 1
    where = "" if axis is None else f"along {axis}: "
    numerator = size - keff + pb + pa
    if numerator < 0:
        raise ValueError(
            f"{op}: {where}kernel_size {kernel} (dilated extent {keff}) is "
            f"larger than the padded input (size {size} + padding {pb + pa} = "
            f"{size + pb + pa}): {_formula(size, keff, stride, pb, pa)} "
            f"{_fmt(Fraction(numerator, stride) + 1)} < 1"
        )
    if strict and numerator % stride:
        lost = numerator % stride
        fixes = _suggest(size, kernel, stride, pb, pa, dilation)
        raise ValueError(
            f"{op}: {where}{_formula(size, keff, stride, pb, pa)} "
            f"{_fmt(Fraction(numerator, stride) + 1)} is not an integer: "
            f"the windows do not tile the padded input (torch floors it to "
            f"{numerator // stride + 1} and never reads the last {lost} "
            f"row(s)/column(s)). {fixes}"
        )
    if pb == pa:
        return _v.pool_out_size(size, kernel, stride, pb, dilation, ceil_mode)
    return _v.out_size(size, pb + pa, kernel, stride, dilation)


def conv_output_size(size: SizeN, kernel_size: SizeN, stride: SizeN = 1,
                     padding: PaddingN = 0, dilation: SizeN = 1, *,
                     ceil_mode: bool = False, strict: bool = False) -> PerAxis:
    """Output size of a convolution (or pooling) window sliding over ``size``.

    ``(W - F_eff + 2*P) / S + 1`` with ``F_eff = d*(F - 1) + 1``, rounded down
    as :func:`torch.nn.functional.conv2d` does (or up, with ``ceil_mode``, as
    torch's pooling does).

    Parameters
    ----------
    size : int or (int, int)
        Input length W (or ``(H, W)``).
    kernel_size : int or (int, int)
        F (``(kh, kw)``).
    stride, dilation : int or (int, int)
        S and d, positive.
    padding : int, tuple, "same" or "valid"
        An int P pads both sides of every axis.  A tuple is read by the
        number of axes, which size, kernel_size, stride and dilation set
        (two if any of them is a pair; a padding holding a pair also
        means two axes):

        * one axis: ``(before, after)``, e.g. ``(0, 1)``, the padding
          :func:`same_padding` returns; the output is
          ``(W - F_eff + before + after) // S + 1``;
        * two axes: ``(ph, pw)``, each on both sides of its axis, or
          ``((top, bottom), (left, right))``; an int and a pair may mix,
          ``(1, (0, 1))``.

        ``"same"`` is TensorFlow's padding (:func:`same_padding`, any
        stride, the odd pixel after); ``"valid"`` is 0.
    ceil_mode : bool, keyword-only
        Round up instead of down, with torch's pooling rule that the last
        window must start inside the input or the left padding.  Not with
        string padding or different before/after paddings.
    strict : bool, keyword-only
        The notes' rule: raise unless ``(W - F_eff + 2P)`` is a multiple of
        S, i.e. the windows tile the padded input exactly.

    Returns
    -------
    int or (int, int)
        A pair when any argument is a pair.

    Raises
    ------
    ValueError
        The window is larger than the padded input (output < 1); or, with
        ``strict=True``, the size is not an integer: the message shows the
        arithmetic and suggests paddings, strides or input sizes that fit
        (and an asymmetric ``(before, after)`` padding when no symmetric
        one can); a negative padding; ceil_mode with string or asymmetric
        padding.
    TypeError
        An argument is not an int or a pair of ints, or padding is not one
        of the forms above.

    Examples
    --------
    >>> conv_output_size(227, 11, stride=4)
    55
    >>> conv_output_size((32, 32), 3, padding=1)
    (32, 32)
    >>> conv_output_size(10, 3, stride=2), conv_output_size(10, 3, 2, ceil_mode=True)
    (4, 5)
    >>> conv_output_size(10, 3, dilation=2)              # F_eff = 5
    6
    >>> conv_output_size(10, 3, stride=2, strict=True)
    Traceback (most recent call last):
        ...
    ValueError: conv_output_size: (10 - 3 + 2*0)/2 + 1 = 4.5 is not an integer: ...
    >>> conv_output_size(10, 3, stride=2, padding=(0, 1))   # (before, after)
    5
    >>> conv_output_size(10, 3, 2, padding=same_padding(10, 3, 2), strict=True)
    5
    >>> conv_output_size((7, 8), 3, 2, padding=((1, 1), (0, 1)))
    (4, 4)
    """
    return _output_size("conv_output_size", size, kernel_size, stride,
                        padding, dilation, ceil_mode, strict)


def pool_output_size(size: SizeN, kernel_size: SizeN, stride: SizeN | None = None,
                     padding: PaddingN = 0, dilation: SizeN = 1, *,
                     ceil_mode: bool = False, strict: bool = False) -> PerAxis:
    """Output size of a pooling window; :func:`conv_output_size` with
    ``stride=None`` meaning ``stride = kernel_size``, as torch's pooling.

    Parameters
    ----------
    size, kernel_size, padding, dilation, ceil_mode, strict
        As :func:`conv_output_size`.
    stride : int, (int, int) or None

    Returns
    -------
    int or (int, int)

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_output_size`.

    Examples
    --------
    >>> pool_output_size(224, 2)
    112
    >>> pool_output_size(55, 3, stride=2)               # AlexNet's POOL1
    27
    """
    if stride is None:
        stride = kernel_size
    return _output_size("pool_output_size", size, kernel_size, stride,
                        padding, dilation, ceil_mode, strict)


def _output_geometry(op, size, kernel_size, stride, padding, dilation,
                     ceil_mode):
    """Checked (n, W, K, S, D, pads) of an output-size question."""
    n = _output_axes(size, kernel_size, stride, padding, dilation)
    W = _axes(size, "size", op, n, 0)
    K = _axes(kernel_size, "kernel_size", op, n, 1)
    S = _axes(stride, "stride", op, n, 1)
    D = _axes(dilation, "dilation", op, n, 1)
    if ceil_mode and isinstance(padding, str):
        raise ValueError(
            f"{op}: ceil_mode=True needs numeric padding, got {padding!r}")
    pads = _padding_axes(padding, W, K, S, D, op, n)
    if ceil_mode and any(pb != pa for pb, pa in pads):
        # torch's ceil_mode rule is defined for symmetric (pooling) padding.
        raise ValueError(
            f"{op}: ceil_mode=True needs the same padding before and after, "
            f"got padding {padding!r}")
    return n, W, K, S, D, pads


def _output_size(op, size, kernel_size, stride, padding, dilation, ceil_mode,
                 strict):
    n, W, K, S, D, pads = _output_geometry(op, size, kernel_size, stride,
                                           padding, dilation, ceil_mode)
    return _result([
        _axis_size(W[a], K[a], S[a], *pads[a], D[a], bool(ceil_mode),
                   bool(strict), op, None if n == 1 else _AXIS_NAMES[a])
        for a in range(n)], n)


def explain_output_size(size: SizeN, kernel_size: SizeN, stride: SizeN = 1,
                        padding: PaddingN = 0, dilation: SizeN = 1, *,
                        ceil_mode: bool = False) -> str:
    """The notes' output-size arithmetic for these numbers, as text.

    Parameters
    ----------
    size, kernel_size, stride, padding, dilation, ceil_mode
        As :func:`conv_output_size`.

    Returns
    -------
    str
        One line per axis (prefixed ``H:``/``W:`` for pairs): the formula
        with the numbers filled in and its value; when it is not an
        integer, how torch rounds it, what that drops, and the paddings,
        strides or input sizes that would fit (those ``strict=True``
        suggests).  ASCII only (``~`` marks a rounded value).

    Raises
    ------
    ValueError, TypeError
        As :func:`conv_output_size` (without ``strict``).

    Examples
    --------
    >>> print(explain_output_size(227, 11, stride=4))
    (227 - 11 + 2*0)/4 + 1 = 55
    >>> print(explain_output_size(10, 3, stride=2))
    (10 - 3 + 2*0)/2 + 1 = 4.5 is not an integer: torch floors it to 4 (the last 1 row(s)/column(s) of the padded input are never read). No symmetric padding fits stride 2 (W - F = 7 is odd and 2*P is even); to fit, try stride=1 (output 8); or pad (0, 1) (before, after), as same_padding gives: output 5; or an input of size 9 (output 4) or 11 (output 5)
    >>> print(explain_output_size(10, 3, stride=2, padding=(0, 1)))
    (10 - 3 + 0+1)/2 + 1 = 5
    >>> print(explain_output_size(10, 3, dilation=2, padding=2))
    F_eff = d*(F - 1) + 1 = 2*(3 - 1) + 1 = 5; (10 - 5 + 2*2)/1 + 1 = 10
    >>> print(explain_output_size((7, 8), 3, stride=2, padding="same"))
    H: 'same' padding 1+1; (7 - 3 + 2*1)/2 + 1 = 4
    W: 'same' padding 0+1; (8 - 3 + 0+1)/2 + 1 = 4
    """
    op = "explain_output_size"
    out = _output_size(op, size, kernel_size, stride, padding, dilation,
                       ceil_mode, False)
    n, W, K, S, D, pads = _output_geometry(op, size, kernel_size, stride,
                                           padding, dilation, ceil_mode)
    outs = (out,) if n == 1 else out
    lines = []
    for a in range(n):
        (pb, pa), k, d, s = pads[a], K[a], D[a], S[a]
        keff = d * (k - 1) + 1
        parts = []
        if d != 1:
            parts.append(f"F_eff = d*(F - 1) + 1 = {d}*({k} - 1) + 1 = {keff}")
        if padding == "same":
            parts.append(f"'same' padding {pb}+{pa}")
        numerator = W[a] - keff + pb + pa
        text = f"{_formula(W[a], keff, s, pb, pa)} "
        value = Fraction(numerator, s) + 1
        if numerator % s == 0:
            text += f"= {int(value)}"
        else:
            text += f"{_fmt(value)} is not an integer: "
            if ceil_mode:
                text += f"ceil_mode rounds it up to {outs[a]}"
            else:
                text += (f"torch floors it to {outs[a]} (the last "
                         f"{numerator % s} row(s)/column(s) of the padded "
                         f"input are never read)")
            # What strict=True would suggest.
            text += ". " + _suggest(W[a], k, s, pb, pa, d)
        parts.append(text)
        prefix = "" if n == 1 else f"{_AXIS_NAMES[a]}: "
        lines.append(prefix + "; ".join(parts))
    return "\n".join(lines)


def same_padding(size: SizeN, kernel_size: SizeN, stride: SizeN = 1,
                 dilation: SizeN = 1) -> tuple[Any, Any]:
    """TensorFlow's "same" padding: ``ceil(size / stride)`` outputs, any stride.

    ``out = ceil(W / S)``, ``total = max((out - 1)*S + d*(F - 1) + 1 - W, 0)``,
    ``before = total // 2``, ``after = total - before`` (the odd pixel goes
    after, at the bottom/right, as in TensorFlow and PyTorch).

    Parameters
    ----------
    size : int or (int, int)
        W (or ``(H, W)``), non-negative.
    kernel_size, stride, dilation : int or (int, int)
        Positive.

    Returns
    -------
    (before, after) or ((top, bottom), (left, right))
        Ints; pairs of pairs when any argument is a pair.  Pad with
        ``np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))`` and
        convolve with padding 0 to get ``ceil(H/S) x ceil(W/S)`` outputs;
        :func:`conv_output_size` takes it as ``padding``.

    Raises
    ------
    TypeError, ValueError
        An argument is not an int or pair, or not positive.

    Examples
    --------
    >>> same_padding(224, 3)
    (1, 1)
    >>> same_padding(10, 3, stride=2)            # out 5: total 1, after
    (0, 1)
    >>> same_padding((7, 8), (3, 4), stride=2)
    ((1, 1), (1, 1))
    """
    op = "same_padding"
    n = _n_axes(size, kernel_size, stride, dilation)
    W = _axes(size, "size", op, n, 0)
    K = _axes(kernel_size, "kernel_size", op, n, 1)
    S = _axes(stride, "stride", op, n, 1)
    D = _axes(dilation, "dilation", op, n, 1)
    return _result([_same_axis(*a) for a in zip(W, K, S, D)], n)


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------

def conv_params(in_channels: Int, out_channels: Int, kernel_size: SizeN,
                groups: Int = 1, bias: bool = True) -> int:
    """Parameters of a convolution: ``F * C/groups * kh * kw (+ F)``.

    Parameters
    ----------
    in_channels, out_channels : int
        C and F; groups must divide both.
    kernel_size : int or tuple of int
        An int k is a 2-D ``k x k`` kernel; a tuple gives one size per
        spatial axis: ``(k,)`` for Conv1d, ``(kh, kw)``, ``(kd, kh, kw)``
        for Conv3d.
    groups : int
    bias : bool

    Returns
    -------
    int

    Raises
    ------
    ValueError, TypeError
        Non-positive sizes, or groups not dividing C and F.

    Examples
    --------
    >>> conv_params(3, 64, 3)                 # VGG-16's first layer
    1792
    >>> conv_params(3, 96, 11)                # AlexNet's CONV1
    34944
    >>> conv_params(2, 4, (3, 3, 3))          # a Conv3d
    220
    """
    op = "conv_params"
    C = _axes(in_channels, "in_channels", op, 1, 1)[0]
    F = _axes(out_channels, "out_channels", op, 1, 1)[0]
    g = _axes(groups, "groups", op, 1, 1)[0]
    n = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 2
    K = _axes(kernel_size, "kernel_size", op, max(n, 1), 1)
    if C % g or F % g:
        raise ValueError(
            f"{op}: groups={g} must divide in_channels={C} and "
            f"out_channels={F}")
    return F * (C // g) * math.prod(K) + (F if bias else 0)


def linear_params(in_features: Int, out_features: Int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: ``out * in (+ out)``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool

    Returns
    -------
    int

    Raises
    ------
    ValueError, TypeError
        Non-positive sizes.

    Examples
    --------
    >>> linear_params(7 * 7 * 512, 4096)      # VGG-16's FC6
    102764544
    """
    op = "linear_params"
    i = _axes(in_features, "in_features", op, 1, 1)[0]
    o = _axes(out_features, "out_features", op, 1, 1)[0]
    return o * i + (o if bias else 0)


def count_params(model: Model) -> int:
    """Number of parameter values of a fastconv layer or model.

    Parameters
    ----------
    model : fastconv.layers.Layer
        Anything with a ``params`` dict of arrays.

    Returns
    -------
    int
        The sum of the sizes of ``model.params`` (buffers such as
        BatchNorm's running statistics are not parameters).

    Raises
    ------
    TypeError
        model has no ``params``.

    Examples
    --------
    >>> from fastconv import layers as L
    >>> count_params(L.Conv2d(3, 64, 3, rng=0))
    1792
    """
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise TypeError(
            f"count_params: model must be a fastconv.layers.Layer (with a "
            f"params dict), got {type(model).__name__}")
    return int(sum(p.size for p in params.values()))


# ---------------------------------------------------------------------------
# receptive field
# ---------------------------------------------------------------------------
# The field arithmetic (states, composition) is fastconv._receptive_field's,
# shared with the layers' _rf_geometry and model.summary.

def _layer_geometry(layer, op):
    try:
        return layer._rf_geometry()
    except NotImplementedError as exc:
        raise ValueError(f"{op}: {exc}") from None


def _spec_geometry(spec, op, n):
    if not isinstance(spec, (tuple, list)) or not 1 <= len(spec) <= 4:
        raise TypeError(
            f"{op}: each layer must be a fastconv Layer or a tuple (kernel, "
            f"stride, padding, dilation) (trailing entries optional), got "
            f"{spec!r}")
    k, s, p, d = tuple(spec) + (1, 0, 1)[len(spec) - 1:]
    K = _axes(k, "kernel", op, n, 1)
    S = _axes(s, "stride", op, n, 1)
    P = _axes(p, "padding", op, n, 0)
    D = _axes(d, "dilation", op, n, 1)
    return tuple(zip(K, S, P, D))


def receptive_field(layers: LayerSpecs) -> ReceptiveField:
    """Receptive field of the output of a stack of conv/pool layers.

    Parameters
    ----------
    layers : fastconv.layers.Layer or sequence of Layer / tuple
        A model (a :class:`~fastconv.layers.Sequential` of convolutions,
        pooling and element-wise layers, of any number of spatial axes:
        Conv1d, Conv2d, Conv3d, ...), or a sequence whose items are layers
        or tuples ``(kernel, stride, padding, dilation)`` of ints or
        tuples of one int per axis (pairs ``(h, w)``, triples ``(d, h,
        w)``); trailing entries may be left out (stride 1, padding 0,
        dilation 1).  ``padding`` is the padding before (top/left).

    Returns
    -------
    ReceptiveField
        ``(size, jump, start)``: ints (start a float) when every spec is
        1-D ints; otherwise tuples with one entry per spatial axis, as many
        as the layers' geometry has (``(L,)`` for Conv1d layers, ``(h,
        w)``, ``(d, h, w)``) or as the specs' tuples (pairs for layers
        that declare no axes, e.g. only ReLU).  ``size`` grows by
        ``d*(k - 1) * jump`` per layer, ``jump`` is the product of the
        strides, ``start`` the centre of the first output's field.

    Raises
    ------
    ValueError
        The stack holds a layer whose every output sees the whole input
        (``Linear``, global pooling: "global"), or one without a declared
        geometry, or layers with different numbers of spatial axes.
    TypeError
        A spec is not a tuple of ints / tuples of the stack's axis count.

    Examples
    --------
    >>> receptive_field([(3, 1, 1)] * 3)               # the notes: 7x7
    ReceptiveField(size=7, jump=1, start=0.0)
    >>> receptive_field([(3, 1, 0, 2), (3, 1, 0, 4)])  # dilated: 5 + 8
    ReceptiveField(size=13, jump=1, start=6.0)
    >>> receptive_field([(11, 4), (3, 2)])             # AlexNet CONV1, POOL1
    ReceptiveField(size=19, jump=8, start=9.0)
    >>> from fastconv import layers as L
    >>> receptive_field(L.Sequential(L.Conv2d(1, 1, 3, rng=0), L.MaxPool2d(2)))
    ReceptiveField(size=(4, 4), jump=(2, 2), start=(1.5, 1.5))
    >>> receptive_field(L.Sequential(L.Conv1d(1, 1, 5, rng=0), L.MaxPool1d(2)))
    ReceptiveField(size=(6,), jump=(2,), start=(2.5,))
    >>> receptive_field([((3, 3, 3), 1, 1)] * 2).size  # two 3x3x3 convs
    (5, 5, 5)
    """
    op = "receptive_field"
    if hasattr(layers, "_rf_geometry"):
        items = [layers]
    elif isinstance(layers, (tuple, list)):
        items = list(layers)
    else:
        raise TypeError(
            f"{op}: layers must be a fastconv Layer or a list of layers and "
            f"(kernel, stride, padding, dilation) tuples, got "
            f"{type(layers).__name__}")
    n, per_axis = _stack_axes(items)
    state = None
    for i, item in enumerate(items):
        if hasattr(item, "_rf_geometry"):
            geometry = _layer_geometry(item, op)
            name = type(item).__name__
        else:
            geometry = _spec_geometry(item, op, n)
            name = f"spec {item!r}"
        if geometry == "global":
            raise ValueError(
                f"{op}: item {i} ({name}) connects every output to the whole "
                f"input, so the field is the whole input; pass only the "
                f"convolutional part (for vgg16(): model[0])")
        state = _rf.compose(state, geometry)
    if state is None:
        state = ((1, 1, 0),) * n
    sizes = [s for s, _, _ in state]
    jumps = [j for _, j, _ in state]
    starts = [left + (s - 1) / 2 for s, _, left in state]
    if per_axis:
        return ReceptiveField(tuple(sizes), tuple(jumps), tuple(starts))
    return ReceptiveField(sizes[0], jumps[0], starts[0])


def _stack_axes(items):
    """(n, per_axis) for receptive_field's items: n from the first layer
    with a window (its axis count) or the longest tuple in a spec; 2 for
    layers without a window, 1 for int-only specs; per_axis: answer with
    tuples (any layer or any tuple in a spec)."""
    layer_n = spec_n = None
    has_layer = False
    for item in items:
        if hasattr(item, "_rf_geometry"):
            has_layer = True
            try:
                geometry = item._rf_geometry()
            except NotImplementedError:
                continue        # reported by the main loop
            if layer_n is None and isinstance(geometry, tuple):
                layer_n = len(geometry)
        elif isinstance(item, (tuple, list)):
            lengths = [len(v) for v in item if isinstance(v, (tuple, list))]
            if lengths and spec_n is None:
                spec_n = max(lengths)
    n = layer_n or spec_n or (2 if has_layer else 1)
    return n, has_layer or spec_n is not None


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------

def tensor_bytes(shape: Shape, dtype: DTypeLike = np.float32) -> int:
    """Bytes of one array of ``shape`` and ``dtype`` (e.g. an activation).

    Parameters
    ----------
    shape : tuple of int
    dtype : NumPy dtype
        Any: float16 or int8 are fine for estimates.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        shape is not a tuple of non-negative ints, or dtype is not a dtype.

    Examples
    --------
    >>> tensor_bytes((64, 224, 224))          # VGG-16's CONV3-64 output
    12845056
    """
    shape = _v.check_shape(shape, "shape", "tensor_bytes")
    return math.prod(shape) * _itemsize(dtype, "tensor_bytes")


def param_bytes(model: Model | Int, dtype: DTypeLike | None = None) -> int:
    """Bytes of a model's parameters (or of a parameter count).

    Parameters
    ----------
    model : fastconv.layers.Layer or int
        A model, or a number of parameters.
    dtype : NumPy dtype or None
        None: the arrays' own dtypes (float32 for a count).

    Returns
    -------
    int

    Raises
    ------
    TypeError
        model is neither a layer nor an int.

    Examples
    --------
    >>> param_bytes(138_357_544)              # VGG-16 in float32, ~553 MB
    553430176
    """
    if isinstance(model, numbers.Integral) and not isinstance(model, bool):
        return int(model) * _itemsize(np.float32 if dtype is None else dtype,
                                      "param_bytes")
    count = count_params(model)
    if dtype is None:
        return int(sum(p.nbytes for p in model.params.values()))
    return count * _itemsize(dtype, "param_bytes")


def activation_bytes(model: Model, input_shape: Shape,
                     dtype: DTypeLike | None = None) -> int:
    """Bytes of the activations a forward pass keeps, the notes' way.

    The ``activation_bytes`` total of :func:`fastconv.summary.summary`
    (input plus every layer's output except the "not counted" ReLU, Dropout
    and Flatten rows, as the notes count), computed from shapes alone.

    Parameters
    ----------
    model : fastconv.layers.Layer
    input_shape : tuple of int
        One sample (``(C, H, W)``; ``(C, L)`` or ``(C, D, H, W)`` for 1-D
        or 3-D models, ``(F,)`` for an MLP) or the full shape with the
        batch first, as :func:`fastconv.summary.summary` reads it.
    dtype : NumPy dtype or None
        None: the model's parameter dtype.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        The shapes do not fit the model (as its forward would raise), or
        input_shape has the wrong number of dimensions for it.

    Examples
    --------
    >>> from fastconv import layers as L
    >>> activation_bytes(L.Conv2d(3, 8, 3, padding=1, rng=0), (3, 4, 4))
    704
    >>> activation_bytes(L.Conv1d(2, 4, 3, rng=0), (2, 10))  # 4*(20 + 32)
    208
    """
    from .summary import summary

    return summary(model, input_shape, dtype=dtype).activation_bytes


def im2col_bytes(input_shape: Shape, kernel_size: SizeN, stride: SizeN = 1,
                 padding: PaddingN = 0, dilation: SizeN = 1,
                 dtype: DTypeLike = np.float32, *,
                 spatial_axes: Int | None = None) -> int:
    """Bytes of the full im2col column matrix of a convolution.

    ``N * C*prod(kernel) * prod(output sizes) * itemsize``: what a naive
    im2col + GEMM convolution allocates (``F.unfold``'s output; cs231n's
    ``[363 x 3025]`` for AlexNet's CONV1); for 1-D the ``(C*k, Lo)``
    matrix, for 3-D vol2col's ``(C*kd*kh*kw, Do*Ho*Wo)``, per sample.
    fastconv never forms it: its GEMM path packs blocks of it into a small
    per-thread workspace, and conv3d unfolds tiles of at most 8 MiB.

    Parameters
    ----------
    input_shape : tuple of int
        ``(N, C, *spatial)`` or ``(C, *spatial)`` (meaning N = 1), with
        ``spatial_axes`` spatial sizes: ``(N, C, H, W)`` / ``(C, H, W)`` in
        2-D, ``(N, C, L)`` / ``(C, L)`` in 1-D, ``(N, C, D, H, W)`` /
        ``(C, D, H, W)`` in 3-D.
    kernel_size, stride, padding, dilation
        As :func:`conv_output_size` (padding may be "same"/"valid"), each
        an int or a tuple of one int per spatial axis.
    dtype : NumPy dtype
    spatial_axes : int or None, keyword-only
        Number of spatial axes; None: the length of the tuple-valued
        geometry arguments, else 2 (so an int kernel means 2-D; pass
        ``spatial_axes=1`` for a 1-D convolution with int arguments).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        As :func:`conv_output_size`; input_shape has neither
        ``spatial_axes + 1`` nor ``spatial_axes + 2`` entries.
    TypeError
        As :func:`conv_output_size`; input_shape not a tuple of ints,
        geometry tuples of different lengths, spatial_axes not a positive
        int.

    Examples
    --------
    >>> im2col_bytes((3, 227, 227), 11, stride=4)      # 363 x 3025 floats
    4392300
    >>> im2col_bytes((1, 64, 224, 224), 3, padding=1)  # VGG-16 conv1_2
    115605504
    >>> im2col_bytes((2, 100), 5, spatial_axes=1)      # (2*5) x 96 floats
    3840
    >>> im2col_bytes((2, 8, 8, 8), (3, 3, 3), padding=1)  # 54 x 512
    110592
    """
    op = "im2col_bytes"
    shape = _v.check_shape(input_shape, "input_shape", op)
    geometry = (kernel_size, stride, padding, dilation)
    lengths = {len(v) for v in geometry if isinstance(v, (tuple, list))}
    if spatial_axes is None:
        if len(lengths) > 1:
            raise TypeError(
                f"{op}: kernel_size, stride, padding and dilation must be "
                f"ints or tuples of the same length, got {geometry!r}")
        n = lengths.pop() if lengths else 2
    elif _v.is_int(spatial_axes) and spatial_axes >= 1:
        n = int(spatial_axes)
    else:
        raise TypeError(
            f"{op}: spatial_axes must be None or a positive int, got "
            f"{spatial_axes!r}")
    names = _AXIS_NAMES_N.get(n) or tuple(f"X{i}" for i in range(1, n + 1))
    layout = ", ".join(names)
    if len(shape) == n + 1:
        shape = (1,) + shape
    elif len(shape) != n + 2:
        raise ValueError(
            f"{op}: input_shape must be (C, {layout}) or (N, C, {layout}) "
            f"for {n} spatial {'axis' if n == 1 else 'axes'}, got {shape}")
    N, C, *sizes = shape
    K = _axes(kernel_size, "kernel_size", op, n, 1)
    S = _axes(stride, "stride", op, n, 1)
    D = _axes(dilation, "dilation", op, n, 1)
    pads = _padding_axes(padding, sizes, K, S, D, op, n)
    outs = [_axis_size(sizes[a], K[a], S[a], *pads[a], D[a], False, False,
                       op, None if n == 1 else names[a])
            for a in range(n)]
    return N * C * math.prod(K) * math.prod(outs) * _itemsize(dtype, op)
