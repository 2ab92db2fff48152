"""Trace a model with ``torch.fx`` and record every node's value on an example input.

Leaves of the trace are the layers torch itself defines (any module whose class derives from a
``torch.nn`` class other than ``nn.Module`` and the containers ``Sequential``/``ModuleList``/
``ModuleDict``): Conv2d, Linear, BatchNorm, LayerNorm and subclasses such as torchvision's
``LayerNorm2d`` or timm's ``BatchNormAct2d``, activations, pooling, ``MultiheadAttention``. Everything
else (blocks, squeeze-excitation, ``StochasticDepth``, ``Permute``, ``Conv2dNormActivation``) is traced
through, so its operations appear in the graph.

The model is traced in eval mode (``torch.jit.is_scripting()`` is False while tracing, so torchvision's
scripting branches drop out). Training-only branches that hold layers -- GoogLeNet's ``aux1``/``aux2``
and Inception3's ``AuxLogits`` -- are recovered by tracing once more with only the *top-level* module in
training mode (its submodules stay in eval): if that graph uses more layers and its first output equals
the eval output on the example, it is kept with the first output as the graph's output and the others
listed in :attr:`Traced.extra_outputs` (their channels are class logits, never pruned). The auxiliary
classifiers are then consumers like any other layer, so a pruned GoogLeNet still trains.

The returned ``GraphModule`` shares the model's module, parameter and buffer dictionaries: slicing a
layer or replacing a parameter of the model is seen by the graph too (no stale copies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from ..errors import UserError

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
CALL_OPS = ("call_module", "call_function", "call_method")  # the node kinds that compute something


def is_torch_layer(module: nn.Module) -> bool:
    """True when ``module`` derives from a layer class defined by ``torch.nn`` (not a container)."""
    for cls in type(module).__mro__:
        if cls is nn.Module or cls in CONTAINERS:
            return False
        if cls.__module__.startswith("torch.nn"):
            return True
    return False


class LayerTracer(fx.Tracer):
    """``torch.fx`` tracer whose leaves are torch's own layers (see the module docstring)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_torch_layer(m)


@dataclass
class Traced:
    """A traced model: graph, node list in topological order and each node's value on the example."""

    graph_module: fx.GraphModule
    nodes: list[fx.Node]
    values: dict[str, Any]
    extra_outputs: list[fx.Node] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:160]


def _trace(model: nn.Module) -> fx.Graph:
    tracer = LayerTracer()
    try:
        return tracer.trace(model)
    except Exception as err:  # noqa: BLE001 -- any tracing failure becomes one line naming where
        stack = list(getattr(tracer, "module_stack", {}).values())  # (path, class) of the modules being traced
        where = next((f"{entry[0]} ({getattr(entry[1], '__name__', entry[1])})" for entry in reversed(stack)
                      if isinstance(entry, tuple) and len(entry) == 2 and entry[0]), type(model).__name__)
        raise UserError(f"torch.fx cannot trace {type(model).__name__}: stopped in {where}: {_first_line(err)}; "
                        "greedyprune needs a model whose forward has no data-dependent Python control flow") from None


def _graph_module(model: nn.Module, graph: fx.Graph) -> fx.GraphModule:
    gm = fx.GraphModule(model, graph)
    constants = {k: v for k, v in gm._buffers.items() if k not in model._buffers}  # tensors baked in by fx
    gm._modules, gm._parameters, gm._buffers = model._modules, model._parameters, model._buffers
    for name, tensor in constants.items():  # kept as plain attributes: the model's state stays its own
        object.__setattr__(gm, name, tensor)
    return gm


class _Recorder(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm, garbage_collect_values=False)
        self.values: dict[str, Any] = {}
        self.failed: tuple[fx.Node, BaseException] | None = None

    def run_node(self, n: fx.Node) -> Any:
        try:
            value = super().run_node(n)
        except Exception as err:
            self.failed = (n, err)
            raise
        self.values[n.name] = value
        return value


def record(gm: fx.GraphModule, example: torch.Tensor) -> dict[str, Any]:
    """Every node's value (by node name) when ``gm`` runs on ``example``."""
    recorder = _Recorder(gm)
    try:
        with torch.no_grad():
            recorder.run(example)
    except Exception:
        if recorder.failed is None:
            raise
        node, err = recorder.failed
        where = (f"layer '{node.target}' ({type(gm.get_submodule(node.target)).__name__})"
                 if node.op == "call_module" else f"operation '{node.name}'")
        raise UserError(f"the model cannot run on the calibration images of shape {tuple(example.shape[1:])} at "
                        f"{where}: {_first_line(err)}; use data of the input shape the model was built for "
                        "(e.g. inception_v3 needs at least 75x75 pixels)") from None
    return recorder.values


def _called(graph: fx.Graph) -> set[str]:
    return {n.target for n in graph.nodes if n.op == "call_module"}


def unused_layers(model: nn.Module, graph: fx.Graph) -> list[str]:
    """Layers with parameters that ``graph`` never calls (not counting the insides of called layers)."""
    called = _called(graph)
    return [name for name, m in model.named_modules()
            if is_torch_layer(m) and name not in called and any(True for _ in m.parameters(recurse=False))
            and not any(name.startswith(c + ".") for c in called)]


def _outputs(graph: fx.Graph) -> fx.Node:
    return next(n for n in graph.nodes if n.op == "output")


def _flatten(arg: Any) -> list[fx.Node]:
    """The nodes inside an output structure (tuples, dicts, namedtuples built in the graph)."""
    if isinstance(arg, fx.Node):
        if arg.op == "call_function" and isinstance(arg.target, type) and issubclass(arg.target, tuple):
            return _flatten(list(arg.args) + list(arg.kwargs.values()))
        return [arg]
    if isinstance(arg, (tuple, list)):
        return [n for a in arg for n in _flatten(a)]
    if isinstance(arg, dict):
        return [n for a in arg.values() for n in _flatten(a)]
    return []


def _with_training_branches(model: nn.Module, example: torch.Tensor, graph: fx.Graph,
                            out: torch.Tensor) -> tuple[fx.Graph, list[fx.Node]] | None:
    """Trace with only the top module in training mode; keep it if it calls more layers (see docstring)."""
    model.training = True
    try:
        graph2 = _trace(model)
    finally:
        model.training = False
    if len(_called(graph2)) <= len(_called(graph)):
        return None
    outputs = _flatten(_outputs(graph2).args[0])
    if not outputs:
        return None
    main, extra = outputs[0], outputs[1:]
    output = _outputs(graph2)
    old = output.args[0]
    output.args = (main,)
    if isinstance(old, fx.Node) and not old.users:  # the namedtuple that held the outputs
        graph2.erase_node(old)
    gm = _graph_module(model, graph2)
    try:
        with torch.no_grad():
            same = torch.equal(gm(example), out)
    except Exception as err:  # noqa: BLE001
        layers = ", ".join(unused_layers(model, graph)[:2])
        raise UserError(f"the training-only layers of {type(model).__name__} ({layers}, ...) fail on the example "
                        f"input {list(example.shape)}: {_first_line(err)}; use a larger input or build the model "
                        "without them (e.g. aux_logits=False)") from None
    return (graph2, extra) if same else None


def trace(model: nn.Module, example: torch.Tensor) -> Traced:
    """Trace ``model`` (put in eval mode) and record its nodes' values on ``example``."""
    if not isinstance(example, torch.Tensor):
        raise UserError(f"the example input must be a tensor (a batch of images), got {type(example).__name__}")
    model.eval()
    graph = _trace(model)
    gm = _graph_module(model, graph)
    values = record(gm, example)
    extra: list[fx.Node] = []
    out = values[_flatten(_outputs(graph).args[0])[0].name] if _flatten(_outputs(graph).args[0]) else None
    if unused_layers(model, graph) and isinstance(out, torch.Tensor):
        found = _with_training_branches(model, example, graph, out)
        if found is not None:
            graph, extra = found
            gm = _graph_module(model, graph)
            values = record(gm, example)
    return Traced(gm, list(gm.graph.nodes), values, extra, unused_layers(model, graph))
