"""Where a command may write: every output path is checked before any work starts.

Rules (README "Nothing lost"), each a one-line :class:`UserError` naming the flag:

* an output *file* is absent or a regular, writable file. Refused: a path ending in ``/``; a folder; a
  symbolic link (outputs replace files by renaming a complete temporary file over them, which would
  replace the link, not the file it points to: give the real path); a device node, FIFO or socket; a file
  without write permission (a read-only file is taken as protected, also for root).
* its folder exists or can be created, and a file can be created in it (probed, nothing left behind).
* an output *folder* (``analyze``, ``demo``) is new, empty, or one this command made earlier (it holds
  the marker file ``.greedyprune``); a folder with other files in it is refused unless ``--force``.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from .errors import UserError

MARKER = ".greedyprune"


def _named(path: str | os.PathLike, flag: str | None, role: str | None) -> str:
    """How a message names the path: ``--out o.pt``, ``--out o.pt: its report o.pt.json`` or ``output path X``."""
    if role:
        return f"{flag} {role}" if flag else role
    return f"{flag} {path}" if flag else f"output path {path}"


def check_output_file(path: str | os.PathLike, flag: str | None = "--out", role: str | None = None) -> Path:
    """Refuse (one line) a file output greedyprune must not or cannot write; return it as a ``Path``.

    ``role`` names a derived output in messages (e.g. ``"o.pt: its report o.pt.json"``).
    """
    text = os.fspath(path)
    name = _named(text, flag, role)
    if not text.strip():
        raise UserError(f"{name}: the path is empty; give a file name, e.g. pruned.pt")
    if text.endswith(("/", os.sep)):
        raise UserError(f"{name} ends in '/' (a folder); give a file name, e.g. {text}pruned.pt")
    path = Path(text)
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # absent, or under a file: the folder check below says so
        info = None
    except OSError as err:
        raise UserError(f"{name} cannot be inspected ({err.strerror}); choose another path") from None
    if info is not None:
        kind = _kind(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            raise UserError(f"{name} is a symbolic link (to {target}); outputs replace files by renaming, which would "
                            "replace the link, not its target: give the real path, or remove the link")
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{name} is a folder; give a file name (e.g. {path / 'model.pt'})")
        if kind != "file":
            raise UserError(f"{name} is a {kind}, not a regular file; greedyprune writes only regular files: "
                            "choose another path")
        if not (info.st_mode & 0o222) or not os.access(path, os.W_OK):
            raise UserError(f"{name} is read-only (mode {stat.filemode(info.st_mode)}); make it writable "
                            f"(chmod u+w) or choose another path")
    _probe_folder(path.parent if str(path.parent) else Path("."), name)
    return path


def check_output_folder(path: str | os.PathLike, flag: str | None = "--out", name: str | None = None,
                        fix: str = "choose another path") -> Path:
    """Refuse (one line) an output folder that is a file or cannot be created or written; return it.

    ``name`` (default ``"--out PATH"``) and ``fix`` word the message."""
    text = os.fspath(path)
    name = name or _named(text, flag, None)
    if not text.strip():
        raise UserError(f"{name}: the path is empty; give a folder name")
    path = Path(text)
    if path.exists() and not path.is_dir():
        kind = _kind(path.stat().st_mode)
        raise UserError(f"{name} is a {kind}, not a folder; {fix}")
    _probe_folder(path, name, fix)
    return path


def claim_output_folder(path: str | os.PathLike, command: str, force: bool = False, flag: str = "--out") -> Path:
    """An output folder ``command`` may fill: new, empty, or made by ``command`` before (``--force``: any).

    A folder holding other files is refused, so that no file ``command`` did not create is replaced.
    """
    path = check_output_folder(path, flag)
    if force or not path.is_dir():
        return path
    entries = sorted(p.name for p in path.iterdir() if not _is_our_temporary(p.name))
    if not entries or made_by(path) == command:
        return path
    shown = ", ".join(entries[:3]) + (f" (+{len(entries) - 3} more)" if len(entries) > 3 else "")
    raise UserError(f"{flag} {path} is not empty ({shown}) and was not made by greedyprune {command}; choose a new "
                    f"folder, or pass --force to write into it (files of the same names are replaced)")


def made_by(folder: Path) -> str | None:
    """The command recorded in ``folder/.greedyprune`` (None when there is no readable marker)."""
    marker = Path(folder) / MARKER
    try:
        if not marker.is_file() or marker.is_symlink() or marker.stat().st_size > 4096:
            return None
        data = json.loads(marker.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data.get("command") if isinstance(data, dict) and isinstance(data.get("command"), str) else None


def marker_content(command: str) -> dict:
    """What ``.greedyprune`` holds: the command whose outputs fill the folder."""
    return {"command": command, "note": f"this folder holds the outputs of greedyprune {command}"}


def _is_our_temporary(name: str) -> bool:
    return name.startswith(".") and (name.endswith((".tmp", ".commit")) or name.startswith(".staging-"))


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return kind
    return "special file"


def _probe_folder(folder: Path, name: str, fix: str = "choose another path") -> None:
    """The nearest existing ancestor of ``folder`` is a folder in which a file can be created (and deleted)."""
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = f"a {_kind(probe.stat().st_mode)}, not a folder" if probe.exists() else "a broken link"
        raise UserError(f"{name} is not writable: {probe} is {what}; {fix}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".greedyprune-probe.", dir=probe)
    except OSError as err:
        fix = "choose a writable path" if fix == "choose another path" else fix
        raise UserError(f"{name} is not writable ({probe}: {err.strerror}); {fix}") from None
    os.close(fd)
    os.unlink(tmp)
