"""Statistics of a consumer whose target is its own output on the same input (the error-curve pass).

In the error-curve pass (statistics of the unpruned network, :func:`~greedyprune.pipeline.statistics.
iter_group_problems`) a consumer reads only the group's channels, its input is the original ``x`` and its
target its own output minus bias: ``t_p = W x_p = sum_i c_i,p``, the sum of the candidates' contributions.
Then, exactly in arithmetic (centred too: the centred target is the sum of the centred contributions),

    ``b_i = <c_i, t> = sum_j <c_i, c_j> = (G 1)_i``,   ``E = ||t||^2 = 1^T G 1``,   ``mean t = W mean x``,

so the cross products ``M = sum_p x_p t_p^T`` (as many multiply-adds as the layer's own forward) and the
target's sums are not formed: :class:`OwnOutputStatistics` accumulates ``H`` and ``sum_p x_p`` only, and
the target is not read. The loss ``E - 2 b.g + g.G.g = (1 - g)^T G (1 - g)`` is then the same quadratic
form as with the measured ``b`` and ``E`` up to float rounding (the float32 conv output and products:
~1e-7 relative), and non-negative for every ``g``. Not for the pruning pass (its targets are the original
network's outputs, its inputs the pruned network's) nor for a consumer that also reads other channels
(its target minus their contribution is formed by another conv).
"""

from __future__ import annotations

import torch

from . import shifted_gram
from .consumer import ConsumerStatistics, GroupStatistics, weight_matrix


class OwnOutputStatistics(ConsumerStatistics):
    """:class:`~greedyprune.stats.ConsumerStatistics` for a target that is the consumer's own output (module
    docstring): ``add_batch(inp)`` (any target passed is ignored) -> ``statistics(weight)``."""

    def add_batch(self, inp: torch.Tensor, target: torch.Tensor | None = None) -> None:
        """Accumulate ``H`` and the input sums of one batch (``target`` unused: it is ``W x``)."""
        x, shifted, positions = self._columns(inp, None if target is None else target.shape[1])
        self._add_gram(x, shifted, 1)  # M and the target sums stay zero (one unused column)
        if shifted:
            shifted_gram.add_shifted_sums(self.sum_x, x, self.module)
        else:
            self.sum_x.add_(x.sum(1))
        self.samples += positions
        self.images += inp.shape[0] if inp.dim() > 1 else 1

    def statistics(self, weight: torch.Tensor | None = None) -> GroupStatistics:
        """``(G, G 1, 1^T G 1)`` for the candidates against the consumer weight (default: its current one)."""
        self._ready()
        w = (weight_matrix(self.module) if weight is None else weight).to(self.h.device, torch.float64)
        gram = self._weighted_gram(w)
        cross = gram.sum(1)
        return GroupStatistics(gram, cross, cross.sum().clamp_min(0.0), self.samples)

    def bias_correction(self, kept: torch.Tensor, coefficients: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`ConsumerStatistics.bias_correction`, with ``mean t = W mean x``."""
        w = (weight_matrix(self.module) if weight is None else weight).to(self.sum_x.device, torch.float64)
        self.sum_t = w @ self.sum_x
        return super().bias_correction(kept, coefficients, w)
