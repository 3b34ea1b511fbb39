"""Shared fixtures for the fastconv test suite.

Fixtures
--------
dtype   : every supported float dtype (float32 is always run).
rng     : a NumPy Generator seeded from the test's node id (reproducible, but
          different tests see different data).
impl    : the compiled package ``fastconv`` and its pure-NumPy twin
          ``fastconv.reference``; both must satisfy the same contract.
torch   : the ``torch`` module.  Missing torch skips the test on a user's
          machine and fails it in CI (``CI=true``), where torch is installed.
tol     : ``tol(dtype, n_terms=1) -> dict(rtol=..., atol=...)`` for
          ``np.testing.assert_allclose`` (``helpers.tolerance``).

Plain helper functions shared by the test modules are in helpers.py.

Tolerance policy
----------------
Pure data movement (im2col, max pooling and its indices) is compared exactly.
Everything that sums terms (convolutions, col2im, average pooling, gradient
scatters) is compared with ``RTOL`` / ``ATOL`` of helpers.py, where the absolute
tolerance grows with ``sqrt(n_terms)``, the number of products summed into one
output element (C/groups*kh*kw for a forward convolution, N*Ho*Wo for
grad_weight, ...).  Why: inputs are O(1) standard-normal values, so an output
that sums K terms has magnitude ~sqrt(K), and two implementations that add the
same K terms in a different order (oneDNN, BLAS blocking, a direct loop) differ
by about eps*sqrt(K)*|partial sums| ~ eps*K in float32 (eps = 6e-8), e.g. ~1e-5
for K = 144.  Scaling ATOL by sqrt(K) gives a margin of ~10x over that estimate
for the shapes used here while staying many orders of magnitude below the size
of any genuine bug (a wrong, missing or extra term is O(1)).  RTOL is not
scaled: relative to an output of size sqrt(K) the error is eps*sqrt(K) << 1e-5.
"""

import importlib
import os
import zlib

import numpy as np
import pytest
from helpers import DTYPES, tolerance

try:  # hypothesis is a test dependency; register a modest, deadline-free profile
    from hypothesis import settings

    settings.register_profile("fastconv", max_examples=50, deadline=None)
    settings.load_profile("fastconv")
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture
def rng(request):
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(
    scope="session",
    params=["fastconv", "fastconv.reference"],
    ids=["compiled", "reference"],
)
def impl(request):
    return importlib.import_module(request.param)


@pytest.fixture(scope="session")
def torch():
    try:
        import torch as _torch
    except ImportError as exc:  # pragma: no cover - depends on the machine
        msg = f"torch is required for the parity tests: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return _torch


@pytest.fixture(scope="session")
def tol():
    return tolerance


@pytest.fixture
def restore_threads():
    """The thread count before the test, set back afterwards."""
    import fastconv

    before = fastconv.get_num_threads()
    try:
        yield before
    finally:
        fastconv.set_num_threads(before)


@pytest.fixture
def isolated(tmp_path):
    """Run Python code in a fresh interpreter, from an empty directory (the
    installed fastconv), so that a crash or hang fails the test instead of
    ending pytest.  ``run(code, timeout=120, env=None)`` returns the
    CompletedProcess; a hang is a test failure."""
    import subprocess
    import sys
    import textwrap

    def run(code, timeout=120, env=None):
        try:
            return subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path,
                capture_output=True, text=True, timeout=timeout,
                env=None if env is None else {**os.environ, **env})
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {timeout} s:\n{code}")
    return run


def _ok(res):
    """Assert an isolated run exited cleanly; return its stdout."""
    assert res.returncode == 0, (f"exit status {res.returncode} (a negative "
                                 f"one is a signal)\n{res.stderr[-3000:]}")
    return res.stdout


@pytest.fixture
def isolated_ok(isolated):
    """``isolated`` that also asserts a clean exit and returns stdout."""
    return lambda code, **kw: _ok(isolated(code, **kw))


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", default=False,
        help="also run the tests marked slow (arrays of more than 2**31 "
             "elements: about 9 GB of memory and minutes each)")


def pytest_collection_modifyitems(config, items):
    """Mark the tests that use PyTorch as ``oracle`` (deselectable with -m);
    deselect the ``slow`` ones unless --run-slow (reported as deselected)."""
    for item in items:
        if "torch" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.oracle)
    if not config.getoption("--run-slow"):
        slow = [item for item in items if "slow" in item.keywords]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if "slow" not in item.keywords]
