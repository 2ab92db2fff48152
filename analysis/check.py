"""The check: for every group, bound and ``n``, is the measured error at most the bound -- and could it fail?

A bound is compared with the curve of the one method its theorem is about (``BOUNDS[key].method``);
the comparison is on relative errors (``L/E``) with a small tolerance for rounding, ``atol + 1e-13 |bound|``
(the engine forms ``E - 2 b.g + g.G.g`` in float64). ``n`` is the theorem's ``n``: the number of picks,
which for ``uniform`` (picks with replacement) is not the number of distinct kept channels -- its bounds
are checked against its error per pick (``MethodCurve.pick_errors``). Each row says:

* ``status``: ``pass`` (every ``n`` satisfies the bound), ``FAIL`` (some ``n`` does not) or ``n/a``
  (the bound is undefined because its assumption is violated, e.g. no interior margin exists);
* ``violated``: the assumption the data violate, with the number that shows it (``None``: all hold);
* ``n_failed``, ``first_failure``, ``min_margin`` (``min_{n>=2} bound - measured``), ``max_ratio``
  (``max_{n>=2} measured / bound``);
* ``resolution`` ``k*``: the smallest factor by which the bound's rate constant (``RATE_CONSTANT``:
  ``V_T``, ``V(a*)``, ``1/D^2``, ``r^2/D_T^2``, ``mu^2``) could be made more optimistic before the check
  FAILs at some ``n >= 2``. A pass says the constant is not ``k*`` or more times too optimistic, and
  nothing finer: a constant wrong by less would pass too. ``informative`` = passes with ``k* <= 10``
  (``INFORMATIVE_FACTOR``): the check would catch a constant one order of magnitude too optimistic.
  ``n >= 2`` because B3-B5 equal the measured first-pick error at ``n = 1`` by construction; for the
  exponential bounds ``k*`` is about the measured decay over the bound's own decay
  (``log(L_1/L_n) / log(B_1/B_n)``; ``THEORY.md`` section 8a);
* ``min_bound`` (smallest ``bound / E``) and ``below_one_from`` (first ``n`` with ``bound / E < 1``,
  the error of keeping nothing): whether the bound says anything about a pruned layer at all.

B1, B2, B3 and B5 hold for every target: their FAIL is reported as a wrong constant, a solver
inaccuracy or an engine bug, never as a violated assumption. :func:`simplex_endpoint` adds one more
row: ``reoptimized-simplex`` with all ``N`` candidates kept solves the hull QP, so its error must lie in
the certified ``L*`` bracket.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .bounds import BOUNDS, bound_curves
from .constants import TheoryConstants
from .curves import ZERO_RTOL, GroupCurves
from .resolution import ATOL, MAX_FACTOR, resolution, tolerance

TRIVIAL = 1.0  # relative error of keeping nothing (f = 0): a bound at or above it says nothing
INFORMATIVE_FACTOR = 10.0  # informative: a rate constant this many times too optimistic would FAIL
ENDPOINT = "fcfw_endpoint"
ENDPOINT_STATEMENT = "L_N (reoptimized-simplex, all N kept) in the certified L* bracket [L*_lower, L*_upper]"


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
    resolution: float | None = None

    @property
    def informative(self) -> bool:
        """Passes, and a rate constant ``INFORMATIVE_FACTOR`` times too optimistic would have FAILed."""
        return self.status == "pass" and self.resolution is not None and self.resolution <= INFORMATIVE_FACTOR

    def to_json(self) -> dict:
        return {**asdict(self), "informative": self.informative}


def _empty(base: dict, status: str, explanation: str) -> BoundCheck:
    return BoundCheck(**base, status=status, explanation=explanation, n_checked=0, n_failed=0, first_failure=None,
                      min_margin=None, max_ratio=None, min_bound=None, below_one_from=None)


def _one(group: str, key: str, measured: np.ndarray | None, rhs: np.ndarray | None, violated: str | None,
         atol: float, constants: TheoryConstants) -> BoundCheck:
    spec = BOUNDS[key]
    base = dict(group=group, bound=key, method=spec.method, statement=spec.statement, assumption=spec.assumption,
                violated=violated)
    if measured is None:
        return _empty(base, "n/a", f"no {spec.method} curve was computed")
    if rhs is None:
        return _empty(base, "n/a", f"bound undefined: {violated}")
    k = min(len(measured), len(rhs))
    meas, bnd = np.asarray(measured[:k]), np.asarray(rhs[:k])
    margin = bnd - meas
    failed = np.nonzero(~(meas <= bnd + tolerance(bnd, atol)))[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bnd > 0, meas / bnd, np.where(meas > atol, np.inf, 0.0))
    tail = slice(1, None) if k >= 2 else slice(0, None)
    full = np.asarray(rhs)  # over the whole n range, also where the measured curve already stopped
    below = np.nonzero(full < TRIVIAL)[0]
    below_one_from = int(below[0]) + 1 if len(below) else None
    res = resolution(constants, key, meas, atol) if len(failed) == 0 else 1.0
    if len(failed) == 0:
        status = "pass"
        explanation = "holds at every n" + (f" ({violated})" if violated else "")
        explanation += (f"; resolution: a rate constant {res:.3g}x too optimistic would fail" if res is not None else
                        f"; uninformative: no rate constant up to {MAX_FACTOR:g}x too optimistic would fail")
        if below_one_from is None:
            explanation += f"; bound/E >= 1 (the error of keeping nothing) at every n = 1..{len(full)}"
    else:
        status = "FAIL"
        first = int(failed[0]) + 1
        if spec.every_target:
            explanation = (f"fails from n = {first} although it holds for every target: a wrong constant, a solver "
                           "inaccuracy or an engine bug (please report)")
        else:
            explanation = (f"fails from n = {first} although its assumption holds: a wrong constant, a solver "
                           "inaccuracy or an engine bug (please report)")
    return BoundCheck(**base, status=status, explanation=explanation, n_checked=k, n_failed=int(len(failed)),
                      first_failure=int(failed[0]) + 1 if len(failed) else None, min_margin=float(margin[tail].min()),
                      max_ratio=float(ratio[tail].max()), min_bound=float(full.min()), below_one_from=below_one_from,
                      resolution=res)


def simplex_endpoint(curves: GroupCurves, constants: TheoryConstants, atol: float = ATOL) -> BoundCheck:
    """``reoptimized-simplex`` after all ``N`` picks (or stopped at the rounding floor) against ``L*``'s bracket.

    With every candidate kept, fully-corrective Frank-Wolfe has solved ``min_{a in simplex} L(Phi a)``:
    its error must be ``>= L*_lower`` (a certified lower bound) and ``<= L*_upper`` (the loss of a feasible
    point), each up to ``atol``. Below: the engine's loss formula or the bracket is wrong; above: the
    engine's inner QP did not reach the optimum.
    """
    base = dict(group=curves.name, bound=ENDPOINT, method="reoptimized-simplex", statement=ENDPOINT_STATEMENT,
                assumption="none", violated=None)
    curve = curves.curves.get("reoptimized-simplex")
    if curve is None:
        return _empty(base, "n/a", "no reoptimized-simplex curve was computed")
    last = float(curve.errors[curve.measured_until - 1])
    if curve.measured_until < curves.size and last > ZERO_RTOL:
        return _empty(base, "n/a", f"the curve stops at n = {curve.measured_until} < N = {curves.size} "
                                   "(n_max or simplex_max) above the rounding floor")
    e = constants.energy
    lo, hi = constants.Lstar_lower / e, constants.Lstar / e
    ok = lo - atol <= last <= hi + atol
    where = f"L_N/E = {last:.3g}, bracket [{lo:.3g}, {hi:.3g}]"
    explanation = (f"inside: {where}" if ok else
                   f"below the certified lower bound: {where} (the engine's loss or the bracket is wrong)" if last < lo
                   else f"above the optimum over the hull: {where} (the engine's inner QP did not converge)")
    return BoundCheck(**base, status="pass" if ok else "FAIL", explanation=explanation, n_checked=1,
                      n_failed=0 if ok else 1, first_failure=None if ok else curve.measured_until,
                      min_margin=min(last - lo, hi - last), max_ratio=None, min_bound=None, below_one_from=None)


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
    """One :class:`BoundCheck` per bound of ``BOUNDS`` for one group, then the ``fcfw_endpoint`` row."""
    rhs = group_bounds(curves, constants)
    rows = []
    for key, spec in BOUNDS.items():
        curve = curves.curves.get(spec.method)
        measured = None if curve is None else curve.checked_errors()
        rows.append(_one(curves.name, key, measured, rhs[key], constants.violations.get(key), atol, constants))
    rows.append(simplex_endpoint(curves, constants, atol))
    return rows


def summarize(checks: list[BoundCheck]) -> dict[str, dict[str, int]]:
    """Per bound: how many groups ``pass`` / ``fail`` / ``n/a``, and how many passing ones are
    ``informative`` (resolution <= INFORMATIVE_FACTOR)."""
    out: dict[str, dict[str, int]] = {}
    for row in checks:
        counts = out.setdefault(row.bound, {"pass": 0, "fail": 0, "n/a": 0, "informative": 0})
        counts[row.status.lower()] += 1
        counts["informative"] += int(row.informative)
    return out
