"""Thread safety and thread-count independence of the compiled kernels."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastconv

ALGORITHMS = ["auto", "gemm", "direct"]


def _jobs(dtype, seed):
    """A list of (label, zero-argument callable) covering every kernel."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 8, 13, 11)).astype(dtype)
    w = rng.standard_normal((12, 4, 3, 3)).astype(dtype)
    b = rng.standard_normal(12).astype(dtype)
    geo = dict(stride=1, padding=1, groups=2)
    g_conv = rng.standard_normal((4, 12, 13, 11)).astype(dtype)
    cols = rng.standard_normal((4, 8 * 9, 6 * 5)).astype(dtype)  # 13x11, k3 s2 p0 -> 6x5
    y, idx = fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    g_pool = rng.standard_normal(y.shape).astype(dtype)
    avg = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    g_avg = rng.standard_normal(fastconv.avg_pool2d(x, 3, **avg).shape).astype(dtype)
    jobs = [
        ("im2col", lambda: fastconv.im2col(x, 3, stride=2, padding=1, dilation=2)),
        ("col2im", lambda: fastconv.col2im(cols, (13, 11), 3, stride=2)),
        ("max_pool2d", lambda: fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)),
        ("max_pool2d_backward", lambda: fastconv.max_pool2d_backward(g_pool, idx, x.shape)),
        ("avg_pool2d", lambda: fastconv.avg_pool2d(x, 3, **avg)),
        ("avg_pool2d_backward", lambda: fastconv.avg_pool2d_backward(g_avg, x.shape, 3, **avg)),
    ]
    for a in ALGORITHMS:
        jobs.append((f"conv2d-{a}", lambda a=a: fastconv.conv2d(x, w, b, algorithm=a, **geo)))
        jobs.append((f"conv2d_backward-{a}", lambda a=a: fastconv.conv2d_backward(g_conv, x, w, algorithm=a, **geo)))
    return jobs


def _as_list(out):
    return list(out) if isinstance(out, tuple) else [out]


def _assert_same(got, want, label):
    got, want = _as_list(got), _as_list(want)
    assert len(got) == len(want), label
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, f"{label} output {k}"
        np.testing.assert_array_equal(g, w, err_msg=f"{label} output {k}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_thread_pool_matches_serial(dtype):
    # Several independent problems, each run serially first, then all at once from a pool.
    problems = [_jobs(dtype, seed) for seed in range(3)]
    flat = [(f"{label} (problem {p})", fn) for p, jobs in enumerate(problems) for label, fn in jobs]
    serial = [fn() for _, fn in flat]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            futures = [pool.submit(fn) for _, fn in reversed(flat)]
            concurrent = [f.result() for f in futures][::-1]
            for (label, _), got, want in zip(flat, concurrent, serial):
                _assert_same(got, want, "threaded " + label)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_results_independent_of_thread_count(dtype, restore_threads):
    jobs = _jobs(dtype, 7)
    results = {}
    try:
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            assert fastconv.get_num_threads() == n
            results[n] = [fn() for _, fn in jobs]
    finally:
        fastconv.set_num_threads(restore_threads)
    for (label, _), one, two, three in zip(jobs, results[1], results[2], results[3]):
        _assert_same(two, one, f"{label}: 2 threads vs 1")
        _assert_same(three, one, f"{label}: 3 threads vs 1")


def test_thread_pool_with_set_num_threads(restore_threads):
    # Changing the thread count while other Python threads compute must not corrupt results.
    jobs = _jobs(np.float32, 11)
    serial = [fn() for _, fn in jobs]

    def run_all(n):
        fastconv.set_num_threads(n)
        return [fn() for _, fn in jobs]

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            outs = list(pool.map(run_all, [1, 2, 1, 2]))
    finally:
        fastconv.set_num_threads(restore_threads)
    for out in outs:
        for (label, _), got, want in zip(jobs, out, serial):
            _assert_same(got, want, f"{label} with concurrent set_num_threads")


# --------------------------------------------------------------------------
# issue 12: no upper limit on the thread count.  set_num_threads(100000)
# then a conv2d segfaulted (or libgomp exited the interpreter with "Thread
# creation failed"); 2**31 raised OverflowError.  The count is capped at
# fastconv._threads.MAX_THREADS: set_num_threads refuses more, the
# OMP_NUM_THREADS default is clamped.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [100000, 2**31, 2**63, 10**30])
def test_set_num_threads_refuses_more_than_the_cap(n, restore_threads):
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match=r"n must be an int from 1 to \d+"):
        fastconv.set_num_threads(n)
    assert fastconv.get_num_threads() == before


def test_set_num_threads_takes_numpy_ints_up_to_the_cap(restore_threads):
    cap = fastconv._threads.MAX_THREADS
    fastconv.set_num_threads(np.int64(cap))
    assert fastconv.get_num_threads() == cap
    fastconv.set_num_threads(np.uint8(2))
    assert fastconv.get_num_threads() == 2
    for bad in (2.0, "2", True, None):
        with pytest.raises(TypeError, match="n must be an int"):
            fastconv.set_num_threads(bad)


def test_omp_num_threads_beyond_the_cap_is_clamped(isolated_ok):
    out = isolated_ok("""
        import numpy as np, fastconv as fc
        n = fc.get_num_threads()
        x = np.ones((4, 16, 64, 64), np.float32)
        y = fc.conv2d(x, np.ones((16, 16, 3, 3), np.float32))
        assert y[0, 0, 0, 0] == 144
        print(n, fc._threads.MAX_THREADS)
        """, env={"OMP_NUM_THREADS": "100000"})
    n, cap = map(int, out.split())
    assert n == cap


def test_the_cap_runs_every_kernel(isolated_ok):
    # MAX_THREADS threads actually start (large calls use all of them).
    out = isolated_ok("""
        import numpy as np, fastconv as fc
        fc.set_num_threads(fc._threads.MAX_THREADS)
        x = np.ones((8, 16, 64, 64), np.float32)
        w = np.ones((16, 16, 3, 3), np.float32)
        y = fc.conv2d(x, w)
        fc.conv2d_backward(y, x, w)
        fc.max_pool2d(x, 2); fc.avg_pool2d(x, 2); fc.im2col(x, 3)
        print("ok")
        """)
    assert out.strip() == "ok"


@pytest.mark.parametrize("user_env, expected", [
    ({}, fastconv._omp.SPINCOUNT),              # fastconv's spin, environment restored
    ({"GOMP_SPINCOUNT": "7"}, "7"),             # the user's choice is kept
])
def test_openmp_spin_count_reaches_libgomp(isolated, user_env, expected):
    res = isolated("""
        import os, fastconv
        try:                            # which OpenMP runtime the extension loaded
            with open("/proc/self/maps") as f:
                gomp = any("libgomp" in line for line in f)
        except OSError:
            gomp = False
        print(os.environ.get("GOMP_SPINCOUNT"), gomp)
        """, env={"OMP_DISPLAY_ENV": "VERBOSE", **user_env})
    assert res.returncode == 0, res.stderr
    env_after, gomp = res.stdout.split()
    assert env_after == user_env.get("GOMP_SPINCOUNT", "None")
    if gomp == "True":
        # libgomp prints its settings to stderr as the extension loads it;
        # LLVM's libomp (clang builds) has no spin count of this name
        assert f"GOMP_SPINCOUNT = '{expected}'" in res.stderr
