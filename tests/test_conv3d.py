"""conv3d / conv3d_backward and the Conv3d layer: torch parity, twin, threads, errors."""

import numpy as np
import pytest
from helpers import assert_output_shape_raises_like_forward, central_difference, out_size, triple

import fastconv
import fastconv.reference
from fastconv import layers as L

# (N, C, D, H, W, F, kernel, stride, padding, dilation, groups)
CASES = [
    (2, 3, 5, 6, 7, 4, 3, 1, 0, 1, 1),
    (2, 4, 6, 7, 5, 6, 3, 2, 1, 1, 2),                        # stride, padding, groups
    (1, 2, 7, 6, 8, 3, (3, 2, 1), (1, 2, 3), (1, 0, 0), (2, 1, 1), 1),
    (2, 4, 5, 5, 5, 4, 2, 1, "same", 2, 4),                   # depthwise, even kernel, "same"
    (1, 3, 4, 5, 6, 2, (1, 2, 3), 1, "valid", 1, 1),
    (2, 1, 3, 3, 3, 2, 3, 1, 0, 1, 1),                        # kernel == input
    (1, 2, 1, 1, 1, 3, 1, 1, 0, 1, 1),                        # 1x1x1
    (3, 6, 4, 9, 6, 6, (2, 3, 3), (2, 2, 1), (1, 1, 2), (1, 2, 1), 3),
]
IDS = ["-".join(str(v).replace(" ", "") for v in c) for c in CASES]


def _torch_conv(torch, x, w, b, stride, padding, dilation, groups, grad_out=None):
    import warnings

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    bt = torch.from_numpy(b.copy()).requires_grad_(True)
    with warnings.catch_warnings():        # torch warns about even "same" kernels
        warnings.simplefilter("ignore")
        y = torch.nn.functional.conv3d(xt, wt, bt, stride=stride, padding=padding,
                                       dilation=dilation, groups=groups)
    y.backward(torch.from_numpy(grad_out.copy()))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv3d_forward_backward_match_torch(case, impl, dtype, rng, torch, tol):
    N, C, D, H, W, F, k, s, p, d, G = case
    kd, kh, kw = triple(k)
    x = rng.standard_normal((N, C, D, H, W)).astype(dtype)
    w = rng.standard_normal((F, C // G, kd, kh, kw)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    geo = dict(stride=s, padding=p, dilation=d, groups=G)
    msg = f"conv3d [{impl.__name__}] x={x.shape} w={w.shape} {geo} dtype={np.dtype(dtype).name}"
    y = impl.conv3d(x, w, b, **geo)
    g = rng.standard_normal(y.shape).astype(dtype)
    y_t, gx_t, gw_t, gb_t = _torch_conv(torch, x, w, b, s, p, d, G, g)
    if not isinstance(p, str):
        want = (N, F) + tuple(out_size(*a) for a in zip((D, H, W), (kd, kh, kw), triple(s), triple(p), triple(d)))
        assert y.shape == want, msg
    assert y.shape == y_t.shape and y.dtype == np.dtype(dtype), msg
    K = (C // G) * kd * kh * kw
    np.testing.assert_allclose(y, y_t, err_msg=msg, **tol(dtype, K))
    # without bias
    y0 = impl.conv3d(x, w, None, **geo)
    np.testing.assert_allclose(y0 + b[:, None, None, None], y_t, err_msg="no bias " + msg, **tol(dtype, K))
    gx, gw, gb = impl.conv3d_backward(g, x, w, **geo)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (F,), msg
    assert gx.dtype == gw.dtype == gb.dtype == np.dtype(dtype), msg
    L_out = int(np.prod(y.shape[2:]))
    np.testing.assert_allclose(gx, gx_t, err_msg="grad_x " + msg, **tol(dtype, (F // G) * kd * kh * kw))
    np.testing.assert_allclose(gw, gw_t, err_msg="grad_weight " + msg, **tol(dtype, N * L_out))
    np.testing.assert_allclose(gb, gb_t, err_msg="grad_bias " + msg, **tol(dtype, N * L_out))


def test_conv3d_explicit_loop(impl, dtype, rng, tol):
    # independent of torch: the definition, one output at a time
    x = rng.standard_normal((1, 2, 4, 5, 4)).astype(dtype)
    w = rng.standard_normal((2, 2, 2, 3, 2)).astype(dtype)
    y = impl.conv3d(x, w, stride=(1, 2, 1), padding=(0, 1, 1))
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (0, 0), (1, 1), (1, 1)])
    want = np.zeros(y.shape)
    for f in range(2):
        for od in range(y.shape[2]):
            for oh in range(y.shape[3]):
                for ow in range(y.shape[4]):
                    win = xp[0, :, od:od + 2, 2 * oh:2 * oh + 3, ow:ow + 2]
                    want[0, f, od, oh, ow] = np.sum(win * w[f])
    np.testing.assert_allclose(y, want, **tol(dtype, 24))


def test_conv3d_backward_finite_differences(impl, rng):
    x = rng.standard_normal((1, 2, 3, 4, 3))
    w = rng.standard_normal((2, 1, 2, 2, 2))
    geo = dict(stride=(1, 2, 1), padding=1, dilation=(1, 1, 2), groups=2)
    g = rng.standard_normal(impl.conv3d(x, w, **geo).shape)
    gx, gw, _ = impl.conv3d_backward(g, x, w, **geo)
    for arr, grad in ((x, gx), (w, gw)):
        for flat in rng.choice(arr.size, 6, replace=False):
            idx = np.unravel_index(flat, arr.shape)
            numeric = central_difference(lambda: np.vdot(impl.conv3d(x, w, **geo), g), arr, idx, 1e-6)
            assert abs(numeric - grad[idx]) < 1e-6, idx


@pytest.mark.parametrize("shape,F,k,geo", [
    ((2, 3, 4, 5, 6), 4, 3, dict(padding=1)),
    ((1, 4, 5, 4, 7), 6, (2, 3, 1), dict(stride=(2, 1, 3), padding=(1, 0, 0), dilation=(1, 1, 1), groups=2)),
])
def test_conv3d_compiled_vs_reference(shape, F, k, geo, dtype, rng, tol):
    x = rng.standard_normal(shape).astype(dtype)
    G = geo.get("groups", 1)
    w = rng.standard_normal((F, shape[1] // G) + triple(k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    y_f = fastconv.conv3d(x, w, b, **geo)
    y_r = fastconv.reference.conv3d(x, w, b, **geo)
    K = w[0].size
    np.testing.assert_allclose(y_f, y_r, **tol(dtype, K))
    g = rng.standard_normal(y_f.shape).astype(dtype)
    for a, r in zip(fastconv.conv3d_backward(g, x, w, **geo), fastconv.reference.conv3d_backward(g, x, w, **geo)):
        assert a.shape == r.shape and a.dtype == r.dtype
        np.testing.assert_allclose(a, r, **tol(dtype, y_f[0].size))


@pytest.mark.parametrize("geo", [
    dict(stride=(3, 1, 1), padding=(2, 0, 1), dilation=(2, 1, 1)),   # taps reading only padding
    dict(stride=(2, 1, 2), padding=(1, 1, 0), dilation=(1, 2, 1)),
    dict(stride=1, padding=(2, 1, 1), dilation=(3, 1, 1)),            # Do = 1 < D
], ids=["pad-only-taps", "strided", "one-output-plane"])
def test_conv3d_depth_taps_at_the_borders(geo, dtype, rng, tol):
    # conv3d runs one 2-D convolution per depth tap over a depth-padded copy;
    # planes that exist only in the padding must contribute nothing.
    x = rng.standard_normal((2, 3, 4, 5, 7)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y = fastconv.conv3d(x, w, b, **geo)
    np.testing.assert_allclose(y, fastconv.reference.conv3d(x, w, b, **geo), **tol(dtype, 54))
    g = rng.standard_normal(y.shape).astype(dtype)
    for a, r in zip(fastconv.conv3d_backward(g, x, w, **geo),
                    fastconv.reference.conv3d_backward(g, x, w, **geo)):
        assert a.shape == r.shape
        np.testing.assert_allclose(a, r, **tol(dtype, 200))


def test_conv3d_bitwise_same_at_any_thread_count(rng, restore_threads):
    x = rng.standard_normal((3, 8, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    geo = dict(padding=1, groups=2)
    out = {}
    for n in (1, 2):
        fastconv.set_num_threads(n)
        y = fastconv.conv3d(x, w, b, **geo)
        out[n] = (y,) + fastconv.conv3d_backward(np.ones_like(y) + y, x, w, **geo)
    for a, b_ in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b_)


def test_conv3d_inputs_unchanged_and_non_contiguous(impl, dtype, rng, tol):
    base = rng.standard_normal((2, 3, 5, 6, 4)).astype(dtype)
    x = base.transpose(0, 1, 4, 3, 2)              # non-contiguous (2, 3, 4, 6, 5)
    w = rng.standard_normal((4, 3, 2, 2, 2)).astype(dtype)[..., ::-1]
    b = rng.standard_normal(8).astype(dtype)[::2]
    copies = [a.copy() for a in (x, w, b)]
    y = impl.conv3d(x, w, b, padding=1)
    g = rng.standard_normal(y.shape).astype(dtype)[..., ::-1]
    g_copy = g.copy()
    grads = impl.conv3d_backward(g, x, w, padding=1)
    for a, c in zip((x, w, b, g), copies + [g_copy]):
        np.testing.assert_array_equal(a, c)
    y_c = impl.conv3d(np.ascontiguousarray(x), np.ascontiguousarray(w), np.ascontiguousarray(b), padding=1)
    np.testing.assert_array_equal(y, y_c)
    for a, r in zip(grads, impl.conv3d_backward(np.ascontiguousarray(g), np.ascontiguousarray(x),
                                                np.ascontiguousarray(w), padding=1)):
        np.testing.assert_array_equal(a, r)


def test_conv3d_empty_batch(impl):
    x = np.zeros((0, 2, 4, 4, 4), np.float32)
    w = np.ones((3, 2, 3, 3, 3), np.float32)
    assert impl.conv3d(x, w).shape == (0, 3, 2, 2, 2)
    gx, gw, gb = impl.conv3d_backward(np.zeros((0, 3, 2, 2, 2), np.float32), x, w)
    assert gx.shape == x.shape and not gw.any() and not gb.any()


BAD = [
    (dict(x=np.ones((1, 2, 4, 4), np.float32)), ValueError, r"x must have 5 dimensions \(N, C, D, H, W\).*\(1, 2, 4, 4\)"),
    (dict(w=np.ones((3, 2, 3, 3), np.float32)), ValueError, r"weight must have 5 dimensions"),
    (dict(x=np.ones((1, 2, 4, 4, 4), np.int32)), TypeError, r"x must have dtype float32 or float64"),
    (dict(w=np.ones((3, 2, 3, 3, 3), np.float64)), TypeError, r"weight has dtype float64 but x"),
    (dict(w=np.ones((3, 3, 3, 3, 3), np.float32)), ValueError, r"x of shape \(1, 2, 4, 4, 4\) has C=2 .*weight of shape \(3, 3, 3, 3, 3\)"),
    (dict(groups=2), ValueError, r"groups=2 must divide"),
    (dict(stride=0), ValueError, r"stride must be positive"),
    (dict(stride=(1, 1)), TypeError, r"stride must be an int or a triple of ints \(d, h, w\)"),
    (dict(padding=-1), ValueError, r"padding must be non-negative"),
    (dict(padding="full"), ValueError, r"padding must be an int, a triple, 'same' or 'valid'"),
    (dict(padding="same", stride=2), ValueError, r"padding='same' needs stride 1"),
    (dict(w=np.ones((3, 2, 5, 3, 3), np.float32)), ValueError, r"\(dilated extent 5 along D\).*D=4"),
    (dict(dilation=(1, 1, 2)), ValueError, r"dilated extent 5 along W"),
    (dict(b=np.ones(4, np.float32)), ValueError, r"bias must have shape \(3,\)"),
]


@pytest.mark.parametrize("bad,exc,match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_conv3d_bad_inputs(bad, exc, match, impl):
    args = dict(x=np.ones((1, 2, 4, 4, 4), np.float32), w=np.ones((3, 2, 3, 3, 3), np.float32),
                b=None, stride=1, padding=0, dilation=1, groups=1)
    args.update(bad)
    with pytest.raises(exc, match=match):
        impl.conv3d(args.pop("x"), args.pop("w"), args.pop("b"), **args)


def test_conv3d_backward_bad_grad_out(impl):
    x = np.ones((1, 2, 4, 4, 4), np.float32)
    w = np.ones((3, 2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"grad_out must have the forward output's shape \(1, 3, 2, 2, 2\)"):
        impl.conv3d_backward(np.ones((1, 3, 2, 2, 3), np.float32), x, w)
    with pytest.raises(TypeError, match=r"grad_out has dtype float64 but x"):
        impl.conv3d_backward(np.ones((1, 3, 2, 2, 2)), x, w)


# --------------------------------------------------------------------------
# Conv3d layer
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["fastconv", "reference"])
def test_conv3d_layer_matches_torch_module(backend, rng, torch, tol):
    layer = L.Conv3d(4, 6, (3, 2, 3), stride=(1, 2, 1), padding=1, groups=2, dtype=np.float64, rng=0)
    layer.set_backend(backend)
    mod = torch.nn.Conv3d(4, 6, (3, 2, 3), stride=(1, 2, 1), padding=1, groups=2).double()
    mod.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    assert sorted(layer.params) == ["bias", "weight"] and layer.params["weight"].shape == (6, 2, 3, 2, 3)
    x = rng.standard_normal((2, 4, 5, 6, 5))
    y = layer(x)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t = mod(xt)
    np.testing.assert_allclose(y, y_t.detach().numpy(), **tol(np.float64, 36))
    assert layer.output_shape(x.shape) == y.shape
    g = rng.standard_normal(y.shape)
    layer.zero_grad()
    gx = layer.backward(g)
    y_t.backward(torch.from_numpy(g))
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol(np.float64, 50))
    np.testing.assert_allclose(layer.grads["weight"], mod.weight.grad.numpy(), **tol(np.float64, 500))
    np.testing.assert_allclose(layer.grads["bias"], mod.bias.grad.numpy(), **tol(np.float64, 500))


def test_conv3d_layer_init_repr_state_dict(torch):
    layer = L.Conv3d(2, 4, 3, padding=1, rng=0)
    assert repr(layer) == repr(torch.nn.Conv3d(2, 4, 3, padding=1))
    assert repr(L.Conv3d(2, 4, (1, 2, 3), stride=2, dilation=(1, 1, 2), groups=2, bias=False)) == repr(
        torch.nn.Conv3d(2, 4, (1, 2, 3), stride=2, dilation=(1, 1, 2), groups=2, bias=False))
    assert repr(L.Conv3d(2, 4, 3, padding="same")) == repr(torch.nn.Conv3d(2, 4, 3, padding="same"))
    bound = 1 / np.sqrt(2 * 27)                     # torch: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w = layer.params["weight"]
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(layer.params["bias"]).max() <= bound
    other = L.Conv3d(2, 4, 3, padding=1, rng=1)
    other.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(other.params["weight"], w)
    layer.to(np.float64)
    assert layer.params["weight"].dtype == np.float64
    assert layer(np.ones((1, 2, 3, 3, 3))).dtype == np.float64


def test_conv3d_layer_shape_protocol():
    layer = L.Conv3d(3, 5, (3, 1, 5), stride=(2, 1, 1), padding=(1, 0, 2), dilation=(1, 1, 2))
    shape = (2, 3, 7, 4, 9)
    assert layer.output_shape(shape) == layer(np.zeros(shape, np.float32)).shape
    assert layer._rf_geometry() == ((3, 2, 1, 1), (1, 1, 0, 1), (5, 1, 2, 2))
    assert L.Conv3d(1, 1, 4, padding="same")._rf_geometry() == ((4, 1, 1, 1),) * 3
    with pytest.raises(ValueError, match=r"\(N, 3, D, H, W\)"):
        layer.output_shape((2, 4, 7, 4, 9))
    # a wrong rank: output_shape raises forward's error, word for word
    with pytest.raises(ValueError, match=r"\(N, 3, D, H, W\)"):
        layer(np.zeros((2, 3, 7, 4), np.float32))
    assert_output_shape_raises_like_forward(layer, (2, 3, 7, 4))
    with pytest.raises(TypeError, match="input_shape must be a tuple"):
        layer.output_shape((2, 3, 7, 4, 4.5))
    # a channels-last input gets the layout hint, as Conv2d's does
    with pytest.raises(ValueError, match=r"looks like NDHWC.*transpose\(0, 4, 1, 2, 3\)"):
        layer(np.zeros((2, 7, 4, 9, 3), np.float32))
    with pytest.raises(ValueError, match="along W"):
        layer.output_shape((2, 3, 7, 4, 4))
    with pytest.raises(ValueError, match="along W"):
        layer(np.zeros((2, 3, 7, 4, 4), np.float32))


# issue 12: conv3d at stride 2**31 segfaulted (it runs the 2-D GEMM per
# depth tap, whose phase-slab size overflowed); in a subprocess.
@pytest.mark.parametrize("stride", [2**31, 2**33, (1, 2**31, 2**31)])
def test_conv3d_huge_stride(isolated_ok, stride):
    out = isolated_ok(f"""
        import numpy as np, fastconv as fc
        stride = {stride!r}
        sd, sh, sw = stride if isinstance(stride, tuple) else (stride,) * 3
        x = np.arange(1, 1 + 2 * 2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 2, 3, 4, 5)
        w = np.arange(1, 1 + 3 * 2, dtype=np.float64).reshape(3, 2, 1, 1, 1)
        y = fc.conv3d(x, w, stride=stride)
        want = np.einsum("ncdhw,fc->nfdhw", x[:, :, ::sd, ::sh, ::sw], w[:, :, 0, 0, 0])
        assert np.array_equal(y, want)
        gx, gw, gb = fc.conv3d_backward(np.ones_like(y), x, w, stride=stride)
        want_gx = np.zeros_like(x)
        want_gx[:, :, ::sd, ::sh, ::sw] = w.sum(0)[None, :, :, :, :]
        assert np.array_equal(gx, want_gx)
        print("ok")
        """)
    assert out.strip() == "ok"
