"""Training parity: fastconv models and their torch twins, same weights, same batches,
same optimiser, give the same loss at every step (float64)."""

import numpy as np
import pytest

from fastconv import layers as L
from fastconv import optim
from fastconv.losses import softmax_cross_entropy

F64 = np.float64


def lenet(rng):
    """[Conv3x3(pad 1)-ReLU-MaxPool2] x 2 - Flatten - Linear-ReLU-Linear on 1x8x8."""
    return L.Sequential(
        L.Conv2d(1, 6, 3, padding=1, dtype=F64, rng=rng), L.ReLU(), L.MaxPool2d(2),
        L.Conv2d(6, 16, 3, padding=1, dtype=F64, rng=rng), L.ReLU(), L.MaxPool2d(2),
        L.Flatten(), L.Linear(16 * 2 * 2, 32, dtype=F64, rng=rng), L.ReLU(),
        L.Linear(32, 10, dtype=F64, rng=rng))


def torch_lenet(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, 10))


def tiny_resnet(rng):
    return L.Sequential(
        L.Conv2d(1, 4, 3, padding=1, bias=False, dtype=F64, rng=rng), L.BatchNorm2d(4, dtype=F64),
        L.ReLU(), L.basic_block(4, 8, stride=2, dtype=F64, rng=rng), L.AvgPool2d(4),
        L.Flatten(), L.Linear(8, 10, dtype=F64, rng=rng))


def torch_tiny_resnet(torch):
    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    block = nn.Sequential(
        Residual(nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                               nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8)),
                 nn.Sequential(nn.Conv2d(4, 8, 1, 2, bias=False), nn.BatchNorm2d(8))),
        nn.ReLU())
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                         nn.ReLU(), block, nn.AvgPool2d(4), nn.Flatten(), nn.Linear(8, 10))


def _train_both(ours, theirs, opt, topt, torch, rng, steps, batch=16):
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    losses, tlosses = [], []
    for _ in range(steps):
        x = rng.uniform(0, 1, (batch, 1, 8, 8))          # digits-like 8x8 images
        y = rng.integers(0, 10, batch)
        opt.zero_grad()
        loss, g = softmax_cross_entropy(ours(x), y)
        ours.backward(g)
        opt.step()
        losses.append(loss)

        topt.zero_grad()
        tl = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        tl.backward()
        topt.step()
        tlosses.append(tl.item())
    np.testing.assert_allclose(losses, tlosses, rtol=1e-10)
    state = ours.state_dict()
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(state[k], v.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
    return losses


@pytest.fixture
def torch64(torch):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def test_lenet_sgd_momentum_weight_decay(torch64, rng):
    torch = torch64
    ours = lenet(0)
    theirs = torch_lenet(torch.nn)
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses = _train_both(ours, theirs, optim.SGD(ours, **kw),
                         torch.optim.SGD(theirs.parameters(), **kw), torch, rng, steps=20)
    assert len(losses) == 20 and len(set(losses)) == 20


def test_lenet_adam(torch64, rng):
    torch = torch64
    ours = lenet(1)
    theirs = torch_lenet(torch.nn)
    kw = dict(lr=2e-3, weight_decay=1e-3)
    _train_both(ours, theirs, optim.Adam(ours, **kw),
                torch.optim.Adam(theirs.parameters(), **kw), torch, rng, steps=5)


def test_tiny_resnet_sgd_with_batchnorm(torch64, rng):
    torch = torch64
    ours = tiny_resnet(2)
    theirs = torch_tiny_resnet(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    kw = dict(lr=0.05, momentum=0.9, nesterov=True)
    _train_both(ours, theirs, optim.SGD(ours, **kw),
                torch.optim.SGD(theirs.parameters(), **kw), torch, rng, steps=5)
    # and the trained models agree in evaluation mode (running statistics)
    x = rng.uniform(0, 1, (4, 1, 8, 8))
    np.testing.assert_allclose(ours.eval()(x), theirs.eval()(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-12)
