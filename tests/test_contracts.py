"""Cross-cutting contracts of every public kernel, for each entry of
tests/kernel_registry.py (``KERNELS``) to which the contract applies:

* no input array is modified (also: read-only inputs are accepted);
* non-contiguous, Fortran-ordered, negatively strided and transposed inputs give the
  results of their contiguous copies;
* the output dtype is the input dtype (indices: int64);
* N = 0 returns empty arrays of the right shape;
* an integer or float16 array argument, or float32 next to float64, is a TypeError;
* out= is honoured (the result is out) and a wrong out is a ValueError;
* and the registry lists every kernel of fastconv.__all__ and fastconv.reference.__all__.

Also 1x1 images and kernels as large as the input.
"""

import numpy as np
import pytest
from kernel_registry import (
    ALGORITHMS,
    BAD_DTYPE,
    DTYPE,
    EMPTY,
    KERNELS,
    LAYOUTS,
    MIXED_DTYPE,
    NOT_KERNELS,
    OUT,
    READ_ONLY,
    UNCHANGED,
    with_contract,
)

import fastconv
import fastconv.reference


def _kernels(contract):
    entries = with_contract(contract)
    return pytest.mark.parametrize("kernel", entries, ids=[k.id for k in entries])


def test_registry_covers_every_kernel():
    public = set(fastconv.__all__)
    registered = {k.name for k in KERNELS}
    assert not NOT_KERNELS - public, f"NOT_KERNELS names no longer public: {NOT_KERNELS - public}"
    assert not registered & NOT_KERNELS, registered & NOT_KERNELS
    missing = public - NOT_KERNELS - registered
    assert not missing, (f"public kernels without an entry in tests/kernel_registry.py: "
                         f"{sorted(missing)} (or, if not array kernels, add them to NOT_KERNELS)")
    assert registered <= public, sorted(registered - public)
    assert registered == set(fastconv.reference.__all__), (
        "fastconv.reference.__all__ (the twins) differs from the registered kernels: "
        f"{sorted(registered ^ set(fastconv.reference.__all__))}")
    assert len({k.id for k in KERNELS}) == len(KERNELS), "two entries share an id"


def _call(kernel, impl, args, kwargs):
    """The outputs as a list; arguments the call writes by design are copied
    first, so that every call sees the same values."""
    args = [a.copy() if i in kernel.writes else a for i, a in enumerate(args)]
    out = getattr(impl, kernel.name)(*args, **kwargs)
    return list(out) if isinstance(out, tuple) else [out]


def _arrays(kernel, args):
    """(position, array) of the array arguments the call only reads."""
    return [(i, a) for i, a in enumerate(args) if isinstance(a, np.ndarray) and i not in kernel.writes]


def _check_results(got, want, dtype, n_terms, msg, tol):
    assert len(got) == len(want), msg
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, f"output {k}: {msg}"
        if g.dtype.kind == "i":
            np.testing.assert_array_equal(g, w, err_msg=f"output {k}: {msg}")
        else:
            np.testing.assert_allclose(g, w, err_msg=f"output {k}: {msg}", **tol(dtype, n_terms))


@_kernels(UNCHANGED)
def test_inputs_unchanged(kernel, impl, dtype, rng):
    args, kwargs, _ = kernel.make(rng, dtype, 2)
    arrays = _arrays(kernel, args)
    assert arrays, "no array argument"
    before = [(a.copy(), a.flags.c_contiguous) for _, a in arrays]
    others = [(i, a) for i, a in enumerate(args) if not isinstance(a, np.ndarray)]
    kw_before = {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray)}
    getattr(impl, kernel.name)(*args, **kwargs)
    for (i, a), (copy, contiguous) in zip(arrays, before):
        np.testing.assert_array_equal(a, copy, err_msg=f"{kernel.id}: argument {i} was modified")
        assert a.flags.c_contiguous == contiguous
    for i, v in others:
        assert args[i] == v
    for k, v in kw_before.items():
        np.testing.assert_array_equal(kwargs[k], v, err_msg=f"{kernel.id}: {k}= was modified")


@_kernels(READ_ONLY)
def test_read_only_inputs(kernel, impl, dtype, rng, tol):
    args, kwargs, n_terms = kernel.make(rng, dtype, 2)
    want = _call(kernel, impl, args, kwargs)
    ro = list(args)
    for i, a in _arrays(kernel, args):
        ro[i] = a.copy()
        ro[i].setflags(write=False)
    kw_ro = dict(kwargs)
    for k, v in kwargs.items():
        if isinstance(v, np.ndarray):
            kw_ro[k] = v.copy()
            kw_ro[k].setflags(write=False)
    got = _call(kernel, impl, ro, kw_ro)
    _check_results(got, want, dtype, n_terms, f"{kernel.id} read-only inputs", tol)
    for out in got:  # outputs are fresh, writable arrays
        assert out.flags.writeable


def _strided(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
    view = big[..., 1::2]
    view[...] = a
    return view


def _fortran(a):
    return np.asfortranarray(a)


def _negative(a):
    rev = (slice(None, None, -1),) * a.ndim
    return np.ascontiguousarray(a[rev])[rev]


def _last_two_axes(a):
    """The last two axes longer than 1 (the rows and columns of an image;
    N and C of an (N, C, 1, 1) array), or None."""
    axes = [i for i, n in enumerate(a.shape) if n > 1][-2:]
    return axes if len(axes) == 2 else None


def _transposed(a):  # C-order storage of the swapped axes
    axes = _last_two_axes(a)
    if axes is None:
        return _strided(a)
    return np.ascontiguousarray(np.swapaxes(a, *axes)).swapaxes(*axes)


def _negative_last_two(a):  # the x[:, :, ::-1] kind of view, on rows and columns
    axes = _last_two_axes(a)
    if axes is None:
        return _negative(a)
    rev = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(a.ndim))
    return np.ascontiguousarray(a[rev])[rev]


LAYOUT_FNS = {
    "strided": _strided,
    "fortran": _fortran,
    "negative": _negative,
    "negative-hw": _negative_last_two,
    "transposed": _transposed,
}


@pytest.mark.parametrize("layout", list(LAYOUT_FNS.values()), ids=list(LAYOUT_FNS))
@_kernels(LAYOUTS)
def test_memory_layouts(kernel, layout, impl, dtype, rng, tol):
    args, kwargs, n_terms = kernel.make(rng, dtype, 2)
    want = _call(kernel, impl, args, kwargs)
    odd = list(args)
    for i, a in _arrays(kernel, args):
        odd[i] = layout(a)
        np.testing.assert_array_equal(odd[i], a)  # same values, other memory layout
        if _last_two_axes(a) is not None:
            assert not odd[i].flags.c_contiguous, f"argument {i}"
    got = _call(kernel, impl, odd, kwargs)
    _check_results(got, want, dtype, n_terms,
                   f"{kernel.id} layout={layout.__name__} dtype={np.dtype(dtype).name}", tol)


@_kernels(DTYPE)
def test_dtype_preserved(kernel, impl, dtype, rng):
    args, kwargs, _ = kernel.make(rng, dtype, 2)
    for k, out in enumerate(_call(kernel, impl, args, kwargs)):
        assert isinstance(out, np.ndarray)
        want = np.int64 if k in kernel.index_outputs else dtype
        assert out.dtype == want, f"{kernel.id} output {k}: {out.dtype} != {np.dtype(want)}"


@_kernels(EMPTY)
def test_empty_batch(kernel, impl, dtype, rng):
    args, kwargs, _ = kernel.make(rng, dtype, 2)
    full = _call(kernel, impl, args, kwargs)
    args0, kwargs0, _ = kernel.make(rng, dtype, 0)
    empty = _call(kernel, impl, args0, kwargs0)
    assert len(empty) == len(full)
    for k, (e, f) in enumerate(zip(empty, full)):
        assert e.dtype == f.dtype, f"{kernel.id} output {k}"
        if k in kernel.param_outputs:
            # grad_weight / grad_bias keep their shapes and are zero for an empty batch
            assert e.shape == f.shape, f"{kernel.id} output {k}: {e.shape}"
            np.testing.assert_array_equal(e, np.zeros_like(f))
        else:
            assert e.shape == (0,) + f.shape[1:], f"{kernel.id} output {k}: {e.shape} vs {f.shape}"


def _float_arrays(args, kwargs):
    """Keys (positions, keywords) of the floating-point array arguments."""
    keys = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return keys + [k for k, v in kwargs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]


def _replace(args, kwargs, key, value):
    args, kwargs = list(args), dict(kwargs)
    if isinstance(key, int):
        args[key] = value
    else:
        kwargs[key] = value
    return args, kwargs


def _get(args, kwargs, key):
    return args[key] if isinstance(key, int) else kwargs[key]


@pytest.mark.parametrize("bad", [np.int32, np.int64, np.float16], ids=lambda d: np.dtype(d).name)
@_kernels(BAD_DTYPE)
def test_bad_dtype_is_a_type_error(kernel, bad, impl, dtype, rng):
    """Each float array argument in turn given as ``bad``: TypeError."""
    args, kwargs, _ = kernel.make(rng, dtype, 2)
    for key in _float_arrays(args, kwargs):
        a, kw = _replace(args, kwargs, key, _get(args, kwargs, key).astype(bad))
        with pytest.raises(TypeError):
            getattr(impl, kernel.name)(*a, **kw)


@_kernels(MIXED_DTYPE)
def test_mixed_dtypes_are_a_type_error(kernel, impl, dtype, rng):
    """One float array argument in the other float dtype: TypeError."""
    args, kwargs, _ = kernel.make(rng, dtype, 2)
    other = np.float64 if dtype == np.float32 else np.float32
    keys = _float_arrays(args, kwargs)
    if len(keys) < 2:   # a lone float array cannot disagree (relu: one input)
        keys = []
    for key in keys:
        a, kw = _replace(args, kwargs, key, _get(args, kwargs, key).astype(other))
        with pytest.raises(TypeError):
            getattr(impl, kernel.name)(*a, **kw)
    assert keys or len(_float_arrays(args, kwargs)) == 1


@_kernels(OUT)
def test_out_honoured(kernel, impl, dtype, rng, tol):
    args, kwargs, n_terms = kernel.make(rng, dtype, 2)
    want = _call(kernel, impl, args, kwargs)
    out = np.full_like(want[0], np.nan)
    got = _call(kernel, impl, args, dict(kwargs, out=out))
    assert got[0] is out, f"{kernel.id}: the result is not out"
    _check_results(got, want, dtype, n_terms, f"{kernel.id} out=", tol)
    other = np.float64 if dtype == np.float32 else np.float32
    bad_outs = {
        "shape": np.empty(want[0].shape + (1,), dtype),
        "dtype": np.empty_like(want[0], dtype=other),
        "layout": np.empty(want[0].shape[::-1], dtype).T,
        "read-only": np.empty_like(want[0]),
    }
    bad_outs["read-only"].setflags(write=False)
    for what, bad in bad_outs.items():
        with pytest.raises(ValueError, match="out"):
            _call(kernel, impl, args, dict(kwargs, out=bad))
            pytest.fail(f"{kernel.id}: an out of the wrong {what} was accepted")


# --------------------------------------------------------------------------
# 1x1 images and kernels as large as the input (expected values computed here)
# --------------------------------------------------------------------------


def test_one_by_one_image(impl, dtype, rng, tol):
    x = rng.standard_normal((2, 3, 1, 1)).astype(dtype)
    np.testing.assert_array_equal(impl.im2col(x, 1), x.reshape(2, 3, 1))
    np.testing.assert_array_equal(impl.col2im(x.reshape(2, 3, 1), (1, 1), 1), x)
    w = rng.standard_normal((4, 3, 1, 1)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    want = np.einsum("nc,fc->nf", x[:, :, 0, 0].astype(np.float64), w[:, :, 0, 0].astype(np.float64)) + b
    for algorithm in ALGORITHMS:
        y = impl.conv2d(x, w, b, algorithm=algorithm)
        assert y.shape == (2, 4, 1, 1)
        np.testing.assert_allclose(y[:, :, 0, 0], want, err_msg=f"conv2d 1x1 {algorithm}", **tol(dtype, 3))
    y, i = impl.max_pool2d(x, 1, return_indices=True)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(i, np.zeros(x.shape, dtype=np.int64))
    np.testing.assert_array_equal(impl.avg_pool2d(x, 1), x)
    g = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(impl.max_pool2d_backward(g, i, x.shape), g)
    np.testing.assert_array_equal(impl.avg_pool2d_backward(g, x.shape, 1), g)
    # 3x3 kernel on a 1x1 image with padding 1: only the centre tap sees data
    w3 = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    want = np.einsum("nc,fc->nf", x[:, :, 0, 0].astype(np.float64), w3[:, :, 1, 1].astype(np.float64))
    for algorithm in ALGORITHMS:
        y = impl.conv2d(x, w3, padding=1, algorithm=algorithm)
        np.testing.assert_allclose(y[:, :, 0, 0], want, err_msg=f"conv2d 3x3 pad1 on 1x1 {algorithm}",
                                   **tol(dtype, 3))


def test_kernel_equals_input(impl, dtype, rng, tol):
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    cols = impl.im2col(x, (5, 4))
    np.testing.assert_array_equal(cols, x.reshape(2, 60, 1))
    np.testing.assert_array_equal(impl.col2im(cols, (5, 4), (5, 4)), x)
    w = rng.standard_normal((6, 3, 5, 4)).astype(dtype)
    want = np.einsum("nchw,fchw->nf", x.astype(np.float64), w.astype(np.float64))
    for algorithm in ALGORITHMS:
        y = impl.conv2d(x, w, algorithm=algorithm)
        assert y.shape == (2, 6, 1, 1)
        np.testing.assert_allclose(y[:, :, 0, 0], want, err_msg=f"conv2d kernel==input {algorithm}",
                                   **tol(dtype, 60))
        g = rng.standard_normal((2, 6, 1, 1)).astype(dtype)
        gx, gw, gb = impl.conv2d_backward(g, x, w, algorithm=algorithm)
        g64 = g[:, :, 0, 0].astype(np.float64)
        np.testing.assert_allclose(gx, np.einsum("nf,fchw->nchw", g64, w.astype(np.float64)),
                                   err_msg=f"grad_x kernel==input {algorithm}", **tol(dtype, 6))
        np.testing.assert_allclose(gw, np.einsum("nf,nchw->fchw", g64, x.astype(np.float64)),
                                   err_msg=f"grad_weight kernel==input {algorithm}", **tol(dtype, 2))
        np.testing.assert_allclose(gb, g64.sum(0), err_msg=f"grad_bias kernel==input {algorithm}", **tol(dtype, 2))
    y, i = impl.max_pool2d(x, (5, 4), return_indices=True)
    flat = x.reshape(2, 3, 20)
    np.testing.assert_array_equal(y[:, :, 0, 0], flat.max(-1))
    np.testing.assert_array_equal(i[:, :, 0, 0], flat.argmax(-1))
    np.testing.assert_allclose(impl.avg_pool2d(x, (5, 4))[:, :, 0, 0], flat.astype(np.float64).mean(-1),
                               **tol(dtype, 20))
