"""Convert fully connected layers to convolutions and back.

The cs231n notes ("Converting FC layers to CONV layers") observe that a
fully connected layer looking at a (C, H, W) activation volume is a
convolution with an H x W kernel and no padding, and that a network whose
FC head is converted this way can slide over a larger image in a single
forward pass, producing a map of class scores instead of one score vector.

* :func:`fc_to_conv` turns a :class:`~fastconv.layers.Linear` into the
  equivalent :class:`~fastconv.layers.Conv2d`;
* :func:`conv_to_fc` does the reverse for a convolution whose kernel covers
  its whole input;
* :func:`convolutionalize` converts the head of a trained
  :class:`~fastconv.layers.Sequential` classifier.

Weights are copied (never shared) and keep their dtype; the layers given
are not modified.
"""

import copy

import numpy as np

from . import _validation as _v
from . import layers as _L
from ._typing import Shape

__all__ = ["fc_to_conv", "conv_to_fc", "convolutionalize"]


def _shape3(input_shape, name, op):
    shape = _v.int_items(input_shape)      # a tuple, list or int array
    if shape is None or len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"{op}: {name} must be 3 positive ints (C, H, W), got "
            f"{input_shape!r}"
        )
    return shape


def _fresh_like(new, old):
    """Give ``new`` the backend and mode of ``old``."""
    new.set_backend(old._backend)
    new.train(old.training)
    return new


def fc_to_conv(linear: _L.Linear, input_shape: Shape | None = None) -> _L.Conv2d:
    """The convolution that computes what a Linear layer computes.

    Parameters
    ----------
    linear : fastconv.layers.Linear
        ``weight`` (out, in_features), optional ``bias`` (out,).
    input_shape : tuple (C, H, W), optional
        The activation that a ``Flatten()`` turns into the Linear's input,
        with ``C*H*W == in_features``.  Default ``(in_features, 1, 1)``: a
        Linear on a plain vector becomes a 1x1 convolution.

    Returns
    -------
    conv : fastconv.layers.Conv2d
        ``Conv2d(C, out, kernel_size=(H, W))``, stride 1, no padding, with
        ``weight = linear.weight.reshape(out, C, H, W)`` (a copy; Flatten's
        order is C, H, W, as torch's) and the bias copied; same dtype,
        backend and training mode, zero gradients.  For x of shape
        (N, C, H, W), ``conv(x)[:, :, 0, 0] == linear(x.reshape(N, -1))``;
        on a larger input (N, C, H', W') it returns (N, out, H'-H+1, W'-W+1),
        the Linear applied at every H x W window.

    Raises
    ------
    TypeError
        linear is not a fastconv.layers.Linear.
    ValueError
        input_shape is not 3 positive ints, or C*H*W != in_features.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> from fastconv import layers as L
    >>> fc_layer = L.Linear(8 * 3 * 3, 10, rng=0)
    >>> conv = fc.fc_to_conv(fc_layer, (8, 3, 3))
    >>> conv
    Conv2d(8, 10, kernel_size=(3, 3), stride=(1, 1))
    >>> x = np.random.default_rng(0).standard_normal((2, 8, 3, 3)).astype(np.float32)
    >>> np.allclose(conv(x)[:, :, 0, 0], fc_layer(x.reshape(2, -1)), atol=1e-5)
    True
    >>> conv(np.zeros((1, 8, 5, 7), np.float32)).shape     # slides
    (1, 10, 3, 5)
    """
    op = "fc_to_conv"
    if not isinstance(linear, _L.Linear):
        raise TypeError(
            f"{op}: linear must be a fastconv.layers.Linear, got "
            f"{type(linear).__name__}"
        )
    if input_shape is None:
        input_shape = (linear.in_features, 1, 1)
    c, h, w = _shape3(input_shape, "input_shape", op)
    if c * h * w != linear.in_features:
        raise ValueError(
            f"{op}: input_shape {(c, h, w)} flattens to {c * h * w} features "
            f"but the Linear has in_features={linear.in_features}"
        )
    out = linear.out_features
    has_bias = "bias" in linear.params
    conv = _L.Conv2d(c, out, (h, w), bias=has_bias, dtype=linear.dtype, rng=0)
    state = {"weight": linear.params["weight"].reshape(out, c, h, w)}
    if has_bias:
        state["bias"] = linear.params["bias"]
    conv.load_state_dict(state)                       # copies
    return _fresh_like(conv, linear)


def conv_to_fc(conv: _L.Conv2d, input_shape: Shape | None = None) -> _L.Linear:
    """The Linear layer that computes what a whole-input convolution computes.

    Parameters
    ----------
    conv : fastconv.layers.Conv2d
        A convolution whose kernel covers its whole input: no padding,
        dilation 1, groups 1 (any stride: there is one window).
    input_shape : tuple (C, H, W), optional
        The convolution's input; must equal ``(in_channels, kh, kw)``,
        the default.

    Returns
    -------
    linear : fastconv.layers.Linear
        ``Linear(C*kh*kw, F)`` with ``weight = conv.weight.reshape(F, -1)``
        (a copy) and the bias copied; same dtype, backend and training mode,
        zero gradients.  ``linear(x.reshape(N, -1)) == conv(x)[:, :, 0, 0]``:
        put a ``Flatten()`` before it, and note the output is (N, F), not
        (N, F, 1, 1).

    Raises
    ------
    TypeError
        conv is not a fastconv.layers.Conv2d.
    ValueError
        Padding, dilation or groups other than 0, 1, 1; an input_shape that
        differs from (in_channels, kh, kw).

    Examples
    --------
    >>> import fastconv as fc
    >>> from fastconv import layers as L
    >>> fc.conv_to_fc(L.Conv2d(512, 4096, 7, rng=0))
    Linear(in_features=25088, out_features=4096, bias=True)
    """
    op = "conv_to_fc"
    if not isinstance(conv, _L.Conv2d):
        raise TypeError(
            f"{op}: conv must be a fastconv.layers.Conv2d, got "
            f"{type(conv).__name__}"
        )
    kh, kw = conv.kernel_size
    padding = conv.padding
    if padding == "valid" or (padding == "same" and (kh, kw) == (1, 1)):
        padding = (0, 0)
    if (padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1):
        raise ValueError(
            f"{op}: only a convolution with padding 0, dilation 1 and "
            f"groups 1 is a Linear layer; got padding={conv.padding!r}, "
            f"dilation={conv.dilation}, groups={conv.groups}"
        )
    expected = (conv.in_channels, kh, kw)
    if input_shape is None:
        input_shape = expected
    shape = _shape3(input_shape, "input_shape", op)
    if shape != expected:
        raise ValueError(
            f"{op}: the kernel must cover the whole input: input_shape "
            f"{shape} but the convolution has {conv.in_channels} input "
            f"channels and kernel_size {(kh, kw)}, i.e. input_shape "
            f"{expected}"
        )
    f = conv.out_channels
    has_bias = "bias" in conv.params
    linear = _L.Linear(conv.in_channels * kh * kw, f, bias=has_bias,
                       dtype=conv.dtype, rng=0)
    state = {"weight": conv.params["weight"].reshape(f, -1)}
    if has_bias:
        state["bias"] = conv.params["bias"]
    linear.load_state_dict(state)
    return _fresh_like(linear, conv)


_ELEMENTWISE = (_L.ReLU, _L.Dropout)


def _model_dtype(model):
    for arr in model.params.values():
        return arr.dtype
    return np.dtype(np.float32)


def convolutionalize(model: _L.Sequential, input_shape: Shape) -> _L.Sequential:
    """Turn a classifier's fully connected head into convolutions.

    ``model`` is a trained :class:`~fastconv.layers.Sequential` of the form
    ``[conv / pool / relu / batchnorm / residual ...], Flatten(),
    Linear, [ReLU, Dropout, Linear ...]``, that maps (N, C, H, W) images of
    ``input_shape`` to (N, classes) scores.  The result drops the
    ``Flatten``, turns the first ``Linear`` into a convolution whose kernel
    covers the whole last feature map (h x w) and every later ``Linear``
    into a 1x1 convolution (:func:`fc_to_conv`).  On an image of the
    original size it returns the original scores as (N, classes, 1, 1); on
    a larger image (N, C, H', W') one forward pass returns a score map
    (N, classes, Ho', Wo'), ``Ho' = (h' - h) + 1`` where h' is the last
    feature map's height for H'.

    Parameters
    ----------
    model : fastconv.layers.Sequential
        Not modified.
    input_shape : tuple (C, H, W)
        The image size the classifier was built for.

    Returns
    -------
    fastconv.layers.Sequential
        A new model: every array copied (none shared with ``model``), same
        dtype, backend and training mode, zero gradients.  Its trunk layers
        are copies of the originals; its state_dict names differ from the
        original's where the Flatten was removed.

    Raises
    ------
    TypeError
        model is not a Sequential.
    ValueError
        input_shape is not 3 positive ints or does not fit the model; a
        Flatten that is not ``Flatten(1, -1)``; a layer after the Flatten
        other than Linear, ReLU or Dropout; a Linear or Flatten inside a
        nested container, or a Linear before any Flatten.

    Notes
    -----
    *Sliding equals cropping, without padding.*  Let S be the network's
    total stride (the product of its layers' strides).  If no layer pads,
    score ``[:, :, i, j]`` of the converted network on a large image equals
    the original network's scores on the crop of size (H, W) at
    ``(i*S, j*S)``, up to float rounding: each crop's computation is a
    sub-computation of the large one, e.g. the notes' 224x224 crops of a
    384x384 image at stride 32 (a 6x6 map from a 7x7 last feature map).

    *Zero padding breaks this at crop edges.*  The original pads each crop
    with zeros at the crop's own edges, at every padded layer, whereas the
    converted network sees the real neighbouring pixels there and pads only
    at the large image's edges.  Features whose receptive field stays
    inside the crop (or leaves it only across the large image's own
    border) agree; the others differ.  The FC head reads every feature of
    the last map, so in general every score differs somewhat from the
    per-crop score (a crop equal to the whole image excepted).  The
    converted network is still a sensible detector; it is just not the
    crop-by-crop evaluation.

    Layers that drop windows that do not fit (floor division in conv and
    pooling sizes) keep the equality only for crop offsets that are
    multiples of S and a large image whose extra size is a multiple of S.

    Examples
    --------
    >>> import numpy as np, fastconv as fc
    >>> from fastconv import layers as L
    >>> net = L.Sequential(L.Conv2d(3, 4, 3, rng=0), L.ReLU(), L.MaxPool2d(2),
    ...                    L.Flatten(), L.Linear(4 * 3 * 3, 16, rng=1), L.ReLU(),
    ...                    L.Dropout(0.5), L.Linear(16, 10, rng=2)).eval()
    >>> fcn = fc.convolutionalize(net, (3, 8, 8))
    >>> fcn[3]
    Conv2d(4, 16, kernel_size=(3, 3), stride=(1, 1))
    >>> fcn[6]
    Conv2d(16, 10, kernel_size=(1, 1), stride=(1, 1))
    >>> fcn(np.zeros((1, 3, 16, 16), np.float32)).shape   # stride 2: 5x5 crops
    (1, 10, 5, 5)
    """
    op = "convolutionalize"
    if not isinstance(model, _L.Sequential):
        raise TypeError(
            f"{op}: model must be a fastconv.layers.Sequential, got "
            f"{type(model).__name__}"
        )
    shape = _shape3(input_shape, "input_shape", op)
    trunk_copy = copy.deepcopy(model)          # arrays copied, model untouched
    modes = [layer.training for layer in trunk_copy._walk()]
    trunk_copy.eval()                          # no statistics updates while probing
    probe = np.zeros((1,) + shape, dtype=_model_dtype(model))
    converted = []
    heads = []                                 # (new conv, original Linear)
    flattened = False
    try:
        for i, layer in enumerate(trunk_copy):
            where = f"layer {i} ({layer!r})"
            if isinstance(layer, _L.Flatten):
                if flattened or (layer.start_dim, layer.end_dim) not in ((1, -1), (1, 3)):
                    raise ValueError(
                        f"{op}: {where}: only one Flatten(start_dim=1, "
                        f"end_dim=-1), before the fully connected head, can "
                        f"be removed"
                    )
                flattened = True
                continue
            if isinstance(layer, _L.Linear):
                if not flattened:
                    raise ValueError(
                        f"{op}: {where} is not preceded by a Flatten; cannot "
                        f"tell which (C, H, W) volume it reads"
                    )
                if layer.in_features != int(np.prod(shape)):
                    raise ValueError(
                        f"{op}: {where} reads {layer.in_features} features but "
                        f"the activation before it has shape {shape} for "
                        f"input_shape {tuple(input_shape)}"
                    )
                conv = fc_to_conv(layer, shape)
                converted.append(conv)
                heads.append((conv, model[i]))
                shape = (layer.out_features, 1, 1)
                continue
            if flattened and not isinstance(layer, _ELEMENTWISE):
                raise ValueError(
                    f"{op}: {where} follows the Flatten; only Linear, ReLU "
                    f"and Dropout layers can be converted"
                )
            for sub in layer._walk():
                if sub is not layer and isinstance(sub, (_L.Linear, _L.Flatten)):
                    raise ValueError(
                        f"{op}: {where} contains {sub!r}; only a top-level "
                        f"head can be converted"
                    )
            if not flattened:
                try:
                    probe = layer.forward(probe)
                except (TypeError, ValueError) as exc:
                    raise ValueError(
                        f"{op}: {where} does not accept its input of shape "
                        f"{probe.shape} for input_shape {tuple(input_shape)}: "
                        f"{exc}"
                    ) from exc
                shape = tuple(probe.shape[1:])
            converted.append(layer)
    finally:
        for layer, mode in zip(trunk_copy._walk(), modes):
            layer.training = mode
    for conv, linear in heads:
        conv.train(linear.training)
    result = _L.Sequential(*converted)
    result._backend = model._backend        # children keep their own
    result.training = model.training
    for layer in result._walk():
        layer._cache = None
        layer._out_meta = None
    result.zero_grad()
    return result
