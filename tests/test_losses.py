"""fastconv.losses: values and gradients against torch, worked examples, stability, errors."""

import numpy as np
import pytest
from helpers import central_difference

from fastconv.losses import softmax_cross_entropy, svm_loss


def _tols(dtype):
    if np.dtype(dtype) == np.float64:
        return dict(rtol=1e-12, atol=1e-14)
    return dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 5.0, 1e4])
def test_softmax_cross_entropy_matches_torch(scale, dtype, rng, torch):
    scores = (rng.standard_normal((7, 5)) * scale).astype(dtype)
    labels = rng.integers(0, 5, 7)
    before = scores.copy()
    loss, grad = softmax_cross_entropy(scores, labels)
    st = torch.from_numpy(scores.copy()).requires_grad_()
    tl = torch.nn.functional.cross_entropy(st, torch.from_numpy(labels))
    tl.backward()
    assert isinstance(loss, float) and np.isfinite(loss)
    assert grad.dtype == dtype and grad.shape == scores.shape
    tol = _tols(dtype)
    np.testing.assert_allclose(loss, tl.item(), rtol=tol["rtol"] * 10, atol=tol["atol"] * scale)
    np.testing.assert_allclose(grad, st.grad.numpy(), **tol)
    np.testing.assert_array_equal(scores, before)


def test_softmax_cross_entropy_by_hand():
    loss, grad = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-15)
    expected = np.full((2, 4), 0.25)
    expected[[0, 1], [0, 3]] -= 1
    np.testing.assert_allclose(grad, expected / 2, rtol=1e-15)
    # shifting a row by a constant changes nothing
    s = np.array([[1.0, 2.0, 3.0]])
    l1, g1 = softmax_cross_entropy(s, np.array([2]))
    l2, g2 = softmax_cross_entropy(s + 1000.0, np.array([2]))
    assert l1 == pytest.approx(l2, rel=1e-12)
    assert l1 == pytest.approx(np.log(np.exp(s).sum()) - 3.0, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_svm_loss_matches_torch_multi_margin(margin, dtype, rng, torch):
    N, C = 8, 6
    scores = (rng.standard_normal((N, C)) * 0.7).astype(dtype)
    labels = rng.integers(0, C, N)
    loss, grad = svm_loss(scores, labels, margin=margin)
    st = torch.from_numpy(scores.copy()).requires_grad_()
    tl = torch.nn.functional.multi_margin_loss(st, torch.from_numpy(labels), margin=margin)
    tl.backward()
    # torch divides each row's hinge sum by C as well: cs231n's loss is C times torch's
    tol = _tols(dtype)
    assert loss > 0
    np.testing.assert_allclose(loss, C * tl.item(), **tol)
    np.testing.assert_allclose(grad, C * st.grad.numpy(), **tol)


def test_svm_loss_cs231n_worked_example():
    # CS231n's three images (cat, car, frog) and their class scores
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    labels = np.array([0, 1, 2])
    loss, grad = svm_loss(scores, labels)
    assert loss == pytest.approx((2.9 + 0.0 + 12.9) / 3, rel=1e-12)
    expected = np.array([[-1, 1, 0], [0, 0, 0], [1, 1, -2]]) / 3
    np.testing.assert_allclose(grad, expected, rtol=1e-15)


def test_losses_numerical_gradient(rng):
    scores = rng.standard_normal((4, 5))
    labels = rng.integers(0, 5, 4)
    for fn in (softmax_cross_entropy, svm_loss):
        _, grad = fn(scores, labels)
        num = np.zeros_like(scores)
        for idx in np.ndindex(scores.shape):
            num[idx] = central_difference(lambda: fn(scores, labels)[0], scores, idx, 1e-6)
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8, err_msg=fn.__name__)


@pytest.mark.parametrize("fn", [softmax_cross_entropy, svm_loss])
def test_loss_errors(fn):
    s = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        fn(s, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in"):
        fn(s, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        fn(s, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        fn(s, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"scores must have 2 dimensions \(N, C\)"):
        fn(np.zeros(4), np.array([0]))
    with pytest.raises(TypeError, match="float32 or float64"):
        fn(np.zeros((3, 4), np.int64), np.array([0, 1, 2]))


def test_softmax_cross_entropy_extremes(torch):
    scores = np.array([[1e4, -1e4, 0.0], [np.nan, 0.0, 1.0], [-np.inf, 0.0, 0.0]],
                      np.float32)
    labels = np.array([1, 0, 2])
    loss, grad = softmax_cross_entropy(scores[:1], labels[:1])
    t = torch.tensor(scores[:1], requires_grad=True)
    tl = torch.nn.functional.cross_entropy(t, torch.tensor(labels[:1]))
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-6)
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-7)
    loss, grad = softmax_cross_entropy(scores, labels)      # a NaN row: NaN loss, as torch
    assert np.isnan(loss)
    assert np.isnan(grad[1]).all() and np.isfinite(grad[[0, 2]]).all()
