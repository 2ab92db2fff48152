"""Everything greedyprune does differently under ``torch.distributed`` (launched by ``torchrun``).

A distributed run changes three things, all decided here:

* who this process is: :func:`world` (``(rank, world_size)``, ``(0, 1)`` without a process group),
  :func:`init_from_env` (join the group ``torchrun`` describes in the environment), :func:`alone` (a block
  in which this rank works as a single process: building the model cache while the others wait);
* how long it waits: every collective times out after ``$GREEDYPRUNE_TIMEOUT`` seconds (default 1800),
  :func:`lost_ranks_error` turns that into one line;
* which data it sees: :func:`shard` (calibration batches), :func:`data_order` (training examples);
* how training runs: :func:`data_parallel` (DDP), :func:`local_device` (``cuda:LOCAL_RANK``);
* how results are combined and who writes them: :func:`all_reduce_sum`, :func:`broadcast_from_first`,
  :func:`first_rank_says`, :func:`barrier`, :func:`is_main` (rank 0 writes files and prints);
* how errors stay collective: :func:`same_error_on_every_rank` (a bad input one rank finds is raised by
  every rank, so none waits forever in a collective the failed rank never reaches).

Every function is a no-op (or the obvious single-process answer) when no group is initialised, so
library code calls them unconditionally. Backends: gloo on CPU, NCCL on CUDA (one GPU per process,
``cuda:LOCAL_RANK``; collectives then run on tensors on that GPU).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.distributed as dist

from .errors import UserError


_alone = 0  # > 0 inside `alone()`: this process acts as a single process (no collectives)


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` unless a process group is initialised (or inside
    :func:`alone`)."""
    if dist.is_available() and dist.is_initialized() and not _alone:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextmanager
def alone() -> Iterator[None]:
    """Within the block this process works as if it were the only one: no collective, it writes its files.

    For what is built once per machine while the other ranks wait (the model cache: one rank trains under
    the cache's file lock, the others wait for that lock -- never in a collective the builder would need).
    """
    global _alone
    _alone += 1
    try:
        yield
    finally:
        _alone -= 1


def timeout_seconds() -> float:
    """How long a collective may wait for the other ranks: ``$GREEDYPRUNE_TIMEOUT`` seconds (default 1800)."""
    from .locking import COLLECTIVE_TIMEOUT, seconds_from_env
    return seconds_from_env("GREEDYPRUNE_TIMEOUT", COLLECTIVE_TIMEOUT)


def lost_ranks_error(err: BaseException, rank: int) -> UserError | None:
    """A one-line :class:`UserError` for a collective of ``rank`` that timed out or lost its peers (else None)."""
    text = " ".join(str(err).split()).lower()
    if "timed out" in text or "timeout" in text:
        return UserError(f"rank {rank} waited more than {timeout_seconds():.0f} s for the other ranks in a collective "
                         "operation (another rank stopped or hangs: see its output); raise $GREEDYPRUNE_TIMEOUT "
                         "(seconds) if a step legitimately takes longer")
    if "connection closed by peer" in text or "connection reset" in text or "broken pipe" in text:
        return UserError(f"rank {rank} lost the connection to another rank (it stopped: see its output)")
    return None


def is_main() -> bool:
    """Whether this process writes files (checkpoints, models, reports) and prints results: rank 0 only."""
    return world()[0] == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer; launch with torchrun") from None


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK`` set by torchrun; 0 otherwise)."""
    return _env_int("LOCAL_RANK", 0)


def wants_cuda(device: str | torch.device | None) -> bool:
    """Whether ``device`` means a GPU (``None``: "cuda when available", as ``greedyprune prune`` reads it)."""
    if device is None:
        return torch.cuda.is_available()
    return torch.device(device).type == "cuda" if isinstance(device, torch.device) else str(device).startswith("cuda")


def init_from_env(device: str | torch.device | None = None) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE > 1``); True when this call created it.

    Rendezvous is ``env://`` (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``). With a CUDA
    ``device`` the backend is NCCL and this process's current GPU becomes ``cuda:LOCAL_RANK`` (so
    ``"cuda"`` anywhere in the library means that GPU); otherwise gloo. Nothing happens for a single
    process or when a group already exists. The caller destroys the group (:func:`destroy`).
    """
    if _env_int("WORLD_SIZE", 1) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    cuda = wants_cuda(device)
    if cuda:
        if not torch.cuda.is_available():
            raise UserError("CUDA requested but not available; use --device cpu (gloo backend)")
        if local_rank() >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {local_rank()} but only {torch.cuda.device_count()} CUDA device(s) here; "
                            "use --nproc_per_node at most the number of GPUs")
        torch.cuda.set_device(local_rank())
    from datetime import timedelta
    try:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_seconds()))
    except ValueError as err:  # env:// rendezvous without MASTER_ADDR / RANK ...
        raise UserError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} is set but the process group cannot start "
                        f"({str(err).splitlines()[0][:120]}); launch with torchrun --nproc_per_node=N") from None
    return True


def local_device(device: torch.device) -> torch.device:
    """``cuda`` without an index means this process's GPU under a process group (``cuda:LOCAL_RANK``)."""
    if device.type != "cuda" or device.index is not None or world()[1] == 1:
        return device
    return torch.device("cuda", local_rank() if "LOCAL_RANK" in os.environ else torch.cuda.current_device())


def data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module to run forward/backward through: ``model`` in one process, else a DDP wrapper of it.

    The wrapper shares ``model``'s parameters, broadcasts rank 0's parameters and buffers when built,
    and averages gradients over ranks during ``backward``.
    """
    if world()[1] == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def destroy() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    """Where small bookkeeping tensors must live for the backend: the current GPU for NCCL, else CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Sum each tensor in place over all ranks (afterwards every rank holds the same totals)."""
    if world()[1] > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def broadcast_from_first(*tensors: torch.Tensor) -> None:
    """Overwrite each tensor in place with rank 0's copy (shapes must already agree)."""
    if world()[1] > 1:
        for t in tensors:
            dist.broadcast(t, src=0)


def _values_over_ranks(values: list[float], collective: Callable[[torch.Tensor], None]) -> list[float]:
    """``values`` as one float64 tensor through ``collective`` (in place), back as floats; as is in one process."""
    if world()[1] == 1:
        return list(values)
    shared = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    collective(shared)
    return shared.tolist()


def sum_over_ranks(values: list[float]) -> list[float]:
    """The element-wise sum of ``values`` over all ranks, in float64 (``values`` itself in one process)."""
    return _values_over_ranks(values, all_reduce_sum)


def first_rank_values(values: list[float]) -> list[float]:
    """Rank 0's ``values`` (float64) on every rank, e.g. measured times every rank must decide on alike."""
    return _values_over_ranks(values, broadcast_from_first)


def first_rank_says(flag: bool) -> bool:
    """Rank 0's value of ``flag`` on every rank (e.g. "a checkpoint exists"), so all ranks decide alike."""
    if world()[1] == 1:
        return bool(flag)
    value = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
    broadcast_from_first(value)
    return bool(value.item())


def barrier() -> None:
    """Wait until every rank reaches this point (no-op in one process)."""
    if world()[1] > 1:
        dist.barrier()


def shard(items: list, enabled: bool = True) -> list:
    """This rank's share of ``items``: every ``world_size``-th item, starting at its rank."""
    rank, size = world()
    return items[rank::size] if enabled and size > 1 else items


def data_order(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The order in which this process visits the ``n`` training examples in ``epoch``.

    A permutation drawn from a generator seeded by ``(seed, epoch)`` only -- so a resumed run rebuilds
    exactly the order of the interrupted one. With ``world_size > 1`` each rank takes every
    ``world_size``-th entry of the permutation truncated to a multiple of ``world_size`` (as
    ``DistributedSampler(drop_last=True)``). Then the ``j``-th local batch of ``B / world_size``
    examples of all ranks together is exactly the ``j``-th batch of ``B`` of one process: entry
    ``j*B + i*world_size + rank`` of the permutation, ``i < B / world_size``.
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    order = torch.randperm(n, generator=generator)
    if world_size > 1:
        order = order[: (n // world_size) * world_size][rank::world_size]
    return order


@contextmanager
def same_error_on_every_rank() -> Iterator[None]:
    """Run a block of rank-local work; when it fails on any rank, every rank raises the same error.

    The block must hold no collective itself. After it, every rank all-reduces a failure flag (so this is
    also a barrier); when some rank failed, the ranks exchange their messages (``all_gather_object``)
    and every rank raises the :class:`UserError` of the lowest failing rank, marked ``all_ranks`` (the
    CLI then prints it once, on rank 0). A rank-local error that is not a ``UserError`` (a bug) is
    re-raised with its traceback on its rank; the others raise ``RuntimeError`` naming that rank.
    Without a process group the block simply runs.
    """
    rank, size = world()
    if size == 1:
        yield
        return
    error: BaseException | None = None
    try:
        yield
    except Exception as err:  # noqa: BLE001 -- every failure must reach the agreement, or the others hang
        error = err
    failed = torch.tensor([0.0 if error is None else 1.0], device=_collective_device())
    dist.all_reduce(failed, op=dist.ReduceOp.SUM)
    if failed.item() == 0:
        return
    mine = None
    if error is not None:
        text = (str(error).strip().splitlines() or [""])[0][:200]
        mine = (True, str(error)) if isinstance(error, UserError) else \
            (False, f"{type(error).__name__}: {text}" if text else type(error).__name__)
    everyone: list = [None] * size
    dist.all_gather_object(everyone, mine)
    first = next(r for r, m in enumerate(everyone) if m is not None)
    user, message = everyone[first]
    if error is not None and not isinstance(error, UserError):
        raise error
    if not user:
        raise RuntimeError(f"rank {first} of {size} stopped with an internal error ({message}); see its traceback")
    agreed = UserError(message)
    agreed.all_ranks = True
    raise agreed from None
