"""A consumer layer's input and output as columns, and the symmetric Gram product (for :mod:`.consumer`).

Unfolding the input (``nn.Unfold`` for convs; a Linear after ``Flatten`` has ``block`` features per
channel) gives columns ``x_p`` of length ``C*K`` in channel-major blocks (candidate ``i`` = rows
``i*K..(i+1)*K``), and ``y_p = W x_p (+ bias)`` with ``W (C_out, C*K)`` (:func:`weight_matrix`).
"""

from __future__ import annotations

import torch
from torch import nn


def unfold_columns(module: nn.Module, inp: torch.Tensor, block: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """The consumer's input as columns ``(C*K, P)``, channel-major (candidate i = rows i*K..(i+1)*K).

    A conv's columns are a copy; ``out``, if it has their shape, dtype and device, receives it (the same
    values: a buffer reused batch after batch is not allocated, nor its memory faulted in, again). A
    Linear's are a view of ``inp``.
    """
    if isinstance(module, nn.Conv2d):
        if module.kernel_size == (1, 1) and module.stride == (1, 1) and module.padding in ((0, 0), "valid"):
            source = inp.transpose(0, 1)  # (C, B, H, W)
        else:
            unfold = nn.Unfold(module.kernel_size, dilation=module.dilation, padding=module.padding,
                               stride=module.stride)
            source = unfold(inp).transpose(0, 1)  # (C*K, B, L)
        shape = (source.shape[0], source[0].numel())
        if out is not None and tuple(out.shape) == shape and out.dtype == source.dtype and out.device == source.device:
            out.view(source.shape).copy_(source)
            return out
        return source.reshape(shape)
    flat = inp.reshape(-1, inp.shape[-1])  # Linear: (B, C*block)
    return flat.T


def output_columns(module: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """The consumer's output (minus its bias) as columns ``(C_out, P)`` aligned with :func:`unfold_columns`."""
    if module.bias is not None:
        shape = (1, -1, 1, 1) if isinstance(module, nn.Conv2d) else (1, -1)
        out = out - module.bias.detach().reshape(shape)
    if isinstance(module, nn.Conv2d):
        return out.transpose(0, 1).reshape(out.shape[1], -1)
    return out.reshape(-1, out.shape[-1]).T


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """``W (C_out, C*K)`` in the column order of :func:`unfold_columns`."""
    return module.weight.detach().reshape(module.weight.shape[0], -1)


# Rows per block of the symmetric product in add_gram (below two blocks' worth, one plain GEMM).
GRAM_BLOCK_ROWS = 256


def add_gram(acc: torch.Tensor, x: torch.Tensor) -> bool:
    """``acc += x x^T`` using its symmetry; returns whether ``diag(x x^T)`` is finite (all of ``x`` is).

    The rows of ``x`` are cut into ``b`` blocks and only the ``b (b + 1) / 2`` blocks on and above the
    diagonal are multiplied (the others are their transposes): ``(b + 1) / 2b`` of the flops of one GEMM,
    e.g. 56% for ``b = 8`` -- the SYRK torch does not expose. ``acc`` may be of a wider dtype than ``x``.
    """
    rows = x.shape[0]
    blocks = max(1, min(8, rows // GRAM_BLOCK_ROWS))
    if blocks == 1:
        product = x @ x.T
        acc.add_(product)
        return bool(torch.isfinite(product.diagonal()).all())
    bounds = [rows * i // blocks for i in range(blocks + 1)]
    finite = True
    for i in range(blocks):
        rows_i = slice(bounds[i], bounds[i + 1])
        for j in range(i, blocks):
            rows_j = slice(bounds[j], bounds[j + 1])
            product = x[rows_i] @ x[rows_j].T
            acc[rows_i, rows_j] += product
            if i == j:
                finite = finite and bool(torch.isfinite(product.diagonal()).all())
            else:
                acc[rows_j, rows_i] += product.T
    return finite
