"""The one training loop (checkpointing, exact resume, cosine schedule) and evaluation."""

from .checkpoint import resolve_device
from .config import TrainConfig
from .distributed import data_order, writes_checkpoints
from .evaluate import evaluate
from .loop import TrainResult, TrainState, train

__all__ = ["TrainConfig", "TrainResult", "TrainState", "data_order", "evaluate", "resolve_device", "train",
           "writes_checkpoints"]
