"""Safe file I/O: atomic writes (temp file + rename) and checkpoint loading that never unpickles code.

Every file greedyprune writes goes through :func:`atomic_write`, so an interrupted run leaves either
the old file or the complete new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import pickle
import re
import socket
import stat
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .errors import UserError


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, on failure delete it.

    The temporary file is ``.NAME.<host>-<pid>.<random>.tmp``. A process killed mid-write (SIGKILL, power
    loss) leaves that hidden file but never a partial ``NAME``; the next successful write of ``NAME``
    on the same host deletes such leftovers of processes that no longer exist. Failures to write
    (folder missing and not creatable, read-only, disk full, ``path`` is a folder) raise one-line
    :class:`UserError` s and leave ``path`` as it was.

    Permissions: a file being replaced keeps its mode; a new file gets ``0o666`` minus the umask, as
    ``open()`` would give it (``mkstemp`` alone would leave every output readable by its owner only).
    """
    from .outputs import check_output_file
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if os.path.lexists(path):  # never replace a folder, link, device, FIFO or read-only file
        check_output_file(path, flag=None)
    if not directory.exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create output folder {directory}: {err.strerror}; choose a writable --out") from None
    temporaries: list[Path] = []
    try:
        with temporary_beside(path, mode, temporaries.append,
                              not_writable=lambda why: f"output path {path} is not writable ({why}); choose a "
                                                       "writable --out",
                              write_failed=lambda why: f"writing {path} failed ({why}); nothing was written, "
                                                       "free space or choose another --out") as handle:
            yield handle
        os.replace(temporaries[0], path)
    except OSError as err:
        for tmp in temporaries:
            _discard(tmp)
        if err.errno in _WRITE_ERRNOS:
            raise UserError(f"writing {path} failed ({err.strerror}); nothing was written, "
                            "free space or choose another --out") from None
        raise
    except BaseException:
        for tmp in temporaries:
            _discard(tmp)
        raise
    _remove_stale_temporaries(path)


@contextmanager
def temporary_beside(path: Path, mode: str, created: Callable[[Path], None], *,
                     not_writable: Callable[[str], str], write_failed: Callable[[str], str]) -> Iterator[Any]:
    """Write a new hidden temporary ``.NAME.<host>-<pid>.<random>.tmp`` in ``path``'s folder; yield its handle.

    The one place both ways of writing an output (:func:`atomic_write`, :class:`greedyprune.commit.OutputSet`)
    create their temporaries: ``created(tmp)`` is called as soon as it exists (the caller renames or deletes
    it), it gets the mode of the file it will replace (:func:`_mode_for`), and it is flushed and fsynced
    before the block ends. A failure to create or write it becomes a one-line :class:`UserError`,
    ``not_writable(reason)`` or ``write_failed(reason)``; the temporary is left to the caller.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent if str(path.parent) else ".")
    except OSError as err:
        raise UserError(not_writable(err.strerror)) from None
    created(Path(tmp))
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        if err.errno in _WRITE_ERRNOS:
            raise UserError(write_failed(err.strerror)) from None
        raise


_HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.EFBIG,
                 errno.ENOTDIR}


def _mode_for(path: Path) -> int:
    """The permission bits ``path`` should get: its current ones when it exists, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """This process's umask, read without changing it (Linux: /proc; elsewhere set-and-restore)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.NAME.<this host>-<pid>.*.tmp`` left by killed writers whose pid no longer runs (but not
    those an interrupted commit still has to rename: :mod:`greedyprune.commit`)."""
    from .journal import journaled_temporaries
    keep = None
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.{glob.escape(_HOST)}-*.tmp"):
        pid = leftover.name[len(path.name) + len(_HOST) + 3:].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        keep = journaled_temporaries(path.parent) if keep is None else keep
        if os.path.abspath(leftover) in keep:
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                leftover.unlink()
        except OSError:  # the process exists (owned by someone else): leave its file alone
            pass


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Fail fast (before hours of work) when ``--out`` ``path`` -- a file, or a ``folder`` -- cannot be written.

    The rules are :func:`greedyprune.outputs.check_output_file` / :func:`~greedyprune.outputs.check_output_folder`
    (no folder, link, device, FIFO or read-only file; a writable folder, probed); creates nothing that stays.
    """
    from .outputs import check_output_file, check_output_folder
    check_output_folder(path) if folder else check_output_file(path)


def read_json(path: str | os.PathLike, what: str = "JSON file", fix: str = "delete it or re-create it",
              max_bytes: int = 64 << 20) -> Any:
    """Parse a JSON file greedyprune (or someone) wrote; every way it can be bad is one :class:`UserError`.

    Refused: missing, not a regular file (a FIFO is never opened, so reading cannot hang), larger than
    ``max_bytes``, not UTF-8, not JSON, or nested too deeply to parse.
    """
    path = Path(path)
    check_regular_file(path, what)
    if path.stat().st_size > max_bytes:
        raise UserError(f"{what} {path} is {path.stat().st_size:,} bytes, more than the {max_bytes:,} expected; {fix}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not text (not UTF-8); {fix}") from None
    except RecursionError:
        raise UserError(f"{what} {path} is nested too deeply to read; {fix}") from None
    except ValueError as err:
        raise UserError(f"{what} {path} is not valid JSON ({_reason(err)}); {fix}") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path} ({err.strerror}); check its permissions") from None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_regular_file(path: Path, what: str = "file") -> None:
    """``path`` exists and is a regular file (after links); FIFOs, devices and sockets are refused unopened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist; check the path") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path} ({err.strerror}); check the path") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {path} is a folder, not a file; give the file inside it")
    if not stat.S_ISREG(mode):
        from .outputs import _kind
        raise UserError(f"{what} {path} is a {_kind(mode)}, not a regular file; give a file")


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    """Pretty JSON through :func:`atomic_write`."""
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``torch.save`` file with ``weights_only=True``: tensors and plain containers only.

    Raises :class:`UserError` (one line) when the file is missing, empty, truncated, not a checkpoint,
    or holds pickled code that ``weights_only`` refuses to run. Whatever bytes the file holds, no other
    exception escapes and no code from the file runs.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder, not a file; give the .pt/.pth file inside it")
    check_regular_file(path, "checkpoint")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise UserError(f"cannot read checkpoint {path} ({err.strerror}); check its permissions") from None
    if not head:
        raise UserError(f"checkpoint {path} is empty (0 bytes); re-save or re-download it")
    if not (head.startswith(_ZIP_MAGIC) or head[:1] == _PICKLE_PROTO):
        raise UserError(f"{path} is not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle); "
                        "give a .pt/.pth file written by torch.save")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing: one line is enough
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = _GLOBAL.search(str(err))
        if found:
            raise UserError(
                f"refusing to load {path}: it would import {found.group(1)} when unpickled, which could run code; "
                "only plain state-dict checkpoints (tensors, numbers, strings, lists, dicts) are accepted"
            ) from None
        operand = re.search(r"Unsupported operand \d+", str(err))
        detail = f" ({operand.group(0)})" if operand else ""
        raise UserError(f"refusing to load {path}: its pickle uses more than torch's safe loader accepts{detail}; "
                        "only plain state-dict checkpoints written by torch.save are accepted") from None
    except Exception as err:  # noqa: BLE001 -- any failure to parse an untrusted file is the file's fault
        # torch's zip reader reports a cut archive as EINVAL ("Invalid argument"): name what it means
        reason = "incomplete zip archive" if isinstance(err, OSError) and head.startswith(_ZIP_MAGIC) else _reason(err)
        raise UserError(f"{path} is not a readable PyTorch checkpoint ({reason}); "
                        "it may be truncated or corrupt: re-save or re-download it") from None


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = b"\x80"
_GLOBAL = re.compile(r"(?i)unsupported global:?\s+(?:GLOBAL\s+)?([\w.]+)")


def _reason(err: BaseException) -> str:
    """The first sentence of an exception's message (torch's zip errors run on for lines)."""
    text = " ".join(str(err).split())
    if "central directory" in text or "zip archive" in text:
        return "incomplete zip archive"
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".") if text else ""
    return (first[:100] or type(err).__name__)
