"""Hostile calls of fastconv's public surface, decoded from bytes.

One fuzz case is a byte string.  :class:`Choices` reads it one byte per
decision, and a zero byte (or the end of the data) always picks the first,
ordinary option, so short or shrunk inputs are plain valid calls and the
hostile ones (huge, zero, negative or non-integer geometry, bool and string
flags, mismatched shapes, every dtype, empty, read-only, byte-swapped and
non-contiguous arrays, NaN and inf) come from non-zero bytes.  The same
decoder serves the hypothesis test (tests/test_fuzz.py, random bytes) and the
atheris harness (fuzz/atheris_fastconv.py, coverage-guided bytes).

:func:`run_case` makes the call and raises :class:`FuzzFailure` unless it
returns or raises ValueError, TypeError or MemoryError (AssertionError too
for gradcheck, whose job that is); leaves every input array as it was; and,
where the function has a twin (fastconv.reference, the reference backend of
a layer), agrees with it: the same exception type, or results of the same
shapes and dtypes and, for finite inputs, the same values within tolerance.
A crash or hang is caught by the process around it (a worker subprocess, or
libFuzzer).

REGISTRY maps a name to an Entry(build, target, twin): ``build(c)`` draws
``(args, kwargs)`` from a Choices ``c``; target and twin are the callables.
tests/test_fuzz.py fails when a public callable has no entry; adding one is
a few lines (see ``_functions`` below): a builder and a ``register`` call.
"""
import copy
import io
import math
import os
import tempfile
import zipfile
from collections import namedtuple

import numpy as np

import fastconv
from fastconv import layers as L
from fastconv import reference as R

__all__ = ["Choices", "REGISTRY", "FuzzFailure", "run_case", "register"]


class FuzzFailure(AssertionError):
    """A call broke fastconv's contract (the message says how)."""


# --------------------------------------------------------------------------
# decoding bytes into choices
# --------------------------------------------------------------------------

HUGE = (2**31 - 1, 2**31, 2**32, 2**40, 2**62 - 1, 2**62, 2**63 - 1, 2**63,
        2**64, 10**30)
NON_POSITIVE = (0, -1, -2, -2**31, -2**63)
NOT_INTS = (2.0, 2.5, "2", None, True, False, np.float32(2), complex(2),
            np.array(2), np.array([2.0, 2.0]), [], (), [2, "2"], b"2",
            np.array([True, True]), object())
INT_LIKE = (np.int64(2), np.uint8(3), np.int32(1), np.array([2, 2]),
            np.array([1, 2], np.uint64), [2, 2], (2, 2))
DTYPES = (np.float32, np.float64)
BAD_DTYPES = (np.int32, np.int64, np.float16, np.complex64, np.bool_, object,
              np.uint8, ">f4", ">f8", np.longdouble, "U1", "M8[s]")


class Choices:
    """Decisions read from a byte string; zero or exhausted bytes pick the
    first (ordinary) option."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0
        self.level = 1          # hostile() odds x level/2; set per case


    def byte(self):
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n):
        return self.byte() % n if n > 1 else 0

    def pick(self, options):
        options = list(options)
        return options[self.below(len(options))]

    def hostile(self, percent=12):
        """True for about ``percent`` % of random bytes (times level/2: a
        case is plain, mildly or fully hostile), never for zero."""
        return self.byte() >= 256 - percent * self.level * 128 // 100

    def small(self, lo, hi):
        return lo + self.below(hi - lo + 1)

    def rng(self):
        return np.random.default_rng(self.byte() | self.byte() << 8)

    # ---- integers and geometry ----------------------------------------
    def int_value(self, lo=1, hi=4):
        """An int in [lo, hi], or (hostile) anything else an int argument
        might be given."""
        if not self.hostile(20):
            return self.small(lo, hi)
        return self.pick([self.pick(HUGE), self.pick(NON_POSITIVE),
                          self.pick(NOT_INTS), self.pick(INT_LIKE),
                          -self.pick(HUGE)])

    def geom(self, n, lo=1, hi=3):
        """An int or an n-tuple for a geometry argument."""
        if self.hostile(15):
            return self.int_value(lo, hi)
        if self.below(2) == 0:
            return self.small(lo, hi)
        items = tuple(self.int_value(lo, hi) for _ in range(n))
        if self.hostile(8):                       # the wrong length
            items = items + (1,) if self.below(2) else items[:-1]
        return self.pick([items, list(items), np.array(items, dtype=object)
                          if self.hostile(10) else items])

    def window(self, n, pool=False):
        """(kernel_size, stride, padding, dilation) with, sometimes, the
        coordinated extremes that once crashed or hung: a huge stride, or a
        huge window with the padding that lets it fit a small input."""
        kind = self.below(8) if self.hostile(40) else 0
        if kind in (1, 2):                        # huge stride
            return (self.geom(n), self.pick(HUGE[:7]), 0, 1)
        if kind in (3, 4):                        # huge window, its padding
            e = self.small(1, 62)
            k = 2**e - self.below(2)
            return (k, self.pick([2 * k, k, 1, 2**(e + 1) + 1]),
                    k // 2 - self.below(2), 1)
        if kind == 5 and not pool:                # huge dilation (conv)
            d = 2**self.small(8, 61)
            return (2, 1, d // 2 + self.below(3), d)
        if kind == 6:                             # dilation with padding
            d = 2**self.small(1, 40)
            return (3, self.pick([1, d]), d, d)
        return (self.geom(n), self.geom(n) if self.below(4) else None,
                self.geom(n, 0, 1), self.geom(n))

    def flag(self, default=False):
        if not self.hostile(15):
            return self.pick([default, not default])
        return self.pick([np.bool_(True), np.bool_(False), 1, 0, "yes", "",
                          None, np.array([True]), 1.0, "False"])

    # ---- arrays -----------------------------------------------------------
    def dtype(self, like=None):
        if self.hostile(10):
            return np.dtype(self.pick(BAD_DTYPES))
        if like is not None and self.below(8):
            return like
        return np.dtype(self.pick(DTYPES))

    def dims(self, shape):
        """``shape`` with, sometimes, an entry changed or the rank wrong."""
        shape = list(shape)
        if self.hostile(10) and shape:
            shape[self.below(len(shape))] = self.small(0, 5)
        if self.hostile(6):
            shape = shape[:-1] if self.below(2) and shape else shape + [1]
        return tuple(shape)

    def values(self, shape, dtype):
        """Data: small integers (exact sums), or normal floats, or with NaN
        and inf, or huge."""
        rng = self.rng()
        kind = self.below(6) if self.hostile(35) else 0
        n = math.prod(shape)
        if kind == 1:
            v = rng.standard_normal(n)
        elif kind == 2:
            v = rng.integers(-3, 4, n).astype(np.float64)
            v[rng.random(n) < 0.2] = np.nan
            v[rng.random(n) < 0.1] = np.inf
            v[rng.random(n) < 0.1] = -np.inf
        elif kind == 3:
            v = rng.choice([1e38, -1e38, 3e300, 1e-45, -0.0], n)
        elif kind == 4:
            v = np.zeros(n)
        else:
            v = rng.integers(-3, 4, n).astype(np.float64)
        with np.errstate(all="ignore"):
            if dtype.kind in "fc":
                return v.astype(dtype).reshape(shape)
            if dtype.kind in "iub":
                return np.nan_to_num(v).astype(dtype).reshape(shape)
            if dtype.kind == "O":
                return v.astype(object).reshape(shape)
            return np.zeros(shape, dtype)

    def array(self, shape, like=None, dtype=None):
        """An ndarray of about ``shape`` or (hostile) not quite one."""
        if self.hostile(4):
            return self.pick([None, 3.0, [[1.0]], "x", np.float32(1)])
        dt = np.dtype(dtype) if dtype is not None else self.dtype(
            None if like is None or not isinstance(like, np.ndarray)
            else like.dtype)
        shape = self.dims(shape)
        layout = self.below(8) if self.hostile(30) else 0
        if layout == 1:                           # non-contiguous: a slice
            big = self.values(tuple(2 * s for s in shape), dt)
            return big[tuple(slice(None, None, 2) for _ in shape)]
        a = self.values(shape, dt)
        if layout == 2:
            a.flags.writeable = False
        elif layout == 3:
            a = np.asfortranarray(a)
        elif layout == 4 and a.ndim > 1:          # transposed storage
            a = np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)
        elif layout == 5 and dt.kind == "f":      # byte-swapped
            a = a.astype(dt.newbyteorder())
        elif layout == 6:                         # an unaligned view
            raw = np.zeros(a.nbytes + 1, np.uint8)
            if a.size:
                a = np.frombuffer(raw.data, dt, a.size, 1).reshape(a.shape)
        return a

    def shape_arg(self, shape):
        """An input_shape argument: a tuple, list or int array, or hostile."""
        shape = self.dims(shape)
        if self.hostile(10):
            shape = tuple(self.int_value(0, 4) for _ in shape)
        return self.pick([shape, shape, list(shape),
                          np.array(shape, dtype=object) if self.hostile(20)
                          else np.array(shape) if all(
                              isinstance(v, int) for v in shape) else shape])

    def norm_type(self):
        if not self.hostile(30):
            return self.pick([2, 1, 3, 1.5, 0.5, -2, np.inf, -np.inf])
        return self.pick([0, -0.0, np.nan, True, "2", None, 10**400, 1e-300,
                          1e300, np.float32(2), np.bool_(True), -1, [2]])


# --------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------

Entry = namedtuple("Entry", "build target twin writes", defaults=((),))
REGISTRY = {}


def register(name, build, target=None, twin=None, writes=()):
    """Add ``name``: ``build(c) -> (args, kwargs)``; target defaults to
    fastconv.<name>, twin to fastconv.reference.<name> (None if absent);
    ``writes``: the positions and keywords of the arrays the call writes by
    design (out=, running statistics), exempt from the unmodified check."""
    if target is None:
        target = getattr(fastconv, name)
        twin = getattr(R, name, None) if twin is None else twin
    REGISTRY[name] = Entry(build, target, twin, tuple(writes))


def _batch(c, n_spatial, channels=None):
    """A valid (N, C, *spatial) shape."""
    C = channels if channels is not None else c.small(1, 3)
    return (c.small(1, 2) if c.below(6) else 0, C) + tuple(
        c.small(1, 7) for _ in range(n_spatial))


def _forward_shape(fn, *args, **kwargs):
    """The output shape of a forward call, or a small guess if it fails."""
    try:
        y = fn(*args, **kwargs)
    except (ValueError, TypeError, MemoryError):
        return (1, 1, 1, 1)
    return (y[0] if isinstance(y, tuple) else y).shape


def _conv(n):
    fwd = {1: fastconv.conv1d, 2: fastconv.conv2d, 3: fastconv.conv3d}[n]

    def geometry(c):
        groups = c.int_value(1, 2)
        g = groups if isinstance(groups, int) and 1 <= groups <= 2 else 1
        x = c.array(_batch(c, n, g * c.small(1, 2)))
        xs = getattr(x, "shape", (1, 1) + (4,) * n)
        cin = xs[1] if len(xs) > 1 else 1
        k, s, p, d = c.window(n)
        kernel = tuple(v if isinstance(v, int) and 0 < v <= 5 else 2
                       for v in (k if isinstance(k, tuple) else (k,) * n))
        w = c.array((g * c.small(1, 3), max(1, cin // g)) + kernel[:n] +
                    (1,) * (n - len(kernel)), like=x)
        if isinstance(p, int) and p >= 0 and c.hostile(10):
            p = c.pick(["same", "valid", "full"])
        kw = dict(stride=1 if s is None else s, padding=p, dilation=d,
                  groups=groups)
        if n < 3 and c.hostile(30):
            kw["algorithm"] = c.pick(["gemm", "direct", "winograd", "fft"])
        return x, w, kw

    def forward(c):
        x, w, kw = geometry(c)
        F = (getattr(w, "shape", ()) or (1,))[0]
        b = c.array((F,), like=x) if c.below(2) else None
        return (x, w, b), kw

    def backward(c):
        x, w, kw = geometry(c)
        gy = c.array(_forward_shape(fwd, x, w, **kw), like=x)
        return (gy, x, w), kw

    return forward, backward


def _pool_args(c, n, pool="max"):
    k, s, p, d = c.window(n, pool=True)
    if pool == "avg":
        return dict(kernel_size=k, stride=s, padding=p)
    return dict(kernel_size=k, stride=s, padding=p, dilation=d)


def _pool(n, kind):
    names = {1: "1d", 2: "2d", 3: "3d"}
    fwd = getattr(fastconv, f"{kind}_pool{names[n]}")

    def forward(c):
        x = c.array(_batch(c, n))
        kw = _pool_args(c, n, kind)
        kw["ceil_mode"] = c.flag()
        if kind == "max":
            kw["return_indices"] = c.flag()
        else:
            kw["count_include_pad"] = c.flag(True)
        return (x,), kw

    def backward(c):
        x = c.array(_batch(c, n))
        kw = _pool_args(c, n, kind)
        kw["ceil_mode"] = c.flag()
        shape = getattr(x, "shape", (1, 1) + (3,) * n)
        if kind == "max":
            try:
                y, idx = fwd(x, **kw, return_indices=True)
            except (ValueError, TypeError, MemoryError):
                y, idx = np.zeros((1, 1) + (1,) * n), np.zeros((1, 1) + (1,) * n, np.int64)
            gy = c.array(y.shape, like=x)
            if c.hostile(20):
                idx = idx + c.pick([1, -1, 2**40, -2**63, 10**6])
            elif c.hostile(10):
                idx = c.array(idx.shape, dtype=c.pick([np.int32, np.float64, np.int64]))
            return (gy, idx, c.shape_arg(shape)), {}
        gy = c.array(_forward_shape(fwd, x, **kw), like=x)
        kw["count_include_pad"] = c.flag(True)
        return (gy, c.shape_arg(shape)), kw

    return forward, backward


def _lp(n):
    fwd = getattr(fastconv, f"lp_pool{n}d")

    def args(c):
        x = c.array(_batch(c, n))
        k, s, _, _ = c.window(n, pool=True)
        return x, c.norm_type(), dict(kernel_size=k, stride=s, ceil_mode=c.flag())

    def forward(c):
        x, p, kw = args(c)
        return (x, p), kw

    def backward(c):
        x, p, kw = args(c)
        gy = c.array(_forward_shape(fwd, x, p, **kw), like=x)
        return (gy, x, p), kw

    return forward, backward


def _im2col(c):
    x = c.array(_batch(c, 2))
    k, s, p, d = c.window(2)
    return (x, k), dict(stride=1 if s is None else s, padding=p, dilation=d)


def _col2im(c):
    (x, k), kw = _im2col(c)
    hw = getattr(x, "shape", (1, 1, 4, 4))[2:] or (4, 4)
    cols = c.array(_forward_shape(fastconv.im2col, x, k, **kw), like=x)
    return (cols, c.shape_arg(hw) if c.hostile(30) else tuple(hw[-2:]), k), kw


def _local(backward):
    def build(c):
        x = c.array(_batch(c, 2))
        k, s, p, d = c.window(2)
        kw = dict(stride=1 if s is None else s, padding=p, dilation=d)
        xs = getattr(x, "shape", (1, 1, 4, 4))
        kk = k if isinstance(k, int) and 0 < k <= 4 else 2
        try:                                      # the output size it implies
            g = fastconv._validation.window_geometry("fuzz", xs, kk,
                                                     kw["stride"], p, d)
            ho, wo = g.Ho, g.Wo
        except Exception:                          # noqa: BLE001 - a guess
            ho, wo = 1, 1
        F = c.small(1, 3)
        w = c.array((ho, wo, xs[1] if len(xs) > 1 else 1, kk, kk, F), like=x)
        if backward:
            gy = c.array((xs[0] if xs else 1, F, ho, wo), like=x)
            return (gy, x, w), kw
        b = c.array((F, ho, wo), like=x) if c.below(2) else None
        return (x, w, b), kw
    return build


def _global(backward):
    def build(c):
        x = c.array(_batch(c, 2))
        if not backward:
            return (x,), {}
        shape = getattr(x, "shape", (1, 1, 2, 2))
        gy = c.array(tuple(shape[:2]) + (1, 1), like=x)
        return (gy, c.shape_arg(shape)), {}
    return build


def _out(c, shape, like):
    """None, or an out= array of about the result's shape."""
    return c.array(shape, like=like) if c.below(3) == 0 else None


def _bn(c):
    shape = _batch(c, 2)
    x = c.array(shape)
    C = shape[1]
    vec = [c.array((C,), like=x) if c.below(4) else None for _ in range(4)]
    return (x, *vec), dict(training=c.flag(), momentum=c.pick([0.1, 0.0, 1.0, -1, None]),
                           eps=c.pick([1e-5, 0.0, -1.0, np.nan]), relu=c.flag(),
                           out=_out(c, shape, x), return_stats=c.flag())


def _bn_backward(c):
    shape = _batch(c, 2)
    x = c.array(shape)
    C = shape[1]
    return (c.array(shape, like=x), x, c.array((C,), like=x), c.array((C,), like=x),
            c.array((C,), like=x) if c.below(2) else None), dict(
        training=c.flag(True), y=c.array(shape, like=x) if c.below(2) else None,
        out=_out(c, shape, x))


def _elementwise(n_arrays, **flags):
    def build(c):
        shape = _batch(c, c.small(0, 2))
        x = c.array(shape)
        arrays = (x,) + tuple(c.array(shape, like=x) for _ in range(n_arrays - 1))
        kw = {k: c.flag() for k in flags}
        return arrays, dict(kw, out=_out(c, shape, x))
    return build


def _linear(c):
    N, K, F = c.small(0, 5), c.small(0, 40), c.small(0, 20)
    x = c.array((N, K))
    return (x, c.array((F, K), like=x), c.array((F,), like=x) if c.below(2) else None), \
        dict(relu=c.flag(), out=_out(c, (N, F), x))


def _linear_backward(c):
    N, K, F = c.small(0, 5), c.small(0, 40), c.small(0, 20)
    x = c.array((N, K))
    return (c.array((N, F), like=x), x, c.array((F, K), like=x)), {}


def _functions():
    # arrays these write by design: the running statistics, out=
    register("batch_norm2d", _bn, writes=(1, 2, "out"))
    register("batch_norm2d_backward", _bn_backward, writes=("out",))
    for name, n, flags in (("relu", 1, {}), ("relu_backward", 2, {}),
                           ("add", 2, {"relu": None})):
        register(name, _elementwise(n, **flags), writes=("out",))
    register("linear", _linear, writes=("out",))
    register("linear_backward", _linear_backward)
    for n in (1, 2, 3):
        fwd, bwd = _conv(n)
        register(f"conv{n}d", fwd)
        register(f"conv{n}d_backward", bwd)
        for kind in ("max", "avg"):
            fwd, bwd = _pool(n, kind)
            register(f"{kind}_pool{n}d", fwd)
            register(f"{kind}_pool{n}d_backward", bwd)
    for n in (1, 2):
        fwd, bwd = _lp(n)
        register(f"lp_pool{n}d", fwd)
        register(f"lp_pool{n}d_backward", bwd)
    register("im2col", _im2col)
    register("col2im", _col2im)
    register("locally_connected2d", _local(False))
    register("locally_connected2d_backward", _local(True))
    register("global_avg_pool2d", _global(False))
    register("global_avg_pool2d_backward", _global(True))
    register("select_algorithm", lambda c: (
        (c.shape_arg((2, 16, 8, 8)), c.shape_arg((16, 16, 3, 3))),
        dict(groups=c.int_value(1, 2), stride=c.geom(2), dilation=c.geom(2))))
    register("conv_plan", _conv_plan, target=_conv_plan_run)
    register("set_num_threads", lambda c: ((c.int_value(1, 3),), {}))
    register("get_num_threads", lambda c: ((), {}))
    register("show_config", lambda c: ((), {}), target=_quiet(fastconv.show_config))
    register("gradcheck", _gradcheck)
    register("fc_to_conv", _fc_to_conv)
    register("conv_to_fc", _conv_to_fc)
    register("convolutionalize", _convolutionalize)


def _conv_plan(c):
    x_shape = c.shape_arg((c.small(0, 2), 16 * c.small(1, 2), c.small(1, 9), c.small(1, 9)))
    w_shape = c.shape_arg((16 * c.small(1, 2), 16, c.pick([1, 3]), 3))
    dtype = c.pick([np.float32, np.float64]) if not c.hostile(10) else c.pick(
        ["float16", np.int32, None, "x"])
    kw = dict(stride=c.geom(2), padding=c.geom(2, 0, 2), dilation=c.geom(2),
              groups=c.int_value(1, 2))
    if c.below(2):
        kw["algorithm"] = c.pick(["gemm", "direct", "winograd", "winograd2x2",
                                  "winograd4x4", "auto", "fft"])
    return (x_shape, w_shape, dtype), kw


def _conv_plan_run(x_shape, weight_shape, dtype, **kwargs):
    """conv_plan, then the plan's pack, forward (with ReLU) and backward on
    arrays of its shapes, against conv2d's twin; the plan alone if the
    arrays would be large."""
    plan = fastconv.conv_plan(x_shape, weight_shape, dtype, **kwargs)
    if max(int(np.prod(s)) for s in (plan.x_shape, plan.weight_shape,
                                      plan.output_shape)) > 1 << 16:
        return plan
    rng = np.random.default_rng(0)
    x, w, gy = (rng.standard_normal(s).astype(plan.dtype)
                for s in (plan.x_shape, plan.weight_shape, plan.output_shape))
    b = rng.standard_normal(plan.weight_shape[0]).astype(plan.dtype)
    packed = plan.pack(w)
    kw = {k: v for k, v in kwargs.items() if k != "algorithm"}
    y = plan.forward(x, w, b, relu=True, packed=packed)
    np.testing.assert_allclose(y, R.conv2d(x, w, b, relu=True, **kw), rtol=1e-3, atol=1e-3)
    grads = plan.backward(gy, x, w, packed=packed)
    for got, want in zip(grads, R.conv2d_backward(gy, x, w, **kw)):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    return y


def _quiet(fn):
    def call(*args, **kwargs):
        import contextlib
        with contextlib.redirect_stdout(io.StringIO()):
            return fn(*args, **kwargs)
    return call


def _gradcheck(c):
    layer = c.pick([L.ReLU(), L.Conv2d(1, 2, 2, rng=0), L.MaxPool2d(2),
                    L.AvgPool2d(2, padding=1), "not a layer"])
    x = c.array((1, 1, 4, 4), dtype=c.pick([np.float64, np.float32, np.int64]))
    return (layer, x), dict(eps=c.pick([1e-6, 1e-3, 0.0, -1e-6, np.nan, "e"])
                            if c.hostile() else 1e-6,
                            n_checks=c.pick([None, 3, 0, -1, 2.5, 10**30])
                            if c.hostile() else 4)


def _fc_to_conv(c):
    lin = c.pick([L.Linear(12, 3, rng=0), L.Linear(4, 2, bias=False, rng=0),
                  L.Conv2d(1, 1, 1), None])
    return (lin,), dict(input_shape=c.pick([None, (3, 2, 2), (12, 1, 1),
                                            np.array([3, 2, 2]), (3, 2), (0, 2, 6),
                                            (2**62, 2**62, 3), "x"]))


def _conv_to_fc(c):
    conv = c.pick([L.Conv2d(3, 4, 2, rng=0), L.Conv2d(3, 4, 2, padding=1, rng=0),
                   L.Conv2d(2, 2, 3, groups=2, rng=0), L.Linear(2, 2), None])
    return (conv,), dict(input_shape=c.pick([None, (3, 2, 2), (3, 3, 3),
                                             np.array([3, 2, 2]), (3, 2**40, 2),
                                             (2, 3, 3), -1]))


def _convolutionalize(c):
    model = c.pick([
        L.Sequential(L.Conv2d(1, 2, 3, rng=0), L.ReLU(), L.Flatten(),
                     L.Linear(2 * 2 * 2, 3, rng=0)),
        L.Sequential(L.Flatten(), L.Linear(16, 2, rng=0)),
        L.ReLU(), None])
    return (model, c.pick([(1, 4, 4), (1, 5, 5), (1, 2**40, 4), (4, 4),
                           np.array([1, 4, 4]), None])), {}


# ---- layers: construct, forward, backward; the twin runs the reference
# backend on a copy with the same weights --------------------------------

def _layer_run(backend):
    def run(make, ctor_args, ctor_kwargs, x, grad):
        layer = make(*ctor_args, **ctor_kwargs)
        layer.set_backend(backend)
        y = layer.forward(x)
        g = grad(y) if callable(grad) else grad
        gx = layer.backward(g)
        return y, gx, {k: v.copy() for k, v in layer.grads.items()}
    return run


def _layer(name, ctor, x_spatial, grad_like=True, make=None):
    """Register layers.<name>: ``ctor(c) -> (args, kwargs)`` draws the
    constructor's arguments (plain values, so the twin's cost is visible;
    ``make(*args, **kwargs)`` builds the layer, default the class); x has
    ``x_spatial`` spatial axes."""
    cls = make or getattr(L, name)

    def build(c):
        args, kwargs = ctor(c)
        x = c.array(_batch(c, x_spatial, c.pick([3, 1, 2] if x_spatial else
                                                [4, 3])),
                    dtype=c.dtype() if c.hostile() else np.float32)
        if grad_like and not c.hostile(10):
            grad = np.ones_like
        else:
            grad = c.array((2, 3, 2, 2))
        return (cls, args, kwargs, x, grad), {}

    REGISTRY[f"layers.{name}"] = Entry(build, _layer_run("fastconv"),
                                       _layer_run("reference"))


def _layers():
    def conv(n):
        return lambda c: ((3, c.int_value(1, 3), c.geom(n)),
                          dict(stride=c.geom(n), padding=c.geom(n, 0, 1),
                               bias=c.flag(True), rng=0))
    for n, name in ((1, "Conv1d"), (2, "Conv2d"), (3, "Conv3d")):
        _layer(name, conv(n), n)
    for n in (1, 2, 3):
        _layer(f"MaxPool{n}d", lambda c, n=n: (
            (), dict(_pool_args(c, n), ceil_mode=c.flag())), n)
        _layer(f"AvgPool{n}d", lambda c, n=n: (
            (), dict(_pool_args(c, n, "avg"), ceil_mode=c.flag(),
                     count_include_pad=c.flag(True))), n)
    for n in (1, 2):
        _layer(f"LPPool{n}d", lambda c, n=n: (
            (c.norm_type(), c.geom(n)), dict(ceil_mode=c.flag())), n)
    _layer("ReLU", lambda c: ((), {}), 2)
    _layer("Flatten", lambda c: ((), dict(start_dim=c.int_value(1, 2),
                                         end_dim=c.pick([-1, 2, 3, 10**20]))), 2)
    _layer("Dropout", lambda c: ((), dict(p=c.pick([0.5, 0.0, 1.0, -0.1, 2, "p"]),
                                          rng=0)), 2)
    _layer("BatchNorm2d", lambda c: ((c.int_value(3, 3),), dict(
        eps=c.pick([1e-5, 0.0, -1.0, np.nan]), momentum=c.pick([0.1, None, 2.0]))), 2)
    _layer("Linear", lambda c: ((c.int_value(4, 4), c.int_value(1, 3)),
                                dict(bias=c.flag(True), rng=0)), 0)
    _layer("GlobalAvgPool2d", lambda c: ((), {}), 2)
    _layer("AdaptiveAvgPool2d", lambda c: ((c.pick([1, (1, 1), 2, (2, 3), 0,
                                                      None, 2**40]),), {}), 2)
    _layer("LocallyConnected2d", lambda c: (
        (3, c.int_value(1, 2), c.pick([(4, 4), (5, 3), 4, (0, 4), 2**40]),
         c.geom(2)), dict(stride=c.geom(2), padding=c.geom(2, 0, 1),
                          bias=c.flag(True), rng=0)), 2)
    _layer("Sequential", lambda c: ((c.pick([1, 2, 3]), c.geom(2)), {}), 2,
           make=lambda k, pool: L.Sequential(L.Conv2d(3, 2, k, rng=0), L.ReLU(),
                                             L.MaxPool2d(pool, ceil_mode=True)))
    _layer("Residual", lambda c: ((c.flag(),), {}), 2,
           make=lambda relu: L.Residual(L.Conv2d(3, 3, 3, padding=1, rng=0),
                                        shortcut=L.ReLU() if relu is True else None))
    _layer("basic_block", lambda c: ((3, c.pick([3, 4]), c.geom(2)),
                                     dict(rng=0)), 2)
    REGISTRY["layers.Layer"] = Entry(_model_file, _load_model, None)
    REGISTRY["layers.no_grad"] = Entry(_no_grad_input, _no_grad_run("fastconv"),
                                       _no_grad_run("reference"))


def _no_grad_input(c):
    x = c.array(_batch(c, 2, c.pick([3, 1])), dtype=c.dtype() if c.hostile() else np.float32)
    return (x, c.flag()), {}


def _no_grad_run(backend):
    def run(x, train):
        model = L.Sequential(L.Conv2d(3, 4, 3, padding=1, rng=0), L.BatchNorm2d(4), L.ReLU(),
                             L.basic_block(4, 4, rng=1), L.GlobalAvgPool2d(), L.Flatten(),
                             L.Linear(4, 2, rng=2))
        model.set_backend(backend).train(train is True)
        with L.no_grad():
            return model(x)
    return run


_ZIP = io.BytesIO()
with zipfile.ZipFile(_ZIP, "w") as _z:
    _z.writestr("0.weight.npy", b"\x93NUMPY garbage")


def _model_file(c):
    """A file for Layer.load: a good one, or empty, corrupt, an .npy, a
    pickle, wrong keys, dtypes or shapes, object arrays, truncated."""
    good = {"weight": np.zeros((2, 3, 2, 2), np.float32),
            "bias": np.zeros(2, np.float32)}
    kind = c.below(12) if c.hostile(60) else 0
    buf = io.BytesIO()
    if kind == 1:
        data = b""
    elif kind == 2:
        data = bytes(c.rng().integers(0, 256, c.small(1, 200), dtype=np.uint8))
    elif kind == 3:
        np.save(buf, good["weight"])
        data = buf.getvalue()
    elif kind == 4:
        import pickle
        data = pickle.dumps(good)
    elif kind == 5:
        np.savez(buf, **{k: v.astype(c.pick(BAD_DTYPES[:7] + (np.float64,)))
                         for k, v in good.items()})
        data = buf.getvalue()
    elif kind == 6:
        np.savez(buf, weight=good["weight"][:1], bias=good["bias"])
        data = buf.getvalue()
    elif kind == 7:
        np.savez(buf, weight=np.array([None], object))
        data = buf.getvalue()
    elif kind == 8:
        np.savez(buf, **good)
        data = buf.getvalue()[:c.small(1, 250)]
    elif kind == 9:
        data = _ZIP.getvalue()
    elif kind == 10:
        np.savez(buf, other=good["bias"])
        data = buf.getvalue()
    else:
        np.savez(buf, **good)
        data = buf.getvalue()
    return (data,), dict(strict=c.flag(True))


def _load_model(data, strict=True):
    fd, path = tempfile.mkstemp(suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        model = L.Conv2d(3, 2, 2, rng=0)
        return model.load(path, strict=strict)
    finally:
        os.unlink(path)


_functions()
_layers()


# --------------------------------------------------------------------------
# running one case
# --------------------------------------------------------------------------

ALLOWED = (ValueError, TypeError, MemoryError)
# training-mode BatchNorm normalises by the batch's spread: with two nearly
# equal values per channel float32 rounding is amplified without bound, so
# these twins are compared by shapes, dtypes and errors only
ILL_CONDITIONED = {"layers.BatchNorm2d", "layers.basic_block", "layers.no_grad"}
# the twin (NumPy) runs only on cheap geometry: its time and memory grow with
# the padded input and the kernel taps by design (it is the oracle); every
# other case still checks the compiled call
TWIN_INT_LIMIT = 32


def _arrays(obj, out):
    if isinstance(obj, np.ndarray):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _arrays(v, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _arrays(v, out)
    return out


def _ints(obj, out):
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        out.append(abs(int(obj)))
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _ints(v, out)
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "iuO" and obj.size < 8:
        for v in obj.ravel():
            _ints(v, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _ints(v, out)
    return out


def _copy_keeping_flags(obj):
    """copy.deepcopy, with each array's read-only flag kept (a read-only
    out= must stay one for the twin)."""
    new = copy.deepcopy(obj)
    for a, b in zip(_arrays(obj, []), _arrays(new, [])):
        b.flags.writeable = a.flags.writeable
    return _restride(new, obj)


def _restride(new, old):
    """``new`` with each array that ``old`` holds non-C-contiguous replaced
    by a non-contiguous copy (deepcopy makes them contiguous, and out=
    arguments are accepted or refused by their layout)."""
    if isinstance(new, np.ndarray):
        if old.flags.c_contiguous or new.dtype.kind == "O":
            return new
        spread = np.empty(new.shape + (2,), new.dtype)[..., 0]
        spread[...] = new
        spread.flags.writeable = old.flags.writeable
        return spread
    if isinstance(new, (tuple, list)):
        return type(new)(_restride(n, o) for n, o in zip(new, old))
    if isinstance(new, dict):
        return {k: _restride(new[k], old[k]) for k in new}
    return new


def _call(fn, args, kwargs, name, allowed, writes=()):
    checked = ([a for i, a in enumerate(args) if i not in writes],
               {k: v for k, v in kwargs.items() if k not in writes})
    arrays = _arrays(checked, [])
    before = [(a, a.copy(order="K"), a.flags.writeable) for a in arrays]
    try:
        result, error = fn(*args, **kwargs), None
    except allowed as exc:
        result, error = None, exc
    except Exception as exc:                      # noqa: BLE001 - the finding
        raise FuzzFailure(f"{name} raised {type(exc).__name__}: {exc}") from exc
    for a, copy_, writeable in before:
        same = (all(u is v for u, v in zip(a.ravel(), copy_.ravel()))
                if a.dtype.kind == "O" else a.tobytes() == copy_.tobytes())
        if a.flags.writeable != writeable or not same:
            raise FuzzFailure(f"{name} modified an input array")
    return result, error


def _flat(result):
    if isinstance(result, (tuple, list)):
        return [v for r in result for v in _flat(r)]
    if isinstance(result, dict):
        return [v for k in sorted(result) for v in _flat(result[k])]
    return [result]


def _finite_inputs(args, kwargs):
    for a in _arrays((args, kwargs), []):
        if a.dtype.kind == "f" and not (np.isfinite(a).all() and
                                        np.abs(a).max(initial=0) <= 1e4):
            return False
    return True


def _compare(name, got, want, exact_values):
    g, w = _flat(got), _flat(want)
    if len(g) != len(w):
        raise FuzzFailure(f"{name}: {len(g)} results, the twin gives {len(w)}")
    for a, b in zip(g, w):
        if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
            if type(a) is not type(b) or (a != b and a == a):
                raise FuzzFailure(f"{name}: result {a!r}, the twin {b!r}")
            continue
        if a.shape != b.shape or a.dtype != b.dtype:
            raise FuzzFailure(f"{name}: result {a.dtype}{a.shape}, the twin "
                              f"{b.dtype}{b.shape}")
        if exact_values and a.dtype.kind == "f" and a.size:
            tol = 1e-4 if a.dtype == np.float32 else 1e-10
            scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(b), b, 0)))))
            if not np.allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True):
                bad = np.argwhere(~np.isclose(a, b, rtol=tol, atol=tol * scale,
                                              equal_nan=True))[0]
                raise FuzzFailure(f"{name}: values differ from the twin at "
                                  f"{tuple(bad)}: {a[tuple(bad)]} vs {b[tuple(bad)]}")
        elif a.dtype.kind in "iu" and not np.array_equal(a, b):
            raise FuzzFailure(f"{name}: integer results differ from the twin")


def names():
    """The registry's names in a fixed order (the case's first byte picks)."""
    return sorted(REGISTRY)


def describe(data, name=None):
    """The call a case makes, as text (for failure reports)."""
    c = Choices(data)
    name = name or names()[c.below(len(REGISTRY))]
    c.level = c.pick([2, 0, 1, 2])
    try:
        args, kwargs = REGISTRY[name].build(c)
    except Exception as exc:                      # noqa: BLE001 - reported
        return f"{name}: builder failed: {exc!r}"
    def short(v):
        if isinstance(v, np.ndarray):
            flags = "" if v.flags.c_contiguous else " non-contiguous"
            flags += "" if v.flags.writeable else " read-only"
            return f"array({v.dtype}, {v.shape}{flags})"
        if isinstance(v, (tuple, list)):
            return type(v)(short(x) for x in v)
        if isinstance(v, type):
            return v.__name__
        return v
    return (f"{name}(*{short(tuple(args))!r}, "
            f"**{ {k: short(v) for k, v in kwargs.items()}!r})")


def run_case(data, name=None):
    """Run the call that ``data`` encodes (``name``: that entry's, else the
    first byte picks); raise FuzzFailure on a broken contract.  Returns the
    entry's name."""
    c = Choices(data)
    name = name or names()[c.below(len(REGISTRY))]
    c.level = c.pick([2, 0, 1, 2])
    entry = REGISTRY[name]
    before = fastconv.get_num_threads()
    allowed = ALLOWED + ((AssertionError,) if name == "gradcheck" else ())
    try:
        try:        # builders call fastconv too (shapes, layers to convert)
            args, kwargs = entry.build(c)
        except allowed:
            return name
        except Exception as exc:                  # noqa: BLE001 - the finding
            raise FuzzFailure(f"{name}: building the call raised "
                              f"{type(exc).__name__}: {exc}") from exc
        twin_args = _copy_keeping_flags((args, kwargs)) if entry.twin else None
        with np.errstate(all="ignore"):
            got, error = _call(entry.target, args, kwargs, name, allowed, entry.writes)
            if entry.twin is None or any(TWIN_INT_LIMIT < v < 2**62
                                         for v in _ints(twin_args, [])):
                return name
            want, twin_error = _call(entry.twin, *twin_args, name + " (twin)",
                                     allowed, entry.writes)
        if isinstance(error, MemoryError) or isinstance(twin_error, MemoryError):
            return name
        if type(error) is not type(twin_error):
            raise FuzzFailure(
                f"{name}: compiled {type(error).__name__ if error else 'returned'}"
                f" ({error}), twin {type(twin_error).__name__ if twin_error else 'returned'}"
                f" ({twin_error})")
        if error is None:
            _compare(name, got, want, _finite_inputs(args, kwargs)
                     and name not in ILL_CONDITIONED)
        return name
    finally:
        fastconv.set_num_threads(before)
