"""Channel propagation on small hand-written models: each rule, checked on the groups it produces."""

import pytest
import torch
from torch import nn

from greedyprune.errors import UserError
from greedyprune.graph import find_groups
from greedyprune.surgery import Layout, apply_selection


def _groups(model: nn.Module, shape=(1, 3, 8, 8)):
    traced = find_groups(model, torch.randn(*shape))
    return {g.name: g for g in traced.groups}, {f.name: f for f in traced.frozen}


class Chunked(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 8, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(8, 5, 1)

    def forward(self, x):
        left, right = self.a(x).chunk(2, dim=1)
        return self.c(torch.cat([left, self.b(right)], 1)).mean((2, 3))


def test_chunk_freezes_the_split_channels_only():
    groups, frozen = _groups(Chunked())
    assert "chunk splits the channel axis" in frozen["a"].reason
    assert set(groups) == {"b"} and groups["b"].consumers[0].target == "c"
    assert groups["b"].consumers[0].columns.reshape(-1).tolist() == [4, 5, 6, 7]  # offset in the concatenation


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.c(self.b(self.b(self.a(x)))).mean((2, 3))


def test_a_layer_called_twice_is_opaque():
    groups, frozen = _groups(Shared())
    assert not groups and "called 2 times" in frozen["a"].reason


class Gated(nn.Module):
    """conv -> (SE: pool, fc1, relu, fc2, sigmoid) * x -> conv; a layer scale; a residual."""

    def __init__(self):
        super().__init__()
        self.stem, self.expand, self.project = nn.Conv2d(3, 6, 1), nn.Conv2d(6, 12, 1), nn.Conv2d(12, 6, 1)
        self.fc1, self.fc2 = nn.Conv2d(12, 4, 1), nn.Conv2d(4, 12, 1)
        self.scale = nn.Parameter(torch.rand(6, 1, 1) + 0.5)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = self.stem(x)
        h = self.expand(x)
        h = h * torch.sigmoid(self.fc2(torch.relu(self.fc1(h.mean((2, 3), keepdim=True)))))
        x = x + self.scale * self.project(h)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_squeeze_excitation_layer_scale_and_stream():
    groups, frozen = _groups(Gated())
    hidden, stream = groups["expand"], groups["model.stream"]
    assert [c.target for c in hidden.consumers if c.gate] == ["fc1"]
    assert [c.target for c in hidden.consumers if not c.gate] == ["project"]
    assert [(c.target, c.kind) for c in hidden.carriers] == [("fc2", "out")]
    assert "squeeze-excitation" in frozen["fc1"].reason
    assert stream.kind == "stream" and [p.target for p in stream.producers] == ["stem", "project"]
    assert [(c.target, c.kind, c.axis) for c in stream.carriers] == [("scale", "param", 0)]
    assert [c.target for c in stream.consumers] == ["expand", "head"]


def test_grouped_conv_partition_and_its_check():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, groups=4), nn.ReLU(),
                          nn.Conv2d(8, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    traced = find_groups(model, torch.randn(1, 3, 8, 8))
    first = traced.group("0")
    assert first.partition == 4 and first.consumers[0].partitions == 4
    assert traced.group("2").partition == 4
    with pytest.raises(ValueError, match="equally many"):
        apply_selection(model, Layout(model), first, torch.tensor([0, 1, 2, 4]))


def test_channel_last_linear_and_layer_norm_are_inexact():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm = nn.Conv2d(3, 8, 1), nn.LayerNorm(8)
            self.fc1, self.fc2, self.head = nn.Linear(8, 16), nn.Linear(16, 8), nn.Linear(8, 2)

        def forward(self, x):
            y = self.norm(self.conv(x).permute(0, 2, 3, 1))
            return self.head(self.fc2(torch.relu(self.fc1(y))).mean((1, 2)))

    traced = find_groups(Block(), torch.randn(1, 3, 4, 4))
    conv = traced.group("conv")
    assert not conv.exact and [(c.target, c.kind) for c in conv.carriers] == [("norm", "norm")]
    assert traced.group("fc1").exact and traced.group("fc1").consumers[0].target == "fc2"


def test_flatten_gives_a_block_of_columns_per_channel():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    group = find_groups(model, torch.randn(1, 1, 5, 5)).group("0")
    assert group.consumers[0].columns.shape == (4, 25)
    assert torch.equal(group.consumers[0].columns, torch.arange(100).reshape(4, 25))


def test_streams_false_keeps_internal_groups_in_forward_order():
    from torchvision.models import resnet18
    traced = find_groups(resnet18(num_classes=4), torch.randn(1, 3, 32, 32), streams=False)
    names = [g.name for g in traced.groups]
    assert names[:3] == ["layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1"] and len(names) == 8
    assert all(a.span < b.span for a, b in zip(traced.groups, traced.groups[1:]))


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


def test_untraceable_model_is_a_one_line_error_naming_the_module():
    with pytest.raises(UserError, match="torch.fx cannot trace DataDependent") as err:
        find_groups(DataDependent(), torch.randn(1, 3, 4, 4))
    assert "\n" not in str(err.value)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), DataDependent())
    with pytest.raises(UserError, match=r"cannot trace Sequential: stopped in 1 \(DataDependent\): "):
        find_groups(model, torch.randn(1, 3, 4, 4))


def test_too_small_input_is_a_one_line_error():
    from torchvision.models import alexnet
    with pytest.raises(UserError, match=r"cannot run on the calibration images of shape \(3, 16, 16\) at layer .features.5. \(MaxPool2d\)") as err:
        find_groups(alexnet(), torch.randn(1, 3, 16, 16))
    assert "\n" not in str(err.value)


def test_googlenet_auxiliary_classifiers_are_consumers():
    from torchvision.models import googlenet
    model = googlenet(num_classes=5, aux_logits=True, init_weights=False)
    traced = find_groups(model, torch.randn(1, 3, 64, 64))
    consumers = {c.target for g in traced.groups for c in g.consumers}
    assert {"aux1.conv.conv", "aux2.conv.conv"} <= consumers and not traced.unused
    frozen = {f.name: f.reason for f in traced.frozen}
    assert frozen["aux1.fc2"] == frozen["aux2.fc2"] == frozen["fc"] == "the model's output (class logits)"
    assert not model.training and traced.graph_module(torch.randn(1, 3, 64, 64)).shape == (1, 5)


class SelfResidual(nn.Module):
    """x + conv(x): the conv both reads and produces the stream (columns and rows of one group)."""

    def __init__(self):
        super().__init__()
        self.stem, self.mix, self.head = nn.Conv2d(3, 6, 1), nn.Conv2d(6, 6, 3, padding=1), nn.Linear(6, 2)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.mix(x)
        return self.head(x.mean((2, 3)))


def test_a_layer_reading_and_producing_the_same_stream():
    import copy
    model = SelfResidual().eval()
    x = torch.randn(2, 3, 5, 5)
    stream = find_groups(model, x[:1]).group("model.stream")
    assert [p.target for p in stream.producers] == ["stem", "mix"]
    assert [c.target for c in stream.consumers] == ["mix", "head"]
    pruned, reference = copy.deepcopy(model), copy.deepcopy(model)
    kept, coefficients = torch.tensor([1, 3, 4]), torch.tensor([0.5, 2.0, 1.5])
    offsets = {"mix": torch.randn(6), "head": torch.randn(2)}  # on the consumers' rows before the surgery
    apply_selection(pruned, Layout(pruned), stream, kept, coefficients, offsets)
    apply_selection(reference, Layout(reference), stream, kept, coefficients, offsets, materialize=False)
    assert pruned.mix.weight.shape == (3, 3, 3, 3)
    assert torch.allclose(pruned(x), reference(x), atol=1e-5)
