"""Statistics from a model (group_statistics) and from a pruning run (from_prune)."""

import copy

import pytest
import torch

import greedyprune
from greedyprune.analysis import analyze_groups, from_prune, group_statistics
from greedyprune.data import calibration_batches
from greedyprune.errors import UserError
from greedyprune.models import build_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A random small CNN, its calibration batches, and a pruning run of it saved to pruned.pt and pruned.pt.json."""
    torch.manual_seed(0)
    model = build_model("small-cnn").eval()
    batches = calibration_batches("random:1x28x28", 48, 16)
    pruned, report = greedyprune.prune(copy.deepcopy(model), batches, keep=0.5, refit=None)
    path = tmp_path_factory.mktemp("run") / "pruned.pt"
    greedyprune.save(path, pruned, report)
    return model, batches, pruned, report, path


def test_group_statistics_are_the_centroid_case_with_scores(run):
    model, batches, *_ = run
    stats = group_statistics(model, batches)
    assert [g.name for g in stats] == ["0", "3", "7"] and [g.size for g in stats] == [32, 64, 128]
    for g in stats:
        assert g.is_centroid_target(rtol=1e-7) and g.scores.shape == (g.size,)  # T: float32 forward pass
    one = group_statistics(model, iter([(b, torch.zeros(len(b))) for b in batches]), names=["3"])
    assert [g.name for g in one] == ["3"]  # (images, labels) pairs from any iterable
    torch.testing.assert_close(one[0].gram, stats[1].gram, rtol=1e-12, atol=0)
    with pytest.raises(UserError, match="unknown group"):
        group_statistics(model, batches, names=["layer9"])


def test_from_prune_takes_the_report_in_every_form(run, tmp_path):
    model, batches, pruned, report, path = run
    names = [g.name for g in report.groups]
    for given in (report, report.to_dict(), path, path.with_name(path.name + ".json")):
        stats = from_prune(model, batches, given)
        assert [g.name for g in stats] == names
    only = from_prune(model, batches, report, groups=[names[-1]])
    assert [g.name for g in only] == [names[-1]]
    result = analyze_groups(only, tmp_path / "out", n_max=6, seeds=(0,), progress=False, plots=False)
    assert result.summary["herding_general"]["pass"] == 1


def test_from_prune_refuses_wrong_inputs(run, tmp_path):
    model, batches, pruned, report, path = run
    with pytest.raises(UserError, match="original .unpruned. model"):
        from_prune(pruned, batches, report)
    with pytest.raises(UserError, match="not in the pruning report"):
        from_prune(model, batches, {"groups": [{"name": "0"}]}, groups=["3"])
    with pytest.raises(UserError, match="does not exist"):
        from_prune(model, batches, tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="pruning report .*bad.json is not valid JSON"):
        from_prune(model, batches, tmp_path / "bad.json")
    with pytest.raises(UserError, match="no list of groups"):
        from_prune(model, batches, {"method": "x"})
