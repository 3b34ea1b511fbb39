"""Docstring text shared by the kernels and their NumPy twins.

:mod:`fastconv.functional` and :mod:`fastconv.reference` document the same
arguments, and the 1-D, 2-D and 3-D variants of an operation document them
alike.  Each such paragraph is written once here, in :data:`docdict`, and
:func:`docfiller` fills it into a docstring wherever a line holds nothing
but ``%(name)s`` (scipy.ndimage's ``_ni_docstrings`` is the model), so the
twins cannot drift apart.  Where a twin behaves differently (the reference
ignores ``algorithm``), the shared text says so.

``tests/test_docstrings.py`` checks that every public function documents
each of its parameters and that the twins document them identically.
"""
import re
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["docdict", "docfiller"]

# docfiller returns the function it is given: typed so, the decorated
# kernels keep their signatures for type checkers.
_Function = TypeVar("_Function", bound=Callable[..., Any])

docdict: dict[str, str] = {}

_UNBROKEN = re.compile(r"``.+?``|\([^()]{1,20}\)")


def _add(key, text):
    """docdict[key] = text: numpydoc entries (``name : type`` lines at the
    left margin, each followed by its description indented by 4), the
    descriptions refilled to fit a docstring indented by 4 more."""
    if key in docdict:
        raise KeyError(f"docstring entry {key!r} defined twice")
    lines, para = [], []

    def flush():
        if para:
            # Inline literals and short parentheticals stay on one line.
            text = _UNBROKEN.sub(lambda m: m.group().replace(" ", "\0"), " ".join(para))
            lines.extend(t.replace("\0", " ") for t in textwrap.wrap(
                text, width=75, initial_indent="    ", subsequent_indent="    ",
                break_long_words=False, break_on_hyphens=False))
            para.clear()

    for line in textwrap.dedent(text).strip("\n").split("\n"):
        if line.startswith("    "):
            para.append(line.strip())
        else:
            flush()
            lines.append(line)
    flush()
    docdict[key] = "\n".join(lines)


def docfiller(f: _Function) -> _Function:
    """Replace each line ``%(name)s`` of ``f.__doc__`` by ``docdict[name]``,
    every line of it indented as the placeholder was; return ``f``.

    A docstring removed by ``python -OO`` is left alone; an unknown name
    raises KeyError when the module defining ``f`` is imported.
    """
    if f.__doc__ is None:
        return f
    lines = []
    for line in f.__doc__.split("\n"):
        key = line.strip()
        if key.startswith("%(") and key.endswith(")s"):
            indent = line[:len(line) - len(line.lstrip())]
            lines += [indent + t if t else t for t in docdict[key[2:-2]].split("\n")]
        elif "%(" in line:
            raise ValueError(f"{f.__qualname__}: a docstring placeholder must be a "
                             f"line of its own, got {line.strip()!r}")
        else:
            lines.append(line)
    f.__doc__ = "\n".join(lines)
    return f


# ---------------------------------------------------------------------------
# Spatial vocabulary of the 1-D, 2-D and 3-D variants.
# ---------------------------------------------------------------------------

_ND = {
    1: dict(
        x="(N, C, L)", w="(F, C // groups, k)", yconv="(N, F, Lo)",
        ypool="(N, C, Lo)", ints="int or (int,)", size="k", step="s",
        pad="p", dil="d", same="L, putting an odd extra column at the right",
        lead="left", plane="[0, L)", where="the position in [0, L)",
        order="", sides="both ends",
        out_size="``Lo = (L + pad_left + pad_right - d*(k-1) - 1) // s + 1``",
        pool_size="``Lo = (L + 2*p - d*(k-1) - 1) // s + 1``",
        avg_size="``Lo = (L + 2*p - k) // s + 1``",
        lp_size="``Lo = (L - k) // s + 1``",
    ),
    2: dict(
        x="(N, C, H, W)", w="(F, C // groups, kh, kw)", yconv="(N, F, Ho, Wo)",
        ypool="(N, C, Ho, Wo)", ints="int or (int, int)", size="(kh, kw)",
        step="(sh, sw)", pad="(ph, pw)", dil="(dh, dw)",
        same="H and W, putting an odd extra row/column at the bottom/right",
        lead="top/left", plane="[0, H*W)", where="``ih*W + iw``, flat into its H*W plane,",
        order=" in row-major scan order", sides="both sides",
        out_size="``Ho = (H + pad_top + pad_bottom - dh*(kh-1) - 1) // sh + 1``, "
                 "Wo alike",
        pool_size="``Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1``, Wo alike",
        avg_size="``Ho = (H + 2*ph - kh) // sh + 1``, Wo alike",
        lp_size="``Ho = (H - kh) // sh + 1``, Wo alike",
    ),
    3: dict(
        x="(N, C, D, H, W)", w="(F, C // groups, kd, kh, kw)",
        yconv="(N, F, Do, Ho, Wo)", ypool="(N, C, Do, Ho, Wo)",
        ints="int or (int, int, int)", size="(kd, kh, kw)", step="(sd, sh, sw)",
        pad="(pd, ph, pw)", dil="(dd, dh, dw)",
        same="D, H and W, putting an odd extra plane/row/column at the "
             "back/bottom/right",
        lead="front/top/left", plane="[0, D*H*W)",
        where="``(id*H + ih)*W + iw``, flat into its D*H*W volume,",
        order=" in (d, h, w) scan order", sides="both sides",
        out_size="``Do = (D + pad_front + pad_back - dd*(kd-1) - 1) // sd + 1``, "
                 "Ho and Wo alike",
        pool_size="``Do = (D + 2*pd - dd*(kd-1) - 1) // sd + 1``, Ho and Wo alike",
        avg_size="``Do = (D + 2*pd - kd) // sd + 1``, Ho and Wo alike",
    ),
}

_TWIN_IGNORES = """\
        :mod:`fastconv.reference` checks it as the compiled function does (an
        unknown name, or a Winograd kernel for a layer Winograd cannot
        compute, raises ValueError) and otherwise ignores it: the NumPy twin
        always computes one matrix product."""

# The Winograd cost figures follow from the tile m: (m+2)^2 multiplications
# per m x m outputs, where the direct sum takes 9 per output.
_SAVING = {m: 9 * m * m / (m + 2) ** 2 for m in (2, 4)}


def _ratio(r):
    return f"{r:g}x"


for _nd, _d in _ND.items():
    _n = f"{_nd}d"
    _add(f"x{_n}", f"""
        x : ndarray of shape {_d['x']}, dtype float32 or float64
            The input batch, channels first.""")
    _add(f"kernel_size{_n}", f"""
        kernel_size : {_d['ints']}
            The window's size, {_d['size']}.""")
    _add(f"stride{_n}", f"""
        stride : {_d['ints']}
            The window's step, {_d['step']}.""")
    _add(f"dilation{_n}", f"""
        dilation : {_d['ints']}
            The spacing of the window's cells, {_d['dil']}: 1 is a dense
            window (a "dilation 0" elsewhere is 1 here).""")

    # convolution
    _add(f"weight_conv{_n}", f"""
        weight : ndarray of shape {_d['w']}, x's dtype
            F filters, each over C // groups input channels.""")
    _add(f"padding_conv{_n}", f"""
        padding : {_d['ints'].replace(' or ', ', ')}, "same" or "valid"
            Zero padding on {_d['sides']}, {_d['pad']}; ``"valid"`` is 0, and
            ``"same"`` (stride 1 only) keeps {_d['same']} as PyTorch does.""")
    _add(f"y_conv{_n}", f"""
        y : ndarray of shape {_d['yconv']}, x's dtype
            {_d['out_size']}.""")
    _add(f"grad_out_conv{_n}", f"""
        grad_out : ndarray of shape {_d['yconv']}, x's dtype
            Gradient of the loss with respect to conv{_n}'s output.""")
    _add(f"grads_conv{_n}", f"""
        grad_x : ndarray of shape {_d['x']}
        grad_weight : ndarray of shape {_d['w']}
        grad_bias : ndarray of shape (F,)
            ``grad_out`` summed over all but the filter axis; always returned,
            ignore it for a convolution without bias.""")

    # pooling
    _add(f"stride_pool{_n}", f"""
        stride : {_d['ints']} or None, optional
            The window's step, {_d['step']}; None (the default) means
            kernel_size.""")
    _add(f"padding_max{_n}", f"""
        padding : {_d['ints']}
            Implicit -inf padding on {_d['sides']}, {_d['pad']}, at most half
            of kernel_size (``p <= k // 2``, on the undilated window, as
            PyTorch); padded cells never win.""")
    _add(f"padding_avg{_n}", f"""
        padding : {_d['ints']}
            Implicit zero padding on {_d['sides']}, {_d['pad']}, at most half
            of kernel_size (``p <= k // 2``, as PyTorch).""")
    _add(f"ceil_mode{_n}", f"""
        ceil_mode : bool
            Round the output size up rather than down, as PyTorch: the last
            window may then hang past the input and its padding (its cells
            there do not count), but it must start inside the input or its
            {_d['lead']} padding.""")
    _add(f"y_pool{_n}", f"""
        y : ndarray of shape {_d['ypool']}, x's dtype
            {_d['pool_size']} (rounded up with ceil_mode).""")
    _add(f"y_avg_pool{_n}", f"""
        y : ndarray of shape {_d['ypool']}, x's dtype
            {_d['avg_size']} (rounded up with ceil_mode).""")
    _add(f"indices_out{_n}", f"""
        indices : ndarray of shape {_d['ypool']}, int64
            Only with ``return_indices=True``: {_d['where']} of each maximum.
            Ties go to the first maximum{_d['order']}; a window holding NaN
            yields NaN, indexed at its last NaN (PyTorch's rule).""")
    _add(f"raises_empty_window{_n}", f"""
        ValueError
            A dilated window that covers no input cell at all (only padding
            and skipped cells) is rejected with ValueError, deliberately:
            PyTorch returns -inf there with an index outside {_d['plane']}.""")
    _add(f"indices{_n}", f"""
        indices : ndarray of shape {_d['ypool']}, int64
            As returned by ``max_pool{_n}(..., return_indices=True)``: flat
            indices in {_d['plane']}.""")
    _add(f"input_shape{_n}", f"""
        input_shape : tuple {_d['x']}
            The shape of the forward pass's input x.""")
    for _op in ("max_pool", "avg_pool"):
        _add(f"grad_out_{_op}{_n}", f"""
            grad_out : ndarray of shape {_d['ypool']}, dtype float32 or float64
                Gradient of the loss with respect to {_op}{_n}'s output.""")

_add("grad_x_max_pool", """
    grad_x : ndarray of shape input_shape, grad_out's dtype
        Each output gradient added at its maximum; overlapping windows that
        share a maximum add up.""")
_add("grad_x_avg_pool", """
    grad_x : ndarray of shape input_shape, grad_out's dtype
        Each output gradient divided by its window's divisor and added to
        every input cell of the window.""")
_add("bias_conv", """
    bias : ndarray of shape (F,), x's dtype, optional
        One value per filter, added to its output; None adds nothing.""")
_add("groups", """
    groups : int
        Input channels and filters are split into ``groups`` independent
        groups; it divides both C and F (``groups == C``: a depthwise
        convolution).""")
_add("relu", """
    relu : bool
        Return ``max(y, 0)`` (NaN stays NaN) instead of y: the layer followed
        by a ReLU.  The compiled kernel applies it as it writes each output
        tile, in the same pass.""")
_add("return_indices", """
    return_indices : bool
        Also return the index of each window's maximum (not computed
        otherwise).""")
_add("count_include_pad", """
    count_include_pad : bool
        Divide each window's sum by the window's size including the zero
        padding (but not the part of a ceil_mode window hanging past the
        padding), or, if False, by the number of its cells inside x.""")

_add("algorithm", f"""
    algorithm : {{"auto", "gemm", "direct", "winograd", "winograd2x2", "winograd4x4"}}
        The compiled kernel.  ``"gemm"``: fastconv's packed matrix product
        (AVX-512 / AVX2 / generic micro-kernels chosen at run time), with
        im2col fused into the packing of bounded per-thread tiles: the column
        matrix is never formed; it adds each output's products in the direct
        sum's order.  ``"direct"``: a loop over kernel taps, no column matrix
        (a dilation far wider than the input runs on the GEMM instead: the
        direct kernel's rows would grow with it).  ``"winograd"``: Winograd
        F(m x m, 3x3) on the same micro-kernels, for 3x3 filters at stride 1
        (a dilated one split into its dilation's phases, each an image) and,
        at dilation 1, kernels with ceil(k / stride) == 3 both ways (5x5 or
        6x6 at stride 2, 11x11 at stride 4; split into their stride phases,
        sh*sw channels per channel, 3x3 filters); the tile m by the rule of
        :func:`fastconv.conv_plan` (F(4x4): {_ratio(_SAVING[4])} fewer
        multiplications than the direct sum; F(2x2): {_ratio(_SAVING[2])});
        ``"winograd4x4"`` and ``"winograd2x2"`` force the tile.  Winograd
        rounds differently from the direct sum (float32 relative errors below
        5e-4 for F(4x4) and 1e-4 for F(2x2), README "Exactness"), and a NaN
        or inf in x reaches every output of its m x m tiles.  ``"auto"``: see
        :func:`fastconv.select_algorithm`.
        {_TWIN_IGNORES.strip()}""")
_add("algorithm_backward", f"""
    algorithm : {{"auto", "gemm", "direct", "winograd", "winograd2x2", "winograd4x4"}}
        As given to the forward pass; the backward pass runs the same family
        of kernels (a Winograd layer computes grad_weight, and grad_x for
        paddings up to 2, by Winograd too).
        {_TWIN_IGNORES.strip()}""")
_add("algorithm1d", f"""
    algorithm : {{"auto", "gemm", "direct"}}
        As :func:`fastconv.conv2d`'s, whose kernels run the 1-D convolution
        on (N, C, 1, L) views (Winograd computes no 1-D convolution).
        {_TWIN_IGNORES.strip()}""")

# im2col / col2im, the locally connected layer
_add("padding_zero2d", """
    padding : int or (int, int)
        Zero padding on both sides, (ph, pw).""")
_add("cols", """
    cols : ndarray of shape (N, C*kh*kw, L), dtype float32 or float64
        Columns as :func:`im2col` returns them: L must be Ho*Wo of the
        geometry.""")
_add("output_size", """
    output_size : int or (int, int)
        The image size (H, W).""")
_add("weight_lc", """
    weight : ndarray of shape (Ho, Wo, C, kh, kw, F), x's dtype
        ``weight[oh, ow, ..., f]`` is filter f of position (oh, ow), a
        (C, kh, kw) filter as in :func:`conv2d`; ``Ho = (H + 2*ph -
        dh*(kh-1) - 1) // sh + 1`` (Wo alike) must be the output size of the
        geometry.  The filters come last so that each position's bank is one
        contiguous (C*kh*kw, F) matrix, as Keras' kernel is, and the compiled
        kernels need no transposed copy of it.  Keras' kernel
        ``k`` of shape (Ho*Wo, kh*kw*C, F) is ``k.reshape(Ho, Wo, kh, kw, C,
        F).transpose(0, 1, 4, 2, 3, 5)``, and
        ``np.broadcast_to(wc.transpose(1, 2, 3, 0), (Ho, Wo, C, kh, kw, F))``
        shares a conv2d weight ``wc`` of shape (F, C, kh, kw) across all the
        positions.""")
_add("bias_lc", """
    bias : ndarray of shape (F, Ho, Wo), x's dtype, optional
        One bias per filter and position; None adds nothing.""")
_add("cols_out", """
    cols : ndarray of shape (N, C*kh*kw, L), x's dtype
        The L = Ho*Wo windows: ``cols[n, c*kh*kw + i*kw + j, oh*Wo + ow]`` is
        ``x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]`` (0 in the padding),
        with ``Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1`` and likewise Wo.""")
_add("x_out_col2im", """
    x : ndarray of shape (N, C, H, W), cols' dtype
        Each column's values added into the cells of its window: overlaps
        summed, values falling on the padding dropped.""")
_add("y_lc", """
    y : ndarray of shape (N, F, Ho, Wo), x's dtype
        ``y[n, :, oh, ow] = patch @ W[oh, ow] + bias[:, oh, ow]`` with
        ``W = weight.reshape(Ho, Wo, C*kh*kw, F)`` and ``patch`` column
        ``oh*Wo + ow`` of ``im2col(x, (kh, kw), stride, padding, dilation)[n]``.""")
_add("grads_lc", """
    grad_x : ndarray of shape (N, C, H, W), x's dtype
    grad_weight : ndarray of shape (Ho, Wo, C, kh, kw, F), x's dtype
        ``grad_weight[oh, ow]`` sums over the batch only (no sharing).
    grad_bias : ndarray of shape (F, Ho, Wo), x's dtype
        ``grad_out.sum(axis=0)``; always returned, ignore it without bias.""")
_add("grad_out_lc", """
    grad_out : ndarray of shape (N, F, Ho, Wo), x's dtype
        Gradient of the loss with respect to the layer's output.""")

# Lp-norm and global average pooling
_add("y_lp_pool2d", f"""
    y : ndarray of shape (N, C, Ho, Wo), x's dtype
        {_ND[2]['lp_size']} (rounded up with ceil_mode).  A window whose sum
        of ``x**p`` is negative (odd p with negative inputs) or NaN (``x < 0``
        and a non-integer p) gives NaN, as PyTorch, except where ``1/p`` is an
        integer (``p = 1``: a plain sum).""")
_add("y_lp_pool1d", f"""
    y : ndarray of shape (N, C, Lo), x's dtype
        {_ND[1]['lp_size']} (rounded up with ceil_mode); NaN where
        :func:`lp_pool2d` gives NaN.""")
for _nd in (1, 2):
    _add(f"grad_x_lp{_nd}d", f"""
        grad_x : ndarray of shape {_ND[_nd]['x']}, x's dtype""")
_add("y_global", """
    y : ndarray of shape (N, C, 1, 1), x's dtype
        The mean of each (H, W) plane.""")
_add("grad_x_global", """
    grad_x : ndarray of shape input_shape, grad_out's dtype
        ``grad_out / (H*W)`` in every cell of its plane.""")
_add("norm_type", """
    norm_type : float
        p: any real number but 0 (PyTorch raises ZeroDivisionError there) and
        NaN, ``inf`` (max pooling of ``|x|``) and ``-inf`` (min pooling of
        ``|x|``) included.""")
_add("ceil_mode_lp", """
    ceil_mode : bool
        Round the output size up (the last window must start inside the
        input).  As in PyTorch, a window hanging past the input is averaged
        over its cells inside and then multiplied by the full window size,
        i.e. it is scaled by ``window size / cells inside``.""")
for _nd in (1, 2):
    _add(f"grad_out_lp_pool{_nd}d", f"""
        grad_out : ndarray of shape {_ND[_nd]['ypool']}, x's dtype
            Gradient of the loss with respect to lp_pool{_nd}d's output.""")
_add("grad_out_global", """
    grad_out : ndarray of shape (N, C, 1, 1), dtype float32 or float64
        Gradient of the loss with respect to global_avg_pool2d's output.""")

# layer kernels: batch normalisation, ReLU, residual add, fully connected
_add("running_stats", """
    running_mean, running_var : ndarray of shape (C,), x's dtype, or None
        Used in evaluation; in training (when given) updated IN PLACE:
        ``running = (1 - momentum) * running + momentum * batch_stat``, with
        the unbiased batch variance, as PyTorch does.""")
_add("bn_weight_bias", """
    weight, bias : ndarray of shape (C,), optional
        gamma and beta (default 1 and 0).""")
_add("bn_training", """
    training : bool
        Normalise with the batch's mean and biased variance (True) or with
        the running statistics (False).""")
_add("bn_momentum_eps", """
    momentum, eps : float
        The running statistics' update weight; the term added to the
        variance (both non-negative).""")
_add("out_x", """
    out : ndarray of x's shape and dtype, optional
        Written with the result and returned; may be x itself.""")
_add("out_grad", """
    out : ndarray of grad_out's shape and dtype, optional
        Written with grad_x and returned; may be grad_out itself.""")
_add("bn_return_stats", """
    return_stats : bool
        Also return the statistics used, for :func:`batch_norm2d_backward`.""")
_add("bn_grad_out_x", """
    grad_out, x : ndarray of shape (N, C, H, W)
        The gradient of the loss with respect to batch_norm2d's output, and
        its input.""")
_add("bn_stats", """
    mean, invstd : ndarray of shape (C,)
        The statistics the forward pass returned (``return_stats=True``).""")
_add("bn_weight", """
    weight : ndarray of shape (C,), optional
        gamma (default 1).""")
_add("bn_backward_training", """
    training : bool
        Whether the forward pass used batch statistics (whose own dependence
        on x enters grad_x) or fixed running ones.""")
_add("bn_backward_y", """
    y : ndarray of shape (N, C, H, W), optional
        The output of a ``relu=True`` forward pass: grad_out is zeroed where
        ``y <= 0`` (ReLU's backward, in the same pass).""")
_add("returns_bn", """
    y : ndarray of shape (N, C, H, W), x's dtype
    mean, invstd : ndarray of shape (C,), x's dtype
        Only with ``return_stats=True``: the mean and ``1/sqrt(var + eps)``
        used (the batch's in training, the running ones in evaluation).""")
_add("grads_bn", """
    grad_x : ndarray of shape (N, C, H, W), x's dtype
    grad_weight, grad_bias : ndarray of shape (C,), x's dtype
        Always returned; ignore them without weight and bias.""")
_add("y_relu", """
    y : ndarray of x's shape and dtype
        ``out`` if given.""")
_add("grad_x_relu", """
    grad_x : ndarray of grad_out's shape and dtype
        ``out`` if given.""")
_add("y_add", """
    y : ndarray of a's shape and dtype
        ``out`` if given.""")
_add("y_linear", """
    y : ndarray of shape (N, out_features), x's dtype
        ``out`` if given.""")
_add("grads_linear", """
    grad_x : ndarray of shape (N, in_features), x's dtype
    grad_weight : ndarray of shape (out_features, in_features), x's dtype
    grad_bias : ndarray of shape (out_features,), x's dtype
        ``grad_out.sum(axis=0)``.""")
_add("x_any", """
    x : ndarray of any shape, dtype float32 or float64
        The input.""")
_add("relu_backward_grad_out", """
    grad_out : ndarray, dtype float32 or float64
        Gradient of the loss with respect to relu's output.""")
_add("relu_backward_y", """
    y : ndarray of grad_out's shape and dtype
        The forward output (PyTorch's ``threshold_backward`` on the result,
        so a NaN output passes its gradient).""")
_add("add_ab", """
    a, b : ndarray of one shape and dtype (float32 or float64)
        The two summands.""")
_add("add_relu", """
    relu : bool
        Return ``max(a + b, 0)`` (NaN stays NaN), in the same pass.""")
_add("add_out", """
    out : ndarray of a's shape and dtype, optional
        Written with the result and returned; may be a or b.""")
_add("x_linear", """
    x : ndarray of shape (N, in_features), dtype float32 or float64
        The input batch.""")
_add("weight_linear", """
    weight : ndarray of shape (out_features, in_features), x's dtype
        One row per output feature.""")
_add("bias_linear", """
    bias : ndarray of shape (out_features,), x's dtype, optional
        Added to every row of the product; None adds nothing.""")
_add("out_linear", """
    out : ndarray of shape (N, out_features), x's dtype, optional
        Written with the result and returned; it must not overlap x.""")
_add("grad_out_linear", """
    grad_out : ndarray of shape (N, out_features), x's dtype
        Gradient of the loss with respect to linear's output.""")

del _nd, _d, _n, _op
