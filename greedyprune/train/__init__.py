"""The one training loop (checkpointing, exact resume, cosine schedule, DDP) and evaluation."""

from ..distributed import data_order
from .batchnorm import recalibrate_batchnorm, recalibrate_batchnorm_on
from .checkpoint import resolve_device
from .config import TrainConfig
from .evaluate import evaluate
from .loop import TrainResult, TrainState, train

__all__ = ["TrainConfig", "TrainResult", "TrainState", "data_order", "evaluate", "recalibrate_batchnorm",
           "recalibrate_batchnorm_on", "resolve_device", "train"]
