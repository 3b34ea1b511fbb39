"""fastconv.datasets: the IDX reader, the MNIST loader, the digits split."""

import gzip
import importlib
import os
import struct
import sys

import numpy as np
import pytest

from fastconv import datasets

# IDX type codes, as in the format's description.
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array):
    """The IDX encoding of ``array``: magic, big-endian dims, big-endian data."""
    array = np.asarray(array)
    code = IDX_CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False):
    data = idx_bytes(array)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return path


def require(name):
    """Import an optional demo dependency: skip without it, fail in CI."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        msg = f"{name} is needed (pip install 'fastconv[demo]'): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


# ---------------------------------------------------------------- read_idx


@pytest.mark.parametrize("dtype", list(IDX_CODES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_read_idx_round_trip(tmp_path, rng, dtype, gz):
    if np.dtype(dtype).kind == "f":
        expected = rng.standard_normal((3, 4, 5)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        expected = rng.integers(info.min, info.max, (3, 4, 5), endpoint=True).astype(dtype)
    got = datasets.read_idx(write_idx(tmp_path / "a.idx", expected, gz=gz))
    assert got.dtype == np.dtype(dtype)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 1, 3, 4), (0, 28, 28)])
def test_read_idx_shapes(tmp_path, shape):
    expected = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    got = datasets.read_idx(write_idx(tmp_path / "a", expected))
    assert got.shape == shape
    np.testing.assert_array_equal(got, expected)


def test_read_idx_multibyte_values_are_big_endian(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(datasets.read_idx(path), [0x0102, -2])


def test_read_idx_recognises_gzip_by_content(tmp_path):
    """A gzipped file is read whatever its name, and a plain one named .gz too."""
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    gz_no_suffix = write_idx(tmp_path / "images", images, gz=True)
    plain_gz_suffix = write_idx(tmp_path / "images2.gz", images, gz=False)
    np.testing.assert_array_equal(datasets.read_idx(gz_no_suffix), images)
    np.testing.assert_array_equal(datasets.read_idx(plain_gz_suffix), images)


def good_labels():
    return idx_bytes(np.arange(10, dtype=np.uint8))


MALFORMED = {
    "empty": (b"", "shorter than the 4-byte magic number"),
    "short magic": (b"\x00\x00\x08", "shorter than the 4-byte magic number"),
    "nonzero magic": (b"\x01\x00\x08\x01" + b"\x00" * 8, "does not start with two zero bytes"),
    "text file": (b"hello world\n", "does not start with two zero bytes"),
    "unknown type code": (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX type code 0x07"),
    "zero dimensions": (b"\x00\x00\x08\x00", "0 dimensions"),
    "truncated header": (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", "truncated IDX header"),
    "truncated data": (good_labels()[:-3], "truncated IDX data"),
    "trailing bytes": (good_labels() + b"\x00", "trailing bytes"),
    "truncated gzip": (gzip.compress(good_labels())[:-6], "corrupt or truncated gzip"),
    "corrupt gzip": (b"\x1f\x8b" + b"\x00" * 30, "corrupt or truncated gzip"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_read_idx_malformed_raises_value_error(tmp_path, name):
    data, message = MALFORMED[name]
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_data_names_the_sizes(tmp_path):
    images = np.zeros((10, 28, 28), np.uint8)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(images)[:1000])
    with pytest.raises(ValueError, match=r"shape \(10, 28, 28\).*7840 bytes.*984"):
        datasets.read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "nope")


# ---------------------------------------------------------------- MNIST


def fake_mnist(directory, n_train=12, n_test=5, gz=False, size=28, seed=0):
    """Write a tiny MNIST look-alike: uint8 images and labels in IDX files."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "test_labels": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    os.makedirs(directory, exist_ok=True)
    for role, array in arrays.items():
        name = datasets.MNIST_FILES[role] + (".gz" if gz else "")
        write_idx(os.path.join(directory, name), array, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_load_mnist(tmp_path, gz):
    arrays = fake_mnist(tmp_path, gz=gz)
    split = datasets.load_mnist(tmp_path)
    assert isinstance(split, datasets.DataSplit)
    assert split.x_train.shape == (12, 1, 28, 28)
    assert split.x_test.shape == (5, 1, 28, 28)
    assert split.x_train.dtype == split.x_test.dtype == np.float32
    assert split.y_train.dtype == split.y_test.dtype == np.int64
    np.testing.assert_allclose(split.x_train[:, 0] * 255, arrays["train_images"], atol=1e-4)
    np.testing.assert_allclose(split.x_test[:, 0] * 255, arrays["test_images"], atol=1e-4)
    np.testing.assert_array_equal(split.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(split.y_test, arrays["test_labels"])
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0


def test_load_mnist_accepts_dotted_names(tmp_path):
    """Some mirrors name the files train-images.idx3-ubyte."""
    fake_mnist(tmp_path)
    for name in datasets.MNIST_FILES.values():
        os.rename(tmp_path / name, tmp_path / name.replace("-idx", ".idx"))
    assert datasets.load_mnist(str(tmp_path)).x_train.shape == (12, 1, 28, 28)


def test_load_mnist_missing_file_is_named(tmp_path):
    fake_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path)


def test_load_mnist_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load_mnist(tmp_path / "nowhere")


def test_load_mnist_count_mismatch(tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8))
    with pytest.raises(ValueError, match="12 images but .* 11 labels"):
        datasets.load_mnist(tmp_path)


def test_load_mnist_wrong_kind_of_file(tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((12, 784), np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, H, W\)"):
        datasets.load_mnist(tmp_path)


def test_load_mnist_bad_labels(tmp_path):
    fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(5, 10, np.uint8))
    with pytest.raises(ValueError, match="digits 0..9"):
        datasets.load_mnist(tmp_path)


def test_load_mnist_truncated_file(tmp_path):
    fake_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        datasets.load_mnist(tmp_path)


# ---------------------------------------------------------------- digits


def test_load_digits_split():
    require("sklearn")
    split = datasets.load_digits_split(seed=0, test_fraction=0.2)
    assert split.x_train.shape == (1437, 1, 8, 8)
    assert split.x_test.shape == (360, 1, 8, 8)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    # Stratified: every class keeps its share (about 36 of ~180 per class).
    counts = np.bincount(split.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    # No image is in both parts.
    train = {row.tobytes() for row in split.x_train.reshape(len(split.x_train), -1)}
    both = sum(row.tobytes() in train for row in split.x_test.reshape(360, -1))
    assert both <= 2  # the digits data set itself holds a few duplicate images


def test_load_digits_split_is_seeded():
    require("sklearn")
    a = datasets.load_digits_split(seed=3)
    b = datasets.load_digits_split(seed=3)
    c = datasets.load_digits_split(seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.y_test, c.y_test)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_load_digits_split_bad_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.load_digits_split(test_fraction=fraction)


def test_load_digits_split_without_sklearn_says_how_to_install(monkeypatch):
    for name in list(sys.modules):
        if name == "sklearn" or name.startswith("sklearn."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "fastconv\[demo\]"'):
        datasets.load_digits_split()


# ---------------------------------------------------------------- standardize


def test_standardize_uses_training_statistics(rng):
    x_train = rng.uniform(0, 1, (50, 1, 4, 4)).astype(np.float32)
    x_test = rng.uniform(0.5, 1, (20, 1, 4, 4)).astype(np.float32)
    y = np.zeros(50, np.int64)
    split, mean, std = datasets.standardize(
        datasets.DataSplit(x_train, y, x_test, y[:20]))
    assert mean == pytest.approx(x_train.mean(dtype=np.float64))
    assert std == pytest.approx(x_train.std(dtype=np.float64))
    assert split.x_train.dtype == split.x_test.dtype == np.float32
    assert abs(split.x_train.mean()) < 1e-5
    assert split.x_train.std() == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(split.x_test, (x_test - mean) / std, rtol=1e-5, atol=1e-5)
    assert split.y_train is y
