"""allocation="latency" capped at the uniform allocation's modelled latency (the error / latency trade), and
latency budgets rounded to whole SIMD blocks (latency_round_to)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import greedyprune
from greedyprune.budget import CostModel, allocate_by_error, allocate_uniform
from greedyprune.costmodel import Blocks, granularity
from greedyprune.latency_allocation import allocate_for_latency, allocate_traded, refill
from greedyprune.errors import UserError
from greedyprune.latency import simd_channels

from .conftest import small_cnn, tv_model

WIDTH = 16


def _per_group(base: list[float]) -> CostModel:
    """cost(w) = sum_g base[g] * w_g / WIDTH: one item per group, scaling with that group's kept fraction."""
    g = len(base)
    return CostModel(base=np.array(base, dtype=float), c_in=np.ones(g), a_in=np.zeros((g, g)), t_in=np.ones(g),
                     c_out=np.zeros(g), a_out=np.eye(g), t_out=np.full(g, float(WIDTH)), fixed=0.0,
                     full_widths=np.full(g, float(WIDTH)), steps=np.ones(g, dtype=int))


def _curve(scale: float, power: float) -> torch.Tensor:
    """Relative error with n = 1..WIDTH channels kept: scale * (1 - n / WIDTH) ** power."""
    return torch.tensor([scale * (1 - n / WIDTH) ** power for n in range(1, WIDTH + 1)], dtype=torch.float64)


# group 0: cheap in FLOPs, slow, its error rising steeply (a stem feeding a max-pool); groups 1-3: as many FLOPs
# each, group 1 fast per FLOP, group 2 slow per FLOP. Convex error curves, as greedy selection's are.
FLOPS, LATENCY = _per_group([1.0, 10.0, 10.0, 10.0]), _per_group([6.0, 3.0, 8.0, 5.0])
CURVES = [_curve(2.0, 2.0), _curve(0.3, 2.0), _curve(0.3, 2.0), _curve(0.5, 3.0)]


def _error(widths, curves=CURVES) -> float:
    return sum(float(c[w - 1]) for c, w in zip(curves, widths))


def _best_at_target(target: float) -> float:
    """Brute force over all 16^4 width vectors: the least error at the FLOPs target (within one step of the
    largest group below it) among those no slower than the uniform widths."""
    cap = LATENCY.cost(np.array(allocate_uniform(FLOPS, target)))
    grid = np.stack(np.meshgrid(*[np.arange(1, WIDTH + 1)] * 4, indexing="ij"), -1).reshape(-1, 4)
    flops, latency = (FLOPS.base * grid / WIDTH).sum(1), (LATENCY.base * grid / WIDTH).sum(1)
    goal = target * FLOPS.base.sum()
    ok = (flops <= goal + 1e-9) & (flops > goal - FLOPS.base.max() / WIDTH) & (latency <= cap + 1e-9)
    return min(_error(w) for w in grid[ok])


def test_weight_zero_is_the_error_allocation():
    for target in (0.7, 0.5, 0.3):
        assert allocate_traded(FLOPS, CURVES, target, LATENCY, 0.0) == allocate_by_error(FLOPS, CURVES, target)


@pytest.mark.parametrize("target", [0.6, 0.5, 0.4])
def test_the_cap_gives_widths_no_slower_than_uniform_near_the_best(target):
    ranked = allocate_by_error(FLOPS, CURVES, target, rank=LATENCY)
    uniform = allocate_uniform(FLOPS, target)
    cap = LATENCY.cost(np.array(uniform))
    assert LATENCY.cost(np.array(ranked)) > cap  # the setting this is for: the ranking alone keeps group 0 wide
    widths, weight = allocate_for_latency(FLOPS, CURVES, target, LATENCY)
    assert weight is not None and weight > 0
    assert widths == refill(FLOPS, CURVES, target, LATENCY, allocate_traded(FLOPS, CURVES, target, LATENCY, weight), cap)
    assert LATENCY.cost(np.array(widths)) <= cap + 1e-12
    assert FLOPS.cost(np.array(widths)) <= target * FLOPS.cost(FLOPS.full_widths)
    assert widths[0] < ranked[0]  # the slow group gave up channels
    best = _best_at_target(target)  # brute force: within a tenth of the way from it to uniform's error
    assert best <= _error(widths) <= best + 0.1 * (_error(uniform) - best)


def test_never_more_error_than_the_uniform_widths():
    curves = [_curve(3.0, 1.0), *CURVES[1:]]  # a linear curve: every weight cuts all of group 0 or none of it
    slow = _per_group([12.0, 3.0, 8.0, 5.0])
    widths, weight = allocate_for_latency(FLOPS, curves, 0.6, slow)
    uniform = allocate_uniform(FLOPS, 0.6)
    assert slow.cost(np.array(allocate_by_error(FLOPS, curves, 0.6, rank=slow))) > slow.cost(np.array(uniform))
    assert weight is None and widths == refill(FLOPS, curves, 0.6, slow, uniform, slow.cost(np.array(uniform)))
    assert all(_error(allocate_traded(FLOPS, curves, 0.6, slow, w), curves) > _error(uniform, curves)
               for w in (4.0, 8.0, 16.0) if slow.cost(np.array(allocate_traded(FLOPS, curves, 0.6, slow, w)))
               <= slow.cost(np.array(uniform)))


def test_off_or_already_fast_enough_the_ranking_alone():
    target = 0.5
    ranked = allocate_by_error(FLOPS, CURVES, target, rank=LATENCY)
    assert allocate_for_latency(FLOPS, CURVES, target, LATENCY, cap_at_uniform=False) == (
        refill(FLOPS, CURVES, target, LATENCY, ranked), 0.0)
    fast = _per_group([1.0, 3.0, 8.0, 5.0])  # group 0 no longer slow: the ranking is faster than uniform
    plain = allocate_by_error(FLOPS, CURVES, target, rank=fast)
    assert fast.cost(np.array(plain)) <= fast.cost(np.array(allocate_uniform(FLOPS, target)))
    cap = fast.cost(np.array(allocate_uniform(FLOPS, target)))
    assert allocate_for_latency(FLOPS, CURVES, target, fast) == (refill(FLOPS, CURVES, target, fast, plain, cap), 0.0)


def _blocks(steps: int) -> CostModel:
    """FLOPS with every group's widths in blocks of ``steps`` channels."""
    return CostModel(**{**FLOPS.__dict__, "steps": np.full(4, steps)})


@pytest.mark.parametrize("target", [0.6, 0.5, 0.37])
def test_refill_adds_back_what_still_fits(target):
    flops = _blocks(4)
    removed = allocate_by_error(flops, CURVES, target, rank=LATENCY)
    goal = target * flops.cost(flops.full_widths)
    for cap in (None, LATENCY.cost(np.array(removed)) + 0.5):
        widths = refill(flops, CURVES, target, LATENCY, removed, cap)
        assert flops.cost(np.array(widths)) <= goal + 1e-12
        assert cap is None or LATENCY.cost(np.array(widths)) <= cap + 1e-12
        assert all(w >= r and (w % 4 == 0 or w == WIDTH) for w, r in zip(widths, removed))
        assert _error(widths) <= _error(removed)
        for g in range(4):  # maximal: no group can take one more block without breaking the target or the cap
            if widths[g] < WIDTH:
                up = list(widths)
                up[g] += 4
                assert flops.cost(np.array(up)) > goal or (cap is not None and LATENCY.cost(np.array(up)) > cap)
    # blocks of 4 at 0.37: the removal stops well below the target, refilling takes it back up
    if target == 0.37:
        assert flops.cost(np.array(removed)) < goal - 0.5 <= flops.cost(np.array(refill(flops, CURVES, target,
                                                                                          LATENCY, removed)))


def test_latency_allocation_rounds_to_simd_blocks_and_records_the_trade(images):
    model, x = tv_model("resnet18"), images(8, size=32)
    g = torch.Generator().manual_seed(1)
    pruner = greedyprune.Pruner(model, [x], keep=1.0, streams=True, refit=None, progress=False)
    seconds = {n.name: float(torch.rand(1, generator=g)) * 1e-3 for n in pruner.nodes if n.op in
               ("call_module", "call_function", "call_method")}
    common = dict(flops=0.5, streams=True, refit=None, progress=False, allocation="latency", latency_seconds=seconds)
    _, blocks = greedyprune.prune(model, [x], latency_round_to=16, **common)
    assert blocks.options["round_to"] == 16 and blocks.budget["round_to"] == 16
    assert all(w % 16 == 0 or w == g.channels_before for w, g in zip(blocks.widths().values(), blocks.groups))
    assert blocks.options["latency_weight"] is None or blocks.options["latency_weight"] >= 0
    _, free = greedyprune.prune(model, [x], latency_round_to=1, latency_cap_uniform=False, **common)
    assert free.options["round_to"] == 1 and free.options["latency_weight"] == 0.0
    assert any(w % 16 for w in free.widths().values())  # any width: not what the blocks gave
    _, default = greedyprune.prune(model, [x], **common)
    assert default.options["round_to"] == simd_channels(torch.device("cpu"))
    # an explicit round_to wins; FLOPs-ranked budgets are not rounded
    _, explicit = greedyprune.prune(model, [x], round_to=4, **common)
    assert explicit.options["round_to"] == 4
    _, by_flops = greedyprune.prune(model, [x], flops=0.5, streams=True, refit=None, progress=False)
    assert by_flops.options["round_to"] == 1


def test_groups_narrower_than_a_block_take_smaller_power_of_two_steps(images):
    """Blocks of 16: a group of 16 or more in steps of 16 (or full), a narrower one in the widest power of two that
    leaves it two steps; an explicit round_to is strict (a group narrower than it cannot shrink)."""
    for width, step in [(64, 16), (32, 16), (24, 16), (16, 16), (15, 4), (12, 4), (8, 4), (5, 2), (3, 1)]:
        assert granularity(SimpleNamespace(width=width, partition=1), Blocks(16)) == step
        assert granularity(SimpleNamespace(width=width, partition=1), 16) == 16
    assert granularity(SimpleNamespace(width=12, partition=3), Blocks(16)) == 12  # lcm with the partition count
    # small_cnn's groups are 8 and 12 channels wide: in steps of 4 they can shrink and meet the target
    model, x = small_cnn(), images(16, channels=1, size=16)
    common = dict(flops=0.5, refit=None, progress=False, allocation="latency")
    _, narrow = greedyprune.prune(model, [x], latency_round_to=16, **common)
    assert narrow.flops_after <= 0.5 * narrow.flops_before and narrow.options["round_to"] == 16
    assert all(g.channels_after % 4 == 0 for g in narrow.groups)
    assert any(g.channels_after < g.channels_before for g in narrow.groups)
    with pytest.raises(UserError, match="cannot be met without emptying a group"):  # an explicit round_to is strict
        greedyprune.prune(model, [x], round_to=16, **common)


def test_bad_latency_allocation_options_are_one_line_errors(images):
    model, x = tv_model("resnet18"), images(4, size=32)
    with pytest.raises(UserError, match="round_to must be a whole number"):
        greedyprune.prune(model, [x], flops=0.5, allocation="latency", latency_round_to=0, progress=False)
    with pytest.raises(UserError, match="latency_cap_uniform must be True or False"):
        greedyprune.prune(model, [x], flops=0.5, allocation="latency", latency_cap_uniform="yes", progress=False)
