"""Per-layer densities for a requested total density: uniform, Erdos-Renyi (ER), Erdos-Renyi-Kernel (ERK).

Notation: layer ``l`` has ``n_l`` weights, the request is total density ``D`` (sparsity ``1 - D``) over
``N = sum_l n_l`` weights, and the answer ``d_l`` satisfies ``sum_l d_l n_l = D N`` with ``0 <= d_l <= 1``.

* ``uniform``: ``d_l = D``. With ``dense_first`` (or any ``dense`` layers) those layers get
  ``d_l = 1`` and the others share what is left: ``d = (D N - sum_dense n_l) / sum_rest n_l``.
* ``er``:  ``d_l = eps * (c_out + c_in) / (c_out c_in)`` (kernel dimensions ignored),
* ``erk``: ``d_l = eps * (sum(shape) / prod(shape))^q`` (Evci et al. 2020; ``q = erk_power_scale``, 1 in
  the paper, an option of the reference code),
  for ``er``/``erk``, ``eps`` solves ``sum_l d_l n_l = D N``. A layer whose ``d_l`` would exceed 1 is
  made dense and ``eps`` is solved again over the remaining layers; densifying a layer only raises
  ``eps`` (it takes less than its proportional share), so all exceeding layers are densified at once and
  the loop repeats until none exceeds 1.

:func:`layer_counts` turns densities into integer non-zero counts whose sum is exactly ``round(D N)``
(largest-remainder rounding).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from ..errors import UserError

DISTRIBUTIONS = ("uniform", "er", "erk")


def _raw(shape: Sequence[int], distribution: str, power: float = 1.0) -> float:
    if distribution == "erk":
        return (sum(shape) / math.prod(shape)) ** power
    c_out, c_in = shape[0], (shape[1] if len(shape) > 1 else 1)
    return (c_out + c_in) / (c_out * c_in)


def layer_densities(shapes: Mapping[str, Sequence[int]], density: float, distribution: str = "erk", *,
                    dense_first: bool = False, dense: Iterable[str] = (), erk_power_scale: float = 1.0
                    ) -> dict[str, float]:
    """Density of each layer so that the total is ``density``. See the module docstring for the math.

    Args:
        shapes: weight name -> weight shape, in network order (the first entry is the first layer).
        density: requested total density ``D`` in ``(0, 1]`` (sparsity = ``1 - D``).
        distribution: ``"uniform"``, ``"er"`` or ``"erk"``.
        dense_first: keep the first layer dense (common for uniform).
        dense: names of further layers to keep dense.
        erk_power_scale: ERK's exponent ``q`` (1: the paper).
    """
    if distribution not in DISTRIBUTIONS:
        raise UserError(f"unknown density distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    if not shapes:
        raise UserError("no layers to sparsify")
    if not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise UserError(f"density must be in (0, 1] (sparsity in [0, 1)), got {density!r}")
    names = list(shapes)
    sizes = {name: math.prod(shapes[name]) for name in names}
    forced = set(dense) | ({names[0]} if dense_first else set())
    unknown = forced - set(names)
    if unknown:
        raise UserError(f"dense layers {sorted(unknown)} are not among the layers {names}")
    budget = density * sum(sizes.values())
    if sum(sizes[n] for n in forced) > budget + 1e-9:
        raise UserError(f"total density {density:g} is too low to keep {sorted(forced)} dense; "
                        "lower the sparsity or drop --dense-first")
    dense_set = set(forced)
    while True:
        rest = [n for n in names if n not in dense_set]
        if not rest:
            return {n: 1.0 for n in names}
        left = budget - sum(sizes[n] for n in dense_set)
        if distribution == "uniform":
            eps, raw = left / sum(sizes[n] for n in rest), {n: 1.0 for n in rest}
        else:
            raw = {n: _raw(shapes[n], distribution, erk_power_scale) for n in rest}
            eps = left / sum(raw[n] * sizes[n] for n in rest)
        exceeding = {n for n in rest if eps * raw[n] > 1.0}
        if not exceeding:
            out = {n: 1.0 for n in names}
            out.update({n: eps * raw[n] for n in rest})
            return out
        dense_set |= exceeding


def layer_counts(shapes: Mapping[str, Sequence[int]], densities: Mapping[str, float],
                 total: int | None = None) -> dict[str, int]:
    """Integer non-zeros per layer from densities; their sum is exactly ``total``.

    ``total`` defaults to ``round(sum_l d_l n_l)``. Counts are floors of ``d_l n_l`` plus one for the
    layers with the largest remainders (never above ``n_l``).
    """
    sizes = {name: math.prod(shapes[name]) for name in shapes}
    exact = {name: min(1.0, max(0.0, densities[name])) * sizes[name] for name in shapes}
    if total is None:
        total = int(round(sum(exact.values())))
    if not 0 <= total <= sum(sizes.values()):
        raise UserError(f"cannot keep {total} of {sum(sizes.values())} weights")
    counts = {name: min(sizes[name], int(math.floor(exact[name] + 1e-9))) for name in shapes}
    order = sorted(shapes, key=lambda n: (-(exact[n] - math.floor(exact[n] + 1e-9)), n))
    missing = total - sum(counts.values())
    while missing != 0:
        changed = False
        for name in order:
            if missing > 0 and counts[name] < sizes[name]:
                counts[name] += 1
                missing -= 1
                changed = True
            elif missing < 0 and counts[name] > 0:
                counts[name] -= 1
                missing += 1
                changed = True
            if missing == 0:
                break
        if not changed:
            raise UserError(f"cannot distribute {total} non-zeros over the layers")
    return counts


def sparsity_counts(shapes: Mapping[str, Sequence[int]], sparsity: float, distribution: str = "erk", *,
                    dense_first: bool = False, dense: Iterable[str] = (), erk_power_scale: float = 1.0
                    ) -> dict[str, int]:
    """Non-zeros per layer for total ``sparsity``: :func:`layer_densities` then :func:`layer_counts`."""
    if not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise UserError(f"sparsity must be in [0, 1), got {sparsity!r}")
    densities = layer_densities(shapes, 1.0 - sparsity, distribution, dense_first=dense_first, dense=dense,
                                erk_power_scale=erk_power_scale)
    total = int(round((1.0 - sparsity) * sum(math.prod(s) for s in shapes.values())))
    return layer_counts(shapes, densities, total)
