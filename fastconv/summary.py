"""Model summary: the cs231n notes' VGG-16 table for any fastconv model.

:func:`summary` (also ``model.summary(input_shape)`` on every layer) lists,
layer by layer, the output shape, the parameters, the activations (values
and bytes) and the receptive field (size and jump in input pixels), then the
memory totals for inference and training.  It uses only the shape protocol
(``output_shape`` and ``_rf_geometry``): nothing is run and no input array
is needed.

How memory is counted (the notes' way)
--------------------------------------
* Activations: the input plus every layer's output, once.  Rows of
  ``ReLU``, ``Dropout`` and ``Flatten`` are listed but marked "not counted"
  and not added: the notes fold each ReLU into its CONV row (so the totals
  reproduce their rows), and Flatten is a view.  fastconv's ReLU and
  Dropout do allocate their outputs, so a real forward pass keeps more.  A
  :class:`~fastconv.layers.Residual` adds one row for its sum.
* Inference: activations + parameters (all activations kept, as for a
  backward pass; a pure inference run needs only two at a time).
* Training: activations and their gradients (2x), parameters, their
  gradients and the optimiser's slots per parameter: plain SGD 0, SGD with
  momentum 1, Adam 2.
* Not counted: fastconv's own caches (ReLU's mask, max pooling's int64
  indices, BatchNorm's normalised input), workspaces and temporaries; real
  fastconv training uses more than the table says.
* Units: ``kB``/``MB``/``GB`` are powers of 10, as in the notes.

VGG-16 and the notes' "24M activations, ~93 MB"
-----------------------------------------------
For VGG-16 (configuration D) on one 224x224x3 image the notes' table lists
per-layer activations (INPUT 150K, CONV3-64 3.2M twice, POOL2 800K, ...,
FC 4096, 4096, 1000) and then states "TOTAL memory: 24M * 4 bytes ~= 93MB /
image (only forward! ~*2 for bwd)".  Their own rows add up to 15,237,608
values, i.e. 60.95 MB (58.1 MiB) in float32, which is what
``summary(vgg16(), (3, 224, 224))`` reports.  The 24M total does not follow
from the rows: counting every ReLU output as a separate array would give
28.8M, not 24M, and 24M * 4 bytes is 96 MB (91.6 MiB), not 93 MB; the
total is a loose figure.  The parameter total, 138M, is exact:
138,357,544.

Examples
--------
>>> from fastconv import layers as L
>>> net = L.Sequential(L.Conv2d(3, 8, 3, padding=1, rng=0), L.ReLU(),
...                    L.MaxPool2d(2), L.Flatten(), L.Linear(8 * 4 * 4, 10, rng=0))
>>> s = net.summary((3, 8, 8))
>>> s.params, s.activations        # 224 + 1290; input 192 + 512 + 128 + 10
(1514, 842)
>>> s.rows[3].rf_size, s.rows[3].rf_jump         # after the pooling
((4, 4), (2, 2))
>>> print(s)                                     # doctest: +SKIP
"""

import json
import math
from collections import namedtuple
from typing import Any

import numpy as np

from . import _receptive_field as _rf
from . import _validation as _v
from . import layers as _layers
from ._typing import DTypeLike, Model, Shape

__all__ = ["summary", "Summary", "LayerRow"]

LayerRow = namedtuple(
    "LayerRow",
    "name kind output_shape params activations activation_bytes in_place "
    "rf_size rf_jump",
)
LayerRow.__doc__ = """One row of a :class:`Summary`.

Attributes
----------
name : str
    Dotted path in the model (``"0.3"``, ``"1.body.0"``), ``"input"``.
kind : str
    Layer type and window, any number of axes, e.g. ``"Conv2d 3x3"``,
    ``"MaxPool2d 2x2 s2"``, ``"Conv1d 5 s2"``, ``"Conv3d 3x3x3 d2x2x2"``,
    ``"LPPool2d 2x2 s2 p=2"``; other layers (``"GlobalAvgPool2d"``,
    ``"Linear"``) their class name only.
output_shape : tuple of int
    Without the batch dimension for a per-sample summary.
params : int
    The layer's own parameters (a Residual's sum row: 0).
activations : int
    Values in the output.
activation_bytes : int
    Their bytes; 0 for rows not counted.
in_place : bool
    True for rows not counted in the totals (printed "not counted"):
    ReLU and Dropout, which the notes fold into the previous row (fastconv's
    allocate their outputs), and views (Flatten).
rf_size, rf_jump : tuple of int, "global", "?" or "-"
    Receptive field of one output value in input pixels and the distance
    between neighbouring outputs, one int per spatial axis (``(L,)``,
    ``(H, W)`` or ``(D, H, W)``); "global": every value sees the whole
    input (after ``Linear`` or global pooling); "?": a layer without
    declared geometry came before; "-": the input has no spatial axes.
"""

_SLOTS = {"sgd": 0, "momentum": 1, "sgd_momentum": 1, "adam": 2}


def _optimizer_slots(optimizer):
    """(slots per parameter, description)."""
    from . import optim

    if optimizer is None:
        return 0, "none (plain SGD)"
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in _SLOTS:
            raise ValueError(
                f"summary: optimizer must be None, one of {tuple(_SLOTS)}, an "
                f"int or a fastconv.optim optimiser, got {optimizer!r}")
        return _SLOTS[key], {0: "SGD", 1: "SGD with momentum",
                             2: "Adam"}[_SLOTS[key]]
    if isinstance(optimizer, optim.SGD):
        return (1, "SGD with momentum") if optimizer.momentum else (0, "SGD")
    if isinstance(optimizer, optim.Adam):
        return 2, "Adam"
    if _v.is_int(optimizer) and optimizer >= 0:
        return int(optimizer), f"{int(optimizer)} slot(s) per parameter"
    raise TypeError(
        f"summary: optimizer must be None, one of {tuple(_SLOTS)}, a "
        f"non-negative int or a fastconv.optim optimiser, got "
        f"{type(optimizer).__name__}")


def _model_dtype(model):
    for arr in model.params.values():
        return arr.dtype
    return np.dtype(np.float32)


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _axes_text(values):
    return "x".join(str(v) for v in values)


def _same_or_axes(values):
    return str(values[0]) if len(set(values)) == 1 else _axes_text(values)


_CONVS = (_layers.Conv1d, _layers.Conv2d, _layers.Conv3d)


def _kind(layer, geometry):
    """Row label: the class name, then for a windowed layer (a tuple
    geometry, any number of axes) its window ``3x3``, stride ``s2`` (always
    for parameter-free windows, only when not 1 for layers with weights),
    dilation ``d2x2`` when not 1 and an Lp pool's ``p=2``."""
    name = type(layer).__name__
    if not isinstance(geometry, tuple):
        return name
    kernel, stride, _, dilation = zip(*geometry)
    text = f"{name} {_axes_text(kernel)}"
    if not layer.params or any(v != 1 for v in stride):
        text += f" s{_same_or_axes(stride)}"
    if any(v != 1 for v in dilation):
        text += f" d{_axes_text(dilation)}"
    if isinstance(layer, (_layers.LPPool1d, _layers.LPPool2d)):
        text += f" p={float(layer.norm_type):g}"
    return text


# ---------------------------------------------------------------------------
# number of spatial axes of the model's input
# ---------------------------------------------------------------------------
# Layers that fix the input rank without a window (BatchNorm2d and global
# pooling need (N, C, H, W); Linear needs (N, features)).
_FIXED_RANK = ((_layers.BatchNorm2d, 2), (_layers.GlobalAvgPool2d, 2),
               (_layers.Linear, 0))

_LAYOUTS = {0: "F", 1: "C, L", 2: "C, H, W", 3: "C, D, H, W"}


def _layout(n):
    return _LAYOUTS.get(n) or "C, " + ", ".join(f"X{i}" for i in range(1, n + 1))


def _leaves(layer, name):
    """(name, layer) of the layers summary() traces, in forward order."""
    if isinstance(layer, (_layers.Sequential, _layers.Residual)):
        for cname, child in layer._children.items():
            yield from _leaves(child, _join(name, cname))
    else:
        yield name or "model", layer


def _spatial_axes(model):
    """(n, name, layer): the number of spatial axes the model's input has,
    fixed by its first layer (in forward order) that fixes the rank: a
    windowed layer (n = the length of its geometry), BatchNorm2d or global
    pooling (2), Linear (0).  n is None when a Flatten or only rank-free
    layers (ReLU, Dropout, ...) come first: then any rank fits."""
    for name, layer in _leaves(model, ""):
        if isinstance(layer, _layers.Flatten):
            return None, name, layer
        try:
            geometry = layer._rf_geometry()
        except NotImplementedError:
            geometry = None
        if isinstance(geometry, tuple):
            return len(geometry), name, layer
        for cls, n in _FIXED_RANK:
            if isinstance(layer, cls):
                return n, name, layer
    return None, None, None


def _split_batch(model, shape):
    """(full shape, per_image, n) for summary's input_shape, or ValueError."""
    n, name, layer = _spatial_axes(model)
    if n is None:
        return shape, False, None
    if len(shape) == n + 1:
        return (1,) + shape, True, n
    if len(shape) == n + 2:
        return shape, False, n
    if any(isinstance(layer, cls) for cls, _ in _FIXED_RANK):
        why = (f"a model whose first layer that fixes the input rank is "
               f"{name}: {layer!r}")
    else:
        why = f"a model whose first windowed layer is {name}: {layer!r}"
    raise ValueError(
        f"summary: input_shape must be ({_layout(n)}) for one sample or "
        f"(N, {_layout(n)}) with the batch first, for {why}; got "
        f"{shape} ({len(shape)} dimensions)")


def _step(state, geometry):
    """Field state after a layer; summary's states add "?" (unknown) and
    "-" (no spatial axes)."""
    if state == "-":
        return "-"
    if geometry == "global":
        return "global"
    if state in ("?", "global"):
        return state
    if geometry == "?":
        return "?"
    return _rf.compose(state, geometry)


def _merge(a, b):
    for mark in ("global", "?", "-"):
        if mark in (a, b):
            return mark
    return _rf.union(a, b)


class _Tracer:
    def __init__(self, itemsize, per_image):
        self.itemsize = itemsize
        self.per_image = per_image
        self.rows = []
        self.im2col = (0, None, None)

    def row(self, name, kind, shape, params, in_place, state):
        if isinstance(state, tuple):
            size = tuple(s for s, _, _ in state)
            jump = tuple(j for _, j, _ in state)
        else:
            size = jump = state
        n = math.prod(shape)
        shown = shape[1:] if self.per_image else shape
        self.rows.append(LayerRow(
            name, kind, tuple(shown), int(params), int(n),
            0 if in_place else int(n) * self.itemsize, bool(in_place),
            size, jump))

    def trace(self, layer, name, shape, state):
        if isinstance(layer, _layers.Sequential):
            layer._shape_arg(shape)
            for cname, child in layer._children.items():
                shape, state = self.trace(child, _join(name, cname), shape,
                                          state)
            return shape, state
        if isinstance(layer, _layers.Residual):
            layer._shape_arg(shape)
            y, sb = self.trace(layer.body, _join(name, "body"), shape, state)
            if layer.shortcut is None:
                s, ss = shape, state
            else:
                s, ss = self.trace(layer.shortcut, _join(name, "shortcut"),
                                   shape, state)
            layer._check_add(y, s)
            state = _merge(sb, ss)
            self.row(name or "model", "Residual (add)", y, 0, False, state)
            return y, state
        try:
            out = tuple(layer.output_shape(shape))
        except (ValueError, TypeError) as exc:
            # Say where the model breaks.
            raise type(exc)(
                f"summary: layer {name or 'model'} ({type(layer).__name__}): "
                f"{exc}") from exc
        try:
            geometry = layer._rf_geometry()
        except NotImplementedError:
            geometry = "?"
        state = _step(state, geometry)
        if isinstance(layer, _CONVS):
            # C*prod(kernel) rows, one column per output position of every
            # sample: N*prod(output spatial sizes).
            rows = layer.in_channels * math.prod(layer.kernel_size)
            cols = out[0] * math.prod(out[2:])
            nbytes = rows * cols * self.itemsize
            if nbytes > self.im2col[0]:
                self.im2col = (nbytes, name or "model", (rows, cols))
        params = sum(a.size for a in layer.params.values())
        self.row(name or "model", _kind(layer, geometry), out, params,
                 getattr(layer, "_summary_in_place", False), state)
        return out, state


def _human(nbytes):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _rf_text(value):
    return _same_or_axes(value) if isinstance(value, tuple) else value


def _shape_text(shape):
    return "x".join(str(v) for v in shape) if shape else "()"


class Summary:
    """What :func:`summary` returns: rows and totals; prints as a table.

    Attributes
    ----------
    rows : list of LayerRow
        ``rows[0]`` is the input.
    model_name : str
    input_shape : tuple of int
        As given.
    per_image : bool
        True when input_shape was one sample (``(C, H, W)`` for a 2-D
        model, ``(C, L)`` 1-D, ``(C, D, H, W)`` 3-D, ``(F,)`` an MLP):
        figures for one sample, shapes without the batch dimension.
    spatial_axes : int or None
        The model's number of spatial axes (0 for an MLP); None when its
        layers do not fix the input rank (input_shape is then the full
        shape).
    dtype : numpy.dtype
    optimizer : str
        Description of the optimiser.
    optimizer_slots : int
        Arrays of the parameters' size the optimiser keeps.
    params, param_bytes : int
    activations, activation_bytes : int
        The counted rows (input included, "not counted" rows excluded).
    inference_bytes : int
        ``activation_bytes + param_bytes``.
    training_bytes : int
        ``2 * activation_bytes + (2 + optimizer_slots) * param_bytes``.
    im2col_bytes : int
        The largest full im2col column matrix of a convolution
        (:class:`~fastconv.layers.Conv1d`, ``Conv2d`` or ``Conv3d``) in the
        model, 0 without convolutions: ``C*prod(kernel_size)`` rows by
        ``N*prod(output spatial sizes)`` columns, what a naive im2col (1-D)
        / vol2col (3-D) + GEMM convolution would allocate.  fastconv never
        forms it (its GEMM packs small blocks; Conv3d unfolds tiles of at
        most 8 MiB).
    im2col_layer : str or None
        Its row name.
    im2col_shape : (int, int) or None
        Its (rows, columns).
    """

    def __init__(self, model_name, input_shape, per_image, dtype, optimizer,
                 slots, rows, im2col, spatial_axes=None):
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.per_image = per_image
        self.spatial_axes = spatial_axes
        self.dtype = dtype
        self.optimizer = optimizer
        self.optimizer_slots = slots
        self.rows = rows
        self.params = sum(r.params for r in rows)
        self.param_bytes = self.params * dtype.itemsize
        self.activations = sum(r.activations for r in rows if not r.in_place)
        self.activation_bytes = sum(r.activation_bytes for r in rows)
        self.inference_bytes = self.activation_bytes + self.param_bytes
        self.training_bytes = (2 * self.activation_bytes
                               + (2 + slots) * self.param_bytes)
        self.im2col_bytes, self.im2col_layer, self.im2col_shape = im2col

    # -------------------------------------------------------------- tools
    def to_dict(self) -> dict[str, Any]:
        """Rows and totals as plain Python types (lists, ints, strs).

        Returns
        -------
        dict
            ``{"model", "input_shape", "per_image", "spatial_axes",
            "dtype", "optimizer", "optimizer_slots", "layers": [row dicts],
            "totals": {...}}``; tuples become lists.
        """
        def plain(v):
            return list(v) if isinstance(v, tuple) else v

        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "per_image": self.per_image,
            "spatial_axes": self.spatial_axes,
            "dtype": self.dtype.name,
            "optimizer": self.optimizer,
            "optimizer_slots": self.optimizer_slots,
            "layers": [{k: plain(v) for k, v in r._asdict().items()}
                       for r in self.rows],
            "totals": {
                "params": self.params,
                "param_bytes": self.param_bytes,
                "activations": self.activations,
                "activation_bytes": self.activation_bytes,
                "inference_bytes": self.inference_bytes,
                "training_bytes": self.training_bytes,
                "im2col_bytes": self.im2col_bytes,
                "im2col_layer": self.im2col_layer,
                "im2col_shape": plain(self.im2col_shape),
            },
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (``kwargs`` go to ``json.dumps``,
        default ``indent=2``).

        Returns
        -------
        str
        """
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    # -------------------------------------------------------------- text
    def __str__(self):
        head = ("Layer", "Type", "Output shape", "Params", "Activations",
                "Memory", "RF", "Jump")
        body = []
        for r in self.rows:
            body.append((
                r.name, r.kind, _shape_text(r.output_shape), f"{r.params:,}",
                f"{r.activations:,}",
                "not counted" if r.in_place else _human(r.activation_bytes),
                _rf_text(r.rf_size), _rf_text(r.rf_jump)))
        widths = [max(len(row[i]) for row in [head] + body)
                  for i in range(len(head))]
        left = {0, 1, 2}

        def fmt(row):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths)))

        rule = "-" * len(fmt(head))
        one = {1: "one sequence", 2: "one image", 3: "one volume"}
        scope = (one.get(self.spatial_axes, "one sample") if self.per_image
                 else f"a batch of {self.input_shape[0]}")
        dt = self.dtype.name
        lines = [
            f"{self.model_name} on input {_shape_text(self.input_shape)} "
            f"({scope}), {dt}",
            rule, fmt(head), rule, *map(fmt, body), rule,
            f"Parameters:        {self.params:>14,}   "
            f"{_human(self.param_bytes)}",
            f"Activations:       {self.activations:>14,}   "
            f"{_human(self.activation_bytes)}   (forward; 'not counted' "
            f"rows left out)",
            f"Inference memory:  {_human(self.inference_bytes):>14}   "
            f"(activations + parameters)",
            f"Training memory:   {_human(self.training_bytes):>14}   "
            f"(2 x activations + (2 + {self.optimizer_slots}) x parameters; "
            f"optimiser: {self.optimizer})",
        ]
        if any(r.in_place for r in self.rows):
            lines.append(
                "Not counted:       (the notes fold ReLU into the CONV row; "
                "fastconv's ReLU allocates its output, as Dropout does; "
                "Flatten is a view)")
        if self.im2col_layer is not None:
            rows, cols = self.im2col_shape
            lines.append(
                f"Largest im2col:    {_human(self.im2col_bytes):>14}   "
                f"(layer {self.im2col_layer}'s full column matrix, {rows:,} "
                f"x {cols:,}; fastconv never builds it)")
        return "\n".join(lines)

    def __repr__(self):
        return str(self)


def summary(model: Model, input_shape: Shape, dtype: DTypeLike | None = None,
            optimizer: Any = None) -> Summary:
    """Per-layer table and memory totals of a model, from shapes alone.

    Parameters
    ----------
    model : fastconv.layers.Layer
        Any layer or container; every layer in it must implement
        ``output_shape`` (a layer without ``_rf_geometry`` shows "?" as its
        receptive field).
    input_shape : tuple of int
        One sample or the full input with the batch first, told apart by
        the model's number of spatial axes n, which its first layer that
        fixes the input rank gives (in forward order): a windowed layer
        (convolution or pooling: n = its number of axes; Conv1d 1, Conv2d
        2, Conv3d 3), BatchNorm2d or global pooling (2), Linear (an MLP,
        0).  Then ``n + 1`` ints are one sample (the notes' "per image"):
        ``(C, L)``, ``(C, H, W)``, ``(C, D, H, W)`` or ``(F,)``, figures for
        one sample and the batch left out of the printed shapes; ``n + 2``
        ints include the batch, ``(N, C, H, W)`` etc., and the figures are
        for that batch.  When a Flatten or only rank-free layers (ReLU,
        Dropout) come before any such layer, any rank fits and input_shape
        is the full shape, batch included (``(1, 3, 32, 32)`` for one
        image).
    dtype : NumPy dtype or None
        Dtype of activations and parameters; None: the model's parameter
        dtype (float32 for a model without parameters).
    optimizer : None, "sgd", "momentum", "adam", int or optimiser
        Slots per parameter in the training total: None / "sgd" 0,
        "momentum" (SGD with momentum) 1, "adam" 2, an int that many; or a
        ``fastconv.optim.SGD`` / ``Adam`` instance.

    Returns
    -------
    Summary
        ``print(s)`` shows the table; ``s.to_dict()``, ``s.to_json()``.

    Raises
    ------
    ValueError
        input_shape has neither n + 1 nor n + 2 dimensions (the message
        names the shapes accepted and the layer that fixes n); the input
        shape does not fit the model (the error its forward would raise);
        an unknown optimizer name.
    TypeError
        model is not a Layer, input_shape not a tuple of ints, or a bad
        dtype / optimizer.
    NotImplementedError
        A layer in the model does not implement ``output_shape``.

    Examples
    --------
    >>> from fastconv.models import vgg16
    >>> s = summary(vgg16(rng=0), (3, 224, 224), optimizer="adam")  # doctest: +SKIP
    >>> s.params, s.activations                                      # doctest: +SKIP
    (138357544, 15237608)
    >>> from fastconv import layers as L
    >>> net = L.Sequential(L.Conv1d(2, 8, 5, rng=0), L.ReLU(), L.MaxPool1d(2))
    >>> s = summary(net, (2, 64))              # one sequence: (C, L)
    >>> s.rows[-1].kind, s.rows[-1].output_shape, s.rows[-1].rf_size
    ('MaxPool1d 2 s2', (8, 30), (6,))
    >>> summary(net, (4, 2, 64)).rows[-1].output_shape     # a batch of 4
    (4, 8, 30)
    """
    if not isinstance(model, _layers.Layer):
        raise TypeError(
            f"summary: model must be a fastconv.layers.Layer, got "
            f"{type(model).__name__}")
    shape = _v.check_shape(input_shape, "input_shape", "summary")
    full, per_image, n = _split_batch(model, shape)
    try:
        dt = np.dtype(_model_dtype(model) if dtype is None else dtype)
    except TypeError:
        raise TypeError(
            f"summary: dtype must be a NumPy dtype, got {dtype!r}") from None
    slots, opt_name = _optimizer_slots(optimizer)
    tracer = _Tracer(dt.itemsize, per_image)
    axes = n if n is not None else len(full) - 2
    state = ((1, 1, 0),) * axes if axes > 0 else "-"
    tracer.row("input", "", full, 0, False, state)
    try:
        tracer.trace(model, "", full, state)
    except ValueError as exc:
        if n is not None:
            raise
        raise ValueError(
            f"{exc} (summary: this model's layers do not fix the input rank, "
            f"so input_shape {shape} was taken as the full shape with the "
            f"batch first)") from exc
    return Summary(type(model).__name__, shape, per_image, dt, opt_name,
                   slots, tracer.rows, tracer.im2col, n)
