"""Group statistics of a real model: :func:`group_statistics` and :func:`from_prune`.

The statistics are those of the *unpruned* model on a calibration set (the pipeline's graph walker and
objective, :func:`greedyprune.pipeline.statistics.model_group_problems`): candidate ``i`` is channel
``i``'s contribution to the consumer layer's output, the target is that output itself, so
``T = sum_i c_i`` (the centroid case of ``THEORY.md``) and the curves are what a selection method
achieves on that group when nothing before it was pruned. Magnitude scores are the producer filters'
L1 norms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from greedyprune.errors import UserError

from .group import GroupStatistics


def group_statistics(model: nn.Module, calibration: Iterable, names: Iterable[str] | None = None, *,
                     precision: str = "float64", device: str | torch.device | None = None,
                     progress: bool = False, streams: bool = False) -> list[GroupStatistics]:
    """:class:`GroupStatistics` of every channel group of ``model`` (or those in ``names``), in forward order.

    Args:
        model: an unpruned model that traces (torchvision ResNet / MobileNet, ``nn.Sequential``, ...).
        calibration: a DataLoader, or any iterable of image batches or ``(images, labels)`` pairs.
        names: group names to keep (see ``greedyprune analyze --groups list``); unknown names raise.
        precision: ``float64`` or ``float32`` products (accumulation is float64 either way).
        device: where to run (default: the model's device).
        progress: tqdm bar over the groups.
        streams: also residual streams and block outputs (groups of kind ``stream``).
    """
    from greedyprune.calibration import as_batches
    from greedyprune.pipeline.statistics import model_group_problems, model_groups

    if precision not in ("float64", "float32"):
        raise UserError(f"precision must be 'float64' or 'float32', got {precision!r}")
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    model = model.to(device).eval()
    batches = as_batches(calibration, torch.device(device))
    available = [g.name for g in model_groups(model, batches[0], streams)]
    wanted = None
    if names is not None:
        wanted = {str(n) for n in names}
        unknown = sorted(wanted - set(available))
        if unknown:
            raise UserError(f"unknown group(s) {', '.join(unknown[:3])} for this {type(model).__name__}; it has "
                            f"{len(available)} groups: {', '.join(available[:4])}{', ...' if len(available) > 4 else ''}")
        if not wanted:
            raise UserError("no group names given; pass None for every group")
    return [GroupStatistics(group.name, p.gram, p.cross, p.energy, scores=state.scores(group), depth=depth)
            for depth, (group, p, state) in enumerate(model_group_problems(model, batches, wanted, streams, precision,
                                                                           progress=progress))]


def report_groups(report) -> list[dict]:
    """The per-group dicts (``name``, ``channels_before``, ...) of a pruning report: a ``PruneReport``, its
    dict, its JSON file or a pruned model file holding it."""
    if isinstance(report, (str, Path)):
        path = Path(report)
        if not path.exists():
            raise UserError(f"{path} does not exist; pass the pruning report (pruned.pt.json) or the pruned model file")
        if path.suffix == ".json":
            from greedyprune.commit import finish_interrupted
            from greedyprune.io import read_json
            finish_interrupted(path)  # a save killed between its renames: complete it before reading
            report = read_json(path, "pruning report", "pass pruned.pt.json or pruned.pt")
        else:
            from greedyprune.modelfile import load_report
            report = load_report(path)
            if report is None:
                raise UserError(f"{path} holds no pruning report; pass the report (pruned.pt.json) or group names")
    if hasattr(report, "to_dict"):
        report = report.to_dict()
    groups = report.get("groups") if isinstance(report, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "name" in g for g in groups):
        raise UserError("the pruning report has no list of groups with names; pass a PruneReport, its JSON or "
                        "pruned.pt")
    return groups


def from_prune(model: nn.Module, calibration: Iterable, report=None, *, groups: Iterable[str] | None = None,
               precision: str = "float64", device: str | torch.device | None = None,
               progress: bool = False) -> list[GroupStatistics]:
    """Statistics of the groups a pruning run pruned, re-collected on the *original* model.

    ``from_prune(model, loader, report)`` with the unpruned ``model``, the calibration data of the run
    and its report (``greedyprune.prune``'s ``PruneReport``, ``pruned.json``, or the ``pruned.pt`` holding
    it) gives one :class:`GroupStatistics` per group of the report, ready for
    :func:`analysis.analyze_groups`. ``groups`` restricts them further (or replaces the report); with
    neither, every group of ``model``. The targets are the original outputs with nothing upstream
    pruned (the centroid case), i.e. the curves say how well each method reconstructs each group on
    its own, not the run's compounded error.
    """
    rows = None if report is None else {str(g["name"]): g for g in report_groups(report)}
    names = None if rows is None else list(rows)
    if groups is not None:
        chosen = [str(g) for g in groups]
        if names is not None:
            outside = sorted(set(chosen) - set(names))
            if outside:
                raise UserError(f"group(s) {', '.join(outside[:3])} are not in the pruning report; it has "
                                f"{', '.join(names[:4])}{', ...' if len(names) > 4 else ''}")
        names = chosen
    if rows:  # a pruned model passed by mistake would give the statistics of the wrong network
        from greedyprune.calibration import as_batches
        from greedyprune.pipeline.networks import device_of
        from greedyprune.pipeline.statistics import model_groups
        calibration = as_batches(calibration, device_of(model))  # read once (an iterator is consumed)
        for group in model_groups(model, calibration[0], streams=True):
            before = rows.get(group.name, {}).get("channels_before")
            if before is not None and int(before) != group.width:
                raise UserError(f"group {group.name} has {group.width} channels in this model but {before} before "
                                "pruning in the report; pass the original (unpruned) model")
    return group_statistics(model, calibration, names, precision=precision, device=device, progress=progress)
