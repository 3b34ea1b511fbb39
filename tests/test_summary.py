"""fastconv.summary and fastconv.models.vgg16: the cs231n notes' VGG-16 table
(parameters and activations per layer, written out here from the notes),
memory totals, and that the summary never runs the network."""

import json

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
    assert "in place" in text


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
