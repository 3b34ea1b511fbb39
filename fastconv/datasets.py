"""Small image data sets for the demo: scikit-learn's digits and MNIST files.

Two loaders return the same thing, a :class:`DataSplit` of float32 images in
NCHW layout with pixel values in [0, 1] and int64 class labels:

- :func:`load_digits_split` uses the 1797 8x8 handwritten digits bundled with
  scikit-learn (no download) and makes a seeded, stratified test split;
- :func:`load_mnist` reads the standard MNIST files (``train-images-idx3-ubyte``
  and friends, optionally gzipped) from a directory the user downloaded.

:func:`read_idx` reads any IDX file (the format MNIST is distributed in), and
:func:`standardize` shifts and scales images by the training set's mean and
standard deviation.
"""
import gzip
import os
from typing import NamedTuple

import numpy as np

__all__ = [
    "DataSplit", "read_idx", "load_mnist", "load_digits_split", "standardize",
    "MNIST_FILES",
]

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: The four MNIST files by role; each may also be found gzipped (``.gz``) or
#: with a dot instead of the last dash (``train-images.idx3-ubyte``).
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_DEMO_EXTRA_HINT = 'install the demo extras with: pip install "fastconv[demo]"'


class DataSplit(NamedTuple):
    """A train/test split of images and labels.

    Attributes
    ----------
    x_train : ndarray of shape (N_train, 1, H, W), dtype float32
    y_train : ndarray of shape (N_train,), dtype int64
    x_test : ndarray of shape (N_test, 1, H, W), dtype float32
    y_test : ndarray of shape (N_test,), dtype int64
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def read_idx(path):
    """Read an IDX file (the MNIST format) into a NumPy array.

    The file starts with a 4-byte magic number: two zero bytes, a type code
    (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E
    float64) and the number of dimensions; then one big-endian uint32 per
    dimension; then the values, big-endian, in C order.  A gzip-compressed
    file is recognised by its content, whatever its name.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    ndarray
        The values with the file's shape, in the native byte order.

    Raises
    ------
    ValueError
        If the file is not valid IDX: a bad magic number, an unknown type
        code, a truncated header or body, trailing bytes, or a corrupt gzip
        stream.  The message names the file.
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> from fastconv.datasets import read_idx
    >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> images.shape, images.dtype                        # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    if len(data) < 4:
        raise ValueError(
            f"{path}: not an IDX file: {len(data)} bytes, shorter than the "
            f"4-byte magic number")
    zero, code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00":
        raise ValueError(
            f"{path}: not an IDX file: magic number {data[:4].hex()} does not "
            f"start with two zero bytes")
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(
            f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} "
            f"bytes, the file has {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "trailing bytes in"
        raise ValueError(
            f"{path}: {what} IDX data: shape {shape} of {dtype.name} needs "
            f"{expected} bytes after the header, the file has {got}")
    values = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _find_mnist_file(directory, name):
    """Path of one MNIST file in ``directory``, trying the usual spellings."""
    dotted = name.replace("-idx", ".idx")  # train-images.idx3-ubyte
    candidates = [name, name + ".gz", dotted, dotted + ".gz"]
    for candidate in candidates:
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"MNIST file {name} (or {name}.gz) not found in {directory!r}; the "
        f"directory must hold {', '.join(MNIST_FILES.values())} (each "
        f"optionally gzipped), as downloaded from an MNIST mirror")


def _mnist_pair(directory, images_name, labels_name):
    """Read one images/labels pair and check that they belong together."""
    images_path = _find_mnist_file(directory, images_name)
    labels_path = _find_mnist_file(directory, labels_name)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (N, H, W), got "
            f"{images.dtype} of shape {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"{labels_path}: expected uint8 labels of shape (N,), got "
            f"{labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"{labels_path}: labels must be digits 0..9, found {labels.max()}")
    x = (images[:, None, :, :] / np.float32(255)).astype(np.float32)
    return x, labels.astype(np.int64)


def load_mnist(directory):
    """Load MNIST from the four standard IDX files in a directory.

    Parameters
    ----------
    directory : str or os.PathLike
        A directory holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``).

    Returns
    -------
    DataSplit
        The official 60000/10000 train/test split: images as float32
        (N, 1, 28, 28) with pixel values scaled from 0..255 to [0, 1],
        labels as int64.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file is not valid IDX, or images and labels do not match.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"MNIST directory {directory!r} does not exist")
    x_train, y_train = _mnist_pair(
        directory, MNIST_FILES["train_images"], MNIST_FILES["train_labels"])
    x_test, y_test = _mnist_pair(
        directory, MNIST_FILES["test_images"], MNIST_FILES["test_labels"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"MNIST train images are {x_train.shape[2:]} but test images are "
            f"{x_test.shape[2:]}")
    return DataSplit(x_train, y_train, x_test, y_test)


def load_digits_split(seed=0, test_fraction=0.2):
    """Load scikit-learn's handwritten digits with a stratified test split.

    The 1797 8x8 images (10 classes) ship with scikit-learn, so nothing is
    downloaded.

    Parameters
    ----------
    seed : int, default 0
        Seed of the shuffle that picks the test images.
    test_fraction : float, default 0.2
        Share of the images held out for testing, in (0, 1); every class is
        represented in the same proportion in both parts.

    Returns
    -------
    DataSplit
        Images as float32 (N, 1, 8, 8) with pixel values scaled from 0..16 to
        [0, 1], labels as int64.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.
    ValueError
        If ``test_fraction`` is not in (0, 1).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise ImportError(
            f"the digits data set comes with scikit-learn, which is not "
            f"installed ({exc}); {_DEMO_EXTRA_HINT}") from exc
    digits = load_digits()
    x = (digits.images[:, None, :, :] / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed)
    return DataSplit(x_train, y_train, x_test, y_test)


def standardize(split):
    """Shift and scale all images by the training images' mean and std.

    One scalar mean and standard deviation, computed on ``split.x_train``
    only, so no information from the test images leaks into training.

    Parameters
    ----------
    split : DataSplit

    Returns
    -------
    DataSplit
        New arrays (float32); labels unchanged.
    mean, std : float
        The statistics used.
    """
    mean = float(split.x_train.mean(dtype=np.float64))
    std = float(split.x_train.std(dtype=np.float64)) or 1.0

    def scale(x):
        return ((x - np.float32(mean)) / np.float32(std)).astype(np.float32)

    return (DataSplit(scale(split.x_train), split.y_train,
                      scale(split.x_test), split.y_test), mean, std)
