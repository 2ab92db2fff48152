import torch
from torch import nn

from greedyprune.sparse import (apply_masks, format_report, global_topk, layerwise_topk, prune_surviving,
                                sparsity_report, weight_shapes)


def test_global_and_layerwise_topk():
    scores = {"a": torch.tensor([[5.0, 1.0], [3.0, 0.0]]), "b": torch.tensor([4.0, 2.0, 6.0])}
    g = global_topk(scores, 3)
    assert g["a"].tolist() == [[True, False], [False, False]] and g["b"].tolist() == [True, False, True]
    lw = layerwise_topk(scores, {"a": 1, "b": 2})
    assert int(lw["a"].sum()) == 1 and lw["b"].tolist() == [True, False, True]


def test_prune_surviving_never_revives_and_counts():
    torch.manual_seed(0)
    scores = {"a": torch.rand(10, 10), "b": torch.rand(50)}
    masks = {"a": torch.rand(10, 10) > 0.3, "b": torch.ones(50, dtype=torch.bool)}
    new = prune_surviving(scores, masks, {"a": 0.2, "b": 0.1})
    for n in scores:
        assert not bool((new[n] & ~masks[n]).any())
        alive = int(masks[n].sum())
        assert int(new[n].sum()) == alive - round({"a": 0.2, "b": 0.1}[n] * alive)
        # the removed survivors are the lowest-scoring ones
        removed, kept = scores[n][masks[n] & ~new[n]], scores[n][new[n]]
        assert removed.max() <= kept.min()
    glob = prune_surviving(scores, masks, 0.5, scope="global")
    total = sum(int(m.sum()) for m in masks.values())
    assert sum(int(m.sum()) for m in glob.values()) == total - round(0.5 * total)


def test_report_counts_nonzeros_and_macs():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    masks = {n: torch.zeros(s, dtype=torch.bool) for n, s in weight_shapes(model).items()}
    masks["0.weight"][0] = True  # 9 of 18 conv weights
    masks["2.weight"][:, :4] = True  # 12 of 96 linear weights
    apply_masks(model, masks)
    rep = sparsity_report(model, input_shape=(1, 6, 6))
    assert rep["prunable"]["weights"] == 18 + 96 and rep["prunable"]["nonzero"] <= 21
    assert rep["parameters"]["dense"] == 18 + 96 + 3
    # conv: 16 output positions x 18 weights; linear: 1 x 96
    assert rep["macs"]["dense"] == 16 * 18 + 96
    nz = [layer["nonzero"] for layer in rep["layers"]]
    assert rep["macs"]["nonzero"] == 16 * nz[0] + nz[1]
    text = format_report(rep)
    assert "do not make the model faster" in text
