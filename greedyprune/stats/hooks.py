"""Running part of a network up to one layer, with hooks that capture (and stop at) that layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import all_reduce_sum


class StopForward(Exception):
    """Raised by a hook once the wanted activation is captured: the rest of the pass is skipped."""


def run_stages(stages: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for stage in stages:
        x = stage(x)
    return x


def _capture(stages: Sequence[nn.Module], layer: nn.Module, x: torch.Tensor, output: bool) -> torch.Tensor:
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple, out: torch.Tensor | None = None) -> None:
        captured.append(out if output else args[0])
        raise StopForward

    handle = layer.register_forward_hook(hook) if output else layer.register_forward_pre_hook(hook)
    try:
        run_stages(stages, x)
    except StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"{type(layer).__name__} was not reached by the given stages")
    return captured[0]


def capture_input(stages: Sequence[nn.Module], layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``stages`` on ``x`` until ``layer`` is reached; return ``layer``'s input (the rest is skipped)."""
    return _capture(stages, layer, x, output=False)


def capture_output(stages: Sequence[nn.Module], layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``stages`` on ``x`` until ``layer`` has run; return ``layer``'s output (the rest is skipped)."""
    return _capture(stages, layer, x, output=True)


class ChannelMean:
    """Mean of a layer's input per channel (over batch and space), accumulated by a forward pre-hook."""

    def __init__(self, layer: nn.Module) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0
        self.handle = layer.register_forward_pre_hook(self._hook)

    def _hook(self, _module: nn.Module, args: tuple) -> None:
        x = args[0].detach()
        dims = [0] + list(range(2, x.dim()))
        s = x.sum(dims, dtype=torch.float64)
        self.total = s if self.total is None else self.total + s
        self.count += x.numel() // x.shape[1]

    def mean(self) -> torch.Tensor:
        """The mean over every rank's batches (summed with ``all_reduce`` under torch.distributed)."""
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.total.device)
        total = self.total.clone()
        all_reduce_sum(total, count)
        return total / count.clamp_min(1.0)

    def remove(self) -> None:
        self.handle.remove()
