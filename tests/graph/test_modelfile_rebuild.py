"""Saving and loading pruned models without extra arguments; what is refused, in one line."""

import pytest
import torch
from torch import nn
from torchvision import models as tv

import greedyprune
from greedyprune.archspec import architecture_spec, build_source, check_spec
from greedyprune.errors import UserError
from greedyprune.graph import find_groups
from greedyprune.models import build_model
from greedyprune.surgery import Layout, apply_selection


def _prune_half(model: nn.Module, example: torch.Tensor) -> nn.Module:
    layout = Layout(model)
    for group in find_groups(model, example).groups:
        apply_selection(model, layout, group, torch.arange(0, group.width, 2))
    return model


def test_user_built_torchvision_model_loads_without_arguments(tmp_path):
    model = tv.resnet18(num_classes=3).eval()  # no greedyprune_spec: recognised at save time
    x = torch.randn(2, 3, 32, 32)
    _prune_half(model, x[:1])
    greedyprune.save(tmp_path / "r.pt", model)
    loaded = greedyprune.load(tmp_path / "r.pt")
    assert loaded.greedyprune_spec == {"source": "torchvision", "name": "resnet18", "kwargs": {"num_classes": 3}}
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_registry_models_keep_their_spec(tmp_path):
    model = build_model("small-cnn").eval()
    assert architecture_spec(model) == {"name": "small-cnn", "num_classes": 10}
    x = torch.randn(2, 1, 28, 28)
    _prune_half(model, x[:1])
    greedyprune.save(tmp_path / "s.pt", model)
    with torch.no_grad():
        assert torch.equal(greedyprune.load(tmp_path / "s.pt")(x), model(x))


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3), nn.Linear(8, 2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)).mean((2, 3)))


def test_unknown_architecture_needs_an_instance(tmp_path):
    model = Custom().eval()
    assert architecture_spec(model) is None
    x = torch.randn(2, 3, 8, 8)
    _prune_half(model, x[:1])
    greedyprune.save(tmp_path / "c.pt", model)
    with pytest.raises(UserError, match=r"holds a .*Custom that greedyprune cannot rebuild.*model=") as err:
        greedyprune.load(tmp_path / "c.pt")
    assert "\n" not in str(err.value)
    with torch.no_grad():
        assert torch.equal(greedyprune.load(tmp_path / "c.pt", model=Custom())(x), model(x))


def test_specs_name_only_known_builders():
    assert check_spec({"source": "torchvision", "name": "resnet18", "kwargs": {"num_classes": 3}}) is None
    assert check_spec({"source": "pickle", "name": "x"}) == "unknown source 'pickle'"
    assert check_spec({"source": "torchvision", "name": "resnet18", "kwargs": {"block": [1]}}) is not None
    with pytest.raises(UserError, match="not a torchvision classification model"):
        build_source("torchvision", "detection.fasterrcnn_resnet50_fpn", {})
    with pytest.raises(UserError, match="not a model of the installed timm"):
        build_source("timm", "no_such_model", {})


def test_structural_match_for_a_reduced_width(tmp_path):
    model = tv.mobilenet_v3_large(num_classes=4, width_mult=0.5).eval()
    assert architecture_spec(model) == {"source": "torchvision", "name": "mobilenet_v3_large",
                                        "kwargs": {"num_classes": 4}}


@pytest.mark.parametrize("name, kwargs", [("mobilenet_v2", {"width_mult": 0.5}), ("efficientnet_v2_s", {})])
def test_depthwise_convs_pruned_to_one_channel_still_match_their_builder(name, kwargs, tmp_path):
    """A user's torchvision model whose depthwise convs kept one channel (``groups = in = out = 1``, as a
    heavily pruned efficientnet_v2_s has) is still recognised at save time and loads without arguments."""
    torch.manual_seed(0)
    model = tv.get_model(name, weights=None, num_classes=3, **kwargs).eval()
    x = torch.randn(2, 3, 32, 32)
    layout = Layout(model)
    for group in find_groups(model, x[:1]).groups:
        apply_selection(model, layout, group, torch.tensor([group.width - 1]))
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == m.out_channels == 1]
    assert depthwise and all(m.groups == 1 for m in depthwise)
    greedyprune.save(tmp_path / "m.pt", model)
    loaded = greedyprune.load(tmp_path / "m.pt")
    assert loaded.greedyprune_spec == {"source": "torchvision", "name": name, "kwargs": {"num_classes": 3}}
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
