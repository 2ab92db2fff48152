"""Pruning-at-initialisation scores: SNIP (Lee et al. 2019) and GraSP (Wang et al. 2020).

For the prunable weights ``theta`` (Linear/Conv weights) and a small batch:

* SNIP: ``S = |g (.) theta|`` with ``g = dL/dtheta``; keep the largest scores.
* GraSP: ``S = -theta (.) H g`` where ``H`` is the Hessian of ``L`` and ``g`` its gradient, both with
  the logits divided by a temperature ``T`` (200 in the paper). ``Hg`` is computed by double backprop:
  ``Hg = d/dtheta (stopgrad(g) . dL/dtheta)``. Convention (Wang et al. 2020, Sec. 4): GraSP preserves
  the gradient flow ``||g||^2``. Removing a set ``R`` of weights is the perturbation ``delta = -theta``
  on ``R``, which changes ``||g||^2`` to first order by ``2 delta^T H g = 2 sum_{q in R} S_q``. So a high
  ``S_q`` marks a weight whose removal *raises* the gradient flow, or lowers it least: GraSP removes
  the highest scores and keeps the lowest (the most negative: the weights whose removal would cut the
  gradient flow most). (Tested: ``d/de ||g(theta - e theta_q e_q)||^2 = 2 S_q`` at ``e = 0``.)

The batch for both is class-balanced (:func:`class_balanced_batch`, ~10 samples per class).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UserError
from ..sparse.masks import prunable_weights


def class_balanced_batch(dataset, per_class: int, seed: int = 0, num_classes: int | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` samples of every class from ``dataset`` (items ``(x, y)``), in a seeded random order."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=generator).tolist()
    labels = getattr(dataset, "labels", getattr(dataset, "targets", None))
    taken: dict[int, list[int]] = {}
    for index in order:
        label = int(labels[index]) if labels is not None else int(dataset[index][1])
        bucket = taken.setdefault(label, [])
        if len(bucket) < per_class:
            bucket.append(index)
        if num_classes is not None and len(taken) == num_classes and all(len(b) == per_class for b in taken.values()):
            break
    short = {c: len(b) for c, b in taken.items() if len(b) < per_class}
    if short:
        raise UserError(f"classes {sorted(short)} have fewer than {per_class} samples; lower --samples-per-class")
    indices = [i for c in sorted(taken) for i in taken[c]]
    xs, ys = zip(*(dataset[i] for i in indices))
    return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor([int(y) for y in ys])


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    layers = prunable_weights(model)
    if not layers:
        raise UserError("the model has no Linear/Conv weights to score")
    return {name: module.weight for name, module in layers.items()}


def snip_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """``|g (.) theta|`` per prunable weight, ``g`` the gradient of the cross-entropy on the batch."""
    weights = _weights(model)
    loss = F.cross_entropy(model(inputs), targets)
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {name: (g * w).detach().abs() for (name, w), g in zip(weights.items(), grads)}


def hessian_gradient_product(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]
                             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(g, Hg)`` for ``L = loss_fn()``: ``g = dL/dp``, ``Hg = d/dp (stopgrad(g) . dL/dp)`` (double backprop)."""
    grads = torch.autograd.grad(loss_fn(), params)
    fixed = [g.detach() for g in grads]
    first = torch.autograd.grad(loss_fn(), params, create_graph=True)
    inner = sum((a * b).sum() for a, b in zip(first, fixed))
    hg = torch.autograd.grad(inner, params)
    return fixed, [h.detach() for h in hg]


def grasp_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, temperature: float = 200.0
                 ) -> dict[str, torch.Tensor]:
    """``-theta (.) Hg`` per prunable weight, with logits divided by ``temperature``; prune the highest."""
    if not temperature > 0:
        raise UserError(f"temperature must be > 0, got {temperature!r}")
    weights = _weights(model)

    def loss() -> torch.Tensor:
        return F.cross_entropy(model(inputs) / temperature, targets)

    _, hg = hessian_gradient_product(loss, list(weights.values()))
    return {name: -(w.detach() * h) for (name, w), h in zip(weights.items(), hg)}
