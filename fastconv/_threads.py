"""Thread settings: fastconv's OpenMP thread count and BLAS kept serial."""
import threading
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

from . import _ext

_controller = None
_controller_lock = threading.RLock()
_blas_users = 0        # calls inside blas_single_threaded() right now
_blas_limiter = None


def set_num_threads(n):
    """Set the number of threads fastconv's kernels use.

    Parameters
    ----------
    n : int
        Thread count, at least 1.  Results do not depend on it: every
        reduction is split into a fixed set of chunks added in a fixed order.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    _ext.set_num_threads(n)


def get_num_threads():
    """Return the number of threads the next kernel call will use.

    Until :func:`set_num_threads` is called this is OpenMP's default:
    ``OMP_NUM_THREADS`` or the core count (and threadpoolctl's limit).
    """
    return _ext.get_num_threads()


def _get_controller():
    global _controller
    with _controller_lock:
        if _controller is None:
            _controller = ThreadpoolController()
        return _controller


@contextmanager
def blas_single_threaded():
    """Context manager: BLAS runs one thread per caller while fastconv threads.

    fastconv calls gemm from its own OpenMP threads; a multi-threaded BLAS
    underneath would oversubscribe the cores.  The controller is cached (a
    fresh one costs about a millisecond) and concurrent callers share one
    limit, restored when the last of them leaves.
    """
    global _blas_users, _blas_limiter
    with _controller_lock:
        if _blas_users == 0:
            _blas_limiter = _get_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _controller_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def blas_info():
    """threadpoolctl's description of the BLAS libraries loaded."""
    return [
        info for info in _get_controller().info() if info["user_api"] == "blas"
    ]
