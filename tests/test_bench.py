"""fastconv.bench, the benchmark harness: its output, not its timings.

One run of ``fastconv bench`` on the tiny shapes (one per op family, one
round, 1 and 2 threads) checks the tables' structure and that every numeric
cell parses; the other tests check the shape suite and that the contenders of
each benchmark compute the same thing, so that the comparison is fair, and
that the pytest-benchmark suites of ``benchmarks/`` enumerate the cases that
``fastconv bench --list`` and ``fastconv bench models --list`` print (both
read :mod:`fastconv.bench_suite`).
"""
import contextlib
import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastconv import bench, bench_suite

HAVE_TORCH = importlib.util.find_spec("torch") is not None
TEXT_COLUMNS = {"op", "shape", "unit"}


def _tables(text):
    """The markdown tables in ``text``: a list of (heading, header, rows)."""
    tables, heading, block = [], None, None
    for line in text.splitlines():
        if line.startswith("|"):
            if block is None:
                block = []
                tables.append((heading, block))
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        else:
            block = None
            if line.startswith("###"):
                heading = line
    return [(h, b[0], b[2:]) for h, b in tables]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """Run the harness once; return (exit status, stdout, JSON)."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = bench.main(["--quick", "--shapes", "tiny", "--repeat", "1",
                             "--threads", "1,2", "--json", str(path)])
    return status, out.getvalue(), json.loads(path.read_text())


def test_one_table_per_thread_count(bench_run):
    status, text, _ = bench_run
    assert status == 0
    tables = _tables(text)
    assert [t[0] for t in tables] == ["### 1 thread, float32", "### 2 threads, float32"]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):     # reported, not changed
        if var in os.environ:
            assert f"{var}={os.environ[var]}" in text


def test_table_columns(bench_run):
    torch = ["torch ms"] * HAVE_TORCH
    want = (["op", "shape", "fastconv ms", "NumPy ms"] + torch
            + ["rate", "unit", "vs NumPy"] + ["vs torch"] * HAVE_TORCH
            + ["% peak", "extra MiB"])
    for _, header, rows in _tables(bench_run[1]):
        assert header == want
        assert all(len(r) == len(want) for r in rows)


def test_every_numeric_cell_parses(bench_run):
    for _, header, rows in _tables(bench_run[1]):
        data = [dict(zip(header, r)) for r in rows if r[0] != "geomean"]
        assert sorted(r["op"] for r in data) == sorted(bench.OPS)
        for r in data:
            assert r["shape"] == "tiny"
            assert r["unit"] == ("GFLOP/s" if bench.OPS[r["op"]] == "conv2d" else "GB/s")
            for col, cell in r.items():
                if col not in TEXT_COLUMNS:
                    assert math.isfinite(float(cell)), (col, cell)
                    if col != "extra MiB":
                        assert float(cell) > 0, (col, cell)


def test_geomean_rows(bench_run):
    for _, header, rows in _tables(bench_run[1]):
        geo = [dict(zip(header, r)) for r in rows if r[0] == "geomean"]
        assert [g["shape"] for g in geo] == list(bench.FAMILIES)
        for g in geo:
            for col, cell in g.items():
                if col.startswith("vs "):
                    assert float(cell) > 0
                elif col not in ("op", "shape"):
                    assert cell == ""


def test_json_holds_the_samples(bench_run):
    _, _, data = bench_run
    assert [t["threads"] for t in data["tables"]] == [1, 2]
    contenders = {"fastconv", "reference"} | ({"torch"} if HAVE_TORCH else set())
    for table in data["tables"]:
        assert table["gemm_gflops"] > 0 and table["copy_gbps"] > 0
        for row in table["rows"]:
            assert set(row["samples_ms"]) == contenders
            assert all(len(v) == 1 for v in row["samples_ms"].values())
            assert row["memory"]["method"] in ("VmHWM", "ru_maxrss")


def test_shape_suite():
    conv = bench.CONV_SHAPES
    assert list(conv)[:9] == ["cifar-first", "cifar-mid", "resnet-56", "resnet-28",
                              "resnet-14", "pointwise", "strided", "alexnet-1", "batch-1"]
    assert conv["alexnet-1"] == bench.ConvShape(8, 3, 227, 227, 96, 11, 4, 0)
    assert conv["alexnet-1"].out_hw == (55, 55)
    assert conv["depthwise"].groups == conv["depthwise"].C
    assert conv["dilated"].out_hw == (56, 56)
    # im2col runs each geometry once: depthwise is resnet-56's geometry
    assert "depthwise" not in bench.family_shapes("im2col")
    assert "dilated" in bench.family_shapes("im2col")
    for subset in (bench.QUICK_SHAPES, bench.FLOAT64_SHAPES):
        for family, names in subset.items():
            assert set(names) <= set(bench.family_shapes(family))
    assert "tiny" not in {s.shape for s in bench.suite()}


def test_work_counts():
    fwd = bench.Case("conv2d", "tiny").work
    assert fwd == 2 * 2 * 4 * 8 * 8 * 4 * 3 * 3
    assert bench.Case("conv2d_backward", "tiny").work == 2 * fwd
    # im2col: read x, write the (N, C*k*k, L) columns, float32
    assert bench.Case("im2col", "tiny").work == (2 * 4 * 8 * 8 + 2 * 36 * 64) * 4
    # max-pool with indices also writes int64 indices
    y = 2 * 4 * 4 * 4
    assert bench.Case("max_pool2d_indices", "tiny").work == (2 * 4 * 8 * 8 + y) * 4 + 8 * y


def _outputs(out):
    items = out if isinstance(out, tuple) else (out,)
    return [t.numpy() if hasattr(t, "numpy") else np.asarray(t) for t in items]


@pytest.mark.parametrize("op", list(bench.OPS))
def test_contenders_compute_the_same(op, torch):
    case = bench.Case(op, "tiny")
    want = _outputs(case.call("reference")())
    for contender in ("fastconv", "torch"):
        got = _outputs(case.call(contender)())
        assert len(got) == len(want), contender
        for g, w in zip(got, want):
            assert g.shape == w.shape, contender
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4, err_msg=contender)


def test_bad_options_exit_with_usage():
    for argv in (["--ops", "nope"], ["--threads", "0"], ["--shapes", "nope"]):
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()):
            bench.main(argv)
        assert exc.value.code == 2


def test_importing_bench_does_not_import_torch(tmp_path):
    code = "import sys, fastconv.bench; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0


# --------------------------------------------------------------------------
# One suite: benchmarks/ (pytest-benchmark) and fastconv bench --list agree
# --------------------------------------------------------------------------

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def collected_benchmarks(tmp_path_factory):
    """(contender, case fields) of every benchmark pytest collects in
    benchmarks/, e.g. ("torch", ("conv2d", "cifar-mid", "float32")) or
    ("fastconv", ("resnet20", "train"))."""
    if not (BENCHMARKS / "conftest.py").is_file():
        pytest.skip(f"no pytest-benchmark suites at {BENCHMARKS} (tests run without the sources)")
    # From another folder, so that the checkout's uncompiled fastconv/ is not
    # on sys.path; pytest still finds the project's pyproject.toml.
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(BENCHMARKS)], cwd=tmp_path_factory.mktemp("collect"),
        capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    found = []
    for line in res.stdout.splitlines():
        if "::" in line:
            m = re.search(r"::test_\w+\[(\w+)-([^\]]+)\]$", line)
            assert m, line
            found.append((m.group(1), tuple(m.group(2).split("|"))))
    return found


def _listing(capsys, argv):
    assert bench.main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_benchmark_suites_time_the_listed_shapes(collected_benchmarks, capsys):
    # fastconv bench --list: "family (op, op, ...):" then "  name  shape  [tags]"
    listed, family = {}, None
    for line in _listing(capsys, ["--list"]):
        head = re.fullmatch(r"(\w+) \((.*)\):", line)
        if head:
            family = head.group(1)
            listed[family] = {"ops": head.group(2).split(", "), "shapes": {}}
        else:
            tags = re.search(r"\[(.*)\]$", line)
            listed[family]["shapes"][line.split()[0]] = (
                set(tags.group(1).split(", ")) if tags else set())
    extra = {n for shapes in bench_suite.EXTRA_SHAPES.values() for n in shapes}
    want = set()
    for family, entry in listed.items():
        for op in entry["ops"]:
            for name, tags in entry["shapes"].items():
                if name not in extra:               # listed, but named only
                    want.add((op, name, "float32"))
                if "float64" in tags:
                    want.add((op, name, "float64"))
    kernels = [(c, case) for c, case in collected_benchmarks if len(case) == 3]
    for contender in bench.CONTENDERS:
        assert {case for c, case in kernels if c == contender} == want, contender
    assert {c for c, _ in kernels} == set(bench.CONTENDERS)
    assert len(kernels) == len(want) * len(bench.CONTENDERS)       # each case once
    # and both are the module's suite
    specs = bench_suite.suite() + bench_suite.suite(
        dtype="float64", subset=bench_suite.FLOAT64_SHAPES)
    assert want == {tuple(s) for s in specs}
    assert list(listed) == list(bench_suite.FAMILIES)


def test_benchmark_suites_time_the_listed_models(collected_benchmarks, capsys):
    # fastconv bench models --list: "  name  label  input CxHxW, batch B, ..."
    names = [line.split()[0] for line in _listing(capsys, ["models", "--list"])]
    assert names == list(bench_suite.MODELS)
    want = {(name, mode) for name in names for mode in bench_suite.MODES}
    models = [(c, case) for c, case in collected_benchmarks if len(case) == 2]
    for contender in ("fastconv", "torch"):
        assert {case for c, case in models if c == contender} == want, contender
    assert len(models) == 2 * len(want)


# --------------------------------------------------------------------------
# fastconv bench --models (fastconv.bench_models)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models_run(tmp_path_factory):
    """The model benchmark on LeNet-style at batch 4: one round, 1 and 2 threads."""
    path = tmp_path_factory.mktemp("bench") / "models.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = bench.main(["--models", "--only", "lenet", "--batch-size", "4", "--quick",
                             "--repeat", "2", "--threads", "1,2", "--json", str(path)])
    return status, out.getvalue(), json.loads(path.read_text())


def test_models_tables(models_run):
    status, text, _ = models_run
    assert status == 0
    tables = _tables(text)
    assert [t[0] for t in tables] == ["### 1 thread, float32", "### 2 threads, float32",
                                      "### Thread scaling: images/s relative to 1 thread"]
    torch = HAVE_TORCH
    want = (["model", "input", "step", "fastconv ms"] + ["torch ms"] * torch
            + ["fastconv img/s"] + ["torch img/s", "vs torch", "noise"] * torch
            + ["fastconv MiB"] + ["torch MiB", "MiB ratio"] * torch)
    for _, header, rows in tables[:2]:
        assert header == want
        data = [dict(zip(header, r)) for r in rows]
        assert [(r["model"], r["input"], r["step"]) for r in data[:2]] == [
            ("LeNet-style", "4x1x28x28", "training"), ("LeNet-style", "4x1x28x28", "inference")]
        for r in data[:2]:
            for col in ("fastconv ms", "fastconv img/s") + ("torch ms", "vs torch") * torch:
                assert float(r[col]) > 0, (col, r[col])
            if torch:
                assert r["noise"].endswith("%")
                assert float(r["fastconv img/s"]) == pytest.approx(
                    4e3 / float(r["fastconv ms"]), rel=0.01)
        train, infer = data[0], data[1]
        assert float(train["fastconv MiB"]) > 0 and infer["fastconv MiB"] == ""
        if torch:
            assert float(train["torch MiB"]) > 0
            assert [r["model"] for r in data[2:]] == ["geomean", "geomean"]
    assert "PARITY FAILURE" not in text


def test_models_json(models_run):
    _, _, data = models_run
    sides = {"fastconv", "torch"} if HAVE_TORCH else {"fastconv"}
    assert [t["threads"] for t in data["tables"]] == [1, 2]
    for table in data["tables"]:
        assert [(r["model"], r["mode"], r["batch"]) for r in table["rows"]] == [
            ("lenet", "train", 4), ("lenet", "infer", 4)]
        for row in table["rows"]:
            assert set(row["samples_ms"]) == sides
            assert all(len(v) == 2 for v in row["samples_ms"].values())
            if HAVE_TORCH:
                assert row["parity"] is True
                assert row["first_loss"]["fastconv"] == pytest.approx(
                    row["first_loss"]["torch"], rel=1e-4)
        memory = table["rows"][0]["memory"]
        assert set(memory) == sides
        for m in memory.values():
            assert m["method"] in ("VmHWM", "ru_maxrss") and m["peak_bytes"] > 0
    assert {(m["threads"], m["contender"]) for m in data["memory"]} == {
        (t, c) for t in (1, 2) for c in sides}
    if HAVE_TORCH:       # PyTorch runs on its own OpenMP runtime
        assert "torch" in (data["meta"]["torch_libgomp"] or "torch")


def test_models_parity_failure_is_flagged():
    from fastconv import bench_models

    samples = {"fastconv": [0.010, 0.011], "torch": [0.020, 0.022]}
    good = bench_models._row("lenet", "train", 4, samples, {"fastconv": 2.3, "torch": 2.3})
    bad = bench_models._row("lenet", "train", 4, samples, {"fastconv": 2.3, "torch": 2.5})
    assert good["parity"] is True and bad["parity"] is False
    assert good["vs_torch"] == pytest.approx(2.0, rel=0.05)
    table = {"threads": 1, "dtype": "float32", "rows": [bad], "geomean": {"train": 2.0}}
    assert "(!)" in bench_models.format_table(table)


def test_models_bad_options_and_list(capsys):
    for argv in (["--models", "--only", "nope"], ["models", "--modes", "fit"],
                 ["--models", "--batch-size", "1"], ["--models", "--threads", "0"]):
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()):
            bench.main(argv)
        assert exc.value.code == 2
    assert bench.main(["models", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "resnet20" in listing and "272,474 parameters" in listing


def test_importing_model_modules_does_not_import_torch(tmp_path):
    code = ("import sys, fastconv.bench_models, fastconv.torch_models; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0
