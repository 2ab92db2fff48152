"""The whole-network pipeline: channel groups in forward order, each pruned by the selection engine.

Data flow for group ``g`` spanning stages ``a..b`` (see :mod:`greedyprune.adapters`):

1. Two activation caches hold, for every calibration batch, the input of stage ``a`` in the pruned
   network and in the original network (stages before ``a`` are never re-run: block-input caching).
2. Per batch: the original stages run up to the consumer's output (the target ``T``, minus bias);
   the pruned stages run up to the consumer's input ``X``; both passes stop right there.
   :class:`ConsumerStatistics` accumulates ``H``, ``M``, means and energy in float64.
3. The engine picks the kept channels and coefficients; :func:`apply_selection` folds the
   coefficients into the consumer, corrects its bias, and removes the channels everywhere.

Inputs come from the already-pruned network and targets from the original one (sequential error
correction), so each group also repairs what earlier groups disturbed. Calibration costs roughly
one pass of each network plus, per group, the part of its stage before the consumer.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from .adapters import find_adapter
from .budget import allocate_by_error, allocate_uniform, check_fraction, cost_model, keep_widths
from .calibration import agree_on_selection, as_batches, check_on_every_rank, global_count, share_over_ranks
from .distributed import same_error_on_every_rank
from .errors import UserError
from .metrics import count_flops, count_parameters
from .refit import check_refit_options, global_refit, targets_of
from .report import GroupReport, PruneReport
from .selection import greedy_select_gram, methods_with_replacement, registered_methods
from .stats import ChannelMean, ConsumerStatistics, capture_input, run_stages
from .stats.collect import iter_group_statistics, magnitude_scores
from .stats.consumer import output_columns as _output_cols
from .surgery import apply_selection
from .train.batchnorm import recalibrate_batchnorm_on
from .train.checkpoint import resolve_device


class Pruner:
    """Greedy forward-selection pruner. ``step()`` prunes the next channel group; ``run()`` does all.

    Args:
        model: a model some adapter supports (left untouched; ``pruner.model`` is the pruned copy).
        calibration: DataLoader or iterable of image batches (or ``(images, labels)``).
        method: a selection method name (``reoptimized`` default, ``uniform``, ``uniform-noreplace``,
            ``magnitude``, ``magnitude-norefit``, ``random``, ``reoptimized-simplex``).
        keep / flops / params: exactly one budget: kept fraction per group, or a global fraction of
            the original FLOPs / parameters (widths allocated from greedy error curves, see budget.py).
        allocation: ``error`` (default) or ``uniform`` for the flops/params budgets.
        widths: explicit {group name: width} instead of a budget (used to match widths across methods).
        device: where to prune (``cpu``, ``cuda``, ``cuda:N``); default: the device ``model`` is on.
        damping: ridge of the least-squares refits, relative to the mean diagonal of ``G`` (default
            1e-4: keeps ill-conditioned groups from fitting calibration noise with huge coefficients;
            ``experiments/damping_sweep.py`` measured top-1 flat from 1e-6 to 1e-2).
        precision: ``float32`` (default: each batch's products in float32, accumulated in float64; about
            twice as fast) or ``float64`` (every product in float64; for exactness checks).
        materialize: False keeps full width and zeroes removed channels instead (a test reference).
        recalibrate_bn: after the last group, re-estimate every BatchNorm's running statistics on the
            calibration batches (:func:`~greedyprune.train.recalibrate_batchnorm_on`). Least-squares
            refits shrink outputs toward their mean and the next BN passes that on; recalibrating
            undoes it (on the Fashion-MNIST BatchNorm models it raised greedy's top-1 before fine-tuning
            in 8 of 12 settings, by up to 5.1 points, and lowered it by up to 8.3 at steep targets; see
            README "Results on Fashion-MNIST"). Weights and kept channels are unchanged.
        refit: ``"global"`` refits, after the last group, every pruned group's consumer weights and bias
            sinks jointly so the pruned network's penultimate features match the original's on the
            calibration images (:mod:`greedyprune.refit`; no labels; never worse on them); None: off.
        refit_iters: L-BFGS iterations of the refit (each about 2 forward+backward passes over the
            calibration images). refit_features: the module whose input is matched (default: the last
            nn.Linear to run, i.e. the classifier).
        shard_calibration: under ``torch.distributed``, each rank keeps every ``world_size``-th batch of
            ``calibration`` (pass False when the loader is already sharded, e.g. a DistributedSampler).
            Statistics are summed over ranks and rank 0's selection is broadcast, so every rank builds
            the same model as one process would from the whole calibration set.
    """

    def __init__(self, model: nn.Module, calibration: Iterable, method: str = "reoptimized", *,
                 keep: float | None = None, flops: float | None = None, params: float | None = None,
                 allocation: str = "error", widths: dict[str, int] | None = None, device: str | None = None,
                 seed: int = 0, damping: float = 1e-4, precision: str = "float32", materialize: bool = True,
                 progress: bool = True, shard_calibration: bool = True, recalibrate_bn: bool = False,
                 refit: str | None = None, refit_iters: int = 40, refit_features: str | None = None) -> None:
        if method not in registered_methods:
            raise UserError(f"unknown method {method!r}; choose one of {', '.join(sorted(registered_methods))}")
        budgets = [b for b in (keep, flops, params, widths) if b is not None]
        if len(budgets) != 1:
            raise UserError("give exactly one budget: keep=, flops=, params= or widths=")
        for name, value in (("keep", keep), ("flops", flops), ("params", params)):
            check_fraction(name, value)
        if allocation not in ("error", "uniform"):
            raise UserError(f"allocation must be 'error' or 'uniform', got {allocation!r}")
        if precision not in ("float64", "float32"):
            raise UserError(f"precision must be 'float64' or 'float32', got {precision!r}")
        check_refit_options(refit, refit_iters)
        if refit is not None and not materialize:
            raise UserError("refit needs materialize=True (a masked model would revive the removed columns)")
        self.refit = (refit, refit_iters, refit_features)
        self.started = time.perf_counter()
        if method == "reoptimized-simplex" and progress:
            tqdm.write("note: reoptimized-simplex solves one QP over all kept channels per pick (the slow path for "
                       "checking the convex-hull theory); expect it to be far slower than reoptimized", file=sys.stderr)
        self.device = resolve_device(device or _device_of(model))
        self.adapter = find_adapter(model)
        self.original = copy.deepcopy(model).to(self.device).eval()
        self.model = copy.deepcopy(model).to(self.device).eval()
        self.method, self.seed, self.damping, self.materialize = method, seed, damping, materialize
        self.recalibrate_bn = recalibrate_bn
        self.product_dtype = torch.float64 if precision == "float64" else torch.float32
        self.progress = progress
        self.batches = share_over_ranks(as_batches(calibration, self.device), shard_calibration)
        self.orig_stages, self.stages = self.adapter.stages(self.original), self.adapter.stages(self.model)
        self.orig_groups, self.groups = self.adapter.groups(self.original), self.adapter.groups(self.model)
        if not self.groups:
            raise UserError(f"{type(model).__name__} has no prunable channel groups")
        self._check_finite()
        example = self.batches[0][:1]
        self.budget = {"keep": keep, "flops": flops, "params": params, "allocation": allocation,
                       "widths": widths}
        self.report = PruneReport(method=method, budget={k: v for k, v in self.budget.items() if v is not None},
                                  groups=[], params_before=count_parameters(self.original),
                                  flops_before=count_flops(self.original, example),
                                  calibration_images=global_count(self.batches),
                                  input_shape=list(example.shape[1:]), device=str(self.device), seed=seed,
                                  options={"damping": damping, "precision": precision, "materialize": materialize,
                                           "recalibrate_bn": recalibrate_bn,
                                           **({"refit": refit, "refit_iters": refit_iters} if refit else {})})
        self.widths = self._widths(keep, flops, params, allocation, widths, example)
        self.x_pruned = list(self.batches)
        self.x_orig = list(self.batches)
        self.cached_stage = 0
        self._orig_ahead: tuple[int, list[torch.Tensor]] | None = None
        self._target_cache: dict[int, list[torch.Tensor]] = {}
        self.next_group = 0

    # ----------------------------------------------------------------------------------------- budget
    def _widths(self, keep, flops, params, allocation, widths, example) -> list[int]:
        if keep is not None:
            return keep_widths(self.groups, keep)
        if widths is not None:
            unknown = sorted(set(widths) - {g.name for g in self.groups})
            if unknown:
                raise UserError(f"widths name unknown groups {unknown[:3]}; the groups are "
                                f"{', '.join(g.name for g in self.groups[:4])}, ...")
            out = [int(widths.get(g.name, g.width)) for g in self.groups]
            bad = [g.name for g, w in zip(self.groups, out) if not 1 <= w <= g.width]
            if bad:
                raise UserError(f"widths for {bad[:3]} are outside 1..channels; a group cannot be emptied")
            return out
        kind, target = ("flops", flops) if flops is not None else ("params", params)
        costs = cost_model(self.original, self.orig_groups, example, kind)
        if allocation == "uniform":
            return allocate_uniform(costs, target)
        return allocate_by_error(costs, self.error_curves(), target)

    def error_curves(self) -> list[torch.Tensor]:
        """Each group's full ``reoptimized`` error curve on the *original* network (one extra pass)."""
        return [greedy_select_gram(s.gram, s.cross, s.energy, group.width, damping=self.damping).errors
                for group, s in iter_group_statistics(self.original, self.batches, self.product_dtype,
                                                      progress=self.progress)]

    # ----------------------------------------------------------------------------------------- steps
    def _check_finite(self) -> None:
        """The model runs on the calibration images and stays finite (else a one-line error naming the layer).

        Agreed over ranks: one rank's bad batch stops every rank with the same error (no rank hangs)."""
        check_on_every_rank(self.original, self.batches)

    def _advance(self, stage: int) -> None:
        """Move both activation caches forward to the input of ``stage``."""
        if stage <= self.cached_stage:
            return
        with torch.no_grad():
            self.x_pruned = [run_stages(self.stages[self.cached_stage:stage], x) for x in self.x_pruned]
            start, xs = self.cached_stage, self.x_orig
            if self._orig_ahead is not None and self.cached_stage < self._orig_ahead[0] <= stage:
                start, xs = self._orig_ahead  # the original stages already ran while collecting targets
            self.x_orig = [run_stages(self.orig_stages[start:stage], x) for x in xs]
        self._orig_ahead = None
        self.cached_stage = stage

    def _targets(self, index: int) -> list[torch.Tensor]:
        """Original consumer outputs (minus bias) of group ``index``, one ``(C_out, P)`` tensor per batch.

        One pass of the original stages ``a..b`` collects the targets of every group spanning the same
        stages (a Bottleneck's two groups) and keeps the stages' output for :meth:`_advance`.
        """
        if index not in self._target_cache:
            a, b = self.groups[index].stages
            same = [i for i in range(index, len(self.groups))
                    if self.groups[i].stages == (a, b) and self.widths[i] < self.groups[i].width]
            outputs: dict[int, list[torch.Tensor]] = {i: [] for i in same}
            handles = [self.orig_groups[i].consumer.register_forward_hook(
                lambda mod, _args, out, i=i: outputs[i].append(_output_cols(mod, out))) for i in same]
            try:
                with torch.no_grad():
                    ahead = [run_stages(self.orig_stages[a:b + 1], x) for x in self.x_orig]
            finally:
                for handle in handles:
                    handle.remove()
            self._target_cache, self._orig_ahead = outputs, (b + 1, ahead)
        return self._target_cache.pop(index)

    def step(self) -> GroupReport | None:
        """Prune the next channel group; returns its report, or None when every group is done."""
        if self.next_group >= len(self.groups):
            return None
        index = self.next_group
        group, width = self.groups[index], self.widths[index]
        start = time.perf_counter()
        a, b = group.stages
        before = group.width
        if width >= before:  # nothing to prune: leave the group exactly as it is
            report = GroupReport(group.name, before, before, 0.0, time.perf_counter() - start, [],
                                 "kept all channels (no selection)")
            self.report.groups.append(report)
            self.next_group += 1
            return report
        self._advance(a)
        stats = ConsumerStatistics(group.consumer, group.consumer_block, self.product_dtype, name=group.name)
        side = {id(m): ChannelMean(m) for m in group.side_inputs}
        try:
            with torch.no_grad(), same_error_on_every_rank():  # a rank's NaN stops all ranks before the all_reduce
                for xp, target in zip(self.x_pruned, self._targets(index)):
                    stats.add_batch(capture_input(self.stages[a:b + 1], group.consumer, xp), target)
        finally:
            for mean in side.values():
                mean.remove()
        s = stats.statistics()
        scores = magnitude_scores(group)
        # a budget counts distinct channels: methods that may repeat a pick herd until they have `width`
        distinct = {"until_distinct": True} if self.method in methods_with_replacement else {}
        sel = greedy_select_gram(s.gram, s.cross, s.energy, min(width, before), method=self.method,
                                 damping=self.damping, scores=scores, seed=self.seed + index, **distinct)
        # every distinct pick is kept, also one a fixed-ranking refit gives weight 0 (a redundant or dead
        # channel magnitude/random chose): all methods then keep exactly the same widths
        kept, coefficients = sel.kept_channels()
        offset = stats.bias_correction(kept, coefficients)
        stats.free()
        kept, coefficients, offset = agree_on_selection(kept, coefficients, offset)
        if kept.numel() == 0:  # never leave a group empty (a layer with no inputs)
            raise UserError(f"group {group.name!r}: no channel can be selected because its consumer's output does not "
                            "vary over the calibration images (its channels are constant or dead there); use more, "
                            "and more varied, calibration images, or check the weights")
        apply_selection(group, kept, coefficients, offset, {k: m.mean() for k, m in side.items()},
                        materialize=self.materialize)
        note = sel.stopped_early
        if note is not None and self.method not in methods_with_replacement:
            note += "; the calibration data cannot tell the remaining channels apart: use more calibration images"
        report = GroupReport(group.name, before, int(kept.numel()), sel.final_error,
                             time.perf_counter() - start, [float(e) for e in sel.errors], note,
                             kept=kept.tolist(), damping=sel.damping)
        self.report.groups.append(report)
        self.next_group += 1
        return report

    def run(self) -> tuple[nn.Module, PruneReport]:
        """Prune every remaining group; returns the pruned model (eval mode) and the report."""
        bar = tqdm(total=len(self.groups), initial=self.next_group, desc=f"pruning ({self.method})",
                   disable=not self.progress)
        while (report := self.step()) is not None:
            bar.set_postfix_str(f"{report.name} {report.channels_before}->{report.channels_after} "
                                f"err {report.error:.2e}")
            bar.update(1)
        bar.close()
        self.x_pruned = self.x_orig = []
        if self.recalibrate_bn:
            recalibrate_batchnorm_on(self.model, self.batches)
        self._global_refit()
        self._orig_ahead, self._target_cache = None, {}
        example = self.batches[0][:1]
        self.report.params_after = count_parameters(self.model)
        self.report.flops_after = count_flops(self.model, example)
        self.report.seconds = time.perf_counter() - self.started
        return self.model, self.report


    def _global_refit(self) -> None:
        """The optional refit after selection (:mod:`greedyprune.refit`): only the pruned groups' parameters."""
        method, iters, features = self.refit
        pruned = [g for g, r in zip(self.groups, self.report.groups) if r.channels_after < r.channels_before]
        if method is None or not pruned:
            return
        result = global_refit(self.original, self.model, self.batches, targets_of(self.model, pruned), iters, features,
                              stages=self.stages)
        self.report.refit = result.to_dict()


def _device_of(model: nn.Module) -> torch.device:
    """Where ``model`` lives (its first parameter or buffer; CPU for a model with neither)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def prune(model: nn.Module, calibration: Iterable, method: str = "reoptimized", **options) -> tuple[nn.Module, PruneReport]:
    """Prune ``model`` with greedy forward selection; see :class:`Pruner` for the options.

    Returns ``(pruned_model, report)``; the pruned model is physically smaller.
    """
    return Pruner(model, calibration, method, **options).run()
