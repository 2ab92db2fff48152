"""Safe file I/O: atomic writes (temp file + rename) and checkpoint loading that never unpickles code.

Every file greedyprune writes goes through :func:`atomic_write`, so an interrupted run leaves either
the old file or the complete new one, never half of one.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import UserError


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, on failure delete it."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create output folder {directory}: {err.strerror}; choose a writable --out") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise UserError(f"output path {path} is not writable ({err.strerror}); choose a writable --out") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    """Pretty JSON through :func:`atomic_write`."""
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``torch.save`` file with ``weights_only=True``: tensors and plain containers only.

    Raises :class:`UserError` (one line) when the file is missing, truncated, not a checkpoint,
    or holds pickled code that ``weights_only`` refuses to run.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder, not a file; give the .pt/.pth file inside it")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(Unsupported global: GLOBAL [\w.]+|Unsupported operand \d+)", str(err))
        detail = f" ({found.group(1)})" if found else ""
        raise UserError(
            f"refusing to load {path}: it holds pickled objects other than tensors{detail}, which could run code; "
            "only plain state-dict checkpoints are accepted"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a readable PyTorch checkpoint (truncated or another format: {reason})") from None


# --------------------------------------------------------------------------- pruned models
PRUNED_FORMAT = "greedyprune-model/1"


def save(path: str | os.PathLike, model: torch.nn.Module, report: Any = None) -> None:
    """Save a (pruned) model as plain tensors + its spec + report; JSON report written beside it.

    The file holds ``{"format", "spec", "state_dict", "report"}``: no pickled modules, so it loads
    with ``weights_only=True``. ``spec`` (``model.greedyprune_spec``, e.g. ``{"name": "resnet50",
    "num_classes": 1000}``) tells :func:`load` which architecture to rebuild before adopting shapes.
    """
    from .paths import report_path
    report_dict = report.to_dict() if hasattr(report, "to_dict") else report
    spec = getattr(model, "greedyprune_spec", None)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    report_text = json.dumps(report_dict, default=_json_default) if report_dict is not None else None
    save_torch({"format": PRUNED_FORMAT, "spec": spec, "state_dict": state, "report_json": report_text}, path)
    if report_dict is not None:
        save_json(report_dict, report_path(path))


def load(path: str | os.PathLike, model: torch.nn.Module | None = None, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild a model saved by :func:`save` (or a ``{"spec", "state_dict"}`` training checkpoint).

    The architecture comes from the saved spec through :func:`greedyprune.models.build_model`, or
    from ``model`` (an unpruned instance) for architectures without a spec; its layers are resized
    to the saved shapes, then the weights are loaded strictly. Returns the model in eval mode.
    """
    from .surgery import adopt_shapes
    data = load_checkpoint(path, map_location)
    if not isinstance(data, dict) or "state_dict" not in data:
        raise UserError(f"{path} is not a greedyprune model file (no state_dict); use greedyprune.models.load_weights "
                        "for plain weight files")
    if model is None:
        spec = data.get("spec")
        if not spec:
            raise UserError(f"{path} records no architecture spec; pass model= (an unpruned instance) to load it")
        from .models import build_model
        model = build_model(spec["name"], num_classes=spec.get("num_classes"))
    adopt_shapes(model, data["state_dict"])
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as err:
        first = [line.strip() for line in str(err).splitlines() if line.strip()][1:2] or [str(err)[:150]]
        raise UserError(f"{path} does not match the architecture: {first[0][:200]}") from None
    if data.get("spec"):
        model.greedyprune_spec = data["spec"]
    return model.eval()


def load_report(path: str | os.PathLike) -> dict | None:
    """The report stored inside a model file (or None)."""
    data = load_checkpoint(path)
    text = data.get("report_json") if isinstance(data, dict) else None
    return json.loads(text) if text else None
