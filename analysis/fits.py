"""Rate fits of a decay curve: exponential vs power law, how the verdict depends on the range, picks per tolerance.

Two least-squares lines through ``y = log(err)`` over a stated range ``n_lo <= n <= n_hi``:

* exponential: ``log err ~ a - c n``      -> ``rate c`` (per pick; ``err ~ exp(-c n)``),
* power law:   ``log err ~ a - p log n``  -> ``exponent p`` (``err ~ n^-p``),

each with ``R^2 = 1 - SS_res / SS_tot`` of the same ``y`` (both models have two parameters, so the
larger ``R^2`` is the better fit). Errors are clamped below at ``floor`` before the log, so a curve
that reaches exactly 0 never gives ``-inf`` or NaN. A constant ``y`` (up to rounding: ``SS_tot`` below
``1e-24 n max(1, mean^2)``) is fitted exactly by slope 0, and ``R^2`` is reported as 1.

Default range: ``n = 1 .. N/2`` (``N`` = the group's number of candidates), stopped earlier at the last
``n`` whose error is above ``fit_floor``. The theorems are about ``n << N``; near ``n = N`` every curve
collapses for a reason no rate describes (the last channels complete the span or the hull, and the error
reaches 0 at ``n = N`` or earlier), and a fit that includes that collapse can turn an exact power law
into an "exponential" (``n^-1`` up to ``N/2`` followed by a linear drop to 0 at ``N``: R² 0.90 exponential
vs 0.85 power over ``1..N-1``, but exactly a power law, ``p = 1``, over ``1..N/2``). Because any cut is a
choice, every fit also reports ``sensitivity``: the verdict over ``n <= N/4, N/2, 3N/4`` and over the
whole curve (``all``), so a reader sees whether it depends on the range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from greedyprune.errors import UserError

FLOOR = 1e-16       # clamp before taking logs
FIT_FLOOR = 1e-10   # fit ranges end at the last n with error above this
BULK = 0.5          # default fit range: n <= BULK * N (the end-game near n = N is left out)
SENSITIVITY = {"N/4": 0.25, "N/2": 0.5, "3N/4": 0.75, "all": None}  # ranges of CurveFit.sensitivity
TOLERANCES = (1e-1, 1e-2, 1e-3)


@dataclass
class LineFit:
    """``log err = intercept + slope * x`` with ``x = n`` (exponential) or ``x = log n`` (power law)."""

    model: str
    slope: float
    intercept: float
    r2: float
    n_lo: int
    n_hi: int
    points: int

    @property
    def rate(self) -> float:
        """``c`` of ``exp(-c n)`` or ``p`` of ``n^-p``: minus the slope."""
        return -self.slope

    def predict(self, n: np.ndarray) -> np.ndarray:
        x = np.asarray(n, dtype=np.float64)
        x = x if self.model == "exponential" else np.log(x)
        return np.exp(self.intercept + self.slope * x)

    def to_json(self) -> dict:
        return {**asdict(self), "rate": self.rate}


@dataclass
class CurveFit:
    """Both fits of one curve, which is better, and where the curve reaches each tolerance."""

    exponential: LineFit | None
    power: LineFit | None
    better: str | None
    n_range: tuple[int, int] | None
    reason: str | None
    n_to_reach: dict[float, int | None]
    sensitivity: dict[str, dict | None] = field(default_factory=dict)

    @property
    def verdicts(self) -> dict[str, str | None]:
        """``better`` over each range of ``sensitivity`` (``None``: fewer than 3 points there)."""
        return {k: (v["better"] if v else None) for k, v in self.sensitivity.items()}

    @property
    def stable(self) -> bool | None:
        """Whether every range of ``sensitivity`` with a fit gives the same verdict (``None``: no fits)."""
        found = {v for v in self.verdicts.values() if v}
        return None if not found else len(found) == 1

    def to_json(self) -> dict:
        return {"exponential": self.exponential.to_json() if self.exponential else None,
                "power": self.power.to_json() if self.power else None, "better": self.better,
                "n_range": list(self.n_range) if self.n_range else None, "reason": self.reason,
                "n_to_reach": {f"{t:g}": v for t, v in self.n_to_reach.items()},
                "sensitivity": self.sensitivity, "stable": self.stable}


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = a + s x``; returns ``(s, a, R^2)``; never NaN."""
    xm, ym = x.mean(), y.mean()
    ss_tot = float(((y - ym) ** 2).sum())
    if ss_tot <= 1e-24 * len(y) * max(1.0, ym * ym):  # log-errors equal up to ~1e-12: constant up to rounding
        return 0.0, float(ym), 1.0
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / sxx) if sxx > 0 else 0.0
    intercept = float(ym - slope * xm)
    ss_res = float(((y - intercept - slope * x) ** 2).sum())
    return slope, intercept, 1.0 - ss_res / ss_tot


def last_above(errors: np.ndarray, fit_floor: float = FIT_FLOOR) -> int:
    """Last ``n`` (1-based) whose error is above ``fit_floor`` (at least 1)."""
    above = np.nonzero(np.asarray(errors) > fit_floor)[0]
    return int(above[-1]) + 1 if len(above) else 1


def default_range(errors: np.ndarray, size: int | None = None, fit_floor: float = FIT_FLOOR,
                  fraction: float | None = BULK) -> tuple[int, int]:
    """``(1, n_hi)``: ``n_hi = floor(fraction * N)`` (``N = size``, default ``len(errors)``; ``fraction=None``:
    no cap), but no further than the last ``n`` whose error is above ``fit_floor``; at least 1."""
    hi = last_above(errors, fit_floor)
    if fraction is not None:
        hi = min(hi, int(fraction * (len(errors) if size is None else int(size))))
    return 1, max(hi, 1)


def fit_line(errors: np.ndarray, model: str, n_range: tuple[int, int], floor: float = FLOOR) -> LineFit | None:
    """Fit one model over ``n_lo..n_hi`` (1-based, inclusive); ``None`` with fewer than 3 points."""
    if model not in ("exponential", "power"):
        raise UserError(f"model must be 'exponential' or 'power', got {model!r}")
    errors = np.asarray(errors, dtype=np.float64)
    lo, hi = int(n_range[0]), min(int(n_range[1]), len(errors))
    if lo < 1 or hi - lo + 1 < 3:
        return None
    n = np.arange(lo, hi + 1, dtype=np.float64)
    y = np.log(np.maximum(np.nan_to_num(errors[lo - 1:hi], nan=1.0, posinf=1.0), floor))
    x = n if model == "exponential" else np.log(n)
    slope, intercept, r2 = _line(x, y)
    return LineFit(model, slope, intercept, r2, lo, hi, len(n))


def picks_to_reach(errors: np.ndarray, tolerances: tuple[float, ...] = TOLERANCES) -> dict[float, int | None]:
    """Smallest ``n`` with ``err(n) <= tol`` for each tolerance (``None``: not reached within the curve)."""
    errors = np.asarray(errors)
    out: dict[float, int | None] = {}
    for tol in tolerances:
        hit = np.nonzero(errors <= tol)[0]
        out[float(tol)] = int(hit[0]) + 1 if len(hit) else None
    return out


def _summary(exp_fit: LineFit | None, pow_fit: LineFit | None) -> dict | None:
    if exp_fit is None:
        return None
    return {"n_range": [exp_fit.n_lo, exp_fit.n_hi], "better": "exponential" if exp_fit.r2 >= pow_fit.r2 else "power",
            "exp_rate": exp_fit.rate, "exp_r2": exp_fit.r2, "power_p": pow_fit.rate, "power_r2": pow_fit.r2}


def fit_curve(errors: np.ndarray, n_range: tuple[int, int] | None = None, *, size: int | None = None,
              fit_floor: float = FIT_FLOOR, tolerances: tuple[float, ...] = TOLERANCES) -> CurveFit:
    """Exponential and power-law fits of one curve over ``n_range`` (default :func:`default_range`: ``1 .. N/2``).

    ``size`` is the group's ``N`` (default ``len(errors)``); it sets the default range and the ranges of
    ``sensitivity`` (``n <= N/4, N/2, 3N/4`` and ``all``, each also stopped at the floor).
    """
    errors = np.asarray(errors, dtype=np.float64)
    reach = picks_to_reach(errors, tolerances)
    size = len(errors) if size is None else int(size)
    if n_range is None:
        n_range = default_range(errors, size, fit_floor)
    else:
        lo, hi = int(n_range[0]), int(n_range[1])
        if lo < 1 or hi < lo:
            raise UserError(f"fit range must be 1 <= n_lo <= n_hi, got {n_range}")
        n_range = (lo, min(hi, len(errors)))
    sensitivity = {}
    for label, fraction in SENSITIVITY.items():
        rng = default_range(errors, size, fit_floor, fraction)
        sensitivity[label] = _summary(fit_line(errors, "exponential", rng), fit_line(errors, "power", rng))
    exp_fit = fit_line(errors, "exponential", n_range)
    pow_fit = fit_line(errors, "power", n_range)
    if exp_fit is None:
        return CurveFit(None, None, None, n_range, f"fewer than 3 points in n = {n_range[0]}..{n_range[1]} "
                        f"above the floor {fit_floor:g}", reach, sensitivity)
    better = "exponential" if exp_fit.r2 >= pow_fit.r2 else "power"
    return CurveFit(exp_fit, pow_fit, better, n_range, None, reach, sensitivity)


def fmt_rate(fit: LineFit | None) -> str:
    """``c=0.123 (R2 0.991)`` style text for tables."""
    if fit is None or not math.isfinite(fit.rate):
        return "-"
    return f"{fit.rate:.3g} (R² {fit.r2:.3f})"
