"""Size and speed of a model: parameters, FLOPs (``torch.utils.flop_counter``) and measured latency."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (every tensor counted once)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``example`` (batch 1 is taken from it), as counted by torch.

    ``torch.utils.flop_counter`` counts 2 FLOPs per multiply-add of convolutions and matrix products;
    element-wise operations are not counted.
    """
    x = example[:1]
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(model: nn.Module, example: torch.Tensor, batch: int = 8, repeat: int = 10,
                    warmup: int = 2) -> float:
    """Median seconds of one forward pass over a batch of ``batch`` copies of ``example[0]``."""
    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    was_training = model.training
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(warmup + repeat):
            if x.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    model.train(was_training)
    return sorted(times)[len(times) // 2]
