"""MRBO, VRBO and stocBiO on the closed-form quadratic bilevel problem: convergence, cost, resume.

``CONFIGS`` are hand-picked settings for the convergence, momentum and resume tests. The cost ordering
against stocBiO uses ``CONFIRMED``: the settings experiments/bilevel_quadratic.py selected and confirmed
(``bilevel_quadratic.json["confirm"]``; a test keeps the two equal), on seeds unlike the experiment's.
"""

import json
from pathlib import Path

import pytest
import torch

from greedyprune.bilevel import (MRBOOptions, QuadraticBilevel, StocBiOOptions, VRBOOptions, hypergradient,
                                 make_solver, registered_solvers)
from greedyprune.bilevel.benchmark import cost_to, error_trace
from greedyprune.bilevel.hypergrad import HypergradOptions
from greedyprune.bilevel.problem import OracleCost
from greedyprune.errors import UserError
from greedyprune.io import load_checkpoint, save_torch

HG = dict(hypergrad="cg", hypergrad_iters=5)
CONFIGS = {
    "stocbio": StocBiOOptions(batch_size=64, lr_x=0.1, lr_y=0.3, inner_steps=1, **HG),
    "mrbo": MRBOOptions(batch_size=8, lr_x=0.3, lr_y=0.3, d=1.0, m=8, c1=1.0, c2=1.0, **HG),
    "vrbo": VRBOOptions(batch_size=4, lr_x=0.1, lr_y=0.3, large_batch=256, period=8, inner_steps=3, **HG),
}

CONFIRMED = {
    "stocbio": StocBiOOptions(batch_size=128, lr_x=0.05, lr_y=0.3, inner_steps=1, **HG),
    "mrbo": MRBOOptions(batch_size=8, lr_x=0.3, lr_y=0.3, d=1.0, m=8, c1=0.3, c2=0.3, **HG),
    "vrbo": VRBOOptions(batch_size=8, lr_x=0.1, lr_y=0.3, large_batch=1024, period=16, inner_steps=4, **HG),
}
RESULTS = Path(__file__).resolve().parents[2] / "experiments" / "results" / "bilevel_quadratic.json"


def _relative_sq_errors(name, options, seed, budget, problem=None):
    problem = problem or QuadraticBilevel()
    x_star, _ = problem.solution()
    zero = torch.zeros_like(x_star)
    out = []

    def record(s):
        out.append((s.cost.samples, float(((s.x[0] - x_star).norm() / x_star.norm()) ** 2)))
        return s.cost.samples >= budget

    make_solver(name, problem, zero, zero, options, torch.Generator().manual_seed(seed)).run(10 ** 6, record)
    return out


@pytest.mark.parametrize("name", ["stocbio", "mrbo", "vrbo"])
def test_noise_free_runs_converge_to_the_closed_form_solution(name):
    problem = QuadraticBilevel(sigma=0.0, sigma_h=0.0)
    x_star, y_star = problem.solution()
    zero = torch.zeros_like(x_star)
    solver = make_solver(name, problem, zero, zero, CONFIGS[name]).run({"vrbo": 50}.get(name, 70))
    assert (solver.x[0] - x_star).norm() / x_star.norm() < 1e-3
    assert (solver.y[0] - y_star).norm() / y_star.norm() < 1e-2


def _samples_to(runs, eps):
    """First sample count where the seed-mean squared error is <= eps^2 and stays there for 20% more steps."""
    n = min(len(r) for r in runs)
    mean = [sum(r[i][1] for r in runs) / len(runs) for i in range(n)]
    hit = next((i for i in range(n) if all(m <= eps ** 2 for m in mean[i:i + max(3, i // 5)])), None)
    return None if hit is None else runs[0][hit][0]


def _final(runs):
    return sum(r[-1][1] for r in runs) / len(runs)


NO_MOMENTUM = MRBOOptions(**{**vars(CONFIGS["mrbo"]), "c1": 1e12, "c2": 1e12})  # alpha = beta = 1: plain SGD


@pytest.fixture(scope="module")
def noisy_runs():
    """Noisy runs (sigma = 1: batch-1 hypergradient noise ~6x ||grad Phi(0)||), seeds unlike the experiment's."""
    seeds = range(700, 703)
    return {
        "stocbio": [_relative_sq_errors("stocbio", CONFIGS["stocbio"], s, 3000) for s in seeds],
        "mrbo": [_relative_sq_errors("mrbo", CONFIGS["mrbo"], s, 2000) for s in seeds],
        "mrbo-no-momentum": [_relative_sq_errors("mrbo", NO_MOMENTUM, s, 2000) for s in seeds],
        "vrbo": [_relative_sq_errors("vrbo", CONFIGS["vrbo"], s, 3000) for s in seeds[:2]],
    }


@pytest.mark.parametrize("name", ["stocbio", "mrbo", "vrbo"])
def test_noisy_runs_approach_x_star(noisy_runs, name):
    assert _final(noisy_runs[name]) < 0.15 ** 2, _final(noisy_runs[name])


def test_recursive_momentum_cuts_the_samples_of_the_same_single_loop_sgd(noisy_runs):
    """MRBO against itself with alpha = beta = 1 (same batches, steps, schedule, estimator): the
    recursive momentum alone must reach 20% error with at most half the samples and end lower.
    (Against a separately tuned stocBiO the ordering does not hold robustly at this scale; see
    docs/bilevel.md and experiments/bilevel_quadratic.py.)"""
    mrbo, plain = _samples_to(noisy_runs["mrbo"], 0.2), _samples_to(noisy_runs["mrbo-no-momentum"], 0.2)
    assert mrbo is not None and (plain is None or mrbo <= 0.5 * plain), (mrbo, plain)
    assert _final(noisy_runs["mrbo"]) <= 0.6 * _final(noisy_runs["mrbo-no-momentum"])


def test_cost_ordering_uses_the_settings_the_experiment_confirmed():
    confirmed = json.loads(RESULTS.read_text())["confirm"]["methods"]
    for name, options in CONFIRMED.items():
        stored, current, defaults = confirmed[name]["options"], vars(options), vars(type(options)())
        assert {k: current[k] for k in stored} == stored, name
        assert all(current[k] == defaults[k] for k in current.keys() - stored.keys()), name  # fields added since


@pytest.mark.slow
def test_mrbo_and_vrbo_need_fewer_samples_than_stocbio():
    """Samples until the seed-mean relative error reaches eps and stays (greedyprune.bilevel.benchmark).

    On these seeds (10 MRBO, 20 stocBiO / VRBO; ~15-25 s): to eps = 0.05 MRBO 4,112 samples, stocBiO
    11,520 (the experiment's fresh seeds: 3,856 vs 11,136; ratio 0.32-0.43 over 14 sets of 10 seeds).
    To eps = 0.1 VRBO 5,680, stocBiO 6,144. VRBO vs stocBiO is asserted at eps = 0.1 only: VRBO got
    there first in all 20 sets of 10 seeds tried (ratio 0.81-0.92), but at 0.07 and 0.05 its hit moves
    by a whole anchor period (~3,300 samples) between seed sets, and it lost to stocBiO in 2-3 of 20
    (docs/bilevel.md). Per sample, the small-batch methods spend far more oracle calls: to eps = 0.05
    MRBO used 1,026 gradient calls and 3,078 second-order products against stocBiO's 90 and 180;
    that ordering (the other way round) is asserted too.
    """
    seeds = range(3000, 3020)
    runs = {"stocbio": [error_trace("stocbio", CONFIRMED["stocbio"], s, 14_000) for s in seeds],
            "vrbo": [error_trace("vrbo", CONFIRMED["vrbo"], s, 9_000) for s in seeds],
            "mrbo": [error_trace("mrbo", CONFIRMED["mrbo"], s, 6_000) for s in seeds[:10]]}
    at = {eps: {n: cost_to(r, eps) for n, r in runs.items()} for eps in (0.1, 0.05)}
    stoc, mrbo = at[0.05]["stocbio"], at[0.05]["mrbo"]
    assert stoc is not None and mrbo is not None, at
    assert mrbo["samples"] <= 0.5 * stoc["samples"], at  # ratio 0.32-0.43 over 14 seed sets
    vrbo, stoc1 = at[0.1]["vrbo"], at[0.1]["stocbio"]
    assert vrbo is not None and vrbo["samples"] < stoc1["samples"], at
    # the other side of the ledger: batch-8 estimates cost many more gradient calls and products
    assert mrbo["gradients"] > 5 * stoc["gradients"] and mrbo["products"] > 5 * stoc["products"], at
    assert vrbo["gradients"] > 3 * stoc1["gradients"], at


def test_vrbo_recursive_estimate_has_less_error_than_a_fresh_small_batch():
    """Variance reduction itself: after an anchor and a few small-batch corrections along a path,
    VRBO's estimate of grad Phi is closer to the truth than one estimate from a batch of that size."""
    problem = QuadraticBilevel()
    x_star, _ = problem.solution()
    x0 = x_star + 0.3
    truth = problem.grad_phi(x0)
    vr, plain = [], []
    for s in range(16):
        opts = VRBOOptions(batch_size=4, lr_x=0.05, lr_y=0.3, large_batch=512, period=100, inner_steps=3, **HG)
        solver = make_solver("vrbo", problem, x0, problem.M @ x0, opts, torch.Generator().manual_seed(s))
        solver.run(2)
        vr.append(float((solver.u[0] - problem.grad_phi(solver.x[0])).norm() ** 2))
        gen = torch.Generator().manual_seed(10_000 + s)
        u, _ = hypergradient(problem, (x0,), (problem.M @ x0,), problem.sample(4, gen), problem.sample(4, gen),
                             HypergradOptions("cg", 5), OracleCost())
        plain.append(float((u[0] - truth).norm() ** 2))
    assert sum(vr) < 0.5 * sum(plain), (sum(vr), sum(plain))


@pytest.mark.parametrize("name", sorted(set(registered_solvers) - {"first-order"}))
def test_checkpoint_and_resume_give_identical_iterates(name, tmp_path):
    problem = QuadraticBilevel()
    zero = torch.zeros(problem.dim, dtype=torch.float64)
    straight = make_solver(name, problem, zero, zero, CONFIGS[name], torch.Generator().manual_seed(1)).run(7)
    first = make_solver(name, problem, zero, zero, CONFIGS[name], torch.Generator().manual_seed(1)).run(4)
    save_torch(first.state_dict(), tmp_path / "state.pt")
    resumed = make_solver(name, problem, zero, zero, CONFIGS[name], torch.Generator().manual_seed(99))
    resumed.load_state_dict(load_checkpoint(tmp_path / "state.pt"))
    resumed.run(3)
    assert torch.equal(resumed.x[0], straight.x[0]) and torch.equal(resumed.y[0], straight.y[0])
    assert resumed.cost == straight.cost


def test_user_errors():
    problem = QuadraticBilevel()
    z = torch.zeros(problem.dim, dtype=torch.float64)
    with pytest.raises(UserError, match="unknown bilevel solver"):
        make_solver("adam", problem, z, z)
    with pytest.raises(UserError, match="MRBO"):
        MRBOOptions(m=0.5)
    with pytest.raises(UserError, match="needs"):
        make_solver("mrbo", problem, z, z, StocBiOOptions())
    with pytest.raises(UserError, match="bilinear"):
        make_solver("first-order", problem, z, z)
    diverging = make_solver("stocbio", problem, z, z, StocBiOOptions(lr_x=50.0, lr_y=5.0, **HG))
    with pytest.raises(UserError, match="NaN"):
        diverging.run(200)
