import math

import pytest

from greedyprune.errors import UserError
from greedyprune.sparse import layer_counts, layer_densities, sparsity_counts

MLP = {"fc1.weight": (300, 784), "fc2.weight": (100, 300), "fc3.weight": (10, 100)}
CNN = {"c1.weight": (16, 1, 3, 3), "c2.weight": (32, 16, 3, 3), "fc.weight": (10, 32 * 7 * 7)}


def reference_erk(shapes, density, kind="erk"):
    """Slow obvious reference: bisection on eps for sum_l min(1, eps raw_l) n_l = D N."""
    raw = {n: (sum(s) / math.prod(s)) if kind == "erk" else (s[0] + s[1]) / (s[0] * s[1]) for n, s in shapes.items()}
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    target = density * sum(sizes.values())
    lo, hi = 0.0, 1e9
    for _ in range(300):
        mid = (lo + hi) / 2
        if sum(min(1.0, mid * raw[n]) * sizes[n] for n in shapes) < target:
            lo = mid
        else:
            hi = mid
    return {n: min(1.0, hi * raw[n]) for n in shapes}


@pytest.mark.parametrize("shapes", [MLP, CNN])
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.8, 0.9, 0.98])
@pytest.mark.parametrize("kind", ["erk", "er"])
def test_erk_hits_total_and_matches_reference(shapes, sparsity, kind):
    d = layer_densities(shapes, 1 - sparsity, kind)
    ref = reference_erk(shapes, 1 - sparsity, kind)
    for name in shapes:
        assert 0 < d[name] <= 1
        assert d[name] == pytest.approx(ref[name], rel=1e-9, abs=1e-12)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(d[n] * math.prod(s) for n, s in shapes.items()) == pytest.approx((1 - sparsity) * total, rel=1e-12)
    counts = sparsity_counts(shapes, sparsity, kind)
    assert sum(counts.values()) == round((1 - sparsity) * total)
    assert all(0 <= counts[n] <= math.prod(s) for n, s in shapes.items())


def test_erk_resolves_layers_that_would_exceed_one():
    # at 20% density the small output layer's ERK density would exceed 1: it becomes dense, others re-solved
    d = layer_densities(MLP, 0.2, "erk")
    assert d["fc3.weight"] == 1.0
    raw = {n: sum(s) / math.prod(s) for n, s in MLP.items()}
    assert d["fc1.weight"] / raw["fc1.weight"] == pytest.approx(d["fc2.weight"] / raw["fc2.weight"])
    assert d["fc2.weight"] < 1


def test_uniform_and_dense_first():
    assert list(layer_densities(MLP, 0.1, "uniform").values()) == [pytest.approx(0.1)] * 3
    d = layer_densities(CNN, 0.2, "uniform", dense_first=True)
    assert d["c1.weight"] == 1.0 and d["c2.weight"] == pytest.approx(d["fc.weight"])
    total = sum(math.prod(s) for s in CNN.values())
    assert sum(d[n] * math.prod(s) for n, s in CNN.items()) == pytest.approx(0.2 * total)
    with pytest.raises(UserError, match="too low"):
        layer_densities(MLP, 0.1, "uniform", dense_first=True)  # fc1 alone is 88% of the weights


def test_layer_counts_sum_exactly():
    shapes = {"a": (7, 3), "b": (5, 5), "c": (3, 3)}
    counts = layer_counts(shapes, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, total=18)
    assert sum(counts.values()) == 18


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1])
def test_bad_density_is_user_error(bad):
    with pytest.raises(UserError):
        layer_densities(MLP, bad, "erk")
    with pytest.raises(UserError, match="unknown"):
        layer_densities(MLP, 0.5, "nope")
