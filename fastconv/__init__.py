"""fastconv: compiled CNN kernels for NumPy on the CPU.

im2col / col2im, 2-D convolution (packed GEMM or direct) and max /
average pooling, forward and backward, on float32/float64 NCHW arrays, with
``torch.nn.functional``'s conventions.  Each kernel has a pure-NumPy twin of
the same name in :mod:`fastconv.reference`.
"""
# The compiled extension is required: a checkout without it must fail here,
# loudly, rather than run something else.
import os as _os

# OpenMP threads that spin after a parallel region steal the core from
# NumPy's BLAS threads and other processes, and a 2-thread call then stalls
# whenever one core is busy.  Unless the user chose a policy, let fastconv's
# OpenMP runtime (read once, when the extension loads it) sleep instead; the
# variable is restored at once so other libraries never see it.
_user_policy = _os.environ.get("OMP_WAIT_POLICY")
if _user_policy is None:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from . import _ext
except ImportError as _error:
    raise ImportError(
        f"fastconv's compiled extension could not be loaded from "
        f"{_os.path.dirname(__file__)} ({_error}). If that is a source "
        f"checkout, install the package (pip install .) and run Python from "
        f"another directory, so that the installed copy is imported."
    ) from _error
finally:
    if _user_policy is None:
        del _os.environ["OMP_WAIT_POLICY"]

# Pick the GEMM micro-kernels once: the best the CPU supports, or the one
# named by FASTCONV_ISA ("avx512", "avx2", "generic").
_ext._init_gemm(_os.environ.get("FASTCONV_ISA"))
from . import layers, losses, optim, reference
from .gradcheck import gradcheck
from ._config import show_config
from ._threads import get_num_threads, set_num_threads
from ._version import __version__
from .functional import (
    avg_pool2d,
    avg_pool2d_backward,
    col2im,
    conv2d,
    conv2d_backward,
    im2col,
    max_pool2d,
    max_pool2d_backward,
    select_algorithm,
)
# ---- locally connected layer ----
from .functional import locally_connected2d, locally_connected2d_backward

__all__ = [
    "im2col", "col2im", "conv2d", "conv2d_backward", "max_pool2d",
    "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "select_algorithm", "set_num_threads", "get_num_threads", "show_config",
    "reference", "layers", "losses", "optim", "gradcheck", "__version__",
]
# ---- locally connected layer ----
__all__ += ["locally_connected2d", "locally_connected2d_backward"]
