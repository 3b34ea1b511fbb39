"""``torch.nn`` twins of the networks in :mod:`fastconv.models`.

Each function builds, with PyTorch's own modules, the same architecture as
the :mod:`fastconv.models` function of the same name and arguments, with the
same module tree, so that its ``state_dict`` has the same keys, in the same
order, as the fastconv model's :meth:`~fastconv.layers.Layer.state_dict`.
They serve the model benchmark (``fastconv bench --models``, which runs them
in a process of its own), the demo's comparison with PyTorch and the parity
tests.  They are written out by hand, layer by layer, not derived from the
fastconv models: a wrong stride or width in either is a difference the parity
tests see.

torch is imported inside the functions; importing this module does not
import it.

Examples
--------
>>> from fastconv import models, torch_models           # doctest: +SKIP
>>> ours = models.resnet20(rng=0)                        # doctest: +SKIP
>>> theirs = torch_models.load_from(torch_models.resnet20(), ours)  # doctest: +SKIP
"""

__all__ = ["resnet20", "vgg_small", "lenet", "mobilenet_small", "alexnet_small", "build",
           "load_state", "load_from"]


def _nn():
    import torch

    return torch.nn


def _residual_class():
    """``body(x) + shortcut(x)`` (identity when shortcut is None), with the
    attribute names of :class:`fastconv.layers.Residual`."""
    nn = _nn()

    class Residual(nn.Module):
        def __init__(self, body, shortcut=None):
            super().__init__()
            self.body = body
            self.shortcut = shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    return Residual


def _basic_block(nn, residual, cin, cout, stride=1):
    """:func:`fastconv.layers.basic_block`: Sequential(Residual(body, shortcut), ReLU)."""
    body = nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                 nn.BatchNorm2d(cout))
    return nn.Sequential(residual(body, shortcut), nn.ReLU())


def resnet20(num_classes=10):
    """Twin of :func:`fastconv.models.resnet20`; input (N, 3, 32, 32)."""
    nn, residual = _nn(), _residual_class()
    stages, c = [], 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        stages.append(nn.Sequential(_basic_block(nn, residual, c, width, stride),
                                    _basic_block(nn, residual, width, width),
                                    _basic_block(nn, residual, width, width)))
        c = width
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


def vgg_small(num_classes=10, *, hidden=256):
    """Twin of :func:`fastconv.models.vgg_small`; input (N, 3, 64, 64)."""
    nn = _nn()
    features, c = [], 3
    for item in (32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M"):
        if item == "M":
            features.append(nn.MaxPool2d(2, 2))
        else:
            features += [nn.Conv2d(c, item, 3, padding=1), nn.ReLU()]
            c = item
    return nn.Sequential(nn.Sequential(*features), nn.Flatten(), nn.Sequential(
        nn.Linear(256 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)))


def lenet(num_classes=10, *, input_shape=(1, 28, 28), channels=(16, 32), hidden=64):
    """Twin of :func:`fastconv.models.lenet` (the demo's network)."""
    nn = _nn()
    c, h, w = input_shape
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * (h // 4) * (w // 4), hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes))


def mobilenet_small(num_classes=10):
    """Twin of :func:`fastconv.models.mobilenet_small`; input (N, 3, 32, 32)."""
    nn = _nn()
    layers, c = [nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                 nn.ReLU()], 32
    for f, stride in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
        layers.append(nn.Sequential(
            nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, f, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU()))
        c = f
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def alexnet_small(num_classes=10, *, hidden=256):
    """Twin of :func:`fastconv.models.alexnet_small`; input (N, 3, 127, 127)."""
    nn = _nn()
    return nn.Sequential(
        nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 128, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(128, 192, 3, padding=1), nn.ReLU(),
            nn.Conv2d(192, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2)),
        nn.Flatten(),
        nn.Sequential(nn.Linear(128 * 3 * 3, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)))


def build(name, **kwargs):
    """The twin named ``name`` (a function of this module), built with ``kwargs``.

    Raises
    ------
    ValueError
        An unknown name.
    """
    if name not in ("resnet20", "vgg_small", "lenet", "mobilenet_small", "alexnet_small"):
        raise ValueError(f"torch_models.build: unknown model {name!r}")
    return globals()[name](**kwargs)


def load_state(module, state):
    """Copy a fastconv state dict into ``module``, after checking its keys.

    Parameters
    ----------
    module : torch.nn.Module
        Converted to the state's float dtype first.
    state : mapping of str -> ndarray
        A fastconv model's :meth:`~fastconv.layers.Layer.state_dict` (or
        the ``.npz`` its :meth:`~fastconv.layers.Layer.save` wrote): it must
        have exactly the twin's keys, in the same order.

    Returns
    -------
    module

    Raises
    ------
    ValueError
        The keys differ (the message lists both).
    """
    import numpy as np
    import torch

    state = {k: np.asarray(state[k]) for k in state}
    keys = list(module.state_dict())
    if keys != list(state):
        raise ValueError(f"load_state: the twin's state_dict keys {keys} are not the "
                         f"model's {list(state)}")
    dtype = next(v.dtype for v in state.values() if v.dtype.kind == "f")
    module.to(getattr(torch, dtype.name))
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return module


def load_from(module, model):
    """Copy a fastconv model's parameters and buffers into its twin ``module``.

    Parameters
    ----------
    module : torch.nn.Module
    model : fastconv.layers.Layer

    Returns
    -------
    module
        See :func:`load_state`.
    """
    return load_state(module, model.state_dict())
