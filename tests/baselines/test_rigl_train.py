"""RigL/SET inside the shared training loop: exact counts, gradient growth, zeros, exact resume."""

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


class Before:
    """Snapshot mask, |W| and the captured dense gradient before the RigL update."""

    def __init__(self, rigl):
        self.rigl, self.snap = rigl, None

    def after_backward(self, state):
        self.snap = None
        if self.rigl._due(state.step):
            self.step = state.step
            self.snap = {n: (mask_module(state.model, n).mask.bool().clone(), m.weight.detach().abs().clone(),
                             mask_module(state.model, n).dense_grad.abs().clone())
                         for n, m in prunable_weights(state.model).items()}


class After:
    """Check the update against the definition and the zeros after every optimizer step."""

    def __init__(self, before, counts):
        self.before, self.counts, self.updates = before, counts, 0

    def after_backward(self, state):
        masks = get_masks(state.model)
        assert mask_counts(masks) == self.counts  # exact per-layer counts, at every step
        if self.before.snap is None:
            return
        self.updates += 1
        fraction = drop_fraction(self.before.step, 0.3, self.before.rigl.end_step)
        for name, (old, mag, grad) in self.before.snap.items():
            # reference by sorting: K' = the k - n largest |W| of the active, G = the n largest |dL/dW| outside K'
            k = int(old.sum())
            n = round(fraction * k)
            active = old.flatten().nonzero().squeeze(1)
            kept = active[mag.flatten()[active].argsort(descending=True)[: k - n]]
            lifted = grad.flatten().clone()
            lifted[kept] = -1.0
            grown = lifted.argsort(descending=True)[:n]
            expected = torch.zeros(old.numel(), dtype=torch.bool)
            expected[kept] = True
            expected[grown] = True
            assert torch.equal(masks[name].flatten(), expected), name
            # grown weights (including re-grown just-dropped ones) start at exactly zero
            assert torch.equal(raw_weight(state.model, name).detach().flatten()[grown], torch.zeros(n))

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
    assert mask_counts(get_masks(model)) == counts


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
