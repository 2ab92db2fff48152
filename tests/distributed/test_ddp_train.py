"""DDP training on 2 gloo ranks equals one process training with the same (global) batch.

Each rank takes batch_size / 2 images of its shard of the epoch's permutation; the two local batches of
a step together are the one-process batch, and DDP averages the two ranks' mean-loss gradients, so
the update is the same up to float summation order. The model is an MLP with no BatchNorm (DDP
normalises each rank's own images) and no dropout (each rank draws masks for its own images).
"""

import torch

from greedyprune.distributed import data_order
from greedyprune.train import train

from .jobs import CRASH_AT, TRAIN_CONFIG, TRAIN_DATA, VAL_DATA, relative_difference, train_model


def test_rank_shards_of_a_step_are_the_one_process_batch():
    single = data_order(100, 5, 2)
    ranks = [data_order(100, 5, 2, rank, 2) for rank in range(2)]
    for step in range(100 // 16):
        together = torch.cat([r[step * 8:(step + 1) * 8] for r in ranks])
        assert sorted(together.tolist()) == sorted(single[step * 16:(step + 1) * 16].tolist())


def test_two_ranks_ddp_equal_one_process_with_the_global_batch(two_ranks, tmp_path):
    torch.set_num_threads(1)
    model = train_model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    single = train(model, TRAIN_DATA, TRAIN_CONFIG, run_dir=tmp_path, val_set=VAL_DATA, progress=False)
    expected = model.state_dict()
    assert min(relative_difference(initial[k], v) for k, v in expected.items()) > 0.1  # training moved every tensor
    for rank in range(2):
        got = torch.load(two_ranks / f"train-rank{rank}.pt", weights_only=True)
        assert got["steps"] == single.steps == 17
        assert got["state"].keys() == expected.keys()
        for key, value in expected.items():
            assert relative_difference(got["state"][key], value) < 1e-6, key
        assert [h["step"] for h in got["history"]] == [h["step"] for h in single.history] == [6, 12, 17]
        for mine, ref in zip(got["history"], single.history):
            for k in ("train_loss", "val_loss", "val_acc", "lr"):  # losses averaged, validation sharded, over ranks
                assert abs(mine[k] - ref[k]) <= 1e-6 * abs(ref[k]) + 1e-12, (k, mine, ref)
    # rank 0 wrote the checkpoint: the bare module's weights (no DDP "module." prefix), those of rank 1 too
    ckpt = torch.load(two_ranks / "ddp" / "checkpoint.pt", weights_only=True)
    final = torch.load(two_ranks / "train-rank1.pt", weights_only=True)["state"]
    assert ckpt["step"] == 17 and all(torch.equal(ckpt["model"][k], final[k]) for k in expected)


def test_interrupted_two_rank_run_resumes_to_the_same_weights(two_ranks):
    """Both ranks stop after step 10, restart from rank 0's step-8 checkpoint and end bit-identical."""
    straight = torch.load(two_ranks / "train-rank0.pt", weights_only=True)
    assert 8 < CRASH_AT < TRAIN_CONFIG.max_steps
    for rank in range(2):
        resumed = torch.load(two_ranks / f"interrupted-rank{rank}.pt", weights_only=True)
        assert resumed["steps"] == 17
        for key, value in straight["state"].items():
            assert torch.equal(resumed["state"][key], value), key
        assert resumed["history"] == straight["history"]
