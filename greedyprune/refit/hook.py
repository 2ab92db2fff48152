"""The refit as a :class:`~greedyprune.Pruner` finish hook (``prune(..., refit="auto" | "global")``).

``refit="global"`` runs it and a model it cannot apply to is a one-line error. ``refit="auto"`` (the
default) runs it when the selection method's registry entry asks for it (``whole_network_refit``) and
*skips* it where it cannot apply, with the reason in ``report.refit_skipped`` (a line of the report's
table, and of stderr while progress is shown): a model that runs no ``nn.Linear`` (no classifier input
to match), ``materialize=False``, no group pruned, features that do not vary over the calibration images
or that do not depend on the refit layers, a consumer weight that is not a plain parameter, a pruned
network whose features are not finite. A skipped refit leaves every parameter as it was.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from ..distributed import is_main
from ..errors import UserError
from ..partial import CutRunner
from ..walk.execute import positions
from .features import last_linear
from .fit import global_refit
from .targets import targets_of


def plan_refit(pruner) -> None:
    """At the pruner's start: add the refit hook, raise (``refit="global"``), or note why it is skipped.

    Checks what can be checked before any work: ``materialize`` and the feature layer (the last
    ``nn.Linear`` to run, or ``refit_features``), whose name is kept in ``pruner.refit_features``."""
    o = pruner.options
    if o.refit_method is None:
        return
    try:
        if not o.materialize:
            raise UserError("refit needs materialize=True (a masked model would revive the removed columns)")
        name = o.refit_features or last_linear(pruner.original, pruner.batches[0][:1])
        try:
            pruner.original.get_submodule(name)
        except AttributeError:
            raise UserError(f"refit_features names no module: {name!r}") from None
    except UserError as err:
        if not o.refit_automatic:
            raise
        skip(pruner, str(err))
        return
    pruner.refit_features = name
    pruner.finish_hooks.append(refit_after_pruning)


def skip(pruner, reason: str) -> None:
    """Record (and, with progress shown, print) why the automatic refit did not run."""
    pruner.report.refit_skipped = reason
    if pruner.options.progress and is_main():
        tqdm.write(f"refit skipped: {reason}", file=sys.stderr)


def refit_after_pruning(pruner) -> None:
    """Refit the groups the pruner actually pruned (fewer channels after than before); report in ``report.refit``.

    Evaluations start at the traced graph's cut before the first refit layer (the values there are
    computed once per calibration batch)."""
    o = pruner.options
    pruned = [g for g, r in zip(pruner.groups, pruner.report.groups) if r.channels_after < r.channels_before]
    if not pruned:
        skip(pruner, "no group was pruned, so there is nothing to refit")
        return
    try:
        targets = targets_of(pruned)
        modules = {t.consumer for t in targets} | {t.bias_sink for t in targets}
        pos = positions(pruner.nodes)
        starts = [pos[n] for n in pruner.nodes if n.op == "call_module" and str(n.target) in modules]
        if not starts:
            raise UserError("the refit layers are not modules of the traced graph; prune with refit=None")
        result = global_refit(pruner.original, pruner.model, pruner.batches, targets, o.refit_iters,
                              pruner.refit_features, cut=CutRunner(pruner.model, pruner.nodes, pos, min(starts)),
                              progress=o.progress and is_main())
    except UserError as err:
        if not o.refit_automatic:
            raise
        skip(pruner, str(err))
        return
    pruner.report.refit = result.to_dict()
    pruner.report.options.update(refit_iters=o.refit_iters)
