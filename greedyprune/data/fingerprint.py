"""A short fingerprint of a dataset's content, so a resumed run can tell that its data changed.

In-memory data (Fashion-MNIST, ``random:``): SHA-256 of every image and label. Image folders: of every
file's path (relative to the folder), size and class. Subsets: of the parent's fingerprint and the chosen
indices. Anything else: its length and class names.
"""

from __future__ import annotations

import hashlib
import os

import torch
from torch.utils.data import Dataset, Subset

from .tensor import TensorImageDataset


def fingerprint(dataset: Dataset) -> str:
    """16 hex digits that change when the dataset's content (or selection) changes."""
    digest = hashlib.sha256()
    _update(digest, dataset)
    return digest.hexdigest()[:16]


def _update(digest, dataset) -> None:
    if isinstance(dataset, TensorImageDataset):
        digest.update(f"tensor {tuple(dataset.images.shape)} {dataset.images.dtype}".encode())
        digest.update(dataset.images.detach().cpu().contiguous().numpy().tobytes())
        digest.update(dataset.labels.cpu().numpy().tobytes())
    elif isinstance(dataset, Subset):
        digest.update(b"subset")
        _update(digest, dataset.dataset)
        digest.update(torch.as_tensor(list(dataset.indices), dtype=torch.int64).numpy().tobytes())
    elif hasattr(dataset, "samples") and hasattr(dataset, "root"):  # an image folder
        digest.update(b"folder")
        for path, target in dataset.samples:
            try:
                size = os.stat(path).st_size
            except OSError:
                size = -1
            digest.update(f"{os.path.relpath(path, dataset.root)}\0{size}\0{target}\n".encode())
    else:
        digest.update(f"{type(dataset).__name__} {len(dataset)} {getattr(dataset, 'classes', None)}".encode())
