"""Global refit (``refit="global"``): never worse on the calibration features, only the pruned groups'
consumer weights and bias sinks change, one-line option errors, and a gain on a trained model."""

import copy

import pytest
import torch
from torch import nn

import greedyprune
from greedyprune.cli.main import main
from greedyprune.errors import UserError
from greedyprune.graph.groups import ChannelGroup, Consumer
from greedyprune.modelfile import load_report
from greedyprune.models import build_model
from greedyprune.prune import Pruner
from greedyprune.refit import RefitTarget, global_refit, refit_parameters, targets_of

from .conftest import small_cnn

WIDTHS = {"0": 4, "4": 6, "9": 16}  # the last group (the classifier's input, 16 wide) kept whole


def _relative_error(original: nn.Module, pruned: nn.Module, batches, module: str, output: bool = False) -> float:
    """Reference: sum ||F_p - F_o||^2 / sum ||F_o - mean F_o||^2 over all images, features from a hook."""
    def feats(model):
        got = []
        layer = model.get_submodule(module)
        h = (layer.register_forward_hook(lambda m, a, o: got.append(o)) if output
             else layer.register_forward_pre_hook(lambda m, a: got.append(a[0])))
        with torch.no_grad():
            for b in batches:
                model(b)
        h.remove()
        return torch.cat(got).flatten(1).double()
    fo, fp = feats(original), feats(pruned)
    return float((fp - fo).pow(2).sum() / (fo - fo.mean(0)).pow(2).sum())


@pytest.fixture(scope="module")
def setup():
    model = small_cnn()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(24, 1, 16, 16, generator=g) for _ in range(3)]
    plain, plain_report = Pruner(model, batches, widths=WIDTHS, refit=None, progress=False).run()
    refit, report = Pruner(model, batches, widths=WIDTHS, refit="global", refit_iters=15, progress=False).run()
    return model, batches, plain, plain_report, refit, report


def test_feature_error_is_the_reference_and_drops(setup):
    model, batches, plain, plain_report, refit, report = setup
    r = report.refit
    assert r["features"] == "input of 11"  # the last Linear runs last; its input width is unchanged
    assert r["error_before"] == pytest.approx(_relative_error(model, plain, batches, "11"), rel=1e-5)
    assert r["error_after"] == pytest.approx(_relative_error(model, refit, batches, "11"), rel=1e-4)
    assert r["error_after"] < 0.8 * r["error_before"], r
    assert r["iterations"] >= 1 and r["evaluations"] >= r["iterations"] and r["seconds"] > 0
    assert plain_report.refit is None and report.widths() == plain_report.widths()


def test_only_the_pruned_groups_consumers_and_bias_sinks_change(setup):
    _, _, plain, _, refit, report = setup
    # group "0": consumer conv 4 (no bias) -> sink BN 5; group "4": consumer Linear 9 is its own sink
    expected = {"4.weight", "5.bias", "9.weight", "9.bias"}
    assert set(report.refit["parameters"]) == expected
    before, after = plain.state_dict(), refit.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == expected, changed
    assert all(p.requires_grad for p in refit.parameters()) and all(p.grad is None for p in refit.parameters())


def test_classifier_reading_a_pruned_group_matches_its_output():
    model = small_cnn()
    batches = [torch.randn(16, 1, 16, 16, generator=torch.Generator().manual_seed(2))]
    pruned, report = Pruner(model, batches, keep=0.5, refit="global", refit_iters=5, progress=False).run()
    assert report.refit["features"] == "output of 11" and "11.weight" in report.refit["parameters"]
    assert report.refit["error_after"] == pytest.approx(_relative_error(model, pruned, batches, "11", output=True),
                                                        rel=1e-4)
    assert report.refit["error_after"] <= report.refit["error_before"]


def _plain_pruned(setup):
    model, batches, plain, _, _, _ = setup
    return model, batches, copy.deepcopy(plain)


def test_overshooting_lbfgs_restores_the_start_bit_for_bit(setup):
    model, batches, pruned = _plain_pruned(setup)
    targets = [RefitTarget("4", "5"), RefitTarget("9", "9")]
    start = copy.deepcopy(pruned.state_dict())
    # the case really overshoots: plain L-BFGS with a huge step makes the features far worse
    probe = copy.deepcopy(pruned)
    for p in probe.parameters():
        p.requires_grad_(False)
    params = list(refit_parameters(probe, targets).values())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.LBFGS(params, lr=1e4, max_iter=1)
    optimizer.step(lambda: _loss(model, probe, batches))
    report = global_refit(model, pruned, batches, targets, iters=3, line_search=False, lr=1e4)
    assert _relative_error(model, probe, batches, "11") > 10 * report.error_before
    assert report.error_after == report.error_before and report.evaluations >= 2 and report.note is not None
    assert all(torch.equal(v, pruned.state_dict()[k]) for k, v in start.items())


def _loss(original, pruned, batches):
    pruned.zero_grad()
    with torch.no_grad():
        target = [_pre(original, b) for b in batches]
    loss = sum((_pre(pruned, b) - t).pow(2).sum() for b, t in zip(batches, target))
    loss.backward()
    return loss


def _pre(model, x):
    got = []
    h = model.get_submodule("11").register_forward_pre_hook(lambda m, a: got.append(a[0]))
    model(x)
    h.remove()
    return got[0]


def test_best_iterate_is_kept_when_later_steps_overshoot(setup):
    """Moderate plain L-BFGS steps first improve, then oscillate: the result is the best point seen."""
    model, batches, pruned = _plain_pruned(setup)
    targets = [RefitTarget("4", "5"), RefitTarget("9", "9")]
    report = global_refit(model, pruned, batches, targets, iters=8, line_search=False, lr=3.0)
    measured = _relative_error(model, pruned, batches, "11")
    assert measured == pytest.approx(report.error_after, rel=1e-4)
    assert report.error_after <= report.error_before


@pytest.mark.parametrize("options, message", [
    ({"refit": "local"}, "refit must be 'auto' .*, 'global', or 'none' / None"),
    ({"refit": "Global"}, "got 'Global'"),
    ({"refit": "global", "refit_iters": 0}, "refit_iters must be a positive integer"),
    ({"refit": "global", "refit_iters": 2.5}, "refit_iters must be a positive integer"),
    ({"refit": "global", "materialize": False}, "refit needs materialize=True"),
])
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(UserError, match=message) as info:
        Pruner(small_cnn(), [torch.randn(4, 1, 16, 16)], keep=0.5, progress=False, **options)
    assert "\n" not in str(info.value)


def test_unknown_feature_module_is_a_one_line_error():
    with pytest.raises(UserError, match="refit_features names no module: 'nope'"):
        greedyprune.prune(small_cnn(), [torch.randn(8, 1, 16, 16)], keep=0.5, refit="global", refit_iters=1,
                          refit_features="nope", progress=False)


def test_targets_from_traced_groups_use_their_consumers_and_sinks():
    group = ChannelGroup("g", 4, "stream", [], [], [Consumer("a.conv", torch.zeros(4, 1), "a.bn"),
                                                   Consumer("b.fc", torch.zeros(4, 1), "b.fc")], (0, 1), "a.conv")
    assert targets_of([group, group]) == [RefitTarget("a.conv", "a.bn"), RefitTarget("b.fc", "b.fc")]


def test_cli_refit_writes_the_errors_and_rejects_bad_values(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_model("lenet300-100").state_dict(), tmp_path / "weights.pth")
    common = ["prune", "--model", "lenet300-100", "--weights", str(tmp_path / "weights.pth"), "--data", "random:1x28x28",
              "--calib", "64", "--keep", "0.5", "--no-progress", "--out", str(tmp_path / "p.pt")]
    assert main(common + ["--refit", "global", "--refit-iters", "3"]) == 0, capsys.readouterr().err
    refit = load_report(tmp_path / "p.pt")["refit"]
    assert refit["features"] == "output of 5" and refit["error_after"] < refit["error_before"]
    assert "global refit (output of 5" in capsys.readouterr().out
    assert load_report(tmp_path / "p.pt")["options"]["refit_iters"] == 3
    assert main(common + ["--refit-iters", "-1"]) == 2
    assert capsys.readouterr().err.strip() == ("greedyprune prune: error: --refit-iters must be a positive integer "
                                               "(L-BFGS iterations), got -1")


def test_trained_small_cnn_refit_lowers_the_feature_error(trained_cache, monkeypatch):
    from greedyprune.data import calibration_batches
    from greedyprune.models import trained_model
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(trained_cache))
    model, _ = trained_model("small-cnn", progress=False)
    batches = calibration_batches("fashion-mnist", 128, 64, seed=0)
    _, report = Pruner(model, batches, flops=0.15, refit="global", refit_iters=10, progress=False).run()
    assert report.refit["error_after"] < 0.9 * report.refit["error_before"], report.refit


def test_cached_cut_gives_the_same_refit_as_whole_forward_passes(setup):
    model, batches, pruned = _plain_pruned(setup)
    targets = [RefitTarget("4", "5"), RefitTarget("9", "9")]
    other = copy.deepcopy(pruned)
    whole = global_refit(model, pruned, batches, targets, iters=4)
    cut = global_refit(model, other, batches, targets, iters=4, stages=list(other))  # the chain's layers are its stages
    assert cut.error_before == pytest.approx(whole.error_before, rel=1e-6)
    assert cut.error_after == pytest.approx(whole.error_after, rel=1e-4) and cut.evaluations == whole.evaluations
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(pruned.state_dict().values(), other.state_dict().values()))


def test_streams_refit_changes_exactly_the_pruned_groups_consumers_and_sinks():
    """Traced groups with streams=True (block outputs too): the refit set comes from what was pruned."""
    import torchvision
    from .conftest import randomize_batchnorm
    torch.manual_seed(0)
    model = randomize_batchnorm(torchvision.models.mobilenet_v2(num_classes=3, width_mult=0.25))
    batches = [torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    widths = {"features.stream3": 4, "features.5.hidden": 24, "features.17.conv.2": 40}
    pruner = Pruner(model, batches, widths=widths, streams=True, refit="global", refit_iters=3, progress=False)
    refit, report = pruner.run()
    plain, _ = Pruner(model, batches, widths=widths, streams=True, refit=None, progress=False).run()
    groups = {g.name: g for g in pruner.groups}
    expected = {f"{c.target}.weight" for name in widths for c in groups[name].consumers}
    expected |= {f"{c.bias_sink}.bias" for name in widths for c in groups[name].consumers}
    assert set(report.refit["parameters"]) == expected
    assert {"features.7.conv.0.0.weight", "features.18.0.weight", "features.18.1.bias"} <= expected
    assert report.refit["features"] == "input of classifier.1"
    before, after = plain.state_dict(), refit.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # nothing outside the refit set moves (in this random net the early blocks' gradients are ~1e-8, so
    # their float32 weights may not move at all; the last conv's do)
    assert changed <= expected and {"features.18.0.weight", "features.18.1.bias"} <= changed, changed
    assert report.refit["error_after"] < report.refit["error_before"]
