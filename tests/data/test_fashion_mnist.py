"""Fashion-MNIST loading: shapes, labels, normalisation, splits, and the search order / error message."""

import gzip
import os
import struct

import numpy as np
import pytest
import torch

from greedyprune.data import fashion_mnist, get_dataset
from greedyprune.errors import UserError


def test_train_and_test_shapes_labels_and_normalisation():
    train, test = get_dataset("fashion-mnist", "train"), get_dataset("fashion-mnist", "test")
    assert len(train) == 60_000 and len(test) == 10_000
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.float32
    x, y = train[0]
    assert x.shape == (1, 28, 28) and isinstance(y, int)
    assert train.classes[0] == "T-shirt/top" and len(train.classes) == 10
    # every class appears exactly 6000 / 1000 times
    assert torch.equal(train.labels.bincount(), torch.full((10,), 6000))
    assert torch.equal(test.labels.bincount(), torch.full((10,), 1000))
    # normalised with the training-set mean/std: mean ~0, std ~1; pixel 0 maps to -mean/std
    assert abs(float(train.images.mean())) < 1e-3
    assert abs(float(train.images.std()) - 1.0) < 1e-3
    assert float(train.images.min()) == pytest.approx(-0.2860 / 0.3530, abs=1e-5)
    assert float(train.images.max()) == pytest.approx((1 - 0.2860) / 0.3530, abs=1e-5)


def test_val_split_is_fixed_disjoint_and_complete():
    train = get_dataset("fashion-mnist", "train")
    val, rest = get_dataset("fashion-mnist", "val"), get_dataset("fashion-mnist", "train-minus-val")
    assert len(val) == 5000 and len(rest) == 55_000
    held = fashion_mnist.val_indices()
    assert torch.equal(held, fashion_mnist.val_indices())  # deterministic
    assert torch.equal(val.images, train.images[held])
    assert torch.equal(val.labels, train.labels[held])
    # disjoint and together the whole training set
    mask = torch.ones(60_000, dtype=torch.bool)
    mask[held] = False
    assert torch.equal(rest.images, train.images[mask])
    assert len(set(held.tolist())) == 5000
    # every class is in the held-out set in roughly its share
    counts = val.labels.bincount(minlength=10)
    assert int(counts.min()) > 400 and int(counts.max()) < 600


def _write_idx(folder, n):
    os.makedirs(folder, exist_ok=True)
    images = (np.arange(n * 784) % 256).astype(np.uint8).reshape(n, 784)
    labels = (np.arange(n) % 10).astype(np.uint8)
    with gzip.open(os.path.join(folder, "train-images-idx3-ubyte.gz"), "wb") as f:  # IDX: magic, N, rows, cols
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
    with open(os.path.join(folder, "train-labels-idx1-ubyte"), "wb") as f:  # uncompressed works too
        f.write(struct.pack(">II", 2049, n) + labels.tobytes())
    return images, labels


def test_root_is_searched_first(tmp_path):
    images, labels = _write_idx(tmp_path / "FashionMNIST" / "raw", 7)
    data = get_dataset("fashion-mnist", "train", root=str(tmp_path))
    assert len(data) == 7
    assert torch.equal(data.labels, torch.from_numpy(labels.astype(np.int64)))
    expected = (torch.from_numpy(images).float() / 255 - 0.2860) / 0.3530
    assert torch.allclose(data.images.flatten(1), expected, atol=1e-6)
    with pytest.raises(UserError, match="not 60000"):
        get_dataset("fashion-mnist", "val", root=str(tmp_path))


def test_missing_everywhere_gives_one_line_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", str(tmp_path / "nodebian"))
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GREEDYPRUNE_DATA", str(tmp_path / "env"))

    def offline(base):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz\nsecond line")
    monkeypatch.setattr(fashion_mnist, "_download", offline)
    with pytest.raises(UserError) as info:
        get_dataset("fashion-mnist", "test", root=str(tmp_path / "given"))
    message = str(info.value)
    assert "\n" not in message
    for part in ("given", "env", "nodebian", "Error downloading", "apt-get install dataset-fashion-mnist",
                 "GREEDYPRUNE_DATA"):
        assert part in message


def test_bad_split_and_spec():
    with pytest.raises(UserError, match="train-minus-val"):
        get_dataset("fashion-mnist", "validation")
    with pytest.raises(UserError, match="unknown dataset 'cifar'"):
        get_dataset("cifar")
