"""The types of fastconv's public API, written once for its annotations.

A kernel returns arrays of its input's float dtype, so the array types are
generic in ``Float``: ``conv2d(x, w)`` with float32 ``x`` and ``w`` is an
``NDArray[np.float32]``.  Geometry arguments take an int or a tuple with
one int per spatial axis (lists and NumPy integers are accepted at run time
too); shapes are tuples of ints.
"""
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, Union

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:          # layers.py imports the modules that import this one
    from .layers import Layer

__all__ = [
    "Float", "Array", "Grads", "Indices", "Labels", "Int", "Size1", "Size2", "Size3",
    "SizeN", "Padding1", "Padding2", "Padding3", "PaddingN", "Shape", "DTypeLike",
    "Algorithm", "Algorithm1d", "PoolOutput", "PerAxis", "Model", "LayerSpecs",
]

#: The float dtype of one call: float32 or float64, the same for every array.
Float = TypeVar("Float", np.float32, np.float64)
#: An array of dtype Float (``Array[Float]``), or of a given dtype (``Array[np.float32]``).
Array = npt.NDArray[Float]
#: The gradients of a convolution's backward pass: (grad_x, grad_weight, grad_bias).
Grads = tuple[Array[Float], Array[Float], Array[Float]]
#: Max-pooling argmax "switches": flat indices into each input plane/volume.
Indices = npt.NDArray[np.int64]
#: Class labels of a loss: integers, one per sample.
Labels = npt.NDArray[np.integer[Any]]

#: A Python or NumPy integer.
Int = Union[int, np.integer[Any]]
#: Geometry (kernel size, stride, padding, dilation) of 1, 2 or 3 spatial axes.
Size1 = Union[Int, tuple[Int]]
Size2 = Union[Int, tuple[Int, Int]]
Size3 = Union[Int, tuple[Int, Int, Int]]
#: The calculators' (fastconv.shapes) geometry: an int, or one per axis.
SizeN = Union[Int, tuple[Int, ...]]
#: Convolution padding: the geometry, or PyTorch's "same" (stride 1) / "valid".
Padding1 = Union[Size1, Literal["same", "valid"]]
Padding2 = Union[Size2, Literal["same", "valid"]]
Padding3 = Union[Size3, Literal["same", "valid"]]
#: The calculators' padding: also ``(before, after)`` pairs per axis.
PaddingN = Union[Int, tuple[Union[Int, tuple[Int, Int]], ...], Literal["same", "valid"]]
#: An array shape, e.g. ``input_shape=(N, C, H, W)``.
Shape = tuple[Int, ...]
DTypeLike = npt.DTypeLike

#: A layer or model of fastconv.layers (annotations only: a forward reference).
Model: TypeAlias = "Layer"
#: receptive_field's argument: a model, or a sequence of layers and
#: ``(kernel, stride, padding, dilation)`` tuples.
LayerSpecs: TypeAlias = Union["Layer", Sequence[Any]]

Algorithm = Literal["auto", "gemm", "direct", "winograd", "winograd2x2", "winograd4x4"]
Algorithm1d = Literal["auto", "gemm", "direct"]

#: What max pooling returns: the pooled array, or ``(array, indices)`` with
#: ``return_indices=True``; it depends on a run-time flag, so it is left
#: untyped (Any) rather than a union that every caller would have to narrow.
PoolOutput = Any
#: The calculators' results: an int, or a tuple with one entry per axis when
#: any argument is a tuple (Any, for the same reason).
PerAxis = Any
