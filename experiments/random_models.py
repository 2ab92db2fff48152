"""Random-weight torchvision models with non-trivial BatchNorm, for benchmarks and dry runs (no downloads).

A freshly initialised torchvision model has identity BatchNorm (mean 0, variance 1, weight 1, bias 0),
which makes every BN a no-op and hides bugs in how pruning treats it; these helpers draw its
statistics (and optionally its affine weights) from seeded uniform ranges instead.
"""

from __future__ import annotations

import torch


def randomized(name: str, affine: bool = True, seed: int = 0) -> torch.nn.Module:
    """``build_model(name)`` (a torchvision or timm: architecture, random init, seeded) with random BN statistics.

    For torchvision names the weights are those of ``torchvision.models.<name>()`` with the same seed;
    the model carries its ``greedyprune_spec``, so ``greedyprune.save`` / ``load`` round-trip it. Eval mode.
    """
    from greedyprune.models import build_model
    torch.manual_seed(seed)
    return randomize_batchnorm(build_model(name), affine)


def randomize_batchnorm(model: torch.nn.Module, affine: bool = True,
                        generator: torch.Generator | None = None) -> torch.nn.Module:
    """``model`` with every BatchNorm's running statistics (and affine weights) drawn from uniform ranges; eval mode.

    Draws from ``generator`` (default: the global one, continuing after the model's initialisation, as
    :func:`randomized` always did), in module order.
    """
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1, generator=generator)
            m.running_var.uniform_(0.5, 1.5, generator=generator)
            if affine:
                m.weight.data.uniform_(0.5, 1.5, generator=generator)
                m.bias.data.uniform_(-0.1, 0.1, generator=generator)
    return model.eval()
