"""The benchmark suites, defined once: which shapes and models are timed.

Every benchmark of fastconv reads its cases from here, so that the figures of
``fastconv bench`` (README.md, benchmarks/RESULTS.md) and of the
pytest-benchmark suites in ``benchmarks/`` in the sources are taken on the
same shapes:

* ``fastconv bench`` (:mod:`fastconv.bench`) times every op of
  :data:`OPS` on the shapes of its family (:func:`suite`); ``--list``
  prints them, ``--quick`` takes :data:`QUICK_SHAPES`.
* ``fastconv bench --models`` (:mod:`fastconv.bench_models`) times the
  networks of :data:`MODELS`; ``--quick`` takes :data:`QUICK_MODELS`.
* ``benchmarks/test_bench_conv2d.py``, ``test_bench_im2col.py`` and
  ``test_bench_pool.py`` (pytest-benchmark) parametrize over
  :func:`suite` in float32 and over :data:`FLOAT64_SHAPES` in float64;
  ``benchmarks/test_bench_models.py`` over :data:`MODELS` and
  :data:`MODES`.  ``tests/test_bench.py`` checks that they enumerate what
  ``fastconv bench --list`` and ``fastconv bench models --list`` print.
* Scripts in ``benchmarks/`` that measure what ``fastconv bench`` cannot
  take their shapes from here where they time suite shapes
  (``conv3x3.py``: the 3x3 stride-1 layers of :data:`CONV_SHAPES` and of
  ResNet-20; ``bench_dask.py``: ResNet-20 of :data:`MODELS`).

The suites and what each is for:

:data:`CONV_SHAPES`
    The convolution layers of the design notes' shape suite (CIFAR's first
    and a middle layer, ResNet's 3x3 layers at 56, 28 and 14 pixels, a 1x1
    and a stride-2 layer, AlexNet's first layer, a batch of one), timed
    forward and backward against the machine's sgemm; plus a depthwise
    layer and a dilated one (the direct kernel and dilated columns).  The
    im2col family runs on their geometries, each once.
:data:`POOL_SHAPES`
    The design notes' three pooling layers, plus an overlapping 3x3 pool
    on a 1000x1000 plane (one image, far larger than the caches): the
    memory-bound kernels, against the machine's copy bandwidth.
:data:`EXTRA_SHAPES`
    ``tiny``: not in the suite; for tests and for warming up a process.
:data:`QUICK_SHAPES`, :data:`FLOAT64_SHAPES`
    Subsets: ``fastconv bench --quick`` (a smoke run of under a minute);
    the shapes the pytest-benchmark suites also time in float64 (other
    micro-kernels in fastconv; PyTorch's float64 never uses oneDNN).
    ``fastconv bench --list`` tags both.
:data:`MODELS`
    The model suite of the design notes: ResNet-20 (CIFAR, batch 64), a
    VGG-style, a LeNet-style and a MobileNet-style net, each as a
    :mod:`fastconv.models` function and its :mod:`fastconv.torch_models`
    twin, with its input and batch; timed as a training step and as
    inference (:data:`MODES`), the speed users feel.

Nothing here imports torch; at module import, nothing beyond NumPy.
"""

import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = [
    "ConvShape", "PoolShape", "CONV_SHAPES", "POOL_SHAPES", "EXTRA_SHAPES",
    "OPS", "FAMILIES", "QUICK_SHAPES", "FLOAT64_SHAPES", "family_shapes",
    "Spec", "suite", "ModelBench", "MODELS", "QUICK_MODELS", "MODES",
]


# --------------------------------------------------------------------------
# The kernel suite: shapes and ops
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvShape:
    """A convolution layer: input (N, C, H, W), F filters of k x k."""

    N: int
    C: int
    H: int
    W: int
    F: int
    k: int
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def out_hw(self):
        """Output height and width."""
        span = self.dilation * (self.k - 1) + 1
        return ((self.H + 2 * self.pad - span) // self.stride + 1,
                (self.W + 2 * self.pad - span) // self.stride + 1)

    def geometry(self):
        """The fields that define im2col's work (F and groups play no part)."""
        return (self.N, self.C, self.H, self.W, self.k, self.stride, self.pad,
                self.dilation)

    def __str__(self):
        s = (f"{self.N},{self.C},{self.H},{self.W} -> {self.F}, {self.k}x{self.k}, "
             f"s{self.stride}, p{self.pad}")
        if self.dilation != 1:
            s += f", d{self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s


@dataclass(frozen=True)
class PoolShape:
    """A pooling layer: input (N, C, H, W), k x k windows, no padding."""

    N: int
    C: int
    H: int
    W: int
    k: int
    stride: int

    @property
    def out_hw(self):
        """Output height and width."""
        return ((self.H - self.k) // self.stride + 1,
                (self.W - self.k) // self.stride + 1)

    def __str__(self):
        return f"{self.N},{self.C},{self.H},{self.W}, {self.k}x{self.k}, s{self.stride}"


#: Convolution shapes: the design notes' nine (CIFAR, ResNet and AlexNet layers,
#: 1x1, stride 2, batch 1), then a depthwise and a dilated one.
CONV_SHAPES = {
    "cifar-first": ConvShape(64, 3, 32, 32, 32, 3, 1, 1),
    "cifar-mid": ConvShape(64, 32, 16, 16, 64, 3, 1, 1),
    "resnet-56": ConvShape(8, 64, 56, 56, 64, 3, 1, 1),
    "resnet-28": ConvShape(8, 128, 28, 28, 128, 3, 1, 1),
    "resnet-14": ConvShape(8, 256, 14, 14, 256, 3, 1, 1),
    "pointwise": ConvShape(16, 128, 28, 28, 128, 1, 1, 0),
    "strided": ConvShape(8, 64, 56, 56, 128, 3, 2, 1),
    "alexnet-1": ConvShape(8, 3, 227, 227, 96, 11, 4, 0),
    "batch-1": ConvShape(1, 64, 56, 56, 64, 3, 1, 1),
    "depthwise": ConvShape(8, 64, 56, 56, 64, 3, 1, 1, groups=64),
    "dilated": ConvShape(8, 64, 56, 56, 64, 3, 1, 2, dilation=2),
}

#: Pooling shapes: the design notes' three layers plus an overlapping pool on a
#: large plane.
POOL_SHAPES = {
    "32x64x56x56-k2s2": PoolShape(32, 64, 56, 56, 2, 2),
    "64x32x32x32-k2s2": PoolShape(64, 32, 32, 32, 2, 2),
    "8x96x55x55-k3s2": PoolShape(8, 96, 55, 55, 3, 2),
    "1x16x1000x1000-k3s2": PoolShape(1, 16, 1000, 1000, 3, 2),
}

#: Shapes outside the suite, selected only by name (``--shapes tiny``): for
#: tests and for warming up a process.
EXTRA_SHAPES = {
    "conv2d": {"tiny": ConvShape(2, 4, 8, 8, 4, 3, 1, 1)},
    "pool": {"tiny": PoolShape(2, 4, 8, 8, 2, 2)},
}

#: op -> family.  A family name on the command line selects all its ops.
OPS = {
    "im2col": "im2col",
    "col2im": "im2col",
    "conv2d": "conv2d",
    "conv2d_backward": "conv2d",
    "max_pool2d": "pool",
    "max_pool2d_indices": "pool",
    "max_pool2d_backward": "pool",
    "avg_pool2d": "pool",
    "avg_pool2d_backward": "pool",
}
FAMILIES = ("im2col", "conv2d", "pool")

#: family -> shape names: the ``--quick`` subset, and the shapes the
#: pytest-benchmark suites time in float64 too.
QUICK_SHAPES = {"im2col": ["cifar-mid"], "conv2d": ["cifar-mid", "resnet-28"],
                "pool": ["64x32x32x32-k2s2"]}
FLOAT64_SHAPES = {"im2col": ["cifar-mid"],
                  "conv2d": ["cifar-mid", "resnet-28", "depthwise"],
                  "pool": ["64x32x32x32-k2s2", "8x96x55x55-k3s2"]}


def family_shapes(family, extra=False):
    """The shapes of one op family, by name.

    Parameters
    ----------
    family : {"im2col", "conv2d", "pool"}
    extra : bool
        Include :data:`EXTRA_SHAPES` (``"tiny"``).

    Returns
    -------
    dict
        name -> :class:`ConvShape` or :class:`PoolShape`.  The im2col family
        uses the convolution shapes' geometry, each geometry once.
    """
    if family == "pool":
        shapes = dict(POOL_SHAPES)
        if extra:
            shapes.update(EXTRA_SHAPES["pool"])
        return shapes
    shapes = dict(CONV_SHAPES)
    if extra:
        shapes.update(EXTRA_SHAPES["conv2d"])
    if family == "im2col":
        seen, unique = set(), {}
        for name, s in shapes.items():
            if s.geometry() not in seen:
                seen.add(s.geometry())
                unique[name] = s
        shapes = unique
    return shapes


class Spec(NamedTuple):
    """One benchmark: an op on a named shape in a dtype."""

    op: str
    shape: str
    dtype: str

    def __str__(self):
        return f"{self.op}|{self.shape}|{self.dtype}"


def suite(ops=None, dtype="float32", subset=None, names=None):
    """The benchmarks to run, in a stable order.

    Parameters
    ----------
    ops : iterable of str, optional
        Op or family names (a family selects all its ops); default all.
    dtype : str
    subset : dict, optional
        family -> shape names (:data:`QUICK_SHAPES`, :data:`FLOAT64_SHAPES`).
    names : iterable of str, optional
        Shape names; any shape of the selected families, including
        :data:`EXTRA_SHAPES`.  Overrides ``subset``.

    Returns
    -------
    list of Spec
    """
    chosen = []
    for token in ops or FAMILIES:
        for op, fam in OPS.items():
            if (token == fam or token == op) and op not in chosen:
                chosen.append(op)
    specs = []
    for op in chosen:
        family = OPS[op]
        shapes = family_shapes(family, extra=names is not None)
        if names is not None:
            keep = [n for n in shapes if n in names]
        elif subset is not None:
            keep = [n for n in shapes if n in subset.get(family, ())]
        else:
            keep = list(shapes)
        specs += [Spec(op, n, np.dtype(dtype).name) for n in keep]
    return specs

# --------------------------------------------------------------------------
# The model suite
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelBench:
    """One model of the benchmark: a :mod:`fastconv.models` function and its batch.

    Attributes
    ----------
    name : str
        The function's name in :mod:`fastconv.models` and
        :mod:`fastconv.torch_models`.
    label : str
        Its name in the tables.
    input_shape : (int, int, int)
        (C, H, W) of one image.
    batch : int
    kwargs : dict
        Extra arguments of both model functions.
    """

    name: str
    label: str
    input_shape: tuple
    batch: int
    kwargs: dict = field(default_factory=dict)

    def build(self, dtype=np.float32):
        """The fastconv model, initialised from a seed fixed by the name."""
        from . import models

        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        return getattr(models, self.name)(dtype=dtype, rng=rng, **self.kwargs)

    def data(self, batch=None, dtype=np.float32):
        """The fixed batch: standard-normal images and labels in [0, 10)."""
        batch = self.batch if batch is None else batch
        rng = np.random.default_rng(zlib.crc32(f"{self.name} data".encode()))
        x = rng.standard_normal((batch, *self.input_shape), dtype=dtype)
        return x, rng.integers(0, 10, batch)


#: The benchmark's models, in table order.  MobileNet-style runs on 32x32
#: images at batch 64, as ResNet-20 (the CIFAR setting of both).
MODELS = {
    "resnet20": ModelBench("resnet20", "ResNet-20", (3, 32, 32), 64),
    "vgg_small": ModelBench("vgg_small", "VGG-style", (3, 64, 64), 16),
    "lenet": ModelBench("lenet", "LeNet-style", (1, 28, 28), 128),
    "mobilenet_small": ModelBench("mobilenet_small", "MobileNet-style", (3, 32, 32), 64),
    "alexnet_small": ModelBench("alexnet_small", "AlexNet-style", (3, 127, 127), 32),
}
#: The ``--quick`` subset: the headline model and a light one.
QUICK_MODELS = ("resnet20", "lenet")
#: The jobs timed per model: a training step and inference.
MODES = ("train", "infer")
