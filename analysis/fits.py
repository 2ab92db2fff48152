"""Rate fits of a decay curve: exponential vs power law, and picks needed per tolerance.

Two least-squares lines through ``y = log(err)`` over a stated range ``n_lo <= n <= n_hi``:

* exponential: ``log err ~ a - c n``      -> ``rate c`` (per pick; ``err ~ exp(-c n)``),
* power law:   ``log err ~ a - p log n``  -> ``exponent p`` (``err ~ n^-p``),

each with ``R^2 = 1 - SS_res / SS_tot`` of the same ``y`` (both models have two parameters, so the
larger ``R^2`` is the better fit). Errors are clamped below at ``floor`` before the log, so a curve
that reaches exactly 0 never gives ``-inf`` or NaN; by default the range stops at the last ``n``
whose error is above ``fit_floor`` (the flat tail at the rounding floor says nothing about the rate).
A constant ``y`` has ``SS_tot = 0``: the fit is exact with slope 0 and ``R^2`` is reported as 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from greedyprune.errors import UserError

FLOOR = 1e-16       # clamp before taking logs
FIT_FLOOR = 1e-10   # default fit range ends at the last n with error above this
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

    def to_json(self) -> dict:
        return {"exponential": self.exponential.to_json() if self.exponential else None,
                "power": self.power.to_json() if self.power else None, "better": self.better,
                "n_range": list(self.n_range) if self.n_range else None, "reason": self.reason,
                "n_to_reach": {f"{t:g}": v for t, v in self.n_to_reach.items()}}


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = a + s x``; returns ``(s, a, R^2)``; never NaN."""
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / sxx) if sxx > 0 else 0.0
    intercept = float(ym - slope * xm)
    ss_tot = float(((y - ym) ** 2).sum())
    ss_res = float(((y - intercept - slope * x) ** 2).sum())
    r2 = 1.0 if ss_tot <= 1e-300 else 1.0 - ss_res / ss_tot
    return slope, intercept, r2


def default_range(errors: np.ndarray, fit_floor: float = FIT_FLOOR) -> tuple[int, int]:
    """``(1, n_hi)`` with ``n_hi`` the last ``n`` whose error is above ``fit_floor`` (at least 1)."""
    above = np.nonzero(np.asarray(errors) > fit_floor)[0]
    return 1, int(above[-1]) + 1 if len(above) else 1


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


def fit_curve(errors: np.ndarray, n_range: tuple[int, int] | None = None, *, fit_floor: float = FIT_FLOOR,
              tolerances: tuple[float, ...] = TOLERANCES) -> CurveFit:
    """Exponential and power-law fits of one curve over ``n_range`` (default :func:`default_range`)."""
    errors = np.asarray(errors, dtype=np.float64)
    reach = picks_to_reach(errors, tolerances)
    if n_range is None:
        n_range = default_range(errors, fit_floor)
    else:
        lo, hi = int(n_range[0]), int(n_range[1])
        if lo < 1 or hi < lo:
            raise UserError(f"fit range must be 1 <= n_lo <= n_hi, got {n_range}")
        n_range = (lo, min(hi, len(errors)))
    exp_fit = fit_line(errors, "exponential", n_range)
    pow_fit = fit_line(errors, "power", n_range)
    if exp_fit is None:
        return CurveFit(None, None, None, n_range, f"fewer than 3 points in n = {n_range[0]}..{n_range[1]} "
                        f"above the floor {fit_floor:g}", reach)
    better = "exponential" if exp_fit.r2 >= pow_fit.r2 else "power"
    return CurveFit(exp_fit, pow_fit, better, n_range, None, reach)


def fmt_rate(fit: LineFit | None) -> str:
    """``c=0.123 (R2 0.991)`` style text for tables."""
    if fit is None or not math.isfinite(fit.rate):
        return "-"
    return f"{fit.rate:.3g} (R² {fit.r2:.3f})"
