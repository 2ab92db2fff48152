"""Top-1 accuracy and mean cross-entropy of a model on a dataset."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.loaders import make_loader
from ..errors import UserError
from .checkpoint import resolve_device


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str | torch.device = "cpu",
             num_workers: int = 0) -> dict[str, float]:
    """``{"top1": fraction correct in [0, 1], "loss": mean cross-entropy, "n": number of examples}``.

    The model runs in eval mode (its previous train/eval mode is restored afterwards) on ``device``.
    """
    device = resolve_device(device)
    was_training = model.training
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    try:
        for inputs, labels in make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers):
            inputs, labels = inputs.to(device), torch.as_tensor(labels).to(device)
            logits = model(inputs)
            loss_sum += float(nn.functional.cross_entropy(logits.float(), labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum())
            count += labels.numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise UserError("cannot evaluate on an empty dataset")
    return {"top1": correct / count, "loss": loss_sum / count, "n": count}
