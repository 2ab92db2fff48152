"""The resolution ``k*`` of a bound check: how wrong its rate constant may be and still pass (``THEORY.md`` 8a).

Each bound has one rate constant (``bounds.RATE_CONSTANT``); :func:`bounds.bound_curve` with ``optimism = k``
makes it ``k`` times more optimistic, and every bound is non-increasing in ``k``. ``k*`` is the smallest
``k >= 1`` that makes the check FAIL at some ``n >= 2``: a constant ``k*`` or more times too optimistic is
caught, one wrong by less passes as well. For the exponential bounds ``k*`` is about the measured decay
from ``n = 1`` over the bound's own decay ``B(n)/B(1)`` (in logs).
"""

from __future__ import annotations

import math

import numpy as np

from .bounds import bound_curve
from .constants import TheoryConstants

ATOL = 1e-10
RTOL = 1e-13
MAX_FACTOR = 1e12  # resolutions are searched up to this factor (beyond: reported as None, "never")


def tolerance(bound: np.ndarray, atol: float = ATOL) -> np.ndarray:
    """Rounding allowed above a relative bound: ``atol + RTOL * |bound|``. The engine's loss is a difference of
    terms about as large as the bound, so its float64 rounding grows with it (``uniform``'s first picks can be
    10-1e6 E); ``RTOL = 1e-13`` is some 500 ulps of the bound."""
    return atol + RTOL * np.abs(bound)


def resolution(constants: TheoryConstants, key: str, measured: np.ndarray, atol: float = ATOL,
               cap: float = MAX_FACTOR) -> float | None:
    """Smallest ``k >= 1`` such that the bound with its rate constant ``k`` times more optimistic is below the
    measured error (beyond ``atol``) at some ``n >= 2``; ``None`` if no ``k <= cap`` does (bisection on log k:
    every bound is non-increasing in ``k``)."""
    n = np.arange(2, len(measured) + 1)
    if len(n) == 0:
        return None
    meas = np.asarray(measured[1:])

    def fails(k: float) -> bool:
        rhs = bound_curve(constants, key, n, k)
        return rhs is not None and bool(np.any(meas > rhs + tolerance(rhs, atol)))

    if fails(1.0):
        return 1.0
    if not fails(cap):
        return None
    lo, hi = 0.0, math.log(cap)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if fails(math.exp(mid)) else (mid, hi)
    return math.exp(hi)
