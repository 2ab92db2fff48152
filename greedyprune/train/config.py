"""Training hyperparameters: one dataclass shared by pretraining, fine-tuning and the baselines."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..options import opt
from ..errors import UserError

# fields that change neither the weights nor the data order: a checkpoint may be resumed with others
RUNTIME_FIELDS = ("device", "num_threads", "num_workers", "checkpoint_every", "eval_every")


@dataclass
class TrainConfig:
    epochs: float = opt(1.0, "passes over the training set (fractions allowed); ignored when --max-steps > 0")
    max_steps: int = opt(0, "train for exactly this many optimizer steps (0: use --epochs)")
    batch_size: int = opt(128, "images per optimizer step")
    optimizer: str = opt("sgd", "optimizer", choices=["sgd", "adam"])
    lr: float = opt(0.1, "peak learning rate")
    momentum: float = opt(0.9, "SGD momentum (adam: beta1)")
    nesterov: bool = opt(True, "Nesterov momentum (sgd only)")
    weight_decay: float = opt(5e-4, "L2 weight decay on every parameter")
    schedule: str = opt("cosine", "learning-rate schedule after warm-up", choices=["cosine", "constant"])
    warmup_steps: int = opt(0, "steps of linear learning-rate warm-up from lr/warmup_steps to lr")
    label_smoothing: float = opt(0.0, "cross-entropy label smoothing (0 to 1)")
    augment: str = opt("none", "training-batch augmentation: none, or crop-flip (random crop of the image padded "
                               "by 1/8 of its width, and left-right flips)", choices=["none", "crop-flip"])
    seed: int = opt(0, "seed of the data order and of torch's RNG at the start of training")
    start_step: int = opt(0, "begin at this step of the learning-rate schedule and of the data order and train up "
                             "to the total (late rewinding: open_lth continues from the rewind step k)")
    device: str = opt("cpu", "cpu, cuda or cuda:N")
    checkpoint_every: int = opt(0, "write run_dir/checkpoint.pt every this many steps (0: at the end of each epoch)")
    eval_every: int = opt(0, "evaluate on the validation set every this many steps (0: at the end of each epoch)")
    num_threads: int = opt(0, "torch CPU threads (0: leave the current setting)")
    num_workers: int = opt(0, "data-loading worker processes (0: load in the training process)")

    def validate(self) -> "TrainConfig":
        checks = [
            (self.max_steps > 0 or (math.isfinite(self.epochs) and self.epochs > 0),
             f"epochs must be > 0 (got {self.epochs}) unless max_steps > 0"),
            (self.max_steps >= 0, f"max_steps must be >= 0, got {self.max_steps}"),
            (self.start_step >= 0, f"start_step must be >= 0, got {self.start_step}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.optimizer in ("sgd", "adam"), f"optimizer must be sgd or adam, got {self.optimizer!r}"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.schedule in ("cosine", "constant"), f"schedule must be cosine or constant, got {self.schedule!r}"),
            (self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.augment in ("none", "crop-flip"), f"augment must be none or crop-flip, got {self.augment!r}"),
            (self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}"),
            (self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}"),
            (self.num_threads >= 0, f"num_threads must be >= 0, got {self.num_threads}"),
            (self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        return self

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def result_fields(config: TrainConfig) -> dict:
    """The settings that determine the trained weights (everything except :data:`RUNTIME_FIELDS`).

    ``augment`` is left out when ``none`` and ``start_step`` when 0, so recipes from before those fields
    existed keep their hash."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUNTIME_FIELDS}
    if fields.get("augment") == "none":
        del fields["augment"]
    if fields.get("start_step") == 0:
        del fields["start_step"]
    return fields
