"""fastconv.optim: SGD and Adam updates against torch.optim, in-place updates, errors."""

import numpy as np
import pytest

from fastconv import layers as L
from fastconv import optim


def _pair(torch, rng):
    """A small fastconv model, its torch twin with the same weights, and a grad source."""
    ours = L.Sequential(L.Conv2d(2, 3, 3, dtype=np.float64, rng=0), L.Flatten(),
                        L.Linear(12, 4, dtype=np.float64, rng=1))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(),
                                 torch.nn.Linear(12, 4)).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def _run(ours, theirs, opt, topt, torch, rng, steps=6):
    tparams = dict(theirs.named_parameters())
    for _ in range(steps):
        opt.zero_grad()
        topt.zero_grad()
        for k, g in ours.grads.items():          # the same random gradients in both
            g[...] = rng.standard_normal(g.shape)
            tparams[k].grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for k, p in tparams.items():
        np.testing.assert_allclose(ours.params[k], p.detach().numpy(), rtol=1e-13,
                                   atol=1e-15, err_msg=k)


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
    dict(lr=0.05, momentum=0.8, weight_decay=1e-3, nesterov=True),
], ids=["plain", "momentum", "momentum_wd", "nesterov_wd"])
def test_sgd_matches_torch(kw, rng, torch):
    ours, theirs = _pair(torch, rng)
    _run(ours, theirs, optim.SGD(ours, **kw), torch.optim.SGD(theirs.parameters(), **kw),
         torch, rng)


@pytest.mark.parametrize("kw", [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2),
], ids=["defaults", "custom_wd"])
def test_adam_matches_torch(kw, rng, torch):
    ours, theirs = _pair(torch, rng)
    _run(ours, theirs, optim.Adam(ours, **kw), torch.optim.Adam(theirs.parameters(), **kw),
         torch, rng)


def test_sgd_first_step_by_hand():
    lin = L.Linear(2, 1, dtype=np.float64, rng=0)
    lin.params["weight"][...] = [[1.0, 2.0]]
    lin.params["bias"][...] = [0.5]
    opt = optim.SGD(lin, lr=0.1, momentum=0.9, weight_decay=0.5)
    lin.grads["weight"][...] = [[1.0, -1.0]]
    opt.step()                                   # buf = g + wd*p = [1.5, 0.0]
    np.testing.assert_allclose(lin.params["weight"], [[0.85, 2.0]], rtol=1e-15)
    opt.step()                                   # buf = 0.9*buf + (g + wd*p)
    np.testing.assert_allclose(lin.params["weight"],
                               [[0.85 - 0.1 * (0.9 * 1.5 + 1.425), 2.0 - 0.1 * 0.0]],
                               rtol=1e-15)


def test_adam_first_step_is_lr_times_sign():
    lin = L.Linear(3, 2, dtype=np.float64, rng=0)
    before = {k: v.copy() for k, v in lin.params.items()}
    lin.grads["weight"][...] = [[1.0, -2.0, 3.0], [-0.5, 0.1, 4.0]]
    lin.grads["bias"][...] = [-3.0, 1e-3]
    optim.Adam(lin, lr=0.01, eps=0.0).step()
    for k, v in lin.params.items():
        np.testing.assert_allclose(before[k] - v, 0.01 * np.sign(lin.grads[k]), rtol=1e-12)


def test_updates_in_place_and_zero_grad(rng):
    m = L.Sequential(L.Linear(3, 3, rng=0), L.ReLU(), L.Linear(3, 2, rng=0))
    arrays = dict(m.params)
    before = {k: v.copy() for k, v in arrays.items()}
    opt = optim.Adam(m, lr=0.1)
    m(rng.standard_normal((4, 3)).astype(np.float32))
    m.backward(np.ones((4, 2), np.float32))
    opt.step()
    for k, v in m.params.items():
        assert v is arrays[k] and v.dtype == np.float32
        assert not np.array_equal(v, before[k])
    opt.zero_grad()
    assert all(not g.any() for g in m.grads.values())


def test_optimizer_errors():
    m = L.Linear(2, 2)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.SGD(m, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(m, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(m, betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="fastconv.layers.Layer"):
        optim.SGD([np.zeros(3)], lr=0.1)


@pytest.mark.parametrize("make", [
    lambda m: optim.SGD(m, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
    lambda m: optim.Adam(m, lr=0.01, weight_decay=1e-2),
], ids=["sgd", "adam"])
def test_large_parameters_float32_and_threads(make, rng, restore_threads, torch):
    """Parameters spanning several of the kernel's chunks, in float32, at 1
    and 2 threads: the same bits, and torch's values within rounding."""
    import fastconv

    results = []
    for threads in (1, 2):
        fastconv.set_num_threads(threads)
        model = L.Linear(300, 400, rng=0)                 # 120,000 weights
        torch_lin = torch.nn.Linear(300, 400)
        torch_lin.load_state_dict({k: torch.from_numpy(v.copy())
                                   for k, v in model.state_dict().items()})
        opt = make(model)
        topt = (torch.optim.SGD if isinstance(opt, optim.SGD) else torch.optim.Adam)(
            torch_lin.parameters(), **{k: getattr(opt, k) for k in (
                ("lr", "momentum", "weight_decay", "nesterov") if isinstance(opt, optim.SGD)
                else ("lr", "betas", "eps", "weight_decay"))})
        grads = np.random.default_rng(1)
        tparams = dict(torch_lin.named_parameters())
        for _ in range(3):
            for k, g in model.grads.items():
                g[...] = grads.standard_normal(g.shape)
                tparams[k].grad = torch.from_numpy(g.copy())
            opt.step()
            topt.step()
        for k, p in tparams.items():
            np.testing.assert_allclose(model.params[k], p.detach().numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=k)
        results.append(model.state_dict())
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k])
