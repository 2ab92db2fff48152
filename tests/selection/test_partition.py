"""Partitions (grouped-conv input channels): every method keeps k/P per partition; brute-force references."""

import pytest
import torch

from greedyprune import UserError, greedy_select, greedy_select_gram, registered_methods
from greedyprune.selection.reference import least_squares_loss

N, P, K = 12, 3, 6  # 3 partitions of 4 candidates, 2 kept in each
SIZE, QUOTA = N // P, K // P


def problem(seed=0, d=30):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(N, d, generator=g, dtype=torch.float64)
    target = features.sum(0) + 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
    return features, target


def counts(indices):
    distinct = set(indices.tolist())
    return [sum(1 for i in distinct if i // SIZE == p) for p in range(P)]


def open_candidates(picks, repeats_allowed=False):
    """Candidates a partition quota allows next (a repeat of a pick is allowed when ``repeats_allowed``)."""
    full = {p for p in range(P) if sum(1 for i in set(picks) if i // SIZE == p) >= QUOTA}
    return [j for j in range(N) if (j in picks and repeats_allowed) or (j not in picks and j // SIZE not in full)]


def direct_error(sel, features, target):
    recon = (sel.coefficients[:, None] * features[sel.indices]).sum(0)
    return float((recon - target).pow(2).sum() / target.pow(2).sum())


def options(method):
    return registered_methods[method].accepted(scores=torch.arange(N, 0, -1.0) ** 1.5 % 7, seed=4,
                                               until_distinct=True)


@pytest.mark.parametrize("method", sorted(registered_methods))
@pytest.mark.parametrize("seed", range(3))
def test_every_method_keeps_equal_counts_and_reports_the_direct_error(method, seed):
    features, target = problem(seed)
    sel = greedy_select(features, target, K, method=method, partition=P, damping=0.0, **options(method))
    assert counts(sel.indices) == [QUOTA] * P
    assert float(sel.errors[-1]) == pytest.approx(direct_error(sel, features, target), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_reoptimized_is_the_brute_force_greedy_over_open_partitions(seed):
    features, target = problem(seed)
    gram, cross, energy = features @ features.T, features @ target, target @ target
    sel = greedy_select_gram(gram, cross, energy, K, partition=P, damping=1e-3)
    picks = []
    for _ in range(K):
        losses = {j: least_squares_loss(gram, cross, energy, picks + [j], sel.damping) for j in open_candidates(picks)}
        picks.append(min(losses, key=losses.get))
    assert sel.indices.tolist() == picks


@pytest.mark.parametrize("method", ["uniform", "uniform-noreplace"])
def test_herding_is_the_direct_frank_wolfe_over_open_partitions(method):
    features, target = problem(5)
    replace = method == "uniform"
    sel = greedy_select(features, target, K, method=method, partition=P, **options(method))
    phi, current, picks = N * features, torch.zeros_like(target), []
    for step in range(1, len(sel) + 1):
        allowed = open_candidates(picks, repeats_allowed=replace)
        candidates = (1 - 1 / step) * current + phi[allowed] / step
        best = int(torch.argmin(((candidates - target) ** 2).sum(1)))
        picks.append(allowed[best])
        current = candidates[best]
    assert sel.indices.tolist() == picks


@pytest.mark.parametrize("method", ["magnitude", "random"])
def test_fixed_rankings_take_the_top_of_each_partition_then_refit(method):
    features, target = problem(2)
    gram, cross, energy = features @ features.T, features @ target, target @ target
    opts = options(method)
    sel = greedy_select_gram(gram, cross, energy, K, method=method, partition=P, damping=0.0, **opts)
    order = (torch.sort(opts["scores"], descending=True, stable=True).indices if method == "magnitude"
             else torch.randperm(N, generator=torch.Generator().manual_seed(opts["seed"])))
    expected = [i for p in range(P) for i in [j for j in order.tolist() if j // SIZE == p][:QUOTA]]
    assert sorted(sel.indices.tolist()) == sorted(expected)
    best = least_squares_loss(gram, cross, energy, expected) / float(energy)
    assert float(sel.errors[-1]) == pytest.approx(best, rel=1e-8)


def test_simplex_vertices_come_from_open_partitions():
    features, target = problem(3)
    target = features.sum(0)
    sel = greedy_select(features, target, K, method="reoptimized-simplex", partition=P)
    assert float(sel.coefficients.min()) >= 0 and float(sel.coefficients.sum()) == pytest.approx(N)
    first = [float(((N * features[j] - target) ** 2).sum()) for j in range(N)]
    assert sel.indices[0] == min(range(N), key=first.__getitem__)


def test_an_early_stop_is_padded_to_equal_counts():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(N, 20, generator=g, dtype=torch.float64)
    target = features[0] + 2 * features[1]  # reconstructed exactly by two candidates of partition 0
    sel = greedy_select(features, target, K, partition=P, damping=0.0)
    assert "padded" in sel.stopped_early
    assert counts(sel.indices) == [QUOTA] * P
    kept, coefficients = sel.kept_channels()
    assert float(sel.errors[-1]) < 1e-20 + 1e-12
    assert float(coefficients[kept >= SIZE].abs().max()) == 0.0  # the padding carries no weight


@pytest.mark.parametrize("bad, match", [(dict(k=5), "not a multiple of partition"), (dict(partition=5), "12 candidates"),
                                        (dict(partition=0), "partition must be")])
def test_partition_refusals(bad, match):
    features, target = problem()
    with pytest.raises(UserError, match=match):
        greedy_select(features, target, **(dict(k=K, partition=P) | bad))


def test_options_are_declared_per_method_and_misspellings_refused():
    features, target = problem()
    with pytest.raises(UserError, match="does not accept option.*sede"):
        greedy_select(features, target, 3, method="random", sede=1)
    with pytest.raises(UserError, match="'reoptimized' does not accept option.*scores"):
        greedy_select(features, target, 3, scores=torch.ones(N))
    assert registered_methods["uniform"].width_options == {"until_distinct": True}
    assert set(registered_methods["magnitude"].options) == {"scores", "refit"}
