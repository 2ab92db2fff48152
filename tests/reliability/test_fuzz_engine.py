"""Fuzzing the selection engine: odd shapes, k = 1, N = 1, zeros, duplicates, huge and tiny scales, junk input.

Whatever the input, the engine either returns a finite, well-formed :class:`Selection` or raises the
documented error: a one-line :class:`~greedyprune.UserError` (a ``ValueError`` subclass) that names the
argument at fault. A bare ``ValueError`` (or anything else) fails the test. On valid problems most
examples must select (a refusal is not a pass by default).
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from greedyprune import UserError, greedy_select, greedy_select_gram
from greedyprune.selection import registered_methods
from greedyprune.selection.base import methods_with_replacement

METHODS = sorted(registered_methods)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(sel, n: int, k: int, method: str) -> None:
    assert 0 <= len(sel) <= k
    assert sel.indices.dtype == torch.long and sel.indices.shape == sel.coefficients.shape == sel.errors.shape
    if len(sel):
        assert int(sel.indices.min()) >= 0 and int(sel.indices.max()) < n
    if method not in methods_with_replacement:
        assert len(set(sel.indices.tolist())) == len(sel)
    assert bool(torch.isfinite(sel.coefficients).all()) and bool(torch.isfinite(sel.errors).all())
    assert bool((sel.errors >= 0).all())
    assert math.isfinite(sel.final_error)


# every refusal names what is wrong with the input: one of the arguments, or the statistics as a whole
NAMED = ("gram", "cross", "energy", "k=", "k must", "features", "target", "scores", "damping", "method", "statistics",
         "candidates", "max_steps")


def _select(fn, *args, method: str, n: int, k: int, damping: float = 1e-8, **context):
    """``fn`` with the context values (scores, seed) the method declares it accepts."""
    try:
        sel = fn(*args, method=method, damping=damping, **registered_methods[method].accepted(**context))
    except UserError as err:  # the documented way to refuse (a bare ValueError is not: it fails the test)
        message = str(err)
        assert "\n" not in message and message.strip(), repr(message)
        assert any(word in message.lower() for word in NAMED), message
        return None
    _check(sel, n, k, method)
    return sel


def _mostly_selects(outcomes: list, share: float) -> None:
    """Most generated valid problems must give a selection, not a refusal."""
    assert outcomes, "no example ran"
    done = sum(outcomes) / len(outcomes)
    assert done >= share, f"only {done:.0%} of {len(outcomes)} valid problems gave a selection (want {share:.0%})"


@st.composite
def problems(draw):
    n = draw(st.integers(1, 9))
    d = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=g, dtype=torch.float64)
    rows = draw(st.sampled_from(["plain", "zeros", "duplicates", "all-zero", "rank-one"]))
    if rows == "zeros":
        features[: max(1, n // 2)] = 0
    elif rows == "duplicates":
        features[n // 2:] = features[0].clone()
    elif rows == "all-zero":
        features.zero_()
    elif rows == "rank-one":
        features = torch.randn(n, 1, generator=g, dtype=torch.float64) * torch.randn(1, d, generator=g,
                                                                                      dtype=torch.float64)
    target = draw(st.sampled_from(["sum", "random", "zero", "one-row"]))
    t = {"sum": features.sum(0), "random": torch.randn(d, generator=g, dtype=torch.float64),
         "zero": torch.zeros(d, dtype=torch.float64), "one-row": features[0].clone()}[target]
    scale = 10.0 ** draw(st.integers(-60, 60))
    method = draw(st.sampled_from(METHODS))
    k = draw(st.integers(1, 2 * n if method in methods_with_replacement else n))
    damping = draw(st.sampled_from([0.0, 1e-8, 1e-4, 1.0]))
    return features * scale, t * scale, k, method, damping, seed


def test_features_entry_point():
    outcomes: list[bool] = []

    @FUZZ
    @given(problems())
    def run(problem):
        features, target, k, method, damping, seed = problem
        n = features.shape[0]
        scores = features.abs().sum(1)
        outcomes.append(_select(greedy_select, features, target, k, method=method, n=n, k=k, damping=damping,
                                scores=scores, seed=seed) is not None)

    run()
    _mostly_selects(outcomes, 0.8)


def test_gram_entry_point_with_float32_statistics():
    """The pipeline hands float32/float64 statistics to the engine; both precisions must behave."""
    outcomes: list[bool] = []

    @FUZZ
    @given(problems())
    def run(problem):
        features, target, k, method, damping, seed = problem
        f = features.to(torch.float32)
        t = target.to(torch.float32)
        n = f.shape[0]
        selected = _select(greedy_select_gram, f @ f.T, f @ t, t @ t, k, method=method, n=n, k=k,
                           damping=damping, scores=f.abs().sum(1), seed=seed) is not None
        top = float(f.abs().max())
        if top == 0 or 1e-12 <= top <= 1e12:  # products that float32 holds; beyond, refusing is right
            outcomes.append(selected)

    run()
    _mostly_selects(outcomes, 0.8)


@st.composite
def junk_statistics(draw):
    """Statistics no calibration run produces: indefinite or asymmetric grams, negative/huge entries, NaN."""
    n = draw(st.integers(1, 6))
    values = st.one_of(st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
                       st.sampled_from([0.0, -0.0, 1e-300, -1e-300, float("nan"), float("inf"), float("-inf")]))
    gram = torch.tensor(draw(st.lists(values, min_size=n * n, max_size=n * n)), dtype=torch.float64).reshape(n, n)
    if draw(st.booleans()):
        gram = 0.5 * (gram + gram.T)
    cross = torch.tensor(draw(st.lists(values, min_size=n, max_size=n)), dtype=torch.float64)
    energy = draw(values)
    k = draw(st.integers(-1, n + 1))
    method = draw(st.sampled_from(METHODS))
    return gram, cross, energy, k, method


@settings(max_examples=80, deadline=None)
@given(junk_statistics())
def test_junk_statistics_never_crash(stats):
    gram, cross, energy, k, method = stats
    n = gram.shape[0]
    with torch.no_grad():
        _select(greedy_select_gram, gram, cross, energy, k, method=method, n=n, k=max(k, 0),
                scores=torch.ones(n, dtype=torch.float64), seed=0)


def test_single_candidate_and_single_pick():
    """N = 1, k = 1 for every method: the one candidate is picked (or the zero target needs none)."""
    for method in METHODS:
        sel = greedy_select(torch.tensor([[1.0, 2.0]]), torch.tensor([2.0, 4.0]), 1, method=method,
                            **registered_methods[method].accepted(scores=torch.ones(1), seed=0))
        _check(sel, 1, 1, method)
        assert sel.indices.tolist() == [0]
