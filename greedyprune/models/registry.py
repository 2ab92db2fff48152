"""The model registry: ``build_model(name, num_classes)`` and the spec that rebuilds a model.

Every model built here carries ``model.greedyprune_spec = {"name": ..., "num_classes": ...}``;
``build_model(**model_spec(model))`` rebuilds the same architecture (with fresh weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..errors import UserError


@dataclass(frozen=True)
class ModelEntry:
    """How to build one registered model and what it expects."""

    build: Callable[[int], nn.Module]  # num_classes -> model
    num_classes: int                   # default number of classes
    input_shape: tuple[int, int, int]  # (C, H, W) of one input image
    dataset: str                       # the dataset it is meant for (a get_dataset spec)
    description: str = ""


# name -> ModelEntry; filled by the model modules
registered_models: dict[str, ModelEntry] = {}


def register(name: str, num_classes: int, input_shape: tuple[int, int, int], dataset: str, description: str = ""):
    def wrap(fn: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
        registered_models[name] = ModelEntry(fn, num_classes, input_shape, dataset, description or (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return wrap


def model_entry(name: str) -> ModelEntry:
    if name not in registered_models:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(sorted(registered_models))}")
    return registered_models[name]


def build_model(name: str, num_classes: int | None = None) -> nn.Module:
    """A freshly initialised ``name`` with ``num_classes`` outputs (the model's default when None)."""
    entry = model_entry(name)
    classes = entry.num_classes if num_classes is None else int(num_classes)
    if classes < 1:
        raise UserError(f"num_classes must be at least 1, got {num_classes}")
    model = entry.build(classes)
    model.greedyprune_spec = {"name": name, "num_classes": classes}
    return model


def model_spec(model: nn.Module) -> dict:
    """The ``{"name", "num_classes"}`` dict that :func:`build_model` rebuilds ``model`` from."""
    spec = getattr(model, "greedyprune_spec", None)
    if spec is None:
        raise UserError(f"this {type(model).__name__} was not made by greedyprune.models.build_model, so it has no spec; "
                        "build it with build_model(name)")
    return dict(spec)


def input_shape(name_or_model: str | nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` of one input image for a model name or a model built by :func:`build_model`."""
    name = name_or_model if isinstance(name_or_model, str) else model_spec(name_or_model)["name"]
    return model_entry(name).input_shape
