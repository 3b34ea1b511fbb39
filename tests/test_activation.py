"""relu, relu_backward and add (with the fused ReLU): torch, the NumPy twin,
NaN and signed zeros, out= and in place, threads, errors."""

import numpy as np
import pytest

import fastconv
from fastconv import reference


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 40, 41), (0, 3)])
def test_match_torch_and_twin(shape, dtype, rng, torch):
    x = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if x.size:
        x.flat[0], x.flat[-1] = np.nan, 0.0
    for impl in (fastconv, reference):
        y = impl.relu(x)
        np.testing.assert_array_equal(y, torch.relu(torch.tensor(x)).numpy())
        yt = torch.tensor(x, requires_grad=True)
        torch.relu(yt).backward(torch.tensor(g))
        np.testing.assert_array_equal(impl.relu_backward(g, y), yt.grad.numpy())
        np.testing.assert_array_equal(impl.add(x, b), x + b)
        np.testing.assert_array_equal(impl.add(x, b, relu=True),
                                      torch.relu(torch.tensor(x) + torch.tensor(b)).numpy())


def test_out_in_place_threads(rng, restore_threads):
    x = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
    b = rng.standard_normal(x.shape).astype(np.float32)
    expect = np.maximum(x + b, 0)
    for threads in (1, 2):
        fastconv.set_num_threads(threads)
        a = x.copy()
        assert fastconv.add(a, b, relu=True, out=a) is a
        np.testing.assert_array_equal(a, expect)
        r = x.copy()
        assert fastconv.relu(r, out=r) is r
        np.testing.assert_array_equal(r, np.maximum(x, 0))
        gx = b.copy()
        assert fastconv.relu_backward(gx, r, out=gx) is gx
        np.testing.assert_array_equal(gx, np.where(x > 0, b, 0))


def test_errors(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match="relu: x must have dtype"):
        fastconv.relu(x.astype(np.int32))
    with pytest.raises(ValueError, match="b must have a's shape"):
        fastconv.add(x, x[:1])
    with pytest.raises(TypeError, match="b has dtype float32"):
        fastconv.add(x, x.astype(np.float32))
    with pytest.raises(TypeError, match="relu must be a bool"):
        fastconv.add(x, x, relu=1)
    with pytest.raises(ValueError, match="out must have"):
        fastconv.relu(x, out=np.empty((3, 2)))
    with pytest.raises(TypeError, match="y must be a numpy.ndarray"):
        fastconv.relu_backward(x, [1, 2])
