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
from typing import Any

import torch

from .errors import UserError
from .commit import finish_interrupted
from .io import _json_default, load_checkpoint

PRUNED_FORMAT = "greedyprune-model/1"


def save(path: str | os.PathLike, model: torch.nn.Module, report: Any = None) -> None:
    """Save a (pruned) model as plain tensors + its spec + report; the JSON report beside it as ``NAME.pt.json``.

    Both files are checked before anything is written (:func:`check_model_outputs`), staged as complete
    temporary files, then committed by renames (:class:`greedyprune.commit.OutputSet`): a failure leaves an
    earlier ``NAME.pt`` / ``NAME.pt.json`` exactly as they were, and a kill between the two renames is
    completed by the next greedyprune command that reads or writes them. A report that could not be read
    back (not JSON-serialisable, or not a well-formed pruning report) is refused before writing.

    The file holds ``{"format", "spec", "state_dict", "report_json", "class_name"}``: no pickled modules,
    so it loads with ``weights_only=True``. ``spec`` (``model.greedyprune_spec``, set by the pruner from the
    original model; else :func:`~greedyprune.archspec.architecture_spec` of ``model``) tells :func:`load`
    which architecture to rebuild before adopting shapes.
    """
    from .commit import OutputSet
    with OutputSet() as outputs:
        stage_model(outputs, path, model, report)
        outputs.commit()


def stage_model(outputs, path: str | os.PathLike, model: torch.nn.Module, report: Any = None, flag: str | None = None,
                ) -> None:
    """Declare and stage the model file ``path`` and its report ``path.json`` in ``outputs`` (an
    :class:`~greedyprune.commit.OutputSet`; committed by the caller with the rest of its files)."""
    from .paths import report_path
    report_dict = report.to_dict() if hasattr(report, "to_dict") else report
    from .archspec import architecture_spec
    report_text = None if report_dict is None else readable_report_text(report_dict)
    spec = architecture_spec(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    outputs.file(path, flag=flag)
    if report_dict is not None:
        outputs.file(report_path(path), flag=flag, role=f"the report {report_path(path)}")
    outputs.save_torch({"format": PRUNED_FORMAT, "spec": spec, "state_dict": state, "report_json": report_text,
                        "class_name": f"{type(model).__module__}.{type(model).__qualname__}"}, path)
    if report_dict is not None:
        outputs.save_json(report_dict, report_path(path))


def check_model_outputs(path: str | os.PathLike, flag: str = "--out") -> None:
    """Before any work: the model file ``path`` and its report ``path.json`` can both be written (one-line errors)."""
    from .commit import OutputSet
    from .paths import report_path
    outputs = OutputSet()
    outputs.file(path, flag)
    outputs.file(report_path(path), flag, role=f"{path}: its report {report_path(path)}")


def readable_report_text(report: Any) -> str:
    """``report`` as JSON text, refused (one line) unless :func:`parse_report` reads it back."""
    try:
        text = json.dumps(report, default=_json_default)
    except (TypeError, ValueError, RecursionError) as err:
        raise UserError(f"the report cannot be saved: it is not JSON data ({str(err)[:100]}); "
                        "nothing was written") from None
    try:
        parse_report(text, "the report")
    except UserError as err:
        raise UserError(f"the report cannot be saved: it could not be read back ({err}); nothing was written") from None
    return text


def parse_report(text: str, path: Any) -> dict:
    """A stored report: a JSON object; when it is a pruning report (it has ``groups``) it must render as one."""
    try:
        report = json.loads(text)
    except RecursionError:
        raise UserError(f"{path} holds a pruning report nested too deeply to read; re-save the model") from None
    except (TypeError, ValueError):
        report = None
    if not isinstance(report, dict):
        raise UserError(f"{path} holds a malformed pruning report (not a JSON object); re-save the model")
    if "groups" in report:
        from .report import PruneReport
        try:
            PruneReport.from_dict(report).table()
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as err:
            detail = " ".join(str(err).split())[:100]
            raise UserError(f"{path} holds a malformed pruning report ({type(err).__name__}: {detail}); "
                            "re-save the model") from None
    return report


def load(path: str | os.PathLike, model: torch.nn.Module | None = None, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild a model saved by :func:`save` (or a ``{"spec", "state_dict"}`` training checkpoint).

    The architecture comes from the saved spec (:func:`greedyprune.archspec.build_from_spec`), or from
    ``model`` (an unpruned instance) for architectures without a spec; its layers are resized to the
    saved shapes, then the weights are loaded strictly. Returns the model in eval mode.
    """
    from .archspec import check_spec as spec_problem
    finish_interrupted(path)  # a kill between the renames of an earlier save: complete it first
    data = load_checkpoint(path, map_location)
    if not isinstance(data, dict) or "state_dict" not in data:
        raise UserError(f"{path} is not a greedyprune model file (no state_dict); use greedyprune.models.load_weights "
                        "for plain weight files")
    state, spec = data["state_dict"], data.get("spec")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{path} is not a valid greedyprune model file: its state_dict is not a dict of named tensors")
    if spec is not None and spec_problem(spec):
        raise UserError(f"{path} is not a valid greedyprune model file: its spec {str(spec)[:80]!r} is "
                        f"{spec_problem(spec)}")
    check_spec(spec, path)
    if model is None and not spec:
        kind = data.get("class_name") if isinstance(data.get("class_name"), str) else "model"
        raise UserError(f"{path} holds a {kind} that greedyprune cannot rebuild by name (not a registry, torchvision "
                        "or timm model); pass an unpruned instance: greedyprune.load(path, model=YourModel(...))")
    if model is not None:
        check_state_fits(model, state, path, spec)
    try:
        model = _rebuilt(spec, state, map_location, path) if model is None else _adopted(model, state)
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


def _rebuilt(spec: dict, state: dict[str, torch.Tensor], map_location: str, path: Any = "file") -> torch.nn.Module:
    """The spec's architecture built on the meta device and given the saved tensors (no initialisation).

    A model holding tensors outside its state dict (non-persistent buffers) is built normally instead."""
    from .archspec import build_from_spec, skip_init
    with skip_init():
        model = build_from_spec(spec, device="meta")
        check_state_fits(model, state, path, spec)
        model = _adopted(model, state, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        model = _adopted(build_from_spec(spec), state)
    return model.to(map_location)


def load_report(path: str | os.PathLike) -> dict | None:
    """The report stored inside a model file (or None)."""
    finish_interrupted(path)
    data = load_checkpoint(path)
    text = data.get("report_json") if isinstance(data, dict) else None
    if not text:
        return None
    return parse_report(text, path)


MAX_CLASSES = 100_000  # a spec asking for more outputs is refused before anything is allocated


def check_spec(spec: Any, path: Any) -> None:
    """A stored architecture spec is ``None`` or ``{"name": str, "num_classes": int in 1..MAX_CLASSES}``."""
    if spec is None:
        return
    if not (isinstance(spec, dict) and isinstance(spec.get("name"), str)
            and isinstance(spec.get("num_classes", 0), (int, type(None)))):
        raise UserError(f"{path} is not a valid greedyprune model file: its spec {str(spec)[:80]!r} is not "
                        "{'name': str, 'num_classes': int}")
    classes = spec.get("num_classes")
    if classes is not None and not 1 <= classes <= MAX_CLASSES:
        raise UserError(f"{path} is not a valid greedyprune model file: its spec asks for {classes:,} classes "
                        f"(at most {MAX_CLASSES:,}); the file was edited or damaged: re-save it")


def check_state_fits(model: torch.nn.Module, state: dict, path: Any, spec: Any = None) -> None:
    """The stored tensors belong to ``model``'s architecture: the same names, and per tensor the same number of
    dimensions and kernel size (pruning changes only channel counts and may add biases)."""
    expected = model.state_dict()
    name = (spec or {}).get("name") or type(model).__name__
    wrong = [f"{k} has {tuple(v.shape)} but {name} has {tuple(expected[k].shape)}" for k, v in state.items()
             if k in expected and (v.ndim != expected[k].ndim or v.shape[2:] != expected[k].shape[2:])]
    weights = {k[:-len("weight")] for k in expected if k.endswith("weight")}
    unexpected = [k for k in state if k not in expected and not (k.endswith(".bias") and k[:-len("bias")] in weights)]
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if not (wrong or unexpected or missing):
        return
    def listed(items: list[str], sep: str = ", ") -> str:
        return sep.join(items[:2]) + (f" (+{len(items) - 2} more)" if len(items) > 2 else "")
    parts = ([listed(wrong, "; ")] if wrong else []) + ([f"missing: {listed(missing)}"] if missing else []) \
        + ([f"not in {name}: {listed(unexpected)}"] if unexpected else [])
    raise UserError(f"{path} does not hold a {name} (as its spec says): {'; '.join(parts)}; the spec names another "
                    "architecture or the file was edited: re-save it")
