"""Optimisers with ``torch.optim``'s update rules, for :mod:`fastconv.layers`.

An optimiser reads ``model.params[name]`` and ``model.grads[name]`` by name
at every :meth:`step` and updates the parameter arrays in place, so it
keeps working after ``load_state_dict`` (which also writes in place).  Its
per-parameter state (momentum buffers, Adam moments) is keyed by the same
names.

Examples
--------
>>> import numpy as np
>>> from fastconv import layers as L, losses, optim
>>> model = L.Sequential(L.Flatten(), L.Linear(4, 3, rng=0))
>>> opt = optim.SGD(model, lr=0.1, momentum=0.9)
>>> x, y = np.ones((2, 1, 2, 2), np.float32), np.array([0, 2])
>>> opt.zero_grad()
>>> loss, g = losses.softmax_cross_entropy(model(x), y)
>>> _ = model.backward(g); opt.step()
"""

import math

import numpy as np

from . import _ext
from ._typing import Model

__all__ = ["SGD", "Adam"]


def _flat(a):
    """A 1-D view of a parameter-shaped array, which the update writes
    through (parameters and their state are C-contiguous by construction)."""
    if not a.flags.c_contiguous:
        raise ValueError("optimiser: parameters, gradients and state must be "
                         "C-contiguous arrays")
    return a.reshape(-1)


def _non_negative(value, name, op):
    value = float(value)
    if not value >= 0.0:
        raise ValueError(f"{op}: {name} must be >= 0, got {value!r}")
    return value


class _Optimizer:
    def __init__(self, model: Model) -> None:
        if not (hasattr(model, "params") and hasattr(model, "grads")):
            raise TypeError(
                f"{type(self).__name__}: model must be a fastconv.layers.Layer "
                f"(with .params and .grads), got {type(model).__name__}"
            )
        self.model = model
        self.state = {}

    def zero_grad(self) -> None:
        """Set the model's gradients to zero (``model.zero_grad()``)."""
        self.model.zero_grad()

    def _pairs(self):
        params, grads = self.model.params, self.model.grads
        for name, p in params.items():
            yield name, p, grads[name]


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p
        buf = g                       (first step)
        buf = momentum * buf + g      (later steps)
        g = g + momentum * buf        if nesterov else buf   (momentum > 0)
        p -= lr * g

    Parameters
    ----------
    model : fastconv.layers.Layer
    lr : float
    momentum, weight_decay : float
    nesterov : bool
        Needs momentum > 0.
    """

    def __init__(self, model: Model, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(model)
        self.lr = _non_negative(lr, "lr", "SGD")
        self.momentum = _non_negative(momentum, "momentum", "SGD")
        self.weight_decay = _non_negative(weight_decay, "weight_decay", "SGD")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        for name, p, g in self._pairs():
            buf, first = None, False
            if self.momentum:
                buf = self.state.get(name)
                first = buf is None
                if first:
                    buf = self.state[name] = np.empty_like(p)
            _ext.sgd_step(_flat(p), _flat(g), None if buf is None else _flat(buf),
                          self.lr, self.momentum, self.weight_decay, self.nesterov,
                          first)


class Adam(_Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam`` (L2 weight decay, no amsgrad).

    At step t, for each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    model : fastconv.layers.Layer
    lr : float
    betas : (float, float)
    eps, weight_decay : float
    """

    def __init__(self, model: Model, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(model)
        self.lr = _non_negative(lr, "lr", "Adam")
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas!r}")
        self.betas = (float(b1), float(b2))
        self.eps = _non_negative(eps, "eps", "Adam")
        self.weight_decay = _non_negative(weight_decay, "weight_decay", "Adam")

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        b1, b2 = self.betas
        for name, p, g in self._pairs():
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = {
                    "step": 0, "exp_avg": np.zeros_like(p),
                    "exp_avg_sq": np.zeros_like(p)}
            st["step"] += 1
            t = st["step"]
            _ext.adam_step(_flat(p), _flat(g), _flat(st["exp_avg"]),
                           _flat(st["exp_avg_sq"]), b1, b2, self.eps,
                           self.weight_decay, self.lr / (1 - b1 ** t),
                           math.sqrt(1 - b2 ** t))
