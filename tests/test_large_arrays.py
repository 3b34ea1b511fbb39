"""Arrays of more than 2**31 elements (opt-in: ``pytest --run-slow``).

Every index past 2**31 must be right: im2col's output, max pooling's input,
outputs and indices, conv2d's input.  The big inputs are np.zeros (pages
the kernel only reads stay unallocated) with a few non-zero cells placed
past element 2**31; the expected values follow from where they are.  Peak
memory about 9 GB (the im2col output is written in full).  Run one at a
time on a shared machine.
"""
import numpy as np
import pytest

import fastconv

pytestmark = pytest.mark.slow

BIG = 2**31


def test_im2col_output_past_2_31_elements():
    # 432x432 input, 216x216 kernel: 46656 rows x 47089 columns.
    H = 432
    k = H // 2
    x = np.random.default_rng(0).standard_normal((1, 1, H, H)).astype(np.float32)
    cols = fastconv.im2col(x, k)
    L = (H - k + 1) ** 2
    assert cols.shape == (1, k * k, L) and cols.size > BIG
    flat = cols.reshape(-1)
    rng = np.random.default_rng(1)
    picks = np.concatenate([rng.integers(0, cols.size, 200_000),
                            rng.integers(BIG - 10**6, BIG + 10**6, 100_000),
                            np.arange(cols.size - 1000, cols.size)])
    row, l = np.divmod(picks, L)
    i, j = np.divmod(row, k)
    oh, ow = np.divmod(l, H - k + 1)
    np.testing.assert_array_equal(flat[picks], x[0, 0, oh + i, ow + j])


def _sparse_big(shape, cells):
    """np.zeros(shape) with ``cells`` (flat index -> value) set."""
    x = np.zeros(shape, np.float32)
    flat = x.reshape(-1)
    for p, v in cells.items():
        flat[p] = v
    return x


def test_max_pool2d_input_past_2_31_elements():
    # 2**16 planes of 128 x 258 cells: plane offsets pass 2**31 at plane
    # 65029; 8x8 windows keep the output and indices small.
    N, C, H, W = 1, 2**16, 128, 256 + 2
    K = 8
    cells = {BIG + 5: 3.0, BIG + 7 * H * W + 3 * W + 100: 2.0,
             N * C * H * W - 3: 7.0, 12: 1.0}     # one per window, all pooled
    x = _sparse_big((N, C, H, W), cells)
    assert x.size > BIG
    y, idx = fastconv.max_pool2d(x, K, return_indices=True)
    assert y.shape == (N, C, H // K, W // K)
    want = np.zeros(y.shape, np.float32)
    want_idx = np.broadcast_to(np.arange(H // K)[:, None] * K * W
                               + np.arange(W // K) * K, y.shape).copy()
    for p, v in cells.items():
        c, rest = divmod(p, H * W)
        h, w = divmod(rest, W)
        want[0, c, h // K, w // K] = v
        want_idx[0, c, h // K, w // K] = rest
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(idx, want_idx)
    gx = fastconv.max_pool2d_backward(y, idx, x.shape)      # input-sized again
    np.testing.assert_array_equal(gx.reshape(-1)[list(cells)], list(cells.values()))
    assert gx.sum(dtype=np.float64) == sum(cells.values())


def test_conv2d_input_past_2_31_elements():
    # A single (2**16 + 64) x (2**15 + 2) image; stride 8 keeps the output small.
    H, W = 2**16 + 64, 2**15 + 2
    cells = {BIG + 8 * W + 16: 1.5, BIG + 3 * W + 9: -2.0, 8: 4.0}
    x = _sparse_big((1, 1, H, W), cells)
    assert x.size > BIG
    w = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    for algorithm in ("gemm", "direct"):
        y = fastconv.conv2d(x, w, stride=8, padding=1, algorithm=algorithm)
        Ho, Wo = (H - 1) // 8 + 1, (W - 1) // 8 + 1
        assert y.shape == (1, 1, Ho, Wo)
        want = np.zeros(y.shape, np.float32)
        for p, v in cells.items():      # cell (h, w) is tap (h - 8*oh + 1, ...)
            h, c = divmod(p, W)
            for oh in range(max(0, (h - 1 + 7) // 8), min(Ho, (h + 1) // 8 + 1)):
                for ow in range(max(0, (c - 1 + 7) // 8), min(Wo, (c + 1) // 8 + 1)):
                    i, j = h - 8 * oh + 1, c - 8 * ow + 1
                    if 0 <= i < 3 and 0 <= j < 3:
                        want[0, 0, oh, ow] += v * w[0, 0, i, j]
        np.testing.assert_array_equal(y, want, err_msg=algorithm)
