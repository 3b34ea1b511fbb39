"""Whole networks of the model suite: a training step and inference, fastconv's
model against its torch.nn twin, on the suite's input and batch.

The steps are those of ``fastconv bench --models``
(:func:`fastconv.bench_models.fastconv_step` and ``torch_step``); the twin
starts from the fastconv model's weights.  One call is one step on one batch
(``extra_info["batch"]`` images).
"""
import numpy as np
import pytest

from fastconv import bench_models, bench_suite, torch_models

JOBS = [(name, mode) for name in bench_suite.MODELS for mode in bench_suite.MODES]


@pytest.fixture(params=["fastconv", "torch"])
def side(request):
    """Which network runs: fastconv's, or its torch.nn twin."""
    return request.param


@pytest.mark.parametrize("job", JOBS, ids="|".join)
def test_model(benchmark, job, side):
    name, mode = job
    spec = bench_suite.MODELS[name]
    model = spec.build()
    x, y = spec.data()
    if side == "torch":
        torch = pytest.importorskip("torch")
        module = torch_models.load_from(torch_models.build(name, **spec.kwargs), model)
        step = bench_models.torch_step(torch, module, mode)
        x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    else:
        step = bench_models.fastconv_step(model, mode)
    benchmark.group = f"model|{name}|{mode}"
    benchmark.extra_info.update(batch=spec.batch)
    benchmark(step, x, y)
