"""Thread settings: how many OpenMP threads fastconv's kernels use."""
from . import _ext


def set_num_threads(n: int) -> None:
    """Set the number of threads fastconv's kernels use.

    Parameters
    ----------
    n : int
        Thread count, at least 1.  Results do not depend on it: work is split
        into items fixed by the shapes, and every reduction (grad_weight,
        grad_bias) adds a fixed set of partial sums in a fixed order.

    Raises
    ------
    ValueError
        If n is not an int >= 1.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    _ext.set_num_threads(n)


def get_num_threads() -> int:
    """Return the number of threads the next kernel call will use.

    Until :func:`set_num_threads` is called this is OpenMP's default:
    ``OMP_NUM_THREADS`` or the core count, or a limit set with threadpoolctl
    (``threadpool_limits(n, user_api="openmp")``).  Small calls run on one
    thread whatever this says.
    """
    return _ext.get_num_threads()
