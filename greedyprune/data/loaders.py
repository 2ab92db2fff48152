"""Subsets, data loaders and calibration batches -- all deterministic given a seed."""

from __future__ import annotations

from typing import Iterable

import torch

from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler, Subset

from ..errors import UserError
from .registry import get_dataset
from .tensor import TensorImageDataset


def subset(dataset: Dataset, n: int, seed: int = 0) -> Dataset:
    """``n`` items of ``dataset`` drawn without replacement with ``seed`` (the whole set if ``n >= len``).

    The same ``(len(dataset), n, seed)`` always gives the same items, in the same order.
    """
    total = len(dataset)
    if n is None or n >= total:
        return dataset
    if n < 1:
        raise UserError(f"subset size must be at least 1, got {n}")
    indices = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
    if isinstance(dataset, TensorImageDataset):
        return dataset.select(indices, name=f"{dataset.name}[{n}]")
    return Subset(dataset, indices.tolist())


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A ``DataLoader`` whose shuffling order is fixed by ``seed`` (and advances each time it is iterated).

    It draws from its own generator, never from torch's global RNG, so evaluating a model in the middle
    of training does not change the training run.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    # always an own generator: iterating a loader must not consume torch's global RNG
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return batch_loader(dataset, sampler, batch_size, num_workers, drop_last, generator)


def batch_loader(dataset: Dataset, order: Iterable[int], batch_size: int, num_workers: int = 0,
                 drop_last: bool = False, generator: torch.Generator | None = None) -> DataLoader:
    """A ``DataLoader`` visiting ``order`` (indices or a sampler) in batches of ``(inputs, labels)``.

    In-memory datasets are sliced a whole batch at a time (no per-item calls and stacking).
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    if isinstance(dataset, TensorImageDataset):
        batches = BatchSampler(order, batch_size, drop_last)
        return DataLoader(dataset, batch_size=None, sampler=batches, num_workers=num_workers, generator=generator)
    return DataLoader(dataset, batch_size=batch_size, sampler=order, num_workers=num_workers, drop_last=drop_last,
                      generator=generator)


def calibration_batches(spec_or_dataset: str | Dataset, n_images: int, batch_size: int = 64, seed: int = 0,
                        split: str = "train", **options) -> list[torch.Tensor]:
    """``n_images`` images (no labels) from a dataset or spec, as a list of ``(B, C, H, W)`` tensors.

    The images are a seeded random subset, so two calls with the same arguments give the same batches.
    """
    if n_images < 1:
        raise UserError(f"number of calibration images must be at least 1, got {n_images}")
    dataset = get_dataset(spec_or_dataset, split, **options) if isinstance(spec_or_dataset, str) else spec_or_dataset
    if len(dataset) < n_images:
        raise UserError(f"asked for {n_images} calibration images but the dataset has only {len(dataset)}")
    chosen = subset(dataset, n_images, seed)
    if isinstance(chosen, TensorImageDataset):
        return [b.clone() for b in chosen.images.split(batch_size)]
    return [images for images, _ in make_loader(chosen, batch_size, shuffle=False)]
