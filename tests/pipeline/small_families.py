"""Every torchvision classification family at a reduced width or depth, built from torchvision's own classes.

The modules are the families' real ones (``Bottleneck``, ``_DenseBlock``, ``Inception``, ``InvertedResidual``,
``CNBlock``, ``ResBottleneckBlock``, ...), so what tracing and pruning meet is what the full-size model
has; only widths, depths and the input size are small, so a prune takes seconds. ``SMALL_FAMILIES``:
family -> (builder(num_classes) -> model, input size).
"""

from __future__ import annotations

import warnings
from functools import partial

import torch
from torch import nn
from torchvision import models as tv
from torchvision.models.convnext import CNBlockConfig
from torchvision.models.efficientnet import FusedMBConvConfig, MBConvConfig
from torchvision.models.regnet import BlockParams
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.vgg import make_layers


def _small_head(model: nn.Module, features: int, pool: int, num_classes: int) -> nn.Module:
    """VGG / AlexNet with their classifier's 4096-wide Linear layers shrunk to 64 (same module layout)."""
    model.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
    model.classifier = nn.Sequential(nn.Dropout(), nn.Linear(features * pool * pool, 64), nn.ReLU(inplace=True),
                                     nn.Dropout(), nn.Linear(64, 64), nn.ReLU(inplace=True), nn.Linear(64, num_classes))
    return model


def _two_stages(model: nn.Module, num_classes: int) -> nn.Module:
    """A torchvision ResNet cut after ``layer2`` (``layer3``/``layer4`` become identities): the same blocks, fewer."""
    model.layer3, model.layer4 = nn.Identity(), nn.Identity()
    model.fc = nn.Linear(128 * type(model.layer2[-1]).expansion, num_classes)
    return model


def resnet(num_classes):
    return _two_stages(tv.ResNet(BasicBlock, [1, 1, 1, 1]), num_classes)


def resnet_bottleneck(num_classes):
    return _two_stages(tv.ResNet(Bottleneck, [1, 1, 1, 1]), num_classes)


def wide_resnet(num_classes):
    return _two_stages(tv.ResNet(Bottleneck, [1, 1, 1, 1], width_per_group=128), num_classes)


def resnext(num_classes):
    return _two_stages(tv.ResNet(Bottleneck, [1, 1, 1, 1], groups=8, width_per_group=16), num_classes)


class _SmallVGG(tv.VGG):
    """torchvision's VGG (its forward) without first building the 25088 x 4096 classifier it replaces."""

    def __init__(self, features: nn.Module, num_classes: int) -> None:
        nn.Module.__init__(self)
        self.features = features
        _small_head(self, 64, 2, num_classes)


def vgg(num_classes):
    return _SmallVGG(make_layers([16, "M", 32, "M", 32, 32, "M", 64, "M"], batch_norm=True), num_classes)


def alexnet(num_classes):
    return _small_head(tv.AlexNet(num_classes=num_classes), 256, 2, num_classes)


def squeezenet(num_classes):
    return tv.SqueezeNet("1_1", num_classes=num_classes)


def densenet(num_classes):
    return tv.DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16, bn_size=2,
                       num_classes=num_classes)


def googlenet(num_classes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tv.GoogLeNet(num_classes=num_classes, aux_logits=False, init_weights=True)


def inception_v3(num_classes):
    """Inception3 with one block of each kind (A: Mixed_5b/5c, B: 6a, C: 6b, D: 7a, E: 7b); the repeats whose
    input and output widths agree (Mixed_5d, 6c-6e, 7c) become identities."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tv.Inception3(num_classes=num_classes, aux_logits=False, init_weights=True)
    for name in ("Mixed_5d", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"):
        setattr(model, name, nn.Identity())
    return model


def mobilenet_v2(num_classes):
    return tv.MobileNetV2(num_classes=num_classes, width_mult=0.25)


def mobilenet_v3(arch, num_classes):
    return getattr(tv, arch)(num_classes=num_classes, width_mult=0.25)


def mnasnet(num_classes):
    return tv.MNASNet(0.25, num_classes=num_classes)


def efficientnet(num_classes):
    setting = [MBConvConfig(1, 3, 1, 8, 8, 1), MBConvConfig(6, 3, 2, 8, 16, 2), MBConvConfig(6, 5, 2, 16, 24, 1)]
    return tv.EfficientNet(setting, dropout=0.2, num_classes=num_classes, last_channel=64)


def efficientnet_v2(num_classes):
    setting = [FusedMBConvConfig(1, 3, 1, 8, 8, 1), FusedMBConvConfig(4, 3, 2, 8, 16, 1),
               MBConvConfig(4, 3, 2, 16, 24, 2)]
    return tv.EfficientNet(setting, dropout=0.2, num_classes=num_classes, last_channel=64)


def regnet(se_ratio, num_classes):
    params = BlockParams.from_init_params(depth=4, w_0=16, w_a=8.0, w_m=2.0, group_width=8, se_ratio=se_ratio)
    return tv.RegNet(params, num_classes=num_classes, stem_width=16)


def shufflenet(num_classes):
    return tv.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=num_classes)


def convnext(num_classes):
    setting = [CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, None, 1)]
    return tv.ConvNeXt(setting, num_classes=num_classes)


def vit(num_classes):
    return tv.VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=32, mlp_dim=64,
                                num_classes=num_classes)


# family -> (builder, input size); the 18 CNN families (EfficientNet with its V2 variant) and ViT
SMALL_FAMILIES = {
    "ResNet": (resnet, 32), "ResNet (Bottleneck)": (resnet_bottleneck, 32), "Wide ResNet": (wide_resnet, 32),
    "ResNeXt": (resnext, 32), "VGG": (vgg, 32), "AlexNet": (alexnet, 64), "SqueezeNet": (squeezenet, 32),
    "DenseNet": (densenet, 32), "GoogLeNet": (googlenet, 32), "Inception V3": (inception_v3, 75),
    "MobileNetV2": (mobilenet_v2, 32), "MobileNetV3 small": (partial(mobilenet_v3, "mobilenet_v3_small"), 32),
    "MobileNetV3 large": (partial(mobilenet_v3, "mobilenet_v3_large"), 32), "MNASNet": (mnasnet, 32),
    "EfficientNet": (efficientnet, 32), "EfficientNet V2": (efficientnet_v2, 32),
    "RegNet X": (partial(regnet, None), 32), "RegNet Y": (partial(regnet, 0.25), 32),
    "ShuffleNetV2": (shufflenet, 32), "ConvNeXt": (convnext, 32), "ViT": (vit, 32),
}


def small_model(family: str, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """The family's small model, seeded, BatchNorm statistics randomised (a fresh model's are the identity)."""
    from .conftest import randomize_batchnorm
    builder, _ = SMALL_FAMILIES[family]
    torch.manual_seed(seed)
    return randomize_batchnorm(builder(num_classes), seed)
