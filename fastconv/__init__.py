"""fastconv: compiled CNN kernels for NumPy on the CPU.

im2col / col2im, convolution (1-D, 2-D by packed GEMM or direct, 3-D),
locally connected (unshared) layers, and max / average / Lp-norm / global
pooling, forward and backward, on float32/float64 channels-first arrays,
with ``torch.nn.functional``'s conventions.  Each kernel has a pure-NumPy
twin of the same name in :mod:`fastconv.reference`.  Around them: layers,
losses and optimisers, the cs231n ConvNet notes' calculators
(:mod:`fastconv.shapes`, ``model.summary``), FC-to-conv conversion and a
drop-in for the cs231n assignment's fast layers (:mod:`fastconv.compat`).
"""
# The compiled extension is required: a checkout without it must fail here,
# loudly, rather than run something else.
import os as _os

# Unless the user chose an OpenMP wait policy, fastconv's runtime (read
# once, when the extension loads it) spins for about 1 ms after a parallel
# region, then sleeps (see _omp.py for why that long); the variable is
# restored at once so other libraries never see it.
from ._omp import SPINCOUNT as _SPINCOUNT  # noqa: I001 (before _ext)
from ._omp import user_policy as _user_policy_set

_user_policy = _user_policy_set()
if not _user_policy:
    _os.environ["GOMP_SPINCOUNT"] = _SPINCOUNT
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
    if not _user_policy:
        del _os.environ["GOMP_SPINCOUNT"]

# Pick the GEMM micro-kernels once: the best the CPU supports, or the one
# named by FASTCONV_ISA ("avx512", "avx2", "generic").  This must run before
# the submodules below are imported; ruff's import sorting (rule I) sorts
# the block below on its own and never moves an import above this call.
_ext._init_gemm(_os.environ.get("FASTCONV_ISA"))
from . import compat, layers, losses, models, optim, reference, shapes, summary
from ._config import show_config
from ._threads import get_num_threads, set_num_threads
from ._version import __version__
from .convert import conv_to_fc, convolutionalize, fc_to_conv
from .functional import (
    add,
    avg_pool1d,
    avg_pool1d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool3d,
    avg_pool3d_backward,
    batch_norm2d,
    batch_norm2d_backward,
    col2im,
    conv1d,
    conv1d_backward,
    conv2d,
    conv2d_backward,
    conv3d,
    conv3d_backward,
    conv_plan,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    im2col,
    linear,
    linear_backward,
    locally_connected2d,
    locally_connected2d_backward,
    lp_pool1d,
    lp_pool1d_backward,
    lp_pool2d,
    lp_pool2d_backward,
    max_pool1d,
    max_pool1d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool3d,
    max_pool3d_backward,
    relu,
    relu_backward,
    select_algorithm,
)
from .gradcheck import gradcheck

__all__ = [
    # 2-D kernels (the API contract)
    "im2col", "col2im", "conv2d", "conv2d_backward", "max_pool2d",
    "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "select_algorithm", "conv_plan",
    # 1-D and 3-D kernels
    "conv1d", "conv1d_backward", "max_pool1d", "max_pool1d_backward",
    "avg_pool1d", "avg_pool1d_backward",
    "conv3d", "conv3d_backward", "max_pool3d", "max_pool3d_backward",
    "avg_pool3d", "avg_pool3d_backward",
    # more pooling, unshared weights
    "lp_pool1d", "lp_pool1d_backward", "lp_pool2d", "lp_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward",
    "locally_connected2d", "locally_connected2d_backward",
    # layer kernels: normalisation, activation, residual add, fully connected
    "batch_norm2d", "batch_norm2d_backward", "relu", "relu_backward", "add",
    "linear", "linear_backward",
    # FC <-> conv
    "fc_to_conv", "conv_to_fc", "convolutionalize",
    # settings
    "set_num_threads", "get_num_threads", "show_config", "__version__",
    # modules
    "reference", "layers", "losses", "optim", "gradcheck", "shapes",
    "summary", "models", "compat",
]
