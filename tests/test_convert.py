"""fc_to_conv / conv_to_fc / convolutionalize: the cs231n notes' FC -> CONV claims.

Expected values: the original Linear on flattened slices of the input, the
original network on crops computed here, and receptive-field arithmetic
written out in this file.
"""

import numpy as np
import pytest

import fastconv as fc
from fastconv import layers as L


def _flat(x):
    return x.reshape(x.shape[0], -1)


# ---------------------------------------------------------------- fc_to_conv
@pytest.mark.parametrize("chw", [(4, 3, 3), (2, 5, 1), (6, 1, 1), (1, 4, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_fc_to_conv_computes_the_linear_at_every_window(chw, bias, dtype, rng, tol):
    C, H, W = chw
    lin = L.Linear(C * H * W, 7, bias=bias, dtype=dtype, rng=rng)
    saved = {k: v.copy() for k, v in lin.params.items()}
    conv = fc.fc_to_conv(lin, chw)
    assert isinstance(conv, L.Conv2d) and conv.kernel_size == (H, W)
    assert conv.dtype == dtype and all(p.dtype == dtype for p in conv.params.values())
    assert ("bias" in conv.params) == bias
    x = rng.standard_normal((3, C, H, W)).astype(dtype)
    y = conv(x)
    assert y.shape == (3, 7, 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], lin(_flat(x)), **tol(dtype, C * H * W))
    # a larger input: the Linear applied to every H x W window
    big = rng.standard_normal((2, C, H + 3, W + 2)).astype(dtype)
    ybig = conv(big)
    assert ybig.shape == (2, 7, 4, 3)
    for i in range(4):
        for j in range(3):
            np.testing.assert_allclose(ybig[:, :, i, j],
                                       lin(_flat(big[:, :, i:i + H, j:j + W])),
                                       **tol(dtype, C * H * W))
    # weights copied, not shared; the Linear untouched
    for k, v in conv.params.items():
        assert not np.shares_memory(v, lin.params[k])
        v += 1
    for k, v in lin.params.items():
        np.testing.assert_array_equal(v, saved[k])


def test_fc_to_conv_default_is_a_1x1_conv_on_vectors(rng, tol):
    lin = L.Linear(5, 3, rng=rng)
    conv = fc.fc_to_conv(lin)
    assert conv.kernel_size == (1, 1) and conv.in_channels == 5
    x = rng.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(conv(x[:, :, None, None])[:, :, 0, 0], lin(x),
                               **tol(np.float32, 5))


def test_round_trips_are_exact(rng):
    lin = L.Linear(3 * 4 * 2, 6, dtype=np.float64, rng=rng)
    back = fc.conv_to_fc(fc.fc_to_conv(lin, (3, 4, 2)), (3, 4, 2))
    assert isinstance(back, L.Linear) and back.dtype == np.float64
    for k in ("weight", "bias"):
        np.testing.assert_array_equal(back.params[k], lin.params[k])
    conv = L.Conv2d(3, 5, (4, 2), stride=3, bias=False, rng=rng)
    again = fc.fc_to_conv(fc.conv_to_fc(conv), (3, 4, 2))
    assert "bias" not in again.params
    np.testing.assert_array_equal(again.params["weight"], conv.params["weight"])


def test_conv_to_fc_matches_the_conv(rng, tol):
    conv = L.Conv2d(4, 6, (3, 5), rng=rng)
    lin = fc.conv_to_fc(conv, (4, 3, 5))
    x = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(lin(_flat(x)), conv(x)[:, :, 0, 0], **tol(np.float32, 60))
    assert not np.shares_memory(lin.params["weight"], conv.params["weight"])
    # "valid" padding and a 1x1 "same" convolution have no padding either
    fc.conv_to_fc(L.Conv2d(4, 6, 3, padding="valid", rng=0))
    fc.conv_to_fc(L.Conv2d(4, 6, 1, padding="same", rng=0))


def test_conversion_errors_name_the_problem():
    with pytest.raises(TypeError, match="linear must be a fastconv.layers.Linear"):
        fc.fc_to_conv(L.Conv2d(1, 1, 1, rng=0), (1, 1, 1))
    with pytest.raises(ValueError, match=r"\(2, 3, 3\) flattens to 18 .*in_features=20"):
        fc.fc_to_conv(L.Linear(20, 2, rng=0), (2, 3, 3))
    with pytest.raises(ValueError, match="input_shape must be 3 positive ints"):
        fc.fc_to_conv(L.Linear(20, 2, rng=0), (20,))
    with pytest.raises(TypeError, match="conv must be a fastconv.layers.Conv2d"):
        fc.conv_to_fc(L.Linear(2, 2, rng=0))
    with pytest.raises(ValueError, match=r"padding=\(1, 1\)"):
        fc.conv_to_fc(L.Conv2d(2, 2, 3, padding=1, rng=0))
    with pytest.raises(ValueError, match="groups=2"):
        fc.conv_to_fc(L.Conv2d(2, 2, 3, groups=2, rng=0))
    with pytest.raises(ValueError, match="dilation"):
        fc.conv_to_fc(L.Conv2d(2, 2, 3, dilation=2, rng=0))
    with pytest.raises(ValueError, match=r"kernel must cover the whole input.*\(2, 5, 5\)"):
        fc.conv_to_fc(L.Conv2d(2, 2, 3, rng=0), (2, 5, 5))


# ---------------------------------------------------------------- networks
def _net(pad, dtype, rng, head_in):
    bn = L.BatchNorm2d(4, dtype=dtype)
    bn.load_state_dict({**bn.state_dict(),
                        "weight": rng.uniform(0.5, 1.5, 4).astype(dtype),
                        "bias": rng.standard_normal(4).astype(dtype),
                        "running_mean": rng.standard_normal(4).astype(dtype),
                        "running_var": rng.uniform(0.5, 2, 4).astype(dtype)})
    return L.Sequential(
        L.Conv2d(3, 4, 3, padding=pad, dtype=dtype, rng=rng), bn, L.ReLU(),
        L.MaxPool2d(2),
        L.Conv2d(4, 5, 3, padding=pad, dtype=dtype, rng=rng), L.ReLU(),
        L.MaxPool2d(2),
        L.Flatten(), L.Linear(head_in, 8, dtype=dtype, rng=rng), L.ReLU(),
        L.Dropout(0.5, rng=0), L.Linear(8, 3, dtype=dtype, rng=rng))


def _total_stride(net):
    s = 1
    for layer in net:
        if isinstance(layer, (L.Conv2d, L.MaxPool2d)):
            st = layer.stride
            s *= st[0] if isinstance(st, tuple) else st
    return s


def _crop_scores(net, big, crop, stride):
    """The original network on every crop at multiples of ``stride``."""
    N, _, H, W = big.shape
    rows, cols = (H - crop) // stride + 1, (W - crop) // stride + 1
    out = np.zeros((N, 3, rows, cols), dtype=big.dtype)
    for i in range(rows):
        for j in range(cols):
            out[:, :, i, j] = net(big[:, :, i * stride:i * stride + crop,
                                      j * stride:j * stride + crop])
    return out


def test_sliding_equals_crops_without_padding(dtype, rng, tol):
    # 18 -> conv 16 -> pool 8 -> conv 6 -> pool 3: FC reads 5*3*3
    net = _net(0, dtype, rng, 5 * 3 * 3).eval()
    S = _total_stride(net)
    assert S == 4
    fcn = fc.convolutionalize(net, (3, 18, 18))
    assert [type(l).__name__ for l in fcn] == [
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
        "Conv2d", "ReLU", "Dropout", "Conv2d"]
    assert fcn[7].kernel_size == (3, 3) and fcn[10].kernel_size == (1, 1)
    big = rng.standard_normal((2, 3, 18 + 3 * S, 18 + 4 * S)).astype(dtype)
    score_map = fcn(big)
    assert score_map.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(score_map, _crop_scores(net, big, 18, S),
                               **tol(dtype, 200))
    # the original size gives the original scores as (N, classes, 1, 1)
    x = big[:, :, :18, :18]
    np.testing.assert_allclose(fcn(x)[:, :, 0, 0], net(x), **tol(dtype, 200))


def _rf(layers):
    """(stride, offset, size): output u reads input rows u*stride+offset .. +size-1."""
    stride, offset, size = 1, 0, 1
    for k, s, p in layers:
        offset -= p * stride
        size += (k - 1) * stride
        stride *= s
    return stride, offset, size


def test_zero_padding_differs_at_crop_edges(dtype, rng, tol):
    """With padding, crops are padded at their own edges; the sliding net is not.

    Trunk features agree exactly where their receptive field stays inside
    the crop (or leaves it only across the big image's own border), and the
    scores, which read every feature, differ at every position.
    """
    crop, big_size = 20, 36
    # 20 -> conv 20 -> pool 10 -> conv 10 -> pool 5
    net = _net(1, dtype, rng, 5 * 5 * 5).eval()
    S, off, R = _rf([(3, 1, 1), (2, 2, 0), (3, 1, 1), (2, 2, 0)])
    assert (S, off, R) == (_total_stride(net), -3, 10)
    fcn = fc.convolutionalize(net, (3, crop, crop))
    big = rng.standard_normal((1, 3, big_size, big_size)).astype(dtype)

    def trunk(model, x):
        for layer in list(model)[:7]:
            x = layer(x)
        return x

    fbig = trunk(net, big)                                    # (1, 5, 9, 9)
    n_pos = (big_size - crop) // S + 1                        # 5 crops per axis
    n_feat = crop // S                                        # 5 features per axis

    def inside(a, u):
        """Feature u of the crop at offset a*S reads only crop or outer-border cells."""
        lo, hi = (a + u) * S + off, (a + u) * S + off + R - 1
        lo, hi = max(lo, 0), min(hi, big_size - 1)            # the big image's padding
        return a * S <= lo and hi <= a * S + crop - 1

    agree = differ = 0
    for a in range(n_pos):
        for b in range(n_pos):
            fcrop = trunk(net, big[:, :, a * S:a * S + crop, b * S:b * S + crop])
            for u in range(n_feat):
                for v in range(n_feat):
                    got, want = fcrop[0, :, u, v], fbig[0, :, a + u, b + v]
                    if inside(a, u) and inside(b, v):
                        np.testing.assert_allclose(got, want, **tol(dtype, 50))
                        agree += 1
                    else:
                        differ += int(np.max(np.abs(got - want)) > 1e-3)
    n_edge = n_pos * n_pos * n_feat * n_feat - agree
    assert agree > 0 and n_edge > 0
    # max pooling can hide a border effect in a channel, rarely in all five
    assert differ >= 0.75 * n_edge, (differ, n_edge)
    # the interior crops' centre features agree, yet their scores do not
    score_map = fcn(big)
    crops = _crop_scores(net, big, crop, S)
    assert score_map.shape == crops.shape == (1, 3, n_pos, n_pos)
    assert np.all(np.max(np.abs(score_map - crops), axis=1) > 1e-4)
    # and without the big image's extra context the two agree again
    np.testing.assert_allclose(fcn(big[:, :, :crop, :crop])[:, :, 0, 0],
                               net(big[:, :, :crop, :crop]), **tol(dtype, 200))


def test_alexnet_style_score_map_shape():
    """The notes: 224 -> 7x7x512 classifier, slid over 384, gives a 6x6 map."""
    rng = np.random.default_rng(0)
    trunk, c = [], 3
    for _ in range(5):                     # five halvings: total stride 32
        trunk += [L.Conv2d(c, 2, 3, padding=1, rng=rng), L.ReLU(), L.MaxPool2d(2)]
        c = 2
    net = L.Sequential(*trunk, L.Flatten(), L.Linear(2 * 7 * 7, 6, rng=rng),
                       L.ReLU(), L.Dropout(), L.Linear(6, 6, rng=rng),
                       L.ReLU(), L.Dropout(), L.Linear(6, 4, rng=rng)).eval()
    assert net(np.zeros((1, 3, 224, 224), np.float32)).shape == (1, 4)
    fcn = fc.convolutionalize(net, (3, 224, 224))
    assert fcn[15].kernel_size == (7, 7)                    # the 7x7 "FC" conv
    assert fcn(np.zeros((1, 3, 384, 384), np.float32)).shape == (1, 4, 6, 6)
    assert fcn(np.zeros((1, 3, 224, 224), np.float32)).shape == (1, 4, 1, 1)


def test_convolutionalize_leaves_the_original_untouched(rng):
    net = _net(0, np.float64, rng, 5 * 3 * 3)             # training mode
    net.set_backend("reference")
    x = rng.standard_normal((2, 3, 18, 18))
    net.zero_grad()
    net.backward(np.ones_like(net(x)))                    # non-zero grads, caches
    before = net.state_dict()
    grads = {k: v.copy() for k, v in net.grads.items()}
    rng_state = net[10]._rng.bit_generator.state
    fcn = fc.convolutionalize(net, (3, 18, 18))
    after = net.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])   # BatchNorm stats too
    for k, g in net.grads.items():
        np.testing.assert_array_equal(g, grads[k])
    assert net[10]._rng.bit_generator.state == rng_state
    assert all(layer.training for layer in net._walk())
    # the copy: same values, no shared arrays, same dtype/backend/mode, zero grads
    assert all(layer.training for layer in fcn._walk())
    assert all(layer._backend == "reference" for layer in fcn._walk())
    new = fcn.state_dict()
    np.testing.assert_array_equal(new["1.running_mean"], before["1.running_mean"])
    assert new["7.weight"].shape == (8, 5, 3, 3) and new["7.weight"].dtype == np.float64
    np.testing.assert_array_equal(new["7.weight"].reshape(8, -1), before["8.weight"])
    for a in fcn.params.values():
        assert a.dtype == np.float64
        assert not any(np.shares_memory(a, b) for b in net.params.values())
    assert all(not g.any() for g in fcn.grads.values())
    # the converted net trains: forward/backward run
    out = fcn(rng.standard_normal((2, 3, 22, 22)))
    assert out.shape == (2, 3, 2, 2)
    assert fcn.backward(np.ones_like(out)).shape == (2, 3, 22, 22)


def test_convolutionalize_rejects_what_it_cannot_convert():
    with pytest.raises(TypeError, match="model must be a fastconv.layers.Sequential"):
        fc.convolutionalize(L.Linear(2, 2, rng=0), (2, 1, 1))
    with pytest.raises(ValueError, match="input_shape must be 3 positive ints"):
        fc.convolutionalize(L.Sequential(L.Flatten(), L.Linear(4, 2, rng=0)), (1, 4, 4, 1))
    with pytest.raises(ValueError, match=r"reads 8 features .*\(1, 3, 3\)"):
        fc.convolutionalize(L.Sequential(L.Flatten(), L.Linear(8, 2, rng=0)), (1, 3, 3))
    with pytest.raises(ValueError, match="not preceded by a Flatten"):
        fc.convolutionalize(L.Sequential(L.Linear(8, 2, rng=0)), (8, 1, 1))
    with pytest.raises(ValueError, match="follows the Flatten"):
        fc.convolutionalize(L.Sequential(L.Flatten(), L.MaxPool2d(1),
                                         L.Linear(4, 2, rng=0)), (1, 2, 2))
    with pytest.raises(ValueError, match="only a top-level head"):
        fc.convolutionalize(L.Sequential(L.Sequential(L.Flatten(), L.Linear(4, 2, rng=0))),
                            (1, 2, 2))
    with pytest.raises(ValueError, match="does not accept its input"):
        fc.convolutionalize(L.Sequential(L.Conv2d(3, 2, 5, rng=0), L.Flatten(),
                                         L.Linear(2, 2, rng=0)), (3, 4, 4))
