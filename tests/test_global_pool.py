"""global_avg_pool2d (+ backward), GlobalAvgPool2d and AdaptiveAvgPool2d(1):
torch parity (adaptive_avg_pool2d(x, 1)), errors, shape protocol."""

import numpy as np
import pytest
from helpers import as_torch

import fastconv
import fastconv.reference
from fastconv import layers as L
from fastconv.gradcheck import gradcheck

SHAPES = [(2, 3, 7, 7), (1, 4, 1, 1), (3, 2, 5, 9), (2, 1, 32, 3), (0, 3, 4, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_torch(shape, impl, dtype, rng, tol, torch):
    x = rng.standard_normal(shape).astype(dtype)
    x0 = x.copy()
    y = impl.global_avg_pool2d(x)
    xt = as_torch(torch, x, True)
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, 1)
    assert y.shape == tuple(yt.shape) == shape[:2] + (1, 1) and y.dtype == dtype
    n = shape[2] * shape[3]
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol(dtype, n))
    # independent of torch: the float64 mean
    np.testing.assert_allclose(y[:, :, 0, 0], x.astype(np.float64).mean(axis=(2, 3)),
                               **tol(dtype, n))
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = impl.global_avg_pool2d_backward(g, shape)
    yt.backward(as_torch(torch, g))
    assert gx.shape == shape and gx.dtype == dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol(dtype))
    np.testing.assert_array_equal(x, x0)


def test_non_contiguous_and_compiled_vs_reference(dtype, rng, tol):
    x = rng.standard_normal((4, 3, 6, 10)).astype(dtype).transpose(1, 0, 3, 2)[:, :, ::2]
    assert not x.flags.c_contiguous
    a = fastconv.global_avg_pool2d(x)
    np.testing.assert_allclose(a, fastconv.reference.global_avg_pool2d(x), **tol(dtype, 30))
    np.testing.assert_array_equal(a, fastconv.global_avg_pool2d(np.ascontiguousarray(x)))
    g = rng.standard_normal((3, 4, 2, 1)).astype(dtype).transpose(0, 1, 3, 2)[:, :, :, :1]
    assert g.shape == (3, 4, 1, 1)
    np.testing.assert_allclose(fastconv.global_avg_pool2d_backward(g, x.shape),
                               fastconv.reference.global_avg_pool2d_backward(g, x.shape),
                               **tol(dtype))


def test_backward_read_only_unchanged_and_empty(impl, dtype, rng):
    g = rng.standard_normal((2, 3, 1, 1)).astype(dtype)
    want = impl.global_avg_pool2d_backward(g, (2, 3, 4, 5))
    ro = g.copy()
    ro.setflags(write=False)
    got = impl.global_avg_pool2d_backward(ro, (2, 3, 4, 5))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ro, g)
    assert got.flags.writeable and got.flags.c_contiguous
    np.testing.assert_array_equal(want, np.broadcast_to(g / dtype(20), (2, 3, 4, 5)))
    empty = impl.global_avg_pool2d_backward(np.zeros((0, 3, 1, 1), dtype), (0, 3, 4, 5))
    assert empty.shape == (0, 3, 4, 5) and empty.dtype == dtype


BAD = [
    (lambda m: m.global_avg_pool2d(np.ones((2, 3, 4))), ValueError, r"4 dimensions \(N, C, H, W\)"),
    (lambda m: m.global_avg_pool2d(np.ones((2, 3, 0, 4))), ValueError, "empty H x W plane"),
    (lambda m: m.global_avg_pool2d(np.ones((2, 3, 4, 4), np.int32)), TypeError, "float32 or float64"),
    (lambda m: m.global_avg_pool2d([[[[1.0]]]]), TypeError, "numpy.ndarray"),
    (lambda m: m.global_avg_pool2d_backward(np.ones((2, 3, 2, 2)), (2, 3, 4, 4)), ValueError,
     r"forward output's shape \(2, 3, 1, 1\)"),
    (lambda m: m.global_avg_pool2d_backward(np.ones((2, 3, 1, 1)), (2, 3, 4)), ValueError,
     r"input_shape must be 4 non-negative ints"),
    (lambda m: m.global_avg_pool2d_backward(np.ones((2, 3, 1, 1)), (2, 3, 4, 0)), ValueError,
     "empty H x W plane"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_errors(call, exc, pattern, impl):
    with pytest.raises(exc, match=pattern):
        call(impl)


@pytest.mark.parametrize("backend", ["fastconv", "reference"])
@pytest.mark.parametrize("ours, theirs", [
    (lambda: L.GlobalAvgPool2d(), lambda nn: nn.AdaptiveAvgPool2d(1)),
    (lambda: L.AdaptiveAvgPool2d(1), lambda nn: nn.AdaptiveAvgPool2d(1)),
    (lambda: L.AdaptiveAvgPool2d((1, 1)), lambda nn: nn.AdaptiveAvgPool2d((1, 1))),
], ids=["global", "adaptive_1", "adaptive_1x1"])
def test_layers_match_torch(ours, theirs, backend, dtype, rng, torch):
    layer, tm = ours().set_backend(backend), theirs(torch.nn)
    if not isinstance(layer, L.AdaptiveAvgPool2d):
        assert repr(layer) == "GlobalAvgPool2d()"
    else:
        assert repr(layer) == repr(tm)
    x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
    y = layer(x)
    xt = as_torch(torch, x, True)
    yt = tm(xt)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    yt.backward(as_torch(torch, g))
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), **tol)


def test_gradcheck_in_a_model(rng):
    model = L.Sequential(L.Conv2d(2, 4, 3, padding=1, rng=0), L.ReLU(),
                         L.AdaptiveAvgPool2d((1, 1)), L.Flatten(), L.Linear(4, 3, rng=1))
    assert model(np.zeros((2, 2, 5, 5), np.float32)).shape == (2, 3)
    assert gradcheck(model, rng.standard_normal((2, 2, 5, 5)))
    assert gradcheck(L.GlobalAvgPool2d(), rng.standard_normal((2, 3, 4, 5)))


def test_shape_protocol_and_errors():
    for layer in (L.GlobalAvgPool2d(), L.AdaptiveAvgPool2d(1)):
        assert layer.output_shape((2, 7, 13, 5)) == (2, 7, 1, 1)
        assert layer._rf_geometry() == "global"
        for shape in ((2, 3, 4), (2, 3, 0, 4)):
            with pytest.raises(ValueError) as fwd:
                layer(np.zeros(shape))
            with pytest.raises(ValueError) as shp:
                layer.output_shape(shape)
            assert str(shp.value) == str(fwd.value)
    for bad in (2, (2, 2), (1, None), None, (1,), 1.0, True):
        with pytest.raises(ValueError, match="only output_size 1 or \\(1, 1\\)"):
            L.AdaptiveAvgPool2d(bad)
