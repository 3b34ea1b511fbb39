"""Compiled locally_connected2d vs its NumPy twin on face-like shapes.

What ``fastconv bench`` cannot: its suite (:mod:`fastconv.bench_suite`) has
no locally connected (unshared-weight) layer, and PyTorch has no built-in
one to compare with; README's figures for the layer come from here.  Min of
``--repeat`` runs per (shape, pass, threads), float32, the two
implementations interleaved.  NumPy's BLAS is limited to the same thread count
(threadpoolctl) so both sides use the same cores.

    python -P benchmarks/time_locally_connected.py [--repeat 7]
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import fastconv as fc
import fastconv.reference as ref

# (label, N, C, H, W, kernel, F)
SHAPES = [
    ("N32 C16 32x32 k3 F32", 32, 16, 32, 32, 3, 32),
    ("N64 C3 64x64 k5 F16", 64, 3, 64, 64, 5, 16),
]


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    before = fc.get_num_threads()
    print(f"gemm isa {fc._ext.gemm_isa()}; min of {args.repeat} runs, float32")
    print(f"{'shape':24} {'pass':8} {'thr':>3} {'fastconv ms':>12} "
          f"{'NumPy ms':>10} {'NumPy/fastconv':>15}")
    for label, N, C, H, W, k, F in SHAPES:
        Ho, Wo = H - k + 1, W - k + 1
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((Ho, Wo, C, k, k, F)) * 0.1).astype(np.float32)
        b = rng.standard_normal((F, Ho, Wo)).astype(np.float32)
        gy = rng.standard_normal((N, F, Ho, Wo)).astype(np.float32)
        for threads in (int(t) for t in args.threads.split(",")):
            fc.set_num_threads(threads)
            with threadpool_limits(threads):
                for name, fast, slow in [
                    ("forward", lambda: fc.locally_connected2d(x, w, b),
                     lambda: ref.locally_connected2d(x, w, b)),
                    ("backward", lambda: fc.locally_connected2d_backward(gy, x, w),
                     lambda: ref.locally_connected2d_backward(gy, x, w)),
                ]:
                    fast(), slow()                       # warm up
                    tf = ts = float("inf")
                    for _ in range(args.repeat):         # interleaved
                        tf = min(tf, _best(fast, 1))
                        ts = min(ts, _best(slow, 1))
                    print(f"{label:24} {name:8} {threads:>3} {tf * 1e3:12.2f} "
                          f"{ts * 1e3:10.2f} {ts / tf:15.2f}")
    fc.set_num_threads(before)


if __name__ == "__main__":
    main()
