"""The cs231n assignment's fast layers, on fastconv's compiled kernels.

The Stanford cs231n course (assignment 2, "ConvolutionalNetworks") ships a
Cython file, ``cs231n/im2col_cython.pyx``, that students compile in place,
and ``cs231n/fast_layers.py`` built on it.  This module offers the same
function names and signatures, so a course (or a student's notebook) can
``pip install fastconv`` and replace::

    from cs231n.fast_layers import conv_forward_fast, conv_backward_fast

with::

    from fastconv.compat.cs231n import conv_forward_fast, conv_backward_fast

or ``from fastconv.compat.cs231n import *`` (as ``layer_utils.py`` does with
``fast_layers``).  That star import brings the names of ``fast_layers.py``,
``im2col.py`` and ``im2col_cython.pyx`` only: the naive layers
(``conv_forward_naive``, ``conv_backward_naive``, ``max_pool_forward_naive``,
``max_pool_backward_naive``) are here as attributes but left out of
``__all__``, so that a star import never replaces the student's own naive
layers imported before it.  Import them by name to use them.

Every function runs on :func:`fastconv.conv2d`, :func:`fastconv.max_pool2d`,
:func:`fastconv.im2col`, :func:`fastconv.col2im` and their backward
kernels; the course's several strategies (``_im2col``, ``_strides``,
``_reshape``, ``_naive``) are names for the same kernels here, kept so that
existing code and timing cells run unchanged (their timings are no longer
different algorithms).

Conventions (the course's)
--------------------------
* ``x`` is (N, C, H, W); ``w`` is (F, C, HH, WW); ``b`` is (F,).
* ``conv_param = {'stride': s, 'pad': p}``: zero padding ``p`` on all four
  sides; output ``H' = 1 + (H + 2*p - HH) // s`` (``W'`` alike).
* ``pool_param = {'pool_height': ph, 'pool_width': pw, 'stride': s}``: no
  padding; ``H' = 1 + (H - ph) // s``.
* Forward functions return ``(out, cache)``; conv backward functions return
  ``(dx, dw, db)``; pool backward functions return ``dx``.

Caches
------
* Every conv forward here returns ``cache = (x, w, b, conv_param)``, the
  tuple the course's ``conv_forward_naive`` is documented to return, so any
  conv backward of this module accepts the cache of any conv forward of this
  module.  The backward functions also accept the course's own
  ``(x, w, b, conv_param, x_cols)`` caches (``x_cols`` is ignored).
* ``max_pool_forward_naive`` returns ``(x, pool_param)`` (the course's naive
  cache); the fast, reshape and im2col forwards return
  ``(x, pool_param, indices)`` with the argmax switches of
  :func:`fastconv.max_pool2d`.  Every pool backward here accepts both.
  The course's fast pool caches (``('reshape', ...)``) are different and
  are not accepted: use this module's backward with this module's forward.
* Caches hold references to the inputs (as the course's do); nothing is
  modified.

Differences from the course's code
----------------------------------
* **Tied maxima.**  When several cells of a pooling window hold the same
  maximum, the gradient goes entirely to the first of them in row-major
  order (PyTorch's rule, and what ``np.argmax`` over the window gives).  The
  course's ``max_pool_backward_reshape`` instead gives every tied cell
  ``dout / (number of ties)`` (older versions: ``dout`` each).  Both are
  valid subgradients; a numerical gradient check through a tie matches
  neither.  Ties are rare with real-valued data but common after a ReLU
  (windows of zeros).
* **Sizes.**  The course asserts that ``(H + 2*pad - HH) % stride == 0``
  in places; here windows that do not fit are dropped (floor), as in
  ``conv_forward_naive`` and PyTorch.  ``max_pool_forward_reshape`` does not
  require square, tiling windows.
* **dtypes.**  float32 and float64 are computed in their own precision;
  mixed inputs (e.g. float32 weights with float64 data, as the course's
  ``ThreeLayerConvNet(dtype=np.float32)`` produces) are computed in the
  NumPy result type, as the course's NumPy code would; integer inputs in
  float64.  Non-contiguous arrays are accepted.
* ``stride`` and ``pad`` may also be pairs ``(h, w)``.
* Errors are ``ValueError``/``TypeError`` naming the argument, not
  ``AssertionError`` or ``KeyError``.

Examples
--------
>>> import numpy as np
>>> from fastconv.compat.cs231n import conv_forward_fast, conv_backward_fast
>>> x = np.random.randn(2, 3, 8, 8); w = np.random.randn(4, 3, 3, 3)
>>> b = np.zeros(4)
>>> out, cache = conv_forward_fast(x, w, b, {'stride': 1, 'pad': 1})
>>> out.shape
(2, 4, 8, 8)
>>> dx, dw, db = conv_backward_fast(np.ones_like(out), cache)
>>> dx.shape, dw.shape, db.shape
((2, 3, 8, 8), (4, 3, 3, 3), (4,))
"""

from collections.abc import Mapping

import numpy as np

from .. import _validation as _v
from .. import functional as _F

__all__ = [
    # cs231n/fast_layers.py
    "conv_forward_fast", "conv_backward_fast",
    "conv_forward_im2col", "conv_backward_im2col",
    "conv_forward_strides", "conv_backward_strides",
    "max_pool_forward_fast", "max_pool_backward_fast",
    "max_pool_forward_reshape", "max_pool_backward_reshape",
    "max_pool_forward_im2col", "max_pool_backward_im2col",
    # (the naive layers of cs231n/layers.py are attributes, not exported:
    # see the module docstring)
    # cs231n/im2col_cython.pyx
    "im2col_cython", "col2im_cython", "col2im_6d_cython",
    # cs231n/im2col.py
    "get_im2col_indices", "im2col_indices", "col2im_indices",
]


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------

def _array(value, name, op, ndim, shape_doc):
    """``value`` as an ndarray of the given rank (no copy if it is one)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{op}: {name} must hold real numbers (float32 or float64), got "
            f"dtype {arr.dtype} (shape {arr.shape})"
        )
    if arr.ndim != ndim:
        raise ValueError(
            f"{op}: {name} must have {ndim} dimensions {shape_doc}, got shape "
            f"{arr.shape}"
        )
    return arr


def _compute_dtype(*arrays):
    """float32 or float64: the NumPy result type, integers promoted to float64."""
    return np.result_type(*[a.dtype for a in arrays], np.float32)


def _params(param, keys, name, op):
    if not isinstance(param, Mapping):
        raise TypeError(
            f"{op}: {name} must be a dict with keys {list(keys)}, got "
            f"{type(param).__name__}"
        )
    missing = [k for k in keys if k not in param]
    if missing:
        raise ValueError(
            f"{op}: {name} lacks key(s) {missing}; it must have keys "
            f"{list(keys)}, got keys {sorted(map(str, param))}"
        )
    return [param[k] for k in keys]


def _conv_param(conv_param, op):
    stride, pad = _params(conv_param, ("stride", "pad"), "conv_param", op)
    stride = _v.positive_pair(stride, "conv_param['stride']", op)
    pad = _v.non_negative_pair(pad, "conv_param['pad']", op)
    return stride, pad


def _pool_param(pool_param, op):
    ph, pw, stride = _params(pool_param, ("pool_height", "pool_width", "stride"),
                             "pool_param", op)
    if not (_v.is_int(ph) and ph >= 1 and _v.is_int(pw) and pw >= 1):
        raise ValueError(
            f"{op}: pool_param['pool_height'] and ['pool_width'] must be "
            f"positive ints, got {ph!r} and {pw!r}"
        )
    stride = _v.positive_pair(stride, "pool_param['stride']", op)
    return (int(ph), int(pw)), stride


def _conv_cache(cache, op):
    if not (isinstance(cache, tuple) and len(cache) in (4, 5)
            and isinstance(cache[3], Mapping)):
        raise TypeError(
            f"{op}: cache must be the (x, w, b, conv_param) tuple a conv "
            f"forward function returned, got {type(cache).__name__}"
            + (f" of length {len(cache)}" if isinstance(cache, tuple) else "")
        )
    return cache[:4]


def _pool_cache(cache, op):
    if not (isinstance(cache, tuple) and len(cache) in (2, 3)
            and isinstance(cache[1], Mapping)):
        # the course's own fast caches, ('reshape', ...), land here too
        raise TypeError(
            f"{op}: cache must be the (x, pool_param[, indices]) tuple a max "
            f"pool forward function of this module returned, got "
            f"{type(cache).__name__}"
            + (f" of length {len(cache)}" if isinstance(cache, tuple) else "")
        )
    return cache if len(cache) == 3 else (cache[0], cache[1], None)


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------

def _conv_arrays(x, w, b, op):
    x = _array(x, "x", op, 4, "(N, C, H, W)")
    w = _array(w, "w", op, 4, "(F, C, HH, WW)")
    b = _array(b, "b", op, 1, "(F,)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"{op}: w of shape {w.shape} expects {w.shape[1]} input channels "
            f"but x of shape {x.shape} has {x.shape[1]}"
            f"{_v.nhwc_hint(x.shape, w.shape[1])}"
        )
    if b.shape[0] != w.shape[0]:
        raise ValueError(
            f"{op}: b must have shape ({w.shape[0]},) for w of shape "
            f"{w.shape}, got shape {b.shape}"
        )
    return x, w, b


def _conv_forward(x, w, b, conv_param, op):
    stride, pad = _conv_param(conv_param, op)
    xa, wa, ba = _conv_arrays(x, w, b, op)
    dt = _compute_dtype(xa, wa, ba)
    out = _F.conv2d(xa.astype(dt, copy=False), wa.astype(dt, copy=False),
                    ba.astype(dt, copy=False), stride=stride, padding=pad)
    return out, (x, w, b, conv_param)


def _conv_backward(dout, cache, op):
    x, w, b, conv_param = _conv_cache(cache, op)
    stride, pad = _conv_param(conv_param, op)
    xa, wa, ba = _conv_arrays(x, w, b, op)
    da = _array(dout, "dout", op, 4, "(N, F, H', W')")
    dt = _compute_dtype(xa, wa, ba, da)
    dx, dw, db = _F.conv2d_backward(
        da.astype(dt, copy=False), xa.astype(dt, copy=False),
        wa.astype(dt, copy=False), stride=stride, padding=pad)
    return dx, dw, db


def conv_forward_fast(x, w, b, conv_param):
    """Forward pass of a convolutional layer (cs231n's ``conv_forward_fast``).

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
        float32 or float64 (see the module notes for other dtypes).
    w : array_like of shape (F, C, HH, WW)
    b : array_like of shape (F,)
    conv_param : dict
        ``{'stride': s, 'pad': p}``; ints (or pairs (h, w)).

    Returns
    -------
    out : ndarray of shape (N, F, H', W')
        ``H' = 1 + (H + 2*p - HH) // s``, ``W' = 1 + (W + 2*p - WW) // s``;
        dtype: the common float type of x, w and b.
    cache : tuple
        ``(x, w, b, conv_param)``, for :func:`conv_backward_fast` (or any
        conv backward function of this module).

    Raises
    ------
    TypeError
        conv_param not a dict, non-numeric arrays, non-int stride or pad.
    ValueError
        Missing keys, wrong ranks, mismatched channels or bias, stride < 1,
        pad < 0, a filter larger than the padded input.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 3, 32, 32)); w = np.ones((10, 3, 5, 5)); b = np.zeros(10)
    >>> out, cache = conv_forward_fast(x, w, b, {'stride': 1, 'pad': 2})
    >>> out.shape, float(out[0, 0, 16, 16])
    ((1, 10, 32, 32), 75.0)
    """
    return _conv_forward(x, w, b, conv_param, "conv_forward_fast")


def conv_backward_fast(dout, cache):
    """Backward pass of a convolutional layer (cs231n's ``conv_backward_fast``).

    Parameters
    ----------
    dout : array_like of shape (N, F, H', W')
        Upstream derivatives.
    cache : tuple
        ``(x, w, b, conv_param)`` from a conv forward function of this
        module (a trailing fifth item, as in the course's caches, is ignored).

    Returns
    -------
    dx : ndarray of shape (N, C, H, W)
    dw : ndarray of shape (F, C, HH, WW)
    db : ndarray of shape (F,)

    Raises
    ------
    TypeError, ValueError
        A cache that is not such a tuple; dout of the wrong shape; as
        :func:`conv_forward_fast` for the cached arguments.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((1, 1, 4, 4)); w = np.ones((1, 1, 3, 3)); b = np.zeros(1)
    >>> out, cache = conv_forward_fast(x, w, b, {'stride': 1, 'pad': 0})
    >>> dx, dw, db = conv_backward_fast(np.ones_like(out), cache)
    >>> db, float(dw[0, 0, 0, 0])
    (array([4.]), 4.0)
    """
    return _conv_backward(dout, cache, "conv_backward_fast")


def conv_forward_im2col(x, w, b, conv_param):
    """:func:`conv_forward_fast` under the course's im2col name.

    Same parameters, returns, errors and cache as :func:`conv_forward_fast`
    (fastconv's packed GEMM forms no column matrix, so the cache carries no
    ``x_cols``).

    Examples
    --------
    >>> import numpy as np
    >>> out, cache = conv_forward_im2col(np.ones((1, 1, 3, 3)),
    ...     np.ones((2, 1, 3, 3)), np.arange(2.0), {'stride': 1, 'pad': 0})
    >>> out.ravel()
    array([ 9., 10.])
    """
    return _conv_forward(x, w, b, conv_param, "conv_forward_im2col")


def conv_backward_im2col(dout, cache):
    """:func:`conv_backward_fast` under the course's im2col name.

    Same parameters, returns and errors as :func:`conv_backward_fast`.

    Examples
    --------
    >>> import numpy as np
    >>> out, cache = conv_forward_im2col(np.ones((1, 1, 3, 3)),
    ...     np.ones((2, 1, 3, 3)), np.zeros(2), {'stride': 1, 'pad': 0})
    >>> dx, dw, db = conv_backward_im2col(np.ones_like(out), cache)
    >>> dx[0, 0]
    array([[2., 2., 2.],
           [2., 2., 2.],
           [2., 2., 2.]])
    """
    return _conv_backward(dout, cache, "conv_backward_im2col")


def conv_forward_strides(x, w, b, conv_param):
    """:func:`conv_forward_fast` under the course's stride-tricks name.

    Same parameters, returns, errors and cache as :func:`conv_forward_fast`.

    Examples
    --------
    >>> import numpy as np
    >>> out, _ = conv_forward_strides(np.ones((1, 1, 5, 5)),
    ...     np.ones((1, 1, 3, 3)), np.zeros(1), {'stride': 2, 'pad': 0})
    >>> out.shape
    (1, 1, 2, 2)
    """
    return _conv_forward(x, w, b, conv_param, "conv_forward_strides")


def conv_backward_strides(dout, cache):
    """:func:`conv_backward_fast` under the course's stride-tricks name.

    Same parameters, returns and errors as :func:`conv_backward_fast`.

    Examples
    --------
    >>> import numpy as np
    >>> out, cache = conv_forward_strides(np.ones((1, 1, 5, 5)),
    ...     np.ones((1, 1, 3, 3)), np.zeros(1), {'stride': 2, 'pad': 0})
    >>> conv_backward_strides(np.ones_like(out), cache)[0][0, 0, 2]
    array([2., 2., 4., 2., 2.])
    """
    return _conv_backward(dout, cache, "conv_backward_strides")


def conv_forward_naive(x, w, b, conv_param):
    """The course's ``conv_forward_naive``, computed by fastconv's kernel.

    Same parameters, returns and errors as :func:`conv_forward_fast`; the
    cache ``(x, w, b, conv_param)`` is the one the course documents.  Useful
    as a reference solution; students write their own loops.

    Examples
    --------
    >>> import numpy as np
    >>> out, cache = conv_forward_naive(np.ones((2, 3, 4, 4)),
    ...     np.ones((3, 3, 4, 4)), np.zeros(3), {'stride': 2, 'pad': 1})
    >>> out.shape, len(cache)
    ((2, 3, 2, 2), 4)
    """
    return _conv_forward(x, w, b, conv_param, "conv_forward_naive")


def conv_backward_naive(dout, cache):
    """The course's ``conv_backward_naive``, computed by fastconv's kernel.

    Same parameters, returns and errors as :func:`conv_backward_fast`.

    Examples
    --------
    >>> import numpy as np
    >>> out, cache = conv_forward_naive(np.ones((2, 3, 4, 4)),
    ...     np.ones((3, 3, 4, 4)), np.zeros(3), {'stride': 2, 'pad': 1})
    >>> conv_backward_naive(np.ones_like(out), cache)[2]
    array([8., 8., 8.])
    """
    return _conv_backward(dout, cache, "conv_backward_naive")


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------

def _pool_forward(x, pool_param, op, keep_indices):
    kernel, stride = _pool_param(pool_param, op)
    xa = _array(x, "x", op, 4, "(N, C, H, W)")
    dt = _compute_dtype(xa)
    out, idx = _F.max_pool2d(xa.astype(dt, copy=False), kernel, stride,
                             return_indices=True)
    cache = (x, pool_param, idx) if keep_indices else (x, pool_param)
    return out, cache


def _pool_backward(dout, cache, op):
    x, pool_param, idx = _pool_cache(cache, op)
    kernel, stride = _pool_param(pool_param, op)
    xa = _array(x, "x", op, 4, "(N, C, H, W)")
    da = _array(dout, "dout", op, 4, "(N, C, H', W')")
    if idx is None:                        # the naive cache: find the switches
        _, idx = _F.max_pool2d(xa.astype(_compute_dtype(xa), copy=False),
                               kernel, stride, return_indices=True)
    if da.shape != idx.shape:
        raise ValueError(
            f"{op}: dout must have the pooled shape {idx.shape} of x of shape "
            f"{xa.shape} with {pool_param}, got shape {da.shape}"
        )
    dt = _compute_dtype(xa, da)
    return _F.max_pool2d_backward(da.astype(dt, copy=False), idx, xa.shape)


def max_pool_forward_fast(x, pool_param):
    """Forward pass of a max-pooling layer (cs231n's ``max_pool_forward_fast``).

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    pool_param : dict
        ``{'pool_height': ph, 'pool_width': pw, 'stride': s}``; no padding.

    Returns
    -------
    out : ndarray of shape (N, C, H', W')
        ``H' = 1 + (H - ph) // s``, ``W' = 1 + (W - pw) // s``.
    cache : tuple
        ``(x, pool_param, indices)``: indices (int64, (N, C, H', W')) are the
        argmax of each window, flat into its H*W plane; ties go to the first
        maximum in row-major order.

    Raises
    ------
    TypeError
        pool_param not a dict, non-numeric x, non-int sizes.
    ValueError
        Missing keys, x not 4-D, a window larger than the input, sizes < 1.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> p = {'pool_height': 2, 'pool_width': 2, 'stride': 2}
    >>> out, cache = max_pool_forward_fast(x, p)
    >>> out[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    return _pool_forward(x, pool_param, "max_pool_forward_fast", True)


def max_pool_backward_fast(dout, cache):
    """Backward pass of a max-pooling layer (cs231n's ``max_pool_backward_fast``).

    Parameters
    ----------
    dout : array_like of shape (N, C, H', W')
    cache : tuple
        ``(x, pool_param, indices)`` or ``(x, pool_param)`` from a max-pool
        forward function of this module.

    Returns
    -------
    dx : ndarray of shape (N, C, H, W)
        Each ``dout`` element is added to its window's first maximum (row-major
        order); overlapping windows that share a maximum sum.  Unlike the
        course's reshape path, tied maxima are not split (module notes).

    Raises
    ------
    TypeError, ValueError
        A cache that is not such a tuple; dout of the wrong shape; as
        :func:`max_pool_forward_fast` for the cached arguments.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])         # a tie
    >>> p = {'pool_height': 2, 'pool_width': 2, 'stride': 2}
    >>> out, cache = max_pool_forward_fast(x, p)
    >>> max_pool_backward_fast(np.ones_like(out), cache)[0, 0]
    array([[0., 1.],
           [0., 0.]])
    """
    return _pool_backward(dout, cache, "max_pool_backward_fast")


def max_pool_forward_reshape(x, pool_param):
    """:func:`max_pool_forward_fast` under the course's reshape name.

    Same parameters, returns, errors and cache as :func:`max_pool_forward_fast`;
    the course's requirement of square windows that tile the input is lifted.

    Examples
    --------
    >>> import numpy as np
    >>> p = {'pool_height': 2, 'pool_width': 2, 'stride': 2}
    >>> max_pool_forward_reshape(np.ones((2, 3, 6, 6)), p)[0].shape
    (2, 3, 3, 3)
    """
    return _pool_forward(x, pool_param, "max_pool_forward_reshape", True)


def max_pool_backward_reshape(dout, cache):
    """:func:`max_pool_backward_fast` under the course's reshape name.

    Same parameters, returns and errors as :func:`max_pool_backward_fast`.
    The course's version splits the gradient among tied maxima; this one
    gives it to the first (module notes).

    Examples
    --------
    >>> import numpy as np
    >>> p = {'pool_height': 2, 'pool_width': 2, 'stride': 2}
    >>> out, cache = max_pool_forward_reshape(np.zeros((1, 1, 2, 2)), p)
    >>> max_pool_backward_reshape(np.ones_like(out), cache)[0, 0]
    array([[1., 0.],
           [0., 0.]])
    """
    return _pool_backward(dout, cache, "max_pool_backward_reshape")


def max_pool_forward_im2col(x, pool_param):
    """:func:`max_pool_forward_fast` under the course's im2col name.

    Same parameters, returns, errors and cache as :func:`max_pool_forward_fast`.

    Examples
    --------
    >>> import numpy as np
    >>> p = {'pool_height': 3, 'pool_width': 3, 'stride': 2}
    >>> max_pool_forward_im2col(np.ones((1, 2, 7, 7)), p)[0].shape
    (1, 2, 3, 3)
    """
    return _pool_forward(x, pool_param, "max_pool_forward_im2col", True)


def max_pool_backward_im2col(dout, cache):
    """:func:`max_pool_backward_fast` under the course's im2col name.

    Same parameters, returns and errors as :func:`max_pool_backward_fast`.

    Examples
    --------
    >>> import numpy as np
    >>> p = {'pool_height': 3, 'pool_width': 3, 'stride': 2}
    >>> x = np.arange(25.0).reshape(1, 1, 5, 5)
    >>> out, cache = max_pool_forward_im2col(x, p)
    >>> max_pool_backward_im2col(np.ones_like(out), cache)[0, 0, 4]
    array([0., 0., 1., 0., 1.])
    """
    return _pool_backward(dout, cache, "max_pool_backward_im2col")


def max_pool_forward_naive(x, pool_param):
    """The course's ``max_pool_forward_naive``, computed by fastconv's kernel.

    Same parameters, returns and errors as :func:`max_pool_forward_fast`,
    but the cache is the course's ``(x, pool_param)``.

    Examples
    --------
    >>> import numpy as np
    >>> p = {'pool_height': 2, 'pool_width': 2, 'stride': 1}
    >>> out, cache = max_pool_forward_naive(np.eye(3).reshape(1, 1, 3, 3), p)
    >>> out[0, 0], len(cache)
    (array([[1., 1.],
           [1., 1.]]), 2)
    """
    return _pool_forward(x, pool_param, "max_pool_forward_naive", False)


def max_pool_backward_naive(dout, cache):
    """The course's ``max_pool_backward_naive``, computed by fastconv's kernel.

    Same parameters, returns and errors as :func:`max_pool_backward_fast`; a
    ``(x, pool_param)`` cache has its switches recomputed from x.

    Examples
    --------
    >>> import numpy as np
    >>> p = {'pool_height': 2, 'pool_width': 2, 'stride': 1}
    >>> x = np.eye(3).reshape(1, 1, 3, 3)
    >>> out, cache = max_pool_forward_naive(x, p)
    >>> max_pool_backward_naive(np.ones_like(out), cache)[0, 0]
    array([[1., 0., 0.],
           [0., 3., 0.],
           [0., 0., 0.]])
    """
    return _pool_backward(dout, cache, "max_pool_backward_naive")


# ---------------------------------------------------------------------------
# im2col / col2im in the course's layout
# ---------------------------------------------------------------------------
# The course's column matrix is (C*fh*fw, L*N): row c*fh*fw + i*fw + j (the
# same as fastconv's), column (oh*W' + ow)*N + n -- the image index varies
# fastest, whereas fastconv.im2col returns (N, C*fh*fw, L).

def _field(field_height, field_width, op):
    return _v.positive_pair((field_height, field_width),
                             "(field_height, field_width)", op)


def _to_course_cols(x, field_height, field_width, padding, stride, op):
    xa = _array(x, "x", op, 4, "(N, C, H, W)")
    kernel = _field(field_height, field_width, op)
    stride = _v.positive_pair(stride, "stride", op)
    padding = _v.non_negative_pair(padding, "padding", op)
    cols = _F.im2col(xa.astype(_compute_dtype(xa), copy=False), kernel,
                     stride, padding)                           # (N, K, L)
    n, k, L = cols.shape
    return np.ascontiguousarray(cols.transpose(1, 2, 0)).reshape(k, L * n)


def _from_course_cols(cols, x_shape, field_height, field_width, padding,
                      stride, op):
    ca = _array(cols, "cols", op, 2, "(C*field_height*field_width, N*H'*W')")
    if not (isinstance(x_shape, (tuple, list)) and len(x_shape) == 4
            and all(_v.is_int(v) and v >= 1 for v in x_shape)):
        raise ValueError(
            f"{op}: the image shape (N, C, H, W) must be 4 positive ints, got "
            f"{tuple(x_shape) if isinstance(x_shape, (tuple, list)) else x_shape!r}"
        )
    n, c, h, w = (int(v) for v in x_shape)
    kernel = _field(field_height, field_width, op)
    stride = _v.positive_pair(stride, "stride", op)
    padding = _v.non_negative_pair(padding, "padding", op)
    ho = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    wo = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    k = c * kernel[0] * kernel[1]
    if ho < 1 or wo < 1 or ca.shape != (k, ho * wo * n):
        raise ValueError(
            f"{op}: cols must have shape (C*field_height*field_width, "
            f"H'*W'*N) = ({k}, {max(ho, 0) * max(wo, 0) * n}) for an image of "
            f"shape {(n, c, h, w)} with field {kernel}, stride {stride}, "
            f"padding {padding}; got shape {ca.shape}"
        )
    per_image = ca.astype(_compute_dtype(ca), copy=False).reshape(
        k, ho * wo, n).transpose(2, 0, 1)                       # (N, K, L)
    return _F.col2im(np.ascontiguousarray(per_image), (h, w), kernel,
                     stride, padding)


def im2col_cython(x, field_height, field_width, padding, stride):
    """Unfold windows into the course's column layout (``im2col_cython``).

    Parameters
    ----------
    x : array_like of shape (N, C, H, W)
    field_height, field_width : int
        The window size.
    padding : int
        Zero padding on all sides.
    stride : int

    Returns
    -------
    cols : ndarray of shape (C*field_height*field_width, H'*W'*N)
        ``cols[c*fh*fw + i*fw + j, (oh*W' + ow)*N + n]`` is
        ``x[n, c, oh*stride - padding + i, ow*stride - padding + j]``
        (0 in the padding); ``H' = 1 + (H + 2*padding - fh) // stride``.

    Raises
    ------
    TypeError, ValueError
        Non-numeric or non-4-D x, non-positive sizes, a window larger than
        the padded input.

    Notes
    -----
    The course's Cython numbers rows ``c*fh*fw + i*fh + j``, which equals
    this for the square windows it is used with.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(8.0).reshape(2, 1, 2, 2)
    >>> im2col_cython(x, 2, 2, 0, 1)[:, 0], im2col_cython(x, 2, 2, 0, 1)[:, 1]
    (array([0., 1., 2., 3.]), array([4., 5., 6., 7.]))
    """
    return _to_course_cols(x, field_height, field_width, padding, stride,
                           "im2col_cython")


def col2im_cython(cols, N, C, H, W, field_height, field_width, padding, stride):
    """Fold the course's columns back into images, summing overlaps.

    The adjoint of :func:`im2col_cython` (cs231n's ``col2im_cython``).

    Parameters
    ----------
    cols : array_like of shape (C*field_height*field_width, H'*W'*N)
        In :func:`im2col_cython`'s layout.
    N, C, H, W : int
        The image shape.
    field_height, field_width, padding, stride : int
        As given to :func:`im2col_cython`.

    Returns
    -------
    x : ndarray of shape (N, C, H, W)
        Every column entry added to the pixel it was read from (entries read
        from the padding are dropped).

    Raises
    ------
    TypeError, ValueError
        Non-numeric cols, bad sizes, or cols of a shape that does not match
        the geometry.

    Examples
    --------
    >>> import numpy as np
    >>> col2im_cython(np.ones((4, 4)), 1, 1, 3, 3, 2, 2, 0, 1)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    return _from_course_cols(cols, (N, C, H, W), field_height, field_width,
                             padding, stride, "col2im_cython")


def col2im_6d_cython(cols, N, C, H, W, HH, WW, pad, stride):
    """Fold a 6-D column array into images (cs231n's ``col2im_6d_cython``).

    Parameters
    ----------
    cols : array_like of shape (C, HH, WW, N, H', W')
        ``cols[c, i, j, n, oh, ow]`` belongs to pixel
        ``(oh*stride - pad + i, ow*stride - pad + j)`` of channel c, image n.
    N, C, H, W : int
        The image shape.
    HH, WW : int
        The window size.
    pad, stride : int
        Zero padding and stride; ``H' = 1 + (H + 2*pad - HH) // stride``.

    Returns
    -------
    x : ndarray of shape (N, C, H, W)
        Overlaps summed; entries that fall in the padding are dropped.

    Raises
    ------
    TypeError, ValueError
        Non-numeric cols, bad sizes, or cols of a shape that does not match
        the geometry.

    Examples
    --------
    >>> import numpy as np
    >>> col2im_6d_cython(np.ones((1, 2, 2, 1, 2, 2)), 1, 1, 3, 3, 2, 2, 0, 1)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    op = "col2im_6d_cython"
    ca = _array(cols, "cols", op, 6, "(C, HH, WW, N, H', W')")
    if ca.shape[:4] != (C, HH, WW, N):
        raise ValueError(
            f"{op}: cols must have shape (C, HH, WW, N, H', W') with "
            f"(C, HH, WW, N) = {(C, HH, WW, N)}, got shape {ca.shape}"
        )
    ho, wo = ca.shape[4:]
    flat = ca.transpose(0, 1, 2, 4, 5, 3).reshape(C * HH * WW, ho * wo * N)
    return _from_course_cols(flat, (N, C, H, W), HH, WW, pad, stride, op)


def get_im2col_indices(x_shape, field_height, field_width, padding=1, stride=1):
    """Index arrays that gather the course's columns (cs231n's im2col.py).

    Parameters
    ----------
    x_shape : tuple (N, C, H, W)
    field_height, field_width : int
    padding, stride : int

    Returns
    -------
    k : ndarray of shape (C*fh*fw, 1), int
        Channel of each row.
    i, j : ndarrays of shape (C*fh*fw, H'*W'), int
        Row and column, in the zero-padded image, read by each entry:
        ``x_padded[:, k, i, j]`` has shape (N, C*fh*fw, H'*W').

    Raises
    ------
    TypeError, ValueError
        Bad shape or sizes, a window larger than the padded input.

    Examples
    --------
    >>> k, i, j = get_im2col_indices((1, 1, 3, 3), 2, 2, padding=0, stride=1)
    >>> i[:, 3], j[:, 3]
    (array([1, 1, 2, 2]), array([1, 2, 1, 2]))
    """
    op = "get_im2col_indices"
    if not (isinstance(x_shape, (tuple, list)) and len(x_shape) == 4
            and all(_v.is_int(v) and v >= 1 for v in x_shape)):
        raise ValueError(f"{op}: x_shape must be 4 positive ints (N, C, H, W), "
                         f"got {x_shape!r}")
    _, c, h, w = (int(v) for v in x_shape)
    fh, fw = _field(field_height, field_width, op)
    sh, sw = _v.positive_pair(stride, "stride", op)
    ph, pw = _v.non_negative_pair(padding, "padding", op)
    ho, wo = (h + 2 * ph - fh) // sh + 1, (w + 2 * pw - fw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(
            f"{op}: field {(fh, fw)} is larger than the padded image {x_shape} "
            f"with padding {(ph, pw)}")
    ch, di, dj = np.meshgrid(np.arange(c), np.arange(fh), np.arange(fw),
                             indexing="ij")
    oh, ow = np.meshgrid(np.arange(ho) * sh, np.arange(wo) * sw, indexing="ij")
    k = ch.reshape(-1, 1)
    i = di.reshape(-1, 1) + oh.reshape(1, -1)
    j = dj.reshape(-1, 1) + ow.reshape(1, -1)
    return k, i, j


def im2col_indices(x, field_height, field_width, padding=1, stride=1):
    """:func:`im2col_cython` under the course's fancy-indexing name.

    Same returns and errors as :func:`im2col_cython` (note the course's
    defaults ``padding=1, stride=1``).

    Examples
    --------
    >>> import numpy as np
    >>> im2col_indices(np.ones((2, 3, 4, 4)), 3, 3).shape   # padding=1
    (27, 32)
    """
    return _to_course_cols(x, field_height, field_width, padding, stride,
                           "im2col_indices")


def col2im_indices(cols, x_shape, field_height=3, field_width=3, padding=1,
                   stride=1):
    """:func:`col2im_cython` under the course's fancy-indexing name.

    Parameters
    ----------
    cols : array_like of shape (C*field_height*field_width, H'*W'*N)
    x_shape : tuple (N, C, H, W)
    field_height, field_width, padding, stride : int
        The course's defaults: a 3x3 window, padding 1, stride 1.

    Returns
    -------
    x : ndarray of shape x_shape
        As :func:`col2im_cython`.

    Raises
    ------
    TypeError, ValueError
        As :func:`col2im_cython`.

    Examples
    --------
    >>> import numpy as np
    >>> col2im_indices(np.ones((9, 9)), (1, 1, 3, 3))[0, 0]
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]])
    """
    return _from_course_cols(cols, x_shape, field_height, field_width,
                             padding, stride, "col2im_indices")
