"""The winning-ticket verdict: both sanity checks of Ma et al. (NeurIPS 2021), not a bare accuracy.

A subnetwork is called a winning ticket only if

1. **it matches a well-trained dense model within the same training budget**: with ``best`` the larger
   of the dense mean (same recipe as the ticket) and ``well_trained_reference`` (a dense model trained
   as well as one can with the same budget, e.g. a tuned SGD recipe; optional),
   ``mean(ticket) >= best - tolerance``, and the ticket's (re)training steps do not exceed the dense run's.
   A dense baseline weaker than the reference does not lower the bar;
2. **it beats random re-initialisation of the same mask by more than seed noise**, tested one-sided:
   ``d = mean(ticket) - mean(reinit)``, the seed noise ``s`` is the *pooled* sample standard deviation
   of the dense, ticket and reinit groups (``s^2 = sum (n_i - 1) s_i^2 / sum (n_i - 1)``, ``df = sum (n_i - 1)``
   degrees of freedom; the three groups differ only in mask/start and share the seed noise), floored at
   ``min_noise``; ``SE = s sqrt(1/n_ticket + 1/n_reinit)`` and ``t = d / SE``. The condition **holds**
   when ``t`` exceeds the one-sided Student-t quantile ``t_{confidence, df}`` (default 95%: 2.35 for
   2 seeds per group, df = 3), **fails** when ``d <= 0``, and is **inconclusive** in between (a positive
   margin within noise) or when no group has two seeds (``df = 0``: the noise is unknown).

The verdict is "winning ticket" when both hold, "not a winning ticket" when one fails, else
"inconclusive" -- a borderline margin is not reported as a pass.

Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Sequence

from scipy import stats

from ..errors import UserError

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"


@dataclass
class Verdict:
    """Both conditions, their numbers and a sentence per condition.

    ``status``: ``"winning ticket"``, ``"not a winning ticket"`` or ``"inconclusive"``;
    ``reinit_test``: condition 2's ``"holds"`` / ``"fails"`` / ``"inconclusive"`` (``beats_reinit`` is
    True only when it holds).
    """

    winning_ticket: bool
    matches_dense: bool
    beats_reinit: bool
    reasons: list[str] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    status: str = ""
    reinit_test: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        head = {"winning ticket": "winning ticket", "inconclusive": "INCONCLUSIVE"}.get(self.status, "NOT a winning ticket")
        return head + ": " + "; ".join(self.reasons)


def _check(name: str, values: Sequence[float]) -> list[float]:
    values = [float(v) for v in values]
    if not values:
        raise UserError(f"{name} needs at least one run")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise UserError(f"{name} accuracies must be fractions in [0, 1], got {values}")
    return values


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def pooled_noise(*groups: list[float]) -> tuple[float, int]:
    """``(s, df)``: the pooled sample standard deviation of ``groups`` and its degrees of freedom (0: unknown)."""
    df = sum(len(g) - 1 for g in groups if len(g) >= 2)
    if df == 0:
        return 0.0, 0
    ss = sum(sum((v - statistics.fmean(g)) ** 2 for v in g) for g in groups if len(g) >= 2)
    return math.sqrt(ss / df), df


def winning_ticket_verdict(dense: Sequence[float], ticket: Sequence[float], reinit: Sequence[float], *,
                           dense_steps: int, ticket_steps: int, tolerance: float = 0.005,
                           confidence: float = 0.95, min_noise: float = 0.001,
                           well_trained_reference: float | None = None) -> Verdict:
    """Apply both Ma et al. conditions (see the module docstring) to per-seed test accuracies.

    Args:
        dense, ticket, reinit: test accuracies per seed of the dense model, the ticket and the random
            re-initialisation of the ticket's mask.
        dense_steps, ticket_steps: training steps of the dense run and of the ticket's (re)training.
        tolerance: how far below the dense mean the ticket may be and still "match" (default 0.5 pp).
        confidence: one-sided level of condition 2's t-test (the margin must exceed
            ``t_{confidence, df}`` standard errors).
        min_noise: floor of the pooled seed standard deviation (default 0.1 pp).
        well_trained_reference: accuracy a well-trained dense model reaches with the same budget (e.g. a
            better-tuned dense run); the ticket must match the better of it and ``dense``.
    """
    dense, ticket, reinit = _check("dense", dense), _check("ticket", ticket), _check("reinit", reinit)
    if tolerance < 0 or min_noise < 0 or not 0.5 <= confidence < 1:
        raise UserError("tolerance and min_noise must be >= 0 and confidence in [0.5, 1)")
    m_dense, m_ticket, m_reinit = statistics.fmean(dense), statistics.fmean(ticket), statistics.fmean(reinit)
    stds = {"dense": _std(dense), "ticket": _std(ticket), "reinit": _std(reinit)}
    pooled, df = pooled_noise(dense, ticket, reinit)
    noise = max(pooled, min_noise)
    reasons = []

    budget_ok = ticket_steps <= dense_steps
    best = m_dense if well_trained_reference is None else max(m_dense, float(well_trained_reference))
    gap = m_ticket - best
    matches = budget_ok and gap >= -tolerance
    reference = "" if well_trained_reference is None else f", well-trained reference {100 * well_trained_reference:.2f}%"
    if not budget_ok:
        reasons.append(f"condition 1 fails: the ticket trained {ticket_steps} steps, more than the dense "
                       f"run's {dense_steps}")
    else:
        reasons.append(f"condition 1 {'holds' if matches else 'fails'}: ticket {100 * m_ticket:.2f}% vs dense "
                       f"{100 * m_dense:.2f}% (same recipe{reference}): {100 * gap:+.2f} pp against the better, "
                       f"tolerance -{100 * tolerance:.2f} pp, same budget {ticket_steps} <= {dense_steps} steps")
    margin = m_ticket - m_reinit
    se = noise * math.sqrt(1 / len(ticket) + 1 / len(reinit))
    t = margin / se if se > 0 else (math.copysign(math.inf, margin) if margin else 0.0)
    critical = float(stats.t.ppf(confidence, df)) if df else math.inf
    p_value = float(stats.t.sf(t, df)) if df else None
    test = FAILS if margin <= 0 else HOLDS if t > critical else INCONCLUSIVE
    seeds = f"{len(ticket)}/{len(reinit)} seeds"
    if df:
        detail = (f"t = {t:.2f} vs t_{confidence:g},{df} = {critical:.2f} (SE {100 * se:.2f} pp from the pooled seed "
                  f"noise {100 * noise:.2f} pp, {seeds}, one-sided p = {p_value:.3f})")
    else:
        detail = f"seed noise unknown: one seed per group ({seeds})"
    reasons.append(f"condition 2 {'is ' if test == INCONCLUSIVE else ''}{test}: ticket - reinit = {100 * margin:+.2f} pp, "
                   + detail)
    status = ("not a winning ticket" if not matches or test == FAILS
              else "winning ticket" if test == HOLDS else "inconclusive")
    numbers = {"dense_mean": m_dense, "ticket_mean": m_ticket, "reinit_mean": m_reinit, "ticket_minus_best_dense": gap,
               "best_dense": best, "ticket_minus_reinit": margin, "noise": noise, "pooled_std": pooled, "df": df,
               "standard_error": se, "t": t, "t_critical": critical if df else None, "p_value": p_value,
               "confidence": confidence, "stds": stds, "tolerance": tolerance, "dense_steps": dense_steps,
               "ticket_steps": ticket_steps, "well_trained_reference": well_trained_reference, "dense": dense,
               "ticket": ticket, "reinit": reinit}
    return Verdict(status == "winning ticket", matches, test == HOLDS, reasons, numbers, status, test)
