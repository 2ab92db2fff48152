"""Calibration data of the pruner across ranks: batches collected onto one device, shared out over ranks,
checked on every rank and counted globally; and the one selection every rank adopts.

Anything that can fail on one rank only (its own batches hold NaN, or do not fit the model) is checked
inside :func:`~greedyprune.distributed.same_error_on_every_rank`, before the first collective that
depends on it, so every rank stops with the same one-line error and none waits in an ``all_reduce``.
"""

from __future__ import annotations

from typing import Iterable

import torch

from .distributed import all_reduce_sum, broadcast_from_first, same_error_on_every_rank, shard, world
from .errors import UserError
from .stats.check import checked_forward


def as_batches(calibration: Iterable, device: torch.device) -> list[torch.Tensor]:
    """A DataLoader / iterable of image batches (or ``(images, labels)`` pairs) as a list on ``device``."""
    batches = []
    for index, item in enumerate(calibration):
        x = item[0] if isinstance(item, (tuple, list)) and item else item
        if not isinstance(x, torch.Tensor):
            raise UserError(f"calibration batches must be tensors or (tensor, label) pairs, got {type(x).__name__} "
                            f"in batch {index}")
        if x.dim() < 2 or x.shape[0] == 0:
            raise UserError(f"calibration batch {index} has shape {tuple(x.shape)}; a batch must hold at least one "
                            "image along its first axis (shape (N, C, H, W) for images)")
        if batches and x.shape[1:] != batches[0].shape[1:]:
            raise UserError(f"calibration batch {index} holds images of shape {tuple(x.shape[1:])} but batch 0 holds "
                            f"{tuple(batches[0].shape[1:])}; give images of one size (resize or crop them)")
        batches.append(x.to(device))
    if not batches:
        raise UserError("the calibration set is empty; give at least one batch of images")
    return batches


def share_over_ranks(batches: list[torch.Tensor], enabled: bool) -> list[torch.Tensor]:
    """This rank's calibration batches; every rank raises the same one-line error when some rank has none."""
    _, size = world()
    mine = shard(batches, enabled)
    if size > 1:
        empty = torch.tensor([0.0 if mine else 1.0], dtype=torch.float64, device=batches[0].device)
        all_reduce_sum(empty)  # collective, so no rank is left waiting for one that gave up
        if float(empty.item()) > 0:
            have = len(batches) if enabled else "too few"
            raise UserError(f"{int(empty.item())} of {size} ranks got no calibration batch ({have} batches for "
                            f"{size} ranks); give at least {size} batches: more calibration images or a smaller "
                            "batch size")
    elif not mine:
        raise UserError("the calibration set is empty; give at least one batch of images")
    return mine


def check_on_every_rank(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    """Every batch of this rank is finite and the model runs on the first image, finitely -- agreed over ranks.

    One rank's bad batch makes every rank raise the same :class:`UserError` (the inputs, or the layer
    that fails or goes non-finite, named by :func:`~greedyprune.stats.check.checked_forward`). One image
    is enough to catch a model that does not fit the data or non-finite weights (the tracing and FLOP
    counting run one image too); activations that overflow only on some images are refused when they
    reach a consumer's statistics (the group is named then). The check runs one image, not a whole batch:
    a batch of 16 at 224 px cost a quarter of a calibration forward, about 3% of a ResNet-50 prune.
    """
    with same_error_on_every_rank():
        for batch in batches:
            if batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
                raise UserError("the calibration images contain NaN/Inf values; check the data")
        checked_forward(model, batches[0][:1])


def global_count(batches: list[torch.Tensor]) -> int:
    """Number of calibration images summed over all ranks."""
    count = torch.tensor([float(sum(b.shape[0] for b in batches))], dtype=torch.float64, device=batches[0].device)
    all_reduce_sum(count)
    return int(count.item())


def agree_on_selection(kept: torch.Tensor, coefficients: torch.Tensor, offset: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every rank adopts rank 0's selection, so all ranks materialise the identical model.

    The all-reduced statistics are the same everywhere, so the selections already agree; the broadcast
    makes that certain even when ranks' BLAS round differently.
    """
    if world()[1] == 1:
        return kept, coefficients, offset
    count = torch.tensor([kept.numel()], device=offset.device)
    broadcast_from_first(count)
    n = int(count.item())
    kept = kept.to(offset.device) if kept.numel() == n else torch.zeros(n, dtype=torch.long, device=offset.device)
    coefficients = coefficients.to(offset.device) if coefficients.numel() == n else \
        torch.zeros(n, dtype=coefficients.dtype, device=offset.device)
    broadcast_from_first(kept, coefficients, offset)
    return kept, coefficients, offset
