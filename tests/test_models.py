"""fastconv.models against their torch.nn twins (fastconv.torch_models).

Same weights (BatchNorm's affine parameters and running statistics randomised,
so that they matter), same batches: scores, loss, input gradient, every
parameter gradient and the running statistics, in training and in eval mode,
and the parameters after SGD steps with momentum, for fastconv models in
float32 and float64.  The twin always computes in float64 from the same
values (float32 weights and inputs converted exactly; the twin takes the
model's weights and buffers again before each pass, so that the float32 and
float64 trajectories do not drift apart): it is the oracle, so the tolerance
measures fastconv's error alone.  (PyTorch's own float32 pass
is no oracle: its BatchNorm backward came out 5e-3 off the float64 result on
one of these batches, ResNet-20's first training step, where fastconv's
float32 was 1.2e-6 off.)  The
sequence eval -> train + SGD -> train + SGD -> eval also catches state that
goes stale (a BatchNorm folded into a convolution and not refolded after the
weights or the statistics changed).  Then the layer API's contract on these
models: returned arrays are never overwritten by later calls, inputs are never
modified, and results do not depend on the thread count.

This file is the safety net of the layer work of issue 11 (fused,
buffer-reusing layers).  Float32 gradients are compared in norm, not
elementwise (see GRAD_NORM_RTOL32: ReLU's kink turns one rounding
difference into a whole element's gradient).

Tolerances: the policy of conftest.py (RTOL/ATOL for one term, relative to
O(1) values) applied to each compared tensor with its absolute tolerance
scaled by the tensor's largest magnitude, times the network's depth L (weight
layers on the longest path): each layer's rounding error is bounded like one
kernel's, and L of them in a chain add up to at most L times one.  Measured
float32 errors: at most about 2e-6 of a tensor's largest value, 1/40 to 1/20
of the tolerance; float64 3e-14, 1/500 of it.  A wrong layer or a different
BatchNorm epsilon or momentum is 1e-4 or more.
"""
import functools

import numpy as np
import pytest

import fastconv
from fastconv import losses, models, optim, torch_models

# name -> (input shape of one image, test batch, depth L)
CASES = {
    "resnet20": ((3, 32, 32), 4, 20),           # 19 convolutions + FC
    "vgg_small": ((3, 64, 64), 2, 10),          # 8 convolutions + 2 FC
    "lenet": ((1, 28, 28), 5, 4),               # 2 convolutions + 2 FC
    "mobilenet_small": ((3, 32, 32), 4, 16),    # 15 convolutions + FC
    "alexnet_small": ((3, 127, 127), 2, 6),     # 4 convolutions + 2 FC
}
LR, MOMENTUM = 0.05, 0.9
DTYPES = [np.float32, np.float64]


def _randomise_batchnorm(model, rng):
    """Random BatchNorm weights, biases and running statistics, in place."""
    state = model.state_dict()
    for key, value in state.items():
        prefix, leaf = key.rsplit(".", 1)
        if prefix + ".running_mean" not in state or leaf == "num_batches_tracked":
            continue
        low, high = {"weight": (0.5, 1.5), "bias": (-0.3, 0.3), "running_mean": (-0.3, 0.3),
                     "running_var": (0.5, 2.0)}[leaf]
        state[key] = rng.uniform(low, high, value.shape).astype(value.dtype)
    model.load_state_dict(state)


def _depthwise_as_dense(torch, conv, x):
    weight = torch.eye(conv.in_channels, dtype=x.dtype)[:, :, None, None] * conv.weight
    return torch.nn.functional.conv2d(x, weight, conv.bias, conv.stride, conv.padding,
                                      conv.dilation)


def _pair(torch, name, dtype, seed):
    """The model (BatchNorm randomised), its float64 twin, the rng."""
    rng = np.random.default_rng(seed)
    model = getattr(models, name)(dtype=dtype, rng=rng)
    _randomise_batchnorm(model, rng)
    twin = torch_models.load_from(torch_models.build(name), model).double()
    # PyTorch's float64 grouped convolution takes seconds a call at 512
    # channels: the oracle computes each depthwise layer as a dense
    # convolution with a block-diagonal weight (the same sums plus exact
    # zeros), on the twin's own (C, 1, kh, kw) parameter.
    for conv in twin.modules():
        if isinstance(conv, torch.nn.Conv2d) and conv.groups > 1:
            assert conv.groups == conv.in_channels == conv.out_channels
            conv.forward = functools.partial(_depthwise_as_dense, torch, conv)
    return model, twin, rng


def _close(got, want, base, depth, what):
    want = np.asarray(want)
    scale = float(np.abs(want).max(initial=0.0))
    np.testing.assert_allclose(got, want, rtol=base["rtol"] * depth,
                               atol=base["atol"] * depth * scale, err_msg=what)


# A float32 pre-activation within rounding of 0 can fall on the other side of
# a ReLU than in the float64 oracle; that element's gradient then differs
# entirely, and the difference spreads through the layers below it (one such
# flip among 262,144 values made MobileNet's input gradient 0.4% off in norm,
# with single elements far beyond any elementwise tolerance).  So float32
# gradients are compared in norm: a wrong formula is off by O(1).  The bound
# is GRAD_NORM_RTOL32, or a factor times the error PyTorch's own float32 pass
# makes on the same tensor (both against the float64 oracle), whichever is
# larger.  The factor is 3 with every convolution on the GEMM (the direct
# sum's rounding, as PyTorch's); with algorithm="auto" Winograd F(4x4, 3x3)
# runs, which rounds about 11x coarser than the direct sum per layer (README
# "Exactness": 4.8e-6 against 4.4e-7), and train-mode BatchNorm on a batch of
# 4 amplifies each difference in the layers above it: 2 x 11.
GRAD_NORM_RTOL32 = 1e-2
TORCH32_FACTOR = {"gemm": 3, "auto": 22}


def _rel_norm(got, want):
    want = np.asarray(want, np.float64)
    err = float(np.linalg.norm(np.asarray(got, np.float64) - want))
    return err / max(float(np.linalg.norm(want)), 1e-30)


def _close_grad(got, want, base, depth, what, torch32=None, algorithm="auto"):
    if np.asarray(got).dtype != np.float32:
        return _close(got, want, base, depth, what)
    bound = GRAD_NORM_RTOL32
    if torch32 is not None:
        bound = max(bound, TORCH32_FACTOR[algorithm] * _rel_norm(torch32, want))
    err = _rel_norm(got, want)
    assert err <= bound, f"{what}: relative error {err:.3g} in norm, bound {bound:.3g}"


def _conv_layers(model):
    """Every Conv2d in model (children, blocks' bodies, ...)."""
    stack = [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, fastconv.layers.Conv2d):
            yield layer
        stack.extend(layer._children.values())


def _sync(torch, theirs, ours):
    """The twin takes the model's current weights and buffers (converted to float64)."""
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def _check_pass(torch, ours, theirs, x, y, train, base, depth, what, theirs32=None,
                algorithm="auto"):
    """One forward + loss + backward on both, from the same weights; compare everything."""
    _sync(torch, theirs, ours)
    ours.train(train)
    theirs.train(train)
    ours.zero_grad()
    theirs.zero_grad(set_to_none=False)
    scores = ours.forward(x)
    loss, grad = losses.softmax_cross_entropy(scores, y)
    grad_x = ours.backward(grad)

    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    st = theirs(xt)
    lt = torch.nn.functional.cross_entropy(st, torch.from_numpy(y))
    lt.backward()
    t32 = {}
    if theirs32 is not None:        # PyTorch's own float32 error: the yardstick
        _sync(torch, theirs32, ours)
        theirs32.train(train)
        theirs32.zero_grad(set_to_none=False)
        x32 = torch.from_numpy(x).requires_grad_()
        torch.nn.functional.cross_entropy(theirs32(x32), torch.from_numpy(y)).backward()
        t32 = {k: p.grad.numpy() for k, p in theirs32.named_parameters()}
        t32["x"] = x32.grad.numpy()

    assert scores.dtype == grad_x.dtype == x.dtype, what
    _close(scores, st.detach().numpy(), base, depth, f"{what}: scores")
    _close(loss, lt.item(), base, depth, f"{what}: loss")
    _close_grad(grad_x, xt.grad.numpy(), base, depth, f"{what}: grad_x", t32.get("x"),
                algorithm)
    named = dict(theirs.named_parameters())
    assert list(ours.grads) == list(named), what
    for key, g in ours.grads.items():
        _close_grad(g, named[key].grad.numpy(), base, depth, f"{what}: grad of {key}",
                    t32.get(key), algorithm)
    _check_state(ours, theirs, base, depth, f"{what}: state after the pass")


def _check_state(ours, theirs, base, depth, what):
    state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        want = state[key].numpy()
        if value.dtype.kind == "f":
            _close(value, want, base, depth, f"{what}: {key}")
        else:
            np.testing.assert_array_equal(value, want, err_msg=f"{what}: {key}")


@pytest.mark.parametrize("dtype, algorithm", [(np.float32, "auto"), (np.float32, "gemm"),
                                              (np.float64, "auto")],
                         ids=lambda v: v if isinstance(v, str) else np.dtype(v).name)
@pytest.mark.parametrize("name", list(CASES))
def test_model_matches_its_torch_twin(name, dtype, algorithm, torch, tol):
    shape, batch, depth = CASES[name]
    ours, theirs, rng = _pair(torch, name, dtype, seed=len(name))
    if algorithm != "auto":
        for layer in _conv_layers(ours):
            layer.algorithm = algorithm
    theirs32 = torch_models.build(name) if dtype == np.float32 else None
    base = tol(dtype)
    check = functools.partial(_check_pass, torch, ours, theirs, theirs32=theirs32,
                              algorithm=algorithm)
    _check_state(ours, theirs, base, depth, "loaded weights")

    def batch_of():
        return (rng.standard_normal((batch, *shape)).astype(dtype),
                rng.integers(0, 10, batch))

    # eval first: the running statistics were randomised, not learnt
    check(*batch_of(), False, base, depth, "eval")

    opt = optim.SGD(ours, lr=LR, momentum=MOMENTUM)
    topt = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM)
    velocity = {}
    for step in (1, 2):        # step 2 uses the momentum buffers of step 1
        what = f"train step {step}"
        check(*batch_of(), True, base, depth, what)
        before = ours.state_dict()
        opt.step()
        topt.step()
        if dtype == np.float32:
            # the gradients were compared in norm above; the step is SGD's
            # (PyTorch's formula: v = momentum * v + g, w -= lr * v) on them
            after = ours.state_dict()
            for key, g in ours.grads.items():
                velocity[key] = MOMENTUM * velocity.get(key, 0) + g.astype(np.float64)
                _close(after[key], before[key] - LR * velocity[key], base, depth,
                       f"{what}: SGD step of {key}")
        else:
            _check_state(ours, theirs, base, depth, f"{what}: after SGD")
    # the weights and the running statistics changed since the first eval pass
    check(*batch_of(), False, base, depth, "eval after training")


def test_state_dict_keys_are_the_twins(torch):
    for name in CASES:
        state = getattr(models, name)(rng=0).state_dict()
        twin = torch_models.build(name).state_dict()
        assert list(state) == list(twin), name
        for key, value in twin.items():
            assert state[key].shape == tuple(value.shape), (name, key)
    with pytest.raises(ValueError, match="keys"):
        torch_models.load_from(torch_models.build("lenet"), models.resnet20(rng=0))


def test_demo_network_is_lenet():
    from fastconv import demo

    a = demo.build_model((1, 8, 8), 10, rng=3).state_dict()
    b = models.lenet(input_shape=(1, 8, 8), rng=3).state_dict()
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def _train_step(model, x, y):
    model.train()
    model.zero_grad()
    scores = model.forward(x)
    _, grad = losses.softmax_cross_entropy(scores, y)
    return scores, model.backward(grad)


def _record_returns(model):
    """Wrap forward and backward of the model and of every layer in it so that
    each array they return is recorded with a copy of its values."""
    records = []
    for layer in model._walk():
        for method in ("forward", "backward"):
            def spy(arg, call=getattr(layer, method),
                    what=f"{type(layer).__name__}.{method}"):
                out = call(arg)
                records.append((what, out, out.copy()))
                return out
            setattr(layer, method, spy)
    return records


@pytest.mark.parametrize("name", list(CASES))
def test_returned_arrays_are_not_overwritten(name):
    """API.md: an array that forward or backward returns -- the model's or any
    layer's in it -- belongs to the caller and is never overwritten by a later
    call; no input is modified."""
    shape, batch, _ = CASES[name]
    rng = np.random.default_rng(7)
    model = getattr(models, name)(rng=rng)
    x1, x2 = (rng.standard_normal((batch, *shape)).astype(np.float32) for _ in range(2))
    y = rng.integers(0, 10, batch)
    x1_copy, x2_copy = x1.copy(), x2.copy()
    records = _record_returns(model)
    s1, _ = _train_step(model, x1, y)
    s2, _ = _train_step(model, x2, y)
    model.eval()
    model.forward(x1)
    model.backward(np.ones_like(s1))
    model.forward(x2)
    assert len(records) >= 7                 # at least the model's own 4 forward + 3 backward
    for what, got, want in records:
        np.testing.assert_array_equal(got, want, err_msg=f"{what}'s result overwritten later")
    np.testing.assert_array_equal(x1, x1_copy)
    np.testing.assert_array_equal(x2, x2_copy)
    assert not np.array_equal(s1, s2)        # the two steps did see different data


@pytest.mark.parametrize("name", list(CASES))
def test_results_do_not_depend_on_threads(name, restore_threads):
    shape, _, _ = CASES[name]
    rng = np.random.default_rng(11)
    x = rng.standard_normal((16, *shape)).astype(np.float32)    # big enough to split
    y = rng.integers(0, 10, 16)
    results = []
    for threads in (1, 2):
        fastconv.set_num_threads(threads)
        model = getattr(models, name)(rng=5)
        scores, grad_x = _train_step(model, x, y)
        results.append([scores, grad_x, *model.grads.values(), *model.buffers.values()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_arguments(name):
    build = getattr(models, name)
    with pytest.raises(ValueError, match="num_classes"):
        build(0)
    with pytest.raises(TypeError, match="dtype"):
        build(dtype=np.int32)
    with pytest.raises(TypeError, match="rng"):
        build(rng="seed")
