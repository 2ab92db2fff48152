"""The selection engine against brute-force references and its documented contract."""

import pytest
import torch

from greedyprune import UserError, greedy_select, greedy_select_gram, registered_methods
from greedyprune.selection.reference import brute_force_reoptimized, frank_wolfe_uniform, least_squares_loss


def problem(n=14, d=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=g, dtype=torch.float64)
    target = features.sum(0) + 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
    return features, target


def stats(features, target):
    return features @ features.T, features @ target, target @ target


def direct_error(sel, features, target):
    recon = (sel.coefficients[:, None] * features[sel.indices]).sum(0)
    return float((recon - target).pow(2).sum() / target.pow(2).sum())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("block", [1, 3, 64])
def test_reoptimized_each_step_is_the_best_single_addition(seed, block):
    features, target = problem(seed=seed)
    gram, cross, energy = stats(features, target)
    sel = greedy_select_gram(gram, cross, energy, 10, damping=0.0, block=block)
    picks = sel.indices.tolist()
    for t in range(10):
        losses = {j: least_squares_loss(gram, cross, energy, picks[:t] + [j]) for j in range(14) if j not in picks[:t]}
        best = min(losses.values())
        assert losses[picks[t]] <= best + 1e-9 * float(energy)
        assert sel.errors[t] == pytest.approx(losses[picks[t]] / float(energy), rel=1e-7, abs=1e-12)


def test_reoptimized_matches_brute_force_with_damping():
    features, target = problem(n=12, d=20, seed=7)
    gram, cross, energy = stats(features, target)
    sel = greedy_select_gram(gram, cross, energy, 8, damping=1e-3)
    picks, _ = brute_force_reoptimized(gram, cross, energy, 8, damping=sel.damping)
    assert sel.indices.tolist() == picks
    assert sel.damping == pytest.approx(1e-3 * float(gram.diagonal().mean()))
    # reported errors are the undamped loss of the damped coefficients
    assert float(sel.errors[-1]) == pytest.approx(direct_error(sel, features, target), rel=1e-8)


@pytest.mark.parametrize("method", ["reoptimized", "uniform", "uniform-noreplace", "random", "reoptimized-simplex"])
def test_final_error_equals_direct_evaluation(method):
    features, target = problem(n=20, d=30, seed=3)
    sel = greedy_select(features, target, 9, method=method)
    assert len(sel) == 9
    assert float(sel.errors[-1]) == pytest.approx(direct_error(sel, features, target), rel=1e-6)


def test_magnitude_uses_scores_and_refits():
    features, target = problem(n=20, d=30, seed=4)
    scores = torch.arange(20.0)
    sel = greedy_select(features, target, 5, method="magnitude", scores=scores)
    assert sel.indices.tolist() == [19, 18, 17, 16, 15]
    raw = greedy_select(features, target, 5, method="magnitude-norefit", scores=scores)
    assert raw.coefficients.tolist() == [1.0] * 5
    assert float(sel.errors[-1]) <= float(raw.errors[-1]) + 1e-12
    assert float(raw.errors[-1]) == pytest.approx(direct_error(raw, features, target), rel=1e-9)
    with pytest.raises(ValueError, match="scores"):
        greedy_select(features, target, 5, method="magnitude")


def test_uniform_matches_frank_wolfe_formula():
    features, target = problem(n=16, d=25, seed=5)
    target = features.mean(0) * 16  # the original output: centroid of phi = N c
    sel = greedy_select(features, target + 0.1, 12, method="uniform")
    picks, errors = frank_wolfe_uniform(features, target + 0.1, 12)
    assert sel.indices.tolist() == picks
    torch.testing.assert_close(sel.errors, torch.tensor(errors, dtype=torch.float64), rtol=1e-9, atol=1e-12)
    assert torch.allclose(sel.coefficients, torch.full((12,), 16 / 12, dtype=torch.float64))


def test_uniform_can_repeat_and_noreplace_cannot():
    features, _ = problem(n=5, d=10, seed=1)
    target = 5 * features[0]  # best reconstructed by picking candidate 0 again and again
    sel = greedy_select(features, target, 8, method="uniform")
    assert sel.indices.tolist().count(0) >= 2
    unique, merged = sel.kept_channels()
    assert float(merged.sum()) == pytest.approx(5.0)
    nr = greedy_select(features, target, 5, method="uniform-noreplace")
    assert sorted(nr.indices.tolist()) == [0, 1, 2, 3, 4]


def test_redundant_and_zero_candidates_are_never_picked_and_stop_early():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 12, generator=g, dtype=torch.float64)
    features = torch.cat([base, base[:1] * 2.0, torch.zeros(2, 12, dtype=torch.float64), base[1:2]])
    target = base.sum(0)  # exactly in the span of three candidates
    sel = greedy_select(features, target, 7, damping=0.0)
    assert sel.stopped_early is not None and len(sel) == 3
    assert set(sel.indices.tolist()) <= {0, 1, 2, 3, 6}
    assert float(sel.errors[-1]) < 1e-20 + 1e-12
    assert torch.isfinite(sel.coefficients).all()


def test_zero_target_gives_zero_error_without_nan():
    features, _ = problem(n=6, d=8)
    for method in registered_methods:
        options = {"scores": torch.ones(6)} if method.startswith("magnitude") else {}
        sel = greedy_select(features, torch.zeros(8, dtype=torch.float64), 3, method=method, **options)
        assert torch.isfinite(sel.errors).all() and torch.isfinite(sel.coefficients).all()


@pytest.mark.parametrize("bad, match", [
    (dict(k=0), "k must be at least 1"),
    (dict(k=99), "exceeds the 14 candidates"),
    (dict(method="nope"), "unknown method"),
    (dict(damping=-1.0), "damping"),
    (dict(constraint="box"), "constraint"),
])
def test_bad_arguments_raise_one_line_value_errors(bad, match):
    features, target = problem()
    kwargs = dict(k=3) | bad
    with pytest.raises(ValueError, match=match) as info:
        greedy_select(features, target, **kwargs)
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)


def test_shape_and_finiteness_errors():
    features, target = problem()
    with pytest.raises(ValueError, match="target must have shape"):
        greedy_select(features, target[:-1], 3)
    gram, cross, energy = stats(features, target)
    with pytest.raises(ValueError, match="cross must have shape"):
        greedy_select_gram(gram, cross[:-1], energy, 3)
    with pytest.raises(ValueError, match="square"):
        greedy_select_gram(gram[:, :-1], cross, energy, 3)
    bad = gram.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        greedy_select_gram(bad, cross, energy, 3)
    with pytest.raises(ValueError, match="NaN"):
        greedy_select(features * float("inf"), target, 3)


def test_simplex_coefficients_stay_on_the_scaled_simplex():
    features, target = problem(n=15, d=30, seed=2)
    target = features.sum(0)  # centroid of phi_i = N c_i: inside the hull
    sel = greedy_select(features, target, 10, constraint="simplex")
    assert float(sel.coefficients.min()) >= 0
    assert float(sel.coefficients.sum()) == pytest.approx(15.0)
    assert bool((sel.errors[1:] <= sel.errors[:-1] + 1e-12).all())


def test_uniform_until_distinct_herds_until_k_channels():
    features, _ = problem(n=6, d=10, seed=1)
    target = 5 * features[0] + 0.3 * features[1]  # herding returns to candidate 0 again and again
    plain = greedy_select(features, target, 4, method="uniform")
    assert len(set(plain.indices.tolist())) < 4
    sel = greedy_select(features, target, 4, method="uniform", until_distinct=True)
    assert len(set(sel.indices.tolist())) == 4 and len(sel) > 4 and sel.stopped_early is None
    picks, errors = frank_wolfe_uniform(features, target, len(sel))  # still exactly the herding sequence
    assert sel.indices.tolist() == picks
    torch.testing.assert_close(sel.errors, torch.tensor(errors, dtype=torch.float64), rtol=1e-9, atol=1e-12)
    capped = greedy_select(features, target, 6, method="uniform", until_distinct=True, max_steps=7)
    assert len(capped) == 7 and "only" in capped.stopped_early
    with pytest.raises(ValueError, match="max_steps"):
        greedy_select(features, target, 5, method="uniform", until_distinct=True, max_steps=3)
    with pytest.raises(ValueError, match="exceeds the 6 candidates"):
        greedy_select(features, target, 7, method="uniform", until_distinct=True)


@pytest.mark.parametrize("method", ["random", "magnitude", "reoptimized"])
def test_rounding_negative_diagonal_mean_never_gives_a_negative_ridge(method):
    """Centred statistics of (numerically) constant channels are rounding noise, and diag(G) can then
    average below 0 (seen on 6x6 images through a small MobileNetV3: mean -2.3e-11, kept channel 1.1e-21).
    The relative damping must not turn into a negative ridge: it made residual energies negative, their
    square roots complex (a bare RuntimeError in the pipeline), and relative errors of 3e4 here."""
    g = torch.Generator().manual_seed(0)
    phi = 3e-11 * torch.randn(6, 40, generator=g, dtype=torch.float64)  # diag(G) ~ 4e-20
    gram = phi @ phi.T
    gram[5, :] = 0
    gram[:, 5] = 0
    gram[5, 5] = -1.4e-10  # rounded far below 0: diag mean -2.3e-11
    assert float(gram.diagonal().mean()) < 0
    target = phi[:4].sum(0) * 0.5
    cross = torch.cat([phi[:5] @ target, torch.zeros(1, dtype=torch.float64)])
    energy = target @ target
    try:
        options = {"scores": torch.arange(6.0)} if method == "magnitude" else {}
        sel = greedy_select_gram(gram, cross, energy, 5, method=method, damping=1e-4, **options)
    except UserError as err:  # a documented refusal is fine; a RuntimeError from complex numbers is not
        assert "\n" not in str(err)
    else:
        assert bool(torch.isfinite(sel.coefficients).all()) and bool(torch.isfinite(sel.errors).all())
        # least-squares refits of nested subsets: errors in [0, 1], never rising (a negative ridge gave 3e4)
        assert float(sel.errors.max()) <= 1 + 1e-9 and float(sel.errors.min()) >= -1e-9
        assert bool((sel.errors[1:] <= sel.errors[:-1] + 1e-9).all())
