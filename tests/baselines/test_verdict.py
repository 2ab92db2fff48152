import math

import pytest

from greedyprune.baselines.verdict import winning_ticket_verdict
from greedyprune.errors import UserError


def test_verdict_both_conditions():
    v = winning_ticket_verdict([0.89, 0.892], [0.895, 0.893], [0.88, 0.882], dense_steps=100, ticket_steps=100)
    assert v.winning_ticket and v.matches_dense and v.beats_reinit
    assert "condition 1 holds" in v.reasons[0] and "condition 2 holds" in v.reasons[1]


def test_verdict_is_inconclusive_when_reinit_within_noise():
    v = winning_ticket_verdict([0.89, 0.89], [0.891, 0.899], [0.889, 0.894], dense_steps=100, ticket_steps=100)
    assert v.matches_dense and not v.beats_reinit and not v.winning_ticket
    assert v.status == "inconclusive" and v.reinit_test == "inconclusive" and str(v).startswith("INCONCLUSIVE")


def test_borderline_margin_is_inconclusive_not_a_pass():
    # the Pm 21% case of the first LTH run: +0.62 pp over reinit with a 0.60 pp dense spread, 2 seeds each
    dense, ticket, reinit = [0.8757, 0.8842], [0.8902, 0.8908], [0.8848, 0.8839]
    v = winning_ticket_verdict(dense, ticket, reinit, dense_steps=6000, ticket_steps=6000, well_trained_reference=0.8902)
    n = v.numbers
    # slow reference: pooled variance of the three groups, df = 3, one-sided 95% Student-t quantile 2.3534
    ss = sum((x - sum(g) / len(g)) ** 2 for g in (dense, ticket, reinit) for x in g)
    se = math.sqrt(ss / 3) * math.sqrt(1 / 2 + 1 / 2)
    assert n["df"] == 3 and n["standard_error"] == pytest.approx(se)
    assert n["t"] == pytest.approx((sum(ticket) - sum(reinit)) / 2 / se) and n["t_critical"] == pytest.approx(2.3534, abs=1e-4)
    assert 1 < n["t"] < n["t_critical"]  # more than one noise unit, less than the t-test asks
    assert v.matches_dense and v.reinit_test == "inconclusive" and v.status == "inconclusive" and not v.winning_ticket
    # a clear margin with the same noise passes; no margin fails; one seed per group cannot be judged
    clear = winning_ticket_verdict(dense, ticket, [0.8702, 0.8693], dense_steps=1, ticket_steps=1)
    assert clear.reinit_test == "holds" and clear.winning_ticket and clear.numbers["p_value"] < 0.05
    worse = winning_ticket_verdict(dense, ticket, [0.8912, 0.8918], dense_steps=1, ticket_steps=1)
    assert worse.reinit_test == "fails" and worse.status == "not a winning ticket"
    single = winning_ticket_verdict([0.88], [0.90], [0.80], dense_steps=1, ticket_steps=1)
    assert single.numbers["df"] == 0 and single.status == "inconclusive" and "one seed per group" in single.reasons[1]


def test_verdict_fails_on_budget_and_weak_dense():
    v = winning_ticket_verdict([0.89], [0.90], [0.80], dense_steps=100, ticket_steps=200)
    assert not v.matches_dense and "more than the dense" in v.reasons[0]
    v = winning_ticket_verdict([0.85], [0.86], [0.80], dense_steps=100, ticket_steps=100,
                               well_trained_reference=0.90)  # beats a weak dense, not the well-trained one
    assert not v.matches_dense and "well-trained reference 90.00%" in v.reasons[0]
    assert v.numbers["best_dense"] == 0.90
    v = winning_ticket_verdict([0.90, 0.902], [0.88, 0.881], [0.80, 0.802], dense_steps=100, ticket_steps=100)
    assert not v.matches_dense and v.beats_reinit and v.status == "not a winning ticket"
    with pytest.raises(UserError):
        winning_ticket_verdict([90.0], [0.9], [0.9], dense_steps=1, ticket_steps=1)
