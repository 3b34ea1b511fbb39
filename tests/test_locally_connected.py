"""locally_connected2d (unshared convolution) and LocallyConnected2d: a hand
loop over positions, torch (conv2d with shared filters, unfold + einsum and its
autograd), finite differences, errors, threads, compiled vs reference."""

import copy
import math

import numpy as np
import pytest
from helpers import out_size, pair

import fastconv
import fastconv.reference
from fastconv import layers as L
from fastconv.gradcheck import gradcheck


def out_hw(H, W, k, s, p, d):
    return tuple(out_size(*a) for a in zip((H, W), *map(pair, (k, s, p, d))))


# (N, C, H, W, F, kernel, stride, padding, dilation)
CASES = [
    (2, 3, 7, 7, 4, 3, 1, 0, 1),
    (2, 2, 8, 9, 3, 3, 2, 1, 1),
    (1, 3, 9, 7, 5, (2, 3), (2, 1), (1, 2), 1),
    (3, 2, 10, 8, 2, 3, 1, 2, 2),          # dilation
    (2, 1, 5, 5, 3, 5, 1, 0, 1),           # kernel == input: one position
    (2, 4, 6, 6, 33, 1, 1, 0, 1),          # 1x1, F past one register tile
    (67, 2, 6, 5, 3, 3, 1, 1, 1),          # more images than one block (64)
    (2, 2, 9, 9, 3, 2, 3, 0, 1),           # stride > kernel: unread input
    (2, 3, 5, 6, 4, 3, 1, 3, 1),           # windows wholly in the padding
    (1, 2, 12, 11, 6, (3, 1), (1, 3), (0, 1), (3, 1)),
]
IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}F{c[4]}-k{c[5]}-s{c[6]}-p{c[7]}-d{c[8]}"
       .replace(" ", "") for c in CASES]


def make(case, dtype, rng, bias=True):
    N, C, H, W, F, k, s, p, d = case
    kh, kw = pair(k)
    Ho, Wo = out_hw(H, W, k, s, p, d)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((Ho, Wo, C, kh, kw, F)).astype(dtype)
    b = rng.standard_normal((F, Ho, Wo)).astype(dtype) if bias else None
    return x, w, b, dict(stride=s, padding=p, dilation=d)


def padded64(x, p):
    ph, pw = pair(p)
    return np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def window(xp, oh, ow, kshape, s, d):
    """Window of output position (oh, ow) in the padded input: (N, C, kh, kw)."""
    (kh, kw), (sh, sw), (dh, dw) = kshape, pair(s), pair(d)
    return (slice(None), slice(None),
            slice(oh * sh, oh * sh + dh * (kh - 1) + 1, dh),
            slice(ow * sw, ow * sw + dw * (kw - 1) + 1, dw))


def hand_forward(x, w, b, stride, padding, dilation):
    """The definition, one position at a time, in float64."""
    Ho, Wo, C, kh, kw, F = w.shape
    xp = padded64(x, padding)
    y = np.zeros((x.shape[0], F, Ho, Wo))
    for oh in range(Ho):
        for ow in range(Wo):
            patch = xp[window(xp, oh, ow, (kh, kw), stride, dilation)]
            y[:, :, oh, ow] = (patch.reshape(x.shape[0], -1)
                               @ w[oh, ow].reshape(-1, F).astype(np.float64))
            if b is not None:
                y[:, :, oh, ow] += b[:, oh, ow]
    return y


def hand_backward(g, x, w, stride, padding, dilation):
    """Gradients by the chain rule, one position at a time, in float64."""
    Ho, Wo, C, kh, kw, F = w.shape
    N, _, H, W = x.shape
    ph, pw = pair(padding)
    xp = padded64(x, padding)
    gxp = np.zeros_like(xp)
    gw = np.zeros(w.shape)
    g = g.astype(np.float64)
    for oh in range(Ho):
        for ow in range(Wo):
            win = window(xp, oh, ow, (kh, kw), stride, dilation)
            gl = g[:, :, oh, ow]                                     # (N, F)
            gw[oh, ow] = (xp[win].reshape(N, -1).T @ gl).reshape(C, kh, kw, F)
            wl = w[oh, ow].reshape(-1, F).astype(np.float64)
            gxp[win] += (gl @ wl.T).reshape(N, C, kh, kw)
    return gxp[:, :, ph:ph + H, pw:pw + W], gw, g.sum(axis=0)


def torch_unfold_einsum(torch, x, w, b, stride, padding, dilation):
    """(y, grads) of the unfold + einsum formulation under torch autograd."""
    Ho, Wo, C, kh, kw, F = w.shape
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    cols = torch.nn.functional.unfold(xt, (kh, kw), dilation=dilation,
                                      padding=padding, stride=stride)
    y = torch.einsum("nkl,lkf->nfl", cols, wt.reshape(Ho * Wo, -1, F))
    y = y.reshape(x.shape[0], F, Ho, Wo)
    if bt is not None:
        y = y + bt
    return xt, wt, bt, y


# ---------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_hand_loop(case, impl, dtype, rng, tol):
    x, w, b, geo = make(case, dtype, rng)
    y = impl.locally_connected2d(x, w, b, **geo)
    K = w[0, 0, ..., 0].size
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_allclose(y, hand_forward(x, w, b, **geo), **tol(dtype, K))
    y0 = impl.locally_connected2d(x, w, None, **geo)
    np.testing.assert_allclose(y0, hand_forward(x, w, None, **geo), **tol(dtype, K))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_torch_unfold_einsum(case, impl, dtype, rng, tol, torch):
    x, w, b, geo = make(case, dtype, rng)
    y = impl.locally_connected2d(x, w, b, **geo)
    *_, yt = torch_unfold_einsum(torch, x, w, b, **geo)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol(dtype, w[0, 0, ..., 0].size))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shared_filters_equal_torch_conv2d(case, impl, dtype, rng, tol, torch):
    x, _, _, geo = make(case, dtype, rng)
    N, C, H, W, F, k, *_ = case
    kh, kw = pair(k)
    Ho, Wo = out_hw(H, W, k, geo["stride"], geo["padding"], geo["dilation"])
    wc = rng.standard_normal((F, C, kh, kw)).astype(dtype)
    bc = rng.standard_normal(F).astype(dtype)
    w = np.ascontiguousarray(np.broadcast_to(wc.transpose(1, 2, 3, 0),
                                             (Ho, Wo, C, kh, kw, F)))
    b = np.ascontiguousarray(np.broadcast_to(bc[:, None, None], (F, Ho, Wo)))
    y = impl.locally_connected2d(x, w, b, **geo)
    yt = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(wc),
                                    torch.tensor(bc), **geo)
    np.testing.assert_allclose(y, yt.numpy(), **tol(dtype, C * kh * kw))


def test_keras_kernel_layout(impl, rng):
    """The docstring's conversion from Keras' (Ho*Wo, kh*kw*C, F) kernel."""
    N, C, H, W, F, kh, kw = 2, 3, 6, 5, 4, 3, 2
    Ho, Wo = H - kh + 1, W - kw + 1
    x = rng.standard_normal((N, C, H, W))
    k = rng.standard_normal((Ho * Wo, kh * kw * C, F))
    xl = x.transpose(0, 2, 3, 1)                        # channels last, as Keras
    expected = np.empty((N, F, Ho, Wo))
    for oh in range(Ho):
        for ow in range(Wo):
            patch = xl[:, oh:oh + kh, ow:ow + kw, :].reshape(N, -1)   # (i, j, c)
            expected[:, :, oh, ow] = patch @ k[oh * Wo + ow]
    w = k.reshape(Ho, Wo, kh, kw, C, F).transpose(0, 1, 4, 2, 3, 5)
    np.testing.assert_allclose(impl.locally_connected2d(x, w), expected,
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_matches_torch_autograd(case, impl, dtype, rng, tol, torch):
    x, w, b, geo = make(case, dtype, rng)
    N, C, H, W, F, k, *_ = case
    kh, kw = pair(k)
    g = rng.standard_normal((N, F) + w.shape[:2]).astype(dtype)
    gx, gw, gb = impl.locally_connected2d_backward(g, x, w, **geo)
    xt, wt, bt, yt = torch_unfold_einsum(torch, x, w, b, **geo)
    yt.backward(torch.tensor(g))
    for ours, name in ((gx, "grad_x"), (gw, "grad_weight"), (gb, "grad_bias")):
        assert ours.dtype == dtype and ours.flags.c_contiguous, name
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol(dtype, F * kh * kw))
    np.testing.assert_allclose(gw, wt.grad.numpy(), **tol(dtype, N))
    np.testing.assert_allclose(gb, bt.grad.numpy(), **tol(dtype, N))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_matches_hand_loop(case, impl, dtype, rng, tol):
    x, w, _, geo = make(case, dtype, rng, bias=False)
    N, C, H, W, F, k, *_ = case
    kh, kw = pair(k)
    g = rng.standard_normal((N, F) + w.shape[:2]).astype(dtype)
    gx, gw, gb = impl.locally_connected2d_backward(g, x, w, **geo)
    ex, ew, eb = hand_backward(g, x, w, **geo)
    np.testing.assert_allclose(gx, ex, **tol(dtype, F * kh * kw))
    np.testing.assert_allclose(gw, ew, **tol(dtype, N))
    np.testing.assert_allclose(gb, eb, **tol(dtype, N))


@pytest.mark.parametrize("backend", ["fastconv", "reference"])
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(0, 2)),
    dict(kernel_size=2, dilation=2, bias=False),
], ids=["k3p1", "k23s21p02", "k2d2-nobias"])
def test_layer_gradcheck(backend, kwargs, rng):
    layer = L.LocallyConnected2d(2, 3, (5, 6), dtype=np.float64, rng=rng,
                                 **kwargs).set_backend(backend)
    x = rng.standard_normal((2, 2, 5, 6))
    assert gradcheck(layer, x)


def test_gradcheck_catches_a_wrong_gradient(rng, monkeypatch):
    """The finite-difference check above can fail: break grad_weight."""
    layer = L.LocallyConnected2d(2, 3, (5, 5), 3, dtype=np.float64, rng=rng)
    real = fastconv.functional.locally_connected2d_backward

    def broken(*args, **kwargs):
        gx, gw, gb = real(*args, **kwargs)
        gw[0, 0, 0, 0, 0, 0] += 1e-3
        return gx, gw, gb

    monkeypatch.setattr(fastconv.functional, "locally_connected2d_backward", broken)
    with pytest.raises(AssertionError, match="'weight'"):
        gradcheck(layer, rng.standard_normal((2, 2, 5, 5)))


# ---------------------------------------------------------------------------
# compiled vs reference, threads, inputs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_matches_reference(case, dtype, rng, tol):
    x, w, b, geo = make(case, dtype, rng)
    N, C, H, W, F, k, *_ = case
    kh, kw = pair(k)
    y = fastconv.locally_connected2d(x, w, b, **geo)
    yr = fastconv.reference.locally_connected2d(x, w, b, **geo)
    np.testing.assert_allclose(y, yr, **tol(dtype, C * kh * kw))
    g = rng.standard_normal(y.shape).astype(dtype)
    ours = fastconv.locally_connected2d_backward(g, x, w, **geo)
    theirs = fastconv.reference.locally_connected2d_backward(g, x, w, **geo)
    for a, r, n in zip(ours, theirs, (F * kh * kw, N, N)):
        assert a.shape == r.shape and a.dtype == r.dtype
        np.testing.assert_allclose(a, r, **tol(dtype, n))


@pytest.mark.parametrize("case", [
    (16, 8, 20, 20, 16, 3, 1, 0, 1),       # no padding: x read in place
    (70, 3, 12, 12, 16, 3, 1, 1, 1),       # padded copy, two image blocks
    (8, 4, 21, 21, 24, 5, 2, 2, 1),        # stride 2, k5: bands of 2 rows
], ids=["nopad", "pad-N70", "k5s2p2"])
def test_bitwise_identical_across_thread_counts(case, dtype, rng, restore_threads):
    if not fastconv._ext.openmp_enabled():
        pytest.skip("built without OpenMP: one thread only")
    x, w, b, geo = make(case, dtype, rng)
    N, C, H, W, F, k, *_ = case
    K, L_ = C * pair(k)[0] * pair(k)[1], w.shape[0] * w.shape[1]
    assert N * F * L_ * K >= 1 << 21, "too small: the kernels would run on 1 thread"
    g = rng.standard_normal((N, F) + w.shape[:2]).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        results.append((fastconv.locally_connected2d(x, w, b, **geo),
                        *fastconv.locally_connected2d_backward(g, x, w, **geo)))
    for other in results[1:]:
        for a, o in zip(results[0], other):
            np.testing.assert_array_equal(a, o)


def test_inputs_not_modified_and_noncontiguous_accepted(impl, dtype, rng, tol):
    x, w, b, geo = make((2, 3, 8, 7, 4, 3, 2, 1, 1), dtype, rng)
    # Non-contiguous views holding the same values.
    xs = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 2, 3)), 2, 3)
    ws = np.ascontiguousarray(w.transpose(5, 4, 3, 2, 1, 0)).transpose(5, 4, 3, 2, 1, 0)
    bs = np.ascontiguousarray(b[:, ::-1])[:, ::-1]
    assert not (xs.flags.c_contiguous or ws.flags.c_contiguous or bs.flags.c_contiguous)
    g = rng.standard_normal((2, 4) + w.shape[:2]).astype(dtype)
    gs = g[..., ::-1].copy()[..., ::-1]
    copies = [a.copy() for a in (xs, ws, bs, gs)]
    y = impl.locally_connected2d(xs, ws, bs, **geo)
    grads = impl.locally_connected2d_backward(gs, xs, ws, **geo)
    for before, after in zip(copies, (xs, ws, bs, gs)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(y, impl.locally_connected2d(x, w, b, **geo))
    for a, e in zip(grads, impl.locally_connected2d_backward(g, x, w, **geo)):
        np.testing.assert_array_equal(a, e)
    np.testing.assert_allclose(y, hand_forward(x, w, b, **geo), **tol(dtype, 27))


def test_read_only_and_fortran_inputs(impl, dtype, rng):
    x, w, b, geo = make((2, 3, 7, 6, 4, 3, 1, 1, 1), dtype, rng)
    g = rng.standard_normal((2, 4) + w.shape[:2]).astype(dtype)
    want = [impl.locally_connected2d(x, w, b, **geo),
            *impl.locally_connected2d_backward(g, x, w, **geo)]
    for convert in (np.asfortranarray, lambda a: a.copy()):
        args = [convert(a) for a in (x, w, b, g)]
        for a in args:
            a.setflags(write=False)
        xr, wr, br, gr = args
        got = [impl.locally_connected2d(xr, wr, br, **geo),
               *impl.locally_connected2d_backward(gr, xr, wr, **geo)]
        for a, e in zip(got, want):
            assert a.flags.writeable and a.flags.c_contiguous
            np.testing.assert_array_equal(a, e)


def test_empty_batch(impl):
    x = np.zeros((0, 2, 5, 5), np.float32)
    w = np.zeros((3, 3, 2, 3, 3, 4), np.float32)
    assert impl.locally_connected2d(x, w).shape == (0, 4, 3, 3)
    gx, gw, gb = impl.locally_connected2d_backward(np.zeros((0, 4, 3, 3), np.float32), x, w)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (4, 3, 3)
    assert not gw.any() and not gb.any()


# ---------------------------------------------------------------------------
# errors (both paths raise the same messages)
# ---------------------------------------------------------------------------

X = np.zeros((2, 3, 8, 8), np.float32)
W = np.zeros((6, 6, 3, 3, 3, 4), np.float32)


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((X[0], W), {}, ValueError, r"x must have 4 dimensions .*\(3, 8, 8\)"),
    ((X, W[0]), {}, ValueError, r"weight must have 6 dimensions \(Ho, Wo, C, kh, kw, F\)"),
    ((X, np.zeros((6, 6, 2, 3, 3, 4), np.float32)), {}, ValueError,
     r"C=3 channels but weight of shape \(6, 6, 2, 3, 3, 4\)"),
    ((X, np.zeros((5, 6, 3, 3, 3, 4), np.float32)), {}, ValueError,
     r"weight of shape \(5, 6, 3, 3, 3, 4\).*5x6 output positions.*6x6 output"),
    ((X, W), dict(stride=2), ValueError, r"3x3 output"),
    ((X, W), dict(padding=1), ValueError, r"8x8 output"),
    ((X, np.zeros((1, 1, 3, 9, 9, 4), np.float32)), {}, ValueError,
     r"larger than the padded input"),
    ((X, W, np.zeros((4,), np.float32)), {}, ValueError, r"bias must have 3 dimensions"),
    ((X, W, np.zeros((4, 6, 5), np.float32)), {}, ValueError,
     r"bias must have shape \(F, Ho, Wo\) = \(4, 6, 6\).*got shape \(4, 6, 5\)"),
    ((X, W.astype(np.float64)), {}, TypeError, r"weight has dtype float64 but x"),
    ((X.astype(np.int32), W), {}, TypeError, r"x must have dtype float32 or float64"),
    ((X, W), dict(stride=0), ValueError, r"stride must be positive"),
    ((X, W), dict(padding=-1), ValueError, r"padding must be non-negative"),
    ((X, W), dict(dilation=1.5), TypeError, r"dilation must be an int"),
    ((X.tolist(), W), {}, TypeError, r"x must be a numpy.ndarray"),
    ((X, np.zeros((6, 6, 3, 3, 3, 0), np.float32)), {}, ValueError, r"at least one"),
])
def test_forward_errors(impl, args, kwargs, exc, match):
    with pytest.raises(exc, match=r"^locally_connected2d: .*" + match):
        impl.locally_connected2d(*args, **kwargs)


def test_backward_errors(impl):
    g = np.zeros((2, 4, 6, 6), np.float32)
    op = "locally_connected2d_backward: "
    with pytest.raises(ValueError, match=op + r"grad_out must have the forward "
                       r"output's shape \(2, 4, 6, 6\), got shape \(2, 4, 5, 6\)"):
        impl.locally_connected2d_backward(g[:, :, :5], X, W)
    with pytest.raises(TypeError, match=op + "grad_out has dtype float64"):
        impl.locally_connected2d_backward(g.astype(np.float64), X, W)
    with pytest.raises(ValueError, match=op + r".*3x3 output"):
        impl.locally_connected2d_backward(g, X, W, stride=2)


# ---------------------------------------------------------------------------
# the layer
# ---------------------------------------------------------------------------

def test_layer_forward_backward_and_grads(dtype, rng, tol):
    layer = L.LocallyConnected2d(3, 4, (7, 6), 3, stride=(2, 1), padding=1,
                                 dtype=dtype, rng=rng)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    y = layer(x)
    geo = dict(stride=(2, 1), padding=1, dilation=1)
    w, b = layer.params["weight"], layer.params["bias"]
    assert w.shape == (4, 6, 3, 3, 3, 4) and b.shape == (4, 4, 6)
    np.testing.assert_allclose(y, hand_forward(x, w, b, **geo), **tol(dtype, 27))
    g = rng.standard_normal(y.shape).astype(dtype)
    layer.zero_grad()
    gx = layer.backward(g)
    gx = layer.backward(g)                  # gradients accumulate, as torch
    ex, ew, eb = hand_backward(g, x, w, **geo)
    np.testing.assert_allclose(gx, ex, **tol(dtype, 36))
    np.testing.assert_allclose(layer.grads["weight"], 2 * ew, **tol(dtype, 4))
    np.testing.assert_allclose(layer.grads["bias"], 2 * eb, **tol(dtype, 4))


def test_layer_reference_backend_matches_compiled(dtype, rng, tol):
    layer = L.LocallyConnected2d(2, 5, 9, (3, 2), stride=2, padding=(1, 0),
                                 dilation=(1, 2), dtype=dtype, rng=rng)
    twin = copy.deepcopy(layer).set_backend("reference")
    x = rng.standard_normal((3, 2, 9, 9)).astype(dtype)
    np.testing.assert_allclose(layer(x), twin(x), **tol(dtype, 12))
    g = rng.standard_normal(layer.output_shape(x.shape)).astype(dtype)
    np.testing.assert_allclose(layer.backward(g), twin.backward(g), **tol(dtype, 30))
    for name in ("weight", "bias"):
        np.testing.assert_allclose(layer.grads[name], twin.grads[name], **tol(dtype, 3))


def test_layer_init_bounds_and_seeding():
    layer = L.LocallyConnected2d(4, 6, (10, 10), 3, rng=0)
    bound = 1 / math.sqrt(4 * 3 * 3)
    for p in layer.params.values():
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.9 * bound          # spans the interval
        assert abs(float(p.mean())) < 0.05 * bound * 10
    again = L.LocallyConnected2d(4, 6, (10, 10), 3, rng=0)
    for k in layer.params:
        np.testing.assert_array_equal(layer.params[k], again.params[k])
    assert "bias" not in L.LocallyConnected2d(1, 1, 3, 3, bias=False).params


def test_layer_shape_protocol():
    layer = L.LocallyConnected2d(3, 8, (32, 30), 5, stride=(2, 1), padding=(1, 2),
                                 dilation=(1, 2))
    Ho, Wo = out_hw(32, 30, 5, (2, 1), (1, 2), (1, 2))
    assert layer.output_shape((7, 3, 32, 30)) == (7, 8, Ho, Wo)
    assert layer(np.zeros((1, 3, 32, 30), np.float32)).shape == (1, 8, Ho, Wo)
    assert layer._rf_geometry() == ((5, 2, 1, 1), (5, 1, 2, 2))
    for bad in [(7, 3, 32.0, 30), (7, 3, -1, 30), "7, 3, 32, 30"]:
        with pytest.raises(TypeError, match=r"output_shape: input_shape must be a tuple"):
            layer.output_shape(bad)
    for bad in [(7, 3, 32, 31), (7, 4, 32, 30), (3, 32, 30)]:
        with pytest.raises(ValueError, match=r"expects input of shape \(N, 3, 32, 30\)"):
            layer.output_shape(bad)
        if len(bad) == 4:
            with pytest.raises(ValueError, match=r"expects input of shape \(N, 3, 32, 30\)"):
                layer(np.zeros(bad, np.float32))


def test_layer_repr_state_dict_and_to(rng, tmp_path):
    layer = L.LocallyConnected2d(3, 8, 32, 5, rng=rng)
    assert repr(layer) == ("LocallyConnected2d(3, 8, input_size=(32, 32), "
                           "kernel_size=(5, 5), stride=(1, 1))")
    other = L.LocallyConnected2d(3, 8, (12, 10), 3, 2, 1, bias=False, dilation=2)
    assert repr(other) == ("LocallyConnected2d(3, 8, input_size=(12, 10), "
                           "kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                           "dilation=(2, 2), bias=False)")
    net = L.Sequential(layer, L.ReLU(), L.Flatten())
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias"]
    fresh = L.Sequential(L.LocallyConnected2d(3, 8, 32, 5, rng=1), L.ReLU(), L.Flatten())
    net.save(tmp_path / "lc")
    fresh.load(tmp_path / "lc")
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(fresh(x), net(x))
    with pytest.raises(ValueError, match=r"'0.bias' has shape \(8,\) .* but shape \(8, 28, 28\)"):
        fresh.load_state_dict({**state, "0.bias": np.zeros((8,), np.float32)})
    layer.to(np.float64)
    assert layer.params["weight"].dtype == np.float64
    assert layer(x.astype(np.float64)).dtype == np.float64
    with pytest.raises(TypeError, match="input has dtype float32"):
        layer(x)


def test_layer_constructor_errors():
    with pytest.raises(ValueError, match="in_channels must be a positive int"):
        L.LocallyConnected2d(0, 2, 5, 3)
    with pytest.raises(ValueError, match="input_size must be positive"):
        L.LocallyConnected2d(1, 2, (0, 5), 3)
    with pytest.raises(ValueError, match=r"LocallyConnected2d: input_size with "
                       r"kernel_size \(7, 7\).*larger than the padded input"):
        L.LocallyConnected2d(1, 2, 5, 7)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        L.LocallyConnected2d(1, 2, 5, 3, dtype=np.int32)


# ---------------------------------------------------------------------------
# channels-last (NHWC) input gets the transpose hint, as conv2d gives
# ---------------------------------------------------------------------------

def test_functional_nhwc_input_gets_a_transpose_hint(impl):
    x_nhwc = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match=r"NHWC.*x\.transpose\(0, 3, 1, 2\)"):
        impl.locally_connected2d(x_nhwc, W)
    assert impl.locally_connected2d(x_nhwc.transpose(0, 3, 1, 2), W).shape == (1, 4, 6, 6)


def test_layer_nhwc_input_gets_a_transpose_hint():
    layer = L.LocallyConnected2d(3, 4, (8, 8), 3)
    x_nhwc = np.zeros((1, 8, 8, 3), np.float32)
    for call in (layer, layer.output_shape):
        arg = x_nhwc if call is layer else x_nhwc.shape
        with pytest.raises(ValueError, match=r"NHWC.*x\.transpose\(0, 3, 1, 2\)"):
            call(arg)
    assert layer(x_nhwc.transpose(0, 3, 1, 2)).shape == (1, 4, 6, 6)
    with pytest.raises(ValueError) as info:           # a plain mismatch: no hint
        layer(np.zeros((1, 5, 8, 8), np.float32))
    assert "NHWC" not in str(info.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_init_draws_in_its_dtype_without_a_float64_copy(dtype):
    import tracemalloc
    tracemalloc.start()
    try:
        layer = L.LocallyConnected2d(8, 8, (34, 34), 3, bias=False, dtype=dtype, rng=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    w = layer.params["weight"]
    assert w.dtype == dtype and w.shape == (32, 32, 8, 3, 3, 8)
    # The weight and its zero gradient are needed; a float64 draw cast to
    # float32 would add 2 more weights' worth (3x at the draw).
    assert peak < 2.5 * w.nbytes, (peak, w.nbytes)
    bound = 1 / math.sqrt(8 * 3 * 3)
    assert -bound <= w.min() < -0.99 * bound and 0.99 * bound < w.max() <= bound
    assert abs(float(w.mean())) < 0.01 * bound          # 589,824 draws, centred
    assert abs(float(w.var()) - bound ** 2 / 3) < 0.01 * bound ** 2   # U(-b, b)


# issue 12: the kernels copy x zero-padded to (C, Hp, Wp, N); a huge padding
# with a stride that skips it made that copy grow with the padding (16 GiB
# at padding 2**15, which ended a fuzz run by the OOM killer).  Such calls
# run on im2col columns: memory follows the input and output.  A 1 GiB
# address-space limit in the subprocess turns a padded copy into a failure.
def test_huge_padding_costs_the_input_not_the_padding(isolated_ok):
    out = isolated_ok("""
        import os, resource
        if "asan" not in os.environ.get("LD_PRELOAD", ""):   # ASan maps its own
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        import numpy as np, fastconv as fc
        P = 2**30                     # rows: taps at oh*P - P + i*P, i = 0, 1
        rng = np.random.default_rng(0)
        x = rng.integers(-3, 4, (2, 3, 1, 6)).astype(np.float64)
        geo = dict(stride=(P, 1), padding=(P, 0), dilation=(P, 1))
        w = rng.integers(-3, 4, (2, 4, 3, 2, 3, 5)).astype(np.float64)
        b = rng.integers(-3, 4, (5, 2, 4)).astype(np.float64)
        y = fc.locally_connected2d(x, w, b, **geo)
        # only tap row i = 1 - oh reads row 0 of x (the rest is padding)
        win = np.stack([x[:, :, 0, ow:ow + 3] for ow in range(4)], axis=2)   # n c ow j
        want = np.stack([np.einsum("ncwj,wcjf->nfw", win, w[oh, :, :, 1 - oh])
                         for oh in range(2)], axis=2) + b
        assert np.array_equal(y, want)
        gy = rng.integers(-3, 4, y.shape).astype(np.float64)
        gx, gw, gb = fc.locally_connected2d_backward(gy, x, w, **geo)
        assert np.array_equal(gb, gy.sum(0))
        want_gw = np.zeros_like(w)
        for oh in range(2):
            want_gw[oh, :, :, 1 - oh] = np.einsum("ncwj,nfw->wcjf", win, gy[:, :, oh])
        assert np.array_equal(gw, want_gw)
        want_gx = np.zeros_like(x)
        for oh in range(2):
            for ow in range(4):
                want_gx[:, :, 0, ow:ow + 3] += np.einsum("nf,cjf->ncj", gy[:, :, oh, ow],
                                                         w[oh, ow, :, 1 - oh])
        assert np.allclose(gx, want_gx, rtol=0, atol=1e-9)
        print("ok")
        """, timeout=120)
    assert out.strip() == "ok"
