"""The whole-network pipeline: channel groups in graph order, each pruned by the selection engine.

Pieces (each its own module under :mod:`greedyprune.pipeline`):

* options (:class:`~greedyprune.pipeline.options.PruneOptions`): validated once;
* networks (:mod:`~greedyprune.pipeline.networks`): the original and the to-be-pruned copy (no user
  hooks), the traced graph and its channel groups (internal ones, plus streams with ``streams=True``);
* calibration (:mod:`greedyprune.calibration`): batches checked, sharded over ranks;
* budget (:mod:`greedyprune.budget`): widths from a kept fraction, explicit widths, or a FLOPs /
  parameter target allocated from error curves (collected through the same walker);
* the walker (:class:`~greedyprune.walk.GraphWalker`): per group, consumer inputs from the pruned
  network and targets from the original one (sequential error correction), cached at graph cuts;
* the objective (:mod:`greedyprune.objective`): ``(G, b, E)`` summed over consumers and bias offsets;
* one group's step (:mod:`~greedyprune.pipeline.group_step`): selection, agreement over ranks, surgery;
* the finish: hooks run after the last group (e.g. a global refit), BatchNorm recalibration, totals.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from .budget import allocate_by_error, allocate_uniform, cost_model, keep_widths
from .calibration import as_batches, check_on_every_rank, global_count, share_over_ranks
from .latency_allocation import allocate_for_latency
from .metrics import count_flops, count_parameters
from .pipeline.group_step import prune_group
from .pipeline.networks import Networks, device_of
from .pipeline.options import PruneOptions
from .pipeline.state import PruneState
from .pipeline.statistics import iter_group_problems
from .pipeline.widths import explicit_widths, latency_model
from .refit.hook import plan_refit
from .report import GroupReport, PruneReport
from .selection import greedy_select_gram
from .stats.precision import effective as effective_precision
from .train.batchnorm import recalibrate_batchnorm_on
from .train.checkpoint import resolve_device
from .walk import GraphWalker
from .walk.targets import TargetCache


class Pruner:
    """Greedy forward-selection pruner. ``step()`` prunes the next channel group; ``run()`` does all.

    Args:
        model: a model whose channel groups can be traced (left untouched, hooks included;
            ``pruner.model`` is the pruned copy).
        calibration: DataLoader or iterable of image batches (or ``(images, labels)``), all of one image size.
        method: a selection method name (``greedyprune.registered_methods``: ``reoptimized`` default,
            ``uniform``, ``uniform-noreplace``, ``magnitude``, ``magnitude-norefit``, ``random``,
            ``reoptimized-simplex``); the options each method takes are filled in by the pipeline.
        options: see :class:`~greedyprune.pipeline.options.PruneOptions`: exactly one budget (``keep``,
            ``flops``, ``params``, ``latency`` (a fraction of the measured latency, :mod:`greedyprune.latency`)
            or ``widths``), ``allocation`` (``"error"``; ``"latency"``: a flops/params target with the steps
            ranked by measured latency saved, capped at the uniform allocation's modelled latency
            (``latency_cap_uniform``); ``"uniform"``), ``latency_round_to`` (a latency budget's widths in whole
            SIMD blocks; default the CPU's float lanes), ``latency_seconds`` (a report's recorded node
            times, to repeat its allocation), ``round_to`` (kept widths multiples of it,
            or full: e.g. 8 or 16 for CPU convolutions), ``streams`` (also prune residual streams
            and block outputs), ``objective``, ``device``, ``seed``, ``damping`` (ridge relative to the mean
            diagonal of ``G``, default 1e-4), ``precision`` (``float32`` products per batch accumulated in
            float64, ``float64``, or ``bfloat16``: oneDNN's bfloat16 math mode, about twice as fast on
            CPUs with native bfloat16, :mod:`greedyprune.stats.precision`), ``materialize`` (False zeroes
            removed channels at full width),
            ``recalibrate_bn``, ``shard_calibration``, ``progress``, ``refit`` (``"global"``: after the
            last group refit the pruned groups' consumer weights and bias sinks jointly so the penultimate
            features match the original's on the calibration images, :mod:`greedyprune.refit`; ``"auto"``,
            the default: the method's registered default -- global for the greedy reconstruction methods,
            none for the baselines -- skipped with the reason in ``report.refit_skipped`` where it cannot
            apply; ``None``/``"none"``: off), ``refit_iters`` (L-BFGS iterations, default 40),
            ``refit_features``. An unknown option is an error.

    Under ``torch.distributed`` each rank keeps every ``world_size``-th batch (``shard_calibration``),
    statistics are summed over ranks and rank 0's selection is broadcast, so every rank builds the same
    model as one process would from the whole calibration set.
    """

    def __init__(self, model: nn.Module, calibration: Iterable, method: str = "reoptimized", **options) -> None:
        self.options = o = PruneOptions.from_keywords(method, options)
        self.started = time.perf_counter()
        self.first_objective = None  # (objective, problem) of the first group from the error-curve pass
        if o.method == "reoptimized-simplex" and o.progress:
            tqdm.write("note: reoptimized-simplex solves one QP over all kept channels per pick (the slow path for "
                       "checking the convex-hull theory); expect it to be far slower than reoptimized", file=sys.stderr)
        self.device = resolve_device(o.device or device_of(model))
        granule = o.granule(self.device)
        if granule != o.round_to:  # a latency budget: widths in whole SIMD blocks (latency_round_to)
            self.options = o = dataclasses.replace(o, round_to=granule)
        self.batches = share_over_ranks(as_batches(calibration, self.device), o.shard_calibration)
        networks = Networks.build(model, self.device, self.batches[0])
        self.original, self.model, self.nodes = networks.original, networks.pruned, networks.nodes
        check_on_every_rank(self.original, self.batches)
        # the pruned copy starts equal to the original; removed channels can be sliced off computed values
        self.walker = GraphWalker(self.nodes, self.original, self.model, self.batches, networks.prunable(o.streams),
                                  same_start=True, slicing=o.materialize, cache_bytes=o.cache_mb * 2 ** 20)
        self.groups = self.walker.groups  # in walking order
        self.state = PruneState(self.model, self.original)
        example = self.batches[0][:1]
        self.report = PruneReport(method=o.method, budget=o.budget, groups=[],
                                  params_before=count_parameters(self.original),
                                  flops_before=count_flops(self.original, example),
                                  calibration_images=global_count(self.batches), input_shape=list(example.shape[1:]),
                                  device=str(self.device), seed=o.seed,
                                  options={"damping": o.damping, "precision": o.precision,
                                           "products": effective_precision(o.precision, self.device),
                                           "materialize": o.materialize, "recalibrate_bn": o.recalibrate_bn, "streams": o.streams,
                                           "objective": o.objective, "refit": o.refit_method,
                                           "round_to": int(o.round_to), "cache_mb": o.cache_mb})
        self.widths = self._widths(example)
        self.next_group = 0
        # called with the pruner after the last group, before BatchNorm recalibration (e.g. a global refit)
        self.finish_hooks: list[Callable[["Pruner"], None]] = []
        self.refit_features: str | None = None  # the module whose input (or output) the refit matches
        plan_refit(self)  # greedyprune.refit: the global refit after selection (or why not)

    # ------------------------------------------------------------------------------------------ budget
    def _widths(self, example: torch.Tensor) -> list[int]:
        o = self.options
        if o.keep is not None:
            return keep_widths(self.groups, o.keep, o.round_to)
        if o.widths is not None:
            return explicit_widths(self.groups, o.widths, o.round_to)
        kind, target = next((k, getattr(o, k)) for k in ("flops", "params", "latency") if getattr(o, k) is not None)
        latency = None
        if kind == "latency" or o.allocation == "latency":
            latency, seconds = latency_model(self.original, self.nodes, self.groups, self.batches[0], o.round_to,
                                             o.latency_seconds)
            self.report.options["latency_seconds"] = seconds
        costs = latency if kind == "latency" else cost_model(self.original, self.groups, example, kind, o.round_to)
        if o.allocation == "uniform":
            widths = allocate_uniform(costs, target, kind)
        elif latency is not None and kind != "latency":
            widths, weight = allocate_for_latency(costs, self.error_curves(), target, latency, kind,
                                                  cap_at_uniform=o.latency_cap_uniform)
            self.report.options["latency_weight"] = weight  # 0: the ranking alone met the cap; None: uniform
        else:
            widths = allocate_by_error(costs, self.error_curves(), target, kind, rank=latency)
        if latency is not None:  # the latency model's kept fraction (a measured speed-up is the bench's)
            self.report.options["latency_model_kept"] = latency.cost(widths) / latency.cost(latency.full_widths)
        return widths

    def error_curves(self) -> list[torch.Tensor]:
        """Each group's full ``reoptimized`` error curve on the *original* network (one extra pass).

        The first group's objective is kept for :meth:`step`: pruning it sees the same inputs and targets.
        """
        first: dict = {}
        record = TargetCache(self.options.cache_mb * 2 ** 20)
        curves = [problem.reported(greedy_select_gram(problem.gram, problem.cross, problem.energy, group.width,
                                                      damping=self.options.damping, partition=group.partition).errors)
                  for group, problem, _ in iter_group_problems(self.original, self.nodes, self.groups, self.batches,
                                                               self.options.precision, self.options.objective,
                                                               progress=self.options.progress, first=first,
                                                               record=record, own_targets=True)]
        self.first_objective = first.get(self.groups[0].name) if self.groups else None
        if record.recorded:  # the latest visits within cache_mb: the prune pass reads their targets instead of
            self.walker.targets = record  # running the original network from the first of them on
        return curves

    # ------------------------------------------------------------------------------------------- steps
    def step(self) -> GroupReport | None:
        """Prune the next channel group; returns its report, or None when every group is done."""
        if self.next_group >= len(self.groups):
            return None
        index = self.next_group
        collected = self.first_objective if index == 0 else None
        self.first_objective = None
        report = prune_group(self.groups[index], index, self.widths[index], self.walker, self.state, self.options,
                             collected)
        self.report.groups.append(report)
        self.next_group += 1
        return report

    def run(self) -> tuple[nn.Module, PruneReport]:
        """Prune every remaining group, then :meth:`finish`; returns the pruned model (eval mode) and the report."""
        bar = tqdm(total=len(self.groups), initial=self.next_group, desc=f"pruning ({self.options.method})",
                   disable=not self.options.progress)
        while (report := self.step()) is not None:
            bar.set_postfix_str(f"{report.name} {report.channels_before}->{report.channels_after} "
                                f"err {report.error:.2e}")
            bar.update(1)
        bar.close()
        return self.finish()

    def finish(self) -> tuple[nn.Module, PruneReport]:
        """After the last group: :attr:`finish_hooks` (e.g. a global refit), BatchNorm recalibration, totals."""
        self.walker = None  # drop the cached activations
        for hook in self.finish_hooks:
            hook(self)
        if self.options.recalibrate_bn:
            recalibrate_batchnorm_on(self.model, self.batches)
        example = self.batches[0][:1]
        self.report.params_after = count_parameters(self.model)
        self.report.flops_after = count_flops(self.model, example)
        self.report.seconds = time.perf_counter() - self.started
        return self.model.eval(), self.report


def prune(model: nn.Module, calibration: Iterable, method: str = "reoptimized", **options) -> tuple[nn.Module, PruneReport]:
    """Prune ``model`` with greedy forward selection; see :class:`Pruner` for the options.

    Returns ``(pruned_model, report)``; the pruned model is physically smaller.
    """
    return Pruner(model, calibration, method, **options).run()
