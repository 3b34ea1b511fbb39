"""show_config(): what this build of fastconv is and what it will run."""
import platform

from . import _ext
from ._threads import blas_info, get_num_threads
from ._version import __version__


def show_config():
    """Print the version, build, threading and BLAS this fastconv uses.

    Returns
    -------
    dict
        The same facts, for programs.
    """
    blas = [
        f"{b['internal_api']} {b['version']} ({b['architecture']}, "
        f"{b['num_threads']} threads) {b['filepath']}"
        for b in blas_info()
    ]
    config = {
        "version": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "kernels": "C99, compiled -O3 for the baseline instruction set "
                   "(no -march=native; auto-vectorised)",
        "conv2d algorithms": "gemm (tiled im2col + BLAS), direct; auto: direct "
                             "when C/groups == 1, else gemm",
        "openmp": _ext.openmp_enabled(),
        "threads": get_num_threads(),
        "blas": blas,
    }
    width = max(len(k) for k in config)
    for key, value in config.items():
        if isinstance(value, list):
            value = "\n".join([value[0]] + [" " * (width + 2) + v for v in value[1:]]) if value else "none"
        print(f"{key:<{width}}  {value}")
    return config
