"""``timm:NAME``: any architecture of `timm <https://github.com/huggingface/pytorch-image-models>`_ (optional).

``timm.create_model(NAME, pretrained=False, num_classes=N)``: random weights, nothing downloaded. The
input shape and default class count come from the model's ``pretrained_cfg`` (``input_size``,
``num_classes``); the default dataset is ``imagefolder``. timm is an optional extra
(``pip install 'greedyprune[timm]'``); without it a ``timm:`` name is a one-line error saying so.
"""

from __future__ import annotations

import difflib
from functools import partial

from torch import nn

from ..errors import UserError
from .registry import ModelEntry, registered_prefixes

PREFIX = "timm:"
INSTALL = "pip install 'greedyprune[timm]'"


def _timm():
    try:
        import timm
    except ImportError:
        raise UserError(f"timm: models need the timm package, which is not installed; {INSTALL}") from None
    return timm


def _create(name: str, num_classes: int) -> nn.Module:
    return _timm().create_model(name, pretrained=False, num_classes=num_classes)


def timm_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` of ``timm:name`` (one-line error when timm is missing or has no such model)."""
    timm = _timm()
    if not name or not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(PREFIX + c for c in close)}?)" if close else ""
        raise UserError(f"unknown timm model {name!r}{hint}; timm.list_models() lists the names, "
                        f"e.g. {PREFIX}resnet18, {PREFIX}efficientnet_b0")
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(name)
    size = tuple(int(s) for s in getattr(cfg, "input_size", None) or (3, 224, 224))
    classes = int(getattr(cfg, "num_classes", None) or 1000)
    return ModelEntry(partial(_create, name), classes, size, "imagefolder",
                      f"timm {name} (pretrained=False)", source="timm")


registered_prefixes[PREFIX] = timm_entry
