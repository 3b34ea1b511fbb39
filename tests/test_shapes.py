"""fastconv.shapes: the cs231n notes' figures, checked against hand arithmetic
written here, against the kernels' actual outputs and against brute-force
receptive fields found by back-propagating an impulse through real layers."""

import itertools
import math
import re

import numpy as np
import pytest

from fastconv import layers as L
from fastconv import shapes as S

# ---------------------------------------------------------------------------
# output size
# ---------------------------------------------------------------------------

def test_alexnet_conv1_is_55():
    # The notes: 227x227x3 input, F=11, S=4, P=0 -> (227 - 11)/4 + 1 = 55.
    assert S.conv_output_size(227, 11, stride=4, padding=0) == 55
    assert S.conv_output_size(227, 11, stride=4, strict=True) == 55
    assert S.conv_output_size((227, 227), 11, stride=4) == (55, 55)
    assert S.explain_output_size(227, 11, stride=4) == "(227 - 11 + 2*0)/4 + 1 = 55"


def test_notes_example_4_5_is_invalid_in_strict_mode():
    # The notes: W=10, P=0, F=3, S=2 gives 4.5, "not an integer".
    with pytest.raises(ValueError) as info:
        S.conv_output_size(10, 3, stride=2, padding=0, strict=True)
    msg = str(info.value)
    assert "(10 - 3 + 2*0)/2 + 1 = 4.5 is not an integer" in msg
    # With stride 2 and W - F odd no symmetric padding can fit; it says so
    # and offers a stride and input sizes instead.
    assert "No symmetric padding fits stride 2 (W - F = 7 is odd" in msg
    assert "stride=1 (output 8)" in msg
    assert "9 (output 4)" in msg and "11 (output 5)" in msg
    # ... and the asymmetric padding that does fit: same_padding's (0, 1),
    # 10 - 3 + 0 + 1 = 8 = 4*2 -> 5 outputs.
    assert "pad (0, 1) (before, after), as same_padding gives: output 5" in msg
    # Not strict: torch's floor, and ceil_mode's round-up.
    assert S.conv_output_size(10, 3, stride=2) == 4
    assert S.conv_output_size(10, 3, stride=2, ceil_mode=True) == 5
    assert "torch floors it to 4" in S.explain_output_size(10, 3, stride=2)


def _fits(W, F, S_, P, d=1):
    n = W - (d * (F - 1) + 1) + 2 * P
    return n >= 0 and n % S_ == 0


GEOMETRIES = [(W, F, s, p, d) for W in (5, 9, 10, 13) for F in (1, 2, 3, 5)
              for s in (1, 2, 3) for p in (0, 1, 2) for d in (1, 2)
              if W + 2 * p >= d * (F - 1) + 1]


@pytest.mark.parametrize("W,F,s,p,d", GEOMETRIES)
def test_strict_raises_exactly_when_not_integer(W, F, s, p, d):
    ok = _fits(W, F, s, p, d)
    floor = (W + 2 * p - d * (F - 1) - 1) // s + 1          # torch's formula
    assert S.conv_output_size(W, F, s, p, d) == floor
    if ok:
        assert S.conv_output_size(W, F, s, p, d, strict=True) == floor
        return
    with pytest.raises(ValueError, match="is not an integer") as info:
        S.conv_output_size(W, F, s, p, d, strict=True)
    # Every suggestion must fit, and report its true output size.
    msg = str(info.value)
    for q, out in re.findall(r"padding=(\d+) \(output (\d+)\)", msg):
        assert _fits(W, F, s, int(q), d), msg
        assert int(out) == (W + 2 * int(q) - d * (F - 1) - 1) // s + 1
    for t, out in re.findall(r"stride=(\d+) \(output (\d+)\)", msg):
        assert _fits(W, F, int(t), p, d), msg
        assert int(out) == (W + 2 * p - d * (F - 1) - 1) // int(t) + 1
    sizes = re.search(r"an input of size (.*)$", msg)
    assert sizes is not None, msg
    for w, out in re.findall(r"(\d+) \(output (\d+)\)", sizes.group(1)):
        assert _fits(int(w), F, s, p, d), msg
        assert int(out) == (int(w) + 2 * p - d * (F - 1) - 1) // s + 1
    # Some fix is always offered: stride 1 fits any geometry.
    assert re.search(r"(padding|stride)=\d+ \(output", msg), msg


def test_explain_shows_dilation_and_rounding():
    assert S.explain_output_size(10, 3, padding=2, dilation=2) == (
        "F_eff = d*(F - 1) + 1 = 2*(3 - 1) + 1 = 5; (10 - 5 + 2*2)/1 + 1 = 10")
    assert S.explain_output_size(10, 3, stride=3).startswith(
        "(10 - 3 + 2*0)/3 + 1 ~ 3.33333 is not an integer: torch floors it to 3")
    assert "ceil_mode rounds it up to 5" in S.explain_output_size(
        10, 3, stride=2, ceil_mode=True)
    text = S.explain_output_size((7, 8), 3, stride=2, padding="same")
    assert text.splitlines() == [
        "H: 'same' padding 1+1; (7 - 3 + 2*1)/2 + 1 = 4",
        "W: 'same' padding 0+1; (8 - 3 + 0+1)/2 + 1 = 4",
    ]


CONV_CASES = [
    ((9, 11), (3, 2), (2, 1), (1, 0), (1, 2)),
    ((8, 8), 3, 2, 1, 1),
    ((7, 10), 2, 3, 0, 2),
    ((5, 6), 5, 1, 2, 1),
    ((12, 7), (1, 3), (3, 2), (0, 1), (1, 3)),
]


@pytest.mark.parametrize("size,k,s,p,d", CONV_CASES)
def test_conv_output_size_matches_the_kernel(impl, size, k, s, p, d, rng):
    kh, kw = k if isinstance(k, tuple) else (k, k)
    x = rng.standard_normal((1, 2, *size)).astype(np.float32)
    w = rng.standard_normal((3, 2, kh, kw)).astype(np.float32)
    y = impl.conv2d(x, w, stride=s, padding=p, dilation=d)
    assert S.conv_output_size(size, k, s, p, d) == y.shape[2:]


@pytest.mark.parametrize("size,k,s,p,d", [
    ((9, 10), 3, 2, 1, 1), ((8, 7), 2, None, 0, 1), ((11, 9), 3, 2, 0, 2),
    ((6, 9), (2, 3), (2, 3), (1, 1), 1), ((10, 10), 3, 3, 1, 1)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_output_size_matches_the_kernel(impl, size, k, s, p, d, ceil_mode,
                                             rng):
    x = rng.standard_normal((1, 2, *size)).astype(np.float32)
    y = impl.max_pool2d(x, k, s, p, d, ceil_mode)
    assert S.pool_output_size(size, k, s, p, d, ceil_mode=ceil_mode) == y.shape[2:]


def test_output_size_errors():
    with pytest.raises(ValueError, match=r"kernel_size 11 .*larger than the padded"):
        S.conv_output_size(5, 11)
    with pytest.raises(ValueError, match="along W"):
        S.conv_output_size((10, 5), (3, 11))
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        S.conv_output_size(10, 2.5)
    with pytest.raises(ValueError, match="stride must be positive"):
        S.conv_output_size(10, 3, stride=0)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        S.conv_output_size(10, 3, padding=-1)
    with pytest.raises(ValueError, match="padding must be an int, a pair"):
        S.conv_output_size(10, 3, padding="full")
    with pytest.raises(ValueError, match="ceil_mode=True needs numeric padding"):
        S.conv_output_size(10, 3, padding="same", ceil_mode=True)


# ---------------------------------------------------------------------------
# 'same' padding, TensorFlow-style
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("size,k,s,d", [
    (224, 3, 1, 1), (10, 3, 2, 1), (7, 4, 1, 1), (5, 1, 2, 1), (13, 3, 2, 2),
    (11, 5, 3, 1), (4, 7, 4, 1), (1, 1, 1, 1), (0, 3, 2, 1), (9, 2, 5, 3)])
def test_same_padding_against_tf_formula(size, k, s, d):
    out = math.ceil(size / s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    assert S.same_padding(size, k, s, d) == (total // 2, total - total // 2)


def test_same_padding_hand_values():
    # out = ceil(in/s); total = max((out-1)*s + d*(k-1)+1 - in, 0), odd after:
    # 224,3,1: out 224, 223+3-224 = 2     10,3,2: out 5, 8+3-10 = 1
    # 7,4,1: out 7, 6+4-7 = 3             5,1,2: out 3, 4+1-5 = 0
    # 13,3,2,d2: out 7, 12+5-13 = 4       11,5,3: out 4, 9+5-11 = 3
    # 4,7,4: out 1, 0+7-4 = 3
    assert S.same_padding(224, 3) == (1, 1)
    assert S.same_padding(10, 3, stride=2) == (0, 1)
    assert S.same_padding(7, 4) == (1, 2)
    assert S.same_padding(5, 1, stride=2) == (0, 0)
    assert S.same_padding(13, 3, stride=2, dilation=2) == (2, 2)
    assert S.same_padding(11, 5, stride=3) == (1, 2)
    assert S.same_padding(4, 7, stride=4) == (1, 2)
    assert S.same_padding((7, 8), (3, 4), stride=2) == ((1, 1), (1, 1))


@pytest.mark.parametrize("size,k,s,d", [
    ((10, 9), 3, 2, 1), ((7, 8), (4, 3), (2, 3), 1), ((13, 6), 3, 2, 2),
    ((5, 11), (1, 5), (2, 3), 1), ((6, 6), 2, 1, 3)])
def test_same_padding_gives_ceil_outputs_in_a_real_conv(impl, size, k, s, d, rng):
    (pt, pb), (pl, pr) = S.same_padding(size, k, s, d)
    kh, kw = k if isinstance(k, tuple) else (k, k)
    x = rng.standard_normal((1, 2, *size))
    w = rng.standard_normal((3, 2, kh, kw))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = impl.conv2d(xp, w, stride=s, dilation=d)
    sh, sw = s if isinstance(s, tuple) else (s, s)
    assert y.shape[2:] == (math.ceil(size[0] / sh), math.ceil(size[1] / sw))
    assert S.conv_output_size(size, k, s, "same", d) == y.shape[2:]


@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (2, 3), (5, 2)])
def test_same_padding_at_stride_1_is_conv2d_padding_same(impl, k, d, rng):
    # Same split as torch's padding="same" (the odd pixel after).
    x = rng.standard_normal((1, 2, 9, 8))
    w = rng.standard_normal((3, 2, k, k))
    (pt, pb), (pl, pr) = S.same_padding((9, 8), k, 1, d)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    np.testing.assert_allclose(impl.conv2d(xp, w, dilation=d),
                               impl.conv2d(x, w, padding="same", dilation=d),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("C,F,k,g,bias", [
    (3, 96, 11, 1, True), (3, 64, 3, 1, True), (4, 6, (3, 2), 2, False),
    (8, 8, 3, 8, True), (512, 512, 3, 1, True)])
def test_conv_params_counts_the_layer_arrays(C, F, k, g, bias):
    layer = L.Conv2d(C, F, k, groups=g, bias=bias, rng=0)
    n = sum(a.size for a in layer.params.values())
    assert S.conv_params(C, F, k, groups=g, bias=bias) == n
    assert S.count_params(layer) == n


def test_notes_parameter_figures():
    # AlexNet CONV1: 96 filters of 11*11*3 = 34,848 weights + 96 biases.
    assert S.conv_params(3, 96, 11) == 34_848 + 96
    # VGG-16 FC6: [7x7x512] -> 4096: 7*7*512*4096 = 102,760,448 weights.
    assert S.linear_params(7 * 7 * 512, 4096) == 102_760_448 + 4096
    assert S.linear_params(4096, 1000, bias=False) == 4_096_000


def test_count_params_of_a_model():
    m = L.Sequential(L.Conv2d(1, 4, 3, rng=0), L.BatchNorm2d(4), L.ReLU(),
                     L.Flatten(), L.Linear(4 * 4 * 4, 2, rng=0))
    assert S.count_params(m) == (4 * 9 + 4) + (4 + 4) + (64 * 2 + 2)
    with pytest.raises(TypeError, match="count_params: model must be"):
        S.count_params([1, 2])
    with pytest.raises(ValueError, match="groups=2 must divide"):
        S.conv_params(3, 4, 3, groups=2)


# ---------------------------------------------------------------------------
# receptive field
# ---------------------------------------------------------------------------

def test_three_stacked_3x3_convs_see_7x7():
    # The notes: three 3x3 CONV layers -> a 7x7 view of the input.
    assert S.receptive_field([(3, 1, 1, 1)] * 3) == (7, 1, 0.0)
    assert S.receptive_field([(3, 1, 1, 1)] * 2).size == 5
    model = L.Sequential(*[L.Conv2d(2, 2, 3, padding=1, rng=i) for i in range(3)])
    assert S.receptive_field(model) == ((7, 7), (1, 1), (0.0, 0.0))


def _brute_force_field(model, in_hw, out_pos):
    """(extent, first pixel) per axis of the input cells that influence the
    output at out_pos, from an impulse back-propagated through the layers.

    Weights are ones and the input positive, so nothing cancels: the
    gradient is non-zero exactly on the field's taps.
    """
    for layer in model._walk():
        if isinstance(layer, L.Conv2d):
            layer.params["weight"][...] = 1.0
            if "bias" in layer.params:
                layer.params["bias"][...] = 1.0
    x = np.ones((1, 1, *in_hw))
    model.to(np.float64)
    y = model(x)
    g = np.zeros_like(y)
    g[(0, 0) + tuple(out_pos)] = 1.0
    gx = model.backward(g)[0, 0]
    rows, cols = np.nonzero(gx)
    return ((rows.max() - rows.min() + 1, cols.max() - cols.min() + 1),
            (rows.min(), cols.min()))


def _check_field(model, in_hw, out_pos):
    rf = S.receptive_field(model)
    extent, first = _brute_force_field(model, in_hw, out_pos)
    for a in range(2):
        assert extent[a] == rf.size[a]
        # first pixel of output o's field = start - (size-1)/2 + o*jump
        assert first[a] == rf.start[a] - (rf.size[a] - 1) / 2 + out_pos[a] * rf.jump[a]
    # The jump: the next output's field starts jump pixels further.
    _, nxt = _brute_force_field(model, in_hw, (out_pos[0] + 1, out_pos[1] + 1))
    assert (nxt[0] - first[0], nxt[1] - first[1]) == rf.jump


def test_dilated_stack_field_by_brute_force():
    model = L.Sequential(
        L.Conv2d(1, 1, 3, dilation=2, rng=0), L.ReLU(),
        L.Conv2d(1, 1, 3, stride=2, padding=1, dilation=3, rng=0),
        L.AvgPool2d(2),
        L.Conv2d(1, 1, (3, 2), padding=(2, 1), dilation=(2, 1), rng=0),
    )
    rf = S.receptive_field(model)
    # d*(k-1)*jump per layer: 1 + 2*2 = 5; + 3*2*1 = 11 (jump 2);
    # pool + 1*2 = 13 (jump 4); then H + 2*2*4 = 29, W + 1*1*4 = 17
    assert rf.size == (29, 17) and rf.jump == (4, 4)
    _check_field(model, (60, 60), (6, 6))


def test_same_padding_strided_and_residual_fields_by_brute_force():
    asym = L.Sequential(L.Conv2d(1, 1, 4, padding="same", rng=0),
                        L.Conv2d(1, 1, (5, 3), stride=(2, 1), padding=(1, 2), rng=0),
                        L.MaxPool2d(3, 1, 1))
    # MaxPool routes to one argmax, so check its geometry with AvgPool twin
    asym_avg = L.Sequential(asym[0], asym[1], L.AvgPool2d(3, 1, 1))
    assert S.receptive_field(asym) == S.receptive_field(asym_avg)
    _check_field(asym_avg, (30, 30), (6, 8))
    block = L.Sequential(L.Residual(
        L.Sequential(L.Conv2d(1, 1, 3, stride=2, padding=1, rng=0), L.ReLU(),
                     L.Conv2d(1, 1, 3, padding=1, rng=0)),
        L.Conv2d(1, 1, 1, stride=2, rng=0)), L.ReLU())
    assert S.receptive_field(block).size == (7, 7)
    _check_field(block, (20, 20), (4, 4))


def test_receptive_field_specs_match_layers():
    model = L.Sequential(L.Conv2d(1, 1, 3, dilation=2, rng=0),
                         L.MaxPool2d(2), L.Conv2d(1, 1, (3, 5), padding=(1, 2), rng=0))
    specs = [(3, 1, 0, 2), (2, 2), ((3, 5), 1, (1, 2))]
    assert S.receptive_field(specs) == S.receptive_field(model)
    assert S.receptive_field(list(model)) == S.receptive_field(model)
    # 1-D specs answer with ints; a pair anywhere with pairs.
    assert S.receptive_field([(3,), (2, 2)]) == (4, 2, 1.5)
    assert S.receptive_field([(3,), ((2, 2), 2)]).size == (4, 4)


def test_receptive_field_errors():
    with pytest.raises(ValueError, match=r"item 1 \(Linear\) connects every output"):
        S.receptive_field([L.Flatten(), L.Linear(4, 2, rng=0)])
    with pytest.raises(TypeError, match="each layer must be"):
        S.receptive_field([(3, 1, 0, 1, 7)])
    with pytest.raises(TypeError, match="layers must be"):
        S.receptive_field(3)

    class Opaque(L.Layer):
        pass

    with pytest.raises(ValueError, match="Opaque does not declare"):
        S.receptive_field([Opaque()])


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape,k,s,p,d", [
    ((2, 3, 11, 11), 3, 1, 1, 1), ((1, 3, 27, 27), 11, 4, 0, 1),
    ((2, 2, 9, 8), (3, 2), (2, 1), (1, 0), (1, 2))])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_im2col_bytes_is_the_real_column_matrix(impl, shape, k, s, p, d, dt, rng):
    x = rng.standard_normal(shape).astype(dt)
    cols = impl.im2col(x, k, s, p, d)
    assert S.im2col_bytes(shape, k, s, p, d, dtype=dt) == cols.nbytes
    assert S.im2col_bytes(shape[1:], k, s, p, d, dtype=dt) * shape[0] == cols.nbytes


def test_notes_im2col_example():
    # The notes: AlexNet CONV1's X_col is [363 x 3025].
    assert S.im2col_bytes((3, 227, 227), 11, stride=4) == 363 * 3025 * 4


def test_memory_helpers():
    assert S.tensor_bytes((64, 224, 224)) == 224 * 224 * 64 * 4
    assert S.tensor_bytes((2, 3), np.float16) == 12
    m = L.Sequential(L.Conv2d(3, 8, 3, rng=0), L.Flatten(),
                     L.Linear(8, 2, dtype=np.float32, rng=0))
    n = sum(a.size for a in m.params.values())
    assert S.param_bytes(m) == sum(a.nbytes for a in m.params.values()) == 4 * n
    assert S.param_bytes(m, np.float64) == 8 * n
    assert S.param_bytes(100) == 400
    # input 3*3*3 + conv output 8 (ReLU-free); Flatten is a view
    assert S.activation_bytes(m, (3, 3, 3)) == 4 * (27 + 8 + 2)
    with pytest.raises(TypeError, match="shape must be a tuple"):
        S.tensor_bytes((2, -1))
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\) "
                       r"or \(N, C, H, W\) for 2 spatial axes, got \(2, 2\)"):
        S.im2col_bytes((2, 2), 1)


def test_inputs_are_not_modified_and_types_kept():
    spec = [[3, 1, 1, 1]]
    S.receptive_field(spec)
    assert spec == [[3, 1, 1, 1]]
    for args in itertools.product((7, 8), (1, 3), (1, 2)):
        assert type(S.conv_output_size(*args)) is int
    # TF's 'same' pads nothing here (total = max(4*2 + 1 - 10, 0) = 0), so
    # the last column is skipped: strict mode says so.
    with pytest.raises(ValueError, match=r"\(10 - 1 \+ 2\*0\)/2 \+ 1 = 5.5"):
        S.conv_output_size(10, 1, stride=2, padding="same", strict=True)


# ---------------------------------------------------------------------------
# 1-D and 3-D models and specs
# ---------------------------------------------------------------------------

def test_receptive_field_of_1d_and_3d_layers_matches_specs():
    one = L.Sequential(L.Conv1d(1, 2, 5, stride=2, padding=1, dilation=2, rng=0),
                       L.MaxPool1d(3, 2, 1), L.LPPool1d(2, 3, 1))
    # 1 + 2*4 = 9 (jump 2); + 2*2 = 13 (jump 4); + 2*4 = 21 (jump 4)
    assert S.receptive_field(one) == S.receptive_field(
        [((5,), 2, 1, 2), ((3,), 2, 1), ((3,), 1)]) == ((21,), (4,), (7.0,))
    three = L.Sequential(L.Conv3d(1, 1, (3, 1, 5), stride=(1, 2, 1), padding=1,
                                  rng=0), L.AvgPool3d(2))
    rf = S.receptive_field(three)
    assert rf == S.receptive_field([((3, 1, 5), (1, 2, 1), 1), (2, 2)])
    assert rf.size == (4, 3, 6) and rf.jump == (2, 4, 2)
    assert S.receptive_field([((3, 3, 3), 1, 1)] * 3).size == (7, 7, 7)
    # brute force along each axis: a 1-channel impulse through the 3-D stack
    for layer in three._walk():
        if "weight" in layer.params:
            layer.params["weight"][...] = 1.0
    three.to(np.float64)
    x = np.ones((1, 1, 12, 16, 14))
    y = three(x)
    g = np.zeros_like(y)
    g[0, 0, 2, 1, 3] = 1.0
    hit = np.nonzero(three.backward(g)[0, 0])
    for a in range(3):
        assert hit[a].max() - hit[a].min() + 1 == rf.size[a]
        assert hit[a].min() == rf.start[a] - (rf.size[a] - 1) / 2 + (2, 1, 3)[a] * rf.jump[a]


def test_receptive_field_axis_errors():
    with pytest.raises(ValueError, match="a layer with 2 spatial axes follows one with 1"):
        S.receptive_field([L.Conv1d(1, 1, 3, rng=0), L.Conv2d(1, 1, 3, rng=0)])
    with pytest.raises(TypeError, match=r"kernel must be an int or a triple"):
        S.receptive_field([((3, 3, 3), 1), ((3, 3), 1)])
    with pytest.raises(ValueError, match=r"item 1 \(GlobalAvgPool2d\) connects"):
        S.receptive_field([L.LPPool2d(2, 2), L.GlobalAvgPool2d()])


def test_im2col_bytes_1d_is_the_real_column_matrix(impl, rng):
    # A 1-D convolution's columns are im2col's on an (N, C, 1, L) view.
    x = rng.standard_normal((2, 3, 1, 40)).astype(np.float32)
    cols = impl.im2col(x, (1, 5), (1, 3), (0, 2), (1, 2))
    assert S.im2col_bytes((2, 3, 40), 5, 3, 2, 2, spatial_axes=1) == cols.nbytes
    assert S.im2col_bytes((3, 40), (5,), (3,), (2,), (2,)) * 2 == cols.nbytes


def test_im2col_bytes_3d_is_the_real_column_matrix(rng):
    # Columns by hand: strided, dilated windows over the zero-padded volume.
    x = rng.standard_normal((2, 3, 7, 9, 8))
    k, s, p, d = (3, 2, 2), (1, 2, 3), (1, 0, 1), (2, 1, 1)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p])
    span = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3, 4))
    cols = win[(slice(None),) * 2 + tuple(slice(None, None, v) for v in s)
               + tuple(slice(None, None, v) for v in d)]
    assert cols.shape[-3:] == k
    assert S.im2col_bytes(x.shape, k, s, p, d, dtype=np.float64) == cols.nbytes
    assert S.im2col_bytes(x.shape[1:], k, s, p, d, spatial_axes=3) * 2 == cols.size * 4


def test_im2col_bytes_axis_errors():
    with pytest.raises(ValueError, match=r"input_shape must be \(C, D, H, W\) or "
                       r"\(N, C, D, H, W\) for 3 spatial axes, got \(3, 8, 8\)"):
        S.im2col_bytes((3, 8, 8), (3, 3, 3))
    with pytest.raises(ValueError, match=r"\(C, L\) or \(N, C, L\) for 1 spatial axis"):
        S.im2col_bytes((1, 2, 3, 8), 3, spatial_axes=1)
    with pytest.raises(TypeError, match="tuples of the same length"):
        S.im2col_bytes((3, 8, 8, 8), (3, 3, 3), stride=(1, 2))
    with pytest.raises(TypeError, match="spatial_axes must be None or a positive int"):
        S.im2col_bytes((3, 8), 3, spatial_axes=0)
    with pytest.raises(ValueError, match="along D: kernel_size 9"):
        S.im2col_bytes((3, 4, 9, 9), (9, 3, 3))


def test_params_and_activation_bytes_of_1d_and_3d_models():
    c1, c3 = L.Conv1d(3, 4, 5, groups=1, rng=0), L.Conv3d(2, 6, (1, 2, 3), groups=2, rng=0)
    assert S.conv_params(3, 4, (5,)) == c1.params["weight"].size + 4 == S.count_params(c1)
    assert S.conv_params(2, 6, (1, 2, 3), groups=2) == S.count_params(c3) == 6 * 1 * 6 + 6
    model = L.Sequential(c1, L.ReLU(), L.AvgPool1d(2))
    # input 3*20, conv output 4*16 (ReLU in place), pool 4*8; float32
    assert S.activation_bytes(model, (3, 20)) == 4 * (60 + 64 + 32)
    assert S.activation_bytes(model, (2, 3, 20)) == 2 * 4 * (60 + 64 + 32)
    with pytest.raises(ValueError, match=r"\(C, L\) for one sample or \(N, C, L\)"):
        S.activation_bytes(model, (20,))


def test_dilation_zero_gets_the_kernels_convention_hint():
    # The kernels' own check and message (fastconv._validation), not a copy.
    from fastconv import _validation
    for call in (lambda: S.conv_output_size(10, 3, dilation=0),
                 lambda: S.pool_output_size((10, 10), 2, dilation=(1, 0)),
                 lambda: S.same_padding(10, 3, dilation=0)):
        with pytest.raises(ValueError, match=r"dilation must be positive.*1 is a "
                           r"dense kernel.*'dilation 0' elsewhere is dilation=1"):
            call()
    with pytest.raises(ValueError) as info:
        S.conv_output_size(10, 3, dilation=0)
    with pytest.raises(ValueError) as kernel_info:
        _validation.positive_tuple(0, 1, "dilation", "conv_output_size")
    assert str(info.value) == str(kernel_info.value)
    with pytest.raises(ValueError) as info:                   # no hint for -1
        S.conv_output_size(10, 3, dilation=-1)
    assert "dense" not in str(info.value)


# ---------------------------------------------------------------------------
# asymmetric padding: suggested when no symmetric one fits, accepted as input
# ---------------------------------------------------------------------------

def _floor_out(W, F, s, pb, pa, d=1):          # torch's formula, by hand
    return (W + pb + pa - d * (F - 1) - 1) // s + 1


@pytest.mark.parametrize("W,F,s,p,d", GEOMETRIES)
def test_asymmetric_suggestions_fit(W, F, s, p, d):
    if _fits(W, F, s, p, d):
        return
    text = S.explain_output_size(W, F, s, p, d)
    with pytest.raises(ValueError) as info:
        S.conv_output_size(W, F, s, p, d, strict=True)
    msg = str(info.value)
    # explain_output_size gives the suggestions strict mode gives.
    fixes = msg.split("row(s)/column(s)). ", 1)[1]
    assert text.endswith("are never read). " + fixes), (text, msg)
    found = re.findall(r"pad \((\d+), (\d+)\) \(before, after\)(, as same_padding "
                       r"gives)?: output (\d+)", msg)
    # Offered exactly when no symmetric padding fits.
    assert bool(found) == ("No symmetric padding fits" in msg), msg
    for pb, pa, same, out in found:
        pb, pa = int(pb), int(pa)
        assert pa == pb + 1                          # odd total, odd pixel after
        n = W + pb + pa - (d * (F - 1) + 1)
        assert n >= 0 and n % s == 0, msg
        assert int(out) == _floor_out(W, F, s, pb, pa, d)
        if same:
            assert S.same_padding(W, F, s, d) == (pb, pa)
        assert S.conv_output_size(W, F, s, (pb, pa), d, strict=True) == int(out)


@pytest.mark.parametrize("W", range(1, 24))
@pytest.mark.parametrize("F,s,d", [(1, 1, 1), (3, 2, 1), (3, 3, 1), (5, 2, 1),
                                   (2, 4, 1), (3, 2, 2), (4, 3, 1)])
def test_same_padding_fed_back_gives_ceil(W, F, s, d):
    pads = S.same_padding(W, F, s, d)
    assert S.conv_output_size(W, F, s, pads, d) == -(-W // s)
    assert S.conv_output_size(W, F, s, "same", d) == -(-W // s)
    size = (W, W + 3)
    pads2 = S.same_padding(size, F, s, d)
    assert S.conv_output_size(size, F, s, pads2, d) == (-(-W // s), -(-(W + 3) // s))


def test_explicit_before_after_padding_matches_the_kernel(impl, rng):
    # conv2d with symmetric padding 0 on x padded (before, after) by hand.
    for size, k, s, pads in [((10, 9), 3, 2, ((0, 1), (2, 1))),
                             ((7, 8), (3, 2), (2, 3), ((1, 0), 2)),
                             ((5, 6), 2, 1, (1, (0, 3)))]:
        both = [p if isinstance(p, tuple) else (p, p) for p in pads]
        x = rng.standard_normal((1, 1, *size)).astype(np.float32)
        xp = np.pad(x, ((0, 0), (0, 0), *both))
        kh, kw = k if isinstance(k, tuple) else (k, k)
        y = impl.conv2d(xp, np.ones((1, 1, kh, kw), np.float32), stride=s)
        assert S.conv_output_size(size, k, s, pads) == y.shape[2:]
    # One axis: (before, after) against conv1d on a hand-padded input.
    x = rng.standard_normal((1, 1, 10)).astype(np.float32)
    y = impl.conv1d(np.pad(x, ((0, 0), (0, 0), (0, 1))), np.ones((1, 1, 3), np.float32),
                    stride=2)
    assert S.conv_output_size(10, 3, 2, (0, 1)) == y.shape[2] == 5


def test_explicit_padding_forms_and_errors():
    # One axis: a pair is (before, after); (p,) is p on both sides.
    assert S.conv_output_size(10, 3, padding=(0, 1)) == _floor_out(10, 3, 1, 0, 1)
    assert S.conv_output_size(10, 3, padding=(2,)) == _floor_out(10, 3, 1, 2, 2)
    # Two axes: (ph, pw) on both sides, as before; pairs are (before, after).
    assert S.conv_output_size((12, 7), 3, padding=(0, 1)) == (
        _floor_out(12, 3, 1, 0, 0), _floor_out(7, 3, 1, 1, 1))
    assert S.conv_output_size(12, 3, padding=((0, 1), (2, 2))) == (
        _floor_out(12, 3, 1, 0, 1), _floor_out(12, 3, 1, 2, 2))
    assert S.explain_output_size(10, 3, stride=2, padding=(0, 1)) == \
        "(10 - 3 + 0+1)/2 + 1 = 5"
    assert S.explain_output_size(10, 3, 2, ((0, 1), 1)).splitlines() == [
        "H: (10 - 3 + 0+1)/2 + 1 = 5",
        "W: (10 - 3 + 2*1)/2 + 1 = 5.5 is not an integer: torch floors it to 5 "
        "(the last 1 row(s)/column(s) of the padded input are never read). No "
        "symmetric padding fits stride 2 (W - F = 7 is odd and 2*P is even); to "
        "fit, try stride=1 (output 10) or stride=3 (output 4); or pad (0, 1) "
        "(before, after), as same_padding gives: output 5; or an input of size 9 "
        "(output 5) or 11 (output 6)"]
    with pytest.raises(ValueError, match=r"padding must be non-negative, got \(0, -1\)"):
        S.conv_output_size(10, 3, padding=(0, -1))
    with pytest.raises(ValueError, match=r"padding must be non-negative"):
        S.conv_output_size((10, 10), 3, padding=((0, 1), (-1, 0)))
    with pytest.raises(TypeError, match=r"padding must be an int, \(before, after\)"):
        S.conv_output_size(10, 3, padding=(0, 1, 2))
    with pytest.raises(TypeError, match=r"padding must be an int, a tuple of 2 ints"):
        S.conv_output_size((10, 10), 3, padding=((0, 1, 2), 1))
    with pytest.raises(TypeError, match=r"padding must be"):
        S.conv_output_size((10, 10), 3, padding=(0, 1, 2))
    with pytest.raises(ValueError, match="ceil_mode=True needs the same padding before and after"):
        S.pool_output_size(10, 3, 2, padding=(0, 1), ceil_mode=True)
    # ASCII only.
    assert S.explain_output_size(10, 3, stride=3).isascii()
