"""timm's resnet18, mobilenetv2_100 and efficientnet_b0: traced, pruned exactly, saved and rebuilt by name."""

import copy

import pytest
import torch

import greedyprune
from greedyprune.archspec import architecture_spec
from greedyprune.graph import find_groups
from greedyprune.surgery import Layout, apply_selection

from .families import CLASSES, TIMM, build_timm, random_kept


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_model_prunes_exactly_and_round_trips(name, tmp_path):
    model, x = build_timm(name)
    spec = architecture_spec(model)
    assert spec == {"source": "timm", "name": name, "kwargs": {"num_classes": CLASSES}}
    traced = find_groups(model, x[:1])
    assert any(g.kind == "stream" for g in traced.groups) and any(g.kind == "internal" for g in traced.groups)
    pruned, reference = copy.deepcopy(model), copy.deepcopy(model)
    layouts = Layout(pruned), Layout(reference)
    generator = torch.Generator().manual_seed(1)
    for group in traced.groups:
        kept = random_kept(group.width, group.partition, generator)
        apply_selection(pruned, layouts[0], group, kept)
        apply_selection(reference, layouts[1], group, kept, materialize=False)
    with torch.no_grad():
        got, want, original = pruned(x), reference(x), model(x)
    assert got.shape == (2, CLASSES)
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()
    assert (got - original).abs().max() > 1e-3 * want.abs().max()
    greedyprune.save(tmp_path / "m.pt", pruned)  # no spec attribute: save recognises the pruned timm model
    with torch.no_grad():
        assert torch.equal(greedyprune.load(tmp_path / "m.pt")(x), got)
