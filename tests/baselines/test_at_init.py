import pytest
import torch

from greedyprune.baselines.at_init import InitOptions, run_at_init
from greedyprune.baselines.common import load_splits
from greedyprune.io import load_checkpoint
from greedyprune.sparse import mask_counts
from greedyprune.train import TrainConfig

CONFIG = TrainConfig(max_steps=4, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant", eval_every=2)


def test_pruning_at_init_hits_sparsity_and_random_ratios_copies_counts(tmp_path):
    splits = load_splits("random:1x28x28")
    options = InitOptions(sparsity=0.9, samples_per_class=3)
    records = {m: run_at_init(m, "lenet300-100", splits, CONFIG, options, tmp_path / m, progress=False)
               for m in ("grasp", "snip", "random", "random-ratios")}
    total = records["grasp"]["weights"]
    for method, record in records.items():
        masks = load_checkpoint(tmp_path / method / "mask.pt")
        assert sum(mask_counts(masks).values()) == round(0.1 * total), method
        assert record["sparsity"] >= 0.9 - 1e-9
    grasp, ratios = (load_checkpoint(tmp_path / m / "mask.pt") for m in ("grasp", "random-ratios"))
    assert mask_counts(grasp) == mask_counts(ratios)
    assert any(not torch.equal(grasp[n], ratios[n]) for n in grasp)
    uniform = mask_counts(load_checkpoint(tmp_path / "random" / "mask.pt"))
    assert uniform["1.weight"] == pytest.approx(0.1 * 235200, abs=1)
