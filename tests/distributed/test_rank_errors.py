"""``same_error_on_every_rank`` with 2 gloo ranks: a failure on one rank reaches every rank, at once.

A user error on one rank: every rank raises the same one-line ``UserError`` marked ``all_ranks`` (the CLI
prints it once). A bug on one rank: that rank keeps its own traceback; the other raises ``RuntimeError``
naming the rank. No failure: the block's work stands and nobody raises. No case waits for a timeout.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from greedyprune.distributed import same_error_on_every_rank
from greedyprune.errors import UserError


def _rank(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))
    results = []
    try:
        for case in ("user-error-on-rank-1", "bug-on-rank-0", "no-error"):
            done = []
            try:
                with same_error_on_every_rank():
                    if case == "user-error-on-rank-1" and rank == 1:
                        raise UserError("rank 1's batch holds NaN; check the data")
                    if case == "bug-on-rank-0" and rank == 0:
                        raise KeyError("oops")
                    done.append(rank)
                results.append(f"{case}: ok {done}")
            except UserError as err:
                results.append(f"{case}: UserError {err} all_ranks={err.all_ranks}")
            except Exception as err:  # noqa: BLE001 -- what each rank sees is the result
                results.append(f"{case}: {type(err).__name__} {err}")
    finally:
        dist.destroy_process_group()
    with open(f"{out_dir}/rank{rank}.txt", "w") as handle:
        handle.write("\n".join(results))


def test_a_failure_on_one_rank_reaches_every_rank(tmp_path):
    context = mp.start_processes(_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=False,
                                 start_method="fork")
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("a rank hangs in a collective")
    ranks = [(tmp_path / f"rank{r}.txt").read_text().splitlines() for r in range(2)]
    agreed = "user-error-on-rank-1: UserError rank 1's batch holds NaN; check the data all_ranks=True"
    assert ranks[0][0] == ranks[1][0] == agreed
    assert ranks[0][1] == "bug-on-rank-0: KeyError 'oops'"  # its own exception, traceback and all
    assert ranks[1][1] == ("bug-on-rank-0: RuntimeError rank 0 of 2 stopped with an internal error (KeyError: 'oops'); "
                           "see its traceback")
    assert ranks[0][2] == "no-error: ok [0]" and ranks[1][2] == "no-error: ok [1]"
