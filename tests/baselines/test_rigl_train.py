"""RigL/SET inside the shared training loop: exact counts, gradient growth, zeros, exact resume."""

import math
from types import SimpleNamespace

import pytest
import torch

from greedyprune.baselines.common import load_splits
from greedyprune.baselines.dynamic import drop_fraction, is_update_step
from greedyprune.baselines.rigl import DynamicOptions, DynamicSparsity, initial_masks
from greedyprune.models import build_model
from greedyprune.sparse import apply_masks, get_masks, mask_counts, mask_module, prunable_weights, raw_weight
from greedyprune.train import TrainConfig, train

CONFIG = TrainConfig(max_steps=40, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant", weight_decay=1e-4,
                     eval_every=20, checkpoint_every=5)


@pytest.fixture(scope="module")
def splits():
    return load_splits("random:1x28x28")


def sparse_model(seed=0, sparsity=0.9):
    torch.manual_seed(seed)
    model = build_model("lenet300-100")
    apply_masks(model, initial_masks(model, DynamicOptions(sparsity=sparsity), seed))
    return model


def optimizer_state(state, raw):
    """The per-element optimizer state tensors of ``raw`` (Adam: exp_avg, exp_avg_sq), cloned."""
    return {k: v.clone() for k, v in state.optimizer.state[raw].items() if v.shape == raw.shape}


class Before:
    """Snapshot mask, |W|, the captured dense gradient, W_orig and its optimizer state before the RigL update."""

    def __init__(self, rigl):
        self.rigl, self.snap = rigl, None

    def after_backward(self, state):
        self.snap = None
        if self.rigl._due(state.step):
            self.step = state.step
            self.snap = {n: (mask_module(state.model, n).mask.bool().clone(), m.weight.detach().abs().clone(),
                             mask_module(state.model, n).dense_grad.abs().clone(),
                             raw_weight(state.model, n).detach().clone(),
                             optimizer_state(state, raw_weight(state.model, n)))
                         for n, m in prunable_weights(state.model).items()}


class After:
    """Check the update against the definition and the zeros after every optimizer step."""

    def __init__(self, before, counts):
        self.before, self.counts, self.updates = before, counts, 0
        self.new, self.regrown = 0, 0  # totals over all updates, so the test knows both cases occurred

    def after_backward(self, state):
        masks = get_masks(state.model)
        assert mask_counts(masks) == self.counts  # exact per-layer counts, at every step
        if self.before.snap is None:
            return
        self.updates += 1
        fraction = drop_fraction(self.before.step, 0.3, self.before.rigl.end_step)
        for name, (old, mag, grad, raw_before, opt_before) in self.before.snap.items():
            # reference by sorting: K' = the k - n largest |W| of the active, G = the n largest |dL/dW| outside K'
            k = int(old.sum())
            n = math.floor(fraction * k)
            active = old.flatten().nonzero().squeeze(1)
            kept = active[mag.flatten()[active].argsort(descending=True)[: k - n]]
            lifted = grad.flatten().clone()
            lifted[kept] = -1.0
            grown = lifted.argsort(descending=True)[:n]
            expected = torch.zeros(old.numel(), dtype=torch.bool)
            expected[kept] = True
            expected[grown] = True
            assert torch.equal(masks[name].flatten(), expected), name
            # right after the update (before the optimizer step): new connections (outside the old mask)
            # start with weight, gradient and optimizer state exactly zero ...
            raw = raw_weight(state.model, name)
            new = masks[name] & ~old
            stays = masks[name] & old  # kept and regrown (dropped by magnitude, chosen again by gradient)
            regrown = torch.zeros(old.numel(), dtype=torch.bool)
            regrown[grown] = True
            regrown = regrown.view_as(old) & old
            self.new += int(new.sum())
            self.regrown += int(regrown.sum())
            opt_after = optimizer_state(state, raw)
            # Adam: exp_avg, exp_avg_sq (none yet at the step-0 update, before the first optimizer step)
            assert opt_after.keys() == opt_before.keys() and (bool(opt_after) or state.optimizer_steps == 0)
            assert torch.equal(raw.detach()[new], torch.zeros(int(new.sum()))), name
            assert torch.equal(raw.grad[new], torch.zeros(int(new.sum()))), name
            for key, value in opt_after.items():
                assert torch.equal(value[new], torch.zeros(int(new.sum()))), (name, key)
                # ... while regrown entries keep theirs, like every entry that stays in the mask
                assert torch.equal(value[stays], opt_before[key][stays]), (name, key)
            assert torch.equal(raw.detach()[stays], raw_before[stays]), name
            assert bool((raw.detach()[regrown] != 0).all()), name

    def after_step(self, state):
        for name, mask in get_masks(state.model).items():
            raw = raw_weight(state.model, name)
            assert torch.equal(raw.detach()[~mask], torch.zeros(int((~mask).sum())))
            for value in state.optimizer.state[raw].values():
                if value.shape == raw.shape:
                    assert torch.equal(value[~mask], torch.zeros(int((~mask).sum())))


def test_rigl_in_training_loop_keeps_counts_and_grows_by_gradient(splits, tmp_path):
    model = sparse_model()
    counts = mask_counts(get_masks(model))
    rigl = DynamicSparsity("gradient", interval=5, alpha=0.3, end_fraction=0.75, seed=0)
    before = Before(rigl)
    after = After(before, counts)
    train(model, splits.train, CONFIG, callbacks=[before, rigl, after], progress=False)
    expected = [t for t in range(40) if is_update_step(t, 5, 30)]
    assert after.updates == len(expected) == len(rigl.log)
    assert [row[0] for row in rigl.log] == expected
    assert all(row[1] > 0 for row in rigl.log)
    assert after.new > 0 and after.regrown > 0  # both kinds of growth happened (fc3 is dense under ERK at 90%)
    assert mask_counts(get_masks(model)) == counts


def test_update_resets_only_new_connections_and_keeps_regrown_ones(splits):
    """One RigL update on a model whose inactive entries hold non-zero W_orig and optimizer state.

    In training those entries are already zero, so only this set-up can tell "reset the new
    connections" from "reset nothing but the dropped ones".
    """
    model = sparse_model()
    old = get_masks(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = splits.train[0][0].unsqueeze(0).repeat(8, 1, 1, 1), torch.arange(8) % 10
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    g = torch.Generator().manual_seed(3)
    before = {}
    for name, mask in old.items():
        raw = raw_weight(model, name)
        with torch.no_grad():
            raw[~mask] = torch.rand(int((~mask).sum()), generator=g) + 1  # stale values where inactive
            for value in optimizer.state[raw].values():
                if value.shape == raw.shape:
                    value.copy_(torch.rand(raw.shape, generator=g) + 1)
        before[name] = (raw.detach().clone(), optimizer_state(SimpleNamespace(optimizer=optimizer), raw))
    rigl = DynamicSparsity("gradient", interval=5, alpha=0.3, end_fraction=0.75)
    state = SimpleNamespace(model=model, optimizer=optimizer, step=5, total_steps=40)
    rigl.on_train_begin(state)  # step 5 is an update step: the dense gradient is captured
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    rigl.after_backward(state)
    new_total = regrown_total = 0
    for name, mask in get_masks(model).items():
        raw, (raw_before, opt_before) = raw_weight(model, name), before[name]
        opt_after = optimizer_state(state, raw)
        new, stays, dropped = mask & ~old[name], mask & old[name], old[name] & ~mask
        new_total += int(new.sum())
        for where, expected in ((new, 0.0), (dropped, 0.0)):
            assert torch.equal(raw.detach()[where], torch.full((int(where.sum()),), expected)), name
            for key, value in opt_after.items():
                assert torch.equal(value[where], torch.zeros(int(where.sum()))), (name, key)
        assert torch.equal(raw.detach()[stays], raw_before[stays]), name
        for key, value in opt_after.items():
            assert torch.equal(value[stays], opt_before[key][stays]), (name, key)
        # regrown = dropped by magnitude (the smallest |W| of the old mask) and chosen again
        k, n = int(old[name].sum()), math.floor(drop_fraction(5, 0.3, 30) * int(old[name].sum()))
        regrown_total += int(stays.sum()) - (k - n)  # stays = the k - n kept + the regrown
        assert int(stays.sum()) >= k - n and int(new.sum()) <= n
    assert new_total > 0 and regrown_total > 0


class Interrupt:
    def __init__(self, at):
        self.at = at

    def after_step(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("growth", ["gradient", "random"])
def test_dynamic_sparse_run_resumes_bit_identically(splits, tmp_path, growth):
    full = sparse_model()
    train(full, splits.train, CONFIG, run_dir=tmp_path / "full", progress=False,
          callbacks=[DynamicSparsity(growth, interval=5, seed=0), Interrupt(-1)])
    killed = sparse_model()
    with pytest.raises(KeyboardInterrupt):
        train(killed, splits.train, CONFIG, run_dir=tmp_path / "killed", progress=False,
              callbacks=[DynamicSparsity(growth, interval=5, seed=0), Interrupt(17)])
    resumed = sparse_model()  # fresh process: same construction, state comes from the checkpoint at step 15
    train(resumed, splits.train, CONFIG, run_dir=tmp_path / "killed", progress=False,
          callbacks=[DynamicSparsity(growth, interval=5, seed=0), Interrupt(-1)])
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
