"""Path helpers. Every file location the library uses is decided here."""

import os
from pathlib import Path

from .errors import UserError


def cache_root() -> Path:
    """``$GREEDYPRUNE_CACHE``, else ``~/.cache/greedyprune``; set but empty, or a file: a one-line error."""
    value = os.environ.get("GREEDYPRUNE_CACHE")
    if value is None:
        return Path.home() / ".cache" / "greedyprune"
    if not value.strip():
        raise UserError("$GREEDYPRUNE_CACHE is set but empty; unset it (the default is ~/.cache/greedyprune) or set "
                        "it to a folder")
    path = Path(value).expanduser()
    if os.path.lexists(path) and not path.is_dir():
        raise UserError(f"$GREEDYPRUNE_CACHE={value} is not a folder; set it to a folder (created when missing) or "
                        "unset it")
    return path


def model_cache(name: str) -> Path: return cache_root() / "models" / name
def checkpoint_path(run_dir: Path) -> Path: return Path(run_dir) / "checkpoint.pt"
def final_model_path(run_dir: Path) -> Path: return Path(run_dir) / "model.pt"
def report_path(model_path: Path) -> Path: return Path(os.fspath(model_path) + ".json")  # NAME.pt -> NAME.pt.json
def results_dir() -> Path: return Path(__file__).resolve().parent.parent / "experiments" / "results"
