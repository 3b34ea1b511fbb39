"""Winograd F(2x2, 3x3) and F(4x4, 3x3): the transforms rebuilt from their
interpolation points in exact rational arithmetic, the accuracy bounds of the
README on the suite's 3x3 layers (forward, grad_x, grad_weight), the
tile rule, strided and dilated layers split into their phases (and the
phases' merge), and bitwise results at any thread count."""

import math
from fractions import Fraction

import numpy as np
import pytest

import fastconv
from fastconv import _convplan, _ext, reference
from fastconv._convplan import WINOGRAD_TILES
from fastconv._validation import ConvGeometry

# The interpolation points (infinity is the last point of both).
POINTS = {2: (0, 1, -1), 4: (0, 1, -1, Fraction(1, 2), -2)}


def toom_cook(points, m, r=3):
    """(A^T, G, B^T) of Winograd F(m, r) from n - 1 finite points and infinity
    (n = m + r - 1), as Fractions: the polynomial product of a filter
    (degree r - 1) and a signal (degree m - 1) evaluated at the points (rows
    of G and of A), multiplied, and interpolated back (L = V^-1); the
    correlation y = A^T [(G g) * (B^T d)] is its transpose, with B^T = L^T.
    Each row of B^T is scaled to coprime integers and G's row by the
    inverse, which keeps their product."""
    n = m + r - 1
    pts = [Fraction(p) for p in points]
    assert len(pts) == n - 1

    def vandermonde(k):                 # n x k; the last row is infinity
        return [[p ** j for j in range(k)] for p in pts] + [[Fraction(0)] * (k - 1) + [Fraction(1)]]

    V = vandermonde(n)
    aug = [row + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(V)]
    for col in range(n):                # Gauss-Jordan: L = V^-1
        piv = next(i for i in range(col, n) if aug[i][col] != 0)
        aug[col], aug[piv] = aug[piv], aug[col]
        aug[col] = [v / aug[col][col] for v in aug[col]]
        for i in range(n):
            if i != col and aug[i][col] != 0:
                f = aug[i][col]
                aug[i] = [a - f * b for a, b in zip(aug[i], aug[col])]
    L = [row[n:] for row in aug]
    Em, G = vandermonde(m), vandermonde(r)
    AT = [[Em[i][j] for i in range(n)] for j in range(m)]
    BT = [[L[j][i] for j in range(n)] for i in range(n)]
    for i in range(n):
        nz = [v for v in BT[i] if v != 0]
        s = Fraction(math.lcm(*(v.denominator for v in nz)), math.gcd(*(abs(v.numerator) for v in nz)))
        BT[i] = [v * s for v in BT[i]]
        G[i] = [v / s for v in G[i]]
    return AT, G, BT


def _correlate(g, d, m):
    return [sum(g[k] * d[i + k] for k in range(len(g))) for i in range(m)]


@pytest.mark.parametrize("m", [2, 4])
def test_toom_cook_matrices_compute_the_correlation_exactly(m):
    AT, G, BT = toom_cook(POINTS[m], m)
    n = m + 2
    rng = np.random.default_rng(m)
    for _ in range(20):
        g = [Fraction(int(v)) for v in rng.integers(-9, 10, 3)]
        d = [Fraction(int(v)) for v in rng.integers(-9, 10, n)]
        u = [sum(G[i][k] * g[k] for k in range(3)) for i in range(n)]
        v = [sum(BT[i][k] * d[k] for k in range(n)) for i in range(n)]
        y = [sum(AT[i][k] * u[k] * v[k] for k in range(n)) for i in range(m)]
        assert y == _correlate(g, d, m)


def _diagonal_scale(got, want, axis):
    """s with got = s * want along rows (axis 0) or columns (axis 1), or None."""
    got = [[Fraction(v) for v in row] for row in got]
    if axis == 1:
        got, want = list(map(list, zip(*got))), list(map(list, zip(*want)))
    scales = []
    for g_row, w_row in zip(got, want):
        ratios = {gv / wv for gv, wv in zip(g_row, w_row) if wv != 0}
        if len(ratios) != 1 or any(gv != 0 for gv, wv in zip(g_row, w_row) if wv == 0):
            return None
        scales.append(ratios.pop())
    return scales


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("m", [2, 4])
def test_kernel_transforms_are_the_derived_ones(m, dtype):
    """The C transforms (probed on unit vectors) are the Toom-Cook matrices
    up to diagonal scalings whose product is 1 (sign flips for F(2x2)):
    B^T and A^T exactly (small integers and powers of two), G to double
    rounding (1/6, 1/15, ...); grad_weight's A is A^T transposed."""
    AT, G, BT = toom_cook(POINTS[m], m)
    bt, g, at, a = _ext.wino_matrices(dtype, m)
    s_b = _diagonal_scale(bt, BT, 0)
    s_a = _diagonal_scale(at, AT, 1)
    assert s_b is not None and s_a is not None, (bt, at)
    # G carries the inverse of the other two scalings, rounded to double
    want_g = np.array([[float(v / (s_a[i] * s_b[i])) for v in row] for i, row in enumerate(G)])
    np.testing.assert_allclose(g, want_g, rtol=4e-16, atol=0)
    assert all(abs(s) in (1, 2, 4, Fraction(1, 2), Fraction(1, 4)) for s in s_a + s_b)
    if m == 4:                          # F(4x4): exactly the canonical matrices
        assert s_a == s_b == [1] * (m + 2)
    np.testing.assert_array_equal(a, at.T)


# ---------------------------------------------------------------------------
# accuracy on the suite's 3x3 stride-1 layers (README, "Exactness")
# ---------------------------------------------------------------------------

# (N, C, H, W, F): ResNet-20's three layers, then the suite's cifar-mid,
# resnet-56, resnet-28, resnet-14, batch-1, with smaller batches.
SUITE = {
    "r20-16": (2, 16, 32, 32, 16), "r20-32": (2, 32, 16, 16, 32),
    "r20-64": (4, 64, 8, 8, 64), "cifar-mid": (2, 32, 16, 16, 64),
    "resnet-56": (1, 64, 56, 56, 64), "resnet-28": (1, 128, 28, 28, 128),
    "resnet-14": (2, 256, 14, 14, 256), "batch-1": (1, 64, 56, 56, 64),
}
BOUND = {"winograd2x2": 1e-4, "winograd4x4": 5e-4}


def _taps(a, p, H, W):
    """The nine shifted (H, W) windows of a zero-padded by p, as float64."""
    ap = np.pad(a.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    return [[ap[:, :, i:i + H, j:j + W] for j in range(3)] for i in range(3)]


def _direct64(x, w, gy):
    """y, grad_x, grad_weight of the padding-1 layer by the float64 direct sum."""
    w64 = w.astype(np.float64)
    H, W = x.shape[2:]
    xs, gs = _taps(x, 1, H, W), _taps(gy, 1, H, W)
    y = sum(np.einsum("fc,nchw->nfhw", w64[:, :, i, j], xs[i][j], optimize=True)
            for i in range(3) for j in range(3))
    gx = sum(np.einsum("fc,nfhw->nchw", w64[:, :, 2 - i, 2 - j], gs[i][j], optimize=True)
             for i in range(3) for j in range(3))
    gw = np.stack([np.stack([np.einsum("nfhw,nchw->fc", gy.astype(np.float64), xs[i][j],
                                       optimize=True) for j in range(3)], -1)
                   for i in range(3)], -2)
    return y, gx, gw


@pytest.fixture(scope="module")
def suite_data():
    cache = {}

    def get(name, dtype):
        if (name, dtype) not in cache:
            N, C, H, W, F = SUITE[name]
            rng = np.random.default_rng(sum(map(ord, name)))
            x = rng.standard_normal((N, C, H, W)).astype(dtype)
            w = (rng.standard_normal((F, C, 3, 3)) * math.sqrt(2 / (9 * C))).astype(dtype)
            gy = rng.standard_normal((N, F, H, W)).astype(dtype)
            cache[name, dtype] = (x, w, gy, _direct64(x, w, gy))
        return cache[name, dtype]
    return get


def _rel(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize("algorithm", sorted(BOUND))
@pytest.mark.parametrize("name", list(SUITE))
def test_float32_accuracy_on_the_suite(name, algorithm, suite_data):
    x, w, gy, (y64, gx64, gw64) = suite_data(name, np.float32)
    y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, padding=1, algorithm=algorithm)
    errors = {"y": _rel(y, y64), "grad_x": _rel(gx, gx64), "grad_weight": _rel(gw, gw64),
              "grad_bias": _rel(gb, gy.astype(np.float64).sum(axis=(0, 2, 3)))}
    assert max(errors.values()) <= BOUND[algorithm], f"{name} {algorithm}: {errors}"


@pytest.mark.parametrize("algorithm", sorted(BOUND))
@pytest.mark.parametrize("name", ["r20-16", "r20-64", "cifar-mid"])
def test_float64_accuracy(name, algorithm, suite_data):
    x, w, gy, (y64, gx64, gw64) = suite_data(name, np.float64)
    y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
    gx, gw, gb = fastconv.conv2d_backward(gy, x, w, padding=1, algorithm=algorithm)
    errors = {"y": _rel(y, y64), "grad_x": _rel(gx, gx64), "grad_weight": _rel(gw, gw64),
              "grad_bias": _rel(gb, gy.sum(axis=(0, 2, 3)))}
    assert max(errors.values()) <= 1e-12, f"{name} {algorithm}: {errors}"


# ---------------------------------------------------------------------------
# the rule, the explicit tiles
# ---------------------------------------------------------------------------

def test_tile_rule_counts_multiplications():
    # F(4x4): 36 per 16 outputs; F(2x2): 16 per 4, so 4x4 unless its tiles
    # overhang the output far enough; ties (5x5) go to F(2x2)
    assert _convplan.winograd_tile(32, 32) == 4
    assert _convplan.winograd_tile(14, 14) == 4      # 4 tiles of 4 cover 16
    assert _convplan.winograd_tile(5, 5) == 2        # 36*4 == 16*9
    assert _convplan.winograd_tile(2, 2) == 2
    assert _convplan.winograd_tile(1, 1) == 2
    assert _convplan.winograd_tile(3, 3) == 4        # 36*1 < 16*4
    for Ho, Wo in [(6, 7), (10, 13), (56, 56), (9, 1)]:
        cost = {m: (m + 2) ** 2 * -(-Ho // m) * -(-Wo // m) for m in (2, 4)}
        assert _convplan.winograd_tile(Ho, Wo) == (4 if cost[4] < cost[2] else 2)


@pytest.mark.parametrize("algorithm, tile", [("winograd", 4), ("winograd4x4", 4),
                                             ("winograd2x2", 2), ("auto", 4)])
def test_plan_tile(algorithm, tile):
    plan = fastconv.conv_plan((64, 16, 32, 32), (16, 16, 3, 3), np.float32, padding=1,
                              algorithm=algorithm)
    assert (plan.algorithm, plan.tile) == ("winograd", tile)
    small = fastconv.conv_plan((1, 16, 5, 5), (16, 16, 3, 3), np.float32, padding=1,
                               algorithm=algorithm)
    assert small.algorithm == ("gemm" if algorithm == "auto" else "winograd")


@pytest.mark.parametrize("x_shape, weight_shape, groups, pays", [
    ((1, 32, 32, 32), (32, 32, 3, 3), 1, True),       # 32 channels, N*H*W = 1024
    ((1, 32, 31, 32), (32, 32, 3, 3), 1, False),      # 992 positions
    ((1, 48, 16, 16), (40, 48, 3, 3), 1, False),      # 40 filters: 4096 needed
    ((4, 48, 32, 32), (40, 48, 3, 3), 1, True),
    ((16, 16, 32, 32), (16, 16, 3, 3), 1, True),      # 16 channels: 16384
    ((8, 16, 32, 32), (16, 16, 3, 3), 1, False),
    ((64, 24, 32, 32), (24, 24, 3, 3), 1, False),     # 24: not whole vectors
    ((64, 16, 32, 32), (15, 16, 3, 3), 1, False),     # fewer than 16 filters
    ((64, 64, 32, 32), (64, 32, 3, 3), 2, True),      # per group: 32 and 32
    ((64, 64, 32, 32), (32, 16, 3, 3), 4, False),     # per group: 16 and 8
])
def test_winograd_rule(x_shape, weight_shape, groups, pays):
    assert _convplan.winograd_pays(x_shape, weight_shape, groups) is pays
    want = "winograd" if pays else "gemm"
    assert fastconv.select_algorithm(x_shape, weight_shape, groups) == want
    assert fastconv.select_algorithm(x_shape, weight_shape, groups, stride=2) == "gemm"
    assert fastconv.select_algorithm(x_shape, weight_shape, groups, dilation=2) == "gemm"


def test_explicit_tiles_reject_other_geometries():
    x = np.zeros((1, 16, 9, 9), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    for algorithm in ("winograd2x2", "winograd4x4"):
        with pytest.raises(ValueError, match=rf"algorithm='{algorithm}'.*stride phases are 3x3"):
            fastconv.conv2d(x, w, stride=2, algorithm=algorithm)


# ---------------------------------------------------------------------------
# strided and dilated layers, split into their phases
# ---------------------------------------------------------------------------

# (N, C, H, W, F, kh, kw, stride, padding, dilation, groups)
PHASED = {
    "alexnet-1": (2, 3, 67, 71, 24, 11, 11, 4, 0, 1, 1),
    "11x11/4-pad2": (2, 3, 61, 58, 32, 11, 11, 4, 2, 1, 1),
    "5x5/2": (2, 8, 30, 31, 32, 5, 5, 2, 2, 1, 1),
    "5x6/2-pad(1,3)": (2, 8, 30, 31, 32, 5, 6, 2, (1, 3), 1, 1),
    "3x5/(1,2)": (2, 8, 17, 31, 16, 3, 5, (1, 2), (1, 2), 1, 1),
    "9x9/3-pad4": (2, 16, 20, 22, 32, 9, 9, 3, 4, 1, 1),
    "groups-2": (2, 16, 30, 31, 32, 5, 5, 2, 2, 1, 2),
    "one-output": (1, 4, 7, 7, 32, 7, 7, 3, 0, 1, 1),
    "grad_x-by-gemm": (2, 3, 30, 31, 32, 5, 5, 2, 2, 1, 1),   # 12 phase channels
    "dilation-2": (2, 16, 20, 21, 32, 3, 3, 1, 2, 2, 1),
    "dilation-(2,3)-pad(1,4)": (2, 16, 20, 21, 32, 3, 3, 1, (1, 4), (2, 3), 1),
    "dilation-3-pad0": (2, 16, 19, 23, 16, 3, 3, 1, 0, 3, 1),
    "dilation-past-output": (2, 16, 5, 6, 32, 3, 3, 1, 40, 40, 1),
    "dilation-groups-2": (2, 32, 20, 21, 32, 3, 3, 1, 2, 2, 2),
    "dilation-grad_x-by-gemm": (2, 3, 20, 21, 32, 3, 3, 1, 2, 2, 1),
}


def _phased_case(name, dtype):
    N, C, H, W, F, kh, kw, stride, padding, dilation, groups = PHASED[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C // groups, kh, kw)) * math.sqrt(2 / (kh * kw * C // groups))
    geo = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y64 = reference.conv2d(x, w, **geo)
    gy = rng.standard_normal(y64.shape)
    want = (y64, *reference.conv2d_backward(gy, x, w, **geo))
    return x.astype(dtype), w.astype(dtype), gy.astype(dtype), geo, want


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", sorted(BOUND))
@pytest.mark.parametrize("name", list(PHASED))
def test_layers_split_into_phases(name, algorithm, dtype):
    """y, grad_x, grad_weight and grad_bias against the float64 GEMM of
    the NumPy twin, within Winograd's float32 bounds."""
    x, w, gy, geo, want = _phased_case(name, dtype)
    plan = fastconv.conv_plan(x.shape, w.shape, dtype, algorithm=algorithm, **geo)
    assert (plan.algorithm, plan.tile) == ("winograd", WINOGRAD_TILES[algorithm])
    got = (fastconv.conv2d(x, w, algorithm=algorithm, **geo),
           *fastconv.conv2d_backward(gy, x, w, algorithm=algorithm, **geo))
    bound = BOUND[algorithm] if dtype == np.float32 else 1e-12
    errors = {k: _rel(a, b) for k, a, b in zip(("y", "grad_x", "grad_weight", "grad_bias"),
                                               got, want)}
    assert max(errors.values()) <= bound, f"{name} {algorithm}: {errors}"


@pytest.mark.parametrize("tap_major", [False, True])
def test_phase_merge_is_col2im_where_windows_tile(tap_major):
    """phase_merge (assignment) equals col2im (zero, then add) wherever
    phase_tiles says each cell is covered once, and refuses the rest."""
    rng = np.random.default_rng(11)
    tiled = refused = 0
    for _ in range(300):
        s = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        k = tuple(int(rng.integers(1, si + 1)) for si in s)
        p = tuple(int(rng.integers(0, 2 * si + 1)) for si in s)
        out = tuple(int(rng.integers(1, 6)) for _ in s)
        n = tuple(max(1, (o - 1) * si + ki - pi - int(rng.integers(0, 3)))
                  for o, si, ki, pi in zip(out, s, k, p))
        g = ConvGeometry(N=2, C=3, H=n[0], W=n[1], kh=k[0], kw=k[1], sh=s[0], sw=s[1],
                         pt=p[0], pl=p[1], dh=1, dw=1, Ho=out[0], Wo=out[1], F=0, groups=1)
        cols = rng.standard_normal((2, 3 * k[0] * k[1], out[0] * out[1])).astype(np.float32)
        got = np.full((2, 3, n[0], n[1]), np.nan, np.float32)
        if not _ext.phase_tiles(g):
            refused += 1
            with pytest.raises(ValueError, match="cover each cell once"):
                _ext.phase_merge(cols, g, got, tap_major)
            continue
        tiled += 1
        _ext.phase_merge(cols, g, got, tap_major)
        np.testing.assert_array_equal(got, _ext.col2im(cols, g, tap_major=tap_major), str(g))
    assert tiled > 50 and refused > 50


def test_phases_without_grad_x_and_with_packed_filters():
    x, w, gy, geo, want = _phased_case("alexnet-1", np.float32)
    plan = fastconv.conv_plan(x.shape, w.shape, np.float32, algorithm="winograd", **geo)
    assert (plan.algorithm, plan.tile) == ("winograd", 4)
    packed = plan.pack(w)
    y = plan.forward(x, w, packed=packed, relu=True)
    y1 = fastconv.conv2d(x, w, algorithm="winograd", **geo)
    np.testing.assert_array_equal(y, np.maximum(y1, 0))
    gx, gw, gb = plan.backward(gy, x, w, grad_input=False, packed=packed)
    assert gx is None
    full = plan.backward(gy, x, w, packed=packed)
    np.testing.assert_array_equal(gw, full[1])
    np.testing.assert_array_equal(gb, full[2])
    assert _rel(full[0], want[1]) <= BOUND["winograd4x4"]


def test_phase_packing_depends_on_the_stride():
    """9x9 filters at stride 3 and at stride 4 both split into 3x3 phases,
    differently: filters packed for one are refused by the other."""
    w = np.ones((32, 16, 9, 9), np.float32)
    s3, s4 = (fastconv.conv_plan((2, 16, 40, 40), w.shape, np.float32, stride=s,
                                 algorithm="winograd") for s in (3, 4))
    assert s3.packing != s4.packing
    with pytest.raises(ValueError, match="pack the weights with this plan"):
        s4.forward(np.ones((2, 16, 40, 40), np.float32), w, packed=s3.pack(w))


@pytest.mark.parametrize("x_shape, weight_shape, stride, want", [
    ((8, 3, 227, 227), (96, 3, 11, 11), 4, "winograd"),  # 121 of 144 taps
    ((1, 3, 227, 227), (64, 3, 11, 11), 4, "winograd"),
    ((8, 64, 56, 56), (64, 64, 6, 6), 2, "winograd"),    # every tap
    ((8, 32, 56, 56), (64, 32, 9, 9), 3, "winograd"),
    ((8, 64, 56, 56), (64, 64, 5, 5), 2, "gemm"),        # 25 of 36 taps
    ((8, 64, 56, 56), (128, 64, 3, 3), 2, "gemm"),       # 2x2 phases
    ((8, 64, 56, 56), (64, 64, 7, 7), 2, "gemm"),        # 4x4 phases
    ((8, 3, 64, 64), (32, 3, 6, 6), 2, "gemm"),          # 12 phase channels
    ((8, 64, 28, 28), (128, 64, 12, 12), 4, "gemm"),     # 7 x 7 x 8 positions
])
def test_strided_rule(x_shape, weight_shape, stride, want):
    assert fastconv.select_algorithm(x_shape, weight_shape, stride=stride) == want
    assert fastconv.select_algorithm(x_shape, weight_shape, stride=stride,
                                     dilation=2) == "gemm"


@pytest.mark.parametrize("x_shape, weight_shape, groups, dilation, want", [
    ((8, 64, 56, 56), (64, 64, 3, 3), 1, 2, "winograd"),     # the suite's dilated
    ((1, 64, 56, 56), (64, 64, 3, 3), 1, (4, 2), "winograd"),  # 14 x 28 phases
    ((8, 128, 56, 56), (128, 64, 3, 3), 2, 2, "winograd"),   # 64 per group
    ((8, 64, 56, 56), (64, 64, 3, 3), 1, 5, "gemm"),         # 12 x 12 phases
    ((8, 32, 56, 56), (64, 32, 3, 3), 1, 2, "gemm"),         # 32 channels
    ((8, 128, 56, 56), (128, 32, 3, 3), 4, 2, "gemm"),       # 32 per group
    ((8, 64, 56, 56), (64, 64, 5, 5), 1, 2, "gemm"),         # not 3x3
])
def test_dilated_rule(x_shape, weight_shape, groups, dilation, want):
    assert fastconv.select_algorithm(x_shape, weight_shape, groups,
                                     dilation=dilation) == want


# ---------------------------------------------------------------------------
# thread counts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["winograd2x2", "winograd4x4"])
@pytest.mark.parametrize("shape", [(8, 16, 20, 20, 16),      # many chunks of grad_weight
                                   (2, 128, 12, 12, 128),    # one chunk: items split xi
                                   (3, 24, 9, 13, 40),       # partial tiles, F % 16 != 0
                                   (3, 256, 10, 10, 256),    # 4x4: phased from 2 threads
                                   (3, 3, 43, 47, 32, 11, 4),   # 11x11/4: stride phases
                                   (3, 16, 21, 19, 32, 3, 1, 2)])  # dilation phases
def test_bitwise_at_any_thread_count(shape, algorithm, restore_threads):
    N, C, H, W, F, k, stride, dilation = shape + (3, 1, 1)[len(shape) - 5:]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((F, C, k, k)).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32)
    geo = dict(padding=1, stride=stride, dilation=dilation, algorithm=algorithm)
    y = fastconv.conv2d(x, w, b, **geo)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    out = {}
    for n in (1, 2, 3):
        fastconv.set_num_threads(n)
        y = fastconv.conv2d(x, w, b, relu=True, **geo)
        out[n] = (y, *fastconv.conv2d_backward(gy, x, w, **geo))
    for n in (2, 3):
        for a, c in zip(out[1], out[n]):
            np.testing.assert_array_equal(a, c)


def test_grouped_phased_forward_is_bitwise_the_block_form(restore_threads):
    """Two groups of 256 channels: at 2 threads each group runs the phased
    forward (its own part of the shared V and M), at 1 the block form."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 512, 10, 10)).astype(np.float32)
    w = rng.standard_normal((512, 256, 3, 3)).astype(np.float32)
    b = rng.standard_normal(512).astype(np.float32)
    out = []
    for n in (1, 2):
        fastconv.set_num_threads(n)
        out.append(fastconv.conv2d(x, w, b, padding=1, groups=2, algorithm="winograd4x4"))
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("F, Cg, groups", [(50, 7, 1), (12, 20, 2), (96, 64, 1)])
def test_flipped_packing_is_the_packing_of_the_rotated_transpose(F, Cg, groups, m, dtype):
    """grad_x's filters are packed from the layer's own (flip=True): the
    same values as packing, per group, the filters and channels swapped and
    each kernel rotated by 180 degrees in NumPy."""
    w = np.random.default_rng(3).standard_normal((F, Cg, 3, 3)).astype(dtype)
    wg = w.reshape(groups, F // groups, Cg, 3, 3).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    turned = np.ascontiguousarray(wg).reshape(groups * Cg, F // groups, 3, 3)
    want = _ext.wino_pack(turned, groups, m)
    got = _ext.wino_pack(w, groups, m, flip=True)
    np.testing.assert_array_equal(got, want)
