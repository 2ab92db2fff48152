import math

import pytest
import torch

from greedyprune.baselines.dynamic import drop_fraction, is_update_step, update_mask
from greedyprune.errors import UserError


def slow_reference(weight, mask, grad, n):
    """Sort lists: keep the k-n largest |w| of the active, then grow the n largest |g| outside them."""
    flat_w, flat_m, flat_g = weight.flatten().tolist(), mask.flatten().tolist(), grad.flatten().tolist()
    active = [i for i, m in enumerate(flat_m) if m]
    kept = set(sorted(active, key=lambda i: -abs(flat_w[i]))[: len(active) - n])
    candidates = [i for i in range(len(flat_m)) if i not in kept]
    grown = set(sorted(candidates, key=lambda i: -abs(flat_g[i]))[:n])
    return kept, grown


@pytest.mark.parametrize("seed", range(5))
def test_rigl_update_keeps_count_and_grows_where_gradient_is_largest(seed):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(20, 30, generator=g, dtype=torch.float64)
    mask = torch.rand(20, 30, generator=g) < 0.2
    grad = torch.randn(20, 30, generator=g, dtype=torch.float64)
    k = int(mask.sum())
    frac = 0.3
    up = update_mask(weight * mask, mask, frac, "gradient", grad)
    n = math.floor(frac * k)
    assert int(up.mask.sum()) == k and up.n_swap == n
    kept, chosen = slow_reference(weight * mask, mask, grad, n)
    flat = up.mask.flatten()
    assert {i for i in range(flat.numel()) if flat[i]} == kept | chosen
    old = {i for i, v in enumerate(mask.flatten().tolist()) if v}
    # only connections outside the old mask are new; a dropped-and-chosen-again entry is "regrown"
    assert {i for i, v in enumerate(up.grown.flatten().tolist()) if v} == chosen - old
    assert {i for i, v in enumerate(up.regrown.flatten().tolist()) if v} == chosen & old
    assert torch.equal(up.dropped, mask & ~up.mask)
    assert torch.equal(up.changed, up.grown | up.dropped) and int(up.grown.sum()) == int(up.dropped.sum())


def test_drop_count_is_floor_and_a_dense_layer_regrows_in_place():
    weight = torch.arange(1.0, 21.0).view(4, 5)
    mask = torch.ones(4, 5, dtype=torch.bool)
    grad = torch.rand(4, 5, generator=torch.Generator().manual_seed(0))
    up = update_mask(weight, mask, 0.29, "gradient", grad)  # 0.29 * 20 = 5.8: floor 5, not round 6
    assert up.n_swap == 5
    # a dense layer has no inactive entry: the 5 dropped ones are chosen again and nothing is new
    assert torch.equal(up.mask, mask) and not up.grown.any() and not up.dropped.any()
    assert int(up.regrown.sum()) == 5 and bool(up.regrown.flatten()[:5].all())


def test_set_update_keeps_count_and_grows_outside_kept():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(50, 40, generator=g)
    mask = torch.rand(50, 40, generator=g) < 0.1
    up = update_mask(weight, mask, 0.5, "random", generator=g)
    assert int(up.mask.sum()) == int(mask.sum())
    kept = up.mask & ~up.grown
    assert bool((kept <= mask).all())  # kept weights were active
    assert up.n_swap == int(mask.sum()) // 2
    assert int((up.grown | up.regrown).sum()) == up.n_swap and not bool((up.grown & mask).any())
    with pytest.raises(UserError):
        update_mask(weight, mask, 0.5, "gradient")


def test_drop_fraction_schedule():
    assert drop_fraction(0, 0.3, 1000) == pytest.approx(0.3)
    assert drop_fraction(500, 0.3, 1000) == pytest.approx(0.15)
    assert drop_fraction(1000, 0.3, 1000) == 0.0
    assert drop_fraction(250, 0.3, 1000) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
    assert [t for t in range(0, 1001) if is_update_step(t, 100, 750)] == [0, 100, 200, 300, 400, 500, 600, 700]
