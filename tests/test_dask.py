"""fastconv.dask: models over Dask arrays, on threads and on a local cluster."""

import copy
import importlib
import pickle
import sys

import dask
import dask.array as da
import dask.core
import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream
from threadpoolctl import threadpool_info, threadpool_limits

import fastconv
from fastconv import layers as L
from fastconv import losses, optim
from fastconv.dask import from_npy, predict

N_IMAGES = 3000
SHAPE = (1, 12, 12)


def _lenet():
    return L.Sequential(
        L.Sequential(L.Conv2d(1, 8, 3, padding=1, rng=0), L.BatchNorm2d(8), L.ReLU(),
                     L.MaxPool2d(2),
                     L.Conv2d(8, 16, 3, padding=1, rng=1), L.ReLU(), L.MaxPool2d(2)),
        L.Flatten(), L.Dropout(0.2, rng=2), L.Linear(16 * 3 * 3, 4, rng=3))


def _data(n, seed):
    """Four classes of 12x12 images: a bright quadrant, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    x = rng.standard_normal((n,) + SHAPE).astype(np.float32)
    for k in range(4):
        r, c = divmod(k, 2)
        x[labels == k, :, 6 * r:6 * r + 6, 6 * c:6 * c + 6] += 1.5
    return x, labels


@pytest.fixture(scope="module")
def trained():
    """A small network trained for 60 steps (moved BatchNorm statistics)."""
    model = _lenet()
    opt = optim.SGD(model, lr=0.05, momentum=0.9)
    x, labels = _data(60 * 32, seed=1)
    for i in range(0, len(x), 32):
        model.zero_grad()
        loss, grad = losses.softmax_cross_entropy(model(x[i:i + 32]), labels[i:i + 32])
        model.backward(grad)
        opt.step()
    test_x, test_labels = _data(500, seed=2)
    accuracy = (model.eval()(test_x).argmax(1) == test_labels).mean()
    assert accuracy > 0.9, accuracy                   # it did learn
    return model.train()                              # predict must switch it


@pytest.fixture(scope="module")
def images():
    return _data(N_IMAGES, seed=3)[0]


def _reference(model, x, chunks, batch_size):
    """The single-process result: the model in eval mode over the same
    batches (each chunk cut into batch_size pieces), no Dask."""
    model = copy.deepcopy(model).eval()
    out, start = [], 0
    for n in chunks:
        for s in range(start, start + n, batch_size):
            out.append(model(x[s:min(s + batch_size, start + n)]))
        start += n
    return np.concatenate(out)


def _no_linear():
    """A fully convolutional network: every result is batch-independent."""
    return L.Sequential(L.Conv2d(1, 6, 3, padding=1, rng=0), _moved_bn(6), L.ReLU(),
                        L.MaxPool2d(2), L.basic_block(6, 8, 2, rng=1),
                        L.Conv2d(8, 3, 1, rng=2), L.GlobalAvgPool2d(), L.Flatten())


def _moved_bn(c):
    bn = L.BatchNorm2d(c)
    bn.buffers["running_mean"][...] = np.linspace(-1, 1, c)
    bn.buffers["running_var"][...] = np.linspace(0.5, 2, c)
    return bn


# A probe layer: records the thread settings its forward sees.
_SEEN = []


class _Probe(L.Layer):
    def _forward(self, x):
        _SEEN.append((fastconv.get_num_threads(), _blas_threads(), x.shape[0]))
        return x.copy()

    def output_shape(self, input_shape):
        return tuple(input_shape)


# ---------------------------------------------------------------------------
# a real cluster: 2 worker processes on the loopback interface
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 single-thread worker processes on 127.0.0.1, no
    dashboard; the context managers shut it down however the tests end."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


def test_cluster_equals_single_process(client, trained, images):
    x = da.from_array(images, chunks=(700, -1, -1, -1))     # 700 x 4, then 200
    y = predict(trained, x, batch_size=128)
    assert trained.training               # predict runs eval mode on a copy
    with get_task_stream(client) as stream:
        got = client.compute(y).result()
    want = _reference(trained, images, x.chunks[0], 128)
    assert got.dtype == want.dtype == np.float32 and got.shape == (N_IMAGES, 4)
    np.testing.assert_array_equal(got, want)
    ran = [t["worker"] for t in stream.data if y.name in str(t["key"])]
    assert len(ran) == 5 and len(set(ran)) == 2             # both workers worked


def test_cluster_reads_npy_files_and_writes_results(client, tmp_path, images):
    bounds = [0, 1000, 1001, 2500, N_IMAGES]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        np.save(tmp_path / f"batch{i}.npy", images[a:b])
    x = from_npy(tmp_path)
    assert x.chunks[0] == (1000, 1, 1499, 500)
    # The graph holds file names, not pixels: nothing is gathered on the client.
    assert len(pickle.dumps(dict(x.__dask_graph__()))) < x.nbytes / 100
    model = _no_linear()
    scores = predict(model, x, batch_size=256)
    out = tmp_path / "scores"
    with dask.config.set(scheduler=client):
        da.to_npy_stack(out, scores)                 # written by the workers
    got = from_npy(out).compute(scheduler="sync")
    np.testing.assert_array_equal(got, model.eval()(images))


# ---------------------------------------------------------------------------
# the threaded scheduler; chunks and batches
# ---------------------------------------------------------------------------

def test_threaded_scheduler(trained, images, restore_threads):
    x = da.from_array(images, chunks=(256, -1, -1, -1))
    y = predict(trained, x, batch_size=100)
    got = y.compute(scheduler="threads", num_workers=4)
    np.testing.assert_array_equal(got, _reference(trained, images, x.chunks[0], 100))
    assert fastconv.get_num_threads() == restore_threads     # restored


@pytest.mark.parametrize("chunks", [(37, 100, 64, 50, 1), (1, 1, 250), (251,)])
def test_chunks_not_multiples_of_the_batch(chunks, trained, images):
    x = da.from_array(images[:sum(chunks)], chunks=(chunks, -1, -1, -1))
    y = predict(trained, x, batch_size=16)
    assert y.chunks == (chunks, (4,))
    assert type(y._meta) is np.ndarray and y._meta.ndim == 2
    assert y.dtype == np.float32
    got = y.compute(scheduler="threads")
    assert got.shape == (sum(chunks), 4)
    np.testing.assert_array_equal(got, _reference(trained, images, chunks, 16))
    # Without Linear (BLAS), the result does not depend on chunks or batches
    # at all: it is the whole array in one call.
    conv = _no_linear()
    got = predict(conv, x, batch_size=16).compute(scheduler="threads")
    np.testing.assert_array_equal(got, conv.eval()(images[:sum(chunks)]))


def test_batches_within_chunks(rng):
    x = da.from_array(rng.standard_normal((138, 2)).astype(np.float32),
                      chunks=((37, 100, 1), -1))
    _SEEN.clear()
    predict(_Probe(), x, batch_size=16).compute(scheduler="threads")
    assert sorted(n for _, _, n in _SEEN) == sorted([16, 16, 5] + [16] * 6 + [4, 1])


def test_float64_and_other_axes_rechunked(rng):
    model = _no_linear().to(np.float64)
    x = rng.standard_normal((40,) + SHAPE)
    y = predict(model, da.from_array(x, chunks=(15, 1, 6, 12)), batch_size=8)
    assert y.dtype == np.float64 and y.chunks == ((15, 15, 10), (3,))
    np.testing.assert_array_equal(y.compute(scheduler="threads"), model.eval()(x))


def test_empty_chunk():
    x = da.zeros((0,) + SHAPE, dtype=np.float32, chunks=(0, 1, 12, 12))
    y = predict(_no_linear(), x)
    assert y.compute(scheduler="sync").shape == (0, 3)


# ---------------------------------------------------------------------------
# feature extraction
# ---------------------------------------------------------------------------

def test_layer_by_name(trained, images):
    x = images[:300]
    dx = da.from_array(x, chunks=(128, -1, -1, -1))
    m = copy.deepcopy(trained).eval()
    f = m[0]
    want = L.Sequential(f[0], f[1], f[2], f[3])(x)     # fused as the model runs them
    y = predict(trained, dx, batch_size=50, layer="0.3")
    assert y.shape == (300, 8, 6, 6) and y.chunks[1:] == ((8,), (6,), (6,))
    np.testing.assert_array_equal(y.compute(scheduler="threads"), want)
    # A top-level layer, the same as a truncated model passed directly.
    by_name = predict(trained, dx, layer="1").compute(scheduler="threads")
    truncated = predict(L.Sequential(m[0], m[1]), dx).compute(scheduler="threads")
    np.testing.assert_array_equal(by_name, m[1](m[0](x)))
    np.testing.assert_array_equal(truncated, by_name)


def test_layer_inside_a_residual_block(rng):
    net = _no_linear().eval()
    x = rng.standard_normal((20,) + SHAPE).astype(np.float32)
    block = net[4][0]                                 # Residual(body, shortcut)
    # the models run as Sequential runs them (fused), so are the expectations
    h = L.Sequential(net[0], net[1], net[2], net[3])(x)
    dx = da.from_array(x, chunks=7)
    for name, want in [("4.0.body.2", L.Sequential(*[block.body[i] for i in range(3)])(h)),
                       ("4.0.shortcut", block.shortcut(h)),
                       ("4.0.shortcut.0", block.shortcut[0](h))]:
        got = predict(net, dx, layer=name).compute(scheduler="threads")
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_layer_name_errors(trained):
    x = da.zeros((4,) + SHAPE, dtype=np.float32)
    with pytest.raises(ValueError, match=r"no layer '0\.9'.*'0\.3'"):
        predict(trained, x, layer="0.9")
    with pytest.raises(ValueError, match="no layer '3.weight'"):
        predict(trained, x, layer="3.weight")
    with pytest.raises(TypeError, match="layer must be a layer name"):
        predict(trained, x, layer=0)

    class Custom(L.Sequential):
        pass

    with pytest.raises(ValueError, match="only Sequential and Residual"):
        predict(L.Sequential(Custom(L.ReLU(), L.ReLU())), x, layer="0.1")


# ---------------------------------------------------------------------------
# the graph: one model, threads, snapshot, errors
# ---------------------------------------------------------------------------

def test_model_is_one_object_in_the_graph(rng):
    model = L.Sequential(L.Flatten(), L.Linear(144, 1000, rng=0))  # 576 kB of weights
    x = da.from_array(rng.standard_normal((200,) + SHAPE).astype(np.float32),
                      chunks=(10, -1, -1, -1))
    y = predict(model, x)
    graph = dict(dask.optimize(y)[0].__dask_graph__())      # as computed
    sizes = {key: len(pickle.dumps(task)) for key, task in graph.items()}
    weights = model.params["1.weight"].nbytes
    big = [key for key, size in sizes.items() if size > weights]
    assert len(big) == 1                      # the model, once ...
    assert sizes[big[0]] < 1.1 * weights      # ... without its gradients
    chunk_tasks = [k for k in graph if isinstance(k, tuple) and k[0] == y.name]
    assert len(chunk_tasks) == 20
    for key in chunk_tasks:                   # ... which every chunk's task names
        assert sizes[key] < weights / 10
        assert big[0] in dask.core.get_dependencies(graph, key)


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_threads_inside_tasks(restore_threads, rng):
    x = da.from_array(rng.standard_normal((64, 2)).astype(np.float32), chunks=8)
    fastconv.set_num_threads(2)
    for threads, want in [(None, 1), (3, 3)]:
        _SEEN.clear()
        predict(_Probe(), x, batch_size=4, threads=threads).compute(
            scheduler="threads", num_workers=3)
        assert len(_SEEN) == 16 and {n for n, _, _ in _SEEN} == {want}
    assert fastconv.get_num_threads() == 2                     # restored
    # The synchronous scheduler (main thread) keeps fastconv's setting.
    _SEEN.clear()
    predict(_Probe(), x).compute(scheduler="sync")
    assert {n for n, _, _ in _SEEN} == {2}
    # The README's recipe for BLAS on the threaded scheduler: a limit set
    # from the main thread holds in the tasks.
    _SEEN.clear()
    with threadpool_limits(1, user_api="blas"):
        predict(_Probe(), x).compute(scheduler="threads", num_workers=3)
    assert _SEEN and all(blas and set(blas) == {1} for _, blas, _ in _SEEN)


def test_cluster_workers_run_blas_on_one_thread(client):
    # distributed's pre-spawn-environ (OPENBLAS_NUM_THREADS=1 ...), on which
    # predict's docstring relies.
    for info in client.run(threadpool_info).values():
        blas = [i["num_threads"] for i in info if i["user_api"] == "blas"]
        assert blas and set(blas) == {1}


def test_snapshot_and_model_untouched(rng):
    model = _no_linear()
    x = rng.standard_normal((30,) + SHAPE).astype(np.float32)
    want = model.eval()(x)
    model.train()
    y = predict(model, da.from_array(x, chunks=10))
    for p in model.params.values():           # later changes do not reach y
        p[...] = 0
    np.testing.assert_array_equal(y.compute(scheduler="threads"), want)
    assert model.training and all(s.training for s in model._walk())


def test_errors(trained):
    x = da.zeros((10,) + SHAPE, dtype=np.float32, chunks=5)
    with pytest.raises(TypeError, match="model must be a fastconv.layers.Layer"):
        predict(lambda a: a, x)
    with pytest.raises(TypeError, match="dask.array.from_array"):
        predict(trained, np.zeros((10,) + SHAPE, np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        predict(trained, x.astype(np.uint8))
    with pytest.raises(TypeError, match=r"images have dtype float64 but the model"):
        predict(trained, x.astype(np.float64))
    for bad in (0, -1, 2.5, None):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            predict(trained, x, batch_size=bad)
    with pytest.raises(ValueError, match="threads must be None or a positive int"):
        predict(trained, x, threads=0)
    with pytest.raises(ValueError, match="Conv2d.*expects input of shape"):
        predict(trained, da.zeros((10, 3, 12, 12), dtype=np.float32))  # model's
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        predict(trained, x[x[:, 0, 0, 0] > 0])


def test_from_npy_order_and_errors(tmp_path, rng):
    parts = [rng.standard_normal((n, 2)).astype(np.float32) for n in (3, 1, 4)]
    for i, p in zip((2, 10, 1), parts):                # 1, 2, 10: numeric order
        np.save(tmp_path / f"{i}.npy", p)
    order = [parts[2], parts[0], parts[1]]
    for files in (tmp_path, str(tmp_path / "*.npy"),
                  [tmp_path / "1.npy", tmp_path / "2.npy", tmp_path / "10.npy"]):
        x = from_npy(files)
        assert x.chunks == ((4, 3, 1), (2,))
        np.testing.assert_array_equal(x.compute(scheduler="sync"),
                                      np.concatenate(order))
    with pytest.raises(ValueError, match="no .npy files"):
        from_npy(tmp_path / "nothing-*.npy")
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="same shape past axis 0"):
        from_npy(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((2, 2), np.float64))
    with pytest.raises(ValueError, match="same shape past axis 0 and the same dtype"):
        from_npy(tmp_path)
    (tmp_path / "x.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match="cannot read .* as an .npy file"):
        from_npy(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((2, 2), np.float32))
    x = from_npy(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((5, 2), np.float32))   # changed since
    with pytest.raises(ValueError, match="now holds shape"):
        x.compute(scheduler="sync")


def test_import_error_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "fastconv.dask")
    with pytest.raises(ImportError, match=r'pip install "fastconv\[dask\]"'):
        importlib.import_module("fastconv.dask")
