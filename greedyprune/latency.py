"""A latency model of a traced network: each node's measured time, scaled by the channels it keeps.

FLOPs count convolutions and matrix products only. On a CPU the memory-bound operations between
them -- BatchNorm, activations, residual additions, pooling -- take time per *element* of their
output, and at high resolution far more than their FLOPs suggest (ResNet-50's stem max-pool: about
5 ns per input element against 0.004-0.01 ns per convolution FLOP on this repository's 2-core Xeon,
``experiments/latency_model.py``). A budget that ranks channels by FLOPs therefore keeps wide the
layers that are cheap in FLOPs but slow to run.

The model: run the network once per repeat node by node (``torch.fx.Interpreter``), take each node's
median time ``t_n`` on (up to) the first 8 calibration images, and scale it by the kept fraction of
what it computes::

    latency(w) = fixed + sum_n t_n * r_in,n(w) * r_out,n(w)

A Conv2d / Linear node scales with its input columns and output rows, exactly as its FLOPs do
(:mod:`greedyprune.costmodel`); any other node holding a group's channels (``ChannelGroup.tensors``)
scales with the kept fraction of its channel axis (``r_in = 1``); every other node is ``fixed``. It is
linear in the channels, so it ignores the block effects of channel-blocked kernels: latency budgets keep
widths in whole blocks instead (``latency_round_to``, default :func:`simd_channels`; docs/budget.md). Times are measured, so two runs may allocate slightly differently; the
measured table is recorded in the report and can be passed back (``latency_seconds=``) to repeat a run exactly.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import fx, nn

from .errors import UserError
from .graph.trace import CALL_OPS as TIMED_OPS  # every node that computes something is timed


class _TimedInterpreter(fx.Interpreter):
    """Runs a graph module node by node, adding each call node's seconds to :attr:`seconds`."""

    def __init__(self, module: fx.GraphModule, seconds: dict[str, list[float]], cuda: bool) -> None:
        super().__init__(module, garbage_collect_values=True)
        self.seconds, self.cuda = seconds, cuda

    def run_node(self, n: fx.Node) -> Any:
        if n.op not in TIMED_OPS:
            return super().run_node(n)
        if self.cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = super().run_node(n)
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds.setdefault(n.name, []).append(time.perf_counter() - start)
        return out


def node_seconds(graph_module: fx.GraphModule, batch: torch.Tensor, repeat: int = 5) -> dict[str, float]:
    """Median seconds of every call node of ``graph_module`` on ``batch`` (no grad, after one warm-up run)."""
    if repeat < 1:
        raise UserError(f"latency repeat must be >= 1, got {repeat}")
    runs: dict[str, list[float]] = {}
    with torch.no_grad():
        _TimedInterpreter(graph_module, {}, batch.is_cuda).run(batch)  # warm-up: allocator, kernel choice
        for _ in range(repeat):
            _TimedInterpreter(graph_module, runs, batch.is_cuda).run(batch)
    return {name: statistics.median(times) for name, times in runs.items()}


def check_seconds(nodes: list[fx.Node], seconds: dict[str, float]) -> None:
    """A one-line error unless ``seconds`` gives a finite time >= 0 for every call node of the graph."""
    missing = [n.name for n in nodes if n.op in TIMED_OPS and n.name not in seconds]
    if missing:
        raise UserError(f"the latency table has no time for node(s) {', '.join(missing[:3])} (a table of another "
                        "model?): pass the one a run of this same model recorded (report.options['latency_seconds']), "
                        "or none to measure the times")
    bad = [k for k, v in seconds.items() if not (isinstance(v, (int, float)) and 0 <= v < float("inf"))]
    if bad:
        raise UserError(f"the latency table's time for {bad[0]} is {seconds[bad[0]]!r}; times are seconds >= 0")


# float32 lanes of a CPU's widest vector unit (torch.backends.cpu.get_cpu_capability()): oneDNN's convolutions
# compute channels in blocks of it (nChw16c with AVX-512), so a width just above a multiple costs about what the
# next multiple does (experiments/bench_conv_widths.py, docs/budget.md)
SIMD_FLOATS = {"AVX512": 16, "AVX2": 8}


def simd_channels(device: torch.device) -> int:
    """Channels per SIMD block of ``device``'s convolutions: 16 (AVX-512), 8 (AVX2), else 1 (GPU, other CPUs)."""
    if torch.device(device).type != "cpu":
        return 1
    return SIMD_FLOATS.get(torch.backends.cpu.get_cpu_capability(), 1)


def is_product(module: nn.Module) -> bool:
    """Layers whose cost scales with both their input columns and output rows (as their FLOPs do)."""
    return isinstance(module, (nn.Conv2d, nn.Linear))
