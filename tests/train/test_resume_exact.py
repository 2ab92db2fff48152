"""Exact resumption: an interrupted-then-resumed run ends bit-identical to an uninterrupted one."""

import pytest
import torch
from torch import nn

from greedyprune.data import get_dataset
from greedyprune.errors import UserError
from greedyprune.io import load_checkpoint
from greedyprune.paths import checkpoint_path
from greedyprune.train import TrainConfig, train
from greedyprune.train.schedule import lr_factor

DATA = get_dataset("random:1x8x8", n=160, num_classes=4)
VAL = get_dataset("random:1x8x8", "val", n=64, num_classes=4)


def _model():
    torch.manual_seed(123)  # same initial weights for every run
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                         nn.Dropout(0.3), nn.Linear(6 * 64, 4))


class Counter:
    """A stateful callback: counts steps and sums gradient norms seen after backward."""

    def __init__(self):
        self.steps, self.grad_sum = 0, 0.0

    def after_backward(self, state):
        self.grad_sum += float(sum(p.grad.abs().sum() for p in state.model.parameters()))

    def after_step(self, state):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps, "grad_sum": self.grad_sum}

    def load_state_dict(self, d):
        self.steps, self.grad_sum = d["steps"], d["grad_sum"]


class Crash:
    """Simulates a kill: raises after optimizer step ``at`` (after the checkpoint of an earlier step)."""

    def __init__(self, at):
        self.at = at

    def after_step(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt("simulated kill")


def _config(optimizer, **kw):
    kw.setdefault("eval_every", 4)
    return TrainConfig(max_steps=13, batch_size=32, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-2,
                       warmup_steps=3, weight_decay=1e-3, label_smoothing=0.1, seed=7, **kw)


def _assert_identical(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_interrupted_run_resumes_bit_identical(tmp_path, optimizer):
    straight, counter = _model(), Counter()
    expected = train(straight, DATA, _config(optimizer), run_dir=tmp_path / "a", val_set=VAL, callbacks=[counter],
                     progress=False)
    assert expected.steps == 13 and counter.steps == 13

    # 5 steps per epoch; checkpoint every 4 steps, crash at step 10 -> resume from step 8 (in epoch 1)
    model, counter2 = _model(), Counter()
    with pytest.raises(KeyboardInterrupt):
        train(model, DATA, _config(optimizer, checkpoint_every=4), run_dir=tmp_path / "b", val_set=VAL,
              callbacks=[counter2, Crash(10)], progress=False)
    assert load_checkpoint(checkpoint_path(tmp_path / "b"))["step"] == 8
    resumed_model, counter3 = _model(), Counter()
    torch.manual_seed(999)  # the global RNG is disturbed: the checkpoint must restore it (dropout)
    result = train(resumed_model, DATA, _config(optimizer, checkpoint_every=4), run_dir=tmp_path / "b", val_set=VAL,
                   callbacks=[counter3, Crash(-1)], progress=False)
    assert result.steps == 13
    _assert_identical(straight.state_dict(), resumed_model.state_dict())
    assert result.history == expected.history
    assert counter3.steps == 13 and counter3.grad_sum == counter.grad_sum
    a = load_checkpoint(checkpoint_path(tmp_path / "a"))["optimizer"]["state"]
    b = load_checkpoint(checkpoint_path(tmp_path / "b"))["optimizer"]["state"]
    for index in a:
        _assert_identical(a[index], b[index])


def test_finished_run_returns_at_once_and_resume_false_restarts(tmp_path):
    first = _model()
    done = train(first, DATA, _config("sgd"), run_dir=tmp_path, val_set=VAL, progress=False)
    again = _model()
    counter = Counter()
    repeat = train(again, DATA, _config("sgd"), run_dir=tmp_path, val_set=VAL, callbacks=[counter], progress=False)
    assert counter.steps == 0 and repeat.history == done.history
    _assert_identical(first.state_dict(), again.state_dict())
    fresh, counter = _model(), Counter()
    train(fresh, DATA, _config("sgd"), run_dir=tmp_path, callbacks=[counter], resume=False, progress=False)
    assert counter.steps == 13


def test_checkpoint_of_another_run_is_refused(tmp_path):
    train(_model(), DATA, _config("sgd"), run_dir=tmp_path, progress=False)
    with pytest.raises(UserError, match="different run .*lr 0.05 there, 0.1 now"):
        train(_model(), DATA, _config("sgd").replace(lr=0.1), run_dir=tmp_path, progress=False)
    # runtime-only settings may change
    train(_model(), DATA, _config("sgd").replace(eval_every=2, checkpoint_every=3), run_dir=tmp_path, progress=False)


def test_history_early_stop_and_epochs():
    result = train(_model(), DATA, TrainConfig(epochs=2.5, batch_size=32, lr=0.05, eval_every=2), val_set=VAL,
                   progress=False)
    assert result.steps == 13  # ceil(2.5 * (160 // 32))
    assert [h["step"] for h in result.history] == [2, 4, 6, 8, 10, 12, 13]
    best = min(result.history, key=lambda h: h["val_loss"])
    assert result.early_stop_step == best["step"]
    assert all(0 <= h["val_acc"] <= 1 and h["train_loss"] > 0 for h in result.history)
    no_val = train(_model(), DATA, TrainConfig(max_steps=5, batch_size=32), progress=False)
    assert no_val.early_stop_step is None and [h["step"] for h in no_val.history] == [5]


def test_should_stop_and_lr_schedule():
    class Stop:
        def after_step(self, state):
            state.should_stop = state.step == 3
    lrs = []

    class Lr:
        def after_backward(self, state):
            lrs.append(state.lr)
    result = train(_model(), DATA, TrainConfig(max_steps=10, batch_size=32, lr=0.2, warmup_steps=2), callbacks=[Lr(), Stop()],
                   progress=False)
    assert result.steps == 3
    assert lrs == pytest.approx([0.1, 0.2, 0.2 * lr_factor(2, 10, 2, "cosine")])
    assert lr_factor(2, 10, 2, "cosine") == 1.0 and lr_factor(6, 10, 2, "cosine") == pytest.approx(0.5)
    assert lr_factor(9, 10, 2, "constant") == 1.0


def test_bad_config_and_device():
    with pytest.raises(UserError, match="lr must be"):
        train(_model(), DATA, TrainConfig(lr=-1), progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA requested but not available; use --device cpu"):
            train(_model(), DATA, TrainConfig(device="cuda"), progress=False)


def test_evaluation_and_checkpoint_cadence_do_not_change_the_weights(tmp_path):
    a, b = _model(), _model()
    train(a, DATA, _config("sgd", eval_every=1), val_set=VAL, progress=False)
    train(b, DATA, _config("sgd", eval_every=5, checkpoint_every=2), run_dir=tmp_path, progress=False)
    _assert_identical(a.state_dict(), b.state_dict())
