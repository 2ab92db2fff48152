"""Figures: per group, error vs kept channels (log y) with every method, fitted lines and bounds; a rate summary.

The x-axis is the number of kept (distinct) channels for every method. ``uniform`` picks with repeats:
its curve is its error right after the pick that brings in the ``n``-th distinct channel, and its
bounds (stated per pick) are drawn at those same picks, so they still bound the drawn curve.

Colours are fixed per method (:data:`COLORS`) so every figure reads the same. Bounds are drawn in the
colour of the method they bound, dotted / dash-dotted; fitted lines are thin dashed. The y-axis
stops at 1e-12: errors below it are exact zeros up to rounding (e.g. all N channels kept) and drop off
the bottom of the plot. PNGs are written with ``atomic_write``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from greedyprune.io import atomic_write  # noqa: E402

from .bounds import BOUNDS  # noqa: E402
from .channels import by_channels  # noqa: E402
from .curves import GroupCurves  # noqa: E402
from .fits import CurveFit  # noqa: E402

COLORS = {"reoptimized": "tab:blue", "reoptimized-simplex": "tab:purple", "uniform": "tab:orange",
          "uniform-noreplace": "tab:brown", "magnitude": "tab:green", "random": "tab:gray"}
BOUND_STYLE = {"herding_hull": ":", "herding_general": (0, (1, 3)), "fcfw_sublinear": ":", "fcfw_linear": "-.",
               "free_linear": "-."}
BOUND_LABEL = {"herding_hull": "B1 (V_T+d²)/n + d√M", "herding_general": "B2 L(a*)+V H_n/n",
               "fcfw_sublinear": "B3 FCFW 1/n", "fcfw_linear": "B4 FCFW (1-r²/D_T²)^(n-1)",
               "free_linear": "B5 free (1-μ²)^(n-1)"}
# the fit drawn per method: the model the theory predicts for it
FIT_SHOWN = {"reoptimized": "exponential", "reoptimized-simplex": "exponential", "uniform": "power"}
FLOOR = 1e-14
SHOWN_FLOOR = 1e-12  # the y-axis stops here: exact zeros (n = N, target reached) fall off the bottom


def _save(fig, path) -> None:
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_group(curves: GroupCurves, fits: dict[str, CurveFit], bounds: dict[str, np.ndarray | None], path,
               title: str | None = None) -> None:
    """Error vs n on a log scale: methods (random with its min-max band), fitted lines, bounds."""
    fig, ax = plt.subplots(figsize=(10.5, 5.0))
    lowest = 1.0
    for method, curve in curves.curves.items():
        color = COLORS.get(method, "black")
        n = curve.n
        y = np.maximum(curve.errors, FLOOR)
        above = y[y > SHOWN_FLOOR]
        lowest = min(lowest, float(above.min()) if above.size else SHOWN_FLOOR)
        label = method + (f" (mean of {len(curve.spread['seeds'])} seeds)" if curve.spread else "")
        ax.plot(n, y, color=color, lw=1.8, label=label)
        if curve.spread:
            ax.fill_between(n, np.maximum(curve.spread["min"], FLOOR), np.maximum(curve.spread["max"], FLOOR),
                            color=color, alpha=0.18, lw=0)
        model = FIT_SHOWN.get(method)
        fit = fits.get(method)
        line = getattr(fit, "exponential" if model == "exponential" else "power", None) if (fit and model) else None
        if line is not None:
            xs = np.arange(line.n_lo, line.n_hi + 1)
            text = f"c={line.rate:.3g}" if model == "exponential" else f"p={line.rate:.3g}"
            ax.plot(xs, np.maximum(line.predict(xs), FLOOR), color=color, lw=1.0, ls="--",
                    label=f"fit {method}: {model} {text}, R²={line.r2:.3f}")
    for key, rhs in bounds.items():
        if key not in BOUNDS or rhs is None:
            continue
        method = BOUNDS[key].method
        if method not in curves.curves:
            continue
        curve = curves.curves[method]
        if curve.distinct is not None:  # per pick -> per kept channel, as the curve itself
            rhs = by_channels(rhs, curve.distinct[:len(rhs)], curves.n_max)
        n = np.arange(1, len(rhs) + 1)
        ax.plot(n, np.maximum(rhs, FLOOR), color=COLORS[method], lw=1.3, ls=BOUND_STYLE[key], alpha=0.9,
                label=f"bound {BOUND_LABEL[key]} (on {method})")
    ax.set_yscale("log")
    top = max(float(np.nanmax([c.errors.max() for c in curves.curves.values()])) * 3, 1.0)
    ax.set_ylim(max(lowest / 5, SHOWN_FLOOR / 2), top)
    ax.set_xlim(1, curves.n_max)
    ax.set_xlabel("n = number of kept channels (uniform: distinct channels among its picks)")
    ax.set_ylabel("relative discrepancy  ||T - f_n||² / ||T||²")
    ax.set_title(title or f"{curves.name} (N = {curves.size})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    _save(fig, path)


def plot_summary(rows: list[dict], path) -> None:
    """Fitted rates across depth: exponential rate c (re-optimised) and power exponent p (uniform).

    ``rows``: one dict per group with ``name``, ``depth``, ``fits`` (method -> :class:`CurveFit`, per kept
    channel) and optionally ``pick_fits`` (``uniform`` per pick: the ``n`` of its O(1/n) theorem).
    """
    width = max(10.0, 0.55 * len(rows) * 2)
    fig, (left, right) = plt.subplots(1, 2, figsize=(min(width, 22.0), 4.8))
    xs = [r["depth"] if r["depth"] is not None else i + 1 for i, r in enumerate(rows)]
    order = sorted(range(len(rows)), key=lambda i: xs[i])
    rows, xs = [rows[i] for i in order], [xs[i] for i in order]
    panels = ((left, (("reoptimized", "fits", "reoptimized"), ("reoptimized-simplex", "fits", "reoptimized-simplex")),
               "exponential", "exponential rate c  (err ~ exp(-c n))"),
              (right, (("uniform", "pick_fits", "uniform, n = picks"),
                       ("uniform", "fits", "uniform, n = distinct channels"),
                       ("uniform-noreplace", "fits", "uniform-noreplace")),
               "power", "power-law exponent p  (err ~ n^-p)"))
    offsets = (5, -11, 14)
    for ax, series, model, ylabel in panels:
        for k, (method, which, label) in enumerate(series):
            pts = [(x, getattr(r.get(which, {})[method], model)) for x, r in zip(xs, rows)
                   if method in r.get(which, {}) and getattr(r[which][method], model) is not None]
            if not pts:
                continue
            style = "s--" if which == "fits" and method == "uniform" else "o-"
            ax.plot([p[0] for p in pts], [p[1].rate for p in pts], style, color=COLORS[method], label=label,
                    alpha=0.9)
            if len(rows) <= 12:
                for x, line in pts:
                    ax.annotate(f"R² {line.r2:.2f}", (x, line.rate), fontsize=6, textcoords="offset points",
                                xytext=(4, offsets[k % 3]), color=COLORS[method])
        ax.set_xlabel("depth (layer index)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    left.set_title("re-optimised greedy: fitted exponential rate")
    right.set_title("uniform (1/n) greedy: fitted power-law exponent")
    if len(rows) <= 24:  # group names under the ticks, slanted so that long names do not overlap
        for ax in (left, right):
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{r['name']} ({x:g})" for x, r in zip(xs, rows)], fontsize=6.5, rotation=40,
                               ha="right", rotation_mode="anchor")
    fig.tight_layout()
    _save(fig, path)
