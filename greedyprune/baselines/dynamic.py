"""The mask-update rules of dynamic sparse training: RigL (Evci et al. 2020) and SET (Mocanu et al. 2018).

At update step ``t`` (``t = 0, dT, 2 dT, ...`` while ``t < T_end``: the reference updates at step 0 too,
with the full ``alpha``) each layer with ``k`` active weights:

1. drop: ``n = floor(alpha_t * k)`` active weights with the smallest ``|W|`` leave; the ``k - n`` others
   form ``K'``;
2. grow: ``n`` entries outside ``K'`` join (the set ``G``) -- RigL: the largest dense-gradient magnitudes
   ``|dL/dW|`` (the gradient of the effective weight, non-zero also at inactive entries); SET: uniformly
   at random. Entries dropped in step 1 are candidates too (as in RigL);
3. the new mask ``K' + G`` has exactly ``k`` entries. Only connections outside the *old* mask are new
   (``grown = G - old``): they start at ``W = 0`` with their optimizer state reset to zero. An entry
   dropped in step 1 and chosen again in step 2 (``regrown = G & old``) never left the network: it keeps
   its value and its optimizer state (momentum, Adam moments). Entries that leave (``dropped = old - new``)
   are zeroed with their state. So ``|grown| = |dropped| <= n``.

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
    """RigL updates the masks at ``t = 0, dT, 2 dT, ...`` while ``t < T_end`` (google-research/rigl: the first
    update is at ``begin_step = 0``, where ``alpha_0 = alpha``)."""
    return step >= 0 and step % interval == 0 and step < end_step


@dataclass
class MaskUpdate:
    """One layer's update (bool tensors of the weight's shape, see the module docstring).

    ``grown``: new connections (outside the old mask; start at zero), ``dropped``: connections that left,
    ``regrown``: dropped by magnitude but chosen again by the growth rule (keep value and state),
    ``n_swap``: ``n = floor(alpha_t k)``, the number dropped and grown by the rule.
    """

    mask: torch.Tensor
    grown: torch.Tensor
    dropped: torch.Tensor
    n_swap: int
    regrown: torch.Tensor

    @property
    def changed(self) -> torch.Tensor:
        """Entries whose weight and optimizer state are reset to zero: ``grown | dropped``."""
        return self.grown | self.dropped


def update_mask(weight: torch.Tensor, mask: torch.Tensor, fraction: float, growth: str = "gradient",
                dense_grad: torch.Tensor | None = None, generator: torch.Generator | None = None) -> MaskUpdate:
    """Drop by magnitude, grow by dense-gradient magnitude (``"gradient"``, RigL) or at random (``"random"``, SET).

    Args:
        weight: the effective weight ``W`` (shape of ``mask``).
        mask: current bool mask.
        fraction: ``alpha_t``; ``n = floor(fraction * k)`` weights are dropped and grown.
        growth: ``"gradient"`` or ``"random"``.
        dense_grad: ``dL/dW`` of the effective weight (needed for ``"gradient"``).
        generator: random source for ``"random"``.
    Returns:
        :class:`MaskUpdate`; ``grown`` = new mask minus old mask (new connections, restart at zero),
        ``regrown`` = just-dropped entries chosen again (keep their value and state),
        ``dropped`` = old mask minus new mask.
    """
    if growth not in GROWTH:
        raise UserError(f"unknown growth rule {growth!r}; choose one of {', '.join(GROWTH)}")
    mask = mask.bool()
    active = int(mask.sum())
    # floor, tolerant of a product that floating point leaves just below an integer
    n = min(math.floor(fraction * active + 1e-9), active)
    if n <= 0:
        empty = torch.zeros_like(mask)
        return MaskUpdate(mask.clone(), empty, empty.clone(), 0, empty.clone())
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
    chosen = topk_mask(score, n)
    new = kept | chosen
    return MaskUpdate(new, chosen & ~mask, mask & ~new, n, chosen & mask)
