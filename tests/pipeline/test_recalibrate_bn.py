"""``recalibrate_bn``: after pruning, every BN's running statistics are its input's batch statistics on the
calibration set, and nothing else in the model changes (Python API and ``greedyprune prune --recalibrate-bn``)."""

import copy

import torch
from torch import nn

import greedyprune
from greedyprune.cli.main import main
from greedyprune.modelfile import load_report
from greedyprune.models import build_model

from .conftest import small_cnn


def _reference_statistics(model: nn.Module, batches: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per BN: mean over batches of its input's per-channel batch mean / unbiased variance, with every BN
    normalising by batch statistics (train mode, running statistics not tracked) as during recalibration."""
    model = copy.deepcopy(model).eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    seen: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {i: [] for i in range(len(norms))}

    def hook(index):
        def record(_module, args):
            x = args[0].transpose(0, 1).reshape(args[0].shape[1], -1).double()
            seen[index].append((x.mean(1), x.var(1, unbiased=True)))
        return record

    for i, m in enumerate(norms):
        m.track_running_stats, m.running_mean, m.running_var = False, None, None
        m.train()
        m.register_forward_pre_hook(hook(i))
    with torch.no_grad():
        for b in batches:
            model(b)
    return [(torch.stack([s[0] for s in seen[i]]).mean(0), torch.stack([s[1] for s in seen[i]]).mean(0))
            for i in range(len(norms))]


def test_statistics_are_the_pruned_networks_batch_statistics():
    g = torch.Generator().manual_seed(3)
    batches = [torch.randn(10, 1, 16, 16, generator=g) * 2 + 0.5 for _ in range(3)]
    plain, _ = greedyprune.prune(small_cnn(), batches, keep=0.5, refit=None, progress=False)
    recalibrated, report = greedyprune.prune(small_cnn(), batches, keep=0.5, refit=None, progress=False,
                                             recalibrate_bn=True)
    assert report.options["recalibrate_bn"] is True and not recalibrated.training
    norms = [m for m in recalibrated.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn, (mean, var) in zip(norms, _reference_statistics(plain, batches), strict=True):
        assert torch.allclose(bn.running_mean.double(), mean, rtol=1e-4, atol=1e-5)
        assert torch.allclose(bn.running_var.double(), var, rtol=1e-4, atol=1e-5)
        assert bn.momentum == 0.1
    before, after = plain.state_dict(), recalibrated.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)


def test_cli_flag(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_model("mobilenet_v3_small-fmnist").state_dict(), tmp_path / "weights.pth")
    common = ["prune", "--model", "mobilenet_v3_small-fmnist", "--weights", str(tmp_path / "weights.pth"),
              "--data", "random:1x28x28", "--calib", "32", "--batch-size", "16", "--keep", "0.5", "--refit", "none",
              "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "plain.pt")]) == 0
    assert main(common + ["--recalibrate-bn", "--out", str(tmp_path / "recal.pt")]) == 0
    plain, recal = greedyprune.load(tmp_path / "plain.pt"), greedyprune.load(tmp_path / "recal.pt")
    assert load_report(tmp_path / "recal.pt")["options"]["recalibrate_bn"] is True
    plain_state, recal_state = plain.state_dict(), recal.state_dict()
    assert plain_state.keys() == recal_state.keys()
    differ = [k for k in plain_state if not torch.equal(plain_state[k], recal_state[k])]
    assert differ and all(".running_" in k or k.endswith("num_batches_tracked") for k in differ)
