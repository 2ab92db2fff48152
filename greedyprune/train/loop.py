"""The one training loop: pretraining, fine-tuning after pruning, lottery tickets, RigL, bilevel.

Exact resumption. The examples of epoch ``e`` are visited in the order :func:`data_order` draws from
``(seed, e)`` alone, and a checkpoint holds model, optimizer, scheduler, step, RNG states, callback
states and history. A resumed run rebuilds the epoch's order, skips the batches already done and so
ends with bit-identical weights to an uninterrupted run (same device and thread count).

Callbacks are plain objects with any of ``on_train_begin(state)``, ``after_backward(state)``
(gradients present, before ``optimizer.step``), ``after_step(state)``, ``on_train_end(state)`` and
``state_dict()`` / ``load_state_dict(d)`` (checkpointed with the run; on resume each stateful callback
gets the next saved state of its class). A callback may set ``state.should_stop = True``, and in
``after_backward`` ``state.skip_optimizer_step = True``: that iteration takes no optimizer step (RigL's
mask-update iterations) but still counts as a step of the schedule and the data order.

``config.start_step = k`` starts a fresh run at step ``k`` of the schedule and of the data order and
trains ``total - k`` steps (late rewinding as open_lth does it: the weights are rewound to step ``k``,
the optimizer state is new, the learning rate and the batches continue from step ``k``).

Distributed data parallel. Under an initialised ``torch.distributed`` group (``torchrun``) the model is
wrapped in ``DistributedDataParallel`` for the forward/backward pass; ``batch_size`` stays the global
batch (images per optimizer step), each of the ``W`` ranks takes ``batch_size / W`` of them from its
shard of the epoch's permutation (:func:`~greedyprune.distributed.data_order`), and DDP averages the
gradients -- the same update as one process with ``batch_size`` (exactly so without BatchNorm, which
normalises each rank's own images; running statistics are rank 0's). ``state.model`` stays the bare
module, ``state.loss`` is the mean over all ranks, callbacks see the averaged gradients, evaluation
is sharded, and rank 0 writes the checkpoints that every rank resumes from.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from ..data.loaders import batch_loader
from ..distributed import all_reduce_sum, data_order, data_parallel, first_rank_says, is_main, local_device, world
from ..errors import UserError
from ..paths import checkpoint_path
from .augment import augment_batch
from .checkpoint import resolve_device, restore_training_checkpoint, save_training_checkpoint
from .config import TrainConfig
from .evaluate import evaluate
from .schedule import make_optimizer, make_scheduler


@dataclass
class TrainState:
    """What callbacks see. ``batch`` is ``(inputs, labels)`` on the device; ``loss`` the batch loss (detached)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    config: TrainConfig
    device: torch.device
    total_steps: int
    steps_per_epoch: int
    step: int = 0
    epoch: int = 0
    batch: tuple[torch.Tensor, torch.Tensor] | None = None
    loss: torch.Tensor | None = None
    history: list[dict] = field(default_factory=list)
    run_dir: Path | None = None
    resumed: bool = False
    should_stop: bool = False
    skip_optimizer_step: bool = False
    optimizer_steps: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    identity: dict | None = None  # what the run was started with (model, data, ...); a resume must match it

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


@dataclass
class TrainResult:
    """``history``: one dict per evaluation (step, epoch, lr, train_loss, val_loss, val_acc).

    ``early_stop_step``: the step with the lowest validation loss (None without a validation set).
    ``steps`` is the last step (the schedule's total); ``start_step`` where the run began (0, or the
    rewind step ``k``); ``optimizer_steps`` the optimizer steps taken (``steps - start_step`` minus the
    iterations a callback skipped).
    """

    history: list[dict]
    steps: int
    early_stop_step: int | None
    seconds: float
    start_step: int = 0
    optimizer_steps: int = 0

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def _call(callbacks: Iterable, hook: str, state: TrainState) -> None:
    for callback in callbacks:
        fn = getattr(callback, hook, None)
        if fn is not None:
            fn(state)


def _due(every: int, step: int, steps_per_epoch: int) -> bool:
    return step % (every if every > 0 else steps_per_epoch) == 0


def _record(state: TrainState, val_set: Dataset | None) -> None:
    entry = {"step": state.step, "epoch": state.step / state.steps_per_epoch, "lr": state.lr,
             "train_loss": state.loss_sum / state.loss_count if state.loss_count else None,
             "val_loss": None, "val_acc": None}
    if val_set is not None:
        metrics = evaluate(state.model, val_set, max(state.config.batch_size, 256), state.device, state.config.num_workers,
                           shard=True)
        entry["val_loss"], entry["val_acc"] = metrics["loss"], metrics["top1"]
    state.history.append(entry)
    state.loss_sum, state.loss_count = 0.0, 0


def _local_batch(batch_size: int, world_size: int) -> int:
    if batch_size % world_size:
        raise UserError(f"batch size {batch_size} is not divisible by the {world_size} processes; "
                        f"use a multiple of {world_size} (each process takes batch_size / {world_size} images)")
    return batch_size // world_size


def train(model: nn.Module, train_set: Dataset, config: TrainConfig, *, run_dir: str | Path | None = None,
          val_set: Dataset | None = None, callbacks: Iterable = (), resume: bool = True,
          progress: bool = True, identity: dict | None = None) -> TrainResult:
    """Train ``model`` in place on ``train_set`` with ``config``; checkpoint to ``run_dir/checkpoint.pt``.

    Steps per epoch: ``len(train_set) // batch_size`` (the incomplete last batch is dropped; at least 1).
    Total steps: ``max_steps`` if > 0, else ``ceil(epochs * steps_per_epoch)``. Loss: cross-entropy with
    ``label_smoothing``. On a fresh start torch's global RNG is seeded with ``config.seed``; with
    ``resume=True`` an existing checkpoint is continued (a finished one returns at once). ``identity``
    (plain data: the model, the data spec and its fingerprint, ...) is recorded in the checkpoint; a resume
    with a different one -- or with other settings or another number of examples -- is refused in one line.
    """
    config.validate()
    callbacks = list(callbacks)
    device = local_device(resolve_device(config.device))
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    rank, world_size = world()
    batch = _local_batch(config.batch_size, world_size)
    n_local = len(data_order(len(train_set), config.seed, 0, rank, world_size))
    if n_local == 0:
        raise UserError(f"the training set is empty (or has fewer examples than the {world_size} processes)"
                        if world_size > 1 else "the training set is empty")
    steps_per_epoch = max(1, n_local // batch)
    total = config.max_steps if config.max_steps > 0 else max(1, math.ceil(config.epochs * steps_per_epoch))
    if config.start_step >= total:
        raise UserError(f"start_step {config.start_step} must be below the run's {total} steps")
    model.to(device)
    optimizer = make_optimizer(model, config)
    state = TrainState(model, optimizer, make_scheduler(optimizer, config, total), config, device, total,
                       steps_per_epoch, run_dir=Path(run_dir) if run_dir is not None else None, identity=identity)
    # every rank follows rank 0's view of the run folder (all ranks then read the same file)
    if state.run_dir is not None and resume and first_rank_says(checkpoint_path(state.run_dir).exists()):
        restore_training_checkpoint(state, callbacks, len(train_set))
    else:
        torch.manual_seed(config.seed)  # the same on every rank, so rank 0's RNG state in a checkpoint fits all
        state.step = config.start_step
    net = data_parallel(model, device)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    started = time.perf_counter()
    _call(callbacks, "on_train_begin", state)
    bar = tqdm(total=total, initial=state.step, desc="train", unit="step", disable=not progress or not is_main(),
               dynamic_ncols=True)
    while state.step < total and not state.should_stop:
        state.epoch = state.step // steps_per_epoch
        first = (state.step % steps_per_epoch) * batch
        order = data_order(len(train_set), config.seed, state.epoch, rank, world_size)[: steps_per_epoch * batch]
        order = order[first: first + (total - state.step) * batch]
        # an own generator: creating a loader iterator must not draw from torch's global RNG (dropout's)
        loader = batch_loader(train_set, order.tolist(), batch, config.num_workers,
                              generator=torch.Generator().manual_seed(config.seed * 1_000_003 + state.step))
        for inputs, labels in loader:
            net.train()
            inputs = augment_batch(inputs.to(device), config.augment, config.seed, state.step)
            state.batch = (inputs, torch.as_tensor(labels).to(device))
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(net(state.batch[0]), state.batch[1])
            state.loss = loss.detach().clone()
            if world_size > 1:  # the global batch's mean loss; every rank then takes the same decisions
                all_reduce_sum(state.loss)
                state.loss /= world_size
            if not torch.isfinite(state.loss):
                raise UserError(f"training loss became {float(state.loss)} at step {state.step}; lower the learning rate")
            loss.backward()
            _call(callbacks, "after_backward", state)
            skipped, state.skip_optimizer_step = state.skip_optimizer_step, False
            if not skipped:
                optimizer.step()
                state.optimizer_steps += 1
            with warnings.catch_warnings():  # a skipped step still advances the schedule (torch warns at step 0)
                warnings.simplefilter("ignore", UserWarning)
                state.scheduler.step()
            state.step += 1
            state.loss_sum += float(state.loss)
            state.loss_count += 1
            _call(callbacks, "after_step", state)
            bar.update(1)
            last = state.step >= total or state.should_stop
            if last or _due(config.eval_every, state.step, steps_per_epoch):
                _record(state, val_set)
                bar.set_postfix({k: round(v, 4) for k, v in state.history[-1].items()
                                 if k in ("train_loss", "val_acc") and v is not None})
            if last or _due(config.checkpoint_every, state.step, steps_per_epoch):
                save_training_checkpoint(state, callbacks, len(train_set))
            if last:
                break
    bar.close()
    _call(callbacks, "on_train_end", state)
    model.train()
    scored = [h for h in state.history if h["val_loss"] is not None]
    best = min(scored, key=lambda h: h["val_loss"])["step"] if scored else None
    return TrainResult(state.history, state.step, best, time.perf_counter() - started, config.start_step,
                       state.optimizer_steps)
