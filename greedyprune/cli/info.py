"""``greedyprune info``: a model file or a model name -- architecture, size, channel groups, pruning report.

The channel groups are those :func:`greedyprune.graph.find_groups` traces on one input of the model's
shape, listed by :func:`greedyprune.graph.describe_groups`: name, kind (``internal``: one producer;
``stream``: channels shared by an addition), width, partition (grouped convs keep an equal number per
conv group), whether the reconstruction is exact (not across a LayerNorm over channels), producers ->
consumers; then the channels found but frozen, with the reason. A model that cannot be traced, or has no prunable group, is a one-line error naming
the module that stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .options import opt

HELP = "describe a model file or a model name: architecture, size, channel groups, frozen channels, pruning report"


@dataclass
class Options:
    model: str | None = opt(None, "model file written by greedyprune prune/train, or a model name (resnet50, "
                                  "timm:efficientnet_b0, ...) (required)", positional=True)
    input: str | None = opt(None, "input shape CxHxW to trace with (default: the model's, e.g. 3x299x299 for "
                                  "inception_v3)")
    groups: bool = opt(True, "list the channel groups and the frozen channels")


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit})" if len(items) > limit else "")


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"3x224x224"`` -> ``(3, 224, 224)``; one-line error otherwise."""
    from ..errors import UserError
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f"--input must be CxHxW (three positive whole numbers, e.g. 3x224x224), got {text!r}")
    return shape


def input_of(model, path: str | None, given: str | None) -> tuple[int, int, int]:
    """``--input``, else the model's registered input shape, else the one its pruning report recorded."""
    from ..errors import UserError
    from ..modelfile import load_report
    from .defaults import model_inputs
    if given:
        return parse_shape(given)
    inputs = model_inputs(model)
    if inputs is not None:
        return inputs.input_shape
    recorded = (load_report(path) or {}).get("input_shape") if path else None
    if isinstance(recorded, list) and len(recorded) == 3:
        return tuple(int(v) for v in recorded)
    raise UserError("cannot tell this model's input shape (it records no architecture name or pruning report); "
                    "pass --input CxHxW")


def no_group_error(name: str, traced):
    """The one-line error for a model with no prunable group, naming the module that stopped the widest channels."""
    from ..errors import UserError
    if not traced.frozen:
        return UserError(f"{name} has no prunable channel group: it has no Conv2d/Linear whose outputs another "
                         "layer reads")
    widest = max(traced.frozen, key=lambda f: f.width)
    return UserError(f"{name} has no prunable channel group: {_names(widest.modules or [widest.name], 2)} "
                     f"({widest.width} channels) is frozen: {widest.reason}")


def run(options: Options) -> None:
    import json

    import torch

    from ..errors import UserError
    from ..graph import describe_groups, find_groups
    from ..metrics import count_flops, count_parameters
    from ..modelfile import load, load_report
    from ..models import build_model, model_entry
    from ..report import PruneReport
    from ..stats.check import checked_forward
    from .common import is_model_file

    if not options.model:
        raise UserError("--model is required: a model file written by greedyprune, or a model name (e.g. resnet50)")
    path = options.model if is_model_file(options.model) else None
    if path:
        model = load(path)
        spec = getattr(model, "greedyprune_spec", None)
        title = f"{path}: {spec['name'] if spec else type(model).__name__}"
    else:
        entry = model_entry(options.model)
        model = build_model(options.model).eval()
        title = (f"{options.model}: {entry.description}; {entry.num_classes} classes; default data {entry.dataset}"
                 f"{':DIR' if entry.dataset == 'imagefolder' else ''}")
    shape = input_of(model, path, options.input)
    example = torch.zeros(1, *shape)
    text = "x".join(map(str, shape))
    checked_forward(model, example, "an input")  # one line naming the layer (e.g. an input too small for it)
    print(f"{title}; input {text}")
    print(f"{count_parameters(model):,} parameters, {count_flops(model, example):,} FLOPs per image")
    if options.groups:
        traced = find_groups(model, example)
        print("\n".join(describe_groups(traced)))
        if not traced.groups:
            raise no_group_error(options.model, traced)
    if path:
        report = load_report(path)
        if report and "groups" in report:  # a pruning report (load_report checked that it renders)
            print(PruneReport.from_dict(report).table())
        elif report:
            print(f"stored report (not a pruning report): {json.dumps(report)[:2000]}")
        else:
            print("no pruning report stored (an unpruned model)")
