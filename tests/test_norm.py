"""batch_norm2d and its backward: torch (values, running statistics, autograd
gradients; training and eval; fused ReLU), the NumPy twin, out=, threads."""

import numpy as np
import pytest

import fastconv
from fastconv import reference

SHAPES = [(4, 3, 5, 7), (2, 16, 8, 8), (3, 5, 1, 19), (1, 2, 3, 1)]


def _params(rng, C, dtype):
    return (rng.uniform(0.5, 1.5, C).astype(dtype), rng.standard_normal(C).astype(dtype),
            rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2.0, C).astype(dtype))


def _tol(dtype, n):
    return dict(rtol=1e-4, atol=1e-5 * max(1.0, n ** 0.5)) if dtype == np.float32 \
        else dict(rtol=1e-10, atol=1e-12 * max(1.0, n ** 0.5))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_matches_torch(shape, training, relu, dtype, rng, torch):
    F = torch.nn.functional
    C = shape[1]
    x = (3 * rng.standard_normal(shape) + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w, b, rm, rv = _params(rng, C, dtype)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    yt = F.batch_norm(xt, rmt, rvt, wt, bt, training, 0.3, 1e-3)
    if relu:
        yt = torch.relu(yt)
    yt.backward(torch.tensor(g))
    n = shape[0] * shape[2] * shape[3]
    for impl in (fastconv, reference):
        rm2, rv2 = rm.copy(), rv.copy()
        x_before = x.copy()
        y, mean, invstd = impl.batch_norm2d(x, rm2, rv2, w, b, training, 0.3, 1e-3,
                                            relu=relu, return_stats=True)
        np.testing.assert_array_equal(x, x_before)
        np.testing.assert_allclose(y, yt.detach().numpy(), **_tol(dtype, 1))
        np.testing.assert_allclose(rm2, rmt.numpy(), **_tol(dtype, 1))
        np.testing.assert_allclose(rv2, rvt.numpy(), **_tol(dtype, 1))
        gx, gw, gb = impl.batch_norm2d_backward(g, x, mean, invstd, w, training=training,
                                                y=y if relu else None)
        np.testing.assert_allclose(gx, xt.grad.numpy(), **_tol(dtype, n))
        np.testing.assert_allclose(gw, wt.grad.numpy(), **_tol(dtype, n))
        np.testing.assert_allclose(gb, bt.grad.numpy(), **_tol(dtype, n))
        assert y.dtype == gx.dtype == gw.dtype == mean.dtype == dtype


def test_defaults_and_no_running_stats(rng):
    x = rng.standard_normal((3, 4, 5, 5))
    y = fastconv.batch_norm2d(x, None, None, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    np.testing.assert_allclose(y, reference.batch_norm2d(x, None, None, training=True),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
def test_out_in_place_and_threads(relu, rng, restore_threads):
    x = rng.standard_normal((8, 16, 12, 12)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w, b, rm, rv = _params(rng, 16, np.float32)
    results = []
    for threads in (1, 2):
        fastconv.set_num_threads(threads)
        rm2, rv2 = rm.copy(), rv.copy()
        y, m, s = fastconv.batch_norm2d(x, rm2, rv2, w, b, True, relu=relu,
                                        return_stats=True)
        gx, gw, gb = fastconv.batch_norm2d_backward(g, x, m, s, w, y=y if relu else None)
        results.append((y, m, s, rm2, rv2, gx, gw, gb))
    for a, b2 in zip(*results):
        np.testing.assert_array_equal(a, b2)          # bitwise, any thread count
    y_ref = results[0][0]
    inplace = x.copy()
    assert fastconv.batch_norm2d(inplace, rm.copy(), rv.copy(), w, b, True, relu=relu,
                                 out=inplace) is inplace
    np.testing.assert_array_equal(inplace, y_ref)
    out = np.empty_like(x)
    gout = g.copy()
    m, s = results[0][1], results[0][2]
    gx, _, _ = fastconv.batch_norm2d_backward(gout, x, m, s, w, y=y_ref if relu else None,
                                              out=gout)
    assert gx is gout
    np.testing.assert_array_equal(gx, results[0][5])
    assert fastconv.batch_norm2d(x, rm, rv, w, b, False, out=out) is out


def test_errors(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    v = np.ones(3, np.float32)
    bn = fastconv.batch_norm2d
    with pytest.raises(TypeError, match="training must be a bool"):
        bn(x, v, v.copy(), training="yes")
    with pytest.raises(TypeError, match="running_mean must be an array"):
        bn(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        bn(x, v, v.copy(), np.ones(4, np.float32))
    with pytest.raises(TypeError, match="dtype"):
        bn(x, v.astype(np.float64), v.copy())
    with pytest.raises(ValueError, match="momentum must be >= 0"):
        bn(x, v, v.copy(), training=True, momentum=-1)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(x[:1, :, :1, :1], None, None, training=True)
    with pytest.raises(ValueError, match="out must have the result's shape"):
        bn(x, v, v.copy(), out=np.empty((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="writeable, aligned, C-contiguous"):
        bn(x, v, v.copy(), out=np.empty((2, 3, 4, 8), np.float32)[..., ::2])
    ro = v.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="must be writeable"):
        bn(x, ro, v.copy(), training=True)
    with pytest.raises(ValueError, match="y must have x's shape"):
        fastconv.batch_norm2d_backward(x, x, v, v, y=x[:1])
