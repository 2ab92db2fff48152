"""Run part of a traced graph on a live model: from the values at a cut to the values wanted, nothing more.

A traced graph (``torch.fx``) is a list of nodes in topological order; node ``i`` reads values of
earlier nodes. A **cut** at position ``i`` is the set of values computed before ``i`` and still read
at or after ``i`` (:func:`live_at`): holding them is enough to run the rest of the network. A
:class:`Plan` lists the nodes to run to get some wanted values from a cut -- only their ancestors at
or after the cut -- and when each value can be dropped, so one batch never holds more than the
tensors still needed.

The graph is executed against a *live* model (``call_module`` looks the module up by name, ``get_attr``
the tensor), so the same trace runs the original network and the partly pruned one, whose layers
change shape in place as groups are pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from torch import fx, nn


def positions(nodes: list[fx.Node]) -> dict[fx.Node, int]:
    return {node: i for i, node in enumerate(nodes)}


def live_at(nodes: list[fx.Node], index: int, pos: dict[fx.Node, int]) -> list[fx.Node]:
    """Values computed before ``nodes[index]`` and read at or after it (the cut at ``index``), in order."""
    return [n for n in nodes[:index] if n.op != "output" and any(pos[u] >= index for u in n.users)]


@dataclass
class Plan:
    """Nodes to run from a cut to ``wanted`` values, with the step after which each value is dropped."""

    steps: list[fx.Node]
    drop_after: list[list[fx.Node]]
    cut: list[fx.Node]
    wanted: list[fx.Node]


def make_plan(nodes: list[fx.Node], start: int, wanted: Iterable[fx.Node], pos: dict[fx.Node, int],
              available: Iterable[fx.Node] = ()) -> Plan:
    """Plan to compute ``wanted`` from the cut at ``start``: values before ``start``, the model's input and
    the ``available`` values (computed earlier and carried along with the cut) come from the environment."""
    wanted = list(dict.fromkeys(wanted))
    have = set(available)
    cut = live_at(nodes, start, pos)

    def computed_here(node: fx.Node) -> bool:
        return pos[node] >= start and node.op != "placeholder" and node not in have

    needed: set[fx.Node] = set()
    stack = [n for n in wanted if computed_here(n)]
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        stack.extend(a for a in node.all_input_nodes if computed_here(a))
    steps = sorted(needed, key=pos.__getitem__)
    keep = set(wanted)
    last_use: dict[fx.Node, int] = {}
    for step_index, node in enumerate(steps):
        for a in node.all_input_nodes:
            last_use[a] = step_index
    drop_after: list[list[fx.Node]] = [[] for _ in steps]
    for value, step_index in last_use.items():
        if value not in keep:
            drop_after[step_index].append(value)
    for step_index, node in enumerate(steps):  # computed but never read within the plan
        if node not in keep and node not in last_use:
            drop_after[step_index].append(node)
    return Plan(steps, drop_after, cut, wanted)


def fetch_attr(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def run_node(node: fx.Node, env: dict[fx.Node, Any], root: nn.Module) -> Any:
    """One node's value from the values of its inputs in ``env``, on the live model ``root``."""
    args = fx.node.map_arg(node.args, env.__getitem__)
    kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
    if node.op == "call_module":
        return root.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "get_attr":
        return fetch_attr(root, node.target)
    if node.op == "output":
        return args[0]
    raise ValueError(f"cannot run node {node.name} ({node.op}) from a cut; placeholders come from the input")


def execute(plan: Plan, env: dict[fx.Node, Any], root: nn.Module,
            seen: Callable[[fx.Node, Any], None] | None = None) -> dict[fx.Node, Any]:
    """Run ``plan`` on ``env`` (the cut's values, not modified); returns the wanted values.

    ``seen(node, value)`` is called with every value computed (e.g. to keep the next cut's values).
    """
    env = dict(env)
    for node, drops in zip(plan.steps, plan.drop_after):
        value = run_node(node, env, root)
        env[node] = value
        if seen is not None:
            seen(node, value)
        for dead in drops:
            env.pop(dead, None)
    return {node: env[node] for node in plan.wanted}


def first_input(node: fx.Node) -> fx.Node:
    """The node whose value a ``call_module`` node's layer receives as its input."""
    if not node.args or not isinstance(node.args[0], fx.Node):
        raise ValueError(f"{node.target} is not called on a traced tensor")
    return node.args[0]
