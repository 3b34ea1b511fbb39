"""Time the 3x3 stride-1 layers (ResNet-20's and the suite's): fastconv
builds/algorithms against PyTorch, each contender in a process of its own,
interleaved round by round.

What ``fastconv bench`` cannot: it times the one installed fastconv with its
automatic choice of kernel, while this compares builds (another install
tree, another environment) and forced algorithms side by side, so an
algorithm or Winograd threshold change is measured A/B.

    python benchmarks/conv3x3.py                          # installed fastconv vs torch
    python benchmarks/conv3x3.py --fc main=/path/to/old/site:auto --fc new=:auto
    python benchmarks/conv3x3.py --shapes r20-16,r20-32 --threads 1 --rounds 9

``--fc NAME=PATH:ALGORITHM[:VAR=VALUE...]`` adds a fastconv contender
importing fastconv from PATH (empty: the installed one), with the
environment variables given, running ``algorithm=ALGORITHM``;
``ALGORITHM`` may also be ``plan`` (conv_plan with the filters packed once,
the layer's inference case).  Each process times every shape at every thread
count (``--reps`` calls after a warm-up, min; at 1 thread of the thread's
CPU time, which a loaded machine disturbs far less than wall time; at 2 of
wall time), a round runs every contender once, and the table shows the median over rounds of those minima (and the
spread, min-max) in ms, with the ratio to the first contender.

The shapes come from :mod:`fastconv.bench_suite`: the 3x3 stride-1 dense
layers with at least ``WINOGRAD_MIN_CHANNELS`` channels in and out (those
Winograd can take), first ResNet-20's of the model suite at its batch
(``r20-F``), then those of the kernel suite (its names), timed at padding 1.
"""
import argparse
import json
import os
import subprocess
import sys

from fastconv import bench_suite
from fastconv._convplan import WINOGRAD_MIN_CHANNELS
from fastconv.summary import summary


def suite_shapes():
    """name -> (N, C, H, W, F) of the 3x3 stride-1 layers above."""
    shapes = {}
    spec = bench_suite.MODELS["resnet20"]
    model = spec.build()
    for row in summary(model, (spec.batch, *spec.input_shape)).rows:
        if row.kind == "Conv2d 3x3":                 # stride 1, dilation 1
            F, C = model.params[f"{row.name}.weight"].shape[:2]
            N, _, H, W = row.output_shape
            if min(C, F) >= WINOGRAD_MIN_CHANNELS:
                shapes.setdefault(f"r20-{F}", (N, C, H, W, F))
    for name, s in bench_suite.CONV_SHAPES.items():
        if ((s.k, s.stride, s.pad, s.dilation, s.groups) == (3, 1, 1, 1, 1)
                and min(s.C, s.F) >= WINOGRAD_MIN_CHANNELS):
            shapes[name] = (s.N, s.C, s.H, s.W, s.F)
    return shapes


SHAPES = suite_shapes()

CHILD = r"""
import json, sys, time
import numpy as np
spec = json.loads(sys.argv[1])
kind, alg = spec["kind"], spec["alg"]
if kind == "torch":
    import torch
    import torch.nn.functional as F
else:
    import fastconv as fc
out = {}
for name in spec["shapes"]:
    N, C, H, W, Fo = spec["all"][name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((Fo, C, 3, 3)) * np.sqrt(2 / (9 * C))).astype(np.float32)
    gy = rng.standard_normal((N, Fo, H, W)).astype(np.float32)
    if kind == "torch":
        xt, wt, gt = map(torch.from_numpy, (x, w, gy))
        fwd = lambda: F.conv2d(xt, wt, None, 1, 1)
        bwd = lambda: torch.ops.aten.convolution_backward(
            gt, xt, wt, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
            [True, True, False])
    elif alg == "plan":
        plan = fc.conv_plan(x.shape, w.shape, np.float32, padding=1)
        packed = plan.pack(w)
        fwd = lambda: plan.forward(x, w, packed=packed)
        bwd = lambda: plan.backward(gy, x, w, packed=packed)
    else:
        fwd = lambda: fc.conv2d(x, w, None, padding=1, algorithm=alg)
        bwd = lambda: fc.conv2d_backward(gy, x, w, padding=1, algorithm=alg)
    for t in spec["threads"]:
        if kind == "torch":
            torch.set_num_threads(t)
        else:
            fc.set_num_threads(t)
        # 1 thread: the thread's CPU time (on a loaded machine, wall time
        # mostly measures waiting for a core); more: wall time
        clock = time.thread_time if t == 1 else time.perf_counter
        for op, f in (("fwd", fwd), ("bwd", bwd)):
            if op not in spec["ops"]:
                continue
            f(); f()
            best = float("inf")
            for _ in range(spec["reps"]):
                t0 = clock(); f(); best = min(best, clock() - t0)
            out[f"{name}/{t}/{op}"] = best * 1e3
print(json.dumps(out))
"""


def run(contender, shapes, threads, reps, ops):
    name, kind, path, alg, extra = contender
    env = dict(os.environ)
    env.update(extra)
    if path:
        env["PYTHONPATH"] = path
    spec = dict(kind=kind, alg=alg, shapes=shapes, threads=threads, reps=reps, all=SHAPES,
                ops=ops)
    res = subprocess.run([sys.executable, "-P", "-c", CHILD, json.dumps(spec)], env=env,
                         capture_output=True, text=True, cwd="/tmp")
    if res.returncode:
        sys.exit(f"{name} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fc", action="append", default=[], metavar="NAME=PATH:ALG")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--ops", default="fwd,bwd")
    a = ap.parse_args()
    contenders = []
    for spec in a.fc or ["fastconv=:auto"]:
        name, rest = spec.split("=", 1)
        path, alg, *env = rest.split(":")
        contenders.append((name, "fastconv", path, alg,
                           dict(e.split("=", 1) for e in env)))
    if not a.no_torch:
        contenders.append(("torch", "torch", "", "", {}))
    shapes = a.shapes.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    results = {c[0]: [] for c in contenders}
    for r in range(a.rounds):
        for c in contenders:
            results[c[0]].append(run(c, shapes, threads, a.reps, a.ops.split(",")))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    names = [c[0] for c in contenders]
    print("shape/threads/op  " + "  ".join(f"{n:>22}" for n in names))
    for s in shapes:
        for t in threads:
            for op in a.ops.split(","):
                key = f"{s}/{t}/{op}"
                cells, base = [], None
                for n in names:
                    v = sorted(x[key] for x in results[n])
                    med = v[len(v) // 2]
                    base = med if base is None else base
                    cells.append(f"{med:7.2f} ({v[0]:.2f}-{v[-1]:.2f}) x{base / med:4.2f}")
                print(f"{key:<18}" + "  ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
