"""Two gloo ranks on CPU prune to the same model as one process on the same calibration set.

Sums over ranks are added in a different order than in one process (float64, ~1e-16 apart); a
ridge of 1e-3 keeps these random-weight least-squares problems conditioned well enough that the
difference stays below 1e-6 relative in every weight (with 1e-6 damping the degenerate random
MobileNetV3 amplifies it to ~2e-5).
"""

import pytest
import torch

from .jobs import PRUNE_MODELS, prune_job, relative_difference


@pytest.mark.parametrize("name", list(PRUNE_MODELS))
def test_two_ranks_equal_one_process(name, two_ranks):
    torch.set_num_threads(1)
    single, _ = prune_job(name)
    expected = single.state_dict()
    for rank in range(2):
        got = torch.load(two_ranks / f"prune-{name}-rank{rank}.pt", weights_only=True)
        assert got["images"] == 24  # counted over both ranks' shards
        assert got["state"].keys() == expected.keys()
        for key, value in expected.items():
            assert got["state"][key].shape == value.shape, key  # the same kept channels
            if value.is_floating_point():
                assert relative_difference(got["state"][key], value) < 1e-6, key
            else:
                assert torch.equal(got["state"][key], value), key


def test_two_ranks_allocate_a_latency_target_from_rank_zeros_times(two_ranks):
    first, second = (torch.load(two_ranks / f"latency-rank{rank}.pt", weights_only=True) for rank in range(2))
    assert first["seconds"] == second["seconds"]  # measured on each rank, rank 0's broadcast
    assert first["widths"] == second["widths"] and any(w > 1 for w in first["widths"].values())
