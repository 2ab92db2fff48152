"""recalibrate_batchnorm: running statistics become the data's, with dropout off and settings restored."""

import torch
from torch import nn

from greedyprune.data import get_dataset
from greedyprune.train import recalibrate_batchnorm


def test_running_stats_equal_the_data_statistics():
    data = get_dataset("random:3x6x6", n=40)
    data.images = data.images * torch.tensor([1.0, 2.0, 3.0])[:, None, None] + torch.tensor([5.0, -1.0, 0.5])[:, None, None]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(3, momentum=0.01), nn.Flatten(), nn.Linear(108, 10))
    model.train()
    recalibrate_batchnorm(model, data, n_images=40, batch_size=40)
    bn = model[1]
    x = data.images.transpose(0, 1).reshape(3, -1)  # all 40 images: dropout must not have touched them
    assert torch.allclose(bn.running_mean, x.mean(1), atol=1e-5)
    assert torch.allclose(bn.running_var, x.var(1, unbiased=True), rtol=1e-4)
    assert bn.momentum == 0.01 and model.training and model[0].training


def test_cumulative_average_over_batches_and_no_bn_is_a_no_op():
    data = get_dataset("random:2x4x4", n=64)
    model = nn.Sequential(nn.BatchNorm2d(2)).eval()
    recalibrate_batchnorm(model, data, n_images=64, batch_size=16)
    means = torch.stack([b.transpose(0, 1).reshape(2, -1).mean(1) for b in data.images.split(16)])
    assert torch.allclose(model[0].running_mean, means.mean(0), atol=1e-6)  # order of the subset does not matter
    assert not model.training and int(model[0].num_batches_tracked) == 4
    linear = nn.Linear(3, 3)
    before = linear.weight.clone()
    assert recalibrate_batchnorm(linear, data) is linear and torch.equal(linear.weight, before)
