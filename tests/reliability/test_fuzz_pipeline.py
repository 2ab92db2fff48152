"""Fuzzing the traced channel groups and the whole-network pipeline: odd widths (1, 3, 7), 1-channel groups, batch size 1,
tiny images, every method and budget.

A run either returns a pruned model that is physically no wider than the original, never empties a
group, and gives finite outputs of the original shape -- or it refuses with one of the documented
one-line :class:`~greedyprune.UserError` s (``REFUSALS``: a budget that would empty a group, too few
calibration images, a group whose activations never vary), each only where it can apply. Anything
else -- a bare ``ValueError``, another message -- fails. And most generated examples must prune.
The generated chains prune with the default options, the global refit (``refit="auto"``) included:
it must run, or skip itself, on every one of them without an error of its own (the torchvision cases
prune with ``refit=None``: the refit of those larger models would double their time).
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn

import greedyprune
from greedyprune import UserError
from greedyprune.pipeline.networks import Networks
from greedyprune.selection import registered_methods

METHODS = sorted(m for m in registered_methods if m != "reoptimized-simplex")  # simplex: slow path, engine-fuzzed
WIDTHS = st.sampled_from([1, 2, 3, 7])


@st.composite
def chains(draw):
    """A random nn.Sequential chain of prunable layers, and the input shape it takes."""
    channels = draw(st.integers(1, 3))
    size = draw(st.integers(1, 6))
    layers: list[nn.Module] = []
    c, s = channels, size
    convs = draw(st.integers(0, 2))
    linears = draw(st.integers(1 if convs else 2, 3))  # hidden Linear layers (at least 2 weight layers in all)
    hidden = draw(st.lists(WIDTHS, min_size=convs + linears, max_size=convs + linears))
    if all(w == 1 for w in hidden):  # a model of 1-channel groups only has nothing to prune (its own test below)
        hidden[draw(st.integers(0, len(hidden) - 1))] = draw(st.sampled_from([2, 3, 7]))
    widths = iter(hidden)
    for _ in range(convs):  # conv part
        width, kernel = next(widths), draw(st.sampled_from([1, 3]))
        layers.append(nn.Conv2d(c, width, kernel, padding=kernel // 2, bias=draw(st.booleans())))
        if draw(st.booleans()):
            layers.append(nn.BatchNorm2d(width))
        layers.append(draw(st.sampled_from([nn.ReLU(), nn.Tanh(), nn.Identity()])))
        if s >= 2 and draw(st.booleans()):
            layers.append(nn.MaxPool2d(2))
            s //= 2
        c = width
    layers.append(nn.Flatten())
    features = c * s * s
    for _ in range(linears):  # linear part
        width = next(widths)
        layers.append(nn.Linear(features, width))
        layers.append(nn.ReLU())
        features = width
    layers.append(nn.Linear(features, draw(st.integers(1, 4))))
    torch.manual_seed(draw(st.integers(0, 1000)))
    model = nn.Sequential(*layers).eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model, (channels, size, size)


def _budget(draw, kinds=("keep", "flops", "params")):
    kind = draw(st.sampled_from(kinds))
    return {kind: draw(st.sampled_from([0.01, 0.3, 0.5, 0.99, 1.0]))}


def group_widths(model: nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[str, int]]:
    """``{name: (producer, width)}`` of the groups ``streams=False`` prunes, traced on one ``shape`` image.

    Groups of one channel are frozen by the tracer (nothing to choose), so they are not listed.
    """
    networks = Networks.build(model, torch.device("cpu"), torch.zeros(1, *shape))
    try:
        chosen = networks.prunable(streams=False)
    except UserError:
        return {}
    return {g.name: (g.producers[0].target, g.width) for g in chosen}


def out_width(model: nn.Module, target: str) -> int:
    """Output channels of the layer at ``target`` (the physically pruned width)."""
    layer = model.get_submodule(target)
    return layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features


# the documented refusals: the words of the message -> where it may happen
REFUSALS = {
    "cannot be met without emptying a group": lambda budget, images, groups: "keep" not in budget,  # a floor
    "calibration set is too small": lambda budget, images, groups: images < 2,  # centred statistics need 2
    "no channel can be selected": lambda budget, images, groups: True,  # activations constant over the images
    "nothing to prune": lambda budget, images, groups: not groups,  # every channel set frozen (e.g. 1 wide)
}


def _check_run(model, shape, batches, method, budget, seed=0, refusals: list | None = None, refit="auto"):
    """The pruned model (checked), or None after a documented refusal (its kind appended to ``refusals``)."""
    before = group_widths(model, shape)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(seed + 1))
    try:
        pruned, report = greedyprune.prune(model, batches, method, progress=False, seed=seed, refit=refit, **budget)
    except UserError as err:  # the documented way to refuse; a bare ValueError is not
        message = str(err)
        assert "\n" not in message and "; " in message, message  # one line: what is wrong; what to do
        kinds = [words for words in REFUSALS if words in message]
        assert kinds, f"undocumented refusal: {message}"
        images = sum(b.shape[0] for b in batches)
        assert REFUSALS[kinds[0]](budget, images, before), f"{message!r} with {budget}, {images} image(s)"
        if refusals is not None:
            refusals.append(kinds[0])
        return None
    assert before, "a model without prunable groups must be refused, not pruned"
    after = {name: out_width(pruned, producer) for name, (producer, _) in before.items()}
    for name, width in after.items():
        assert 1 <= width <= before[name][1], (name, width, before[name])
    assert {g.name: g.channels_after for g in report.groups} == after
    with torch.no_grad():
        out, ref = pruned(example), model(example)
    assert out.shape == ref.shape and bool(torch.isfinite(out).all())
    assert report.params_after <= report.params_before
    return pruned


def _mostly_pruned(pruned: int, refusals: list[str], share: float, what: str, overall: float = 0.4) -> None:
    """At least ``share`` of the examples prune, not counting the refusals a budget floor or a 1-image
    calibration set explain (``REFUSALS`` already checked that they apply); and ``overall`` of all."""
    total = pruned + len(refusals)
    assert total, f"no {what} example ran"
    explained = sum(kind != "no channel can be selected" for kind in refusals)
    assert pruned >= overall * total, f"only {pruned} of {total} {what} pruned ({refusals})"
    assert pruned >= share * (total - explained), f"only {pruned} of {total - explained} {what} pruned ({refusals})"


def test_chains_of_odd_widths():
    refusals: list[str] = []
    pruned: list[bool] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])
    @given(st.data())
    def run(data):
        model, shape = data.draw(chains())
        batch, count = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        g = torch.Generator().manual_seed(data.draw(st.integers(0, 100)))
        scale = data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
        batches = [torch.randn(batch, *shape, generator=g) * scale for _ in range(count)]
        if _check_run(model, shape, batches, data.draw(st.sampled_from(METHODS)), _budget(data.draw),
                      seed=data.draw(st.integers(0, 5)), refusals=refusals) is not None:
            pruned.append(True)

    run()
    # overall 0.25: hypothesis often concentrates on 1-image sets and 1% budgets, refusals the share check excuses
    _mostly_pruned(len(pruned), refusals, 0.75, "generated chains", overall=0.25)


def _tv(name: str) -> nn.Module:
    """torchvision families; the ResNets one block per stage (the tracing's job is the same, 4x faster)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
    torch.manual_seed(0)
    if name == "resnet-basic":
        model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5)
    elif name == "resnet-bottleneck":
        model = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=5, width_per_group=16)  # inner widths 16..128
    else:
        model = getattr(torchvision.models, name)(num_classes=5)
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("name, size, batch, count, method, budget", [
    ("resnet-basic", 16, 1, 2, "reoptimized", {"keep": 0.4}),   # batch size 1, 1x1 maps at the end
    ("resnet-bottleneck", 8, 2, 1, "random", {"flops": 0.8}),   # bottleneck groups on 1x1 maps (0.76 is the floor)
    ("mobilenet_v2", 8, 1, 3, "uniform", {"keep": 0.01}),      # every group down to 1 channel
    ("mobilenet_v3_small", 8, 1, 2, "magnitude", {"params": 0.7}),
])
def test_torchvision_families_tiny_inputs(name, size, batch, count, method, budget):
    model = _tv(name)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(batch, 3, size, size, generator=g) for _ in range(count)]
    pruned = _check_run(model, (3, size, size), batches, method, budget, refit=None)  # the refit: fuzzed on chains
    assert pruned is not None  # these inputs are small but valid
    if budget.get("keep") == 0.01:
        before = group_widths(model, (3, size, size))
        assert all(out_width(pruned, producer) == 1 for producer, _ in before.values())  # 1-channel groups
        assert group_widths(pruned, (3, size, size)) == {}  # ... which the tracer then freezes


@st.composite
def torchvision_models(draw):
    """A torchvision ResNet (bottleneck, 1..16 channels per group) or MobileNetV2/V3 at a drawn width."""
    from torchvision.models.resnet import Bottleneck, ResNet
    family = draw(st.sampled_from(["resnet-bottleneck", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]))
    torch.manual_seed(draw(st.integers(0, 1000)))
    if family == "resnet-bottleneck":  # inner widths w, 2w, 4w, 8w
        model = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=5, width_per_group=draw(st.integers(1, 16)))
    elif family == "mobilenet_v2":  # round_nearest 1: odd widths, down to 2-3 channels
        model = torchvision.models.mobilenet_v2(num_classes=5, width_mult=draw(st.sampled_from([0.05, 0.1, 0.25, 0.5])),
                                                round_nearest=draw(st.sampled_from([1, 2, 8])))
    else:
        model = getattr(torchvision.models, family)(num_classes=5, width_mult=draw(st.sampled_from([0.1, 0.25, 0.5])))
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_torchvision_widths_and_image_sizes():
    """Drawn widths, images of 1x1 to 16x16, batches of one image: prunes (mostly) or refuses as documented."""
    refusals: list[str] = []
    pruned: list[bool] = []

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])
    @given(st.data())
    def run(data):
        model = data.draw(torchvision_models())
        size, count = data.draw(st.integers(1, 16)), data.draw(st.integers(2, 3))
        g = torch.Generator().manual_seed(data.draw(st.integers(0, 100)))
        batches = [torch.randn(1, 3, size, size, generator=g) for _ in range(count)]  # batch size 1
        # flops/params floors are high here (stems and block outputs are not pruned): keep budgets twice as often
        budget = _budget(data.draw, ("keep", "keep", "flops", "params"))
        if _check_run(model, (3, size, size), batches, data.draw(st.sampled_from(METHODS)), budget,
                      refusals=refusals, refit=None) is not None:  # the refit: fuzzed on the chains
            pruned.append(True)

    run()
    _mostly_pruned(len(pruned), refusals, 0.6, "torchvision models", overall=0.3)


@pytest.mark.parametrize("precision", ["float32", "float64", "bfloat16"])
def test_one_pixel_images(precision):
    """1x1 images: deep activations differ only by float32 rounding, so a group may have nothing to select --
    then the run must stop with the documented one-line error, never prune a group to nothing."""
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(1, 3, 1, 1, generator=g) for _ in range(2)]
    try:
        pruned, _ = greedyprune.prune(_tv("mobilenet_v3_small"), batches, keep=0.5, precision=precision,
                                      refit=None, progress=False)
    except greedyprune.UserError as err:
        assert "no channel can be selected" in str(err) and "\n" not in str(err)
    else:
        model = _tv("mobilenet_v3_small")
        assert all(out_width(pruned, p) >= 1 for p, _ in group_widths(model, (3, 1, 1)).values())
        assert bool(torch.isfinite(pruned(torch.randn(2, 3, 1, 1))).all())


def test_one_channel_groups_are_refused_as_nothing_to_prune():
    """A model whose groups are all 1 channel wide (what keep=0.01 leaves) has nothing to choose: every
    method refuses it with the one documented line, naming where to see why."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.Conv2d(1, 1, 1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(9, 1), nn.ReLU(), nn.Linear(1, 2)).eval()
    batches = [torch.randn(1, 1, 3, 3) for _ in range(3)]
    assert group_widths(model, (1, 3, 3)) == {}
    for method in METHODS:
        refusals: list[str] = []
        assert _check_run(model, (1, 3, 3), batches, method, {"keep": 0.5}, refusals=refusals) is None
        assert refusals == ["nothing to prune"]
