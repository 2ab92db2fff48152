"""Re-estimating BatchNorm running statistics after short training (or after pruning)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.loaders import make_loader, subset
from .checkpoint import resolve_device


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, dataset: Dataset, n_images: int = 2048, batch_size: int = 128,
                          seed: int = 0, device: str | torch.device = "cpu") -> nn.Module:
    """Replace every BatchNorm's running mean/var by their average over ``n_images`` of ``dataset``.

    After a few hundred steps the exponential running averages still remember their initial values
    (torchvision's MobileNetV3 uses momentum 0.01), so eval-mode accuracy can sit at chance while the
    train-mode accuracy is fine. Here each BN's statistics are reset and re-accumulated as a plain
    cumulative average (``momentum=None``) with only the BN layers in train mode (dropout stays off).
    The weights are unchanged; the model's train/eval mode and BN momenta are restored.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model
    device = resolve_device(device)
    was_training, momenta = model.training, [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for inputs, _ in make_loader(subset(dataset, n_images, seed), batch_size):
            model(inputs.to(device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return model
