"""linear and linear_backward on fastconv's GEMM micro-kernels: torch, the
NumPy twin, edge sizes around the micro-kernel's panels, relu, out=,
threads and batch-size independence, errors."""

import numpy as np
import pytest

import fastconv
from fastconv import reference


@pytest.mark.parametrize("N, K, F", [(1, 1, 1), (7, 5, 3), (64, 64, 10), (13, 300, 97),
                                      (50, 129, 49), (3, 0, 4), (0, 4, 3), (5, 6, 0)])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch(N, K, F, bias, dtype, rng, torch):
    x = rng.standard_normal((N, K)).astype(dtype)
    w = rng.standard_normal((F, K)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if bias else None
    g = rng.standard_normal((N, F)).astype(dtype)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if bias else None
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(torch.tensor(g))
    tol = dict(rtol=1e-5, atol=1e-5 * max(1, K) ** 0.5) if dtype == np.float32 \
        else dict(rtol=1e-12, atol=1e-12 * max(1, K) ** 0.5)
    for impl in (fastconv, reference):
        y = impl.linear(x, w, b)
        np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
        np.testing.assert_allclose(impl.linear(x, w, b, relu=True),
                                   np.maximum(yt.detach().numpy(), 0), **tol)
        gx, gw, gb = impl.linear_backward(g, x, w)
        np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
        np.testing.assert_allclose(gw, wt.grad.numpy(), **tol)
        if bias:
            np.testing.assert_allclose(gb, bt.grad.numpy(), **tol)
        assert gx.dtype == gw.dtype == gb.dtype == y.dtype == dtype


def test_same_bits_any_threads_and_batch(rng, restore_threads):
    x = rng.standard_normal((40, 700)).astype(np.float32)
    w = rng.standard_normal((130, 700)).astype(np.float32)
    g = rng.standard_normal((40, 130)).astype(np.float32)
    runs = []
    for threads in (1, 2):
        fastconv.set_num_threads(threads)
        runs.append((fastconv.linear(x, w), *fastconv.linear_backward(g, x, w)))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    # a row's output does not depend on the other rows of the batch
    np.testing.assert_array_equal(fastconv.linear(x[3:4], w), runs[0][0][3:4])


def test_out_and_errors(rng):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((2, 3))
    out = np.empty((4, 2))
    assert fastconv.linear(x, w, out=out) is out
    np.testing.assert_allclose(out, x @ w.T)
    with pytest.raises(ValueError, match=r"weight must have shape \(out_features, 3\)"):
        fastconv.linear(x, w.T)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        fastconv.linear(x[None], w)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        fastconv.linear(x, w, np.ones(3))
    with pytest.raises(ValueError, match="grad_out must have the forward output's shape"):
        fastconv.linear_backward(np.ones((4, 3)), x, w)
    with pytest.raises(ValueError, match="out must not overlap x"):
        fastconv.linear(x, w[:, :1].repeat(3, 1), out=x)
