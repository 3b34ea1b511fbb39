"""fastconv.gradcheck: passes correct layers, catches wrong ones, leaves the model alone."""

import numpy as np
import pytest

from fastconv import layers as L
from fastconv.gradcheck import gradcheck


class WrongWeightGrad(L.Linear):
    def _backward(self, grad_out):
        gx = super()._backward(grad_out)
        self._grads["weight"][1, 2] += 0.5        # one wrong coordinate
        return gx


class WrongInputGrad(L.ReLU):
    def _backward(self, grad_out):
        return super()._backward(grad_out) * 1.01


class CountingReLU(L.ReLU):
    calls = 0

    def _forward(self, x):
        CountingReLU.calls += 1
        return super()._forward(x)


def test_passes_correct_layers(rng):
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    model = L.Sequential(L.Conv2d(2, 3, 3, padding=1, rng=0), L.BatchNorm2d(3), L.ReLU(),
                         L.Dropout(0.5, rng=0), L.MaxPool2d(2), L.Flatten(),
                         L.Linear(27, 4, rng=0))
    assert gradcheck(model, x, n_checks=15) is True           # train: BN batch stats, dropout
    assert gradcheck(model.eval(), x, n_checks=15) is True


def test_reports_wrong_parameter_gradient(rng):
    layer = WrongWeightGrad(4, 3, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 4))
    with pytest.raises(AssertionError, match=r"'weight' \(shape \(3, 4\)\) is wrong at index "
                                             r"\(1, 2\): numeric .*analytic .*1 of 12"):
        gradcheck(layer, x)
    assert gradcheck(layer, x, raise_exception=False) is False
    # inside a container the name carries the prefix
    with pytest.raises(AssertionError, match=r"'1.weight'"):
        gradcheck(L.Sequential(L.ReLU(), WrongWeightGrad(4, 3, rng=0)), x)


def test_reports_wrong_input_gradient(rng):
    x = rng.standard_normal((3, 5))
    with pytest.raises(AssertionError, match=r"gradient of 'input' \(shape \(3, 5\)\)"):
        gradcheck(L.Sequential(L.Linear(5, 5, dtype=np.float64, rng=0), WrongInputGrad()), x)
    # a 1 % error passes a loose enough tolerance
    assert gradcheck(WrongInputGrad(), x, rtol=0.05)


def test_model_and_input_left_unchanged(rng):
    model = L.Sequential(L.Conv2d(2, 2, 3, rng=0), L.BatchNorm2d(2), L.Dropout(0.3, rng=4))
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    x_before = x.copy()
    state = model.state_dict()
    model.grads["0.weight"][...] = 7.0
    reference_draw = np.random.default_rng(4).random(5)
    assert gradcheck(model, x, n_checks=10)
    np.testing.assert_array_equal(x, x_before)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
        assert v.dtype == state[k].dtype
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert np.all(model.grads["0.weight"] == 7.0)
    assert model.training
    np.testing.assert_array_equal(model[2]._rng.random(5), reference_draw)


def test_n_checks_limits_coordinates(rng):
    model = L.Sequential(L.Linear(6, 5, dtype=np.float64, rng=0), CountingReLU())
    x = rng.standard_normal((4, 6))
    CountingReLU.calls = 0
    gradcheck(model, x, n_checks=3)
    assert CountingReLU.calls == 1 + 2 * (3 + 3 + 3)          # input, weight, bias
    CountingReLU.calls = 0
    gradcheck(model, x)
    assert CountingReLU.calls == 1 + 2 * (24 + 30 + 5)


def test_bad_arguments():
    with pytest.raises(TypeError, match="fastconv.layers.Layer"):
        gradcheck(lambda x: x, np.zeros(3))
    with pytest.raises(TypeError, match="floating"):
        gradcheck(L.ReLU(), np.zeros(3, np.int64))


# issue 12 (found by the fuzz test): eps=0 raised ZeroDivisionError.
@pytest.mark.parametrize("kw, name", [
    (dict(eps=0.0), "eps"), (dict(eps=-1e-6), "eps"), (dict(eps=float("nan")), "eps"),
    (dict(eps="1e-6"), "eps"), (dict(atol=-1.0), "atol"), (dict(rtol=float("inf")), "rtol"),
    (dict(n_checks=0), "n_checks"), (dict(n_checks=2.5), "n_checks"),
])
def test_gradcheck_checks_its_settings(kw, name):
    with pytest.raises(ValueError, match=name):
        gradcheck(L.ReLU(), np.ones((1, 1, 2, 2)) + 0.5, **kw)
