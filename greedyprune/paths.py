"""One-line path helpers. Every file location the library uses is decided here."""

import os
from pathlib import Path


def cache_root() -> Path: return Path(os.environ.get("GREEDYPRUNE_CACHE", Path.home() / ".cache" / "greedyprune"))
def model_cache(name: str) -> Path: return cache_root() / "models" / name
def checkpoint_path(run_dir: Path) -> Path: return Path(run_dir) / "checkpoint.pt"
def final_model_path(run_dir: Path) -> Path: return Path(run_dir) / "model.pt"
def report_path(model_path: Path) -> Path: return Path(model_path).with_suffix(".json")
def results_dir() -> Path: return Path(__file__).resolve().parent.parent / "experiments" / "results"
