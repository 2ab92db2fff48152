"""Sparsity, non-zero parameter and FLOP reports for a (masked) model.

FLOPs are counted as multiply-accumulates (MACs) of the Linear/Conv layers, measured by forward hooks
on one input: a layer producing ``P`` output positions costs ``P * |W|`` MACs dense and ``P * nnz(W)``
MACs if zeros were skipped. The "non-zero" figures are what a sparse kernel *could* save; the masked
model runs the dense kernels, so **masks make the model neither smaller in memory nor faster**.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .masks import is_masked, prunable_weights, raw_weight

NOTE = ("masks do not make the model faster or smaller: dense kernels still multiply the zeros; "
        "non-zero counts show what a sparse kernel could save")


def sparsity_report(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> dict:
    """Per-layer and global non-zero counts of the prunable weights, plus all parameters.

    Args:
        model: any module; Linear/Conv weights are reported per layer.
        input_shape: one sample's shape (e.g. ``(1, 28, 28)``); when given, MACs are added.
    Returns:
        ``{"layers": [{name, shape, masked, weights, nonzero, density}], "prunable": {weights, nonzero,
        density, sparsity}, "parameters": {dense, nonzero}, "macs": {dense, nonzero} | None, "note"}``.
    """
    layers = []
    for name, module in prunable_weights(model).items():
        weight = module.weight.detach()
        nnz = int(weight.count_nonzero())
        layers.append({"name": name, "shape": list(weight.shape), "masked": is_masked(module),
                       "weights": weight.numel(), "nonzero": nnz, "density": nnz / max(1, weight.numel())})
    total = sum(layer["weights"] for layer in layers)
    nonzero = sum(layer["nonzero"] for layer in layers)
    raw_ids = {id(raw_weight(model, name)) for name in prunable_weights(model)}
    other = [p for p in model.parameters() if id(p) not in raw_ids]
    report = {
        "layers": layers,
        "prunable": {"weights": total, "nonzero": nonzero, "density": nonzero / max(1, total),
                     "sparsity": 1 - nonzero / max(1, total)},
        "parameters": {"dense": total + sum(p.numel() for p in other),
                       "nonzero": nonzero + sum(int(p.count_nonzero()) for p in other)},
        "macs": None,
        "note": NOTE,
    }
    if input_shape is not None:
        report["macs"] = count_macs(model, input_shape)
    return report


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """Dense and non-zero multiply-accumulates of the Linear/Conv layers for one sample of ``input_shape``."""
    per_layer: dict[str, dict[str, int]] = {}
    handles = []
    for name, module in prunable_weights(model).items():
        def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor, name: str = name) -> None:
            weight = mod.weight.detach()
            if isinstance(mod, nn.Linear):
                positions = out.numel() // out.shape[-1]
            else:  # conv: output positions per output channel; each uses C_in/groups * k^d weights
                positions = out.numel() // out.shape[1]
            per_layer[name] = {"dense": positions * weight.numel(), "nonzero": positions * int(weight.count_nonzero())}
        handles.append(module.register_forward_hook(hook))
    param = next(model.parameters(), None)
    device = param.device if param is not None else "cpu"
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {"dense": sum(v["dense"] for v in per_layer.values()),
            "nonzero": sum(v["nonzero"] for v in per_layer.values()), "per_layer": per_layer}


def format_report(report: dict) -> str:
    """A plain-text table of :func:`sparsity_report`'s output, with the "not faster" note."""
    lines = [f"{'layer':<28} {'shape':<18} {'non-zero':>10} {'weights':>10} {'density':>8}"]
    for layer in report["layers"]:
        shape = "x".join(str(s) for s in layer["shape"])
        lines.append(f"{layer['name']:<28} {shape:<18} {layer['nonzero']:>10} {layer['weights']:>10} "
                     f"{layer['density']:>8.4f}")
    p = report["prunable"]
    lines.append(f"{'total (prunable)':<28} {'':<18} {p['nonzero']:>10} {p['weights']:>10} {p['density']:>8.4f}"
                 f"  (sparsity {p['sparsity']:.4f})")
    lines.append(f"parameters: {report['parameters']['nonzero']:,} non-zero of {report['parameters']['dense']:,}")
    if report.get("macs"):
        m = report["macs"]
        ratio = m["dense"] / m["nonzero"] if m["nonzero"] else math.inf
        lines.append(f"MACs/sample: {m['nonzero']:,} non-zero of {m['dense']:,} dense ({ratio:.1f}x fewer if "
                     "zeros were skipped)")
    lines.append(f"note: {report['note']}")
    return "\n".join(lines)
