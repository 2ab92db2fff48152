"""The model cache holds what it claims: each entry's SHA-256 is recorded and checked, and its content
(spec, weights, accuracy) is checked against the name it is cached under.

An entry is ``model.pt`` (``{"spec", "state_dict", "recipe", "test_acc", ...}``), ``model.pt.json`` (the
same without the weights) and ``model.pt.sha256`` (``{"sha256", "size"}`` of ``model.pt``), committed
together (:class:`greedyprune.commit.OutputSet`). Entries written before hashes were recorded have no
``model.pt.sha256``: on first load their content is checked and the hash recorded (when the cache is
writable), so they are neither retrained nor trusted blindly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
from pathlib import Path

import torch
from torch import nn

from ..commit import OutputSet, finish_interrupted
from ..errors import UserError
from ..io import check_regular_file, file_sha256, load_checkpoint, read_json
from ..modelfile import check_spec
from ..outputs import check_output_folder
from ..paths import cache_root, report_path
from .registry import build_model
from .weights import mismatch_message


def hash_path(model_path: Path) -> Path:
    return Path(f"{model_path}.sha256")


def check_cache_writable(folder: Path) -> None:
    """A new entry can be written under ``folder`` (one line naming $GREEDYPRUNE_CACHE otherwise)."""
    root = cache_root()
    check_output_folder(folder, name=f"the model cache {root}", fix="set $GREEDYPRUNE_CACHE to a writable folder")


def write_entry(path: Path, entry: dict, info: dict) -> None:
    """Commit ``model.pt`` (``entry``), ``model.pt.json`` (``info``) and ``model.pt.sha256`` as one output."""
    buffer = io.BytesIO()
    torch.save(entry, buffer)
    data = buffer.getvalue()
    with OutputSet() as outputs:
        for target in (path, report_path(path), hash_path(path)):
            outputs.file(target, flag=None)
        with outputs.open(path) as handle:
            handle.write(data)
        outputs.save_json(info, report_path(path))
        outputs.save_json({"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}, hash_path(path))
        outputs.commit()


def load_entry(name: str, path: Path) -> tuple[nn.Module, dict]:
    """The cached ``name`` at ``path`` as ``(model, saved dict)``, after checking hash and content."""
    finish_interrupted(path)  # an entry whose commit was interrupted between renames is completed first

    def damaged(reason: str) -> UserError:
        return UserError(f"the cached model {path} is damaged or was changed ({reason}); delete {path.parent} "
                         "to retrain it (greedyprune trains it again on the next use)")

    recorded = _recorded_hash(path, damaged)
    check_regular_file(path, "cached model")
    digest = file_sha256(path)
    if recorded is not None and recorded != digest:
        raise damaged(f"its SHA-256 {digest[:12]}... is not the {recorded[:12]}... recorded when it was written")
    saved = load_checkpoint(path)
    model = _checked_model(name, saved, path, damaged)
    if recorded is None:  # an entry from before hashes were recorded: record it now (if the cache is writable)
        with contextlib.suppress(UserError, OSError):
            with OutputSet() as outputs:
                outputs.file(hash_path(path), flag=None)
                outputs.save_json({"sha256": digest, "size": path.stat().st_size, "recorded": "on first load"},
                                  hash_path(path))
                outputs.commit()
    return model, saved


def _recorded_hash(path: Path, damaged) -> str | None:
    record_path = hash_path(path)
    if not record_path.exists() and not record_path.is_symlink():
        return None
    try:
        record = read_json(record_path, "hash record", max_bytes=4096)
    except UserError as err:
        raise damaged(str(err).split(";")[0]) from None
    value = record.get("sha256") if isinstance(record, dict) else None
    if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise damaged(f"its hash record {record_path.name} holds no SHA-256")
    return value


def _checked_model(name: str, saved, path: Path, damaged) -> nn.Module:
    """``name``'s architecture with the entry's weights, or a one-line refusal naming what is wrong."""
    if not isinstance(saved, dict):
        raise damaged(f"it holds a {type(saved).__name__}, not a cache entry")
    spec = saved.get("spec")
    if not isinstance(spec, dict) or spec.get("name") != name:
        raise damaged(f"its spec {str(spec)[:60]!r} does not name {name}")
    try:
        check_spec(spec, path)
    except UserError as err:
        raise damaged(str(err).split(": ", 1)[-1].split(";")[0]) from None
    state = saved.get("state_dict")
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                           for k, v in state.items()):
        raise damaged("its state_dict is not a dict of named tensors")
    acc = saved.get("test_acc")
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not (math.isfinite(acc) and 0 <= acc <= 1):
        raise damaged(f"its test accuracy {str(acc)[:20]} is not a fraction in [0, 1]")
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, num_classes=spec.get("num_classes"))
    message = mismatch_message(model, state)
    if message:
        raise damaged(message[:300])
    model.load_state_dict(state, strict=False)  # only num_batches_tracked may be absent
    return model
