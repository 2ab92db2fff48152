"""crop-flip augmentation: a shifted, possibly mirrored window of the zero-padded image, reproducible by step."""

import torch

from greedyprune.train.augment import augment_batch


def _reference(image: torch.Tensor, pad: int, dy: int, dx: int, flip: bool) -> torch.Tensor:
    padded = torch.nn.functional.pad(image, (pad, pad, pad, pad))
    h, w = image.shape[-2:]
    crop = padded[..., dy:dy + h, dx:dx + w]
    return crop.flip(-1) if flip else crop


def test_every_output_is_a_crop_of_the_padded_image_maybe_flipped():
    images = torch.randn(16, 2, 6, 6)
    out = augment_batch(images, "crop-flip", seed=3, step=5, pad=2)
    assert out.shape == images.shape
    for image, result in zip(images, out):
        matches = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (False, True)
                   if torch.equal(_reference(image, 2, dy, dx, f), result)]
        assert matches, "an augmented image is not a crop (+ flip) of its padded original"


def test_same_seed_and_step_same_batch_other_step_differs():
    images = torch.randn(32, 1, 28, 28)
    a = augment_batch(images, "crop-flip", seed=0, step=10)
    assert torch.equal(a, augment_batch(images, "crop-flip", seed=0, step=10))
    assert not torch.equal(a, augment_batch(images, "crop-flip", seed=0, step=11))
    assert not torch.equal(a, images)


def test_none_and_flat_inputs_pass_through():
    images = torch.randn(4, 1, 8, 8)
    assert augment_batch(images, "none", 0, 0) is images
    flat = torch.randn(4, 784)
    assert augment_batch(flat, "crop-flip", 0, 0) is flat
