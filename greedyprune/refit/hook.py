"""The refit as a :class:`~greedyprune.Pruner` finish hook (``prune(..., refit="global")``)."""

from __future__ import annotations

from .fit import global_refit
from .targets import targets_of


def refit_after_pruning(pruner) -> None:
    """Refit the groups the pruner actually pruned (fewer channels after than before); report in ``report.refit``."""
    o = pruner.options
    pruned = [g for g, r in zip(pruner.groups, pruner.report.groups) if r.channels_after < r.channels_before]
    if o.refit is None or not pruned:
        return
    result = global_refit(pruner.original, pruner.model, pruner.batches, targets_of(pruner.model, pruned),
                          o.refit_iters, o.refit_features)
    pruner.report.refit = result.to_dict()
    pruner.report.options.update(refit=o.refit, refit_iters=o.refit_iters)
