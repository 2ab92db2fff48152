"""Training checkpoints for exact resumption: what is saved, how it is restored, RNG states, devices."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch

from ..distributed import barrier, is_main, same_error_on_every_rank
from ..errors import UserError
from ..io import load_checkpoint, save_torch
from ..paths import checkpoint_path
from .config import TrainConfig, result_fields

FORMAT = "greedyprune-train/1"


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``; a one-line error when CUDA is asked for but absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("CUDA requested but not available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"{device} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type != "cpu":
        raise UserError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    elif dev.index not in (None, 0):  # torch accepts cpu:N but there is one CPU device; N would be ignored
        raise UserError(f"unknown device {device!r}: there is one CPU device; use --device cpu (or cuda:N for a GPU)")
    return dev


def rng_state() -> dict:
    """torch (CPU and CUDA), Python and NumPy generator states, as tensors and plain values (weights_only-safe)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(state, callbacks: list, n_train: int) -> None:
    """Write ``run_dir/checkpoint.pt`` atomically.

    Under DDP rank 0 writes (every rank holds the same model, optimizer and RNG states) and all ranks
    wait for it, so no rank runs ahead of the last complete checkpoint.
    """
    if state.run_dir is None:
        return
    if is_main():
        _write(state, callbacks, n_train)
    barrier()


def _write(state, callbacks: list, n_train: int) -> None:
    save_torch({
        "format": FORMAT, "config": dataclasses.asdict(state.config), "n_train": n_train,
        "step": state.step, "total_steps": state.total_steps, "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(), "scheduler": state.scheduler.state_dict(), "rng": rng_state(),
        "callbacks": [{"type": type(cb).__name__, "state": cb.state_dict()} for cb in callbacks
                      if hasattr(cb, "state_dict")],
        "history": state.history, "loss_sum": state.loss_sum, "loss_count": state.loss_count,
        "identity": state.identity,
        "optimizer_steps": state.optimizer_steps,
    }, checkpoint_path(state.run_dir))


def restore_training_checkpoint(state, callbacks: list, n_train: int) -> None:
    """Load ``run_dir/checkpoint.pt`` into ``state`` (model, optimizer, scheduler, RNG, callbacks, history).

    Under DDP every rank loads the file rank 0 wrote (a shared folder) and then waits for the others,
    so no rank overwrites it while another still reads; a file one rank cannot use stops every rank
    with the same error (:func:`~greedyprune.distributed.same_error_on_every_rank`, also the barrier).
    """
    path = checkpoint_path(state.run_dir)
    with same_error_on_every_rank():
        ckpt = load_checkpoint(path)
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise UserError(f"{path} is not a greedyprune training checkpoint; delete it or pass resume=False "
                            "(--no-resume)")
        try:
            _restore(state, callbacks, n_train, ckpt, path)
        except UserError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:  # a damaged or edited file
            raise UserError(f"{path} is a damaged training checkpoint ({type(err).__name__}: {str(err)[:80]}); "
                            "delete it or pass resume=False (--no-resume)") from None


def identity_changes(started: dict | None, now: dict | None) -> list[str]:
    """How ``now`` differs from what a checkpoint was ``started`` with (checkpoints from before identities
    were recorded have none: nothing to compare)."""
    if not isinstance(started, dict) or not isinstance(now, dict):
        return []
    return [f"{k} {started.get(k)!r} there, {now.get(k)!r} now" for k in now if started.get(k) != now.get(k)]


def _restore(state, callbacks: list, n_train: int, ckpt: dict, path) -> None:
    old, new = result_fields(TrainConfig(**ckpt["config"])), result_fields(state.config)
    changed = identity_changes(ckpt.get("identity"), state.identity)
    changed += [f"{k} {old[k]!r} there, {new[k]!r} now" for k in new if old.get(k) != new[k]]
    if ckpt["n_train"] != n_train:
        changed.append(f"{ckpt['n_train']} training examples there, {n_train} now")
    if changed:
        raise UserError(f"{path} is from a different run (started with other settings: {'; '.join(changed[:3])}); "
                        "pass resume=False (--no-resume) to start over, or use another folder")
    try:
        state.model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise UserError(f"{path} does not fit this model ({str(err).splitlines()[0][:150]}); pass resume=False") from None
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    saved = list(ckpt["callbacks"])
    for callback in callbacks:  # each stateful callback takes the next saved state of its class, if any
        match = next((s for s in saved if s["type"] == type(callback).__name__), None)
        if match is not None and hasattr(callback, "load_state_dict"):
            saved.remove(match)
            callback.load_state_dict(match["state"])
    set_rng_state(ckpt["rng"])
    state.step, state.history = ckpt["step"], list(ckpt["history"])
    state.loss_sum, state.loss_count = ckpt["loss_sum"], ckpt["loss_count"]
    # checkpoints from before the counter existed: every step took one
    state.optimizer_steps = int(ckpt.get("optimizer_steps", state.step - state.config.start_step))
    state.resumed = True
