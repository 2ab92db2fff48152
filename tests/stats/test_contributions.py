"""ContributionStatistics (channel-level sums of z_i = W_i x_i) against the covariance path and brute force."""

import pytest
import torch
from torch import nn

from greedyprune.stats import ConsumerStatistics
from greedyprune.stats import contributions as contrib
from greedyprune.stats.consumer import output_columns
from greedyprune.stats.contributions import (
    ContributionStatistics,
    consumer_statistics,
    contributions_are_cheaper,
)


def batches(channels=7, block=5, rows=6, seed=0):
    torch.manual_seed(seed)
    lin = nn.Linear(channels * block, rows).double()
    xs = [torch.randn(n, channels * block, dtype=torch.float64) + 0.7 for n in (9, 4, 6)]
    ts = [output_columns(lin, torch.randn(x.shape[0], rows, dtype=torch.float64) * 2 + lin(x)) for x in xs]
    return lin, xs, ts


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("chunk", [1 << 24, 50])  # 50 numbers: one sample (7 x 6 contributions) per chunk
def test_contribution_statistics_equal_the_covariance_path(center, chunk, monkeypatch):
    monkeypatch.setattr(contrib, "CHUNK_ELEMENTS", chunk)
    lin, xs, ts = batches()
    full = ConsumerStatistics(lin, block=5, center=center)
    fast = ContributionStatistics(lin, lin.weight.detach(), block=5, center=center)
    for x, t in zip(xs, ts):
        full.add_batch(x, t)
        fast.add_batch(x, t)
    a, b = full.statistics(), fast.statistics()
    torch.testing.assert_close(b.gram, a.gram, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(b.cross, a.cross, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(b.energy, a.energy, rtol=1e-12, atol=0)
    assert b.samples == a.samples == 19
    kept, g = torch.tensor([1, 4, 6]), torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64)
    torch.testing.assert_close(fast.bias_correction(kept, g), full.bias_correction(kept, g), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast.channel_means(), full.channel_means())


def test_contribution_statistics_equal_brute_force_centred_contributions():
    lin, xs, ts = batches(channels=4, block=3, rows=5, seed=3)
    fast = ContributionStatistics(lin, lin.weight.detach(), block=3)
    for x, t in zip(xs, ts):
        fast.add_batch(x, t)
    s = fast.statistics()
    x, t = torch.cat(xs), torch.cat([tt.T for tt in ts])  # (N, 12), (N, 5)
    w = lin.weight.detach().reshape(5, 4, 3)
    z = torch.einsum("ock,nck->cno", w, x.reshape(-1, 4, 3))  # (C, N, O)
    z, t = z - z.mean(1, keepdim=True), t - t.mean(0, keepdim=True)
    flat = z.reshape(4, -1)
    torch.testing.assert_close(s.gram, flat @ flat.T, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s.cross, flat @ t.reshape(-1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s.energy, t.pow(2).sum(), rtol=1e-12, atol=0)


def test_the_contribution_path_holds_channel_level_statistics_only():
    """No (C*K)^2 covariance: every tensor it keeps is at most the weight or C^2 (here C*K = 640, C = 10)."""
    lin = nn.Linear(10 * 64, 3)
    stats = consumer_statistics(lin, lin.weight.detach(), 64, 10, torch.float32)
    assert isinstance(stats, ContributionStatistics)
    stats.add_batch(torch.randn(8, 640), torch.randn(3, 8))
    held = [v.numel() for v in vars(stats).values() if isinstance(v, torch.Tensor)]
    assert max(held) <= lin.weight.numel() and stats.gram.shape == (10, 10)


def test_path_rule():
    vgg = nn.Linear(25088, 4096, device="meta")
    assert contributions_are_cheaper(vgg, 512, 49, 4096)  # VGG16 classifier.0: 512 channels of 7x7
    assert contributions_are_cheaper(vgg, 256, 36, 4096)  # AlexNet classifier.1: 256 channels of 6x6
    assert not contributions_are_cheaper(vgg, 2048, 1, 1000)  # a ResNet fc: H is already channel-level
    assert not contributions_are_cheaper(nn.Conv2d(512, 512, 3, device="meta"), 512, 9, 512)  # convs: many positions per image
    assert not contributions_are_cheaper(vgg, 16, 4, 100000)  # few wide columns, very many outputs
    assert contrib.contribution_path_cost(512, 49, 4096, 32) < contrib.covariance_path_cost(512, 49, 4096, 32) / 100


def test_refuses_nonfinite_input_and_other_layers():
    lin = nn.Linear(6, 2)
    stats = ContributionStatistics(lin, lin.weight.detach(), block=3)
    x = torch.randn(4, 6)
    x[1, 4] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        stats.add_batch(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="Linear"):
        ContributionStatistics(nn.Conv2d(2, 2, 1), torch.zeros(2, 2), block=1)
