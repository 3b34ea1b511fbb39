"""A pool of arrays that layers reuse from one call to the next.

A training step writes several MB of activations and gradients per layer.
Fresh arrays cost a page fault per 4 KiB page on first touch, which can take
longer than the arithmetic that fills them; reusing an array that is no longer
needed costs nothing.  An array is handed out again only when nobody but the
pool holds it (its reference count says so): an output the caller kept, a
layer's cache, or a view of either, is never overwritten.  Arrays become free
as soon as their last holder drops them, so a gradient consumed by the layer
below is reused by the next one: the pool holds about as much memory as the
most arrays of each shape alive at once.
"""
import bisect
import math
import sys

import numpy as np

__all__ = ["BufferPool"]


def _count(arrays):
    for i in range(len(arrays)):
        a = arrays[i]
        return sys.getrefcount(a)


# The reference count of a pooled array that nobody else holds, measured in
# the same code shape as in BufferPool.take (the interpreter decides whether a
# loop variable or a call argument adds a reference).
_FREE = _count([np.empty(1)])

# A free array serves a request of at least 1/_SLACK of its size: arrays are
# shared across shapes (the pool then holds about the most memory alive at
# once, not that of each shape at its own peak) without a small request
# tying up a large array.
_SLACK = 2


class BufferPool:
    """Reusable arrays, by size and dtype.

    Examples
    --------
    >>> pool = BufferPool()
    >>> a = pool.take((2, 3), np.float32)
    >>> b = pool.take((2, 3), np.float32)     # `a` is still held: another array
    >>> np.shares_memory(a, b)
    False
    >>> address = a.ctypes.data
    >>> del a
    >>> pool.take((3, 2), np.float32).ctypes.data == address
    True
    """

    __slots__ = ("_arrays", "_sizes")

    def __init__(self):
        self._arrays = {}           # dtype -> flat arrays, smallest first
        self._sizes = {}            # dtype -> their sizes

    def take(self, shape, dtype):
        """An array of ``shape`` and ``dtype`` (contents undefined, C
        order) that no one else holds: a view of the smallest free pooled
        array that fits it, else of a new one, which the pool keeps."""
        dtype = np.dtype(dtype)
        n = math.prod(shape)
        arrays = self._arrays.get(dtype)
        if arrays is None:
            arrays = self._arrays[dtype] = []
            self._sizes[dtype] = []
        sizes = self._sizes[dtype]
        start = bisect.bisect_left(sizes, n)
        for i in range(start, len(arrays)):
            a = arrays[i]
            if a.size > _SLACK * n:
                break
            if sys.getrefcount(a) == _FREE:
                return a[:n].reshape(shape)
        a = np.empty(max(n, 1), dtype)
        i = bisect.bisect_left(sizes, a.size)
        arrays.insert(i, a)
        sizes.insert(i, a.size)
        return a[:n].reshape(shape)

    def __reduce__(self):
        return (BufferPool, ())         # copies and pickles start empty

    def clear(self):
        """Forget every array (each is freed once no one else holds it)."""
        self._arrays.clear()
        self._sizes.clear()

    @property
    def nbytes(self):
        """Bytes of the arrays the pool keeps."""
        return sum(a.nbytes for arrays in self._arrays.values() for a in arrays)
