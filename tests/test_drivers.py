"""The compiled drivers' skeleton (fastconv/_ext.pyx: _scratch, _run,
_check_status): a status the C code returns reaches Python as an exception,
raised once every work item has run, and a workspace that cannot be had is
a MemoryError stating its size."""

import os

import numpy as np
import pytest

import fastconv
from fastconv import _ext, _validation

FC_OK, FC_EINDEX = 0, -1


# ---- the one mapping of C statuses to exceptions ---------------------------

def test_ok_raises_nothing():
    assert _ext._raise_for_status("op", FC_OK) is None


def test_an_index_outside_its_plane_is_a_value_error_naming_the_op():
    with pytest.raises(ValueError, match=r"^max_pool2d_backward: an index lies outside"):
        _ext._raise_for_status("max_pool2d_backward", FC_EINDEX)


@pytest.mark.parametrize("status", [-2, -99, 1, 7])
def test_an_unknown_status_is_a_runtime_error_stating_it(status):
    with pytest.raises(RuntimeError, match=rf"^conv2d: .*status {status}\b"):
        _ext._raise_for_status("conv2d", status)


# ---- FC_EINDEX from the work items of a parallel loop ----------------------

def _pool_case(dtype, nd):
    """x large enough that max-pool backward runs on every thread (over
    MIN_PARALLEL_WORK elements), its output and indices."""
    rng = np.random.default_rng(3)
    shape = (16, 64, 48, 48) if nd == 2 else (8, 32, 12, 32, 32)
    x = rng.standard_normal(shape).astype(dtype)
    pool = fastconv.max_pool2d if nd == 2 else fastconv.max_pool3d
    y, idx = pool(x, 2, return_indices=True)
    return x, np.ones_like(y), idx


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_bad_index_in_any_plane_raises_after_the_loop(where, nd, threads, dtype,
                                                        restore_threads):
    # One index out of range in one plane (volume), whichever thread's item
    # holds it: the status is collected from that thread and raised after
    # the loop, with the public message.
    fastconv.set_num_threads(threads)
    x, g, idx = _pool_case(dtype, nd)
    backward = fastconv.max_pool2d_backward if nd == 2 else fastconv.max_pool3d_backward
    want = backward(g, idx, x.shape)                 # every index good: runs
    assert want.shape == x.shape and want.sum() == g.size
    planes = idx.reshape(idx.shape[0] * idx.shape[1], -1)
    p = {"first": 0, "middle": planes.shape[0] // 2, "last": planes.shape[0] - 1}[where]
    bad = idx.copy()
    bad.reshape(planes.shape)[p, -1] = np.prod(x.shape[2:])      # one past the end
    names = r"H\*W" if nd == 2 else r"D\*H\*W"
    with pytest.raises(ValueError, match=rf"indices must lie in \[0, {names}\)"):
        backward(g, bad, x.shape)
    bad.reshape(planes.shape)[p, -1] = -1
    with pytest.raises(ValueError, match=rf"indices must lie in \[0, {names}\)"):
        backward(g, bad, x.shape)


def test_the_kernel_without_a_message_raises_its_own(restore_threads):
    # _ext's max-pool backward, called without the public message.
    fastconv.set_num_threads(2)
    x, g, idx = _pool_case(np.float32, 2)
    idx = idx.copy()
    idx[-1, -1, -1, -1] = 10**9
    with pytest.raises(ValueError, match=r"^max_pool2d_backward: an index lies outside"):
        _ext.max_pool2d_backward(g, idx, x.shape)


# ---- workspaces --------------------------------------------------------------

def test_a_workspace_beyond_any_allocation_is_a_memory_error_stating_its_size():
    # A 1x3 direct convolution whose taps lie 2**60 columns apart, padded to
    # keep the output 4 wide: the direct kernel's zero-padded row, and so
    # its workspace, grows with the dilation (conv2d sends such layers to the
    # GEMM; the driver is called directly).  Its 2**61 elements take 2**63
    # bytes, counted in Python ints (in C they would wrap): nothing is
    # allocated or run.
    x = np.ones((1, 1, 1, 4), np.float32)
    w = np.ones((1, 1, 1, 3), np.float32)
    d = 2**60
    g = _validation.conv2d_geometry("conv2d", x.shape, w.shape, 1, (0, d), (1, d), 1)
    y = np.full((1, 1, g.Ho, g.Wo), 7, np.float32)
    with pytest.raises(MemoryError, match=r"^conv2d: the direct workspace would take "
                                          r"(\d{19,}) bytes, more than can be allocated"):
        _ext.conv2d_direct(x, w, None, g, False, y)
    assert (y == 7).all()


def test_a_workspace_allocation_that_fails_is_a_memory_error_stating_its_size(
        isolated_ok):
    # As above, with taps 2**28 columns apart on 4 rows: 4 rows of 2**29
    # floats, 8 GiB of workspace, under a 1 GiB address-space limit.
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("AddressSanitizer maps its own memory")
    out = isolated_ok("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        import re, numpy as np
        from fastconv import _ext, _validation
        x = np.ones((1, 1, 4, 4), np.float32)
        w = np.ones((1, 1, 1, 3), np.float32)
        d = 2**28
        g = _validation.conv2d_geometry("conv2d", x.shape, w.shape, 1, (0, d), (1, d), 1)
        y = np.empty((1, 1, g.Ho, g.Wo), np.float32)
        try:
            _ext.conv2d_direct(x, w, None, g, False, y)
        except MemoryError as e:
            m = re.fullmatch(r"conv2d: could not allocate the direct workspace "
                             r"\\((\\d+) bytes\\)", str(e))
            assert m and int(m.group(1)) >= 4 * 2**31, e
            print("ok")
        """)
    assert out.strip() == "ok"
