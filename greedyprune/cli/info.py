"""``greedyprune info``: what a saved model file holds (architecture, widths, the pruning report)."""

from __future__ import annotations

from dataclasses import dataclass

from .options import opt

HELP = "describe a saved model file: architecture, size, and its pruning report"


@dataclass
class Options:
    model: str | None = opt(None, "model file written by greedyprune prune/train (required)", positional=True)


def run(options: Options) -> None:
    import json

    from ..errors import UserError
    from ..modelfile import load, load_report
    from ..metrics import count_parameters
    from ..report import PruneReport

    if not options.model:
        raise UserError("--model is required: a model file written by greedyprune")
    model = load(options.model)
    spec = getattr(model, "greedyprune_spec", None)
    print(f"{options.model}: {spec['name'] if spec else type(model).__name__}, {count_parameters(model):,} parameters")
    report = load_report(options.model)
    if report and "groups" in report:  # a pruning report (load_report checked that it renders)
        print(PruneReport.from_dict(report).table())
    elif report:
        print(f"stored report (not a pruning report): {json.dumps(report)[:2000]}")
    else:
        print("no pruning report stored (an unpruned model)")
