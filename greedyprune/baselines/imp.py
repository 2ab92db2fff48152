"""The pieces of iterative magnitude pruning (IMP) that :mod:`greedyprune.baselines.lth` assembles.

* :class:`LTHOptions` -- rounds, per-round rate, which layers are pruned, rewinding, initialisation, controls;
* :func:`layer_rates` / :func:`sparsity_schedule` -- the per-layer pruning fraction of one round and the
  total sparsity after each round;
* :func:`initialise` -- the initial weights: PyTorch's default, Frankle & Carbin's Gaussian Glorot, or
  open_lth's Kaiming normal;
* :class:`RewindSaver`, :func:`data_seed` and small model/mask helpers.

The output layer. Frankle & Carbin (2019) prune it at half the rate of the other layers; open_lth's
LeNet default never prunes it (``pruning_layers_to_ignore='fc.weight'``). ``output_rate = 0`` (the
default) follows open_lth, ``-1`` the paper (``p/2``), any other value is used as given. With
``scope="global"`` the output layer is left out of the global ranking when its rate is 0 (open_lth's
``sparse_global`` with the ignored layer), otherwise ranked with the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..distributed import barrier, first_rank_says, is_main
from ..errors import UserError
from ..io import save_torch
from ..models import build_model
from ..options import opt
from ..sparse import apply_masks, load_masked_state_dict, prunable_weights
from ..sparse.select import prune_surviving
from .common import load_tensors

CONTROLS = ("reinit", "random", "oneshot")
INITS = ("glorot-normal", "kaiming-normal", "torch-default")
REINIT_SEED_OFFSET = 1_000_003  # the reinit control's initialisation: torch seeded with seed + this


@dataclass
class LTHOptions:
    sparsity: float = opt(0.964, "target sparsity: IMP runs the number of rounds that comes closest "
                                 "(LeNet-300-100, p=0.2, output not pruned: 0.789 = 7 rounds = Pm 21.3%, "
                                 "0.964 = 15 rounds = Pm 3.9%)")
    rounds: int = opt(0, "number of pruning rounds (0: derive from --sparsity)")
    prune_rate: float = opt(0.2, "fraction of the surviving weights pruned per round")
    output_rate: float = opt(0.0, "rate for the output layer: 0 = never pruned (open_lth's LeNet default), "
                                  "-1 = half of --prune-rate (Frankle & Carbin)")
    scope: str = opt("layer", "rank weights per layer or over the whole network", choices=["layer", "global"])
    rewind_step: int = opt(0, "rewind survivors to the weights of this iteration (0: original LTH, >0: late "
                              "rewinding, continuing the schedule and data order from there as open_lth does)")
    init: str = opt("glorot-normal", "initial weights: glorot-normal (Frankle & Carbin: Gaussian Glorot, zero "
                                     "biases), kaiming-normal (open_lth), torch-default", choices=list(INITS))
    controls: str = opt("reinit,random,oneshot", "comma list of controls: reinit, random, oneshot ('' for none)")
    control_sparsities: str = opt("", "comma list: run controls at the rounds closest to these sparsities "
                                      "(empty: at the last round)")

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise UserError(f"unknown initialisation {self.init!r}; choose one of {', '.join(INITS)}")
        if self.scope not in ("layer", "global"):
            raise UserError(f"scope must be 'layer' or 'global', got {self.scope!r}")


def initialise(model: nn.Module, scheme: str) -> nn.Module:
    """Re-draw the Linear/Conv weights of ``model`` with ``scheme`` from torch's global RNG (in place).

    ``glorot-normal``: ``W ~ N(0, 2 / (fan_in + fan_out))``, biases 0 (Frankle & Carbin's Gaussian
    Glorot); ``kaiming-normal``: ``W ~ N(0, 2 / fan_in)``, biases as PyTorch draws them (open_lth);
    ``torch-default``: PyTorch's own ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases.
    """
    if scheme not in INITS:
        raise UserError(f"unknown initialisation {scheme!r}; choose one of {', '.join(INITS)}")
    if scheme == "torch-default":
        return model
    with torch.no_grad():
        for module in prunable_weights(model).values():
            if scheme == "glorot-normal":
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
            else:
                nn.init.kaiming_normal_(module.weight)
    return model


def parse_list(text: str, kind=float) -> list:
    try:
        return [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UserError(f"expected a comma-separated list, got {text!r}") from None


def output_rate(options: LTHOptions) -> float:
    rate = options.prune_rate / 2 if options.output_rate < 0 else options.output_rate
    if not 0 <= rate < 1:
        raise UserError(f"output_rate must be in [0, 1) (or -1: half of prune_rate), got {options.output_rate}")
    return rate


def layer_rates(names: list[str], options: LTHOptions) -> dict[str, float]:
    """Per-layer pruning fraction per round: ``p``, the last (output) layer :func:`output_rate`."""
    if not 0 < options.prune_rate < 1:
        raise UserError(f"prune_rate must be in (0, 1), got {options.prune_rate}")
    out = output_rate(options)
    return {n: (out if i == len(names) - 1 else options.prune_rate) for i, n in enumerate(names)}


def prune_round(scores: dict, masks: dict, options: LTHOptions) -> dict[str, torch.Tensor]:
    """One IMP pruning step on the survivors of ``masks`` (module docstring for the output layer)."""
    names = list(scores)
    if options.scope == "layer":
        return prune_surviving(scores, masks, layer_rates(names, options), "layer")
    ranked = names[:-1] if output_rate(options) == 0 else names
    out = prune_surviving({n: scores[n] for n in ranked}, {n: masks[n] for n in ranked}, options.prune_rate, "global")
    return {n: out[n] if n in out else masks[n].bool() for n in names}


def sparsity_schedule(shapes: dict, options: LTHOptions, max_rounds: int = 200) -> list[float]:
    """Total sparsity after rounds 0, 1, ..., ``max_rounds`` (the integer counts IMP will keep)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    total, names = sum(sizes.values()), list(sizes)
    rates = layer_rates(names, options)
    alive = dict(sizes)
    fixed = sizes[names[-1]] if output_rate(options) == 0 else 0  # global: the unranked output layer
    ranked = total - fixed
    out = [0.0]
    for _ in range(max_rounds):
        if options.scope == "global":
            ranked -= int(round(options.prune_rate * ranked))
            out.append(1 - (ranked + fixed) / total)
        else:
            alive = {n: a - int(round(rates[n] * a)) for n, a in alive.items()}
            out.append(1 - sum(alive.values()) / total)
    return out


def closest_round(schedule: list[float], sparsity: float) -> int:
    return min(range(1, len(schedule)), key=lambda r: (abs(schedule[r] - sparsity), r))


def data_seed(seed: int, round_: int) -> int:
    """The data-order seed of IMP round ``round_`` (and of its controls): ``seed + 1009 round_``."""
    return seed + 1009 * round_


def total_steps(config, n_train: int) -> int:
    """``T``: the loop's step count for ``config`` on ``n_train`` examples."""
    if config.max_steps > 0:
        return config.max_steps
    return max(1, math.ceil(config.epochs * max(1, n_train // config.batch_size)))


class RewindSaver:
    """Training-loop callback: saves the (dense) weights after ``step`` optimizer steps to ``path``."""

    def __init__(self, step: int, path: Path):
        self.step, self.path = step, Path(path)

    def after_step(self, state) -> None:
        if state.step == self.step and is_main():
            save_torch({k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()}, self.path)


def masked_model(model_name: str, dense_state: dict, masks: dict | None, classes: int | None = None) -> nn.Module:
    """``model_name`` holding exactly ``dense_state`` (rewound weights), then ``masks`` applied."""
    model = build_model(model_name, classes)
    load_masked_state_dict(model, dense_state)
    if masks is not None:
        apply_masks(model, masks)
    return model


def magnitudes(model_name: str, state: dict, classes: int | None = None) -> dict[str, torch.Tensor]:
    model = build_model(model_name, classes)
    load_masked_state_dict(model, state)
    return {n: m.weight.detach().abs() for n, m in prunable_weights(model).items()}


def load_or_make(path: Path, make) -> dict[str, torch.Tensor]:
    """``path``'s tensors; made by ``make()`` and saved first when missing (by rank 0 alone; all ranks read it)."""
    if not first_rank_says(path.exists()):
        if is_main():
            save_torch(make(), path)
        barrier()
    return load_tensors(path, "mask or initial weights")
