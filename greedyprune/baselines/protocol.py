"""Ma et al.'s (NeurIPS 2021) protocol for calling an IMP subnetwork a winning ticket: two training recipes.

Tickets are known to beat random re-initialisation under small-learning-rate recipes (Frankle &
Carbin's Adam 1.2e-3) and to lose that edge under a well-tuned recipe (SGD with momentum, a large
learning rate and a decaying schedule). So the whole IMP experiment -- dense run, pruning rounds, and
the ``reinit`` and ``random`` controls -- is run once per recipe (each recipe finds its own ticket), and
:func:`two_recipe_verdict` applies both sanity checks of
:func:`~greedyprune.baselines.verdict.winning_ticket_verdict` under each recipe, with the better dense
model of the two recipes as the well-trained reference of condition 1.

"Winning ticket" then means what the paper means: the verdict holds **under the well-tuned recipe**.
A ticket that wins only under the small-lr recipe is reported as "not a winning ticket (wins only under
the small-lr recipe)". If the "well-tuned" recipe trains the dense network worse than the small-lr one
(by more than the tolerance), it is not well tuned and the overall verdict is "inconclusive".

The random-mask control (random mask with the ticket's per-layer counts, rewound weights) is tested
the same way as reinit (one-sided t-test of ticket - random with the pooled seed noise) and reported
beside the verdict; it is not one of Ma et al.'s two conditions.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import UserError
from ..train import TrainConfig
from .lth import LTHOptions, run_lth
from .verdict import Verdict, winning_ticket_verdict


@dataclass
class RecipeGroups:
    """Per-seed accuracies (fractions) of one recipe at one IMP round, and the steps each trained."""

    dense: Sequence[float]
    ticket: Sequence[float]
    reinit: Sequence[float]
    random: Sequence[float] = ()
    dense_steps: int = 0
    ticket_steps: int = 0


@dataclass
class ProtocolVerdict:
    status: str
    winning_ticket: bool
    per_recipe: dict[str, Verdict]
    random_mask: dict[str, dict] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "per_recipe": {k: v.to_dict() for k, v in self.per_recipe.items()}}

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(self.reasons)


def two_recipe_verdict(groups: Mapping[str, RecipeGroups], *, small_lr: str, well_tuned: str,
                       tolerance: float = 0.005, confidence: float = 0.95) -> ProtocolVerdict:
    """Both Ma et al. conditions under each recipe; the overall verdict is the well-tuned recipe's."""
    missing = [r for r in (small_lr, well_tuned) if r not in groups]
    if missing or small_lr == well_tuned:
        raise UserError(f"the two-recipe protocol needs a small-lr and a different well-tuned recipe; "
                        f"missing {missing} among {sorted(groups)}")
    best_dense = max(statistics.fmean(g.dense) for g in groups.values())
    per_recipe, random_mask = {}, {}
    for name, g in groups.items():
        per_recipe[name] = winning_ticket_verdict(g.dense, g.ticket, g.reinit, dense_steps=g.dense_steps,
                                                  ticket_steps=g.ticket_steps, tolerance=tolerance,
                                                  confidence=confidence, well_trained_reference=best_dense)
        if g.random:
            vs = winning_ticket_verdict(g.dense, g.ticket, g.random, dense_steps=g.dense_steps,
                                        ticket_steps=g.ticket_steps, tolerance=tolerance, confidence=confidence)
            random_mask[name] = {"test": vs.reinit_test, "ticket_minus_random": vs.numbers["ticket_minus_reinit"],
                                 "t": vs.numbers["t"], "p_value": vs.numbers["p_value"],
                                 "random_mean": vs.numbers["reinit_mean"], "reason": vs.reasons[1]}
    tuned, small = per_recipe[well_tuned], per_recipe[small_lr]
    gap = statistics.fmean(groups[well_tuned].dense) - statistics.fmean(groups[small_lr].dense)
    reasons = [f"{name}: {v}" for name, v in per_recipe.items()]
    if gap < -tolerance:
        status = "inconclusive"
        reasons.insert(0, f"the '{well_tuned}' recipe trains the dense net {100 * -gap:.2f} pp worse than "
                          f"'{small_lr}': it is not well tuned")
    elif tuned.status == "winning ticket":
        status = "winning ticket"
    elif tuned.status == "inconclusive":
        status = "inconclusive"
    elif small.status == "winning ticket":
        status = f"not a winning ticket (wins only under the small-lr recipe '{small_lr}')"
    else:
        status = "not a winning ticket"
    return ProtocolVerdict(status, status == "winning ticket", per_recipe, random_mask, reasons)


def groups_at_round(summaries: Sequence[dict], round_: int, metric: str = "test_acc") -> RecipeGroups:
    """:class:`RecipeGroups` of one recipe from its per-seed :func:`run_lth` summaries at IMP round ``round_``."""
    def controls(kind):
        found = [c for s in summaries for c in s["controls"] if c["control"] == kind and c["round"] == round_]
        return found

    tickets = [s["rounds"][round_] for s in summaries]
    reinit, random = controls("reinit"), controls("random")
    if len(reinit) != len(summaries):
        raise UserError(f"round {round_} has reinit controls for {len(reinit)} of {len(summaries)} seeds; run them")
    dense = [s["rounds"][0] for s in summaries]
    return RecipeGroups([d[metric] for d in dense], [t[metric] for t in tickets], [c[metric] for c in reinit],
                        [c[metric] for c in random], dense_steps=min(d["trained_steps"] for d in dense),
                        ticket_steps=max(x["trained_steps"] for x in tickets + reinit + random))


def run_two_recipe_lth(model_name: str, splits, recipes: Mapping[str, TrainConfig], options: LTHOptions,
                       out: str | Path, seeds: Sequence[int], *, small_lr: str, well_tuned: str,
                       rounds_to_judge: Sequence[int], metric: str = "test_acc", progress: bool = False) -> dict:
    """IMP with reinit and random controls under every recipe and seed, then the verdict at each judged round.

    Runs live in ``out/<recipe>/seed<s>`` (resumable). Returns ``{"summaries": {recipe: [summary per seed]},
    "verdicts": {round: ProtocolVerdict}}``.
    """
    summaries = {name: [run_lth(model_name, splits, config.replace(seed=seed), options,
                                Path(out) / name / f"seed{seed}", progress=progress) for seed in seeds]
                 for name, config in recipes.items()}
    verdicts = {r: two_recipe_verdict({name: groups_at_round(s, r, metric) for name, s in summaries.items()},
                                      small_lr=small_lr, well_tuned=well_tuned) for r in rounds_to_judge}
    return {"summaries": summaries, "verdicts": verdicts}
