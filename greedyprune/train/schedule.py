"""Optimizers and learning-rate schedules built from a :class:`TrainConfig`."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak lr used for optimizer step ``step`` (0-based).

    Warm-up: ``(step + 1) / warmup_steps`` for ``step < warmup_steps``. Then ``cosine`` decays as
    ``0.5 * (1 + cos(pi * t))`` with ``t = (step - warmup) / (total - warmup)`` in [0, 1); ``constant`` is 1.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=(config.momentum, 0.999),
                                weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           nesterov=config.nesterov and config.momentum > 0)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """``LambdaLR`` whose ``i``-th step uses ``lr_factor(config.start_step + i, ...)``: a run that starts at
    step ``k`` (late rewinding) continues the schedule from ``k`` instead of restarting it."""
    def factor(step: int) -> float:
        return lr_factor(config.start_step + step, total_steps, config.warmup_steps, config.schedule)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
