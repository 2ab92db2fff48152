"""Issue 19, items 4 and 5: rank decisions, L_span, the hull verdict and B4's distance do not depend on how
loud each candidate is, and the hull tolerance comes from an explicit point of the hull, not a solver's value."""

import numpy as np
import pytest
import torch

from greedyprune.analysis import GroupStatistics, check_group, compute_constants, decay_curves
from greedyprune.analysis.geometry import embed

from .synthetic import group_from_phi, points, sphere


def triangle(scale: float) -> GroupStatistics:
    phi = torch.tensor([[scale, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    return group_from_phi(f"triangle {scale:g}", phi, torch.tensor([1.0, 0.2], dtype=torch.float64))


@pytest.mark.parametrize("scale", [10.0, 1e3, 1e6, 1e9])
def test_loud_vertex_triangle_keeps_rank_span_and_hull(scale):
    """phi = (s, 0), (0, 1), (0, -1), T = (1, 0.2), strictly inside. Before, at s = 1e6: rank 1, L_span/E = 0.038,
    "T outside the hull" and reoptimized-simplex at n = N = 3 at 0.615 E while L* = 0."""
    group = triangle(scale)
    curves = decay_curves(group, methods=("reoptimized", "reoptimized-simplex", "uniform"))
    c = compute_constants(group)
    assert (c.rank, c.affine_dim) == (2, 2)
    assert c.L_span <= 1e-12 * c.energy and c.in_hull and c.hull_verdict == "inside"
    assert c.Lstar <= 1e-14 * c.energy and not c.violations.get("fcfw_linear")
    # exact margin: distance of T to the nearest edge: x = 0, or x/s + y = 1
    assert c.r == pytest.approx(min(1.0, (0.8 - 1 / scale) / np.sqrt(1 + 1 / scale ** 2)), rel=1e-6)
    rows = {r.bound: r for r in check_group(curves, c)}
    assert rows["fcfw_endpoint"].status == "pass"
    assert float(curves.curves["reoptimized-simplex"].errors[-1]) <= 1e-12
    assert all(r.status != "FAIL" for r in rows.values()), {k: r.explanation for k, r in rows.items()}


def test_rank_is_invariant_to_rescaling_single_candidates():
    rng = np.random.default_rng(3)
    c = points(10, 6, seed=5) @ torch.diag(torch.tensor([1.0, 1.0, 1.0, 1.0, 1e-3, 1e-3], dtype=torch.float64))
    c = torch.cat([c, c[:2] * 2.0])  # 12 candidates of rank 6
    base = embed((c @ c.T).numpy(), (c @ c.sum(0)).numpy(), float(c.sum(0) @ c.sum(0)))
    assert base.rank == 6
    for _ in range(5):
        s = torch.tensor(10.0 ** rng.uniform(-6, 6, size=12))
        cs = c * s[:, None]
        t = cs.sum(0)
        emb = embed((cs @ cs.T).numpy(), (cs @ t).numpy(), float(t @ t))
        assert emb.rank == 6 and emb.outside <= 1e-12 * float(t @ t)  # T = sum c_i is in the span
        assert np.allclose(emb.norms, 12 * (cs ** 2).sum(1).sqrt().numpy(), rtol=1e-12)


def test_hull_tolerance_is_a_certified_distance_at_rounding_level():
    """Item 5: for targets exactly in the hull (interior, on a facet, at a vertex) the QP alone returned
    L*/E of 1e-9 to 4.5e-9, 2-10x below the 1e-8 that decides "inside". The polished point of the hull
    (an exact solve on the QP's support) is within rounding, and its bracket is certified from (G, b, E)."""
    rng = np.random.default_rng(1)
    for trial in range(6):
        n = 12 + 4 * trial
        phi = points(n, n + 5, seed=200 + trial) + 2.0
        weights = np.zeros(n)
        support = rng.choice(n, size=[n, n // 2, 1][trial % 3], replace=False)  # interior, facet, vertex
        weights[support] = rng.dirichlet(np.ones(len(support)))
        target = torch.tensor(weights) @ phi
        c = compute_constants(group_from_phi(f"on hull {trial}", phi, target))
        assert c.Lstar_lower <= c.Lstar <= 1e-13 * c.energy, (trial, c.Lstar / c.energy, c.lstar_source)
        assert c.in_hull and c.aff_dist2 <= 1e-13 * c.energy
        if trial % 3:  # on a facet or at a vertex: no margin, B4 not applicable
            assert "relative boundary" in c.violations["fcfw_linear"] or "outside" in c.violations["fcfw_linear"]


def test_b4_on_a_target_off_the_affine_hull_holds_with_the_distance_offset():
    phi = sphere(16, 3, seed=6)
    lifted = torch.cat([phi, torch.zeros(16, 2, dtype=torch.float64)], 1)  # hull in a 3-dim slice of R^5
    target = torch.cat([phi.mean(0), torch.tensor([0.3, -0.4], dtype=torch.float64)])
    group = group_from_phi("lifted", lifted, target)
    curves = decay_curves(group, methods=("reoptimized-simplex",))
    c = compute_constants(group)
    assert c.aff_dist2 == pytest.approx(0.25, rel=1e-9) and "fcfw_linear" not in c.violations
    row = {r.bound: r for r in check_group(curves, c)}["fcfw_linear"]
    assert row.status == "pass" and row.resolution is not None and row.resolution < 1e3
    assert row.min_bound >= c.aff_dist2 / c.energy - 1e-15  # never below the distance to the affine hull
