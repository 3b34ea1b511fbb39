"""conv_plan / ConvPlan: the kernel choice in one place, packed filters reused,
out=, grad_input=False, checks; the conv epilogue (relu=) on every path."""

import numpy as np
import pytest

import fastconv
import fastconv.reference
from fastconv._convplan import ConvPacked, ConvPlan

# (x_shape, weight_shape, geometry, algorithm the plan picks): every kernel
# and the GEMM's tilings (banded, pointwise, runs of positions); Winograd
# forced where "auto" finds these shapes too small for it.
PLANS = [
    ((2, 16, 12, 12), (16, 16, 3, 3), dict(padding=1, algorithm="winograd"), "winograd"),
    ((2, 20, 9, 7), (24, 20, 3, 3), dict(padding=2, algorithm="winograd"), "winograd"),
    ((4, 32, 16, 16), (32, 32, 3, 3), dict(padding=1), "winograd"),
    ((2, 3, 11, 10), (8, 3, 3, 3), dict(padding=1), "gemm"),                # banded
    ((2, 8, 9, 9), (12, 8, 1, 1), {}, "gemm"),                              # pointwise
    ((1, 512, 96, 96), (4, 512, 3, 3), dict(stride=3, padding=1), "gemm"),  # runs
    ((2, 6, 10, 10), (8, 3, 3, 3), dict(stride=2, padding=1, groups=2), "gemm"),
    ((2, 8, 9, 11), (8, 1, 3, 3), dict(padding=1, groups=8), "direct"),
    ((2, 4, 9, 11), (8, 1, 3, 3), dict(stride=2, padding=1, groups=4), "direct"),
]
IDS = [f"{p[3]}-{p[0]}-{p[1]}-{p[2]}".replace(" ", "") for p in PLANS]


def _data(x_shape, w_shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("x_shape, w_shape, geo, kernel", PLANS, ids=IDS)
def test_plan_runs_what_conv2d_runs(x_shape, w_shape, geo, kernel, dtype):
    x, w, b = _data(x_shape, w_shape, dtype)
    plan = fastconv.conv_plan(x_shape, w_shape, dtype, **geo)
    assert plan.algorithm == kernel
    if "algorithm" not in geo:
        assert plan.algorithm == fastconv.select_algorithm(
            x_shape, w_shape, geo.get("groups", 1), geo.get("stride", 1))
    y = fastconv.conv2d(x, w, b, **geo)
    assert plan.output_shape == y.shape
    packed = plan.pack(w)
    for p in (None, packed, packed):     # packed here, packed once, reused
        np.testing.assert_array_equal(plan.forward(x, w, b, packed=p), y)
    gy = np.cos(y)
    want = fastconv.conv2d_backward(gy, x, w, **geo)
    for p in (None, packed, packed):     # the grad_x filters packed on first use
        for got, ref in zip(plan.backward(gy, x, w, packed=p), want):
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("x_shape, w_shape, geo, kernel", PLANS, ids=IDS)
def test_grad_input_false_skips_grad_x(x_shape, w_shape, geo, kernel):
    x, w, _ = _data(x_shape, w_shape, np.float32)
    plan = fastconv.conv_plan(x_shape, w_shape, np.float32, **geo)
    gy = np.sin(plan.forward(x, w))
    gx, gw, gb = plan.backward(gy, x, w, grad_input=False)
    assert gx is None
    # an out= with nowhere to go is refused, whatever its type
    for o in (np.empty(x_shape, np.float32), (None, None)):
        with pytest.raises(ValueError, match="out is given but grad_input is False"):
            plan.backward(gy, x, w, grad_input=False, out=o)
    _, gw_all, gb_all = plan.backward(gy, x, w)
    np.testing.assert_array_equal(gw, gw_all)
    np.testing.assert_array_equal(gb, gb_all)


@pytest.mark.parametrize("x_shape, w_shape, geo, kernel", PLANS, ids=IDS)
def test_relu_epilogue_on_every_path(x_shape, w_shape, geo, kernel, dtype, rng):
    x, w, b = _data(x_shape, w_shape, dtype)
    x.flat[rng.integers(0, x.size, 3)] = np.nan        # NaN stays NaN
    geo = dict(geo)
    for algorithm in (geo.pop("algorithm", "auto"), "gemm"):
        y = fastconv.conv2d(x, w, b, algorithm=algorithm, **geo)
        r = fastconv.conv2d(x, w, b, algorithm=algorithm, relu=True, **geo)
        np.testing.assert_array_equal(r, np.where(y < 0, 0, y))
        assert np.isnan(r).sum() == np.isnan(y).sum() > 0
    ref = fastconv.reference.conv2d(x, w, b, relu=True, **geo)
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(r))


def test_relu_epilogue_winograd_tiles_and_empty_batch():
    x, w, b = _data((3, 16, 13, 10), (20, 16, 3, 3), np.float32)
    for algorithm in ("winograd2x2", "winograd4x4"):
        y = fastconv.conv2d(x, w, b, padding=1, algorithm=algorithm)
        r = fastconv.conv2d(x, w, b, padding=1, algorithm=algorithm, relu=True)
        np.testing.assert_array_equal(r, np.maximum(y, 0))
        e = fastconv.conv2d(x[:0], w, b, padding=1, algorithm=algorithm, relu=True)
        assert e.shape == (0, 20, 13, 10)


def test_out_is_written_and_checked():
    x, w, b = _data((2, 16, 10, 10), (16, 16, 3, 3), np.float32)
    plan = fastconv.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm="winograd")
    out = np.full(plan.output_shape, np.nan, np.float32)
    y = plan.forward(x, w, b, out=out)
    assert y is out
    np.testing.assert_array_equal(out, fastconv.conv2d(x, w, b, padding=1, algorithm="winograd"))
    gout = np.full(x.shape, np.nan, np.float32)
    gx, _, _ = plan.backward(np.ones_like(out), x, w, out=gout)
    assert gx is gout and not np.isnan(gx).any()
    bad = [np.empty(plan.output_shape, np.float64), np.empty((2, 16, 10, 9), np.float32),
           np.empty((2, 16, 10, 20), np.float32)[..., ::2], [0.0]]
    ro = np.empty(plan.output_shape, np.float32)
    ro.flags.writeable = False
    for o in bad + [ro]:
        with pytest.raises(ValueError, match="out must be a writeable C-contiguous"):
            plan.forward(x, w, out=o)
    with pytest.raises(ValueError, match="out must not overlap"):
        plan.backward(np.ones_like(out), x, w, out=x)


@pytest.mark.parametrize("x_shape, w_shape, geo, kernel", PLANS, ids=IDS)
def test_gemm_grad_x_route_writes_all_of_out(x_shape, w_shape, geo, kernel):
    # the col2im route accumulates: out must be cleared first
    x, w, _ = _data(x_shape, w_shape, np.float32)
    geo = {k: v for k, v in geo.items() if k != "algorithm"}
    plan = fastconv.conv_plan(x_shape, w_shape, np.float32, algorithm="gemm", **geo)
    gy = np.cos(plan.forward(x, w))
    gout = np.full(x_shape, 7.0, np.float32)
    gx, _, _ = plan.backward(gy, x, w, out=gout)
    np.testing.assert_array_equal(gx, fastconv.conv2d_backward(gy, x, w, algorithm="gemm", **geo)[0])


def test_mismatched_packed_filters_are_rejected():
    x, w, _ = _data((2, 16, 10, 10), (16, 16, 3, 3), np.float32)
    wino = fastconv.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm="winograd")
    gemm = fastconv.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm="gemm")
    f2 = fastconv.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm="winograd2x2")
    f64 = fastconv.conv_plan(x.shape, w.shape, np.float64, padding=1, algorithm="winograd")
    for plan, other in [(wino, gemm), (gemm, wino), (wino, f2), (wino, f64)]:
        with pytest.raises(ValueError, match="packed holds filters packed as"):
            plan.forward(x if plan.dtype == np.float32 else x.astype(np.float64),
                         w if plan.dtype == np.float32 else w.astype(np.float64),
                         packed=other.pack(w if other.dtype == np.float32 else w.astype(np.float64)))
    for junk in (np.zeros(10, np.float32), "packed", 3):
        with pytest.raises(TypeError, match="packed must come from ConvPlan.pack"):
            wino.forward(x, w, packed=junk)
        with pytest.raises(TypeError, match="packed must come from ConvPlan.pack"):
            wino.backward(x, x, w, packed=junk)


def test_packed_arrays_of_the_wrong_size_raise_not_crash():
    # a hand-made ConvPacked with the right key but the wrong array
    x, w, _ = _data((2, 16, 10, 10), (16, 16, 3, 3), np.float32)
    for algorithm in ("winograd", "gemm"):
        plan = fastconv.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm=algorithm)
        bad = ConvPacked(plan.packing, np.zeros(7, np.float32))
        with pytest.raises(ValueError, match="packed filters hold 7 values"):
            plan.forward(x, w, packed=bad)


def test_packing_does_not_depend_on_the_batch():
    a = fastconv.conv_plan((64, 16, 32, 32), (16, 16, 3, 3), np.float32, padding=1)
    b = fastconv.conv_plan((10, 16, 32, 32), (16, 16, 3, 3), np.float32, padding=1,
                           algorithm="winograd")
    assert a.packing == b.packing
    x, w, _ = _data((10, 16, 32, 32), (16, 16, 3, 3), np.float32)
    np.testing.assert_array_equal(b.forward(x, w, packed=a.pack(w)), b.forward(x, w))


def test_forward_checks_shapes_and_dtypes():
    x, w, b = _data((2, 16, 10, 10), (16, 16, 3, 3), np.float32)
    plan = fastconv.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm="winograd")
    with pytest.raises(ValueError, match=r"x must be an ndarray of shape \(2, 16, 10, 10\)"):
        plan.forward(x[:1], w)
    with pytest.raises(ValueError, match="weight must be an ndarray"):
        plan.forward(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="bias must be an ndarray"):
        plan.forward(x, w, b[:3])
    with pytest.raises(ValueError, match="grad_out must be an ndarray"):
        plan.backward(x[:, :, :, :9], x, w)
    # non-contiguous inputs are copied, never modified
    xf = np.asfortranarray(x)
    np.testing.assert_array_equal(plan.forward(xf, w), plan.forward(x, w))


def test_conv_plan_checks_its_arguments():
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        fastconv.conv_plan((1, 16, 8, 8), (16, 16, 3, 3), np.int32)
    with pytest.raises(TypeError, match="x_shape must be a tuple of non-negative ints"):
        fastconv.conv_plan("1x16", (16, 16, 3, 3), np.float32)
    with pytest.raises(ValueError, match="x_shape must have 4 dimensions"):
        fastconv.conv_plan((16, 8, 8), (16, 16, 3, 3), np.float32)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        fastconv.conv_plan((1, 16, 8, 8), (16, 16, 3, 3), np.float32, algorithm="fft")
    with pytest.raises(ValueError, match="channels|C="):
        fastconv.conv_plan((1, 8, 8, 8), (16, 16, 3, 3), np.float32)


def test_plan_repr_and_attributes():
    plan = fastconv.conv_plan((8, 64, 32, 32), (64, 64, 3, 3), np.float32, padding=1)
    assert isinstance(plan, ConvPlan)
    assert (plan.algorithm, plan.tile, plan.output_shape) == ("winograd", 4, (8, 64, 32, 32))
    assert "F(4x4, 3x3)" in repr(plan) and "F(4x4, 3x3)" in repr(plan.pack(np.ones((64, 64, 3, 3), np.float32)))
    g = fastconv.conv_plan((8, 3, 32, 32), (16, 3, 3, 3), np.float32, padding=1)
    assert (g.algorithm, g.tile) == ("gemm", None)


def test_pack_into_packed_filters_reuses_them():
    x, w, _ = _data((2, 16, 10, 10), (16, 16, 3, 3), np.float32)
    for algorithm in ("winograd", "gemm", "direct"):
        plan = fastconv.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm=algorithm)
        packed = plan.pack(w)
        gy = np.ones(plan.output_shape, np.float32)
        plan.backward(gy, x, w, packed=packed)            # grad_x filters packed
        arrays = (packed._forward, packed._grad_input)
        w2 = w[::-1].copy()
        assert plan.pack(w2, out=packed) is packed
        assert packed._forward is arrays[0]                 # the same memory
        np.testing.assert_array_equal(plan.forward(x, w2, packed=packed), plan.forward(x, w2))
        for a, b in zip(plan.backward(gy, x, w2, packed=packed), plan.backward(gy, x, w2)):
            np.testing.assert_array_equal(a, b)
        assert packed._grad_input is arrays[1]
        other = fastconv.conv_plan(x.shape, w.shape, np.float64, padding=1, algorithm=algorithm)
        with pytest.raises(ValueError, match="packed holds filters packed as"):
            other.pack(w.astype(np.float64), out=packed)
