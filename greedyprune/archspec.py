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


def architecture_spec(model: nn.Module) -> dict | None:
    """Plain-data description :func:`build_from_spec` rebuilds ``model``'s architecture from (or None)."""
    spec = getattr(model, "greedyprune_spec", None)
    if spec is not None:
        return dict(spec)
    from .archmatch import timm_spec, torchvision_spec
    module = type(model).__module__
    if module.startswith("torchvision.models"):
        return torchvision_spec(model)
    if module.startswith("timm."):
        return timm_spec(model)
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
