"""Top-1 accuracy and mean cross-entropy of a model on a dataset."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.loaders import batch_loader
from ..distributed import sum_over_ranks, world
from ..errors import UserError
from .checkpoint import resolve_device


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str | torch.device = "cpu",
             num_workers: int = 0, shard: bool = False) -> dict[str, float]:
    """``{"top1": fraction correct in [0, 1], "loss": mean cross-entropy, "n": number of examples}``.

    The model runs in eval mode (its previous train/eval mode is restored afterwards) on ``device``.
    ``shard=True`` under ``torch.distributed`` (every rank must call it): rank ``r`` scores examples
    ``r, r + world_size, ...`` and the counts and sums are added over ranks, so every rank returns the
    metrics of the whole dataset, each example counted once.
    """
    device = resolve_device(device)
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    rank, size = world() if shard else (0, 1)
    was_training = model.training
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    try:
        for inputs, labels in batch_loader(dataset, range(rank, len(dataset), size), batch_size, num_workers):
            inputs, labels = inputs.to(device), torch.as_tensor(labels).to(device)
            logits = model(inputs)
            loss_sum += float(nn.functional.cross_entropy(logits.float(), labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum())
            count += labels.numel()
    finally:
        model.train(was_training)
    if size > 1:
        correct, loss_sum, count = sum_over_ranks([correct, loss_sum, count])
    if count == 0:
        raise UserError("cannot evaluate on an empty dataset")
    return {"top1": correct / count, "loss": loss_sum / count, "n": int(count)}
