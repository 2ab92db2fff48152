"""A stride-1 conv's input statistics without unfolding it: the Gram by shift, the cross products by window.

A ``Conv2d`` with kernel ``kh x kw``, stride 1, dilation 1 and zero padding ``(ph, pw)`` reads, at output
position ``p`` (``Ho x Wo`` of them) and kernel offset ``u``, the input at ``q = p + u - pad`` (zero outside
the ``H x W`` image). The Gram of its unfolded input (:func:`~greedyprune.stats.consumer.unfold_columns`,
row ``i*K + u`` for channel ``i``, ``K = kh kw``) is

    ``H[(i,u),(j,v)] = sum_n sum_p x_i(p + u - pad) x_j(p + v - pad) = sum_n sum_{q in Q_u} x_i(q) x_j(q + d)``

with the shift ``d = v - u`` and the window ``Q_u = (grid(Ho, Wo) + u - pad)`` of input positions; terms
with ``q`` or ``q + d`` outside the image are zero. Let ``F_d`` be the rectangle of positions ``q`` with ``q``
and ``q + d`` both inside, and ``R x C = Q_u ∩ F_d``. Then (inclusion-exclusion on a rectangle)

    ``H_uv = S(F_r x F_c) - S((F_r minus R) x F_c) - S(F_r x (F_c minus C)) + S((F_r minus R) x (F_c minus C))``,
    ``S(Z) = sum_n sum_{q in Z} x_i(q) x_j(q + d)`` (a ``C_in x C_in`` product over the positions in ``Z``).

The first term depends on ``d`` only and is shared by every block with that shift; the others cover the
few border rows and columns a window leaves out (at most ``kh - 1`` and ``kw - 1``). The accumulator is
kept **offset-major**, ``(K, C_in, K, C_in)``, so each block is one contiguous add, and only blocks with
``u <= v`` are accumulated; :func:`weighted_gram` reads ``G`` off them directly (``H_vu = H_uv^T``).
For a 3x3 conv this is about ``13 + 100/H`` image-sized products of ``C_in x C_in`` instead of the 45
of the unfolded ``(9 C_in)^2`` Gram (symmetric blocking): the Gram is the same sum of
products, grouped differently (float rounding differs, not the value). Each product is formed in the
input's dtype and the terms are combined in the accumulator's (float64).

The cross products with a target ``t_p`` and the input sums, ``M[(i,u), :] = sum_p x_i(p + u - pad) t_p^T``
and ``sum_p x_i(p + u - pad)``, take one window of the zero-padded input per kernel offset ``u``
(:func:`add_shifted_cross`): the same products as with the unfolded input, without forming it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def applies(module: nn.Module) -> bool:
    """Whether :func:`add_shifted_gram` computes this consumer's Gram: a stride-1, dilation-1 ``Conv2d``
    with a kernel larger than 1x1 and numeric zero padding (the others are unfolded)."""
    return (isinstance(module, nn.Conv2d) and module.stride == (1, 1) and module.dilation == (1, 1)
            and module.kernel_size != (1, 1) and not isinstance(module.padding, str)
            and module.padding_mode == "zeros")


def output_size(x: torch.Tensor, module: nn.Conv2d) -> tuple[int, int]:
    """``(Ho, Wo)`` of a stride-1, dilation-1 conv on ``x`` ``(N, C, H, W)``."""
    (kh, kw), (ph, pw) = module.kernel_size, module.padding
    return x.shape[2] + 2 * ph - kh + 1, x.shape[3] + 2 * pw - kw + 1


def add_shifted_cross(cross: torch.Tensor, sums: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                      module: nn.Conv2d) -> None:
    """``cross += X t^T`` and ``sums += X 1`` for ``X`` = ``module``'s unfolded input ``x`` ``(N, C, H, W)`` and
    ``t`` ``(rows, N Ho Wo)`` (positions in ``(n, ho, wo)`` order), one window of the padded input per offset."""
    c = x.shape[1]
    (kh, kw), (ph, pw) = module.kernel_size, module.padding
    out_h, out_w = output_size(x, module)
    padded = F.pad(x, (pw, pw, ph, ph))
    cross_blocks, sum_blocks = cross.view(c, kh * kw, -1), sums.view(c, kh * kw)
    for u in range(kh * kw):
        ur, uc = divmod(u, kw)
        cols = padded[:, :, ur:ur + out_h, uc:uc + out_w].transpose(0, 1).reshape(c, -1)
        cross_blocks[:, u] += cols @ t.T
        sum_blocks[:, u] += cols.sum(1)


def add_shifted_sums(sums: torch.Tensor, x: torch.Tensor, module: nn.Conv2d) -> None:
    """``sums += X 1`` alone (as :func:`add_shifted_cross` without a target): per kernel offset, the sum of its
    window of the zero-padded input, in float64."""
    c = x.shape[1]
    (kh, kw), (ph, pw) = module.kernel_size, module.padding
    out_h, out_w = output_size(x, module)
    padded = F.pad(x, (pw, pw, ph, ph))
    sum_blocks = sums.view(c, kh * kw)
    for u in range(kh * kw):
        ur, uc = divmod(u, kw)
        sum_blocks[:, u] += padded[:, :, ur:ur + out_h, uc:uc + out_w].sum((0, 2, 3), dtype=torch.float64)


def _minus(full: tuple[int, int], part: tuple[int, int]) -> list[tuple[int, int]]:
    """The interval ``full`` without its sub-interval ``part`` (at most two intervals, empty ones dropped)."""
    pieces = [(full[0], max(full[0], part[0])), (min(full[1], part[1]), full[1])]
    if part[0] >= part[1]:  # the window holds nothing of ``full``
        pieces = [full]
    return [(a, b) for a, b in pieces if b > a]


def _overlap(size: int, shift: int) -> tuple[int, int]:
    """Positions ``q`` with ``q`` and ``q + shift`` both in ``[0, size)``."""
    return max(0, -shift), min(size, size - shift)


def _window(size: int, out: int, offset: int, pad: int, full: tuple[int, int]) -> tuple[int, int]:
    """Input positions read at kernel offset ``offset`` (``[0, out) + offset - pad``), within ``full``."""
    lo, hi = max(full[0], offset - pad), min(full[1], offset - pad + out)
    return (lo, hi) if hi > lo else (full[0], full[0])


def add_shifted_gram(acc: torch.Tensor, x: torch.Tensor, module: nn.Conv2d) -> bool:
    """Add the blocks ``u <= v`` of ``X X^T`` to the offset-major ``acc`` ``(K C, K C)``, for ``X`` =
    ``module``'s unfolded input ``x`` ``(N, C, H, W)`` (module docstring); returns whether the diagonal of
    ``X X^T`` is finite (all of ``x`` that the conv reads is). Block ``(u, v)`` is ``acc.view(K, C, K, C)[u, :, v]``."""
    n, c, height, width = x.shape
    (kh, kw), (ph, pw) = module.kernel_size, module.padding
    out_h, out_w = output_size(x, module)
    k = kh * kw
    blocks = acc.view(k, c, k, c)
    cache: dict[tuple[int, int, int, int, int, int], torch.Tensor] = {}

    def product(rows: tuple[int, int], cols: tuple[int, int], dr: int, dc: int) -> torch.Tensor:
        key = (*rows, *cols, dr, dc)
        if key not in cache:
            first = x[:, :, rows[0]:rows[1], cols[0]:cols[1]]
            second = x[:, :, rows[0] + dr:rows[1] + dr, cols[0] + dc:cols[1] + dc]
            cache[key] = (first.transpose(0, 1).reshape(c, -1) @ second.transpose(0, 1).reshape(c, -1).T).to(acc.dtype)
        return cache[key]

    for u in range(k):
        ur, uc = divmod(u, kw)
        for v in range(u, k):
            vr, vc = divmod(v, kw)
            dr, dc = vr - ur, vc - uc
            full_r, full_c = _overlap(height, dr), _overlap(width, dc)
            if full_r[1] <= full_r[0] or full_c[1] <= full_c[0]:
                continue  # no position pairs at this shift
            out_r = _minus(full_r, _window(height, out_h, ur, ph, full_r))
            out_c = _minus(full_c, _window(width, out_w, uc, pw, full_c))
            target = blocks[u, :, v, :]
            target += product(full_r, full_c, dr, dc)
            for rows, cols, sign in ((out_r, [full_c], -1), ([full_r], out_c, -1), (out_r, out_c, 1)):
                for r in rows:
                    for cc in cols:
                        target.add_(product(r, cc, dr, dc), alpha=sign)
    # every input position is read (stride 1): sum over all of them of x_i^2, the diagonal's ingredients
    return bool(torch.isfinite(product((0, height), (0, width), 0, 0).diagonal()).all())


def weighted_gram(acc: torch.Tensor, weight: torch.Tensor, channels: int, k: int,
                  offset_major: bool = True) -> torch.Tensor:
    """The engine's ``G_ij = sum_{u,v} (W_u^T W_v)_ij H_uv,ij`` (``W_u`` = the weight's ``C_out x C_in`` slice at
    offset ``u``) from the offset-major ``acc`` (blocks ``u <= v``; ``H_vu = H_uv^T``): ``k (k + 1) / 2``
    products of ``C_in x C_out x C_in`` instead of one of ``(K C_in)^2 C_out``. ``offset_major=False``: ``acc``
    is the full channel-major Gram of the unfolded input (rows ``i K + u``), block ``(u, v)`` its rows ``u`` and
    columns ``v`` of every channel, read in place (the blocks ``u <= v`` suffice: it is symmetric)."""
    blocks = acc.view(k, channels, k, channels) if offset_major else acc.view(channels, k, channels, k)
    per_offset = weight.reshape(weight.shape[0], channels, k).permute(2, 0, 1).contiguous()  # (K, C_out, C_in)
    gram = torch.zeros(channels, channels, dtype=acc.dtype, device=acc.device)
    for u in range(k):
        for v in range(u, k):
            block = blocks[u, :, v, :] if offset_major else blocks[:, u, :, v]
            term = (per_offset[u].T @ per_offset[v]).mul_(block)
            gram += term
            if v != u:
                gram += term.T
    return gram
