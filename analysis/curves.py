"""Decay curves: relative discrepancy ``L(n) / E`` after ``n = 1 .. n_max`` picks, for every method.

All curves come from one group's statistics (``G, b, E``) through the selection engine, so one
calibration pass gives them all. ``Selection.errors[n-1]`` is the exact relative loss after ``n``
picks of that method. A method that stops early (the residual reached zero, or every remaining
candidate is redundant) keeps its last error for larger ``n``: more picks cannot help it, and
``measured_until`` records where the engine stopped.

Budget: ``reoptimized-simplex`` (fully-corrective Frank-Wolfe) solves one QP per pick, O(n^3) per
step; it is capped at ``simplex_max`` picks (default 256, about 1-7 s at N = 512 on one core) and the
cap is recorded in the curve's ``note``. Everything else is O(N^2 n) or cheaper.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from greedyprune.errors import UserError
from greedyprune.selection import greedy_select_gram

from .group import GroupStatistics

METHODS = ("reoptimized", "reoptimized-simplex", "uniform", "uniform-noreplace", "magnitude", "random")
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
ZERO_RTOL = 1e-13  # relative error treated as exactly reached (rounding floor)


@dataclass
class MethodCurve:
    """One method's decay curve on one group.

    Attributes:
        method: engine method name.
        n: ``1 .. len(errors)``.
        errors: relative error after ``n`` picks (for ``random``: the mean over seeds).
        measured_until: last ``n`` actually computed by the engine (later entries repeat its value).
        note: budget caps or why the engine stopped, if any.
        spread: for ``random``: ``{"std", "min", "max", "seeds"}`` per ``n``; otherwise ``None``.
        seconds: wall time of the engine call(s).
    """

    method: str
    errors: np.ndarray
    measured_until: int
    note: str | None = None
    spread: dict | None = None
    seconds: float = 0.0

    @property
    def n(self) -> np.ndarray:
        return np.arange(1, len(self.errors) + 1)

    def to_json(self) -> dict:
        out = {"method": self.method, "n_max": int(len(self.errors)), "measured_until": self.measured_until,
               "note": self.note, "seconds": round(self.seconds, 4), "errors": [float(e) for e in self.errors]}
        if self.spread is not None:
            out["spread"] = {k: [float(x) for x in v] if k != "seeds" else list(v) for k, v in self.spread.items()}
        return out


@dataclass
class GroupCurves:
    """All decay curves of one group (``curves[method]``) plus the options that produced them."""

    name: str
    size: int
    n_max: int
    curves: dict[str, MethodCurve] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "N": self.size, "n_max": self.n_max,
                "methods": {m: c.to_json() for m, c in self.curves.items()}, "skipped": self.skipped}


def _padded(errors: np.ndarray, n_max: int) -> np.ndarray:
    if len(errors) >= n_max:
        return errors[:n_max].copy()
    last = errors[-1] if len(errors) else 1.0
    return np.concatenate([errors, np.full(n_max - len(errors), last)])


def _run(group: GroupStatistics, k: int, method: str, damping: float, **options) -> tuple[np.ndarray, str | None]:
    sel = greedy_select_gram(group.gram, group.cross, group.energy, k, method=method, damping=damping, **options)
    return sel.errors.detach().cpu().numpy().astype(np.float64), sel.stopped_early


def _simplex_doubling(group: GroupStatistics, k: int, damping: float) -> tuple[np.ndarray, str | None]:
    """Fully-corrective FW for ``4, 8, 16, ... , k`` picks, stopping once the error reaches the floor.

    The path does not depend on ``k`` (each run's picks are a prefix of the next one's), so this gives
    the same curve as one ``k``-pick run. It avoids the picks after the target is reached exactly,
    which the engine's active-set QP makes slow (it cycles on the rank-deficient support, up to its
    iteration cap per pick). Total cost is at most twice the cost of the final run.
    """
    with single_thread():  # one small QP per pick: 10-50x slower with two threads on a busy machine
        return _doubling(group, k, damping)


@contextmanager
def single_thread(active: bool = True) -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (small matrices: threads only contend)."""
    threads = torch.get_num_threads()
    if active:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _doubling(group: GroupStatistics, k: int, damping: float) -> tuple[np.ndarray, str | None]:
    size = 4
    while True:
        size = min(size, k)
        errs, stopped = _run(group, size, "reoptimized-simplex", damping)
        if size >= k:
            return errs, stopped
        if errs[-1] <= ZERO_RTOL:
            reached = int(np.argmax(errs <= ZERO_RTOL)) + 1
            return errs[:reached], f"stopped at n = {reached}: error reached the rounding floor ({ZERO_RTOL:g})"
        size *= 2


def decay_curves(group: GroupStatistics, n_max: int | None = None, *, methods: tuple[str, ...] = METHODS,
                 simplex_max: int = 256, seeds: tuple[int, ...] = DEFAULT_SEEDS,
                 damping: float = 0.0) -> GroupCurves:
    """Decay curves ``n = 1 .. n_max`` (default ``N``) for ``methods`` on one group.

    Args:
        group: the group's statistics (validated here).
        n_max: largest number of kept channels (``<= N``).
        methods: subset of :data:`METHODS`; ``magnitude`` is skipped (and said so) without scores.
        simplex_max: cap on ``reoptimized-simplex`` picks (its slow path); beyond it the curve ends.
        seeds: seeds of the ``random`` baseline (mean and spread over them).
        damping: engine ridge (relative); 0 so that the curves are the exact undamped greedy paths
            the theorems describe.
    Returns:
        :class:`GroupCurves`.
    """
    group = group.validated()
    size = group.size
    n_max = size if n_max is None else int(n_max)
    if not 1 <= n_max <= size:
        raise UserError(f"n_max must be between 1 and N = {size} for group {group.name!r}, got {n_max}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown analysis method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if "random" in methods and not seeds:
        raise UserError("the random baseline needs at least one seed")
    out = GroupCurves(group.name, size, n_max)
    for method in methods:
        start = time.perf_counter()
        note = None
        if method == "magnitude" and group.scores is None:
            out.skipped[method] = "no magnitude scores given for this group"
            continue
        if method == "random":
            runs = []
            for seed in seeds:
                errs, _ = _run(group, n_max, "random", damping, seed=int(seed))
                runs.append(_padded(errs, n_max))
            stack = np.stack(runs)
            spread = {"std": stack.std(0), "min": stack.min(0), "max": stack.max(0), "seeds": [int(s) for s in seeds]}
            out.curves[method] = MethodCurve(method, stack.mean(0), n_max, f"mean over {len(seeds)} seeds", spread,
                                             time.perf_counter() - start)
            continue
        k = n_max
        if method == "reoptimized-simplex" and n_max > simplex_max:
            k = simplex_max
            note = f"slow path capped at n = {simplex_max} (simplex_max); curve ends there"
        extra = {"scores": group.scores} if method == "magnitude" else {}
        if method == "reoptimized-simplex":
            errs, stopped = _simplex_doubling(group, k, damping)
        else:
            errs, stopped = _run(group, k, method, damping, **extra)
        measured = len(errs)
        if stopped:
            note = stopped if note is None else f"{note}; {stopped}"
        curve = _padded(errs, k)
        out.curves[method] = MethodCurve(method, curve, measured, note, None, time.perf_counter() - start)
    return out
