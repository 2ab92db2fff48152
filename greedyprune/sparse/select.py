"""Scores -> 0/1 masks: keep the top-``k`` per layer or globally, or ``k`` random entries per layer.

Ties are broken by ``torch.topk`` on the flattened scores (deterministic on one device).
All functions return bool masks keyed like their inputs.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from ..errors import UserError


def _check_scores(scores: Mapping[str, torch.Tensor]) -> None:
    if not scores:
        raise UserError("no scores given")
    for name, value in scores.items():
        if not bool(torch.isfinite(value).all()):
            raise UserError(f"scores of {name} contain NaN or Inf; check the model and the data batch")


def topk_mask(score: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of ``score``'s shape, True at the ``k`` largest entries."""
    if not 0 <= k <= score.numel():
        raise UserError(f"cannot keep {k} of {score.numel()} entries")
    mask = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
    if k:
        mask[torch.topk(score.reshape(-1), k, sorted=False).indices] = True
    return mask.reshape(score.shape)


def layerwise_topk(scores: Mapping[str, torch.Tensor], counts: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """Per layer, keep the ``counts[name]`` highest-scoring entries."""
    _check_scores(scores)
    return {name: topk_mask(scores[name], int(counts[name])) for name in scores}


def global_topk(scores: Mapping[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Keep the ``k`` highest scores over all layers together."""
    _check_scores(scores)
    names = list(scores)
    flat = torch.cat([scores[n].reshape(-1).to(torch.float64).cpu() for n in names])
    keep = topk_mask(flat, k)
    out, start = {}, 0
    for name in names:
        size = scores[name].numel()
        out[name] = keep[start:start + size].reshape(scores[name].shape).to(scores[name].device)
        start += size
    return out


def random_masks(shapes: Mapping[str, Sequence[int]], counts: Mapping[str, int],
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Per layer, ``counts[name]`` entries chosen uniformly at random without replacement."""
    out = {}
    for name, shape in shapes.items():
        size, k = math.prod(shape), int(counts[name])
        if not 0 <= k <= size:
            raise UserError(f"cannot keep {k} of {size} entries of {name}")
        mask = torch.zeros(size, dtype=torch.bool)
        mask[torch.randperm(size, generator=generator)[:k]] = True
        out[name] = mask.reshape(tuple(shape))
    return out


def mask_counts(masks: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Non-zeros per mask."""
    return {name: int(mask.count_nonzero()) for name, mask in masks.items()}


def prune_surviving(scores: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor],
                    fractions: Mapping[str, float] | float, scope: str = "layer") -> dict[str, torch.Tensor]:
    """Remove the lowest-scoring ``fraction`` of the *surviving* entries (IMP's pruning step).

    ``scope="layer"``: each layer loses ``round(fractions[name] * survivors_l)`` of its survivors;
    ``scope="global"``: ``round(fraction * all survivors)`` go, chosen over all layers together
    (``fractions`` must then be one number). Pruned entries never come back.
    """
    lifted = {n: torch.where(masks[n].bool(), scores[n].to(torch.float64),
                             torch.full_like(scores[n], -math.inf, dtype=torch.float64)) for n in scores}
    alive = mask_counts(masks)
    if scope == "global":
        if not isinstance(fractions, (int, float)):
            raise UserError("global pruning takes one fraction")
        keep = sum(alive.values()) - int(round(fractions * sum(alive.values())))
        names = list(scores)
        flat = torch.cat([lifted[n].reshape(-1).cpu() for n in names])
        kept = topk_mask(flat, keep)
        out, start = {}, 0
        for name in names:
            size = scores[name].numel()
            out[name] = kept[start:start + size].reshape(scores[name].shape).to(scores[name].device)
            start += size
        return out
    if scope != "layer":
        raise UserError(f"pruning scope must be 'layer' or 'global', got {scope!r}")
    frac = fractions if isinstance(fractions, Mapping) else {n: float(fractions) for n in scores}
    return {n: topk_mask(lifted[n], alive[n] - int(round(frac[n] * alive[n]))) for n in scores}
