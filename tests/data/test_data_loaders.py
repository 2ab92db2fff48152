"""subset / make_loader / calibration_batches are deterministic; the random dataset is learnable-shaped."""

import pytest
import torch

from greedyprune.data import calibration_batches, get_dataset, make_loader, num_classes, subset
from greedyprune.errors import UserError


def test_subset_is_deterministic_and_without_replacement():
    data = get_dataset("random:1x8x8", n=100)
    a, b, c = subset(data, 30, seed=1), subset(data, 30, seed=1), subset(data, 30, seed=2)
    assert len(a) == 30 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert len({tuple(x.flatten().tolist()) for x in a.images}) == 30
    assert subset(data, 500, seed=0) is data
    wrapped = subset(torch.utils.data.Subset(data, list(range(50))), 10, seed=3)
    assert len(wrapped) == 10 and num_classes(wrapped) == 10


def test_make_loader_seeded_shuffle():
    data = get_dataset("random:1x4x4", n=40)
    first = [y.tolist() for _, y in make_loader(data, 8, shuffle=True, seed=5)]
    again = [y.tolist() for _, y in make_loader(data, 8, shuffle=True, seed=5)]
    assert first == again and sum(len(b) for b in first) == 40
    plain = torch.cat([y for _, y in make_loader(data, 16)])
    assert torch.equal(plain, data.labels)


def test_calibration_batches():
    batches = calibration_batches("fashion-mnist", 100, batch_size=32, seed=0)
    assert [b.shape[0] for b in batches] == [32, 32, 32, 4]
    assert all(b.shape[1:] == (1, 28, 28) for b in batches)
    again = calibration_batches(get_dataset("fashion-mnist"), 100, batch_size=32, seed=0)
    assert all(torch.equal(x, y) for x, y in zip(batches, again))
    other = calibration_batches("fashion-mnist", 100, batch_size=32, seed=1)
    assert not torch.equal(batches[0], other[0])
    with pytest.raises(UserError, match="only 10"):
        calibration_batches(get_dataset("random:1x4x4", n=10), 11)


def test_random_dataset_shapes():
    data = get_dataset("random:3x16x12", "test", n=5, num_classes=4)
    assert data.images.shape == (5, 3, 16, 12) and int(data.labels.max()) < 4
    with pytest.raises(UserError, match="random:1x28x28"):
        get_dataset("random:3x16")
