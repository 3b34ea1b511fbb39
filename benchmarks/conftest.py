"""pytest-benchmark suites of fastconv's kernels.

Run from the checkout (the installed fastconv is benchmarked)::

    pytest benchmarks --benchmark-only                      # everything
    pytest benchmarks --benchmark-only -k "conv2d and resnet-56"
    pytest benchmarks --benchmark-only --bench-threads 2

Every op on every shape of the suite (defined once, in :mod:`fastconv.bench`)
is one pytest-benchmark group, ``"op|shape|dtype"``, holding three
contenders: ``fastconv``, ``reference`` (:mod:`fastconv.reference`, NumPy)
and ``torch`` (PyTorch CPU; skipped when torch is not installed).  float32 runs
on the whole suite, float64 on :data:`fastconv.bench.FLOAT64_SHAPES`.  Inputs
are built by the ``case`` fixture, outside the timing; backward benchmarks get
the forward's results (grad_out, max-pool indices) from it and time the
backward alone.

Threads: fastconv, PyTorch and NumPy's BLAS all run with ``--bench-threads``
threads (default 1).  Here PyTorch shares the process, and its OpenMP runtime,
with fastconv, which can distort multi-thread timings; for comparisons at
2 threads use ``python benchmarks/compare.py`` (PyTorch in its own process,
contenders interleaved), which prints the comparison tables.

The normal ``pytest`` run does not collect this directory (``testpaths``).
"""
import importlib.util

import pytest
from threadpoolctl import ThreadpoolController

import fastconv
from fastconv import bench

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def pytest_addoption(parser):
    parser.addoption(
        "--bench-threads", type=int, default=1,
        help="threads for fastconv, PyTorch and NumPy's BLAS (default 1)")


def pytest_generate_tests(metafunc):
    """Parametrize ``spec`` with the ops listed in the test module's ``OPS``."""
    if "spec" in metafunc.fixturenames:
        ops = metafunc.module.OPS
        specs = bench.suite(ops) + bench.suite(ops, "float64", subset=bench.FLOAT64_SHAPES)
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
