"""Channel-level consumer statistics from per-channel contributions, for a wide flattened input.

:class:`~greedyprune.stats.ConsumerStatistics` holds the input covariance ``H`` (``CK x CK`` for ``C``
candidate channels of ``K`` columns each) and turns it into the engine's ``G`` at the end through
``W^T W`` (another ``CK x CK``). For a Linear after ``flatten`` that is large: VGG16's ``classifier.0``
reads 512 channels of 7x7 = 49 features, so ``H`` alone is 25088^2 float64 = 4.7 GiB, although the
selection only needs the 512 x 512 channel-level ``G``. Here that ``G`` is summed directly from the
contributions ``z_i,p = W_i x_i,p`` (``O`` outputs per candidate and sample ``p``):

* ``G_ij = sum_p <z_i,p, z_j,p>``,  ``b_i = sum_p <z_i,p, t_p>``  (float64 running sums),
* ``sum_p x_p``, ``sum_p t_p``, ``sum_p ||t_p||^2`` and the count ``n``, as in ``ConsumerStatistics``.

Centring is exact afterwards, because the mean contribution is ``mean z_i = W_i mean x_i``:
``Gc_ij = G_ij - n <mean z_i, mean z_j>``, ``bc_i = b_i - n <mean z_i, mean t>`` -- the same numbers as
the covariance path (``<W_i^T W_j, Hc_ij>`` is ``sum_p <W_i xc_i,p, W_j xc_j,p>``). Memory: ``G`` (``C^2``)
and one chunk of contributions (at most :data:`CHUNK_ELEMENTS` numbers, ``C x O`` per sample).

Which path (:func:`contributions_are_cheaper`), in multiply-adds for ``n`` samples:

* covariance:    ``O (CK)^2`` once (``W^T W``) + ``n CK (CK/2 + O)``  (``H`` by symmetric blocks, ``M``)
* contributions: ``n C O (K + C/2 + 1)``                              (``z``, ``G`` by symmetric blocks, ``b``)

The contributions cost more per sample and save the one-time ``W^T W`` (and all of ``H``'s memory),
so they pay off when the consumer sees few samples per candidate column: a Linear reading ``K > 1``
features per channel (one sample per image), judged at :data:`REFERENCE_SAMPLES` samples (calibration
sets are a few hundred to a few thousand images). VGG16's ``classifier.0``: 2.6e12 against 4.3e12 at
1024 samples (at 32 images: 2e10 against 2.6e12). Convs (thousands of positions per image) and
``K = 1`` Linears (``H`` is already channel-level) keep the covariance path.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from .consumer import ConsumerStatistics, GroupStatistics, add_gram, unfold_columns

REFERENCE_SAMPLES = 1024
CHUNK_ELEMENTS = 1 << 24  # contributions formed at once (64 MiB in float32)


def covariance_path_cost(channels: int, block: int, rows: int, samples: int = REFERENCE_SAMPLES) -> float:
    """Multiply-adds of :class:`ConsumerStatistics` for ``samples`` samples (module docstring)."""
    width = channels * block
    return rows * width * width + samples * width * (width / 2 + rows)


def contribution_path_cost(channels: int, block: int, rows: int, samples: int = REFERENCE_SAMPLES) -> float:
    """Multiply-adds of :class:`ContributionStatistics` for ``samples`` samples (module docstring)."""
    return samples * channels * rows * (block + channels / 2 + 1)


def contributions_are_cheaper(module: nn.Module, channels: int, block: int, rows: int) -> bool:
    """Whether a consumer's statistics should be summed from contributions (a Linear with ``block > 1``
    whose contribution path costs less at :data:`REFERENCE_SAMPLES` samples)."""
    return isinstance(module, nn.Linear) and block > 1 and \
        contribution_path_cost(channels, block, rows) < covariance_path_cost(channels, block, rows)


class ContributionStatistics(ConsumerStatistics):
    """``ConsumerStatistics`` for a Linear consumer without the input covariance (module docstring).

    ``weight`` (``O x channels*K``, the consumer's columns of the candidates) is fixed at construction:
    the contributions are formed with it batch by batch.
    """

    def __init__(self, module: nn.Module, weight: torch.Tensor, block: int,
                 product_dtype: torch.dtype = torch.float64, center: bool = True, name: str | None = None,
                 channels: int | None = None) -> None:
        if not isinstance(module, nn.Linear):
            raise UserError(f"contribution statistics need a Linear consumer, got {type(module).__name__}")
        super().__init__(module, block, product_dtype, center, name, channels)
        if weight.dim() != 2 or weight.shape[1] != self.rows:
            raise ValueError(f"weight of shape {tuple(weight.shape)} for {self.rows} input columns")
        self.weight = weight.detach()
        o, c, k = weight.shape[0], self.channels, self.block
        # (C, O, K): candidate i's columns W_i as one bmm operand, in the product dtype, formed once
        self.blocks = self.weight.to(product_dtype).reshape(o, c, k).transpose(0, 1).contiguous()
        self.gram = self.cross = None

    def add_batch(self, inp: torch.Tensor, target: torch.Tensor) -> None:
        """Accumulate one batch (``inp`` the consumer's input, ``target`` the desired output minus bias)."""
        x = unfold_columns(self.module, inp.detach(), self.block).to(self.product_dtype)
        t = target.detach().to(self.product_dtype)
        if x.shape[1] != t.shape[1]:
            raise UserError(f"calibration target has {t.shape[1]} positions but the input {x.shape[1]}")
        c, k, o = self.channels, self.block, t.shape[0]
        if self.gram is None:
            dev = x.device
            self.gram = torch.zeros(c, c, dtype=torch.float64, device=dev)
            self.cross = torch.zeros(c, dtype=torch.float64, device=dev)
            self.sum_x = torch.zeros(self.rows, dtype=torch.float64, device=dev)
            self.sum_t = torch.zeros(o, dtype=torch.float64, device=dev)
            self.energy = self.energy.to(dev)
        w = self.blocks.to(x.device)
        xs = x.reshape(c, k, -1)
        step = max(1, CHUNK_ELEMENTS // (c * o))
        for start in range(0, x.shape[1], step):
            z = torch.bmm(w, xs[:, :, start:start + step]).reshape(c, -1)  # (C, O * chunk): z_i,p row-major
            if not add_gram(self.gram, z):
                raise UserError(f"non-finite activations (NaN/Inf) reach the consumer of {self._what()}; "
                                "check the model weights and inputs")
            self.cross.add_(z @ t[:, start:start + step].reshape(-1))
        self.sum_x.add_(x.sum(1))
        self._count(t, inp, x.shape[1])

    def _products(self) -> list[torch.Tensor | None]:
        """The channel-level running sums (``G`` and ``b`` before centring) that ranks add up."""
        return [self.gram, self.cross]

    def statistics(self, weight: torch.Tensor | None = None) -> GroupStatistics:
        """``(G, b, E)``; ``weight``, if given, must be the construction weight's shape (it is that weight)."""
        if weight is not None and tuple(weight.shape) != tuple(self.weight.shape):
            raise ValueError(f"weight of shape {tuple(weight.shape)}; the contributions used {tuple(self.weight.shape)}")
        self._ready()
        gram, cross, energy = self.gram, self.cross, self.energy
        if self.center:
            n = self.samples
            mean_x = (self.sum_x / n).reshape(self.channels, self.block)
            mean_t = self.sum_t / n
            mean_z = self._mean_contributions(mean_x.to(gram.device))
            gram = torch.addmm(gram, mean_z, mean_z.T, alpha=-n)
            cross = cross - n * (mean_z @ mean_t)
            energy = energy - n * mean_t.pow(2).sum()
        gram = 0.5 * (gram + gram.T)
        return GroupStatistics(gram, cross, energy.clamp_min(0.0), self.samples)

    def _mean_contributions(self, mean_x: torch.Tensor) -> torch.Tensor:
        """``(C, O)``: ``mean z_i = W_i mean x_i`` in float64, a few channels at a time (no float64 copy of W)."""
        c, k = self.channels, self.block
        w = self.weight.to(mean_x.device).reshape(-1, c, k)
        step = max(1, CHUNK_ELEMENTS // (w.shape[0] * k))
        return torch.cat([torch.einsum("ock,ck->co", w[:, i:i + step].double(), mean_x[i:i + step])
                          for i in range(0, c, step)])

    def bias_correction(self, kept: torch.Tensor, coefficients: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
        return super().bias_correction(kept, coefficients, self.weight if weight is None else weight)

    def free(self) -> None:
        super().free()
        self.gram = self.cross = None


def consumer_statistics(module: nn.Module, weight: torch.Tensor, block: int, channels: int,
                        product_dtype: torch.dtype, name: str | None = None,
                        own_target: bool = False) -> ConsumerStatistics:
    """The cheaper statistics (:func:`contributions_are_cheaper`) of ``channels`` candidates of ``block``
    columns each, whose consumer columns are ``weight`` (``O x channels*block``). ``own_target``: the
    target will be the consumer's own output on the same input, so the covariance path needs no cross
    products (:class:`~greedyprune.stats.own_output.OwnOutputStatistics`)."""
    if contributions_are_cheaper(module, channels, block, weight.shape[0]):
        return ContributionStatistics(module, weight.reshape(weight.shape[0], -1), block, product_dtype, name=name,
                                      channels=channels)
    if own_target:
        from .own_output import OwnOutputStatistics
        return OwnOutputStatistics(module, block, product_dtype, name=name, channels=channels)
    return ConsumerStatistics(module, block, product_dtype, name=name, channels=channels)
