"""fastconv.cli: the ``fastconv`` / ``python -m fastconv`` command line."""

import importlib.util
import os
import subprocess
import sys

import pytest

import fastconv
from fastconv import cli


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "bench", "config"):
        assert command in out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "usage: fastconv" in capsys.readouterr().err


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fastconv {fastconv.__version__}"


def test_config(capsys):
    assert cli.main(["config"]) == 0
    out = capsys.readouterr().out
    assert fastconv.__version__ in out and "threads" in out


def test_demo_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fastconv demo")
    for option in ("--epochs", "--batch-size", "--lr", "--seed", "--threads", "--out",
                   "--data", "--data-dir", "--backend", "--optimizer"):
        assert option in out


def test_demo_bad_option_value(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_bench_missing_module_says_so(monkeypatch, capsys):
    monkeypatch.setitem(cli.PASS_THROUGH, "bench", "fastconv._no_such_bench_module")
    assert cli.main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "fastconv bench" in err and "not available" in err
    assert "fastconv._no_such_bench_module" in err


def test_bench_passes_every_argument_through(monkeypatch, tmp_path):
    (tmp_path / "fake_bench_for_cli_test.py").write_text(
        "calls = []\n"
        "def main(argv):\n"
        "    calls.append(argv)\n"
        "    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.PASS_THROUGH, "bench", "fake_bench_for_cli_test")
    assert cli.main(["bench", "--help", "--threads", "1", "demo"]) == 3
    fake = sys.modules["fake_bench_for_cli_test"]
    assert fake.calls == [["--help", "--threads", "1", "demo"]]


@pytest.mark.skipif(importlib.util.find_spec("fastconv.bench") is None,
                    reason="fastconv.bench is not part of this installation")
def test_real_bench_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--help"])
    assert info.value.code == 0
    assert "usage: fastconv bench" in capsys.readouterr().out


def test_python_m_fastconv(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fastconv", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"fastconv {fastconv.__version__}"


def test_bench_without_its_extra_names_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # makes the import fail
    assert cli.main(["bench", "--quick", "--no-torch"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "fastconv[bench]"' in err and "threadpoolctl" in err
    assert "Traceback" not in err


def test_bench_list_needs_no_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    assert cli.main(["bench", "--list"]) == 0
    assert "cifar-first" in capsys.readouterr().out


def test_unknown_isa_lists_what_this_cpu_supports(tmp_path):
    env = {**os.environ, "FASTCONV_ISA": "avx9000"}
    proc = subprocess.run([sys.executable, "-c", "import fastconv"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "FASTCONV_ISA='avx9000' is not one of avx512, avx2, generic" in proc.stderr
    supported = proc.stderr.split("this CPU supports ")[1].split(" (")[0].split(", ")
    assert "generic" in supported and set(supported) <= {"avx512", "avx2", "generic"}


# --------------------------------------------------------------------------
# issue 12: output paths are checked before any work (the demo trained, and
# the benchmark ran, before failing with a traceback), and thread counts are
# capped (demo --threads 100000 segfaulted).  Subprocesses: a crash or a
# long run fails the test.
# --------------------------------------------------------------------------

def _fastconv(tmp_path, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fastconv", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


def _one_line_error(proc, *words):
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert all(w in lines[-1] for w in words), lines


@pytest.mark.parametrize("where", ["file/sub", "/proc/x"])
def test_demo_out_is_checked_before_training(tmp_path, where):
    (tmp_path / "file").write_text("a regular file, not a directory")
    proc = _fastconv(tmp_path, "demo", "--epochs", "1", "--timed-batches", "0",
                     "--threads", "1", "--no-progress", "--out", where)
    _one_line_error(proc, "--out", where)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Test accuracy" not in proc.stdout     # nothing trained


@pytest.mark.skipif(importlib.util.find_spec("fastconv.bench") is None,
                    reason="fastconv.bench is not part of this installation")
@pytest.mark.parametrize("where", ["missing-dir/y.json", "/proc/x/y.json", "."])
def test_bench_json_is_checked_before_benchmarking(tmp_path, where):
    proc = _fastconv(tmp_path, "bench", "--quick", "--ops", "im2col", "--shapes",
                     "tiny", "--repeat", "1", "--threads", "1", "--no-torch",
                     "--no-memory", "--json", where)
    _one_line_error(proc, "--json", where)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "###" not in proc.stdout                # no table: nothing ran


def test_demo_creates_a_missing_out_directory_later(tmp_path):
    # The check creates nothing: a new --out directory is made when the
    # plots are written (the check only probes its writable ancestor).
    from fastconv import _paths
    assert _paths.output_dir_problem(tmp_path / "new" / "plots") is None
    assert not (tmp_path / "new").exists() and not list(tmp_path.iterdir())
    assert _paths.output_file_problem(tmp_path / "r.json") is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["demo", "--epochs", "1", "--threads"],
                                     ["bench", "--ops", "im2col", "--threads"]])
def test_thread_counts_beyond_the_cap_are_refused(tmp_path, command):
    proc = _fastconv(tmp_path, *command, "100000")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--threads" in proc.stderr and "Traceback" not in proc.stderr
