"""Theory constants against slow obvious references and closed forms."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from greedyprune.analysis import GroupStatistics, compute_constants
from greedyprune.analysis.geometry import span_covering

from .synthetic import group_from_phi, points, regular_simplex, sphere


def brute_force_lstar(phi: np.ndarray, target: np.ndarray) -> float:
    """min over the simplex of ||phi' a - t||^2 by trying every support (equality-constrained KKT)."""
    n = phi.shape[0]
    best = math.inf
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            p = phi[list(support)]
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = 2 * p @ p.T
            kkt[:size, size] = 1
            kkt[size, :size] = 1
            rhs = np.concatenate([2 * p @ target, [1.0]])
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            if sol.min() < -1e-12 or abs(sol.sum() - 1) > 1e-9:
                continue
            best = min(best, float(((sol @ p - target) ** 2).sum()))
    return best


def test_lstar_matches_brute_force_and_scipy():
    phi = points(6, 3, seed=1)
    target = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    c = compute_constants(group_from_phi("out", phi, target))
    ref = brute_force_lstar(phi.numpy(), target.numpy())
    fun = lambda a: float(((a @ phi.numpy() - target.numpy()) ** 2).sum())  # noqa: E731
    scipy_val = minimize(fun, np.full(6, 1 / 6), method="SLSQP", bounds=[(0, 1)] * 6,
                         constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1}], options={"ftol": 1e-14}).fun
    assert ref > 0.1  # really outside
    assert c.Lstar == pytest.approx(ref, rel=1e-7)
    assert scipy_val == pytest.approx(ref, rel=1e-6)
    assert c.Lstar_lower <= ref + 1e-12 <= c.Lstar + 2e-12
    assert not c.in_hull and "fcfw_linear" in c.violations and "herding_hull" in c.violations


def test_closed_form_constants_against_explicit_vectors():
    phi = points(9, 4, seed=2)
    c = compute_constants(group_from_phi("g", phi))
    t = phi.mean(0)
    pair = ((phi[:, None, :] - phi[None, :, :]) ** 2).sum(-1)
    to_t = ((phi - t) ** 2).sum(1)
    assert c.centroid_target and c.in_hull and c.Lstar == pytest.approx(0, abs=1e-14)
    assert c.D2 == pytest.approx(float(pair.max()), rel=1e-12)
    assert c.DT2 == pytest.approx(float(to_t.max()), rel=1e-12)
    assert c.L1 == pytest.approx(float(to_t.min()), rel=1e-12)
    assert c.V_T == pytest.approx(float(to_t.mean()), rel=1e-10)  # V(1/N) = N tr G - E
    assert c.V_T <= c.D2 / 2


def test_margin_of_regular_simplex_is_exact():
    n, edge = 9, 2.0  # affine dimension 8 > 6: the LP path, exact for a simplex
    c = compute_constants(group_from_phi("simplex", regular_simplex(n, edge)))
    inradius = edge / math.sqrt(2 * n * (n - 1))  # centroid to facet, regular simplex with n vertices
    assert c.affine_dim == n - 1 and "simplex" in c.r_method
    assert c.r == pytest.approx(inradius, rel=1e-7)
    assert c.t_max == pytest.approx(1 / n, rel=1e-7)


def test_margin_certificate_is_below_exact_facet_margin():
    square = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [0.3, 0.2]], dtype=torch.float64)
    target = torch.tensor([0.2, 0.1], dtype=torch.float64)
    c = compute_constants(group_from_phi("square", square, target))
    assert c.r_exact == pytest.approx(0.8, rel=1e-9)  # distance of (0.2, 0.1) to the side x = 1
    assert 0 < c.r_cert <= c.r_exact + 1e-12
    c3 = compute_constants(group_from_phi("ball", sphere(30, 3, seed=3)))
    assert 0 < c3.r_cert <= c3.r_exact + 1e-12 and c3.r == c3.r_exact


def test_span_covering_orthonormal_and_general():
    q, _ = torch.linalg.qr(points(12, 12, seed=4))
    cover = span_covering((q @ q.T).numpy())
    assert cover.mu2 == pytest.approx(1 / 12, rel=1e-6)
    phi = points(10, 6, seed=5).numpy()
    cover = span_covering(phi @ phi.T)
    assert cover.mu2 >= cover.mu2_eig > 0
    # brute force: mu^2 <= max_j <u, chat_j>^2 for every unit u in the span
    chat = phi / np.linalg.norm(phi, axis=1, keepdims=True)
    u = np.random.default_rng(0).standard_normal((20000, 6))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    assert cover.mu2 <= float(((u @ chat.T) ** 2).max(1).min()) + 1e-12


def test_duplicated_candidates_keep_the_geometry():
    base = points(8, 3, seed=6)
    dup = torch.cat([base, base[:3]])
    target = base.mean(0)
    one = compute_constants(group_from_phi("base", base, target))
    two = compute_constants(group_from_phi("dup", dup, target))
    n1, n2 = 8, 11  # phi_i = N c_i: the hull points are the same rows, only N changed
    assert two.D2 == pytest.approx(one.D2, rel=1e-10) and two.DT2 == pytest.approx(one.DT2, rel=1e-10)
    assert two.rank == one.rank == 3 and two.affine_dim == 3
    assert two.r == pytest.approx(one.r, rel=1e-8) and two.in_hull
    assert (n1, n2) == (one.N, two.N)


def test_target_off_the_affine_hull_is_projected_for_b4():
    phi = points(5, 3, seed=7)
    phi[:, 2] = 0.0  # the candidates span a plane; the target sticks out of it by exactly 1
    target = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) + phi.mean(0)
    c = compute_constants(group_from_phi("off-plane", phi, target))
    assert c.aff_dist2 == pytest.approx(1.0, rel=1e-9)  # closed form: the distance to the plane
    assert c.DT2 - c.aff_dist2 == pytest.approx(float(((phi - phi.mean(0)) ** 2).sum(1).max()), rel=1e-9)
    assert "fcfw_linear" not in c.violations and c.r > 0  # B4 applies to T's projection, the centroid
    assert c.L_span / c.energy > 0.1 and not c.in_hull and "herding_hull" in c.violations
    outside = compute_constants(group_from_phi("far", phi, target + torch.tensor([9.0, 9.0, 0.0], dtype=torch.float64)))
    assert "outside the convex hull" in outside.violations["fcfw_linear"]


def test_centroid_variance_is_n_trace_minus_ones_gram_ones():
    """Issue 19, item 3: V(1/N) = N tr G - 1'G1, not N tr G - E. Two cancelling candidates (1e3, 0, 0) and
    (-1e3, 1, 0): the centroid test (tolerance 1e-9 of sum|G| = 4e6) accepts T = (0, 1, 1e-3), whose energy
    exceeds 1'G1 by 1e-6. With E in V_T, B1 is 1e-6 E below the measured first pick and FAILs, and the
    old report blamed "target outside the affine hull" for a bound that holds for every target."""
    c = torch.tensor([[1e3, 0.0, 0.0], [-1e3, 1.0, 0.0]], dtype=torch.float64)
    group = GroupStatistics.from_contributions("cancel", c, torch.tensor([0.0, 1.0, 1e-3], dtype=torch.float64))
    assert group.is_centroid_target()
    k = compute_constants(group)
    gram = group.gram.numpy()
    assert k.V_T == 2 * np.trace(gram) - gram.sum() == 4000001.0
    assert k.delta2 == pytest.approx(1e-6, rel=1e-6)
    assert "herding_hull" in k.violations and "holds for every target" in k.violations["herding_hull"]
