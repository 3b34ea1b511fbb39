"""fastconv.demo: a short seeded training run must learn, plots are written.

The training test is the end-to-end check of the layers, the loss and the
optimiser: a broken forward or backward pass cannot reach the accuracy
threshold.  It needs scikit-learn, matplotlib and tqdm (the ``demo`` extra):
without them these tests are skipped, except in CI, where they fail.
"""

import gzip
import importlib
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from fastconv import datasets, demo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def require(*names):
    """Import the optional demo dependencies: skip without them, fail in CI."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # pragma: no cover - depends on the machine
            msg = f"{name} is needed (pip install 'fastconv[demo]'): {exc}"
            if os.environ.get("CI") == "true":
                pytest.fail(msg)
            pytest.skip(msg)


@pytest.fixture
def demo_deps():
    require("sklearn", "matplotlib", "tqdm", "threadpoolctl")


def write_fake_mnist(directory, n_train, n_test):
    """Random uint8 28x28 images and labels in gzipped IDX files."""
    rng = np.random.default_rng(0)
    os.makedirs(directory)
    for role, shape in (("train_images", (n_train, 28, 28)), ("train_labels", (n_train,)),
                        ("test_images", (n_test, 28, 28)), ("test_labels", (n_test,))):
        high = 10 if role.endswith("labels") else 256
        array = rng.integers(0, high, shape, dtype=np.uint8)
        header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
        path = os.path.join(directory, datasets.MNIST_FILES[role] + ".gz")
        with open(path, "wb") as f:
            f.write(gzip.compress(header + array.tobytes()))


def run_demo(argv, capsys):
    """Run the demo in this process; return (DemoResult, printed report)."""
    args = demo.make_parser().parse_args(argv)
    result = demo.run(args)
    return result, capsys.readouterr().out


def assert_png(path):
    assert os.path.isfile(path), path
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > 1000, path


def test_short_training_run_learns_the_digits(tmp_path, capsys, demo_deps,
                                              restore_threads):
    # 5 epochs at lr 0.03 give 96-98% for seeds 0..9; the full default run
    # (20 epochs) gives >= 97.5%.  A wrong gradient anywhere stays far below.
    out = tmp_path / "plots"
    result, report = run_demo(
        ["--epochs", "5", "--lr", "0.03", "--seed", "0", "--threads", "1",
         "--timed-batches", "2", "--out", str(out)], capsys)
    assert result.test_accuracy >= 0.95, report
    history = result.history
    assert len(history.train_loss) == len(history.test_acc) == 5
    assert history.train_loss[-1] < history.train_loss[0] / 5
    assert history.train_images == 5 * 1437
    # The report states the accuracy, the speed of both backends and the files.
    assert f"Test accuracy: {result.test_accuracy:.2%}" in report
    assert "1 thread" in report and "float32" in report
    for word in ("images/s", "training", "inference", "fastconv", "reference", "speed-up"):
        assert word in report
    for backend in ("fastconv", "reference"):
        speed = result.speed[backend]
        assert speed["train"] > 0 and speed["infer"] > 0
    assert result.speed["workload"]["train_images"] == 2 * 32
    assert result.speed["workload"]["infer_images"] == 1437
    assert set(result.files) == {"curves", "filters", "predictions"}
    for path in result.files.values():
        assert os.path.dirname(path) == str(out)
        assert_png(path)
        assert path in report


def test_reference_backend_trains_the_same(tmp_path, capsys, demo_deps,
                                           restore_threads):
    """One epoch on the NumPy twins matches one epoch on the compiled kernels."""
    common = ["--epochs", "1", "--seed", "1", "--threads", "1", "--timed-batches", "0"]
    ref, report = run_demo(common + ["--backend", "reference", "--out", str(tmp_path / "r")],
                           capsys)
    fast, _ = run_demo(common + ["--out", str(tmp_path / "f")], capsys)
    assert "reference (pure NumPy" in report
    assert ref.speed == {}  # --timed-batches 0 skips the comparison
    # Same data, initial weights and batch order: the two runs differ only by
    # float32 rounding, accumulated over 45 SGD steps.
    np.testing.assert_allclose(ref.history.train_loss, fast.history.train_loss, rtol=1e-3)
    np.testing.assert_allclose(ref.history.test_loss, fast.history.test_loss, rtol=1e-2)
    for path in ref.files.values():
        assert_png(path)


def test_adam_option(tmp_path, capsys, demo_deps, restore_threads):
    result, report = run_demo(
        ["--optimizer", "adam", "--epochs", "3", "--threads", "1", "--timed-batches", "0",
         "--out", str(tmp_path)], capsys)
    assert "Adam" in report and "lr 0.002" in report
    assert result.test_accuracy >= 0.85


def test_build_model_shapes():
    model = demo.build_model((1, 28, 28), 10, rng=0)
    assert model(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)
    assert model[7].params["weight"].shape == (64, 32 * 7 * 7)
    assert "CONV(1->16, 3x3, pad 1)" in demo.describe_model(model)
    model = demo.build_model((1, 8, 8), 10, rng=0)
    assert sum(p.size for p in model.params.values()) == 13706
    assert all(p.dtype == np.float32 for p in model.params.values())


def test_mnist_from_idx_files(tmp_path, capsys, restore_threads):
    """--data mnist reads IDX files (here a tiny random stand-in)."""
    require("matplotlib", "tqdm", "threadpoolctl")
    write_fake_mnist(tmp_path / "mnist", n_train=64, n_test=16)
    status = demo.main(["--data", "mnist", "--data-dir", str(tmp_path / "mnist"),
                        "--epochs", "1", "--batch-size", "16", "--threads", "1",
                        "--timed-batches", "1", "--out", str(tmp_path / "out")])
    report = capsys.readouterr().out
    assert status == 0
    assert "MNIST from" in report and "64 training / 16 test images, 1x28x28" in report
    assert "Test accuracy" in report
    assert_png(tmp_path / "out" / "filters.png")


def test_mnist_errors_are_one_line(tmp_path, capsys):
    require("matplotlib", "tqdm", "threadpoolctl")
    with pytest.raises(SystemExit) as info:
        demo.main(["--data", "mnist"])
    assert info.value.code == 2
    assert "--data mnist needs --data-dir" in capsys.readouterr().err
    status = demo.main(["--data", "mnist", "--data-dir", str(tmp_path)])
    assert status == 1
    err = capsys.readouterr().err
    assert "error:" in err and "train-images-idx3-ubyte" in err
    assert "Traceback" not in err


def test_missing_extras_are_reported(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes "import tqdm" fail
    status = demo.main(["--epochs", "1"])
    assert status == 2
    err = capsys.readouterr().err
    assert "tqdm" in err and 'pip install "fastconv[demo]"' in err


def test_plots_on_their_own(tmp_path, demo_deps):
    history = demo.History([2.0, 1.0], [0.5, 0.8], [1.5, 1.1], [0.6, 0.7])
    demo.plot_curves(history, tmp_path / "c.png", title="t")
    demo.plot_filters(np.random.default_rng(0).standard_normal((6, 1, 5, 5)),
                      tmp_path / "f.png")
    images = np.zeros((3, 1, 8, 8), np.float32)
    demo.plot_predictions(images, np.array([1, 2, 3]), np.array([1, 0, 3]),
                          tmp_path / "p.png")
    for name in ("c.png", "f.png", "p.png"):
        assert_png(tmp_path / name)


def test_python_m_fastconv_demo(tmp_path, demo_deps):
    """The command a user types, in a fresh interpreter."""
    out = tmp_path / "demo-out"
    proc = subprocess.run(
        [sys.executable, "-m", "fastconv", "demo", "--epochs", "1", "--threads", "1",
         "--timed-batches", "2", "--out", str(out)],
        cwd=tmp_path,  # not the checkout: import the installed package
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Test accuracy: " in text
    assert "1 thread" in text and "float32" in text
    lines = text.splitlines()
    train = [line for line in lines if line.strip().startswith("training ") and "x " in line]
    infer = [line for line in lines if line.strip().startswith("inference ")]
    assert train and infer, text
    assert "Speed in images/s" in text and "speed-up" in text
    assert "epoch 1/1" in text  # stdout is not a terminal: one line per epoch
    for name in ("curves.png", "filters.png", "predictions.png"):
        assert_png(out / name)
        assert str(out / name) in text


def test_default_run_flags():
    """The defaults the README documents."""
    args = demo.make_parser().parse_args([])
    assert (args.data, args.backend, args.optimizer, args.out) == (
        "digits", "fastconv", "sgd", "fastconv-demo")
    assert demo.DEFAULTS["digits"] == (20, 32) and demo.DEFAULT_LR["sgd"] == 0.02


def test_digits_split_matches_the_demo(demo_deps):
    split, lines = demo.load_data(demo.make_parser().parse_args(["--seed", "2"]))
    raw = datasets.load_digits_split(seed=2)
    np.testing.assert_array_equal(split.y_test, raw.y_test)
    assert "1437 training / 360 test images, 1x8x8, 10 classes" in lines[0]


def test_speed_table_compares_with_torch(tmp_path, capsys, demo_deps, restore_threads,
                                         torch):
    """With torch installed, the same network in torch.nn is timed too."""
    result, report = run_demo(["--epochs", "1", "--threads", "1", "--timed-batches", "2",
                               "--out", str(tmp_path)], capsys)
    lines = report.splitlines()
    at = next(i for i, line in enumerate(lines) if "speed-up" in line)
    assert lines[at].split() == ["fastconv", "reference", "speed-up", "torch", "vs", "torch"]
    for label, row in zip(("training", "inference"), lines[at + 1:at + 3]):
        cells = row.split()
        assert cells[0] == label and cells[5].endswith("x") and float(cells[5][:-1]) > 0, row
    assert result.speed["torch"]["train"] > 0 and result.speed["torch"]["infer"] > 0
    assert result.speed["workload"]["torch_parity"] is True
    assert f"PyTorch {torch.__version__}" in report and "WARNING" not in report


def test_speed_table_says_when_torch_is_missing(tmp_path, capsys, demo_deps,
                                                restore_threads, monkeypatch):
    monkeypatch.setattr(demo, "_torch_available", lambda: False)
    result, report = run_demo(["--epochs", "1", "--threads", "1", "--timed-batches", "1",
                               "--out", str(tmp_path / "a")], capsys)
    assert "PyTorch: not installed" in report and "vs torch" not in report
    assert "torch" not in result.speed
    monkeypatch.undo()
    result, report = run_demo(["--epochs", "1", "--threads", "1", "--timed-batches", "1",
                               "--no-torch", "--out", str(tmp_path / "b")], capsys)
    assert "PyTorch: left out (--no-torch)" in report and "torch" not in result.speed
