"""Re-estimating BatchNorm running statistics after short training (or after pruning)."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.loaders import make_loader, subset
from ..distributed import all_reduce_sum
from .checkpoint import resolve_device


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, dataset: Dataset, n_images: int = 2048, batch_size: int = 128,
                          seed: int = 0, device: str | torch.device = "cpu") -> nn.Module:
    """Replace every BatchNorm's running mean/var by their average over ``n_images`` of ``dataset``.

    After a few hundred steps the exponential running averages still remember their initial values
    (torchvision's MobileNetV3 uses momentum 0.01), so eval-mode accuracy can sit at chance while the
    train-mode accuracy is fine. See :func:`recalibrate_batchnorm_on` for what is computed.
    """
    device = resolve_device(device)
    batches = (inputs.to(device) for inputs, _ in make_loader(subset(dataset, n_images, seed), batch_size))
    return recalibrate_batchnorm_on(model, batches)


@torch.no_grad()
def recalibrate_batchnorm_on(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Re-estimate every BatchNorm's running mean/var from ``batches`` (input tensors on the model's device).

    Each BN's statistics are reset and re-accumulated as a plain cumulative average over batches
    (``momentum=None``: running_mean = mean over batches of the batch means, running_var likewise of
    the unbiased batch variances) with only the BN layers in train mode (dropout stays off). Under
    ``torch.distributed`` each rank averages its own batches and the ranks' averages are combined
    weighted by their batch counts, which is the single-process average over all batches. The weights
    are unchanged; the model's train/eval mode and BN momenta are restored.

    After pruning this matters because a least-squares refit shrinks a layer's output toward its
    mean (the fitted variance is the target's minus the residual): the next BN, still normalising with
    the original variance, passes the shrinkage on, and recalibration undoes it.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model
    was_training, momenta = model.training, [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for inputs in batches:
            model(inputs)
        for m in norms:  # ranks' cumulative averages -> one average weighted by batch counts
            count = m.num_batches_tracked.to(torch.float64).reshape(1)
            mean, var = m.running_mean.to(torch.float64) * count, m.running_var.to(torch.float64) * count
            all_reduce_sum(mean, var, count)
            if count.item() > 0:
                m.running_mean.copy_(mean / count)
                m.running_var.copy_(var / count)
                m.num_batches_tracked.fill_(int(count.item()))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return model
