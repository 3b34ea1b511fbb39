"""fastconv._buffers: a pooled array is reused only when nobody else holds it."""

import copy
import pickle

import numpy as np

from fastconv._buffers import BufferPool


def test_free_array_is_reused():
    pool = BufferPool()
    a = pool.take((3, 4), np.float32)
    address = a.ctypes.data
    del a
    b = pool.take((3, 4), np.float32)
    assert b.ctypes.data == address and b.shape == (3, 4) and b.dtype == np.float32
    assert pool.nbytes == b.nbytes


def test_held_arrays_and_views_are_never_handed_out_again():
    pool = BufferPool()
    a = pool.take((3, 4), np.float64)
    b = pool.take((3, 4), np.float64)
    assert not np.shares_memory(a, b)
    view = b[1:]
    del b
    c = pool.take((3, 4), np.float64)
    assert not np.shares_memory(c, view) and not np.shares_memory(c, a)
    assert pool.nbytes == 3 * c.nbytes


def test_shape_and_dtype_select_the_array():
    pool = BufferPool()
    a = pool.take((2, 2), np.float32)
    address = a.ctypes.data
    del a
    b = pool.take((2, 3), np.float32)
    c = pool.take((2, 2), np.float64)
    assert (b.shape, b.dtype, c.shape, c.dtype) == ((2, 3), np.float32, (2, 2), np.float64)
    assert pool.take((2, 2), np.float32).ctypes.data == address


def test_copies_and_pickles_start_empty():
    pool = BufferPool()
    kept = pool.take((5,), np.float32)
    for clone in (copy.deepcopy(pool), copy.copy(pool), pickle.loads(pickle.dumps(pool))):
        assert clone.nbytes == 0
        assert not np.shares_memory(clone.take((5,), np.float32), kept)
    pool.clear()
    assert pool.nbytes == 0
