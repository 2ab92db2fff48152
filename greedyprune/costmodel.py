"""Exact FLOPs / parameter count of a model as a function of its channel groups' widths.

Every Conv2d / Linear FLOP count (measured once, :func:`greedyprune.metrics.module_flops`) and every
parameter tensor's size is ``base * r_in * r_out``: ``r_out`` the fraction of its output rows (or, for
a norm, depthwise conv or per-channel parameter, of its channels) still there, ``r_in`` the fraction of
its input columns. Both are affine in the widths ``w``: a layer whose rows (columns) hold ``n_g``
positions of group ``g`` out of ``R`` has

    ``r = 1 - sum_g n_g / R + sum_g (n_g / N_g) w_g / R``

(a Linear after a flatten holds ``H*W`` columns per channel, a layer reading a concatenation holds
several groups and frozen channels). So ``cost(w) = fixed + sum_m base_m r_in,m(w) r_out,m(w)``
exactly, and removing ``s`` channels from group ``g`` saves
``sum_m base_m (s a_in r_out + s a_out r_in - s^2 a_in a_out)`` (``a = dr/dw_g``).
A grouped conv's cost is ``O * C/P * K * HW``: still ``r_in r_out``.

Width granularity: a group's kept width is a multiple of its ``steps[g]`` -- the lcm of the partition
count of its grouped convs and the ``round_to`` asked for (1: any width) -- or its full width.
From a width ``w`` the next smaller allowed width is ``w - step_at(w)``, with
``step_at(w) = w mod s`` when ``w`` is not a multiple of ``s`` (only the full width can be), else ``s``;
a group can shrink while that leaves at least ``s`` channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn

from .graph.groups import ChannelGroup
from .latency import TIMED_OPS, check_seconds, is_product
from .metrics import module_flops

Norm = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)


@dataclass
class CostModel:
    """``cost(w) = fixed + sum_m base[m] * r_in[m](w) * r_out[m](w)``, each ratio ``r = (c + A w) / T``.

    ``A[m, g]`` counts the positions per channel of group ``g`` on that axis of ``m`` (1, or ``H*W``),
    ``c`` the positions outside the pruned groups and ``T`` all of them: ``r`` is computed from
    integers and one division, so one group filling an axis gives exactly ``w_g / N_g``.
    """

    base: np.ndarray
    c_in: np.ndarray
    a_in: np.ndarray
    t_in: np.ndarray
    c_out: np.ndarray
    a_out: np.ndarray
    t_out: np.ndarray
    fixed: float
    full_widths: np.ndarray
    steps: np.ndarray  # width granularity per group: lcm(partition count, round_to); widths are multiples or full
    round_to: int = 1  # the round_to the steps include (for messages)

    def ratios(self, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(widths, dtype=float)
        return (self.c_in + self.a_in @ w) / self.t_in, (self.c_out + self.a_out @ w) / self.t_out

    def cost(self, widths: np.ndarray) -> float:
        r_in, r_out = self.ratios(widths)
        return float(self.fixed + (self.base * r_in * r_out).sum())

    def step_at(self, widths: np.ndarray) -> np.ndarray:
        """Channels removed by one step from ``widths`` down to the next allowed width (``w mod s``, else ``s``)."""
        w, s = np.asarray(widths, dtype=int), self.steps.astype(int)
        return np.where(w % s == 0, s, w % s)

    def can_shrink(self, widths: np.ndarray) -> np.ndarray:
        """Whether one more step leaves each group at least its granularity (never empties a group)."""
        return np.asarray(widths, dtype=int) - self.step_at(widths) >= self.steps.astype(int)

    def saving_per_step(self, widths: np.ndarray) -> np.ndarray:
        """Exact cost saved by removing ``step_at(widths)[g]`` channels from each group ``g`` (vector over groups)."""
        r_in, r_out = self.ratios(widths)
        s = self.step_at(widths).astype(float)
        d_in, d_out = self.a_in / self.t_in[:, None], self.a_out / self.t_out[:, None]
        return s * (d_in.T @ (self.base * r_out) + d_out.T @ (self.base * r_in)) - s * s * ((d_in * d_out).T @ self.base)

    def minimum_widths(self) -> np.ndarray:
        """One granule per group (``steps``), or the full width of a group narrower than that."""
        full = self.full_widths.astype(int)
        return np.minimum(self.steps.astype(int), full)

    def floor(self) -> float:
        """The smallest reachable fraction of the full cost (every group at its minimum width)."""
        return self.cost(self.minimum_widths()) / self.cost(self.full_widths)


class _Ratios:
    """Per target: the positions each group holds on its rows (``rows``, ``params``), columns (``cols``) or, for
    a graph value, its channel axis (``tensors``),
    divided by the group's width (positions per channel), one entry per group."""

    def __init__(self, groups: list[ChannelGroup]) -> None:
        self.size = len(groups)
        self.rows: dict[str, np.ndarray] = {}
        self.cols: dict[str, np.ndarray] = {}
        self.params: dict[str, tuple[int, np.ndarray]] = {}  # parameter name -> (axis, per-group entries)
        self.tensors: dict[str, tuple[int, np.ndarray]] = {}  # node name -> (channel axis length, per-group entries)
        for g, group in enumerate(groups):
            for ref in [*group.producers, *group.carriers]:
                if ref.kind == "param":
                    axis, entry = self.params.setdefault(ref.target, (ref.axis, np.zeros(self.size)))
                    entry[g] += ref.positions.numel() / group.width
                else:
                    self.rows.setdefault(ref.target, np.zeros(self.size))[g] += ref.positions.numel() / group.width
            for consumer in group.consumers:
                self.cols.setdefault(consumer.target, np.zeros(self.size))[g] += consumer.columns.numel() / group.width
            for ref in group.tensors:  # graph values holding the channels (the latency model's)
                _, entry = self.tensors.setdefault(ref.node, (ref.size, np.zeros(self.size)))
                entry[g] += ref.positions.numel() / group.width


def _affine(entry: np.ndarray | None, total: int, full: np.ndarray) -> tuple[float, np.ndarray, float]:
    """``(c, A, T)`` with ``r(w) = (c + A.w) / T``: ``total`` positions, ``entry[g]`` per channel of group g."""
    if entry is None or total == 0:
        return 1.0, np.zeros(len(full)), 1.0
    return float(total - entry @ full), entry, float(total)


def cost_model(model: nn.Module, groups: list[ChannelGroup], example: torch.Tensor, kind: str,
               round_to: int = 1, nodes: list[fx.Node] | None = None,
               seconds: dict[str, float] | None = None) -> CostModel:
    """The cost model of ``kind`` (``"flops"``, ``"params"``: exact; ``"latency"``) over ``groups`` of ``model``.

    ``round_to``: kept widths must also be multiples of it (or full), see :func:`granularity`.
    ``"latency"`` needs the traced ``nodes`` and each call node's measured ``seconds``
    (:mod:`greedyprune.latency`): the cost is the full-width time of each node scaled by its kept fraction.
    """
    full = np.array([g.width for g in groups], dtype=float)
    table = _Ratios(groups)
    items: list[tuple[float, tuple, tuple]] = []
    fixed = 0.0
    modules = dict(model.named_modules())
    if kind == "flops":
        per_module, total = module_flops(model, example)
        fixed = float(total)
        for name, module in modules.items():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and name in per_module:
                flops = float(per_module[name])
                fixed -= flops
                items.append((flops, *_ratios_of(table, name, module, full)))
    elif kind == "params":
        unchanged = (1.0, np.zeros(len(groups)), 1.0)
        for name, module in modules.items():
            prefix = f"{name}." if name else ""
            for pname, p in module.named_parameters(recurse=False):
                if prefix + pname in table.params:  # a per-channel parameter (e.g. a layer scale)
                    axis, entry = table.params[prefix + pname]
                    items.append((float(p.numel()), unchanged, _affine(entry, p.shape[axis], full)))
                    continue
                r_in, r_out = _ratios_of(table, name, module, full)
                matrix = pname == "weight" and p.dim() > 1 and not isinstance(module, Norm)
                items.append((float(p.numel()), r_in if matrix else unchanged, r_out))
    elif kind == "latency":
        if nodes is None or seconds is None:
            raise ValueError("a latency cost model needs the traced nodes and their measured seconds")
        fixed, items = _latency_items(modules, nodes, seconds, table, full)
    else:
        raise ValueError(f"cost kind must be 'flops', 'params' or 'latency', got {kind!r}")
    def column(part: int, field: int) -> np.ndarray:
        values = [item[part][field] for item in items]
        return np.array(values).reshape(-1, len(groups)) if field == 1 else np.array(values, dtype=float)

    return CostModel(np.array([i[0] for i in items], dtype=float), column(1, 0), column(1, 1), column(1, 2),
                     column(2, 0), column(2, 1), column(2, 2), fixed, full,
                     np.array([granularity(g, round_to) for g in groups], dtype=int), round_to)


def _latency_items(modules: dict[str, nn.Module], nodes: list[fx.Node], seconds: dict[str, float],
                   table: _Ratios, full: np.ndarray) -> tuple[float, list]:
    """``fixed`` seconds and one ``(t, r_in, r_out)`` item per node that scales with the widths."""
    check_seconds(nodes, seconds)
    unchanged = (1.0, np.zeros(table.size), 1.0)
    fixed, items = 0.0, []
    for node in nodes:
        if node.op not in TIMED_OPS:
            continue
        t = float(seconds[node.name])
        module = modules.get(node.target) if node.op == "call_module" else None
        if module is not None and is_product(module):
            items.append((t, *_ratios_of(table, node.target, module, full)))
        elif node.name in table.tensors:
            size, entry = table.tensors[node.name]
            items.append((t, unchanged, _affine(entry, size, full)))
        else:
            fixed += t
    return fixed, items


class Blocks(int):
    """A ``round_to`` of SIMD blocks (a latency budget's ``latency_round_to``): as ``round_to`` for a group at least
    one block wide; a narrower group (it runs in one padded block whatever its width) is rounded to the widest
    power of two that leaves it two steps (12 channels in blocks of 16: steps of 4), so it can still shrink."""


def granularity(group: ChannelGroup, round_to: int = 1) -> int:
    """The multiple every kept width of ``group`` must be (its full width excepted): lcm(partition, round_to)
    (``round_to`` a :class:`Blocks` wider than the group: the largest power of two <= width / 2 instead)."""
    if isinstance(round_to, Blocks) and group.width < round_to:
        return math.lcm(group.partition, 1 << max(0, (group.width // 2).bit_length() - 1))
    return math.lcm(group.partition, round_to)


def _ratios_of(table: _Ratios, name: str, module: nn.Module, full: np.ndarray) -> tuple[tuple, tuple]:
    """Input-column and output-row ratios of one layer (a depthwise conv has rows only: its in = out)."""
    weight = getattr(module, "weight", None)
    rows = weight.shape[0] if isinstance(weight, torch.Tensor) and weight.dim() > 0 else 0
    cols = module.in_channels if isinstance(module, nn.Conv2d) else \
        module.in_features if isinstance(module, nn.Linear) else 0
    return _affine(table.cols.get(name), cols, full), _affine(table.rows.get(name), rows, full)
