"""Layers: stateful building blocks with explicit ``forward`` / ``backward``.

A layer holds its parameters and their gradients in dicts of NumPy arrays,
named as in :mod:`torch.nn` (``weight``, ``bias``; containers prefix their
children's names: ``"0.weight"``, ``"2.body.0.weight"``), so weights move to
and from a PyTorch ``state_dict`` by name.  All the arithmetic runs in the
kernels of :mod:`fastconv.functional` (or, after ``set_backend("reference")``,
their pure-NumPy twins in :mod:`fastconv.reference`), :class:`Linear`
included (fastconv's GEMM micro-kernels, no BLAS threads).

Speed, without changing any result beyond rounding:

* :class:`Sequential` fuses, by itself, a ReLU into the layer before it
  (Conv2d's and Linear's output tiles, BatchNorm2d's pass, a residual
  add), and in eval mode folds a BatchNorm2d into the Conv2d before it
  (refolded whenever the weights or statistics change).
* Conv2d keeps its convolution plan and packed (Winograd-transformed or
  GEMM-panel) filters while its weights are unchanged.
* Outputs and gradients come from a small pool of buffers, reused across
  calls: an array returned to you is never written by a later call (a
  buffer is reused only once nothing outside the layers refers to it).
* Inside :func:`no_grad` nothing is kept for the backward pass, so
  inference reuses a few buffers for the whole network.

Conventions
-----------
* ``y = layer(x)`` (or ``layer.forward(x)``) caches what ``backward`` needs;
  ``layer.backward(grad_y)`` returns ``grad_x`` and **adds** the parameter
  gradients into ``layer.grads`` in place, as PyTorch accumulates into
  ``.grad``: call ``zero_grad()`` (or an optimiser's) before each backward
  pass.  Each backward uses the most recent forward.
* ``train()`` / ``eval()`` switch :class:`BatchNorm2d` and :class:`Dropout`
  between batch and running behaviour; both return the layer.
* Parameters are float32 or float64 (``dtype=`` at construction, or
  :meth:`Layer.to`); inputs must have the parameters' dtype.

Examples
--------
>>> import numpy as np
>>> from fastconv import layers as L
>>> model = L.Sequential(L.Conv2d(1, 4, 3, padding=1, rng=0), L.ReLU(),
...                      L.MaxPool2d(2), L.Flatten(), L.Linear(16, 3, rng=0))
>>> x = np.ones((2, 1, 4, 4), dtype=np.float32)
>>> model(x).shape
(2, 3)
>>> model.zero_grad(); gx = model.backward(np.ones((2, 3), np.float32))
>>> sorted(model.params)
['0.bias', '0.weight', '4.bias', '4.weight']
"""

import contextlib
import math
import os
import sys
import threading
import zipfile
import zlib
from collections import namedtuple

import numpy as np

from . import _convplan
from . import _receptive_field as _rf
from . import _validation as _v
from . import functional as _functional
from . import reference as _reference
from ._buffers import BufferPool as _BufferPool

__all__ = [
    # the base class and what all layers share
    "Layer", "LoadResult", "no_grad",
    # containers
    "Sequential", "Residual", "basic_block",
    # convolution
    "Conv1d", "Conv2d", "Conv3d",
    # locally connected (unshared) convolution
    "LocallyConnected2d",
    # max pooling
    "MaxPool1d", "MaxPool2d", "MaxPool3d",
    # average pooling
    "AvgPool1d", "AvgPool2d", "AvgPool3d",
    # Lp-norm pooling
    "LPPool1d", "LPPool2d",
    # global average pooling
    "GlobalAvgPool2d", "AdaptiveAvgPool2d",
    # batch normalisation
    "BatchNorm2d",
    # activation, reshaping, dropout
    "ReLU", "Flatten", "Dropout",
    # fully connected
    "Linear",
]


# ---- shared state and helpers --------------------------------------------

_BACKENDS = {"fastconv": _functional, "reference": _reference}

LoadResult = namedtuple("LoadResult", "missing_keys unexpected_keys")
LoadResult.__doc__ = """What :meth:`Layer.load_state_dict` did not match.

Attributes
----------
missing_keys : list of str
    Model entries absent from the state dict (left unchanged).
unexpected_keys : list of str
    State-dict entries the model has no place for (ignored).
"""


class _CallState(threading.local):
    depth = 0           # forward/backward calls in progress on this thread
    pool = None         # the outermost layer's buffer pool, shared below it
    no_grad = False     # inside no_grad(): forward keeps nothing for backward
    spent = None        # a gradient the caller no longer needs (see _grad_out_buffer)


_calls = _CallState()


def _sole_count():
    a = np.empty(1)
    return sys.getrefcount(a)


# sys.getrefcount of an array held by one local variable only (the
# interpreter decides; measured in the code shape of Sequential._backward).
_SOLE = _sole_count()

# What a layer's cache holds after a forward under no_grad().
_NO_GRAD = "no_grad"


@contextlib.contextmanager
def no_grad():
    """Run forward passes for inference only, as ``torch.no_grad()``.

    Inside the block, layers keep nothing for :meth:`Layer.backward` (which
    then raises), so each intermediate array is free for reuse as soon as
    the next layer has read it: inference touches a few arrays' worth of
    memory instead of every layer's output.  Results are the same.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> model = L.Sequential(L.Linear(4, 2, rng=0), L.ReLU()).eval()
    >>> with L.no_grad():
    ...     y = model(np.ones((3, 4), np.float32))
    >>> y.shape
    (3, 2)
    """
    before = _calls.no_grad
    _calls.no_grad = True
    try:
        yield
    finally:
        _calls.no_grad = before


def _check_dtype(dtype, op):
    dt = np.dtype(dtype)
    if dt not in _v.SUPPORTED_DTYPES:
        raise TypeError(f"{op}: dtype must be float32 or float64, got {dt}")
    return dt


def _indent(text):
    lines = text.split("\n")
    return "\n".join(lines[:1] + ["  " + line for line in lines[1:]])


# ---- the base class ------------------------------------------------------
# Each layer implements the shape protocol used by model.summary():
# ``output_shape(input_shape)`` (the forward output's shape, raising the
# ValueError forward would, computing nothing) and ``_rf_geometry()`` (one
# ``(kernel_size, stride, padding_before, dilation)`` per spatial axis, or
# ``"global"``).

class Layer:
    """Base class of every layer and container.

    Subclasses implement ``_forward(x) -> y`` (storing what the backward
    pass needs in ``self._cache``) and ``_backward(grad_y) -> grad_x``
    (adding parameter gradients into ``self._grads``); :meth:`forward` and
    :meth:`backward` wrap them with the checks shared by all layers.

    Attributes
    ----------
    training : bool
        True in training mode (the default), False after :meth:`eval`.
    """

    def __init__(self):
        self._params = {}
        self._grads = {}
        self._buffers = {}
        self._children = {}
        self._backend = "fastconv"
        self.training = True
        self._reset_transient()

    # ----------------------------------------------------------- pickling
    # Attributes that only carry what calls derived (caches for the
    # backward, the reused buffers, kernel plans and packed weights): pickle
    # and copy.deepcopy leave them out and they start empty again.  A
    # subclass names its own in a ``_transient`` tuple of its own (the tuples
    # of every class in the MRO count) and sets their empty values in
    # _reset_transient.
    _transient = ("_cache", "_out_meta", "_pool")

    def _transient_names(self):
        return {name for cls in type(self).__mro__
                for name in cls.__dict__.get("_transient", ())}

    def _reset_transient(self):
        for name in self._transient_names():
            setattr(self, name, None)
        self._pool = _BufferPool()      # arrays reused from call to call

    def __getstate__(self):
        drop = self._transient_names()
        return {k: v for k, v in self.__dict__.items() if k not in drop}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset_transient()

    # ---------------------------------------------------------------- run
    @property
    def _kernels(self):
        return _BACKENDS[self._backend]

    def forward(self, x):
        """Compute the layer's output and cache what :meth:`backward` needs.

        Parameters
        ----------
        x : ndarray, dtype float32 or float64
            The input; its required shape is given by each layer.

        Returns
        -------
        y : ndarray, dtype of x
        """
        if not isinstance(x, np.ndarray):
            raise TypeError(
                f"{self._name()}: input must be a numpy.ndarray, got "
                f"{type(x).__name__}"
            )
        if _calls.depth:
            return self._call(x)
        # a new forward pass from the top: what the previous one cached is
        # dead, and dropping it frees its arrays for reuse
        for layer in self._walk():
            layer._cache = None
            layer._out_meta = None
        return self._outermost(self._call, x)

    def _outermost(self, run, arg):
        """run(arg) with this layer's buffer pool shared by all below it."""
        _calls.pool = self._pool
        try:
            return run(arg)
        finally:
            _calls.pool = None

    def _buffer(self, shape, dtype):
        """A reusable array for an output or gradient (see _buffers.py)."""
        return (_calls.pool or self._pool).take(shape, dtype)

    def _call(self, x, **fuse):
        """forward(x), or a fused form of it chosen by the parent (see
        Sequential): ``relu=True`` applies the ReLU that follows the layer,
        ``bn=layer`` (eval mode) the BatchNorm2d that follows a convolution."""
        if x.dtype not in _v.SUPPORTED_DTYPES:
            raise TypeError(
                f"{self._name()}: input must have dtype float32 or float64, "
                f"got {x.dtype} (shape {x.shape})"
            )
        self._cache = None
        self._out_meta = None
        _calls.depth += 1
        try:
            y = self._forward(x, **fuse)
        finally:
            _calls.depth -= 1
        if _calls.no_grad:
            self._cache = _NO_GRAD
        else:
            self._out_meta = (y.shape, y.dtype)
        return y

    def __call__(self, x):
        return self.forward(x)

    def backward(self, grad_out):
        """Back-propagate through the most recent :meth:`forward`.

        Parameters
        ----------
        grad_out : ndarray of the forward output's shape and dtype
            Gradient of the loss with respect to the layer's output.

        Returns
        -------
        grad_x : ndarray of the forward input's shape and dtype
            Gradient of the loss with respect to the layer's input.  The
            parameter gradients are added into :attr:`grads` in place.

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not run (or failed).
        TypeError, ValueError
            If grad_out's dtype or shape differs from the forward output's.
        """
        if self._out_meta is None:
            if self._cache is _NO_GRAD:
                raise RuntimeError(
                    f"{self._name()}: backward() after a forward under "
                    f"fastconv.layers.no_grad(), which keeps nothing for it; "
                    f"run forward(x) outside no_grad() first"
                )
            raise RuntimeError(
                f"{self._name()}: backward() called before forward(); run "
                f"forward(x) first, backward() uses what it cached"
            )
        shape, dtype = self._out_meta
        if not isinstance(grad_out, np.ndarray):
            raise TypeError(
                f"{self._name()}: grad_out must be a numpy.ndarray, got "
                f"{type(grad_out).__name__}"
            )
        if grad_out.shape != shape:
            raise ValueError(
                f"{self._name()}: grad_out must have the forward output's "
                f"shape {shape}, got shape {grad_out.shape}"
            )
        if grad_out.dtype != dtype:
            raise TypeError(
                f"{self._name()}: grad_out must have the forward output's "
                f"dtype {dtype}, got {grad_out.dtype}"
            )
        # a gradient the parent will not read again may be overwritten
        self._spent_grad = grad_out if _calls.spent is grad_out else None
        _calls.spent = None
        try:
            if _calls.depth:
                return self._backward(grad_out)
            _calls.depth += 1
            try:
                return self._outermost(self._backward, grad_out)
            finally:
                _calls.depth -= 1
        finally:
            self._spent_grad = None

    def _grad_out_buffer(self, grad_out):
        """Where a gradient computed from grad_out alone may go: grad_out
        itself when the parent (a Sequential, passing one child's gradient
        to the next) will not read it again, else a pool buffer.  Saves an
        array of the activations' size per fused ReLU or BatchNorm."""
        if (getattr(self, "_spent_grad", None) is grad_out
                and self._backend == "fastconv"):
            return grad_out
        return self._buffer(grad_out.shape, grad_out.dtype)

    # True in a class whose _forward takes relu=True (the following ReLU,
    # fused); not inherited: each class that can says so itself
    _fuses_relu = False

    def _forward(self, x):
        raise NotImplementedError

    def _backward(self, grad_out):
        raise NotImplementedError

    def _check_param_dtype(self, x):
        if x.dtype != self.dtype:
            raise TypeError(
                f"{self._name()}: input has dtype {x.dtype} but the layer's "
                f"parameters are {self.dtype}; convert the input with "
                f"x.astype(np.{self.dtype}) or the layer with "
                f"layer.to(np.{x.dtype})"
            )

    # ------------------------------------------------------ shape protocol
    def output_shape(self, input_shape):
        """The shape :meth:`forward` returns for an input of ``input_shape``.

        Pure shape arithmetic: nothing is allocated or computed.

        Parameters
        ----------
        input_shape : tuple of int
            The full input shape, batch included, e.g. ``(N, C, H, W)``.

        Returns
        -------
        tuple of int

        Raises
        ------
        ValueError
            The ValueError :meth:`forward` would raise for such an input.
        TypeError
            input_shape is not a tuple of non-negative ints.
        NotImplementedError
            The layer class does not implement the shape protocol.

        Examples
        --------
        >>> from fastconv import layers as L
        >>> L.Conv2d(3, 8, 3, stride=2, rng=0).output_shape((4, 3, 32, 32))
        (4, 8, 15, 15)
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement output_shape("
            f"input_shape), needed by summary() and the shape calculators; "
            f"see fastconv.layers.Layer.output_shape"
        )

    def _rf_geometry(self):
        """Receptive-field geometry: None (element-wise), "global" (every
        output sees the whole input) or one ``(kernel, stride, pad_before,
        dilation)`` tuple of ints per spatial axis.  The default raises:
        an undeclared geometry is unknown, never assumed element-wise."""
        raise NotImplementedError(
            f"{type(self).__name__} does not declare its receptive-field "
            f"geometry (_rf_geometry)"
        )

    def _shape_arg(self, input_shape):
        return _v.check_shape(input_shape, "input_shape",
                              f"{self._name()}.output_shape")

    def summary(self, input_shape, dtype=None, optimizer=None):
        """Per-layer shapes, parameters, activations and receptive fields.

        See :func:`fastconv.summary.summary`; nothing is run.

        Parameters
        ----------
        input_shape : tuple of int
            One sample (per-sample figures) or the full input shape with
            the batch first, told apart by the model's number of spatial
            axes n: ``(C, L)`` / ``(N, C, L)`` for a 1-D model, ``(C, H,
            W)`` / ``(N, C, H, W)`` 2-D, ``(C, D, H, W)`` / ``(N, C, D, H,
            W)`` 3-D, ``(F,)`` / ``(N, F)`` an MLP (see
            :func:`fastconv.summary.summary`).
        dtype : NumPy dtype or None
            Dtype of activations and parameters (None: the model's).
        optimizer : None, "sgd", "momentum", "adam", an int or an optimiser
            Its slots per parameter enter the training total.

        Returns
        -------
        fastconv.summary.Summary
            Prints as a table; ``to_dict()``, ``to_json()``.

        Raises
        ------
        ValueError
            input_shape has neither n + 1 nor n + 2 dimensions, or the
            shapes do not fit the model, as its forward would raise.

        Examples
        --------
        >>> from fastconv import layers as L
        >>> s = L.Sequential(L.Conv2d(3, 8, 3, rng=0), L.ReLU()).summary((3, 8, 8))
        >>> s.params, s.activations
        (224, 480)
        """
        from .summary import summary

        return summary(self, input_shape, dtype=dtype, optimizer=optimizer)

    # ------------------------------------------------------- tree helpers
    def _add_child(self, name, layer):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{type(self).__name__}: child {name!r} must be a "
                f"fastconv.layers.Layer, got {type(layer).__name__}"
            )
        self._children[name] = layer

    def _walk(self):
        """Yield this layer and every descendant, depth first."""
        yield self
        for child in self._children.values():
            yield from child._walk()

    def _collect(self, kind, prefix=""):
        out = {}
        for name, arr in getattr(self, kind).items():
            out[prefix + name] = arr
        for cname, child in self._children.items():
            out.update(child._collect(kind, f"{prefix}{cname}."))
        return out

    def _state_refs(self, prefix=""):
        """Live params then buffers, then children's: torch's state_dict order."""
        out = {}
        for name, arr in self._params.items():
            out[prefix + name] = arr
        for name, arr in self._buffers.items():
            out[prefix + name] = arr
        for cname, child in self._children.items():
            out.update(child._state_refs(f"{prefix}{cname}."))
        return out

    # ---------------------------------------------------- named arrays
    @property
    def params(self):
        """dict of str -> ndarray: the parameters, by torch-style name.

        A leaf layer returns its own dict; a container a new dict of its
        descendants' arrays (the same array objects).  Update values in
        place (``p -= lr * g``, ``p[...] = v``) or with
        :meth:`load_state_dict`.
        """
        return self._params if not self._children else self._collect("_params")

    @property
    def grads(self):
        """dict of str -> ndarray: the gradients, same names and shapes as
        :attr:`params`, accumulated by :meth:`backward`."""
        return self._grads if not self._children else self._collect("_grads")

    @property
    def buffers(self):
        """dict of str -> ndarray: non-trainable state (BatchNorm2d's
        ``running_mean``, ``running_var``, ``num_batches_tracked``)."""
        return self._buffers if not self._children else self._collect("_buffers")

    # ---------------------------------------------------------- modes
    def train(self, mode=True):
        """Set training mode (``mode=False``: evaluation) recursively.

        Returns
        -------
        self
        """
        for layer in self._walk():
            layer.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode recursively; same as ``train(False)``.

        Returns
        -------
        self
        """
        return self.train(False)

    def zero_grad(self):
        """Set every gradient to zero, in place, recursively."""
        for layer in self._walk():
            for g in layer._grads.values():
                g.fill(0)

    def set_backend(self, backend):
        """Choose the kernels this layer and its descendants call.

        Parameters
        ----------
        backend : {"fastconv", "reference"}
            ``"fastconv"``: the compiled kernels (:mod:`fastconv.functional`);
            ``"reference"``: their pure-NumPy twins (:mod:`fastconv.reference`).

        Returns
        -------
        self
        """
        if backend not in _BACKENDS:
            raise ValueError(
                f"set_backend: backend must be one of {tuple(_BACKENDS)}, got "
                f"{backend!r}"
            )
        for layer in self._walk():
            layer._backend = backend
        return self

    def to(self, dtype):
        """Convert parameters, gradients and float buffers to ``dtype``.

        Parameters
        ----------
        dtype : float32 or float64

        Returns
        -------
        self
        """
        dt = _check_dtype(dtype, "to")
        for layer in self._walk():
            for store in (layer._params, layer._grads, layer._buffers):
                for name, arr in store.items():
                    if arr.dtype.kind == "f":
                        store[name] = arr.astype(dt)
            if hasattr(layer, "dtype"):
                layer.dtype = dt
            layer._reset_transient()     # derived for the old dtype
        return self


    # ------------------------------------------------------ state dicts
    def state_dict(self):
        """Copies of all parameters and buffers, by torch-style name.

        Returns
        -------
        dict of str -> ndarray
            In PyTorch's order (a layer's parameters, then its buffers, then
            its children's); ``num_batches_tracked`` is a 0-d int64 array.
        """
        return {k: v.copy() for k, v in self._state_refs().items()}

    def load_state_dict(self, state, strict=True):
        """Copy parameters and buffers in place from ``state``.

        Nothing is modified unless every matching entry passes its checks.

        Parameters
        ----------
        state : mapping of str -> array
            E.g. :meth:`state_dict`'s result, an ``np.load``-ed ``.npz`` or
            a PyTorch ``state_dict`` (any values ``np.asarray`` accepts).
        strict : bool
            Raise if keys are missing or unexpected.

        Returns
        -------
        LoadResult
            ``(missing_keys, unexpected_keys)``, both empty when strict.

        Raises
        ------
        ValueError
            Missing/unexpected keys (strict), or an entry whose shape differs
            from the model's (the message names the key and both shapes).
        TypeError
            An entry whose dtype differs from the model's (floating
            entries must match exactly; convert the model with :meth:`to`
            or the arrays with ``astype``), or a non-integer
            ``num_batches_tracked``.
        """
        targets = self._state_refs()
        keys = list(state.keys())
        present = set(keys)
        missing = [k for k in targets if k not in present]
        unexpected = [k for k in keys if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: keys do not match the model "
                f"{type(self).__name__}: missing {missing}, unexpected "
                f"{unexpected}; pass strict=False to load the rest"
            )
        checked = []
        for key, dst in targets.items():
            if key not in present:
                continue
            src = np.asarray(state[key])
            if src.shape != dst.shape:
                raise ValueError(
                    f"load_state_dict: {key!r} has shape {src.shape} in the "
                    f"state dict but shape {dst.shape} in the model"
                )
            if dst.dtype.kind == "f" and src.dtype != dst.dtype:
                # model.to() only helps when the file holds the other
                # float type; anything else is not a fastconv model's array
                hint = (f"convert the model with model.to(np.{src.dtype}) "
                        f"or the arrays with .astype(np.{dst.dtype})"
                        if src.dtype in _v.SUPPORTED_DTYPES else
                        "fastconv models hold float32 or float64 arrays")
                raise TypeError(
                    f"load_state_dict: {key!r} has dtype {src.dtype} in the "
                    f"state dict but {dst.dtype} in the model; {hint}"
                )
            if dst.dtype.kind in "iu" and src.dtype.kind not in "iu":
                raise TypeError(
                    f"load_state_dict: {key!r} must be an integer array, got "
                    f"dtype {src.dtype}"
                )
            checked.append((dst, src))
        for dst, src in checked:
            dst[...] = src
        return LoadResult(missing, unexpected)

    def save(self, path):
        """Save :meth:`state_dict` to an ``.npz`` file (``np.savez``).

        Parameters
        ----------
        path : str or path-like
            ``.npz`` is appended when missing, as ``np.savez`` does.
        """
        np.savez(path, **self.state_dict())

    def load(self, path, strict=True):
        """Load an ``.npz`` written by :meth:`save` (or ``np.savez``).

        Parameters
        ----------
        path : str or path-like
            ``path + ".npz"`` is tried when path does not exist, so
            ``save("model")`` pairs with ``load("model")``.
        strict : bool
            As :meth:`load_state_dict`.

        Returns
        -------
        LoadResult
        """
        if (isinstance(path, (str, os.PathLike)) and not os.path.exists(path)
                and os.path.exists(os.fspath(path) + ".npz")):
            path = os.fspath(path) + ".npz"              # as save() wrote it
        expected = ("expected an .npz archive of named arrays, as model.save "
                    "or np.savez write")
        try:
            data = np.load(path, allow_pickle=False)
        except (EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"load: {path!r} is not a model file (np.load: "
                             f"{exc}); {expected}") from exc
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(
                f"load: {path!r} holds a single array of shape {data.shape} "
                f"and dtype {data.dtype} (an .npy file), not a model's named "
                f"arrays; {expected}")
        with data:
            try:
                state = {key: data[key] for key in data.files}
            except (EOFError, ValueError, OSError, zipfile.BadZipFile,
                    zlib.error) as exc:
                raise ValueError(f"load: {path!r} is a damaged or unsupported "
                                 f".npz archive ({exc}); {expected}") from exc
        return self.load_state_dict(state, strict=strict)

    # ------------------------------------------------------------ repr
    def _extra_repr(self):
        return ""

    def _name(self):
        return f"{type(self).__name__}({self._extra_repr()})"

    def __repr__(self):
        if not self._children:
            return self._name()
        lines = [f"  ({name}): {_indent(repr(child))}"
                 for name, child in self._children.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


# ---- private N-d bases of the convolution and pooling layers -------------
# The 1-D, 2-D and 3-D convolution and pooling layers are thin subclasses
# that name their spatial axes (``_axes``) and kernels (``_fn``).

class _ConvNd(Layer):
    """Convolution over ``len(_axes)`` spatial axes with the kernels ``_fn``
    and ``_fn + "_backward"``; ``algorithm=None``: the kernels take none."""

    _axes = None                        # ("L",), ("H", "W") or ("D", "H", "W")
    _fn = None                          # "conv1d", "conv2d" or "conv3d"

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding,
                 dilation, groups, bias, *, dtype, rng, algorithm):
        super().__init__()
        op = type(self).__name__
        n = len(self._axes)
        self.in_channels = _v.positive_int(in_channels, "in_channels", op)
        self.out_channels = _v.positive_int(out_channels, "out_channels", op)
        self.groups = _v.positive_int(groups, "groups", op)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{op}: groups={groups} must divide in_channels={in_channels} "
                f"and out_channels={out_channels}"
            )
        self.kernel_size = _v.positive_tuple(kernel_size, n, "kernel_size", op)
        self.stride = _v.positive_tuple(stride, n, "stride", op)
        self.dilation = _v.positive_tuple(dilation, n, "dilation", op)
        if isinstance(padding, str):
            _v.conv_padding(op, padding, self.kernel_size, self.stride,
                             self.dilation)
            self.padding = padding
        else:
            self.padding = _v.non_negative_tuple(padding, n, "padding", op)
        if algorithm is not None:
            self.algorithm = _v.check_algorithm(algorithm, op)
        self.dtype = _check_dtype(dtype, op)
        rng = _v.as_rng(rng)
        fan_in = in_channels // groups * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self._params["weight"] = rng.uniform(-bound, bound, shape).astype(self.dtype)
        if _v.check_flag(bias, "bias", op):
            self._params["bias"] = rng.uniform(-bound, bound, out_channels).astype(self.dtype)
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    def _geometry(self):
        """Keyword arguments of the forward and backward kernels."""
        kw = dict(stride=self.stride, padding=self.padding,
                  dilation=self.dilation, groups=self.groups)
        if hasattr(self, "algorithm"):
            kw["algorithm"] = self.algorithm
        return kw

    def _check_input(self, shape):
        shape = tuple(shape)
        if len(shape) != len(self._axes) + 2 or shape[1] != self.in_channels:
            raise ValueError(
                f"{self._name()}: expects input of shape (N, "
                f"{self.in_channels}, {', '.join(self._axes)}), got shape "
                f"{shape}{_v.nhwc_hint(shape, self.in_channels)}"
            )

    def _forward(self, x):
        self._check_param_dtype(x)
        self._check_input(x.shape)
        y = getattr(self._kernels, self._fn)(
            x, self._params["weight"], self._params.get("bias"),
            **self._geometry())
        self._cache = x
        return y

    def _backward(self, grad_out):
        gx, gw, gb = getattr(self._kernels, self._fn + "_backward")(
            grad_out, self._cache, self._params["weight"], **self._geometry())
        self._grads["weight"] += gw
        if "bias" in self._grads:
            self._grads["bias"] += gb
        return gx

    def _extra_repr(self):
        n = len(self._axes)
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size="
             f"{self.kernel_size}, stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self._params:
            s += ", bias=False"
        if getattr(self, "algorithm", "auto") != "auto":
            s += f", algorithm={self.algorithm!r}"
        return s

    # shape protocol: the kernel's own arithmetic and errors (_validation)
    def output_shape(self, input_shape):
        """Shape of :meth:`forward`'s output for an input of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple (N, C, *spatial)

        Returns
        -------
        tuple (N, F, *spatial_out)

        Raises
        ------
        ValueError
            As forward: wrong rank or channels, a kernel larger than the
            padded input.
        TypeError
            input_shape is not a tuple of non-negative ints.
        """
        shape = self._shape_arg(input_shape)
        self._check_input(shape)
        return (shape[0], self.out_channels) + self._spatial_out(shape)

    def _spatial_out(self, shape):
        *_, out = _v.conv_axes(self._fn, shape, self._params["weight"].shape,
                                self.stride, self.padding, self.dilation,
                                self.groups, self._axes)
        return out

    def _rf_geometry(self):
        before = _v.conv_padding(type(self).__name__, self.padding,
                                  self.kernel_size, self.stride,
                                  self.dilation)[0::2]
        return tuple(zip(self.kernel_size, self.stride, before, self.dilation))


# The geometry check of each pooling rank; the output sizes are the last
# len(axes) fields of the record it returns (Wo; Ho, Wo; Do, Ho, Wo).
_POOL_GEOMETRY = {1: _v.pool1d_geometry, 2: _v.pool_geometry,
                  3: _v.vol_pool_geometry}


class _PoolNd(Layer):
    """Shape protocol of the pooling layers over ``len(_axes)`` spatial axes;
    subclasses give their window as ``_window() -> (kernel_size, stride,
    padding, dilation)`` (as stored; stride None means kernel_size)."""

    _axes = None
    _fn = None                          # e.g. "max_pool2d"

    def _window(self):
        raise NotImplementedError

    def output_shape(self, input_shape):
        """Shape of :meth:`forward`'s output for an input of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple (N, C, *spatial)

        Returns
        -------
        tuple (N, C, *spatial_out)

        Raises
        ------
        ValueError
            As forward (wrong rank, window larger than the padded input,
            padding over half the window, a window with no input cell).
        TypeError
            input_shape is not a tuple of non-negative ints.
        """
        n = len(self._axes)
        shape = self._shape_arg(input_shape)
        _v.check_ndim(shape, "x", self._fn, f"(N, C, {', '.join(self._axes)})")
        g = _POOL_GEOMETRY[n](self._fn, shape, *self._window(), self.ceil_mode)
        return (g.N, g.C) + tuple(g[-n:])

    def _rf_geometry(self):
        op, n = type(self).__name__, len(self._axes)
        k, s, p, d = self._window()
        s = k if s is None else s
        return tuple(zip(*(_v.ntuple(v, n, name, op) for v, name in (
            (k, "kernel_size"), (s, "stride"), (p, "padding"),
            (d, "dilation")))))


class _WindowPoolNd(_PoolNd):
    """Max and average pooling: validated geometry stored as given (or as
    n-tuples where ``_as_tuples``, as torch's AvgPool1d)."""

    _as_tuples = False

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode):
        super().__init__()
        op, n = type(self).__name__, len(self._axes)
        _v.positive_tuple(kernel_size, n, "kernel_size", op)
        if stride is not None:
            _v.positive_tuple(stride, n, "stride", op)
        _v.non_negative_tuple(padding, n, "padding", op)
        if dilation is not None:
            _v.positive_tuple(dilation, n, "dilation", op)
        if self._as_tuples:
            kernel_size, padding = (_v.ntuple(kernel_size, n, "", op),
                                    _v.ntuple(padding, n, "", op))
            stride = None if stride is None else _v.ntuple(stride, n, "", op)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        if dilation is not None:
            self.dilation = dilation
        self.ceil_mode = _v.check_flag(ceil_mode, "ceil_mode", op)


class _MaxPoolNd(_WindowPoolNd):
    """Max pooling; the forward keeps the argmax indices for the backward."""

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode):
        # dilation=None means "no dilation argument" to the base (average
        # pooling); here it must be given (an int or tuple, default 1)
        _v.positive_tuple(dilation, len(self._axes), "dilation",
                           type(self).__name__)
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)

    def _window(self):
        return (self.kernel_size, self.stride, self.padding, self.dilation)

    def _forward(self, x):
        y, idx = getattr(self._kernels, self._fn)(
            x, *self._window(), self.ceil_mode, return_indices=True)
        self._cache = (idx, x.shape)
        return y

    def _backward(self, grad_out):
        idx, shape = self._cache
        return getattr(self._kernels, self._fn + "_backward")(grad_out, idx,
                                                              shape)

    def _extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode}")


class _AvgPoolNd(_WindowPoolNd):
    """Average pooling (no dilation)."""

    def __init__(self, kernel_size, stride, padding, ceil_mode,
                 count_include_pad):
        super().__init__(kernel_size, stride, padding, None, ceil_mode)
        self.count_include_pad = _v.check_flag(
            count_include_pad, "count_include_pad", type(self).__name__)

    def _window(self):
        return (self.kernel_size, self.stride, self.padding, 1)

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad)

    def _forward(self, x):
        y = getattr(self._kernels, self._fn)(x, *self._args())
        self._cache = x.shape
        return y

    def _backward(self, grad_out):
        return getattr(self._kernels, self._fn + "_backward")(
            grad_out, self._cache, *self._args())

    def _extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


class _LPPoolNd(_PoolNd):
    """Lp-norm pooling (no padding, no dilation; stride None is shown)."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        op, n = type(self).__name__, len(self._axes)
        _v.check_norm_type(op, norm_type)
        _v.positive_tuple(kernel_size, n, "kernel_size", op)
        if stride is not None:
            _v.positive_tuple(stride, n, "stride", op)
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = _v.check_flag(ceil_mode, "ceil_mode", op)

    def _window(self):
        return (self.kernel_size, self.stride, 0, 1)

    def _args(self):
        return (self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def _forward(self, x):
        y = getattr(self._kernels, self._fn)(x, *self._args())
        self._cache = x
        return y

    def _backward(self, grad_out):
        return getattr(self._kernels, self._fn + "_backward")(
            grad_out, self._cache, *self._args())

    def _extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


# ---- containers ----------------------------------------------------------

def _fused_steps(children):
    """The (layer, fuse keywords) steps that run ``children`` in order.

    Where one compiled kernel can do the work of two or three consecutive
    layers in one pass over memory, the first layer absorbs the others: a
    ReLU after a layer with ``_fuses_relu`` (Conv2d, Linear, BatchNorm2d,
    Residual) becomes ``relu=True``; in eval mode a BatchNorm2d after a
    Conv2d is folded into the convolution (``bn=layer``).  Absorbed layers
    are skipped, so they cache nothing; the results equal the unfused
    layers' within rounding.  The NumPy twins (``set_backend("reference")``)
    always run unfused.
    """
    steps, i = [], 0
    while i < len(children):
        layer, rest, fuse = children[i], children[i + 1:i + 3], {}
        if all(c._backend == "fastconv" for c in [layer] + rest):
            # exact types only: a subclass may change what its layer does
            if (type(layer) is Conv2d and rest and type(rest[0]) is BatchNorm2d
                    and not layer.training and not rest[0].training
                    and rest[0].num_features == layer.out_channels):
                fuse["bn"] = rest.pop(0)
            if (type(layer).__dict__.get("_fuses_relu") and rest
                    and type(rest[0]) is ReLU):
                fuse["relu"] = True
        steps.append((layer, fuse))
        i += 1 + len(fuse)
    return steps


class Sequential(Layer):
    """Apply layers in order; backward runs them in reverse.

    Parameters
    ----------
    *layers : Layer
        Named ``"0"``, ``"1"``, ...: their parameters appear as
        ``"0.weight"``, ``"3.bias"``, ``"2.body.0.weight"`` (nested), the
        keys of the equivalent ``torch.nn.Sequential``'s ``state_dict``.

    Examples
    --------
    >>> from fastconv import layers as L
    >>> net = L.Sequential(L.Conv2d(3, 8, 3, rng=0), L.ReLU(), L.Flatten())
    >>> list(net.params)
    ['0.weight', '0.bias']
    >>> net[0]
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self._add_child(str(i), layer)

    def __len__(self):
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())

    def __getitem__(self, i):
        n = len(self)
        if not _v.is_int(i) or not -n <= i < n:
            raise IndexError(f"Sequential: index {i!r} out of range for {n} layers")
        return self._children[str(i % n)]

    def _forward(self, x):
        steps = _fused_steps(list(self._children.values()))
        for layer, fuse in steps:
            x = layer._call(x, **fuse)
        self._cache = [layer for layer, _ in steps]
        return x

    def _backward(self, grad_out):
        given = grad_out
        for layer in reversed(self._cache):
            # a child's gradient, not the caller's array (nor a view of it),
            # that nobody else holds is read by the next child only: it may
            # overwrite it
            if (grad_out is not given and sys.getrefcount(grad_out) == _SOLE
                    and not np.may_share_memory(grad_out, given)):
                _calls.spent = grad_out
            try:
                grad_out = layer.backward(grad_out)
            finally:
                _calls.spent = None
        return grad_out

    # shape protocol: the chain of the children's
    def output_shape(self, input_shape):
        shape = self._shape_arg(input_shape)
        for layer in self._children.values():
            shape = layer.output_shape(shape)
        return shape

    def _rf_geometry(self):
        state = None
        for layer in self._children.values():
            state = _rf.compose(state, layer._rf_geometry())
        return _rf.state_geometry(state)


class Residual(Layer):
    """``body(x) + shortcut(x)``; the shortcut is the identity when None.

    Parameters
    ----------
    body : Layer
    shortcut : Layer or None
        Must map x to body(x)'s shape, e.g. a strided 1x1 :class:`Conv2d`
        and a :class:`BatchNorm2d` when the block changes shape.

    Notes
    -----
    Parameters are named ``"body.<name>"`` and ``"shortcut.<name>"``, as a
    PyTorch module with attributes ``body`` and ``shortcut`` would.
    """

    def __init__(self, body, shortcut=None):
        super().__init__()
        self._add_child("body", body)
        if shortcut is not None:
            self._add_child("shortcut", shortcut)

    @property
    def body(self):
        return self._children["body"]

    @property
    def shortcut(self):
        return self._children.get("shortcut")

    _fuses_relu = True

    def _forward(self, x, relu=False):
        y = self.body.forward(x)
        s = x if self.shortcut is None else self.shortcut.forward(x)
        self._check_add(y.shape, s.shape)
        out = self._kernels.add(y, s, relu=relu,
                                out=self._buffer(y.shape, y.dtype))
        self._cache = out if relu else True
        return out

    def _check_add(self, body_shape, shortcut_shape):
        if tuple(body_shape) != tuple(shortcut_shape):
            what = "the input (identity shortcut)" if self.shortcut is None \
                else "the shortcut's output"
            raise ValueError(
                f"Residual: the body's output of shape {tuple(body_shape)} "
                f"cannot be added to {what} of shape {tuple(shortcut_shape)}; "
                f"give a shortcut that maps the input to the body's output "
                f"shape"
            )

    def _backward(self, grad_out):
        k, shape, dtype = self._kernels, grad_out.shape, grad_out.dtype
        if self._cache is not True:            # add + ReLU: mask by the output
            grad_out = k.relu_backward(grad_out, self._cache,
                                       out=self._buffer(shape, dtype))
        gx = self.body.backward(grad_out)
        gs = grad_out if self.shortcut is None else self.shortcut.backward(grad_out)
        return k.add(gx, gs, out=self._buffer(gx.shape, gx.dtype))

    # shape protocol: body and shortcut must agree; the field is their union
    def output_shape(self, input_shape):
        shape = self._shape_arg(input_shape)
        y = self.body.output_shape(shape)
        s = shape if self.shortcut is None else self.shortcut.output_shape(shape)
        self._check_add(y, s)
        return y

    def _rf_geometry(self):
        body = _rf.compose(None, self.body._rf_geometry())
        short = None if self.shortcut is None else _rf.compose(
            None, self.shortcut._rf_geometry())
        return _rf.state_geometry(_rf.union(body, short))


def basic_block(in_channels, out_channels, stride=1, *, dtype=np.float32,
                rng=None):
    """ResNet's BasicBlock (He et al. 2016) built from these layers.

    ``ReLU(body(x) + shortcut(x))`` with body = conv3x3(stride)-BN-ReLU-
    conv3x3-BN (convolutions without bias, as torchvision's) and shortcut
    = conv1x1(stride)-BN when the shape changes, else the identity.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only

    Returns
    -------
    Sequential
        ``Sequential(Residual(body, shortcut), ReLU())``; parameter names
        ``"0.body.0.weight"``, ``"0.body.1.weight"``, ...,
        ``"0.shortcut.0.weight"``.  Input (N, in_channels, H, W), output
        (N, out_channels, ceil(H/stride), ceil(W/stride)).
    """
    rng = _v.as_rng(rng)
    kw = dict(dtype=dtype, rng=rng)
    body = Sequential(
        Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, **kw),
        BatchNorm2d(out_channels, dtype=dtype),
        ReLU(),
        Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, **kw),
        BatchNorm2d(out_channels, dtype=dtype),
    )
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = Sequential(
            Conv2d(in_channels, out_channels, 1, stride, bias=False, **kw),
            BatchNorm2d(out_channels, dtype=dtype),
        )
    return Sequential(Residual(body, shortcut), ReLU())


# ---- convolution ---------------------------------------------------------

class Conv1d(_ConvNd):
    """1-D convolution layer, as ``torch.nn.Conv1d`` (zero padding).

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    kernel_size : int or (int,)
    stride, dilation : int or (int,)
    padding : int, (int,), "same" or "valid"
    groups : int
        Must divide in_channels and out_channels.
    bias : bool
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the initial weights (None: a fresh ``default_rng()``).
    algorithm : {"auto", "gemm", "direct"}, keyword-only
        Passed to :func:`fastconv.conv1d` and :func:`fastconv.conv1d_backward`.

    Attributes
    ----------
    params : {"weight": (F, C/groups, k), "bias": (F,)}
        Initialised ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in =
        C/groups*k``, as PyTorch.

    Notes
    -----
    Input (N, C, L), output (N, F, Lo) with
    ``Lo = (L + 2*p - d*(k-1) - 1) // s + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> conv = L.Conv1d(2, 4, 3, padding="same", rng=0)
    >>> conv
    Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same)
    >>> conv(np.ones((1, 2, 10), np.float32)).shape
    (1, 4, 10)
    """

    _axes, _fn = ("L",), "conv1d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, dilation=1, groups=1, bias=True, *,
                 dtype=np.float32, rng=None, algorithm="auto"):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, dtype=dtype, rng=rng,
                         algorithm=algorithm)

    def _spatial_out(self, shape):          # conv1d's own 1-D messages
        g = _v.conv1d_geometry(self._fn, shape, self._params["weight"].shape,
                               self.stride, self.padding, self.dilation,
                               self.groups)
        return (g.Wo,)


def _same_bytes(a, b):
    """Whether two arrays (or None) hold the same bytes: the cheap, exact
    test that a cached derivative of ``b`` is still valid for ``a`` (NaNs
    included, which == would never match)."""
    if a is None or b is None:
        return a is b
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    unit = np.uint64 if a.nbytes % 8 == 0 else np.uint8
    return bool(np.array_equal(np.ascontiguousarray(a).reshape(-1).view(unit),
                               np.ascontiguousarray(b).reshape(-1).view(unit)))


class Conv2d(_ConvNd):
    """2-D convolution layer, as ``torch.nn.Conv2d`` (zero padding).

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int)
    padding : int, (int, int), "same" or "valid"
    groups : int
        Must divide in_channels and out_channels.
    bias : bool
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the initial weights (None: a fresh ``default_rng()``).
    algorithm : {"auto", "gemm", "direct"}, keyword-only
        Passed to :func:`fastconv.conv2d` and :func:`fastconv.conv2d_backward`.

    Attributes
    ----------
    params : {"weight": (F, C/groups, kh, kw), "bias": (F,)}
        Initialised as PyTorch does: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
        with ``fan_in = C/groups*kh*kw`` for both.

    Notes
    -----
    Input (N, C, H, W), output (N, F, Ho, Wo) with
    ``Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1`` (Wo alike).
    """

    _axes, _fn = ("H", "W"), "conv2d"
    _fuses_relu = True
    _MAX_PLANS = 4                      # input shapes whose kernel plans are kept

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, dilation=1, groups=1, bias=True, *,
                 dtype=np.float32, rng=None, algorithm="auto"):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, dtype=dtype, rng=rng,
                         algorithm=algorithm)

    _transient = ("_plans", "_packed")

    def _reset_transient(self):
        super()._reset_transient()
        self._plans = {}                # (input shape, dtype) -> kernel plan
        self._packed = None             # (source snapshots, weight, bias, packed)

    def _plan(self, x):
        key = (x.shape, x.dtype)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= self._MAX_PLANS:
                self._plans.clear()
            plan = self._plans[key] = _convplan.plan_for(
                "conv2d", x.shape, self._params["weight"].shape, x.dtype, **self._geometry())
        return plan

    def _weights(self, plan, bn):
        """(weight, bias, packed) the forward runs with: the layer's own, or
        with eval-mode ``bn`` folded in (w * s, (b - mean) * s + beta, s =
        gamma / sqrt(var + eps)); packed for ``plan`` (Winograd-transformed,
        GEMM panels).  Kept while the arrays they come from are unchanged,
        so inference packs and folds once; any change, including in-place
        updates by an optimiser or by hand, is seen by comparing bytes."""
        sources = [self._params["weight"], self._params.get("bias")]
        if bn is not None:
            sources += [bn._params["weight"], bn._params["bias"],
                        bn._buffers["running_mean"], bn._buffers["running_var"],
                        np.float64(bn.eps)]
        cached = self._packed
        if (cached is not None and cached[0][0] is plan
                and len(cached[0]) == len(sources) + 1
                and all(_same_bytes(a, b) for a, b in zip(sources, cached[0][1:]))):
            if bn is None:
                return sources[0], sources[1], cached[3]
            return cached[1:]
        w, b = sources[0], sources[1]
        if bn is not None:
            gamma, beta, mean, var, eps = sources[2:]
            scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
            shift = -mean * scale + beta
            if b is not None:
                shift = shift + b * scale
            w = (w * scale.reshape(-1, 1, 1, 1)).astype(w.dtype)
            b = shift.astype(w.dtype)
        # repacked into the previous packing's memory when it fits: no
        # fresh pages to fault in after every optimiser step
        reuse = cached[3] if cached is not None else None
        if reuse is not None and reuse.packing != plan.packing:
            reuse = None
        packed = plan.pack(w, out=reuse)
        folded = (w, b) if bn is not None else (None, None)    # else the layer's own
        self._packed = ((plan,) + tuple(None if a is None else np.copy(a) for a in sources),
                        *folded, packed)
        return w, b, packed

    def _forward(self, x, relu=False, bn=None):
        if self._backend != "fastconv":
            return super()._forward(x)          # the NumPy twins, unfused
        self._check_param_dtype(x)
        self._check_input(x.shape)
        plan = self._plan(x)
        w, b, packed = self._weights(plan, bn)
        y = plan.forward(x, w, b, relu=relu, packed=packed,
                         out=self._buffer(plan.output_shape, x.dtype))
        self._cache = (x, plan, packed, y if relu else None, bn)
        return y

    def _backward(self, grad_out):
        if self._backend != "fastconv":
            return super()._backward(grad_out)
        x, plan, packed, y, bn = self._cache
        k, dtype = self._kernels, grad_out.dtype
        weight = self._params["weight"]
        if y is not None:                       # ReLU fused: mask by the output
            grad_out = k.relu_backward(grad_out, y, out=self._grad_out_buffer(grad_out))
        if bn is not None:
            # eval-mode BatchNorm folded in: its gradients need the
            # convolution's own output, recomputed (a rare path: training
            # uses batch statistics, inference no backward)
            z = plan.forward(x, weight, self._params.get("bias"))
            invstd = (1.0 / np.sqrt(bn._buffers["running_var"].astype(np.float64)
                                    + bn.eps)).astype(dtype)
            grad_out, g_gamma, g_beta = k.batch_norm2d_backward(
                grad_out, z, bn._buffers["running_mean"], invstd,
                bn._params["weight"], training=False)
            bn._grads["weight"] += g_gamma
            bn._grads["bias"] += g_beta
            packed = None                       # the packed weights are folded
        gx, gw, gb = plan.backward(grad_out, x, weight, packed=packed,
                                   out=self._buffer(x.shape, x.dtype))
        self._grads["weight"] += gw
        if "bias" in self._grads:
            self._grads["bias"] += gb
        return gx


class Conv3d(_ConvNd):
    """3-D convolution layer, as ``torch.nn.Conv3d`` (zero padding).

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    kernel_size : int or (int, int, int)
    stride, dilation : int or (int, int, int)
    padding : int, (int, int, int), "same" or "valid"
    groups : int
        Must divide in_channels and out_channels.
    bias : bool
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the initial weights (None: a fresh ``default_rng()``).

    Attributes
    ----------
    params : {"weight": (F, C/groups, kd, kh, kw), "bias": (F,)}
        Initialised as PyTorch does: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
        with ``fan_in = C/groups*kd*kh*kw`` for both.

    Notes
    -----
    Input (N, C, D, H, W), output (N, F, Do, Ho, Wo) as
    :func:`fastconv.conv3d`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> conv = L.Conv3d(2, 4, 3, padding=1, rng=0)
    >>> conv
    Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1))
    >>> conv(np.ones((1, 2, 4, 8, 8), np.float32)).shape
    (1, 4, 4, 8, 8)
    >>> conv.output_shape((5, 2, 16, 32, 32))
    (5, 4, 16, 32, 32)
    """

    _axes, _fn = ("D", "H", "W"), "conv3d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, dilation=1, groups=1, bias=True, *,
                 dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, dtype=dtype, rng=rng,
                         algorithm=None)


# ---- locally connected (unshared) convolution ----------------------------

class LocallyConnected2d(Layer):
    """Locally connected 2-D layer: a convolution without weight sharing.

    Each output position ``(oh, ow)`` has its own F filters of shape
    (C, kh, kw) and its own F biases (Keras' ``LocallyConnected2D``; the
    cs231n notes' relaxed parameter sharing for centred inputs such as
    faces).  The input size is fixed at construction: it sets the number of
    positions, hence of parameters.

    Parameters
    ----------
    in_channels, out_channels : int
        C and F.
    input_size : int or (int, int)
        (H, W) of the inputs the layer will see.
    kernel_size : int or (int, int)
    stride, padding : int or (int, int)
        Zero padding on both sides.
    bias : bool
    dilation : int or (int, int), keyword-only
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the initial weights (None: a fresh ``default_rng()``).

    Attributes
    ----------
    params : {"weight": (Ho, Wo, C, kh, kw, F), "bias": (F, Ho, Wo)}
        ``weight[oh, ow, ..., f]`` is filter f of position (oh, ow), shaped
        (C, kh, kw) as a :class:`Conv2d` filter (see
        :func:`fastconv.locally_connected2d` for the layout).  Initialised
        from the same distribution as ``torch.nn.Conv2d`` for a single
        position, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in =
        C*kh*kw``, drawn directly in ``dtype`` (no float64 temporary; the
        values are not torch's for a given seed).

    Raises
    ------
    ValueError
        Non-positive sizes, negative padding, or a kernel larger than the
        padded input (no output position).
    TypeError
        Unsupported dtype, non-int geometry.

    Notes
    -----
    Input (N, C, H, W), output (N, F, Ho, Wo) with
    ``Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1`` (Wo alike), as
    :func:`fastconv.locally_connected2d`.  It has Ho*Wo times the parameters
    of the :class:`Conv2d` of the same geometry.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> lc = L.LocallyConnected2d(3, 8, (32, 32), 5, stride=1, rng=0)
    >>> lc
    LocallyConnected2d(3, 8, input_size=(32, 32), kernel_size=(5, 5), stride=(1, 1))
    >>> lc.params["weight"].shape, lc.params["bias"].shape
    ((28, 28, 3, 5, 5, 8), (8, 28, 28))
    >>> lc(np.zeros((2, 3, 32, 32), dtype=np.float32)).shape
    (2, 8, 28, 28)
    >>> lc.output_shape((2, 3, 32, 32))
    (2, 8, 28, 28)
    """

    def __init__(self, in_channels, out_channels, input_size, kernel_size,
                 stride=1, padding=0, bias=True, *, dilation=1,
                 dtype=np.float32, rng=None):
        super().__init__()
        op = "LocallyConnected2d"
        self.in_channels = _v.positive_int(in_channels, "in_channels", op)
        self.out_channels = _v.positive_int(out_channels, "out_channels", op)
        self.input_size = _v.positive_pair(input_size, "input_size", op)
        self.kernel_size = _v.positive_pair(kernel_size, "kernel_size", op)
        self.stride = _v.positive_pair(stride, "stride", op)
        self.padding = _v.non_negative_pair(padding, "padding", op)
        self.dilation = _v.positive_pair(dilation, "dilation", op)
        self.dtype = _check_dtype(dtype, op)
        g = _v.window_geometry(op, (1, self.in_channels) + self.input_size,
                                self.kernel_size, self.stride, self.padding,
                                self.dilation, name="input_size")
        self._out_size = (g.Ho, g.Wo)
        rng = _v.as_rng(rng)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(in_channels * kh * kw)
        shape = (g.Ho, g.Wo, in_channels, kh, kw, out_channels)
        self._params["weight"] = self._uniform(rng, shape, bound)
        if _v.check_flag(bias, "bias", op):
            self._params["bias"] = self._uniform(
                rng, (out_channels, g.Ho, g.Wo), bound)
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    def _uniform(self, rng, shape, bound):
        """U(-bound, bound) drawn directly in the layer's dtype: the weight
        has Ho*Wo*C*kh*kw*F elements, so no float64 copy of it is made."""
        a = rng.random(shape, dtype=self.dtype)
        a *= self.dtype.type(2.0 * bound)
        a -= self.dtype.type(bound)
        return a

    def _check_shape(self, shape):
        """Raise the ValueError forward raises for an input of this shape."""
        expected = (self.in_channels,) + self.input_size
        if len(shape) != 4 or tuple(shape[1:]) != expected:
            raise ValueError(
                f"{self._name()}: expects input of shape (N, {expected[0]}, "
                f"{expected[1]}, {expected[2]}) (its input_size is fixed), got "
                f"shape {tuple(shape)}"
                f"{_v.nhwc_hint(tuple(shape), self.in_channels)}"
            )

    def output_shape(self, input_shape):
        """The shape :meth:`forward` returns for an input of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple (N, C, H, W)

        Returns
        -------
        tuple (N, F, Ho, Wo)

        Raises
        ------
        ValueError
            If forward would reject the shape (C, H, W not the layer's).
        TypeError
            input_shape is not a tuple of non-negative ints.
        """
        if not (isinstance(input_shape, (tuple, list)) and all(
                _v.is_int(v) and v >= 0 for v in input_shape)):
            raise TypeError(
                f"{self._name()}.output_shape: input_shape must be a tuple of "
                f"non-negative ints, got {input_shape!r}"
            )
        shape = tuple(int(v) for v in input_shape)
        self._check_shape(shape)
        return (shape[0], self.out_channels) + self._out_size

    def _rf_geometry(self):
        """((kh, sh, ph, dh), (kw, sw, pw, dw)): the window along H and W."""
        return tuple(
            (self.kernel_size[a], self.stride[a], self.padding[a],
             self.dilation[a]) for a in range(2))

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding,
                    dilation=self.dilation)

    def _forward(self, x):
        self._check_param_dtype(x)
        self._check_shape(x.shape)
        y = self._kernels.locally_connected2d(
            x, self._params["weight"], self._params.get("bias"),
            **self._geometry())
        self._cache = x
        return y

    def _backward(self, grad_out):
        x = self._cache
        gx, gw, gb = self._kernels.locally_connected2d_backward(
            grad_out, x, self._params["weight"], **self._geometry())
        self._grads["weight"] += gw
        if "bias" in self._grads:
            self._grads["bias"] += gb
        return gx

    def _extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, input_size="
             f"{self.input_size}, kernel_size={self.kernel_size}, stride="
             f"{self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if "bias" not in self._params:
            s += ", bias=False"
        return s


# ---- max pooling ---------------------------------------------------------

class MaxPool1d(_MaxPoolNd):
    """1-D max pooling, as ``torch.nn.MaxPool1d``.

    Parameters
    ----------
    kernel_size : int or (int,)
    stride : int, (int,) or None
        None means kernel_size.
    padding, dilation : int or (int,)
    ceil_mode : bool

    Notes
    -----
    Input (N, C, L), output (N, C, Lo) as :func:`fastconv.max_pool1d`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> L.MaxPool1d(2)(np.array([[[1, 3, 2, 5]]], np.float32))
    array([[[3., 5.]]], dtype=float32)
    """

    _axes, _fn = ("L",), "max_pool1d"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling, as ``torch.nn.MaxPool2d``.

    The forward pass keeps the argmax indices for the backward pass
    (:func:`fastconv.max_pool2d_backward`).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int, (int, int) or None
        None means kernel_size.
    padding, dilation : int or (int, int)
    ceil_mode : bool

    Notes
    -----
    Input (N, C, H, W), output (N, C, Ho, Wo) as :func:`fastconv.max_pool2d`.
    """

    _axes, _fn = ("H", "W"), "max_pool2d"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling, as ``torch.nn.MaxPool3d``.

    The forward pass keeps the argmax indices for the backward pass
    (:func:`fastconv.max_pool3d_backward`).

    Parameters
    ----------
    kernel_size : int or (int, int, int)
    stride : int, (int, int, int) or None
        None means kernel_size.
    padding, dilation : int or (int, int, int)
    ceil_mode : bool

    Notes
    -----
    Input (N, C, D, H, W), output (N, C, Do, Ho, Wo) as
    :func:`fastconv.max_pool3d`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> pool = L.MaxPool3d(2)
    >>> pool
    MaxPool3d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> pool.output_shape((8, 32, 16, 32, 32))
    (8, 32, 8, 16, 16)
    """

    _axes, _fn = ("D", "H", "W"), "max_pool3d"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


# ---- average pooling -----------------------------------------------------

class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, as ``torch.nn.AvgPool1d``.

    Parameters
    ----------
    kernel_size : int or (int,)
    stride : int, (int,) or None
        None means kernel_size.
    padding : int or (int,)
    ceil_mode, count_include_pad : bool
        As :func:`fastconv.avg_pool1d`.

    Notes
    -----
    Input (N, C, L), output (N, C, Lo).  As torch, the geometry is stored
    (and shown) as 1-tuples.

    Examples
    --------
    >>> from fastconv import layers as L
    >>> L.AvgPool1d(3, 2, 1)
    AvgPool1d(kernel_size=(3,), stride=(2,), padding=(1,))
    """

    _axes, _fn = ("L",), "avg_pool1d"
    _as_tuples = True                  # as torch

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode,
                         count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling, as ``torch.nn.AvgPool2d``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int, (int, int) or None
        None means kernel_size.
    padding : int or (int, int)
    ceil_mode, count_include_pad : bool
        As :func:`fastconv.avg_pool2d`.

    Notes
    -----
    Input (N, C, H, W), output (N, C, Ho, Wo).
    """

    _axes, _fn = ("H", "W"), "avg_pool2d"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode,
                         count_include_pad)


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling, as ``torch.nn.AvgPool3d``.

    Parameters
    ----------
    kernel_size : int or (int, int, int)
    stride : int, (int, int, int) or None
        None means kernel_size.
    padding : int or (int, int, int)
    ceil_mode, count_include_pad : bool
        As :func:`fastconv.avg_pool3d`.

    Notes
    -----
    Input (N, C, D, H, W), output (N, C, Do, Ho, Wo).

    Examples
    --------
    >>> from fastconv import layers as L
    >>> pool = L.AvgPool3d(3, stride=2, padding=1)
    >>> pool
    AvgPool3d(kernel_size=3, stride=2, padding=1)
    >>> pool.output_shape((1, 4, 9, 9, 9))
    (1, 4, 5, 5, 5)
    """

    _axes, _fn = ("D", "H", "W"), "avg_pool3d"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode,
                         count_include_pad)


# ---- Lp-norm pooling -----------------------------------------------------

class LPPool1d(_LPPoolNd):
    """1-D power-average (Lp-norm) pooling, as ``torch.nn.LPPool1d``.

    See :class:`LPPool2d`.

    Parameters
    ----------
    norm_type : float
    kernel_size : int or (int,)
    stride : int, (int,) or None
    ceil_mode : bool

    Notes
    -----
    Input (N, C, L), output (N, C, Lo), ``Lo = (L - k) // s + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> L.LPPool1d(2, 2)(np.array([[[3, 4, 0, 1]]], np.float32))
    array([[[5., 1.]]], dtype=float32)
    """

    _axes, _fn = ("L",), "lp_pool1d"


class LPPool2d(_LPPoolNd):
    """2-D power-average (Lp-norm) pooling, as ``torch.nn.LPPool2d``.

    ``y = (sum over the window of x**p) ** (1/p)``; ``p = 2`` is L2 pooling,
    ``p = inf`` max pooling of ``|x|``.  See :func:`fastconv.lp_pool2d` for
    the exact definition (PyTorch's) and :func:`fastconv.lp_pool2d_backward`
    for the gradient where a window's sum is 0 (0) or NaN.

    Parameters
    ----------
    norm_type : float
        p, non-zero; inf and -inf allowed.
    kernel_size : int or (int, int)
    stride : int, (int, int) or None
        None means kernel_size (shown as None, as torch).
    ceil_mode : bool

    Notes
    -----
    Input (N, C, H, W), output (N, C, Ho, Wo), ``Ho = (H - kh) // sh + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> pool = L.LPPool2d(2, 2)
    >>> pool
    LPPool2d(norm_type=2, kernel_size=2, stride=None, ceil_mode=False)
    >>> pool(np.array([[[[3, 0], [0, 4]]]], np.float32))
    array([[[[5.]]]], dtype=float32)
    """

    _axes, _fn = ("H", "W"), "lp_pool2d"


# ---- global average pooling ----------------------------------------------

class GlobalAvgPool2d(Layer):
    """Mean over each H x W plane: (N, C, H, W) -> (N, C, 1, 1).

    The same as ``torch.nn.AdaptiveAvgPool2d(1)`` (see
    :class:`AdaptiveAvgPool2d`); follow it with :class:`Flatten` to feed a
    :class:`Linear` classifier, as ResNet and NiN do.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> L.GlobalAvgPool2d()(np.ones((2, 8, 7, 7), np.float32)).shape
    (2, 8, 1, 1)
    """

    _op = "global_avg_pool2d"

    def output_shape(self, input_shape):
        """``(N, C, 1, 1)`` for an input of ``input_shape`` (N, C, H, W).

        Raises
        ------
        ValueError
            As :meth:`forward` would for that shape (not 4-D, H or W 0).
        """
        shape = _v.check_shape(input_shape, "x", self._op, "(N, C, H, W)")
        _v.global_geometry(self._op, shape, "x")
        return (shape[0], shape[1], 1, 1)

    def _rf_geometry(self):
        return "global"

    def _forward(self, x):
        self._cache = x.shape
        return self._kernels.global_avg_pool2d(x)

    def _backward(self, grad_out):
        return self._kernels.global_avg_pool2d_backward(grad_out, self._cache)


class AdaptiveAvgPool2d(GlobalAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` for ``output_size`` 1 only (global pooling).

    Provided under torch's name so that models written for PyTorch
    (torchvision's ResNet ends with ``AdaptiveAvgPool2d((1, 1))``) translate
    layer by layer.  Other output sizes would need windows of varying size,
    which fastconv's kernels do not have; they are refused at construction
    rather than computed wrongly.

    Parameters
    ----------
    output_size : 1 or (1, 1)

    Raises
    ------
    ValueError
        Any other output_size (the message points to AvgPool2d).

    Examples
    --------
    >>> from fastconv import layers as L
    >>> L.AdaptiveAvgPool2d((1, 1))
    AdaptiveAvgPool2d(output_size=(1, 1))
    """

    def __init__(self, output_size):
        super().__init__()
        ok = (output_size == 1 and _v.is_int(output_size)) or (
            isinstance(output_size, (tuple, list)) and len(output_size) == 2
            and all(_v.is_int(v) and v == 1 for v in output_size))
        if not ok:
            raise ValueError(
                f"AdaptiveAvgPool2d: only output_size 1 or (1, 1) (global "
                f"average pooling) is supported, got {output_size!r}; for "
                f"other sizes use AvgPool2d with an explicit kernel_size and "
                f"stride"
            )
        self.output_size = (tuple(output_size) if isinstance(output_size, list)
                            else output_size)

    def _extra_repr(self):
        return f"output_size={self.output_size}"


# ---- batch normalisation -------------------------------------------------

class BatchNorm2d(Layer):
    """Batch normalisation over (N, H, W) per channel, as ``torch.nn.BatchNorm2d``.

    Training mode normalises with the batch mean and biased variance and
    updates ``running_mean``/``running_var`` with the unbiased variance:
    ``running = (1 - momentum) * running + momentum * batch_stat``
    (``momentum=None``: cumulative average).  Evaluation mode normalises
    with the running statistics.

    Parameters
    ----------
    num_features : int
        C.
    eps : float
    momentum : float or None
    dtype : float32 or float64, keyword-only

    Attributes
    ----------
    params : {"weight": (C,) ones, "bias": (C,) zeros}
    buffers : {"running_mean": (C,) zeros, "running_var": (C,) ones,
               "num_batches_tracked": () int64}

    Notes
    -----
    Input and output (N, C, H, W).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *,
                 dtype=np.float32):
        super().__init__()
        op = "BatchNorm2d"
        self.num_features = _v.positive_int(num_features, "num_features", op)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.dtype = _check_dtype(dtype, op)
        C = self.num_features
        self._params["weight"] = np.ones(C, dtype=self.dtype)
        self._params["bias"] = np.zeros(C, dtype=self.dtype)
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}
        self._buffers["running_mean"] = np.zeros(C, dtype=self.dtype)
        self._buffers["running_var"] = np.ones(C, dtype=self.dtype)
        self._buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)

    def _check_input(self, shape):
        shape = tuple(shape)
        if len(shape) != 4 or shape[1] != self.num_features:
            raise ValueError(
                f"{self._name()}: expects input of shape (N, "
                f"{self.num_features}, H, W), got shape {shape}"
                f"{_v.nhwc_hint(shape, self.num_features)}"
            )
        if self.training and shape[0] * shape[2] * shape[3] < 2:
            raise ValueError(
                f"{self._name()}: training needs more than 1 value per "
                f"channel, got input of shape {shape}"
            )

    _fuses_relu = True

    def _forward(self, x, relu=False):
        self._check_param_dtype(x)
        self._check_input(x.shape)
        buf = self._buffers
        m = self.momentum
        if self.training:
            buf["num_batches_tracked"] += 1
            if m is None:                       # cumulative average
                m = 1.0 / float(buf["num_batches_tracked"])
        elif m is None:
            m = 0.0                             # unused in evaluation
        y, mean, invstd = self._kernels.batch_norm2d(
            x, buf["running_mean"], buf["running_var"], self._params["weight"],
            self._params["bias"], self.training, m, self.eps, relu=relu,
            out=self._buffer(x.shape, x.dtype), return_stats=True)
        # x is the previous layer's output, kept alive anyway: the backward
        # recomputes the normalised input from it rather than storing it
        self._cache = (x, mean, invstd, self.training, y if relu else None)
        return y

    def _backward(self, grad_out):
        x, mean, invstd, batch_stats, y = self._cache
        gx, gw, gb = self._kernels.batch_norm2d_backward(
            grad_out, x, mean, invstd, self._params["weight"], training=batch_stats,
            y=y, out=self._grad_out_buffer(grad_out))
        self._grads["weight"] += gw
        self._grads["bias"] += gb
        return gx

    def _extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    # shape protocol
    def output_shape(self, input_shape):
        shape = self._shape_arg(input_shape)
        self._check_input(shape)
        return shape

    def _rf_geometry(self):
        return None


# ---- activation, reshaping, dropout --------------------------------------

class _Elementwise(Layer):
    """The shape protocol of element-wise layers (ReLU, Dropout): the output
    has the input's shape and the receptive field is unchanged.  summary()
    lists them as "not counted" (the notes fold ReLU into the CONV row),
    although they allocate their output."""

    _summary_in_place = True

    def output_shape(self, input_shape):
        return self._shape_arg(input_shape)

    def _rf_geometry(self):
        return None


class ReLU(_Elementwise):
    """Rectified linear unit ``max(x, 0)``, any input shape.

    The gradient is passed where ``x > 0`` (0 at ``x == 0``, as PyTorch).
    """

    def _forward(self, x):
        y = self._kernels.relu(x, out=self._buffer(x.shape, x.dtype))
        self._cache = y                 # the gradient passes where y > 0
        return y

    def _backward(self, grad_out):
        return self._kernels.relu_backward(grad_out, self._cache,
                                           out=self._grad_out_buffer(grad_out))


class Flatten(Layer):
    """Flatten dims ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``.

    Parameters
    ----------
    start_dim, end_dim : int
        Defaults turn (N, C, H, W) into (N, C*H*W).
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def _flat_shape(self, shape):
        shape = tuple(shape)
        nd = len(shape)
        s = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        e = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not 0 <= s <= e < nd:
            raise ValueError(
                f"{self._name()}: dims {self.start_dim}..{self.end_dim} do not "
                f"fit an input of shape {shape}"
            )
        return shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]

    def _forward(self, x):
        out = self._flat_shape(x.shape)
        self._cache = x.shape
        return x.reshape(out)

    def _backward(self, grad_out):
        return grad_out.reshape(self._cache)

    def _extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    # shape protocol (a view: summary() counts no memory for it)
    _summary_in_place = True

    def output_shape(self, input_shape):
        return self._flat_shape(self._shape_arg(input_shape))

    def _rf_geometry(self):
        return None


class Dropout(_Elementwise):
    """Inverted dropout, as ``torch.nn.Dropout``; identity in eval mode.

    In training mode each element is zeroed with probability ``p`` and the
    survivors are scaled by ``1 / (1 - p)``; backward applies the same mask.

    Parameters
    ----------
    p : float in [0, 1]
    rng : None, int or numpy.random.Generator, keyword-only
        Source of the masks (None: a fresh ``default_rng()``).
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p!r}")
        self.p = float(p)
        self._rng = _v.as_rng(rng)

    def _forward(self, x):
        if not self.training or self.p == 0.0:
            self._cache = None                # identity: nothing to keep
            return x.copy()
        if self.p == 1.0:
            mask = np.zeros(x.shape, dtype=x.dtype)
        else:
            keep = self._rng.random(x.shape) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        self._cache = mask
        return x * mask

    def _backward(self, grad_out):
        if self._cache is None:
            return grad_out.copy()
        return grad_out * self._cache

    def _extra_repr(self):
        return f"p={self.p}"


# ---- fully connected -----------------------------------------------------

class Linear(Layer):
    """Fully connected layer ``y = x @ weight.T + bias``, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : float32 or float64, keyword-only
    rng : None, int or numpy.random.Generator, keyword-only

    Attributes
    ----------
    params : {"weight": (out_features, in_features), "bias": (out_features,)}
        Initialised ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` as
        PyTorch does.

    Notes
    -----
    Input (N, in_features), output (N, out_features).  Put a
    :class:`Flatten` before it to feed it feature maps.
    """

    def __init__(self, in_features, out_features, bias=True, *,
                 dtype=np.float32, rng=None):
        super().__init__()
        op = "Linear"
        self.in_features = _v.positive_int(in_features, "in_features", op)
        self.out_features = _v.positive_int(out_features, "out_features", op)
        self.dtype = _check_dtype(dtype, op)
        rng = _v.as_rng(rng)
        bound = 1.0 / math.sqrt(in_features)
        self._params["weight"] = rng.uniform(
            -bound, bound, (out_features, in_features)).astype(self.dtype)
        if _v.check_flag(bias, "bias", op):
            self._params["bias"] = rng.uniform(
                -bound, bound, out_features).astype(self.dtype)
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    def _check_input(self, shape):
        shape = tuple(shape)
        if len(shape) != 2:
            hint = (" (put a Flatten() layer before it)" if len(shape) > 2
                    else "")
            raise ValueError(
                f"{self._name()}: expects 2-D input (N, {self.in_features}), "
                f"got shape {shape}{hint}"
            )
        if shape[1] != self.in_features:
            raise ValueError(
                f"{self._name()}: expects input of shape (N, "
                f"{self.in_features}), got shape {shape}"
            )

    _fuses_relu = True

    def _forward(self, x, relu=False):
        self._check_param_dtype(x)
        self._check_input(x.shape)
        y = self._kernels.linear(
            x, self._params["weight"], self._params.get("bias"), relu=relu,
            out=self._buffer((x.shape[0], self.out_features), x.dtype))
        self._cache = (x, y if relu else None)
        return y

    def _backward(self, grad_out):
        x, y = self._cache
        k = self._kernels
        if y is not None:                       # ReLU fused: mask by the output
            grad_out = k.relu_backward(grad_out, y, out=self._grad_out_buffer(grad_out))
        gx, gw, gb = k.linear_backward(grad_out, x, self._params["weight"])
        self._grads["weight"] += gw
        if "bias" in self._grads:
            self._grads["bias"] += gb
        return gx

    def _extra_repr(self):
        return (f"in_features={self.in_features}, out_features="
                f"{self.out_features}, bias={'bias' in self._params}")

    # shape protocol
    def output_shape(self, input_shape):
        shape = self._shape_arg(input_shape)
        self._check_input(shape)
        return (shape[0], self.out_features)

    def _rf_geometry(self):
        return "global"
