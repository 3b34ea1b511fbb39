"""Quick timings of the 3-D kernels: fastconv vs its NumPy twin vs PyTorch.

What ``fastconv bench`` cannot: its suite (:mod:`fastconv.bench_suite`) is
2-D only; this times conv3d forward and backward and max_pool3d (with and
without indices, backward) on one volume shape each, PyTorch in the same
process.  Min of ``--repeat`` runs per cell, at each thread count (fastconv's
OpenMP, NumPy's BLAS through threadpoolctl, and torch all limited to it)::

    python -P benchmarks/bench_vol.py --threads 1,2 --repeat 5
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fastconv
import fastconv.reference as ref

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover
    torch = None


def best(fn, repeat):
    fn()                                   # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cases(rng):
    x = rng.standard_normal((8, 16, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    y = fastconv.conv3d(x, w, b, padding=1)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    xp = rng.standard_normal((8, 32, 16, 32, 32)).astype(np.float32)
    yp, ip = fastconv.max_pool3d(xp, 2, return_indices=True)
    gp = rng.standard_normal(yp.shape).astype(np.float32)
    t = (lambda a: torch.from_numpy(a)) if torch else None
    out = {
        "conv3d fwd  N8 C16 16x32x32 k3 p1 F32": (
            lambda m: m.conv3d(x, w, b, padding=1),
            torch and (lambda: TF.conv3d(t(x), t(w), t(b), padding=1))),
        "conv3d bwd  (grad_x, grad_w, grad_b)": (
            lambda m: m.conv3d_backward(gy, x, w, padding=1),
            torch and _torch_conv_bwd(t(x), t(w), t(b), t(gy))),
        "max_pool3d  N8 C32 16x32x32 k2 (indices)": (
            lambda m: m.max_pool3d(xp, 2, return_indices=True),
            torch and (lambda: TF.max_pool3d(t(xp), 2, return_indices=True))),
        "max_pool3d  (no indices)": (
            lambda m: m.max_pool3d(xp, 2),
            torch and (lambda: TF.max_pool3d(t(xp), 2))),
        "max_pool3d_backward": (
            lambda m: m.max_pool3d_backward(gp, ip, xp.shape),
            None),
    }
    return out


def _torch_conv_bwd(x, w, b, gy):
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)

    def run():
        x.grad = w.grad = b.grad = None
        TF.conv3d(x, w, b, padding=1).backward(gy)
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    table = cases(rng)
    print(f"{'case':42s} {'thr':>3s} {'fastconv ms':>11s} {'reference ms':>12s} {'torch ms':>9s} "
          f"{'ref/fc':>7s} {'torch/fc':>8s}")
    before = fastconv.get_num_threads()
    for n in [int(v) for v in a.threads.split(",")]:
        fastconv.set_num_threads(n)
        if torch:
            torch.set_num_threads(n)
        with threadpool_limits(limits=n):
            for name, (fn, tfn) in table.items():
                fc_t = best(lambda: fn(fastconv), a.repeat)
                ref_t = best(lambda: fn(ref), max(1, a.repeat // 2))
                th_t = best(tfn, a.repeat) if tfn else float("nan")
                print(f"{name:42s} {n:3d} {fc_t * 1e3:11.1f} {ref_t * 1e3:12.1f} {th_t * 1e3:9.1f} "
                      f"{ref_t / fc_t:7.2f} {th_t / fc_t:8.2f}")
    fastconv.set_num_threads(before)


if __name__ == "__main__":
    main()
