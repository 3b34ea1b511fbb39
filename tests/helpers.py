"""Helpers shared by the test modules (not fixtures: those are in conftest.py).

``pyproject.toml`` puts ``tests/`` on ``sys.path`` (pytest's ``pythonpath``
setting), so a test module says ``from helpers import pair``; that works from
the checkout, from the sdist and from the copy of ``tests/`` that
``.ci/package`` and cibuildwheel run.

Geometry
    ``ntuple``, ``pair``, ``triple``: an int or a sequence as a tuple;
    ``maybe_int``: an int or a pair, drawn in a hypothesis strategy;
    ``out_size``, ``pool_shape``: torch's output sizes of a sliding window.
Tolerances
    ``RTOL``, ``ATOL``, ``tolerance``: the policy explained in conftest.py
    (the ``tol`` fixture is ``tolerance``).
Data and oracles
    ``pool_data``: pooling inputs with ties, NaN and -inf;
    ``as_torch``, ``torch_max_pool``: PyTorch tensors and max pooling;
    ``central_difference``, ``numerical_grad``: finite differences;
    ``assert_adjoint``: a linear map against its adjoint (backward);
    ``assert_output_shape_raises_like_forward``: a layer's shape protocol.
"""

import math

import numpy as np
import pytest

DTYPES = [np.float32, np.float64]

# Base tolerances for one term (conftest.py's docstring: the scaling rule).
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
ATOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def tolerance(dtype, n_terms=1):
    """rtol/atol for comparing results that each sum ``n_terms`` products."""
    dt = np.dtype(dtype)
    scale = max(1.0, math.sqrt(n_terms))
    return {"rtol": RTOL[dt], "atol": ATOL[dt] * scale}


# --------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------

def ntuple(v, n):
    """``v`` repeated ``n`` times if it is an int, else ``tuple(v)``."""
    return (v,) * n if isinstance(v, int) else tuple(v)


def pair(v):
    return ntuple(v, 2)


def triple(v):
    return ntuple(v, 3)


def maybe_int(draw, h, w):
    """In a hypothesis strategy: ``h`` or ``(h, w)`` (an int only when
    ``h == w``, then either form)."""
    from hypothesis import strategies as st  # conftest.py imports this module

    if h == w and draw(st.booleans()):
        return h
    return (h, w)


def out_size(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    """Output length of a sliding window along one axis, as torch computes it:
    ``(size + 2*padding - dilation*(kernel - 1) - 1) / stride + 1`` rounded
    down, or with ``ceil_mode`` up unless the last window would then start in
    the right padding (torch's pooling_output_shape)."""
    num = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return num // stride + 1
    out = -(-num // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


def pool_shape(shape, kernel, stride, padding, dilation, ceil_mode):
    """The (N, C, *out) shape of pooling an (N, C, *spatial) input (any
    number of spatial axes; ``stride=None`` means the kernel size)."""
    n = len(shape) - 2
    k = ntuple(kernel, n)
    s = k if stride is None else ntuple(stride, n)
    return tuple(shape[:2]) + tuple(
        out_size(*a, ceil_mode) for a in zip(shape[2:], k, s, ntuple(padding, n),
                                             ntuple(dilation, n)))


# --------------------------------------------------------------------------
# data and oracles
# --------------------------------------------------------------------------

POOL_KINDS = ["normal", "small_ints", "all_equal", "nan_sparse", "nan_dense", "neg_inf"]


def pool_data(kind, shape, dtype, rng):
    """Pooling input of one of ``POOL_KINDS``: standard normal; small
    integers (many ties); all equal; a few NaN (mostly one per window, if
    any); many NaN (several per window); -inf except a tenth of the cells
    (whole windows of -inf next to the padding)."""
    if kind == "normal":
        x = rng.standard_normal(shape)
    elif kind == "small_ints":
        x = rng.integers(-1, 2, size=shape).astype(np.float64)
    elif kind == "all_equal":
        x = np.full(shape, 0.5)
    elif kind == "nan_sparse":
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.08] = np.nan
    elif kind == "nan_dense":
        x = rng.integers(-1, 2, size=shape).astype(np.float64)
        x[rng.random(shape) < 0.45] = np.nan
    elif kind == "neg_inf":
        x = np.full(shape, -np.inf)
        mask = rng.random(shape) < 0.1
        x[mask] = rng.standard_normal(int(mask.sum()))
    else:  # pragma: no cover
        raise AssertionError(kind)
    return x.astype(dtype)


def as_torch(torch, a, grad=False):
    """A torch tensor holding a copy of ``a`` (requiring grad if ``grad``)."""
    t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_() if grad else t


def torch_max_pool(torch, x, k, s, p, d, ceil_mode):
    """torch's max_pool{1,2,3}d of ``x`` (by its rank) with indices, as arrays."""
    n = x.ndim - 2
    fn = getattr(torch.nn.functional, f"max_pool{n}d")
    y, idx = fn(torch.from_numpy(x.copy()), ntuple(k, n),
                stride=None if s is None else ntuple(s, n), padding=ntuple(p, n),
                dilation=ntuple(d, n), ceil_mode=ceil_mode, return_indices=True)
    return y.numpy(), idx.numpy()


def central_difference(f, arr, idx, h):
    """``(f() - f()) / 2h`` with ``arr[idx]`` raised, then lowered, by ``h``:
    ``f`` reads ``arr``, which is changed in place and restored."""
    old = arr[idx]
    arr[idx] = old + h
    plus = f()
    arr[idx] = old - h
    minus = f()
    arr[idx] = old
    return (plus - minus) / (2 * h)


def numerical_grad(f, x, dout, h=1e-6):
    """d<f(x), dout>/dx by central differences at every element of ``x``
    (changed in place and restored)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        g[idx] = central_difference(lambda: np.sum(f(x) * dout), x, idx, h)
    return g


def assert_adjoint(y, g, x, gx, rtol, msg=""):
    """``<y, g> == <x, gx>``: y = A x and gx = A^T g for a linear map A, in
    float64, within ``rtol * (<|x|, |gx|> + 1)``."""
    y, g, x, gx = (np.asarray(a, np.float64) for a in (y, g, x, gx))
    lhs, rhs = np.vdot(y, g), np.vdot(x, gx)
    scale = np.vdot(np.abs(x), np.abs(gx)) + 1
    assert abs(lhs - rhs) <= rtol * scale, f"{msg}: {lhs} vs {rhs}"


def assert_output_shape_raises_like_forward(layer, shape):
    """``layer.output_shape(shape)`` raises the ValueError that calling the
    layer on zeros of that shape raises, word for word."""
    with pytest.raises(ValueError) as from_forward:
        layer(np.zeros(shape, np.float32))
    with pytest.raises(ValueError) as from_shape:
        layer.output_shape(shape)
    assert str(from_shape.value) == str(from_forward.value)
