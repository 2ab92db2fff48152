"""The check on synthetic groups whose answer is known: interior, outside, boundary, duplicates."""

import numpy as np
import pytest
import torch

from analysis import bound_curves, check_group, compute_constants, decay_curves

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
    assert not constants.in_hull
    hull = rows["herding_hull"]  # B1 with its |Phi a* - T| terms holds for any target (THEORY.md §3)
    assert hull.status == "pass" and "outside the convex hull" in hull.violated
    assert "although its assumption is violated" in hull.explanation
    # ... while the O(1/n) form V(a*)/n alone is violated: the delta terms are needed
    picks = curves.curves["uniform"].pick_errors
    n = np.arange(1, len(picks) + 1)
    assert np.any(picks > constants.V_a_star / n / constants.energy + 1e-10)
    assert rows["fcfw_linear"].status == "n/a" and "outside the convex hull" in rows["fcfw_linear"].violated
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


def test_bound_above_the_trivial_error_is_not_informative():
    # spread-out candidates around a mean near 0: E small against V_T, so V_T/(n E) >= 1 for every n <= 8N
    phi = points(10, 6, seed=12)
    phi = phi - phi.mean(0) + 0.01
    _, constants, rows = run(group_from_phi("flat", phi))
    hull = rows["herding_hull"]
    assert constants.V_T / (8 * constants.N * constants.energy) > 1
    assert hull.status == "pass" and not hull.informative and hull.below_one_from is None
    assert hull.min_bound > 1 and "vacuous" in hull.explanation
    assert hull.min_bound == pytest.approx(float(bound_curves(constants, 80)["herding_hull"].min()), rel=1e-12)


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
