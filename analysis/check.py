"""The check: for every group, bound and ``n``, is the measured error at most the bound?

A bound is compared with the curve of the one method its theorem is about (``BOUNDS[key].method``);
the comparison is on relative errors (``L/E``) with a small absolute tolerance ``atol`` for rounding
(the engine forms ``E - 2 b.g + g.G.g`` in float64). Each row says:

* ``status``: ``pass`` (every ``n`` satisfies the bound), ``FAIL`` (some ``n`` does not) or ``n/a``
  (the bound is undefined because its assumption is violated, e.g. no interior margin exists);
* ``violated``: the assumption the data violate, with the number that shows it (``None``: all hold);
* ``n_failed``, ``first_failure``, ``min_margin`` (``min_{n>=2} bound - measured``), ``max_ratio``
  (``max_{n>=2} measured / bound``: near 1 means nearly attained, small means loose; ``n = 1`` is
  left out because several bounds equal the first-pick error there by construction);
* ``decay``: ``bound(n_max) / bound(1)``, how much decrease the bound certifies over the whole range
  ``n = 1 .. n_max`` (informativeness), even where the measured curve already stopped at zero.

A FAIL whose assumptions hold would mean a wrong constant, a solver inaccuracy or an engine bug; it
is reported as such (``explanation``), never hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .bounds import BOUNDS, TheoryConstants, bound_curves
from .curves import GroupCurves

ATOL = 1e-10
VACUOUS_DECAY = 0.5  # a bound whose whole-range decrease is less than 2x certifies (almost) nothing
INFORMATIVE_DECAY = 0.1  # counted as informative when it certifies at least a 10x decrease
# bounds that assume T in M: membership is decided numerically (L*/E <= HULL_RTOL), so the check
# grants the certified L*/E of the returned weights as extra slack (0 when T is exactly the centroid)
HULL_BOUNDS = ("herding_hull", "fcfw_linear")


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
    decay: float | None

    @property
    def informative(self) -> bool:
        """Holds and certifies at least a ``1/INFORMATIVE_DECAY``-fold decrease over the n range."""
        return self.status == "pass" and self.decay is not None and self.decay <= INFORMATIVE_DECAY

    def to_json(self) -> dict:
        return {**asdict(self), "informative": self.informative}


def _one(group: str, key: str, measured: np.ndarray | None, rhs: np.ndarray | None, violated: str | None,
         atol: float) -> BoundCheck:
    spec = BOUNDS[key]
    base = dict(group=group, bound=key, method=spec.method, statement=spec.statement, assumption=spec.assumption,
                violated=violated)
    if measured is None:
        return BoundCheck(**base, status="n/a", explanation=f"no {spec.method} curve was computed", n_checked=0,
                          n_failed=0, first_failure=None, min_margin=None, max_ratio=None, decay=None)
    if rhs is None:
        return BoundCheck(**base, status="n/a", explanation=f"bound undefined: {violated}", n_checked=0, n_failed=0,
                          first_failure=None, min_margin=None, max_ratio=None, decay=None)
    k = min(len(measured), len(rhs))
    meas, bnd = np.asarray(measured[:k]), np.asarray(rhs[:k])
    margin = bnd - meas
    ok = meas <= bnd + atol
    failed = np.nonzero(~ok)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bnd > 0, meas / bnd, np.where(meas > atol, np.inf, 0.0))
    # several bounds equal the first-pick error at n = 1 by construction: tightness is read from n >= 2
    tail = slice(1, None) if k >= 2 else slice(0, None)
    full = np.asarray(rhs)
    decay = float(full[-1] / full[0]) if full[0] > 0 else None  # over the whole n range, not just measured n
    if len(failed) == 0:
        status = "pass"
        explanation = "holds at every n" + (f" although its assumption is violated ({violated})" if violated else "")
        if decay is not None and decay > VACUOUS_DECAY:
            explanation += f"; nearly vacuous: certifies only a factor {1 / decay:.3g} decrease over n = 1..{len(full)}"
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
                      max_ratio=float(ratio[tail].max()), decay=decay)


def check_group(curves: GroupCurves, constants: TheoryConstants, atol: float = ATOL) -> list[BoundCheck]:
    """One :class:`BoundCheck` per bound of ``BOUNDS`` for one group."""
    rhs = bound_curves(constants, curves.n_max)
    rows = []
    for key, spec in BOUNDS.items():
        curve = curves.curves.get(spec.method)
        measured = None if curve is None else curve.errors[:curve.measured_until]
        slack = atol
        if key in HULL_BOUNDS and constants.in_hull:
            slack += constants.Lstar / constants.energy  # T in M was decided up to this (HULL_RTOL)
        rows.append(_one(curves.name, key, measured, rhs[key], constants.violations.get(key), slack))
    return rows


def summarize(checks: list[BoundCheck]) -> dict[str, dict[str, int]]:
    """Per bound: how many groups ``pass`` / ``fail`` / ``n/a``, and how many passing ones are
    ``informative`` (certify at least a 10x decrease over the n range)."""
    out: dict[str, dict[str, int]] = {}
    for row in checks:
        counts = out.setdefault(row.bound, {"pass": 0, "fail": 0, "n/a": 0, "informative": 0})
        counts[row.status.lower()] += 1
        counts["informative"] += int(row.informative)
    return out
