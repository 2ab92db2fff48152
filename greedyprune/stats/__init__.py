"""Calibration statistics: forward hooks, unfolding, float64 accumulation of the engine's inputs."""

from .consumer import ConsumerStatistics, GroupStatistics
from .hooks import ChannelMean, StopForward, capture_input, capture_output, run_stages

__all__ = ["ChannelMean", "ConsumerStatistics", "GroupStatistics", "StopForward", "capture_input",
           "capture_output", "run_stages"]
