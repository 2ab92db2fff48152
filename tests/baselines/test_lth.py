"""IMP: exact rewinding, the LeNet-300-100 sparsity schedule, controls, and resume after a kill."""

import json

import pytest
import torch

from greedyprune.baselines import common
from greedyprune.baselines.common import load_splits, trained_state
from greedyprune.baselines.imp import initialise, masked_model as _model
from greedyprune.baselines.lth import LTHOptions, closest_round, data_seed, run_lth, sparsity_schedule
from greedyprune.io import load_checkpoint
from greedyprune.models import build_model
from greedyprune.sparse import get_masks, load_masked_state_dict, mask_counts, prunable_weights, weight_shapes
from greedyprune.train import TrainConfig, train

CONFIG = TrainConfig(max_steps=12, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant", weight_decay=0,
                     eval_every=4, checkpoint_every=3)
OPTIONS = LTHOptions(rounds=2, rewind_step=3, controls="reinit,random,oneshot")


@pytest.fixture(scope="module")
def splits():
    return load_splits("random:1x28x28")


def test_lenet_schedule_hits_frankle_pm_values():
    shapes = weight_shapes(build_model("lenet300-100"))
    schedule = sparsity_schedule(shapes, LTHOptions(output_rate=-1))  # the paper: output layer at p/2
    assert closest_round(schedule, 0.789) == 7 and 1 - schedule[7] == pytest.approx(0.211, abs=0.001)
    assert closest_round(schedule, 0.964) == 15 and 1 - schedule[15] == pytest.approx(0.036, abs=0.001)
    kept = sparsity_schedule(shapes, LTHOptions())  # open_lth's LeNet default: the output layer is never pruned
    assert closest_round(kept, 0.789) == 7 and 1 - kept[7] == pytest.approx((265200 * 0.8 ** 7 + 1000) / 266200, abs=1e-4)
    assert closest_round(kept, 0.964) == 15 and 1 - kept[15] == pytest.approx(0.0388, abs=0.0005)


def test_rewinding_restores_exactly_the_saved_weights(splits, tmp_path):
    summary = run_lth("lenet300-100", splits, CONFIG, OPTIONS, tmp_path, progress=False)
    theta_k = load_checkpoint(tmp_path / "rewind.pt")
    # theta_k is the dense run's state after k = 3 steps: an independent 3-step run gives the same tensors
    torch.manual_seed(CONFIG.seed)
    reference = initialise(build_model("lenet300-100"), "glorot-normal")  # theta_0: the seeded Gaussian Glorot draw
    model = build_model("lenet300-100")
    model.load_state_dict(load_checkpoint(tmp_path / "init.pt"))
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in model.state_dict().items())
    assert float(model[1].bias.detach().abs().sum()) == 0 and float(model[1].weight.detach().std()) == pytest.approx((2 / 1084) ** 0.5, rel=0.02)
    train(model, splits.train, CONFIG.replace(max_steps=3, eval_every=0, checkpoint_every=0), progress=False)
    for key, value in model.state_dict().items():
        assert torch.equal(value, theta_k[key]), key
    # the round-2 ticket starts from exactly theta_k on its mask (and theta_k where unmasked: biases)
    masks = load_checkpoint(tmp_path / "round_02" / "mask.pt")
    ticket = _model("lenet300-100", theta_k, masks)
    for name, module in prunable_weights(ticket).items():
        assert torch.equal(module.weight.detach(), theta_k[name] * masks[name])
    for key in ("1.bias", "3.bias", "5.bias"):
        assert torch.equal(ticket.state_dict()[key], theta_k[key])
    # the pruning is iterative: round 2's mask is inside round 1's; hidden layers lose 20%, the output layer
    # nothing (open_lth's LeNet default)
    first = load_checkpoint(tmp_path / "round_01" / "mask.pt")
    assert all(bool((masks[n] <= first[n]).all()) for n in masks)
    counts = mask_counts(first)
    assert counts == {"1.weight": 235200 - 47040, "3.weight": 30000 - 6000, "5.weight": 1000}
    # every control has the ticket's per-layer counts; they all train steps k .. T (T - k steps)
    assert len(summary["controls"]) == 3
    for entry in summary["controls"] + summary["rounds"][1:]:
        assert (entry["start_step"], entry["steps"]) == (OPTIONS.rewind_step, CONFIG.max_steps)
        assert entry["trained_steps"] == CONFIG.max_steps - OPTIONS.rewind_step
    for control in ("random", "oneshot"):
        assert mask_counts(load_checkpoint(tmp_path / "controls" / f"{control}_r02" / "mask.pt")) == mask_counts(masks)
    assert summary["controls"][0]["nonzero"] <= sum(mask_counts(masks).values())
    # each round has its own data order (seeded by the round), shared by that round's controls
    assert [e["data_seed"] for e in summary["rounds"]] == [0, 1009, 2018] == [data_seed(0, r) for r in range(3)]
    assert {e["data_seed"] for e in summary["controls"]} == {2018}
    # an early stop at the last validation point is flagged as censored (the minimum may lie beyond T)
    for entry in summary["rounds"] + summary["controls"]:
        assert entry["early_stop_censored"] == (entry["early_stop_step"] == entry["steps"])


def test_reinit_control_is_a_fresh_seeded_init_on_the_tickets_mask(splits, tmp_path):
    summary = run_lth("lenet300-100", splits, CONFIG, LTHOptions(rounds=2, controls="reinit"), tmp_path,
                      progress=False)
    assert [c["control"] for c in summary["controls"]] == ["reinit"]
    start = load_checkpoint(tmp_path / "controls" / "reinit_r02" / "start.pt")
    torch.manual_seed(CONFIG.seed + 1_000_003)  # a fresh initialisation (same scheme) with its own seed ...
    fresh = initialise(build_model("lenet300-100"), "glorot-normal").state_dict()
    assert start.keys() == fresh.keys() and all(torch.equal(start[k], fresh[k]) for k in fresh)
    theta0 = load_checkpoint(tmp_path / "init.pt")
    for key in ("1.weight", "3.weight", "5.weight"):  # ... unlike theta_0 (= theta_k here, k = 0): Glorot biases are 0
        assert float((start[key] == theta0[key]).float().mean()) < 0.01, key
    ticket_mask = load_checkpoint(tmp_path / "round_02" / "mask.pt")
    trained = trained_state(tmp_path / "controls" / "reinit_r02")
    control_mask = get_masks(load_masked_state_dict(build_model("lenet300-100"), trained))
    assert control_mask.keys() == ticket_mask.keys()
    assert all(torch.equal(control_mask[n], ticket_mask[n]) for n in ticket_mask)
    # the control trained from exactly that start on that mask, with round 2's budget (T, k = 0) and data order
    model = _model("lenet300-100", start, ticket_mask)
    train(model, splits.train, CONFIG.replace(seed=data_seed(CONFIG.seed, 2)), progress=False)
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())


def test_killed_lth_run_resumes_at_round_and_step(splits, tmp_path, monkeypatch):
    reference = run_lth("lenet300-100", splits, CONFIG, OPTIONS, tmp_path / "ref", progress=False)
    calls = {"n": 0}
    original = common.TestTracker.after_step

    def dying(self, state):
        calls["n"] += 1
        if calls["n"] == 20:  # inside round 1 (dense took 12 steps; round 1 runs steps 4..12), after its checkpoint at 9
            raise KeyboardInterrupt
        original(self, state)

    monkeypatch.setattr(common.TestTracker, "after_step", dying)
    with pytest.raises(KeyboardInterrupt):
        run_lth("lenet300-100", splits, CONFIG, OPTIONS, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "round_00" / "result.json").exists()
    assert not (tmp_path / "run" / "round_01" / "result.json").exists()
    assert load_checkpoint(tmp_path / "run" / "round_01" / "checkpoint.pt")["step"] == 9
    monkeypatch.setattr(common.TestTracker, "after_step", original)
    resumed = run_lth("lenet300-100", splits, CONFIG, OPTIONS, tmp_path / "run", progress=False)
    for a, b in zip(reference["rounds"] + reference["controls"], resumed["rounds"] + resumed["controls"]):
        assert a["test_acc"] == b["test_acc"] and a["early_stop_step"] == b["early_stop_step"]
    for run in ("round_02", "controls/oneshot_r02"):
        ref, res = trained_state(tmp_path / "ref" / run), trained_state(tmp_path / "run" / run)
        assert all(torch.equal(ref[k], res[k]) for k in ref)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2]


def test_global_scope_prunes_a_fraction_of_all_survivors(splits, tmp_path):
    options = LTHOptions(rounds=2, scope="global", controls="oneshot")  # open_lth's sparse_global, fc.weight ignored
    run_lth("lenet300-100", splits, CONFIG.replace(max_steps=4, eval_every=2), options, tmp_path, progress=False)
    first, second = (mask_counts(load_checkpoint(tmp_path / f"round_0{r}" / "mask.pt")) for r in (1, 2))
    assert first["5.weight"] == second["5.weight"] == 1000  # the output layer is not ranked
    hidden = [sum(v for n, v in c.items() if n != "5.weight") for c in (first, second)]
    assert hidden[0] == 265200 - round(0.2 * 265200) and hidden[1] == hidden[0] - round(0.2 * hidden[0])
    oneshot = mask_counts(load_checkpoint(tmp_path / "controls" / "oneshot_r02" / "mask.pt"))
    assert sum(oneshot.values()) == sum(second.values()) and oneshot["5.weight"] == 1000
    run_lth("lenet300-100", splits, CONFIG.replace(max_steps=4, eval_every=2),
            LTHOptions(rounds=1, scope="global", output_rate=-1, controls=""), tmp_path / "all", progress=False)
    ranked_all = mask_counts(load_checkpoint(tmp_path / "all" / "round_01" / "mask.pt"))
    assert sum(ranked_all.values()) == 266200 - round(0.2 * 266200)  # output layer ranked with the others


def test_paper_output_rate_prunes_the_output_layer_at_half_the_rate(splits, tmp_path):
    run_lth("lenet300-100", splits, CONFIG.replace(max_steps=4, eval_every=2),
            LTHOptions(rounds=1, output_rate=-1, controls=""), tmp_path, progress=False)
    counts = mask_counts(load_checkpoint(tmp_path / "round_01" / "mask.pt"))
    assert counts == {"1.weight": 235200 - 47040, "3.weight": 30000 - 6000, "5.weight": 1000 - 100}


def test_late_rewinding_resumes_schedule_and_data_order_from_k(splits, tmp_path):
    """open_lth's late rewinding: weights rewound to step k, schedule and batches continue from k.

    With stateless SGD (no momentum, no weight decay) the optimizer holds nothing, so retraining the dense
    net from theta_k over steps k .. T must land exactly on the uninterrupted run's weights; restarting
    the cosine schedule (or the data order) at k would not.
    """
    config = TrainConfig(max_steps=12, batch_size=32, optimizer="sgd", lr=0.2, momentum=0.0, nesterov=False,
                         schedule="cosine", weight_decay=0, eval_every=4)
    from greedyprune.baselines.imp import RewindSaver
    torch.manual_seed(0)
    dense = build_model("lenet300-100")
    start = {k: v.clone() for k, v in dense.state_dict().items()}
    train(dense, splits.train, config, callbacks=[RewindSaver(5, tmp_path / "theta5.pt")], progress=False)
    rewound = build_model("lenet300-100")
    rewound.load_state_dict(load_checkpoint(tmp_path / "theta5.pt"))
    assert not all(torch.equal(rewound.state_dict()[k], start[k]) for k in start)
    result = train(rewound, splits.train, config.replace(start_step=5), progress=False)
    assert (result.start_step, result.steps, result.optimizer_steps) == (5, 12, 7)
    for key, value in dense.state_dict().items():
        assert torch.allclose(rewound.state_dict()[key], value, rtol=0, atol=1e-6), key
    restarted = build_model("lenet300-100")
    restarted.load_state_dict(load_checkpoint(tmp_path / "theta5.pt"))
    train(restarted, splits.train, config.replace(max_steps=7), progress=False)  # the old behaviour: schedule restarts
    assert not torch.allclose(restarted[1].weight, dense[1].weight, rtol=0, atol=1e-6)
