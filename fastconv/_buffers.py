"""Arrays that a layer reuses from one call to the next.

A training step writes several MB of activations and gradients per layer.
Fresh arrays cost a page fault per 4 KiB page on first touch, which can take
longer than the arithmetic that fills them; reusing last step's array costs
nothing.  An array is reused only when nobody but its :class:`Buffers` holds
it (its reference count says so): an output the caller kept, or a view of it,
is never overwritten -- the next call writes into a fresh array instead.
"""
import sys

import numpy as np

__all__ = ["Buffers"]


def _count(arrays, slot):
    a = arrays.get(slot)
    return sys.getrefcount(a)


# The reference count of a stored array that nobody else holds, measured in
# the same code shape as in Buffers.take (the interpreter decides whether a
# local variable or a call argument adds a reference).
_FREE = _count({"slot": np.empty(1)}, "slot")


class Buffers:
    """Reusable arrays, by slot name.

    Examples
    --------
    >>> bufs = Buffers()
    >>> a = bufs.take("y", (2, 3), np.float32)
    >>> b = bufs.take("y", (2, 3), np.float32)    # `a` is still held: a new array
    >>> b is a
    False
    >>> del a, b
    >>> c = bufs.take("y", (2, 3), np.float32)
    >>> c is bufs.take("y", (2, 3), np.float32)   # held by `c`: not handed out twice
    False
    """

    __slots__ = ("_arrays",)

    def __init__(self):
        self._arrays = {}

    def take(self, slot, shape, dtype):
        """An array of ``shape`` and ``dtype`` (contents undefined) that no
        one else holds: the slot's previous array when it is free and fits,
        else a new one (which the slot keeps for next time)."""
        a = self._arrays.get(slot)
        if (a is not None and sys.getrefcount(a) == _FREE and a.shape == shape
                and a.dtype == dtype):
            return a
        a = np.empty(shape, dtype)
        self._arrays[slot] = a
        return a

    def __reduce__(self):
        return (Buffers, ())            # copies and pickles start empty

    def clear(self):
        """Forget every array (they are freed once no caller holds them)."""
        self._arrays.clear()
