"""The check on synthetic groups whose answer is known: interior, outside, boundary, duplicates."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from greedyprune.analysis import GroupStatistics, bound_curves, check_group, compute_constants, decay_curves
from greedyprune.analysis.check import simplex_endpoint

from .synthetic import group_from_phi, points, regular_simplex, sphere

FAST = ("reoptimized", "reoptimized-simplex", "uniform")


def run(group, methods=FAST):
    curves = decay_curves(group, methods=methods)
    constants = compute_constants(group)
    return curves, constants, {row.bound: row for row in check_group(curves, constants)}


def test_interior_target_all_bounds_hold_and_linear_bound_is_informative():
    group = group_from_phi("ball", sphere(30, 3, seed=3))  # general position, target = centroid
    curves, constants, rows = run(group)
    assert constants.in_hull and constants.r > 0 and not constants.violations
    assert all(row.status == "pass" for row in rows.values()), {k: r.explanation for k, r in rows.items()}
    rhs = bound_curves(constants, curves.n_max)
    linear, sublinear = rhs["fcfw_linear"], rhs["fcfw_sublinear"]
    first = constants.L1 / constants.energy
    assert rows["fcfw_linear"].min_bound < 1e-4 * first      # certifies a 10^4-fold decrease within N picks
    assert rows["fcfw_linear"].informative and rows["fcfw_linear"].below_one_from == 1
    assert np.all(linear[2:] < sublinear[2:])                 # and beats the O(1/n) bound from n = 3 on
    assert rows["fcfw_linear"].max_ratio > 1e-2               # within 100x of the measured error at some n >= 2
    measured = curves.curves["reoptimized-simplex"].errors
    assert np.all(measured <= linear + 1e-10)


def test_general_position_simplex_target_at_centroid():
    group = group_from_phi("simplex", points(12, 30, seed=8) + 2.0)  # affinely independent: M is a simplex
    _, constants, rows = run(group)
    assert constants.affine_dim == 11 and "simplex" in constants.r_method
    assert all(row.status == "pass" for row in rows.values())
    assert rows["herding_hull"].max_ratio > 0.3  # B1 is nearly attained on a simplex


def test_target_outside_hull_reports_violated_assumption():
    phi = sphere(20, 3, seed=4)
    target = torch.tensor([8.0, 4.0, 0.0], dtype=torch.float64)
    curves, constants, rows = run(group_from_phi("outside", phi, target))
    assert not constants.in_hull and constants.hull_verdict == "outside"
    hull = rows["herding_hull"]  # B1 with its |Phi a* - T| terms holds for any target (THEORY.md §3)
    assert hull.status == "pass" and "not in the convex hull" in hull.violated
    assert "holds for every target" in hull.explanation
    # ... while the O(1/n) form V(a*)/n alone is violated: the delta terms are needed
    picks = curves.curves["uniform"].pick_errors
    n = np.arange(1, len(picks) + 1)
    assert np.any(picks > constants.V_a_star / n / constants.energy + 1e-10)
    assert rows["fcfw_linear"].status == "n/a" and "outside the convex hull" in rows["fcfw_linear"].violated
    assert rows["fcfw_endpoint"].status == "pass"  # all 20 picked: the engine reaches L* > 0 exactly
    for key in ("herding_general", "fcfw_sublinear", "free_linear"):  # no hull assumption: must hold
        assert rows[key].status == "pass" and rows[key].violated is None


def test_herding_bound_holds_near_and_off_the_hull():
    """B1 on targets at and around the centroid: the full form always holds; V/n alone fails off the hull."""
    phi = sphere(12, 3, seed=11)
    old_form_failed = 0
    for scale in (0.0, 1e-6, 1e-3, 0.3, 3.0):
        for seed in range(3):
            shift = points(1, 3, seed=40 + seed)[0] * scale
            group = group_from_phi(f"shift{scale}", phi, phi.mean(0) + shift)
            curves, constants, rows = run(group, methods=("uniform",))
            assert rows["herding_hull"].status == "pass", (scale, seed, rows["herding_hull"].explanation)
            assert rows["herding_general"].status == "pass"
            picks = curves.curves["uniform"].pick_errors
            assert len(picks) == 8 * 12 and rows["herding_hull"].n_checked == 96  # checked per pick
            n = np.arange(1, len(picks) + 1)
            old_form_failed += bool(np.any(picks > constants.V_T / n / constants.energy + 1e-10))
    assert old_form_failed >= 3  # the shifted targets outside the hull break V_T/n without the delta terms


def test_bound_above_the_trivial_error_says_nothing_about_a_pruned_layer():
    # spread-out candidates around a mean near 0: E small against V_T, so V_T/(n E) >= 1 for every n <= 8N
    phi = points(10, 6, seed=12)
    phi = phi - phi.mean(0) + 0.01
    _, constants, rows = run(group_from_phi("flat", phi))
    hull = rows["herding_hull"]
    assert constants.V_T / (8 * constants.N * constants.energy) > 1
    assert hull.status == "pass" and hull.below_one_from is None
    assert hull.min_bound > 1 and "bound/E >= 1" in hull.explanation
    assert hull.min_bound == pytest.approx(float(bound_curves(constants, 80)["herding_hull"].min()), rel=1e-12)
    # ... and yet it is tight (a V_T 3.4x too small would fail): informative about the constant, not the layer
    assert hull.resolution == pytest.approx(3.355, rel=1e-3) and hull.informative


def test_target_on_the_boundary_has_no_interior_margin():
    phi = regular_simplex(5) + 1.0
    target = 0.5 * (phi[0] + phi[1])  # midpoint of an edge: in M, not in its relative interior
    _, constants, rows = run(group_from_phi("edge", phi, target))
    assert constants.in_hull and constants.r == 0
    assert rows["fcfw_linear"].status == "n/a" and "relative boundary" in rows["fcfw_linear"].violated
    assert rows["herding_hull"].status == "pass"


def test_duplicated_candidates():
    base = sphere(10, 3, seed=5)
    phi = torch.cat([base, base[:4], base[:2]])  # 16 candidates, 6 of them repeats
    group = group_from_phi("dup", phi, scores=phi.norm(dim=1))
    curves, constants, rows = run(group, methods=FAST + ("magnitude", "random"))
    assert constants.rank == 3 and constants.r > 0
    assert all(row.status == "pass" for row in rows.values())
    free = curves.curves["reoptimized"]
    assert free.measured_until <= 4 and len(free.errors) == 16  # stops once the span is exhausted, padded
    assert free.errors[-1] <= 1e-12


def test_b1_in_the_cancelling_centroid_case_passes_and_failures_never_blame_an_assumption():
    """Issue 19, item 3 (see test_bounds for the constant): before, B1 FAILed here at n = 1 and the report
    said "assumption violated: target outside the affine hull"."""
    c = torch.tensor([[1e3, 0.0, 0.0], [-1e3, 1.0, 0.0]], dtype=torch.float64)
    group = GroupStatistics.from_contributions("cancel", c, torch.tensor([0.0, 1.0, 1e-3], dtype=torch.float64))
    curves, constants, rows = run(group, methods=("uniform",))
    assert rows["herding_hull"].status == "pass" and rows["herding_general"].status == "pass"
    first = bound_curves(constants, 1)["herding_hull"][0]  # tight at n = 1: V_T + delta2 = L_1 exactly
    assert curves.curves["uniform"].pick_errors[0] == pytest.approx(first, rel=1e-13)
    # a wrong constant makes B1, B2, B3, B5 FAIL; the explanation never blames the (informational) assumption
    wrong = dataclasses.replace(constants, V_T=constants.V_T - 2e-6 * constants.energy,
                                V_a_star=0.2 * constants.V_a_star)
    bad = {row.bound: row for row in check_group(curves, wrong)}
    for key in ("herding_hull", "herding_general"):
        assert bad[key].status == "FAIL" and "holds for every target" in bad[key].explanation
        assert "assumption" not in bad[key].explanation
    assert bad["herding_hull"].violated  # the O(1/n) note is still there, as information


def test_endpoint_of_the_simplex_curve_must_lie_in_the_lstar_bracket():
    group = group_from_phi("ball", sphere(12, 3, seed=2), torch.tensor([5.0, 1.0, 0.0], dtype=torch.float64))
    curves, constants, rows = run(group)
    assert rows["fcfw_endpoint"].status == "pass" and constants.Lstar / constants.energy > 0.05
    simplex = curves.curves["reoptimized-simplex"]
    for shift, word in ((1e-6, "did not converge"), (-1e-6, "below the certified lower bound")):
        broken = copy.deepcopy(curves)
        broken.curves["reoptimized-simplex"].errors[simplex.measured_until - 1] += shift
        row = simplex_endpoint(broken, constants)
        assert row.status == "FAIL" and word in row.explanation
    short = decay_curves(group, 6, methods=("reoptimized-simplex",))
    assert simplex_endpoint(short, constants).status == "n/a"  # stops at n = 6 < N above the floor
