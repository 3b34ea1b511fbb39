"""show_config(): what this build of fastconv is and what it will run."""
import platform
from typing import Any

from . import _ext
from ._convplan import WINOGRAD_MIN_CHANNELS, WINOGRAD_TILES
from ._threads import get_num_threads
from ._version import __version__

__all__ = ["show_config"]


def _algorithms() -> str:
    """The conv2d kernels and the rule of "auto", its figures taken from
    the constants that fastconv._convplan decides with."""
    tiles = " or ".join(f"F({m}x{m}, 3x3)"
                        for m in sorted(set(WINOGRAD_TILES.values()), reverse=True))
    return (f"gemm (packed GEMM, im2col fused into packing), direct, winograd ({tiles}); "
            "auto (fastconv._convplan.choose_algorithm): direct when depthwise "
            "(groups > 1, C/groups == 1), winograd for 3x3 stride-1 dilation-1 layers "
            f"with at least {WINOGRAD_MIN_CHANNELS} channels and filters per group, where "
            "it measured faster than the GEMM (select_algorithm's rule on channels and "
            "N*H*W), for dilated ones with at least 64 of each and phases of at least "
            "14x14, and for strided ones whose stride phases are 3x3 filled at least "
            "3/4 by the kernel (11x11/4) by the same rule on the phases, else gemm")


def show_config() -> dict[str, Any]:
    """Print the version, build, instruction set and threading of fastconv.

    Returns
    -------
    dict
        The same facts, for programs.
    """
    config = {
        "version": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "gemm kernels": f"{_ext.gemm_isa()} (chosen at run time; FASTCONV_ISA="
                        "avx512|avx2|generic forces one)",
        "other kernels": "C99 -O3, hot loops also compiled for AVX2 and AVX-512 and "
                         "picked when the library loads (GCC target_clones on x86-64 "
                         "ELF; the baseline build elsewhere)",
        "conv2d algorithms": _algorithms(),
        "openmp": _ext.openmp_enabled(),
        "threads": get_num_threads(),
        "numpy": __import__("numpy").__version__,
    }
    width = max(len(k) for k in config)
    for key, value in config.items():
        print(f"{key:<{width}}  {value}")
    return config
