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
