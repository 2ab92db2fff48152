"""The implicit hypergradient against closed forms and an explicit-matrix reference."""

import pytest
import torch

from greedyprune.bilevel import HypergradOptions, OracleCost, QuadraticBilevel, hypergradient, lower_gradient
from greedyprune.errors import UserError

OPTIONS = [HypergradOptions("cg", iters=10), HypergradOptions("neumann", iters=300, eta=0.3)]


@pytest.mark.parametrize("options", OPTIONS, ids=["cg", "neumann"])
def test_hypergradient_is_grad_phi_at_the_lower_solution(options):
    problem = QuadraticBilevel(dim=6, sigma=0.0, sigma_h=0.0, seed=3)
    batch = problem.sample(1, torch.Generator())
    x = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    hg, gy = hypergradient(problem, (x,), (problem.M @ x,), batch, batch, options, OracleCost())
    torch.testing.assert_close(hg[0], problem.grad_phi(x), rtol=1e-9, atol=1e-9)
    assert gy[0].abs().max() < 1e-12  # y = y*(x): the lower gradient vanishes


@pytest.mark.parametrize("options", OPTIONS, ids=["cg", "neumann"])
def test_hypergradient_matches_explicit_matrices_on_a_noisy_batch_away_from_y_star(options):
    problem = QuadraticBilevel(dim=5, sigma=0.5, sigma_h=0.1, seed=4)
    gen = torch.Generator().manual_seed(7)
    bf, bg = problem.sample(4, gen), problem.sample(4, gen)
    x, y = torch.randn(5, dtype=torch.float64, generator=gen), torch.randn(5, dtype=torch.float64, generator=gen)
    # slow obvious reference: grad_x f - J' H^{-1} grad_y f with H = A_g, J = d(grad_y g)/dx = -B_g
    reference = problem.mu * x - (-bg.B).T @ torch.linalg.solve(bg.A, y - bf.c)
    hg, gy = hypergradient(problem, (x,), (y,), bf, bg, options, OracleCost())
    torch.testing.assert_close(hg[0], reference, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(gy[0], bg.A @ y - bg.B @ x)
    torch.testing.assert_close(lower_gradient(problem, (x,), (y,), bg, OracleCost())[0], bg.A @ y - bg.B @ x)


def test_oracle_costs_are_counted():
    problem = QuadraticBilevel(dim=4)
    cost = OracleCost()
    gen = torch.Generator()
    b = cost.draw(problem, 8, gen)
    z = torch.zeros(4, dtype=torch.float64)
    hypergradient(problem, (z,), (z + 1,), b, b, HypergradOptions("neumann", iters=5, eta=0.1), cost)
    assert cost.as_dict() == {"samples": 8, "gradients": 2, "products": 5}  # 4 HVPs + 1 mixed product


def test_bad_hypergradient_options_are_one_line_user_errors():
    with pytest.raises(UserError, match="neumann"):
        HypergradOptions("lu")
    with pytest.raises(UserError, match="iters"):
        HypergradOptions("cg", iters=0)
