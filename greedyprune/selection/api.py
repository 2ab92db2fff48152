"""Public entry points: :func:`greedy_select` (from features) and :func:`greedy_select_gram` (from statistics)."""

from __future__ import annotations

import math

import torch

from ..errors import UserError
from .base import Selection, check_options, check_statistics, methods_with_replacement, register, registered_methods
from .ols import orthogonal_least_squares
from .partition import PartitionQuota, balance


@register("reoptimized", options={"block": "picks between refreshes of the residual Gram (speed only; default 128)"},
          whole_network_refit="global")
def reoptimized(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int, damping: float = 0.0,
                block: int = 128, quota: PartitionQuota | None = None) -> Selection:
    """Greedy forward selection with all kept coefficients re-optimised by least squares (NeurIPS 2020).

    Whole-network default: the global refit (``prune(refit="auto")``), which continues this method's
    least-squares reconstruction across layers; it raised top-1 in every measured setting (README Results).
    """
    return orthogonal_least_squares(gram, cross, energy, k, method="reoptimized", damping=damping, block=block,
                                    quota=quota)


def greedy_select_gram(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor | float, k: int,
                       method: str = "reoptimized", *, constraint: str | None = None, damping: float = 1e-8,
                       partition: int = 1, **options: object) -> Selection:
    """Pick ``k`` candidates from sufficient statistics.

    Args:
        gram: ``G (N, N)``, ``G_ij = <c_i, c_j>``.
        cross: ``b (N,)``, ``b_i = <c_i, T>``.
        energy: ``E = ||T||^2``.
        k: number of picks (``<= N`` unless the method picks with replacement).
        method: a name in ``registered_methods``: ``reoptimized``, ``uniform``, ``uniform-noreplace``,
            ``magnitude`` (needs ``scores=``), ``magnitude-norefit``, ``random`` (``seed=``),
            ``reoptimized-simplex``.
        constraint: ``None`` (free least squares) or ``"simplex"`` (coefficients on the scaled simplex,
            i.e. the convex hull of ``N c_i``; only with ``reoptimized``; slower: one QP per step).
        damping: ridge added to ``diag(G)``, relative to its mean (``lambda = damping * mean(diag G)``);
            the absolute value used is reported in ``Selection.damping``. Errors are always undamped.
        partition: candidates form ``partition`` equal consecutive blocks and every block keeps
            ``k / partition`` of them (a grouped conv's input channels; see :mod:`.partition`); ``k`` and
            ``N`` must be multiples of it.
        options: the options the method declares (``registered_methods[method].options``: ``scores``,
            ``seed``, ``refit``, ``block``, ``scale``, ``until_distinct``, ``max_steps``); any other is refused.
    Returns:
        :class:`Selection` (indices in pick order, coefficients, relative errors per prefix).
    Minimises ``Loss(g) = E - 2 b.g + g.G.g``; the reported error is ``Loss / E``.
    """
    if constraint not in (None, "simplex"):
        raise UserError(f"constraint must be None or 'simplex', got {constraint!r}")
    if constraint == "simplex":
        if method not in ("reoptimized", "reoptimized-simplex"):
            raise UserError(f"constraint='simplex' applies to method 'reoptimized' only, not {method!r}")
        method = "reoptimized-simplex"
    if method not in registered_methods:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(sorted(registered_methods))}")
    if not isinstance(damping, (int, float)) or not damping >= 0:
        raise UserError(f"damping must be a number >= 0, got {damping!r}")
    check_options(method, options)
    gram64, cross64, energy64 = check_statistics(gram, cross, energy, k, method in methods_with_replacement)
    quota = PartitionQuota(gram64.shape[0], k, partition, gram64.device) if partition != 1 else None
    # clamped at 0: centred statistics of (numerically) constant channels can leave a diagonal mean of -1e-21,
    # and a negative ridge would make the residual energies negative
    absolute = float(damping) * max(float(gram64.diagonal().mean()), 0.0) if damping else 0.0
    if not math.isfinite(absolute):
        raise UserError("the Gram matrix's diagonal is too large to damp (its mean overflows); rescale the statistics")
    selection = registered_methods[method](gram64, cross64, energy64, k, damping=absolute, quota=quota, **options)
    if quota is not None:
        selection = balance(selection, gram64.shape[0], partition)
    if not (bool(torch.isfinite(selection.coefficients).all()) and bool(torch.isfinite(selection.errors).all())):
        raise UserError(f"{method} selection gave non-finite coefficients or errors: the statistics are inconsistent "
                        "(e.g. b_i^2 > G_ii E) or too badly scaled; check the calibration activations or add damping")
    return selection


def greedy_select(features: torch.Tensor, target: torch.Tensor, k: int, method: str = "reoptimized",
                  **options: object) -> Selection:
    """Pick ``k`` of the rows of ``features (N, D)`` to reconstruct ``target (D,)``.

    Forms ``G = F F^T``, ``b = F t``, ``E = t.t`` in float64 and calls :func:`greedy_select_gram`.
    Trailing dimensions are flattened: ``features (N, *shape)`` with ``target (*shape)``.
    """
    if not isinstance(features, torch.Tensor) or features.dim() < 2:
        raise UserError("features must be a tensor of shape (N, D): one row per candidate")
    if not isinstance(target, torch.Tensor) or tuple(target.shape) != tuple(features.shape[1:]):
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise UserError(f"target must have shape {tuple(features.shape[1:])} to match features, got {got}")
    f = features.reshape(features.shape[0], -1).to(torch.float64)
    t = target.reshape(-1).to(torch.float64).to(f.device)
    if not bool(torch.isfinite(f).all()) or not bool(torch.isfinite(t).all()):
        raise UserError("features or target contain NaN or Inf")
    return greedy_select_gram(f @ f.T, f @ t, t @ t, k, method=method, **options)
