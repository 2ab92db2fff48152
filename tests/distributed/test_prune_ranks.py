"""Two gloo ranks on CPU prune to the same model as one process on the same calibration set.

Sums over ranks are added in a different order than in one process (float64, ~1e-16 apart); a
ridge of 1e-3 keeps these random-weight least-squares problems conditioned well enough that the
difference stays below 1e-6 relative in every weight (with 1e-6 damping the degenerate random
MobileNetV3 amplifies it to ~2e-5).
"""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import greedyprune

from ..pipeline.conftest import mlp, tv_model

DAMPING = 1e-3
MODELS = {"mlp": (mlp, (1, 8, 8)), "mobilenet_v3_small": (lambda: tv_model("mobilenet_v3_small"), (3, 40, 40))}
BUDGETS = {"mlp": {"flops": 0.6}, "mobilenet_v3_small": {"keep": 0.5}}


def calibration(name: str) -> list[torch.Tensor]:
    shape = MODELS[name][1]
    g = torch.Generator().manual_seed(0)
    return [torch.randn(6, *shape, generator=g) for _ in range(4)]


def _rank(rank: int, world_size: int, init_file: str, name: str, out_dir: str, method: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        pruned, report = greedyprune.prune(MODELS[name][0](), calibration(name), method, **BUDGETS[name], progress=False,
                                           damping=DAMPING)
        torch.save({k: v.clone() for k, v in pruned.state_dict().items()}, os.path.join(out_dir, f"rank{rank}.pt"))
        assert report.calibration_images == 24
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("name, method", [("mlp", "reoptimized"), ("mobilenet_v3_small", "reoptimized")])
def test_two_ranks_equal_one_process(name, method, tmp_path):
    torch.set_num_threads(1)
    single, _ = greedyprune.prune(MODELS[name][0](), calibration(name), method, **BUDGETS[name], progress=False,
                                  damping=DAMPING)
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), name, str(tmp_path), method), nprocs=2, join=True)
    expected = single.state_dict()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert got[key].shape == value.shape, key
            if value.is_floating_point():
                scale = value.abs().max().clamp_min(1e-12)
                assert float((got[key] - value).abs().max() / scale) < 1e-6, key
            else:
                assert torch.equal(got[key], value), key
