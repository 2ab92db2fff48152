"""Global refit after selection (label-free): see :mod:`greedyprune.refit.fit` for the objective."""

from .features import features_of, last_linear
from .fit import (
    CHOICES,
    METHODS,
    RefitReport,
    check_refit_options,
    global_refit,
    resolve_refit,
)
from .hook import refit_after_pruning
from .targets import RefitTarget, refit_parameters, targets_of

__all__ = ["CHOICES", "METHODS", "RefitReport", "RefitTarget", "check_refit_options", "features_of", "global_refit",
           "last_linear", "refit_after_pruning", "refit_parameters", "resolve_refit", "targets_of"]
