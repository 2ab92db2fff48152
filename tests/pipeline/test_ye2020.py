"""``ye2020``: candidates scored by the whole network's loss (brute-force reference), the stop rule, the uniform
N/|S| weights made physical (masked == materialized, hidden channels and block outputs), and resume."""

import copy

import pytest
import torch
import torchvision
from torch import nn

from greedyprune.data import TensorImageDataset
from greedyprune.errors import UserError
from greedyprune.graph import find_groups
from greedyprune.surgery import Layout
from greedyprune.walk.execute import positions
from greedyprune.ye2020 import (CutRunner, Mask, Ye2020Options, grow_layer, layers_in_order, score_candidates,
                                uniform_weights, ye2020_prune)
from greedyprune.ye2020 import run as ye_run

from .conftest import mlp, randomize_batchnorm


def _labelled(n: int, shape: tuple, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def _layers(model: nn.Module, example: torch.Tensor, streams: bool = True):
    traced = find_groups(model, example[:1], streams=True)
    pos = positions(traced.nodes)
    return traced.nodes, pos, Layout(model), {l.name: l for l in layers_in_order(model, traced.nodes, traced.groups,
                                                                                 streams, pos)}


def _brute_force_loss(model: nn.Sequential, x, y, chosen: list[int]) -> float:
    """Cross-entropy with hidden layer 1's channels outside ``chosen`` deleted and the rest scaled by N/|S|."""
    m = copy.deepcopy(model)
    consumer = m[3]
    scale = torch.zeros(consumer.weight.shape[1])
    scale[chosen] = consumer.weight.shape[1] / len(chosen)
    with torch.no_grad():
        consumer.weight.mul_(scale)
        return float(nn.functional.cross_entropy(m(x), y))


def _hooked(model, example, name):
    nodes, pos, layout, layers = _layers(model, example)
    layer = layers[name]
    mask = Mask(torch.ones(layer.width))
    return layer, CutRunner(model, nodes, pos, layer.start), mask, layer.install(model, layout, mask), layout


def test_scores_are_the_whole_network_loss_and_the_lowest_is_picked():
    model = mlp()  # Flatten, Linear 64-40, ReLU, Linear 40-30, ReLU, Linear 30-5
    x, y = _labelled(50, (64,), 5)
    reference = [_brute_force_loss(model, x, y, [3, 7, c]) for c in range(40)]  # before any hook exists
    first = min(range(40), key=lambda c: _brute_force_loss(model, x, y, [c]))
    layer, runner, mask, handles, _ = _hooked(model, x, "1")
    assert layer.width == 40 and [c.target for c in layer.group.consumers] == ["3"]
    cut = runner.values(x)
    # 40 candidates in stacked passes of 6 (the last one partial)
    losses, accuracies = score_candidates(runner, cut, y, mask, 40, [3, 7], list(range(40)), stack=6)
    single, _ = score_candidates(runner, cut, y, mask, 40, [3, 7], list(range(40)), stack=1)
    assert losses == pytest.approx(reference, rel=1e-5) and single == pytest.approx(reference, rel=1e-5)
    outcome = grow_layer(runner, mask, "1", "internal", 40, iter([(x, y)] * 5), ([cut], [y]), 40, 1.0, 0.0,
                         torch.Generator().manual_seed(0))
    for h in handles:
        h.remove()
    assert accuracies[5] == _top1_with(model, x, y, "1", [3, 7, 5])
    assert outcome.order[0] == first and len(set(reference)) > 30  # the scores really differ


def _top1_with(model, x, y, name, chosen) -> float:
    layer, _, mask, handles, _ = _hooked(model, x, name)
    mask.value = uniform_weights(layer.width, chosen)
    try:
        with torch.no_grad():
            return int((model(x).argmax(1) == y).sum()) / y.numel()
    finally:
        for h in handles:
            h.remove()


def test_stop_rule_first_step_that_reaches_tolerance_times_the_start():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 3)).eval()
    x = torch.randn(120, 6)
    y = model(x).argmax(1).detach()  # start top-1 is 1.0 on these labels
    for tolerance, precheck in ((0.9, 0.0), (0.75, 0.0), (0.9, 1.0)):
        layer, runner, mask, handles, _ = _hooked(model, x, "0")
        outcome = grow_layer(runner, mask, "0", "internal", 24, iter([(x, y)] * 30), ([runner.values(x)], [y]), 5,
                             tolerance, precheck, torch.Generator().manual_seed(1))
        for h in handles:
            h.remove()
        assert outcome.start_top1 == 1.0
        top1 = [_top1_with(model, x, y, "0", outcome.order[:k]) for k in range(1, outcome.steps + 1)]
        assert top1[-1] == outcome.final_top1 and (top1[-1] >= tolerance or outcome.steps == 24)
        if precheck == 0.0:  # checked at every step: it stopped at the first step that reached tolerance
            assert all(t < tolerance for t in top1[:-1]) and outcome.checks == outcome.steps
        else:  # checked only where the chosen candidate's batch top-1 was at least precheck x start
            assert outcome.checks == sum(a >= precheck for a in outcome.batch_top1[:-1]) + 1
            assert outcome.checks < outcome.steps


def tiny_mobilenet_v2() -> nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(torchvision.models.mobilenet_v2(num_classes=3, width_mult=0.25))


def test_materialize_equals_the_uniformly_weighted_mask_hidden_and_streams():
    model = tiny_mobilenet_v2()
    x = torch.randn(4, 3, 32, 32)
    names = list(_layers(model, x)[3])
    assert names[:4] == ["features.2.hidden", "features.stream2", "features.3.hidden", "features.4.hidden"]
    assert [n for n in names if "stream" in n] == [f"features.stream{i}" for i in range(2, 7)]  # not the stem's
    assert len(names) == 21
    for name in ("features.3.hidden", "features.stream3"):
        pruned = copy.deepcopy(model)
        layer, _, mask, handles, layout = _hooked(pruned, x, name)
        kept = torch.tensor([0, 2, 3, 5])
        mask.value = uniform_weights(layer.width, kept.tolist())
        assert mask.value[kept].eq(layer.width / 4).all() and mask.value.sum() == layer.width
        with torch.no_grad():
            masked = pruned(x)
        for h in handles:
            h.remove()
        layer.materialize(pruned, layout, kept, layer.width / 4)
        with torch.no_grad():
            assert torch.allclose(pruned(x), masked, atol=1e-5), name
        assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
        if name == "features.3.hidden":
            assert torch.allclose(pruned.features[3].conv[2].weight,
                                  model.features[3].conv[2].weight[:, kept] * layer.width / 4)
        else:  # every producer's BatchNorm carries the scale; the residual blocks of the stage shrink too
            assert [b.conv[3].num_features for b in pruned.features[4:7]] == [4, 4, 4]
            assert torch.allclose(pruned.features[5].conv[3].weight,
                                  model.features[5].conv[3].weight[kept] * layer.width / 4)


def _run(model, data, run_dir, **kw):
    options = Ye2020Options(candidates=2, batch_size=16, tolerance=0.9, check_images=48, finetune_epochs=0.1,
                            augment="none")
    return ye2020_prune(model, data, options, run_dir=run_dir, progress=False, **kw)


def test_resumed_run_ends_with_the_same_model(tmp_path, monkeypatch):
    model = tiny_mobilenet_v2()
    data = TensorImageDataset(*_labelled(160, (3, 32, 32), 3), classes=["a", "b", "c"])
    whole, report = _run(model, data, tmp_path / "a")
    assert report.method == "ye2020" and len(report.groups) == 21 and report.flops_after < report.flops_before
    assert {g.name for g in report.groups} >= {"features.2.hidden", "features.stream6"}
    calls = {"n": 0}
    real = ye_run.grow_layer

    def interrupted(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(ye_run, "grow_layer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(model, data, tmp_path / "b")
    monkeypatch.setattr(ye_run, "grow_layer", real)
    resumed, again = _run(model, data, tmp_path / "b")
    assert again.widths() == report.widths()
    a, b = whole.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_options_are_one_line_errors():
    data = TensorImageDataset(*_labelled(32, (64,), 5), classes=list("abcde"))
    for options, message in ((Ye2020Options(tolerance=1.5), "tolerance must be in"),
                             (Ye2020Options(candidates=0), "candidates must be >= 1")):
        with pytest.raises(UserError, match=message) as info:
            ye2020_prune(mlp(), data, options, progress=False)
        assert "\n" not in str(info.value)


def test_cli_says_what_ye2020_needs_and_runs(tmp_path, capsys):
    from greedyprune.cli.main import main
    from greedyprune.modelfile import load_report
    from greedyprune.models import build_model
    torch.manual_seed(0)
    torch.save(build_model("lenet300-100").state_dict(), tmp_path / "weights.pth")
    common = ["prune", "--method", "ye2020", "--model", "lenet300-100", "--weights", str(tmp_path / "weights.pth"),
              "--data", "random:1x28x28", "--out", str(tmp_path / "y.pt"), "--no-progress"]
    assert main(common + ["--flops", "0.5"]) == 2
    assert "--method ye2020 picks its own widths" in capsys.readouterr().err
    assert main(common + ["--refit", "global"]) == 2
    assert "drop --refit" in capsys.readouterr().err
    assert main(common + ["--ye-candidates", "0"]) == 2
    assert capsys.readouterr().err.strip() == "greedyprune prune: error: --ye-candidates must be >= 1, got 0"
    assert main(common + ["--ye-finetune-lr", "0"]) == 2  # every Ye2020Options field is a --ye-* flag
    assert capsys.readouterr().err.strip() == "greedyprune prune: error: --ye-finetune-lr must be > 0, got 0.0"
    assert main(common + ["--ye-candidates", "3", "--ye-batch-size", "16", "--ye-check-images", "32",
                          "--ye-finetune-epochs", "0.001", "--ye-tolerance", "0.5"]) == 0, capsys.readouterr().err
    report = load_report(tmp_path / "y.pt")
    assert report["method"] == "ye2020" and [g["name"] for g in report["groups"]] == ["1", "3"]
    assert "ye2020:" in capsys.readouterr().out
    import greedyprune
    loaded = greedyprune.load(tmp_path / "y.pt")
    assert [loaded[1].out_features, loaded[3].out_features] == [g["channels_after"] for g in report["groups"]]
