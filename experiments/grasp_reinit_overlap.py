"""How different is GraSP's mask when the Linear weights are re-drawn before scoring, as its reference code does?

alecwangcq/GraSP scores a copy of the network whose every ``nn.Linear`` weight is re-drawn with
``xavier_normal`` (``reinit=True``) and applies the mask to the original network; greedyprune scores the
initialisation it then trains. On LeNet-300-100 (all layers Linear) this compares, at each sparsity and
seed, the library's GraSP mask (PyTorch's initialisation, 10 images per class) with the mask computed the
reference's way on the same batch: Jaccard |A & B| / |A | B| of the kept weights, and per-layer densities.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/grasp_reinit_overlap.py

Writes experiments/results/grasp_reinit_overlap.json (seconds on one core).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from greedyprune.baselines.at_init import InitOptions, criterion_masks
from greedyprune.baselines.common import load_splits, new_model
from greedyprune.io import save_json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    torch.set_num_threads(1)
    splits = load_splits("fashion-mnist")
    rows = []
    for seed in (0, 1):
        for sparsity in (0.9, 0.98):
            torch.manual_seed(seed)
            model = new_model("lenet300-100", splits)  # what run_at_init scores and trains
            options = InitOptions(sparsity=sparsity)
            ours = criterion_masks("grasp", model, splits, options, seed)
            redrawn = copy.deepcopy(model)
            torch.manual_seed(10_000 + seed)
            for module in redrawn.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_normal_(module.weight)
            theirs = criterion_masks("grasp", redrawn, splits, options, seed)
            both = sum(int((ours[n] & theirs[n]).sum()) for n in ours)
            either = sum(int((ours[n] | theirs[n]).sum()) for n in ours)
            rows.append({"seed": seed, "sparsity": sparsity, "jaccard": both / either,
                         "density_library": {n: float(m.float().mean()) for n, m in ours.items()},
                         "density_reference_reinit": {n: float(m.float().mean()) for n, m in theirs.items()}})
            print(f"seed {seed} sparsity {sparsity:g}: Jaccard {both / either:.3f}; densities library "
                  f"{[round(100 * v, 1) for v in rows[-1]['density_library'].values()]} % vs re-drawn "
                  f"{[round(100 * v, 1) for v in rows[-1]['density_reference_reinit'].values()]} %", flush=True)
    save_json({"description": __doc__, "rows": rows}, RESULTS / "grasp_reinit_overlap.json")


if __name__ == "__main__":
    main()
