"""BiP pruner: exact sparsity, the implicit gradient against dense solves, learning on a planted problem,
resume, one process only."""

import pytest
import torch
from torch import nn
from torch.autograd.functional import hessian

from greedyprune.baselines.bip import BiPOptions, bip_prune, run_bip, solver_options
from greedyprune.bilevel import MaskLearningProblem, OracleCost, hypergradient, lower_gradient, make_solver
from greedyprune.bilevel.hypergrad import HypergradOptions
from greedyprune.data import TensorImageDataset
from greedyprune.errors import UserError
from greedyprune.sparse import get_masks, is_masked, prunable_weights, raw_weight


def _data(n=192, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 4, 4, generator=gen)
    labels = (images.flatten(1) @ torch.randn(16, 3, generator=gen)).argmax(1)
    return TensorImageDataset(images, labels, ["a", "b", "c"])


def _model(seed=0, hidden=12):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 3))


FAST = dict(epochs=2.0, batch_size=16, large_batch=48, period=3, inner_steps=1, lr_scores=1.0,
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
    """A loss linear in the masked weights z (coefficients drawn from the batch's labels): then
    H = gamma I and J = diag(G) hold exactly, and two batches give two different G."""

    def loss(self, values, batch):
        gen = torch.Generator().manual_seed(int(batch[1].sum()))
        return sum((values[n] * torch.randn(values[n].shape, generator=gen, dtype=values[n].dtype)).sum()
                   for n in self.param_names)


def _two_batches(problem):
    gen = torch.Generator().manual_seed(3)
    return problem.sample(8, gen), problem.sample(8, gen)


def test_first_order_implicit_gradient_equals_the_exact_one_when_the_loss_is_bilinear():
    problem = _BilinearProblem(_model(), _data(), keep=60, gamma=0.05, implicit_term="inverse-gamma")
    scores, theta = problem.initial()
    batch, other = _two_batches(problem)
    exact, gy = hypergradient(problem, scores, theta, batch, batch, HypergradOptions("cg", iters=3), OracleCost())
    first, lower = problem.bilinear_hypergradient(scores, theta, batch)
    for a, b in zip(exact, first):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(gy, lower):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # the two-batch form MRBO / VRBO use: f on one batch, g (hence J) on another
    exact, gy = hypergradient(problem, scores, theta, batch, other, HypergradOptions("cg", iters=3), OracleCost())
    cost = OracleCost()
    u, v = hypergradient(problem, scores, theta, batch, other, HypergradOptions("bilinear"), cost)
    assert cost.products == 0 and cost.gradients == 2
    for a, b in zip(exact + gy, u + v):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _dense_hypergradient(problem, scores, theta, batch_f, batch_g, damping=0.0):
    """Slow obvious reference: the whole Hessian of g over (scores, theta) by autograd.functional, then
    grad_s f - J^T (H + damping I)^{-1} grad_theta f by a dense solve. Returns (hypergradient, H)."""
    shapes = [t.shape for t in scores + theta]
    ns = sum(t.numel() for t in scores)

    def split(flat):
        parts = torch.split(flat, [s.numel() for s in shapes])
        out = tuple(p.reshape(s) for p, s in zip(parts, shapes))
        return out[:len(scores)], out[len(scores):]

    flat = torch.cat([t.reshape(-1) for t in scores + theta]).detach()
    full = hessian(lambda v: problem.lower(*split(v), batch_g), flat)
    h, jt = full[ns:, ns:], full[:ns, ns:]
    v = flat.clone().requires_grad_(True)
    grad_f = torch.autograd.grad(problem.upper(*split(v), batch_f), v)[0]
    p = torch.linalg.solve(h + damping * torch.eye(len(h), dtype=h.dtype), grad_f[ns:])
    return grad_f[:ns] - jt @ p, h


def _flat(values):
    return torch.cat([v.reshape(-1) for v in values])


def test_inverse_gamma_implicit_term_matches_a_dense_exact_solve():
    """With implicit_term='inverse-gamma' (implicit_gamma = gamma) MRBO's estimate is the exact implicit gradient
    of the bilinear model; at gamma = 1e-3 that term dwarfs the direct one (why it is not the default)."""
    problem = _BilinearProblem(_model().double(), _data(), keep=60, gamma=1e-3, implicit_term="inverse-gamma")
    problem.images = problem.images.double()
    scores, theta = problem.initial()
    batch_f, batch_g = _two_batches(problem)
    solver = make_solver("mrbo", problem, scores, theta, solver_options(BiPOptions(solver="mrbo")))
    u, _ = solver.estimates(scores, theta, batch_f, batch_g)
    exact, h = _dense_hypergradient(problem, scores, theta, batch_f, batch_g)
    torch.testing.assert_close(h, 1e-3 * torch.eye(len(h), dtype=h.dtype))  # the model's H = gamma I, exactly
    torch.testing.assert_close(_flat(u), exact, rtol=1e-8, atol=1e-8)
    direct = _flat(torch.autograd.grad(problem.upper(tuple(s.requires_grad_() for s in scores), theta, batch_f),
                                       scores))
    assert (exact - direct).norm() > 100 * direct.norm()  # the implicit term dominates at gamma = 1e-3


def test_bip_cg_implicit_gradient_matches_a_dense_damped_solve_on_a_real_network():
    """implicit='cg': the network's own (indefinite) Hessian, damped until positive definite."""
    data = _data()
    data.images = data.images.double()
    problem = MaskLearningProblem(_model(hidden=5).double(), data, keep=40, gamma=1e-3)
    scores, theta = problem.initial()
    batch_f, batch_g = _two_batches(problem)
    _, h = _dense_hypergradient(problem, scores, theta, batch_f, batch_g)
    lowest = float(torch.linalg.eigvalsh(h)[0])
    assert lowest < -1e-3  # not strongly convex: the reason BiP's default is the bilinear model
    damping = -lowest + 0.1
    exact, _ = _dense_hypergradient(problem, scores, theta, batch_f, batch_g, damping)
    options = BiPOptions(solver="vrbo", implicit="cg", cg_iters=len(h), cg_damping=damping)
    solver = make_solver("vrbo", problem, scores, theta, solver_options(options))
    u, _ = solver.estimates(scores, theta, batch_f, batch_g)
    torch.testing.assert_close(_flat(u), exact, rtol=1e-6, atol=1e-9)


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


def _planted(seed):
    """20 inputs: the first 10 decide the label; the last 10 are noise. The "trained" model has the right
    signal weights but small (0.2 x) and large (+-1) noise weights, so at 50% sparsity the magnitude
    mask keeps exactly the 30 useless weights."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 20, generator=gen)
    w_true = torch.randn(3, 10, generator=gen)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 3))
    with torch.no_grad():
        model[1].weight[:, :10] = 0.2 * w_true
        model[1].weight[:, 10:] = torch.where(torch.rand(3, 10, generator=gen) < 0.5, -1.0, 1.0)
        model[1].bias.zero_()
    return model, TensorImageDataset(x.reshape(512, 1, 4, 5), (x[:, :10] @ w_true.T).argmax(1), ["a", "b", "c"])


def _loss(model, data, mask):
    weight = (raw_weight(model, "1.weight") if is_masked(model[1]) else model[1].weight).detach()
    logits = data.images.flatten(1) @ (weight * mask).T + model[1].bias.detach()
    return float(nn.functional.cross_entropy(logits, data.labels))


PLANTED = {"first-order": dict(lr_scores=10.0, lr_weights=0.05),
           "mrbo": dict(lr_scores=10.0, lr_weights=0.1, mrbo_c=10.0),
           "vrbo": dict(lr_scores=10.0, lr_weights=0.05, large_batch=128, period=4, inner_steps=2)}


@pytest.mark.parametrize("solver", sorted(PLANTED))
@pytest.mark.parametrize("seed", [0, 1])
def test_bip_learns_the_useful_weights_that_magnitude_pruning_drops(solver, seed):
    """Scores must move: the learned mask swaps noise weights for signal weights (magnitude: 0 of 30) and
    the upper-level loss f = CE(m (.) theta) drops, also against the magnitude mask on the same weights.
    gamma = 1 with the inverse-gamma term and plain SGD: with a small gamma the term +G^2/gamma on kept scores
    entrenches the starting mask (gamma = 0.01 kept only 2-12 of the 30 here; docs/bilevel.md). The budget
    is 5 epochs of weight steps = the earlier 10 epochs of samples."""
    model, data = _planted(seed)
    magnitude = torch.zeros(3, 20)
    magnitude[:, 10:] = 1
    start = _loss(model, data, magnitude)
    options = BiPOptions(sparsity=0.5, solver=solver, epochs=5, batch_size=32, gamma=1.0, seed=seed,
                         implicit_term="inverse-gamma", momentum=0.0, weights_schedule="constant",
                         scores_schedule="constant", score_decay=0.0, **PLANTED[solver])
    pruned, _ = bip_prune(model, data, options, progress=False)
    mask = get_masks(pruned)["1.weight"]
    assert int(mask.sum()) == 30
    assert int(mask[:, :10].sum()) >= 15, mask.int()  # measured 17-23 of 30 signal weights kept
    learned = _loss(pruned, data, mask.float())
    assert learned < 0.5 * start, (learned, start)  # measured ~0.85 from ~2.8
    assert learned < 0.9 * _loss(pruned, data, magnitude), learned  # ~0.85 vs ~1.09 (= log 3: noise decayed)


def test_bip_refuses_to_run_under_torchrun(monkeypatch):
    import greedyprune.distributed
    monkeypatch.setattr(greedyprune.distributed, "world", lambda: (1, 2))
    with pytest.raises(UserError, match="^bip runs in one process; launch it without torchrun$"):
        bip_prune(_model(), _data(), BiPOptions(**FAST), progress=False)
    with pytest.raises(UserError, match="without torchrun"):
        run_bip("bip", "lenet300-100", None, None, BiPOptions(**FAST), "unused")
    monkeypatch.setattr(greedyprune.distributed, "world", lambda: (0, 1))
    monkeypatch.setenv("WORLD_SIZE", "2")  # launched by torchrun, group not joined (library use)
    with pytest.raises(UserError, match="without torchrun"):
        bip_prune(_model(), _data(), BiPOptions(**FAST), progress=False)


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="sparsity"):
        BiPOptions(sparsity=1.0)
    with pytest.raises(UserError, match="solver"):
        BiPOptions(solver="adam")
    with pytest.raises(UserError, match="gamma"):
        MaskLearningProblem(_model(), _data(), keep=3, gamma=0.0)
    with pytest.raises(UserError, match="implicit"):
        BiPOptions(implicit="neumann")
    with pytest.raises(UserError, match="cg_damping"):
        BiPOptions(cg_damping=-1.0)
    with pytest.raises(UserError, match="bilinear"):
        hypergradient(_FakeProblem(), (), (), None, None, HypergradOptions("bilinear"), OracleCost())


class _FakeProblem:
    """A problem without the bilinear closed form."""
