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


MAX_VALUES_PER_IMAGE = 2**24  # 16,777,216 (e.g. 3x2048x2048 is 12.6 million)
MAX_BYTES = 2**31             # 2 GiB of float32 images in all


def _shape(argument: str | None) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in (argument or "1x28x28").lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f"random dataset needs a shape like random:1x28x28, got {argument!r}")
    values = shape[0] * shape[1] * shape[2]
    if values > MAX_VALUES_PER_IMAGE:
        raise UserError(f"random:{argument} asks for images of {values:,} values each, more than the "
                        f"{MAX_VALUES_PER_IMAGE:,} allowed; use a smaller CxHxW (e.g. random:3x224x224)")
    return shape


def _check_size(argument: str | None, shape: tuple[int, ...], n: int, num_classes: int) -> None:
    """Refuse sizes that would allocate more than :data:`MAX_BYTES` (checked before anything is allocated)."""
    if not 1 <= n or not 1 <= num_classes <= 100_000:
        raise UserError(f"random:{argument} needs n >= 1 images and 1..100000 classes, got n={n}, "
                        f"num_classes={num_classes}")
    total = 4 * n * max(shape[0] * shape[1] * shape[2], num_classes)
    if total > MAX_BYTES:
        raise UserError(f"random:{argument} with {n:,} images would take {total / 2**30:.1f} GiB, more than the "
                        f"{MAX_BYTES / 2**30:.0f} GiB allowed; use smaller images or fewer of them")


@register("random")
def random_images(argument: str | None, split: str = "train", root: str | None = None, n: int | None = None,
                  num_classes: int = 10, seed: int = 0) -> TensorImageDataset:
    shape = _shape(argument)
    n = n if n is not None else (512 if split == "train" else 128)
    _check_size(argument, shape, n, num_classes)
    weights = torch.randn(num_classes, shape[0] * shape[1] * shape[2], generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(split.encode()))
    images = torch.randn((n, *shape), generator=g)
    labels = (images.flatten(1) @ weights.T).argmax(1)
    return TensorImageDataset(images, labels, [str(i) for i in range(num_classes)], name=f"random:{argument}/{split}")
