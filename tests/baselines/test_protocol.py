"""Ma et al.'s two-recipe protocol: ticket, reinit and random mask trained under both recipes, verdict per recipe."""

import pytest

from greedyprune.baselines.common import load_splits
from greedyprune.baselines.imp import LTHOptions
from greedyprune.baselines.protocol import RecipeGroups, groups_at_round, run_two_recipe_lth, two_recipe_verdict
from greedyprune.errors import UserError
from greedyprune.train import TrainConfig

DENSE = [0.890, 0.892]


def test_winning_ticket_means_winning_under_the_well_tuned_recipe():
    # the classic artefact: the ticket beats reinit clearly under Adam, not under tuned SGD
    adam = RecipeGroups(DENSE, [0.897, 0.898], [0.870, 0.872], [0.860, 0.861], 100, 100)
    sgd = RecipeGroups([0.900, 0.901], [0.899, 0.900], [0.899, 0.901], [0.880, 0.882], 100, 100)
    v = two_recipe_verdict({"adam": adam, "sgd": sgd}, small_lr="adam", well_tuned="sgd")
    assert v.per_recipe["sgd"].reinit_test == "fails" and not v.winning_ticket
    assert v.status == "not a winning ticket (wins only under the small-lr recipe 'adam')"
    # under Adam the ticket beats reinit, but condition 1 compares it with the better (SGD) dense model
    assert v.per_recipe["adam"].beats_reinit and v.per_recipe["adam"].numbers["best_dense"] == pytest.approx(0.9005)
    assert v.random_mask["sgd"]["test"] == "holds" and v.random_mask["adam"]["test"] == "holds"
    # when the ticket also wins under the tuned recipe, it is a winning ticket
    sgd_win = RecipeGroups([0.900, 0.901], [0.902, 0.903], [0.880, 0.882], [], 100, 100)
    assert two_recipe_verdict({"adam": adam, "sgd": sgd_win}, small_lr="adam", well_tuned="sgd").winning_ticket
    # a "well-tuned" recipe whose dense net is worse than the small-lr one is not well tuned
    weak = RecipeGroups([0.850, 0.852], [0.86, 0.861], [0.80, 0.801], [], 100, 100)
    assert two_recipe_verdict({"adam": adam, "sgd": weak}, small_lr="adam", well_tuned="sgd").status == "inconclusive"
    with pytest.raises(UserError):
        two_recipe_verdict({"adam": adam}, small_lr="adam", well_tuned="sgd")


def test_protocol_trains_ticket_reinit_and_random_under_both_recipes(tmp_path):
    splits = load_splits("random:1x28x28")
    base = dict(max_steps=10, batch_size=32, eval_every=5, checkpoint_every=0)
    recipes = {"adam": TrainConfig(optimizer="adam", lr=1e-3, schedule="constant", weight_decay=0, **base),
               "sgd": TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, schedule="cosine", weight_decay=1e-4, **base)}
    options = LTHOptions(rounds=2, controls="reinit,random", control_sparsities="0.2,0.36")
    result = run_two_recipe_lth("lenet300-100", splits, recipes, options, tmp_path, seeds=[0, 1], small_lr="adam",
                                well_tuned="sgd", rounds_to_judge=[1, 2])
    for name, summaries in result["summaries"].items():
        assert len(summaries) == 2
        for summary in summaries:  # every run of a recipe trained with that recipe's optimizer
            runs = summary["rounds"] + summary["controls"]
            assert {r["optimizer"] for r in runs} == {recipes[name].optimizer}
            assert sorted((c["control"], c["round"]) for c in summary["controls"]) == \
                [("random", 1), ("random", 2), ("reinit", 1), ("reinit", 2)]
        # each recipe finds its own ticket: the masks of the two recipes differ (different trained weights)
    masks = [(tmp_path / name / "seed0" / "round_02" / "mask.pt").read_bytes() for name in recipes]
    assert masks[0] != masks[1]
    for r in (1, 2):
        verdict = result["verdicts"][r]
        assert set(verdict.per_recipe) == {"adam", "sgd"} and set(verdict.random_mask) == {"adam", "sgd"}
        groups = groups_at_round(result["summaries"]["sgd"], r)
        assert len(groups.ticket) == len(groups.reinit) == len(groups.random) == 2
        assert verdict.per_recipe["sgd"].numbers["ticket"] == groups.ticket
