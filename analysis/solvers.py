"""cvxpy solves with a fallback chain, and HiGHS's start-up banner kept out of stdout."""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

import cvxpy as cp

_BANNER_SILENCED = False


def silence_highs_banner() -> None:
    """Create HiGHS's first solver object with the process's stdout (fd 1) sent to /dev/null.

    HiGHS prints a copyright banner from C++ when the first ``Highs()`` of a process is made, whatever
    the options; it would land in the middle of ``greedyprune analyze``'s output. Later objects print
    nothing, so this runs once.
    """
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    _BANNER_SILENCED = True
    try:
        import highspy
    except ImportError:
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            try:
                highspy.Highs()
            finally:
                try:  # C stdio may buffer the banner: flush it into /dev/null before fd 1 is restored
                    ctypes.CDLL(None).fflush(None)
                except (OSError, AttributeError):
                    pass
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def solve(problem: cp.Problem, solvers: tuple[str, ...]) -> str:
    """Solve with the first installed solver of ``solvers`` that succeeds; its name (RuntimeError if none)."""
    last = None
    if "HIGHS" in solvers:
        silence_highs_banner()
    for solver in solvers:
        if solver not in cp.installed_solvers():
            continue
        try:
            with warnings.catch_warnings():  # "solution may be inaccurate": every result is re-verified exactly
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=solver)
        except cp.error.SolverError as err:  # try the next one
            last = err
            continue
        if problem.status in ("optimal", "optimal_inaccurate", "infeasible", "infeasible_inaccurate"):
            return solver
    raise RuntimeError(f"no cvxpy solver succeeded ({last}); installed: {cp.installed_solvers()}")
