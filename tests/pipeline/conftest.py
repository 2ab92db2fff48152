import pytest
import torch
import torchvision
from torch import nn


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random-init torchvision models have identity BN; give them non-trivial statistics."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(0.2 * torch.rand(n, generator=g) - 0.1)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(0.2 * torch.rand(n, generator=g) - 0.1)
    return model.eval()


def tv_model(name: str, num_classes: int = 10, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomize_batchnorm(getattr(torchvision.models, name)(num_classes=num_classes), seed)


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 5)).eval()


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return randomize_batchnorm(nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(12 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 3)), seed)


@pytest.fixture
def images():
    def make(n, channels=3, size=32, seed=0):
        return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))
    return make
