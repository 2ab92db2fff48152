"""``reoptimized-simplex``'s inner QP does not depend on how the candidates are scaled (issue 19, item 4)."""

import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch

from greedyprune.selection import greedy_select_gram


def _solve_exact(m: list[list[Fraction]], r: list[Fraction]) -> list[Fraction] | None:
    """Gauss-Jordan elimination in exact rational arithmetic; None if singular."""
    size = len(r)
    rows = [row[:] + [r[i]] for i, row in enumerate(m)]
    for col in range(size):
        pivot = next((i for i in range(col, size) if rows[i][col] != 0), None)
        if pivot is None:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for i in range(size):
            if i != col and rows[i][col] != 0:
                f = rows[i][col] / rows[col][col]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[col])]
    return [rows[i][size] / rows[i][i] for i in range(size)]


def exact_hull_loss(phi: np.ndarray, t: np.ndarray) -> float:
    """``min_{a in simplex} ||phi' a - t||^2`` by trying every support, in exact rational arithmetic (the
    float64 data taken as exact), so the reference is immune to the scaling that is being tested."""
    p = [[Fraction(float(x)) for x in row] for row in phi]
    tt = [Fraction(float(x)) for x in t]
    best = None
    for size in range(1, len(p) + 1):
        for support in itertools.combinations(range(len(p)), size):
            kkt = [[2 * sum(x * y for x, y in zip(p[i], p[j])) for j in support] + [Fraction(1)] for i in support]
            kkt.append([Fraction(1)] * size + [Fraction(0)])
            rhs = [2 * sum(x * y for x, y in zip(p[i], tt)) for i in support] + [Fraction(1)]
            sol = _solve_exact(kkt, rhs)
            if sol is None or min(sol[:size]) < 0:
                continue
            x = [sum(sol[k] * p[i][q] for k, i in enumerate(support)) for q in range(len(tt))]
            loss = sum((a - b) ** 2 for a, b in zip(x, tt))
            best = loss if best is None else min(best, loss)
    return float(best)


def simplex_errors(phi: np.ndarray, t: np.ndarray) -> torch.Tensor:
    n = phi.shape[0]
    c, target = torch.tensor(phi / n), torch.tensor(t)
    return greedy_select_gram(c @ c.T, c @ target, target @ target, n, method="reoptimized-simplex",
                              damping=0.0).errors


@pytest.mark.parametrize("scale", [1e2, 1e4, 1e6, 1e8, 1e10])
def test_triangle_with_one_loud_vertex_is_solved_exactly(scale):
    # phi = (s, 0), (0, 1), (0, -1), T = (1, 0.2): strictly inside the triangle, so L* = 0 with all three
    # vertices picked. Before the rescaled solve: 0.615 E at s = 1e6, 1.58 E at s = 1e10.
    phi = np.array([[scale, 0.0], [0.0, 1.0], [0.0, -1.0]])
    errors = simplex_errors(phi, np.array([1.0, 0.2]))
    assert len(errors) == 3 and float(errors[-1]) <= 1e-12
    # picks: (0, 1) (the closest vertex), then the loud one (the Frank-Wolfe vertex), then (0, -1)
    assert float(errors[1]) == pytest.approx(exact_hull_loss(phi[:2], np.array([1.0, 0.2])) / 1.04, rel=1e-9)


def test_random_problems_with_one_rescaled_candidate_match_the_exact_reference():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n, d = int(rng.integers(3, 7)), int(rng.integers(2, 8))
        phi = rng.standard_normal((n, d))
        phi[rng.integers(n)] *= 10.0 ** int(rng.integers(-6, 7))
        t = 0.5 * rng.standard_normal(d) + phi.mean(0) * rng.random()
        final = float(simplex_errors(phi, t)[-1])  # all n candidates picked: the optimum over the hull
        assert final == pytest.approx(exact_hull_loss(phi, t) / float(t @ t), rel=1e-9, abs=1e-10)
