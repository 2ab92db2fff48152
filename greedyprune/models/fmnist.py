"""Models for Fashion-MNIST (1 x 28 x 28 grey, 10 classes).

The torchvision architectures are built from torchvision's own classes (so pruning treats them as
the torchvision families: group names, block-internal groups); only the stem is adapted to small grey
images: its first convolution takes 1 channel and has stride 1 (3x3, padding 1, no bias). Everything
else, including the ResNet max-pool, is torchvision's.
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tv

import dataclasses

from .registry import register, registered_models

FMNIST = (1, 28, 28)


def _grey_stem(out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(1, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


@register("resnet18-fmnist", 10, FMNIST, "fashion-mnist")
def resnet18_fmnist(num_classes: int) -> nn.Module:
    """torchvision resnet18; stem conv1 = Conv2d(1, 64, 3, stride 1, pad 1), max-pool kept: 28->14->14->7->4->2."""
    model = tv.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = _grey_stem(64)
    return model


@register("mobilenet_v2-fmnist", 10, FMNIST, "fashion-mnist")
def mobilenet_v2_fmnist(num_classes: int) -> nn.Module:
    """torchvision mobilenet_v2; first conv = Conv2d(1, 32, 3, stride 1, pad 1): 28->28->14->7->4->2 (x1280)."""
    model = tv.mobilenet_v2(weights=None, num_classes=num_classes)
    model.features[0][0] = _grey_stem(32)
    return model


@register("mobilenet_v3_small-fmnist", 10, FMNIST, "fashion-mnist")
def mobilenet_v3_small_fmnist(num_classes: int) -> nn.Module:
    """torchvision mobilenet_v3_small; first conv = Conv2d(1, 16, 3, stride 1, pad 1): 28->14->7->4->2 (x576).

    BatchNorm momentum 0.1 instead of torchvision's 0.01 (tuned for long ImageNet runs): with the few
    hundred steps of training and fine-tuning done here, 0.01 leaves the running statistics near their
    initial values and the eval-mode accuracy near chance.
    """
    model = tv.mobilenet_v3_small(weights=None, num_classes=num_classes)
    model.features[0][0] = _grey_stem(16)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    return model


@register("lenet300-100", 10, FMNIST, "fashion-mnist")
def lenet300_100(num_classes: int) -> nn.Module:
    """LeNet-300-100: Flatten, Linear 784-300, ReLU, Linear 300-100, ReLU, Linear 100-classes."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                         nn.Linear(100, num_classes))


@register("small-cnn", 10, FMNIST, "fashion-mnist")
def small_cnn(num_classes: int) -> nn.Module:
    """Two 3x3 conv layers (32, 64; ReLU, max-pool 2) then Linear 3136-128, ReLU, Linear 128-classes."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, num_classes))


# The same architectures under a second name whose cached weights come from the quick recipe (one epoch
# over a subset, minutes on 2 cores; see greedyprune.models.cache): the demo and the tests use these.
QUICK_SUFFIX = "-quick"
for _name in ("resnet18-fmnist", "mobilenet_v2-fmnist", "mobilenet_v3_small-fmnist"):
    _entry = registered_models[_name]
    registered_models[_name + QUICK_SUFFIX] = dataclasses.replace(
        _entry, description=_entry.description + " [quick recipe: one epoch over a subset]")
