"""``random:CxHxW`` -- deterministic Gaussian images whose label is a fixed linear function of them.

For tests and smoke runs that need a dataset of a given shape without files: ``random:3x224x224``.
Labels are ``argmax(W x)`` for a fixed random ``W``, so a model can learn them. Options: ``n`` images
(default 512 for train, 128 otherwise), ``num_classes`` (10), ``seed`` (0; the split changes it).
"""

from __future__ import annotations

import zlib

import torch

from ..errors import UserError
from .registry import register
from .tensor import TensorImageDataset


def _shape(argument: str | None) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in (argument or "1x28x28").lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f"random dataset needs a shape like random:1x28x28, got {argument!r}")
    return shape


@register("random")
def random_images(argument: str | None, split: str = "train", root: str | None = None, n: int | None = None,
                  num_classes: int = 10, seed: int = 0) -> TensorImageDataset:
    shape = _shape(argument)
    n = n if n is not None else (512 if split == "train" else 128)
    weights = torch.randn(num_classes, shape[0] * shape[1] * shape[2], generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(split.encode()))
    images = torch.randn((n, *shape), generator=g)
    labels = (images.flatten(1) @ weights.T).argmax(1)
    return TensorImageDataset(images, labels, [str(i) for i in range(num_classes)], name=f"random:{argument}/{split}")
