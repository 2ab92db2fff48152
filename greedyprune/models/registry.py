"""The model registry: ``build_model(name, num_classes)`` and the spec that rebuilds a model.

Names are either registered one by one (``registered_models``: the Fashion-MNIST models and every
torchvision classification builder) or resolved by a prefix (``registered_prefixes``: ``timm:NAME``
builds ``timm.create_model(NAME)``), so a family with a thousand names needs one resolver, not a thousand
entries.

Every model built here carries ``model.greedyprune_spec = {"name": ..., "num_classes": ...}``;
``build_model(**model_spec(model))`` rebuilds the same architecture (with fresh weights).
"""

from __future__ import annotations

import difflib
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
    dataset: str                       # the dataset it is meant for (a get_dataset spec, or a name needing ":DIR")
    description: str = ""
    drop_keys: tuple[str, ...] = ()    # weight-file key prefixes the builder leaves out (e.g. auxiliary heads)
    source: str = "greedyprune"        # where the architecture comes from: greedyprune, torchvision, timm


# name -> ModelEntry; filled by the model modules
registered_models: dict[str, ModelEntry] = {}
# prefix (e.g. "timm:") -> resolver(rest of the name) -> ModelEntry (raises UserError for unknown names)
registered_prefixes: dict[str, Callable[[str], ModelEntry]] = {}


def register(name: str, num_classes: int, input_shape: tuple[int, int, int], dataset: str, description: str = "",
             drop_keys: tuple[str, ...] = (), source: str = "greedyprune"):
    def wrap(fn: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
        registered_models[name] = ModelEntry(fn, num_classes, input_shape, dataset,
                                             description or (fn.__doc__ or "").strip().split("\n")[0], drop_keys,
                                             source)
        return fn
    return wrap


def _unknown(name: str) -> UserError:
    """One line: the closest names, the greedyprune names, the torchvision ones summarised, the prefixes."""
    close = difflib.get_close_matches(name, sorted(registered_models), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    own = sorted(n for n, e in registered_models.items() if e.source == "greedyprune")
    torchvision = sorted(n for n, e in registered_models.items() if e.source == "torchvision")
    choices = own + ([f"any of the {len(torchvision)} torchvision classification models "
                      f"({', '.join(n for n in ('resnet50', 'vgg16', 'convnext_tiny') if n in torchvision)}, ...: "
                      "torchvision.models.list_models(module=torchvision.models))"] if torchvision else [])
    choices += [f"{prefix}NAME" for prefix in registered_prefixes]
    return UserError(f"unknown model {name!r}{hint}; choose one of: {', '.join(choices)}")


def model_entry(name: str) -> ModelEntry:
    """The entry of a registered name, or of a prefixed one (``timm:resnet18``); one-line error otherwise."""
    if not isinstance(name, str):
        raise UserError(f"a model name must be a string, got {type(name).__name__}")
    if name in registered_models:
        return registered_models[name]
    for prefix, resolve in registered_prefixes.items():
        if name.startswith(prefix):
            return resolve(name[len(prefix):])
    raise _unknown(name)


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
