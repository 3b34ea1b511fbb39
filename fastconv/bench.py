"""Compare fastconv's kernels with its NumPy reference and with PyTorch.

Run ``fastconv bench`` (or ``python -m fastconv.bench``); ``--help`` lists the
options.  ``fastconv bench --models`` times whole networks instead
(:mod:`fastconv.bench_models`).  The shapes and ops timed are those of
:mod:`fastconv.bench_suite`, which the pytest-benchmark suites in
``benchmarks/`` read too (``fastconv bench --list`` prints them).

How the comparison is measured (results: benchmarks/RESULTS.md in the sources):

* Contenders run interleaved, round-robin -- fastconv, NumPy
  (:mod:`fastconv.reference`), PyTorch, fastconv, ... -- so drift in the
  machine's speed hits all of them alike.  Each turn times a block of
  back-to-back calls (at least a few milliseconds); the figure reported is the
  median over the rounds of the time per call.
* Each thread count T gets its own table.  fastconv runs with
  ``fastconv.set_num_threads(T)``, NumPy's BLAS is limited to T threads with
  threadpoolctl, and PyTorch (``torch.set_num_threads(T)``) always runs in a
  subprocess of its own, driven through a pipe, so that two OpenMP thread
  pools (or one shared libgomp whose thread count both libraries set) never
  meet in one process.  At T > 1 the contenders' turns are separated by a short
  sleep so that one library's spin-waiting threads do not eat into the next
  one's turn.
* Backward kernels are timed alone: the forward pass (and max-pool indices)
  is computed while the inputs are built.
* The machine's own yardsticks are measured in the same run at each T: sgemm
  (dgemm for float64) GFLOP/s of a 2048x2048 NumPy matmul, and memory-copy
  bandwidth of ``np.copyto`` on a large array, split over T Python threads.
* Peak extra memory of one fastconv call is measured in a fresh subprocess per
  shape (see :func:`measure_memory`), before the timings.

Nothing here imports torch at module import; PyTorch is optional.
"""

import argparse
import contextlib
import ctypes
import gc
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import numpy as np

from .bench_suite import (
    CONV_SHAPES,
    EXTRA_SHAPES,
    FAMILIES,
    FLOAT64_SHAPES,
    OPS,
    POOL_SHAPES,
    QUICK_SHAPES,
    ConvShape,
    PoolShape,
    Spec,
    family_shapes,
    suite,
)

__all__ = [
    # the kernel suite, defined in fastconv.bench_suite (also reachable here)
    "ConvShape", "PoolShape", "CONV_SHAPES", "POOL_SHAPES", "EXTRA_SHAPES",
    "QUICK_SHAPES", "FLOAT64_SHAPES", "OPS", "FAMILIES", "family_shapes", "Spec", "suite",
    # the harness
    "CONTENDERS", "Case", "measure_memory", "main",
    # measurement and report helpers shared with fastconv.bench_models
    "Local", "TorchWorker", "status_bytes", "maxrss_bytes", "reset_peak_rss",
    "iqr_rel", "geomean", "format_num", "format_header", "machine_info",
    "blas_libraries",
]


# --------------------------------------------------------------------------
# The suites (defined in fastconv.bench_suite) and the contenders
# --------------------------------------------------------------------------

#: Contender names: the compiled path, its NumPy twin, PyTorch CPU.
CONTENDERS = ("fastconv", "reference", "torch")



# --------------------------------------------------------------------------
# Cases: inputs, one zero-argument callable per contender, work done
#
# Each builder below returns (inputs, call, torch_call, work):
#   call(m, *inputs) -> a zero-argument callable running the op with module m,
#       fastconv or fastconv.reference (they share signatures);
#   torch_call(torch, *tensors) -> the same for PyTorch, on tensors sharing the
#       inputs' memory;
#   work -> FLOPs (conv2d) or bytes of minimum memory traffic (the others).
# --------------------------------------------------------------------------

def _conv(s, dt, rng, backward):
    x = rng.standard_normal((s.N, s.C, s.H, s.W), dtype=dt)
    w = rng.standard_normal((s.F, s.C // s.groups, s.k, s.k), dtype=dt)
    ho, wo = s.out_hw
    geo = dict(stride=s.stride, padding=s.pad, dilation=s.dilation, groups=s.groups)
    flops = 2 * s.N * s.F * ho * wo * (s.C // s.groups) * s.k * s.k
    if not backward:
        b = rng.standard_normal(s.F, dtype=dt)
        return ((x, w, b), lambda m, x, w, b: lambda: m.conv2d(x, w, b, **geo),
                lambda torch, x, w, b: lambda: torch.conv2d(x, w, b, **geo), flops)
    go = rng.standard_normal((s.N, s.F, ho, wo), dtype=dt)
    pair = [s.stride] * 2, [s.pad] * 2, [s.dilation] * 2

    def torch_call(torch, go, x, w):
        aten = torch.ops.aten
        return lambda: aten.convolution_backward(
            go, x, w, [s.F], *pair, False, [0, 0], s.groups, [True, True, True])

    return ((go, x, w), lambda m, go, x, w: lambda: m.conv2d_backward(go, x, w, **geo),
            torch_call, 2 * flops)


def _unfold(s, dt, rng, fold):
    ho, wo = s.out_hw
    geo = dict(stride=s.stride, padding=s.pad, dilation=s.dilation)
    cols_shape = (s.N, s.C * s.k * s.k, ho * wo)
    traffic = (s.N * s.C * s.H * s.W + math.prod(cols_shape)) * dt.itemsize
    if not fold:
        x = rng.standard_normal((s.N, s.C, s.H, s.W), dtype=dt)
        return ((x,), lambda m, x: lambda: m.im2col(x, s.k, **geo),
                lambda torch, x: lambda: torch.nn.functional.unfold(x, s.k, **geo), traffic)
    cols = rng.standard_normal(cols_shape, dtype=dt)
    size = (s.H, s.W)
    return ((cols,), lambda m, c: lambda: m.col2im(c, size, s.k, **geo),
            lambda torch, c: lambda: torch.nn.functional.fold(c, size, s.k, **geo), traffic)


def _pool(op, s, dt, rng):
    from . import reference

    x = rng.standard_normal((s.N, s.C, s.H, s.W), dtype=dt)
    y_shape = (s.N, s.C) + s.out_hw
    nx, ny, it = x.size, math.prod(y_shape), dt.itemsize
    k, st = s.k, s.stride
    kk, ss, zero = [k, k], [st, st], [0, 0]
    if op == "max_pool2d":
        return ((x,), lambda m, x: lambda: m.max_pool2d(x, k, st),
                lambda torch, x: lambda: torch.nn.functional.max_pool2d(x, k, st), (nx + ny) * it)
    if op == "max_pool2d_indices":
        return ((x,), lambda m, x: lambda: m.max_pool2d(x, k, st, return_indices=True),
                lambda torch, x: lambda: torch.nn.functional.max_pool2d(
                    x, k, st, return_indices=True),
                (nx + ny) * it + ny * 8)
    if op == "avg_pool2d":
        return ((x,), lambda m, x: lambda: m.avg_pool2d(x, k, st),
                lambda torch, x: lambda: torch.nn.functional.avg_pool2d(x, k, st), (nx + ny) * it)
    go = rng.standard_normal(y_shape, dtype=dt)
    if op == "avg_pool2d_backward":
        def torch_call(torch, go, x):
            aten = torch.ops.aten
            return lambda: aten.avg_pool2d_backward(go, x, kk, ss, zero, False, True, None)

        return ((go, x), lambda m, go, x: lambda: m.avg_pool2d_backward(go, x.shape, k, st),
                torch_call, (ny + nx) * it)
    # max_pool2d_backward; indices from the NumPy twin (no OpenMP in setup)
    idx = reference.max_pool2d(x, k, st, return_indices=True)[1]

    def torch_call(torch, go, idx, x):
        aten = torch.ops.aten
        return lambda: aten.max_pool2d_with_indices_backward(
            go, x, kk, ss, zero, [1, 1], False, idx)

    return ((go, idx, x), lambda m, go, idx, x: lambda: m.max_pool2d_backward(go, idx, x.shape),
            torch_call, (ny + nx) * it + ny * 8)


class Case:
    """The inputs of one benchmark and a callable per contender.

    Inputs are random normal, seeded from the spec, so every process builds
    the same data.  Backward cases hold the forward's results (grad_out,
    max-pool indices) already computed.

    Parameters
    ----------
    op, shape, dtype : str
        As in :class:`Spec`; ``shape`` may name an :data:`EXTRA_SHAPES` entry.

    Attributes
    ----------
    spec : Spec
    group : str
        ``"op|shape|dtype"``, the pytest-benchmark group.
    family : str
    shape : ConvShape or PoolShape
    inputs : tuple of ndarray
    work : int
        FLOPs (conv2d family; backward counts twice the forward) or bytes of
        minimum memory traffic, read + written (the others).
    unit : str
        ``"GFLOP/s"`` or ``"GB/s"``: what ``work / seconds / 1e9`` is.
    """

    def __init__(self, op, shape, dtype="float32"):
        dt = np.dtype(dtype)
        self.spec = Spec(op, shape, dt.name)
        self.group = str(self.spec)
        self.family = OPS[op]
        self.shape = family_shapes(self.family, extra=True)[shape]
        rng = np.random.default_rng(zlib.crc32(self.group.encode()))
        if self.family == "conv2d":
            built = _conv(self.shape, dt, rng, op == "conv2d_backward")
        elif self.family == "im2col":
            built = _unfold(self.shape, dt, rng, op == "col2im")
        else:
            built = _pool(op, self.shape, dt, rng)
        self.inputs, self._numpy, self._torch, self.work = built
        self.unit = "GFLOP/s" if self.family == "conv2d" else "GB/s"

    def call(self, contender):
        """A zero-argument callable running this case with ``contender``.

        Parameters
        ----------
        contender : {"fastconv", "reference", "torch"}
            ``"torch"`` imports torch (CPU) and runs under
            ``torch.inference_mode()`` on tensors sharing the inputs' memory.
        """
        if contender == "fastconv":
            import fastconv
            return self._numpy(fastconv, *self.inputs)
        if contender == "reference":
            from . import reference
            return self._numpy(reference, *self.inputs)
        if contender != "torch":
            raise ValueError(f"unknown contender {contender!r}; one of {CONTENDERS}")
        import torch

        fn = self._torch(torch, *(torch.from_numpy(a) for a in self.inputs))

        def run():
            with torch.inference_mode():
                return fn()
        return run


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def _per_call(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


class Local:
    """An in-process contender: calibrate a block size, then time blocks."""

    def __init__(self, fn):
        self.fn, self.number = fn, 1

    def calibrate(self, target):
        """Pick the block size: calls that last about ``target`` seconds."""
        self.fn()                                   # warm-up, not timed
        times = []
        while len(times) < 3 and sum(times) < target:
            times.append(_per_call(self.fn, 1))
        self.number = max(1, min(10_000, int(target / max(min(times), 1e-7))))

    def measure(self):
        """A timed block, after one untimed call (wakes threads, warms caches)
        unless a single call fills the block."""
        if self.number > 1:
            self.fn()
        return _per_call(self.fn, self.number)


def _child_command(*args):
    """``python -c ...`` running :func:`_child` with the fastconv this process runs.

    ``python -c`` would put the working directory first on ``sys.path``, where
    a source checkout's uncompiled ``fastconv/`` may sit; the directory this
    process imported fastconv from takes its place.
    """
    import fastconv

    home = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    code = ("import sys; sys.path[0] = sys.argv[1]; import fastconv.bench as b; "
            "sys.exit(b._child(sys.argv[2:]))")
    return [sys.executable, "-c", code, home, *args]


class TorchWorker:
    """PyTorch in a subprocess of its own, driven over a pipe.

    The subprocess builds the same case (same seed) and times it when asked,
    so its turns interleave with the in-process contenders'.  fastconv's
    OpenMP threads and PyTorch's thus never share a process (here they would
    even share one libgomp, whose thread count both libraries set).
    """

    def __init__(self):
        self.proc = subprocess.Popen(
            _child_command("torch"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def hello(self):
        """Wait until torch is imported; return its version."""
        return self._ask(cmd="hello")["version"]

    def set_threads(self, threads):
        """``torch.set_num_threads(threads)`` in the worker; returns its count."""
        return self._ask(cmd="threads", threads=threads)["threads"]

    def _ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"torch worker exited (status {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"torch worker: {reply['error']}")
        return reply

    def load(self, spec, target):
        """Build ``spec`` in the worker and calibrate its block size."""
        self._ask(cmd="load", spec=list(spec), target=target)

    def calibrate(self, target):
        """Done by :meth:`load`."""

    def measure(self):
        return self._ask(cmd="time")["seconds"]

    def close(self):
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _torch_worker():
    """Subprocess side of :class:`TorchWorker`: JSON lines on stdin/stdout."""
    out, sys.stdout = sys.stdout, sys.stderr       # stray prints stay off the pipe

    def reply(**msg):
        out.write(json.dumps(msg) + "\n")
        out.flush()

    import torch

    runner = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "quit":
                break
            if msg["cmd"] == "hello":
                reply(version=torch.__version__)
            elif msg["cmd"] == "threads":
                torch.set_num_threads(msg["threads"])
                reply(threads=torch.get_num_threads())
            elif msg["cmd"] == "load":
                runner = None
                gc.collect()
                runner = Local(Case(*msg["spec"]).call("torch"))
                runner.calibrate(msg["target"])
                reply(number=runner.number)
            elif msg["cmd"] == "time":
                reply(seconds=runner.measure())
        except Exception as exc:  # reported to the parent, which raises
            reply(error=f"{type(exc).__name__}: {exc}")
    return 0


def _gemm_gflops(dtype, repeat):
    """GFLOP/s of a 2048x2048 NumPy matmul (BLAS at the current limit)."""
    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=dtype)
    b = rng.standard_normal((n, n), dtype=dtype)
    c = np.empty_like(a)
    t = statistics.median(_per_call(lambda: np.matmul(a, b, out=c), 1)
                          for _ in range(repeat))
    return 2 * n**3 / t / 1e9


def _copy_gbps(threads, repeat, nbytes=256 << 20):
    """GB/s (read + write) of ``np.copyto`` on ``nbytes``, over ``threads`` threads."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    chunks = [(d, s) for d, s in zip(np.array_split(dst, threads),
                                     np.array_split(src, threads))]
    with ThreadPoolExecutor(threads) as pool:
        def copy():
            list(pool.map(lambda ds: np.copyto(*ds), chunks))
        copy()
        t = statistics.median(_per_call(copy, 1) for _ in range(repeat))
    return 2 * src.nbytes / t / 1e9


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------

def status_bytes(key):
    """A field of /proc/self/status (VmRSS, VmHWM) in bytes; Linux only."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def maxrss_bytes():
    """This process's peak resident set size in bytes (getrusage)."""
    import resource  # POSIX only

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        status_bytes("VmHWM")
        return True
    except (OSError, KeyError):
        return False


def measure_memory(ops, shape, dtype="float32", thread_counts=(1,)):
    """Peak extra memory of fastconv calls; run it in a fresh process.

    For each thread count: set fastconv's thread count and run every op once
    on the tiny shapes (starts the OpenMP threads and BLAS, loads code); then
    measure each op in turn with :func:`_peak_extra`.  Memory that fastconv
    kept from one call to the next would be counted only for the first op
    needing it (it keeps none today: its workspace is malloc'd per call).

    Parameters
    ----------
    ops : list of str
        Ops of one family.
    shape, dtype : str
    thread_counts : list of int

    Returns
    -------
    dict
        ``"threads op"`` -> :func:`_peak_extra`'s dict.
    """
    import fastconv

    results = {}
    for threads in thread_counts:
        fastconv.set_num_threads(threads)
        for op in OPS:
            Case(op, "tiny", dtype).call("fastconv")()
        for op in ops:
            results[f"{threads} {op}"] = _peak_extra(Case(op, shape, dtype).call("fastconv"))
    return results


def _peak_extra(fn):
    """Peak memory one call of ``fn`` adds, beyond its inputs and outputs.

    Release free heap memory (glibc ``malloc_trim``), reset the kernel's
    peak-RSS mark (Linux ``/proc/self/clear_refs``), call ``fn`` once and
    read the peak (``VmHWM``).  The growth counts every page the call touched
    for the first time -- fastconv's workspace (malloc'd in C), temporary
    NumPy arrays, BLAS buffers, the returned arrays -- and the returned
    arrays' size is then subtracted.  Without ``clear_refs`` (not Linux)
    ``ru_maxrss`` is used, which hides any growth below an earlier peak.

    ``tracemalloc`` (over a second call) is reported too but is not the
    headline number: it sees NumPy's arrays only, not fastconv's C ``malloc``.

    Returns
    -------
    dict
        ``extra_bytes`` (peak growth minus outputs), ``rss_growth_bytes``,
        ``output_bytes``, ``tracemalloc_peak_bytes``, ``method``.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)             # glibc only
    exact = reset_peak_rss()
    before = status_bytes("VmRSS") if exact else maxrss_bytes()
    out = fn()
    peak = status_bytes("VmHWM") if exact else maxrss_bytes()
    out_bytes = sum(a.nbytes for a in (out if isinstance(out, tuple) else (out,)))
    del out
    tracemalloc.start()
    fn()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"extra_bytes": peak - before - out_bytes, "rss_growth_bytes": peak - before,
            "output_bytes": out_bytes, "tracemalloc_peak_bytes": traced,
            "method": "VmHWM" if exact else "ru_maxrss"}


def _measure_all_memory(specs, thread_counts, progress):
    """Memory of every spec at every thread count: a fresh process per shape.

    Memory figures do not depend on timing, so the processes may overlap.

    Returns
    -------
    dict
        (spec, threads) -> :func:`measure_memory`'s entry for the op.
    """
    groups = {}
    for spec in specs:
        groups.setdefault((OPS[spec.op], spec.shape, spec.dtype), []).append(spec)
    progress(f"measuring memory: {len(groups)} processes")
    threads = ",".join(map(str, thread_counts))

    def measure(key):
        ops = [spec.op for spec in groups[key]]
        res = subprocess.run(_child_command("memory", key[1], key[2], threads, *ops),
                             capture_output=True, text=True, timeout=1800)
        if res.returncode != 0:
            raise RuntimeError(f"memory measurement of {key} failed:\n{res.stderr}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    results = {}
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for key, res in zip(groups, pool.map(measure, groups)):
            for spec in groups[key]:
                for t in thread_counts:
                    results[spec, t] = res[f"{t} {spec.op}"]
    return results


def _child(argv):
    """Entry point of the subprocesses: ``torch`` or ``memory SHAPE DTYPE T,T.. OP...``."""
    if argv[0] == "torch":
        return _torch_worker()
    if argv[0] == "memory":
        shape, dtype, threads, *ops = argv[1:]
        threads = [int(t) for t in threads.split(",")]
        print(json.dumps(measure_memory(ops, shape, dtype, threads)))
        return 0
    raise SystemExit(f"unknown child {argv!r}")


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def iqr_rel(samples):
    """Interquartile range over the median; 0.0 for fewer than 2 samples."""
    if len(samples) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return (q3 - q1) / statistics.median(samples)


def geomean(values):
    """Geometric mean of the finite positive values; nan if there are none."""
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def _run_threads(threads, specs, opts, worker, memory, progress):
    """Time every spec at one thread count; return the table's data."""
    from threadpoolctl import ThreadpoolController

    import fastconv

    dt = np.dtype(opts.dtype)
    yard_reps = 3 if opts.quick else 5
    target = 0.01 if opts.quick else 0.05
    # NumPy's OpenBLAS threads keep spinning for about 100 ms after a
    # multi-threaded call (measured here: ~1 core-second per second idle),
    # stealing a core from whichever contender runs next; wait them out.
    gap = 0.15 if threads > 1 else 0.0
    saved = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    table = {"threads": threads, "dtype": dt.name, "rows": []}
    try:
        with ThreadpoolController().limit(limits=threads, user_api="blas"):
            table["gemm_gflops"] = _gemm_gflops(dt, yard_reps)
            table["copy_gbps"] = _copy_gbps(threads, yard_reps)
            if worker:
                table["torch_threads"] = worker.set_threads(threads)
            for spec in specs:
                progress(f"{threads} thread(s): {spec}")
                case = Case(*spec)
                runners = {"fastconv": Local(case.call("fastconv")),
                           "reference": Local(case.call("reference"))}
                if worker:
                    worker.load(spec, target)
                    runners["torch"] = worker
                for r in runners.values():
                    r.calibrate(target)
                    time.sleep(gap)
                samples = {k: [] for k in runners}
                for _ in range(opts.repeat):
                    for name, r in runners.items():
                        samples[name].append(r.measure())
                        time.sleep(gap)
                row = _row(case, samples, table)
                if (spec, threads) in memory:
                    row["memory"] = memory[spec, threads]
                table["rows"].append(row)
                del case, runners
    finally:
        fastconv.set_num_threads(saved)
    table["geomean"] = {
        fam: {key: geomean([r[key] for r in table["rows"] if r["family"] == fam])
              for key in ("vs_reference", "vs_torch")}
        for fam in FAMILIES if any(r["family"] == fam for r in table["rows"])}
    return table


def _row(case, samples, table):
    med = {k: statistics.median(v) for k, v in samples.items()}
    fc = med["fastconv"]
    rate = case.work / fc / 1e9
    peak = table["gemm_gflops"] if case.unit == "GFLOP/s" else table["copy_gbps"]
    return {
        "spec": list(case.spec), "op": case.spec.op, "shape": case.spec.shape,
        "shape_def": str(case.shape), "family": case.family,
        "work": case.work, "unit": case.unit, "rate": rate,
        "ms": {k: v * 1e3 for k, v in med.items()},
        "samples_ms": {k: [s * 1e3 for s in v] for k, v in samples.items()},
        "spread": {k: iqr_rel(v) for k, v in samples.items()},
        "vs_reference": med["reference"] / fc,
        "vs_torch": med["torch"] / fc if "torch" in med else None,
        "pct_peak": 100 * rate / peak,
    }


def format_num(v):
    """A number with about 3 significant digits, never in exponent form."""
    if v is None or not math.isfinite(v):
        return "nan"
    if v == 0:
        return "0"
    digits = max(0, min(6, 2 - math.floor(math.log10(abs(v)))))
    return f"{v:.{digits}f}"


def format_table(table):
    """One markdown table (and its heading) for one thread count."""
    rows = table["rows"]
    has_torch = any(r["vs_torch"] is not None for r in rows)
    has_mem = any("memory" in r for r in rows)
    gemm = "sgemm" if table["dtype"] == "float32" else "dgemm"
    s = "" if table["threads"] == 1 else "s"
    head = ["op", "shape", "fastconv ms", "NumPy ms"] + ["torch ms"] * has_torch + [
        "rate", "unit", "vs NumPy"] + ["vs torch"] * has_torch + ["% peak"] + [
        "extra MiB"] * has_mem
    lines = [
        f"### {table['threads']} thread{s}, {table['dtype']}",
        "",
        f"Machine at {table['threads']} thread{s}: {gemm} {format_num(table['gemm_gflops'])} "
        f"GFLOP/s (NumPy matmul 2048x2048), memory copy {format_num(table['copy_gbps'])} GB/s "
        f"(np.copyto, 256 MiB, {table['threads']} thread{s}).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if h in ("op", "shape", "unit") else "---:" for h in head) + "|",
    ]
    for r in rows:
        cells = [r["op"], r["shape"], format_num(r["ms"]["fastconv"]),
                 format_num(r["ms"]["reference"])]
        cells += [format_num(r["ms"].get("torch"))] * has_torch
        cells += [format_num(r["rate"]), r["unit"], format_num(r["vs_reference"])]
        cells += [format_num(r["vs_torch"])] * has_torch + [format_num(r["pct_peak"])]
        if has_mem:
            cells.append(f"{round(r['memory']['extra_bytes'] / 2**20, 1) + 0.0:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    for family, gm in table["geomean"].items():
        cells = ["geomean", family] + [""] * (4 + has_torch)
        cells += [format_num(gm["vs_reference"])] + [format_num(gm["vs_torch"])] * has_torch
        cells += [""] * (1 + has_mem)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


LEGEND = """\
- ms: median over the rounds of the time per call; contenders interleaved round-robin.
  NumPy = fastconv.reference (vectorised NumPy + BLAS matmul); torch = PyTorch CPU, run in a
  separate process at the same thread count.
- rate: conv2d rows GFLOP/s = 2*N*F*Ho*Wo*(C/groups)*kh*kw / time (backward = grad_x +
  grad_weight + grad_bias, counted as twice the forward); other rows GB/s of minimum memory
  traffic (every input byte read once + every output byte written once) / time.
- vs NumPy = NumPy time / fastconv time; vs torch = torch time / fastconv time (> 1: fastconv
  is faster).  geomean rows: geometric mean of those ratios over the op family's rows.
- % peak: conv2d rows, % of the gemm GFLOP/s above; other rows, % of the copy bandwidth above
  (a large copy, from DRAM: data that stays in cache can beat it).  Both yardsticks are medians
  measured in this run, so a busy machine lowers them too.
- extra MiB: growth of the process's peak resident memory (Linux VmHWM, reset just before the
  call) during one fastconv call, in a fresh process per shape after a warm-up on tiny shapes,
  minus the size of the returned arrays: workspace malloc'd in C, temporary arrays and BLAS
  buffers the call touched.  (tracemalloc misses C malloc; its figure is in the JSON.)"""


def machine_info(use_torch):
    import fastconv

    with contextlib.redirect_stdout(io.StringIO()):
        config = fastconv.show_config()
    config = {k: "; ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
              for k, v in config.items() if k not in ("version", "python", "machine", "numpy")}
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f
                        if ln.startswith("model name")), cpu)
    torch_version = None
    if importlib.util.find_spec("torch") is not None:
        torch_version = importlib.metadata.version("torch")
    env = {k: v for k, v in sorted(os.environ.items())
           if k.startswith(("OPENBLAS_", "OMP_", "GOMP_", "MKL_", "KMP_", "FASTCONV_"))}
    return {
        "fastconv": fastconv.__version__, "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch_version if use_torch else None,
        "torch_installed": torch_version, "cpu": cpu, "cpus": os.cpu_count(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "show_config": config, "env": env,
    }


def blas_libraries():
    """The BLAS libraries loaded (by now), as threadpoolctl describes them."""
    from threadpoolctl import threadpool_info

    return [f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
            f"{i['num_threads']} threads) {os.path.basename(i['filepath'])}"
            for i in threadpool_info() if i["user_api"] == "blas"]


def format_header(meta, opts):
    """The lines printed above the tables."""
    torch = (f"torch {meta['torch']} (CPU, in a subprocess of its own)" if meta["torch"]
             else "torch not measured" + ("" if meta["torch_installed"] else " (not installed)"))
    env = ", ".join(f"{k}={v}" for k, v in meta["env"].items()) or "none"
    load = ", ".join(f"{v:.2f}" for v in meta["loadavg"]) if meta["loadavg"] else "n/a"
    lines = [
        "## fastconv benchmark",
        "",
        f"- fastconv {meta['fastconv']}, Python {meta['python']}, NumPy {meta['numpy']}, {torch}",
        f"- CPU: {meta['cpu']} ({meta['cpus']} logical CPUs); load average {load}",
        "- fastconv.show_config(): "
        + "; ".join(f"{k}: {v}" for k, v in meta["show_config"].items()),
        "- BLAS libraries loaded (threadpoolctl): " + ("; ".join(meta["blas"]) or "none"),
        f"- thread/BLAS environment (reported, not changed; OPENBLAS_CORETYPE / "
        f"OPENBLAS_L2_SIZE can slow NumPy's BLAS): {env}",
        f"- dtype {opts.dtype}; interleaved rounds: {opts.repeat}",
    ]
    return "\n".join(lines)


def _parse_args(argv):
    p = argparse.ArgumentParser(
        prog="fastconv bench",
        description="Time fastconv's kernels against fastconv.reference (NumPy) and PyTorch "
                    "CPU, interleaved, at each thread count; print one markdown table per "
                    "thread count.  Absolute times drift on shared machines: read the ratios.")
    p.add_argument("--quick", action="store_true",
                   help="a few shapes, fewer rounds and shorter blocks (under a minute)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--ops", default=",".join(FAMILIES),
                   help="comma-separated families (%s: all their ops) or single ops (%s)"
                        % (", ".join(FAMILIES), ", ".join(OPS)))
    p.add_argument("--shapes", default=None,
                   help="comma-separated shape names (see --list); default the whole suite, "
                        "or the --quick subset")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeat", type=int, default=None,
                   help="interleaved rounds per benchmark (default 7, 3 with --quick)")
    p.add_argument("--json", metavar="PATH", help="also write every sample and setting as JSON")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    p.add_argument("--list", action="store_true", help="print the shape suite and exit")
    p.add_argument("--models", action="store_true",
                   help="time whole networks instead (fastconv.bench_models; "
                        "'fastconv bench --models --help' for its options)")
    opts = p.parse_args(argv)
    try:
        opts.threads = [int(t) for t in opts.threads.split(",")]
    except ValueError:
        p.error(f"--threads: expected integers like 1,2, got {opts.threads!r}")
    from . import _paths, _threads
    if any(not 1 <= t <= _threads.MAX_THREADS for t in opts.threads):
        p.error(f"--threads: counts must be from 1 to {_threads.MAX_THREADS} "
                f"(fastconv's thread limit)")
    problem = opts.json and _paths.output_file_problem(opts.json)
    if problem:       # checked before the benchmark runs, not after
        p.exit(2, f"{p.prog}: error: --json {opts.json} {problem}\n")
    opts.ops = [t for t in opts.ops.split(",") if t]
    bad = [t for t in opts.ops if t not in OPS and t not in FAMILIES]
    if bad:
        p.error(f"--ops: unknown {bad}; choose from {list(dict.fromkeys([*FAMILIES, *OPS]))}")
    if opts.shapes is not None:
        opts.shapes = [s for s in opts.shapes.split(",") if s]
        known = {n for f in FAMILIES for n in family_shapes(f, extra=True)}
        if set(opts.shapes) - known:
            p.error(f"--shapes: unknown {sorted(set(opts.shapes) - known)}; see --list")
    if opts.repeat is None:
        opts.repeat = 3 if opts.quick else 7
    if opts.repeat < 1:
        p.error("--repeat must be >= 1")
    return opts


def _list_suite():
    for family in FAMILIES:
        print(f"{family} ({', '.join(op for op, f in OPS.items() if f == family)}):")
        for name, shape in family_shapes(family, extra=True).items():
            tags = [t for t, sub in (("quick", QUICK_SHAPES), ("float64", FLOAT64_SHAPES))
                    if name in sub[family]]
            print(f"  {name:<22} {shape}" + (f"   [{', '.join(tags)}]" if tags else ""))


def main(argv=None):
    """Run the comparison and print the tables; the ``fastconv bench`` command.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``); ``--help`` lists them.

    Returns
    -------
    int
        Exit status: 0 on success, 1 if nothing was selected, 2 if the
        ``[bench]`` extra (threadpoolctl) is missing.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["models"] or "--models" in argv:      # whole models: their own module
        from . import bench_models

        return bench_models.main([a for a in argv[argv[:1] == ["models"]:] if a != "--models"])
    opts = _parse_args(argv)
    if opts.list:
        _list_suite()
        return 0
    try:
        import threadpoolctl  # noqa: F401  (the [bench] extra)
    except ImportError:
        print('fastconv bench: needs threadpoolctl, not installed here; install the '
              'bench extra with: pip install "fastconv[bench]"', file=sys.stderr)
        return 2
    specs = suite(opts.ops, opts.dtype, QUICK_SHAPES if opts.quick else None, opts.shapes)
    if not specs:
        print("fastconv bench: no benchmark matches --ops and --shapes", file=sys.stderr)
        return 1
    use_torch = not opts.no_torch and importlib.util.find_spec("torch") is not None
    meta = machine_info(use_torch)
    start = time.perf_counter()

    def progress(msg):
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    # PyTorch imports in its own process while the memory processes run
    # (neither is timed); the timings start when both are done.
    worker = TorchWorker() if use_torch else None
    try:
        memory = {} if opts.no_memory else _measure_all_memory(specs, opts.threads, progress)
        if worker:
            try:
                meta["torch"] = worker.hello()
            except (OSError, RuntimeError) as exc:
                progress(f"PyTorch left out: {exc}")
                worker.close()
                worker, meta["torch"] = None, None
        tables = [_run_threads(threads, specs, opts, worker, memory, progress)
                  for threads in opts.threads]
    finally:
        if worker:
            worker.close()
    meta["blas"] = blas_libraries()
    print(format_header(meta, opts))
    for table in tables:
        print("\n" + format_table(table))
    spread = statistics.median(v for t in tables for r in t["rows"] for v in r["spread"].values())
    legend = LEGEND if memory else LEGEND[:LEGEND.index("- extra MiB")].rstrip()
    print(f"\n{legend}\n- noise: median interquartile range over median, all timings: "
          f"{100 * spread:.1f}%.")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"meta": meta, "options": vars(opts), "tables": tables,
                       "shapes": {f: {n: asdict(s) for n, s in family_shapes(f, True).items()}
                                  for f in FAMILIES}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
