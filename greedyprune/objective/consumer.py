"""One consumer's share of a group's reconstruction objective.

Consumer ``k`` (weight ``W``, input ``x`` in the pruned network) computes
``y = W_g x_g + W_F x_F + bias``: ``x_g`` the group's channels, ``x_F`` everything else it reads
(channels of other groups, frozen channels). Its target is the original output at the rows it still
has, ``t = Y_orig[rows] - bias_orig[rows]``; what the group must reconstruct is

    ``t' = t - W_F x_F - shift``

(the other columns' current contribution and the offsets earlier groups already added are fixed).
Candidate ``i`` contributes ``c_i = W_i x_i`` and :class:`~greedyprune.stats.ConsumerStatistics` gives
``G_k``, ``b_k``, ``E_k`` in float64 (summed from the contributions themselves, without the input
covariance, for a Linear reading a wide flattened input: :mod:`greedyprune.stats.contributions`).
A grouped conv (``P`` groups, not depthwise) only lets channel
``i`` of partition ``p`` reach the rows of ``p``: ``G_k`` is block diagonal, each block the statistics
of a dense conv on that partition's channels and rows; rows of partitions holding no group channel
add their energy only. The bias offset of the consumer is ``mean(t') - sum_{i in S} g_i W_i mean(x_i)``
per row (the optimal constant under centred statistics).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import all_reduce_sum
from ..stats.contributions import consumer_statistics
from ..stats.own_output import OwnOutputStatistics
from .base import ConsumerView


def output_rows(module: nn.Module, out: torch.Tensor, rows: torch.Tensor | None,
                buffer: torch.Tensor | None = None) -> torch.Tensor:
    """A layer's output as ``(rows, positions)`` columns (conv: channels; Linear: last axis), minus its bias.

    A conv's columns are a copy, written into ``buffer`` if it has their shape, dtype and device."""
    if module.bias is not None:
        shape = (1, -1, 1, 1) if isinstance(module, nn.Conv2d) else (1, -1)
        out = out - module.bias.detach().reshape(shape)
    if isinstance(module, nn.Conv2d):
        source = out.transpose(0, 1)
        shape = (source.shape[0], source[0].numel())
        if buffer is not None and tuple(buffer.shape) == shape and buffer.dtype == source.dtype and \
                buffer.device == source.device:
            cols = buffer
            cols.view(source.shape).copy_(source)
        else:
            cols = source.reshape(shape)
    else:
        cols = out.reshape(-1, out.shape[-1]).T
    return cols if rows is None else cols.index_select(0, rows.to(cols.device))


def channel_axis(module: nn.Module) -> int:
    return 1 if isinstance(module, nn.Conv2d) else -1


def partitions_of(module: nn.Module) -> int:
    """Conv groups of a grouped (not depthwise) conv; 1 otherwise."""
    return module.groups if isinstance(module, nn.Conv2d) else 1


class TargetMoments:
    """``sum_p t_p``, ``sum_p ||t_p||^2`` and the count, for a centred energy (float64, all-reduced)."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.square = torch.zeros((), dtype=torch.float64)
        self.count = 0

    def add(self, t: torch.Tensor) -> None:
        t = t.to(torch.float64)
        s = t.sum(1)
        self.total = s if self.total is None else self.total + s
        self.square = self.square.to(t.device) + t.pow(2).sum()
        self.count += t.shape[1]

    def reduce(self) -> None:
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.square.device)
        all_reduce_sum(self.total, self.square, count)
        self.count = int(count.item())

    def mean(self) -> torch.Tensor:
        return self.total / max(self.count, 1)

    def energy(self) -> torch.Tensor:
        return (self.square - self.count * self.mean().pow(2).sum()).clamp_min(0.0)


class ConsumerTerm:
    """Statistics of one (non-gate) consumer over the group's channels; see the module docstring."""

    def __init__(self, view: ConsumerView, product_dtype: torch.dtype, name: str, own_targets: bool = False) -> None:
        """``own_targets``: the targets are the consumer's own outputs on the inputs given (an unpruned network):
        then a consumer reading only the group's channels needs no cross products
        (:mod:`greedyprune.stats.own_output`)."""
        self.view, module = view, view.module
        self.buffer: torch.Tensor | None = None  # the last batch's target columns, reused
        self.axis = channel_axis(module)
        self.flat_columns = view.columns.reshape(-1)
        total_in = module.weight.shape[1] * partitions_of(module)
        self.fixed = total_in > self.flat_columns.numel()
        original_rows = view.original.weight.shape[0]
        self.all_rows = view.original_rows.numel() == original_rows and \
            bool((view.original_rows == torch.arange(original_rows)).all())
        self.shifted = bool(view.shift.abs().max() > 0) if view.shift.numel() else False
        block = view.columns.shape[1]
        own = own_targets and not self.fixed and not self.shifted
        self.parts = []  # (group channel indices, input columns or None = all, rows among view.rows, stats, W)
        for channels, columns, rows, weight in self._partitions():
            stats = consumer_statistics(module, weight, block, int(channels.numel()), product_dtype, name, own)
            everything = not self.fixed and partitions_of(module) == 1 and \
                bool((columns == torch.arange(columns.numel())).all())
            self.parts.append((channels, None if everything else columns, rows, stats, weight))
        covered = torch.cat([p[2] for p in self.parts]) if self.parts else torch.zeros(0, dtype=torch.long)
        left = torch.ones(view.rows.numel(), dtype=torch.bool)
        left[covered] = False
        self.left_rows = left.nonzero().squeeze(1)
        self.left = TargetMoments() if self.left_rows.numel() else None
        self.reference = TargetMoments() if self.fixed else None
        # every part's b and E follow from its G: the target is needed only for rows no part covers
        self.own = own and all(isinstance(p[3], OwnOutputStatistics) for p in self.parts)

    def _partitions(self):
        """Per conv partition holding group channels: (channels, their input columns, rows, dense weight)."""
        view, module = self.view, self.view.module
        width = view.columns.shape[0]
        w = module.weight.detach()
        parts = partitions_of(module)
        if parts == 1:
            weight = w.index_select(0, view.rows.to(w.device)).index_select(1, self.flat_columns.to(w.device))
            yield torch.arange(width), self.flat_columns, torch.arange(view.rows.numel()), weight
            return
        per_in, per_out = module.in_channels // parts, module.out_channels // parts
        first = view.columns[:, 0]
        for p in range(parts):
            channels = ((first >= p * per_in) & (first < (p + 1) * per_in)).nonzero().squeeze(1)
            if channels.numel() == 0:
                continue
            rows = ((view.rows >= p * per_out) & (view.rows < (p + 1) * per_out)).nonzero().squeeze(1)
            columns = view.columns[channels].reshape(-1)
            local_rows = view.rows[rows].to(w.device)
            yield channels, columns, rows, w.index_select(0, local_rows).index_select(1, (columns - p * per_in).to(w.device))

    def _fixed_output(self, x: torch.Tensor) -> torch.Tensor:
        """``W_F x_F`` (the columns outside the group) as ``(current rows, positions)``."""
        module, masked = self.view.module, x.clone()
        index = [slice(None)] * x.dim()
        index[self.axis] = self.flat_columns.to(x.device)
        masked[tuple(index)] = 0
        if isinstance(module, nn.Conv2d):
            out = F.conv2d(masked, module.weight, None, module.stride, module.padding, module.dilation, module.groups)
        else:
            out = F.linear(masked, module.weight)
        cols = out.transpose(0, 1).reshape(out.shape[1], -1) if isinstance(module, nn.Conv2d) else \
            out.reshape(-1, out.shape[-1]).T
        return cols.index_select(0, self.view.rows.to(cols.device))

    def add_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        view = self.view
        if self.own and self.left is None:
            for _, columns, _, stats, _ in self.parts:
                stats.add_batch(x if columns is None else x.index_select(self.axis % x.dim(), columns.to(x.device)))
            return
        t = output_rows(view.original, y, None if self.all_rows else view.original_rows, self.buffer)
        if isinstance(view.original, nn.Conv2d) and t.untyped_storage().data_ptr() != y.untyped_storage().data_ptr():
            self.buffer = t  # a copy of y: the next batch's target goes there (it is not kept beyond the batch)
        if self.reference is not None:
            self.reference.add(t)
            t = t - self._fixed_output(x).to(t)
        if self.shifted:
            t = t - view.shift.to(t).unsqueeze(1)
        axis = self.axis % x.dim()
        for _, columns, rows, stats, _ in self.parts:
            part_x = x if columns is None else x.index_select(axis, columns.to(x.device))
            stats.add_batch(part_x, t if rows.numel() == t.shape[0] else t.index_select(0, rows.to(t.device)))
        if self.left is not None:
            self.left.add(t.index_select(0, self.left_rows.to(t.device)))

    def problem(self, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """``(G_k, b_k, E_k, E_ref_k, samples)`` over the group's ``width`` channels."""
        gram = cross = None
        energy = torch.zeros((), dtype=torch.float64)
        samples = 0
        for channels, _, _, stats, weight in self.parts:
            s = stats.statistics(weight.reshape(weight.shape[0], -1))
            if gram is None:
                gram = torch.zeros(width, width, dtype=torch.float64, device=s.gram.device)
                cross = torch.zeros(width, dtype=torch.float64, device=s.gram.device)
            index = channels.to(gram.device)
            gram[index.unsqueeze(1), index.unsqueeze(0)] += s.gram
            cross[index] += s.cross
            energy = energy.to(s.energy.device) + s.energy
            samples = s.samples
        if self.left is not None:
            self.left.reduce()
            energy = energy + self.left.energy().to(energy.device)
        reference = energy
        if self.reference is not None:
            self.reference.reduce()
            reference = self.reference.energy().to(energy.device)
        return gram, cross, energy, reference, samples

    def offset(self, kept: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """Output offset for each *current* row of the consumer (0 on rows outside ``view.rows``)."""
        module, view = self.view.module, self.view
        delta = torch.zeros(module.weight.shape[0], dtype=torch.float64, device=module.weight.device)
        for channels, _, rows, stats, weight in self.parts:
            local = torch.isin(channels, kept.cpu()).nonzero().squeeze(1)
            chosen = torch.searchsorted(kept.cpu(), channels[local])
            part = stats.bias_correction(local, coefficients.cpu()[chosen], weight.reshape(weight.shape[0], -1))
            delta[view.rows[rows].to(delta.device)] = part.to(delta)
        if self.left is not None:
            delta[view.rows[self.left_rows].to(delta.device)] = self.left.mean().to(delta)
        return delta

    def free(self) -> None:
        self.buffer = None
        for part in self.parts:
            part[3].free()

