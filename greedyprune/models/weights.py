"""Loading weights files into models built by :func:`greedyprune.models.build_model`."""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import UserError
from ..io import load_checkpoint

_PREFIXES = ("module.", "_orig_mod.")


def extract_state_dict(obj, path: str | os.PathLike = "file") -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint: a bare state dict, or one under "state_dict"/"model"."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state dict (expected a dict of tensors, or one under 'state_dict' or 'model')")
    state = {}
    for key, value in obj.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = value
    return state


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _more(items: list[str], limit: int = 3, sep: str = ", ") -> str:
    shown = sep.join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def mismatch_message(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """One line describing how ``state`` differs from ``model.state_dict()``, or None when they fit."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} is {_shape(state[k])} in the file but {_shape(v)} in the model"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if not (missing or unexpected or shapes):
        return None
    name = getattr(model, "greedyprune_spec", {}).get("name", type(model).__name__)
    parts = []
    if shapes:
        parts.append(_more(shapes, sep="; "))
    if missing:
        parts.append(f"missing from the file: {_more(missing)}")
    if unexpected:
        parts.append(f"not in the model: {_more(unexpected)}")
    return f"weights do not match {name}: " + "; ".join(parts)


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a torchvision weights file or a checkpoint into ``model`` (in place) and return it.

    Accepts a bare state dict or a dict with a "state_dict" / "model" entry; "module." prefixes (from
    DataParallel/DDP) are stripped. Read with ``weights_only=True``. A mismatch raises one line naming up
    to three missing/unexpected keys and shape differences.
    """
    state = extract_state_dict(load_checkpoint(path), path)
    message = mismatch_message(model, state)
    if message:
        raise UserError(message)
    model.load_state_dict(state, strict=False)  # only num_batches_tracked may be absent (older torchvision files)
    return model
