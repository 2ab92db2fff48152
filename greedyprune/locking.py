"""Waiting with a limit: the file lock around anything built once per machine, and the timeouts of waits.

Every wait in greedyprune ends: a file lock is polled until ``$GREEDYPRUNE_LOCK_TIMEOUT`` seconds (default
12 h: another process may be training a converged model for hours), collectives under ``torchrun`` time out
after ``$GREEDYPRUNE_TIMEOUT`` seconds (default 1800, :mod:`greedyprune.distributed`); either ends in a
one-line :class:`UserError`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from .errors import UserError

LOCK_TIMEOUT = 12 * 3600.0
COLLECTIVE_TIMEOUT = 1800.0


def seconds_from_env(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable ``name`` (``default`` when unset)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < 1e9:
        raise UserError(f"${name}={value!r} is not a positive number of seconds; e.g. {name}={int(default)}")
    return seconds


@contextlib.contextmanager
def file_lock(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively (other processes building ``what`` in ``folder`` wait, at most
    ``$GREEDYPRUNE_LOCK_TIMEOUT`` seconds, saying once on stderr whom they wait for)."""
    folder = Path(folder)
    timeout = seconds_from_env("GREEDYPRUNE_LOCK_TIMEOUT", LOCK_TIMEOUT)
    lock = folder / ".lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+")  # not "w": that would erase the pid of the process holding the lock
    except OSError as err:
        raise UserError(f"cannot create {lock} ({err.strerror}) to build {what}; set $GREEDYPRUNE_CACHE to a "
                        "writable folder") from None
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        fcntl = None
    with handle:
        if fcntl is not None:
            _acquire(fcntl, handle, lock, what, timeout)
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        try:
            yield
        finally:
            if fcntl is not None:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(fcntl, handle, lock: Path, what: str, timeout: float) -> None:
    from .distributed import is_main
    start, said = time.monotonic(), False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _holder(lock)
        waited = time.monotonic() - start
        if waited > timeout:
            raise UserError(f"waited {waited:.0f} s for {lock} (held by {holder}, which builds {what}); let it "
                            "finish and run again, or raise $GREEDYPRUNE_LOCK_TIMEOUT (seconds)")
        if not said and is_main():
            print(f"greedyprune: waiting for {holder} to finish building {what} ({lock})", file=sys.stderr, flush=True)
            said = True
        time.sleep(min(0.5, max(0.01, timeout / 20)))


def _holder(lock: Path) -> str:
    try:
        text = lock.read_text()[:20].strip()
    except OSError:
        text = ""
    return f"process {text}" if text.isdigit() else "another process"
