"""RigL as google-research/rigl runs it: an update at step 0 with the full alpha, no optimizer step on update
iterations, RigL's uniform (first layer dense) and ERK's power scale."""

import math

import pytest
import torch

from greedyprune.baselines.common import load_splits
from greedyprune.baselines.dynamic import drop_fraction
from greedyprune.baselines.rigl import DynamicOptions, DynamicSparsity, initial_counts, initial_masks
from greedyprune.models import build_model
from greedyprune.sparse import apply_masks, get_masks, raw_weight, weight_shapes
from greedyprune.sparse.density import layer_densities
from greedyprune.train import TrainConfig, train

CONFIG = TrainConfig(max_steps=20, batch_size=32, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine",
                     weight_decay=1e-3, eval_every=0, checkpoint_every=0)


@pytest.fixture(scope="module")
def splits():
    return load_splits("random:1x28x28")


def sparse_model(seed=0):
    torch.manual_seed(seed)
    model = build_model("lenet300-100")
    apply_masks(model, initial_masks(model, DynamicOptions(sparsity=0.9), seed))
    return model


class Watch:
    """Records, at every step, the raw weights and momentum right after the mask update and after the step."""

    def __init__(self):
        self.after_update, self.after_step_ = {}, {}

    @staticmethod
    def snapshot(state):
        out = {}
        for name in get_masks(state.model):
            raw = raw_weight(state.model, name)
            buf = state.optimizer.state.get(raw, {}).get("momentum_buffer")
            out[name] = (raw.detach().clone(), None if buf is None else buf.clone())
        return out

    def after_backward(self, state):
        self.after_update[state.step] = (self.snapshot(state), get_masks(state.model))

    def after_step(self, state):
        self.after_step_[state.step - 1] = self.snapshot(state)


def test_first_update_is_at_step_zero_with_the_full_drop_fraction(splits):
    model = sparse_model()
    initial = {n: m.clone() for n, m in get_masks(model).items()}
    rigl = DynamicSparsity("gradient", interval=5, alpha=0.3, end_fraction=0.75)
    train(model, splits.train, CONFIG, callbacks=[rigl], progress=False)
    assert [row[0] for row in rigl.log] == [0, 5, 10]  # T_end = 15
    assert drop_fraction(0, 0.3, 15) == pytest.approx(0.3)
    # the step-0 update moved floor(0.3 k) connections per sparse layer (fc3 is dense under ERK at 90%)
    first = get_masks(model)
    assert any(not torch.equal(first[n], initial[n]) for n in initial)
    assert rigl.log[0][1] > 0


def test_update_iterations_take_no_optimizer_step(splits):
    model = sparse_model()
    rigl, watch = DynamicSparsity("gradient", interval=5, alpha=0.3, end_fraction=0.75), Watch()
    result = train(model, splits.train, CONFIG, callbacks=[rigl, watch], progress=False)
    updates = [row[0] for row in rigl.log]
    assert updates == [0, 5, 10] and result.optimizer_steps == CONFIG.max_steps - len(updates)
    for step in range(CONFIG.max_steps):
        before, after = watch.after_update[step][0], watch.after_step_[step]
        moved = any(not torch.equal(before[n][0], after[n][0]) for n in before)
        # an update iteration leaves weights and momentum exactly as the mask update left them ...
        assert moved == (step not in updates), step
        if step in updates:
            for name, (weight, buf) in before.items():
                assert torch.equal(after[name][0], weight) and (buf is None or torch.equal(after[name][1], buf))
    # ... and the schedule still advances on them: 20 scheduler steps, the last lr is the cosine's at step 19
    assert model is not None and math.isclose(result.history[-1]["lr"], 0.05 * 0.5 * (1 + math.cos(math.pi)), abs_tol=1e-12)
    # the old behaviour (optimizer step also on update iterations) stays available as an option
    legacy = sparse_model()
    rigl_old = DynamicSparsity("gradient", interval=5, alpha=0.3, end_fraction=0.75, skip_optimizer_step=False)
    assert train(legacy, splits.train, CONFIG, callbacks=[rigl_old], progress=False).optimizer_steps == 20


def test_uniform_keeps_the_first_layer_dense_as_rigl():
    shapes = weight_shapes(build_model("small-cnn"))
    counts = initial_counts(shapes, DynamicOptions(sparsity=0.8, distribution="uniform"))
    names = list(shapes)
    assert counts[names[0]] == math.prod(shapes[names[0]])  # dense first layer
    assert all(counts[n] == round(0.2 * math.prod(shapes[n])) for n in names[1:])  # the others at s each
    assert initial_counts(shapes, DynamicOptions(sparsity=0.8, distribution="uniform", dense_first="no")) == \
        {n: round(0.2 * math.prod(shapes[n])) for n in names}
    # ERK: nothing forced by default
    erk = initial_counts(shapes, DynamicOptions(sparsity=0.8))
    assert sum(erk.values()) == round(0.2 * sum(math.prod(s) for s in shapes.values()))


def test_erk_power_scale_against_a_direct_solve():
    shapes = weight_shapes(build_model("small-cnn"))
    for power in (1.0, 0.5):
        d = layer_densities(shapes, 0.1, "erk", erk_power_scale=power)
        raw = {n: (sum(s) / math.prod(s)) ** power for n, s in shapes.items()}
        dense = {n for n, v in d.items() if v == 1.0}
        rest = [n for n in shapes if n not in dense]
        # the sparse layers share one eps: d_l = eps raw_l, and the total is exact
        eps = {d[n] / raw[n] for n in rest}
        assert max(eps) - min(eps) < 1e-12 * max(eps)
        total = sum(d[n] * math.prod(shapes[n]) for n in shapes)
        assert total == pytest.approx(0.1 * sum(math.prod(s) for s in shapes.values()))
    flat = layer_densities(shapes, 0.1, "erk", erk_power_scale=0.5)
    steep = layer_densities(shapes, 0.1, "erk")
    assert flat != steep and DynamicOptions().erk_power_scale == 1.0
