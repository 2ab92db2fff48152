"""One small member of every torchvision classification family (and timm's), built through its builder.

Each entry: builder name, keyword arguments (reduced widths / classes where the builder takes them) and
the example input size (the smallest convenient for the architecture). Built through
``torchvision.models.get_model`` so that :func:`greedyprune.archspec.architecture_spec` recognises them.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from greedyprune.archspec import skip_init

# family -> (builder, kwargs, input size)
TORCHVISION = {
    "resnet18": ("resnet18", {}, 32),
    "resnet50": ("resnet50", {"width_per_group": 16}, 32),
    "wide_resnet50_2": ("wide_resnet50_2", {}, 32),
    "resnext50_32x4d": ("resnext50_32x4d", {}, 32),
    "vgg11_bn": ("vgg11_bn", {}, 32),
    "alexnet": ("alexnet", {}, 64),
    "squeezenet1_0": ("squeezenet1_0", {}, 64),
    "squeezenet1_1": ("squeezenet1_1", {}, 64),
    "densenet121": ("densenet121", {}, 32),
    "googlenet": ("googlenet", {"aux_logits": True, "init_weights": False}, 64),
    "inception_v3": ("inception_v3", {"aux_logits": False, "init_weights": False}, 75),
    "mobilenet_v2": ("mobilenet_v2", {"width_mult": 0.5}, 32),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}, 32),
    "mobilenet_v3_large": ("mobilenet_v3_large", {"width_mult": 0.5}, 32),
    "mnasnet0_5": ("mnasnet0_5", {}, 32),
    "efficientnet_b0": ("efficientnet_b0", {}, 32),
    "efficientnet_v2_s": ("efficientnet_v2_s", {}, 32),
    "regnet_x_400mf": ("regnet_x_400mf", {}, 32),
    "regnet_y_400mf": ("regnet_y_400mf", {}, 32),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", {}, 32),
    "convnext_tiny": ("convnext_tiny", {}, 32),
    "vit_b_16": ("vit_b_16", {"image_size": 32}, 32),
}
TIMM = {"resnet18": 32, "mobilenetv2_100": 32, "efficientnet_b0": 32}
CLASSES = 10


def build_torchvision(family: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The family's model (eval mode, non-trivial BatchNorm statistics and layer scales) and a 2-image batch."""
    from torchvision import models as tv
    name, kwargs, size = TORCHVISION[family]
    torch.manual_seed(seed)
    with warnings.catch_warnings(), skip_init():  # one cheap random fill below instead (VGG has 128M weights)
        warnings.simplefilter("ignore")
        model = tv.get_model(name, weights=None, num_classes=CLASSES, **kwargs)
    with torch.no_grad():
        for tensor in model.parameters():
            fan_in = tensor[0].numel() if tensor.dim() > 1 else 1
            tensor.normal_(0.0, fan_in ** -0.5) if tensor.dim() > 1 else tensor.uniform_(-0.1, 0.1)
    return perturbed(model), torch.randn(2, 3, size, size)


def build_timm(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    import timm
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=CLASSES)
    return perturbed(model), torch.randn(2, 3, TIMM[name], TIMM[name])


def perturbed(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics/affines and O(1) layer scales, so that every channel matters."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        for name, param in model.named_parameters():
            if name.endswith(("layer_scale", "gamma")):
                param.uniform_(0.5, 1.5)
            elif name.endswith("weight") and param.dim() > 1 and not param.any():  # ViT's zero head
                param.normal_(0.0, 0.05)
    return model.eval()


def random_kept(width: int, partition: int, generator: torch.Generator) -> torch.Tensor:
    """About half of each partition's channels, at random (sorted group channel indices)."""
    per = width // partition
    keep = max(1, per // 2)
    parts = [p * per + torch.randperm(per, generator=generator)[:keep] for p in range(partition)]
    return torch.cat(parts).sort().values
