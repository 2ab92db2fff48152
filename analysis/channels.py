"""Picks vs kept channels for a method that picks with repeats (``uniform``): distinct counts per pick and
the error per number of kept channels (the pick that brings in each new channel)."""

from __future__ import annotations

import numpy as np


def distinct_counts(indices: np.ndarray) -> np.ndarray:
    """``out[t-1]`` = number of distinct entries among ``indices[:t]``."""
    indices = np.asarray(indices)
    first = np.zeros(len(indices), dtype=bool)
    _, where = np.unique(indices, return_index=True)
    first[where] = True
    return np.cumsum(first)


def by_channels(pick_errors: np.ndarray, distinct: np.ndarray, n_max: int) -> np.ndarray:
    """``out[d-1] = pick_errors[t_d - 1]``, ``t_d`` = first pick with ``distinct = d``, for ``d = 1 .. n_max``.

    ``d`` beyond ``distinct[-1]`` (never reached) repeats the last reached value. Applied to a per-pick
    bound it gives a bound of the per-channel curve (``err(t_d) <= bound(t_d)``).
    """
    values = np.asarray(pick_errors, dtype=np.float64)
    distinct = np.asarray(distinct)[:len(values)]
    reached = min(int(distinct[-1]), n_max)
    out = values[np.searchsorted(distinct, np.arange(1, reached + 1), side="left")]
    return np.concatenate([out, np.full(n_max - reached, out[-1])])
