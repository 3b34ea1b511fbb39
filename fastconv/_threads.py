"""Thread settings: how many OpenMP threads fastconv's kernels use."""
import numbers
import os

from . import _ext

__all__ = ["MAX_THREADS", "check_num_threads", "set_num_threads", "get_num_threads"]


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# The most threads a kernel call runs: more than a few per core only adds
# scheduling and per-thread workspaces, and past what the system can create
# libgomp prints "Thread creation failed" and exits the interpreter.  Larger
# requests are refused (set_num_threads) or clamped (OMP_NUM_THREADS).
MAX_THREADS = max(64, 4 * _cpu_count())
_ext.set_thread_limit(MAX_THREADS)


def check_num_threads(n, name="n", op="set_num_threads"):
    """Return ``n`` as an int in [1, MAX_THREADS], or raise naming ``name``."""
    if not isinstance(n, numbers.Integral) or isinstance(n, bool):
        raise TypeError(f"{op}: {name} must be an int, got {n!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(
            f"{op}: {name} must be an int from 1 to {MAX_THREADS} (fastconv's "
            f"limit: 4 threads per CPU core, at least 64), got {n!r}"
        )
    return int(n)


def set_num_threads(n: int) -> None:
    """Set the number of threads fastconv's kernels use.

    Parameters
    ----------
    n : int
        Thread count, from 1 to ``MAX_THREADS`` (4 per CPU core, at least
        64).  Results do not depend on it: work is split into items fixed by
        the shapes, and every reduction (grad_weight, grad_bias) adds a fixed
        set of partial sums in a fixed order.

    Raises
    ------
    TypeError
        If n is not an int.
    ValueError
        If n is below 1 or above ``MAX_THREADS``.
    """
    _ext.set_num_threads(check_num_threads(n))


def get_num_threads() -> int:
    """Return the number of threads the next kernel call will use.

    Until :func:`set_num_threads` is called this is OpenMP's default:
    ``OMP_NUM_THREADS`` or the core count, or a limit set with threadpoolctl
    (``threadpool_limits(n, user_api="openmp")``), clamped to
    ``MAX_THREADS``.  Small calls run on one thread whatever this says.
    """
    return _ext.get_num_threads()
