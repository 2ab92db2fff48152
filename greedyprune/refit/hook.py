"""The refit as a :class:`~greedyprune.Pruner` finish hook (``prune(..., refit="global")``)."""

from __future__ import annotations

from ..distributed import is_main
from ..partial import CutRunner
from ..walk.execute import positions
from .fit import global_refit
from .targets import targets_of


def refit_after_pruning(pruner) -> None:
    """Refit the groups the pruner actually pruned (fewer channels after than before); report in ``report.refit``.

    Evaluations start at the traced graph's cut before the first refit layer (the values there are
    computed once per calibration batch)."""
    o = pruner.options
    pruned = [g for g, r in zip(pruner.groups, pruner.report.groups) if r.channels_after < r.channels_before]
    if o.refit is None or not pruned:
        return
    targets = targets_of(pruned)
    modules = {t.consumer for t in targets} | {t.bias_sink for t in targets}
    pos = positions(pruner.nodes)
    start = min(pos[n] for n in pruner.nodes if n.op == "call_module" and str(n.target) in modules)
    result = global_refit(pruner.original, pruner.model, pruner.batches, targets, o.refit_iters, o.refit_features,
                          cut=CutRunner(pruner.model, pruner.nodes, pos, start), progress=o.progress and is_main())
    pruner.report.refit = result.to_dict()
    pruner.report.options.update(refit=o.refit, refit_iters=o.refit_iters)
