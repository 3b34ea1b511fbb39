"""fastconv's public API used as a user would, for mypy (not collected by pytest).

tests/test_typing.py (and .ci/package, on the wheel) runs ``mypy --strict
--allow-untyped-calls tests/typecheck_api.py`` against the installed package: the calls below must type-check, and each line marked
``# type: ignore[...]`` must be an error (else the ignore is unused and mypy
fails), so the annotations are shown to reject what the kernels reject.
It also runs as a script (``python tests/typecheck_api.py``).
"""
import numpy as np
import numpy.typing as npt

import fastconv as fc
from fastconv import layers, losses, optim, shapes

rng = np.random.default_rng(0)
x: npt.NDArray[np.float32] = rng.standard_normal((2, 3, 8, 8), dtype=np.float32)
w: npt.NDArray[np.float32] = rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
b: npt.NDArray[np.float32] = np.zeros(4, dtype=np.float32)

# Kernels keep the dtype: float32 in, float32 out.
y: npt.NDArray[np.float32] = fc.conv2d(x, w, b, stride=1, padding=1)
y = fc.conv2d(x, w, None, stride=(1, 1), padding="same", algorithm="gemm")
gx, gw, gb = fc.conv2d_backward(np.ones_like(y), x, w, padding=1, groups=1)
gw32: npt.NDArray[np.float32] = gw
cols: npt.NDArray[np.float32] = fc.im2col(x, 3, padding=1)
back: npt.NDArray[np.float32] = fc.col2im(cols, (8, 8), 3, padding=1)
p, idx = fc.max_pool2d(y, 2, return_indices=True)
gp: npt.NDArray[np.float32] = fc.max_pool2d_backward(np.ones_like(p), idx, y.shape)
a: npt.NDArray[np.float32] = fc.avg_pool2d(y, kernel_size=(2, 2), stride=None)
algo: str = fc.select_algorithm(x.shape, w.shape)
plan = fc.conv_plan(x.shape, w.shape, np.float32, padding=1, algorithm="winograd4x4")
packed = plan.pack(w)
yp: npt.NDArray[np.float32] = plan.forward(x, w, b, relu=True, packed=packed)
gxp, gwp, gbp = plan.backward(np.ones_like(yp), x, w, packed=packed, out=np.empty_like(x))

r: npt.NDArray[np.float32] = fc.add(fc.relu(x), x, relu=True)
gl, gwl, gbl = fc.linear_backward(np.ones((2, 3), np.float32), x.reshape(2, -1),
                                  np.ones((3, x[0].size), np.float32))
yl: npt.NDArray[np.float32] = fc.linear(x.reshape(2, -1), gwl, gbl, relu=True)

x64 = x.astype(np.float64)
y64: npt.NDArray[np.float64] = fc.conv1d(x64[:, :, 0], x64[:1, :, 0, :3])
v64: npt.NDArray[np.float64] = fc.global_avg_pool2d(x64)

# Calculators, layers, losses, optimisers, settings.
n = shapes.conv_output_size(32, 3, stride=1, padding=1)
bytes_: int = shapes.tensor_bytes((2, 3, 8, 8), np.float32) + shapes.conv_params(3, 4, 3)
rf = shapes.receptive_field([(3, 1, 1), (2, 2)])
model = layers.Sequential(layers.Conv2d(3, 4, 3, padding=1), layers.ReLU(), layers.Flatten())
params: int = shapes.count_params(model)
scores = rng.standard_normal((2, 10), dtype=np.float32)
loss, grad = losses.softmax_cross_entropy(scores, np.array([1, 2]))
loss_value: float = loss
opt = optim.SGD(model, lr=0.1, momentum=0.9)
opt.zero_grad()
fc.set_num_threads(1)
threads: int = fc.get_num_threads()
version: str = fc.__version__


def rejected() -> None:
    """What the kernels reject, the annotations reject too (never called)."""
    fc.conv2d(x, w, padding="full")  # type: ignore[arg-type]
    fc.conv2d(x, w, algorithm="fft")  # type: ignore[arg-type]
    fc.conv2d(x.astype(np.float16), w)  # type: ignore[type-var]
    fc.conv2d(x, w, stride=(1, 1, 1))  # type: ignore[arg-type]
    fc.im2col([[1.0]], 3)  # type: ignore[arg-type]
    fc.max_pool2d_backward(gp, idx, "shape")  # type: ignore[arg-type]


if __name__ == "__main__":
    print(f"fastconv {version}: {algo}, output size {n}, receptive field {rf}, "
          f"{params} parameters, {bytes_} bytes, loss {loss_value:.3f}, {threads} thread")
