"""``report.md``: the analysis as Markdown tables (rates, picks needed, constants, the check)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .bounds import BOUNDS
from .check import ENDPOINT, ENDPOINT_STATEMENT, INFORMATIVE_FACTOR
from .fits import fmt_rate

if TYPE_CHECKING:  # pragma: no cover
    from .report import AnalysisReport


def _g(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}"


def _below_one(x: float | None) -> str:
    """A relative bound; just below 1 as ``1 − 2.3e-07`` (3 digits would print 1 and hide that it is < 1)."""
    if x is not None and 0.999 < x < 1:
        return f"1 − {1 - x:.2g}"
    return _g(x)


def _k(x: float) -> str:
    return "never" if x == float("inf") else _g(x)


def _resolution(c) -> str:
    if c.status != "pass" or c.bound == ENDPOINT:
        return "-"
    return _k(c.resolution if c.resolution is not None else float("inf"))


def _verdicts(fit) -> str:
    short = {"exponential": "e", "power": "p", None: "-"}
    return " · ".join(short[v] for v in fit.verdicts.values()) + ("" if fit.stable is not False else " (changes)")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _source(key: str, value) -> str:
    """One ``key: value`` of ``AnalysisReport.source``; accuracies (``*acc*`` keys) as percentages."""
    if "acc" in key and isinstance(value, float):
        return f"{key}: {100 * value:.2f}%"
    return f"{key}: {value}"


def render_report(report: "AnalysisReport", title: str | None = None) -> str:
    res = report.groups
    out = [f"# {title or 'Decay curves and bound checks'}\n"]
    if report.source:
        out.append("Analysed: " + "; ".join(_source(k, v) for k, v in report.source.items()) + ".\n")
    out.append(f"{len(res)} group(s), analysed in {report.seconds:.1f} s. Error = relative discrepancy "
               "||T - f_n||² / ||T||² with n kept channels (keeping none gives 1). `uniform` picks with repeats: "
               "with n kept channels its error is the one right after the pick that brings in its n-th distinct "
               "channel (herding until n channels are kept); its theorems (B1, B2) are about n = picks. Bounds are stated and proved in `analysis/THEORY.md`; "
               "raw numbers are in `curves.json` and `bounds.json`.\n")

    out.append("## Fitted rates\n")
    out.append("Exponential fit `log err ~ a - c n` (rate c) and power law `log err ~ a - p log n` "
               "(exponent p), least squares over the stated n range; *better* = larger R². Default range "
               "n = 1 .. N/2 (stopped at the last error above 1e-10): the theorems are about n ≪ N, and the collapse "
               "near n = N (the last channels complete the span or the hull) would decide the verdict otherwise. "
               "*verdict by range*: the better model over n ≤ N/4, N/2, 3N/4 and the whole curve (e = exponential, "
               "p = power law, - = fewer than 3 points). n = kept channels, except `uniform (per pick)`: n = picks, "
               "the n of the O(1/n) theorem, up to the first pick at which herding reaches the target.\n")
    rows = []
    for r in res:
        for m, f in [(m, r.fits.get(m)) for m in ("reoptimized", "reoptimized-simplex", "uniform")] + \
                [(f"{m} (per pick)", f) for m, f in r.pick_fits.items()]:
            if f is None:
                continue
            rng = f"{f.n_range[0]}..{f.n_range[1]}" if f.n_range else "-"
            rows.append([r.curves.name, _g(r.group.depth), m, fmt_rate(f.exponential), fmt_rate(f.power),
                         f.better or (f.reason or "-"), rng, _verdicts(f)])
    out.append(_table(["group", "depth", "method", "exp. rate c (R²)", "power exponent p (R²)", "better", "n range",
                       "verdict by range N/4 · N/2 · 3N/4 · all"], rows))

    out.append("\n## Kept channels needed to reach a tolerance\n")
    out.append("Smallest number of kept channels with error ≤ the tolerance (`uniform`: distinct channels, "
               "herding until that many are kept).\n")
    tols = sorted({t for r in res for f in r.fits.values() for t in f.n_to_reach}, reverse=True)
    rows = []
    for r in res:
        for m, f in r.fits.items():
            rows.append([r.curves.name, m] + [str(f.n_to_reach.get(t)) if f.n_to_reach.get(t) else
                                              f"> {len(r.curves.curves[m].errors)}" for t in tols])
    out.append(_table(["group", "method"] + [f"n for err ≤ {t:g}" for t in tols], rows))

    out.append("\n## Theory constants (relative to E = ||T||²)\n")
    rows = []
    for r in res:
        c = r.constants
        e = c.energy
        rows.append([c.name, str(c.N), f"{c.rank}/{c.affine_dim}", "yes" if c.centroid_target else "no",
                     _g(c.D2 / e), _g(c.DT2 / e), f"[{_g(c.Lstar_lower / e)}, {_g(c.Lstar / e)}]",
                     c.hull_verdict, _g(c.aff_dist2 / e), _g(c.V_T / e), _g(c.delta2 / e),
                     f"{_g(c.r / e ** 0.5)} ({c.r_method})", _g(c.r2_over_DT2), _g(c.t_max),
                     f"{_g(c.mu2)} ({c.mu2_method})", f"{c.seconds:.1f}"])
    out.append("Ranks are decided on the correlation matrix (scale-free); `L*` is bracketed by the loss of an "
               "explicit point of the hull and that minus its Frank-Wolfe gap; `dist²(T, aff M)` is closed-form; "
               "`r` is the margin of T's projection onto aff M, which is what B4 needs.\n")
    out.append(_table(["group", "N", "rank/aff. dim", "T = centroid", "D²/E", "D_T²/E", "L*/E bracket", "T in hull",
                       "dist²(T, aff M)/E", "V_T/E", "‖Φa−T‖²/E (B1)", "r/√E (how)", "r²/D_{T_A}²", "t_max", "μ² (how)",
                       "s"], rows))

    out.append("\n## Check: measured ≤ bound at every n\n")
    out.append("n = picks (`uniform`: with repeats, up to its pick count; the others: kept channels). "
               "`margin` = min over n ≥ 2 of bound − measured; `max ratio` = max over n ≥ 2 of measured/bound; "
               "`resolution` k* = the smallest factor by which the bound's rate constant (B1 V_T, B2 V(a*), B3 1/D², "
               "B4 r²/D_T², B5 μ²) could be more optimistic before the check FAILs at some n ≥ 2 (`never`: not up "
               "to 1e12): a pass rules out a constant k* times too optimistic, nothing finer; `min bound` = smallest "
               "bound/E; `< 1 from n` = first n where bound/E < 1, the error of keeping nothing. "
               "`fcfw_endpoint`: reoptimized-simplex with all N kept must lie in the certified L* bracket.\n")
    rows = []
    for r in res:
        for c in r.checks:
            rows.append([c.group, c.bound, c.method, f"**{c.status}**" if c.status == "FAIL" else c.status,
                         f"{c.n_failed}/{c.n_checked}", _g(c.first_failure), _g(c.min_margin), _g(c.max_ratio),
                         _resolution(c), "-" if c.bound == ENDPOINT else "yes" if c.informative else "no",
                         _below_one(c.min_bound),
                         _g(c.below_one_from), c.violated or "-"])
    out.append(_table(["group", "bound", "method", "status", "failed n", "first failure", "margin", "max ratio",
                       "resolution k*", "informative", "min bound", "< 1 from n", "violated assumption"], rows))

    out.append("\n## Summary per bound (number of groups)\n")
    rows = []
    for k in list(BOUNDS) + [ENDPOINT]:
        spec = BOUNDS.get(k)
        mine = [c for r in res for c in r.checks if c.bound == k]
        lows = [c.min_bound for c in mine if c.min_bound is not None]
        span = f"{_below_one(min(lows))} .. {_below_one(max(lows))}" if lows else "-"
        ks = [c.resolution if c.resolution is not None else float("inf") for c in mine if c.status == "pass"]
        kspan = f"{_k(min(ks))} .. {_k(max(ks))}" if ks and spec else "-"
        rows.append([k, spec.method if spec else "reoptimized-simplex",
                     f"`{spec.statement if spec else ENDPOINT_STATEMENT}`", spec.assumption if spec else "none"]
                    + [str(report.summary.get(k, {}).get(key, 0)) for key in ("pass", "fail", "n/a")]
                    + [str(report.summary.get(k, {}).get("informative", 0)) if spec else "-"]
                    + [kspan, span])
    out.append(f"`informative` = passes with resolution k* ≤ {INFORMATIVE_FACTOR:g}: the check would have FAILed "
               f"had the bound's rate constant been {INFORMATIVE_FACTOR:g} times too optimistic. A pass with a large "
               "k* is true but untested: a constant wrong by less than k* would pass as well.\n")
    out.append(_table(["bound", "method", "statement", "assumption", "pass", "FAIL", "n/a", "informative",
                       "resolution k* (range over passing groups)", "smallest bound/E (range over groups)"], rows))

    notes = [f"- {r.curves.name} / {m}: {c.note}" for r in res for m, c in r.curves.curves.items() if c.note]
    notes += [f"- {r.curves.name} / {m}: skipped ({why})" for r in res for m, why in r.curves.skipped.items()]
    if notes:
        out.append("\n## Notes\n")
        out.append("\n".join(notes) + "\n")
    plots = [r.plot for r in res if r.plot is not None]
    if plots:
        out.append("\n## Figures\n")
        summary = report.files.get("summary_plot")
        if summary is not None:
            out.append(f"![fitted rates across depth]({os.path.relpath(summary, report.out_dir)})\n")
        for r in res:
            if r.plot is not None:
                out.append(f"![{r.curves.name}]({os.path.relpath(r.plot, report.out_dir)})\n")
    return "\n".join(out)
