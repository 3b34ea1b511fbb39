"""max_pool2d / avg_pool2d and their backward passes: torch parity, ties, NaN, -inf, twin sweep."""

import numpy as np
import pytest
from helpers import (
    POOL_KINDS,
    assert_adjoint,
    out_size,
    pair,
    pool_data,
    pool_shape,
    torch_max_pool,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastconv
import fastconv.reference

# (N, C, H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (2, 3, 8, 8, 2, None, 0, 1, False),
    (2, 2, 9, 9, 3, 2, 1, 1, False),  # overlapping 3x3 s2
    (2, 2, 9, 9, 3, 2, 1, 1, True),
    (1, 2, 7, 10, (3, 2), (2, 1), (1, 0), 1, False),
    (1, 2, 10, 8, 3, 1, 1, 2, False),  # dilation
    (1, 3, 11, 7, (2, 3), (3, 2), (1, 1), (2, 1), True),
    (2, 1, 5, 5, 5, None, 0, 1, False),  # kernel == input
    (1, 2, 6, 6, 4, 3, 2, 1, True),
    (1, 1, 1, 1, 1, None, 0, 1, False),  # 1x1 image
    (2, 2, 8, 9, 3, 3, 1, 1, True),
    (1, 2, 7, 7, 3, 1, 1, 1, False),  # overlapping 3x3 s1
    (1, 2, 8, 8, 3, 2, 1, 3, True),  # dilation 3 with padding
    (1, 2, 9, 10, 3, 2, 0, 1, False),  # 3x3 s2 inside the input: fused rows
    (1, 1, 5, 301, 3, 2, 0, 1, False),  # fused 3x3 s2 rows of 150 outputs (chunks of 128)
]
MAX_IDS = [
    f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}-k{c[4]}-s{c[5]}-p{c[6]}-d{c[7]}-ceil{int(c[8])}".replace(" ", "")
    for c in MAX_CASES
]

def _msg(op, case, dtype, impl, extra=""):
    N, C, H, W, k, s, p, d, ceil = case[:9]
    return (
        f"{op} [{getattr(impl, '__name__', impl)}] x=({N},{C},{H},{W}) kernel_size={k} stride={s} "
        f"padding={p} dilation={d} ceil_mode={ceil} dtype={np.dtype(dtype).name} {extra}"
    )


@pytest.mark.parametrize("kind", POOL_KINDS)
@pytest.mark.parametrize("case", MAX_CASES, ids=MAX_IDS)
def test_max_pool2d_matches_torch(case, kind, impl, dtype, rng, torch):
    N, C, H, W, k, s, p, d, ceil = case
    x = pool_data(kind, (N, C, H, W), dtype, rng)
    y, idx = impl.max_pool2d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil, return_indices=True)
    y_t, idx_t = torch_max_pool(torch, x, k, s, p, d, ceil)
    msg = _msg("max_pool2d", case, dtype, impl, f"data={kind}")
    assert y.shape == idx.shape == pool_shape(x.shape, k, s, p, d, ceil) == y_t.shape, msg
    assert y.dtype == np.dtype(dtype), msg
    assert idx.dtype == np.int64, msg
    # Max pooling selects values: exact equality (NaN positions must agree too).
    np.testing.assert_array_equal(y, y_t, err_msg="values " + msg)
    np.testing.assert_array_equal(idx, idx_t, err_msg="indices " + msg)
    # Independent of torch: indices are in-plane and point at the returned values.
    assert idx.min(initial=0) >= 0 and idx.max(initial=0) < H * W, "indices out of range " + msg
    picked = np.take_along_axis(x.reshape(N, C, H * W), idx.reshape(N, C, -1), axis=2)
    np.testing.assert_array_equal(picked.reshape(y.shape), y, err_msg="x[indices] != y " + msg)
    # return_indices=False gives the same values.
    y2 = impl.max_pool2d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    assert isinstance(y2, np.ndarray)
    np.testing.assert_array_equal(y2, y, err_msg="return_indices=False " + msg)


def test_max_pool2d_tie_break_first_in_scan_order(impl, dtype):
    # 2x2 windows, stride 2, every window has a tie between two cells
    x = np.array([[[[1, 3, 3, 0],
                    [3, 2, 0, 3],
                    [5, 5, 4, 7],
                    [5, 5, 7, 7]]]], dtype=dtype)
    y, idx = impl.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(y, [[[[3, 3], [5, 7]]]])
    # first maximum in row-major scan order of the window
    np.testing.assert_array_equal(idx, [[[[1, 2], [8, 11]]]])


def test_max_pool2d_nan_rules(impl, dtype, torch):
    # A NaN always wins over numbers; among several NaNs torch keeps the last one seen.
    row = [np.nan, 5, 1, np.nan, 7, 3, 3, 2, 9, np.nan, 1, 1]
    x = np.array(row, dtype=dtype).reshape(1, 1, 1, -1)
    y, idx = impl.max_pool2d(x, (1, 3), stride=1, return_indices=True)
    y_t, idx_t = torch_max_pool(torch, x, (1, 3), 1, 0, 1, False)
    np.testing.assert_array_equal(y, y_t)
    np.testing.assert_array_equal(idx, idx_t)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y[0, 0, 0, 2])


def test_max_pool2d_padding_never_wins(impl, dtype, torch):
    # All -inf input: every window's max is -inf and its index is a real cell, not padding.
    x = np.full((1, 2, 4, 5), -np.inf, dtype=dtype)
    for k, p, s in [(3, 1, 1), (2, 1, 1), (3, 1, 2), ((3, 2), (1, 1), 1)]:
        y, idx = impl.max_pool2d(x, k, stride=s, padding=p, return_indices=True)
        assert np.all(y == -np.inf)
        assert idx.min() >= 0 and idx.max() < 20, f"k={k} p={p}: {idx}"
        _, idx_t = torch_max_pool(torch, x, k, s, p, 1, False)
        np.testing.assert_array_equal(idx, idx_t, err_msg=f"k={k} p={p} s={s}")
    # negative finite values near padding must beat the implicit padding
    x = -np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)
    y = impl.max_pool2d(x, 3, stride=1, padding=1)
    assert np.all(y < 0), y


# --------------------------------------------------------------------------
# max_pool2d_backward
# --------------------------------------------------------------------------

BWD_MAX_CASES = [c for c in MAX_CASES if c[2] > 1]


@pytest.mark.parametrize("kind", ["normal", "small_ints", "all_equal"])
@pytest.mark.parametrize("case", BWD_MAX_CASES, ids=[i for c, i in zip(MAX_CASES, MAX_IDS) if c[2] > 1])
def test_max_pool2d_backward_matches_torch(case, kind, impl, dtype, rng, torch, tol):
    N, C, H, W, k, s, p, d, ceil = case
    x = pool_data(kind, (N, C, H, W), dtype, rng)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t, idx_t = torch.nn.functional.max_pool2d(
        xt, pair(k), stride=None if s is None else pair(s), padding=pair(p),
        dilation=pair(d), ceil_mode=ceil, return_indices=True,
    )
    g = rng.standard_normal(tuple(y_t.shape)).astype(dtype)
    y_t.backward(torch.from_numpy(g.copy()))
    want = xt.grad.numpy()
    msg = _msg("max_pool2d_backward", case, dtype, impl, f"data={kind}")
    kh, kw = pair(k)
    # Overlapping windows may send several gradients to one cell (summed).
    got = impl.max_pool2d_backward(g, idx_t.numpy(), x.shape)
    assert got.shape == x.shape and got.dtype == np.dtype(dtype), msg
    np.testing.assert_allclose(got, want, err_msg="torch indices " + msg, **tol(dtype, kh * kw))
    # and through fastconv's own forward indices
    _, idx = impl.max_pool2d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil, return_indices=True)
    got = impl.max_pool2d_backward(g, idx, x.shape)
    np.testing.assert_allclose(got, want, err_msg="own indices " + msg, **tol(dtype, kh * kw))


def test_max_pool2d_backward_scatter_sums_explicitly(impl, dtype, rng):
    # independent of torch: grad_x[n, c].flat[idx] += grad_out
    N, C, H, W = 2, 3, 5, 6
    idx = rng.integers(0, H * W, size=(N, C, 3, 4)).astype(np.int64)
    idx[0, 0] = 7  # all 12 outputs of one plane hit the same cell
    g = rng.standard_normal(idx.shape).astype(dtype)
    want = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            np.add.at(want[n, c], idx[n, c].ravel(), g[n, c].ravel().astype(np.float64))
    got = impl.max_pool2d_backward(g, idx, (N, C, H, W))
    assert got.shape == (N, C, H, W) and got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got.reshape(N, C, -1), want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_max_pool2d_backward_scatter_large_planes_any_order(impl, dtype, rng):
    # planes far larger than the part the kernel zeroes ahead of its scatter:
    # indices ascending, descending, at random and repeated must all land on
    # zeros first; cells no index reaches stay zero
    N, C, H, W = 1, 4, 90, 110
    L = 70 * 30
    idx = np.empty((N, C, 70, 30), np.int64)
    idx[0, 0] = np.sort(rng.integers(0, H * W, size=L)).reshape(70, 30)
    idx[0, 1] = idx[0, 0][::-1, ::-1]
    idx[0, 2] = rng.integers(0, H * W, size=(70, 30))
    idx[0, 3] = rng.integers(H * W - 50, H * W, size=(70, 30))    # the last cells only
    g = rng.standard_normal(idx.shape).astype(dtype)
    want = np.zeros((N, C, H * W))
    for c in range(C):
        np.add.at(want[0, c], idx[0, c].ravel(), g[0, c].ravel().astype(np.float64))
    got = impl.max_pool2d_backward(g, idx, (N, C, H, W))
    np.testing.assert_allclose(got.reshape(N, C, -1), want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


# --------------------------------------------------------------------------
# avg_pool2d and backward
# --------------------------------------------------------------------------

# (N, C, H, W, kernel, stride, padding)
AVG_GEOMS = [
    (2, 3, 8, 8, 2, None, 0),
    (2, 2, 9, 9, 3, 2, 1),
    (1, 2, 7, 10, (3, 2), (2, 1), (1, 0)),
    (1, 2, 10, 7, 3, 3, 1),
    (1, 2, 6, 6, 4, 3, 2),
    (2, 1, 5, 5, 5, None, 0),
    (1, 2, 7, 7, 3, 1, 1),
    (1, 1, 11, 6, (5, 2), (3, 2), (2, 1)),
    # 3x3 stride 2 inside the input (the vector backward rows): odd and even
    # widths, and a row of 150 windows (more than one chunk of 128)
    (2, 2, 9, 9, 3, 2, 0),
    (1, 2, 8, 10, 3, 2, 0),
    (1, 1, 5, 301, 3, 2, 0),
]
AVG_IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}-k{c[4]}-s{c[5]}-p{c[6]}".replace(" ", "") for c in AVG_GEOMS]


def _torch_avg(torch, x, k, s, p, ceil, cip, grad_out=None):
    xt = torch.from_numpy(x.copy()).requires_grad_(grad_out is not None)
    y = torch.nn.functional.avg_pool2d(
        xt, pair(k), stride=None if s is None else pair(s), padding=pair(p),
        ceil_mode=ceil, count_include_pad=cip,
    )
    if grad_out is None:
        return y.detach().numpy()
    y.backward(torch.from_numpy(grad_out.copy()))
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("count_include_pad", [True, False], ids=["cip1", "cip0"])
@pytest.mark.parametrize("ceil_mode", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("geom", AVG_GEOMS, ids=AVG_IDS)
def test_avg_pool2d_forward_backward_match_torch(geom, ceil_mode, count_include_pad, impl, dtype, rng, torch, tol):
    N, C, H, W, k, s, p = geom
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    kw_ = dict(stride=s, padding=p, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    want_shape = pool_shape(x.shape, k, s, p, 1, ceil_mode)
    g = rng.standard_normal(want_shape).astype(dtype)
    y_t, gx_t = _torch_avg(torch, x, k, s, p, ceil_mode, count_include_pad, grad_out=g)
    kh, kw = pair(k)
    msg = (
        f"avg_pool2d [{impl.__name__}] x={x.shape} kernel_size={k} stride={s} padding={p} "
        f"ceil_mode={ceil_mode} count_include_pad={count_include_pad} dtype={np.dtype(dtype).name}"
    )
    y = impl.avg_pool2d(x, k, **kw_)
    assert y.shape == want_shape == y_t.shape, msg
    assert y.dtype == np.dtype(dtype), msg
    np.testing.assert_allclose(y, y_t, err_msg=msg, **tol(dtype, kh * kw))
    gx = impl.avg_pool2d_backward(g, x.shape, k, **kw_)
    assert gx.shape == x.shape and gx.dtype == np.dtype(dtype), "backward " + msg
    np.testing.assert_allclose(gx, gx_t, err_msg="backward " + msg, **tol(dtype, kh * kw))


def test_avg_pool2d_explicit_divisors(impl):
    # 3x3 ones, kernel 2, stride 2, padding 1: every window holds exactly one real cell
    # on the corners, two on the edges; count_include_pad decides the divisor.
    x = np.ones((1, 1, 3, 3))
    y = impl.avg_pool2d(x, 2, stride=2, padding=1, count_include_pad=True)
    np.testing.assert_allclose(y, [[[[0.25, 0.5], [0.5, 1.0]]]])
    y = impl.avg_pool2d(x, 2, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_allclose(y, np.ones((1, 1, 2, 2)))


def test_avg_pool2d_backward_is_adjoint(impl, dtype, rng):
    # <avg_pool2d(x), g> == <x, avg_pool2d_backward(g)> for a linear operator
    x = rng.standard_normal((2, 2, 9, 8)).astype(dtype)
    for kw_ in (dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                dict(stride=1, padding=1, ceil_mode=False, count_include_pad=True)):
        y = impl.avg_pool2d(x, 3, **kw_)
        g = rng.standard_normal(y.shape).astype(dtype)
        gx = impl.avg_pool2d_backward(g, x.shape, 3, **kw_)
        assert_adjoint(y, g, x, gx, 1e-5 if dtype == np.float32 else 1e-12, str(kw_))


# --------------------------------------------------------------------------
# hypothesis: compiled vs reference
# --------------------------------------------------------------------------


def _every_window_has_a_real_cell(size, k, s, p, d, out):
    for o in range(out):
        if not any(0 <= o * s - p + j * d < size for j in range(k)):
            return False
    return True


@st.composite
def pool_geometries(draw, with_dilation):
    N = draw(st.integers(0, 2))
    C = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if with_dilation else (1, 1)
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))  # torch: pad <= k/2
    stride_none = draw(st.booleans())
    sh, sw = (kh, kw) if stride_none else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ceil_mode = draw(st.booleans())
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 6))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 6))
    Ho, Wo = out_size(H, kh, sh, ph, dh, ceil_mode), out_size(W, kw, sw, pw, dw, ceil_mode)
    assume(Ho >= 1 and Wo >= 1)
    assume(_every_window_has_a_real_cell(H, kh, sh, ph, dh, Ho))
    assume(_every_window_has_a_real_cell(W, kw, sw, pw, dw, Wo))
    k = kh if kh == kw and draw(st.booleans()) else (kh, kw)
    return dict(
        shape=(N, C, H, W), out_shape=(N, C, Ho, Wo), kh=kh, kw=kw, k=k,
        s=None if stride_none else (sh, sw), p=(ph, pw), d=(dh, dw), ceil_mode=ceil_mode,
        data=draw(st.sampled_from(["normal", "ties", "nan"])), dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=50, deadline=None)
@given(g=pool_geometries(with_dilation=True))
def test_max_pool2d_compiled_vs_reference(g):
    rng = np.random.default_rng(g["seed"])
    dt = g["dtype"]
    if g["data"] == "normal":
        x = rng.standard_normal(g["shape"])
    else:  # small integers force ties; optionally sprinkle NaNs (single and several per window)
        x = rng.integers(-2, 3, size=g["shape"]).astype(np.float64)
        if g["data"] == "nan":
            x[rng.random(g["shape"]) < rng.uniform(0.05, 0.5)] = np.nan
    x = x.astype(dt)
    geo = dict(stride=g["s"], padding=g["p"], dilation=g["d"], ceil_mode=g["ceil_mode"])
    msg = f"max_pool2d x={x.shape} kernel_size={g['k']} {geo} data={g['data']} dtype={np.dtype(dt).name}"
    y_f, i_f = fastconv.max_pool2d(x, g["k"], return_indices=True, **geo)
    y_r, i_r = fastconv.reference.max_pool2d(x, g["k"], return_indices=True, **geo)
    assert y_f.shape == y_r.shape == i_f.shape == i_r.shape == g["out_shape"], msg
    assert y_f.dtype == y_r.dtype == np.dtype(dt), msg
    assert i_f.dtype == i_r.dtype == np.int64, msg
    np.testing.assert_array_equal(y_f, y_r, err_msg=msg)
    np.testing.assert_array_equal(i_f, i_r, err_msg=msg)
    grad = rng.standard_normal(g["out_shape"]).astype(dt)
    gx_f = fastconv.max_pool2d_backward(grad, i_f, g["shape"])
    gx_r = fastconv.reference.max_pool2d_backward(grad, i_r, g["shape"])
    assert gx_f.shape == gx_r.shape == g["shape"] and gx_f.dtype == np.dtype(dt), msg
    tol = 1e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(gx_f, gx_r, rtol=tol, atol=tol * g["kh"] * g["kw"], err_msg="backward " + msg)


@settings(max_examples=50, deadline=None)
@given(g=pool_geometries(with_dilation=False), cip=st.booleans())
def test_avg_pool2d_compiled_vs_reference(g, cip, tol):
    rng = np.random.default_rng(g["seed"])
    dt = g["dtype"]
    x = rng.standard_normal(g["shape"]).astype(dt)
    geo = dict(stride=g["s"], padding=g["p"], ceil_mode=g["ceil_mode"], count_include_pad=cip)
    msg = f"avg_pool2d x={x.shape} kernel_size={g['k']} {geo} dtype={np.dtype(dt).name}"
    y_f = fastconv.avg_pool2d(x, g["k"], **geo)
    y_r = fastconv.reference.avg_pool2d(x, g["k"], **geo)
    assert y_f.shape == y_r.shape == g["out_shape"], msg
    assert y_f.dtype == y_r.dtype == np.dtype(dt), msg
    np.testing.assert_allclose(y_f, y_r, err_msg=msg, **tol(dt, g["kh"] * g["kw"]))
    grad = rng.standard_normal(g["out_shape"]).astype(dt)
    gx_f = fastconv.avg_pool2d_backward(grad, g["shape"], g["k"], **geo)
    gx_r = fastconv.reference.avg_pool2d_backward(grad, g["shape"], g["k"], **geo)
    assert gx_f.shape == gx_r.shape == g["shape"] and gx_f.dtype == np.dtype(dt), msg
    np.testing.assert_allclose(gx_f, gx_r, err_msg="backward " + msg, **tol(dt, g["kh"] * g["kw"]))


# ---------------------------------------------------------------------------
# the one deliberate difference from torch: a window with no input cell
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd", [1, 2, 3])
def test_empty_dilated_window_is_rejected_and_documented(nd, impl, torch):
    # Length 2, kernel 2, padding 1, dilation 3: the only window has its taps
    # at -1 and 2, both outside the input.
    x = np.arange(2.0 ** nd).reshape((1, 1) + (2,) * nd)
    fn = getattr(impl, f"max_pool{nd}d")
    with pytest.raises(ValueError, match="skips every cell"):
        fn(x, 2, 1, 1, 3)
    # What torch does instead (the claim the docstrings make).
    tf = getattr(torch.nn.functional, f"max_pool{nd}d")
    y, i = tf(torch.from_numpy(x), 2, 1, 1, 3, return_indices=True)
    assert y.shape[2:] == (1,) * nd and bool(torch.all(y == -float("inf")))
    assert not 0 <= int(i.flatten()[0]) < 2 ** nd
    doc = " ".join(getattr(fastconv, f"max_pool{nd}d").__doc__.split())
    assert "covers no input cell at all" in doc
    assert "rejected with ValueError, deliberately: PyTorch returns -inf" in doc


# --------------------------------------------------------------------------
# issue 12: pooling time grew with the window, not the data (a 4x4 input
# with kernel 2**28 and padding 2**27 took 7 s; 2**40 never ends).  Windows
# are clipped to the input now.  In a subprocess with a time limit, so a
# regression fails instead of hanging; values from an independent formula.
# --------------------------------------------------------------------------

HUGE_WINDOW_2D = """
    import numpy as np, fastconv as fc
    K = 2**40                       # rows: one window covers all of them
    geo = dict(kernel_size=(K, 2), stride=(2 * K, 2), padding=(K // 2, 0))
    x = np.random.default_rng(0).permutation(2 * 3 * 4 * 6).astype(np.float64)
    x = x.reshape(2, 3, 4, 6)
    cols = x.reshape(2, 3, 4, 3, 2).transpose(0, 1, 3, 2, 4)   # (.., ow, h, j)
    y, idx = fc.max_pool2d(x, **geo, return_indices=True, ceil_mode=CEIL)
    flat = cols.reshape(2, 3, 3, 8)
    first = flat.argmax(-1)                          # first maximum, row-major
    assert np.array_equal(y[:, :, 0], flat.max(-1))
    assert np.array_equal(idx[:, :, 0], first // 2 * 6 + 2 * np.arange(3) + first % 2)
    g = fc.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    assert g.sum() == y.size
    for include, divisor in ((True, K * 2), (False, 4 * 2)):
        a = fc.avg_pool2d(x, **geo, ceil_mode=CEIL, count_include_pad=include)
        assert np.array_equal(a[:, :, 0], flat.sum(-1) / divisor), include
        ga = fc.avg_pool2d_backward(np.ones_like(a), x.shape, **geo,
                                    ceil_mode=CEIL, count_include_pad=include)
        assert np.array_equal(ga, np.full(x.shape, 1 / divisor)), include
    print("ok")
"""


@pytest.mark.parametrize("ceil", [False, True])
def test_huge_window_costs_the_input_not_the_window(isolated_ok, ceil):
    out = isolated_ok(HUGE_WINDOW_2D.replace("CEIL", str(ceil)), timeout=60)
    assert out.strip() == "ok"


def test_the_issue_s_pooling_calls_are_quick(isolated_ok):
    # The calls of the issue (k up to 30), in a subprocess with a time
    # limit of 60 s for all of them (they took 0.5 s, 7 s and > 20 s each).
    out = isolated_ok("""
        import numpy as np, fastconv as fc
        x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
        for k in (24, 28, 30):
            geo = dict(stride=2**(k + 1), padding=2**(k - 1))
            assert fc.max_pool2d(x, 2**k, **geo).item() == 15
            assert fc.avg_pool2d(x, 2**k, **geo).item() == 120 / 4**k
            assert fc.avg_pool2d(x, 2**k, **geo, count_include_pad=False).item() == 7.5
        print("ok")
        """, timeout=60)
    assert out.strip() == "ok"


def test_lp_pool_with_a_window_past_the_input(isolated_ok):
    # ceil_mode lets one window reach past the input (PyTorch's rule); lp
    # pooling is avg_pool2d(x**p) * kh*kw with the divisor clipped to the
    # input: (sum of x**2 / 8 * 2**41) ** 0.5 here.
    out = isolated_ok("""
        import numpy as np, fastconv as fc
        K = 2**40
        x = np.arange(1, 1 + 4 * 2, dtype=np.float64).reshape(1, 1, 4, 2)
        y = fc.lp_pool2d(x, 2, (K, 2), ceil_mode=True)
        assert y.shape == (1, 1, 1, 1)
        assert np.isclose(y.item(), ((x**2).sum() / 8 * 2 * K) ** 0.5, rtol=1e-12)
        g = fc.lp_pool2d_backward(np.ones_like(y), x, 2, (K, 2), ceil_mode=True)
        assert g.shape == x.shape and np.isfinite(g).all()
        print("ok")
        """, timeout=60)
    assert out.strip() == "ok"
