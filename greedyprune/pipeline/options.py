"""The pruner's options in one validated dataclass (the keywords of :func:`greedyprune.prune`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..budget import ALLOCATIONS, check_fraction, check_round_to
from ..costmodel import Blocks
from ..errors import UserError
from ..latency import simd_channels
from ..objective import registered_objectives
from ..options import opt
from ..refit import check_refit_options, resolve_refit
from ..selection import registered_methods
from ..stats.precision import PRECISIONS


@dataclass
class PruneOptions:
    """Every option of :class:`~greedyprune.Pruner` except the model and the calibration data."""

    method: str = opt("reoptimized", "selection method (see greedyprune.registered_methods)")
    keep: float | None = opt(None, "kept fraction of every group")
    flops: float | None = opt(None, "target fraction of the original FLOPs (widths from error curves)")
    params: float | None = opt(None, "target fraction of the original parameters")
    latency: float | None = opt(None, "target fraction of the measured latency (each traced node timed on the first "
                                      "8 calibration images, scaled by its kept channels; greedyprune.latency)")
    allocation: str = opt("error", "how a flops/params/latency target is split over groups: 'error' (smallest error "
                                   "rise per unit of the target's cost), 'latency' (per second of measured latency "
                                   "saved, for a flops/params target: faster models at the same FLOPs), 'uniform' "
                                   "(one kept fraction)", choices=list(ALLOCATIONS))
    latency_cap_uniform: bool = opt(True, "allocation='latency' with a flops/params target: if the widths it picks "
                                          "are slower by the latency model than one kept fraction in every group "
                                          "at the same target, trade error for latency until they are not "
                                          "(docs/budget.md); False: the error-per-second ranking alone")
    latency_round_to: int | None = opt(None, "with allocation='latency' or a latency= target and round_to=1: the "
                                             "multiple kept widths are rounded to (a group narrower than it: the "
                                             "widest power of two leaving it two steps); None: the CPU's SIMD "
                                             "width in floats (16 with AVX-512, 8 with AVX2: oneDNN computes "
                                             "channels in blocks of it), 1 on a GPU; 1: any width")
    latency_seconds: dict[str, float] | None = opt(None, "measured node times to reuse instead of measuring (a "
                                                         "report's options['latency_seconds']): the same allocation "
                                                         "again")
    widths: dict[str, int] | None = opt(None, "explicit {group name: width} instead of a budget")
    round_to: int = opt(1, "kept widths are multiples of this (or the group's full width); 8 or 16 suit CPU "
                           "convolutions, which compute channels in blocks (see docs/budget.md); 1: any width")
    streams: bool = opt(False, "also prune residual streams and block outputs (groups of kind 'stream')")
    objective: str = opt("reconstruction", "what a group's selection optimises (registered_objectives)")
    device: str | None = opt(None, "where to prune (cpu, cuda, cuda:N); default: the model's device")
    seed: int = opt(0, "seed of the random baseline (group i uses seed + i)")
    damping: float = opt(1e-4, "ridge of the least-squares refits, relative to mean diag(G)")
    precision: str = opt("float32", "products per batch (sums are float64); bfloat16: float32 GEMMs in oneDNN's "
                                    "bfloat16 math mode (products within ~1e-5), about 2x faster statistics on CPUs "
                                    "with native bfloat16 (AVX-512 BF16, AMX), float32 elsewhere "
                                    "(docs/calibration_cost.md)",
                         choices=list(PRECISIONS))
    materialize: bool = opt(True, "remove channels (False: zero them at full width, a test reference)")
    progress: bool = opt(True, "show progress bars")
    cache_mb: int = opt(2048, "most memory (MiB) for each of two kinds of original-network values kept to avoid "
                              "recomputing them: the error-curve pass's consumer outputs for the prune pass (those "
                              "of the latest groups that fit), and values computed ahead of a graph cut (so up to "
                              "twice this in all); 0: recompute (the result is the same bit for bit)")
    shard_calibration: bool = opt(True, "under torch.distributed, each rank keeps every world_size-th batch")
    recalibrate_bn: bool = opt(False, "re-estimate BatchNorm statistics on the calibration batches at the end")
    refit: str | None = opt("auto", "'global': after the last group, refit the pruned groups' consumers and bias "
                                    "sinks jointly to the original's penultimate features (greedyprune.refit); "
                                    "'auto': the method's registered default (global for the greedy reconstruction "
                                    "methods, none for the baselines), skipped with the reason in the report where "
                                    "it cannot apply (e.g. no nn.Linear classifier); None or 'none': off")
    refit_iters: int = opt(40, "L-BFGS iterations of the global refit")
    refit_features: str | None = opt(None, "module whose input the refit matches (default: the last nn.Linear to run)")

    @classmethod
    def from_keywords(cls, method: str, keywords: dict) -> "PruneOptions":
        """Options from ``prune(model, data, method, **keywords)``; an unknown keyword is a one-line error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - names)
        if unknown:
            raise UserError(f"unknown option(s) {', '.join(unknown)} for greedyprune.prune; the options are "
                            f"{', '.join(sorted(names - {'method'}))}")
        return cls(method=method, **keywords).validated()

    def validated(self) -> "PruneOptions":
        if self.method not in registered_methods:
            raise UserError(f"unknown method {self.method!r}; choose one of {', '.join(sorted(registered_methods))}")
        if len([b for b in (self.keep, self.flops, self.params, self.latency, self.widths) if b is not None]) != 1:
            raise UserError("give exactly one budget: keep=, flops=, params=, latency= or widths=")
        for name in ("keep", "flops", "params", "latency"):
            check_fraction(name, getattr(self, name))
        check_round_to(self.round_to)
        if self.allocation not in ALLOCATIONS:
            raise UserError(f"allocation must be one of {', '.join(ALLOCATIONS)}, got {self.allocation!r}")
        if self.latency_seconds is not None and self.latency is None and self.allocation != "latency":
            raise UserError("latency_seconds is used only with a latency= target or allocation='latency'; drop it "
                            "or add one of those")
        if self.latency_round_to is not None:
            if self.latency is None and self.allocation != "latency":
                raise UserError("latency_round_to is used only with a latency= target or allocation='latency' (other "
                                "budgets round to round_to); drop it or add one of those")
            check_round_to(self.latency_round_to)
        if not isinstance(self.latency_cap_uniform, bool):
            raise UserError(f"latency_cap_uniform must be True or False, got {self.latency_cap_uniform!r}")
        if self.latency_seconds is not None and not isinstance(self.latency_seconds, dict):
            raise UserError(f"latency_seconds must be a dict of node name -> seconds (a report's "
                            f"options['latency_seconds']), got {type(self.latency_seconds).__name__}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.objective not in registered_objectives:
            raise UserError(f"unknown objective {self.objective!r}; choose one of "
                            f"{', '.join(sorted(registered_objectives))}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserError(f"seed must be an int, got {self.seed!r}")
        check_refit_options(self.refit, self.refit_iters)
        if self.refit_method is not None and not self.refit_automatic and not self.materialize:
            raise UserError("refit needs materialize=True (a masked model would revive the removed columns)")
        if isinstance(self.cache_mb, bool) or not isinstance(self.cache_mb, int) or self.cache_mb < 0:
            raise UserError(f"cache_mb must be an int >= 0 (MiB), got {self.cache_mb!r}")
        if not isinstance(self.damping, (int, float)) or not self.damping >= 0:
            raise UserError(f"damping must be a number >= 0, got {self.damping!r}")
        return self

    def granule(self, device: torch.device) -> int:
        """The ``round_to`` a pruning on ``device`` uses: ``round_to``, or for a latency budget with ``round_to=1``
        ``latency_round_to`` (None: :func:`greedyprune.latency.simd_channels` of ``device``) as
        :class:`~greedyprune.costmodel.Blocks` (a group narrower than a block: smaller power-of-two steps)."""
        by_latency = self.latency is not None or (self.allocation == "latency" and (self.flops or self.params))
        if self.round_to != 1 or not by_latency:
            return self.round_to
        return Blocks(self.latency_round_to if self.latency_round_to is not None else simd_channels(device))

    @property
    def refit_method(self) -> str | None:
        """The refit asked for: ``refit``, with ``"auto"`` resolved to the method's registered default."""
        return resolve_refit(self.refit, registered_methods[self.method].whole_network_refit)

    @property
    def refit_automatic(self) -> bool:
        """Whether the refit is the method's default (``"auto"``): skipped, not an error, where it cannot apply."""
        return self.refit == "auto"

    @property
    def budget(self) -> dict:
        """The budget given (for the report)."""
        return {k: v for k, v in {"keep": self.keep, "flops": self.flops, "params": self.params, "latency": self.latency,
                                   "allocation": self.allocation, "widths": self.widths,
                                   "round_to": int(self.round_to) if self.round_to != 1 else None}.items() if v is not None}
