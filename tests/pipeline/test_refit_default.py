"""The global refit as the default (``refit="auto"``): on for the greedy methods, off for the baselines,
skipped with its reason where it cannot apply, an error only when asked for explicitly."""

import pytest
import torch
from torch import nn

import greedyprune
from greedyprune.cli.main import main
from greedyprune.errors import UserError
from greedyprune.modelfile import load_report
from greedyprune.models import build_model
from greedyprune.prune import Pruner
from greedyprune.refit import fit
from greedyprune.selection import registered_methods

from .conftest import small_cnn
from .test_refit import _relative_error


def _batches(seed: int = 1, size: int = 16) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 1, size, size, generator=g) for _ in range(2)]


def conv_only(seed: int = 0) -> nn.Sequential:
    """A network with no nn.Linear: its output is a pooled conv map (nothing for the refit to match)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_default_is_the_global_refit_for_greedy_methods():
    model, batches = small_cnn(), _batches()
    default, report = greedyprune.prune(model, batches, keep=0.5, progress=False)
    explicit, _ = greedyprune.prune(model, batches, keep=0.5, refit="global", progress=False)
    plain, plain_report = greedyprune.prune(model, batches, keep=0.5, refit=None, progress=False)
    assert report.options["refit"] == "global" and plain_report.options["refit"] is None
    assert report.refit is not None and report.refit_skipped is None and plain_report.refit is None
    assert report.refit["iterations"] >= 1 and "global refit (output of 11" in report.table()
    assert _same_weights(default, explicit)  # the default *is* refit="global", refit_iters=40
    assert not _same_weights(default, plain)
    # measured on the calibration images: the refit's own numbers, and never worse than no refit
    refit_error = _relative_error(model, default, batches, "11", output=True)
    plain_error = _relative_error(model, plain, batches, "11", output=True)
    assert refit_error == pytest.approx(report.refit["error_after"], rel=1e-4)
    assert plain_error == pytest.approx(report.refit["error_before"], rel=1e-4)
    assert refit_error < plain_error


def test_registry_decides_each_methods_default_and_the_baselines_stay_plain():
    greedy = {name for name, spec in registered_methods.items() if spec.whole_network_refit == "global"}
    assert greedy == {"reoptimized", "uniform", "uniform-noreplace", "reoptimized-simplex"}
    assert all(spec.whole_network_refit in ("global", None) for spec in registered_methods.values())
    model, batches = small_cnn(), _batches()
    for method in ("magnitude", "magnitude-norefit", "random"):
        default, report = greedyprune.prune(model, batches, method, keep=0.5, progress=False)
        plain, _ = greedyprune.prune(model, batches, method, keep=0.5, refit=None, progress=False)
        assert report.refit is None and report.refit_skipped is None and report.options["refit"] is None, method
        assert _same_weights(default, plain), method
        forced, forced_report = greedyprune.prune(model, batches, method, keep=0.5, refit="global", refit_iters=2,
                                                  progress=False)
        assert forced_report.refit is not None and not _same_weights(forced, plain), method
    _, report = greedyprune.prune(model, batches, "uniform", keep=0.5, refit_iters=2, progress=False)
    assert report.refit is not None  # another greedy method than the default one


def test_no_linear_classifier_skips_with_the_reason_and_prunes(capsys):
    model, batches = conv_only(), _batches()
    pruned, report = greedyprune.prune(model, batches, keep=0.5)  # progress shown: the line goes to stderr
    plain, _ = greedyprune.prune(model, batches, keep=0.5, refit=None, progress=False)
    assert report.refit is None and "runs no nn.Linear" in report.refit_skipped
    assert _same_weights(pruned, plain) and report.flops_after < report.flops_before
    assert f"refit skipped: {report.refit_skipped}" in report.table().splitlines()
    assert capsys.readouterr().err.count("refit skipped: Sequential runs no nn.Linear") == 1


def test_explicit_global_without_a_classifier_is_a_one_line_error_before_any_work(monkeypatch):
    monkeypatch.setattr(Pruner, "step", lambda self: pytest.fail("pruned before refusing"))
    with pytest.raises(UserError, match="Sequential runs no nn.Linear; name the feature layer with "
                                        "refit_features=NAME") as info:
        Pruner(conv_only(), _batches(), keep=0.5, refit="global", progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("options, reason", [
    ({"keep": 1.0}, "no group was pruned, so there is nothing to refit"),
    ({"keep": 0.5, "materialize": False}, "refit needs materialize=True"),
    ({"keep": 0.5, "refit_features": "nope"}, "refit_features names no module: 'nope'"),
    ({"keep": 0.5, "refit_features": "1"}, "the feature layer BatchNorm2d did not run"),  # before the cut
])
def test_auto_skips_where_the_refit_cannot_apply(options, reason):
    model, batches = small_cnn(), _batches()
    pruned, report = greedyprune.prune(model, batches, progress=False, **options)
    plain, _ = greedyprune.prune(model, batches, progress=False, refit=None, **options)
    assert report.refit is None and report.refit_skipped.startswith(reason), report.refit_skipped
    assert _same_weights(pruned, plain)


def test_explicit_refit_features_before_the_pruned_layers_is_an_error():
    with pytest.raises(UserError, match="the feature layer BatchNorm2d did not run"):
        greedyprune.prune(small_cnn(), _batches(), keep=0.5, refit="global", refit_features="1", progress=False)


def test_an_error_during_the_refit_leaves_the_parameters_as_they_were(monkeypatch):
    """Under ``auto`` a failure after L-BFGS has moved the parameters restores them (and says why)."""
    model, batches = small_cnn(), _batches()
    plain, _ = greedyprune.prune(model, batches, keep=0.5, refit=None, progress=False)
    calls, original = [], fit.features_of

    def failing(module, run, x, output):
        calls.append(torch.is_grad_enabled())
        if sum(calls) > 6:  # several evaluations in: the parameters have moved
            raise UserError("the feature layer broke")
        return original(module, run, x, output)

    monkeypatch.setattr(fit, "features_of", failing)
    pruned, report = greedyprune.prune(model, batches, keep=0.5, refit_iters=10, progress=False)
    assert report.refit_skipped == "the feature layer broke" and report.refit is None
    assert _same_weights(pruned, plain)
    assert all(p.requires_grad and p.grad is None for p in pruned.parameters())


def test_cli_refit_default_is_auto_and_a_misspelling_is_an_error(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_model("lenet300-100").state_dict(), tmp_path / "weights.pth")
    out = tmp_path / "p.pt"
    common = ["prune", "--model", "lenet300-100", "--weights", str(tmp_path / "weights.pth"), "--data", "random:1x28x28",
              "--calib", "32", "--keep", "0.5", "--refit-iters", "2", "--no-progress", "--out", str(out)]
    assert main(common) == 0, capsys.readouterr().err
    report = load_report(out)
    assert report["options"]["refit"] == "global" and report["refit"]["iterations"] >= 1
    assert "global refit (output of 5" in capsys.readouterr().out
    assert main(common + ["--method", "magnitude"]) == 0, capsys.readouterr().err
    assert load_report(out)["refit"] is None and load_report(out)["options"]["refit"] is None
    assert main(common + ["--refit", "none"]) == 0 and load_report(out)["refit"] is None
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(common + ["--refit", "globl"])
    assert info.value.code == 2 and capsys.readouterr().err.strip() == (
        "greedyprune prune: error: argument --refit: invalid choice: 'globl' (choose from 'auto', 'global', 'none'); "
        "see greedyprune prune --help")
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    assert "auto: global for the greedy methods" in " ".join(capsys.readouterr().out.split())
