"""DDP training on 2 gloo ranks equals one process training with the same (global) batch.

Each rank takes batch_size / 2 images of its shard of the epoch's permutation; the two local batches of
a step together are the one-process batch, and DDP averages the two ranks' mean-loss gradients, so
the update is the same up to float summation order. The model is an MLP with no BatchNorm (DDP
normalises each rank's own images) and no dropout (each rank draws its own masks).
"""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from greedyprune.data import get_dataset
from greedyprune.distributed import data_order
from greedyprune.train import TrainConfig, train

DATA = get_dataset("random:1x8x8", n=100, num_classes=4)  # 100 % 16 != 0: the last partial batch is dropped
VAL = get_dataset("random:1x8x8", "val", n=37, num_classes=4)  # odd: the ranks score 19 and 18 images
# 3 epochs of 6 steps: the epoch permutation changes twice; sgd + momentum, warm-up, cosine, decay, smoothing
CONFIG = TrainConfig(max_steps=17, batch_size=16, lr=0.05, momentum=0.9, warmup_steps=3, weight_decay=1e-3,
                     label_smoothing=0.1, seed=5, eval_every=6, checkpoint_every=4)


def _model() -> nn.Module:
    torch.manual_seed(11)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 4))


def _rank(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = _model()
        result = train(model, DATA, CONFIG, run_dir=os.path.join(out_dir, "run"), val_set=VAL, progress=False)
        torch.save({"state": model.state_dict(), "history": result.history, "steps": result.steps},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _close(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def test_rank_shards_of_a_step_are_the_one_process_batch():
    single = data_order(100, 5, 2)
    ranks = [data_order(100, 5, 2, rank, 2) for rank in range(2)]
    for step in range(100 // 16):
        together = torch.cat([r[step * 8:(step + 1) * 8] for r in ranks])
        assert sorted(together.tolist()) == sorted(single[step * 16:(step + 1) * 16].tolist())


def test_two_ranks_ddp_equal_one_process_with_the_global_batch(tmp_path):
    torch.set_num_threads(1)
    model = _model()
    single = train(model, DATA, CONFIG, run_dir=tmp_path / "single", val_set=VAL, progress=False)
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    expected = model.state_dict()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got["steps"] == single.steps == 17
        assert got["state"].keys() == expected.keys()
        for key, value in expected.items():
            assert _close(got["state"][key], value) < 1e-6, key
        assert len(got["history"]) == len(single.history) == 3  # steps 6, 12 and the last, 17
        for mine, ref in zip(got["history"], single.history):
            assert mine["step"] == ref["step"]
            for k in ("train_loss", "val_loss", "val_acc", "lr"):
                assert abs(mine[k] - ref[k]) <= 1e-6 * abs(ref[k]) + 1e-12, (k, mine, ref)
    # rank 0 wrote the checkpoint; it holds the same (bare, unwrapped) weights
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 17 and ckpt["model"].keys() == expected.keys()
