"""max_pool3d / avg_pool3d, their backward passes and layers: torch parity, NaN, twin, threads, errors."""

import numpy as np
import pytest
from helpers import (
    assert_adjoint,
    assert_output_shape_raises_like_forward,
    pool_data,
    pool_shape,
    torch_max_pool,
    triple,
)

import fastconv
import fastconv.reference
from fastconv import layers as L

# (N, C, D, H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (2, 3, 4, 6, 6, 2, None, 0, 1, False),
    (2, 2, 5, 7, 7, 3, 2, 1, 1, False),
    (2, 2, 5, 7, 8, 3, 2, 1, 1, True),
    (1, 2, 6, 5, 7, (3, 2, 1), (2, 1, 1), (1, 1, 0), 1, False),
    (1, 2, 7, 6, 8, (2, 3, 3), (1, 2, 2), (1, 0, 1), (2, 1, 2), True),   # dilation
    (2, 1, 3, 3, 3, 3, None, 0, 1, False),                               # kernel == input
    (1, 1, 1, 1, 1, 1, None, 0, 1, False),                               # 1x1x1
    (1, 2, 5, 6, 6, 4, 3, 2, 1, True),
    (1, 2, 6, 6, 6, 3, 1, 1, 1, False),                                  # overlapping, stride 1
]
MAX_IDS = ["-".join(str(v).replace(" ", "") for v in c) for c in MAX_CASES]
KINDS = ["normal", "small_ints", "nan_sparse", "nan_dense", "neg_inf"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", MAX_CASES, ids=MAX_IDS)
def test_max_pool3d_matches_torch(case, kind, impl, dtype, rng, torch):
    N, C, D, H, W, k, s, p, d, ceil = case
    x = pool_data(kind, (N, C, D, H, W), dtype, rng)
    geo = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil)
    msg = f"max_pool3d [{impl.__name__}] x={x.shape} kernel_size={k} {geo} data={kind} dtype={np.dtype(dtype).name}"
    y, idx = impl.max_pool3d(x, k, return_indices=True, **geo)
    y_t, idx_t = torch_max_pool(torch, x, k, s, p, d, ceil)
    assert y.shape == idx.shape == pool_shape(x.shape, k, s, p, d, ceil) == y_t.shape, msg
    assert y.dtype == np.dtype(dtype) and idx.dtype == np.int64, msg
    # selection, not arithmetic: exact, NaN positions included
    np.testing.assert_array_equal(y, y_t, err_msg="values " + msg)
    np.testing.assert_array_equal(idx, idx_t, err_msg="indices " + msg)
    # independent of torch: indices lie in the volume and point at the values
    assert idx.min(initial=0) >= 0 and idx.max(initial=0) < D * H * W, msg
    picked = np.take_along_axis(x.reshape(N, C, -1), idx.reshape(N, C, -1), axis=2)
    np.testing.assert_array_equal(picked.reshape(y.shape), y, err_msg="x[indices] != y " + msg)
    y2 = impl.max_pool3d(x, k, **geo)
    assert isinstance(y2, np.ndarray)
    np.testing.assert_array_equal(y2, y, err_msg="return_indices=False " + msg)


def test_max_pool3d_ties_and_nan_explicit(impl, dtype):
    # hand-built: ties go to the first cell in (d, h, w) order; NaN wins, the last NaN is kept
    x = np.zeros((1, 1, 2, 2, 4), dtype=dtype)
    x[0, 0, 0, 1, 0] = x[0, 0, 1, 0, 1] = 5            # tie in window 0: first is (0, 1, 0) -> 4
    x[0, 0, 0, 0, 2] = x[0, 0, 1, 1, 3] = np.nan       # window 1: NaNs at 2 and 15 -> 15
    x[0, 0, 0, 1, 3] = 9
    y, idx = impl.max_pool3d(x, 2, return_indices=True)
    assert y[0, 0, 0, 0, 0] == 5 and idx[0, 0, 0, 0, 0] == 4
    assert np.isnan(y[0, 0, 0, 0, 1]) and idx[0, 0, 0, 0, 1] == 15


def test_max_pool3d_padding_never_wins(impl, dtype, torch):
    x = np.full((1, 2, 3, 4, 5), -np.inf, dtype=dtype)
    for k, p, s in [(3, 1, 1), (2, 1, 1), ((3, 2, 3), (1, 1, 1), 2)]:
        y, idx = impl.max_pool3d(x, k, stride=s, padding=p, return_indices=True)
        assert np.all(y == -np.inf)
        _, idx_t = torch_max_pool(torch, x, k, s, p, 1, False)
        np.testing.assert_array_equal(idx, idx_t, err_msg=f"k={k} p={p} s={s}")
    x = -np.arange(1, 28, dtype=dtype).reshape(1, 1, 3, 3, 3)
    assert np.all(impl.max_pool3d(x, 3, stride=1, padding=1) < 0)


BWD_CASES = [c for c in MAX_CASES if c[2] > 1]


@pytest.mark.parametrize("kind", ["normal", "small_ints"])
@pytest.mark.parametrize("case", BWD_CASES, ids=[i for c, i in zip(MAX_CASES, MAX_IDS) if c[2] > 1])
def test_max_pool3d_backward_matches_torch(case, kind, impl, dtype, rng, torch, tol):
    N, C, D, H, W, k, s, p, d, ceil = case
    x = pool_data(kind, (N, C, D, H, W), dtype, rng)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t, idx_t = torch.nn.functional.max_pool3d(
        xt, triple(k), stride=None if s is None else triple(s), padding=triple(p), dilation=triple(d),
        ceil_mode=ceil, return_indices=True)
    g = rng.standard_normal(tuple(y_t.shape)).astype(dtype)
    y_t.backward(torch.from_numpy(g.copy()))
    n_terms = int(np.prod(triple(k)))
    got = impl.max_pool3d_backward(g, idx_t.numpy(), x.shape)
    assert got.shape == x.shape and got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, xt.grad.numpy(), **tol(dtype, n_terms))
    _, idx = impl.max_pool3d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil, return_indices=True)
    np.testing.assert_allclose(impl.max_pool3d_backward(g, idx, x.shape), xt.grad.numpy(), **tol(dtype, n_terms))


def test_max_pool3d_backward_scatter_sums_explicitly(impl, dtype, rng, tol):
    N, C, D, H, W = 2, 3, 2, 3, 4
    idx = rng.integers(0, D * H * W, size=(N, C, 2, 2, 3)).astype(np.int64)
    idx[1, 2] = 5                                   # all outputs of one volume hit one cell
    g = rng.standard_normal(idx.shape).astype(dtype)
    want = np.zeros((N, C, D * H * W))
    for n in range(N):
        for c in range(C):
            for o, v in zip(idx[n, c].ravel(), g[n, c].ravel()):
                want[n, c, o] += v
    got = impl.max_pool3d_backward(g, idx, (N, C, D, H, W))
    np.testing.assert_allclose(got.reshape(N, C, -1), want, **tol(dtype, 12))


# (N, C, D, H, W, kernel, stride, padding)
AVG_GEOMS = [
    (2, 3, 4, 6, 6, 2, None, 0),
    (2, 2, 5, 7, 7, 3, 2, 1),
    (1, 2, 6, 5, 8, (3, 2, 1), (2, 1, 3), (1, 1, 0)),
    (1, 2, 5, 6, 6, 4, 3, 2),
    (2, 1, 3, 3, 3, 3, None, 0),
    (1, 1, 7, 6, 9, (5, 2, 3), (3, 2, 2), (2, 1, 1)),
]
AVG_IDS = ["-".join(str(v).replace(" ", "") for v in c) for c in AVG_GEOMS]


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["cip1", "cip0"])
@pytest.mark.parametrize("ceil_mode", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("geom", AVG_GEOMS, ids=AVG_IDS)
def test_avg_pool3d_forward_backward_match_torch(geom, ceil_mode, count_include_pad, impl, dtype, rng, torch, tol):
    N, C, D, H, W, k, s, p = geom
    x = rng.standard_normal((N, C, D, H, W)).astype(dtype)
    kw_ = dict(stride=s, padding=p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    want_shape = pool_shape(x.shape, k, s, p, 1, ceil_mode)
    g = rng.standard_normal(want_shape).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t = torch.nn.functional.avg_pool3d(xt, triple(k), stride=None if s is None else triple(s), padding=triple(p),
                                         ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    y_t.backward(torch.from_numpy(g.copy()))
    msg = f"avg_pool3d [{impl.__name__}] x={x.shape} kernel_size={k} {kw_} dtype={np.dtype(dtype).name}"
    n_terms = int(np.prod(triple(k)))
    y = impl.avg_pool3d(x, k, **kw_)
    assert y.shape == want_shape == tuple(y_t.shape) and y.dtype == np.dtype(dtype), msg
    np.testing.assert_allclose(y, y_t.detach().numpy(), err_msg=msg, **tol(dtype, n_terms))
    gx = impl.avg_pool3d_backward(g, x.shape, k, **kw_)
    assert gx.shape == x.shape and gx.dtype == np.dtype(dtype), msg
    np.testing.assert_allclose(gx, xt.grad.numpy(), err_msg="backward " + msg, **tol(dtype, n_terms))


def test_avg_pool3d_explicit_divisors(impl):
    # 3x3x3 ones, kernel 2, stride 2, padding 1: the corner window holds one real cell of 8
    x = np.ones((1, 1, 3, 3, 3))
    y = impl.avg_pool3d(x, 2, stride=2, padding=1, count_include_pad=True)
    assert y[0, 0, 0, 0, 0] == 1 / 8 and y[0, 0, 0, 0, 1] == 2 / 8 and y[0, 0, 1, 1, 1] == 1
    y = impl.avg_pool3d(x, 2, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(y, np.ones((1, 1, 2, 2, 2)))


def test_avg_pool3d_backward_is_adjoint(impl, dtype, rng):
    x = rng.standard_normal((2, 2, 5, 6, 7)).astype(dtype)
    for kw_ in (dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                dict(stride=(1, 2, 1), padding=1, ceil_mode=False, count_include_pad=True)):
        y = impl.avg_pool3d(x, 3, **kw_)
        g = rng.standard_normal(y.shape).astype(dtype)
        gx = impl.avg_pool3d_backward(g, x.shape, 3, **kw_)
        assert_adjoint(y, g, x, gx, 1e-5 if dtype == np.float32 else 1e-12, str(kw_))


# --------------------------------------------------------------------------
# compiled vs reference, threads, contracts, errors
# --------------------------------------------------------------------------

TWIN_GEOMS = [
    ((2, 3, 6, 7, 8), 3, 2, 1, 1, True),
    ((1, 2, 9, 5, 7), (2, 3, 2), (3, 1, 2), (1, 1, 0), (3, 1, 2), False),
    ((2, 2, 4, 4, 4), 2, 1, 1, 1, True),
]


@pytest.mark.parametrize("shape,k,s,p,d,ceil", TWIN_GEOMS)
def test_pool3d_compiled_vs_reference(shape, k, s, p, d, ceil, dtype, rng, tol):
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    x[rng.random(shape) < 0.1] = np.nan
    geo = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil)
    y_f, i_f = fastconv.max_pool3d(x, k, return_indices=True, **geo)
    y_r, i_r = fastconv.reference.max_pool3d(x, k, return_indices=True, **geo)
    np.testing.assert_array_equal(y_f, y_r)
    np.testing.assert_array_equal(i_f, i_r)
    g = rng.standard_normal(y_f.shape).astype(dtype)
    n_terms = int(np.prod(triple(k)))
    np.testing.assert_allclose(fastconv.max_pool3d_backward(g, i_f, shape),
                               fastconv.reference.max_pool3d_backward(g, i_r, shape), **tol(dtype, n_terms))
    x = rng.standard_normal(shape).astype(dtype)
    for cip in (True, False):
        a = dict(stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip)
        y_f = fastconv.avg_pool3d(x, k, **a)
        np.testing.assert_allclose(y_f, fastconv.reference.avg_pool3d(x, k, **a), **tol(dtype, n_terms))
        g = rng.standard_normal(y_f.shape).astype(dtype)
        np.testing.assert_allclose(fastconv.avg_pool3d_backward(g, shape, k, **a),
                                   fastconv.reference.avg_pool3d_backward(g, shape, k, **a), **tol(dtype, n_terms))


def test_pool3d_bitwise_same_at_any_thread_count(rng, restore_threads):
    x = rng.standard_normal((4, 16, 8, 32, 32)).astype(np.float32)
    out = {}
    for n in (1, 2):
        fastconv.set_num_threads(n)
        y, idx = fastconv.max_pool3d(x, 3, stride=2, padding=1, return_indices=True)
        a = fastconv.avg_pool3d(x, 3, stride=2, padding=1, count_include_pad=False)
        out[n] = (y, idx, fastconv.max_pool3d_backward(y, idx, x.shape), a,
                  fastconv.avg_pool3d_backward(a, x.shape, 3, stride=2, padding=1, count_include_pad=False))
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


def test_pool3d_inputs_unchanged_and_non_contiguous(impl, dtype, rng):
    x = rng.standard_normal((2, 3, 6, 5, 7)).astype(dtype).transpose(0, 1, 4, 3, 2)
    x_copy = x.copy()
    y, idx = impl.max_pool3d(x, 2, stride=1, return_indices=True)
    y_c, idx_c = impl.max_pool3d(np.ascontiguousarray(x), 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(y, y_c)
    np.testing.assert_array_equal(idx, idx_c)
    g = rng.standard_normal(y.shape[::-1]).astype(dtype).T       # non-contiguous grad
    g_copy, idx_copy = g.copy(), idx.copy()
    np.testing.assert_array_equal(impl.max_pool3d_backward(g, idx, x.shape),
                                  impl.max_pool3d_backward(np.ascontiguousarray(g), idx, x.shape))
    a = impl.avg_pool3d(x, 3, padding=1, ceil_mode=True)
    np.testing.assert_array_equal(a, impl.avg_pool3d(np.ascontiguousarray(x), 3, padding=1, ceil_mode=True))
    ga = rng.standard_normal(a.shape[::-1]).astype(dtype).T
    ga_copy = ga.copy()
    np.testing.assert_array_equal(
        impl.avg_pool3d_backward(ga, x.shape, 3, padding=1, ceil_mode=True),
        impl.avg_pool3d_backward(np.ascontiguousarray(ga), x.shape, 3, padding=1, ceil_mode=True))
    for arr, copy in ((x, x_copy), (g, g_copy), (idx, idx_copy), (ga, ga_copy)):
        np.testing.assert_array_equal(arr, copy)


BAD = [
    ("max", dict(x=np.ones((1, 2, 4, 4), np.float32)), ValueError, r"x must have 5 dimensions \(N, C, D, H, W\)"),
    ("max", dict(x=np.ones((1, 1, 4, 4, 4), np.int64)), TypeError, r"x must have dtype float32 or float64"),
    ("max", dict(kernel_size=(2, 2)), TypeError, r"kernel_size must be an int or a triple of ints \(d, h, w\)"),
    ("max", dict(stride=0), ValueError, r"stride must be positive"),
    ("max", dict(kernel_size=3, padding=2), ValueError, r"padding \(2, 2, 2\) must be at most half of kernel_size \(3, 3, 3\)"),
    ("max", dict(kernel_size=(5, 2, 2)), ValueError, r"along D\).*D=4"),
    ("max", dict(kernel_size=2, padding=1, dilation=(1, 1, 3), x=np.ones((1, 1, 4, 4, 1), np.float32)),
     ValueError, r"skips every cell|along W"),
    ("avg", dict(kernel_size=(2, 2, 5)), ValueError, r"along W\).*W=4"),
    ("avg", dict(kernel_size=2, padding=(0, 0, 2)), ValueError, r"must be at most half"),
]


@pytest.mark.parametrize("kind,bad,exc,match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_pool3d_bad_inputs(kind, bad, exc, match, impl):
    args = dict(x=np.ones((1, 1, 4, 4, 4), np.float32), kernel_size=2, stride=None, padding=0)
    if kind == "max":
        args["dilation"] = 1
    args.update(bad)
    fn = impl.max_pool3d if kind == "max" else impl.avg_pool3d
    with pytest.raises(exc, match=match):
        fn(args.pop("x"), **args)


def test_pool3d_empty_window_rejected(impl):
    # dilation 2, padding 1 on a depth of 1: the first window's taps sit at -1 and 1
    with pytest.raises(ValueError, match="skips every cell"):
        impl.max_pool3d(np.ones((1, 1, 1, 3, 3), np.float32), 2, stride=1, padding=1, dilation=2)


def test_pool3d_backward_bad_inputs(impl):
    g = np.ones((1, 1, 2, 2, 2), np.float32)
    idx = np.zeros((1, 1, 2, 2, 2), np.int64)
    with pytest.raises(TypeError, match="indices must be an int64"):
        impl.max_pool3d_backward(g, idx.astype(np.int32), (1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match=r"input_shape must be 5 non-negative ints \(N, C, D, H, W\)"):
        impl.max_pool3d_backward(g, idx, (1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"indices of shape \(1, 1, 2, 2, 1\)"):
        impl.max_pool3d_backward(g, idx[..., :1], (1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match=r"must agree on N and C"):
        impl.max_pool3d_backward(g, idx, (1, 2, 4, 4, 4))
    bad = idx.copy()
    bad[0, 0, 1, 1, 1] = 64
    with pytest.raises(ValueError, match=r"indices must lie in \[0, D\*H\*W\) = \[0, 64\)"):
        impl.max_pool3d_backward(g, bad, (1, 1, 4, 4, 4))
    bad[0, 0, 1, 1, 1] = -1
    with pytest.raises(ValueError, match=r"indices must lie in"):
        impl.max_pool3d_backward(g, bad, (1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match=r"forward output's shape \(1, 1, 2, 2, 2\)"):
        impl.avg_pool3d_backward(g[..., :1], (1, 1, 4, 4, 4), 2)


# --------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["fastconv", "reference"])
def test_pool3d_layers_match_torch_modules(backend, rng, torch, tol):
    x = rng.standard_normal((2, 3, 5, 7, 6))
    for layer, mod in (
        (L.MaxPool3d(3, stride=2, padding=1, ceil_mode=True),
         torch.nn.MaxPool3d(3, stride=2, padding=1, ceil_mode=True)),
        (L.MaxPool3d((2, 3, 2), dilation=(1, 1, 2)), torch.nn.MaxPool3d((2, 3, 2), dilation=(1, 1, 2))),
        (L.AvgPool3d(3, stride=(1, 2, 2), padding=1, count_include_pad=False),
         torch.nn.AvgPool3d(3, stride=(1, 2, 2), padding=1, count_include_pad=False)),
    ):
        layer.set_backend(backend)
        assert repr(layer) == repr(mod)
        assert layer.state_dict() == {}
        y = layer(x)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        y_t = mod(xt)
        assert layer.output_shape(x.shape) == y.shape == tuple(y_t.shape)
        np.testing.assert_allclose(y, y_t.detach().numpy(), **tol(np.float64, 27))
        g = rng.standard_normal(y.shape)
        y_t.backward(torch.from_numpy(g))
        np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), **tol(np.float64, 27))


def test_pool3d_layers_shape_protocol():
    m = L.MaxPool3d((3, 2, 2), stride=(2, 1, 2), padding=(1, 0, 1), dilation=(1, 2, 1))
    assert m._rf_geometry() == ((3, 2, 1, 1), (2, 1, 0, 2), (2, 2, 1, 1))
    assert L.MaxPool3d(2)._rf_geometry() == ((2, 2, 0, 1),) * 3
    assert L.AvgPool3d(3, padding=1)._rf_geometry() == ((3, 3, 1, 1),) * 3
    shape = (2, 3, 7, 8, 9)
    assert m.output_shape(shape) == m(np.zeros(shape, np.float32)).shape
    a = L.AvgPool3d(3, stride=2, ceil_mode=True)
    assert a.output_shape(shape) == a(np.zeros(shape, np.float32)).shape
    for layer in (m, a):
        # a wrong rank: output_shape raises forward's error, word for word
        with pytest.raises(ValueError, match=r"\(N, C, D, H, W\)"):
            layer(np.zeros((2, 3, 7, 8), np.float32))
        assert_output_shape_raises_like_forward(layer, (2, 3, 7, 8))
        with pytest.raises(TypeError, match="input_shape must be a tuple"):
            layer.output_shape((2, 3, 7, 8, 9.0))
    small = L.MaxPool3d(3)
    with pytest.raises(ValueError, match="along D"):
        small.output_shape((1, 1, 2, 8, 8))
    with pytest.raises(ValueError, match="along D"):
        small(np.zeros((1, 1, 2, 8, 8), np.float32))


# issue 12: pooling time is bounded by the input and output, not the window
# (it grew with the kernel and its padding); in a subprocess with a limit.
@pytest.mark.parametrize("ceil", [False, True])
def test_huge_window_costs_the_input_not_the_window(isolated_ok, ceil):
    out = isolated_ok(f"""
        import numpy as np, fastconv as fc
        K = 2**40          # one window covers each whole (D, H, W) volume
        geo = dict(kernel_size=(K, 2, 4), stride=(2 * K, 2, 4),
                   padding=(K // 2, 0, 0), ceil_mode={ceil})
        x = np.random.default_rng(1).permutation(2 * 3 * 4 * 2 * 3).astype(np.float64)
        x = x.reshape(2, 3, 3, 2, 4)                 # N C D H W, H = 2 rows
        y, idx = fc.max_pool3d(x, **geo, return_indices=True)
        assert y.shape == (2, 3, 1, 1, 1)
        flat = x.reshape(2, 3, -1)
        assert np.array_equal(y.ravel(), flat.max(-1).ravel())
        assert np.array_equal(idx.ravel(), flat.argmax(-1).ravel())
        for include, divisor in ((True, K * 2 * 4), (False, x[0, 0].size)):
            a = fc.avg_pool3d(x, **geo, count_include_pad=include)
            assert np.array_equal(a.ravel(), (flat.sum(-1) / divisor).ravel())
            g = fc.avg_pool3d_backward(np.ones_like(a), x.shape, **geo,
                                       count_include_pad=include)
            assert np.array_equal(g, np.full(x.shape, 1 / divisor))
        print("ok")
        """, timeout=60)
    assert out.strip() == "ok"
