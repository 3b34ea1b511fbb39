"""Pickling layers and models: exact state, no caches (Layer._transient)."""

import copy
import io
import pickle

import numpy as np
import pytest

from fastconv import layers as L


def _bn(c, d):
    """A BatchNorm2d with running statistics away from their initial values."""
    bn = L.BatchNorm2d(c, dtype=d)
    rng = np.random.default_rng(c)
    bn.params["weight"][...] = rng.uniform(0.5, 1.5, c)
    bn.params["bias"][...] = rng.standard_normal(c)
    bn.buffers["running_mean"][...] = rng.standard_normal(c)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2.0, c)
    bn.buffers["num_batches_tracked"][...] = 7
    return bn


# Every public layer class: a factory (dtype -> layer) and an input shape.
CASES = {
    "Conv1d": (lambda d: L.Conv1d(3, 4, 3, padding=1, dtype=d, rng=0), (2, 3, 9)),
    "Conv2d": (lambda d: L.Conv2d(3, 4, 3, stride=2, padding=1, dtype=d, rng=0),
               (2, 3, 9, 8)),
    "Conv3d": (lambda d: L.Conv3d(2, 3, 3, padding=1, dtype=d, rng=0), (2, 2, 4, 5, 5)),
    "Linear": (lambda d: L.Linear(6, 4, dtype=d, rng=0), (3, 6)),
    "BatchNorm2d": (lambda d: _bn(3, d), (2, 3, 4, 5)),
    "MaxPool1d": (lambda d: L.MaxPool1d(2), (2, 3, 8)),
    "MaxPool2d": (lambda d: L.MaxPool2d(3, 2, 1), (2, 3, 7, 8)),
    "MaxPool3d": (lambda d: L.MaxPool3d(2), (1, 2, 4, 4, 6)),
    "AvgPool1d": (lambda d: L.AvgPool1d(3, 2, 1), (2, 3, 9)),
    "AvgPool2d": (lambda d: L.AvgPool2d(2), (2, 3, 6, 8)),
    "AvgPool3d": (lambda d: L.AvgPool3d(2, ceil_mode=True), (1, 2, 5, 4, 5)),
    "LPPool1d": (lambda d: L.LPPool1d(2, 2), (2, 3, 8)),
    "LPPool2d": (lambda d: L.LPPool2d(3, 2), (2, 3, 6, 6)),
    "GlobalAvgPool2d": (lambda d: L.GlobalAvgPool2d(), (2, 3, 5, 4)),
    "AdaptiveAvgPool2d": (lambda d: L.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    "LocallyConnected2d": (
        lambda d: L.LocallyConnected2d(2, 3, (6, 5), 3, dtype=d, rng=0), (2, 2, 6, 5)),
    "ReLU": (lambda d: L.ReLU(), (2, 3, 4)),
    "Flatten": (lambda d: L.Flatten(), (2, 3, 4, 5)),
    "Dropout": (lambda d: L.Dropout(0.4, rng=3), (4, 50)),
    "Sequential": (lambda d: L.Sequential(
        L.Conv2d(2, 4, 3, padding=1, dtype=d, rng=0), _bn(4, d), L.ReLU(),
        L.MaxPool2d(2), L.Flatten(), L.Dropout(0.3, rng=1),
        L.Linear(4 * 3 * 3, 5, dtype=d, rng=2)), (3, 2, 6, 6)),
    "Residual": (lambda d: L.Residual(
        L.Sequential(L.Conv2d(2, 3, 3, 2, 1, bias=False, dtype=d, rng=0), _bn(3, d),
                     L.ReLU()),
        L.Sequential(L.Conv2d(2, 3, 1, 2, bias=False, dtype=d, rng=1), _bn(3, d))),
        (2, 2, 7, 7)),
}


# Layers whose forward caches only shapes (or, Dropout in eval, nothing).
_SHAPE_CACHES = {"Flatten", "GlobalAvgPool2d", "AdaptiveAvgPool2d", "AvgPool1d",
                 "AvgPool2d", "AvgPool3d"}


def test_every_layer_class_has_a_case():
    public = {name for name, obj in vars(L).items()
              if isinstance(obj, type) and issubclass(obj, L.Layer)
              and obj is not L.Layer and not name.startswith("_")}
    missing = public - set(CASES)
    assert not missing, f"add pickling cases for {sorted(missing)}"


def _sublayers(layer):
    return list(layer._walk())


def _pickled_arrays(obj):
    """Ids of every ndarray the pickle of ``obj`` contains, and the bytes."""
    seen = []

    class Recorder(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, np.ndarray):
                seen.append(id(o))
            return None

    buf = io.BytesIO()
    Recorder(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return set(seen), buf.getvalue()


def _arrays_in(value):
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays_in(v)]
    return []


def _transient_arrays(layer):
    """The arrays a forward left in the layers' transient attributes."""
    return [a for sub in _sublayers(layer) for name in sub._transient_names()
            for a in _arrays_in(getattr(sub, name))]


def _assert_same_state(a, b):
    assert type(a) is type(b)
    for sa, sb in zip(_sublayers(a), _sublayers(b), strict=True):
        assert type(sa) is type(sb)
        assert sa.training == sb.training and sa._backend == sb._backend
        for store in ("_params", "_grads", "_buffers"):
            da, db = getattr(sa, store), getattr(sb, store)
            assert list(da) == list(db), store
            for k in da:
                assert da[k] is not db[k], f"{store}[{k}] is shared"
                assert da[k].dtype == db[k].dtype and da[k].shape == db[k].shape
                np.testing.assert_array_equal(da[k], db[k], err_msg=f"{store}[{k}]")


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", list(CASES))
def test_pickle_round_trip(name, mode, dtype, rng):
    make, shape = CASES[name]
    layer = make(dtype).train(mode == "train")
    x = rng.standard_normal(shape).astype(dtype)
    y = layer(x)
    layer.backward(rng.standard_normal(y.shape).astype(dtype))  # grads != 0
    assert layer._out_meta is not None

    cached = _transient_arrays(layer)
    holds_arrays = name not in _SHAPE_CACHES and (name, mode) != ("Dropout", "eval")
    assert bool(cached) == holds_arrays      # else the check below is void
    arrays, blob = _pickled_arrays(layer)
    # No cached input, mask, indices or activation travels.
    assert not arrays & {id(a) for a in cached}
    clone = pickle.loads(blob)
    _assert_same_state(layer, clone)
    for sub in _sublayers(clone):
        assert sub._cache is None and sub._out_meta is None
    with pytest.raises(RuntimeError, match="before forward"):
        clone.backward(y)

    # Same outputs and gradients from here on (Dropout: same generator state).
    x2 = rng.standard_normal(shape).astype(dtype)
    y1, y2 = layer(x2), clone(x2)
    assert y1.dtype == y2.dtype
    np.testing.assert_array_equal(y1, y2)
    g = rng.standard_normal(y1.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(g), clone.backward(g))
    _assert_same_state(layer, clone)


def test_deepcopy_drops_caches_too(rng):
    make, shape = CASES["Sequential"]
    m = make(np.float32)
    m(rng.standard_normal(shape).astype(np.float32))
    c = copy.deepcopy(m)
    assert all(s._cache is None and s._out_meta is None for s in _sublayers(c))
    assert m[0]._cache is not None                  # the original keeps its own


def test_pickle_keeps_backend_and_dtype(rng):
    m = L.Sequential(L.Conv2d(2, 3, 3, dtype=np.float64, rng=0), L.ReLU())
    m.set_backend("reference")
    c = pickle.loads(pickle.dumps(m))
    assert c[0]._backend == "reference" and c[0].dtype == np.float64
    x = rng.standard_normal((2, 2, 5, 5))
    np.testing.assert_array_equal(m(x), c(x))


class _WithWorkspace(L.ReLU):
    """A layer registering one more transient attribute, as a subclass does."""

    _transient = ("_workspace",)

    def __init__(self):
        super().__init__()
        self._workspace = None

    def _forward(self, x):
        self._workspace = np.empty_like(x)
        return super()._forward(x)


def test_subclass_transient_names_add_to_the_base_ones(rng):
    layer = _WithWorkspace()
    layer(rng.standard_normal((3, 4)))
    assert layer._transient_names() == {"_cache", "_out_meta", "_pool", "_workspace"}
    state = layer.__getstate__()
    assert not {"_cache", "_out_meta", "_workspace"} & set(state)
    clone = copy.deepcopy(layer)
    assert clone._workspace is None and clone._cache is None
    assert layer._workspace is not None
    np.testing.assert_array_equal(clone(np.ones((2, 2))), np.ones((2, 2)))
