"""The public API's annotations, checked by mypy as a user's code would be
(tests/typecheck_api.py; .ci/package runs the same check on the wheel)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_typecheck_api_passes_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy comes with the [test] extra")
    # From an empty directory, so the installed package is what mypy reads.
    shutil.copy(Path(__file__).with_name("typecheck_api.py"), tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--allow-untyped-calls",
         "--no-incremental", "--cache-dir", str(tmp_path / "cache"), "typecheck_api.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
