"""ImageFolder datasets on a tiny folder of JPEGs written here (one of them corrupt)."""

import numpy as np
import pytest
import torch
from PIL import Image

from greedyprune.data import calibration_batches, get_dataset, num_classes
from greedyprune.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD
from greedyprune.errors import UserError


def _folder(base, corrupt=True):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (base / split / cls).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, size=(30 + 5 * i, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(base / split / cls / f"{i}.jpg", quality=90)
    if corrupt:
        (base / "train" / "dog" / "broken.jpg").write_bytes(b"this is not a jpeg")
    return base


def test_layout_transform_and_classes(tmp_path):
    root = _folder(tmp_path / "imgs", corrupt=False)
    train = get_dataset(f"imagefolder:{root}", "train")
    val = get_dataset(f"imagefolder:{root}", "val")
    test = get_dataset(f"imagefolder:{root}", "test")  # no test/ -> val/
    assert train.classes == ["cat", "dog"] and num_classes(train) == 2
    assert len(train) == 6 and len(val) == 6 and test.root == val.root
    x, y = train[4]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and y == 1
    # the transform normalises with the ImageNet statistics: undoing it gives pixels in [0, 1]
    pixels = x * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5
    small = get_dataset(f"imagefolder:{root}/train", "train", image_size=32)  # no train/ inside -> the folder itself
    assert small[0][0].shape == (3, 32, 32) and len(small) == 6
    batches = calibration_batches(f"imagefolder:{root}", 4, batch_size=3, seed=0, image_size=32)
    assert [tuple(b.shape) for b in batches] == [(3, 3, 32, 32), (1, 3, 32, 32)]


def test_corrupt_image_stops_with_its_name(tmp_path):
    root = _folder(tmp_path / "imgs")
    data = get_dataset(f"imagefolder:{root}", "train", image_size=32)
    bad = [i for i, (path, _) in enumerate(data.samples) if path.endswith("broken.jpg")]
    assert len(bad) == 1
    with pytest.raises(UserError) as info:
        data[bad[0]]
    assert "broken.jpg" in str(info.value) and "skip_bad_images" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserError, match="broken.jpg"):
        data.verify()


def test_corrupt_image_skipped_and_counted(tmp_path):
    root = _folder(tmp_path / "imgs")
    data = get_dataset(f"imagefolder:{root}", "train", image_size=32, skip_bad_images=True)
    assert len(data) == 7
    images = [data[i][0] for i in range(len(data))]
    assert all(x.shape == (3, 32, 32) for x in images)
    assert len(data.skipped) == 1 and next(iter(data.skipped)).endswith("broken.jpg")
    fresh = get_dataset(f"imagefolder:{root}", "train", image_size=32, skip_bad_images=True)
    dropped = fresh.verify()
    assert len(dropped) == 1 and len(fresh) == 6 and fresh.targets == [0, 0, 0, 1, 1, 1]


def test_bad_folders(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        get_dataset(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="no class sub-folders"):
        get_dataset(f"imagefolder:{tmp_path / 'flat'}")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "cls" / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="no images"):
        get_dataset(f"imagefolder:{tmp_path / 'empty'}")
    with pytest.raises(UserError, match="imagefolder:DIR"):
        get_dataset("imagefolder")
