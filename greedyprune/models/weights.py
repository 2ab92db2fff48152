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


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a weights file or checkpoint (``weights_only=True``; prefixes stripped)."""
    return extract_state_dict(load_checkpoint(path), path)


def _dropped(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the entries the model's builder leaves out on purpose (``ModelEntry.drop_keys``)."""
    from .registry import model_entry
    name = getattr(model, "greedyprune_spec", {}).get("name")
    drop = model_entry(name).drop_keys if name else ()
    if not drop:
        return state
    expected = model.state_dict()
    return {k: v for k, v in state.items() if k in expected or not k.startswith(drop)}


def classes_in_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, str] | None:
    """``(n, key)`` when ``state`` fits ``model`` except for its class count: the file has ``n`` classes.

    ``model`` was built with ``c`` classes (its spec). The file differs only in the classifier when every
    difference is a shape difference whose first dimension is ``c`` in the model and one same ``n != c``
    in the file, the other dimensions equal (``fc.weight (2, 512)`` vs ``(1000, 512)``, ``fc.bias``); then
    ``n`` is the file's class count and ``key`` the first such entry. None otherwise (fits, or differs
    elsewhere).
    """
    classes = getattr(model, "greedyprune_spec", {}).get("num_classes")
    expected = model.state_dict()
    state = _dropped(model, state)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if classes is None or missing or any(k not in expected for k in state):
        return None
    differ = [k for k, v in expected.items() if k in state and state[k].shape != v.shape]
    found = set()
    for key in differ:
        want, have = expected[key].shape, state[key].shape
        if len(want) != len(have) or not want or want[0] != classes or want[1:] != have[1:]:
            return None
        found.add(have[0])
    if len(found) != 1:
        return None
    return int(found.pop()), differ[0]


def load_weights(model: nn.Module, path: str | os.PathLike, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Load a torchvision weights file or a checkpoint into ``model`` (in place) and return it.

    Accepts a bare state dict or a dict with a "state_dict" / "model" entry; "module." prefixes (from
    DataParallel/DDP) are stripped. Read with ``weights_only=True`` (or pass ``state``, already read by
    :func:`read_weights`). Entries the model's builder leaves out on purpose (GoogLeNet's auxiliary
    classifiers) are dropped. A mismatch raises one line naming up to three missing/unexpected keys and
    shape differences; when only the class count differs, it says which ``num_classes`` the file has.
    """
    state = _dropped(model, read_weights(path) if state is None else state)
    message = mismatch_message(model, state)
    if message:
        found = classes_in_weights(model, state)
        if found:
            message += f"; the file has {found[0]} classes ({found[1]}): build the model with num_classes={found[0]}"
        raise UserError(message)
    model.load_state_dict(state, strict=False)  # only num_batches_tracked may be absent (older torchvision files)
    return model
