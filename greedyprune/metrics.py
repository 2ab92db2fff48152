"""Size and speed of a model: parameters, FLOPs (``torch.utils.flop_counter``) and measured latency."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (every tensor counted once)."""
    return sum(p.numel() for p in model.parameters())


def module_flops(model: nn.Module, example: torch.Tensor) -> tuple[dict[str, int], int]:
    """FLOPs of one forward pass on ``example[:1]`` (eval mode, no grad): per module and in total.

    The one place FLOPs are counted (``torch.utils.flop_counter``: 2 FLOPs per multiply-add of
    convolutions and matrix products; element-wise operations are not counted). Returns
    ``({qualified module name: FLOPs of that module and its children}, total)``; the root is ``""``.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example[:1])
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    root = type(model).__name__  # the counter names modules "<RootClass>.<path>"
    per_module = {}
    for name, _ in model.named_modules():
        key = f"{root}.{name}" if name else root
        if key in counts:
            per_module[name] = int(sum(counts[key].values()))
    return per_module, int(counter.get_total_flops())


def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``example`` (batch 1 is taken from it); see :func:`module_flops`."""
    return module_flops(model, example)[1]


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
