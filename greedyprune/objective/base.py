"""What an objective is: a group's consumer batches in, the engine's ``(G, b, E)`` and bias offsets out.

The pipeline hands an objective, batch by batch, each consumer's input in the pruned network and its
output in the original one (:class:`~greedyprune.walk.GraphWalker`); the objective returns a
:class:`GroupProblem` for the selection engine and, once channels and coefficients are chosen, the
output offset of every consumer (bias correction). A different objective is one more class in
``registered_objectives``: the pipeline does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import nn

from ..graph.groups import Consumer


@dataclass
class ConsumerView:
    """One consumer of a group as it stands in the partly pruned model.

    Attributes:
        consumer: the contract's entry (original positions, bias sink, gate, partitions).
        module: the layer in the pruned model (current shapes and weights).
        original: the same layer in the original model (its bias is part of the target).
        columns: ``(width, block)`` current input columns of the group's channels.
        rows: current output rows whose original values are the target (all of them, unless rows were
            pruned by an earlier group without being removed: ``materialize=False``).
        original_rows: the original index of each of ``rows``.
        shift: ``(len(rows),)`` float64 output offsets earlier groups already added to these rows.
    """

    consumer: Consumer
    module: nn.Module
    original: nn.Module
    columns: torch.Tensor
    rows: torch.Tensor
    original_rows: torch.Tensor
    shift: torch.Tensor


@dataclass
class GroupProblem:
    """The engine's statistics for one group, and the energy its errors are reported against.

    ``Loss(g) = E - 2 b.g + g.G.g`` is the residual energy of the consumers' outputs (summed over
    consumers) for coefficients ``g``; the reported relative error is ``Loss / reference_energy`` with
    ``reference_energy`` the centred energy of the consumers' original outputs (it differs from ``E``
    only when a consumer also reads channels outside the group, whose contribution is subtracted
    from the target before ``E`` is formed).
    """

    gram: torch.Tensor
    cross: torch.Tensor
    energy: torch.Tensor
    reference_energy: torch.Tensor
    samples: int

    def reported(self, errors: torch.Tensor) -> torch.Tensor:
        """Engine errors (``Loss / E``) as errors against the reference energy (``Loss / E_ref``)."""
        if float(self.reference_energy) <= 0 or float(self.energy) == float(self.reference_energy):
            return errors
        return errors * (self.energy / self.reference_energy).to(errors)


class GroupObjective(Protocol):
    """Accumulates one group's statistics; see the module docstring."""

    def add_batch(self, values: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        """``{consumer target: (input in the pruned network, output in the original or None for a gate)}``."""

    def problem(self) -> GroupProblem:
        """``(G, b, E)`` summed over consumers (all-reduced over ranks)."""

    def offsets(self, kept: torch.Tensor, coefficients: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per consumer target: the offset to add to each of its *current* output rows."""

    def free(self) -> None:
        """Drop the accumulated statistics."""


# ``factory(group, views, product_dtype)``; the error-curve pass adds ``own_targets=True`` (every target is its
# consumer's own output on the input given: an objective may use it, :mod:`greedyprune.stats.own_output`)
ObjectiveFactory = Callable[..., GroupObjective]
registered_objectives: dict[str, ObjectiveFactory] = {}


def register(name: str) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    def wrap(factory: ObjectiveFactory) -> ObjectiveFactory:
        registered_objectives[name] = factory
        return factory
    return wrap
