"""The winning-ticket verdict: both sanity checks of Ma et al. (NeurIPS 2021), not a bare accuracy.

A subnetwork is called a winning ticket only if

1. **it matches a well-trained dense model within the same training budget**: with ``best`` the larger
   of the dense mean (same recipe as the ticket) and ``well_trained_reference`` (a dense model trained
   as well as one can with the same budget, e.g. a tuned SGD recipe; optional),
   ``mean(ticket) >= best - tolerance``, and the ticket's (re)training steps do not exceed the dense run's.
   A dense baseline weaker than the reference does not lower the bar;
2. **it beats random re-initialisation of the same mask by more than seed noise**:
   ``mean(ticket) - mean(reinit) > noise_multiplier * noise`` where ``noise`` is the largest sample
   standard deviation across seeds of the dense, ticket and reinit runs (each group with >= 2 seeds),
   floored at ``min_noise``.

Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Sequence

from ..errors import UserError


@dataclass
class Verdict:
    """Both conditions, their numbers and a sentence per condition."""

    winning_ticket: bool
    matches_dense: bool
    beats_reinit: bool
    reasons: list[str] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        head = "winning ticket" if self.winning_ticket else "NOT a winning ticket"
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


def winning_ticket_verdict(dense: Sequence[float], ticket: Sequence[float], reinit: Sequence[float], *,
                           dense_steps: int, ticket_steps: int, tolerance: float = 0.005,
                           noise_multiplier: float = 1.0, min_noise: float = 0.001,
                           well_trained_reference: float | None = None) -> Verdict:
    """Apply both Ma et al. conditions (see the module docstring) to per-seed test accuracies.

    Args:
        dense, ticket, reinit: test accuracies per seed of the dense model, the ticket and the random
            re-initialisation of the ticket's mask.
        dense_steps, ticket_steps: training steps of the dense run and of the ticket's (re)training.
        tolerance: how far below the dense mean the ticket may be and still "match" (default 0.5 pp).
        noise_multiplier: the reinit margin must exceed this many seed standard deviations.
        min_noise: floor of the noise estimate (default 0.1 pp; used alone when every group has 1 seed).
        well_trained_reference: accuracy a well-trained dense model reaches with the same budget (e.g. a
            better-tuned dense run); the ticket must match the better of it and ``dense``.
    """
    dense, ticket, reinit = _check("dense", dense), _check("ticket", ticket), _check("reinit", reinit)
    if tolerance < 0 or noise_multiplier < 0 or min_noise < 0:
        raise UserError("tolerance, noise_multiplier and min_noise must be >= 0")
    m_dense, m_ticket, m_reinit = statistics.fmean(dense), statistics.fmean(ticket), statistics.fmean(reinit)
    stds = {"dense": _std(dense), "ticket": _std(ticket), "reinit": _std(reinit)}
    known = [s for s in stds.values() if s is not None]
    noise = max(known + [min_noise])
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
    beats = margin > noise_multiplier * noise
    seeds = f"{len(ticket)}/{len(reinit)} seeds"
    reasons.append(f"condition 2 {'holds' if beats else 'fails'}: ticket - reinit = {100 * margin:+.2f} pp vs "
                   f"seed noise {noise_multiplier:g} x {100 * noise:.2f} pp ({seeds}"
                   + ("" if known else ", noise is the floor: one seed per group") + ")")
    numbers = {"dense_mean": m_dense, "ticket_mean": m_ticket, "reinit_mean": m_reinit, "ticket_minus_best_dense": gap, "best_dense": best,
               "ticket_minus_reinit": margin, "noise": noise, "stds": stds, "tolerance": tolerance,
               "noise_multiplier": noise_multiplier, "dense_steps": dense_steps, "ticket_steps": ticket_steps,
               "well_trained_reference": well_trained_reference, "dense": dense, "ticket": ticket, "reinit": reinit}
    return Verdict(matches and beats, matches, beats, reasons, numbers)
