"""One layer of ``ye2020``: grow the chosen set by the whole network's loss until top-1 is recovered.

Step ``n`` (``n-1`` channels chosen, ``S``): draw one fresh labelled mini-batch ``(x, y)``, run the
stages before the layer once (``h = prefix(x)``), and score up to ``C`` random not-yet-chosen channels
``c`` by the cross-entropy of the rest of the network with the channels ``S + {c}`` weighted uniformly,

    loss(c) = CE(suffix(h; w_c), y),   w_c[i] = N/n for i in S + {c}, 0 otherwise

(Frank-Wolfe with step 1/n on the mean-field ``f = (1/N) sum_i phi_i`` without replacement, rescaled by
``N``). The channel of lowest loss joins ``S``. The layer stops when top-1 on a fixed check subset
reaches ``tolerance x`` the layer's starting top-1 ``a0`` (all channels, weight 1); the check is
skipped while the chosen candidate's top-1 on the mini-batch is below ``precheck x a0``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import nn

from ..stats import run_stages
from .layers import Layer, Mask


@dataclass
class LayerOutcome:
    name: str
    kind: str
    width: int
    kept: list[int]                                      # sorted
    start_top1: float
    final_top1: float
    steps: int
    checks: int
    seconds: float
    order: list[int] = field(default_factory=list)       # the picks in the order they were made
    losses: list[float] = field(default_factory=list)   # the chosen candidate's mini-batch loss per step
    batch_top1: list[float] = field(default_factory=list)  # and its mini-batch top-1
    finetune_seconds: float = 0.0                        # the fine-tune after the layer


def uniform_weights(width: int, chosen: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """``w[i] = N/|S|`` for ``i`` in ``chosen``, 0 elsewhere (all ones when every channel is chosen)."""
    w = torch.zeros(width, device=device)
    w[list(chosen)] = width / len(chosen)
    return w


@torch.no_grad()
def top1(stages: Sequence[nn.Module], cached: list[torch.Tensor], labels: list[torch.Tensor]) -> float:
    """Top-1 of the stages run on cached activations (one tensor per batch)."""
    correct = sum(int((run_stages(stages, h).argmax(1) == y).sum()) for h, y in zip(cached, labels))
    return correct / sum(y.numel() for y in labels)


@torch.no_grad()
def score_candidates(suffix: Sequence[nn.Module], h: torch.Tensor, y: torch.Tensor, mask: Mask, width: int,
                     chosen: list[int], candidates: list[int], stack: int = 8) -> tuple[list[float], list[float]]:
    """Loss and top-1 of ``suffix(h)`` with the layer (hooked to ``mask``) weighted ``uniform(chosen + [c])``,
    per candidate ``c``. Up to ``stack`` candidates share one forward pass of a stacked batch (the same
    arithmetic as one pass each, fewer and larger kernel calls)."""
    losses, accuracies = [], []
    b = h.shape[0]
    for first in range(0, len(candidates), stack):
        part = candidates[first:first + stack]
        weights = torch.stack([uniform_weights(width, chosen + [c], h.device) for c in part])
        mask.value = weights.repeat_interleave(b, dim=0)
        logits = run_stages(suffix, h.repeat(len(part), *([1] * (h.dim() - 1)))).float()
        loss = nn.functional.cross_entropy(logits, y.repeat(len(part)), reduction="none").view(len(part), b)
        correct = (logits.argmax(1) == y.repeat(len(part))).view(len(part), b)
        losses += loss.mean(1).tolist()
        accuracies += [int(c) / b for c in correct.sum(1)]
    return losses, accuracies


def grow_layer(stages: Sequence[nn.Module], layer: Layer, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
               check: tuple[list[torch.Tensor], list[torch.Tensor]], candidates: int, tolerance: float,
               precheck: float, generator: torch.Generator, progress=None, stack: int = 8) -> LayerOutcome:
    """Choose the channels of ``layer`` (see the module docstring); the model itself is not changed.

    ``check`` = (activations of the check subset at the layer's stage input, their labels).
    """
    start = time.perf_counter()
    prefix, suffix = stages[:layer.stage], stages[layer.stage:]
    device = check[0][0].device
    mask = Mask(torch.ones(layer.width, device=device))
    handles = layer.install(mask)
    try:
        a0 = top1(suffix, *check)
        chosen: list[int] = []
        losses: list[float] = []
        batch_top1: list[float] = []
        checks, final = 0, a0
        while len(chosen) < layer.width:
            x, y = next(batches)
            with torch.no_grad():
                h = run_stages(prefix, x)
            rest = torch.tensor([i for i in range(layer.width) if i not in set(chosen)])
            pool = rest[torch.randperm(rest.numel(), generator=generator)[:candidates]].tolist()
            scores, accs = score_candidates(suffix, h, y, mask, layer.width, chosen, pool, stack)
            best = min(range(len(pool)), key=lambda i: scores[i])
            chosen.append(pool[best])
            losses.append(scores[best])
            batch_top1.append(accs[best])
            if progress is not None:
                progress.set_postfix_str(f"{layer.name} {len(chosen)}/{layer.width} loss {scores[best]:.3f}")
            if accs[best] < precheck * a0 and len(chosen) < layer.width:
                continue
            mask.value = uniform_weights(layer.width, chosen, device)
            checks += 1
            final = top1(suffix, *check)
            if final >= tolerance * a0:
                break
    finally:
        for handle in handles:
            handle.remove()
    return LayerOutcome(layer.name, layer.kind, layer.width, sorted(chosen), a0, final, len(chosen), checks,
                        time.perf_counter() - start, chosen, losses, batch_top1)
