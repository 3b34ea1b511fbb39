"""lp_pool2d / lp_pool1d (+ backward) and LPPool2d / LPPool1d: torch parity for
p in {1, 1.5, 2, 3, 0.5, -2, inf, -inf}, NaN/zero-window gradients, errors."""

import numpy as np
import pytest
from helpers import as_torch

import fastconv
import fastconv.reference
from fastconv import layers as L
from fastconv.gradcheck import gradcheck

NORMS = [1, 1.5, 2, 3, 0.5, -2, float("inf"), float("-inf")]

# (shape, kernel_size, stride, ceil_mode)
CASES_2D = [
    ((2, 3, 8, 8), 2, None, False),
    ((2, 2, 9, 7), 3, 2, False),
    ((2, 2, 9, 7), 3, 2, True),          # partial windows scaled by kh*kw / inside
    ((1, 2, 7, 10), (3, 2), (2, 1), True),
    ((1, 1, 5, 5), 5, None, False),
]
CASES_1D = [
    ((2, 3, 8), 2, None, False),
    ((2, 2, 11), 3, 2, False),
    ((2, 2, 10), 3, 2, True),
    ((1, 2, 5), 5, None, False),
]


def _data(kind, shape, dtype, rng):
    x = rng.standard_normal(shape)
    if kind == "positive":
        x = np.abs(x) + 0.1
    elif kind == "nan":
        x[rng.random(shape) < 0.15] = np.nan
    elif kind == "zeros":                 # whole zero windows and zero cells
        x[..., : shape[-1] // 2] = 0
        x[rng.random(shape) < 0.3] = 0
    return x.astype(dtype)


def _tols(dtype, p):
    # pow() in float32 differs from torch's by a few ulp, amplified by 1/p
    # and p-1 in the gradient; float64 is compared tightly.
    if dtype == np.float64:
        return dict(rtol=1e-9, atol=1e-11)
    return dict(rtol=2e-4, atol=1e-5)


def _check(fn_name, impl, torch, x, p, k, s, ceil, dtype, rng):
    F = torch.nn.functional
    x0 = x.copy()
    y = getattr(impl, fn_name)(x, p, k, s, ceil)
    xt = as_torch(torch, x, True)
    # torch's lp_pool1d rejects a 1-tuple kernel_size; it is always an int here.
    yt = getattr(F, fn_name)(xt, p, k, s, ceil)
    assert y.shape == tuple(yt.shape) and y.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), equal_nan=True, **_tols(dtype, p))
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = getattr(impl, fn_name + "_backward")(g, x, p, k, s, ceil)
    yt.backward(as_torch(torch, g))
    assert gx.shape == x.shape and gx.dtype == dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), equal_nan=True, **_tols(dtype, p))
    np.testing.assert_array_equal(x, x0)
    return y, gx


@pytest.mark.parametrize("kind", ["normal", "positive", "zeros"])
@pytest.mark.parametrize("p", NORMS, ids=str)
@pytest.mark.parametrize("case", CASES_2D, ids=[f"case{i}" for i in range(len(CASES_2D))])
def test_lp_pool2d_matches_torch(case, p, kind, impl, dtype, rng, torch):
    shape, k, s, ceil = case
    if kind == "zeros" and p < 0:
        kind = "positive"        # 0 ** -2 = inf: covered by torch, but uninformative
    x = _data(kind, shape, dtype, rng)
    _check("lp_pool2d", impl, torch, x, p, k, s, ceil, dtype, rng)


@pytest.mark.parametrize("kind", ["normal", "positive", "zeros", "nan"])
@pytest.mark.parametrize("p", NORMS, ids=str)
@pytest.mark.parametrize("case", CASES_1D, ids=[f"case{i}" for i in range(len(CASES_1D))])
def test_lp_pool1d_matches_torch(case, p, kind, impl, dtype, rng, torch):
    shape, k, s, ceil = case
    if kind == "zeros" and p < 0:
        kind = "positive"
    x = _data(kind, shape, dtype, rng)
    _check("lp_pool1d", impl, torch, x, p, k, s, ceil, dtype, rng)


def test_lp_pool_by_definition(impl, dtype, rng):
    """An independent hand loop: (sum of x**p over the window) ** (1/p)."""
    x = (np.abs(rng.standard_normal((2, 3, 7, 6))) + 0.1).astype(dtype)
    for p in (1, 2, 3, 0.5):
        y = impl.lp_pool2d(x, p, (3, 2), (2, 2))
        want = np.empty((2, 3, 3, 3))
        for i in range(3):
            for j in range(3):
                win = x[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 2].astype(np.float64)
                want[:, :, i, j] = (win ** p).sum(axis=(2, 3)) ** (1 / p)
        rt = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y, want, rtol=rt)
    np.testing.assert_array_equal(impl.lp_pool2d(x, float("inf"), 2), fastconv.max_pool2d(x, 2))
    x1 = x[:, :, 0, :]
    np.testing.assert_allclose(impl.lp_pool1d(x1, 2, 3, 1),
                               np.sqrt(np.lib.stride_tricks.sliding_window_view(
                                   x1.astype(np.float64) ** 2, 3, axis=2).sum(-1)),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_lp_pool_signs_and_zero_windows(impl):
    # p = 3 with a negative window sum: NaN value and NaN gradient (as torch);
    # p = 1: a plain (signed) sum; p = 2 on an all-zero window: value 0 and
    # gradient 0 (torch's relu in the definition), not NaN.
    x = np.array([[[1.0, -2.0, 3.0, 1.0, 0.0, 0.0]]])
    y3 = impl.lp_pool1d(x, 3, 2)
    assert np.isnan(y3[0, 0, 0]) and y3[0, 0, 1] == pytest.approx(28 ** (1 / 3))
    g3 = impl.lp_pool1d_backward(np.ones_like(y3), x, 3, 2)
    assert np.isnan(g3[0, 0, :2]).all() and g3[0, 0, 4:].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(impl.lp_pool1d(x, 1, 2), [[[-1.0, 4.0, 0.0]]])
    y2 = impl.lp_pool1d(x, 2, 2)
    g2 = impl.lp_pool1d_backward(np.ones_like(y2), x, 2, 2)
    assert y2[0, 0, 2] == 0 and g2[0, 0, 4:].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(g2[0, 0, :2], np.array([1.0, -2.0]) / np.sqrt(5))
    # p = inf / -inf: gradient to the max / min of |x|, times sign(x)
    gi = impl.lp_pool1d_backward(np.ones((1, 1, 3)), x, float("inf"), 2)
    np.testing.assert_array_equal(gi, [[[0.0, -1.0, 1.0, 0.0, 0.0, 0.0]]])
    gm = impl.lp_pool1d_backward(np.ones((1, 1, 3)), x, float("-inf"), 2)
    np.testing.assert_array_equal(gm, [[[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]]])


def test_compiled_matches_reference(dtype, rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    for p in NORMS:
        a = fastconv.lp_pool2d(x, p, 3, 2, True)
        b = fastconv.reference.lp_pool2d(x, p, 3, 2, True)
        np.testing.assert_allclose(a, b, equal_nan=True, **_tols(dtype, p))
        g = rng.standard_normal(a.shape).astype(dtype)
        np.testing.assert_allclose(fastconv.lp_pool2d_backward(g, x, p, 3, 2, True),
                                   fastconv.reference.lp_pool2d_backward(g, x, p, 3, 2, True),
                                   equal_nan=True, **_tols(dtype, p))


def test_non_contiguous_and_tuple_arguments(impl, dtype, rng, torch):
    x = rng.standard_normal((3, 2, 10, 12)).astype(dtype).transpose(1, 0, 3, 2)[..., ::2]
    assert not x.flags.c_contiguous
    y, gx = _check("lp_pool2d", impl, torch, x, 2, (2, 3), (2, 1), False, dtype, rng)
    x1 = x[:, :, 0, :]
    np.testing.assert_array_equal(impl.lp_pool1d(x1, 2, (2,), (1,)), impl.lp_pool1d(x1, 2, 2, 1))
    g = np.ones(impl.lp_pool1d(x1, 2, 2, 1).shape, dtype)
    np.testing.assert_array_equal(impl.lp_pool1d_backward(g, x1, 2, (2,), (1,)),
                                  impl.lp_pool1d_backward(g, x1, 2, 2, 1))
    # numpy scalars as norm_type
    np.testing.assert_array_equal(impl.lp_pool1d(x1, np.float64(2.0), 2), impl.lp_pool1d(x1, 2, 2))


BAD = [
    (lambda m: m.lp_pool2d(np.ones((1, 1, 4, 4)), 0, 2), ValueError, "norm_type must be a non-zero"),
    (lambda m: m.lp_pool2d(np.ones((1, 1, 4, 4)), float("nan"), 2), ValueError, "non-zero"),
    (lambda m: m.lp_pool2d(np.ones((1, 1, 4, 4)), "2", 2), TypeError, "norm_type must be a real"),
    (lambda m: m.lp_pool2d(np.ones((1, 1, 4, 4)), True, 2), TypeError, "norm_type must be a real"),
    (lambda m: m.lp_pool2d(np.ones((1, 1, 4)), 2, 2), ValueError, r"4 dimensions \(N, C, H, W\)"),
    (lambda m: m.lp_pool2d(np.ones((1, 1, 4, 4)), 2, 5), ValueError, "larger than the padded input"),
    (lambda m: m.lp_pool2d_backward(np.ones((1, 1, 1, 1)), np.ones((1, 1, 4, 4)), 2, 2),
     ValueError, r"forward output's shape \(1, 1, 2, 2\)"),
    (lambda m: m.lp_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), np.ones((1, 1, 4, 4)), 2, 2),
     TypeError, "grad_out has dtype float32 but x has dtype float64"),
    (lambda m: m.lp_pool1d(np.ones((1, 1, 4, 4)), 2, 2), ValueError, r"3 dimensions \(N, C, L\)"),
    (lambda m: m.lp_pool1d(np.ones((1, 1, 4)), 2, (2, 2)), TypeError, "1-tuple"),
    (lambda m: m.lp_pool1d(np.ones((1, 1, 4)), 2, 5), ValueError, "kernel_size 5 .*L=4"),
    (lambda m: m.lp_pool1d_backward(np.ones((1, 1, 1)), np.ones((1, 1, 4)), 2, 2),
     ValueError, r"forward output's shape \(1, 1, 2\)"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_errors(call, exc, pattern, impl):
    with pytest.raises(exc, match=pattern):
        call(impl)


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["fastconv", "reference"])
@pytest.mark.parametrize("make, make_t, shape", [
    (lambda: L.LPPool2d(2, 3, 2), lambda nn: nn.LPPool2d(2, 3, 2), (2, 3, 9, 8)),
    (lambda: L.LPPool2d(1.5, (2, 3), ceil_mode=True),
     lambda nn: nn.LPPool2d(1.5, (2, 3), ceil_mode=True), (2, 2, 7, 8)),
    (lambda: L.LPPool1d(3, 2), lambda nn: nn.LPPool1d(3, 2), (2, 3, 9)),
    (lambda: L.LPPool1d(float("inf"), 3, 1), lambda nn: nn.LPPool1d(float("inf"), 3, 1),
     (2, 3, 9)),
], ids=["2d_p2", "2d_p1.5_ceil", "1d_p3", "1d_inf"])
def test_layers_match_torch(make, make_t, shape, backend, dtype, rng, torch):
    layer, tm = make().set_backend(backend), make_t(torch.nn)
    assert repr(layer) == repr(tm)
    x = (np.abs(rng.standard_normal(shape)) + 0.1).astype(dtype)
    y = layer(x)
    xt = as_torch(torch, x, True)
    yt = tm(xt)
    assert y.shape == tuple(yt.shape) == layer.output_shape(shape)
    np.testing.assert_allclose(y, yt.detach().numpy(), **_tols(dtype, 2))
    g = rng.standard_normal(y.shape).astype(dtype)
    yt.backward(as_torch(torch, g))
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), **_tols(dtype, 2))


@pytest.mark.parametrize("layer", [L.LPPool2d(2, 2), L.LPPool2d(3, 3, 2, ceil_mode=True),
                                   L.LPPool1d(2, 3, 1), L.LPPool1d(1.5, 2)], ids=repr)
def test_layers_gradcheck(layer, rng):
    shape = (2, 2, 7, 6) if isinstance(layer, L.LPPool2d) else (2, 2, 7)
    x = np.abs(rng.standard_normal(shape)) + 0.2      # away from 0 and sign changes
    assert gradcheck(layer, x)


def test_layer_shape_protocol():
    assert L.LPPool2d(2, 3, 2).output_shape((2, 4, 9, 8)) == (2, 4, 4, 3)
    assert L.LPPool2d(2, 3, 2, ceil_mode=True).output_shape((2, 4, 9, 8)) == (2, 4, 4, 4)
    assert L.LPPool2d(2, (3, 2))._rf_geometry() == ((3, 3, 0, 1), (2, 2, 0, 1))
    assert L.LPPool2d(2, 3, (2, 1))._rf_geometry() == ((3, 2, 0, 1), (3, 1, 0, 1))
    assert L.LPPool1d(2, 3).output_shape((1, 2, 10)) == (1, 2, 3)
    assert L.LPPool1d(2, (3,), 2)._rf_geometry() == ((3, 2, 0, 1),)
    for layer, shape in ((L.LPPool2d(2, 5), (1, 1, 4, 4)), (L.LPPool2d(2, 2), (1, 4, 4)),
                         (L.LPPool1d(2, 5), (1, 1, 4)), (L.LPPool1d(2, 2), (1, 1, 4, 4))):
        with pytest.raises(ValueError) as fwd:
            layer(np.zeros(shape))
        with pytest.raises(ValueError) as shp:
            layer.output_shape(shape)
        assert str(shp.value) == str(fwd.value)


def test_layer_constructor_errors():
    with pytest.raises(ValueError, match="non-zero"):
        L.LPPool2d(0, 2)
    with pytest.raises(TypeError, match="pair"):
        L.LPPool2d(2, (2, 2, 2))
    with pytest.raises(TypeError, match="1-tuple"):
        L.LPPool1d(2, (2, 2))
    with pytest.raises(ValueError, match="stride must be positive"):
        L.LPPool1d(2, 2, 0)


# issue 12: one norm_type rule everywhere: the definition's, (sum of x**p)
# ** (1/p), so every p with a 1/p is accepted (negative p are power means,
# as PyTorch computes them; +-inf are max/min of |x|), and 0, NaN and values
# no float holds (10**400 raised OverflowError) are rejected, by the
# functions, their twins and the layers alike.
ACCEPTED = [-1, -2.5, float("-inf"), 0.5, np.float32(3), 10**300]
REJECTED = [(0, ValueError), (-0.0, ValueError), (float("nan"), ValueError),
            (10**400, ValueError), (-(10**400), ValueError),
            (np.bool_(True), TypeError), ("2", TypeError), (None, TypeError)]


def _lp_calls(p):
    x2 = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    x1 = x2[:, :, 0, :]
    return [lambda: fastconv.lp_pool2d(x2, p, 2), lambda: fastconv.reference.lp_pool2d(x2, p, 2),
            lambda: fastconv.lp_pool1d(x1, p, 2), lambda: fastconv.reference.lp_pool1d(x1, p, 2),
            lambda: fastconv.lp_pool2d_backward(np.ones((1, 1, 2, 2)), x2, p, 2),
            lambda: L.LPPool2d(p, 2)(x2.astype(np.float32)),
            lambda: L.LPPool1d(p, 2)(x1.astype(np.float32))]


@pytest.mark.parametrize("p", ACCEPTED, ids=str)
def test_norm_type_accepted_everywhere(p):
    for call in _lp_calls(p):
        call()
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    if p == -1:         # the harmonic-type power sum, by the definition
        want = 1 / (1 / x.reshape(1, 1, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
                    .reshape(1, 1, 2, 2, 4)).sum(-1)
        np.testing.assert_allclose(fastconv.lp_pool2d(x, p, 2), want, rtol=1e-12)


@pytest.mark.parametrize("p, exc", REJECTED, ids=lambda v: str(v)[:12])
def test_norm_type_rejected_everywhere(p, exc):
    for call in _lp_calls(p):
        with pytest.raises(exc, match="norm_type"):
            call()
