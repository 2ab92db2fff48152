"""Decay curves: relative discrepancy ``L(n) / E`` with ``n = 1 .. n_max`` kept channels, for every method.

All curves come from one group's statistics (``G, b, E``) through the selection engine, so one
calibration pass gives them all. ``Selection.errors[n-1]`` is the exact relative loss after ``n``
picks of that method. A method that stops early (the residual reached zero, or every remaining
candidate is redundant) keeps its last error for larger ``n``: more picks cannot help it, and
``measured_until`` records where the engine stopped.

Picks vs kept channels: every method but ``uniform`` picks each channel at most once, so ``n`` picks
keep ``n`` channels. ``uniform`` (herding, picks with replacement) may pick a channel again; its
``pick_errors[t-1]`` is the error after ``t`` picks (the ``n`` of its theorems, B1/B2) and
``distinct[t-1]`` the number of distinct channels those picks keep. It runs ``uniform_picks`` picks
(default ``8 n_max``, the engine's step cap) and its ``errors[d-1]`` -- the curve compared with the other
methods -- is the error right after the pick that brings in the ``d``-th distinct channel: what the
engine's ``uniform`` with ``until_distinct=True`` and ``k = d`` returns (herd until ``d`` channels are
kept), i.e. ``uniform`` at the same width as the others. If the path never reaches ``d`` distinct
channels, ``measured_until`` says how many it reached (later entries repeat the last value).

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

from .channels import by_channels, distinct_counts
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
        errors: relative error with ``n`` kept channels (for ``random``: the mean over seeds; for
            ``uniform``: right after the pick that brings in its ``n``-th distinct channel).
        measured_until: last ``n`` actually computed by the engine (later entries repeat its value).
        note: budget caps or why the engine stopped, if any.
        spread: for ``random``: ``{"std", "min", "max", "seeds"}`` per ``n``; otherwise ``None``.
        seconds: wall time of the engine call(s).
        pick_errors: ``uniform`` only: relative error after ``t = 1, 2, ...`` picks (with repeats).
        distinct: ``uniform`` only: distinct channels kept by the first ``t`` picks.
    """

    method: str
    errors: np.ndarray
    measured_until: int
    note: str | None = None
    spread: dict | None = None
    seconds: float = 0.0
    pick_errors: np.ndarray | None = None
    distinct: np.ndarray | None = None

    @property
    def n(self) -> np.ndarray:
        return np.arange(1, len(self.errors) + 1)

    @property
    def n_picks(self) -> int:
        """Picks made: ``len(pick_errors)`` for ``uniform``, else the measured kept-channel count."""
        return len(self.pick_errors) if self.pick_errors is not None else self.measured_until

    def checked_errors(self) -> np.ndarray:
        """The curve the theorems are about: error per pick (``uniform``), else per kept channel."""
        return self.pick_errors if self.pick_errors is not None else self.errors[:self.measured_until]

    def to_json(self) -> dict:
        out = {"method": self.method, "n_max": int(len(self.errors)), "measured_until": self.measured_until,
               "note": self.note, "seconds": round(self.seconds, 4), "errors": [float(e) for e in self.errors]}
        if self.spread is not None:
            out["spread"] = {k: [float(x) for x in v] if k != "seeds" else list(v) for k, v in self.spread.items()}
        if self.pick_errors is not None:
            out["pick_errors"] = [float(e) for e in self.pick_errors]
            out["distinct_channels"] = [int(d) for d in self.distinct]
        return out


@dataclass
class GroupCurves:
    """All decay curves of one group (``curves[method]``) plus the options that produced them."""

    name: str
    size: int
    n_max: int
    curves: dict[str, MethodCurve] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def n_checked(self) -> int:
        """Length of the longest curve a bound is checked on (``uniform``'s picks may exceed ``n_max``)."""
        return max([self.n_max] + [c.n_picks for c in self.curves.values() if c.pick_errors is not None])

    def to_json(self) -> dict:
        return {"name": self.name, "N": self.size, "n_max": self.n_max,
                "methods": {m: c.to_json() for m, c in self.curves.items()}, "skipped": self.skipped}


def _padded(errors: np.ndarray, n_max: int) -> np.ndarray:
    if len(errors) >= n_max:
        return errors[:n_max].copy()
    last = errors[-1] if len(errors) else 1.0
    return np.concatenate([errors, np.full(n_max - len(errors), last)])


def _run(group: GroupStatistics, k: int, method: str, damping: float, **options) -> tuple[np.ndarray, str | None]:
    sel = _select(group, k, method, damping, **options)
    return sel.errors.detach().cpu().numpy().astype(np.float64), sel.stopped_early


def _select(group: GroupStatistics, k: int, method: str, damping: float, **options):
    return greedy_select_gram(group.gram, group.cross, group.energy, k, method=method, damping=damping, **options)


def _uniform(group: GroupStatistics, n_max: int, picks: int, damping: float) -> MethodCurve:
    start = time.perf_counter()
    sel = _select(group, picks, "uniform", damping)
    pick_errors = sel.errors.detach().cpu().numpy().astype(np.float64)
    distinct = distinct_counts(sel.indices.detach().cpu().numpy())
    reached = int(distinct[-1])
    note = None
    if reached < n_max:
        note = (f"{picks} picks kept only {reached} distinct channels: n > {reached} repeats the value at "
                f"n = {reached}")
    return MethodCurve("uniform", by_channels(pick_errors, distinct, n_max), min(reached, n_max), note, None,
                       time.perf_counter() - start, pick_errors, distinct)


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
                 damping: float = 0.0, uniform_picks: int | None = None) -> GroupCurves:
    """Decay curves ``n = 1 .. n_max`` (default ``N``) for ``methods`` on one group.

    Args:
        group: the group's statistics (validated here).
        n_max: largest number of kept channels (``<= N``).
        methods: subset of :data:`METHODS`; ``magnitude`` is skipped (and said so) without scores.
        simplex_max: cap on ``reoptimized-simplex`` picks (its slow path); beyond it the curve ends.
        seeds: seeds of the ``random`` baseline (mean and spread over them).
        damping: engine ridge (relative); 0 so that the curves are the exact undamped greedy paths
            the theorems describe.
        uniform_picks: picks (with repeats) of ``uniform``; default ``8 n_max``, at least ``n_max``.
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
    picks = 8 * n_max if uniform_picks is None else int(uniform_picks)
    if picks < n_max:
        raise UserError(f"uniform_picks must be at least n_max = {n_max} (picks repeat channels), got {picks}")
    out = GroupCurves(group.name, size, n_max)
    for method in methods:
        start = time.perf_counter()
        note = None
        if method == "magnitude" and group.scores is None:
            out.skipped[method] = "no magnitude scores given for this group"
            continue
        if method == "uniform":
            out.curves[method] = _uniform(group, n_max, picks, damping)
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
