"""What the global refit changes: the consumers of the pruned groups and the modules absorbing their offsets."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import UserError
from ..graph.groups import ChannelGroup


@dataclass
class RefitTarget:
    """A consumer whose input columns were pruned (its weight is refit) and the module absorbing its offset."""

    consumer: str
    bias_sink: str


def targets_of(groups: list[ChannelGroup]) -> list[RefitTarget]:
    """Consumers (squeeze-excitation gates included) and bias sinks of the pruned traced ``groups``, each once."""
    found = [RefitTarget(c.target, c.bias_sink) for group in groups for c in group.consumers]
    unique = {(t.consumer, t.bias_sink): t for t in found}
    return list(unique.values())


def refit_parameters(model: nn.Module, targets: list[RefitTarget]) -> dict[str, nn.Parameter]:
    """``{qualified name: parameter}``: each consumer's weight and each bias sink's bias (BatchNorm: beta)."""
    params: dict[str, nn.Parameter] = {}
    for t in targets:
        for module_name, attr in ((t.consumer, "weight"), (t.bias_sink, "bias")):
            module = model.get_submodule(module_name)
            param = getattr(module, attr, None)
            if attr == "bias" and param is None:  # e.g. BatchNorm(affine=False): its offset sits in running_mean
                continue
            if not isinstance(param, nn.Parameter):
                raise UserError(f"cannot refit {module_name}.{attr}: {type(module).__name__} has no such parameter")
            params[f"{module_name}.{attr}" if module_name else attr] = param
    return params
