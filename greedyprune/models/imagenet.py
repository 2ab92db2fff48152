"""Every torchvision classification architecture (``torchvision.models.list_models(module=torchvision.models)``).

Built with ``weights=None`` (random initialisation): nothing is ever downloaded. Load a local weights
file with :func:`greedyprune.models.load_weights` (``greedyprune prune --model NAME --weights FILE``).

Each name's input shape is the crop size of its torchvision weights (299 for ``inception_v3``, 240..600
for ``efficientnet_b1..b7``, 224 for most), except the vision transformers, whose ``weights=None``
architecture is fixed at 224 (``vit_h_14``'s default weights use 518 and a different position embedding).
The default dataset is ``imagefolder`` (ImageNet-style folders; the CLI needs ``--data imagefolder:DIR``).

GoogLeNet and Inception V3 are built as torchvision builds them *with* its pretrained weights:
``transform_input=True`` (the weights expect ImageNet-normalised input re-normalised inside the model)
and without the auxiliary classifiers, which only run in training mode (``aux_logits=False``); a
torchvision weights file's ``aux1.``/``aux2.``/``AuxLogits.`` entries are dropped when loading it.
"""

from __future__ import annotations

import warnings
from functools import partial

from torch import nn
from torchvision import models as tv

from .registry import register

IMAGENET = (3, 224, 224)
# the names the first versions registered (kept first in listings)
NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2", "mobilenet_v3_small",
         "mobilenet_v3_large")
# per-builder arguments (beyond weights=None, num_classes) and weight-file keys the build leaves out
_EXTRA = {"googlenet": ({"aux_logits": False, "init_weights": True, "transform_input": True}, ("aux1.", "aux2.")),
          "inception_v3": ({"aux_logits": False, "init_weights": True, "transform_input": True}, ("AuxLogits.",))}


def torchvision_names() -> list[str]:
    """Every classification builder of ``torchvision.models`` (not detection, segmentation, video, quantized)."""
    return sorted(tv.list_models(module=tv))


def _input_size(name: str) -> int:
    if name.startswith("vit_"):
        return 224  # the weights=None architecture (image_size=224); see the module docstring
    try:
        weights = tv.get_model_weights(name).DEFAULT
        return int(weights.transforms.keywords["crop_size"])
    except (AttributeError, KeyError, ValueError, TypeError):
        return 224


def _num_params(name: str) -> str:
    try:
        return f"; {tv.get_model_weights(name).DEFAULT.meta['num_params'] / 1e6:.1f}M params"
    except (AttributeError, KeyError, ValueError, TypeError):
        return ""


def _torchvision(name: str, num_classes: int) -> nn.Module:
    kwargs = _EXTRA.get(name, ({}, ()))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the init_weights notice of older torchvision releases
        return tv.get_model(name, weights=None, num_classes=num_classes, **kwargs)


for _name in torchvision_names():
    _size = _input_size(_name)
    register(_name, 1000, (3, _size, _size), "imagefolder", f"torchvision {_name} (weights=None{_num_params(_name)})",
             drop_keys=_EXTRA.get(_name, ({}, ()))[1], source="torchvision")(partial(_torchvision, _name))
