"""Rate fits recover known rates; curves that reach zero never give NaN."""

import math

import numpy as np
import pytest

from greedyprune.analysis import fit_curve, picks_to_reach
from greedyprune.analysis.fits import default_range, fit_line


def test_exponential_curve_recovers_rate():
    n = np.arange(1, 61)
    fit = fit_curve(3.0 * np.exp(-0.2 * n))
    assert fit.exponential.rate == pytest.approx(0.2, rel=1e-10)
    assert fit.exponential.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.better == "exponential" and fit.power.r2 < 0.99
    assert fit.n_range == (1, 30)  # default: n <= N/2
    assert fit.stable and fit.verdicts == {"N/4": "exponential", "N/2": "exponential", "3N/4": "exponential",
                                           "all": "exponential"}
    assert fit.sensitivity["3N/4"]["n_range"] == [1, 45] and fit.sensitivity["all"]["n_range"] == [1, 60]


def test_power_curve_recovers_exponent():
    n = np.arange(1, 201)
    noisy = 2.0 * n ** -1.5 * np.exp(0.05 * np.random.default_rng(0).standard_normal(n.size))
    fit = fit_curve(noisy)
    assert fit.power.rate == pytest.approx(1.5, abs=0.02)
    assert fit.better == "power" and fit.power.r2 > 0.99


def test_stated_range_is_used():
    n = np.arange(1, 101, dtype=float)
    errors = np.where(n <= 50, n ** -1.0, 50.0 ** -1.0 * np.exp(-0.3 * (n - 50)))
    fit = fit_curve(errors, (60, 100))
    assert fit.n_range == (60, 100) and fit.exponential.points == 41
    assert fit.exponential.rate == pytest.approx(0.3, rel=1e-9)


def test_errors_reaching_zero_are_floored_not_nan():
    errors = np.array([0.5, 0.1, 0.02, 1e-3, 0.0, 0.0, 0.0])
    fit = fit_curve(errors, size=8)
    assert fit.n_range == (1, 4)  # N/2 = 4, and the last error above the floor
    assert fit_curve(errors, size=14).n_range == (1, 4)  # stops at the last error above the floor
    assert all(math.isfinite(v) for v in (fit.exponential.rate, fit.exponential.r2, fit.power.rate, fit.power.r2))
    wide = fit_line(errors, "exponential", (1, 7))  # forcing the zeros in: floored, still finite
    assert math.isfinite(wide.rate) and math.isfinite(wide.r2)
    assert default_range(np.zeros(5)) == (1, 1)
    assert default_range(np.ones(9)) == (1, 4) and default_range(np.ones(9), size=20) == (1, 9)
    assert default_range(np.ones(9), fraction=None) == (1, 9)
    short = fit_curve(np.array([0.3, 0.0, 0.0]))
    assert short.exponential is None and "fewer than 3 points" in short.reason


def test_flat_curve_and_picks_to_reach():
    flat = fit_curve(np.full(10, 0.25))
    assert flat.exponential.rate == 0.0 and flat.exponential.r2 == 1.0
    reach = picks_to_reach(np.array([0.5, 0.09, 0.05, 0.009, 0.0011, 0.0009]))
    assert reach == {0.1: 2, 0.01: 4, 0.001: 6}
    assert picks_to_reach(np.array([0.5, 0.2]))[0.1] is None


@pytest.mark.parametrize("size", [64, 128, 256])
def test_power_law_then_collapse_is_a_power_law(size):
    """Issue 19, item 1: n^-1 up to N/2, then a linear drop to 0 at N. Fitted over the whole curve the
    collapse made it "exponential" (R² 0.90 vs 0.85, p inflated to 1.29); the default range is the bulk."""
    n = np.arange(1, size + 1, dtype=float)
    errors = np.where(n <= size / 2, 1 / n, (2 / size) * (size - n) / (size / 2))
    fit = fit_curve(errors)
    assert fit.n_range == (1, size // 2) and fit.better == "power"
    assert fit.power.rate == pytest.approx(1.0, abs=1e-9) and fit.power.r2 == pytest.approx(1.0, abs=1e-12)
    # the sensitivity shows where the verdict turns: exact power law up to N/2, exponential once the collapse is in
    assert fit.verdicts["N/4"] == fit.verdicts["N/2"] == "power"
    assert fit.verdicts["all"] == "exponential" and fit.sensitivity["all"]["power_p"] > 1.25
    assert fit.stable is False and fit.to_json()["stable"] is False


def test_shorter_curve_than_n_uses_the_group_size():
    # a curve measured only up to n = 40 of N = 256 (n_max, or the engine stopped): all of it is bulk
    errors = np.exp(-0.1 * np.arange(1, 41))
    fit = fit_curve(errors, size=256)
    assert fit.n_range == (1, 40) and fit.sensitivity["N/4"]["n_range"] == [1, 40]
