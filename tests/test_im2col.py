"""im2col / col2im: parity with torch's F.unfold / F.fold, adjointness, twin sweep."""

import numpy as np
import pytest
from helpers import maybe_int, out_size, pair
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastconv
import fastconv.reference


def geometry_out(H, W, kernel_size, stride, padding, dilation):
    """(Ho, Wo): the formula of torch.nn.Unfold's docs on each axis."""
    return tuple(out_size(*a) for a in zip((H, W), pair(kernel_size), pair(stride),
                                           pair(padding), pair(dilation)))


# (N, C, H, W, kernel_size, stride, padding, dilation)
CASES = [
    (2, 3, 7, 7, 3, 1, 0, 1),
    (2, 2, 8, 6, (3, 2), (2, 1), (1, 0), 1),
    (1, 1, 9, 11, (2, 3), (1, 2), (0, 2), (2, 1)),
    (1, 4, 5, 5, 5, 1, 0, 1),  # kernel == input -> L = 1
    (2, 2, 6, 9, 1, 1, 0, 1),  # 1x1 kernel
    (1, 2, 10, 7, 3, 3, 1, 2),
    (3, 3, 4, 4, 2, 2, 0, 1),  # non-overlapping
    (1, 1, 1, 1, 1, 1, 0, 1),  # 1x1 image
    (2, 2, 5, 8, 3, (1, 3), (2, 1), (1, 2)),
    (1, 3, 6, 6, 4, 1, 2, 1),  # even kernel, padding on both sides
    (1, 2, 3, 12, (1, 4), (1, 3), (0, 1), 1),
]
CASE_IDS = [
    f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}-k{c[4]}-s{c[5]}-p{c[6]}-d{c[7]}".replace(" ", "")
    for c in CASES
]


def _msg(op, case, dtype, impl):
    N, C, H, W, k, s, p, d = case
    return (
        f"{op} [{impl.__name__}] x=({N},{C},{H},{W}) kernel_size={k} stride={s} "
        f"padding={p} dilation={d} dtype={np.dtype(dtype).name}"
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_im2col_matches_torch_unfold(case, impl, dtype, rng, torch):
    N, C, H, W, k, s, p, d = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    got = impl.im2col(x, k, stride=s, padding=p, dilation=d)
    want = torch.nn.functional.unfold(
        torch.from_numpy(x.copy()), pair(k), dilation=pair(d),
        padding=pair(p), stride=pair(s),
    ).numpy()
    kh, kw = pair(k)
    Ho, Wo = geometry_out(H, W, k, s, p, d)
    assert got.shape == (N, C * kh * kw, Ho * Wo) == want.shape, _msg("im2col", case, dtype, impl)
    assert got.dtype == np.dtype(dtype)
    # im2col only moves data: exact equality.
    np.testing.assert_array_equal(got, want, err_msg=_msg("im2col", case, dtype, impl))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_col2im_matches_torch_fold(case, impl, dtype, rng, torch, tol):
    N, C, H, W, k, s, p, d = case
    kh, kw = pair(k)
    Ho, Wo = geometry_out(H, W, k, s, p, d)
    cols = rng.standard_normal((N, C * kh * kw, Ho * Wo)).astype(dtype)
    got = impl.col2im(cols, (H, W), k, stride=s, padding=p, dilation=d)
    want = torch.nn.functional.fold(
        torch.from_numpy(cols.copy()), (H, W), pair(k), dilation=pair(d),
        padding=pair(p), stride=pair(s),
    ).numpy()
    msg = _msg("col2im", case, dtype, impl)
    assert got.shape == (N, C, H, W), msg
    assert got.dtype == np.dtype(dtype), msg
    np.testing.assert_allclose(got, want, err_msg=msg, **tol(dtype, kh * kw))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_col2im_of_ones_counts_window_coverage(case, impl, dtype):
    # Independent of torch: col2im(ones) counts how many windows cover each pixel.
    N, C, H, W, k, s, p, d = case
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(k), pair(s), pair(p), pair(d)
    Ho, Wo = geometry_out(H, W, k, s, p, d)
    count = np.zeros((H, W))
    for i in range(Ho):
        for j in range(Wo):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * sh - ph + a * dh, j * sw - pw + b * dw
                    if 0 <= r < H and 0 <= c < W:
                        count[r, c] += 1
    cols = np.ones((N, C * kh * kw, Ho * Wo), dtype=dtype)
    got = impl.col2im(cols, (H, W), k, stride=s, padding=p, dilation=d)
    np.testing.assert_array_equal(
        got, np.broadcast_to(count, (N, C, H, W)), err_msg=_msg("col2im(ones)", case, dtype, impl)
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_im2col_explicit_loop(case, impl):
    # Independent of torch: row (c, a, b), column (i, j) holds x[c, i*s - p + a*d, j*s - p + b*d].
    N, C, H, W, k, s, p, d = case
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(k), pair(s), pair(p), pair(d)
    Ho, Wo = geometry_out(H, W, k, s, p, d)
    x = np.arange(1, N * C * H * W + 1, dtype=np.float64).reshape(N, C, H, W)
    want = np.zeros((N, C * kh * kw, Ho * Wo))
    for c in range(C):
        for a in range(kh):
            for b in range(kw):
                row = (c * kh + a) * kw + b
                for i in range(Ho):
                    for j in range(Wo):
                        r, q = i * sh - ph + a * dh, j * sw - pw + b * dw
                        if 0 <= r < H and 0 <= q < W:
                            want[:, row, i * Wo + j] = x[:, c, r, q]
    got = impl.im2col(x, k, stride=s, padding=p, dilation=d)
    np.testing.assert_array_equal(got, want, err_msg=_msg("im2col(loop)", case, np.float64, impl))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_col2im_is_adjoint_of_im2col(case, impl, dtype, rng):
    # <im2col(x), c> == <x, col2im(c)>, inner products taken in float64.
    N, C, H, W, k, s, p, d = case
    kh, kw = pair(k)
    Ho, Wo = geometry_out(H, W, k, s, p, d)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    c = rng.standard_normal((N, C * kh * kw, Ho * Wo)).astype(dtype)
    cols_x = impl.im2col(x, k, stride=s, padding=p, dilation=d).astype(np.float64)
    img_c = impl.col2im(c, (H, W), k, stride=s, padding=p, dilation=d).astype(np.float64)
    lhs = np.vdot(cols_x, c.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), img_c)
    # col2im rounds each pixel's sum of at most kh*kw terms in the input dtype.
    scale = np.vdot(np.abs(cols_x), np.abs(c.astype(np.float64))) + 1.0
    eps = 1e-6 if np.dtype(dtype) == np.float32 else 1e-13
    assert abs(lhs - rhs) <= eps * kh * kw * scale, (
        f"{_msg('adjoint', case, dtype, impl)}: {lhs} vs {rhs}"
    )


def test_im2col_accepts_int_and_pair_equally(impl, rng):
    x = rng.standard_normal((1, 2, 7, 7))
    a = impl.im2col(x, 3, stride=2, padding=1, dilation=1)
    b = impl.im2col(x, (3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    np.testing.assert_array_equal(a, b)
    c = impl.col2im(a, 7, 3, stride=2, padding=1)
    e = impl.col2im(a, (7, 7), (3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    np.testing.assert_array_equal(c, e)


# --------------------------------------------------------------------------
# hypothesis: compiled vs reference over random valid geometries
# --------------------------------------------------------------------------


@st.composite
def unfold_geometries(draw):
    N = draw(st.integers(0, 2))
    C = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # Build the image at least as large as the dilated kernel minus the padding.
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 6))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 6))
    Ho, Wo = out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)
    assume(Ho >= 1 and Wo >= 1)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(
        N=N, C=C, H=H, W=W, Ho=Ho, Wo=Wo, kh=kh, kw=kw,
        k=maybe_int(draw, kh, kw), s=maybe_int(draw, sh, sw),
        p=maybe_int(draw, ph, pw), d=maybe_int(draw, dh, dw),
        dtype=dtype, seed=seed,
    )


@settings(max_examples=50, deadline=None)
@given(g=unfold_geometries())
def test_im2col_col2im_compiled_vs_reference(g, tol):
    rng = np.random.default_rng(g["seed"])
    dt = g["dtype"]
    msg = (
        f"x=({g['N']},{g['C']},{g['H']},{g['W']}) kernel_size={g['k']} stride={g['s']} "
        f"padding={g['p']} dilation={g['d']} dtype={np.dtype(dt).name}"
    )
    geo = dict(stride=g["s"], padding=g["p"], dilation=g["d"])
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"])).astype(dt)
    fast = fastconv.im2col(x, g["k"], **geo)
    slow = fastconv.reference.im2col(x, g["k"], **geo)
    shape = (g["N"], g["C"] * g["kh"] * g["kw"], g["Ho"] * g["Wo"])
    assert fast.shape == slow.shape == shape, "im2col " + msg
    assert fast.dtype == slow.dtype == np.dtype(dt), "im2col " + msg
    np.testing.assert_array_equal(fast, slow, err_msg="im2col " + msg)

    cols = rng.standard_normal(shape).astype(dt)
    fast = fastconv.col2im(cols, (g["H"], g["W"]), g["k"], **geo)
    slow = fastconv.reference.col2im(cols, (g["H"], g["W"]), g["k"], **geo)
    assert fast.shape == slow.shape == (g["N"], g["C"], g["H"], g["W"]), "col2im " + msg
    assert fast.dtype == slow.dtype == np.dtype(dt), "col2im " + msg
    np.testing.assert_allclose(fast, slow, err_msg="col2im " + msg, **tol(dt, g["kh"] * g["kw"]))
