import pytest

from greedyprune.baselines.verdict import winning_ticket_verdict
from greedyprune.errors import UserError


def test_verdict_both_conditions():
    v = winning_ticket_verdict([0.89, 0.892], [0.895, 0.893], [0.88, 0.882], dense_steps=100, ticket_steps=100)
    assert v.winning_ticket and v.matches_dense and v.beats_reinit
    assert "condition 1 holds" in v.reasons[0] and "condition 2 holds" in v.reasons[1]


def test_verdict_fails_when_reinit_within_noise():
    v = winning_ticket_verdict([0.89, 0.89], [0.891, 0.899], [0.889, 0.894], dense_steps=100, ticket_steps=100)
    assert v.matches_dense and not v.beats_reinit and not v.winning_ticket


def test_verdict_fails_on_budget_and_weak_dense():
    v = winning_ticket_verdict([0.89], [0.90], [0.80], dense_steps=100, ticket_steps=200)
    assert not v.matches_dense and "more than the dense" in v.reasons[0]
    v = winning_ticket_verdict([0.85], [0.86], [0.80], dense_steps=100, ticket_steps=100,
                               well_trained_reference=0.90)  # beats a weak dense, not the well-trained one
    assert not v.matches_dense and "well-trained reference 90.00%" in v.reasons[0]
    assert v.numbers["best_dense"] == 0.90
    v = winning_ticket_verdict([0.90], [0.88], [0.80], dense_steps=100, ticket_steps=100)
    assert not v.matches_dense and v.beats_reinit
    with pytest.raises(UserError):
        winning_ticket_verdict([90.0], [0.9], [0.9], dense_steps=1, ticket_steps=1)
