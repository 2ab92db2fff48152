"""Stochastic bilevel optimisation: MRBO, VRBO and a stocBiO baseline over implicit hypergradients.

Solve ``min_x f(x, y*(x))``, ``y*(x) = argmin_y g(x, y)`` given stochastic oracles (see
:mod:`.problem`)::

    from greedyprune.bilevel import make_solver, QuadraticBilevel
    problem = QuadraticBilevel(dim=10)
    solver = make_solver("mrbo", problem, x0, y0).run(2000)
    solver.x, solver.y, solver.cost.samples
"""

from .firstorder import FirstOrder, FirstOrderOptions
from .masking import MaskLearningProblem
from .base import BilevelSolver, SolverOptions, make_solver, registered_solvers
from .hypergrad import HypergradOptions, hypergradient, lower_gradient
from .mrbo import MRBO, MRBOOptions
from .problem import BilevelProblem, OracleCost
from .quadratic import QuadraticBilevel
from .stocbio import StocBiO, StocBiOOptions
from .vrbo import VRBO, VRBOOptions

__all__ = ["FirstOrder", "FirstOrderOptions", "MaskLearningProblem", "BilevelProblem", "BilevelSolver", "HypergradOptions", "MRBO", "MRBOOptions", "OracleCost",
           "QuadraticBilevel", "SolverOptions", "StocBiO", "StocBiOOptions", "VRBO", "VRBOOptions",
           "hypergradient", "lower_gradient", "make_solver", "registered_solvers"]
