"""The one training loop (checkpointing, exact resume, cosine schedule) and evaluation."""

from .batchnorm import recalibrate_batchnorm
from .checkpoint import resolve_device
from .config import TrainConfig
from .distributed import data_order, writes_checkpoints
from .evaluate import evaluate
from .loop import TrainResult, TrainState, train

__all__ = ["TrainConfig", "TrainResult", "TrainState", "data_order", "evaluate", "recalibrate_batchnorm", "resolve_device", "train",
           "writes_checkpoints"]
