"""What several sub-commands share: turning ``--model/--weights`` and ``--data`` into objects."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import UserError


def load_model(model: str | None, weights: str | None = None, num_classes: int | None = None) -> nn.Module:
    """``--model`` is a greedyprune model file (pruned or trained) or a registered name (+ ``--weights``)."""
    from ..io import load
    from ..models import build_model, load_weights
    if not model:
        raise UserError("--model is required: a registered name (e.g. resnet50) or a greedyprune model file")
    if Path(model).suffix in (".pt", ".pth") or Path(model).exists():
        if weights:
            raise UserError("--weights is only for registered model names; the model file already holds weights")
        return load(model)
    net = build_model(model, num_classes)
    if weights:
        load_weights(net, weights)
    return net.eval()


def eval_split(data: str) -> str:
    """Held-out split of a data spec: ImageNet-style folders use ``val``, the rest ``test``."""
    return "val" if data.startswith("imagefolder:") else "test"
