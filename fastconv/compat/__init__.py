"""Drop-in replacements for other code bases' layer functions.

Submodules
----------
cs231n
    The function names, signatures and cache conventions of the Stanford
    cs231n assignment's ``cs231n/fast_layers.py``, ``cs231n/im2col.py``,
    the compiled ``cs231n/im2col_cython.pyx`` and the naive convolution and
    max-pooling layers of ``cs231n/layers.py``, running on fastconv's
    kernels: ``from fastconv.compat.cs231n import conv_forward_fast``.
"""

__all__ = ["cs231n"]

from . import cs231n
