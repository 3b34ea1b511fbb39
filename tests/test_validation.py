"""Bad input -> ValueError / TypeError naming the argument, identically in both implementations."""

import numpy as np
import pytest

import fastconv
import fastconv.reference

BAD_DTYPES = [np.int32, np.int64, np.complex128, object, np.float16, np.bool_]
BAD_DTYPE_IDS = ["int32", "int64", "complex128", "object", "float16", "bool"]

# Valid base inputs; each case below breaks exactly one thing.
X = (2, 3, 8, 8)
W = (4, 3, 3, 3)
CONV_OUT = (2, 4, 6, 6)  # conv2d(x, w) with stride 1, padding 0
POOL_OUT = (2, 3, 4, 4)  # 2x2 pooling, stride 2
COLS = (2, 27, 36)  # im2col(x, 3)


def a(shape, dtype=np.float64):
    return np.zeros(shape, dtype=dtype)


def idx(shape=POOL_OUT, value=0):
    return np.full(shape, value, dtype=np.int64)


def _cases():
    c = []

    def add(id_, call, exc, match):
        c.append(pytest.param(call, exc, match, id=id_))

    # ---------------- im2col ----------------
    add("im2col-x-rank3", lambda m: m.im2col(a(X[1:]), 3), ValueError, r"\bx\b")
    add("im2col-x-rank5", lambda m: m.im2col(a((1,) + X), 3), ValueError, r"\bx\b")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"im2col-x-{name}", lambda m, dt=dt: m.im2col(a(X, dt), 3), TypeError, r"\bx\b")
    add("im2col-kernel0", lambda m: m.im2col(a(X), 0), ValueError, "kernel_size")
    add("im2col-kernel-neg", lambda m: m.im2col(a(X), (3, -1)), ValueError, "kernel_size")
    add("im2col-kernel-too-big", lambda m: m.im2col(a(X), 9), ValueError, "kernel_size")
    add("im2col-kernel-too-big-w", lambda m: m.im2col(a((2, 3, 8, 5)), (3, 6)), ValueError, "kernel_size")
    add("im2col-dilated-too-big", lambda m: m.im2col(a(X), 3, dilation=4), ValueError, "kernel_size|dilation")
    add("im2col-stride0", lambda m: m.im2col(a(X), 3, stride=0), ValueError, "stride")
    add("im2col-stride-neg", lambda m: m.im2col(a(X), 3, stride=(1, -2)), ValueError, "stride")
    add("im2col-dilation0", lambda m: m.im2col(a(X), 3, dilation=0), ValueError, "dilation")
    add("im2col-padding-neg", lambda m: m.im2col(a(X), 3, padding=-1), ValueError, "padding")
    add("im2col-padding-neg-pair", lambda m: m.im2col(a(X), 3, padding=(0, -1)), ValueError, "padding")

    # ---------------- col2im ----------------
    add("col2im-cols-rank2", lambda m: m.col2im(a(COLS[1:]), (8, 8), 3), ValueError, "cols")
    add("col2im-cols-rank4", lambda m: m.col2im(a(COLS + (1,)), (8, 8), 3), ValueError, "cols")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"col2im-cols-{name}", lambda m, dt=dt: m.col2im(a(COLS, dt), (8, 8), 3), TypeError, "cols")
    add("col2im-rows-not-multiple", lambda m: m.col2im(a((2, 28, 36)), (8, 8), 3), ValueError, "cols")
    add("col2im-L-mismatch", lambda m: m.col2im(a((2, 27, 35)), (8, 8), 3), ValueError, "cols|output_size")
    add("col2im-L-mismatch-stride", lambda m: m.col2im(a(COLS), (8, 8), 3, stride=2), ValueError,
        "cols|output_size")
    add("col2im-output0", lambda m: m.col2im(a((2, 27, 0)), (0, 8), 3), ValueError, "output_size")
    add("col2im-output-neg", lambda m: m.col2im(a(COLS), (-8, 8), 3), ValueError, "output_size")
    add("col2im-kernel-bigger-than-output", lambda m: m.col2im(a((2, 27, 1)), (2, 2), 3), ValueError,
        "kernel_size|output_size")
    add("col2im-kernel0", lambda m: m.col2im(a(COLS), (8, 8), 0), ValueError, "kernel_size")
    add("col2im-stride0", lambda m: m.col2im(a(COLS), (8, 8), 3, stride=0), ValueError, "stride")
    add("col2im-dilation0", lambda m: m.col2im(a(COLS), (8, 8), 3, dilation=0), ValueError, "dilation")
    add("col2im-padding-neg", lambda m: m.col2im(a(COLS), (8, 8), 3, padding=-1), ValueError, "padding")

    # ---------------- conv2d ----------------
    add("conv2d-x-rank3", lambda m: m.conv2d(a(X[1:]), a(W)), ValueError, r"\bx\b")
    add("conv2d-weight-rank3", lambda m: m.conv2d(a(X), a(W[1:])), ValueError, "weight")
    add("conv2d-weight-rank5", lambda m: m.conv2d(a(X), a(W + (1,))), ValueError, "weight")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"conv2d-x-{name}", lambda m, dt=dt: m.conv2d(a(X, dt), a(W)), TypeError, r"\bx\b")
        add(f"conv2d-weight-{name}", lambda m, dt=dt: m.conv2d(a(X), a(W, dt)), TypeError, "weight")
        add(f"conv2d-bias-{name}", lambda m, dt=dt: m.conv2d(a(X), a(W), a((4,), dt)), TypeError, "bias")
    add("conv2d-bias-len", lambda m: m.conv2d(a(X), a(W), a((5,))), ValueError, "bias")
    add("conv2d-bias-2d", lambda m: m.conv2d(a(X), a(W), a((4, 1))), ValueError, "bias")
    add("conv2d-channel-mismatch", lambda m: m.conv2d(a(X), a((4, 2, 3, 3))), ValueError, "weight")
    add("conv2d-channel-mismatch-groups", lambda m: m.conv2d(a((2, 4, 8, 8)), a((4, 1, 3, 3)), groups=2),
        ValueError, "weight|groups")
    add("conv2d-groups-not-dividing-C", lambda m: m.conv2d(a(X), a((4, 1, 3, 3)), groups=2), ValueError, "groups")
    add("conv2d-groups-not-dividing-F", lambda m: m.conv2d(a(X), a((4, 1, 3, 3)), groups=3), ValueError, "groups")
    add("conv2d-groups0", lambda m: m.conv2d(a(X), a(W), groups=0), ValueError, "groups")
    add("conv2d-groups-neg", lambda m: m.conv2d(a(X), a(W), groups=-1), ValueError, "groups")
    add("conv2d-kernel-too-big", lambda m: m.conv2d(a(X), a((4, 3, 9, 9))), ValueError, "weight|kernel")
    add("conv2d-kernel-too-big-dilated", lambda m: m.conv2d(a(X), a(W), dilation=4), ValueError,
        "weight|kernel|dilation")
    add("conv2d-stride0", lambda m: m.conv2d(a(X), a(W), stride=0), ValueError, "stride")
    add("conv2d-stride-neg", lambda m: m.conv2d(a(X), a(W), stride=-2), ValueError, "stride")
    add("conv2d-dilation0", lambda m: m.conv2d(a(X), a(W), dilation=0), ValueError, "dilation")
    add("conv2d-padding-neg", lambda m: m.conv2d(a(X), a(W), padding=-1), ValueError, "padding")
    add("conv2d-padding-bad-string", lambda m: m.conv2d(a(X), a(W), padding="full"), ValueError, "padding")
    add("conv2d-padding-same-strided", lambda m: m.conv2d(a(X), a(W), stride=2, padding="same"), ValueError,
        "padding|stride")
    add("conv2d-bad-algorithm", lambda m: m.conv2d(a(X), a(W), algorithm="fft"), ValueError, "algorithm")

    # ---------------- conv2d_backward ----------------
    add("conv2d_bwd-grad-shape-H", lambda m: m.conv2d_backward(a((2, 4, 7, 6)), a(X), a(W)), ValueError, "grad_out")
    add("conv2d_bwd-grad-shape-F", lambda m: m.conv2d_backward(a((2, 5, 6, 6)), a(X), a(W)), ValueError, "grad_out")
    add("conv2d_bwd-grad-shape-N", lambda m: m.conv2d_backward(a((1, 4, 6, 6)), a(X), a(W)), ValueError, "grad_out")
    add("conv2d_bwd-grad-shape-stride", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W), stride=2), ValueError,
        "grad_out")
    add("conv2d_bwd-grad-rank3", lambda m: m.conv2d_backward(a(CONV_OUT[1:]), a(X), a(W)), ValueError, "grad_out")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"conv2d_bwd-grad-{name}", lambda m, dt=dt: m.conv2d_backward(a(CONV_OUT, dt), a(X), a(W)),
            TypeError, "grad_out")
    add("conv2d_bwd-x-int", lambda m: m.conv2d_backward(a(CONV_OUT), a(X, np.int64), a(W)), TypeError, r"\bx\b")
    add("conv2d_bwd-weight-f16", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W, np.float16)), TypeError,
        "weight")
    add("conv2d_bwd-x-rank3", lambda m: m.conv2d_backward(a(CONV_OUT), a(X[1:]), a(W)), ValueError, r"\bx\b")
    add("conv2d_bwd-weight-rank3", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W[1:])), ValueError, "weight")
    add("conv2d_bwd-channel-mismatch", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a((4, 2, 3, 3))),
        ValueError, "weight")
    add("conv2d_bwd-groups-not-dividing", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a((4, 1, 3, 3)), groups=2),
        ValueError, "groups")
    add("conv2d_bwd-groups0", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W), groups=0), ValueError, "groups")
    add("conv2d_bwd-kernel-too-big", lambda m: m.conv2d_backward(a((2, 4, 1, 1)), a(X), a((4, 3, 9, 9))),
        ValueError, "weight|kernel")
    add("conv2d_bwd-stride0", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W), stride=0), ValueError, "stride")
    add("conv2d_bwd-dilation0", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W), dilation=0), ValueError,
        "dilation")
    add("conv2d_bwd-padding-neg", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W), padding=-1), ValueError,
        "padding")
    add("conv2d_bwd-padding-bad-string", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W), padding="full"),
        ValueError, "padding")
    add("conv2d_bwd-bad-algorithm", lambda m: m.conv2d_backward(a(CONV_OUT), a(X), a(W), algorithm="fft"),
        ValueError, "algorithm")

    # ---------------- max_pool2d ----------------
    add("max_pool-x-rank3", lambda m: m.max_pool2d(a(X[1:]), 2), ValueError, r"\bx\b")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"max_pool-x-{name}", lambda m, dt=dt: m.max_pool2d(a(X, dt), 2), TypeError, r"\bx\b")
    add("max_pool-kernel0", lambda m: m.max_pool2d(a(X), 0), ValueError, "kernel_size")
    add("max_pool-kernel-too-big", lambda m: m.max_pool2d(a(X), 9), ValueError, "kernel_size")
    add("max_pool-kernel-too-big-dilated", lambda m: m.max_pool2d(a(X), 3, dilation=4), ValueError,
        "kernel_size|dilation")
    add("max_pool-stride0", lambda m: m.max_pool2d(a(X), 2, stride=0), ValueError, "stride")
    add("max_pool-stride-neg", lambda m: m.max_pool2d(a(X), 2, stride=-1), ValueError, "stride")
    add("max_pool-dilation0", lambda m: m.max_pool2d(a(X), 2, dilation=0), ValueError, "dilation")
    add("max_pool-padding-neg", lambda m: m.max_pool2d(a(X), 2, padding=-1), ValueError, "padding")
    # as in torch: padding at most half of the (dilated) window
    add("max_pool-padding-over-half", lambda m: m.max_pool2d(a(X), 2, padding=2), ValueError, "padding")

    # ---------------- max_pool2d_backward ----------------
    add("max_bwd-index-too-big", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(value=64), X), ValueError,
        "indices")
    add("max_bwd-index-huge", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(value=10**12), X), ValueError,
        "indices")
    add("max_bwd-index-negative", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(value=-1), X), ValueError,
        "indices")

    def one_bad_index(m):
        i = idx()
        i[1, 2, 3, 3] = 64  # a single out-of-range entry, last in memory
        return m.max_pool2d_backward(a(POOL_OUT), i, X)

    add("max_bwd-one-index-too-big", one_bad_index, ValueError, "indices")
    add("max_bwd-index-float", lambda m: m.max_pool2d_backward(a(POOL_OUT), a(POOL_OUT), X), TypeError, "indices")
    add("max_bwd-index-complex", lambda m: m.max_pool2d_backward(a(POOL_OUT), a(POOL_OUT, np.complex64), X),
        TypeError, "indices")
    add("max_bwd-index-shape", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx((2, 3, 4, 3)), X), ValueError,
        "indices|grad_out")
    add("max_bwd-index-rank3", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx((2, 3, 16)), X), ValueError,
        "indices|grad_out")
    add("max_bwd-grad-rank3", lambda m: m.max_pool2d_backward(a(POOL_OUT[1:]), idx(POOL_OUT[1:]), X), ValueError,
        "grad_out")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"max_bwd-grad-{name}", lambda m, dt=dt: m.max_pool2d_backward(a(POOL_OUT, dt), idx(), X), TypeError,
            "grad_out")
    add("max_bwd-input_shape-N", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(), (3, 3, 8, 8)), ValueError,
        "input_shape|grad_out")
    add("max_bwd-input_shape-C", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(), (2, 4, 8, 8)), ValueError,
        "input_shape|grad_out")
    add("max_bwd-input_shape-plane-too-small",
        lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(value=20), (2, 3, 4, 4)), ValueError,
        "indices|input_shape")
    add("max_bwd-input_shape-zero-H", lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(), (2, 3, 0, 8)), ValueError,
        "input_shape|indices")

    # ---------------- avg_pool2d ----------------
    add("avg_pool-x-rank3", lambda m: m.avg_pool2d(a(X[1:]), 2), ValueError, r"\bx\b")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"avg_pool-x-{name}", lambda m, dt=dt: m.avg_pool2d(a(X, dt), 2), TypeError, r"\bx\b")
    add("avg_pool-kernel0", lambda m: m.avg_pool2d(a(X), 0), ValueError, "kernel_size")
    add("avg_pool-kernel-too-big", lambda m: m.avg_pool2d(a(X), 9), ValueError, "kernel_size")
    add("avg_pool-kernel-too-big-w", lambda m: m.avg_pool2d(a(X), (2, 9)), ValueError, "kernel_size")
    add("avg_pool-stride0", lambda m: m.avg_pool2d(a(X), 2, stride=0), ValueError, "stride")
    add("avg_pool-stride-neg", lambda m: m.avg_pool2d(a(X), 2, stride=(2, -1)), ValueError, "stride")
    add("avg_pool-padding-neg", lambda m: m.avg_pool2d(a(X), 2, padding=-1), ValueError, "padding")
    add("avg_pool-padding-over-half", lambda m: m.avg_pool2d(a(X), 3, padding=2), ValueError, "padding")

    # ---------------- avg_pool2d_backward ----------------
    add("avg_bwd-grad-shape-H", lambda m: m.avg_pool2d_backward(a((2, 3, 5, 4)), X, 2), ValueError,
        "grad_out|input_shape")
    add("avg_bwd-grad-shape-C", lambda m: m.avg_pool2d_backward(a((2, 2, 4, 4)), X, 2), ValueError,
        "grad_out|input_shape")
    add("avg_bwd-grad-shape-stride", lambda m: m.avg_pool2d_backward(a(POOL_OUT), X, 2, stride=1), ValueError,
        "grad_out|input_shape")
    add("avg_bwd-grad-rank3", lambda m: m.avg_pool2d_backward(a(POOL_OUT[1:]), X, 2), ValueError, "grad_out")
    for dt, name in zip(BAD_DTYPES, BAD_DTYPE_IDS):
        add(f"avg_bwd-grad-{name}", lambda m, dt=dt: m.avg_pool2d_backward(a(POOL_OUT, dt), X, 2), TypeError,
            "grad_out")
    add("avg_bwd-kernel0", lambda m: m.avg_pool2d_backward(a(POOL_OUT), X, 0), ValueError, "kernel_size")
    add("avg_bwd-kernel-too-big", lambda m: m.avg_pool2d_backward(a((2, 3, 1, 1)), X, 9), ValueError,
        "kernel_size")
    add("avg_bwd-stride0", lambda m: m.avg_pool2d_backward(a(POOL_OUT), X, 2, stride=0), ValueError, "stride")
    add("avg_bwd-padding-neg", lambda m: m.avg_pool2d_backward(a(POOL_OUT), X, 2, padding=-1), ValueError,
        "padding")
    add("avg_bwd-input_shape-zero-W", lambda m: m.avg_pool2d_backward(a(POOL_OUT), (2, 3, 8, 0), 2), ValueError,
        "input_shape|kernel_size")
    return c


CASES = _cases()

# The contract fixes "int or pair"; other lengths must be rejected, but whether a wrong-length
# sequence is a TypeError (wrong kind of value) or a ValueError (wrong value) is not fixed,
# so either is accepted here -- test_same_exception_type_in_both_impls still pins both
# implementations to the same one.
SEQUENCE_CASES = [
    pytest.param(lambda m: m.im2col(a(X), (3, 3, 3)), "kernel_size", id="im2col-kernel-triple"),
    pytest.param(lambda m: m.im2col(a(X), (3,)), "kernel_size", id="im2col-kernel-single"),
    pytest.param(lambda m: m.im2col(a(X), 3, stride=(1, 1, 1)), "stride", id="im2col-stride-triple"),
    pytest.param(lambda m: m.conv2d(a(X), a(W), padding=(1, 1, 1)), "padding", id="conv2d-padding-triple"),
    pytest.param(lambda m: m.conv2d(a(X), a(W), dilation=(1,)), "dilation", id="conv2d-dilation-single"),
    pytest.param(lambda m: m.max_pool2d(a(X), (2, 2, 2)), "kernel_size", id="max_pool-kernel-triple"),
    pytest.param(lambda m: m.col2im(a(COLS), (8, 8, 8), 3), "output_size", id="col2im-output-triple"),
    pytest.param(lambda m: m.max_pool2d_backward(a(POOL_OUT), idx(), (2, 3, 8)), "input_shape",
                 id="max_bwd-input_shape-len3"),
    pytest.param(lambda m: m.avg_pool2d_backward(a(POOL_OUT), (3, 8, 8), 2), "input_shape",
                 id="avg_bwd-input_shape-len3"),
    pytest.param(lambda m: m.im2col(a(X), 2.5), "kernel_size", id="im2col-kernel-float"),
]


@pytest.mark.parametrize("call, exc, match", CASES)
def test_bad_input_raises(call, exc, match, impl):
    with pytest.raises(exc, match=match):
        call(impl)


@pytest.mark.parametrize("call, match", SEQUENCE_CASES)
def test_bad_sequence_argument_raises(call, match, impl):
    with pytest.raises((TypeError, ValueError), match=match):
        call(impl)


@pytest.mark.parametrize("call", [p.values[0] for p in CASES + SEQUENCE_CASES],
                         ids=[p.id for p in CASES + SEQUENCE_CASES])
def test_same_exception_type_in_both_impls(call):
    types = []
    for m in (fastconv, fastconv.reference):
        try:
            call(m)
        except Exception as e:  # noqa: BLE001 - the type is what is compared
            types.append(type(e))
        else:
            types.append(None)
    assert types[0] is types[1], f"compiled raised {types[0]}, reference raised {types[1]}"
    assert types[0] in (TypeError, ValueError), types


def test_bad_max_pool2d_backward_indices_do_not_write(impl):
    # A rejected call must not touch anything: inputs unchanged, the error is raised.
    g = np.arange(np.prod(POOL_OUT), dtype=np.float64).reshape(POOL_OUT)
    i = idx(value=5)
    i[0, 0, 0, 0] = 64
    g0, i0 = g.copy(), i.copy()
    with pytest.raises(ValueError, match="indices"):
        impl.max_pool2d_backward(g, i, X)
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_array_equal(i, i0)


def _shape_strings(shape):
    shape = tuple(shape)
    return {str(shape), str(list(shape)), "x".join(map(str, shape)), "×".join(map(str, shape))}


@pytest.mark.parametrize(
    "call, shapes",
    [
        pytest.param(lambda m: m.conv2d(a(X), a((4, 2, 3, 3))), [X, (4, 2, 3, 3)], id="conv2d-channels"),
        pytest.param(lambda m: m.im2col(a((2, 3, 8)), 3), [(2, 3, 8)], id="im2col-rank"),
        pytest.param(lambda m: m.conv2d_backward(a((2, 4, 7, 6)), a(X), a(W)), [(2, 4, 7, 6)], id="conv2d_bwd-grad"),
        pytest.param(lambda m: m.max_pool2d(a(X), 9), [X], id="max_pool-kernel-too-big"),
    ],
)
def test_error_message_names_shapes(call, shapes, impl):
    with pytest.raises((TypeError, ValueError)) as info:
        call(impl)
    msg = str(info.value)
    for shape in shapes:
        assert any(s in msg for s in _shape_strings(shape)), f"shape {shape} not in message: {msg!r}"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda m: m.im2col(a(X), 9, padding=1), id="im2col-kernel9-pad1"),
        pytest.param(lambda m: m.conv2d(a(X), a((4, 3, 9, 9)), padding=1), id="conv2d-kernel9-pad1"),
        pytest.param(lambda m: m.conv2d(a(X), a((4, 3, 4, 4)), padding="same"), id="conv2d-same-even"),
        pytest.param(lambda m: m.max_pool2d(a(X), 8), id="max_pool-kernel-eq-input"),
        pytest.param(lambda m: m.avg_pool2d(a(X), 3, padding=1, ceil_mode=True), id="avg_pool-ceil"),
        pytest.param(lambda m: m.col2im(a((2, 27, 1)), (3, 3), 3), id="col2im-kernel-eq-output"),
    ],
)
def test_boundary_inputs_are_accepted(call, impl):
    # Positive controls for the checks above: legal edge cases must not raise.
    call(impl)


# ---------------- teaching hints ----------------

def test_nhwc_input_gets_a_transpose_hint(impl):
    x_nhwc = a((2, 8, 8, 3))            # X in channels-last order
    with pytest.raises(ValueError, match=r"NHWC.*x\.transpose\(0, 3, 1, 2\)"):
        impl.conv2d(x_nhwc, a(W))
    # The hinted fix is the right one: the transposed array is accepted.
    assert impl.conv2d(x_nhwc.transpose(0, 3, 1, 2), a(W)).shape == CONV_OUT


def test_plain_channel_mismatch_has_no_nhwc_hint(impl):
    with pytest.raises(ValueError) as info:
        impl.conv2d(a((2, 5, 8, 8)), a(W))
    assert "NHWC" not in str(info.value)


@pytest.mark.parametrize("layer", [
    lambda: fastconv.layers.Conv2d(3, 4, 3, dtype=np.float64),
    lambda: fastconv.layers.BatchNorm2d(3, dtype=np.float64),
], ids=["Conv2d", "BatchNorm2d"])
def test_layers_give_the_nhwc_hint(layer):
    with pytest.raises(ValueError, match=r"NHWC.*transpose\(0, 3, 1, 2\)"):
        layer()(a((2, 8, 8, 3)))


@pytest.mark.parametrize("call", [
    lambda m: m.conv2d(a(X), a(W), dilation=0),
    lambda m: m.im2col(a(X), 3, dilation=(1, 0)),
    lambda m: m.max_pool2d(a(X), 2, dilation=0),
], ids=["conv2d", "im2col", "max_pool2d"])
def test_dilation_zero_explains_the_convention(call, impl):
    with pytest.raises(ValueError, match=r"dilation.*1 is a dense kernel"):
        call(impl)


def test_negative_dilation_gets_no_convention_hint(impl):
    with pytest.raises(ValueError) as info:
        impl.conv2d(a(X), a(W), dilation=-1)
    assert "dense" not in str(info.value)


def test_conv1d_nlc_input_gets_a_transpose_hint(impl):
    x_nlc = np.zeros((2, 16, 3), np.float32)        # (N, L, C)
    w = np.zeros((4, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"NLC.*x\.transpose\(0, 2, 1\)"):
        impl.conv1d(x_nlc, w)
    assert impl.conv1d(x_nlc.transpose(0, 2, 1), w).shape == (2, 4, 14)


# ---------------------------------------------------------------- absurd sizes

_HUGE_PADDING = [2**40, 2**62, 2**64, 10**30]


@pytest.mark.parametrize("p", _HUGE_PADDING)
@pytest.mark.parametrize("call", [
    lambda m, p: m.conv1d(a((2, 3, 16)), a((4, 3, 3)), padding=p * 2**22),
    lambda m, p: m.conv1d(a((0, 3, 16)), a((4, 3, 3)), padding=p * 2**22),
    lambda m, p: m.conv2d(a(X), a(W), padding=p),
    lambda m, p: m.conv2d(a(X), a(W), padding=(0, p * 2**22)),
    lambda m, p: m.conv2d_backward(a((2, 4, 1, 1)), a(X), a(W), padding=p),
    lambda m, p: m.conv3d(a((1, 2, 4, 4, 4)), a((2, 2, 3, 3, 3)), padding=p),
    lambda m, p: m.im2col(a(X), 3, padding=p),
    lambda m, p: m.col2im(a((2, 27, 1)), (3, 3), 3, padding=(p * 2**22, 0)),
    lambda m, p: m.max_pool2d(a(X), 2 * p, 1, p),
    lambda m, p: m.avg_pool2d(a(X), (2 * p * 2**22, 1), 1, (p * 2**22, 0)),
    lambda m, p: m.max_pool1d(a((2, 3, 16)), 2 * p * 2**22, 1, p * 2**22),
    lambda m, p: m.avg_pool3d(a((1, 2, 4, 4, 4)), 2 * p, 1, p),
    lambda m, p: m.locally_connected2d(a(X), a((1, 1, 3, 3, 3, 4)), padding=p),
], ids=["conv1d", "conv1d-empty-batch", "conv2d", "conv2d-one-axis",
        "conv2d_backward", "conv3d", "im2col", "col2im", "max_pool2d",
        "avg_pool2d", "max_pool1d", "avg_pool3d", "locally_connected2d"])
def test_absurd_padding_is_a_value_error_naming_padding_and_shapes(call, p, impl):
    # Sizes no int64 index can reach: a ValueError, not OverflowError or
    # MemoryError from NumPy or the kernels.
    with pytest.raises(ValueError, match=r"padding .* makes the (padded input|output) "
                       r".*too large for (x|output_size) of shape \("):
        call(impl, p)


def test_large_but_indexable_padding_is_not_rejected_by_the_check(impl):
    # A long padded input, far below the limit: it runs.
    y = impl.conv1d(np.zeros((2, 3, 4), np.float32), np.zeros((4, 3, 3), np.float32),
                    padding=2**18)
    assert y.shape == (2, 4, 2**19 + 2)


# ---------------------------------------------------------------- issue 12
# Every integer that reaches the kernels is range-checked in one place
# (_validation.check_index_range): a ValueError naming the argument, never
# OverflowError (these raised it).

@pytest.mark.parametrize("call, name", [
    (lambda m: m.conv2d(a(X), a(W), stride=2**63), "stride"),
    (lambda m: m.conv2d(a(X), a((4, 3, 1, 1)), dilation=2**64), "dilation"),
    (lambda m: m.im2col(a(X), 1, stride=(1, 2**70)), "stride"),
    (lambda m: m.max_pool2d(a(X), 2, stride=2**63), "stride"),
    (lambda m: m.avg_pool3d(a((1, 1, 2, 2, 2)), 2, stride=(1, 1, 2**63)), "stride"),
    (lambda m: m.max_pool2d_backward(a((2, 3, 1, 1)), idx((2, 3, 1, 1)),
                                     (2, 3, 2**40, 2**40)), "input_shape"),
    (lambda m: m.max_pool2d_backward(a((0, 3, 1, 1)), idx((0, 3, 1, 1)),
                                     (0, 3, 2**70, 1)), "input_shape"),
    (lambda m: m.avg_pool2d_backward(a((2, 3, 1, 1)), (2, 3, 2**70, 2), 2), "input_shape"),
    (lambda m: m.max_pool1d_backward(a((2, 3, 1)), idx((2, 3, 1)), (2, 3, 2**64)),
     "input_shape"),
    (lambda m: m.global_avg_pool2d_backward(a((2, 3, 1, 1)), (2, 3, 2**62, 1)),
     "input_shape"),
    (lambda m: m.lp_pool2d(a(X), 10**400, 2), "norm_type"),
], ids=["conv2d-stride", "conv2d-dilation", "im2col-stride", "max_pool-stride",
        "avg_pool3d-stride", "max_bwd-shape", "max_bwd-shape-empty",
        "avg_bwd-shape", "max1d_bwd-shape", "global_bwd-shape", "lp-norm"])
def test_integers_out_of_range_are_value_errors(call, name, impl):
    with pytest.raises(ValueError, match=name):
        call(impl)


@pytest.mark.parametrize("call, name", [
    (lambda m: m.max_pool2d(a(X), 2, ceil_mode="yes"), "ceil_mode"),
    (lambda m: m.max_pool2d(a(X), 2, ceil_mode=1), "ceil_mode"),
    (lambda m: m.max_pool2d(a(X), 2, return_indices="no"), "return_indices"),
    (lambda m: m.avg_pool2d(a(X), 2, count_include_pad="False"), "count_include_pad"),
    (lambda m: m.avg_pool2d_backward(a(POOL_OUT), X, 2, count_include_pad=None),
     "count_include_pad"),
    (lambda m: m.max_pool1d(a((2, 3, 8)), 2, return_indices=[True]), "return_indices"),
    (lambda m: m.avg_pool1d(a((2, 3, 8)), 2, ceil_mode="no"), "ceil_mode"),
    (lambda m: m.max_pool3d(a((1, 1, 2, 2, 2)), 2, ceil_mode=0.0), "ceil_mode"),
    (lambda m: m.avg_pool3d(a((1, 1, 2, 2, 2)), 2, count_include_pad=2), "count_include_pad"),
    (lambda m: m.lp_pool2d(a(X), 2, 2, ceil_mode="yes"), "ceil_mode"),
], ids=["max-ceil-str", "max-ceil-int", "max-indices", "avg-count", "avg_bwd-count",
        "max1d-indices", "avg1d-ceil", "max3d-ceil", "avg3d-count", "lp-ceil"])
def test_flags_must_be_bools(call, name, impl):
    # A string such as "no" counted as true.
    with pytest.raises(TypeError, match=f"{name} must be a bool"):
        call(impl)


def test_numpy_bools_are_flags(impl):
    x = np.arange(2 * 3 * 7 * 7, dtype=np.float64).reshape(2, 3, 7, 7)
    y, i = impl.max_pool2d(x, 2, ceil_mode=np.bool_(True), return_indices=np.True_)
    np.testing.assert_array_equal(y, impl.max_pool2d(x, 2, ceil_mode=True))
    np.testing.assert_array_equal(
        impl.avg_pool2d(x, 3, 2, 1, count_include_pad=np.False_),
        impl.avg_pool2d(x, 3, 2, 1, count_include_pad=False))


def test_integer_arrays_are_shapes_everywhere(impl):
    # np.array(x.shape) was rejected by the backward passes only.
    x = np.arange(2 * 3 * 8 * 8, dtype=np.float64).reshape(X)
    gy = np.ones(POOL_OUT)
    want = impl.avg_pool2d_backward(gy, X, 2)
    np.testing.assert_array_equal(impl.avg_pool2d_backward(gy, np.array(X), 2), want)
    np.testing.assert_array_equal(
        impl.avg_pool2d_backward(gy, np.array(X, np.uint16), np.array([2, 2])), want)
    y, i = impl.max_pool2d(x, np.array([2, 2]), return_indices=True)
    np.testing.assert_array_equal(impl.max_pool2d_backward(gy, i, np.array(X)),
                                  impl.max_pool2d_backward(gy, i, X))
    np.testing.assert_array_equal(impl.col2im(impl.im2col(x, 3), np.array([8, 8]), 3),
                                  impl.col2im(impl.im2col(x, 3), (8, 8), 3))
    g1 = np.ones((2, 3, 4))
    np.testing.assert_array_equal(impl.avg_pool1d_backward(g1, np.array((2, 3, 8)), 2),
                                  impl.avg_pool1d_backward(g1, (2, 3, 8), 2))
    # not integers: still rejected
    for bad in (np.array(X, float), np.array(X, bool), np.array([X])):
        with pytest.raises((TypeError, ValueError), match="input_shape"):
            impl.avg_pool2d_backward(gy, bad, 2)


def test_select_algorithm_checks_its_arguments():
    assert fastconv.select_algorithm(np.array((8, 64, 56, 56)), (64, 64, 3, 3)) == "winograd"
    for bad, exc in [(dict(x_shape="ab"), TypeError), (dict(groups=2**70), None),
                     (dict(groups=0), ValueError), (dict(stride=0), ValueError),
                     (dict(weight_shape=(64, 64, 3)), ValueError)]:
        kw = {"x_shape": (8, 64, 56, 56), "weight_shape": (64, 64, 3, 3), **bad}
        if exc is None:       # a huge groups is just a shape fact, not an error
            fastconv.select_algorithm(**kw)
            continue
        with pytest.raises(exc):
            fastconv.select_algorithm(**kw)


def test_unaligned_arrays_are_copied_aligned(impl):
    # Found by the fuzz test under UBSan: a C-contiguous but unaligned view
    # (np.frombuffer at an odd offset) reached the kernels, which read whole
    # doubles: undefined behaviour ("load of misaligned address").
    x = np.arange(2 * 3 * 8 * 8, dtype=np.float64).reshape(X)
    raw = np.zeros(x.nbytes + 1, np.uint8)
    u = np.frombuffer(raw.data, np.float64, x.size, 1).reshape(X)
    u[...] = x
    assert u.flags.c_contiguous and not u.flags.aligned
    got = fastconv._validation.check_array(u, "x", "conv2d")
    assert got.flags.aligned and got.flags.c_contiguous
    np.testing.assert_array_equal(impl.conv2d(u, a(W) + 1), impl.conv2d(x, a(W) + 1))
    y, i = impl.max_pool2d(x, 2, return_indices=True)
    iu = np.frombuffer(np.zeros(i.nbytes + 4, np.uint8).data, np.int64, i.size, 4)
    iu = iu.reshape(i.shape)
    iu[...] = i
    np.testing.assert_array_equal(impl.max_pool2d_backward(y, iu, X),
                                  impl.max_pool2d_backward(y, i, X))
