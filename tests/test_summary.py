"""fastconv.summary and fastconv.models.vgg16: the cs231n notes' VGG-16 table
(parameters and activations per layer, written out here from the notes),
memory totals, and that the summary never runs the network."""

import json
import re

import numpy as np
import pytest

from fastconv import layers as L
from fastconv import optim
from fastconv import shapes as S
from fastconv.models import vgg16
from fastconv.summary import Summary, summary

# The notes' VGG-16 table, row by row: (output volume [HxWxD], weights).
# Their weight column has no biases; a layer's biases are its depth D.
NOTES_VGG16 = [
    ("INPUT", (224, 224, 3), 0),
    ("CONV3-64", (224, 224, 64), (3 * 3 * 3) * 64),
    ("CONV3-64", (224, 224, 64), (3 * 3 * 64) * 64),
    ("POOL2", (112, 112, 64), 0),
    ("CONV3-128", (112, 112, 128), (3 * 3 * 64) * 128),
    ("CONV3-128", (112, 112, 128), (3 * 3 * 128) * 128),
    ("POOL2", (56, 56, 128), 0),
    ("CONV3-256", (56, 56, 256), (3 * 3 * 128) * 256),
    ("CONV3-256", (56, 56, 256), (3 * 3 * 256) * 256),
    ("CONV3-256", (56, 56, 256), (3 * 3 * 256) * 256),
    ("POOL2", (28, 28, 256), 0),
    ("CONV3-512", (28, 28, 512), (3 * 3 * 256) * 512),
    ("CONV3-512", (28, 28, 512), (3 * 3 * 512) * 512),
    ("CONV3-512", (28, 28, 512), (3 * 3 * 512) * 512),
    ("POOL2", (14, 14, 512), 0),
    ("CONV3-512", (14, 14, 512), (3 * 3 * 512) * 512),
    ("CONV3-512", (14, 14, 512), (3 * 3 * 512) * 512),
    ("CONV3-512", (14, 14, 512), (3 * 3 * 512) * 512),
    ("POOL2", (7, 7, 512), 0),
    ("FC", (1, 1, 4096), 7 * 7 * 512 * 4096),
    ("FC", (1, 1, 4096), 4096 * 4096),
    ("FC", (1, 1, 1000), 4096 * 1000),
]


def _notes_activations():
    return sum(h * w * d for _, (h, w, d), _ in NOTES_VGG16)


def _notes_params():
    return sum(wts + (d if name != "INPUT" and wts else 0)
               for name, (_, _, d), wts in NOTES_VGG16)


@pytest.fixture(scope="module")
def vgg():
    # Materialises VGG-16: ~553 MB of float32 weights, built once here.
    return vgg16(rng=0)


@pytest.fixture(scope="module")
def vgg_summary(vgg):
    return summary(vgg, (3, 224, 224))


def test_vgg16_has_138m_parameters_in_its_arrays(vgg):
    # The notes' "TOTAL params: 138M"; exact: 138,357,544 (their weight rows
    # plus one bias per output channel / unit).
    n = sum(a.size for a in vgg.params.values())
    assert n == 138_357_544 == _notes_params()
    assert len(vgg.params) == 2 * 16                    # 13 conv + 3 FC
    assert all(a.dtype == np.float32 for a in vgg.params.values())
    assert S.count_params(vgg) == n


def test_vgg16_summary_rows_match_the_notes_table(vgg_summary):
    counted = [r for r in vgg_summary.rows if not r.in_place]
    assert len(counted) == len(NOTES_VGG16)
    for row, (name, (h, w, d), wts) in zip(counted, NOTES_VGG16):
        expected = (d, h, w) if name != "FC" else (d,)
        assert row.output_shape == expected, (row, name)
        assert row.activations == h * w * d
        assert row.activation_bytes == 4 * h * w * d
        assert row.params == (wts + d if wts else 0), (row, name)
    kinds = [r.kind.split()[0] for r in counted[1:]]
    assert kinds == [{"CONV3": "Conv2d", "POOL2": "MaxPool2d", "FC": "Linear"}
                     [n.split("-")[0]] for n, _, _ in NOTES_VGG16[1:]]


def test_vgg16_activation_memory_is_15_2m_values_61_mb(vgg_summary):
    # The notes' rows add up to 15,237,608 values = 60.95 MB in float32 (the
    # notes' "24M / 93MB" total does not follow from them; see summary.py).
    s = vgg_summary
    assert s.activations == _notes_activations() == 15_237_608
    assert s.activation_bytes == 4 * 15_237_608
    assert s.params == 138_357_544
    assert s.param_bytes == 4 * 138_357_544
    assert s.inference_bytes == 4 * (15_237_608 + 138_357_544)
    assert s.training_bytes == 4 * (2 * 15_237_608 + 2 * 138_357_544)
    # The biggest full im2col matrix: conv1_2, 64*3*3 rows x 224*224 columns.
    assert s.im2col_layer == "0.2"
    assert s.im2col_bytes == 64 * 9 * 224 * 224 * 4


def test_vgg16_conv_field_is_212_by_brute_force(vgg):
    # The conv part's receptive field, found by back-propagating an impulse
    # through a 1-channel twin (same geometry, AvgPool so that every tap of
    # the pooling window passes gradient; all-ones weights, positive input).
    feats = []
    for item in [1, 1, "M", 1, 1, "M", 1, 1, 1, "M", 1, 1, 1, "M", 1, 1, 1, "M"]:
        feats += ([L.AvgPool2d(2, 2)] if item == "M" else
                  [L.Conv2d(1, 1, 3, padding=1, bias=False, dtype=np.float64,
                            rng=0), L.ReLU()])
    twin = L.Sequential(*feats)
    for layer in twin._walk():
        if isinstance(layer, L.Conv2d):
            layer.params["weight"][...] = 1.0
    y = twin(np.ones((1, 1, 224, 224)))
    assert y.shape == (1, 1, 7, 7)
    g = np.zeros_like(y)
    g[0, 0, 3, 3] = 1.0
    rows, cols = np.nonzero(twin.backward(g)[0, 0])
    extent = (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    rf = S.receptive_field(vgg[0])                  # the real model's geometry
    assert extent == rf.size == (212, 212)
    assert rf.jump == (32, 32)
    assert rows.min() == rf.start[0] - (212 - 1) / 2 + 3 * 32


def test_vgg16_field_in_the_summary(vgg, vgg_summary):
    last_conv_part = [r for r in vgg_summary.rows if r.name == "0.30"][0]
    assert last_conv_part.rf_size == (212, 212) == S.receptive_field(vgg[0]).size
    assert last_conv_part.rf_jump == (32, 32)
    fc = [r for r in vgg_summary.rows if r.kind == "Linear"]
    assert all(r.rf_size == "global" for r in fc)


def test_vgg16_output_shape_and_classes(vgg):
    assert vgg.output_shape((2, 3, 224, 224)) == (2, 1000)
    small = summary(vgg, (3, 224, 224), optimizer="adam")
    assert small.training_bytes == 4 * (2 * 15_237_608 + 4 * 138_357_544)


def test_vgg16_summary_prints_a_table(vgg_summary):
    text = str(vgg_summary)
    assert repr(vgg_summary) == text
    lines = text.splitlines()
    assert lines[0] == "Sequential on input 3x224x224 (one image), float32"
    assert any(line.split()[:4] == ["0.0", "Conv2d", "3x3", "64x224x224"]
               for line in lines)
    assert "138,357,544" in text and "15,237,608" in text
    assert "61.0 MB" in text and "553.4 MB" in text
    # ReLU rows are "not counted" (the notes fold them into the CONV rows),
    # never "in place": fastconv's ReLU allocates its output.
    relu = [line for line in lines if line.split()[1:2] == ["ReLU"]]
    assert relu and all("not counted" in line for line in relu)
    assert "in place" not in text
    assert ("(the notes fold ReLU into the CONV row; fastconv's ReLU allocates "
            "its output") in text


# ---------------------------------------------------------------------------
# small models: shapes, totals, batch handling, options
# ---------------------------------------------------------------------------

def _small(dtype=np.float32):
    return L.Sequential(
        L.Conv2d(3, 4, 3, padding=1, dtype=dtype, rng=0), L.BatchNorm2d(4, dtype=dtype),
        L.ReLU(), L.MaxPool2d(2),
        L.Residual(L.Sequential(L.Conv2d(4, 4, 3, padding=1, dtype=dtype, rng=1),
                                L.ReLU())),
        L.Conv2d(4, 6, 3, stride=2, dtype=dtype, rng=2), L.Dropout(0.5, rng=0),
        L.Flatten(), L.Linear(6, 5, dtype=dtype, rng=3))


def _leaf_outputs(model, x):
    """(name, output shape) of every row, from a real forward pass."""
    out = []

    def run(layer, name, x):
        if isinstance(layer, L.Sequential):
            for cname, child in layer._children.items():
                x = run(child, f"{name}.{cname}" if name else cname, x)
            return x
        if isinstance(layer, L.Residual):
            y = run(layer.body, f"{name}.body", x)
            out.append((name, (y + x).shape))
            return y + x
        y = layer(x)
        out.append((name, y.shape))
        return y

    run(model, "", x)
    return out


def test_rows_match_a_real_forward_pass(rng):
    model = _small()
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    s = summary(model, (2, 3, 8, 8))
    real = _leaf_outputs(model, x)
    assert [(r.name, r.output_shape) for r in s.rows[1:]] == real
    assert s.rows[0].output_shape == (2, 3, 8, 8)
    counted = [np.prod(shape) for name, shape in real
               if not isinstance(_find(model, name), (L.ReLU, L.Dropout, L.Flatten))]
    assert s.activations == x.size + sum(counted)
    assert s.params == sum(a.size for a in model.params.values())


def _find(model, name):
    layer = model
    for part in name.split("."):
        layer = layer._children[part]
    return layer


def test_chw_means_one_image_and_nchw_a_batch():
    model = _small()
    one = summary(model, (3, 8, 8))
    four = summary(model, (4, 3, 8, 8))
    assert one.per_image and not four.per_image
    assert one.rows[1].output_shape == (4, 8, 8)
    assert four.rows[1].output_shape == (4, 4, 8, 8)
    assert four.activations == 4 * one.activations
    assert four.params == one.params
    assert str(four).splitlines()[0].endswith("(a batch of 4), float32")


def test_summary_runs_nothing():
    model = _small()

    def boom(*args, **kwargs):
        raise AssertionError("summary ran a layer")

    for layer in model._walk():
        layer._forward = boom
    s = model.summary((3, 8, 8))
    assert s.rows[-1].output_shape == (5,)


@pytest.mark.parametrize("optimizer,slots", [
    (None, 0), ("sgd", 0), ("momentum", 1), ("adam", 2), (3, 3)])
def test_training_total_counts_optimizer_slots(optimizer, slots):
    s = summary(_small(), (3, 8, 8), optimizer=optimizer)
    A, P = s.activations, s.params
    assert s.optimizer_slots == slots
    assert s.training_bytes == 4 * (2 * A + (2 + slots) * P)
    assert s.inference_bytes == 4 * (A + P)


def test_optimizer_instances():
    model = _small()
    def slots(opt):
        return summary(model, (3, 8, 8), optimizer=opt).optimizer_slots

    assert slots(optim.SGD(model, 0.1)) == 0
    assert slots(optim.SGD(model, 0.1, momentum=0.9)) == 1
    assert slots(optim.Adam(model)) == 2


def test_dtype_default_and_override():
    s64 = summary(_small(np.float64), (3, 8, 8))
    s32 = summary(_small(np.float64), (3, 8, 8), dtype=np.float32)
    assert s64.dtype == np.float64 and s32.dtype == np.float32
    assert s64.activation_bytes == 2 * s32.activation_bytes
    assert s64.param_bytes == 8 * s64.params
    assert summary(L.ReLU(), (2, 3)).dtype == np.float32


def test_to_dict_and_json():
    s = summary(_small(), (3, 8, 8), optimizer="adam")
    d = s.to_dict()
    assert json.loads(s.to_json()) == d
    assert d["totals"]["params"] == s.params
    assert d["totals"]["training_bytes"] == s.training_bytes
    assert d["optimizer_slots"] == 2 and d["dtype"] == "float32"
    assert d["layers"][0]["name"] == "input"
    assert d["layers"][1]["output_shape"] == [4, 8, 8]
    assert d["layers"][-1]["rf_size"] == "global"
    assert isinstance(s, Summary)


def test_rows_show_unknown_geometry_and_non_spatial_inputs():
    class Scale(L.Layer):          # a layer with output_shape only
        def output_shape(self, input_shape):
            return tuple(input_shape)

    s = summary(L.Sequential(L.Conv2d(1, 1, 3, rng=0), Scale(),
                             L.Conv2d(1, 1, 3, rng=0)), (1, 9, 9))
    assert [r.rf_size for r in s.rows] == [(1, 1), (3, 3), "?", "?"]
    mlp = summary(L.Sequential(L.Linear(4, 3, rng=0), L.ReLU()), (5, 4))
    assert {r.rf_size for r in mlp.rows} == {"-"}


def test_summary_errors():
    model = _small()
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 3, H, W\)"):
        summary(model, (2, 8, 8))
    with pytest.raises(ValueError, match="optimizer must be"):
        summary(model, (3, 8, 8), optimizer="rmsprop")
    with pytest.raises(TypeError, match="optimizer must be"):
        summary(model, (3, 8, 8), optimizer=object())
    with pytest.raises(TypeError, match="model must be a fastconv.layers.Layer"):
        summary("vgg", (3, 8, 8))
    with pytest.raises(TypeError, match="input_shape must be a tuple"):
        summary(model, "3x8x8")

    class NoShape(L.Layer):
        pass

    with pytest.raises(NotImplementedError, match="NoShape does not implement"):
        summary(L.Sequential(NoShape()), (3, 8, 8))
    bad = L.Residual(L.Conv2d(3, 3, 3, rng=0))
    with pytest.raises(ValueError, match="cannot be added to the input"):
        summary(bad, (3, 8, 8))


# ---------------------------------------------------------------------------
# 1-D, 3-D and global / Lp pooling models: the number of spatial axes comes
# from the model; shapes against real forward passes, fields against
# impulses back-propagated through the real layers
# ---------------------------------------------------------------------------

def _model_1d():
    return L.Sequential(
        L.Conv1d(2, 4, 5, stride=2, padding=1, dilation=2, rng=0), L.ReLU(),
        L.MaxPool1d(3, 2, 1),
        L.Residual(L.Sequential(L.Conv1d(4, 4, 3, padding=1, rng=1), L.ReLU())),
        L.AvgPool1d(2), L.LPPool1d(2, 3, 1), L.Conv1d(4, 3, 2, rng=2),
        L.Flatten(), L.Linear(3 * 4, 2, rng=3))


def _model_3d():
    return L.Sequential(
        L.Conv3d(2, 3, 3, stride=(1, 2, 1), padding=1, rng=0), L.ReLU(),
        L.MaxPool3d(2),
        L.Conv3d(3, 2, (1, 2, 3), dilation=(1, 1, 2), rng=1),
        L.AvgPool3d(3, stride=2, padding=1),
        L.Flatten(), L.Linear(2 * 3 * 3 * 1, 3, rng=2))


def _model_lp_global(pool=L.GlobalAvgPool2d):
    return L.Sequential(
        L.Conv2d(3, 4, 3, padding=1, rng=0), L.LPPool2d(2, (3, 2), (2, 1)),
        L.Conv2d(4, 4, 3, stride=2, rng=1), L.ReLU(), pool(),
        L.Flatten(), L.Linear(4, 3, rng=2))


_NEW_MODELS = {
    # name: (factory, one sample's shape, input size for the field checks)
    "1d": (_model_1d, (2, 64), (2, 200)),
    "3d": (_model_3d, (2, 12, 24, 10), (2, 24, 48, 40)),
    "lp_global": (_model_lp_global, (3, 20, 16), (3, 32, 24)),
    "lp_adaptive": (lambda: _model_lp_global(lambda: L.AdaptiveAvgPool2d(1)),
                    (3, 20, 16), (3, 32, 24)),
}


@pytest.mark.parametrize("key", list(_NEW_MODELS))
def test_nd_rows_match_real_forward_per_sample_and_batched(key, rng):
    factory, one, _ = _NEW_MODELS[key]
    model = factory()
    x = rng.standard_normal((3,) + one).astype(np.float32)
    real = _leaf_outputs(model, x)
    batched = summary(model, (3,) + one)
    single = summary(model, one)
    assert not batched.per_image and single.per_image
    assert batched.spatial_axes == single.spatial_axes == len(one) - 1
    assert [(r.name, r.output_shape) for r in batched.rows[1:]] == real
    assert [(r.name, r.output_shape) for r in single.rows[1:]] == [
        (name, shape[1:]) for name, shape in real]
    assert single.rows[0].output_shape == one
    assert batched.activations == 3 * single.activations
    counted = [np.prod(shape) for name, shape in real
               if not isinstance(_find(model, name), (L.ReLU, L.Flatten))]
    assert batched.activations == x.size + sum(counted)
    assert batched.params == single.params == sum(
        a.size for a in model.params.values())
    # rows other than the input agree on everything but the batch
    for a, b in zip(single.rows, batched.rows):
        assert (a.kind, a.rf_size, a.rf_jump) == (b.kind, b.rf_size, b.rf_jump)


def test_nd_row_kinds_and_header():
    s1 = summary(_model_1d(), (2, 64))
    assert [r.kind for r in s1.rows[1:]] == [
        "Conv1d 5 s2 d2", "ReLU", "MaxPool1d 3 s2", "Conv1d 3", "ReLU",
        "Residual (add)", "AvgPool1d 2 s2", "LPPool1d 3 s1 p=2", "Conv1d 2",
        "Flatten", "Linear"]
    s3 = summary(_model_3d(), (2, 12, 24, 10))
    assert [r.kind for r in s3.rows[1:]] == [
        "Conv3d 3x3x3 s1x2x1", "ReLU", "MaxPool3d 2x2x2 s2", "Conv3d 1x2x3 d1x1x2",
        "AvgPool3d 3x3x3 s2", "Flatten", "Linear"]
    s2 = summary(_model_lp_global(), (3, 20, 16))
    assert [r.kind for r in s2.rows[1:]] == [
        "Conv2d 3x3", "LPPool2d 3x2 s2x1 p=2", "Conv2d 3x3 s2", "ReLU",
        "GlobalAvgPool2d", "Flatten", "Linear"]
    assert str(s1).splitlines()[0] == ("Sequential on input 2x64 (one sequence), "
                                       "float32")
    assert "(one volume)" in str(s3).splitlines()[0]
    assert "(a batch of 5)" in str(summary(_model_3d(), (5, 2, 12, 24, 10)))
    lines = str(s3).splitlines()
    assert any(line.split()[:3] == ["0", "Conv3d", "3x3x3"] for line in lines)
    assert any(line.split()[-2:] == ["global", "global"] for line in str(s2).splitlines())


def _impulse(model, x, out_pos):
    """Per spatial axis (first input index, extent) of the input cells that
    the output at (0, 0, *out_pos) depends on: an impulse back-propagated
    through the real layers (all-ones weights and a positive input, so no
    tap cancels)."""
    y = model(x)
    g = np.zeros_like(y)
    g[(0, 0) + tuple(out_pos)] = 1.0
    hit = np.abs(model.backward(g)[0]).sum(axis=0) > 0
    where = np.nonzero(hit)
    return y.shape, [(int(w.min()), int(w.max() - w.min() + 1)) for w in where]


def _avg_twin(model):
    """The model with every max pooling replaced by average pooling of the
    same window (max routes the gradient to one tap only), float64 and
    all-ones conv weights."""
    def swap(layer):
        if isinstance(layer, L.MaxPool1d):
            return L.AvgPool1d(layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, L.MaxPool3d):
            return L.AvgPool3d(layer.kernel_size, layer.stride, layer.padding)
        return layer

    twin = L.Sequential(*[swap(layer) for layer in model])
    twin.to(np.float64)
    for layer in twin._walk():
        for name in ("weight", "bias"):
            if name in layer.params and not isinstance(layer, L.Linear):
                layer.params[name][...] = 1.0
    return twin


@pytest.mark.parametrize("key", list(_NEW_MODELS))
def test_nd_fields_match_an_impulse(key):
    factory, one, field_in = _NEW_MODELS[key]
    model = factory()
    twin = _avg_twin(model)
    rows = {r.name: r for r in summary(model, one).rows}
    assert ({n: (r.rf_size, r.rf_jump) for n, r in rows.items()} ==
            {r.name: (r.rf_size, r.rf_jump) for r in summary(twin, one).rows})
    n = len(one) - 1
    x = np.ones((1,) + field_in)
    checked = 0
    for k in range(1, len(twin) + 1):
        if isinstance(twin[k - 1], (L.Flatten, L.Linear)):
            break
        prefix = L.Sequential(*list(twin)[:k])
        row = rows[str(k - 1)]
        out_shape, _ = _impulse(prefix, x, (0,) * n)
        if row.rf_size == "global":
            # every input cell reaches every output
            _, field = _impulse(prefix, x, (0,) * n)
            assert [e for _, e in field] == list(field_in[1:])
            checked += 1
            continue
        pos = tuple(s // 2 for s in out_shape[2:])
        _, field = _impulse(prefix, x, pos)
        assert tuple(e for _, e in field) == row.rf_size, (key, row)
        rf = S.receptive_field(prefix)
        assert rf.size == row.rf_size and rf.jump == row.rf_jump
        for a in range(n):
            assert field[a][0] == rf.start[a] - (rf.size[a] - 1) / 2 + pos[a] * rf.jump[a]
            assert field[a][0] >= 1 and field[a][0] + field[a][1] < field_in[1 + a]
        # the jump: the next output's field starts rf_jump cells further
        nxt = tuple(p + 1 for p in pos)
        assert all(p < s for p, s in zip(nxt, out_shape[2:])), (key, row)
        _, field2 = _impulse(prefix, x, nxt)
        assert tuple(f2[0] - f1[0] for f1, f2 in zip(field, field2)) == row.rf_jump
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("key", ["1d", "3d"])
def test_nd_largest_im2col_is_the_real_column_matrix(key, rng):
    # The column matrix written out by hand: every (sample, output position)
    # a column of C*prod(kernel) input taps, from sliding windows over the
    # zero-padded input (strided and dilated as the layer).
    factory, one, _ = _NEW_MODELS[key]
    model = factory()
    x = rng.standard_normal((2,) + one).astype(np.float32)
    sizes = {}
    for name, layer in zip(map(str, range(len(model))), model):
        if isinstance(layer, (L.Conv1d, L.Conv3d)):
            n = x.ndim - 2
            geom = layer._rf_geometry()
            pad = [(0, 0), (0, 0)] + [(p, p) for _, _, p, _ in geom]
            xp = np.pad(x, pad)
            span = [d * (k - 1) + 1 for k, _, _, d in geom]
            win = np.lib.stride_tricks.sliding_window_view(
                xp, span, axis=tuple(range(2, 2 + n)))
            idx = (slice(None), slice(None)) + tuple(
                slice(None, None, s) for _, s, _, _ in geom) + tuple(
                slice(None, None, d) for _, _, _, d in geom)
            cols = win[idx]
            out = layer(x)
            assert cols.shape[2:2 + n] == out.shape[2:]
            sizes[name] = (cols.size * 4, (int(np.prod(cols.shape[1:2]) *
                           np.prod(cols.shape[2 + n:])),
                           int(cols.shape[0] * np.prod(cols.shape[2:2 + n]))))
        x = layer(x)
    best = max(sizes, key=lambda k: sizes[k][0])
    s = summary(model, (2,) + one)
    assert s.im2col_layer == best
    assert (s.im2col_bytes, s.im2col_shape) == sizes[best]
    assert f"{sizes[best][1][0]:,} x {sizes[best][1][1]:,}" in str(s)
    assert summary(model, one).im2col_bytes * 2 == s.im2col_bytes


def test_nd_to_dict_and_json():
    s = summary(_model_3d(), (2, 12, 24, 10), optimizer="momentum")
    d = s.to_dict()
    assert json.loads(s.to_json()) == d
    assert d["spatial_axes"] == 3 and d["per_image"] is True
    assert d["layers"][0]["output_shape"] == [2, 12, 24, 10]
    assert d["layers"][0]["rf_size"] == [1, 1, 1]
    assert d["layers"][1]["rf_size"] == [3, 3, 3]
    assert d["layers"][1]["rf_jump"] == [1, 2, 1]
    assert d["layers"][-1]["rf_size"] == "global"
    assert d["totals"]["im2col_layer"] == "0"
    assert d["totals"]["im2col_shape"] == [2 * 27, 12 * 12 * 10]
    d1 = summary(_model_1d(), (3, 2, 64)).to_dict()
    assert d1["spatial_axes"] == 1 and d1["per_image"] is False
    assert d1["layers"][1]["rf_size"] == [9] and d1["layers"][1]["rf_jump"] == [2]
    d2 = summary(_model_lp_global(), (3, 20, 16)).to_dict()
    assert [r["rf_size"] for r in d2["layers"]][4:] == [[9, 6]] + ["global"] * 3
    assert d2["layers"][2]["kind"] == "LPPool2d 3x2 s2x1 p=2"
    mlp = summary(L.Sequential(L.Linear(4, 3, rng=0)), (4,)).to_dict()
    assert mlp["spatial_axes"] == 0 and mlp["totals"]["im2col_layer"] is None


def test_per_sample_and_batched_mlp_and_rank_free_models():
    mlp = L.Sequential(L.Linear(4, 3, rng=0), L.ReLU(), L.Linear(3, 2, rng=1))
    one, five = summary(mlp, (4,)), summary(mlp, (5, 4))
    assert one.per_image and not five.per_image
    assert one.rows[-1].output_shape == (2,) and five.rows[-1].output_shape == (5, 2)
    assert {r.rf_size for r in one.rows} == {"-"}
    assert "(one sample)" in str(one).splitlines()[0]
    # GlobalAvgPool2d first: it fixes 2 spatial axes without a window
    gap = L.Sequential(L.GlobalAvgPool2d(), L.Flatten(), L.Linear(4, 2, rng=0))
    assert summary(gap, (4, 5, 5)).rows[-1].output_shape == (2,)
    assert summary(gap, (3, 4, 5, 5)).rows[-1].output_shape == (3, 2)
    # Flatten first: any rank fits, input_shape is the full shape
    flat = L.Sequential(L.Flatten(), L.Linear(12, 3, rng=0))
    s = summary(flat, (1, 3, 2, 2))
    assert s.spatial_axes is None and not s.per_image
    assert s.rows[-1].output_shape == (1, 3)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 12\).*"
                       r"taken as the full shape with the batch first"):
        summary(flat, (3, 2, 2))


@pytest.mark.parametrize("model,bad,accepted,layer", [
    (_model_1d, (2, 2, 64, 64), r"\(C, L\) for one sample or \(N, C, L\)",
     r"first windowed layer is 0: Conv1d\(2, 4, kernel_size=\(5,\)"),
    (_model_1d, (64,), r"\(C, L\) for one sample or \(N, C, L\)", "Conv1d"),
    (_model_3d, (2, 12, 24), r"\(C, D, H, W\) for one sample or \(N, C, D, H, W\)",
     r"first windowed layer is 0: Conv3d\(2, 3"),
    (_model_lp_global, (3, 20), r"\(C, H, W\) for one sample or \(N, C, H, W\)",
     r"first windowed layer is 0: Conv2d\(3, 4"),
    (lambda: L.Sequential(L.ReLU(), L.GlobalAvgPool2d()), (4, 5),
     r"\(C, H, W\) for one sample",
     r"first layer that fixes the input rank is 1: GlobalAvgPool2d\(\)"),
    (lambda: L.Sequential(L.Linear(4, 3, rng=0)), (2, 2, 4),
     r"\(F\) for one sample or \(N, F\)",
     r"first layer that fixes the input rank is 0: Linear\("),
])
def test_wrong_rank_input_shape_is_a_clear_error(model, bad, accepted, layer):
    with pytest.raises(ValueError, match="summary: input_shape must be " + accepted):
        summary(model(), bad)
    with pytest.raises(ValueError, match=layer):
        summary(model(), bad)
    with pytest.raises(ValueError, match=rf"got {re.escape(str(bad))} "
                       rf"\({len(bad)} dimensions\)"):
        model().summary(bad)


def test_summary_errors_name_the_row_that_breaks():
    model = L.Sequential(L.Conv2d(3, 4, 3, rng=0), L.Flatten(),
                         L.Sequential(L.Linear(99, 10, rng=0)))
    with pytest.raises(ValueError, match=r"^summary: layer 2\.0 \(Linear\): .*99"):
        summary(model, (3, 8, 8))
    with pytest.raises(ValueError, match=r"^summary: layer model \(Conv2d\): .*"
                       r"expects input of shape \(N, 3, H, W\)"):
        summary(L.Conv2d(3, 4, 3, rng=0), (5, 8, 8))


def test_relu_and_dropout_outputs_are_real_arrays_but_not_counted(rng):
    # The label's claim: these layers allocate (no aliasing of the input) ...
    x = rng.standard_normal((2, 4)).astype(np.float32)
    for layer in (L.ReLU(), L.Dropout(0.5)):
        assert not np.shares_memory(layer(x), x)
    # ... and the totals still leave them out, as the notes do.
    s = summary(L.Sequential(L.Linear(4, 3, rng=0), L.ReLU(), L.Dropout(0.5)), (4,))
    assert [r.in_place for r in s.rows] == [False, False, True, True]
    assert s.activations == 4 + 3
