"""Defaults that follow the model: its dataset (``--data``) and its input size.

A model knows what it expects (:class:`greedyprune.models.ModelEntry`): the Fashion-MNIST models
default to ``fashion-mnist``; the ImageNet-shaped ones (torchvision, ``timm:``) to ImageNet-style
folders, which need a path. Without ``--data`` those are calibrated / evaluated on synthetic
``random:CxHxW`` images of the model's input shape, with a one-line warning: enough to try the pipeline
(sizes, FLOPs, latency), meaningless for a trained model's accuracy. ``train`` refuses instead (training
on noise is never what was meant). Image folders are read at the model's input size (299 for
``inception_v3``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from torch import nn

from ..errors import UserError

# dataset names whose spec needs an argument (a folder): no default can be made up for them
NEEDS_A_PATH = ("imagefolder",)
RANDOM_CLASSES = 10  # the random: dataset's default number of label classes


@dataclass(frozen=True)
class ModelInputs:
    """What a model expects: its name, dataset spec and ``(C, H, W)`` input shape."""

    name: str
    dataset: str
    input_shape: tuple[int, int, int]

    @property
    def synthetic(self) -> str:
        """``random:CxHxW`` at the model's input shape."""
        return "random:" + "x".join(str(s) for s in self.input_shape)


def model_inputs(model: nn.Module) -> ModelInputs | None:
    """The :class:`ModelInputs` of a model built or loaded by greedyprune (None when it records no name)."""
    from ..models import model_entry
    spec = getattr(model, "greedyprune_spec", None)
    if not spec or not isinstance(spec.get("name"), str):
        return None
    entry = model_entry(spec["name"])
    return ModelInputs(spec["name"], entry.dataset, tuple(entry.input_shape))


def _needs_path(dataset: str) -> bool:
    name, _, argument = dataset.partition(":")
    return name in NEEDS_A_PATH and not argument


def resolve_data(data: str | None, model: nn.Module, purpose: str = "calibrating") -> str:
    """``--data`` as given, else the model's dataset (synthetic images, with a warning, for ImageNet shapes)."""
    if data is not None:
        return data
    inputs = model_inputs(model)
    if inputs is None:
        raise UserError("--data is required: this model file records no architecture name to take a default "
                        "dataset from; e.g. --data imagefolder:DIR or --data random:3x224x224")
    if not _needs_path(inputs.dataset):
        return inputs.dataset
    print(f"greedyprune: warning: no --data: {purpose} {inputs.name} on synthetic {inputs.synthetic} images "
          f"(random noise: fine for trying the pipeline, meaningless for a trained model's accuracy); "
          f"pass --data {inputs.dataset}:DIR", file=sys.stderr)
    return inputs.synthetic


def train_data(data: str | None, name: str | None) -> str:
    """``--data`` for ``train``: as given, else the model's dataset; one-line error when that needs a folder."""
    from ..models import model_entry
    if data is not None:
        return data
    if name is None:
        raise UserError("--data is required: this model file records no architecture name to take a default "
                        "dataset from; e.g. --data imagefolder:DIR")
    entry = model_entry(name)
    if _needs_path(entry.dataset):
        shape = "x".join(str(s) for s in entry.input_shape)
        raise UserError(f"--data is required to train {name}: --data {entry.dataset}:DIR "
                        f"(or --data random:{shape} to try it on noise)")
    return entry.dataset


def data_options(data: str, model: nn.Module | str, fit_labels: bool = False) -> dict:
    """Dataset-factory options that make ``data`` fit a model (or model name).

    An image folder is read at the model's input size (``image_size``). With ``fit_labels`` (the
    synthetic data ``eval`` defaults to), ``random:`` images get labels the model can output
    (``num_classes`` = the model's classes, at most the dataset's default 10). Nothing for other data.
    """
    from ..models import model_entry
    if isinstance(model, str):
        entry = model_entry(model)
        inputs, classes = ModelInputs(model, entry.dataset, tuple(entry.input_shape)), entry.num_classes
    else:
        inputs, classes = model_inputs(model), getattr(model, "greedyprune_spec", {}).get("num_classes")
    name = data.strip().partition(":")[0]
    if name == "random" and classes and fit_labels:
        return {"num_classes": min(int(classes), RANDOM_CLASSES)}
    if inputs is None or name != "imagefolder":
        return {}
    channels, height, width = inputs.input_shape
    return {"image_size": height} if channels == 3 and height == width else {}
