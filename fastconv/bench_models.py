"""Whole-model benchmark: networks of :mod:`fastconv.layers` against the same
networks in ``torch.nn``.

Run ``fastconv bench --models`` (or ``fastconv bench models``); ``--help``
lists the options.  The models are the model suite,
:data:`fastconv.bench_suite.MODELS`: functions of :mod:`fastconv.models`,
their twins those of :mod:`fastconv.torch_models`, started from the same weights
(the fastconv model's state dict, handed over in an ``.npz`` file).

How it is measured (as the kernel benchmark, :mod:`fastconv.bench`):

* Two jobs per model, float32, on one fixed random batch: a training step
  (zero_grad, forward in train mode, mean softmax cross-entropy, backward,
  SGD with momentum 0.9) and inference (eval mode, forward only; fastconv
  under ``layers.no_grad()``, PyTorch under ``torch.no_grad()``).
  PyTorch's ``optimizer.zero_grad()`` is its
  default, ``set_to_none=True`` (fastconv's zero_grad fills its gradient
  arrays with zeros); no ``torch.compile``, no TorchScript.
* fastconv runs in this process with ``fastconv.set_num_threads(T)`` and
  NumPy's BLAS limited to T threads (threadpoolctl); PyTorch runs in a
  subprocess of its own with ``torch.set_num_threads(T)``, driven through a
  pipe.  That process imports torch before anything of fastconv, so PyTorch
  runs on its own OpenMP runtime, whose threads spin as long as fastconv's
  before they sleep (see :func:`torch_env`; ``--torch-default-spin``
  leaves libgomp's default).
* Both sides are warmed up (an untimed call, then the block-size
  calibration, which starts with another), then take turns round-robin, the
  first turn of each round alternating between them; each turn times a
  block of back-to-back steps lasting at least 0.25 s (one step when a step
  is longer; 0.05 s with ``--quick``).
  The figure is the median over the rounds of the time per step; images/s =
  batch / that time.  At T > 1 turns are separated by 0.15 s, so that one
  side's spinning threads do not run into the other's turn.
* Before the timings, the first loss of each job is computed on both sides
  (same weights, same batch): a difference beyond float32 rounding is
  reported as a parity failure, so a table never compares two different
  networks.
* Peak memory of a training step: in a fresh process per model, contender
  and thread count (:func:`measure_memory`).

Nothing here imports torch at module import; PyTorch is optional.
"""

import argparse
import contextlib
import ctypes
import gc
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from . import bench
from ._omp import SPINCOUNT, user_policy
from .bench_suite import MODELS, MODES, QUICK_MODELS, ModelBench

__all__ = [
    # the model suite, defined in fastconv.bench_suite (also reachable here)
    "ModelBench", "MODELS", "MODES",
    # the harness
    "LR", "MOMENTUM", "fastconv_step", "torch_step", "measure_memory", "main",
    # shared with fastconv.demo
    "TorchWorker", "loss_value"]


CONTENDERS = ("fastconv", "torch")
#: SGD settings of the training step (the learning rate is small, so that the
#: weights stay sane over hundreds of steps on one batch).
LR, MOMENTUM = 0.01, 0.9
WARMUP = 1          # untimed calls before the calibration (which makes one more)


# --------------------------------------------------------------------------
# One step per side
# --------------------------------------------------------------------------

def fastconv_step(model, mode, *, lr=LR, momentum=MOMENTUM, weight_decay=0.0):
    """A callable ``step(x, y)`` running one step of ``model``.

    Parameters
    ----------
    model : fastconv.layers.Layer
        Put in train mode (``mode="train"``) or eval mode (``"infer"``).
    mode : {"train", "infer"}
        ``"train"``: zero_grad, forward, mean softmax cross-entropy,
        backward, :class:`fastconv.optim.SGD` step (its state lives in the
        callable).  ``"infer"``: forward only.
    lr, momentum, weight_decay : float

    Returns
    -------
    callable
        ``step(x, y) -> loss`` (a float) for training, ``step(x, y) ->
        scores`` for inference; x (N, C, H, W), y (N,) int.
    """
    from .layers import no_grad
    from .losses import softmax_cross_entropy
    from .optim import SGD

    if mode == "infer":
        model.eval()

        def infer(x, y):
            with no_grad():             # as PyTorch's torch.no_grad()
                return model.forward(x)

        return infer
    model.train()
    opt = SGD(model, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def step(x, y):
        opt.zero_grad()
        loss, grad = softmax_cross_entropy(model.forward(x), y)
        model.backward(grad)
        opt.step()
        return loss

    return step


def torch_step(torch, module, mode, *, lr=LR, momentum=MOMENTUM, weight_decay=0.0):
    """:func:`fastconv_step` for a ``torch.nn.Module`` (x, y are tensors).

    Training: ``optimizer.zero_grad()`` (``set_to_none=True``, PyTorch's
    default), forward, ``cross_entropy``, ``backward()``, ``torch.optim.SGD``
    step (its defaults otherwise).  Inference: forward under
    ``torch.no_grad()``.  The step returns the loss tensor / the scores.
    """
    if mode == "infer":
        module.eval()

        def infer(x, y):
            with torch.no_grad():
                return module(x)

        return infer
    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    cross_entropy = torch.nn.functional.cross_entropy

    def step(x, y):
        opt.zero_grad()
        loss = cross_entropy(module(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _batches(x, y, batch):
    return [(x[s:s + batch], y[s:s + batch]) for s in range(0, len(x), batch)]


def loss_value(scores, y):
    """Mean softmax cross-entropy of ``scores`` for labels ``y``, in float64:
    the first-batch loss by which the benchmark (and the demo) check that
    fastconv's network and torch's are the same."""
    from .losses import softmax_cross_entropy

    return softmax_cross_entropy(np.asarray(scores, dtype=np.float64), y)[0]


class _Job(NamedTuple):
    """A built job: ``run()`` does one pass of ``step`` over ``batches``;
    ``loss`` is the loss of the first batch before any step (a float)."""

    run: object
    step: object
    batches: list
    loss: float


def _job(step, batches, loss):
    def run():
        for xb, yb in batches:
            step(xb, yb)

    return _Job(run, step, batches, float(loss))


def _fastconv_job(job, first_loss=True):
    """The :class:`_Job` of a job description, for fastconv.

    ``job``: dict with ``model`` (a :data:`MODELS` name or a
    :mod:`fastconv.models` function name), ``kwargs``, ``state`` and ``data``
    (``.npz`` paths), ``batch``, ``mode`` and ``sgd`` (dict of lr,
    momentum, weight_decay).
    """
    from . import models

    model = getattr(models, job["model"])(**job.get("kwargs", {}))
    model.load(job["state"])
    with np.load(job["data"]) as d:
        x, y = d["x"], d["y"]
    batches = _batches(x, y, job["batch"])
    loss = math.nan
    if first_loss:      # in the job's mode (train: updates BatchNorm's statistics)
        loss = loss_value(model.train(job["mode"] == "train").forward(batches[0][0]),
                           batches[0][1])
    return _job(fastconv_step(model, job["mode"], **job["sgd"]), batches, loss)


def _torch_job(torch, job, first_loss=True):
    """:func:`_fastconv_job` for the torch twin (in the worker process)."""
    from . import torch_models

    module = torch_models.build(job["model"], **job.get("kwargs", {}))
    with np.load(job["state"]) as state:
        torch_models.load_state(module, state)
    with np.load(job["data"]) as d:
        x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"].astype(np.int64))
    batches = _batches(x, y, job["batch"])
    loss = math.nan
    if first_loss:
        module.train(job["mode"] == "train")
        with torch.no_grad():
            loss = loss_value(module(batches[0][0]).numpy(), batches[0][1].numpy())
    return _job(torch_step(torch, module, job["mode"], **job["sgd"]), batches, loss)


# --------------------------------------------------------------------------
# Subprocesses: the PyTorch worker and the memory measurements
# --------------------------------------------------------------------------

def _child_command(*args, torch=False):
    """``python -c ...`` running :func:`_child` with the fastconv this process runs.

    With ``torch=True`` the child imports torch before fastconv: both link an
    OpenMP runtime named libgomp.so.1, and the first one loaded serves the
    process, so torch gets its own, with its default settings (fastconv sets
    a short spin time, GOMP_SPINCOUNT, while its runtime loads).
    """
    import fastconv

    home = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    code = ("import sys; sys.path[0] = sys.argv[1]; " + ("import torch; " if torch else "")
            + "import fastconv.bench_models as b; sys.exit(b._child(sys.argv[2:]))")
    return [sys.executable, "-c", code, home, *args]


def torch_env(default_spin=False):
    """The environment of the PyTorch subprocesses.

    Unless ``default_spin`` or the user chose an OpenMP wait policy
    (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set), PyTorch's OpenMP threads
    spin as long as fastconv's (``GOMP_SPINCOUNT=100000``, about 1 ms)
    before they sleep, so that both sides run under the same policy.
    libgomp's default (about 3 ms of spinning) collapses when another
    process wants the cores: on this 2-core machine under a load of 5, a
    2-thread ResNet-20 training step at batch 4 took 0.4-3.3 s with it and
    0.12-0.28 s with a 0.1 ms spin (45-70 ms at 1 thread, where the policy
    plays no part).
    """
    env = dict(os.environ)
    if not default_spin and not user_policy(env):
        env["GOMP_SPINCOUNT"] = SPINCOUNT
    return env


class TorchWorker(bench.TorchWorker):
    """PyTorch in a subprocess of its own, timing jobs when asked.

    The worker holds its jobs by key, so that several (the demo's training
    and inference) can take turns; loading a key replaces its job.

    Parameters
    ----------
    default_spin : bool
        Leave PyTorch's OpenMP runtime at libgomp's default wait policy
        (see :func:`torch_env`).
    """

    def __init__(self, default_spin=False):
        self.proc = subprocess.Popen(
            _child_command("torch", torch=True), env=torch_env(default_spin),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def hello(self):
        """Wait until torch is imported; return its version and OpenMP library."""
        reply = self._ask(cmd="hello")
        return reply["version"], reply["libgomp"]

    def load(self, job, target=None, warmup=WARMUP, key="job"):
        """Build ``job`` (see :func:`_fastconv_job`), warm it up, calibrate.

        Returns
        -------
        dict
            ``number`` (steps per timed block) and ``loss`` (first batch).
        """
        return self._ask(cmd="load", job=job, target=target, warmup=warmup, key=key)

    def measure(self, key="job"):
        """Seconds per call of the job, over one timed block."""
        return self._ask(cmd="time", key=key)["seconds"]


def _libgomp(owner="torch"):
    """Path of the OpenMP runtime loaded in this process (Linux), or None:
    the one under a folder named ``owner`` where several are (a repaired
    fastconv wheel brings its own, renamed libgomp-<hash>.so.1)."""
    paths = []
    with contextlib.suppress(OSError):
        with open("/proc/self/maps") as f:
            for line in f:
                if "libgomp" in line and line.split()[-1] not in paths:
                    paths.append(line.split()[-1])
    ours = [p for p in paths if f"/{owner}/" in p]
    return (ours or paths or [None])[0]


def _torch_worker():
    """Subprocess side of :class:`TorchWorker`: JSON lines on stdin/stdout."""
    out, sys.stdout = sys.stdout, sys.stderr       # stray prints stay off the pipe

    def reply(**msg):
        out.write(json.dumps(msg) + "\n")
        out.flush()

    import torch

    runners = {}
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "quit":
                break
            if msg["cmd"] == "hello":
                reply(version=torch.__version__, libgomp=_libgomp())
            elif msg["cmd"] == "threads":
                torch.set_num_threads(msg["threads"])
                reply(threads=torch.get_num_threads())
            elif msg["cmd"] == "load":
                runners.pop(msg["key"], None)
                gc.collect()
                built = _torch_job(torch, msg["job"])
                runner = runners[msg["key"]] = bench.Local(built.run)
                for _ in range(msg["warmup"]):
                    built.run()
                if msg["target"]:
                    runner.calibrate(msg["target"])
                reply(number=runner.number, loss=built.loss)
            elif msg["cmd"] == "time":
                reply(seconds=runners[msg["key"]].measure())
        except Exception as exc:  # reported to the parent, which raises
            reply(error=f"{type(exc).__name__}: {exc}")
    return 0


def _trim_heap():
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)             # glibc only


def measure_memory(contender, job, threads, steps=2):
    """Peak memory of training steps above the model's own; run it in a fresh process.

    One warm-up step on the first two images (loads code, starts the thread
    pools, creates the gradient and momentum buffers); then the heap is
    trimmed (glibc ``malloc_trim``) and the resident size read (``base``);
    the kernel's peak-RSS mark is reset (Linux ``/proc/self/clear_refs``),
    ``steps`` steps run on the job's batch and the peak (``VmHWM``) is read.
    The growth counts every page the steps held at their worst moment:
    activations kept for the backward pass, gradients of activations,
    workspaces, buffers a library keeps from one step to the next, and
    PyTorch's gradients (``zero_grad()`` sets them to None, the backward
    pass allocates them again).  Parameters, fastconv's gradient arrays and
    the momentum buffers exist before, on both sides, and are not counted.

    Parameters
    ----------
    contender : {"fastconv", "torch"}
    job : dict
        As :func:`_fastconv_job`'s, mode "train".
    threads : int
    steps : int

    Returns
    -------
    dict
        ``peak_bytes`` (peak growth over base), ``held_bytes`` (resident
        growth over base after the steps, heap trimmed: what stays between
        steps), ``base_bytes``, ``steps``, ``method`` (``"VmHWM"``, or
        ``"ru_maxrss"`` where the peak cannot be reset: an upper bound).
    """
    if contender == "torch":
        import torch

        torch.set_num_threads(threads)
        built = _torch_job(torch, job, first_loss=False)
    else:
        import fastconv

        fastconv.set_num_threads(threads)
        built = _fastconv_job(job, first_loss=False)
    x, y = built.batches[0]
    built.step(x[:2], y[:2])
    _trim_heap()
    exact = bench.reset_peak_rss()
    base = bench.status_bytes("VmRSS") if exact else bench.maxrss_bytes()
    for _ in range(steps):
        built.step(x, y)
    peak = bench.status_bytes("VmHWM") if exact else bench.maxrss_bytes()
    _trim_heap()
    held = bench.status_bytes("VmRSS") if exact else float("nan")
    return {"peak_bytes": peak - base, "held_bytes": held - base, "base_bytes": base,
            "steps": steps, "method": "VmHWM" if exact else "ru_maxrss"}


def _child(argv):
    """Entry point of the subprocesses: ``torch`` or ``memory CONTENDER THREADS STEPS JOB``."""
    if argv[0] == "torch":
        return _torch_worker()
    if argv[0] == "memory":
        contender, threads, steps, job = argv[1:]
        print(json.dumps(measure_memory(contender, json.loads(job), int(threads), int(steps))))
        return 0
    raise SystemExit(f"unknown child {argv!r}")


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def _write_inputs(names, batch, directory):
    """Each model's initial state and fixed batch as ``.npz`` files.

    Returns
    -------
    dict
        name -> (state path, data path).
    """
    paths = {}
    for name in names:
        spec = MODELS[name]
        state = os.path.join(directory, f"{name}.state.npz")
        data = os.path.join(directory, f"{name}.data.npz")
        spec.build().save(state)
        x, y = spec.data(batch or spec.batch)
        np.savez(data, x=x, y=y)
        paths[name] = (state, data)
    return paths


def _job_of(name, mode, paths, batch):
    spec = MODELS[name]
    return {"model": name, "kwargs": spec.kwargs, "state": paths[name][0],
            "data": paths[name][1], "batch": batch or spec.batch, "mode": mode,
            "sgd": {"lr": LR, "momentum": MOMENTUM, "weight_decay": 0.0}}


def _measure_all_memory(names, paths, opts, contenders, progress):
    """:func:`measure_memory` for every model, contender and thread count,
    each in a fresh process; they may overlap (memory does not depend on time).

    Returns
    -------
    dict
        (name, threads, contender) -> :func:`measure_memory`'s dict.
    """
    keys = [(n, t, c) for n in names for t in opts.threads for c in contenders]
    progress(f"measuring memory: {len(keys)} processes")

    def measure(key):
        name, threads, contender = key
        job = json.dumps(_job_of(name, "train", paths, opts.batch_size))
        cmd = _child_command("memory", contender, str(threads), str(opts.memory_steps), job,
                             torch=contender == "torch")
        env = torch_env(opts.torch_default_spin) if contender == "torch" else None
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"memory measurement of {key} failed:\n{res.stderr}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return dict(zip(keys, pool.map(measure, keys)))


class _Side(bench.Local):
    """fastconv's side of one job, in this process."""

    def __init__(self, built, warmup, target):
        super().__init__(built.run)
        for _ in range(warmup):
            built.run()
        self.calibrate(target)


def _rel_diff(a, b):
    return abs(a - b) / max(1.0, abs(a), abs(b))


def _run_threads(threads, names, paths, opts, worker, memory, progress):
    """Time every model and mode at one thread count; return the table's data."""
    from threadpoolctl import ThreadpoolController

    import fastconv

    gap = 0.15 if threads > 1 else 0.0
    saved = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    table = {"threads": threads, "dtype": "float32", "rows": []}
    try:
        with ThreadpoolController().limit(limits=threads, user_api="blas"):
            if worker:
                table["torch_threads"] = worker.set_threads(threads)
            for name in names:
                for mode in opts.modes:
                    progress(f"{threads} thread(s): {name} {mode}")
                    job = _job_of(name, mode, paths, opts.batch_size)
                    built = _fastconv_job(job)
                    sides = {"fastconv": _Side(built, WARMUP, opts.target)}
                    losses = {"fastconv": built.loss}
                    number = {"fastconv": sides["fastconv"].number}
                    del built
                    if worker:
                        reply = worker.load(job, opts.target)
                        sides["torch"], losses["torch"] = worker, reply["loss"]
                        number["torch"] = reply["number"]
                    samples = {k: [] for k in sides}
                    order = list(sides)
                    for r in range(opts.repeat):
                        for k in (order if r % 2 == 0 else order[::-1]):
                            time.sleep(gap)
                            samples[k].append(sides[k].measure())
                    row = _row(name, mode, job["batch"], samples, losses)
                    row["steps_per_turn"] = number
                    if mode == "train" and memory:
                        row["memory"] = {c: memory[name, threads, c] for c in sides
                                         if (name, threads, c) in memory}
                    table["rows"].append(row)
                    del sides
                    gc.collect()
    finally:
        fastconv.set_num_threads(saved)
    table["geomean"] = {mode: bench.geomean([r["vs_torch"] for r in table["rows"]
                                              if r["mode"] == mode and r["vs_torch"]])
                        for mode in opts.modes}
    return table


def _row(name, mode, batch, samples, losses):
    med = {k: statistics.median(v) for k, v in samples.items()}
    row = {"model": name, "label": MODELS[name].label, "mode": mode, "batch": batch,
           "input_shape": list(MODELS[name].input_shape),
           "ms": {k: v * 1e3 for k, v in med.items()},
           "images_per_s": {k: batch / v for k, v in med.items()},
           "samples_ms": {k: [s * 1e3 for s in v] for k, v in samples.items()},
           "spread": {k: bench.iqr_rel(v) for k, v in samples.items()},
           "first_loss": losses, "vs_torch": None, "parity": None}
    if "torch" in med:
        row["vs_torch"] = med["torch"] / med["fastconv"]
        # paired by round: each round's torch time over its fastconv time
        ratios = [t / f for f, t in zip(samples["fastconv"], samples["torch"])]
        row["round_ratios"] = ratios
        row["ratio_spread"] = bench.iqr_rel(ratios)
        row["parity"] = _rel_diff(losses["fastconv"], losses["torch"]) <= PARITY_RTOL
    return row


#: Largest relative difference of the first losses (float32 rounding over a
#: few dozen layers is ~1e-6; a different network is ~1e-1).
PARITY_RTOL = 1e-4


def _mib(nbytes):
    return f"{nbytes / 2**20:.1f}"


def format_table(table):
    """One markdown table (and its heading) for one thread count."""
    rows = table["rows"]
    has_torch = any(r["vs_torch"] is not None for r in rows)
    has_mem = any(r.get("memory") for r in rows)
    s = "" if table["threads"] == 1 else "s"
    head = ["model", "input", "step", "fastconv ms"] + ["torch ms"] * has_torch + [
        "fastconv img/s"] + ["torch img/s", "vs torch", "noise"] * has_torch
    if has_mem:
        head += ["fastconv MiB"] + ["torch MiB", "MiB ratio"] * has_torch
    text = ("model", "input", "step")
    lines = [f"### {table['threads']} thread{s}, {table['dtype']}", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join("---" if h in text else "---:" for h in head) + "|"]
    for r in rows:
        c, h, w = r["input_shape"]
        cells = [r["label"], f"{r['batch']}x{c}x{h}x{w}",
                 {"train": "training", "infer": "inference"}[r["mode"]],
                 bench.format_num(r["ms"]["fastconv"])]
        if has_torch:
            cells.append(bench.format_num(r["ms"].get("torch")))
        cells.append(f"{r['images_per_s']['fastconv']:.0f}")
        if has_torch:
            ratio = bench.format_num(r["vs_torch"])
            if r["parity"] is False:
                ratio += " (!)"
            cells += [f"{r['images_per_s']['torch']:.0f}", ratio,
                      f"{100 * r['ratio_spread']:.0f}%"]
        if has_mem:
            mem = r.get("memory") or {}
            fc, th = mem.get("fastconv"), mem.get("torch")
            cells.append(_mib(fc["peak_bytes"]) if fc else "")
            if has_torch:
                cells.append(_mib(th["peak_bytes"]) if th else "")
                cells.append(bench.format_num(fc["peak_bytes"] / th["peak_bytes"])
                             if fc and th and th["peak_bytes"] > 0 else "")
        lines.append("| " + " | ".join(cells) + " |")
    if has_torch:
        for mode, gm in table["geomean"].items():
            label = {"train": "training", "infer": "inference"}[mode]
            cells = ["geomean", "", label] + [""] * 4 + [bench.format_num(gm), ""]
            cells += [""] * (3 * has_mem)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_scaling(tables):
    """Images/s at each thread count over images/s at the first, per model and side."""
    base, rest = tables[0], tables[1:]
    if not rest:
        return ""
    sides = [k for k in CONTENDERS if any(k in r["ms"] for r in base["rows"])]
    head = ["model", "step"] + [f"{k}, {t['threads']} / {base['threads']} threads"
                                for t in rest for k in sides]
    lines = ["### Thread scaling: images/s relative to "
             f"{base['threads']} thread{'s' * (base['threads'] != 1)}", "",
             "| " + " | ".join(head) + " |",
             "|---|---|" + "---:|" * (len(head) - 2)]
    for i, r in enumerate(base["rows"]):
        cells = [r["label"], {"train": "training", "infer": "inference"}[r["mode"]]]
        for t in rest:
            for k in sides:
                cells.append(bench.format_num(r["ms"][k] / t["rows"][i]["ms"][k]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


LEGEND = """\
- training: zero_grad + forward (train mode) + mean softmax cross-entropy + backward +
  SGD step (lr {lr}, momentum {momentum}); PyTorch's zero_grad is its default
  (set_to_none=True). inference: eval mode, forward only (fastconv under
  layers.no_grad(), PyTorch under torch.no_grad()).
  float32, one fixed random batch, the same weights on both sides.
- ms: median over the rounds of the time per step; fastconv and PyTorch take turns
  (PyTorch in a process of its own at the same thread count), the first turn of each round
  alternating. img/s = batch / ms. vs torch = torch ms / fastconv ms (> 1: fastconv is
  faster); geomean: geometric mean over the models. noise: interquartile range of the
  per-round ratios (torch time / fastconv time of the same round), over their median.
- Thread scaling compares medians from different passes (one per thread count), not
  interleaved: read it as +-10% on this shared machine."""

MEMORY_LEGEND = """\
- MiB: peak resident memory of {steps} training step(s) above the resident memory before them
  (Linux VmHWM, reset first), in a fresh process per model, side and thread count, after one
  warm-up step on 2 images and a heap trim; parameters, momentum buffers and fastconv's
  gradient arrays exist before and are not counted, PyTorch's gradients (set to None by
  zero_grad) are. MiB ratio = fastconv / torch (< 1: fastconv needs less)."""


def _parse_args(argv):
    p = argparse.ArgumentParser(
        prog="fastconv bench --models",
        description="Time whole networks built from fastconv.layers against the same "
                    "networks in torch.nn (PyTorch CPU, in a process of its own), interleaved: "
                    "a training step and inference, float32, images/s, and the peak memory "
                    "of a training step.  Absolute times drift on shared machines: read the "
                    "ratios.")
    p.add_argument("--quick", action="store_true",
                   help="%s only, 3 rounds, shorter blocks, one memory step (about a "
                        "minute)" % " and ".join(QUICK_MODELS))
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--only", default=None,
                   help="comma-separated models (default all: %s)" % ", ".join(MODELS))
    p.add_argument("--modes", default=",".join(MODES),
                   help="comma-separated steps: train, infer (default both)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="one batch size for every model (default: each model's own)")
    p.add_argument("--repeat", "--rounds", dest="repeat", type=int, default=None,
                   help="interleaved rounds per job (default 7, 3 with --quick)")
    p.add_argument("--json", metavar="PATH", help="also write every sample and setting as JSON")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    p.add_argument("--torch-default-spin", action="store_true",
                   help="leave PyTorch's OpenMP threads at libgomp's default spin time "
                        "(default: fastconv's, GOMP_SPINCOUNT=100000, unless OMP_WAIT_POLICY "
                        "or GOMP_SPINCOUNT is set)")
    p.add_argument("--list", action="store_true", help="print the models and exit")
    opts = p.parse_args(argv)
    try:
        opts.threads = [int(t) for t in opts.threads.split(",")]
    except ValueError:
        p.error(f"--threads: expected integers like 1,2, got {opts.threads!r}")
    if any(t < 1 for t in opts.threads):
        p.error("--threads: counts must be >= 1")
    if opts.only is None:
        opts.only = ",".join(QUICK_MODELS if opts.quick else MODELS)
    opts.only = [t for t in opts.only.split(",") if t]
    bad = [t for t in opts.only if t not in MODELS]
    if bad or not opts.only:
        p.error(f"--only: unknown {bad}; choose from {list(MODELS)}")
    opts.modes = [t for t in opts.modes.split(",") if t]
    bad = [t for t in opts.modes if t not in MODES]
    if bad or not opts.modes:
        p.error(f"--modes: unknown {bad}; choose from {list(MODES)}")
    if opts.batch_size is not None and opts.batch_size < 2:
        p.error("--batch-size must be >= 2 (BatchNorm's batch statistics)")
    if opts.repeat is None:
        opts.repeat = 3 if opts.quick else 7
    if opts.repeat < 1:
        p.error("--repeat must be >= 1")
    opts.target = 0.05 if opts.quick else 0.25
    opts.memory_steps = 1 if opts.quick else 2
    return opts


def _list_models():
    for name, spec in MODELS.items():
        n = sum(p.size for p in spec.build().params.values())
        c, h, w = spec.input_shape
        print(f"  {name:<16} {spec.label:<16} input {c}x{h}x{w}, batch {spec.batch}, "
              f"{n:,} parameters")


def main(argv=None):
    """Run the model benchmark and print the tables; ``fastconv bench --models``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``); ``--help`` lists them.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when a job's first losses differ
        between fastconv and PyTorch (the networks are not the same).
    """
    opts = _parse_args(argv)
    if opts.list:
        _list_models()
        return 0
    use_torch = not opts.no_torch and importlib.util.find_spec("torch") is not None
    meta = bench.machine_info(use_torch)
    start = time.perf_counter()

    def progress(msg):
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="fastconv-bench-models-") as tmp:
        paths = _write_inputs(opts.only, opts.batch_size, tmp)
        contenders = CONTENDERS if use_torch else CONTENDERS[:1]
        # PyTorch imports in its own process while the memory processes run
        # (neither is timed); the timings start when both are done.
        worker = TorchWorker(opts.torch_default_spin) if use_torch else None
        try:
            memory = ({} if opts.no_memory else
                      _measure_all_memory(opts.only, paths, opts, contenders, progress))
            if worker:
                meta["torch"], meta["torch_libgomp"] = worker.hello()
                meta["torch_env"] = {k: v for k, v in torch_env(opts.torch_default_spin).items()
                                     if k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            tables = [_run_threads(t, opts.only, paths, opts, worker, memory, progress)
                      for t in opts.threads]
        finally:
            if worker:
                worker.close()
    meta["blas"] = bench.blas_libraries()
    opts.dtype = "float32"
    header = bench.format_header(meta, opts).replace("## fastconv benchmark",
                                                     "## fastconv model benchmark")
    if meta.get("torch_libgomp") is not None or meta["torch"]:
        spin = meta.get("torch_env") or {}
        policy = ", ".join(f"{k}={v}" for k, v in spin.items()) or "libgomp's default wait policy"
        header += (f"\n- PyTorch's OpenMP runtime: {meta.get('torch_libgomp') or 'unknown'}, "
                   f"{policy} (--torch-default-spin: libgomp's default)")
    header += ("\n- models: " + "; ".join(
        f"{MODELS[n].label} = fastconv.models.{n}" for n in opts.only))
    print(header)
    for table in tables:
        print("\n" + format_table(table))
    scaling = format_scaling(tables)
    if scaling:
        print("\n" + scaling)
    legend = LEGEND.format(lr=LR, momentum=MOMENTUM)
    if memory:
        legend += "\n" + MEMORY_LEGEND.format(steps=opts.memory_steps)
    spread = [v for t in tables for r in t["rows"] for v in r["spread"].values()]
    print(f"\n{legend}\n- noise: median interquartile range over median, all timings: "
          f"{100 * statistics.median(spread):.1f}%.")
    failed = 0
    for t in tables:
        for r in t["rows"]:
            if r["parity"] is False:
                failed += 1
                print(f"- PARITY FAILURE (!): {r['label']} {r['mode']} at {t['threads']} "
                      f"thread(s): first loss {r['first_loss']['fastconv']:.6g} (fastconv) vs "
                      f"{r['first_loss']['torch']:.6g} (torch): the networks differ")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"meta": meta, "options": vars(opts), "tables": tables,
                       "models": {n: {"label": s.label, "input_shape": list(s.input_shape),
                                      "batch": s.batch, "kwargs": s.kwargs}
                                  for n, s in MODELS.items() if n in opts.only},
                       "memory": [{"model": k[0], "threads": k[1], "contender": k[2], **v}
                                  for k, v in memory.items()]}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
