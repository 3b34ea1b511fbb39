"""fastconv.layers: torch parity (forward, backward, buffers), finite differences,
initialisation, naming, state dicts, modes, backends and errors."""

import copy
import math

import numpy as np
import pytest
from helpers import assert_output_shape_raises_like_forward, central_difference

import fastconv.functional
import fastconv.reference
from fastconv import layers as L
from fastconv.gradcheck import gradcheck


def _tols(dtype):
    if np.dtype(dtype) == np.float64:
        return dict(rtol=1e-10, atol=1e-11)
    return dict(rtol=1e-4, atol=2e-5)


# ---------------------------------------------------------------------------
# torch twins, built structurally and loaded by state-dict name
# ---------------------------------------------------------------------------

def _residual_module(torch):
    class TorchResidual(torch.nn.Module):
        def __init__(self, body, shortcut=None):
            super().__init__()
            self.body = body
            self.shortcut = shortcut

        def forward(self, x):
            s = x if self.shortcut is None else self.shortcut(x)
            return self.body(x) + s

    return TorchResidual


def to_torch(layer, torch, dtype):
    """The torch.nn module with the same structure, weights and buffers."""
    nn = torch.nn

    def build(m):
        if isinstance(m, L.Conv2d):
            return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                             m.stride, m.padding, m.dilation, m.groups,
                             bias="bias" in m.params)
        if isinstance(m, L.Linear):
            return nn.Linear(m.in_features, m.out_features, bias="bias" in m.params)
        if isinstance(m, L.BatchNorm2d):
            return nn.BatchNorm2d(m.num_features, m.eps, m.momentum)
        if isinstance(m, L.MaxPool2d):
            return nn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation,
                                ceil_mode=m.ceil_mode)
        if isinstance(m, L.AvgPool2d):
            return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                m.count_include_pad)
        if isinstance(m, L.ReLU):
            return nn.ReLU()
        if isinstance(m, L.Flatten):
            return nn.Flatten(m.start_dim, m.end_dim)
        if isinstance(m, L.Dropout):
            return nn.Dropout(m.p)
        if isinstance(m, L.Sequential):
            return nn.Sequential(*[build(c) for c in m])
        if isinstance(m, L.Residual):
            sc = None if m.shortcut is None else build(m.shortcut)
            return _residual_module(torch)(build(m.body), sc)
        raise AssertionError(type(m))

    tm = build(layer).to(torch.float64 if dtype == np.float64 else torch.float32)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    tm.train(layer.training)
    return tm


def _randomise_bn(layer, rng):
    """Non-trivial BatchNorm parameters and running statistics."""
    for m in layer._walk():
        if isinstance(m, L.BatchNorm2d):
            C = m.num_features
            m.params["weight"][...] = rng.uniform(0.5, 1.5, C)
            m.params["bias"][...] = rng.standard_normal(C)
            m.buffers["running_mean"][...] = rng.standard_normal(C)
            m.buffers["running_var"][...] = rng.uniform(0.5, 2.0, C)
            m.buffers["num_batches_tracked"][...] = 3


def _lenet_ish(dtype):
    return L.Sequential(
        L.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=1), L.BatchNorm2d(4, dtype=dtype),
        L.ReLU(), L.MaxPool2d(2), L.Conv2d(4, 4, 3, padding=1, dtype=dtype, rng=2),
        L.ReLU(), L.AvgPool2d(2), L.Flatten(), L.Linear(4 * 2 * 2, 3, dtype=dtype, rng=3))


# name -> (factory(dtype) -> layer, input shape, mode)
CASES = {
    "conv": (lambda d: L.Conv2d(3, 4, 3, dtype=d, rng=0), (2, 3, 7, 7), "train"),
    "conv_geometry": (lambda d: L.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0),
                                         dilation=(1, 2), groups=2, bias=False,
                                         dtype=d, rng=0), (2, 4, 9, 8), "train"),
    "conv_same_depthwise": (lambda d: L.Conv2d(3, 3, 4, padding="same", groups=3,
                                               dtype=d, rng=0), (2, 3, 6, 6), "train"),
    "conv_direct": (lambda d: L.Conv2d(2, 3, 3, padding=1, dtype=d, rng=0,
                                       algorithm="direct"), (2, 2, 5, 5), "train"),
    "linear": (lambda d: L.Linear(5, 4, dtype=d, rng=0), (3, 5), "train"),
    "linear_nobias": (lambda d: L.Linear(5, 4, bias=False, dtype=d, rng=0), (3, 5), "train"),
    "maxpool": (lambda d: L.MaxPool2d(2), (2, 3, 6, 6), "train"),
    "maxpool_overlap_ceil": (lambda d: L.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 8, 8), "train"),
    "maxpool_dilated": (lambda d: L.MaxPool2d(2, 1, dilation=2), (1, 2, 6, 6), "train"),
    "avgpool": (lambda d: L.AvgPool2d(2), (2, 3, 6, 6), "train"),
    "avgpool_pad_ceil": (lambda d: L.AvgPool2d(3, 2, 1, ceil_mode=True,
                                               count_include_pad=False), (2, 2, 8, 8), "train"),
    "relu": (lambda d: L.ReLU(), (2, 3, 4, 4), "train"),
    "flatten": (lambda d: L.Flatten(), (2, 3, 4, 4), "train"),
    "dropout_eval": (lambda d: L.Dropout(0.5, rng=0), (2, 3, 4, 4), "eval"),
    "batchnorm_train": (lambda d: L.BatchNorm2d(3, dtype=d), (4, 3, 5, 5), "train"),
    "batchnorm_eval": (lambda d: L.BatchNorm2d(3, dtype=d), (4, 3, 5, 5), "eval"),
    "sequential": (_lenet_ish, (3, 2, 8, 8), "train"),
    "residual_identity": (lambda d: L.Residual(L.Sequential(
        L.Conv2d(3, 3, 3, padding=1, dtype=d, rng=0), L.ReLU())), (2, 3, 5, 5), "train"),
    "basic_block_down": (lambda d: L.basic_block(3, 4, stride=2, dtype=d, rng=0),
                         (2, 3, 6, 6), "train"),
    "basic_block_eval": (lambda d: L.basic_block(3, 3, dtype=d, rng=0), (2, 3, 5, 5), "eval"),
}


def _make(name, dtype, rng):
    factory, shape, mode = CASES[name]
    layer = factory(dtype)
    _randomise_bn(layer, rng)
    layer.train(mode == "train")
    return layer, shape


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("name", list(CASES))
def test_forward_backward_match_torch(name, dtype, rng, torch):
    layer, shape = _make(name, dtype, rng)
    tm = to_torch(layer, torch, dtype)
    x = rng.standard_normal(shape).astype(dtype)
    x_before = x.copy()
    tol = _tols(dtype)

    y = layer(x)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = tm(xt)
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)

    g = rng.standard_normal(y.shape).astype(dtype)
    layer.zero_grad()
    gx = layer.backward(g)
    yt.backward(torch.from_numpy(g))
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
    tgrads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    assert list(layer.grads) == list(tgrads)
    for k, tg in tgrads.items():
        np.testing.assert_allclose(layer.grads[k], tg, err_msg=k, **tol)
    # buffers (BatchNorm running statistics) after the forward pass
    state = layer.state_dict()
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(state[k], v.numpy(), err_msg=k, **tol)
    np.testing.assert_array_equal(x, x_before)          # input untouched


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_every_layer(name, rng):
    layer, shape = _make(name, np.float64, rng)
    x = rng.standard_normal(shape)
    assert gradcheck(layer, x, n_checks=40)


def test_dropout_train_gradcheck(rng):
    assert gradcheck(L.Dropout(0.4, rng=0), rng.standard_normal((2, 3, 4, 4)))


def test_conv_backward_by_finite_differences(rng):
    """An independent central-difference check of every coordinate."""
    layer = L.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2),
                     dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 2, 5, 6))
    r = rng.standard_normal(layer(x).shape)
    layer.zero_grad()
    analytic = {"x": layer.backward(r), **{k: v.copy() for k, v in layer.grads.items()}}
    for name, arr in (("x", x), ("weight", layer.params["weight"]),
                      ("bias", layer.params["bias"])):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            numeric[idx] = central_difference(lambda: np.sum(layer(x) * r), arr, idx, 1e-6)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-7,
                                   err_msg=name)


# ---------------------------------------------------------------------------
# BatchNorm2d over several steps
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batchnorm_running_stats_match_torch(momentum, dtype, rng, torch):
    bn = L.BatchNorm2d(3, eps=1e-3, momentum=momentum, dtype=dtype)
    _randomise_bn(bn, rng)
    bn.buffers["num_batches_tracked"][...] = 0
    tbn = to_torch(bn, torch, dtype)
    tol = _tols(dtype)
    for step in range(4):
        x = (rng.standard_normal((4, 3, 3, 5)) * (step + 1) + step).astype(dtype)
        y = bn(x)
        yt = tbn(torch.from_numpy(x))
        np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    for k, v in tbn.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[k], v.numpy(), err_msg=k, **tol)
    assert int(bn.buffers["num_batches_tracked"]) == 4
    # evaluation uses the running statistics and leaves them alone
    bn.eval()
    tbn.eval()
    before = bn.state_dict()
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    np.testing.assert_allclose(bn(x), tbn(torch.from_numpy(x)).detach().numpy(), **tol)
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_batchnorm_training_needs_two_values():
    bn = L.BatchNorm2d(2)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.ones((1, 2, 1, 1), np.float32))
    assert bn.eval()(np.ones((1, 2, 1, 1), np.float32)).shape == (1, 2, 1, 1)


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

def test_dropout_train_mask_and_scaling(rng):
    p = 0.3
    d = L.Dropout(p, rng=7)
    x = rng.uniform(1, 2, (50, 40)).astype(np.float32)
    y = d(x)
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 0.03
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = d.backward(g)
    np.testing.assert_array_equal(gx[~kept], 0)
    np.testing.assert_allclose(gx[kept], g[kept] / (1 - p), rtol=1e-6)
    # seeded: the same seed gives the same mask, the next call a new one
    np.testing.assert_array_equal(L.Dropout(p, rng=7)(x), y)
    assert not np.array_equal(d(x), y)


def test_dropout_eval_and_extremes(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(L.Dropout(0.9, rng=0).eval()(x), x)
    np.testing.assert_array_equal(L.Dropout(0.0)(x), x)
    d = L.Dropout(1.0)
    np.testing.assert_array_equal(d(x), 0)
    np.testing.assert_array_equal(d.backward(x), 0)
    with pytest.raises(ValueError, match="p must be in"):
        L.Dropout(1.5)


# ---------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, torch_make", [
    (lambda: L.Conv2d(8, 32, 3, groups=2, rng=1),
     lambda nn: nn.Conv2d(8, 32, 3, groups=2)),
    (lambda: L.Linear(50, 40, rng=1), lambda nn: nn.Linear(50, 40)),
])
def test_init_matches_torch_distribution(make, torch_make, torch):
    layer = make()
    torch.manual_seed(0)
    tl = torch_make(torch.nn)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(tl.weight)
    bound = 1 / math.sqrt(fan_in)              # kaiming_uniform_(a=sqrt(5))
    for k, p in tl.named_parameters():
        ours = layer.params[k]
        assert ours.shape == tuple(p.shape) and ours.dtype == np.float32
        assert np.abs(ours).max() <= bound
        assert np.abs(p.detach().numpy()).max() <= bound + 1e-7
    w = layer.params["weight"]
    # U(-b, b): reaches both ends, variance b^2/3, mean 0
    assert w.max() > 0.97 * bound and w.min() < -0.97 * bound
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.1
    assert abs(w.mean()) < 0.1 * bound
    tw = tl.weight.detach().numpy()
    assert abs(w.std() / tw.std() - 1) < 0.15


def test_init_seeding_and_dtype():
    a = L.Conv2d(3, 4, 3, rng=5)
    b = L.Conv2d(3, 4, 3, rng=np.random.default_rng(5))
    c = L.Conv2d(3, 4, 3, rng=6)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
        assert not np.array_equal(a.params[k], c.params[k])
    assert not np.array_equal(L.Linear(4, 4).params["weight"],
                              L.Linear(4, 4).params["weight"])
    gen = np.random.default_rng(0)
    l1, l2 = L.Linear(4, 4, rng=gen), L.Linear(4, 4, rng=gen)    # generator advances
    assert not np.array_equal(l1.params["weight"], l2.params["weight"])
    d = L.Conv2d(3, 4, 3, dtype=np.float64, rng=5)
    assert all(v.dtype == np.float64 for v in d.params.values())
    assert all(v.dtype == np.float64 for v in d.grads.values())
    bn = L.BatchNorm2d(3)
    np.testing.assert_array_equal(bn.params["weight"], 1)
    np.testing.assert_array_equal(bn.params["bias"], 0)
    with pytest.raises(TypeError, match="rng"):
        L.Linear(2, 2, rng="seed")
    with pytest.raises(TypeError, match="dtype"):
        L.Linear(2, 2, dtype=np.int32)


# ---------------------------------------------------------------------------
# names, repr
# ---------------------------------------------------------------------------

def test_names_match_torch_state_dict(torch):
    nn = torch.nn
    Res = _residual_module(torch)
    ours = L.Sequential(
        L.Conv2d(3, 4, 3, padding=1, rng=0), L.BatchNorm2d(4), L.ReLU(),
        L.Sequential(L.Residual(L.Sequential(L.Conv2d(4, 4, 3, padding=1, bias=False, rng=0),
                                             L.BatchNorm2d(4))),
                     L.Residual(L.Sequential(L.Conv2d(4, 8, 3, 2, 1, rng=0)),
                                shortcut=L.Conv2d(4, 8, 1, 2, rng=0))),
        L.Flatten(), L.Linear(8 * 2 * 2, 5, rng=0))
    theirs = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Sequential(Res(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(4))),
                      Res(nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1)), nn.Conv2d(4, 8, 1, 2))),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 5))
    ts = theirs.state_dict()
    ss = ours.state_dict()
    assert list(ss) == list(ts)
    assert {k: v.shape for k, v in ss.items()} == {k: tuple(v.shape) for k, v in ts.items()}
    assert list(ours.params) == [k for k, _ in theirs.named_parameters()]
    assert list(ours.grads) == list(ours.params)
    assert "3.1.body.0.weight" in ours.params and "3.1.shortcut.weight" in ours.params
    assert ss["1.num_batches_tracked"].dtype == np.int64
    assert ss["1.num_batches_tracked"].shape == ()


def test_basic_block_matches_torchvision_layout(dtype, rng, torch):
    nn = torch.nn
    Res = _residual_module(torch)
    block = L.basic_block(3, 6, stride=2, dtype=dtype, rng=0)
    _randomise_bn(block, rng)
    theirs = nn.Sequential(
        Res(nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.Conv2d(6, 6, 3, 1, 1, bias=False), nn.BatchNorm2d(6)),
            nn.Sequential(nn.Conv2d(3, 6, 1, 2, bias=False), nn.BatchNorm2d(6))),
        nn.ReLU())
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in block.state_dict().items()})
    x = rng.standard_normal((2, 3, 7, 7)).astype(dtype)
    y = block(x)
    assert y.shape == (2, 6, 4, 4)
    np.testing.assert_allclose(y, theirs(torch.from_numpy(x)).detach().numpy(), **_tols(dtype))
    # no shortcut when the shape is kept
    assert not any("shortcut" in k for k in L.basic_block(4, 4, rng=0).params)


def test_repr_matches_torch(torch):
    nn = torch.nn
    ours = L.Sequential(
        L.Conv2d(3, 16, 3, padding=1), L.Conv2d(4, 4, 3, padding="same", dilation=2,
                                                 groups=2, bias=False),
        L.Conv2d(3, 8, (5, 3), stride=(2, 1)), L.MaxPool2d(2), L.MaxPool2d(3, 2, 1, ceil_mode=True),
        L.AvgPool2d(3, 2, 1), L.ReLU(), L.Flatten(), L.Linear(3, 4),
        L.Sequential(L.ReLU(), L.Linear(2, 2, bias=False)))
    theirs = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(4, 4, 3, padding="same", dilation=2,
                                                  groups=2, bias=False),
        nn.Conv2d(3, 8, (5, 3), stride=(2, 1)), nn.MaxPool2d(2), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        nn.AvgPool2d(3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(3, 4),
        nn.Sequential(nn.ReLU(), nn.Linear(2, 2, bias=False)))
    assert repr(ours) == repr(theirs)
    assert repr(L.Conv2d(3, 16, 3, padding=1)) == \
        "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(L.BatchNorm2d(4)) == "BatchNorm2d(4, eps=1e-05, momentum=0.1)"
    assert repr(L.Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(L.Residual(L.ReLU())) == "Residual(\n  (body): ReLU()\n)"


# ---------------------------------------------------------------------------
# state dicts, save / load
# ---------------------------------------------------------------------------

def _trained_bn_model(dtype, rng, seed=0):
    m = L.Sequential(L.Conv2d(2, 3, 3, padding=1, dtype=dtype, rng=seed),
                     L.BatchNorm2d(3, dtype=dtype), L.ReLU(), L.Flatten(),
                     L.Linear(3 * 4 * 4, 2, dtype=dtype, rng=seed))
    m(rng.standard_normal((4, 2, 4, 4)).astype(dtype))   # moves the running stats
    return m


def test_save_load_round_trip(tmp_path, dtype, rng):
    src = _trained_bn_model(dtype, rng).eval()
    dst = _trained_bn_model(dtype, rng, seed=1).eval()
    x = rng.standard_normal((3, 2, 4, 4)).astype(dtype)
    assert not np.array_equal(src(x), dst(x))
    weight = dst.params["0.weight"]
    src.save(tmp_path / "model.npz")
    res = dst.load(tmp_path / "model.npz")
    assert res.missing_keys == [] and res.unexpected_keys == []
    np.testing.assert_array_equal(dst(x), src(x))
    assert dst.params["0.weight"] is weight                 # loaded in place
    assert int(dst.buffers["1.num_batches_tracked"]) == 1
    with np.load(tmp_path / "model.npz") as f:
        assert list(f.keys()) == list(src.state_dict())
    # without an extension: np.savez appends .npz, load finds it
    src.save(tmp_path / "plain")
    dst2 = _trained_bn_model(dtype, rng, seed=2).eval()
    dst2.load(str(tmp_path / "plain"))
    np.testing.assert_array_equal(dst2(x), src(x))
    # state_dict is a copy
    sd = src.state_dict()
    sd["0.weight"][...] = 0
    assert np.abs(src.params["0.weight"]).sum() > 0


def test_load_torch_state_dict_from_npz(tmp_path, rng, torch):
    nn = torch.nn
    torch.manual_seed(3)
    tm = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                       nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 2 * 2, 4)).double()
    tm(torch.from_numpy(rng.standard_normal((5, 2, 4, 4))))    # running stats move
    tm.eval()
    np.savez(tmp_path / "torch.npz", **{k: v.numpy() for k, v in tm.state_dict().items()})
    ours = L.Sequential(L.Conv2d(2, 3, 3, padding=1, dtype=np.float64),
                        L.BatchNorm2d(3, dtype=np.float64), L.ReLU(), L.MaxPool2d(2),
                        L.Flatten(), L.Linear(3 * 2 * 2, 4, dtype=np.float64)).eval()
    ours.load(tmp_path / "torch.npz")
    x = rng.standard_normal((3, 2, 4, 4))
    expected = tm(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-12, atol=1e-14)
    # a torch state_dict (tensors) loads directly too
    other = copy.deepcopy(ours)
    for v in other.params.values():
        v[...] = 0
    other.load_state_dict(tm.state_dict())
    np.testing.assert_allclose(other(x), expected, rtol=1e-12, atol=1e-14)


def test_load_state_dict_errors(rng):
    m = _trained_bn_model(np.float32, rng)
    good = m.state_dict()
    before = m.state_dict()

    bad = dict(good)
    del bad["0.bias"]
    bad["extra.weight"] = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match=r"missing \['0.bias'\].*unexpected \['extra.weight'\]"):
        m.load_state_dict(bad)
    bad["0.weight"] = good["0.weight"] + 1
    res = m.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["0.bias"] and res.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(m.params["0.weight"], good["0.weight"] + 1)
    np.testing.assert_array_equal(m.params["0.bias"], before["0.bias"])

    m.load_state_dict(before)

    def unchanged():
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(v, before[k], err_msg=k)

    changed = {"0.weight": good["0.weight"] * 2}          # loaded first, if at all
    with pytest.raises(ValueError, match=r"'1.running_mean' has shape \(4,\).*shape \(3,\)"):
        m.load_state_dict(dict(good, **changed, **{"1.running_mean": np.zeros(4, np.float32)}))
    unchanged()
    with pytest.raises(TypeError, match="'4.weight' has dtype float64.*float32"):
        m.load_state_dict(dict(good, **changed, **{"4.weight": good["4.weight"].astype(np.float64)}))
    unchanged()
    with pytest.raises(TypeError, match="num_batches_tracked"):
        m.load_state_dict(dict(good, **changed, **{"1.num_batches_tracked": np.array(1.5)}))
    unchanged()


def test_to_dtype(rng):
    m = _trained_bn_model(np.float32, rng)
    m.to(np.float64)
    assert all(v.dtype == np.float64 for v in m.params.values())
    assert all(v.dtype == np.float64 for v in m.grads.values())
    assert m.buffers["1.running_var"].dtype == np.float64
    assert m.buffers["1.num_batches_tracked"].dtype == np.int64
    assert m(rng.standard_normal((2, 2, 4, 4))).dtype == np.float64


# ---------------------------------------------------------------------------
# modes, gradients, backends
# ---------------------------------------------------------------------------

def test_train_eval_flags():
    m = L.Sequential(L.Conv2d(1, 1, 1), L.Residual(L.Dropout(), L.BatchNorm2d(1)))
    assert m.training and all(x.training for x in m._walk())
    assert m.eval() is m
    assert not any(x.training for x in m._walk())
    assert m.train() is m and all(x.training for x in m._walk())
    assert m.train(False) is m and not m[1].shortcut.training


def test_grads_accumulate_until_zero_grad(rng):
    m = L.Sequential(L.Conv2d(2, 3, 3, dtype=np.float64, rng=0), L.ReLU(), L.Flatten(),
                     L.Linear(12, 2, dtype=np.float64, rng=0))
    x = rng.standard_normal((2, 2, 4, 4))
    g = rng.standard_normal((2, 2))
    arrays = {k: v for k, v in m.grads.items()}
    m(x)
    m.backward(g)
    once = {k: v.copy() for k, v in m.grads.items()}
    assert all(np.abs(v).sum() > 0 for v in once.values())
    m.backward(g)
    for k, v in m.grads.items():
        np.testing.assert_allclose(v, 2 * once[k], rtol=1e-14)
        assert v is arrays[k]                                # updated in place
    m.zero_grad()
    assert all(not v.any() for v in m.grads.values())
    assert L.ReLU().params == {} and L.MaxPool2d(2).grads == {}


def test_reference_backend_matches_compiled(dtype, rng):
    x = rng.standard_normal((3, 2, 8, 8)).astype(dtype)
    g = rng.standard_normal((3, 3)).astype(dtype)
    out = {}
    for backend in ("fastconv", "reference"):
        m = _lenet_ish(dtype)
        assert m.set_backend(backend) is m
        y = m(x)
        m.zero_grad()
        gx = m.backward(g)
        out[backend] = (y, gx, {k: v.copy() for k, v in m.grads.items()}, m.state_dict())
    a, b = out["fastconv"], out["reference"]
    tol = _tols(dtype)
    np.testing.assert_allclose(a[0], b[0], **tol)
    np.testing.assert_allclose(a[1], b[1], **tol)
    for k in a[2]:
        np.testing.assert_allclose(a[2][k], b[2][k], err_msg=k, **tol)
    for k in a[3]:
        np.testing.assert_allclose(a[3][k], b[3][k], err_msg=k, **tol)


def test_set_backend_routes_calls(monkeypatch, rng):
    calls = []
    for mod, tag in ((fastconv.reference, "reference"), (fastconv.functional, "fastconv")):
        for fn in ("conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
                   "avg_pool2d", "avg_pool2d_backward"):
            orig = getattr(mod, fn)

            def wrapper(*a, _orig=orig, _name=f"{tag}.{fn}", **k):
                calls.append(_name)
                return _orig(*a, **k)

            monkeypatch.setattr(mod, fn, wrapper)
    m = L.Sequential(L.Residual(L.Sequential(L.Conv2d(2, 2, 3, padding=1, rng=0))),
                     L.MaxPool2d(2), L.AvgPool2d(2))
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    m.set_backend("reference")
    m.backward(np.ones_like(m(x)))
    assert sorted(set(calls)) == sorted(
        f"reference.{f}" for f in ("conv2d", "conv2d_backward", "max_pool2d",
                                   "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"))
    calls.clear()
    m.set_backend("fastconv")
    m.backward(np.ones_like(m(x)))
    assert calls and all(c.startswith("fastconv.") for c in calls)
    with pytest.raises(ValueError, match="backend must be one of"):
        m.set_backend("torch")


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [
    L.Conv2d(1, 1, 1), L.Linear(2, 2), L.MaxPool2d(2), L.AvgPool2d(2), L.ReLU(), L.Flatten(),
    L.Dropout(), L.BatchNorm2d(1), L.Sequential(L.ReLU()), L.Residual(L.ReLU()),
], ids=lambda m: type(m).__name__)
def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((2, 2), np.float32))


def test_input_errors():
    x4 = np.ones((2, 4, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"expects 2-D input \(N, 16\).*\(2, 4, 2, 2\).*Flatten"):
        L.Linear(16, 3)(x4)
    with pytest.raises(ValueError, match=r"\(N, 5\), got shape \(2, 4\)"):
        L.Linear(5, 3)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*\(N, 3, H, W\), got shape \(2, 4, 2, 2\)"):
        L.Conv2d(3, 8, 1)(x4)
    with pytest.raises(ValueError, match=r"BatchNorm2d.*\(N, 3, H, W\), got shape \(2, 4, 2, 2\)"):
        L.BatchNorm2d(3)(x4)
    with pytest.raises(TypeError, match=r"dtype float64 but the layer's parameters are float32"):
        L.Conv2d(4, 2, 1)(x4.astype(np.float64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        L.ReLU()([[1.0]])
    with pytest.raises(TypeError, match="float32 or float64"):
        L.ReLU()(np.ones(3, np.int64))
    with pytest.raises(ValueError, match="larger than the padded input"):   # kernel check reused
        L.Conv2d(4, 2, 5)(x4)
    with pytest.raises(ValueError, match="max_pool2d"):
        L.MaxPool2d(2)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"body's output of shape \(2, 2, 2, 2\).*\(2, 4, 2, 2\)"):
        L.Residual(L.Conv2d(4, 2, 1))(x4)
    conv = L.Conv2d(4, 2, 1)
    conv(x4)
    with pytest.raises(ValueError, match=r"grad_out must have the forward output's shape"):
        conv.backward(np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(TypeError, match=r"grad_out must have the forward output's dtype"):
        conv.backward(np.ones((2, 2, 2, 2), np.float64))


def test_constructor_errors():
    with pytest.raises(ValueError, match="groups=2 must divide"):
        L.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="stride must be positive"):
        L.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        L.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="algorithm"):
        L.Conv2d(3, 4, 3, algorithm="fft")
    with pytest.raises(ValueError, match="in_features"):
        L.Linear(0, 3)
    with pytest.raises(TypeError, match="kernel_size"):
        L.MaxPool2d(2.5)
    with pytest.raises(TypeError, match="must be a fastconv.layers.Layer"):
        L.Sequential(L.ReLU(), lambda x: x)


def test_deepcopy_independent(rng):
    m = _lenet_ish(np.float32)
    c = copy.deepcopy(m)
    c.params["0.weight"][...] = 0
    assert np.abs(m.params["0.weight"]).sum() > 0


# ---------------------------------------------------------------------------
# shape protocol: output_shape and _rf_geometry
# ---------------------------------------------------------------------------

SHAPE_CASES = dict(CASES, **{
    "conv_valid": (lambda d: L.Conv2d(2, 3, (2, 3), padding="valid", dtype=d, rng=0),
                   (1, 2, 5, 6), "train"),
    "conv_same_dilated": (lambda d: L.Conv2d(2, 2, 4, padding="same", dilation=2,
                                             dtype=d, rng=0), (1, 2, 9, 7), "train"),
    "conv_strided": (lambda d: L.Conv2d(1, 2, 3, stride=(3, 2), padding=2, dtype=d,
                                        rng=0), (2, 1, 10, 11), "train"),
    "maxpool_rect_ceil": (lambda d: L.MaxPool2d((3, 2), (2, 3), (1, 1), ceil_mode=True),
                          (1, 2, 9, 10), "train"),
    "avgpool_stride": (lambda d: L.AvgPool2d(3, 2), (1, 1, 9, 8), "train"),
    "flatten_middle": (lambda d: L.Flatten(1, 2), (2, 3, 4, 5), "train"),
    "flatten_last": (lambda d: L.Flatten(-2, -1), (2, 3, 4, 5), "train"),
    "relu_2d": (lambda d: L.ReLU(), (3, 7), "train"),
    "dropout_train": (lambda d: L.Dropout(0.3, rng=0), (2, 5), "train"),
    "residual_shortcut": (lambda d: L.Residual(
        L.Conv2d(2, 3, 3, stride=2, padding=1, dtype=d, rng=0),
        L.Conv2d(2, 3, 1, stride=2, dtype=d, rng=1)), (1, 2, 7, 7), "train"),
})


@pytest.mark.parametrize("backend", ["fastconv", "reference"])
@pytest.mark.parametrize("name", list(SHAPE_CASES))
def test_output_shape_equals_forward_shape(name, backend, rng):
    factory, shape, mode = SHAPE_CASES[name]
    layer = factory(np.float32).set_backend(backend)
    layer.train(mode == "train")
    x = rng.standard_normal(shape).astype(np.float32)
    assert layer.output_shape(shape) == layer(x).shape
    assert layer.output_shape(list(shape)) == layer(x).shape


# name -> (layer, bad input shape): output_shape must raise forward's error
SHAPE_ERRORS = {
    "conv_channels": (L.Conv2d(3, 4, 3, rng=0), (1, 2, 5, 5)),
    "conv_rank": (L.Conv2d(3, 4, 3, rng=0), (3, 5, 5)),
    "conv_too_small": (L.Conv2d(1, 1, 5, dilation=2, rng=0), (1, 1, 6, 12)),
    "linear_rank": (L.Linear(4, 2, rng=0), (1, 4, 1, 1)),
    "linear_features": (L.Linear(4, 2, rng=0), (1, 5)),
    "bn_channels": (L.BatchNorm2d(3), (2, 4, 3, 3)),
    "bn_one_value": (L.BatchNorm2d(3), (1, 3, 1, 1)),
    "maxpool_too_small": (L.MaxPool2d(4), (1, 1, 3, 8)),
    "maxpool_rank": (L.MaxPool2d(2), (4, 4)),
    "maxpool_empty_window": (L.MaxPool2d(2, 1, 1, dilation=2, ceil_mode=True),
                             (1, 1, 1, 1)),
    "avgpool_padding": (L.AvgPool2d(2, padding=2), (1, 1, 4, 4)),
    "flatten_dims": (L.Flatten(2, 3), (4, 5)),
    "sequential_chain": (L.Sequential(L.Flatten(), L.Linear(10, 2, rng=0)), (1, 2, 2, 2)),
    "residual_mismatch": (L.Residual(L.Conv2d(2, 2, 3, rng=0)), (1, 2, 5, 5)),
}


@pytest.mark.parametrize("name", list(SHAPE_ERRORS))
def test_output_shape_raises_forwards_error(name):
    assert_output_shape_raises_like_forward(*SHAPE_ERRORS[name])


def test_output_shape_bad_argument_and_default():
    with pytest.raises(TypeError, match=r"input_shape must be a tuple of non-negative"):
        L.ReLU().output_shape((2, -3))
    with pytest.raises(TypeError, match="input_shape"):
        L.Conv2d(1, 1, 1, rng=0).output_shape(np.zeros((1, 1, 2, 2)))

    class Custom(L.Layer):
        pass

    with pytest.raises(NotImplementedError, match="Custom does not implement output_shape"):
        Custom().output_shape((1, 2))
    with pytest.raises(NotImplementedError, match="Custom does not declare"):
        Custom()._rf_geometry()


def test_rf_geometry_of_each_layer():
    assert L.Conv2d(1, 1, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 3),
                    rng=0)._rf_geometry() == ((3, 2, 1, 1), (5, 1, 2, 3))
    # "same" with an even extent: the odd pixel after, so before = total // 2
    assert L.Conv2d(1, 1, 4, padding="same", rng=0)._rf_geometry() == (
        (4, 1, 1, 1), (4, 1, 1, 1))
    assert L.Conv2d(1, 1, 3, padding="valid", rng=0)._rf_geometry() == (
        (3, 1, 0, 1), (3, 1, 0, 1))
    assert L.MaxPool2d(3, 2, 1, dilation=2)._rf_geometry() == ((3, 2, 1, 2),) * 2
    assert L.MaxPool2d(2)._rf_geometry() == ((2, 2, 0, 1),) * 2
    assert L.AvgPool2d((2, 3), padding=(1, 0))._rf_geometry() == (
        (2, 2, 1, 1), (3, 3, 0, 1))
    for layer in (L.ReLU(), L.Dropout(), L.BatchNorm2d(2), L.Flatten()):
        assert layer._rf_geometry() is None
    assert L.Linear(2, 2, rng=0)._rf_geometry() == "global"
    assert L.Sequential(L.ReLU(), L.Dropout())._rf_geometry() is None
    assert L.Sequential(L.Conv2d(1, 1, 3, rng=0), L.Flatten(),
                        L.Linear(4, 2, rng=0))._rf_geometry() == "global"
    # A chain is one dense window: two 3x3 pad-1 convs = a 5x5 pad-2 one;
    # 3x3 s2 p1 then 2x2 pool: kernel 3 + 1*2 = 5, stride 4, pad 1.
    two = L.Sequential(L.Conv2d(1, 1, 3, padding=1, rng=0), L.ReLU(),
                       L.Conv2d(1, 1, 3, padding=1, rng=0))
    assert two._rf_geometry() == ((5, 1, 2, 1),) * 2
    down = L.Sequential(L.Conv2d(1, 1, 3, stride=2, padding=1, rng=0), L.MaxPool2d(2))
    assert down._rf_geometry() == ((5, 4, 1, 1),) * 2
    # Residual: the union of the body's and the shortcut's fields.
    assert L.Residual(two)._rf_geometry() == ((5, 1, 2, 1),) * 2
    assert L.Residual(L.ReLU())._rf_geometry() is None


# ---------------------------------------------------------------------------
# fused execution and reused buffers (the compiled backend's layer path)
# ---------------------------------------------------------------------------

def _resnet_ish(dtype, rng):
    m = L.Sequential(
        L.Conv2d(3, 8, 3, padding=1, bias=False, dtype=dtype, rng=0), L.BatchNorm2d(8, dtype=dtype),
        L.ReLU(), L.basic_block(8, 8, dtype=dtype, rng=1), L.basic_block(8, 16, 2, dtype=dtype, rng=2),
        L.Conv2d(16, 16, 3, padding=1, dtype=dtype, rng=3), L.ReLU(),
        L.GlobalAvgPool2d(), L.Flatten(), L.Linear(16, 8, dtype=dtype, rng=4), L.ReLU(),
        L.Linear(8, 3, dtype=dtype, rng=5))
    _randomise_bn(m, rng)
    return m


def _step(m, x, g):
    y = m(x)
    m.zero_grad()
    gx = m.backward(g)
    return y.copy(), gx.copy(), {k: v.copy() for k, v in m.grads.items()}, m.state_dict()


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fused_layers_match_unfused_twins(mode, dtype, rng):
    """The compiled path fuses (BN+ReLU, conv+ReLU, add+ReLU, Linear+ReLU;
    eval: BN folded into the convolution); the NumPy twins run each layer
    alone.  Two steps each: the second runs on reused buffers."""
    x = rng.standard_normal((4, 3, 8, 8)).astype(dtype)
    g = rng.standard_normal((4, 3)).astype(dtype)
    out = {}
    for backend in ("fastconv", "reference"):
        m = _resnet_ish(dtype, np.random.default_rng(7)).set_backend(backend)
        m.train(mode == "train")
        out[backend] = [_step(m, x, g), _step(m, 2 * x, g)]
    tol = _tols(dtype)
    for a, b in zip(out["fastconv"], out["reference"]):
        np.testing.assert_allclose(a[0], b[0], **tol)
        np.testing.assert_allclose(a[1], b[1], **tol)
        for k in a[2]:
            np.testing.assert_allclose(a[2][k], b[2][k], err_msg=k, **tol)
        for k in a[3]:
            np.testing.assert_allclose(a[3][k], b[3][k], err_msg=k, **tol)


def test_fused_steps_plan():
    conv, bn, relu = L.Conv2d(2, 2, 3, rng=0), L.BatchNorm2d(2), L.ReLU()
    lin, relu2 = L.Linear(2, 2, rng=0), L.ReLU()
    children = [conv, bn, relu, L.Flatten(), lin, relu2]
    plan = [(type(layer).__name__, sorted(fuse)) for layer, fuse in L._fused_steps(children)]
    assert plan == [("Conv2d", []), ("BatchNorm2d", ["relu"]), ("Flatten", []),
                    ("Linear", ["relu"])]
    for c in children:
        c.eval()
    plan = [(type(layer).__name__, sorted(fuse)) for layer, fuse in L._fused_steps(children)]
    assert plan == [("Conv2d", ["bn", "relu"]), ("Flatten", []), ("Linear", ["relu"])]

    class MyReLU(L.ReLU):
        pass

    class MyConv(L.Conv2d):
        pass

    mine = [MyConv(2, 2, 3, rng=0).eval(), bn, MyReLU()]      # subclasses: unfused
    assert [sorted(f) for _, f in L._fused_steps(mine)] == [[], [], []]
    for c in children:
        c.set_backend("reference")
    assert all(not f for _, f in L._fused_steps(children))


def test_outputs_the_caller_holds_are_never_overwritten(rng):
    m = _resnet_ish(np.float32, rng)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    g = np.ones((2, 3), np.float32)
    y1 = m(x)
    gx1 = m.backward(g)
    y1_copy, gx1_copy = y1.copy(), gx1.copy()
    y2 = m(-x)
    gx2 = m.backward(2 * g)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(gx1, gx1_copy)
    assert not np.shares_memory(y1, y2) and not np.shares_memory(gx1, gx2)
    inner = m[0](x)                                 # a child's output, held
    kept = inner.copy()
    m(x)
    np.testing.assert_array_equal(inner, kept)


def test_buffers_are_reused_across_steps(rng):
    m = _resnet_ish(np.float32, rng)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    g = np.ones((2, 3), np.float32)
    m(x), m.backward(g)                                     # nothing kept
    pooled = m._pool.nbytes
    assert pooled > 0
    for _ in range(3):           # later steps take every array from the pool
        m(x), m.backward(g)
        assert m._pool.nbytes == pooled


def test_eval_fold_follows_changes_to_its_sources(rng):
    """The folded weights are cached; any in-place change of the conv's
    weight or bias or the BN's parameters, statistics or eps is seen."""
    def make():
        m = L.Sequential(L.Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=0),
                         L.BatchNorm2d(4, dtype=np.float64), L.ReLU())
        _randomise_bn(m, np.random.default_rng(3))
        return m.eval()

    fused, twin = make(), make().set_backend("reference")
    x = rng.standard_normal((2, 3, 6, 6))
    edits = [
        lambda m: m.params["0.weight"].__imul__(1.5),
        lambda m: m.params["0.bias"].__iadd__(0.25),
        lambda m: m.params["1.weight"].__imul__(-1.0),
        lambda m: m.params["1.bias"].__isub__(0.5),
        lambda m: m.buffers["1.running_mean"].__iadd__(1.0),
        lambda m: m.buffers["1.running_var"].__imul__(4.0),
        lambda m: setattr(m[1], "eps", 0.5),
    ]
    np.testing.assert_allclose(fused(x), twin(x), rtol=1e-12, atol=1e-12)
    for edit in edits:
        before = fused(x).copy()
        edit(fused)
        edit(twin)
        after = fused(x)
        assert not np.allclose(after, before)
        np.testing.assert_allclose(after, twin(x), rtol=1e-12, atol=1e-12)


def test_copies_and_pickles_leave_out_what_calls_derived(rng):
    import pickle

    m = _resnet_ish(np.float32, rng).eval()
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = m(x)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        for a, b in zip(m._walk(), clone._walk()):
            assert b._cache is None and b._out_meta is None
            assert getattr(b, "_packed", None) is None and not getattr(b, "_plans", {})
        np.testing.assert_array_equal(clone(x), y)


def test_no_grad_keeps_nothing_and_reuses_memory(rng):
    def make():
        m = L.Sequential(L.Conv2d(3, 8, 3, padding=1, rng=0),
                         *[L.basic_block(8, 8, rng=i) for i in range(6)],
                         L.GlobalAvgPool2d(), L.Flatten(), L.Linear(8, 3, rng=9))
        _randomise_bn(m, np.random.default_rng(5))
        return m.eval()

    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    m, fresh = make(), make()
    y = m(x).copy()
    with L.no_grad():
        np.testing.assert_array_equal(fresh(x), y)
        np.testing.assert_array_equal(fresh(x), y)
    # each intermediate was free again once the next layer had read it: a
    # few activations' worth of memory, not one per layer
    activation = x.nbytes * 8 // 3
    assert m._pool.nbytes > 12 * activation
    assert fresh._pool.nbytes < 5 * activation
    assert all(layer._cache in (None, L._NO_GRAD) for layer in fresh._walk())
    with pytest.raises(RuntimeError, match=r"no_grad\(\)"):
        fresh.backward(np.ones((2, 3), np.float32))
    fresh(x)                                        # outside: backward works again
    fresh.backward(np.ones((2, 3), np.float32))


# ---------------------------------------------------------------- issue 12
# Model files that are not a model's .npz: an .npy gave "numpy.ndarray does
# not support the context manager protocol", an empty file a bare EOFError,
# a damaged one BadZipFile; a dtype mismatch suggested model.to(np.int32).

def _model_file(tmp_path, kind):
    import pickle
    import zipfile

    path = tmp_path / f"{kind}.npz"
    good = {"weight": np.zeros((2, 3, 2, 2), np.float32), "bias": np.zeros(2, np.float32)}
    if kind == "npy":
        path = tmp_path / "w.npy"
        np.save(path, good["weight"])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "truncated":
        np.savez(path, **good)
        path.write_bytes(path.read_bytes()[:100])
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(good))
    elif kind == "object":
        np.savez(path, weight=np.array([None, 1], object), bias=good["bias"])
    elif kind == "bad-member":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("weight.npy", b"\x93NUMPY not an array header")
            z.writestr("bias.npy", b"")
    return path


@pytest.mark.parametrize("kind, says", [
    ("npy", r"w\.npy.* holds a single array of shape \(2, 3, 2, 2\) and dtype float32"),
    ("empty", r"empty\.npz.* is not a model file"),
    ("random", r"random\.npz.* is not a model file"),
    ("truncated", r"truncated\.npz.* is not a model file"),
    ("pickle", r"pickle\.npz.* is not a model file"),
    ("object", r"object\.npz.* is a damaged or unsupported \.npz"),
    ("bad-member", r"bad-member\.npz.* is a damaged or unsupported \.npz"),
])
def test_load_says_what_the_file_is_and_what_was_expected(tmp_path, kind, says):
    model = L.Conv2d(3, 2, 2, rng=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=says) as info:
        model.load(_model_file(tmp_path, kind))
    assert "model.save or np.savez" in str(info.value)
    for k, v in model.state_dict().items():           # nothing loaded
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("dtype", ["int32", "<U1", "complex64", "bool"])
def test_load_dtype_mismatch_suggests_no_impossible_conversion(tmp_path, dtype):
    model = L.Conv2d(3, 2, 2, rng=0)
    np.savez(tmp_path / "m.npz", **{k: np.zeros(v.shape, dtype)
                                    for k, v in model.state_dict().items()})
    with pytest.raises(TypeError, match=f"has dtype {np.dtype(dtype)} in the state "
                       r"dict but float32 in the model; fastconv models hold") as info:
        model.load(tmp_path / "m.npz")
    assert "model.to" not in str(info.value)
    np.savez(tmp_path / "f64.npz", **{k: v.astype(np.float64)
                                      for k, v in model.state_dict().items()})
    with pytest.raises(TypeError, match=r"model\.to\(np\.float64\)"):
        model.load(tmp_path / "f64.npz")


def test_flags_of_layers_must_be_bools():
    for make in (lambda: L.MaxPool2d(2, ceil_mode="yes"),
                 lambda: L.AvgPool2d(2, count_include_pad="no"),
                 lambda: L.LPPool2d(2, 2, ceil_mode=1),
                 lambda: L.Conv2d(3, 2, 2, bias="no"),
                 lambda: L.Linear(3, 2, bias=0)):
        with pytest.raises(TypeError, match="must be a bool"):
            make()
    with pytest.raises(TypeError, match="dilation"):
        L.MaxPool2d(2, dilation=None)      # built, then forward raised AttributeError
