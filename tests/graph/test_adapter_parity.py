"""The traced internal groups contain the hand-written adapters' groups exactly, in the same order.

The adapters (``greedyprune/adapters``, since deleted) had their groups recorded from main at 1023cd8 as
``adapter_groups.json`` by a one-off script, ``tests/graph/record_adapter_groups.py``, deleted with them
(``git show 775407c:tests/graph/record_adapter_groups.py``; it runs only on a checkout that still has
the adapters, e.g. 775407c), so this check outlives them.

For every adapter group there is a traced internal group of the same name with the same producer,
carriers (BatchNorm -> norm, depthwise, squeeze-excitation fc2 -> carrier ``out``), consumer (its
Flatten block included), bias sink and squeeze-excitation fc1 (a gate consumer), all at their original
positions; and the adapter groups appear in the traced order. The traced groups are a superset: the
adapters left the stem, the last conv and the classifier's hidden layer alone.
"""

import json
from pathlib import Path

import pytest
import torch
from torchvision import models as tv

from greedyprune.graph import find_groups
from greedyprune.models import build_model

CASES = {
    "resnet18": (lambda: tv.resnet18(num_classes=10), (3, 32, 32)),
    "resnet50": (lambda: tv.resnet50(num_classes=10, width_per_group=16), (3, 32, 32)),
    "mobilenet_v2": (lambda: tv.mobilenet_v2(num_classes=10, width_mult=0.5), (3, 32, 32)),
    "mobilenet_v3_small": (lambda: tv.mobilenet_v3_small(num_classes=10), (3, 32, 32)),
    "mobilenet_v3_large": (lambda: tv.mobilenet_v3_large(num_classes=10, width_mult=0.5), (3, 32, 32)),
    "resnet18-fmnist": (lambda: build_model("resnet18-fmnist"), (1, 28, 28)),
    "small-cnn": (lambda: build_model("small-cnn"), (1, 28, 28)),
    "lenet300-100": (lambda: build_model("lenet300-100"), (1, 28, 28)),
}


def _identity(positions: torch.Tensor) -> bool:
    return torch.equal(positions.reshape(-1), torch.arange(positions.numel()))


RECORD = Path(__file__).with_name("adapter_groups.json")


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_internal_groups_contain_the_adapter_groups(name):
    build, shape = CASES[name]
    model = build().eval()
    old = json.loads(RECORD.read_text())[name]
    traced = find_groups(model, torch.randn(1, *shape), streams=False)
    assert all(g.kind == "internal" for g in traced.groups)
    by_name = {g.name: g for g in traced.groups}
    assert set(by_name) >= {g["name"] for g in old}, sorted({g["name"] for g in old} - set(by_name))
    assert [g.name for g in traced.groups if g.name in {o["name"] for o in old}] == [g["name"] for g in old]
    for group in old:
        new = by_name[group["name"]]
        assert [p.target for p in new.producers] == [group["producer"]] and new.score == group["producer"]
        assert all(_identity(p.positions) for p in new.producers)
        assert sorted([c.target, c.kind] for c in new.carriers) == group["carriers"]
        assert all(_identity(c.positions) for c in new.carriers)
        refit = [c for c in new.consumers if not c.gate]
        assert [c.target for c in refit] == [group["consumer"]] and refit[0].bias_sink == group["bias_sink"]
        assert refit[0].columns.shape == (new.width, group["block"]) and _identity(refit[0].columns)
        assert sorted(c.target for c in new.consumers if c.gate) == group["gates"]
        assert new.width == group["width"] and new.partition == 1 and new.exact
