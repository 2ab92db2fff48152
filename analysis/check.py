"""The check: for every group, bound and ``n``, is the measured error at most the bound?

A bound is compared with the curve of the one method its theorem is about (``BOUNDS[key].method``);
the comparison is on relative errors (``L/E``) with a small absolute tolerance ``atol`` for rounding
(the engine forms ``E - 2 b.g + g.G.g`` in float64). ``n`` is the theorem's ``n``: the number of picks,
which for ``uniform`` (picks with replacement) is not the number of distinct kept channels -- its bounds
are checked against its error per pick (``MethodCurve.pick_errors``). Each row says:

* ``status``: ``pass`` (every ``n`` satisfies the bound), ``FAIL`` (some ``n`` does not) or ``n/a``
  (the bound is undefined because its assumption is violated, e.g. no interior margin exists);
* ``violated``: the assumption the data violate, with the number that shows it (``None``: all hold);
* ``n_failed``, ``first_failure``, ``min_margin`` (``min_{n>=2} bound - measured``), ``max_ratio``
  (``max_{n>=2} measured / bound``: near 1 means nearly attained, small means loose; ``n = 1`` is
  left out because several bounds equal the first-pick error there by construction);
* ``min_bound``: the smallest ``bound(n) / E`` over the whole range, and ``below_one_from``: the first
  ``n`` where ``bound(n) / E < 1`` (``None``: never). Keeping nothing has error ``L/E = 1``, so a bound
  says something about a pruned layer only where it is below 1: it is ``informative`` when it holds and
  goes below 1 somewhere in the range. (A ratio such as ``bound(n_max)/bound(1)`` is no measure of this:
  for ``V_T/n`` it is ``1/n_max`` whatever the constants.)

A FAIL whose assumptions hold would mean a wrong constant, a solver inaccuracy or an engine bug; it
is reported as such (``explanation``), never hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .bounds import BOUNDS, TheoryConstants, bound_curves
from .curves import GroupCurves

ATOL = 1e-10
TRIVIAL = 1.0  # relative error of keeping nothing (f = 0): a bound at or above it says nothing
# B4 assumes T in the relative interior of M: membership is decided numerically (L*/E <= HULL_RTOL), so
# the check grants the certified L*/E of the returned weights as extra slack (0 when T is exactly the
# centroid). B1 needs no slack: its right-hand side carries the |Phi a - T| terms (THEORY.md §3).
HULL_BOUNDS = ("fcfw_linear",)


@dataclass
class BoundCheck:
    group: str
    bound: str
    method: str
    statement: str
    assumption: str
    status: str
    violated: str | None
    explanation: str
    n_checked: int
    n_failed: int
    first_failure: int | None
    min_margin: float | None
    max_ratio: float | None
    min_bound: float | None
    below_one_from: int | None

    @property
    def informative(self) -> bool:
        """Holds and goes below the trivial error 1 (of keeping nothing) at some ``n`` of the range."""
        return self.status == "pass" and self.below_one_from is not None

    def to_json(self) -> dict:
        return {**asdict(self), "informative": self.informative}


def _one(group: str, key: str, measured: np.ndarray | None, rhs: np.ndarray | None, violated: str | None,
         atol: float) -> BoundCheck:
    spec = BOUNDS[key]
    base = dict(group=group, bound=key, method=spec.method, statement=spec.statement, assumption=spec.assumption,
                violated=violated)
    if measured is None:
        return BoundCheck(**base, status="n/a", explanation=f"no {spec.method} curve was computed", n_checked=0,
                          n_failed=0, first_failure=None, min_margin=None, max_ratio=None, min_bound=None,
                          below_one_from=None)
    if rhs is None:
        return BoundCheck(**base, status="n/a", explanation=f"bound undefined: {violated}", n_checked=0, n_failed=0,
                          first_failure=None, min_margin=None, max_ratio=None, min_bound=None, below_one_from=None)
    k = min(len(measured), len(rhs))
    meas, bnd = np.asarray(measured[:k]), np.asarray(rhs[:k])
    margin = bnd - meas
    ok = meas <= bnd + atol
    failed = np.nonzero(~ok)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bnd > 0, meas / bnd, np.where(meas > atol, np.inf, 0.0))
    # several bounds equal the first-pick error at n = 1 by construction: tightness is read from n >= 2
    tail = slice(1, None) if k >= 2 else slice(0, None)
    full = np.asarray(rhs)  # over the whole n range, also where the measured curve already stopped
    min_bound = float(full.min())
    below = np.nonzero(full < TRIVIAL)[0]
    below_one_from = int(below[0]) + 1 if len(below) else None
    if len(failed) == 0:
        status = "pass"
        explanation = "holds at every n" + (f" although its assumption is violated ({violated})" if violated else "")
        if below_one_from is None:
            explanation += (f"; vacuous: bound/E >= 1 (the error of keeping nothing) at every n = 1..{len(full)}, "
                            f"smallest {min_bound:.3g}")
    else:
        status = "FAIL"
        first = int(failed[0]) + 1
        if violated:
            explanation = f"fails from n = {first}: assumption violated: {violated}"
        else:
            explanation = (f"fails from n = {first} although its assumptions hold: a wrong constant, a solver "
                           "inaccuracy or an engine bug (please report)")
    return BoundCheck(**base, status=status, explanation=explanation, n_checked=k, n_failed=int(len(failed)),
                      first_failure=int(failed[0]) + 1 if len(failed) else None, min_margin=float(margin[tail].min()),
                      max_ratio=float(ratio[tail].max()), min_bound=min_bound, below_one_from=below_one_from)


def group_bounds(curves: GroupCurves, constants: TheoryConstants) -> dict[str, np.ndarray | None]:
    """Relative bound curves over each bound's own range of ``n``: ``uniform``'s picks for its bounds
    (B1, B2 and the ``herding_hull_D2`` form), ``n = 1 .. n_max`` for the others."""
    rhs = bound_curves(constants, curves.n_checked)
    out = {}
    for key, values in rhs.items():
        curve = curves.curves.get(BOUNDS[key].method if key in BOUNDS else "uniform")
        length = curve.n_picks if curve is not None and curve.pick_errors is not None else curves.n_max
        out[key] = None if values is None else values[:length]
    return out


def check_group(curves: GroupCurves, constants: TheoryConstants, atol: float = ATOL) -> list[BoundCheck]:
    """One :class:`BoundCheck` per bound of ``BOUNDS`` for one group (``n`` = picks, see the module doc)."""
    rhs = group_bounds(curves, constants)
    rows = []
    for key, spec in BOUNDS.items():
        curve = curves.curves.get(spec.method)
        measured = None if curve is None else curve.checked_errors()
        bound = rhs[key]
        slack = atol
        if key in HULL_BOUNDS and constants.in_hull:
            slack += constants.Lstar / constants.energy  # T in M was decided up to this (HULL_RTOL)
        rows.append(_one(curves.name, key, measured, bound, constants.violations.get(key), slack))
    return rows


def summarize(checks: list[BoundCheck]) -> dict[str, dict[str, int]]:
    """Per bound: how many groups ``pass`` / ``fail`` / ``n/a``, and how many passing ones are
    ``informative`` (go below the trivial error 1 at some ``n``)."""
    out: dict[str, dict[str, int]] = {}
    for row in checks:
        counts = out.setdefault(row.bound, {"pass": 0, "fail": 0, "n/a": 0, "informative": 0})
        counts[row.status.lower()] += 1
        counts["informative"] += int(row.informative)
    return out
