"""Check the theory on real statistics: decay curves, rate fits, bound constants (cvxpy), the check, plots.

Installed as ``greedyprune.analysis`` (the repository folder ``analysis/``; ``import analysis`` still works
from a source checkout and gives the same modules). Entry point: :func:`analyze_groups`
(``from greedyprune.analysis import GroupStatistics, analyze_groups``); the
statistics come from raw ``(G, b, E)`` (:class:`GroupStatistics`), from a model and calibration data
(:func:`group_statistics`) or from a pruning run (:func:`from_prune`: original model + its report).
The bounds checked are stated and proved in ``analysis/THEORY.md``.
"""

if __name__ == "analysis":  # imported by its old name from a checkout: become greedyprune.analysis
    from greedyprune._checkout import alias_top_level

    alias_top_level()  # the imports below then resolve to the same module objects

from .bounds import BOUNDS, bound_curves
from .check import BoundCheck, check_group, group_bounds, summarize
from .constants import TheoryConstants, compute_constants
from .collect import from_prune, group_statistics
from .curves import METHODS, GroupCurves, MethodCurve, decay_curves
from .fits import CurveFit, LineFit, fit_curve, picks_to_reach
from .group import GroupStatistics
from .report import AnalysisReport, GroupAnalysis, analyze_group, analyze_groups

__all__ = ["BOUNDS", "METHODS", "AnalysisReport", "BoundCheck", "CurveFit", "GroupAnalysis", "GroupCurves",
           "GroupStatistics", "LineFit", "MethodCurve", "TheoryConstants", "analyze_group", "analyze_groups",
           "bound_curves", "check_group", "compute_constants", "decay_curves", "fit_curve", "from_prune",
           "group_bounds", "group_statistics", "picks_to_reach", "summarize"]
