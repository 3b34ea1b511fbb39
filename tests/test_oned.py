"""conv1d, max_pool1d, avg_pool1d (+ backward) and the Conv1d / MaxPool1d / AvgPool1d
layers: torch parity, 1-D argument forms, 1-D error wording, inputs untouched,
non-contiguous inputs, finite differences."""

import re

import numpy as np
import pytest
from helpers import as_torch, assert_output_shape_raises_like_forward

import fastconv
import fastconv.reference
from fastconv import layers as L
from fastconv.gradcheck import gradcheck

# ---------------------------------------------------------------------------
# conv1d
# ---------------------------------------------------------------------------

# (N, C, L, F, k, stride, padding, dilation, groups, bias)
CONV_CASES = [
    (2, 3, 10, 4, 3, 1, 0, 1, 1, True),
    (2, 3, 11, 6, 3, 2, 1, 1, 1, True),
    (1, 4, 13, 6, 4, 3, 2, 2, 2, False),        # grouped, strided, dilated
    (2, 3, 9, 3, 5, 1, "same", 1, 3, True),     # depthwise "same"
    (2, 2, 8, 4, 4, 1, "same", 2, 1, True),     # even kernel: odd extra on the right
    (1, 2, 7, 3, 3, (2,), "valid", (1,), 1, True),
    (3, 1, 5, 2, 5, 1, 0, 1, 1, True),          # kernel == input
    (1, 1, 1, 1, 1, 1, 0, 1, 1, False),         # L = 1
]
CONV_IDS = [f"case{i}" for i in range(len(CONV_CASES))]


def _conv_inputs(case, dtype, rng):
    N, C, L_, F, k, s, p, d, groups, bias = case
    x = rng.standard_normal((N, C, L_)).astype(dtype)
    w = rng.standard_normal((F, C // groups, k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if bias else None
    return x, w, b, dict(stride=s, padding=p, dilation=d, groups=groups)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv1d_forward_backward_match_torch(case, impl, dtype, rng, tol, torch):
    x, w, b, geo = _conv_inputs(case, dtype, rng)
    before = [a.copy() for a in (x, w) + ((b,) if b is not None else ())]
    y = impl.conv1d(x, w, b, **geo)
    xt, wt = as_torch(torch, x, True), as_torch(torch, w, True)
    bt = None if b is None else as_torch(torch, b, True)
    yt = torch.nn.functional.conv1d(xt, wt, bt, **geo)
    assert y.shape == tuple(yt.shape) and y.dtype == dtype
    K = w.shape[1] * w.shape[2]
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol(dtype, K))

    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = impl.conv1d_backward(g, x, w, **geo)
    yt.backward(as_torch(torch, g))
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (w.shape[0],)
    assert gx.dtype == gw.dtype == gb.dtype == dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol(dtype, w.shape[0] * w.shape[2]))
    np.testing.assert_allclose(gw, wt.grad.numpy(), **tol(dtype, y.shape[0] * y.shape[2]))
    if b is not None:
        np.testing.assert_allclose(gb, bt.grad.numpy(), **tol(dtype, y.shape[0] * y.shape[2]))
    for a, a0 in zip((x, w) + ((b,) if b is not None else ()), before):
        np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize("algorithm", ["gemm", "direct"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv1d_algorithms_agree_with_reference(case, algorithm, dtype, rng, tol):
    x, w, b, geo = _conv_inputs(case, dtype, rng)
    K = w.shape[1] * w.shape[2]
    y = fastconv.conv1d(x, w, b, **geo, algorithm=algorithm)
    y_ref = fastconv.reference.conv1d(x, w, b, **geo)
    np.testing.assert_allclose(y, y_ref, **tol(dtype, K))
    g = rng.standard_normal(y.shape).astype(dtype)
    got = fastconv.conv1d_backward(g, x, w, **geo, algorithm=algorithm)
    ref = fastconv.reference.conv1d_backward(g, x, w, **geo)
    n = max(K, y.shape[0] * y.shape[2], w.shape[0] * w.shape[2])
    for a, r, name in zip(got, ref, ("grad_x", "grad_weight", "grad_bias")):
        np.testing.assert_allclose(a, r, err_msg=name, **tol(dtype, n))


def test_conv1d_hand_computed(impl):
    # y[l] = x[l-1] - x[l+1] with zero padding, written out by hand.
    x = np.array([[[1.0, 4.0, 9.0, 16.0, 25.0]]])
    w = np.array([[[1.0, 0.0, -1.0]]])
    np.testing.assert_array_equal(impl.conv1d(x, w, padding=1),
                                  [[[-4.0, -8.0, -12.0, -16.0, 16.0]]])
    # stride 2, dilation 2: windows {0, 2, 4} only
    np.testing.assert_array_equal(impl.conv1d(x, w, dilation=2), [[[1 - 25.0]]])


def test_conv1d_non_contiguous_inputs(impl, dtype, rng, tol, torch):
    xb = rng.standard_normal((2, 3, 20)).astype(dtype)
    x = xb[:, :, ::2]                                   # strided view
    w = rng.standard_normal((3, 4, 3)).astype(dtype).transpose(1, 0, 2)  # not C-order
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    y = impl.conv1d(x, w, padding=1)
    yt = torch.nn.functional.conv1d(as_torch(torch, x), as_torch(torch, w), padding=1)
    np.testing.assert_allclose(y, yt.numpy(), **tol(dtype, 9))
    N, F, Lo = y.shape
    g = rng.standard_normal((N, F, 2 * Lo)).astype(dtype)[:, :, ::2]
    gx, gw, gb = impl.conv1d_backward(g, x, w, padding=1)
    gx_c, gw_c, gb_c = impl.conv1d_backward(np.ascontiguousarray(g),
                                            np.ascontiguousarray(x), w, padding=1)
    np.testing.assert_array_equal(gx, gx_c)
    np.testing.assert_array_equal(gw, gw_c)
    np.testing.assert_array_equal(gb, gb_c)


def test_one_tuples_equal_ints(impl, rng):
    x = rng.standard_normal((2, 2, 12))
    w = rng.standard_normal((3, 2, 3))
    np.testing.assert_array_equal(
        impl.conv1d(x, w, stride=(2,), padding=[1], dilation=(2,)),
        impl.conv1d(x, w, stride=2, padding=1, dilation=2))
    np.testing.assert_array_equal(
        impl.max_pool1d(x, (3,), (2,), (1,), (1,)), impl.max_pool1d(x, 3, 2, 1, 1))
    np.testing.assert_array_equal(
        impl.avg_pool1d(x, (3,), (2,), (1,)), impl.avg_pool1d(x, 3, 2, 1))


# ---------------------------------------------------------------------------
# max_pool1d / avg_pool1d
# ---------------------------------------------------------------------------

# (N, C, L, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    (2, 3, 8, 2, None, 0, 1, False),
    (2, 2, 9, 3, 2, 1, 1, False),
    (2, 2, 9, 3, 2, 1, 1, True),
    (1, 2, 10, 3, 1, 1, 2, False),
    (1, 3, 11, 2, 3, 1, 2, True),
    (2, 1, 5, 5, None, 0, 1, False),
    (1, 1, 1, 1, None, 0, 1, False),
    (1, 2, 8, 3, 2, 1, 3, True),
    (1, 2, 7, 4, 3, 2, 1, True),
]
POOL_IDS = [f"case{i}" for i in range(len(POOL_CASES))]
AVG_CASES = [c for c in POOL_CASES if c[6] == 1]          # avg_pool1d: no dilation
AVG_IDS = [i for i, c in zip(POOL_IDS, POOL_CASES) if c[6] == 1]


def _pool_data(kind, shape, dtype, rng):
    if kind == "normal":
        x = rng.standard_normal(shape)
    elif kind == "ties":
        x = rng.integers(-1, 2, size=shape).astype(np.float64)
    else:                                               # "nan"
        x = rng.integers(-1, 2, size=shape).astype(np.float64)
        x[rng.random(shape) < 0.3] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("kind", ["normal", "ties", "nan"])
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool1d_matches_torch(case, kind, impl, dtype, rng, torch):
    N, C, L_, k, s, p, d, ceil = case
    x = _pool_data(kind, (N, C, L_), dtype, rng)
    x0 = x.copy()
    y, idx = impl.max_pool1d(x, k, s, p, d, ceil, return_indices=True)
    yt, it = torch.nn.functional.max_pool1d(as_torch(torch, x), k, s, p, d, ceil_mode=ceil,
                                            return_indices=True)
    assert y.dtype == dtype and idx.dtype == np.int64 and y.shape == tuple(yt.shape)
    np.testing.assert_array_equal(y, yt.numpy())        # selection: exact
    np.testing.assert_array_equal(idx, it.numpy())      # indices into L: exact
    assert idx.min() >= 0 and idx.max() < L_
    np.testing.assert_array_equal(impl.max_pool1d(x, k, s, p, d, ceil), y)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool1d_backward_matches_autograd(case, impl, dtype, rng, tol, torch):
    N, C, L_, k, s, p, d, ceil = case
    x = _pool_data("ties", (N, C, L_), dtype, rng)
    y, idx = impl.max_pool1d(x, k, s, p, d, ceil, return_indices=True)
    g = rng.standard_normal(y.shape).astype(dtype)
    g0, idx0 = g.copy(), idx.copy()
    gx = impl.max_pool1d_backward(g, idx, x.shape)
    xt = as_torch(torch, x, True)
    torch.nn.functional.max_pool1d(xt, k, s, p, d, ceil_mode=ceil).backward(as_torch(torch, g))
    assert gx.shape == x.shape and gx.dtype == dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol(dtype, k))
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_array_equal(idx, idx0)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", AVG_CASES, ids=AVG_IDS)
def test_avg_pool1d_matches_torch(case, count_include_pad, impl, dtype, rng, tol, torch):
    N, C, L_, k, s, p, d, ceil = case
    x = rng.standard_normal((N, C, L_)).astype(dtype)
    x0 = x.copy()
    y = impl.avg_pool1d(x, k, s, p, ceil, count_include_pad)
    xt = as_torch(torch, x, True)
    yt = torch.nn.functional.avg_pool1d(xt, k, s, p, ceil, count_include_pad)
    assert y.shape == tuple(yt.shape) and y.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol(dtype, k))
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = impl.avg_pool1d_backward(g, x.shape, k, s, p, ceil, count_include_pad)
    yt.backward(as_torch(torch, g))
    assert gx.shape == x.shape and gx.dtype == dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol(dtype, k))
    np.testing.assert_array_equal(x, x0)


def test_pool1d_non_contiguous(impl, dtype, rng, tol, torch):
    x = rng.standard_normal((3, 4, 18)).astype(dtype).transpose(1, 0, 2)[:, :, 1::2]
    assert not x.flags.c_contiguous
    y, idx = impl.max_pool1d(x, 3, 2, 1, return_indices=True)
    yt, it = torch.nn.functional.max_pool1d(as_torch(torch, x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(idx, it.numpy())
    g = rng.standard_normal((4, 3, 2 * y.shape[2])).astype(dtype)[:, :, ::2]
    np.testing.assert_array_equal(impl.max_pool1d_backward(g, idx, x.shape),
                                  impl.max_pool1d_backward(g.copy(), idx, x.shape))
    np.testing.assert_allclose(impl.avg_pool1d(x, 3, 2, 1),
                               torch.nn.functional.avg_pool1d(as_torch(torch, x), 3, 2, 1).numpy(),
                               **tol(dtype, 3))
    np.testing.assert_array_equal(impl.avg_pool1d_backward(g, x.shape, 3, 2, 1),
                                  impl.avg_pool1d_backward(g.copy(), x.shape, 3, 2, 1))


def test_max_pool1d_hand_computed(impl):
    x = np.array([[[1.0, 3.0, 3.0, 0.0, 5.0, 4.0, 7.0]]])
    y, idx = impl.max_pool1d(x, 3, 2, 1, return_indices=True)
    # windows [-1..1], [1..3], [3..5], [5..7]: max 3 (first at 1), 3 (at 1), 5, 7
    np.testing.assert_array_equal(y, [[[3.0, 3.0, 5.0, 7.0]]])
    np.testing.assert_array_equal(idx, [[[1, 1, 4, 6]]])
    gx = impl.max_pool1d_backward(np.ones_like(y), idx, x.shape)
    np.testing.assert_array_equal(gx, [[[0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 1.0]]])


# ---------------------------------------------------------------------------
# errors speak 1-D
# ---------------------------------------------------------------------------

X = np.zeros((2, 3, 4))
W = np.zeros((5, 3, 3))

BAD = [
    ("conv1d 4-D x", lambda m: m.conv1d(np.zeros((2, 3, 4, 4)), W), ValueError,
     r"x must have 3 dimensions \(N, C, L\)"),
    ("conv1d 4-D weight", lambda m: m.conv1d(X, np.zeros((5, 3, 3, 3))), ValueError,
     r"weight must have 3 dimensions \(F, C/groups, k\)"),
    ("conv1d kernel too long", lambda m: m.conv1d(X, np.zeros((5, 3, 6))), ValueError,
     r"kernel_size 6 .*L=4 plus padding 0 .*x of shape \(2, 3, 4\)"),
    ("conv1d channels", lambda m: m.conv1d(X, np.zeros((5, 2, 3))), ValueError,
     r"x of shape \(2, 3, 4\) has C=3"),
    ("conv1d pair stride", lambda m: m.conv1d(X, W, stride=(1, 1)), TypeError,
     r"stride must be an int or a 1-tuple"),
    ("conv1d same stride", lambda m: m.conv1d(X, W, stride=2, padding="same"),
     ValueError, r"padding='same' needs stride 1"),
    ("conv1d bad padding", lambda m: m.conv1d(X, W, padding="full"), ValueError,
     r"padding must be an int, a 1-tuple, 'same' or 'valid'"),
    ("conv1d dtype", lambda m: m.conv1d(X, W.astype(np.float32)), TypeError,
     r"weight has dtype float32 but x has dtype float64"),
    ("conv1d grad_out", lambda m: m.conv1d_backward(np.zeros((2, 5, 3)), X, W),
     ValueError, r"grad_out must have the forward output's shape \(2, 5, 2\)"),
    ("conv1d grad_out rank", lambda m: m.conv1d_backward(np.zeros((2, 5, 2, 2)), X, W),
     ValueError, r"grad_out must have 3 dimensions \(N, C, L\)"),
    ("max kernel", lambda m: m.max_pool1d(X, 5), ValueError,
     r"kernel_size 5 .*L=4 .*x of shape \(2, 3, 4\)"),
    ("max padding", lambda m: m.max_pool1d(X, 2, padding=2), ValueError,
     r"padding 2 must be at most half of kernel_size 2"),
    ("max empty window", lambda m: m.max_pool1d(np.zeros((1, 1, 1)), 2, 1, 1, 2),
     ValueError, r"output position 0 along L"),
    ("max pair", lambda m: m.max_pool1d(X, (2, 2)), TypeError,
     r"kernel_size must be an int or a 1-tuple"),
    ("max rank", lambda m: m.max_pool1d(np.zeros((2, 3, 4, 4)), 2), ValueError,
     r"x must have 3 dimensions \(N, C, L\), got shape \(2, 3, 4, 4\)"),
    ("max backward shape", lambda m: m.max_pool1d_backward(
        np.zeros((2, 3, 2)), np.zeros((2, 3, 2), np.int64), (2, 3, 4, 4)),
     ValueError, r"input_shape must be 3 non-negative ints \(N, C, L\)"),
    ("max backward index", lambda m: m.max_pool1d_backward(
        np.zeros((2, 3, 2)), np.full((2, 3, 2), 4, np.int64), (2, 3, 4)),
     ValueError, r"indices must lie in \[0, L\) = \[0, 4\)"),
    ("max backward dtype", lambda m: m.max_pool1d_backward(
        np.zeros((2, 3, 2)), np.zeros((2, 3, 2), np.int32), (2, 3, 4)),
     TypeError, r"indices must be an int64"),
    ("avg kernel", lambda m: m.avg_pool1d(X, 8, padding=1), ValueError,
     r"kernel_size 8 .*L=4 plus padding 2"),
    ("avg backward grad", lambda m: m.avg_pool1d_backward(np.zeros((2, 3, 3)), (2, 3, 4), 2),
     ValueError, r"forward output's shape \(2, 3, 2\)"),
    ("avg negative stride", lambda m: m.avg_pool1d(X, 2, -1), ValueError,
     r"stride must be positive"),
]


@pytest.mark.parametrize("call, exc, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_errors_in_1d_terms(call, exc, pattern, impl):
    with pytest.raises(exc, match=pattern) as info:
        call(impl)
    msg = str(info.value)
    assert not re.search(r"\b[HW]\b|\(N, C, H, W\)|\bk[hw]\b", msg), msg
    # no internal (N, C, 1, L) view shape leaks into the message (no case
    # passes a 4-D array with a dimension of 1 in third place)
    assert not re.search(r"\(\d+, \d+, 1, \d+\)", msg), msg


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

LAYERS = {
    "conv": (lambda d: L.Conv1d(3, 4, 3, dtype=d, rng=0),
             lambda nn: nn.Conv1d(3, 4, 3), (2, 3, 9)),
    "conv_geometry": (lambda d: L.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2,
                                         bias=False, dtype=d, rng=0),
                      lambda nn: nn.Conv1d(4, 6, 3, 2, 2, 2, 2, bias=False), (2, 4, 11)),
    "conv_same": (lambda d: L.Conv1d(2, 3, 4, padding="same", dtype=d, rng=0,
                                     dilation=2),
                  lambda nn: nn.Conv1d(2, 3, 4, padding="same", dilation=2), (2, 2, 7)),
    "maxpool": (lambda d: L.MaxPool1d(2), lambda nn: nn.MaxPool1d(2), (2, 3, 8)),
    "maxpool_geometry": (lambda d: L.MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True),
                         lambda nn: nn.MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True),
                         (2, 2, 11)),
    "avgpool": (lambda d: L.AvgPool1d(2), lambda nn: nn.AvgPool1d(2), (2, 3, 8)),
    "avgpool_geometry": (lambda d: L.AvgPool1d(3, 2, 1, ceil_mode=True,
                                               count_include_pad=False),
                         lambda nn: nn.AvgPool1d(3, 2, 1, ceil_mode=True,
                                                 count_include_pad=False), (2, 2, 10)),
}


def _layer_tols(dtype):
    return dict(rtol=1e-10, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("backend", ["fastconv", "reference"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_match_torch(name, backend, dtype, rng, torch):
    make, make_t, shape = LAYERS[name]
    layer = make(dtype).set_backend(backend)
    tm = make_t(torch.nn).to(torch.float64 if dtype == np.float64 else torch.float32)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    assert repr(layer) == repr(tm)
    x = rng.standard_normal(shape).astype(dtype)
    x0 = x.copy()
    y = layer(x)
    xt = as_torch(torch, x, True)
    yt = tm(xt)
    assert y.shape == tuple(yt.shape) == layer.output_shape(shape)
    tols = _layer_tols(dtype)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tols)
    g = rng.standard_normal(y.shape).astype(dtype)
    layer.zero_grad()
    gx = layer.backward(g)
    yt.backward(as_torch(torch, g))
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tols)
    for k, p in tm.named_parameters():
        np.testing.assert_allclose(layer.grads[k], p.grad.numpy(), err_msg=k, **tols)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_gradcheck(name, rng):
    layer = LAYERS[name][0](np.float64)
    assert gradcheck(layer, rng.standard_normal(LAYERS[name][2]))


def test_conv1d_layer_gradcheck_in_a_model(rng):
    model = L.Sequential(L.Conv1d(2, 3, 3, padding=1, rng=0), L.ReLU(),
                         L.MaxPool1d(2), L.Conv1d(3, 2, 2, stride=2, rng=1),
                         L.AvgPool1d(2, 1, 1), L.Flatten(), L.Linear(6, 2, rng=2))
    assert model(np.zeros((4, 2, 8), np.float32)).shape == (4, 2)
    assert gradcheck(model, rng.standard_normal((4, 2, 8)))


def test_layer_shape_protocol():
    conv = L.Conv1d(3, 4, 5, stride=2, padding=2, dilation=3)
    assert conv.output_shape((2, 3, 20)) == (2, 4, 6)
    assert conv._rf_geometry() == ((5, 2, 2, 3),)
    assert L.Conv1d(2, 2, 4, padding="same", dilation=2)._rf_geometry() == ((4, 1, 3, 2),)
    assert L.Conv1d(2, 2, 4, padding="valid")._rf_geometry() == ((4, 1, 0, 1),)
    assert L.MaxPool1d(3, 2, 1, 2)._rf_geometry() == ((3, 2, 1, 2),)
    assert L.MaxPool1d((3,))._rf_geometry() == ((3, 3, 0, 1),)
    assert L.AvgPool1d(4, padding=1)._rf_geometry() == ((4, 4, 1, 1),)
    assert L.MaxPool1d(3, 2, 1, ceil_mode=True).output_shape((1, 2, 8)) == (1, 2, 5)
    assert L.AvgPool1d(3, 2, ceil_mode=True).output_shape((1, 2, 8)) == (1, 2, 4)
    # output_shape raises the ValueError forward raises, with the same message
    for layer, shape in ((L.Conv1d(3, 4, 5), (2, 3, 4)), (L.Conv1d(3, 4, 5), (2, 2, 9)),
                         (L.Conv1d(3, 4, 5), (2, 3, 1, 9)), (L.MaxPool1d(5), (2, 3, 4)),
                         (L.MaxPool1d(2), (2, 3, 1, 4)), (L.AvgPool1d(5), (2, 3, 4))):
        assert_output_shape_raises_like_forward(layer, shape)


def test_layer_constructor_errors():
    with pytest.raises(TypeError, match="kernel_size must be an int or a 1-tuple"):
        L.Conv1d(2, 2, (3, 3))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        L.Conv1d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="groups=2 must divide"):
        L.Conv1d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="stride must be positive"):
        L.MaxPool1d(2, 0)
    with pytest.raises(TypeError, match="padding must be an int or a 1-tuple"):
        L.AvgPool1d(2, padding=(1, 1))
    conv = L.Conv1d(3, 4, 3)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 3, L\)"):
        conv(np.zeros((2, 3, 4, 4), np.float32))
    # channels-last input: the layout hint Conv2d gives, in 1-D terms
    with pytest.raises(ValueError, match=r"looks like NLC.*transpose\(0, 2, 1\)"):
        conv(np.zeros((2, 9, 3), np.float32))
    # the 'same' padding error shows the 1-D stride as an int
    with pytest.raises(ValueError, match=r"needs stride 1, got stride 2$"):
        L.Conv1d(2, 2, 3, stride=2, padding="same")
    # output_shape wants ints (it used to return float lengths)
    for layer in (conv, L.MaxPool1d(2), L.AvgPool1d(2), L.LPPool1d(2, 2)):
        with pytest.raises(TypeError, match="input_shape must be a tuple"):
            layer.output_shape((2, 3, 9.0))


def test_conv1d_layer_state_dict_and_to(rng):
    a = L.Conv1d(2, 3, 3, rng=0)
    b = L.Conv1d(2, 3, 3, rng=1)
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((2, 2, 6)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))
    b.to(np.float64)
    assert b.params["weight"].dtype == np.float64
    np.testing.assert_allclose(b(x.astype(np.float64)), a(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="parameters are float64"):
        b(x)


def test_results_do_not_depend_on_thread_count(restore_threads, rng):
    x = rng.standard_normal((4, 8, 300))
    w = rng.standard_normal((16, 8, 5))
    g = rng.standard_normal((4, 16, 296))
    out = {}
    for n in (1, 2):
        fastconv.set_num_threads(n)
        out[n] = (fastconv.conv1d(x, w), *fastconv.conv1d_backward(g, x, w),
                  *fastconv.max_pool1d(x, 3, 2, 1, return_indices=True),
                  fastconv.avg_pool1d(x, 4), fastconv.lp_pool1d(x, 2, 3),
                  fastconv.lp_pool1d_backward(fastconv.lp_pool1d(x, 2, 3), x, 2, 3))
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


# issue 12: conv1d at stride 2**62 segfaulted (the GEMM's phase-slab size
# overflowed); in a subprocess, so a crash fails the test.
@pytest.mark.parametrize("stride", [2**31, 2**62 - 1, 2**62, 2**63])
def test_conv1d_huge_stride(isolated_ok, stride):
    out = isolated_ok(f"""
        import numpy as np, fastconv as fc
        x = np.arange(1, 1 + 2 * 3 * 9, dtype=np.float32).reshape(2, 3, 9)
        w = np.arange(1, 1 + 4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
        try:
            y = fc.conv1d(x, w, stride={stride})
        except ValueError as e:
            assert {stride} >= 2**62 and "stride" in str(e), e
            print("ValueError")
        else:
            want = np.einsum("ncl,fcl->nf", x[:, :, :2], w)[:, :, None]
            assert np.array_equal(y, want)
            gx, gw, gb = fc.conv1d_backward(np.ones_like(y), x, w, stride={stride})
            assert np.array_equal(gw, np.broadcast_to(x[:, :, :2].sum(0), w.shape))
            print("ok")
        """)
    assert out.strip() == ("ValueError" if stride >= 2**62 else "ok")


# issue 12: pooling time is bounded by the input and output, not the window.
def test_pool1d_huge_window_costs_the_input_not_the_window(isolated_ok):
    out = isolated_ok("""
        import numpy as np, fastconv as fc
        K = 2**50
        x = np.array([[[3.0, -1.0, 7.0, 7.0, 2.0]]])
        for ceil in (False, True):
            geo = dict(kernel_size=K, stride=2 * K, padding=K // 2, ceil_mode=ceil)
            y, idx = fc.max_pool1d(x, **geo, return_indices=True)
            assert y.tolist() == [[[7.0]]] and idx.tolist() == [[[2]]]
            assert fc.avg_pool1d(x, **geo).item() == 18 / K
            assert fc.avg_pool1d(x, **geo, count_include_pad=False).item() == 18 / 5
            g = fc.avg_pool1d_backward(np.ones((1, 1, 1)), x.shape, **geo)
            assert np.array_equal(g, np.full(x.shape, 1 / K))
            assert fc.lp_pool1d(x, 1, K, ceil_mode=True).item() == 18 / 5 * K
        print("ok")
        """, timeout=60)
    assert out.strip() == "ok"
