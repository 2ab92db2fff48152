"""A readable listing of a traced model's channel groups and frozen channels (``greedyprune info``)."""

from __future__ import annotations

from .build import TracedModel


def _few(names: list[str], limit: int = 2) -> str:
    return ", ".join(names[:limit]) + (f" +{len(names) - limit}" if len(names) > limit else "")


def describe_groups(traced: TracedModel) -> list[str]:
    """One line per group (pruning order) and per frozen channel set, with a header line for each table.

    Group columns: name, kind (internal/stream), width, producers and consumers (counts and the first
    names; ``gate`` counts squeeze-excitation consumers), partition (grouped convs: kept channels split
    equally over that many parts), exact (False where a LayerNorm over channels reads them). Frozen:
    name, width, reason.
    """
    groups = traced.groups
    streams = sum(g.kind == "stream" for g in groups)
    lines = [f"channel groups: {len(groups)} ({len(groups) - streams} internal, {streams} stream), in pruning order",
             f"  {'name':<30} {'kind':<8} {'width':>5} {'part':>4} {'exact':<5} producers -> consumers"]
    for g in groups:
        gates = sum(c.gate for c in g.consumers)
        readers = f"{len(g.consumers)}" + (f" ({gates} gate)" if gates else "")
        lines.append(f"  {g.name:<30} {g.kind:<8} {g.width:>5} {g.partition:>4} {str(g.exact).lower():<5} "
                     f"{len(g.producers)}: {_few([p.target for p in g.producers])} -> "
                     f"{readers}: {_few([c.target for c in g.consumers])}")
    lines.append(f"frozen channels: {len(traced.frozen)}")
    lines += [f"  {f.name:<30} {f.width:>5}  {f.reason}" for f in traced.frozen]
    if traced.unused:
        lines.append(f"layers the traced forward never calls (left untouched): {_few(traced.unused, 4)}")
    return lines
