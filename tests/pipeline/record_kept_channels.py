"""Record the kept channels of every group for a fixed set of prune runs (tests/pipeline/kept_channels.json).

Run once on main's pipeline *before* the traced pipeline replaced it (commit 1023cd8); the test
``test_kept_channels.py`` then checks that ``streams=False`` prunes exactly as that pipeline did:
same groups, same kept channels, for the same budget and seed. Small inputs so it is fast.

    PYTHONPATH=$PWD python tests/pipeline/record_kept_channels.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import greedyprune  # noqa: E402
from tests.pipeline.conftest import mlp, small_cnn, tv_model  # noqa: E402

MODELS = {
    "resnet18": lambda: tv_model("resnet18"),
    "resnet50": lambda: tv_model("resnet50"),
    "mobilenet_v2": lambda: tv_model("mobilenet_v2"),
    "mobilenet_v3_small": lambda: tv_model("mobilenet_v3_small"),
    "mobilenet_v3_large": lambda: tv_model("mobilenet_v3_large"),
    "mlp": mlp,
    "small_cnn": small_cnn,
}
# (model, method, budget, precision): float64 runs are the robust core (no float32 near-ties); a few
# float32 runs check the default path too.
CASES = [(name, "reoptimized", {"keep": 0.5}, "float64") for name in MODELS] + \
        [(name, "reoptimized", {"flops": 0.5}, "float64") for name in MODELS] + \
        [(name, method, {"keep": 0.5}, "float64") for name in ("resnet18", "mobilenet_v3_small", "small_cnn")
         for method in ("magnitude", "random", "uniform")] + \
        [(name, "reoptimized", {"flops": 0.5}, "float32") for name in ("resnet18", "mobilenet_v2", "small_cnn")]
FIXTURE = Path(__file__).with_name("kept_channels.json")


def inputs(name: str, n: int = 8, seed: int = 0, size: int = 32) -> torch.Tensor:
    """``n`` seeded random images for model ``name`` (torchvision models: 3 x ``size`` x ``size``)."""
    g = torch.Generator().manual_seed(seed)
    if name == "mlp":
        return torch.randn(n, 1, 8, 8, generator=g)
    if name == "small_cnn":
        return torch.randn(n, 1, 16, 16, generator=g)
    return torch.randn(n, 3, size, size, generator=g)


def run_case(name: str, method: str, budget: dict, precision: str) -> dict[str, list[int]]:
    """{group name: kept channels} of one prune run (float64 runs use a float64 model)."""
    model, x = MODELS[name](), inputs(name)
    if precision == "float64":
        model, x = model.double(), x.double()
    _, report = greedyprune.prune(model, [x[:4], x[4:]], method, precision=precision, seed=3, refit=None,
                                  progress=False, **budget)
    return {g.name: (g.kept if g.kept is not None else list(range(g.channels_before))) for g in report.groups}


def main() -> None:
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    cases = []
    for name, method, budget, precision in CASES:
        kept = run_case(name, method, budget, precision)
        cases.append({"model": name, "method": method, "budget": budget, "precision": precision, "kept": kept})
        print(name, method, budget, precision, {k: len(v) for k, v in list(kept.items())[:3]}, flush=True)
    FIXTURE.write_text(json.dumps({"recorded_at": commit, "cases": cases}, indent=None) + "\n")


if __name__ == "__main__":
    main()
