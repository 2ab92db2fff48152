"""Kept widths from the options' budget pieces that need more than the cost model: explicit widths, latency.

The budget arithmetic itself (cost models, allocation) is :mod:`greedyprune.budget`.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from ..budget import CostModel, cost_model
from ..distributed import first_rank_values
from ..errors import UserError
from ..graph.groups import ChannelGroup
from ..latency import TIMED_OPS, node_seconds

TIMING_BATCH = 8  # images the latency model is timed on: the batch the benchmarks measure latency at


def explicit_widths(groups: list[ChannelGroup], widths: dict[str, int], round_to: int) -> list[int]:
    """``widths`` (by group name; unnamed groups stay full) checked against each group's granularity."""
    unknown = sorted(set(widths) - {g.name for g in groups})
    if unknown:
        raise UserError(f"widths name unknown groups {unknown[:3]}; the groups are "
                        f"{', '.join(g.name for g in groups[:4])}, ...")
    out = [int(widths.get(g.name, g.width)) for g in groups]
    bad = [g.name for g, w in zip(groups, out) if not 1 <= w <= g.width]
    if bad:
        raise UserError(f"widths for {bad[:3]} are outside 1..channels; a group cannot be emptied")
    odd = [f"{g.name} ({g.partition})" for g, w in zip(groups, out) if w % g.partition]
    if odd:
        raise UserError(f"widths for {odd[:3]} are not multiples of the group's partition count (grouped convs "
                        "read it); give multiples")
    off = [f"{g.name}={w}" for g, w in zip(groups, out) if w % round_to and w != g.width]
    if off:
        raise UserError(f"widths {', '.join(off[:3])} are not multiples of round_to={round_to} (nor "
                        "the group's full width); give multiples or leave round_to at 1")
    return out


def latency_model(original: nn.Module, nodes: list[fx.Node], groups: list[ChannelGroup], batch: torch.Tensor,
                  round_to: int, seconds: dict[str, float] | None = None) -> tuple[CostModel, dict[str, float]]:
    """The latency cost model of ``original`` (see :mod:`greedyprune.latency`) and the node times it uses.

    ``seconds`` given: those times (a previous run's table); else every call node is timed on the first
    ``TIMING_BATCH`` images of ``batch``, median of 3 runs (rank 0's times on every rank, so all ranks allocate
    the same widths).
    """
    if seconds is None:
        measured = node_seconds(nodes[0].graph.owning_module, batch[:TIMING_BATCH], repeat=3)
        names = [n.name for n in nodes if n.op in TIMED_OPS]
        seconds = dict(zip(names, first_rank_values([measured[name] for name in names])))
    return cost_model(original, groups, batch[:1], "latency", round_to, nodes=nodes, seconds=seconds), seconds
