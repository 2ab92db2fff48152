"""The result type of every selection method, the method registry, and input validation.

Setting (shared by all methods). Candidate ``i`` contributes ``c_i`` to a layer's output; a selection
keeps a multiset ``S`` with coefficients ``g`` and reconstructs ``Y_hat = sum_{i in S} g_i c_i``.
Everything is computed from sufficient statistics:

* ``G_ij = <c_i, c_j>`` (the Gram matrix, ``N x N``),
* ``b_i  = <c_i, T>``   (cross term with the target ``T``),
* ``E    = ||T||^2``    (target energy),

so that ``Loss(g) = ||T - Y_hat||^2 = E - 2 b.g + g.G.g`` and the reported error is ``Loss / E``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import UserError


@dataclass
class Selection:
    """Which candidates were kept, with what coefficients, and how the error fell.

    Attributes:
        indices: ``LongTensor (m,)`` candidates in the order picked (repeats possible for ``uniform``).
            ``m <= k``: fewer when the selection stopped early (see ``stopped_early``).
        coefficients: ``(m,)`` coefficient of each pick in the final reconstruction
            ``Y_hat = sum_t coefficients[t] * c[indices[t]]``.
        errors: ``(m,)`` relative discrepancy ``Loss / E`` after 1, 2, ..., m picks, each evaluated
            exactly for the coefficients that method would hold after that many picks.
        method: registry name of the method that produced it.
        damping: absolute ridge ``lambda`` added to ``diag(G)`` while selecting/refitting (0 if none).
        stopped_early: ``None``, or why fewer than ``k`` picks were made.
    """

    indices: torch.Tensor
    coefficients: torch.Tensor
    errors: torch.Tensor
    method: str
    damping: float = 0.0
    stopped_early: str | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.numel())

    def kept_channels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct kept candidates (sorted) and their summed coefficients (repeats merged)."""
        unique, inverse = torch.unique(self.indices, sorted=True, return_inverse=True)
        merged = torch.zeros(unique.numel(), dtype=self.coefficients.dtype, device=self.coefficients.device)
        merged.index_add_(0, inverse, self.coefficients)
        return unique, merged

    @property
    def final_error(self) -> float:
        return float(self.errors[-1]) if len(self) else 1.0


SelectFn = Callable[..., Selection]


@dataclass
class MethodSpec:
    """A registered selection method: the function and what it accepts.

    Attributes:
        fn: ``fn(gram, cross, energy, k, *, damping, partition, **options) -> Selection``.
        options: option name -> help, every keyword the method accepts besides ``damping`` and
            ``partition`` (anything else is refused by :func:`check_options`, so a misspelling is an error).
        with_replacement: the method may pick a candidate more than once.
        width_options: options a pruner passes when it asks for ``k`` *distinct* channels (e.g.
            ``until_distinct=True`` for herding with replacement).
        whole_network_refit: what a whole-network pruner does after the last group when asked for its
            default (``prune(..., refit="auto")``): ``"global"`` (the global refit of
            :mod:`greedyprune.refit`) or ``None`` (none). The greedy reconstruction methods say
            ``"global"``: the refit carries their objective -- match the original's outputs -- from
            one layer to the whole network. Baselines say ``None``, so they stay the baselines
            published (the choice is made where each method is registered, never by name in a pipeline).
    """

    name: str
    fn: SelectFn
    options: dict[str, str]
    with_replacement: bool = False
    width_options: dict[str, object] = field(default_factory=dict)
    whole_network_refit: str | None = None

    def __call__(self, *args: object, **kwargs: object) -> Selection:
        return self.fn(*args, **kwargs)

    def accepted(self, **values: object) -> dict[str, object]:
        """The subset of ``values`` this method accepts (how a pipeline hands scores/seeds to any method)."""
        return {name: value for name, value in values.items() if name in self.options}


# name -> MethodSpec (callable like the function it wraps); filled by the method modules.
registered_methods: dict[str, MethodSpec] = {}
# methods that may pick a candidate more than once
methods_with_replacement: set[str] = set()


def register(name: str, with_replacement: bool = False, options: dict[str, str] | None = None,
             width_options: dict[str, object] | None = None,
             whole_network_refit: str | None = None) -> Callable[[SelectFn], SelectFn]:
    """Register a method under ``name`` with the options it accepts (see :class:`MethodSpec`)."""
    def wrap(fn: SelectFn) -> SelectFn:
        registered_methods[name] = MethodSpec(name, fn, dict(options or {}), with_replacement,
                                              dict(width_options or {}), whole_network_refit)
        if with_replacement:
            methods_with_replacement.add(name)
        return fn
    return wrap


def check_options(method: str, options: dict[str, object]) -> None:
    """Refuse options ``method`` does not accept, with one line naming them and what it does accept."""
    spec = registered_methods[method]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        accepted = ", ".join(sorted(spec.options)) or "none"
        raise UserError(f"method {method!r} does not accept option(s) {', '.join(unknown)}; it accepts: {accepted}")


def check_statistics(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor | float, k: int,
                     with_replacement: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate and convert the statistics to float64 (on their device). Raises one-line errors."""
    if not isinstance(gram, torch.Tensor) or gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        shape = tuple(gram.shape) if isinstance(gram, torch.Tensor) else type(gram).__name__
        raise UserError(f"gram must be a square (N, N) tensor, got {shape}")
    n = gram.shape[0]
    if n == 0:
        raise UserError("gram is empty: there must be at least one candidate")
    if not isinstance(cross, torch.Tensor) or cross.shape != (n,):
        shape = tuple(cross.shape) if isinstance(cross, torch.Tensor) else type(cross).__name__
        raise UserError(f"cross must have shape ({n},) to match gram, got {shape}")
    energy_t = torch.as_tensor(energy, dtype=torch.float64, device=gram.device)
    if energy_t.numel() != 1:
        raise UserError(f"energy must be a scalar, got shape {tuple(energy_t.shape)}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise UserError(f"k must be an int, got {type(k).__name__}")
    if k < 1:
        raise UserError(f"k must be at least 1, got {k}")
    if not with_replacement and k > n:
        raise UserError(f"k={k} exceeds the {n} candidates; without replacement k must be <= {n}")
    gram64, cross64 = gram.to(torch.float64), cross.to(torch.float64).to(gram.device)
    for name, value in (("gram", gram64), ("cross", cross64), ("energy", energy_t)):
        if not bool(torch.isfinite(value).all()):
            raise UserError(f"{name} contains NaN or Inf; check the calibration activations")
    if float(energy_t) < 0:
        raise UserError(f"energy must be >= 0, got {float(energy_t)}")
    return gram64, cross64, energy_t.reshape(())


def relative(loss: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """``loss / energy`` clamped at 0 (rounding), with a zero target giving zero error."""
    if float(energy) == 0.0:
        return torch.zeros_like(loss)
    errors = (loss / energy).clamp_min(0.0)
    if not bool(torch.isfinite(errors).all()):  # E is tiny against G: the ratio overflows float64
        raise UserError(f"the target energy E = {float(energy):.3g} is too small for the scale of the Gram matrix: "
                        "relative errors overflow; rescale the statistics (or check the calibration activations)")
    return errors
