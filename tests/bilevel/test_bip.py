"""BiP pruner: exact sparsity for every solver, the first-order implicit gradient, resume."""

import pytest
import torch
from torch import nn

from greedyprune.baselines.bip import BiPOptions, bip_prune
from greedyprune.bilevel import MaskLearningProblem, OracleCost, hypergradient, lower_gradient
from greedyprune.bilevel.hypergrad import HypergradOptions
from greedyprune.data import TensorImageDataset
from greedyprune.errors import UserError
from greedyprune.sparse import get_masks, prunable_weights


def _data(n=192, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 4, 4, generator=gen)
    labels = (images.flatten(1) @ torch.randn(16, 3, generator=gen)).argmax(1)
    return TensorImageDataset(images, labels, ["a", "b", "c"])


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))


FAST = dict(epochs=2.0, batch_size=16, neumann_iters=2, large_batch=48, period=3, inner_steps=1, lr_scores=1.0,
            lr_weights=0.05)


@pytest.mark.parametrize("solver", ["first-order", "mrbo", "vrbo"])
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.973])
def test_pruner_keeps_exactly_the_requested_sparsity(solver, sparsity):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned, record = bip_prune(model, _data(), BiPOptions(sparsity=sparsity, solver=solver, **FAST), progress=False)
    total = 16 * 12 + 12 * 3
    keep = total - round(sparsity * total)
    masks = get_masks(pruned)
    assert set(masks) == {"1.weight", "3.weight"}
    assert sum(int(m.sum()) for m in masks.values()) == keep == record["nonzero"]
    assert record["sparsity"] == pytest.approx(1 - keep / total)
    effective = sum(int(module.weight.count_nonzero()) for module in prunable_weights(pruned).values())
    assert effective <= keep
    assert record["samples"] >= 2 * len(_data()) and record["steps"] > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # input model untouched


def test_top_k_mask_is_exact_even_when_all_scores_tie():
    problem = MaskLearningProblem(_model(), _data(), keep=37)
    scores = tuple(torch.ones_like(s) for s in problem.initial()[0])
    assert sum(int(m.sum()) for m in problem.hard_masks(scores)) == 37


class _BilinearProblem(MaskLearningProblem):
    """A loss linear in the masked weights z: then H = gamma I and J = diag(G) hold exactly."""

    def loss(self, values, batch):
        gen = torch.Generator().manual_seed(5)
        return sum((values[n] * torch.randn(values[n].shape, generator=gen, dtype=values[n].dtype)).sum()
                   for n in self.param_names)


def test_first_order_implicit_gradient_equals_the_exact_one_when_the_loss_is_bilinear():
    problem = _BilinearProblem(_model(), _data(), keep=60, gamma=0.05)
    scores, theta = problem.initial()
    batch = problem.sample(8, torch.Generator())
    exact, gy = hypergradient(problem, scores, theta, batch, batch, HypergradOptions("cg", iters=3), OracleCost())
    first, lower = problem.bilinear_hypergradient(scores, theta, batch)
    for a, b in zip(exact, first):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(gy, lower):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_first_order_lower_gradient_matches_autograd_on_cross_entropy():
    problem = MaskLearningProblem(_model(), _data(), keep=100, gamma=0.01)
    scores, theta = problem.initial()
    batch = problem.sample(32, torch.Generator().manual_seed(1))
    _, lower = problem.bilinear_hypergradient(scores, theta, batch)
    for a, b in zip(lower, lower_gradient(problem, scores, theta, batch, OracleCost())):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_resume_returns_the_finished_run_and_refuses_other_settings(tmp_path):
    options = BiPOptions(sparsity=0.8, solver="mrbo", checkpoint_every=2, **FAST)
    first, record = bip_prune(_model(), _data(), options, out=tmp_path, progress=False)
    again, record2 = bip_prune(_model(), _data(), options, out=tmp_path, progress=False)
    assert record2["steps"] == record["steps"] and record2["samples"] == record["samples"]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    with pytest.raises(UserError, match="other BiP settings"):
        bip_prune(_model(), _data(), BiPOptions(sparsity=0.7, solver="mrbo", **FAST), out=tmp_path, progress=False)


def test_a_killed_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    from greedyprune.bilevel.mrbo import MRBO
    options = BiPOptions(sparsity=0.8, solver="mrbo", checkpoint_every=2, **FAST)
    straight, _ = bip_prune(_model(), _data(), options, out=tmp_path / "straight", progress=False)
    original, calls = MRBO.step, []

    def dying(self):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(MRBO, "step", dying)
    with pytest.raises(KeyboardInterrupt):
        bip_prune(_model(), _data(), options, out=tmp_path / "killed", progress=False)
    monkeypatch.setattr(MRBO, "step", original)
    resumed, record = bip_prune(_model(), _data(), options, out=tmp_path / "killed", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="sparsity"):
        BiPOptions(sparsity=1.0)
    with pytest.raises(UserError, match="solver"):
        BiPOptions(solver="adam")
    with pytest.raises(UserError, match="gamma"):
        MaskLearningProblem(_model(), _data(), keep=3, gamma=0.0)
