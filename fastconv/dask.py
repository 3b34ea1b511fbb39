"""fastconv models over Dask arrays: many images, processes or machines.

:func:`predict` maps a model over the batch chunks of a Dask array of images
(``map_blocks``), on any Dask scheduler: the threaded one, or a
``distributed`` cluster of worker processes on one or many machines.
:func:`from_npy` reads a directory of ``.npy`` files as such an array, each
file read on the worker that needs it.

Needs the optional extra ``pip install "fastconv[dask]"`` (``dask[array]``
and ``distributed``); ``import fastconv`` never imports Dask.

Examples
--------
>>> import numpy as np, dask.array as da
>>> from fastconv import layers as L
>>> from fastconv.dask import predict
>>> model = L.Sequential(L.Conv2d(3, 8, 3, rng=0), L.ReLU(),
...                      L.GlobalAvgPool2d(), L.Flatten())
>>> images = da.zeros((10_000, 3, 32, 32), dtype=np.float32,
...                   chunks=(1000, 3, 32, 32))
>>> scores = predict(model, images, batch_size=250)
>>> scores.shape, scores.chunksize
((10000, 8), (1000, 8))
"""
try:
    import dask
    import dask.array as da
except ImportError as _error:
    raise ImportError(
        "fastconv.dask needs Dask, an optional extra of fastconv: install it "
        "with pip install \"fastconv[dask]\" (dask[array] and distributed); "
        f"importing dask failed: {_error}"
    ) from _error

import contextlib
import copy
import glob
import os
import re
import threading
import weakref

import numpy as np

from . import _threads
from . import _validation as _v
from . import layers as _layers

__all__ = ["predict", "from_npy"]


def predict(model, images, batch_size=256, *, layer=None, threads=None):
    """Apply ``model`` to a Dask array of images, chunk by chunk.

    Parameters
    ----------
    model : fastconv.layers.Layer
        The network; a snapshot of its parameters and buffers is taken now
        (later changes to ``model`` do not reach the result) and run in
        evaluation mode (``model`` itself is not modified).  A truncated
        model (e.g. ``model[0]`` or ``Sequential(*list(model)[:3])``) gives
        its own output, as any model does.
    images : dask.array.Array of shape (N, C, H, W), float32 or float64
        Chunked along the batch axis (other axes are merged into one chunk
        first); the model's dtype.  Any input shape the model takes works,
        e.g. (N, C, L) for 1-D models.
    batch_size : int
        Images per forward pass within a chunk (bounds the activations'
        memory); a chunk of n images runs as ``ceil(n / batch_size)``
        batches, the last one smaller.
    layer : str or None, keyword-only
        Return the output of this layer instead of the model's: its name
        as in ``model.params`` without the parameter name (``"0.3"`` for
        ``model[0][3]``, ``"2.0.body.1"`` inside a :class:`Residual`).
        Only the layers up to it run.
    threads : int or None, keyword-only
        fastconv threads per task.  None: 1 when the task runs in a pool of
        threads (a ``distributed`` worker or the threaded scheduler, which
        run one chunk per thread, so a worker's fastconv threads add up to
        its own thread count), unchanged on the synchronous scheduler.
        Give more for workers with fewer threads than their cores.

    Returns
    -------
    dask.array.Array of shape (N, *out)
        ``out`` is the model's (or the layer's) output shape per image, in
        one chunk; the batch chunks are ``images``' own; dtype and meta
        (an empty NumPy array) those of ``images``.  Nothing is computed.

    Raises
    ------
    TypeError
        model is not a Layer, images not a Dask array, a dtype other than
        float32/float64 or the model's parameters'.
    ValueError
        batch_size not a positive int, an unknown layer name, chunk sizes
        not known, or images the model rejects (its own message).

    Notes
    -----
    The model reaches each worker once: it is one object (a
    ``dask.delayed``) in the graph, which every chunk's task names as a
    dependency; ``distributed`` ships it to each worker once and each
    worker's threads share its arrays (each thread has its own shallow
    copy of the layer objects, for their caches).

    Threads: every task runs fastconv on ``threads`` threads (fastconv's
    own setting, :func:`fastconv.set_num_threads`, restored when the last
    running task of the process ends).  NumPy's BLAS (used by
    :class:`~fastconv.layers.Linear`) is kept at 1 thread by environment
    variables: ``distributed`` starts its worker processes with
    ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS``
    set to 1 (its ``distributed.nanny.pre-spawn-environ`` setting; keep it
    when you configure workers).  The threaded scheduler runs tasks in your
    own process, whose BLAS setting stays yours: limit it around
    ``compute`` (``with threadpoolctl.threadpool_limits(1, "blas"):``, from
    the main thread: OpenBLAS may ignore changes made from other threads)
    or set ``OPENBLAS_NUM_THREADS=1`` before starting Python.

    Memory: each layer's output is a new array.  ``distributed`` starts
    workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes glibc's mmap
    threshold at 128 KiB: every activation is then mapped and faulted in
    afresh at every batch (ResNet-20 on 32x32 images: about 30% more CPU
    time per image).  Adding ``MALLOC_MMAP_THRESHOLD_`` = 32 MiB to the
    workers' environment keeps such blocks on the heap, as in a plain
    process: ``dask.config.set({"distributed.nanny.pre-spawn-environ.``
    ``MALLOC_MMAP_THRESHOLD_": 2**25})`` before starting them.

    fastconv's convolution, pooling and normalisation give each image the
    same bits whatever the batch it is in, and whatever the thread count,
    so the result is the single-process result; a :class:`Linear` layer
    (NumPy's matmul) can differ in the last bit between batches of
    different sizes, so with one, the result equals running the model in
    one process over the same batches (same chunks, same batch_size).

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from fastconv import layers as L
    >>> from fastconv.dask import predict
    >>> model = L.Sequential(
    ...     L.Sequential(L.Conv2d(3, 16, 3, padding=1, rng=0), L.ReLU(),
    ...                  L.MaxPool2d(2)),
    ...     L.Flatten(), L.Linear(16 * 16 * 16, 10, rng=0))
    >>> x = da.random.default_rng(0).standard_normal(
    ...     (5000, 3, 32, 32), chunks=(500, -1, -1, -1)).astype(np.float32)
    >>> scores = predict(model, x, batch_size=128)
    >>> scores.shape, scores.chunksize
    ((5000, 10), (500, 10))
    >>> predict(model, x, layer="0.1").shape      # the ReLU's output
    (5000, 16, 32, 32)
    >>> labels = scores.argmax(axis=1).compute()  # any Dask scheduler
    >>> labels.shape
    (5000,)
    """
    op = "fastconv.dask.predict"
    if not isinstance(model, _layers.Layer):
        raise TypeError(f"{op}: model must be a fastconv.layers.Layer, got "
                        f"{type(model).__name__}")
    if not isinstance(images, da.Array):
        raise TypeError(
            f"{op}: images must be a dask.array.Array, got "
            f"{type(images).__name__}; wrap a NumPy array with "
            f"dask.array.from_array(x, chunks=(n, -1, -1, -1))")
    if not _v.is_int(batch_size) or batch_size < 1:
        raise ValueError(f"{op}: batch_size must be a positive int, got "
                         f"{batch_size!r}")
    if threads is not None and (not _v.is_int(threads) or threads < 1):
        raise ValueError(f"{op}: threads must be None or a positive int, got "
                         f"{threads!r}")
    if images.ndim < 2:
        raise ValueError(f"{op}: images must have a batch axis and at least "
                         f"one more, got shape {images.shape}")
    if images.dtype not in _v.SUPPORTED_DTYPES:
        raise TypeError(
            f"{op}: images must have dtype float32 or float64, got "
            f"{images.dtype}; convert lazily with images.astype(np.float32)")
    dtypes = {a.dtype for a in model.params.values()}
    if dtypes and images.dtype not in dtypes:
        raise TypeError(
            f"{op}: images have dtype {images.dtype} but the model's "
            f"parameters are {sorted(str(d) for d in dtypes)}; convert the "
            f"images lazily with images.astype(...) or the model with "
            f"model.to(...)")
    if any(np.isnan(c) for c in images.chunks[0]):
        raise ValueError(f"{op}: images have unknown chunk sizes along the "
                         f"batch axis; call images.compute_chunk_sizes() "
                         f"first")
    net = _truncate(model, layer, op)
    # The snapshot: parameters and buffers copied now; gradients are not
    # needed (neither copied nor shipped).
    keep = {id(a): a for sub in net._walk() for a in sub._grads.values()}
    net = copy.deepcopy(net, keep).eval()
    for sub in net._walk():
        sub._grads = {}

    if images.numblocks[1:] != (1,) * (images.ndim - 1):
        images = images.rechunk((images.chunks[0],) + images.shape[1:])
    tail = _output_tail(net, images)
    out_ndim = 1 + len(tail)
    axes = {}
    if out_ndim < images.ndim:
        axes["drop_axis"] = list(range(out_ndim, images.ndim))
    elif out_ndim > images.ndim:
        axes["new_axis"] = list(range(images.ndim, out_ndim))
    return da.map_blocks(
        _predict_chunk, images, dask.delayed(net, pure=False),
        batch_size=batch_size, threads=threads, tail=tail,
        chunks=(images.chunks[0],) + tuple((n,) for n in tail),
        dtype=images.dtype, meta=np.empty((0,) * out_ndim, images.dtype),
        token="fastconv-predict",
        **axes)


def _truncate(model, layer, op):
    """The part of ``model`` whose output is layer ``layer``'s output
    (new containers around the same layer objects)."""
    if layer is None:
        return model
    if not isinstance(layer, str):
        raise TypeError(f"{op}: layer must be a layer name (str) or None, "
                        f"got {type(layer).__name__}")
    parts = layer.split(".")
    node = model
    for depth, part in enumerate(parts):
        if part not in node._children:
            names = _layer_names(model)
            shown = ", ".join(repr(n) for n in names[:20])
            more = f", ... ({len(names)} in all)" if len(names) > 20 else ""
            raise ValueError(f"{op}: the model has no layer {layer!r}; its "
                             f"layers are {shown}{more}")
        if type(node) not in (_layers.Sequential, _layers.Residual):
            raise ValueError(
                f"{op}: cannot take the output of layer {layer!r}: "
                f"{'.'.join(parts[:depth]) or 'the model'} is a "
                f"{type(node).__name__}, and only Sequential and Residual "
                f"containers can be cut; pass a truncated model instead")
        node = node._children[part]
    return _cut(model, parts)


def _cut(node, parts):
    if not parts:
        return node
    child = _cut(node._children[parts[0]], parts[1:])
    if type(node) is _layers.Residual:
        return child                       # body and shortcut see its input
    names = list(node._children)
    before = [node._children[n] for n in names[:names.index(parts[0])]]
    return _layers.Sequential(*before, child) if before else child


def _layer_names(model, prefix=""):
    names = []
    for name, child in model._children.items():
        names.append(prefix + name)
        names += _layer_names(child, f"{prefix}{name}.")
    return names


def _output_tail(net, images):
    """The output's shape per image, from the shape protocol (or one image)."""
    try:
        shape = net.output_shape((1,) + images.shape[1:])
    except NotImplementedError:            # a layer without output_shape
        shape = net(np.zeros((1,) + images.shape[1:], images.dtype)).shape
    return tuple(shape[1:])


def _predict_chunk(x, net, *, batch_size, threads, tail):
    """One chunk: the model over batches of ``batch_size`` images."""
    net = _thread_copy(net)
    out = np.empty((x.shape[0],) + tail, x.dtype)
    with _task_threads(threads):
        for start in range(0, x.shape[0], batch_size):
            out[start:start + batch_size] = net(x[start:start + batch_size])
    return out


# A worker's threads share one model; each runs its own shallow copy of the
# layer objects (their forward caches and workspaces are per call), with the
# parameter, gradient and buffer arrays shared: read-only in eval mode.
_local = threading.local()


def _thread_copy(net):
    copies = getattr(_local, "copies", None)
    if copies is None:
        copies = _local.copies = weakref.WeakKeyDictionary()
    mine = copies.get(net)
    if mine is None:
        shared = {id(a): a for sub in net._walk()
                  for store in (sub._params, sub._grads, sub._buffers)
                  for a in store.values()}
        mine = copies[net] = copy.deepcopy(net, shared)
    return mine


# fastconv's thread count for the tasks of a process: set when a task starts,
# restored when the last running one ends (a worker's threads run tasks
# concurrently and the setting is per process).
_limits_lock = threading.Lock()
_limits = {"running": 0, "saved": None}


@contextlib.contextmanager
def _task_threads(threads):
    pooled = threading.current_thread() is not threading.main_thread()
    if threads is None and pooled:
        threads = 1
    with _limits_lock:
        if _limits["running"] == 0:
            _limits["saved"] = _threads.get_num_threads()
        _limits["running"] += 1
        if threads is not None:
            _threads.set_num_threads(threads)
    try:
        yield
    finally:
        with _limits_lock:
            _limits["running"] -= 1
            if _limits["running"] == 0:
                _threads.set_num_threads(_limits["saved"])


def from_npy(files):
    """Read ``.npy`` files as one Dask array, one chunk per file.

    Only the files' headers are read now (shapes and dtypes); each file's
    data is read by the task that needs it, on whichever worker runs it:
    nothing passes through the client.

    Parameters
    ----------
    files : str, path-like or sequence of them
        A directory (its ``*.npy`` files), a glob pattern, or the files in
        order.  Names from a directory or pattern are sorted with numbers
        compared as numbers (``2.npy`` before ``10.npy``), so a directory
        written by ``dask.array.to_npy_stack`` reads back in order.  Every
        file holds an array of shape (n_i, *rest), the same rest and dtype
        in all; the files are concatenated along axis 0.

    Returns
    -------
    dask.array.Array of shape (sum of n_i, *rest)
        Chunks ``(n_1, n_2, ...)`` along axis 0.

    Raises
    ------
    ValueError
        No files, a file that is not an ``.npy`` array of at least one
        dimension, or files whose shapes (past axis 0) or dtypes differ.
        When computed: a file changed since (its shape or dtype).

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from fastconv.dask import from_npy, predict
    >>> # batches/0.npy, batches/1.npy, ...: uint8 arrays (n_i, 3, 32, 32)
    >>> images = from_npy("batches/")                     # doctest: +SKIP
    >>> x = images.astype(np.float32) / 255               # doctest: +SKIP
    >>> da.to_npy_stack("scores/", predict(model, x))     # doctest: +SKIP
    """
    op = "fastconv.dask.from_npy"
    paths = _npy_paths(files, op)
    headers = [_npy_header(p, op) for p in paths]
    shape0, dtype0 = headers[0]
    for path, (shape, dtype) in zip(paths, headers):
        if shape[1:] != shape0[1:] or dtype != dtype0:
            raise ValueError(
                f"{op}: {path} holds shape {shape} and dtype {dtype}, but "
                f"{paths[0]} holds {shape0} and {dtype0}; every file needs "
                f"the same shape past axis 0 and the same dtype")
    meta = np.empty((0,) * len(shape0), dtype0)
    parts = [da.from_delayed(dask.delayed(_load_npy, pure=True)(p, s, d),
                             shape=s, dtype=d, meta=meta)
             for p, (s, d) in zip(paths, headers)]
    return parts[0] if len(parts) == 1 else da.concatenate(parts, axis=0)


def _npy_paths(files, op):
    if isinstance(files, (str, os.PathLike)):
        files = os.fspath(files)
        if os.path.isdir(files):
            paths = glob.glob(os.path.join(glob.escape(files), "*.npy"))
        elif os.path.isfile(files):
            paths = [files]
        else:
            paths = glob.glob(files)
        paths.sort(key=_natural_key)
    else:
        paths = [os.fspath(p) for p in files]
    if not paths:
        raise ValueError(f"{op}: no .npy files in {files!r}")
    return paths


def _natural_key(path):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t)
            for t in re.split(r"(\d+)", path)]


def _npy_header(path, op):
    """(shape, dtype) from an ``.npy`` file's header alone."""
    try:                                   # maps the file; reads the header
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{op}: cannot read {path} as an .npy file: "
                         f"{error}") from error
    if not isinstance(x, np.ndarray):      # an .npz archive
        raise ValueError(f"{op}: {path} is not an .npy file (one array)")
    shape, dtype = x.shape, x.dtype
    del x
    if len(shape) < 1:
        raise ValueError(f"{op}: {path} holds a 0-d array; each file needs "
                         f"a leading batch axis")
    return tuple(shape), np.dtype(dtype)


def _load_npy(path, shape, dtype):
    x = np.load(path, allow_pickle=False)
    if x.shape != shape or x.dtype != dtype:
        raise ValueError(
            f"fastconv.dask.from_npy: {path} now holds shape {x.shape} and "
            f"dtype {x.dtype}, not the {shape} and {dtype} read when the "
            f"array was made")
    return x
