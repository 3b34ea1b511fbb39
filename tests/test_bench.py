"""fastconv.bench, the benchmark harness: its output, not its timings.

One run of ``fastconv bench`` on the tiny shapes (one per op family, one
round, 1 and 2 threads) checks the tables' structure and that every numeric
cell parses; the other tests check the shape suite and that the contenders of
each benchmark compute the same thing, so that the comparison is fair.
"""
import contextlib
import importlib.util
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from fastconv import bench

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
