import pytest
import torch
from torch.nn import functional as F

from greedyprune.baselines.at_init import InitOptions, criterion_masks, run_at_init
from greedyprune.baselines.common import Splits, load_splits
from greedyprune.baselines.saliency import class_balanced_batch, grasp_scores, snip_scores
from greedyprune.io import load_checkpoint
from greedyprune.sparse import mask_counts
from greedyprune.train import TrainConfig

CONFIG = TrainConfig(max_steps=4, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant", eval_every=2)


def test_pruning_at_init_hits_sparsity_and_random_ratios_copies_counts(tmp_path):
    splits = load_splits("random:1x28x28")
    options = InitOptions(sparsity=0.9, samples_per_class=3)
    records = {m: run_at_init(m, "lenet300-100", splits, CONFIG, options, tmp_path / m, progress=False)
               for m in ("grasp", "snip", "random", "random-ratios")}
    total = records["grasp"]["weights"]
    for method, record in records.items():
        masks = load_checkpoint(tmp_path / method / "mask.pt")
        assert sum(mask_counts(masks).values()) == round(0.1 * total), method
        assert record["sparsity"] >= 0.9 - 1e-9
    grasp, ratios = (load_checkpoint(tmp_path / m / "mask.pt") for m in ("grasp", "random-ratios"))
    assert mask_counts(grasp) == mask_counts(ratios)
    assert any(not torch.equal(grasp[n], ratios[n]) for n in grasp)
    uniform = mask_counts(load_checkpoint(tmp_path / "random" / "mask.pt"))
    assert uniform["1.weight"] == pytest.approx(0.1 * 235200, abs=1)


def tiny_splits_and_model():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 1, 2, 3, generator=g, dtype=torch.float64)
    data = torch.utils.data.TensorDataset(x, torch.arange(60) % 3)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    return Splits(data, data, data), model


def gradient_norm(model, x, y, temperature):
    weights = [model[1].weight, model[3].weight]
    grads = torch.autograd.grad(F.cross_entropy(model(x) / temperature, y), weights)
    return float(sum(g.pow(2).sum() for g in grads))


def test_grasp_score_is_the_gradient_norm_change_of_removing_a_weight():
    """S_q = -theta_q (Hg)_q is half the first-order change of ||g||^2 as theta_q moves towards 0.

    d/de ||g(theta - e theta_q e_q)||^2 at e = 0 is -2 theta_q (Hg)_q = 2 S_q: a weight with a high score
    is one whose removal raises the gradient norm (or lowers it least) -- GraSP removes those first.
    """
    splits, model = tiny_splits_and_model()
    x, y = splits.train.tensors
    scores = grasp_scores(model, x, y, temperature=1.0)
    layer = model[1].weight
    for index in [(0, 0), (3, 2), (7, 5)]:
        base = layer.detach()[index].item()
        eps = 1e-3

        def norm_at(e):
            with torch.no_grad():
                layer[index] = base * (1 - e)
            return gradient_norm(model, x, y, 1.0)

        derivative = (norm_at(eps) - norm_at(-eps)) / (2 * eps)
        norm_at(0.0)
        assert derivative == pytest.approx(2 * float(scores["1.weight"][index]), rel=1e-4)


def test_grasp_mask_keeps_the_lowest_scores_globally_and_snip_the_highest():
    splits, model = tiny_splits_and_model()
    options = InitOptions(sparsity=0.6, samples_per_class=4, temperature=200.0)
    inputs, targets = class_balanced_batch(splits.train, 4, seed=0)
    names = ["1.weight", "3.weight"]
    keep = round(0.4 * (48 + 24))
    for method, score_fn, keep_lowest in [("grasp", lambda: grasp_scores(model, inputs, targets, 200.0), True),
                                          ("snip", lambda: snip_scores(model, inputs, targets), False)]:
        masks = criterion_masks(method, model, splits, options, seed=0)
        scores = score_fn()
        flat = [(float(v), n, i) for n in names for i, v in enumerate(scores[n].flatten().tolist())]
        chosen = sorted(flat, reverse=not keep_lowest)[:keep]  # slow reference: sort every score of every layer
        expected = {n: torch.zeros(scores[n].numel(), dtype=torch.bool) for n in names}
        for _, n, i in chosen:
            expected[n][i] = True
        for n in names:
            assert torch.equal(masks[n].flatten(), expected[n]), (method, n)
        assert sum(int(m.sum()) for m in masks.values()) == keep
