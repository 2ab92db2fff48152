"""Decay curves match the engine; analyze_groups writes complete, NaN-free outputs."""

import json
import math

import numpy as np
import pytest
import torch

from greedyprune.analysis import GroupStatistics, analyze_group, analyze_groups, decay_curves
from greedyprune.analysis.channels import by_channels, distinct_counts
from greedyprune.errors import UserError
from greedyprune.selection import greedy_select_gram

from .synthetic import group_from_phi, points, regular_simplex, sphere


def test_curves_equal_engine_paths_and_random_spread():
    c = points(20, 40, seed=9) / 20
    group = GroupStatistics.from_contributions("g", c, scores=c.abs().sum(1))
    curves = decay_curves(group, 15, seeds=(0, 1, 2), simplex_max=10)
    assert set(curves.curves) == {"reoptimized", "reoptimized-simplex", "uniform", "uniform-noreplace", "magnitude",
                                  "random"}
    for method in ("reoptimized", "uniform-noreplace"):
        ref = greedy_select_gram(group.gram, group.cross, group.energy, 15, method=method, damping=0.0).errors
        np.testing.assert_allclose(curves.curves[method].errors, ref.numpy(), rtol=1e-12, atol=1e-15)
    uniform = curves.curves["uniform"]  # 8 x 15 picks with repeats, then per kept (distinct) channel
    sel = greedy_select_gram(group.gram, group.cross, group.energy, 120, method="uniform", damping=0.0)
    np.testing.assert_allclose(uniform.pick_errors, sel.errors.numpy(), rtol=1e-12, atol=1e-15)
    picks, errs = sel.indices.tolist(), sel.errors.numpy()
    assert list(uniform.distinct) == [len(set(picks[:t + 1])) for t in range(120)]
    for d in range(1, uniform.measured_until + 1):  # slow reference: the pick that brings in channel d
        t = next(t for t in range(120) if len(set(picks[:t + 1])) == d)
        assert uniform.errors[d - 1] == errs[t]
    assert uniform.measured_until >= 5 and len(uniform.errors) == 15
    simplex = curves.curves["reoptimized-simplex"]
    assert len(simplex.errors) == 10 and "capped" in simplex.note
    rnd = curves.curves["random"]
    assert np.all(rnd.spread["min"] <= rnd.errors + 1e-15) and np.all(rnd.errors <= rnd.spread["max"] + 1e-15)
    assert rnd.spread["seeds"] == [0, 1, 2]


def test_magnitude_skipped_without_scores_and_bad_input():
    group = group_from_phi("g", points(6, 3, seed=1) + 3)
    curves = decay_curves(group, methods=("uniform", "magnitude"))
    assert "magnitude" in curves.skipped and "uniform" in curves.curves
    with pytest.raises(UserError, match="n_max"):
        decay_curves(group, 7)
    with pytest.raises(UserError, match="unknown analysis method"):
        decay_curves(group, methods=("lasso",))
    bad = GroupStatistics("bad", torch.eye(3), torch.ones(2), 1.0)
    with pytest.raises(UserError, match="bad"):
        decay_curves(bad)


def _finite(obj):
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_finite(v) for v in obj)
    return True


def test_analyze_groups_writes_reports(tmp_path):
    groups = [group_from_phi("layer1.conv", sphere(16, 3, seed=1), scores=torch.rand(16), depth=1),
              group_from_phi("layer2", points(10, 20, seed=2) + 1.0, depth=2),
              group_from_phi("off", sphere(12, 3, seed=3), torch.tensor([9.0, 9.0, 0.0], dtype=torch.float64),
                             depth=3)]
    report = analyze_groups(groups, tmp_path / "out", seeds=(0, 1), progress=False)
    for key in ("curves", "bounds", "report", "summary_plot"):
        assert report.files[key].exists()
    for name in ("layer1.conv", "layer2", "off"):
        png = tmp_path / "out" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = json.loads(report.files["curves"].read_text())
    bounds = json.loads(report.files["bounds"].read_text())
    assert _finite(curves) and _finite(bounds)
    assert [g["name"] for g in curves["groups"]] == ["layer1.conv", "layer2", "off"]
    # "off" (target outside the hull, stuck at the nearest vertex): B1 holds with equality there whatever V_T is,
    # so no wrong V_T would fail it: a pass that tests nothing, hence not informative
    assert bounds["summary"]["herding_hull"] == {"pass": 3, "fail": 0, "n/a": 0, "informative": 2}
    assert bounds["summary"]["fcfw_linear"] == {"pass": 2, "fail": 0, "n/a": 1, "informative": 1}
    assert bounds["summary"]["fcfw_endpoint"] == {"pass": 3, "fail": 0, "n/a": 0, "informative": 0}
    off_rows = {c["bound"]: c for c in next(g for g in bounds["groups"] if g["name"] == "off")["checks"]}
    assert off_rows["herding_hull"]["resolution"] is None and not off_rows["herding_hull"]["informative"]
    assert curves["groups"][1]["fits"]["reoptimized"]["sensitivity"]["N/2"]["n_range"] == [1, 5]
    off = next(g for g in bounds["groups"] if g["name"] == "off")
    assert len(off["bounds_relative"]["herding_hull"]) == 96 and len(off["bounds_relative"]["free_linear"]) == 12
    assert bounds["source"] is None and "pick_errors" in curves["groups"][0]["methods"]["uniform"]
    text = report.files["report"].read_text()
    assert "| off | herding_hull | uniform | pass |" in text and "outside the convex hull" in text
    assert "uniform (per pick)" in text and "< 1 from n" in text and "resolution k*" in text
    assert "verdict by range N/4 · N/2 · 3N/4 · all" in text
    assert "| off | fcfw_endpoint | reoptimized-simplex | pass |" in text
    assert "## Fitted rates" in text and "plots/summary_rates.png" in text
    sourced = analyze_groups(groups[:1], tmp_path / "src", seeds=(0,), progress=False, plots=False,
                             source={"model": "m", "weights": "trained cache: x", "test_acc": 0.8612})
    assert json.loads(sourced.files["bounds"].read_text())["source"]["weights"] == "trained cache: x"
    assert "Analysed: model: m; weights: trained cache: x; test_acc: 86.12%." in sourced.files["report"].read_text()
    with pytest.raises(UserError, match="distinct"):
        analyze_groups([groups[0], groups[0]], tmp_path / "x", progress=False)
    with pytest.raises(UserError, match="non-empty"):
        analyze_groups([], tmp_path / "x", progress=False)


def test_distinct_counts_and_best_prefix_per_channel_count():
    idx = np.array([3, 1, 3, 3, 2, 1, 0])
    assert distinct_counts(idx).tolist() == [1, 2, 2, 2, 3, 3, 4]
    errs = np.array([0.9, 0.5, 0.6, 0.4, 0.45, 0.2, 0.1])
    assert by_channels(errs, distinct_counts(idx), 5).tolist() == [0.9, 0.5, 0.45, 0.1, 0.1]
    assert by_channels(errs, distinct_counts(idx), 3).tolist() == [0.9, 0.5, 0.45]


def test_uniform_that_never_reaches_every_channel_says_so():
    # one candidate equals the target: herding picks it over and over and keeps 1 channel
    phi = torch.cat([torch.zeros(1, 3, dtype=torch.float64), points(5, 3, seed=3) + 4.0])
    group = group_from_phi("one", phi, torch.zeros(3, dtype=torch.float64) + 1e-3)
    curve = decay_curves(group, methods=("uniform",), uniform_picks=10).curves["uniform"]
    assert len(curve.pick_errors) == 10 and curve.measured_until < 6 and "distinct channels" in curve.note
    assert len(curve.errors) == 6 and np.all(curve.errors[curve.measured_until:] == curve.errors[curve.measured_until - 1])
    with pytest.raises(UserError, match="uniform_picks"):
        decay_curves(group, methods=("uniform",), uniform_picks=3)


def test_per_pick_fit_stops_where_herding_first_reaches_the_target():
    # regular simplex, target = centroid: herding picks every vertex once and is exact at pick N = 6, then
    # cycles away and back; the per-pick fit must describe the descent only
    result = analyze_group(group_from_phi("simplex", regular_simplex(6) + 1.0), methods=("uniform",), seeds=())
    picks = result.curves.curves["uniform"].pick_errors
    assert picks[5] <= 1e-12 and np.any(picks[6:] > 1e-3)
    assert result.pick_fits["uniform"].n_range == (1, 3)  # default: n <= N/2
    assert result.pick_fits["uniform"].sensitivity["all"]["n_range"] == [1, 5]
