"""torchvision's ImageNet architectures (3 x 224 x 224, 1000 classes) with random weights.

Nothing is ever downloaded: load a local torchvision weights file with :func:`greedyprune.models.load_weights`.
"""

from __future__ import annotations

from functools import partial

from torch import nn
from torchvision import models as tv

from .registry import register

IMAGENET = (3, 224, 224)
NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2", "mobilenet_v3_small",
         "mobilenet_v3_large")


def _torchvision(name: str, num_classes: int) -> nn.Module:
    return getattr(tv, name)(weights=None, num_classes=num_classes)


for _name in NAMES:
    register(_name, 1000, IMAGENET, "imagefolder", f"torchvision {_name} (weights=None)")(partial(_torchvision, _name))
