"""Fuzzing: hostile calls of every public function, crash-isolated.

The cases come from fuzz/cases.py (its REGISTRY has one entry per public
callable; adding a public function without one fails
test_every_public_callable_has_a_registry_entry).  Each case runs in a
worker subprocess (fuzz/worker.py) with a limited address space and a
per-case time limit, so a segfault, an abort or a hang fails the test with
the call that caused it instead of ending pytest.  Every case must return or
raise ValueError/TypeError/MemoryError, leave its inputs as they were and
agree with its twin (fastconv.reference, a layer's reference backend).

FASTCONV_FUZZ_EXAMPLES (default 1000) sets the random examples,
FASTCONV_FUZZ_TIMEOUT (default 30 s) the limit per case; the sanitizer job
(.ci/sanitize) runs this file with smaller numbers.
"""
import hashlib
import importlib.util
import inspect
import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastconv
import fastconv.layers
import fastconv.reference

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
EXAMPLES = int(os.environ.get("FASTCONV_FUZZ_EXAMPLES", "1000"))
TIMEOUT = float(os.environ.get("FASTCONV_FUZZ_TIMEOUT", "30"))
SEEDS_PER_ENTRY = int(os.environ.get("FASTCONV_FUZZ_SEEDS", "12"))


def _load_cases():
    spec = importlib.util.spec_from_file_location("fastconv_fuzz_cases",
                                                  FUZZ / "cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cases = _load_cases()


class Worker:
    """fuzz/worker.py in a subprocess; restarted after a crash or hang."""

    def __init__(self):
        self.proc = None
        self.err = None

    def start(self):
        self.err = tempfile.TemporaryFile()
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        if "asan" in env.get("LD_PRELOAD", ""):     # MemoryError, not abort
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                                   ":allocator_may_return_null=1"
                                   ":max_allocation_size_mb=1024").lstrip(":")
        self.proc = subprocess.Popen(
            [sys.executable, str(FUZZ / "worker.py")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.err, env=env, cwd=FUZZ,
            text=True, bufsize=1)
        assert self._answer(120)["status"] == "ready", self._stderr()

    def _stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-3000:]

    def _answer(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"status": "died"}

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, name, data, timeout=TIMEOUT):
        """(status, message): ok, fail (a broken contract), crash or hang."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(f"{name} {bytes(data).hex()}\n")
        self.proc.stdin.flush()
        answer = self._answer(timeout)
        if answer is None:
            self.stop()
            return "hang", f"no answer within {timeout} s"
        if answer["status"] == "died":
            code = self.proc.wait()
            self.proc = None
            return "crash", f"exit status {code}; stderr:\n{self._stderr()}"
        return answer["status"], answer.get("message", "")


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.stop()


def _check(worker, name, data):
    status, message = worker.run(name, data)
    assert status == "ok", (
        f"{status}: {message}\n  the call: {cases.describe(data, None if name == '-' else name)}"
        f"\n  reproduce: python fuzz/worker.py <<< '{name} {bytes(data).hex()}'")


# ---------------------------------------------------------------- coverage

def _public_callables():
    for name in fastconv.__all__:
        obj = getattr(fastconv, name)
        if callable(obj) and not inspect.ismodule(obj) and not inspect.isclass(obj):
            yield name


def test_every_public_callable_has_a_registry_entry():
    missing = [n for n in _public_callables() if n not in cases.REGISTRY]
    assert not missing, (f"public callables without a fuzz entry in "
                         f"fuzz/cases.py (add register(name, builder)): {missing}")
    no_twin = [n for n in fastconv.reference.__all__
               if cases.REGISTRY.get(n, cases.Entry(None, None, None)).twin
               is not getattr(fastconv.reference, n)]
    assert not no_twin, f"reference functions not fuzzed as twins: {no_twin}"
    layers = [n for n in fastconv.layers.__all__
              if n != "LoadResult" and callable(getattr(fastconv.layers, n))]
    missing = [n for n in layers if f"layers.{n}" not in cases.REGISTRY]
    assert not missing, f"layers without a fuzz entry (layers.<name>): {missing}"


# ---------------------------------------------------------------- the harness can fail

def test_worker_reports_a_crash_and_a_hang(worker):
    # Positive controls: a dying or stuck case must be reported, not pass.
    assert worker.run("!crash", b"")[0] == "crash"
    assert worker.run("!hang", b"", timeout=3)[0] == "hang"
    assert worker.run("-", b"")[0] == "ok"


def test_a_broken_contract_is_reported(monkeypatch):
    # The checks themselves: a twin that disagrees and an input that is
    # modified are failures.
    import numpy as np

    def scribble(x, *args, **kwargs):
        x[...] = 0
        return x

    def build(c):
        return (np.ones((1, 1, 2, 2)),), {}

    monkeypatch.setitem(cases.REGISTRY, "scribble",
                        cases.Entry(build, scribble, None))
    with pytest.raises(cases.FuzzFailure, match="modified an input"):
        cases.run_case(b"", "scribble")
    monkeypatch.setitem(cases.REGISTRY, "disagree",
                        cases.Entry(build, lambda x: x + 1, lambda x: x + 2))
    with pytest.raises(cases.FuzzFailure, match="values differ"):
        cases.run_case(b"", "disagree")
    monkeypatch.setitem(cases.REGISTRY, "overflow", cases.Entry(
        build, lambda x: int(2**70).to_bytes(4, "little"), None))
    with pytest.raises(cases.FuzzFailure, match="OverflowError"):
        cases.run_case(b"", "overflow")


# ---------------------------------------------------------------- fuzzing

@pytest.mark.parametrize("name", sorted(cases.REGISTRY))
def test_every_entry_with_fixed_inputs(worker, name):
    # Every public callable, every run: its plain call (all-zero bytes)
    # and SEEDS_PER_ENTRY fixed pseudo-random hostile ones.
    for seed in range(SEEDS_PER_ENTRY + 1):
        data = (bytes(64) if seed == 0 else
                hashlib.sha256(f"{name}/{seed}".encode()).digest() * 3)
        _check(worker, name, data)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=160))
def test_fuzz_random_calls(worker, data):
    _check(worker, "-", data)

