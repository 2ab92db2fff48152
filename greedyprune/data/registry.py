"""The dataset registry and :func:`get_dataset`, the one way every part of greedyprune gets data.

A spec is ``"name"`` or ``"name:argument"`` (for instance ``"fashion-mnist"`` or
``"imagefolder:/data/imagenet"``). Each registered factory is called as
``factory(argument, split, root, **options)`` and returns a ``torch.utils.data.Dataset`` whose items
are ``(image_tensor, int_label)`` and which has a ``classes`` list.
"""

from __future__ import annotations

from typing import Callable

from torch.utils.data import Dataset

from ..errors import UserError

DatasetFactory = Callable[..., Dataset]

# name -> factory(argument: str | None, split: str, root: str | None, **options) -> Dataset
registered_datasets: dict[str, DatasetFactory] = {}


def register(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    def wrap(fn: DatasetFactory) -> DatasetFactory:
        registered_datasets[name] = fn
        return fn
    return wrap


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"imagefolder:/x"`` -> ``("imagefolder", "/x")``; ``"fashion-mnist"`` -> ``("fashion-mnist", None)``."""
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"dataset spec must be a non-empty string, got {spec!r}; "
                        f"choose one of: {', '.join(sorted(registered_datasets))}")
    name, sep, argument = spec.strip().partition(":")
    return name, (argument if sep else None)


def get_dataset(spec: str, split: str = "train", root: str | None = None, **options) -> Dataset:
    """The dataset named by ``spec`` for ``split`` ("train", "test", "val", ... as the dataset allows).

    ``root`` is a folder to look in first (for Fashion-MNIST; ``$GREEDYPRUNE_DATA`` otherwise).
    Extra ``options`` go to the factory (e.g. ``skip_bad_images=True`` for ``imagefolder``).
    """
    name, argument = parse_spec(spec)
    if name not in registered_datasets:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(registered_datasets))}")
    return registered_datasets[name](argument, split, root, **options)


def num_classes(dataset: Dataset) -> int:
    """Number of classes of a dataset made by :func:`get_dataset` (or a ``Subset`` of one)."""
    inner = dataset
    while hasattr(inner, "dataset") and not hasattr(inner, "classes"):
        inner = inner.dataset
    classes = getattr(inner, "classes", None)
    if classes is None:
        raise UserError(f"cannot tell how many classes {type(dataset).__name__} has; pass num_classes explicitly")
    return len(classes)
