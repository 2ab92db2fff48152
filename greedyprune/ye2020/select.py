"""One layer of ``ye2020``: grow the chosen set by the whole network's loss until top-1 is recovered.

Step ``n`` (``n-1`` channels chosen, ``S``): draw one fresh labelled mini-batch ``(x, y)``, run the
network up to the layer's cut once, and score up to ``C`` random not-yet-chosen channels ``c`` by the
cross-entropy of the rest of the network with the channels ``S + {c}`` weighted uniformly,

    loss(c) = CE(suffix(cut(x); w_c), y),   w_c[i] = N/n for i in S + {c}, 0 otherwise

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

from ..partial import CutRunner
from .layers import Mask


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
    cpu_seconds: float = 0.0                             # CPU time of the selection (independent of other load)
    finetune_cpu_seconds: float = 0.0


def uniform_weights(width: int, chosen: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """``w[i] = N/|S|`` for ``i`` in ``chosen``, 0 elsewhere (all ones when every channel is chosen)."""
    w = torch.zeros(width, device=device)
    w[list(chosen)] = width / len(chosen)
    return w


def top1(runner: CutRunner, cuts: list[dict], labels: list[torch.Tensor]) -> float:
    """Top-1 of the network run from cached cut values (one dict per batch)."""
    correct = sum(int((runner.logits(c).argmax(1) == y).sum()) for c, y in zip(cuts, labels))
    return correct / sum(y.numel() for y in labels)


def score_candidates(runner: CutRunner, cut: dict, y: torch.Tensor, mask: Mask, width: int, chosen: list[int],
                     candidates: list[int], stack: int = 1) -> tuple[list[float], list[float]]:
    """Loss and top-1 of the rest of the network with the layer (hooked to ``mask``) weighted
    ``uniform(chosen + [c])``, per candidate ``c``. Up to ``stack`` candidates share one pass of a stacked
    batch (the same arithmetic as one pass each)."""
    losses, accuracies = [], []
    b = y.numel()
    for first in range(0, len(candidates), stack):
        part = candidates[first:first + stack]
        weights = torch.stack([uniform_weights(width, chosen + [c], y.device) for c in part])
        mask.value = weights.repeat_interleave(b, dim=0) if len(part) > 1 else weights[0]
        logits = runner.logits(cut, len(part)).float()
        labels = y.repeat(len(part))
        losses += nn.functional.cross_entropy(logits, labels, reduction="none").view(len(part), b).mean(1).tolist()
        accuracies += [int(c) / b for c in (logits.argmax(1) == labels).view(len(part), b).sum(1)]
    return losses, accuracies


def grow_layer(runner: CutRunner, mask: Mask, name: str, kind: str, width: int,
               batches: Iterator[tuple[torch.Tensor, torch.Tensor]], check: tuple[list[dict], list[torch.Tensor]],
               candidates: int, tolerance: float, precheck: float, generator: torch.Generator, progress=None,
               stack: int = 1) -> LayerOutcome:
    """Choose the channels of one layer (module docstring); ``mask`` must already be hooked into the model.

    ``check`` = (cut values of the check subset's batches, their labels). The model is not changed.
    """
    start, cpu = time.perf_counter(), time.process_time()
    device = check[1][0].device
    mask.value = torch.ones(width, device=device)
    a0 = top1(runner, *check)
    chosen: list[int] = []
    losses: list[float] = []
    batch_top1: list[float] = []
    checks, final = 0, a0
    while len(chosen) < width:
        x, y = next(batches)
        cut = runner.values(x)
        taken = set(chosen)
        rest = torch.tensor([i for i in range(width) if i not in taken])
        pool = rest[torch.randperm(rest.numel(), generator=generator)[:candidates]].tolist()
        scores, accs = score_candidates(runner, cut, y, mask, width, chosen, pool, stack)
        best = min(range(len(pool)), key=lambda i: scores[i])
        chosen.append(pool[best])
        losses.append(scores[best])
        batch_top1.append(accs[best])
        if progress is not None:
            progress.set_postfix_str(f"{name} {len(chosen)}/{width} loss {scores[best]:.3f}")
        if accs[best] < precheck * a0 and len(chosen) < width:
            continue
        mask.value = uniform_weights(width, chosen, device)
        checks += 1
        final = top1(runner, *check)
        if final >= tolerance * a0:
            break
    return LayerOutcome(name, kind, width, sorted(chosen), a0, final, len(chosen), checks,
                        time.perf_counter() - start, chosen, losses, batch_top1,
                        cpu_seconds=time.process_time() - cpu)
