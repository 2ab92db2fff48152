"""Equal kept counts per partition: the constraint of channels read by a grouped convolution.

A group of ``N`` candidates split into ``P`` partitions (candidate ``i`` belongs to partition
``i // (N / P)``) must keep the same number in each: a grouped conv with ``P`` groups needs every group
to keep ``k / P`` input channels. Every method honours it the same way: a candidate is eligible only
while its partition holds fewer than ``k / P`` distinct picks (a greedy method takes the best eligible
candidate; a fixed ranking takes the best ``k / P`` of each partition in ranking order). A selection
that stops early (the rest add nothing) is then padded with zero-coefficient candidates so that every
partition keeps as many as the fullest one (:func:`balance`).
"""

from __future__ import annotations

import torch

from ..errors import UserError
from .base import Selection


class PartitionQuota:
    """Distinct picks per partition, and which candidates may still be picked."""

    def __init__(self, n: int, k: int, partition: int, device: torch.device | str = "cpu") -> None:
        check_partition(n, k, partition)
        self.size, self.quota, self.partition = n // partition, k // partition, partition
        self.counts = [0] * partition
        self.picked = torch.zeros(n, dtype=torch.bool, device=device)
        self.open = torch.ones(n, dtype=torch.bool, device=device)  # candidates still eligible as new picks

    def part(self, i: int) -> int:
        return i // self.size

    def take(self, i: int) -> None:
        """Record a pick of candidate ``i`` (a repeat changes nothing); closes a partition that is full."""
        if bool(self.picked[i]):
            return
        self.picked[i] = True
        p = self.part(i)
        self.counts[p] += 1
        if self.counts[p] >= self.quota:
            self.open[p * self.size:(p + 1) * self.size] = False

    def eligible(self) -> torch.Tensor:
        """Candidates that may be picked now: new ones in an open partition, and (for repeats) picked ones."""
        return self.open | self.picked

    def ordered(self, order: torch.Tensor) -> torch.Tensor:
        """The first ``k / P`` of each partition along ``order``, in ``order``'s sequence."""
        taken = [0] * self.partition
        out = []
        for i in order.tolist():
            p = self.part(i)
            if taken[p] < self.quota:
                taken[p] += 1
                out.append(i)
        return torch.tensor(out, dtype=torch.long, device=order.device)


def check_partition(n: int, k: int, partition: int) -> None:
    """``partition`` divides both the candidate count ``n`` and the kept count ``k`` (one-line error if not)."""
    if isinstance(partition, bool) or not isinstance(partition, int) or partition < 1:
        raise UserError(f"partition must be a positive int, got {partition!r}")
    if n % partition:
        raise UserError(f"the {n} candidates cannot be split into partition={partition} equal parts")
    if k % partition:
        raise UserError(f"k={k} is not a multiple of partition={partition}: each of the {partition} partitions "
                        "must keep the same number of candidates; give a multiple")


def balance(selection: Selection, n: int, partition: int) -> Selection:
    """Pad ``selection`` with zero-coefficient candidates so each partition keeps equally many distinct ones.

    Used when a method stopped early (fewer picks than ``k``); the loss is unchanged by a coefficient of 0,
    so the padded picks repeat the last error. Unpicked candidates are added in index order.
    """
    if partition == 1 or len(selection) == 0:
        return selection
    size = n // partition
    distinct = set(selection.indices.tolist())
    goal = max(sum(1 for i in distinct if i // size == p) for p in range(partition))
    return _padded(selection, n, partition, goal, f"so every partition keeps {goal}")


def pad_to_multiple(selection: Selection, n: int, partition: int, multiple: int) -> Selection:
    """Pad ``selection`` with zero-coefficient candidates up to the next multiple of ``multiple`` distinct ones.

    ``multiple`` is a multiple of ``partition`` (a width granule, ``round_to``); each partition is padded to
    the same count, unpicked candidates in index order, as :func:`balance` does. For a method that stopped
    early, so the kept width still is a multiple (capped at ``n``). The loss is unchanged by a coefficient of 0.
    """
    distinct = set(selection.indices.tolist())
    if multiple <= 1 or not distinct or len(distinct) % multiple == 0:
        return selection
    total = min(n, -(-len(distinct) // multiple) * multiple)
    return _padded(selection, n, partition, total // partition, f"to {total}, a multiple of round_to")


def _padded(selection: Selection, n: int, partition: int, goal: int, why: str) -> Selection:
    """``selection`` plus unpicked candidates (index order, coefficient 0, the last error repeated) until each
    of the ``partition`` equal parts of the ``n`` candidates keeps ``goal`` distinct ones."""
    size = n // partition
    distinct = set(selection.indices.tolist())
    extra = []
    for p in range(partition):
        have = sum(1 for i in distinct if i // size == p)
        extra += [i for i in range(p * size, (p + 1) * size) if i not in distinct][:max(0, goal - have)]
    if not extra:
        return selection
    device = selection.indices.device
    indices = torch.cat([selection.indices, torch.tensor(extra, dtype=torch.long, device=device)])
    coefficients = torch.cat([selection.coefficients, selection.coefficients.new_zeros(len(extra))])
    errors = torch.cat([selection.errors, selection.errors[-1:].expand(len(extra))])
    note = f"{selection.stopped_early or 'stopped early'}; padded with {len(extra)} zero-weight channels {why}"
    return Selection(indices, coefficients, errors, selection.method, selection.damping, note, selection.info)
