"""Numerical gradient check of a layer's or model's ``backward``.

:func:`gradcheck` compares the analytic gradients of a random projection
``loss = <model(x), r>`` (``r`` standard normal, seeded) with central
differences ``(loss(a + eps) - loss(a - eps)) / (2 eps)``, for the input and
for every parameter, in float64 on a deep copy of the model: the caller's
model, its parameters, buffers and random state, and ``x`` are left as they
were.
"""

import copy
import math
import numbers

import numpy as np

from . import _validation as _v
from ._typing import Array, Float
from .layers import Dropout, Layer

__all__ = ["gradcheck"]


def gradcheck(layer_or_model: Layer, x: Array[Float], *, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, n_checks: int | None = None,
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Check ``backward`` against central differences, in float64.

    Parameters
    ----------
    layer_or_model : fastconv.layers.Layer
        Checked in its current mode (``train()`` or ``eval()``).  In training
        mode every :class:`~fastconv.layers.Dropout` is re-seeded before each
        forward pass so all passes use the same mask; call ``eval()`` first
        to check the model without dropout.  BatchNorm2d in training mode is
        checked with batch statistics (its running statistics, updated on
        the copy only, do not enter the output).
    x : ndarray, float32 or float64
        An input the model accepts, e.g. (N, C, H, W).  Avoid inputs at
        kinks (ties in max pooling, ReLU inputs within ``eps`` of 0):
        random normal data is fine.
    eps : float
        Finite-difference step.
    atol, rtol : float
        A coordinate passes when
        ``|numeric - analytic| <= atol + rtol * |numeric|``.
    n_checks : int or None
        None: check every coordinate of every array.  An int: check that
        many random coordinates per array (all of a smaller array).
    seed : int
        Seeds the projection ``r``, the coordinates and the dropout masks.
    raise_exception : bool
        Raise on failure (default) or return False.

    Returns
    -------
    bool
        True when every checked coordinate passes; False on failure when
        ``raise_exception`` is False.

    Raises
    ------
    AssertionError
        On failure with ``raise_exception=True``: the message names the
        array (``"input"`` or a parameter name such as ``"0.weight"``), the
        worst coordinate, the numeric and analytic values.
    TypeError
        If layer_or_model is not a Layer or x not a float ndarray.
    ValueError
        If eps is not a positive finite number, atol or rtol not a
        non-negative one, n_checks neither None nor a positive int.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import layers as L
    >>> from fastconv.gradcheck import gradcheck
    >>> conv = L.Conv2d(2, 3, 3, padding=1, rng=0)
    >>> gradcheck(conv, np.random.default_rng(0).standard_normal((2, 2, 5, 5)))
    True
    """
    if not isinstance(layer_or_model, Layer):
        raise TypeError(
            f"gradcheck: layer_or_model must be a fastconv.layers.Layer, got "
            f"{type(layer_or_model).__name__}"
        )
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(
            f"gradcheck: x must be a floating numpy.ndarray, got "
            f"{getattr(x, 'dtype', type(x).__name__)}"
        )
    for name, value, low in (("eps", eps, 0.0), ("atol", atol, None),
                             ("rtol", rtol, None)):
        ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
              and math.isfinite(value)
              and (value > low if low is not None else value >= 0))
        if not ok:
            need = "positive" if low is not None else "non-negative"
            raise ValueError(f"gradcheck: {name} must be a {need} finite "
                             f"number, got {value!r}")
    if n_checks is not None and (not _v.is_int(n_checks) or n_checks < 1):
        raise ValueError(f"gradcheck: n_checks must be None or a positive "
                         f"int, got {n_checks!r}")
    raise_exception = _v.check_flag(raise_exception, "raise_exception",
                                    "gradcheck")
    model = copy.deepcopy(layer_or_model).to(np.float64)
    x = np.array(x, dtype=np.float64)             # a private copy
    rng = np.random.default_rng(seed)
    dropouts = [m for m in model._walk() if isinstance(m, Dropout)]

    def forward():
        for i, d in enumerate(dropouts):
            d._rng = np.random.default_rng([seed, i])
        return model.forward(x)

    y = forward()
    r = rng.standard_normal(y.shape)
    model.zero_grad()
    analytic = {"input": model.backward(r)}
    analytic.update({k: g.copy() for k, g in model.grads.items()})
    arrays = {"input": x, **model.params}

    def loss():
        return float(np.sum(forward() * r))

    for name, arr in arrays.items():
        size = arr.size
        if n_checks is None or n_checks >= size:
            coords = np.arange(size)
        else:
            coords = np.sort(rng.choice(size, int(n_checks), replace=False))
        flat = arr.reshape(-1)                    # a view: edits reach model
        ana = analytic[name].reshape(-1)
        worst, n_bad = None, 0
        for i in coords:
            orig = flat[i]
            flat[i] = orig + eps
            plus = loss()
            flat[i] = orig - eps
            minus = loss()
            flat[i] = orig
            num = (plus - minus) / (2 * eps)
            tol = atol + rtol * abs(num)
            diff = abs(num - ana[i])
            ratio = diff / tol if tol > 0 else (0.0 if diff == 0 else np.inf)
            if not ratio <= 1:                    # NaN fails too
                n_bad += 1
                if worst is None or not ratio <= worst[0]:
                    worst = (ratio, i, num, ana[i], tol)
        if n_bad:
            if not raise_exception:
                return False
            _, i, num, a, tol = worst
            index = np.unravel_index(i, arr.shape)
            raise AssertionError(
                f"gradcheck: gradient of {name!r} (shape {arr.shape}) is "
                f"wrong at index {tuple(int(k) for k in index)}: numeric "
                f"{num:.8g}, analytic {a:.8g}, |difference| "
                f"{abs(num - a):.3g} > atol + rtol*|numeric| = {tol:.3g} "
                f"({n_bad} of {len(coords)} checked coordinates fail)"
            )
    return True
