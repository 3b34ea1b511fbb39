"""fastconv.compat.cs231n: the cs231n assignment's layer functions on fastconv.

Expected values come from loop implementations written here from the course's
definitions (conv: zero padding ``pad`` on every side, ``out[n, f, i, j] =
sum(x_pad[n, :, i*s:i*s+HH, j*s:j*s+WW] * w[f]) + b[f]``; max pool: no
padding, windows at multiples of the stride), from finite differences, and
from the course's tie-splitting rule spelled out here.
"""

import inspect

import numpy as np
import pytest
from helpers import numerical_grad

from fastconv.compat import cs231n as cs

CONV_FORWARD = ["conv_forward_fast", "conv_forward_im2col",
                "conv_forward_strides", "conv_forward_naive"]
CONV_BACKWARD = ["conv_backward_fast", "conv_backward_im2col",
                 "conv_backward_strides", "conv_backward_naive"]
POOL_FORWARD = ["max_pool_forward_fast", "max_pool_forward_reshape",
                "max_pool_forward_im2col", "max_pool_forward_naive"]
POOL_BACKWARD = ["max_pool_backward_fast", "max_pool_backward_reshape",
                 "max_pool_backward_im2col", "max_pool_backward_naive"]

# The course's parameter lists (cs231n/fast_layers.py, layers.py,
# im2col_cython.pyx, im2col.py); (name, default) with None for no default.
SIGNATURES = {
    **{n: [("x", None), ("w", None), ("b", None), ("conv_param", None)]
       for n in CONV_FORWARD},
    **{n: [("dout", None), ("cache", None)] for n in CONV_BACKWARD + POOL_BACKWARD},
    **{n: [("x", None), ("pool_param", None)] for n in POOL_FORWARD},
    "im2col_cython": [("x", None), ("field_height", None), ("field_width", None),
                      ("padding", None), ("stride", None)],
    "col2im_cython": [("cols", None), ("N", None), ("C", None), ("H", None),
                      ("W", None), ("field_height", None), ("field_width", None),
                      ("padding", None), ("stride", None)],
    "col2im_6d_cython": [("cols", None), ("N", None), ("C", None), ("H", None),
                         ("W", None), ("HH", None), ("WW", None), ("pad", None),
                         ("stride", None)],
    "get_im2col_indices": [("x_shape", None), ("field_height", None),
                           ("field_width", None), ("padding", 1), ("stride", 1)],
    "im2col_indices": [("x", None), ("field_height", None), ("field_width", None),
                       ("padding", 1), ("stride", 1)],
    "col2im_indices": [("cols", None), ("x_shape", None), ("field_height", 3),
                       ("field_width", 3), ("padding", 1), ("stride", 1)],
}


# ---------------------------------------------------------------- loops
def loop_conv(x, w, b, stride, pad):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    xp[:, :, pad:pad + H, pad:pad + W] = x
    Ho, Wo = (H + 2 * pad - HH) // stride + 1, (W + 2 * pad - WW) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    win = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(win * w[f]) + b[f]
    return out


def loop_conv_backward(dout, x, w, stride, pad):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    xp[:, :, pad:pad + H, pad:pad + W] = x
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape)
    db = np.zeros(F)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    g = dout[n, f, i, j]
                    rs, cs_ = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
                    dw[f] += g * xp[n, :, rs, cs_]
                    dxp[n, :, rs, cs_] += g * w[f]
                    db[f] += g
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def loop_pool(x, ph, pw, stride):
    N, C, H, W = x.shape
    Ho, Wo = (H - ph) // stride + 1, (W - pw) // stride + 1
    out = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = x[n, c, i * stride:i * stride + ph,
                                        j * stride:j * stride + pw].max()
    return out


def loop_pool_backward(dout, x, ph, pw, stride, ties="first"):
    """ties="first": all to the first maximum (row-major); "split": shared equally."""
    dx = np.zeros(x.shape)
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    r0, c0 = i * stride, j * stride
                    win = x[n, c, r0:r0 + ph, c0:c0 + pw]
                    m = win.max()
                    hits = [(a, b) for a in range(ph) for b in range(pw) if win[a, b] == m]
                    if ties == "first":
                        a, b = hits[0]
                        dx[n, c, r0 + a, c0 + b] += dout[n, c, i, j]
                    else:
                        for a, b in hits:
                            dx[n, c, r0 + a, c0 + b] += dout[n, c, i, j] / len(hits)
    return dx


# (N, C, H, W, F, HH, WW, stride, pad); the last two do not divide evenly
CONV_CASES = [
    (2, 3, 7, 7, 4, 3, 3, 1, 1),
    (2, 3, 8, 8, 3, 3, 3, 2, 1),
    (1, 2, 9, 6, 2, 5, 3, 2, 2),
    (2, 1, 8, 7, 3, 3, 3, 2, 0),
    (1, 3, 6, 9, 2, 4, 4, 3, 1),
]
POOL_CASES = [  # (N, C, H, W, ph, pw, stride)
    (2, 3, 8, 8, 2, 2, 2),
    (2, 2, 9, 9, 3, 3, 2),
    (1, 2, 7, 10, 3, 2, 1),
    (2, 1, 9, 8, 2, 2, 2),   # not tiling: floor
]


# ---------------------------------------------------------------- names
NAIVE = ["conv_forward_naive", "conv_backward_naive",
         "max_pool_forward_naive", "max_pool_backward_naive"]


def test_every_name_exists_with_the_course_signature():
    # The naive layers are attributes but not exported (see the next test).
    assert sorted(cs.__all__) == sorted(set(SIGNATURES) - set(NAIVE))
    for name, params in SIGNATURES.items():
        fn = getattr(cs, name)
        got = [(p.name, None if p.default is inspect.Parameter.empty else p.default)
               for p in inspect.signature(fn).parameters.values()]
        assert got == params, name
        assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                   for p in inspect.signature(fn).parameters.values()), name
        assert fn.__doc__ and "Examples" in fn.__doc__, name


def test_star_import_does_not_replace_the_students_naive_layers():
    # layer_utils.py does `from .layers import *` (the student's naive
    # layers) and then `from .fast_layers import *`: replacing the latter
    # with fastconv's must leave the student's naive layers in place.
    namespace = {}
    exec("def conv_forward_naive(x, w, b, conv_param): return 'mine'\n"
         "from fastconv.compat.cs231n import *", namespace)
    assert namespace["conv_forward_naive"](None, None, None, None) == "mine"
    assert not set(NAIVE) & (set(namespace) - {"conv_forward_naive"})
    assert "conv_forward_fast" in namespace and "im2col_indices" in namespace
    for name in NAIVE:                          # still importable by name
        assert callable(getattr(cs, name))


# ---------------------------------------------------------------- conv
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("fwd,bwd", list(zip(CONV_FORWARD, CONV_BACKWARD)))
def test_conv_matches_loops(fwd, bwd, case, dtype, rng, tol):
    N, C, H, W, F, HH, WW, s, p = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    param = {"stride": s, "pad": p}
    out, cache = getattr(cs, fwd)(x, w, b, param)
    expect = loop_conv(x.astype(np.float64), w.astype(np.float64), b, s, p)
    assert out.dtype == dtype and out.shape == expect.shape
    np.testing.assert_allclose(out, expect, **tol(dtype, C * HH * WW))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = getattr(cs, bwd)(dout, cache)
    ex, ew, eb = loop_conv_backward(dout.astype(np.float64), x.astype(np.float64),
                                    w.astype(np.float64), s, p)
    for got, want in ((dx, ex), (dw, ew), (db, eb)):
        assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(dx, ex, **tol(dtype, F * HH * WW))
    np.testing.assert_allclose(dw, ew, **tol(dtype, N * out.shape[2] * out.shape[3]))
    np.testing.assert_allclose(db, eb, **tol(dtype, N * out.shape[2] * out.shape[3]))


@pytest.mark.parametrize("case", CONV_CASES[:3])
def test_conv_backward_matches_numerical_gradient(case, rng):
    N, C, H, W, F, HH, WW, s, p = case
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, HH, WW))
    b = rng.standard_normal(F)
    param = {"stride": s, "pad": p}
    out, cache = cs.conv_forward_fast(x, w, b, param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = cs.conv_backward_fast(dout, cache)
    fwd = cs.conv_forward_fast
    np.testing.assert_allclose(
        dx, numerical_grad(lambda v: fwd(v, w, b, param)[0], x.copy(), dout),
        rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        dw, numerical_grad(lambda v: fwd(x, v, b, param)[0], w.copy(), dout),
        rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        db, numerical_grad(lambda v: fwd(x, w, v, param)[0], b.copy(), dout),
        rtol=1e-6, atol=1e-7)


def test_conv_backwards_accept_each_others_caches_plumbing_only(rng):
    # A cache-format test, not a correctness test: every function here runs
    # the same fastconv kernel, so the results are compared with that kernel
    # itself.  Correctness against independent computations is covered by
    # test_conv_matches_loops (hand loops) and
    # test_conv_backward_matches_numerical_gradient (finite differences).
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    param = {"stride": 1, "pad": 1}
    out, cache = cs.conv_forward_naive(x, w, b, param)
    assert cache[0] is x and cache[1] is w and cache[2] is b and cache[3] is param
    dout = rng.standard_normal(out.shape)
    want = cs.conv_backward_naive(dout, cache)
    course_cache = cache + (np.zeros((27, 72)),)    # the course's x_cols slot
    for bwd in CONV_BACKWARD:
        for c in (cache, course_cache):
            got = getattr(cs, bwd)(dout, c)
            for g, e in zip(got, want):
                np.testing.assert_array_equal(g, e)


def test_conv_dtypes_noncontiguous_and_inputs_untouched(rng):
    x64 = rng.standard_normal((2, 3, 8, 10))
    w64 = rng.standard_normal((2, 3, 3, 3))
    b64 = rng.standard_normal(2)
    param = {"stride": 1, "pad": 1}
    want = loop_conv(x64, w64, b64, 1, 1)
    # mixed float32 weights with float64 data: computed (and returned) in float64
    out, cache = cs.conv_forward_fast(x64, w64.astype(np.float32),
                                      b64.astype(np.float32), param)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, loop_conv(x64, w64.astype(np.float32).astype(float),
                                              b64.astype(np.float32), 1, 1),
                               rtol=1e-12, atol=1e-12)
    dx, dw, db = cs.conv_backward_fast(np.ones_like(out), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float64
    # integer data is computed in float64
    xi = np.arange(2 * 3 * 8 * 10).reshape(2, 3, 8, 10) % 5
    out_i, _ = cs.conv_forward_fast(xi, w64, b64, param)
    np.testing.assert_allclose(out_i, loop_conv(xi.astype(float), w64, b64, 1, 1),
                               rtol=1e-12, atol=1e-12)
    # non-contiguous views of the same values give the same results
    xt = np.ascontiguousarray(x64.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    wt = np.asfortranarray(w64)
    bt = np.repeat(b64, 2)[::2]
    assert not xt.flags.c_contiguous and not wt.flags.c_contiguous
    saved = [a.copy() for a in (xt, wt, bt)]
    out_t, cache_t = cs.conv_forward_fast(xt, wt, bt, param)
    np.testing.assert_allclose(out_t, want, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out_t.shape)
    dout_t = np.asfortranarray(dout)
    got = cs.conv_backward_fast(dout_t, cache_t)
    for g, e in zip(got, loop_conv_backward(dout, x64, w64, 1, 1)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    for a, s in zip((xt, wt, bt), saved):
        np.testing.assert_array_equal(a, s)
    np.testing.assert_array_equal(dout_t, dout)


def test_conv_bad_arguments_raise_named_errors(rng):
    x = rng.standard_normal((1, 3, 5, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    b = np.zeros(2)
    with pytest.raises(ValueError, match=r"conv_param.*'pad'"):
        cs.conv_forward_fast(x, w, b, {"stride": 1})
    with pytest.raises(TypeError, match="conv_param must be a dict"):
        cs.conv_forward_fast(x, w, b, (1, 1))
    with pytest.raises(ValueError, match=r"conv_param\['stride'\] must be positive"):
        cs.conv_forward_fast(x, w, b, {"stride": 0, "pad": 1})
    with pytest.raises(ValueError, match=r"w of shape \(2, 2, 3, 3\).*x of shape"):
        cs.conv_forward_fast(x, w[:, :2], b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        cs.conv_forward_fast(x, w, np.zeros(3), {"stride": 1, "pad": 1})
    with pytest.raises(TypeError, match="x must hold real numbers"):
        cs.conv_forward_fast(x.astype(complex), w, b, {"stride": 1, "pad": 1})
    with pytest.raises(TypeError, match="cache must be the"):
        cs.conv_backward_fast(np.ones((1, 2, 5, 5)), ("reshape", None))
    _, cache = cs.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="grad_out"):
        cs.conv_backward_fast(np.ones((1, 2, 4, 4)), cache)


@pytest.mark.parametrize("fwd", CONV_FORWARD)
def test_conv_nhwc_input_gets_a_transpose_hint(fwd, rng):
    # CIFAR-10 arrives as (N, 32, 32, 3): the error says how to fix it.
    x_nhwc = rng.standard_normal((2, 8, 8, 3))
    w = rng.standard_normal((4, 3, 3, 3))
    b = np.zeros(4)
    param = {"stride": 1, "pad": 1}
    with pytest.raises(ValueError, match=r"NHWC.*x\.transpose\(0, 3, 1, 2\)"):
        getattr(cs, fwd)(x_nhwc, w, b, param)
    out, _ = getattr(cs, fwd)(x_nhwc.transpose(0, 3, 1, 2), w, b, param)
    assert out.shape == (2, 4, 8, 8)
    with pytest.raises(ValueError) as info:           # a plain mismatch: no hint
        getattr(cs, fwd)(rng.standard_normal((2, 5, 8, 8)), w, b, param)
    assert "NHWC" not in str(info.value)


# ---------------------------------------------------------------- max pool
@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("fwd,bwd", list(zip(POOL_FORWARD, POOL_BACKWARD)))
def test_max_pool_matches_loops(fwd, bwd, case, dtype, rng):
    N, C, H, W, ph, pw, s = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    param = {"pool_height": ph, "pool_width": pw, "stride": s}
    out, cache = getattr(cs, fwd)(x, param)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, loop_pool(x, ph, pw, s))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = getattr(cs, bwd)(dout, cache)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, loop_pool_backward(dout, x, ph, pw, s),
                               **({"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32
                                  else {"rtol": 1e-14, "atol": 1e-14}))


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_backward_matches_numerical_gradient(case, rng):
    N, C, H, W, ph, pw, s = case
    x = rng.permutation(N * C * H * W).reshape(N, C, H, W) * 0.01   # no ties
    param = {"pool_height": ph, "pool_width": pw, "stride": s}
    out, cache = cs.max_pool_forward_fast(x, param)
    dout = rng.standard_normal(out.shape)
    num = numerical_grad(lambda v: cs.max_pool_forward_fast(v, param)[0],
                         x.copy(), dout, h=1e-4)
    np.testing.assert_allclose(cs.max_pool_backward_fast(dout, cache), num,
                               rtol=1e-7, atol=1e-9)


def test_tied_maxima_go_to_the_first_not_split_as_the_course():
    """The one deliberate difference from the course's reshape path."""
    x = np.array([[[[1.0, 5.0, 2.0, 2.0],
                    [5.0, 0.0, 2.0, 2.0],
                    [0.0, 0.0, 7.0, 3.0],
                    [0.0, 0.0, 1.0, 7.0]]]])
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    dout = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    first = np.array([[[[0.0, 1.0, 2.0, 0.0],
                        [0.0, 0.0, 0.0, 0.0],
                        [4.0, 0.0, 8.0, 0.0],
                        [0.0, 0.0, 0.0, 0.0]]]])
    split = loop_pool_backward(dout, x, 2, 2, 2, ties="split")
    np.testing.assert_array_equal(
        split[0, 0], [[0, .5, .5, .5], [.5, 0, .5, .5], [1, 1, 4, 0], [1, 1, 0, 4]])
    np.testing.assert_array_equal(loop_pool_backward(dout, x, 2, 2, 2), first)
    for fwd, bwd in zip(POOL_FORWARD, POOL_BACKWARD):
        out, cache = getattr(cs, fwd)(x, param)
        dx = getattr(cs, bwd)(dout, cache)
        np.testing.assert_array_equal(dx, first)
        assert not np.allclose(dx, split)
        # both rules pass the same total gradient into each window
        np.testing.assert_allclose(dx.reshape(2, 2, 2, 2).sum(axis=(1, 3)),
                                   split[0, 0].reshape(2, 2, 2, 2).sum(axis=(1, 3)))


def test_max_pool_caches_and_inputs(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    saved = x.copy()
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, naive_cache = cs.max_pool_forward_naive(x, param)
    assert len(naive_cache) == 2 and naive_cache[0] is x and naive_cache[1] is param
    _, fast_cache = cs.max_pool_forward_fast(x, param)
    assert len(fast_cache) == 3 and fast_cache[2].dtype == np.int64
    dout = rng.standard_normal(out.shape)
    want = loop_pool_backward(dout, x, 2, 2, 2)
    for bwd in POOL_BACKWARD:
        for cache in (naive_cache, fast_cache):
            np.testing.assert_array_equal(getattr(cs, bwd)(dout, cache), want)
    np.testing.assert_array_equal(x, saved)
    # non-contiguous input
    xt = x.transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(cs.max_pool_forward_fast(xt, param)[0],
                                  loop_pool(xt, 2, 2, 2))


def test_max_pool_bad_arguments_raise_named_errors(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"pool_param lacks key\(s\) \['pool_width'\]"):
        cs.max_pool_forward_fast(x, {"pool_height": 2, "stride": 2})
    with pytest.raises(ValueError, match="pool_height"):
        cs.max_pool_forward_fast(x, {"pool_height": 0, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match=r"x must have 4 dimensions"):
        cs.max_pool_forward_fast(x[0], {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(TypeError, match="cache must be the"):
        cs.max_pool_backward_fast(np.ones((1, 2, 2, 2)), ("reshape", (x,)))
    _, cache = cs.max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match=r"dout must have the pooled shape \(1, 2, 2, 2\)"):
        cs.max_pool_backward_fast(np.ones((1, 2, 3, 3)), cache)


# ---------------------------------------------------------------- im2col
def loop_course_cols(x, fh, fw, pad, stride):
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - fh) // stride + 1, (W + 2 * pad - fw) // stride + 1
    cols = np.zeros((C * fh * fw, Ho * Wo * N))
    for c in range(C):
        for i in range(fh):
            for j in range(fw):
                for oh in range(Ho):
                    for ow in range(Wo):
                        for n in range(N):
                            cols[c * fh * fw + i * fw + j, (oh * Wo + ow) * N + n] = \
                                xp[n, c, oh * stride + i, ow * stride + j]
    return cols


@pytest.mark.parametrize("shape,fh,fw,pad,stride", [
    ((2, 3, 5, 5), 3, 3, 1, 1), ((3, 2, 7, 6), 3, 2, 0, 2), ((1, 1, 4, 4), 4, 4, 2, 3)])
def test_im2col_layout_and_col2im_adjoint(shape, fh, fw, pad, stride, dtype, rng, tol):
    x = rng.standard_normal(shape).astype(dtype)
    want = loop_course_cols(x, fh, fw, pad, stride)
    for got in (cs.im2col_cython(x, fh, fw, pad, stride),
                cs.im2col_indices(x, fh, fw, padding=pad, stride=stride)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    k, i, j = cs.get_im2col_indices(shape, fh, fw, padding=pad, stride=stride)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    np.testing.assert_array_equal(xp[:, k, i, j].transpose(1, 2, 0).reshape(want.shape),
                                  want)
    c = rng.standard_normal(want.shape).astype(dtype)
    N, C, H, W = shape
    folded = cs.col2im_cython(c, N, C, H, W, fh, fw, pad, stride)
    assert folded.shape == shape and folded.dtype == dtype
    # adjoint: <im2col(x), c> == <x, col2im(c)>
    np.testing.assert_allclose(np.sum(want * c.astype(np.float64)),
                               np.sum(x.astype(np.float64) * folded),
                               **tol(dtype, c.size))
    np.testing.assert_array_equal(
        cs.col2im_indices(c, shape, fh, fw, padding=pad, stride=stride), folded)
    Ho, Wo = (H + 2 * pad - fh) // stride + 1, (W + 2 * pad - fw) // stride + 1
    c6 = c.reshape(C, fh, fw, Ho, Wo, N).transpose(0, 1, 2, 5, 3, 4)  # (C,fh,fw,N,Ho,Wo)
    np.testing.assert_allclose(cs.col2im_6d_cython(c6, N, C, H, W, fh, fw, pad, stride),
                               folded, **tol(dtype, fh * fw))


def test_col2im_rejects_mismatched_columns():
    with pytest.raises(ValueError, match=r"cols must have shape .*\(27, 50\)"):
        cs.col2im_cython(np.ones((27, 49)), 2, 3, 5, 5, 3, 3, 1, 1)
    with pytest.raises(ValueError, match="cols must have shape"):
        cs.col2im_6d_cython(np.ones((3, 3, 3, 2, 5, 5)), 2, 2, 5, 5, 3, 3, 1, 1)
