"""``round_to``: every budget keeps widths that are multiples of it (or full), targets are still met, bad values refused."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import greedyprune
from greedyprune.budget import cost_model
from greedyprune.costmodel import CostModel
from greedyprune.errors import UserError

from .conftest import mlp, randomize_batchnorm, tv_model


def assert_rounded(report, groups, round_to):
    """Each kept width is a multiple of lcm(partition, round_to) or the group's full width; none is emptied."""
    for g, r in zip(groups, report.groups):
        step = math.lcm(g.partition, round_to)
        assert r.channels_after >= 1
        assert r.channels_after % step == 0 or r.channels_after == g.width, (g.name, r.channels_after, step)


@pytest.mark.parametrize("budget, round_to", [(dict(flops=0.5), 8), (dict(flops=0.3, streams=True), 16),
                                              (dict(params=0.4), 8), (dict(flops=0.5, allocation="uniform"), 16),
                                              (dict(keep=0.3), 8)])
def test_widths_are_multiples_and_targets_are_met(budget, round_to, images):
    model = tv_model("resnet18")
    x = images(8, size=32)
    pruner = greedyprune.Pruner(model, [x], **budget, round_to=round_to, progress=False)
    pruned, report = pruner.run()
    assert_rounded(report, pruner.groups, round_to)
    assert any(r.channels_after < g.width for g, r in zip(pruner.groups, report.groups))  # it did prune
    kind = "flops" if "flops" in budget else "params" if "params" in budget else None
    if kind:
        before, after = (report.flops_before, report.flops_after) if kind == "flops" else \
            (report.params_before, report.params_after)
        assert after / before <= budget[kind] + 1e-12
        assert after / before > budget[kind] - 0.1  # not far below: granules are small against the model
    # the report's totals are those of the physically smaller model, and the cost model agrees with them
    widths = np.array([r.channels_after for r in report.groups])
    assert cost_model(model, pruner.groups, x, "flops", round_to).cost(widths) == pytest.approx(report.flops_after,
                                                                                               rel=1e-9)
    with torch.no_grad():
        assert pruned(x).shape == (8, 10)


def test_round_to_one_changes_nothing(images):
    model = tv_model("resnet18")
    x = images(8, size=32)
    _, plain = greedyprune.prune(model, [x], flops=0.5, progress=False)
    _, ones = greedyprune.prune(model, [x], flops=0.5, round_to=1, progress=False)
    assert plain.widths() == ones.widths()
    assert len({r.channels_after % 8 for r in plain.groups}) > 1  # the unrounded widths are not all multiples of 8


def test_rounding_combines_with_grouped_conv_partitions(images):
    """ResNeXt 3x3 convs with 4 groups: widths must be multiples of lcm(4, 6) = 12 (or full)."""
    from torchvision.models.resnet import Bottleneck, ResNet
    torch.manual_seed(0)
    model = randomize_batchnorm(ResNet(Bottleneck, [1, 1, 1, 1], groups=4, width_per_group=12, num_classes=10))
    x = images(8, size=32)
    pruner = greedyprune.Pruner(model, [x], flops=0.7, round_to=6, progress=False)
    _, report = pruner.run()
    grouped = [(g, r) for g, r in zip(pruner.groups, report.groups) if g.partition == 4]
    assert grouped and all(r.channels_after % 12 == 0 for _, r in grouped)
    assert any(r.channels_after < g.width for g, r in grouped)
    assert_rounded(report, pruner.groups, 6)
    assert report.flops_after / report.flops_before <= 0.7


def test_full_widths_that_are_not_multiples():
    """mlp: hidden widths 40 and 30. With round_to=16: 40 -> {40, 32, 16}, 30 -> {30, 16}; never below 16."""
    model = mlp()
    x = torch.randn(64, 1, 8, 8)
    for target in (0.9, 0.6, 0.35):
        _, report = greedyprune.prune(model, [x], flops=target, round_to=16, progress=False)
        assert [r.channels_after for r in report.groups][0] in (40, 32, 16)
        assert [r.channels_after for r in report.groups][1] in (30, 16)
        assert report.flops_after / report.flops_before <= target
    with pytest.raises(UserError, match="smallest reachable fraction") as info:  # 16 and 16 is the floor
        greedyprune.prune(model, [x], flops=0.1, round_to=16, progress=False)
    assert "\n" not in str(info.value)
    _, report = greedyprune.prune(model, [x], keep=0.5, round_to=64, progress=False)  # groups narrower: untouched
    assert [r.channels_after for r in report.groups] == [40, 30]


def test_steps_walk_the_allowed_widths():
    """From the full width, one step at a time, the widths visited are exactly the allowed ones, largest first."""
    full = np.array([40, 30, 16, 5, 96])
    steps = np.array([16, 16, 16, 16, 12])
    costs = CostModel(np.zeros(1), np.ones(1), np.zeros((1, 5)), np.ones(1), np.ones(1), np.zeros((1, 5)),
                      np.ones(1), 0.0, full.astype(float), steps)
    for g, (w_full, s) in enumerate(zip(full, steps)):
        allowed = sorted({w for w in range(s, w_full + 1) if w % s == 0} | {int(w_full)}, reverse=True)
        widths, visited = full.copy(), [int(w_full)]
        while costs.can_shrink(widths)[g]:
            widths[g] -= costs.step_at(widths)[g]
            visited.append(int(widths[g]))
        assert visited == allowed, (w_full, s)
        assert costs.minimum_widths()[g] == allowed[-1]


@pytest.mark.parametrize("bad", [0, -8, 2.5, True, "8", None])
def test_bad_round_to_is_refused_in_one_line(bad):
    with pytest.raises(UserError, match="round_to must be a whole number of channels >= 1") as info:
        greedyprune.Pruner(mlp(), [torch.randn(4, 1, 8, 8)], flops=0.5, round_to=bad, progress=False)
    assert "\n" not in str(info.value)


def test_explicit_widths_must_be_multiples_when_rounding():
    model = mlp()
    x = torch.randn(8, 1, 8, 8)
    groups = greedyprune.Pruner(model, [x], keep=0.5, progress=False).groups
    with pytest.raises(UserError, match=f"{groups[0].name}=33 are not multiples of round_to=8") as info:
        greedyprune.Pruner(model, [x], widths={groups[0].name: 33}, round_to=8, progress=False)
    assert "\n" not in str(info.value)
    _, report = greedyprune.prune(model, [x], widths={groups[0].name: 32, groups[1].name: 30}, round_to=8,
                                  progress=False)  # a multiple, and a full width, are both fine
    assert [r.channels_after for r in report.groups] == [32, 30]


def test_cli_round_to(tmp_path):
    """``greedyprune prune --round-to 8`` rounds the saved model's widths; ``--round-to 0`` is a one-line refusal."""
    import subprocess
    import sys
    out = tmp_path / "pruned.pt"
    base = [sys.executable, "-m", "greedyprune", "prune", "--model", "lenet300-100", "--data", "random:1x28x28",
            "--calib", "64", "--flops", "0.5", "--out", str(out), "--no-progress"]
    done = subprocess.run(base + ["--round-to", "8"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    hidden = [m.out_features for m in greedyprune.load(out).modules() if isinstance(m, nn.Linear)][:-1]
    assert hidden and all(w % 8 == 0 for w in hidden) and sum(hidden) < 400, hidden
    bad = subprocess.run(base + ["--round-to", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--round-to" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_a_selection_that_stops_early_is_padded_to_a_multiple():
    """30 of the 40 hidden units are dead (always 0 after ReLU): the greedy selection stops after the 10 live
    ones; with round_to=8 the kept width is still a multiple of 8 (zero-weight padding), the output unchanged."""
    model = mlp()
    with torch.no_grad():
        model[1].bias[10:] = -1e3
    x = torch.randn(64, 1, 8, 8)
    first = greedyprune.Pruner(model, [x], keep=0.5, progress=False).groups[0].name
    plain_model, plain = greedyprune.prune(model, [x], widths={first: 16}, progress=False)
    assert plain.groups[0].channels_after == 10 and "stopped after 10 picks" in plain.groups[0].note
    for budget in (dict(widths={first: 16}), dict(keep=0.5)):
        pruner = greedyprune.Pruner(model, [x], **budget, round_to=8, progress=False)
        pruned, report = pruner.run()
        assert_rounded(report, pruner.groups, 8)
        assert "padded with" in report.groups[0].note and report.groups[0].channels_after == 16
        assert pruned[1].out_features == 16
    pruned, _ = greedyprune.prune(model, [x], widths={first: 16}, round_to=8, progress=False)
    with torch.no_grad():  # the padded channels have weight 0 in the consumer: the output is the unpadded one's
        assert torch.allclose(pruned(x), plain_model(x), atol=1e-5)
