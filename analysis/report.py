"""``analyze_groups``: statistics of channel groups -> curves.json, bounds.json, report.md, PNG plots.

Per group: decay curves of every method (:mod:`analysis.curves`), exponential and power-law fits
(:mod:`analysis.fits`; per kept channel, and for ``uniform`` also per pick), the theory constants and bound curves (:mod:`analysis.bounds`), the check
(:mod:`analysis.check`) and a figure (:mod:`analysis.plots`). Across groups: a summary figure of
fitted rates against depth and pass/FAIL/n-a counts per bound. Bounds and proofs: ``analysis/THEORY.md``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from greedyprune.errors import UserError
from greedyprune.io import atomic_write, save_json

from .bounds import BOUNDS
from .constants import TheoryConstants, compute_constants
from .check import BoundCheck, check_group, group_bounds, summarize
from .curves import DEFAULT_SEEDS, METHODS, GroupCurves, decay_curves, single_thread
from .fits import FIT_FLOOR, TOLERANCES, CurveFit, fit_curve
from .group import GroupStatistics
from .markdown import render_report


SINGLE_THREAD_MAX = 512  # groups up to this size run on one torch thread (faster: no contention)


@dataclass
class GroupAnalysis:
    group: GroupStatistics
    curves: GroupCurves
    fits: dict[str, CurveFit]
    constants: TheoryConstants
    checks: list[BoundCheck]
    plot: Path | None
    seconds: float
    pick_fits: dict[str, CurveFit] = field(default_factory=dict)  # uniform: fits of the error per pick


@dataclass
class AnalysisReport:
    """What :func:`analyze_groups` computed and where it wrote it."""

    groups: list[GroupAnalysis]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    source: dict | None = None


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "group"


def until_floor(errors: np.ndarray, floor: float = FIT_FLOOR) -> np.ndarray:
    """``errors`` up to the first ``n`` at or below ``floor``: herding per pick can reach the target exactly
    (e.g. every channel picked once at ``n = N``) and then cycles away from it and back; only the
    descent to the first zero says anything about a rate."""
    hit = np.nonzero(np.asarray(errors) <= floor)[0]
    return errors[:int(hit[0]) + 1] if len(hit) else errors


def analyze_group(group: GroupStatistics, *, n_max: int | None = None, methods: tuple[str, ...] = METHODS,
                  seeds: tuple[int, ...] = DEFAULT_SEEDS, simplex_max: int = 256,
                  fit_range: tuple[int, int] | None = None, tolerances: tuple[float, ...] = TOLERANCES,
                  cover_max_rank: int = 128, uniform_picks: int | None = None) -> GroupAnalysis:
    """Curves, fits, constants and checks of one group (no files written)."""
    start = time.perf_counter()
    group = group.validated()
    with single_thread(group.size <= SINGLE_THREAD_MAX):
        curves = decay_curves(group, n_max, methods=methods, simplex_max=simplex_max, seeds=seeds,
                              uniform_picks=uniform_picks)
        constants = compute_constants(group, cover_max_rank=cover_max_rank)
    fits = {m: fit_curve(c.errors[:c.measured_until], fit_range, size=group.size, tolerances=tolerances)
            for m, c in curves.curves.items()}
    pick_fits = {m: fit_curve(until_floor(c.pick_errors), fit_range, size=group.size, tolerances=tolerances)
                 for m, c in curves.curves.items() if c.pick_errors is not None}
    checks = check_group(curves, constants)
    return GroupAnalysis(group, curves, fits, constants, checks, None, time.perf_counter() - start, pick_fits)


def analyze_groups(groups: list[GroupStatistics], out_dir: str | Path, *, n_max: int | None = None,
                   methods: tuple[str, ...] = METHODS, seeds: tuple[int, ...] = DEFAULT_SEEDS,
                   simplex_max: int = 256, fit_range: tuple[int, int] | None = None,
                   tolerances: tuple[float, ...] = TOLERANCES, plots: bool = True, progress: bool = True,
                   cover_max_rank: int = 128, title: str | None = None, uniform_picks: int | None = None,
                   source: dict | None = None) -> AnalysisReport:
    """Analyse every group and write ``curves.json``, ``bounds.json``, ``report.md`` (+ PNGs) to ``out_dir``.

    Args:
        groups: one :class:`GroupStatistics` per channel group (names must be distinct).
        out_dir: output folder (created).
        n_max: largest kept-channel count per group (default: all ``N``; capped at each group's ``N``).
        methods: methods to run (default all of :data:`analysis.curves.METHODS`).
        seeds: seeds of the ``random`` baseline.
        simplex_max: cap on ``reoptimized-simplex`` picks (slow path).
        fit_range: ``(n_lo, n_hi)`` for the fits (default: ``1 .. N/2``, stopped at the last n above 1e-10:
            the end-game near ``n = N`` is left out, see :mod:`analysis.fits`; every fit also reports its
            verdict over ``n <= N/4, N/2, 3N/4`` and the whole curve).
        tolerances: relative errors for the "kept channels needed" table.
        uniform_picks: picks (with repeats) of ``uniform`` per group (default ``8 n_max``).
        source: what was analysed (e.g. ``{"model", "weights", "test_acc", "data", "calibration_images"}``),
            written into ``curves.json`` / ``bounds.json`` and at the top of ``report.md``.
        plots: write ``plots/<group>.png`` and ``plots/summary_rates.png``.
        progress: tqdm progress over groups.
        cover_max_rank: largest rank for the dual certificate of ``mu^2`` (above it: eigenvalue one).
        title: heading of ``report.md``.
    Returns:
        :class:`AnalysisReport` (per-group results, file paths, pass counts, total seconds).
    """
    start = time.perf_counter()
    if not isinstance(groups, (list, tuple)) or not groups:
        raise UserError("groups must be a non-empty list of GroupStatistics")
    names = [getattr(g, "name", None) for g in groups]
    if len(set(map(safe_name, map(str, names)))) != len(names):
        raise UserError("group names must be distinct (also after turning them into file names)")
    out = Path(out_dir)
    results: list[GroupAnalysis] = []
    for group in tqdm(groups, desc="analyze", unit="group", disable=not progress):
        if not isinstance(group, GroupStatistics):
            raise UserError(f"every group must be a GroupStatistics, got {type(group).__name__}")
        cap = None if n_max is None else min(int(n_max), group.size)
        picks = None if uniform_picks is None else max(int(uniform_picks), cap or group.size)
        results.append(analyze_group(group, n_max=cap, methods=methods, seeds=seeds, simplex_max=simplex_max,
                                     fit_range=fit_range, tolerances=tolerances, cover_max_rank=cover_max_rank,
                                     uniform_picks=picks))
    report = AnalysisReport(results, out, source=dict(source) if source else None)
    if plots:
        from .plots import plot_group, plot_summary
        for res in results:
            path = out / "plots" / f"{safe_name(res.curves.name)}.png"
            plot_group(res.curves, res.fits, group_bounds(res.curves, res.constants), path)
            res.plot = path
        rows = [{"name": r.curves.name, "depth": r.group.depth, "fits": r.fits, "pick_fits": r.pick_fits}
                for r in results]
        report.files["summary_plot"] = out / "plots" / "summary_rates.png"
        plot_summary(rows, report.files["summary_plot"])
    report.summary = summarize([c for r in results for c in r.checks])
    report.seconds = time.perf_counter() - start
    report.files["curves"] = out / "curves.json"
    report.files["bounds"] = out / "bounds.json"
    report.files["report"] = out / "report.md"
    save_json(_curves_json(results, fit_range, report.source), report.files["curves"])
    save_json(_bounds_json(results, report.summary, report.source), report.files["bounds"])
    with atomic_write(report.files["report"], "w") as handle:
        handle.write(render_report(report, title=title))
    return report


def _curves_json(results: list[GroupAnalysis], fit_range, source: dict | None) -> dict:
    return {"version": 2, "source": source,
            "error": "relative discrepancy ||T - f_n||^2 / ||T||^2 with n kept channels",
            "uniform": "errors[n-1]: right after the pick that brings in the n-th distinct channel (herding until "
                       "n channels are kept); pick_errors[t-1]: after t picks (with repeats); distinct_channels[t-1]: "
                       "channels kept by those t picks",
            "fit_range": list(fit_range) if fit_range else "default: n = 1 .. N/2 (stopped at the last n with error "
                         "> 1e-10); 'sensitivity' gives the verdict over n <= N/4, N/2, 3N/4 and the whole curve",
            "groups": [{**r.curves.to_json(), "depth": r.group.depth,
                        "fits": {m: f.to_json() for m, f in r.fits.items()},
                        "pick_fits": {m: f.to_json() for m, f in r.pick_fits.items()}} for r in results]}


def _bounds_json(results: list[GroupAnalysis], summary: dict, source: dict | None) -> dict:
    groups = []
    for r in results:
        rhs = group_bounds(r.curves, r.constants)
        groups.append({"name": r.curves.name, "depth": r.group.depth, "constants": r.constants.to_json(),
                       "bounds_relative": {k: (None if v is None else [float(x) for x in v]) for k, v in rhs.items()},
                       "checks": [c.to_json() for c in r.checks]})
    return {"version": 2, "source": source,
            "statements": {k: {"method": s.method, "statement": s.statement,
                               "assumption": s.assumption} for k, s in BOUNDS.items()},
            "n": "the theorems' n: picks (uniform: with repeats, up to its pick count; others: kept channels, "
                 "up to n_max)",
            "informative": "passes, and the check would FAIL were the bound's rate constant 10x too optimistic "
                           "(resolution <= 10; resolution = the smallest such factor, null: none up to 1e12)",
            "see": "analysis/THEORY.md", "summary": summary, "groups": groups}
