"""pytest-benchmark suites of fastconv's kernels and models.

Run from the checkout (the installed fastconv is benchmarked)::

    pytest benchmarks --benchmark-only                      # everything
    pytest benchmarks --benchmark-only -k "conv2d and resnet-56"
    pytest benchmarks --benchmark-only --bench-threads 2
    pytest benchmarks --benchmark-disable                   # each case once, untimed

What is timed is defined once, in :mod:`fastconv.bench_suite`, which
``fastconv bench`` reads too (``fastconv bench --list`` and
``fastconv bench models --list`` print the suites; tests/test_bench.py
checks that both enumerate the same cases):

* ``test_bench_im2col.py``, ``test_bench_conv2d.py``, ``test_bench_pool.py``:
  every op of the module's op family (``FAMILY``) on every shape of the
  family, one pytest-benchmark group ``"op|shape|dtype"`` each, holding
  three contenders: ``fastconv``, ``reference`` (:mod:`fastconv.reference`,
  NumPy) and ``torch`` (PyTorch CPU; skipped when torch is not installed).
  float32 runs on the whole suite, float64 on
  :data:`fastconv.bench_suite.FLOAT64_SHAPES`.  Inputs are built by the
  ``case`` fixture, outside the timing; backward benchmarks get the
  forward's results (grad_out, max-pool indices) from it and time the
  backward alone.
* ``test_bench_models.py``: a training step and inference of each network
  of :data:`fastconv.bench_suite.MODELS`, fastconv's against its
  ``torch.nn`` twin, group ``"model|name|mode"``.

Threads: fastconv, PyTorch and NumPy's BLAS all run with ``--bench-threads``
threads (default 1).  Here PyTorch shares the process, and its OpenMP runtime,
with fastconv, which can distort multi-thread timings; for comparisons at
2 threads use ``fastconv bench`` (and ``fastconv bench --models``): PyTorch
in its own process, contenders interleaved, comparison tables printed.

The normal ``pytest`` run does not collect this directory (``testpaths``).
"""
import importlib.util

import pytest
from threadpoolctl import ThreadpoolController

import fastconv
from fastconv import bench, bench_suite

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def pytest_addoption(parser):
    parser.addoption(
        "--bench-threads", type=int, default=1,
        help="threads for fastconv, PyTorch and NumPy's BLAS (default 1)")


def pytest_generate_tests(metafunc):
    """Parametrize ``spec`` with the suite's benchmarks of the test module's
    op family ``FAMILY`` (:func:`fastconv.bench_suite.suite`)."""
    if "spec" in metafunc.fixturenames:
        family = [metafunc.module.FAMILY]
        specs = (bench_suite.suite(family)
                 + bench_suite.suite(family, "float64", subset=bench_suite.FLOAT64_SHAPES))
        metafunc.parametrize("spec", specs, ids=str)


@pytest.fixture(scope="session", autouse=True)
def bench_threads(request):
    """Set every library's thread count for the session; restore it after."""
    n = request.config.getoption("--bench-threads")
    saved = fastconv.get_num_threads()
    fastconv.set_num_threads(n)
    torch_saved = None
    if HAVE_TORCH:
        import torch
        torch_saved = torch.get_num_threads()
        torch.set_num_threads(n)
    try:
        with ThreadpoolController().limit(limits=n, user_api="blas"):
            yield n
    finally:
        fastconv.set_num_threads(saved)
        if torch_saved is not None:
            torch.set_num_threads(torch_saved)


@pytest.fixture(params=bench.CONTENDERS)
def contender(request):
    """Which implementation runs: fastconv, reference (NumPy) or torch."""
    if request.param == "torch" and not HAVE_TORCH:
        pytest.skip("torch is not installed")
    return request.param


@pytest.fixture
def case(spec):
    """The benchmark's inputs (built here, outside the timing)."""
    return bench.Case(*spec)


@pytest.fixture
def run(benchmark, case, contender):
    """Time ``case`` with ``contender`` in the group ``"op|shape|dtype"``."""
    def _run():
        benchmark.group = case.group
        benchmark.extra_info.update(work=case.work, unit=case.unit)
        benchmark(case.call(contender))
    return _run
