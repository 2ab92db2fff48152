"""Mask learning as a bilevel problem (BiP, Zhang et al., NeurIPS 2022) for any network.

Upper variable: one real score per prunable weight (Linear/Conv, see :mod:`greedyprune.sparse`);
lower variable theta: all trainable parameters. With ``m = topk(s)`` the global top-``keep`` 0/1
mask of the scores and ``l`` the cross-entropy on a minibatch,

    upper  f(s, theta) = l(m (.) theta)
    lower  g(s, theta) = l(m (.) theta) + gamma/2 ||theta||^2        (biases unmasked, also decayed)

The mask enters through a straight-through estimator: the forward pass uses the exact 0/1 top-k
mask, the backward pass treats ``dm/ds`` as the identity (``m = hard + s - s.detach()``), so every
autograd product of :mod:`.hypergrad` (Hessian-vector in theta, mixed in (s, theta)) is defined.

First-order implicit gradient (:meth:`MaskLearningProblem.bilinear_hypergradient`). Write
``z = m (.) theta`` and ``G = grad_z l``. Then ``grad_theta g = m (.) G + gamma theta`` and
``grad^2_{s theta} l = diag(G) + diag(m) grad^2_zz l diag(theta)``. BiP drops the curvature of ``l``
(``grad^2_zz l ~ 0``), which makes the problem bilinear in (m, theta): ``H = gamma I``,
``J = diag(G)``, and the implicit gradient needs one backward pass. The score gradient is the direct
term ``grad_s l = G (.) theta`` minus an implicit term, in one of three forms (``implicit_term``):

* ``reference`` (default): what BiP's released code computes, ``lr2 (grad_s l)^2 = lr2 (G (.) theta)^2``
  with ``lr2 = 1e-4`` in all its configs (``trainer/bilevel.py``: the product of the score gradient with
  itself). On the trained LeNet-300-100 at 90% sparsity it is ~1e-6 of the direct term.
* ``inverse-gamma``: the derivation above, ``(1/gamma_IG) G (.) m (.) G`` with ``gamma_IG = implicit_gamma``
  (0: the lower-level ``gamma``; then it is exactly the implicit gradient of BiP's bilinear model).
  BiP's code decouples the implicit term's scale from its lower-level weight decay (``wd = 1e-4``, our
  ``gamma``); so does ``implicit_gamma``, which is tuned on a validation split. With ``gamma_IG = 1e-3``
  the term was ~200x the direct gradient on LeNet and only raised the scores of kept weights.
* ``none``: the direct term alone.

:meth:`MaskLearningProblem.bilinear_estimates` is the same with f and g on separate batches (what
MRBO / VRBO use through ``hypergrad="bilinear"``): ``G_f (.) theta - lr2 (G_f (.) theta)(G_g (.) theta)``,
or ``- G_g (.) m (.) G_f / gamma_IG``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.data import Dataset

from ..errors import UserError
from ..sparse import is_masked, prunable_weights, remove_masks
from ..sparse.select import topk_mask
from .problem import Tensors

IMPLICIT_TERMS = ("reference", "inverse-gamma", "none")


def dataset_tensors(dataset: Dataset) -> tuple[Tensor, Tensor]:
    """``(images, labels)`` of a dataset as two tensors (in-memory datasets are used as they are)."""
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        return dataset.images, torch.as_tensor(dataset.labels, dtype=torch.int64)
    if len(dataset) == 0:
        raise UserError("the training set is empty")
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


class MaskLearningProblem:
    """BiP's bilevel problem (module docstring) on a copy of ``model``, keeping ``keep`` weights.

    ``initial()`` gives ``(scores, theta)``: scores ``|w|`` (the start is the global magnitude mask)
    and the model's own parameters (the trained network). ``sample`` draws uniformly with
    replacement from ``dataset``.
    """

    def __init__(self, model: nn.Module, dataset: Dataset, keep: int, gamma: float = 1e-4,
                 device: str | torch.device = "cpu", implicit_term: str = "reference", lr2: float = 1e-4,
                 implicit_gamma: float = 0.0) -> None:
        model = copy.deepcopy(model)
        if any(is_masked(m) for m in prunable_weights(model).values()):
            remove_masks(model, bake=True)
        self.model = model.to(device).train()
        self.device = torch.device(device)
        self.param_names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.mask_names = list(prunable_weights(self.model))
        missing = [n for n in self.mask_names if n not in self.param_names]
        if missing or not self.mask_names:
            raise UserError(f"no trainable Linear/Conv weights to prune (missing: {missing}); check the model")
        self.mask_index = [self.param_names.index(n) for n in self.mask_names]
        self.total = sum(dict(self.model.named_parameters())[n].numel() for n in self.mask_names)
        if not 1 <= keep <= self.total:
            raise UserError(f"keep must be between 1 and {self.total} weights, got {keep}")
        if gamma <= 0:
            raise UserError(f"gamma (lower-level l2) must be > 0 for a strongly convex lower level, got {gamma}")
        if implicit_term not in IMPLICIT_TERMS:
            raise UserError(f"unknown implicit_term {implicit_term!r}; choose one of {', '.join(IMPLICIT_TERMS)}")
        if lr2 < 0 or implicit_gamma < 0:
            raise UserError(f"lr2 and implicit_gamma must be >= 0, got {lr2}, {implicit_gamma}")
        self.keep, self.gamma = int(keep), float(gamma)
        self.implicit_term, self.lr2 = implicit_term, float(lr2)
        self.implicit_gamma = float(implicit_gamma) or self.gamma
        self.images, self.labels = dataset_tensors(dataset)
        self.buffers = dict(self.model.named_buffers())

    # -- variables --------------------------------------------------------------------------------
    def initial(self) -> tuple[Tensors, Tensors]:
        params = dict(self.model.named_parameters())
        theta = tuple(params[n].detach().clone() for n in self.param_names)
        return tuple(theta[i].abs() for i in self.mask_index), theta

    def hard_masks(self, scores: Tensors) -> Tensors:
        """The global top-``keep`` 0/1 masks of ``scores`` (exactly ``keep`` ones, ties by ``torch.topk``).

        The last result is reused while ``scores`` are the same tensors, unmodified (BiP's weight and score
        steps of one iteration share the scores: one top-k instead of two)."""
        key = tuple((id(s), s._version) for s in scores)
        if getattr(self, "_mask_key", None) == key:
            return self._masks
        masks = self._top_k(scores)
        self._mask_key, self._masks, self._mask_scores = key, masks, scores  # keep them alive: ids stay unique
        return masks

    def _top_k(self, scores: Tensors) -> Tensors:
        flat = torch.cat([s.detach().reshape(-1) for s in scores])
        keep = topk_mask(flat, self.keep).to(flat.dtype)
        out, start = [], 0
        for s in scores:
            out.append(keep[start:start + s.numel()].reshape(s.shape))
            start += s.numel()
        return tuple(out)

    def effective(self, scores: Tensors, theta: Tensors) -> dict[str, Tensor]:
        """Parameter name -> tensor used in the forward pass (masked weights with the STE mask)."""
        values = dict(zip(self.param_names, theta))
        for name, s, hard in zip(self.mask_names, scores, self.hard_masks(scores)):
            values[name] = values[name] * (hard + s - s.detach())
        return values

    def loss(self, values: dict[str, Tensor], batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, labels = batch
        logits = functional_call(self.model, {**values, **self.buffers}, (inputs,))
        return nn.functional.cross_entropy(logits, labels)

    # -- oracles ----------------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        index = torch.randint(len(self.labels), (n,), generator=generator)
        return self.images[index].to(self.device), self.labels[index].to(self.device)

    def upper(self, scores: Tensors, theta: Tensors, batch: Any) -> Tensor:
        return self.loss(self.effective(scores, theta), batch)

    def lower(self, scores: Tensors, theta: Tensors, batch: Any) -> Tensor:
        decay = sum((t ** 2).sum() for t in theta)
        return self.loss(self.effective(scores, theta), batch) + 0.5 * self.gamma * decay

    def _z_gradients(self, scores: Tensors, theta: Tensors, batch: Any) -> tuple[Tensors, list[Tensor]]:
        """``(hard masks, grad of l w.r.t. every effective parameter)``: ``G = grad_z l`` for masked weights."""
        masks = self.hard_masks(scores)
        values = {n: t.detach().requires_grad_(True) for n, t in zip(self.param_names, theta)}
        for name, m in zip(self.mask_names, masks):
            values[name] = (values[name].detach() * m).requires_grad_(True)
        with torch.enable_grad():
            grads = torch.autograd.grad(self.loss(values, batch), [values[n] for n in self.param_names],
                                        allow_unused=True)
        return masks, [torch.zeros_like(t) if g is None else g for g, t in zip(grads, theta)]

    def _lower_from(self, masks: Tensors, grads: list[Tensor], theta: Tensors) -> Tensors:
        lower = [g + self.gamma * t for g, t in zip(grads, theta)]
        for i, m in zip(self.mask_index, masks):
            lower[i] = m * grads[i] + self.gamma * theta[i]
        return tuple(lower)

    def implicit(self, direct_f: Tensor, direct_g: Tensor, grad_f: Tensor, grad_g: Tensor, mask: Tensor) -> Tensor:
        """The implicit term of one layer (module docstring); ``direct = G (.) theta``, ``grad = G``."""
        if self.implicit_term == "reference":
            return self.lr2 * direct_f * direct_g
        if self.implicit_term == "inverse-gamma":
            return grad_g * mask * grad_f / self.implicit_gamma
        return torch.zeros_like(direct_f)

    def bilinear_hypergradient(self, scores: Tensors, theta: Tensors, batch: Any) -> tuple[Tensors, Tensors]:
        """BiP's first-order implicit gradient and ``grad_theta g``, from one backward pass (module docstring)."""
        masks, grads = self._z_gradients(scores, theta, batch)
        upper = []
        for i, m in zip(self.mask_index, masks):
            direct = grads[i] * theta[i]
            upper.append(direct - self.implicit(direct, direct, grads[i], grads[i], m))
        return tuple(upper), self._lower_from(masks, grads, theta)

    def bilinear_estimates(self, scores: Tensors, theta: Tensors, batch_f: Any, batch_g: Any) -> tuple[Tensors, Tensors]:
        """The implicit gradient of the bilinear model with f and g on separate batches, and ``grad_theta g``.

        With ``G_f``, ``G_g`` the z-gradients on ``batch_f`` and ``batch_g``: ``grad_s f = G_f (.) theta``,
        ``grad_theta f = m (.) G_f``, ``J = diag(G_g)``, ``H = gamma I``, so

            grad_s f - J^T H^{-1} grad_theta f = G_f (.) theta - G_g (.) m (.) G_f / gamma,

        with ``implicit_term="inverse-gamma"`` and ``implicit_gamma = gamma`` exactly what
        :func:`greedyprune.bilevel.hypergradient` computes for a loss linear in z (tested); the ``reference``
        form replaces the last term by ``lr2 (G_f (.) theta)(G_g (.) theta)``. Two backward passes and no
        Hessian products. (One batch for both, as in
        :meth:`bilinear_hypergradient`, squares the noise of ``G``; two batches keep the product unbiased.)
        """
        masks_f, grads_f = self._z_gradients(scores, theta, batch_f)
        masks, grads_g = self._z_gradients(scores, theta, batch_g)
        upper = []
        for i, m in zip(self.mask_index, masks):
            direct_f, direct_g = grads_f[i] * theta[i], grads_g[i] * theta[i]
            upper.append(direct_f - self.implicit(direct_f, direct_g, grads_f[i], grads_g[i], m))
        return tuple(upper), self._lower_from(masks, grads_g, theta)

    # -- result -----------------------------------------------------------------------------------
    def masked_model(self, scores: Tensors, theta: Tensors) -> tuple[nn.Module, dict[str, Tensor]]:
        """A copy of the model holding ``theta`` with the top-k masks applied through greedyprune.sparse."""
        from ..sparse import apply_masks
        model = copy.deepcopy(self.model)
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, t in zip(self.param_names, theta):
                params[name].copy_(t)
        masks = {n: m.bool() for n, m in zip(self.mask_names, self.hard_masks(scores))}
        apply_masks(model, masks)
        return model, masks
