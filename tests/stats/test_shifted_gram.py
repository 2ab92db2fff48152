"""The shifted-product Gram of a stride-1 conv's input equals the Gram of its unfolded input (brute force)."""

import itertools

import pytest
import torch
from torch import nn

from greedyprune.stats.consumer import unfold_columns
from greedyprune.stats.shifted_gram import add_shifted_cross, add_shifted_gram, applies, weighted_gram

SHAPES = [(kernel, padding, size)
          for kernel, padding, size in itertools.product([(3, 3), (5, 5), (3, 1), (1, 3), (2, 2), (5, 3)],
                                                         [(0, 0), (1, 1), (2, 2), (1, 0), (3, 3)],
                                                         [(7, 7), (4, 9), (1, 5), (3, 3)])
          if size[0] + 2 * padding[0] >= kernel[0] and size[1] + 2 * padding[1] >= kernel[1]]


@pytest.mark.parametrize("kernel, padding, size", SHAPES)
def test_equals_the_unfolded_gram(kernel, padding, size):
    conv = nn.Conv2d(3, 4, kernel, padding=padding)
    x = torch.randn(2, 3, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    cols = unfold_columns(conv, x, 1)
    acc = torch.zeros(cols.shape[0], cols.shape[0], dtype=torch.float64)
    assert add_shifted_gram(acc, x, conv)
    assert add_shifted_gram(acc, 2 * x, conv)  # it adds to what is there
    assert_upper_blocks(acc, 5 * cols @ cols.T, 3, conv.kernel_size[0] * conv.kernel_size[1])


def assert_upper_blocks(acc, gram, channels, k, **tolerance):
    """``acc`` (offset-major, blocks u <= v) holds the blocks of ``gram`` (unfolded order, row i*K + u)."""
    by_offset = gram.reshape(channels, k, channels, k).permute(1, 0, 3, 2)
    blocks = acc.view(k, channels, k, channels)
    for u in range(k):
        for v in range(u, k):
            torch.testing.assert_close(blocks[u, :, v], by_offset[u, :, v], **(tolerance or {"rtol": 1e-12, "atol": 1e-12}))


def test_weighted_gram_equals_the_unfolded_one():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    cols = unfold_columns(conv, x, 1)
    acc = torch.zeros(27, 27, dtype=torch.float64)
    add_shifted_gram(acc, x, conv)
    w = torch.randn(4, 27, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    reference = (w.T @ w).mul_(cols @ cols.T).reshape(3, 9, 3, 9).sum((1, 3))
    torch.testing.assert_close(weighted_gram(acc, w, 3, 9), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, padding, size", SHAPES)
def test_cross_products_and_sums_equal_the_unfolded_ones(kernel, padding, size):
    conv = nn.Conv2d(3, 4, kernel, padding=padding)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64, generator=gen)
    cols = unfold_columns(conv, x, 1)
    t = torch.randn(5, cols.shape[1], dtype=torch.float64, generator=gen)
    cross, sums = torch.ones(cols.shape[0], 5, dtype=torch.float64), torch.ones(cols.shape[0], dtype=torch.float64)
    add_shifted_cross(cross, sums, x, t, conv)
    torch.testing.assert_close(cross, 1 + cols @ t.T, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sums, 1 + cols.sum(1), rtol=1e-12, atol=1e-12)


def test_float32_products_close_to_the_float64_gram():
    conv = nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(4, 8, 12, 12, generator=torch.Generator().manual_seed(1))
    cols = unfold_columns(conv, x.double(), 1)
    acc = torch.zeros(72, 72, dtype=torch.float64)
    add_shifted_gram(acc, x, conv)
    assert_upper_blocks(acc, cols @ cols.T, 8, 9, rtol=1e-5, atol=1e-4)


def test_a_non_finite_input_is_reported():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    x = torch.randn(1, 2, 5, 5)
    x[0, 1, 4, 0] = float("nan")
    assert not add_shifted_gram(torch.zeros(18, 18, dtype=torch.float64), x, conv)


@pytest.mark.parametrize("conv, expected", [
    (nn.Conv2d(2, 2, 3, padding=1), True),
    (nn.Conv2d(2, 2, 3, stride=2, padding=1), False),
    (nn.Conv2d(2, 2, 3, padding=2, dilation=2), False),
    (nn.Conv2d(2, 2, 1), False),
    (nn.Conv2d(2, 2, 3, padding="same"), False),
    (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), False),
    (nn.Linear(2, 2), False),
])
def test_applies_to_stride_one_convs_with_zero_padding_only(conv, expected):
    assert applies(conv) is expected
