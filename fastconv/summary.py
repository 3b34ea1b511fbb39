"""Model summary: the cs231n notes' VGG-16 table for any fastconv model.

:func:`summary` (also ``model.summary(input_shape)`` on every layer) lists,
layer by layer, the output shape, the parameters, the activations (values
and bytes) and the receptive field (size and jump in input pixels), then the
memory totals for inference and training.  It uses only the shape protocol
(``output_shape`` and ``_rf_geometry``): nothing is run and no input array
is needed.

How memory is counted (the notes' way)
--------------------------------------
* Activations: the input plus every layer's output, once.  Rows of layers
  that can run in place or are views (``ReLU``, ``Dropout``, ``Flatten``) are
  listed but not added, as the notes fold each ReLU into its CONV row.  A
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

import numpy as np

from . import _validation as _v
from . import layers as _layers
from . import shapes as _shapes

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
    Layer type and geometry, e.g. ``"Conv2d 3x3"``, ``"MaxPool2d 2x2 s2"``.
output_shape : tuple of int
    Without the batch dimension for a per-image summary.
params : int
    The layer's own parameters (a Residual's sum row: 0).
activations : int
    Values in the output.
activation_bytes : int
    Their bytes; 0 for in-place rows.
in_place : bool
    True for views / in-place layers (not counted in the totals).
rf_size, rf_jump : (int, int), "global", "?" or "-"
    Receptive field of one output value in input pixels and the distance
    between neighbouring outputs; "global": every value sees the whole
    input; "?": a layer without declared geometry came before; "-": the
    input has no spatial axes.
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
    if _v._is_int(optimizer) and optimizer >= 0:
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


def _dims(value):
    h, w = _v.pair(value, "value", "summary")
    return f"{h}x{w}"


def _kind(layer):
    name = type(layer).__name__
    if isinstance(layer, _layers.Conv2d):
        text = f"{name} {_dims(layer.kernel_size)}"
        if layer.stride != (1, 1):
            text += " s" + (str(layer.stride[0]) if layer.stride[0] ==
                            layer.stride[1] else _dims(layer.stride))
        if layer.dilation != (1, 1):
            text += f" d{_dims(layer.dilation)}"
        return text
    if isinstance(layer, (_layers.MaxPool2d, _layers.AvgPool2d)):
        s = _v.pair(layer.stride, "stride", name)
        return (f"{name} {_dims(layer.kernel_size)} s"
                + (str(s[0]) if s[0] == s[1] else _dims(s)))
    return name


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
    return _shapes._compose(state, geometry)


def _merge(a, b):
    for mark in ("global", "?", "-"):
        if mark in (a, b):
            return mark
    return _shapes._union(a, b)


class _Tracer:
    def __init__(self, itemsize, per_image):
        self.itemsize = itemsize
        self.per_image = per_image
        self.rows = []
        self.im2col = (0, None)

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
        out = tuple(layer.output_shape(shape))
        try:
            geometry = layer._rf_geometry()
        except NotImplementedError:
            geometry = "?"
        state = _step(state, geometry)
        if isinstance(layer, _layers.Conv2d):
            nbytes = self.itemsize * _shapes.im2col_bytes(
                shape, layer.kernel_size, layer.stride, layer.padding,
                layer.dilation, dtype=np.uint8)
            if nbytes > self.im2col[0]:
                self.im2col = (nbytes, name or "model")
        params = sum(a.size for a in layer.params.values())
        self.row(name or "model", _kind(layer), out, params,
                 getattr(layer, "_summary_in_place", False), state)
        return out, state


def _human(nbytes):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _rf_text(value):
    if isinstance(value, tuple):
        return str(value[0]) if value[0] == value[1] else _dims(value)
    return value


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
        True when input_shape was (C, H, W): figures for one image, shapes
        without the batch dimension.
    dtype : numpy.dtype
    optimizer : str
        Description of the optimiser.
    optimizer_slots : int
        Arrays of the parameters' size the optimiser keeps.
    params, param_bytes : int
    activations, activation_bytes : int
        The counted rows (input included, in-place rows excluded).
    inference_bytes : int
        ``activation_bytes + param_bytes``.
    training_bytes : int
        ``2 * activation_bytes + (2 + optimizer_slots) * param_bytes``.
    im2col_bytes : int
        The largest full im2col column matrix of a Conv2d in the model
        (0 without convolutions): what a naive im2col convolution would
        allocate, and fastconv does not.
    im2col_layer : str or None
        Its row name.
    """

    def __init__(self, model_name, input_shape, per_image, dtype, optimizer,
                 slots, rows, im2col):
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.per_image = per_image
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
        self.im2col_bytes, self.im2col_layer = im2col

    # -------------------------------------------------------------- tools
    def to_dict(self):
        """Rows and totals as plain Python types (lists, ints, strs).

        Returns
        -------
        dict
            ``{"model", "input_shape", "per_image", "dtype", "optimizer",
            "optimizer_slots", "layers": [row dicts], "totals": {...}}``.
        """
        def plain(v):
            return list(v) if isinstance(v, tuple) else v

        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "per_image": self.per_image,
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
            },
        }

    def to_json(self, **kwargs):
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
                "in place" if r.in_place else _human(r.activation_bytes),
                _rf_text(r.rf_size), _rf_text(r.rf_jump)))
        widths = [max(len(row[i]) for row in [head] + body)
                  for i in range(len(head))]
        left = {0, 1, 2}

        def fmt(row):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths)))

        rule = "-" * len(fmt(head))
        scope = ("one image" if self.per_image else
                 f"a batch of {self.input_shape[0]}")
        dt = self.dtype.name
        lines = [
            f"{self.model_name} on input {_shape_text(self.input_shape)} "
            f"({scope}), {dt}",
            rule, fmt(head), rule, *map(fmt, body), rule,
            f"Parameters:        {self.params:>14,}   "
            f"{_human(self.param_bytes)}",
            f"Activations:       {self.activations:>14,}   "
            f"{_human(self.activation_bytes)}   (forward; 'in place' rows "
            f"not counted)",
            f"Inference memory:  {_human(self.inference_bytes):>14}   "
            f"(activations + parameters)",
            f"Training memory:   {_human(self.training_bytes):>14}   "
            f"(2 x activations + (2 + {self.optimizer_slots}) x parameters; "
            f"optimiser: {self.optimizer})",
        ]
        if self.im2col_layer is not None:
            lines.append(
                f"Largest im2col:    {_human(self.im2col_bytes):>14}   "
                f"(layer {self.im2col_layer}'s full column matrix; fastconv "
                f"never builds it)")
        return "\n".join(lines)

    def __repr__(self):
        return str(self)


def summary(model, input_shape, dtype=None, optimizer=None):
    """Per-layer table and memory totals of a model, from shapes alone.

    Parameters
    ----------
    model : fastconv.layers.Layer
        Any layer or container; every layer in it must implement
        ``output_shape`` (a layer without ``_rf_geometry`` shows "?" as its
        receptive field).
    input_shape : tuple of int
        ``(C, H, W)``: figures for one image (the notes' "per image"), the
        batch dimension left out of the printed shapes.  Any other length is
        the full input shape with the batch first, ``(N, C, H, W)`` or
        ``(N, features)``, and the figures are for that batch.
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
        The input shape does not fit the model (the error its forward
        would raise), or an unknown optimizer name.
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
    """
    if not isinstance(model, _layers.Layer):
        raise TypeError(
            f"summary: model must be a fastconv.layers.Layer, got "
            f"{type(model).__name__}")
    shape = _v.check_shape(input_shape, "input_shape", "summary")
    per_image = len(shape) == 3
    full = (1,) + shape if per_image else shape
    try:
        dt = np.dtype(_model_dtype(model) if dtype is None else dtype)
    except TypeError:
        raise TypeError(
            f"summary: dtype must be a NumPy dtype, got {dtype!r}") from None
    slots, opt_name = _optimizer_slots(optimizer)
    tracer = _Tracer(dt.itemsize, per_image)
    state = ((1, 1, 0), (1, 1, 0)) if len(full) == 4 else "-"
    tracer.row("input", "", full, 0, False, state)
    tracer.trace(model, "", full, state)
    return Summary(type(model).__name__, shape, per_image, dt, opt_name,
                   slots, tracer.rows, tracer.im2col)
