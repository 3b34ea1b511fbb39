"""Every public array kernel, with valid small inputs and its contracts.

``KERNELS`` lists one or more :class:`Kernel` entries per public kernel op
(variants: algorithms, dilation, training mode, ...).  tests/test_contracts.py
is parametrised from it, and its ``test_registry_covers_every_kernel`` fails
when a name of ``fastconv.__all__`` is neither registered here nor listed in
``NOT_KERNELS``, or when the ops registered and ``fastconv.reference.__all__``
(the twins) differ: a new op cannot be added without its contract tests.
tests/test_build.py takes its names from the same modules.

An entry's ``make(rng, dtype, N)`` returns ``(args, kwargs, n_terms)``: a
valid call with batch size ``N`` (``N = 0`` too) and the most products summed
into one output element (for the tolerance of conftest.py).

Why not fuzz/cases.py's builders: they decode a byte string into a (mostly
hostile) call, and the plain call that zero bytes give has a batch of 0 and
unit geometry; these tests need chosen batch sizes, strides, padding,
dilation and groups, and the number of terms summed.
"""

from dataclasses import dataclass

import numpy as np

import fastconv
import fastconv.reference

# ---- the contracts (tests/test_contracts.py, one test each) --------------
UNCHANGED = "inputs unchanged"     # no argument is modified (but ``writes``)
READ_ONLY = "read-only inputs"     # read-only arrays accepted; outputs writable
LAYOUTS = "memory layouts"         # non-contiguous, Fortran, negative strides: same results
DTYPE = "dtype preserved"          # outputs in the input dtype (``index_outputs``: int64)
EMPTY = "empty batch"              # N = 0 gives empty outputs (``param_outputs``: zeros)
OUT = "out= honoured"              # the result is ``out``, with the values of a call without it
BAD_DTYPE = "bad dtype"            # an integer or float16 array argument: TypeError
MIXED_DTYPE = "mixed dtypes"       # float32 next to float64 arrays: TypeError

ARRAY_CONTRACTS = frozenset({UNCHANGED, READ_ONLY, LAYOUTS, DTYPE, EMPTY, BAD_DTYPE,
                             MIXED_DTYPE})

# Names of fastconv.__all__ that are not array kernels, and why.
NOT_KERNELS = {
    # shape-level planning: no arrays in, a string or a ConvPlan out
    "select_algorithm", "conv_plan",
    # model surgery on layer objects (tests/test_convert.py)
    "fc_to_conv", "conv_to_fc", "convolutionalize",
    # settings and metadata (tests/test_build.py, tests/test_threads.py)
    "set_num_threads", "get_num_threads", "show_config", "__version__",
    # submodules
    "reference", "layers", "losses", "optim", "gradcheck", "shapes", "summary",
    "models", "compat",
}

ALGORITHMS = ["auto", "gemm", "direct"]


@dataclass(frozen=True)
class Kernel:
    """One registered call of a public kernel.

    name          : the function's name in fastconv and fastconv.reference.
    make          : ``make(rng, dtype, N) -> (args, kwargs, n_terms)``.
    variant       : what distinguishes this entry from others of ``name``.
    contracts     : the contracts that apply (the module's constants).
    writes        : argument positions or keywords the call writes by design.
    index_outputs : positions of the outputs that are int64 indices.
    param_outputs : positions of outputs shaped like a parameter (grad_weight,
                    grad_bias): on an empty batch they keep their shape, all 0.
    """

    name: str
    make: object
    variant: str = ""
    contracts: frozenset = ARRAY_CONTRACTS
    writes: tuple = ()
    index_outputs: tuple = ()
    param_outputs: tuple = ()

    @property
    def id(self):
        return f"{self.name}-{self.variant}" if self.variant else self.name

    @property
    def fast(self):
        """The compiled function, ``fastconv.<name>``."""
        return getattr(fastconv, self.name)

    @property
    def twin(self):
        """The NumPy twin, ``fastconv.reference.<name>``."""
        return getattr(fastconv.reference, self.name)


def _normal(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------
# im2col, 2-D convolution and pooling
# --------------------------------------------------------------------------

def _im2col(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 7, 6), 3), dict(stride=2, padding=1, dilation=1), 27


def _im2col_dilated(rng, dtype, N):
    x = _normal(rng, dtype, N, 2, 7, 8)
    return (x, (2, 3)), dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1)), 6


def _col2im(rng, dtype, N):
    cols = _normal(rng, dtype, N, 3 * 9, 4 * 3)    # output (7, 6), k3 s2 p1 -> 4x3
    return (cols, (7, 6), 3), dict(stride=2, padding=1, dilation=1), 9


def _conv2d(algorithm):
    def make(rng, dtype, N):
        x, w, b = _normal(rng, dtype, N, 4, 7, 6), _normal(rng, dtype, 6, 2, 3, 3), _normal(rng, dtype, 6)
        return (x, w, b), dict(stride=1, padding=1, groups=2, algorithm=algorithm), 18
    return make


def _conv2d_strided(rng, dtype, N):
    x, w = _normal(rng, dtype, N, 3, 9, 8), _normal(rng, dtype, 4, 3, 2, 3)
    return (x, w), dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2)), 18


def _conv2d_backward(algorithm):
    def make(rng, dtype, N):
        g, x = _normal(rng, dtype, N, 6, 7, 6), _normal(rng, dtype, N, 4, 7, 6)
        w = _normal(rng, dtype, 6, 2, 3, 3)
        kw = dict(stride=1, padding=1, groups=2, algorithm=algorithm)
        return (g, x, w), kw, max(1, N) * 42
    return make


def _max_pool2d(rng, dtype, N):
    x = _normal(rng, dtype, N, 3, 7, 6)
    return (x, 3), dict(stride=2, padding=1, return_indices=True), 1


def _max_pool2d_dilated(rng, dtype, N):
    x = _normal(rng, dtype, N, 2, 9, 8)
    return (x, (2, 3)), dict(stride=(2, 1), padding=1, dilation=2, ceil_mode=True), 1


def _max_pool2d_backward(rng, dtype, N):
    g = _normal(rng, dtype, N, 3, 4, 3)
    idx = rng.integers(0, 7 * 6, size=(N, 3, 4, 3)).astype(np.int64)
    return (g, idx, (N, 3, 7, 6)), {}, 9


def _avg_pool2d(rng, dtype, N):
    x = _normal(rng, dtype, N, 3, 7, 6)
    return (x, 3), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False), 9


def _avg_pool2d_backward(rng, dtype, N):
    g = _normal(rng, dtype, N, 3, 4, 4)            # 7x6, k3 s2 p1 ceil -> 4x4
    kw = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    return (g, (N, 3, 7, 6), 3), kw, 9


# --------------------------------------------------------------------------
# 1-D convolution and pooling, Lp-norm and global pooling
# --------------------------------------------------------------------------

def _conv1d(algorithm):
    def make(rng, dtype, N):
        x, w, b = _normal(rng, dtype, N, 4, 9), _normal(rng, dtype, 6, 2, 3), _normal(rng, dtype, 6)
        kw = dict(stride=2, padding=1, dilation=2, groups=2, algorithm=algorithm)
        return (x, w, b), kw, 6
    return make


def _conv1d_backward(algorithm):
    def make(rng, dtype, N):
        g, x = _normal(rng, dtype, N, 6, 9), _normal(rng, dtype, N, 4, 9)
        w = _normal(rng, dtype, 6, 2, 4)
        return (g, x, w), dict(padding="same", groups=2, algorithm=algorithm), max(1, N) * 27
    return make


def _max_pool1d(rng, dtype, N):
    kw = dict(stride=2, padding=1, dilation=2, ceil_mode=True, return_indices=True)
    return (_normal(rng, dtype, N, 3, 11), 3), kw, 1


def _max_pool1d_backward(rng, dtype, N):
    g = _normal(rng, dtype, N, 3, 5)
    idx = rng.integers(0, 11, size=(N, 3, 5)).astype(np.int64)
    return (g, idx, (N, 3, 11)), {}, 5


def _avg_pool1d(rng, dtype, N):
    kw = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    return (_normal(rng, dtype, N, 3, 11), 3), kw, 3


def _avg_pool1d_backward(rng, dtype, N):
    g = _normal(rng, dtype, N, 3, 6)               # 11, k3 s2 p1 ceil -> 6
    kw = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    return (g, (N, 3, 11), 3), kw, 3


def _lp_pool2d(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 7, 6), 2, 3), dict(stride=(2, 1), ceil_mode=True), 9


def _lp_pool2d_backward(rng, dtype, N):
    x, g = _normal(rng, dtype, N, 3, 7, 6), _normal(rng, dtype, N, 3, 3, 4)
    return (g, x, 2, 3), dict(stride=(2, 1)), 9


def _lp_pool1d(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 10), 3, 3), dict(stride=2, ceil_mode=True), 3


def _lp_pool1d_backward(rng, dtype, N):
    x = np.abs(_normal(rng, dtype, N, 3, 10))
    g = _normal(rng, dtype, N, 3, 4)
    return (g, x, 1.5, 3), dict(stride=2), 3


def _global_avg_pool2d(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 7, 6),), {}, 42


def _global_avg_pool2d_backward(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 1, 1), (N, 3, 7, 6)), {}, 1


# --------------------------------------------------------------------------
# 3-D convolution and pooling
# --------------------------------------------------------------------------

def _conv3d(rng, dtype, N):
    x, w, b = _normal(rng, dtype, N, 4, 5, 6, 5), _normal(rng, dtype, 6, 2, 3, 2, 2), _normal(rng, dtype, 6)
    kw = dict(stride=(1, 2, 1), padding=(1, 0, 1), dilation=(1, 1, 2), groups=2)
    return (x, w, b), kw, 24


def _conv3d_backward(rng, dtype, N):
    # (5, 6, 5), k (3, 2, 2), s (1, 2, 1), p (1, 0, 1), d (1, 1, 2) -> (5, 3, 5)
    g, x = _normal(rng, dtype, N, 6, 5, 3, 5), _normal(rng, dtype, N, 4, 5, 6, 5)
    w = _normal(rng, dtype, 6, 2, 3, 2, 2)
    kw = dict(stride=(1, 2, 1), padding=(1, 0, 1), dilation=(1, 1, 2), groups=2)
    return (g, x, w), kw, max(1, N) * 75


def _max_pool3d(rng, dtype, N):
    kw = dict(stride=2, padding=1, dilation=(1, 2, 1), ceil_mode=True, return_indices=True)
    return (_normal(rng, dtype, N, 2, 5, 7, 6), 3), kw, 1


def _max_pool3d_backward(rng, dtype, N):
    g = _normal(rng, dtype, N, 2, 3, 2, 3)
    idx = rng.integers(0, 5 * 4 * 6, size=(N, 2, 3, 2, 3)).astype(np.int64)
    return (g, idx, (N, 2, 5, 4, 6)), {}, 18


def _avg_pool3d(rng, dtype, N):
    kw = dict(stride=(2, 1, 2), padding=1, ceil_mode=True, count_include_pad=False)
    return (_normal(rng, dtype, N, 2, 5, 4, 6), 3), kw, 27


def _avg_pool3d_backward(rng, dtype, N):
    g = _normal(rng, dtype, N, 2, 3, 4, 4)         # (5, 4, 6), k3 s(2,1,2) p1 ceil -> (3, 4, 4)
    kw = dict(stride=(2, 1, 2), padding=1, ceil_mode=True, count_include_pad=False)
    return (g, (N, 2, 5, 4, 6), 3), kw, 27


# --------------------------------------------------------------------------
# locally connected (unshared weights)
# --------------------------------------------------------------------------

def _locally_connected2d(rng, dtype, N):
    # (7, 6), k (3, 2), s (2, 1), p 1, d (1, 2) -> (4, 6)
    x, w = _normal(rng, dtype, N, 3, 7, 6), _normal(rng, dtype, 4, 6, 3, 3, 2, 5)
    b = _normal(rng, dtype, 5, 4, 6)
    return (x, w, b), dict(stride=(2, 1), padding=1, dilation=(1, 2)), 18


def _locally_connected2d_backward(rng, dtype, N):
    g, x = _normal(rng, dtype, N, 5, 4, 6), _normal(rng, dtype, N, 3, 7, 6)
    w = _normal(rng, dtype, 4, 6, 3, 3, 2, 5)
    return (g, x, w), dict(stride=(2, 1), padding=1, dilation=(1, 2)), max(2, N) * 5


# --------------------------------------------------------------------------
# layer kernels: normalisation, activation, residual add, fully connected
# --------------------------------------------------------------------------

def _bn_params(rng, dtype, C):
    return (_normal(rng, dtype, C), rng.uniform(0.5, 2.0, C).astype(dtype),
            _normal(rng, dtype, C), _normal(rng, dtype, C))


def _batch_norm2d(training):
    def make(rng, dtype, N):
        x = _normal(rng, dtype, N, 3, 5, 4)
        kw = dict(training=training, momentum=0.2, relu=True)
        if training:
            kw["return_stats"] = True
        return (x, *_bn_params(rng, dtype, 3)), kw, max(1, N) * 20
    return make


def _batch_norm2d_backward(training):
    def make(rng, dtype, N):
        g, x = _normal(rng, dtype, N, 3, 5, 4), _normal(rng, dtype, N, 3, 5, 4)
        mean, invstd = _normal(rng, dtype, 3), rng.uniform(0.5, 2.0, 3).astype(dtype)
        y = _normal(rng, dtype, N, 3, 5, 4)
        kw = dict(training=training, y=y)
        return (g, x, mean, invstd, _normal(rng, dtype, 3)), kw, max(1, N) * 20
    return make


def _relu(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 5, 4),), {}, 1


def _relu_backward(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 5, 4), _normal(rng, dtype, N, 3, 5, 4)), {}, 1


def _add(rng, dtype, N):
    return (_normal(rng, dtype, N, 3, 5, 4), _normal(rng, dtype, N, 3, 5, 4)), dict(relu=True), 2


def _linear(rng, dtype, N):
    x, w, b = _normal(rng, dtype, N, 7), _normal(rng, dtype, 5, 7), _normal(rng, dtype, 5)
    return (x, w, b), dict(relu=True), 8


def _linear_backward(rng, dtype, N):
    g, x, w = _normal(rng, dtype, N, 5), _normal(rng, dtype, N, 7), _normal(rng, dtype, 5, 7)
    return (g, x, w), {}, max(5, N)


_GRADS = (1, 2)   # grad_weight, grad_bias of the backward kernels

KERNELS = [
    Kernel("im2col", _im2col),
    Kernel("im2col", _im2col_dilated, "dilated"),
    Kernel("col2im", _col2im),
    *[Kernel("conv2d", _conv2d(a), a) for a in ALGORITHMS],
    Kernel("conv2d", _conv2d_strided, "strided"),
    *[Kernel("conv2d_backward", _conv2d_backward(a), a, param_outputs=_GRADS) for a in ALGORITHMS],
    Kernel("max_pool2d", _max_pool2d, index_outputs=(1,)),
    Kernel("max_pool2d", _max_pool2d_dilated, "dilated"),
    Kernel("max_pool2d_backward", _max_pool2d_backward),
    Kernel("avg_pool2d", _avg_pool2d),
    Kernel("avg_pool2d_backward", _avg_pool2d_backward),
    *[Kernel("conv1d", _conv1d(a), a) for a in ALGORITHMS],
    *[Kernel("conv1d_backward", _conv1d_backward(a), a, param_outputs=_GRADS) for a in ALGORITHMS],
    Kernel("max_pool1d", _max_pool1d, index_outputs=(1,)),
    Kernel("max_pool1d_backward", _max_pool1d_backward),
    Kernel("avg_pool1d", _avg_pool1d),
    Kernel("avg_pool1d_backward", _avg_pool1d_backward),
    Kernel("lp_pool2d", _lp_pool2d),
    Kernel("lp_pool2d_backward", _lp_pool2d_backward),
    Kernel("lp_pool1d", _lp_pool1d),
    Kernel("lp_pool1d_backward", _lp_pool1d_backward),
    Kernel("global_avg_pool2d", _global_avg_pool2d),
    Kernel("global_avg_pool2d_backward", _global_avg_pool2d_backward),
    Kernel("conv3d", _conv3d),
    Kernel("conv3d_backward", _conv3d_backward, param_outputs=_GRADS),
    Kernel("max_pool3d", _max_pool3d, index_outputs=(1,)),
    Kernel("max_pool3d_backward", _max_pool3d_backward),
    Kernel("avg_pool3d", _avg_pool3d),
    Kernel("avg_pool3d_backward", _avg_pool3d_backward),
    Kernel("locally_connected2d", _locally_connected2d),
    Kernel("locally_connected2d_backward", _locally_connected2d_backward, param_outputs=_GRADS),
    Kernel("batch_norm2d", _batch_norm2d(False), "eval", contracts=ARRAY_CONTRACTS | {OUT}),
    # training: updates running_mean / running_var (arguments 1, 2) in place;
    # returns (y, batch mean, batch invstd): the statistics are per channel
    Kernel("batch_norm2d", _batch_norm2d(True), "training", writes=(1, 2),
           contracts=(ARRAY_CONTRACTS | {OUT}) - {EMPTY}, param_outputs=(1, 2)),
    *[Kernel("batch_norm2d_backward", _batch_norm2d_backward(t), "training" if t else "eval",
             contracts=ARRAY_CONTRACTS | {OUT}, param_outputs=_GRADS) for t in (True, False)],
    Kernel("relu", _relu, contracts=ARRAY_CONTRACTS | {OUT}),
    Kernel("relu_backward", _relu_backward, contracts=ARRAY_CONTRACTS | {OUT}),
    Kernel("add", _add, contracts=ARRAY_CONTRACTS | {OUT}),
    Kernel("linear", _linear, contracts=ARRAY_CONTRACTS | {OUT}),
    Kernel("linear_backward", _linear_backward, param_outputs=_GRADS),
]


def with_contract(contract):
    """The entries to which ``contract`` applies."""
    return [k for k in KERNELS if contract in k.contracts]
