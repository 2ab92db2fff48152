"""Writing a set of files as one output: checked paths, staged temporaries, a journal, then renames.

The protocol (README "Nothing lost"):

1. **Check** -- every path is checked when it is declared (:meth:`OutputSet.file`), before the work.
2. **Stage** -- each file is written completely to a hidden temporary beside its target
   (``.NAME.<host>-<pid>.<random>.tmp``, fsynced). Nothing visible changes. Any failure (disk full, a
   path that turned into a folder meanwhile) discards every temporary: the previous outputs stay exactly
   as they were.
3. **Journal** -- ``.<first target>.commit`` (JSON: the renames still to do, in order) is written
   atomically beside the first target and its folder fsynced. This is the commit point.
4. **Rename** -- each temporary is renamed over its target in the order the files were staged (the file
   that completes the set last), folders fsynced; then the journal is deleted.

Killed before 3: the old outputs are intact; the temporaries are removed by the next write of those
files. Killed during 4 (between renames): the journal lists the renames still to do, and the next
greedyprune command that reads or writes one of the files (:func:`finish_interrupted`) completes them,
so the set ends up wholly new -- never half old, half new once greedyprune has looked at it (the
journal and its completion: :mod:`greedyprune.journal`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError
from .io import _HOST, _json_default, _remove_stale_temporaries, temporary_beside
from .journal import JOURNAL_FORMAT, _journal_path, _replay, _write_durably, finish_interrupted  # noqa: F401
from .outputs import MARKER, check_output_file, marker_content


class OutputSet:
    """Files one command writes, committed together (module docstring). Use as a context manager:
    leaving it by an exception discards what was staged."""

    def __init__(self) -> None:
        self._declared: dict[Path, tuple[str | None, str | None]] = {}  # target -> (flag, role)
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target), in commit order
        self._staging_dirs: list[Path] = []

    # ---------------------------------------------------------------------------------------- declare
    def file(self, path: str | os.PathLike, flag: str | None = "--out", role: str | None = None) -> Path:
        """Check ``path`` as an output file now (one-line errors) and declare it; returns it as a ``Path``."""
        finish_interrupted(path, strict=True)
        path = check_output_file(path, flag, role)
        key = Path(os.path.abspath(path))
        if key in self._declared:  # declared again (e.g. checked before the work, staged after it)
            return path
        for other in self._declared:
            if key.exists() and other.exists() and os.path.samefile(other, key):
                raise UserError(f"{_name(path, flag, role)} is the same file as another output of this command; "
                                "choose another --out")
        self._declared[key] = (flag, role)
        return path

    def folder(self, path: str | os.PathLike, command: str) -> Path:
        """Declare a claimed output folder (see :func:`greedyprune.outputs.claim_output_folder`): its marker
        file is committed first, so the folder counts as this command's from then on."""
        path = Path(path)
        finish_interrupted(path, strict=True)
        self.file(path / MARKER, flag=None, role=f"the marker file {path / MARKER}")
        self._marker = (path / MARKER, command)
        return path

    # ------------------------------------------------------------------------------------------ stage
    @contextmanager
    def open(self, path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
        """Write ``path``'s new content to a temporary beside it (renamed over it at :meth:`commit`)."""
        path = Path(path)
        key = Path(os.path.abspath(path))
        flag, role = self._declared.get(key, ("--out", None))
        check_output_file(path, flag, role)  # again: cheap, and the path may have changed during the work
        self._declared.setdefault(key, (flag, role))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"{_name(path, flag, role)} is not writable ({err.strerror}); nothing was replaced: "
                            "choose a writable path") from None
        with temporary_beside(
                path, mode, lambda tmp: self._staged.append((tmp, path)),
                not_writable=lambda why: f"{_name(path, flag, role)} is not writable ({why}); nothing was replaced: "
                                         "choose a writable path",
                write_failed=lambda why: f"writing {path} failed ({why}); nothing was replaced (the previous outputs "
                                         "are as they were): free space or choose another --out") as handle:
            yield handle

    def save_torch(self, obj: Any, path: str | os.PathLike) -> None:
        import torch
        with self.open(path) as handle:
            torch.save(obj, handle)

    def save_json(self, obj: Any, path: str | os.PathLike) -> None:
        with self.open(path, "w") as handle:
            json.dump(obj, handle, indent=2, default=_json_default)
            handle.write("\n")

    @contextmanager
    def tree(self, folder: str | os.PathLike, last: tuple[str, ...] = ()) -> Iterator[Path]:
        """A hidden staging folder inside ``folder``: what is written under it (by any code) is staged as the
        same relative paths under ``folder``; files named in ``last`` are renamed last, in that order."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{_HOST}-{os.getpid()}.", dir=folder))
        self._staging_dirs.append(staging)
        yield staging
        files = sorted((p for p in staging.rglob("*") if p.is_file() and not p.name.startswith(".")),
                       key=lambda p: (p.name in last, last.index(p.name) if p.name in last else 0, str(p)))
        for staged in files:
            target = folder / staged.relative_to(staging)
            check_output_file(target, "--out", f"{target}")
            self._staged.append((staged, target))

    # ----------------------------------------------------------------------------------------- commit
    def commit(self) -> None:
        """Journal the renames (the commit point), rename every staged file over its target, drop the journal."""
        if hasattr(self, "_marker"):
            path, command = self._marker
            with self.open(path, "w") as handle:
                json.dump(marker_content(command), handle)
            self._staged.insert(0, self._staged.pop())
        if not self._staged:
            return
        journal = _journal_path(self._staged[0][1])
        base = journal.parent
        record = {"format": JOURNAL_FORMAT,
                  "renames": [[os.path.relpath(t, base), os.path.relpath(p, base)] for t, p in self._staged]}
        _write_durably(journal, json.dumps(record))
        _replay(journal, record["renames"])
        for _, target in self._staged:
            _remove_stale_temporaries(target)
        self._staged = []
        self._cleanup_staging()

    def discard(self) -> None:
        """Delete every staged temporary: the previous outputs stay as they were."""
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged = []
        self._cleanup_staging()

    def _cleanup_staging(self) -> None:
        for staging in self._staging_dirs:
            shutil.rmtree(staging, ignore_errors=True)
        self._staging_dirs = []

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.discard()


def _name(path, flag, role) -> str:
    return role if role and not flag else (f"{flag} {role}" if role else (f"{flag} {path}" if flag else str(path)))
