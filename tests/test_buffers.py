"""fastconv._buffers: an array is reused only when nobody else holds it."""

import copy
import pickle

import numpy as np

from fastconv._buffers import Buffers


def test_free_array_is_reused():
    bufs = Buffers()
    a = bufs.take("y", (3, 4), np.float32)
    address = a.ctypes.data
    del a
    b = bufs.take("y", (3, 4), np.float32)
    assert b.ctypes.data == address and b.shape == (3, 4) and b.dtype == np.float32


def test_held_array_or_view_is_never_handed_out_again():
    bufs = Buffers()
    a = bufs.take("y", (3, 4), np.float64)
    b = bufs.take("y", (3, 4), np.float64)
    assert not np.shares_memory(a, b)
    view = b[1:]
    del b
    c = bufs.take("y", (3, 4), np.float64)
    assert not np.shares_memory(c, view) and not np.shares_memory(c, a)


def test_other_shape_dtype_or_slot_gets_its_own_array():
    bufs = Buffers()
    y = bufs.take("y", (2, 2), np.float32)
    x = bufs.take("x", (2, 2), np.float32)
    assert not np.shares_memory(x, y)
    del y
    z = bufs.take("y", (2, 3), np.float32)          # free, but another shape
    assert z.shape == (2, 3) and z.dtype == np.float32
    del z
    w = bufs.take("y", (2, 3), np.float64)          # free, but another dtype
    assert w.shape == (2, 3) and w.dtype == np.float64


def test_copies_and_pickles_start_empty():
    bufs = Buffers()
    kept = bufs.take("y", (5,), np.float32)
    for clone in (copy.deepcopy(bufs), copy.copy(bufs), pickle.loads(pickle.dumps(bufs))):
        fresh = clone.take("y", (5,), np.float32)
        assert not np.shares_memory(fresh, kept)
    bufs.clear()
    assert not np.shares_memory(bufs.take("y", (5,), np.float32), kept)
