"""The journal of an :class:`~greedyprune.commit.OutputSet` commit, and completing an interrupted one.

A journal ``.<first target>.commit`` lists the renames ``[temporary, target]`` (relative to its folder) of
a commit whose temporaries are all complete. It is written durably before the first rename (the commit
point) and deleted after the last. A journal found later belongs to a commit killed between its renames:
:func:`finish_interrupted` does the renames that are left, so the files end up wholly new. A journal
greedyprune did not write -- malformed, or naming paths outside its folder or temporaries that are not
hidden -- is ignored (it cannot move arbitrary files).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import _HOST

JOURNAL_FORMAT = "greedyprune-commit/1"


def _journal_path(first_target: Path) -> Path:
    return first_target.parent / f".{first_target.name}.commit"


def _rename(tmp: Path, target: Path) -> None:
    """One step of a commit (a function of its own so a test can stop a process between two renames)."""
    os.replace(tmp, target)


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_durably(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def _replay(journal: Path, renames: list) -> None:
    """Do the journal's renames whose temporary is still there (all of them, or the rest after a kill)."""
    base = journal.parent
    folders = set()
    for tmp, target in renames:
        tmp, target = base / tmp, base / target
        if os.path.lexists(tmp):
            target.parent.mkdir(parents=True, exist_ok=True)  # a sub-folder of a staged tree (plots/)
            try:
                _rename(tmp, target)
            except FileNotFoundError:  # another process (a torchrun rank) completing the same journal did it
                continue
            folders.add(target.parent)
    for folder in folders:
        _fsync_folder(folder)
    with contextlib.suppress(FileNotFoundError):
        journal.unlink()
    _fsync_folder(base)


def _safe_relative(text: Any) -> bool:
    return isinstance(text, str) and bool(text) and not os.path.isabs(text) and ".." not in Path(text).parts


def _read_journal(journal: Path) -> list | None:
    """The renames of a journal greedyprune wrote, or None for anything else (then it is left alone)."""
    try:
        if journal.is_symlink() or not journal.is_file() or journal.stat().st_size > 1_000_000:
            return None
        record = json.loads(journal.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    renames = record.get("renames") if isinstance(record, dict) and record.get("format") == JOURNAL_FORMAT else None
    if not isinstance(renames, list) or not all(_valid_rename(r) for r in renames):
        return None
    return renames


def _valid_rename(rename: Any) -> bool:
    """``[temporary, target]``, both relative paths below the journal's folder; the temporary a hidden file
    or inside a hidden staging folder (a journal cannot move arbitrary files)."""
    if not (isinstance(rename, list) and len(rename) == 2 and all(map(_safe_relative, rename))):
        return False
    tmp = Path(rename[0])
    return tmp.name.startswith(".") or any(part.startswith(".staging-") for part in tmp.parts[:-1])


def pending_journals(path: str | os.PathLike) -> list[Path]:
    """Journals of interrupted commits that name ``path`` (a file), or that lie in ``path`` (a folder)."""
    path = Path(path)
    folders = [path] if path.is_dir() and not path.is_symlink() else []
    folders.append(path.parent if str(path.parent) else Path("."))
    found = []
    for folder in folders:
        try:
            journals = sorted(folder.glob(".*.commit"))
        except OSError:
            continue
        for journal in journals:
            renames = _read_journal(journal)
            if renames is None:
                continue
            if folder == path or any(os.path.abspath(journal.parent / target) == os.path.abspath(path)
                                     for _, target in renames):
                found.append(journal)
    return found


def finish_interrupted(path: str | os.PathLike, strict: bool = False) -> int:
    """Complete commits that were interrupted between their renames and involve ``path``; returns how many.

    Readers call it with ``strict=False`` (a failure, e.g. a read-only folder, is ignored: the files are
    read as they are); writers with ``strict=True`` (a failure is a one-line :class:`UserError`).
    """
    done = 0
    for journal in pending_journals(path):
        renames = _read_journal(journal)
        try:
            _replay(journal, renames or [])
            done += 1
        except OSError as err:
            if strict:
                raise UserError(f"an interrupted write of {path} cannot be completed ({err.strerror}); "
                                f"check {journal.parent} (the journal {journal.name} lists the renames)") from None
    return done


def journaled_temporaries(folder: str | os.PathLike) -> set[str]:
    """Absolute paths of the temporaries that interrupted commits in ``folder`` still have to rename."""
    keep = set()
    for journal in Path(folder).glob(".*.commit"):
        for tmp, _ in _read_journal(journal) or []:
            keep.add(os.path.abspath(journal.parent / tmp))
    return keep
