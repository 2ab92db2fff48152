"""Sufficient statistics of a consumer layer, accumulated batch by batch (SparseGPT/OBC style).

The consumer is a ``Conv2d`` (``groups=1``) or ``Linear`` whose input channels are the candidates.
Unfolding the input (``nn.Unfold`` for convs; a Linear after ``Flatten`` has ``block`` features per
channel) gives columns ``x_p`` of length ``C*K`` in channel-major blocks, and ``y_p = W x_p (+ bias)``
with ``W (C_out, C*K)``. Candidate ``i`` contributes ``c_i,p = W_i x_i,p`` (``W_i`` = its ``K`` columns).

Accumulated (float64 running sums; each batch's products and sums in ``product_dtype``):

* ``H = sum_p x_p x_p^T``        (``C*K`` square; never the ``N x samples x C_out`` contributions; for a
  stride-1 conv from one product per shift of the input, :mod:`~greedyprune.stats.shifted_gram`)
* ``M = sum_p x_p t_p^T``        (cross-covariance with the target ``t_p``, ``C*K x C_out``)
* ``sum_p x_p``, ``sum_p t_p``, ``sum_p ||t_p||^2`` and the count ``n``.

:meth:`statistics` turns them into the engine's ``(G, b, E)``. With ``center=True`` (the default,
what the pipeline uses) every term is centred, because a bias correction absorbs any constant
offset: ``G_ij = <W_i^T W_j, Hc_ij>`` summed over the ``K x K`` block, ``b_i = sum(W_i^T (.) Mc_i)``,
``E = sum ||t_p - mean t||^2``. The loss of a selection is then the residual energy *after* the
optimal bias correction ``delta = mean(t) - sum_i g_i W_i mean(x_i)`` (see :meth:`bias_correction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..distributed import all_reduce_sum, world
from ..errors import UserError
from . import shifted_gram
from .columns import (  # noqa: F401 (re-exported)
    GRAM_BLOCK_ROWS,
    add_gram,
    output_columns,
    unfold_columns,
    weight_matrix,
)


@dataclass
class GroupStatistics:
    """What the engine needs for one channel group (float64)."""

    gram: torch.Tensor
    cross: torch.Tensor
    energy: torch.Tensor
    samples: int


class ConsumerStatistics:
    """``add_batch(inp, target)`` -> ``statistics(weight)`` -> ``free()`` for one consumer layer."""

    def __init__(self, module: nn.Module, block: int = 1, product_dtype: torch.dtype = torch.float64,
                 center: bool = True, name: str | None = None, channels: int | None = None) -> None:
        """``channels`` given: the inputs passed to :meth:`add_batch` hold only that many candidate channels,
        gathered by the caller (a group's columns among others, or one partition of a grouped conv, as a
        dense conv with ``module``'s kernel, stride, padding and dilation); :meth:`statistics` and
        :meth:`bias_correction` then need the matching ``weight`` (``C_out x channels*K``)."""
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 and channels is None:
                raise UserError(f"consumer conv has groups={module.groups}; only groups=1 consumers can be pruned safely")
            if module.padding_mode != "zeros":
                raise UserError(f"consumer conv uses padding_mode={module.padding_mode!r}; only 'zeros' is supported")
            self.block = module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear):
            self.block = block
        else:
            raise UserError(f"consumer must be Conv2d or Linear, got {type(module).__name__}")
        self.module, self.product_dtype, self.center = module, product_dtype, center
        self.rows = module.weight.shape[1] * (self.block if isinstance(module, nn.Conv2d) else 1)
        if channels is not None:
            self.rows = channels * self.block
        self.channels = self.rows // self.block
        self.h = self.m = self.sum_x = self.sum_t = None
        self.offset_major = False  # h accumulated by shifted_gram.add_shifted_gram (blocks u <= v)
        self.scratch: torch.Tensor | None = None  # the last batch's unfolded conv input, reused as a buffer
        self.energy = torch.zeros((), dtype=torch.float64)
        self.samples = 0
        self.images = 0
        self.name = name
        self.reduced = False

    def add_batch(self, inp: torch.Tensor, target: torch.Tensor) -> None:
        """Accumulate one batch: ``inp`` is the consumer's input, ``target`` the desired output minus bias.

        The batch's products and sums are formed in ``product_dtype`` and added to float64 running sums.
        Finiteness is read off the batch's ``diag(X X^T) = sum_p x_p^2`` (NaN or Inf anywhere in ``X``
        makes it non-finite), which costs nothing beside the product itself.
        """
        t = target.detach().to(self.product_dtype)
        x, shifted, positions = self._columns(inp, t.shape[1])
        self._add_gram(x, shifted, t.shape[0])
        if shifted:
            shifted_gram.add_shifted_cross(self.m, self.sum_x, x, t, self.module)
        else:
            self.m.add_(x @ t.T)
            self.sum_x.add_(x.sum(1))
        self._count(t, inp, positions)

    def _columns(self, inp: torch.Tensor, targets: int | None) -> tuple[torch.Tensor, bool, int]:
        """``(x, shifted, positions)``: the input in ``product_dtype``, as it is for a stride-1 conv (``shifted``:
        :mod:`~greedyprune.stats.shifted_gram`, no unfolded input) or unfolded; refused unless the target
        has the same number of positions (``targets``, if given)."""
        shifted = inp.dim() == 4 and shifted_gram.applies(self.module)
        if shifted:
            x = inp.detach().to(self.product_dtype)
            out_h, out_w = shifted_gram.output_size(x, self.module)
            positions = x.shape[0] * out_h * out_w
        else:
            columns = unfold_columns(self.module, inp.detach(), self.block, self.scratch)
            if isinstance(self.module, nn.Conv2d) and \
                    columns.untyped_storage().data_ptr() != inp.untyped_storage().data_ptr():
                self.scratch = columns  # a copy of the input (not a view of it): the next batch's columns go there
            x = columns.to(self.product_dtype)
            positions = x.shape[1]
        if targets is not None and positions != targets:
            raise UserError(f"calibration target has {targets} positions but the input {positions}")
        return x, shifted, positions

    def _add_gram(self, x: torch.Tensor, shifted: bool, outputs: int) -> None:
        """``H += X X^T`` (the running sums allocated on the first batch, ``M`` with ``outputs`` columns);
        non-finite activations refused."""
        if self.h is None:
            dev = x.device
            self.h = torch.zeros(self.rows, self.rows, dtype=torch.float64, device=dev)
            self.m = torch.zeros(self.rows, outputs, dtype=torch.float64, device=dev)
            self.sum_x = torch.zeros(self.rows, dtype=torch.float64, device=dev)
            self.sum_t = torch.zeros(outputs, dtype=torch.float64, device=dev)
            self.energy = self.energy.to(dev)
            self.offset_major = shifted
        finite = shifted_gram.add_shifted_gram(self.h, x, self.module) if shifted else add_gram(self.h, x)
        if not finite:
            raise UserError(f"non-finite activations (NaN/Inf) reach the consumer of {self._what()}; "
                            "check the model weights and inputs")

    def _count(self, t: torch.Tensor, inp: torch.Tensor, positions: int) -> None:
        """The sums every path keeps besides its products and ``sum_x``: target sums and energy, sample
        (``positions``) and image counts."""
        self.sum_t.add_(t.sum(1))
        self.energy += torch.linalg.vector_norm(t).double() ** 2
        self.samples += positions
        self.images += inp.shape[0] if inp.dim() > 1 else 1

    def _products(self) -> list[torch.Tensor | None]:
        """The running product sums (``H`` and ``M`` here) that ranks add up."""
        return [self.h, self.m]

    def reduce(self) -> None:
        """Sum the running statistics over ``torch.distributed`` ranks (once; no-op in one process)."""
        if self.reduced or world()[1] == 1:
            self.reduced = True
            return
        products = self._products()
        if products[0] is None:
            raise UserError("a rank received no calibration batches; give at least as many batches as ranks")
        count = torch.tensor([float(self.samples), float(self.images)], dtype=torch.float64, device=products[0].device)
        all_reduce_sum(*products, self.sum_x, self.sum_t, self.energy, count)
        self.samples, self.images, self.reduced = int(count[0].item()), int(count[1].item()), True

    def statistics(self, weight: torch.Tensor | None = None) -> GroupStatistics:
        """``(G, b, E)`` for the candidates, against the consumer weight (default: its current weight).

        Under ``torch.distributed`` the sums are first added over all ranks (:meth:`reduce`).
        """
        self._ready()
        w = (weight_matrix(self.module) if weight is None else weight).to(self.h.device, torch.float64)
        m, energy = self.m, self.energy
        if self.center:
            mean_x, mean_t = self.sum_x / self.samples, self.sum_t / self.samples
            m = torch.addr(m, mean_x, mean_t, alpha=-self.samples)
            energy = energy - self.samples * mean_t.pow(2).sum()
        gram = self._weighted_gram(w)
        cross = (w.T * m).reshape(self.channels, self.block, -1).sum((1, 2))
        return GroupStatistics(gram, cross, energy.clamp_min(0.0), self.samples)

    def _weighted_gram(self, w: torch.Tensor) -> torch.Tensor:
        """The engine's ``G`` (symmetric, float64) from ``H`` (centred if :attr:`center`) and ``w`` (float64)."""
        h, c, k = self.h, self.channels, self.block
        if self.center:
            mean_x = self.sum_x / self.samples
            h_mean = mean_x.reshape(c, k).T.reshape(-1) if self.offset_major else mean_x  # h's row order
            h = torch.addr(h, h_mean, h_mean, alpha=-self.samples)
        if k > 1:  # by offset pairs u <= v (the Gram is symmetric): about half the products of W^T W
            gram = shifted_gram.weighted_gram(h, w, c, k, offset_major=self.offset_major)
        else:  # G = (W^T W) * H, W^T W by its blocks on and above the diagonal
            gram = torch.zeros(c, c, dtype=h.dtype, device=h.device)
            add_gram(gram, w.T)
            gram.mul_(h)
        return 0.5 * (gram + gram.T)

    def _ready(self) -> None:
        """Refuse empty or too small calibration data in one line; sum over ranks (:meth:`reduce`)."""
        if self.sum_x is None or self.samples == 0:
            raise UserError("no calibration data reached the consumer layer; give at least one calibration batch")
        self.reduce()
        if self.center and self.samples < 2:
            # one sample per image reaches it (a Linear consumer): centring leaves nothing of one image
            raise UserError(f"the calibration set is too small for {self._what()}: its consumer sees {self.samples} "
                            f"sample(s) from {self.images} image(s) and centred statistics need at least 2; "
                            "use at least 2 calibration images (--calib 2; hundreds for good statistics)")

    def bias_correction(self, kept: torch.Tensor, coefficients: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
        """Per-output offset ``delta = mean(t) - sum_{i in kept} g_i W_i mean(x_i)`` to add to the output."""
        w = (weight_matrix(self.module) if weight is None else weight).to(self.sum_x.device, torch.float64)
        mean_x = (self.sum_x / self.samples).reshape(self.channels, self.block)
        mean_t = self.sum_t / self.samples
        w_blocks = w.reshape(w.shape[0], self.channels, self.block)[:, kept]  # (C_out, |S|, K)
        recon = torch.einsum("osk,sk,s->o", w_blocks, mean_x[kept], coefficients.to(torch.float64))
        return mean_t - recon

    def channel_means(self) -> torch.Tensor:
        """Mean input of each candidate channel over all positions (for bias corrections elsewhere)."""
        return (self.sum_x / self.samples).reshape(self.channels, self.block).mean(1)

    def _what(self) -> str:
        return f"group {self.name!r}" if self.name else f"this {type(self.module).__name__} layer"

    def free(self) -> None:
        self.h = self.m = self.sum_x = self.sum_t = self.scratch = None
