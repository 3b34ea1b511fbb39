"""conv2d / conv2d_backward: torch parity, finite differences, twin sweep, worked examples."""

import numpy as np
import pytest
from helpers import central_difference, maybe_int, out_size, pair
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastconv
import fastconv.reference

ALGORITHMS = ["auto", "gemm", "direct"]

# torch warns that it copies the input for even-kernel "same" padding; that is its business.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def conv_out_shape(N, F, H, W, k, s, p, d):
    """Output shape from the formula (W - d*(k-1) - 1 + 2P)/S + 1, "same" and "valid" included."""
    if p == "same":
        return (N, F, H, W)
    if p == "valid":
        p = 0
    return (N, F) + tuple(out_size(*a) for a in zip((H, W), pair(k), pair(s), pair(p), pair(d)))


# (N, C, H, W, F, kernel, stride, padding, dilation, groups, bias)
CASES = [
    (2, 3, 8, 8, 4, 3, 1, 0, 1, 1, True),
    (2, 3, 9, 7, 5, (3, 2), (2, 1), (1, 0), 1, 1, False),
    (1, 4, 10, 10, 6, 3, 2, 1, 2, 2, True),  # groups=2 + dilation
    (2, 4, 7, 7, 4, 3, 1, "same", 1, 4, True),  # depthwise
    (2, 3, 7, 7, 6, 3, 1, 1, 1, 3, True),  # depthwise, channel multiplier 2
    (1, 2, 8, 8, 3, 4, 1, "same", 1, 1, True),  # even kernel: asymmetric "same"
    (1, 2, 9, 6, 3, (2, 4), 1, "same", (2, 1), 1, False),  # even kernels, dilated "same"
    (1, 3, 6, 7, 2, (2, 2), 1, "same", (3, 1), 1, True),  # dilation 3 * (k-1) = 3: odd total pad
    (2, 3, 6, 6, 2, 3, 1, "valid", 1, 1, True),
    (1, 6, 5, 5, 4, 1, 1, 0, 1, 2, False),  # 1x1 conv with groups
    (2, 2, 11, 9, 3, 3, (3, 2), (2, 1), (1, 2), 1, True),
    (1, 3, 5, 5, 2, 5, 1, 0, 1, 1, True),  # kernel == input -> 1x1 output
    (1, 6, 8, 8, 9, 3, 2, 1, 1, 3, True),  # groups=3, F=9
    (2, 1, 1, 1, 3, 1, 1, 0, 1, 1, True),  # 1x1 image
    # Shapes that cross the packed GEMM's blocking: K = C/groups*kh*kw above
    # one K block (256), L = Ho*Wo above one column tile (512 float32, 256
    # float64) with narrow edge panels, F not a multiple of the 8-row panel.
    (2, 40, 25, 25, 13, 3, 1, 1, 1, 1, True),  # K=360: 2 blocks; L=625
    (1, 30, 20, 26, 20, 3, 1, 1, 1, 2, False),  # L=520: 8-column edge tile
    (1, 64, 6, 6, 9, 3, 1, 1, 1, 1, True),  # K=576: 3 blocks
    # Unit stride, >= 16 channels per group: grad_x by a forward convolution
    # of grad_out with the flipped filters (padding (k-1)*d - p per side).
    (1, 16, 9, 8, 8, 4, 1, "same", 1, 1, True),  # even kernel: pads 2 / 1 left
    (2, 32, 9, 7, 6, (3, 2), 1, (2, 1), (2, 1), 2, False),  # groups, dilation
    (1, 20, 7, 7, 3, 3, 1, "valid", 1, 1, False),  # full padding of grad_out
    (1, 16, 5, 6, 4, 1, 1, 1, 1, 1, True),  # p > (k-1)*d: the col2im path
    # Unit stride, rows wide enough (Wo >= 8*(kw-1)*dw): grad_weight reads
    # im2col rows off a zero-padded slab of Wo + (kw-1)*dw columns.
    (3, 16, 12, 34, 10, 3, 1, 2, 2, 1, True),  # dilated, chunks split rows
    (1, 16, 10, 36, 5, (2, 3), 1, (1, 2), (1, 2), 1, False),  # unequal k, p, d
    # Strided forward tiles read a slab split into sh x sw phases.
    (2, 5, 13, 14, 9, 3, (2, 3), (1, 2), (2, 1), 1, True),  # unequal strides, dilations
    (1, 3, 23, 23, 8, 5, 4, 1, 1, 1, True),  # stride 4: 16 phases
    (2, 4, 9, 9, 8, 1, 2, 0, 1, 1, False),  # 1x1 stride 2: one phase of four read
    (1, 8, 40, 41, 9, 1, 1, 0, 1, 1, True),  # pointwise: B rows are input planes; 2+ tiles
    # Batches of more than 8 small images: GEMM tiles hold several images
    # side by side (8 tiles or more per batch).
    (12, 5, 8, 8, 7, 3, 1, 1, 1, 1, True),  # 2 images a tile
    (20, 6, 9, 11, 10, 3, 2, 1, 1, 1, False),  # stride 2, odd width: 3 images
    (10, 4, 7, 9, 5, 1, 2, 0, 1, 1, True),  # 1x1 stride 2: one phase of four
    (9, 6, 6, 6, 8, 3, 1, 1, 1, 2, True),  # groups
    (11, 3, 10, 10, 4, 3, 2, 2, 2, 1, True),  # dilation 2 at stride 2
    (17, 16, 6, 7, 16, 3, 1, 1, 1, 1, False),  # grad_x by the flipped filters
    # stride 2, a tall dilated kernel: slab rows split in several passes
    (1, 2, 60, 150, 3, (5, 1), 2, (2, 0), (12, 1), 1, True),
    # Strided, >= 16 channels per group: grad_x phase by phase, each phase a
    # stride-1 convolution of grad_out with its taps, written in place.
    (3, 16, 9, 9, 5, 3, 2, 1, 1, 1, True),
    (20, 16, 8, 8, 8, 3, 2, 1, 1, 1, False),  # phases of images side by side
    (2, 16, 8, 8, 3, (1, 2), 2, 0, 1, 1, True),  # three phases of four are zero
    (2, 32, 12, 14, 6, (3, 5), (2, 3), (1, 2), (2, 1), 2, True),
    (2, 20, 27, 27, 4, 11, 4, 0, 1, 1, False),  # AlexNet-like 11x11/4
    (1, 16, 9, 9, 3, 3, 2, 2, 1, 1, True),  # a phase with negative padding: col2im
    # grad_weight by blocks of its columns: 2 blocks at stride 2 (grad_out
    # packed once for both), then 4+ (no chunks of positions: in place)
    (2, 32, 9, 9, 256, 3, 2, 1, 1, 1, False),
    (2, 96, 5, 5, 256, 3, 1, 1, 1, 1, False),
]
CASE_IDS = [
    f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}F{c[4]}-k{c[5]}-s{c[6]}-p{c[7]}-d{c[8]}-g{c[9]}-b{int(c[10])}".replace(
        " ", ""
    )
    for c in CASES
]


def _make(case, dtype, rng):
    N, C, H, W, F, k, s, p, d, g, has_bias = case
    kh, kw = pair(k)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if has_bias else None
    return x, w, b


def _msg(op, case, dtype, impl, algorithm):
    N, C, H, W, F, k, s, p, d, g, has_bias = case
    return (
        f"{op} [{getattr(impl, '__name__', impl)} algorithm={algorithm}] x=({N},{C},{H},{W}) "
        f"F={F} kernel={k} stride={s} padding={p} dilation={d} groups={g} "
        f"bias={has_bias} dtype={np.dtype(dtype).name}"
    )


def _torch_conv(torch, x, w, b, s, p, d, g, grad_out=None):
    """Forward (and optionally autograd backward) with torch, in the input dtype."""
    xt = torch.from_numpy(x.copy()).requires_grad_(grad_out is not None)
    wt = torch.from_numpy(w.copy()).requires_grad_(grad_out is not None)
    bt = None
    if b is not None:
        bt = torch.from_numpy(b.copy()).requires_grad_(grad_out is not None)
    pad = p if isinstance(p, str) else pair(p)
    y = torch.nn.functional.conv2d(xt, wt, bt, stride=pair(s), padding=pad, dilation=pair(d), groups=g)
    if grad_out is None:
        return y.detach().numpy()
    y.backward(torch.from_numpy(grad_out.copy()))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv2d_matches_torch(case, algorithm, impl, dtype, rng, torch, tol):
    N, C, H, W, F, k, s, p, d, g, _ = case
    x, w, b = _make(case, dtype, rng)
    got = impl.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g, algorithm=algorithm)
    want = _torch_conv(torch, x, w, b, s, p, d, g)
    msg = _msg("conv2d", case, dtype, impl, algorithm)
    assert got.shape == conv_out_shape(N, F, H, W, k, s, p, d) == want.shape, msg
    assert got.dtype == np.dtype(dtype), msg
    np.testing.assert_allclose(got, want, err_msg=msg, **tol(dtype, w[0].size))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv2d_backward_matches_torch(case, algorithm, impl, dtype, rng, torch, tol):
    N, C, H, W, F, k, s, p, d, g, _ = case
    x, w, _ = _make(case, dtype, rng)
    b = np.zeros(F, dtype=dtype)  # torch needs a bias to report grad_bias
    out_shape = conv_out_shape(N, F, H, W, k, s, p, d)
    grad_out = rng.standard_normal(out_shape).astype(dtype)
    _, gx_t, gw_t, gb_t = _torch_conv(torch, x, w, b, s, p, d, g, grad_out=grad_out)
    gx, gw, gb = impl.conv2d_backward(
        grad_out, x, w, stride=s, padding=p, dilation=d, groups=g, algorithm=algorithm
    )
    msg = _msg("conv2d_backward", case, dtype, impl, algorithm)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (F,), msg
    assert gx.dtype == gw.dtype == gb.dtype == np.dtype(dtype), msg
    n_pix = N * out_shape[2] * out_shape[3]
    kh, kw = w.shape[2:]
    np.testing.assert_allclose(gx, gx_t, err_msg="grad_x " + msg, **tol(dtype, (F // g) * kh * kw))
    np.testing.assert_allclose(gw, gw_t, err_msg="grad_weight " + msg, **tol(dtype, n_pix))
    np.testing.assert_allclose(gb, gb_t, err_msg="grad_bias " + msg, **tol(dtype, n_pix))


@pytest.mark.parametrize("case", CASES[:8], ids=CASE_IDS[:8])
def test_algorithms_agree(case, dtype, rng, tol):
    N, C, H, W, F, k, s, p, d, g, _ = case
    x, w, b = _make(case, dtype, rng)
    grad_out = rng.standard_normal(conv_out_shape(N, F, H, W, k, s, p, d)).astype(dtype)
    geo = dict(stride=s, padding=p, dilation=d, groups=g)
    ys = {a: fastconv.conv2d(x, w, b, algorithm=a, **geo) for a in ALGORITHMS}
    grads = {a: fastconv.conv2d_backward(grad_out, x, w, algorithm=a, **geo) for a in ALGORITHMS}
    for a in ("gemm", "direct"):
        msg = _msg("conv2d", case, dtype, "fastconv", f"{a} vs auto")
        np.testing.assert_allclose(ys[a], ys["auto"], err_msg=msg, **tol(dtype, w[0].size))
        n_pix = N * grad_out.shape[2] * grad_out.shape[3]
        for name, got, want, n in zip(
            ("grad_x", "grad_weight", "grad_bias"), grads[a], grads["auto"],
            (F * w.shape[2] * w.shape[3], n_pix, n_pix),
        ):
            np.testing.assert_allclose(got, want, err_msg=f"{name} {msg}", **tol(dtype, n))
    # "auto" picks by shape, reproducibly: the same call gives the same bits.
    np.testing.assert_array_equal(fastconv.conv2d(x, w, b, algorithm="auto", **geo), ys["auto"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_bias_none_equals_zero_bias(algorithm, impl, dtype, rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    a = impl.conv2d(x, w, None, padding=1, algorithm=algorithm)
    z = impl.conv2d(x, w, np.zeros(4, dtype=dtype), padding=1, algorithm=algorithm)
    np.testing.assert_array_equal(a, z)
    # bias is added per output channel
    b = np.arange(1, 5, dtype=dtype)
    y = impl.conv2d(x, w, b, padding=1, algorithm=algorithm)
    np.testing.assert_allclose(y - a, np.broadcast_to(b[None, :, None, None], y.shape),
                               rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)


# 3x3 at stride 1 (and, through phases, dilated 3x3 and kernels whose stride
# phases are 3x3): what algorithm="winograd" computes; with 16+ channels and
# filters per group "auto" picks it too for undilated 3x3.  Tile blocks run over
# the batch (image borders inside a block), odd output sizes leave partial
# tiles, F and C not multiples of the 16 lanes of the transforms.
WINOGRAD_CASES = [
    (2, 16, 9, 7, 16, 3, 1, 1, 1, 1, True),
    (3, 20, 14, 14, 21, 3, 1, 1, 1, 1, False),  # 49 tiles per image: blocks span images
    (1, 17, 5, 6, 19, 3, 1, 2, 1, 1, True),  # padding 2
    (2, 16, 8, 8, 16, 3, 1, 0, 1, 1, True),  # no padding
    (1, 16, 7, 9, 16, 3, 1, "same", 1, 1, False),
    (2, 32, 7, 8, 32, 3, 1, 1, 1, 2, True),  # groups
    (1, 130, 6, 5, 9, 3, 1, 1, 1, 1, True),  # C over one K block (128)
    (1, 16, 1, 1, 16, 3, 1, 1, 1, 1, True),  # 1x1 image, one partial tile
    (2, 24, 30, 31, 100, 3, 1, 1, 1, 1, True),  # filter groups, grad_weight chunks
    (1, 16, 6, 6, 16, 3, 1, 3, 1, 1, False),  # padding 3: grad_x on the GEMM
    (2, 16, 3, 40, 16, 3, 1, (0, 1), 1, 1, True),  # one row of tiles, wide
    # through phases: 11x11/4 and 5x5/2 as 3x3 filters on their stride phases,
    # dilated layers on their dilation's phases (one past the output: 6 of 9)
    (2, 3, 35, 39, 16, 11, 4, 2, 1, 1, True),
    (2, 8, 17, 16, 24, 5, 2, 2, 1, 1, False),
    (2, 16, 13, 12, 16, 3, 1, 2, 2, 1, True),
    (1, 32, 6, 7, 16, 3, 1, 9, 9, 2, True),
]


def _wtol(tol, dtype, n, want):
    """tol(dtype, n), widened for float32 Winograd to 2e-5 of the largest
    |value|: F(4x4)'s transforms round more than a change of summation order
    does (README, "Exactness": measured 5e-6 of the largest value on the
    suite's layers; a wrong or missing term is 1e-2 or more)."""
    t = tol(dtype, n)
    if np.dtype(dtype) == np.float32 and want.size:
        t["atol"] = max(t["atol"], 2e-5 * float(np.abs(want).max()))
    return t


@pytest.mark.parametrize("algorithm", ["winograd", "auto"])
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=[str(c[:5]) for c in WINOGRAD_CASES])
def test_conv2d_winograd_matches_torch(case, algorithm, dtype, rng, torch, tol):
    x, w, b = _make(case, dtype, rng)
    N, C, H, W, F, k, s, p, d, g, _ = case
    got = fastconv.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g, algorithm=algorithm)
    want = _torch_conv(torch, x, w, b, s, p, d, g)
    msg = _msg("conv2d", case, dtype, fastconv, algorithm)
    assert got.shape == want.shape and got.dtype == np.dtype(dtype), msg
    np.testing.assert_allclose(got, want, err_msg=msg, **_wtol(tol, dtype, w[0].size, want))
    gemm = fastconv.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g, algorithm="gemm")
    np.testing.assert_allclose(got, gemm, err_msg="vs gemm " + msg,
                               **_wtol(tol, dtype, w[0].size, gemm))
    # the backward pass: grad_x by Winograd on the flipped filters (paddings <= 2)
    grad_out = rng.standard_normal(want.shape).astype(dtype)
    grads = fastconv.conv2d_backward(grad_out, x, w, stride=s, padding=p, dilation=d,
                                     groups=g, algorithm=algorithm)
    b0 = np.zeros(F, dtype) if b is None else b
    _, *want_grads = _torch_conv(torch, x, w, b0, s, p, d, g, grad_out=grad_out)
    n_pix = max(1, N * want.shape[2] * want.shape[3])
    for name, a, r, n in zip(("grad_x", "grad_weight", "grad_bias"), grads, want_grads,
                             ((F // g) * 9, n_pix, n_pix)):
        assert a.shape == r.shape and a.dtype == np.dtype(dtype), f"{name} {msg}"
        np.testing.assert_allclose(a, r, err_msg=f"{name} {msg}", **_wtol(tol, dtype, n, r))


@pytest.mark.parametrize("algorithm", ["winograd2x2", "winograd4x4"])
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=[str(c[:5]) for c in WINOGRAD_CASES])
def test_conv2d_winograd_matches_reference(case, algorithm, dtype, rng, tol):
    # no torch: runs in the sanitizer build too (every transform's reads and writes)
    x, w, b = _make(case, dtype, rng)
    N, C, H, W, F, k, s, p, d, g, _ = case
    geo = dict(stride=s, padding=p, dilation=d, groups=g)
    got = fastconv.conv2d(x, w, b, algorithm=algorithm, **geo)
    want = fastconv.reference.conv2d(x, w, b, **geo)
    msg = _msg("conv2d", case, dtype, fastconv, algorithm)
    np.testing.assert_allclose(got, want, err_msg=msg, **_wtol(tol, dtype, w[0].size, want))
    grad_out = rng.standard_normal(want.shape).astype(dtype)
    got = fastconv.conv2d_backward(grad_out, x, w, algorithm=algorithm, **geo)
    want = fastconv.reference.conv2d_backward(grad_out, x, w, **geo)
    n_pix = max(1, N * grad_out.shape[2] * grad_out.shape[3])
    for name, a, r, n in zip(("grad_x", "grad_weight", "grad_bias"), got, want,
                             ((F // g) * 9, n_pix, n_pix)):
        np.testing.assert_allclose(a, r, err_msg=f"{name} {msg}", **_wtol(tol, dtype, n, r))


def test_select_algorithm_picks_winograd_for_3x3_stride_1():
    assert fastconv.select_algorithm((8, 64, 56, 56), (64, 64, 3, 3)) == "winograd"
    assert fastconv.select_algorithm((8, 64, 56, 56), (64, 64, 3, 3), stride=2) == "gemm"
    assert fastconv.select_algorithm((8, 64, 56, 56), (64, 64, 3, 3), dilation=2) == "winograd"
    assert fastconv.select_algorithm((8, 64, 56, 56), (64, 64, 3, 3), dilation=5) == "gemm"
    assert fastconv.select_algorithm((8, 8, 56, 56), (64, 8, 3, 3)) == "gemm"  # few channels
    assert fastconv.select_algorithm((8, 64, 56, 56), (64, 64, 5, 5)) == "gemm"
    assert fastconv.select_algorithm((8, 64, 56, 56), (64, 1, 3, 3), groups=64) == "direct"


@pytest.mark.parametrize("geo", [dict(stride=2), dict(kernel=5), dict(kernel=5, stride=2, dilation=2),
                                 dict(stride=2, dilation=2)])
def test_conv2d_winograd_rejects_other_geometries(geo):
    k = geo.pop("kernel", 3)
    x = np.zeros((1, 4, 9, 9), np.float32)
    w = np.zeros((4, 4, k, k), np.float32)
    with pytest.raises(ValueError, match=r"algorithm='winograd'.*stride phases are 3x3"):
        fastconv.conv2d(x, w, algorithm="winograd", **geo)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_conv2d_strided_without_phase_slab(dtype, tol):
    # 512 channels x 9 phases of 33 x 32 cells: a phase slab over 8 MiB, so
    # the GEMM tiles fall back to runs of output positions.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 512, 96, 96)).astype(dtype)
    w = rng.standard_normal((4, 512, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    got = fastconv.conv2d(x, w, b, stride=3, padding=1, algorithm="gemm")
    want = fastconv.reference.conv2d(x, w, b, stride=3, padding=1)
    assert got.shape == want.shape == (1, 4, 32, 32)
    np.testing.assert_allclose(got, want, **tol(dtype, w[0].size))


def test_conv2d_int_and_pair_geometry_equal(impl, rng):
    x = rng.standard_normal((1, 2, 9, 9))
    w = rng.standard_normal((3, 2, 3, 3))
    a = impl.conv2d(x, w, stride=2, padding=1, dilation=2)
    b = impl.conv2d(x, w, stride=(2, 2), padding=(1, 1), dilation=(2, 2))
    np.testing.assert_array_equal(a, b)


def test_conv2d_valid_equals_zero_padding(impl, rng):
    x = rng.standard_normal((1, 2, 7, 6))
    w = rng.standard_normal((3, 2, 3, 2))
    np.testing.assert_array_equal(impl.conv2d(x, w, padding="valid"), impl.conv2d(x, w, padding=0))


# --------------------------------------------------------------------------
# finite differences (float64, independent of torch)
# --------------------------------------------------------------------------

FD_CASES = [
    (2, 2, 5, 6, 3, 3, 1, 1, 1, 1, True),
    (1, 4, 7, 7, 4, (3, 2), 2, (1, 0), (1, 2), 2, True),
    (1, 2, 6, 6, 2, 4, 1, "same", 1, 1, True),
    (1, 3, 6, 5, 6, 3, 1, 1, 1, 3, True),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", FD_CASES, ids=[str(i) for i in range(len(FD_CASES))])
def test_conv2d_backward_central_differences(case, algorithm, impl, rng):
    N, C, H, W, F, k, s, p, d, g, _ = case
    x, w, b = _make(case, np.float64, rng)
    geo = dict(stride=s, padding=p, dilation=d, groups=g, algorithm=algorithm)
    grad_out = rng.standard_normal(conv_out_shape(N, F, H, W, k, s, p, d))

    def loss(x_, w_, b_):  # random projection <grad_out, y>
        return float(np.sum(grad_out * impl.conv2d(x_, w_, b_, **geo)))

    gx, gw, gb = impl.conv2d_backward(grad_out, x, w, **geo)
    h = 1e-4  # the loss is linear in each argument, so only rounding limits accuracy
    msg = _msg("conv2d_backward(finite diff)", case, np.float64, impl, algorithm)
    for name, arr, grad in (("x", x, gx), ("weight", w, gw), ("bias", b, gb)):
        flat_idx = rng.choice(arr.size, size=min(6, arr.size), replace=False)
        for fi in flat_idx:
            idx = np.unravel_index(fi, arr.shape)
            numeric = central_difference(lambda: loss(x, w, b), arr, idx, h)
            np.testing.assert_allclose(
                grad[idx], numeric, rtol=1e-6, atol=1e-7, err_msg=f"d/d{name}{idx} {msg}"
            )


# --------------------------------------------------------------------------
# hypothesis: compiled vs reference, forward and backward
# --------------------------------------------------------------------------


@st.composite
def conv_geometries(draw):
    groups = draw(st.integers(1, 3))
    C = groups * draw(st.integers(1, 3))
    F = groups * draw(st.integers(1, 3))
    N = draw(st.integers(0, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    mode = draw(st.sampled_from(["num", "num", "num", "same", "valid"]))
    if mode == "same":
        sh = sw = 1
        s = draw(st.sampled_from([1, (1, 1)]))
        ph = pw = 0
        p = "same"
    else:
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        s = maybe_int(draw, sh, sw)
        ph, pw = (0, 0) if mode == "valid" else (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        p = "valid" if mode == "valid" else maybe_int(draw, ph, pw)
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, 5))
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, 5))
    shape = conv_out_shape(N, F, H, W, (kh, kw), (sh, sw), p, (dh, dw))
    assume(shape[2] >= 1 and shape[3] >= 1)
    return dict(
        N=N, C=C, H=H, W=W, F=F, kh=kh, kw=kw, s=s, p=p, d=maybe_int(draw, dh, dw),
        groups=groups, out_shape=shape,
        bias=draw(st.booleans()),
        algorithm=draw(st.sampled_from(ALGORITHMS)),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=60, deadline=None)
@given(g=conv_geometries())
def test_conv2d_compiled_vs_reference(g, tol):
    rng = np.random.default_rng(g["seed"])
    dt = g["dtype"]
    x = rng.standard_normal((g["N"], g["C"], g["H"], g["W"])).astype(dt)
    w = rng.standard_normal((g["F"], g["C"] // g["groups"], g["kh"], g["kw"])).astype(dt)
    b = rng.standard_normal(g["F"]).astype(dt) if g["bias"] else None
    geo = dict(stride=g["s"], padding=g["p"], dilation=g["d"], groups=g["groups"])
    msg = (
        f"x={x.shape} weight={w.shape} bias={g['bias']} stride={g['s']} padding={g['p']} "
        f"dilation={g['d']} groups={g['groups']} algorithm={g['algorithm']} dtype={np.dtype(dt).name}"
    )
    fast = fastconv.conv2d(x, w, b, algorithm=g["algorithm"], **geo)
    slow = fastconv.reference.conv2d(x, w, b, **geo)
    assert fast.shape == slow.shape == g["out_shape"], "conv2d " + msg
    assert fast.dtype == slow.dtype == np.dtype(dt), "conv2d " + msg
    np.testing.assert_allclose(fast, slow, err_msg="conv2d " + msg, **tol(dt, w[0].size))

    grad_out = rng.standard_normal(g["out_shape"]).astype(dt)
    fast = fastconv.conv2d_backward(grad_out, x, w, algorithm=g["algorithm"], **geo)
    slow = fastconv.reference.conv2d_backward(grad_out, x, w, **geo)
    n_pix = max(1, g["N"] * g["out_shape"][2] * g["out_shape"][3])
    terms = ((g["F"] // g["groups"]) * g["kh"] * g["kw"], n_pix, n_pix)
    for name, a, r, want_shape, n in zip(
        ("grad_x", "grad_weight", "grad_bias"), fast, slow, (x.shape, w.shape, (g["F"],)), terms
    ):
        assert a.shape == r.shape == want_shape, f"{name} {msg}"
        assert a.dtype == r.dtype == np.dtype(dt), f"{name} {msg}"
        np.testing.assert_allclose(a, r, err_msg=f"{name} {msg}", **tol(dt, n))


# --------------------------------------------------------------------------
# worked examples from the cs231n notes (convolutional-networks)
# --------------------------------------------------------------------------


def _explicit_conv_element(x, w, b, n, f, i, j, stride, pad):
    """One output element by a plain Python loop with zero padding by bounds test."""
    _, C, H, W = x.shape
    _, _, kh, kw = w.shape
    acc = 0.0
    for c in range(C):
        for a in range(kh):
            for q in range(kw):
                r, t = i * stride - pad + a, j * stride - pad + q
                if 0 <= r < H and 0 <= t < W:
                    acc += float(x[n, c, r, t]) * float(w[f, c, a, q])
    return acc + (0.0 if b is None else float(b[f]))


def test_cs231n_255_input_stride2_pad1(impl, rng, tol):
    # (W - F + 2P)/S + 1 = (255 - 3 + 2)/2 + 1 = 128  (not 129)
    W_in, K, S, P, F = 255, 3, 2, 1, 16
    expected = (W_in - K + 2 * P) // S + 1
    assert expected == 128
    x = rng.standard_normal((1, 3, W_in, W_in)).astype(np.float32)
    w = rng.standard_normal((F, 3, K, K)).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32)
    y = impl.conv2d(x, w, b, stride=S, padding=P)
    assert y.shape == (1, F, expected, expected)
    for f, i, j in [(0, 0, 0), (5, 127, 127), (15, 64, 3), (9, 0, 127)]:
        want = _explicit_conv_element(x, w, b, 0, f, i, j, S, P)
        np.testing.assert_allclose(y[0, f, i, j], want, err_msg=f"y[0,{f},{i},{j}]", **tol(np.float32, 27))


def test_cs231n_alexnet_conv1(impl, rng, tol):
    # 227x227x3, 96 filters 11x11, stride 4, pad 0 -> (227 - 11)/4 + 1 = 55
    x = rng.standard_normal((1, 3, 227, 227)).astype(np.float32)
    w = rng.standard_normal((96, 3, 11, 11)).astype(np.float32)
    b = rng.standard_normal(96).astype(np.float32)
    expected = (227 - 11 + 0) // 4 + 1
    assert expected == 55
    y = impl.conv2d(x, w, b, stride=4, padding=0)
    assert y.shape == (1, 96, 55, 55)
    for f, i, j in [(0, 0, 0), (95, 54, 54), (40, 17, 33)]:
        want = _explicit_conv_element(x, w, b, 0, f, i, j, 4, 0)
        np.testing.assert_allclose(y[0, f, i, j], want, err_msg=f"y[0,{f},{i},{j}]", **tol(np.float32, 363))
    # parameters: (k*k*c_in + 1) * c_out = (11*11*3 + 1) * 96 = 34,944
    assert w.size + b.size == (11 * 11 * 3 + 1) * 96 == 34944


def _full_explicit(x, w, b, stride, pad):
    N, _, H, W = x.shape
    F, _, kh, kw = w.shape
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    out = np.empty((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, f, i, j] = _explicit_conv_element(x, w, b, n, f, i, j, stride, pad)
    return out


@pytest.mark.parametrize(
    "size, pad, expected",
    [
        (5, 1, 3),  # the notes' demo: 5x5x3 input, padded by 1 to 7x7x3, stride 2 -> 3x3x2
        (7, 1, 4),  # a 7x7x3 input with pad 1 stride 2: (7 - 3 + 2)/2 + 1 = 4, not 3
        (7, 0, 3),  # a 7x7x3 (already padded) input, pad 0 stride 2 -> 3x3x2
    ],
)
def test_cs231n_demo_small_integers(size, pad, expected, impl, dtype, rng):
    assert (size - 3 + 2 * pad) // 2 + 1 == expected
    # Small integers as in the notes' demo: every product and sum is exact in float32.
    x = rng.integers(0, 3, size=(1, 3, size, size)).astype(dtype)
    w = rng.integers(-1, 2, size=(2, 3, 3, 3)).astype(dtype)
    b = np.array([1, 0], dtype=dtype)
    y = impl.conv2d(x, w, b, stride=2, padding=pad)
    assert y.shape == (1, 2, expected, expected)
    np.testing.assert_array_equal(y, _full_explicit(x, w, b, 2, pad),
                                  err_msg=f"cs231n demo size={size} pad={pad}")


# --------------------------------------------------------------------------
# larger shapes, batch 1 and N = 0
# --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_larger_shape_batch1_and_empty_batch(algorithm, dtype, rng, torch, tol):
    x = rng.standard_normal((3, 16, 28, 28)).astype(dtype)
    w = rng.standard_normal((32, 16, 3, 3)).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    geo = dict(stride=1, padding=1, algorithm=algorithm)
    msg = f"conv2d x={x.shape} w={w.shape} padding=1 algorithm={algorithm} dtype={np.dtype(dtype).name}"
    y = fastconv.conv2d(x, w, b, **geo)
    want = _torch_conv(torch, x, w, b, 1, 1, 1, 1)
    np.testing.assert_allclose(y, want, err_msg=msg, **tol(dtype, 144))
    y1 = fastconv.conv2d(x[:1], w, b, **geo)
    assert y1.shape == (1, 32, 28, 28)
    np.testing.assert_allclose(y1, want[:1], err_msg="batch 1 " + msg, **tol(dtype, 144))

    y0 = fastconv.conv2d(x[:0], w, b, **geo)
    assert y0.shape == (0, 32, 28, 28) and y0.dtype == np.dtype(dtype)
    g0 = np.zeros((0, 32, 28, 28), dtype=dtype)
    gx, gw, gb = fastconv.conv2d_backward(g0, x[:0], w, stride=1, padding=1, algorithm=algorithm)
    assert gx.shape == (0, 16, 28, 28) and gw.shape == w.shape and gb.shape == (32,)
    assert gx.dtype == gw.dtype == gb.dtype == np.dtype(dtype)
    # an empty batch contributes nothing to the parameter gradients
    np.testing.assert_array_equal(gw, np.zeros_like(w))
    np.testing.assert_array_equal(gb, np.zeros_like(b))


# --------------------------------------------------------------------------
# direct kernel: unit column stride runs on zero-padded row copies with
# vector blocks of output columns (src_c/conv2d.tmpl.h)
# --------------------------------------------------------------------------

# (N, C, H, W, F, kernel, stride, padding, dilation, groups, bias)
DIRECT_CASES = [
    (2, 4, 9, 13, 4, 3, 1, 1, 1, 4, True),  # width not a multiple of 8 (or 4)
    (1, 3, 7, 1, 3, 3, 1, 1, 1, 3, True),  # width 1
    (1, 2, 6, 2, 4, (1, 5), 1, (0, 3), 1, 2, False),  # kernel wider than the image
    (2, 3, 12, 37, 3, 3, 1, 2, 2, 3, True),  # dilation 2, 4 + 1 vectors per row
    (1, 4, 11, 29, 8, 5, 1, 2, 1, 4, True),  # 5x5, channel multiplier 2
    (2, 3, 5, 33, 3, (1, 3), 1, (0, 1), 1, 3, False),  # 1x3
    (1, 2, 9, 41, 2, 3, (2, 1), (1, 4), (1, 3), 2, True),  # row stride 2, padding > span
    (1, 3, 8, 19, 3, 3, 1, (2, 3), 1, 3, True),  # padding > (k-1)*d: grad_y cropped
    (1, 6, 7, 23, 4, 3, 1, 1, 1, 2, True),  # 3 channels per group
]
DIRECT_IDS = [str(c[1:9]).replace(" ", "") for c in DIRECT_CASES]


@pytest.mark.parametrize("case", DIRECT_CASES, ids=DIRECT_IDS)
def test_conv2d_direct_stencil_matches_torch(case, dtype, rng, torch, tol):
    N, C, H, W, F, k, s, p, d, g, _ = case
    x, w, b = _make(case, dtype, rng)
    geo = dict(stride=s, padding=p, dilation=d, groups=g, algorithm="direct")
    msg = _msg("conv2d", case, dtype, fastconv, "direct")
    y = fastconv.conv2d(x, w, b, **geo)
    gy = rng.standard_normal(y.shape).astype(dtype)
    # torch's helper needs a bias for the backward pass; zeros change nothing
    tb = b if b is not None else np.zeros(F, dtype=dtype)
    want = _torch_conv(torch, x, w, tb, s, p, d, g, grad_out=gy)
    np.testing.assert_allclose(y, want[0], err_msg=msg, **tol(dtype, w[0].size))
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, stride=s, padding=p, dilation=d,
                                          groups=g, algorithm="direct")
    n_pix = N * y.shape[2] * y.shape[3]
    np.testing.assert_allclose(gx, want[1], err_msg="grad_x " + msg,
                               **tol(dtype, (F // g) * w[0, 0].size))
    np.testing.assert_allclose(gw, want[2], err_msg="grad_weight " + msg, **tol(dtype, n_pix))
    np.testing.assert_allclose(gb, want[3], err_msg="grad_bias " + msg, **tol(dtype, n_pix))


@pytest.mark.parametrize("case", DIRECT_CASES, ids=DIRECT_IDS)
def test_conv2d_direct_stencil_matches_reference(case, dtype, rng, tol):
    # no torch: the sanitizer job runs this one
    N, C, H, W, F, k, s, p, d, g, _ = case
    x, w, b = _make(case, dtype, rng)
    geo = dict(stride=s, padding=p, dilation=d, groups=g)
    y = fastconv.conv2d(x, w, b, algorithm="direct", **geo)
    np.testing.assert_allclose(y, fastconv.reference.conv2d(x, w, b, **geo), **tol(dtype, w[0].size))
    gy = rng.standard_normal(y.shape).astype(dtype)
    got = fastconv.conv2d_backward(gy, x, w, algorithm="direct", **geo)
    want = fastconv.reference.conv2d_backward(gy, x, w, **geo)
    n_pix = N * y.shape[2] * y.shape[3]
    for name, a, r, n in zip(("grad_x", "grad_weight"), got, want,
                             ((F // g) * w[0, 0].size, n_pix)):
        np.testing.assert_allclose(a, r, err_msg=f"{name} {case}", **tol(dtype, n))


@pytest.mark.parametrize("geo", [
    dict(shape=(20, 16, 12, 12), F=24, k=3, stride=2, padding=1),  # phases, side by side
    dict(shape=(4, 64, 14, 14), F=256, k=3, stride=1, padding=1),  # grad_w column blocks
    dict(shape=(16, 3, 32, 32), F=16, k=3, stride=1, padding=1),  # grad_w chunks
], ids=["strided", "wide", "first"])
def test_conv2d_gemm_bitwise_at_any_thread_count(geo, dtype, rng, restore_threads):
    # large enough (N*F*L*K above MIN_PARALLEL_WORK) to run on 2 threads
    x = rng.standard_normal(geo["shape"]).astype(dtype)
    w = rng.standard_normal((geo["F"], x.shape[1], geo["k"], geo["k"])).astype(dtype)
    b = rng.standard_normal(geo["F"]).astype(dtype)
    kw = dict(stride=geo["stride"], padding=geo["padding"], algorithm="gemm")
    out = {}
    for n in (1, 2):
        fastconv.set_num_threads(n)
        y = fastconv.conv2d(x, w, b, **kw)
        gy = np.cos(y)
        out[n] = (y, *fastconv.conv2d_backward(gy, x, w, **kw))
    for a, c in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("s", [1, 2])
def test_conv2d_depthwise_bitwise_at_any_thread_count(s, dtype, rng, restore_threads):
    # large enough (N*F*L*K above MIN_PARALLEL_WORK) to run on 2 threads
    x = rng.standard_normal((8, 32, 40, 37)).astype(dtype)
    w = rng.standard_normal((32, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    out = {}
    for n in (1, 2):
        fastconv.set_num_threads(n)
        y = fastconv.conv2d(x, w, b, stride=s, padding=1, groups=32)
        gy = np.cos(y)
        out[n] = (y, *fastconv.conv2d_backward(gy, x, w, stride=s, padding=1, groups=32))
    for a, c in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, c)


# --------------------------------------------------------------------------
# issue 12: a stride of 2**31 or more once overflowed the GEMM's phase-slab
# size (C*sh*sw*rows*Wv) and the kernel wrote past its workspace (SIGSEGV);
# 2**31 - 1 gave a misleading MemoryError.  Run in a subprocess: a crash
# fails the test, not pytest.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [2**31, 2**31 - 1, 2**32, 2**33, 2**62 - 1,
                                    (2**31, 1), (1, 2**31), (3, 2**40)])
def test_huge_stride_gives_the_strided_windows(isolated_ok, stride):
    # Only window (0, 0) (and, with a small stride, the windows it steps to)
    # fits: y is x sampled at the stride, times the 1x1 weight; grad_x puts
    # grad_out back at those cells.  Every algorithm, both dtypes.
    out = isolated_ok(f"""
        import numpy as np, fastconv as fc
        stride = {stride!r}
        sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
        for dtype in (np.float32, np.float64):
            x = np.arange(1, 1 + 2 * 3 * 7 * 6, dtype=dtype).reshape(2, 3, 7, 6)
            w = np.arange(1, 1 + 4 * 3, dtype=dtype).reshape(4, 3, 1, 1)
            want = np.einsum("nchw,fc->nfhw", x[:, :, ::sh, ::sw], w[:, :, 0, 0])
            for alg in ("auto", "gemm", "direct"):
                y = fc.conv2d(x, w, stride=stride, algorithm=alg)
                assert y.shape == want.shape and np.array_equal(y, want), alg
                gx, gw, gb = fc.conv2d_backward(np.ones_like(y), x, w,
                                                stride=stride, algorithm=alg)
                want_gx = np.zeros_like(x)
                want_gx[:, :, ::sh, ::sw] = w[:, :, 0, 0].sum(0)[None, :, None, None]
                assert np.array_equal(gx, want_gx), alg
            wide = np.ones((2, 3, 3, 3), dtype)          # a 3x3 kernel too
            y = fc.conv2d(x, wide, stride=stride, padding=1)
            xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
            want = np.stack([[xp[:, :, i:i + 3, j:j + 3].sum(axis=(1, 2, 3))
                              for j in range(0, 6, sw)] for i in range(0, 7, sh)])
            assert np.array_equal(y[:, 0], want.transpose(2, 0, 1))
        print("ok")
        """)
    assert out.strip() == "ok"


@pytest.mark.parametrize("stride", [2**62, 2**63, 2**64, (1, 2**62)])
def test_stride_beyond_the_index_range_is_a_value_error(isolated_ok, stride):
    # 2**62 and 2**63 crashed; 2**63 raised OverflowError.
    out = isolated_ok(f"""
        import numpy as np, fastconv as fc
        x = np.ones((1, 1, 4, 4), np.float32)
        for call in (lambda: fc.conv2d(x, np.ones((1, 1, 1, 1), np.float32),
                                       stride={stride!r}),
                     lambda: fc.conv2d_backward(np.ones((1, 1, 1, 1), np.float32), x,
                                                np.ones((1, 1, 1, 1), np.float32),
                                                stride={stride!r}),
                     lambda: fc.im2col(x, 1, stride={stride!r})):
            try:
                call()
            except ValueError as e:
                assert "stride" in str(e) and "2**62" in str(e), e
            else:
                raise AssertionError("no ValueError")
        print("ok")
        """)
    assert out.strip() == "ok"


def test_gemm_workspace_of_a_huge_dilation_is_not_a_slab(isolated_ok):
    # Stride 1 with a dilation of 2**40 and padding to match: the slab of
    # the banded tiles would span 2**40 rows (its size once wrapped too);
    # runs of output positions compute it in the time of the output.
    out = isolated_ok("""
        import numpy as np, fastconv as fc
        d = 2**40
        x = np.arange(1, 1 + 3 * 5 * 4, dtype=np.float32).reshape(1, 3, 5, 4)
        w = np.ones((2, 3, 2, 1), np.float32)
        geo = dict(padding=(d // 2, 0), dilation=(d, 1), algorithm="gemm")
        y = fc.conv2d(x, w, **geo)
        # output row oh reads rows oh - d/2 and oh + d/2 of x: padding only
        assert y.shape == (1, 2, 5, 4) and not y.any()
        gx, gw, gb = fc.conv2d_backward(np.ones_like(y), x, w, **geo)
        assert not gx.any() and not gw.any() and gb.tolist() == [20.0, 20.0]
        print("ok")
        """, timeout=60)
    assert out.strip() == "ok"


@pytest.mark.parametrize("algorithm", ["direct", "auto", "gemm"])
def test_huge_dilation_costs_the_output_not_the_dilation(isolated_ok, algorithm):
    # Found by the fuzz run: the direct kernel copies rows zero-padded to
    # Wo + (kw-1)*dw columns; at dilation 2**23 that took 1.6 GB and seconds
    # (a MemoryError under this 1 GiB limit).  Such layers run on the GEMM.
    out = isolated_ok(f"""
        import os, resource
        if "asan" not in os.environ.get("LD_PRELOAD", ""):   # ASan maps its own
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        import numpy as np, fastconv as fc
        d = 2**23        # only the middle tap of each 3x3 window reads x
        rng = np.random.default_rng(0)
        x = rng.integers(-3, 4, (2, 4, 6, 6)).astype(np.float64)
        w = rng.integers(-3, 4, (6, 2, 3, 3)).astype(np.float64)
        geo = dict(padding=d, dilation=d, groups=2, algorithm="{algorithm}")
        y = fc.conv2d(x, w, **geo)
        xg = x.reshape(2, 2, 2, 6, 6)
        want = np.einsum("ngchw,gfc->ngfhw", xg, w[:, :, 1, 1].reshape(2, 3, 2))
        assert np.array_equal(y, want.reshape(2, 6, 6, 6))
        gx, gw, gb = fc.conv2d_backward(np.ones_like(y), x, w, **geo)
        want_gw = np.zeros_like(w)
        want_gw[:, :, 1, 1] = np.repeat(xg.sum(axis=(0, 3, 4)), 3, axis=0)
        assert np.array_equal(gw, want_gw)
        print("ok")
        """, timeout=120)
    assert out.strip() == "ok"


@pytest.mark.parametrize("geo", [
    dict(stride=2**40, padding=2, dilation=2),          # used phases of a huge stride
    dict(stride=(3, 2**61), padding=3, dilation=3),
    dict(stride=(2, 1), padding=(2**40, 1), dilation=(2**40, 1)),   # gw slabs
    dict(stride=(2, 2**33), padding=1),                 # grad_x phase by phase
])
def test_gemm_phases_of_huge_strides_and_dilations(isolated_ok, geo):
    # The GEMM's phase slabs and grad_x phases once looped over all sh x sw
    # phases (a hang at a stride of 2**40) and sized grad_w's column-block
    # slabs by the dilation's reach: they go by the used phases and the
    # slabs that fit.  32 channels: the phase and column-block paths.
    out = isolated_ok(f"""
        import numpy as np, fastconv as fc
        rng = np.random.default_rng(0)
        x = rng.integers(-3, 4, (3, 32, 9, 8)).astype(np.float64)
        w = rng.integers(-3, 4, (21, 32, 3, 3)).astype(np.float64)
        geo = {geo!r}
        y = fc.conv2d(x, w, algorithm="gemm", **geo)
        assert np.array_equal(y, fc.conv2d(x, w, algorithm="direct", **geo))
        gy = rng.integers(-3, 4, y.shape).astype(np.float64)
        got = fc.conv2d_backward(gy, x, w, algorithm="gemm", **geo)
        want = fc.conv2d_backward(gy, x, w, algorithm="direct", **geo)
        for a, b in zip(got, want):
            assert np.array_equal(a, b)
        print("ok")
        """, timeout=60)
    assert out.strip() == "ok"
