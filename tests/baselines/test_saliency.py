import pytest
import torch
from torch import nn
from torch.nn import functional as F

from greedyprune.baselines.saliency import (class_balanced_batch, grasp_scores, hessian_gradient_product,
                                            snip_scores)


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def flat_grad(model, x, y, t):
    model.zero_grad()
    F.cross_entropy(model(x) / t, y).backward()
    return torch.cat([model[0].weight.grad.flatten(), model[2].weight.grad.flatten()])


@pytest.mark.parametrize("temperature", [1.0, 200.0])
def test_grasp_hg_matches_finite_difference(temperature):
    model = tiny()
    x, y = torch.randn(12, 5, dtype=torch.float64), torch.randint(0, 3, (12,))
    weights = [model[0].weight, model[2].weight]
    g, hg = hessian_gradient_product(lambda: F.cross_entropy(model(x) / temperature, y), weights)
    g, hg = torch.cat([v.flatten() for v in g]), torch.cat([v.flatten() for v in hg])
    eps = 1e-4 / float(g.norm())
    with torch.no_grad():
        base = [w.clone() for w in weights]

    def shifted(sign):
        with torch.no_grad():
            start = 0
            for w, b in zip(weights, base):
                w.copy_(b + sign * eps * g[start:start + w.numel()].view_as(w))
                start += w.numel()
        return flat_grad(model, x, y, temperature)

    fd = (shifted(+1) - shifted(-1)) / (2 * eps)
    torch.testing.assert_close(hg, fd, rtol=1e-5, atol=1e-6 * float(fd.abs().max()))
    with torch.no_grad():
        for w, b in zip(weights, base):
            w.copy_(b)
    scores = grasp_scores(model, x, y, temperature)
    torch.testing.assert_close(torch.cat([s.flatten() for s in scores.values()]),
                               -torch.cat([w.detach().flatten() for w in weights]) * hg)


def test_snip_is_abs_grad_times_weight():
    model = tiny()
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 3, (8,))
    scores = snip_scores(model, x, y)
    g = flat_grad(model, x, y, 1.0)
    w = torch.cat([model[0].weight.flatten(), model[2].weight.flatten()]).detach()
    torch.testing.assert_close(torch.cat([s.flatten() for s in scores.values()]), (g * w).abs())


def test_class_balanced_batch():
    data = torch.utils.data.TensorDataset(torch.randn(200, 4), torch.arange(200) % 4)
    x, y = class_balanced_batch(data, 10, seed=3)
    assert x.shape == (40, 4) and torch.bincount(y).tolist() == [10] * 4
