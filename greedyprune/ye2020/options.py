"""Settings of the ``ye2020`` baseline; defaults are the released MobileNetV2 code's (see REFERENCE)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserError
from ..options import opt


@dataclass
class Ye2020Options:
    candidates: int = opt(50, "random not-yet-chosen channels scored per greedy step, one partial forward each "
                              "(released: 50)")
    batch_size: int = opt(128, "labelled training images in each step's fresh mini-batch, and the batch of the "
                               "fine-tunes between layers (released: 128)")
    tolerance: float = opt(0.98, "a layer stops growing when top-1 on the check subset reaches this fraction of the "
                                 "layer's starting top-1 (released: 0.98)")
    precheck: float = opt(0.95, "skip the check while the chosen candidate's mini-batch top-1 is below this fraction "
                                "of the start (released: 0.95)")
    check_images: int = opt(300, "size of the fixed check subset: every (n_train / this)-th training image "
                                 "(released: every 200th, 300 of 60,000)")
    finetune_epochs: float = opt(0.1, "fine-tuning after each layer, in epochs over the training set "
                                      "(released: 0.1; SGD without momentum, constant lr)")
    finetune_lr: float = opt(2.5e-3, "learning rate of the fine-tunes between layers (released: 2.5e-3)")
    weight_decay: float = opt(4e-5, "weight decay of the fine-tunes (released: 4e-5)")
    final_epochs: float = opt(0.0, "final fine-tune in epochs (released: 150, cosine from lr 0.1, batch 256, Nesterov, "
                                   "label smoothing 0.1); 0 skips it (the default here)")
    streams: bool = opt(True, "also prune block outputs (MobileNetV2: the 24/32/64/96/160-channel stages), as the "
                              "released code does")
    augment: str = opt("none", "augmentation of the scoring mini-batches and fine-tunes: use the model's training "
                               "augmentation (the released code did); the precheck compares augmented mini-batch top-1 "
                               "with the un-augmented check subset's, so a mismatch keeps layers growing",
                       choices=["crop-flip", "none"])
    stack: int = opt(1, "candidates scored together in one stacked forward pass (same results; measured slower on CPU at "
                        "28x28, so 1 by default)")
    seed: int = opt(0, "seed of the mini-batches, the candidate draws and the fine-tunes")

    def validate(self) -> "Ye2020Options":
        checks = [
            (self.candidates >= 1, f"candidates must be >= 1, got {self.candidates}"),
            (self.stack >= 1, f"stack must be >= 1, got {self.stack}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (0 < self.tolerance <= 1, f"tolerance must be in (0, 1], got {self.tolerance}"),
            (0 <= self.precheck <= 1, f"precheck must be in [0, 1], got {self.precheck}"),
            (self.check_images >= 1, f"check_images must be >= 1, got {self.check_images}"),
            (math.isfinite(self.finetune_epochs) and self.finetune_epochs >= 0,
             f"finetune_epochs must be >= 0, got {self.finetune_epochs}"),
            (self.finetune_lr > 0, f"finetune_lr must be > 0, got {self.finetune_lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (math.isfinite(self.final_epochs) and self.final_epochs >= 0,
             f"final_epochs must be >= 0, got {self.final_epochs}"),
            (self.augment in ("crop-flip", "none"), f"augment must be crop-flip or none, got {self.augment!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        return self
