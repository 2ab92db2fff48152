"""Match a torchvision or timm model to the builder that makes it (see :mod:`greedyprune.archspec`).

Candidate builders are built without initialisation on the ``meta`` device (on the CPU for builders that
compute with tensors while building) and compared with the model: first the same state-dict keys and
shapes, then, for models of reduced width, the same keys, layer types and conv geometry.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from .archspec import build_source, skip_init
from .errors import UserError


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _geometry_fits(fresh: nn.Module, model: nn.Module) -> bool:
    """Same layer paths and types and the same conv geometry (everything adopt_shapes does not change).

    A depthwise conv stays depthwise at any width, also pruned to one channel (``groups = in = out = 1``,
    as :func:`~greedyprune.surgery.adopt_shapes` rebuilds it); any other conv keeps its ``groups``.
    """
    a, b = list(fresh.named_modules()), list(model.named_modules())
    if len(a) != len(b):
        return False
    for (name_a, m_a), (name_b, m_b) in zip(a, b):
        if name_a != name_b or type(m_a) is not type(m_b):
            return False
        if isinstance(m_a, nn.Conv2d):
            if (m_a.kernel_size, m_a.stride, m_a.padding, m_a.dilation) != \
                    (m_b.kernel_size, m_b.stride, m_b.padding, m_b.dilation):
                return False
            if _is_depthwise(m_a):
                if not m_b.groups == m_b.in_channels == m_b.out_channels:
                    return False
            elif m_a.groups != m_b.groups:
                return False
    return True


def _same(fresh: nn.Module, model: nn.Module, exact: bool) -> bool:
    a, b = fresh.state_dict(), model.state_dict()
    extra = set(b) - set(a)  # biases created by bias correction on a pruned model
    if set(a) - set(b) or not all(k.endswith(".bias") for k in extra) or (exact and extra):
        return False
    if exact:
        return all(a[k].shape == b[k].shape for k in a)
    return all(a[k].dim() == b[k].dim() for k in a) and _geometry_fits(fresh, model)


def _num_classes(fresh: nn.Module, model: nn.Module) -> int | None:
    """The model's class count, read where a 1000-class build differs in a 1000-long first axis."""
    a, b = fresh.state_dict(), model.state_dict()
    counts = {int(b[k].shape[0]) for k in a if k in b and a[k].dim() and a[k].shape[0] == 1000
              and a[k].shape != b[k].shape}
    return counts.pop() if len(counts) == 1 else None


def _attribute_kwargs(model: nn.Module) -> dict[str, Any]:
    from torchvision import models as tv
    kwargs: dict[str, Any] = {}
    if isinstance(model, tv.ResNet):
        kwargs.update(groups=int(model.groups), width_per_group=int(model.base_width))
    if isinstance(model, (tv.GoogLeNet, tv.Inception3)):
        aux = model.aux1 if isinstance(model, tv.GoogLeNet) else model.AuxLogits
        kwargs.update(aux_logits=aux is not None, transform_input=bool(model.transform_input), init_weights=False)
    if isinstance(model, tv.VisionTransformer):
        kwargs.update(image_size=int(model.image_size))
    return kwargs


def _build_meta(source: str, name: str, kwargs: dict[str, Any]) -> nn.Module | None:
    """The model built without initialising it: on the meta device, or on the CPU for builders that
    compute with tensors while building (RegNet's widths); None if the builder rejects ``kwargs``."""
    for device in ("meta", "cpu"):
        try:
            with torch.device(device), warnings.catch_warnings(), skip_init():
                warnings.simplefilter("ignore")
                return build_source(source, name, kwargs)
        except NotImplementedError:
            continue
        except (TypeError, ValueError, RuntimeError, AssertionError, UserError):
            return None
    return None


def _published_size(name: str) -> float:
    """The parameter count torchvision publishes for a builder's default weights (inf if none)."""
    from torchvision import models as tv
    try:
        return float(tv.get_model_weights(name).DEFAULT.meta["num_params"])
    except (AttributeError, KeyError, ValueError, TypeError):
        return float("inf")


def torchvision_spec(model: nn.Module) -> dict | None:
    from torchvision import models as tv
    module = type(model).__module__
    names = [n for n in tv.list_models(module=tv) if tv.get_model_builder(n).__module__ == module]
    size = sum(p.numel() for p in model.parameters())
    names.sort(key=lambda n: abs(_published_size(n) - size))  # the likeliest builder first
    attributes = _attribute_kwargs(model)
    forward_only = {k: v for k, v in attributes.items() if k in ("aux_logits", "transform_input", "init_weights",
                                                                    "image_size")}
    classes = None
    for name in names:  # the class count, read off the first builder that builds this class
        fresh = _build_meta("torchvision", name, dict(forward_only))
        if fresh is not None and type(fresh) is type(model):
            classes = _num_classes(fresh, model)
            break
    built: dict[tuple, nn.Module | None] = {}
    for exact, base in ((True, forward_only), (True, attributes), (False, forward_only)):
        kwargs = dict(base, num_classes=classes) if classes else dict(base)
        for name in names:
            key = (name, tuple(sorted(kwargs.items())))
            if key not in built:
                built[key] = _build_meta("torchvision", name, kwargs)
            fresh = built[key]
            if fresh is not None and type(fresh) is type(model) and _same(fresh, model, exact):
                return {"source": "torchvision", "name": name, "kwargs": kwargs}
    return None


def timm_spec(model: nn.Module) -> dict | None:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    name, classes = cfg.get("architecture"), getattr(model, "num_classes", None)
    if not isinstance(name, str) or not isinstance(classes, int):
        return None
    fresh = _build_meta("timm", name, {"num_classes": classes})
    if fresh is not None and (_same(fresh, model, True) or _same(fresh, model, False)):
        return {"source": "timm", "name": name, "kwargs": {"num_classes": classes}}
    return None
