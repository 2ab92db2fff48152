"""ConsumerStatistics against explicit per-channel contributions (the brute-force reference)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from greedyprune.stats import ConsumerStatistics
from greedyprune.stats.consumer import output_columns


def explicit_contributions(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """c_i = conv of input channel i alone, as (C_in, B*C_out*H*W) rows (float64)."""
    rows = []
    for i in range(conv.in_channels):
        y = F.conv2d(x[:, i:i + 1].double(), conv.weight[:, i:i + 1].double(), None, conv.stride, conv.padding,
                     conv.dilation)
        rows.append(y)
    return torch.stack(rows)  # (C_in, B, C_out, H, W)


def centred(c: torch.Tensor) -> torch.Tensor:
    """Subtract the mean over batch and space per output channel: dims (…, B, C_out, H, W)."""
    return c - c.mean(dim=(-4, -2, -1), keepdim=True)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("kernel, stride, padding, dilation", [(3, 1, 1, 1), (3, 2, 1, 1), (1, 1, 0, 1), (3, 1, 2, 2)])
def test_conv_statistics_match_explicit_contributions(center, kernel, stride, padding, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 4, kernel, stride=stride, padding=padding, dilation=dilation, bias=True)
    stats = ConsumerStatistics(conv, center=center)
    xs = [torch.randn(3, 5, 9, 9) + 0.5 for _ in range(2)]
    targets = [torch.randn_like(conv(x)) for x in xs]
    for x, t in zip(xs, targets):
        stats.add_batch(x, output_columns(conv, t))
    s = stats.statistics()
    c = torch.cat([explicit_contributions(conv, x) for x in xs], dim=1)  # (C_in, B_total, C_out, H, W)
    t = torch.cat([(tt - conv.bias.detach().reshape(1, -1, 1, 1)).double() for tt in targets])
    if center:
        c, t = centred(c), centred(t)
    flat = c.reshape(5, -1)
    torch.testing.assert_close(s.gram, flat @ flat.T, rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(s.cross, flat @ t.reshape(-1), rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(s.energy, (t ** 2).sum(), rtol=1e-9, atol=1e-8)
    assert s.samples == t.shape[0] * t.shape[-1] * t.shape[-2]


def test_linear_after_flatten_uses_channel_blocks():
    torch.manual_seed(1)
    lin = nn.Linear(3 * 4, 6)
    x = torch.randn(10, 3 * 4)
    stats = ConsumerStatistics(lin, block=4, center=False)
    stats.add_batch(x, output_columns(lin, lin(x)))
    s = stats.statistics()
    w = lin.weight.detach().double().reshape(6, 3, 4)
    c = torch.einsum("ock,bck->cbo", w, x.double().reshape(10, 3, 4)).reshape(3, -1)
    torch.testing.assert_close(s.gram, c @ c.T)
    torch.testing.assert_close(s.cross, c @ c.sum(0))


def test_bias_correction_makes_the_mean_residual_zero():
    torch.manual_seed(2)
    conv = nn.Conv2d(4, 3, 3, padding=1, bias=False)
    x = torch.randn(4, 4, 6, 6) + 1.0
    stats = ConsumerStatistics(conv)
    stats.add_batch(x, output_columns(conv, conv(x)))
    kept, g = torch.tensor([0, 2]), torch.tensor([1.3, 0.7], dtype=torch.float64)
    delta = stats.bias_correction(kept, g)
    w = conv.weight.detach().clone()
    w_new = w[:, kept] * g.float().reshape(1, -1, 1, 1)
    recon = F.conv2d(x[:, kept], w_new, padding=1) + delta.float().reshape(1, -1, 1, 1)
    assert torch.allclose((conv(x) - recon).mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_refuses_grouped_consumers_and_nonfinite_input():
    with pytest.raises(ValueError, match="groups=2"):
        ConsumerStatistics(nn.Conv2d(4, 4, 3, groups=2))
    conv = nn.Conv2d(2, 2, 1)
    stats = ConsumerStatistics(conv)
    x = torch.randn(1, 2, 3, 3)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        stats.add_batch(x, torch.zeros(2, 9))


@pytest.mark.parametrize("kernel, stride, batch", [(1, 1, 3), (3, 2, 3), (1, 1, 1)])
def test_unfolded_columns_reuse_a_buffer_and_never_overwrite_an_input(kernel, stride, batch):
    """The unfolded columns of each batch go into the last batch's buffer: the same statistics bit for bit
    as fresh columns, the buffer is reused, and a batch of one image (whose 1x1 columns are a view of the
    input) is never written over."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 3, kernel, stride=stride, padding=kernel // 2)
    xs = [torch.randn(batch, 4, 6, 6) for _ in range(3)]
    kept = [x.clone() for x in xs]
    reused, fresh = ConsumerStatistics(conv, product_dtype=torch.float32), ConsumerStatistics(conv, product_dtype=torch.float32)
    buffers = set()
    for x in xs:
        t = output_columns(conv, conv(x).detach())
        reused.add_batch(x, t)
        buffers.add(None if reused.scratch is None else reused.scratch.data_ptr())
        fresh.scratch = None
        fresh.add_batch(x, t)
    assert all(torch.equal(x, k) for x, k in zip(xs, kept))  # inputs untouched
    assert len(buffers) == 1 and (batch == 1 and kernel == 1) == (None in buffers)
    a, b = reused.statistics(), fresh.statistics()
    assert torch.equal(a.gram, b.gram) and torch.equal(a.cross, b.cross) and torch.equal(a.energy, b.energy)
