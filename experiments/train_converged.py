"""Train the converged Fashion-MNIST reference models into the model cache (resumable; hours on 2 cores).

    python experiments/train_converged.py                       # all three, in this order
    python experiments/train_converged.py --models resnet18-fmnist

Each model trains with its recipe in ``greedyprune.models.cache.DEFAULT_RECIPES`` (all 60,000 training
images, crop-flip augmentation); a killed run resumes from the cache folder's checkpoint. Writes
``experiments/results/converged_models.json`` (test top-1 on the 10,000 test images, training time).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from greedyprune.io import save_json
from greedyprune.models import default_recipe, trained_model

NAMES = ["mobilenet_v3_small-fmnist", "resnet18-fmnist", "mobilenet_v2-fmnist"]
OUT = Path(__file__).parent / "results" / "converged_models.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(NAMES))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in args.models.split(","):
        model, acc = trained_model(name)
        info = model.greedyprune_info
        results[name] = {"test_top1": acc, "train_seconds": info.get("train_seconds"), "steps": info.get("steps"),
                         "recipe_hash": default_recipe(name).key(), "recipe": info.get("recipe")}
        print(f"{name}: test top-1 {100 * acc:.2f}% after {info.get('train_seconds', 0) / 60:.1f} min", flush=True)
        save_json(results, OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
