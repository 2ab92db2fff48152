"""OwnOutputStatistics (targets = the consumer's own output: b = G 1, E = 1'G1) against the measured cross
products and energy of ConsumerStatistics, and against explicit contributions."""

import pytest
import torch
from torch import nn

from greedyprune.stats import ConsumerStatistics
from greedyprune.stats.consumer import output_columns
from greedyprune.stats.own_output import OwnOutputStatistics

from .test_consumer import centred, explicit_contributions


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("kernel, stride, padding, dilation", [(3, 1, 1, 1), (3, 2, 1, 1), (1, 1, 0, 1), (3, 1, 2, 2),
                                                               (1, 2, 0, 1), (5, 1, 1, 1)])
def test_own_output_statistics_equal_the_measured_ones(center, kernel, stride, padding, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 4, kernel, stride=stride, padding=padding, dilation=dilation, bias=True).double()
    measured, own = ConsumerStatistics(conv, center=center), OwnOutputStatistics(conv, center=center)
    xs = [torch.randn(3, 5, 9, 9, dtype=torch.float64) + 0.5 for _ in range(2)]
    with torch.no_grad():
        for x in xs:
            measured.add_batch(x, output_columns(conv, conv(x)))
            own.add_batch(x)
    m, o = measured.statistics(), own.statistics()
    # the same H and finalisation (the input sums of a stride-1 conv are added up in another order)
    torch.testing.assert_close(o.gram, m.gram, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(o.cross, m.cross, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(o.energy, m.energy, rtol=1e-10, atol=1e-10)
    assert o.samples == m.samples
    # the brute-force reference: b_i = <c_i, sum_j c_j>, E = ||sum_j c_j||^2
    c = torch.cat([explicit_contributions(conv, x) for x in xs], dim=1)
    c = (centred(c) if center else c).reshape(5, -1)
    torch.testing.assert_close(o.cross, c @ c.sum(0), rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(o.energy, c.sum(0).pow(2).sum(), rtol=1e-9, atol=1e-8)
    kept, coefficients = torch.tensor([1, 3]), torch.tensor([0.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(own.bias_correction(kept, coefficients), measured.bias_correction(kept, coefficients),
                               rtol=1e-10, atol=1e-10)


def test_linear_after_flatten_and_float32_products():
    torch.manual_seed(1)
    lin = nn.Linear(3 * 4, 6)
    measured = ConsumerStatistics(lin, block=4, product_dtype=torch.float32)
    own = OwnOutputStatistics(lin, block=4, product_dtype=torch.float32)
    for _ in range(3):
        x = torch.randn(10, 3 * 4)
        with torch.no_grad():
            measured.add_batch(x, output_columns(lin, lin(x)))
            own.add_batch(x)
    m, o = measured.statistics(), own.statistics()
    assert torch.equal(o.gram, m.gram)
    torch.testing.assert_close(o.cross, m.cross, rtol=1e-5, atol=1e-5)  # float32 rounding of t and M
    torch.testing.assert_close(o.energy, m.energy, rtol=1e-5, atol=1e-5)


def test_target_positions_still_checked_and_nan_refused():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    own = OwnOutputStatistics(conv)
    with pytest.raises(Exception, match="positions"):
        own.add_batch(torch.randn(1, 2, 4, 4), torch.zeros(3, 7))
    with pytest.raises(Exception, match="non-finite"):
        own.add_batch(torch.full((1, 2, 4, 4), float("nan")))
