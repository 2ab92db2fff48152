"""Every registered model builds, records its spec, and runs a forward pass at its input size."""

import pytest
import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual as V2Block
from torchvision.models.mobilenetv3 import InvertedResidual as V3Block
from torchvision.models.resnet import BasicBlock, Bottleneck

from greedyprune.errors import UserError
from greedyprune.models import build_model, input_shape, model_spec, registered_models

FMNIST = ["resnet18-fmnist", "mobilenet_v2-fmnist", "mobilenet_v3_small-fmnist", "lenet300-100", "small-cnn"]
IMAGENET = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2", "mobilenet_v3_small",
            "mobilenet_v3_large"]


def test_registry_holds_all_models():
    assert set(FMNIST + IMAGENET) <= set(registered_models)


@pytest.mark.parametrize("name", FMNIST)
def test_fmnist_models_forward(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    assert model.greedyprune_spec == {"name": name, "num_classes": 10} == model_spec(model)
    assert input_shape(name) == (1, 28, 28) == input_shape(model)
    with torch.no_grad():
        out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    rebuilt = build_model(**model_spec(model))
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def _first_conv(model):
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name,block,stem_out", [("resnet18-fmnist", BasicBlock, 64),
                                                 ("mobilenet_v2-fmnist", V2Block, 32),
                                                 ("mobilenet_v3_small-fmnist", V3Block, 16)])
def test_fmnist_stems_are_grey_stride1_and_blocks_are_torchvision(name, block, stem_out):
    model = build_model(name)
    conv = _first_conv(model)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == \
        (1, stem_out, (3, 3), (1, 1), (1, 1))
    assert conv.bias is None
    assert any(isinstance(m, block) for m in model.modules())


def test_resnet18_fmnist_spatial_path():
    model = build_model("resnet18-fmnist").eval()
    sizes = {}
    for name in ("maxpool", "layer1", "layer2", "layer3", "layer4"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1]))
    with torch.no_grad():
        model(torch.randn(1, 1, 28, 28))
    assert sizes == {"maxpool": 14, "layer1": 14, "layer2": 7, "layer3": 4, "layer4": 2}


def test_small_models_are_the_stated_sequentials():
    lenet = build_model("lenet300-100")
    assert [tuple(m.weight.shape) for m in lenet if isinstance(m, nn.Linear)] == [(300, 784), (100, 300), (10, 100)]
    cnn = build_model("small-cnn", num_classes=7)
    shapes = [tuple(m.weight.shape) for m in cnn if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert shapes == [(32, 1, 3, 3), (64, 32, 3, 3), (128, 3136), (7, 128)]


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_models_forward_at_224(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    assert input_shape(name) == (3, 224, 224)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 5) and torch.isfinite(out).all()
    assert any(isinstance(m, (BasicBlock, Bottleneck, V2Block, V3Block)) for m in model.modules())


def test_unknown_model_and_missing_spec():
    with pytest.raises(UserError, match=r"unknown model 'vgg17' \(did you mean vgg19 or vgg16 or vgg13\?\)"):
        build_model("vgg17")
    with pytest.raises(UserError, match="no spec"):
        model_spec(nn.Linear(2, 2))
    with pytest.raises(UserError, match="num_classes"):
        build_model("small-cnn", num_classes=0)


def test_mobilenet_v3_small_fmnist_bn_momentum():
    norms = [m for m in build_model("mobilenet_v3_small-fmnist").modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 for m in norms)
    assert all(m.momentum == 0.01 for m in build_model("mobilenet_v3_small").modules() if isinstance(m, nn.BatchNorm2d))
