"""Which architecture a model is, as plain data, so a pruned copy can be rebuilt without pickle.

:func:`architecture_spec` is called on the *original* model before pruning (the pipeline stores the
result as ``pruned.greedyprune_spec``; :func:`greedyprune.save` writes it):

* a model built by :func:`greedyprune.models.build_model` keeps its registry spec ``{"name",
  "num_classes"}``;
* a torchvision model is matched to the classification builder of its module whose freshly built
  model (on the ``meta`` device: no memory, no initialisation) has the same state-dict keys and
  shapes: ``{"source": "torchvision", "name": "resnet18", "kwargs": {"num_classes": 10}}``. The
  number of classes and the few constructor arguments a model exposes as attributes (ResNet ``groups``
  and ``width_per_group``, GoogLeNet/Inception ``aux_logits`` and ``transform_input``, ViT
  ``image_size``) are read off the model. When no builder gives the same shapes (e.g.
  ``mobilenet_v2(width_mult=0.5)``), a builder with the same keys, layer types and conv geometry is
  accepted: the widths are adopted from the saved tensors anyway (:func:`~greedyprune.surgery.adopt_shapes`).
  Dropout rates and other training-only arguments are not recorded.
* a timm model: ``{"source": "timm", "name": pretrained_cfg["architecture"], "kwargs": {"num_classes"}}``
  (``timm.create_model(name, pretrained=False, **kwargs)``), checked the same way.
* anything else: None -- :func:`greedyprune.load` then needs ``model=`` (an unpruned instance).

Why not ``torch.export``'s format for the rest: in torch 2.14 ``torch.export.load`` (``load_pt2`` in
``torch/export/pt2_archive/_package.py``) unpickles every weight the archive marks ``use_pickle`` with
torch's loader in its unrestricted mode (``weights_only`` off) and opaque constants with
``pickle.loads``, so a crafted ``.pt2`` file runs code when loaded. Model files here are only ever read
with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
from torch import nn

from .errors import UserError

SOURCES = ("torchvision", "timm")


def _geometry(model: nn.Module) -> list[tuple]:
    """Layer types and conv geometry per path (everything adopt_shapes does not change)."""
    out = []
    for name, m in model.named_modules():
        entry: tuple = (name, type(m).__name__)
        if isinstance(m, nn.Conv2d):
            depthwise = m.groups > 1 and m.groups == m.in_channels == m.out_channels
            entry += (m.kernel_size, m.stride, m.padding, m.dilation, "dw" if depthwise else m.groups)
        out.append(entry)
    return out


def _same(fresh: nn.Module, model: nn.Module, exact: bool) -> bool:
    a, b = fresh.state_dict(), model.state_dict()
    extra = set(b) - set(a)  # biases created by bias correction on a pruned model
    if set(a) - set(b) or not all(k.endswith(".bias") for k in extra) or (exact and extra):
        return False
    if exact:
        return all(a[k].shape == b[k].shape for k in a)
    return all(a[k].dim() == b[k].dim() for k in a) and _geometry(fresh) == _geometry(model)


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


@contextlib.contextmanager
def skip_init() -> Any:
    """Skip ``torch.nn.init``'s random initialisers while building a model only to look at it."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(nn.init, n) for n in names}
    try:
        for n in names:
            setattr(nn.init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, f in saved.items():
            setattr(nn.init, n, f)


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


def _torchvision_spec(model: nn.Module) -> dict | None:
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


def _timm_spec(model: nn.Module) -> dict | None:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    name, classes = cfg.get("architecture"), getattr(model, "num_classes", None)
    if not isinstance(name, str) or not isinstance(classes, int):
        return None
    fresh = _build_meta("timm", name, {"num_classes": classes})
    if fresh is not None and (_same(fresh, model, True) or _same(fresh, model, False)):
        return {"source": "timm", "name": name, "kwargs": {"num_classes": classes}}
    return None


def architecture_spec(model: nn.Module) -> dict | None:
    """Plain-data description :func:`build_from_spec` rebuilds ``model``'s architecture from (or None)."""
    spec = getattr(model, "greedyprune_spec", None)
    if spec is not None:
        return dict(spec)
    module = type(model).__module__
    if module.startswith("torchvision.models"):
        return _torchvision_spec(model)
    if module.startswith("timm."):
        return _timm_spec(model)
    return None


def build_source(source: str, name: str, kwargs: dict[str, Any]) -> nn.Module:
    """``torchvision.models.get_model(name, weights=None, **kwargs)`` or ``timm.create_model(name, ...)``."""
    if source == "torchvision":
        from torchvision import models as tv
        if name not in tv.list_models(module=tv):
            raise UserError(f"{name!r} is not a torchvision classification model")
        return tv.get_model(name, weights=None, **kwargs)
    if source == "timm":
        try:
            import timm
        except ImportError:
            raise UserError(f"rebuilding timm model {name!r} needs timm: pip install timm") from None
        if not timm.is_model(name):
            raise UserError(f"{name!r} is not a model of the installed timm {timm.__version__}")
        return timm.create_model(name, pretrained=False, **kwargs)
    raise UserError(f"unknown architecture source {source!r}; expected one of {SOURCES}")


def check_spec(spec: Any) -> str | None:
    """Why ``spec`` is not a valid architecture spec (None when it is)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return "not a dict with a 'name'"
    if "source" not in spec:
        return None if isinstance(spec.get("num_classes", 0), (int, type(None))) else "num_classes is not an int"
    if spec["source"] not in SOURCES:
        return f"unknown source {spec['source']!r}"
    kwargs = spec.get("kwargs", {})
    plain = (bool, int, float, str, type(None))
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) and isinstance(v, plain) for k, v in kwargs.items()):
        return "kwargs are not plain named values"
    return None


def build_from_spec(spec: dict, device: str | torch.device | None = None) -> nn.Module:
    """A fresh model of the architecture ``spec`` describes (random or uninitialised weights).

    ``device="meta"`` falls back to the default device for builders that compute with tensors (RegNet)."""
    if device is not None and str(device) == "meta":
        try:
            return _build(spec, "meta")
        except NotImplementedError:
            return _build(spec, None)
    return _build(spec, device)


def _build(spec: dict, device: str | torch.device | None) -> nn.Module:
    with torch.device(device) if device is not None else contextlib.nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if "source" in spec:
            return build_source(spec["source"], spec["name"], dict(spec.get("kwargs", {})))
        from .models import build_model
        return build_model(spec["name"], num_classes=spec.get("num_classes"))
