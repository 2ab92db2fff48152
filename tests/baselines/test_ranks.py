"""Baselines under ``torchrun`` (2 gloo ranks): rank 0 alone writes, and the results are one process's.

Launched with the helpers of :mod:`tests.distributed.jobs`; what the ranks run is
:mod:`tests.baselines.rank_job`. RigL grows by the dense gradient averaged over the ranks, so its
masks equal those of one process with the global batch.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from greedyprune.baselines.common import trained_state

from ..distributed.jobs import finish, relative_difference, torchrun
from .rank_job import RUNS, logged_writes, run_baselines


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines-two-ranks")
    finish(torchrun(["-m", "tests.baselines.rank_job", str(out)], cwd=Path(__file__).resolve().parents[2]))
    return out


def test_two_rank_baselines_write_once_and_equal_one_process(two_ranks, tmp_path):
    torch.set_num_threads(1)
    log = []
    with logged_writes(log, tmp_path):
        single = run_baselines(tmp_path)
    ranks = [json.loads((two_ranks / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[1]["writes"] == []  # rank 1 wrote nothing: no mask, rewind.pt, checkpoint, result or summary
    assert Counter(ranks[0]["writes"]) == Counter(log)  # rank 0 wrote what one process writes, as often
    assert {"lth/init.pt", "lth/rewind.pt", "lth/summary.json", "lth/round_01/mask.pt",
            "lth/controls/reinit_r01/start.pt", "rigl/result.json", "grasp/mask.pt"} <= set(log)
    for run in RUNS:
        two, one = trained_state(two_ranks / "ranks" / run), trained_state(tmp_path / run)
        assert two.keys() == one.keys()
        for key, value in one.items():
            if key.endswith(".mask"):  # IMP, random, RigL (grown by the rank-averaged gradient), GraSP
                assert torch.equal(two[key], value), (run, key)
            else:
                assert relative_difference(two[key], value) < 1e-5, (run, key)
    for rank in ranks:
        assert rank["results"]["rigl"]["updates"] == [list(u) for u in single["rigl"]["updates"]]
        for (kind, r, acc, nonzero), expected in zip(rank["results"]["lth"], single["lth"]):
            assert (kind, r, nonzero) == (expected[0], expected[1], expected[3])
            assert acc == pytest.approx(expected[2], abs=1 / 128)  # at most one of the 128 test images flips
