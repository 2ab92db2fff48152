"""Batch-wise data augmentation for training: random crops with zero padding and horizontal flips.

Drawn from a generator seeded by ``(seed, step)`` alone, so a resumed run augments every batch exactly
as an uninterrupted one (see :mod:`greedyprune.train.loop`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError

AUGMENTATIONS = ("none", "crop-flip")


def augment_batch(images: torch.Tensor, kind: str, seed: int, step: int, pad: int | None = None) -> torch.Tensor:
    """``kind='crop-flip'``: each image shifted by a random crop of its zero-padded copy, then flipped
    left-right with probability 1/2 (the usual CIFAR / Fashion-MNIST recipe). ``pad`` defaults to 1/8 of
    the image width, rounded (4 px at 32 and at 28; at least 1). ``kind='none'`` returns ``images``.
    """
    if kind == "none":
        return images
    if kind not in AUGMENTATIONS:
        raise UserError(f"unknown augmentation {kind!r}; choose one of {', '.join(AUGMENTATIONS)}")
    if images.dim() != 4:
        return images  # not images (e.g. flat vectors): nothing to crop or flip
    b, _, h, w = images.shape
    pad = max(1, round(w / 8)) if pad is None else pad
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step + 7)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = (torch.arange(h).view(1, h) + dy.view(b, 1)).to(images.device)  # (b, h)
    cols = torch.arange(w).view(1, w) + dx.view(b, 1)                      # (b, w)
    cols = torch.where(flip.view(b, 1), cols.flip(1), cols).to(images.device)
    index_rows = rows.view(b, 1, h, 1).expand(b, images.shape[1], h, padded.shape[3])
    out = padded.gather(2, index_rows)
    index_cols = cols.view(b, 1, 1, w).expand(b, images.shape[1], h, w)
    return out.gather(3, index_cols)
