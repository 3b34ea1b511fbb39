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


def _unaligned(a):
    """A copy of a whose data starts one byte past an element boundary."""
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
    out = raw.view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_inputs_are_copied_and_unaligned_out_refused(dtype, rng):
    # the kernels read whole elements: an unaligned view (np.frombuffer at an
    # odd offset) is copied first, an unaligned out= cannot be written
    a, b = (rng.standard_normal((2, 3, 4, 5)).astype(dtype) for _ in range(2))
    ua, ub = _unaligned(a), _unaligned(b)
    np.testing.assert_array_equal(fastconv.add(ua, ub, relu=True),
                                  np.maximum(a + b, 0))
    np.testing.assert_array_equal(fastconv.relu(ua), np.maximum(a, 0))
    np.testing.assert_array_equal(fastconv.relu_backward(ub, ua), np.where(a > 0, b, 0))
    for call in (lambda o: fastconv.add(a, b, out=o), lambda o: fastconv.relu(a, out=o)):
        with pytest.raises(ValueError, match="aligned"):
            call(_unaligned(a))
