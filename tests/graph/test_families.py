"""Every torchvision family: traced groups found, pruned physically, equal to the zero-column reference.

For each family (one small member each, see ``families.py``): random kept channels in every exact group,
physically removed, give the same outputs as the original model with the removed channels' consumer
columns zeroed at full width (``materialize=False``): every producer, carrier and consumer was found and
sliced consistently. Inexact groups (LayerNorm over channels, ConvNeXt) are then pruned too and the model
must still run. Frozen channels are never sliced, the logits keep their count, and the pruned model
saves and loads (rebuilt from its torchvision builder name, no ``model=``) to identical outputs.
"""

import copy

import pytest
import torch
from torch import nn

import greedyprune
from greedyprune.archspec import architecture_spec
from greedyprune.graph import find_groups
from greedyprune.surgery import Layout, apply_selection

from .families import CLASSES, TORCHVISION, build_torchvision, random_kept

# families whose residual streams are frozen, and why (checked below)
NO_STREAMS = {"shufflenet_v2_x0_5": "splits the channel axis", "vit_b_16": "size written in the model's code"}


def _rows(model: nn.Module, target: str) -> int:
    return model.get_submodule(target).weight.shape[0]


@pytest.mark.parametrize("family", sorted(TORCHVISION))
def test_family_prunes_exactly_and_round_trips(family, tmp_path):
    model, x = build_torchvision(family)
    spec = architecture_spec(model)
    assert spec is not None and spec["source"] == "torchvision" and spec["name"] == TORCHVISION[family][0]
    traced = find_groups(model, x[:1])
    assert traced.groups, f"{family}: no prunable group"
    with torch.no_grad():
        original = model(x)
    pruned, reference = copy.deepcopy(model), copy.deepcopy(model)
    layouts = Layout(pruned), Layout(reference)
    generator = torch.Generator().manual_seed(0)
    exact = [g for g in traced.groups if g.exact]
    for group in exact:
        kept = random_kept(group.width, group.partition, generator)
        apply_selection(pruned, layouts[0], group, kept)
        apply_selection(reference, layouts[1], group, kept, materialize=False)
    with torch.no_grad():
        got, want = pruned(x), reference(x)
    scale = want.abs().max()
    assert got.shape == (2, CLASSES)
    assert (got - want).abs().max() <= 1e-4 * scale, f"{family}: pruned != zeroed reference"
    assert (got - original).abs().max() > 1e-3 * scale, f"{family}: pruning changed nothing"
    for group in traced.groups:
        if not group.exact:
            apply_selection(pruned, layouts[0], group, random_kept(group.width, group.partition, generator))
    with torch.no_grad():
        assert pruned(x).shape == (2, CLASSES)
    for frozen in traced.frozen:
        for target in frozen.modules:
            assert _rows(pruned, target) == _rows(model, target), f"{family}: frozen {target} was sliced"
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    if family in NO_STREAMS:
        assert not any(g.kind == "stream" for g in traced.groups)
        assert any(NO_STREAMS[family] in f.reason for f in traced.frozen)
    pruned.greedyprune_spec = spec
    greedyprune.save(tmp_path / "pruned.pt", pruned)
    loaded = greedyprune.load(tmp_path / "pruned.pt")
    with torch.no_grad():
        assert torch.equal(loaded(x), pruned(x))
