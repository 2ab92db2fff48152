"""An in-memory image dataset: one float tensor of images and one tensor of labels."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class TensorImageDataset(Dataset):
    """Images ``(N, C, H, W)`` float and labels ``(N,)`` int64, held in memory.

    Items are ``(images[i], int(labels[i]))``. ``classes`` names the labels; ``name`` says where the
    data came from (shown in messages and reports).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str], name: str = "tensor"):
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.classes = list(classes)
        self.name = name

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index):
        """One item ``(image, int label)``; a list/tensor of indices gives a batch ``(images, labels)``."""
        if isinstance(index, (list, tuple, torch.Tensor)):
            index = torch.as_tensor(index, dtype=torch.int64)
            return self.images[index], self.labels[index]
        return self.images[index], int(self.labels[index])

    def select(self, indices: torch.Tensor, name: str | None = None) -> "TensorImageDataset":
        """A new dataset holding the rows ``indices`` (a copy, so the parent can be freed)."""
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return TensorImageDataset(self.images[indices], self.labels[indices], self.classes, name or self.name)

    def __repr__(self) -> str:
        return f"TensorImageDataset({self.name}, n={len(self)}, shape={tuple(self.images.shape[1:])})"
