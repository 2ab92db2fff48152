"""Sequential error correction, checked from outside the pipeline.

After every ``step()``, the group's reported error must be the error a user measures on the model:
the consumer's output in the *pruned* network (fed by every group pruned so far) against its output in
the *original* network, centred (the bias correction absorbs the mean). That only holds if the
statistics used inputs from the pruned network and targets from the original one, and if the
coefficients, bias correction and channel removal were folded in exactly. And calibration must cost a
small constant number of passes through each stage, not one per group.
"""

import pytest
import torch

import greedyprune
from greedyprune.stats.consumer import output_columns

from .conftest import mlp, small_cnn, tv_model
from .test_families import inputs

EXACT = {
    "resnet18": lambda: tv_model("resnet18"),
    "resnet50": lambda: tv_model("resnet50"),
    "mobilenet_v2": lambda: tv_model("mobilenet_v2"),
    "mlp": mlp,
    "small_cnn": small_cnn,
}


def consumer_output(model, consumer, x):
    seen = []
    handle = consumer.register_forward_hook(lambda mod, _args, out: seen.append(output_columns(mod, out)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0].to(torch.float64)


def measured_error(pruner, index, x):
    got = consumer_output(pruner.model, pruner.groups[index].consumer, x)
    target = consumer_output(pruner.original, pruner.orig_groups[index].consumer, x)
    centred = target - target.mean(1, keepdim=True)
    residual = got - target
    residual = residual - residual.mean(1, keepdim=True)
    return float(residual.pow(2).sum() / centred.pow(2).sum())


CASES = [(name, "reoptimized") for name in EXACT] + [(name, method) for name in ("resnet18", "mobilenet_v2", "small_cnn")
                                                      for method in ("magnitude", "random", "uniform")]


@pytest.mark.parametrize("name, method", CASES)
def test_every_reported_group_error_is_the_measured_error(name, method):
    # in float64, so that the measured error is not blurred by the network's own float32 rounding
    model = EXACT[name]().double()
    x = inputs(name, n=8).double()
    pruner = greedyprune.Pruner(model, [x[:4], x[4:]], method, keep=0.5, damping=0.0, precision="float64",
                                progress=False)
    checked = 0
    while (report := pruner.step()) is not None:
        index = len(pruner.report.groups) - 1
        if report.note is None:  # every method keeps exactly the budget's width ...
            assert report.channels_after == pruner.widths[index]
        else:  # ... unless the rest add nothing (dead or constant channels of random weights), and it says so
            assert report.channels_after < pruner.widths[index] and ("stopped" in report.note or "herding" in report.note)
        # abs: centring the float64 sums (H - n m m^T) leaves ~1e-9 of E when channels sit near a constant
        assert measured_error(pruner, index, x) == pytest.approx(report.error, rel=1e-5, abs=1e-8)
        checked += 1
    assert checked == len(pruner.groups) >= 2


def test_calibration_runs_each_stage_a_constant_number_of_times():
    model = tv_model("resnet18")
    x = inputs("resnet18", n=8)
    batches = [x[:4], x[4:]]
    pruner = greedyprune.Pruner(model, batches, keep=0.5, progress=False)
    calls = {}
    stages = pruner.orig_stages + pruner.stages
    handles = [stage.register_forward_pre_hook(lambda mod, _args, i=i: calls.__setitem__(i, calls.get(i, 0) + 1))
               for i, stage in enumerate(stages)]
    try:
        pruner.run()
    finally:
        for handle in handles:
            handle.remove()
    per_batch = [c / len(batches) for c in calls.values()]
    # each original stage: once to collect targets, once to advance; each pruned stage: capture + advance
    assert max(per_batch) <= 3, calls
    assert len(pruner.groups) == 8
