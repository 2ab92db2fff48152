"""The mask-update rules of dynamic sparse training: RigL (Evci et al. 2020) and SET (Mocanu et al. 2018).

At update step ``t`` (every ``dT`` steps, while ``t < T_end``) each layer with ``k`` active weights:

1. drop: ``n = round(alpha_t * k)`` active weights with the smallest ``|W|`` leave; the ``k - n`` others
   form ``K'``;
2. grow: ``n`` entries outside ``K'`` join -- RigL: the largest dense-gradient magnitudes ``|dL/dW|``
   (the gradient of the effective weight, non-zero also at inactive entries); SET: uniformly at random.
   Entries dropped in step 1 are candidates too (as in RigL);
3. the new mask ``K' + G`` has exactly ``k`` entries; grown entries start at ``W = 0`` with their
   optimizer state reset to zero; dropped entries are zeroed with their state.

``alpha_t = (alpha / 2) (1 + cos(pi t / T_end))`` (cosine annealing, alpha = 0.3 in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import UserError
from ..sparse.select import topk_mask

GROWTH = ("gradient", "random")


def drop_fraction(step: int, alpha: float, end_step: int) -> float:
    """Cosine-annealed drop fraction ``alpha/2 (1 + cos(pi t / T_end))``; 0 from ``T_end`` on."""
    if step >= end_step:
        return 0.0
    return alpha / 2 * (1 + math.cos(math.pi * step / end_step))


def is_update_step(step: int, interval: int, end_step: int) -> bool:
    """RigL updates the masks at ``t = dT, 2 dT, ...`` while ``t < T_end``."""
    return step > 0 and step % interval == 0 and step < end_step


@dataclass
class MaskUpdate:
    """One layer's update: the new mask, the grown entries (start at zero) and the dropped ones."""

    mask: torch.Tensor
    grown: torch.Tensor
    dropped: torch.Tensor
    n_swap: int


def update_mask(weight: torch.Tensor, mask: torch.Tensor, fraction: float, growth: str = "gradient",
                dense_grad: torch.Tensor | None = None, generator: torch.Generator | None = None) -> MaskUpdate:
    """Drop by magnitude, grow by dense-gradient magnitude (``"gradient"``, RigL) or at random (``"random"``, SET).

    Args:
        weight: the effective weight ``W`` (shape of ``mask``).
        mask: current bool mask.
        fraction: ``alpha_t``; ``n = round(fraction * k)`` weights are swapped.
        growth: ``"gradient"`` or ``"random"``.
        dense_grad: ``dL/dW`` of the effective weight (needed for ``"gradient"``).
        generator: random source for ``"random"``.
    Returns:
        :class:`MaskUpdate`; ``grown`` = new mask minus ``K'`` (may include just-dropped entries, which
        restart at zero), ``dropped`` = old mask minus new mask.
    """
    if growth not in GROWTH:
        raise UserError(f"unknown growth rule {growth!r}; choose one of {', '.join(GROWTH)}")
    mask = mask.bool()
    active = int(mask.sum())
    n = int(round(fraction * active))
    n = min(n, active)
    if n <= 0:
        empty = torch.zeros_like(mask)
        return MaskUpdate(mask.clone(), empty, empty.clone(), 0)
    magnitude = torch.where(mask, weight.detach().abs().to(torch.float64),
                            torch.full(mask.shape, -math.inf, dtype=torch.float64, device=mask.device))
    kept = topk_mask(magnitude, active - n)
    if growth == "gradient":
        if dense_grad is None:
            raise UserError("gradient growth needs the dense gradient dL/dW")
        score = dense_grad.detach().abs().to(torch.float64)
    else:
        score = torch.rand(mask.shape, generator=generator, dtype=torch.float64).to(mask.device)
    score = torch.where(kept, torch.full_like(score, -math.inf), score)
    grown = topk_mask(score, n)
    new = kept | grown
    return MaskUpdate(new, grown, mask & ~new, n)
