"""The pruned-model file format: :func:`save`, :func:`load`, :func:`load_report`.

A model file is a ``torch.save`` dict of plain data (no pickled modules; it loads with
``weights_only=True``): ``{"format", "spec", "state_dict", "report_json", "class_name"}``. The spec
(:mod:`greedyprune.archspec`) names the architecture: a registry name, a torchvision builder or a timm
model with plain keyword arguments; :func:`load` rebuilds it on the ``meta`` device (no memory, no
initialisation), resizes its layers to the saved tensors (:func:`~greedyprune.surgery.adopt_shapes`) and
assigns them. File safety (atomic writes, refusing pickled code) is :mod:`greedyprune.io`'s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .io import _json_default, load_checkpoint, save_json, save_torch

PRUNED_FORMAT = "greedyprune-model/1"


def save(path: str | os.PathLike, model: torch.nn.Module, report: Any = None) -> None:
    """Save a (pruned) model as plain tensors + its spec + report; JSON report written beside it.

    The two files are written one after the other (each atomically): an older ``NAME.json`` is removed
    first, then ``NAME.pt`` is written, then the new ``NAME.json``. A kill between the writes leaves the
    new model without a JSON report -- never beside the report of another run -- and the model file
    holds the same report (:func:`load_report`, ``greedyprune info``).

    The file holds ``{"format", "spec", "state_dict", "report"}``: no pickled modules, so it loads
    with ``weights_only=True``. ``spec`` (``model.greedyprune_spec``, set by the pruner from the original
    model; else :func:`~greedyprune.archspec.architecture_spec` of ``model``) tells :func:`load` which
    architecture to rebuild before adopting shapes.
    """
    from .archspec import architecture_spec
    from .paths import report_path
    report_dict = report.to_dict() if hasattr(report, "to_dict") else report
    spec = architecture_spec(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    report_text = json.dumps(report_dict, default=_json_default) if report_dict is not None else None
    if report_dict is not None and not Path(report_path(path)).is_dir():  # a folder there fails below, in one line
        Path(report_path(path)).unlink(missing_ok=True)  # no stale report beside the new model, even after a kill
    save_torch({"format": PRUNED_FORMAT, "spec": spec, "state_dict": state, "report_json": report_text,
                "class_name": f"{type(model).__module__}.{type(model).__qualname__}"}, path)
    if report_dict is not None:
        try:
            save_json(report_dict, report_path(path))
        except BaseException:  # the pair is one output: no model file without its report
            Path(path).unlink(missing_ok=True)
            raise


def load(path: str | os.PathLike, model: torch.nn.Module | None = None, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild a model saved by :func:`save` (or a ``{"spec", "state_dict"}`` training checkpoint).

    The architecture comes from the saved spec (:func:`greedyprune.archspec.build_from_spec`), or from
    ``model`` (an unpruned instance) for architectures without a spec; its layers are resized to the
    saved shapes, then the weights are loaded strictly. Returns the model in eval mode.
    """
    from .archspec import check_spec
    data = load_checkpoint(path, map_location)
    if not isinstance(data, dict) or "state_dict" not in data:
        raise UserError(f"{path} is not a greedyprune model file (no state_dict); use greedyprune.models.load_weights "
                        "for plain weight files")
    state, spec = data["state_dict"], data.get("spec")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{path} is not a valid greedyprune model file: its state_dict is not a dict of named tensors")
    if spec is not None and check_spec(spec):
        raise UserError(f"{path} is not a valid greedyprune model file: its spec {str(spec)[:80]!r} is "
                        f"{check_spec(spec)}")
    if model is None and not spec:
        kind = data.get("class_name") if isinstance(data.get("class_name"), str) else "model"
        raise UserError(f"{path} holds a {kind} that greedyprune cannot rebuild by name (not a registry, torchvision "
                        "or timm model); pass an unpruned instance: greedyprune.load(path, model=YourModel(...))")
    try:
        model = _rebuilt(spec, state, map_location) if model is None else _adopted(model, state)
    except (RuntimeError, ValueError, IndexError, KeyError, TypeError, AttributeError) as err:
        if isinstance(err, UserError):
            raise
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = (lines[1:2] or lines[:1] or [type(err).__name__])[0][:200]
        raise UserError(f"{path} does not match the architecture: {detail}") from None
    if spec:
        model.greedyprune_spec = spec
    return model.eval()


def _adopted(model: torch.nn.Module, state: dict[str, torch.Tensor], assign: bool = False) -> torch.nn.Module:
    from collections import OrderedDict

    from .surgery import adopt_shapes
    adopt_shapes(model, state)
    state = OrderedDict(state)  # with the fresh model's per-module versions (MNASNet's loader reads them)
    state._metadata = getattr(model.state_dict(), "_metadata", None)  # type: ignore[attr-defined]
    model.load_state_dict(state, strict=True, assign=assign)
    return model


def _rebuilt(spec: dict, state: dict[str, torch.Tensor], map_location: str) -> torch.nn.Module:
    """The spec's architecture built on the meta device and given the saved tensors (no initialisation).

    A model holding tensors outside its state dict (non-persistent buffers) is built normally instead."""
    from .archspec import build_from_spec, skip_init
    with skip_init():
        model = _adopted(build_from_spec(spec, device="meta"), state, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        model = _adopted(build_from_spec(spec), state)
    return model.to(map_location)


def load_report(path: str | os.PathLike) -> dict | None:
    """The report stored inside a model file (or None)."""
    data = load_checkpoint(path)
    text = data.get("report_json") if isinstance(data, dict) else None
    if not text:
        return None
    try:
        report = json.loads(text)
    except (TypeError, ValueError):
        report = None
    if not isinstance(report, dict):
        raise UserError(f"{path} holds a malformed pruning report (not a JSON object); re-save the model")
    return report
