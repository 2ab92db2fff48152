"""BiP as its released code runs it: the implicit term lr2 (grad_s l)^2 at lr2 = 1e-4, and momentum SGD on both
levels with the weights' cosine and the scores' step schedule (paper: alpha = 0.01, beta = 0.1)."""

import math

import pytest
import torch
from torch import nn

from greedyprune.baselines.bip import BiPOptions, bip_problem, solver_options
from greedyprune.bilevel import make_solver
from greedyprune.data import TensorImageDataset


def _data(n=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 4, 4, generator=gen, dtype=torch.float64)
    labels = (images.flatten(1) @ torch.randn(16, 3, generator=gen, dtype=torch.float64)).argmax(1)
    return TensorImageDataset(images, labels, ["a", "b", "c"])


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 3)).double()


def _reference_score_gradient(problem, scores, theta, batch_f, batch_g, lr2):
    """BiP's trainer written out densely: grad_s of CE through the straight-through top-k mask on each batch
    (its param_grad_vec and mask_grad_vec at the score entries), then grad_s l_f - lr2 grad_s l_f grad_s l_g."""
    def grad_s(batch):
        s = tuple(x.detach().clone().requires_grad_(True) for x in scores)
        values = dict(zip(problem.param_names, theta))
        for name, score, hard in zip(problem.mask_names, s, problem.hard_masks(scores)):
            values[name] = values[name] * (hard + score - score.detach())
        return torch.autograd.grad(problem.loss(values, batch), s)
    gf, gg = grad_s(batch_f), grad_s(batch_g)
    return tuple(a - lr2 * a * b for a, b in zip(gf, gg)), gf


@pytest.mark.parametrize("two_batches", [False, True])
def test_default_implicit_term_is_the_released_codes_at_its_scale(two_batches):
    options = BiPOptions(sparsity=0.8)
    assert (options.implicit_term, options.lr2, options.gamma) == ("reference", 1e-4, 1e-4)
    problem = bip_problem(_model(), _data(), options)
    scores, theta = problem.initial()
    gen = torch.Generator().manual_seed(5)
    batch_f = problem.sample(32, gen)
    batch_g = problem.sample(32, gen) if two_batches else batch_f
    if two_batches:
        ours, _ = problem.bilinear_estimates(scores, theta, batch_f, batch_g)
    else:
        ours, _ = problem.bilinear_hypergradient(scores, theta, batch_f)
    expected, direct = _reference_score_gradient(problem, scores, theta, batch_f, batch_g, 1e-4)
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    implicit = torch.cat([(d - e).reshape(-1) for d, e in zip(direct, expected)])
    ratio = float(implicit.norm() / torch.cat([d.reshape(-1) for d in direct]).norm())
    assert 0 < ratio < 1e-4  # a small correction, not the 1/gamma term that was 100x the direct gradient
    old = bip_problem(_model(), _data(), BiPOptions(sparsity=0.8, gamma=1e-3, implicit_term="inverse-gamma"))
    before, _ = old.bilinear_hypergradient(scores, theta, batch_f)
    old_implicit = torch.cat([(d - b).reshape(-1) for d, b in zip(direct, before)])
    assert float(old_implicit.norm()) > 10 * float(torch.cat([d.reshape(-1) for d in direct]).norm())


def test_first_order_runs_bips_optimizers_and_schedules():
    """Eight iterations of the solver equal torch.optim.SGD (momentum 0.9; weight decay gamma on the weights,
    1e-4 on the scores) with the cosine (weights) and step (scores) learning rates set by hand."""
    options = BiPOptions(sparsity=0.7, batch_size=16, epochs=8 * 16 / 96)  # 8 iterations over 96 images
    problem = bip_problem(_model(), _data(), options)
    scores, theta = problem.initial()
    solver = make_solver("first-order", problem, scores, theta, solver_options(options, 96),
                         torch.Generator().manual_seed(3))
    assert solver.options.total_steps == 8 and solver.options.momentum == 0.9
    solver.run(8)
    gen = torch.Generator().manual_seed(3)
    s = [x.clone().requires_grad_(False) for x in scores]
    w = [t.clone() for t in theta]
    opt_w = torch.optim.SGD([torch.nn.Parameter(t) for t in w], lr=0.01, momentum=0.9)
    opt_s = torch.optim.SGD([torch.nn.Parameter(t) for t in s], lr=0.1, momentum=0.9, weight_decay=1e-4)
    pw, ps = opt_w.param_groups[0]["params"], opt_s.param_groups[0]["params"]
    for t in range(8):
        _, lower = problem.bilinear_hypergradient(tuple(p.detach() for p in ps), tuple(p.detach() for p in pw),
                                                  problem.sample(16, gen))
        for p, g in zip(pw, lower):
            p.grad = g.clone()
        opt_w.param_groups[0]["lr"] = 0.01 * 0.5 * (1 + math.cos(math.pi * t / 8))
        opt_w.step()
        upper, _ = problem.bilinear_hypergradient(tuple(p.detach() for p in ps), tuple(p.detach() for p in pw),
                                                  problem.sample(16, gen))
        for p, g in zip(ps, upper):
            p.grad = g.clone()
        opt_s.param_groups[0]["lr"] = 0.1 * (0.01 if t >= 7.2 else 0.1 if t >= 6 else 1.0)
        opt_s.step()
    for a, b in zip(solver.y, pw):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-12)
    for a, b in zip(solver.x, ps):
        torch.testing.assert_close(a, b.detach(), rtol=1e-9, atol=1e-12)
