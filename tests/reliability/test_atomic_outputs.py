"""Nothing lost, nothing half-written: every output goes to a temporary file that is renamed when complete.

A pruning run SIGKILLed while it computes, or while it writes its model file, leaves no ``--out`` file
(only, in the second case, a hidden ``.NAME.<host>-<pid>.*.tmp``, which the next successful write
removes). Killing *training* and IMP mid-run and resuming to the uninterrupted result is covered by
``tests/train/test_kill_resume.py`` (SIGKILL of a training subprocess) and
``tests/reliability/test_lth_sigkill.py`` (SIGKILL of a ``greedyprune baseline --method lth`` process).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import stat
import time
from pathlib import Path

import pytest
import torch

import greedyprune
from greedyprune.errors import UserError
from greedyprune.io import atomic_write, save_json
from greedyprune.modelfile import load_report
from greedyprune.paths import report_path

from .conftest import CALIB, REPO


def _victim(argv: list[str], ready: str, where: str) -> None:
    """Forked child: run the CLI, announce ``ready`` at the chosen moment, then wait to be killed."""
    torch.set_num_threads(1)

    def announce_and_hang(*args) -> None:
        Path(ready).touch()
        time.sleep(300)

    import greedyprune.commit
    import greedyprune.journal
    if where == "writing":  # the model is complete in its temporary file, not yet renamed
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            real_fsync(fd)
            announce_and_hang()
        os.fsync = fsync
    elif where == "journal":  # model and report complete in their temporaries; the commit journal not yet written
        greedyprune.commit._write_durably = announce_and_hang
    elif where == "between-renames":  # journal written, the model renamed over OUT, its report not yet renamed
        real_rename = greedyprune.journal._rename
        calls = []

        def rename(tmp, target) -> None:
            if calls:
                announce_and_hang()
            calls.append(target)
            real_rename(tmp, target)
        greedyprune.journal._rename = rename
    else:  # "pruning": after the first group, long before any output
        from greedyprune.prune import Pruner
        real_step = Pruner.step

        def step(self):
            report = real_step(self)
            announce_and_hang()
            return report
        Pruner.step = step
    from greedyprune.cli.main import main
    main(argv)
    os._exit(0)


def _kill_when_ready(argv: list[str], tmp_path: Path, where: str) -> int:
    ready = tmp_path / f"ready-{where}"
    # fork: the child starts in milliseconds with greedyprune already imported
    child = multiprocessing.get_context("fork").Process(target=_victim, args=(argv, str(ready), where))
    child.start()
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.is_alive(), f"the run ended (exit {child.exitcode}) before reaching the kill point"
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    return child.pid


@pytest.mark.parametrize("where", ["pruning", "writing"])
def test_sigkilled_prune_leaves_no_output_and_rerun_completes(files, tmp_path, cli, where):
    out = tmp_path / "out" / "pruned.pt"
    argv = ["prune", "--model", str(files.lenet), "--keep", "0.5", "--refit", "none", "--out", str(out), *CALIB]
    pid = _kill_when_ready(argv, tmp_path, where)
    assert not out.exists() and not report_path(out).exists()
    leftovers = sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else []
    if where == "writing":  # the only trace: the dead writer's hidden temporary file
        assert len(leftovers) == 1 and re.fullmatch(rf"\.pruned\.pt\..+-{pid}\.\w+\.tmp", leftovers[0]), leftovers
    else:
        assert leftovers == []
    result = cli(*argv)
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.parent.iterdir()) == ["pruned.pt", "pruned.pt.json"]  # leftover cleaned up
    pruned = greedyprune.load(out)
    assert pruned[1].out_features == 150


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "report.json"
    save_json({"run": 1}, target)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target, "w") as handle:
            handle.write('{"run": 2, "half')
            raise RuntimeError("boom")
    assert target.read_text() == '{\n  "run": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_temporary_files_of_live_writers_are_left_alone(tmp_path):
    """Only files of writers that no longer exist are cleaned; a concurrent writer's file survives."""
    from greedyprune.io import _HOST
    alive = tmp_path / f".x.pt.{_HOST}-{os.getppid()}.abcd1234.tmp"
    alive.write_bytes(b"in progress")
    save_json({"ok": True}, tmp_path / "x.pt")
    assert alive.exists()


def test_write_failure_is_one_line_and_leaves_nothing(tmp_path):
    with pytest.raises(UserError, match="is a folder; give a file name"):
        save_json({}, tmp_path)
    with pytest.raises(UserError, match="not writable"):
        save_json({}, Path("/proc/self/status") / "x.json")
    assert list(tmp_path.iterdir()) == []


WRITERS = re.compile(r"torch\.save\(|\.savefig\(|np\.save[z]?\(|\.write_text\(|\.write_bytes\(|"
                     r"open\([^)]*[\"'][wa]b?[\"']|json\.dump\(")


def test_every_writer_goes_through_atomic_write():
    """Static guard over the library and analysis code: no file is written except through greedyprune.io
    (``atomic_write``) or greedyprune.commit / greedyprune.journal (an ``OutputSet``'s staged files and journal)."""
    writers = {"greedyprune/io.py", "greedyprune/commit.py", "greedyprune/journal.py"}
    allowed = {("greedyprune/locking.py", 'open(lock, "a+"')}  # the lock file holds only the holder's pid
    offenders = []
    for folder in ("greedyprune", "analysis"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = str(path.relative_to(REPO))
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines, 1):
                for match in WRITERS.finditer(line):
                    if rel in writers or any(rel == f and token in line for f, token in allowed) \
                            or "os.devnull" in line:
                        continue  # (writing to os.devnull writes no file)
                    context = "\n".join(lines[max(0, number - 4):number])
                    if any(w in context for w in ("atomic_write(", "outputs.open(", "BytesIO")):  # inside `with ...`
                        continue
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, offenders


def _earlier_run(cli, files, out: Path) -> tuple[list[str], dict[str, bytes]]:
    """A complete ``prune --keep 0.5`` into ``out``; the argv (without budget) and the bytes it wrote."""
    argv = ["prune", "--model", str(files.lenet), "--refit", "none", "--out", str(out), *CALIB]
    assert cli(*argv, "--keep", "0.5").code == 0
    return argv, _contents(out.parent)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_sigkill_before_the_commit_leaves_the_earlier_outputs_exactly(files, tmp_path, cli):
    """Both new files complete in their temporaries, killed before the journal (the commit point): the earlier
    pruned.pt and pruned.pt.json are byte for byte as they were; the next run removes the dead temporaries."""
    out = tmp_path / "run" / "pruned.pt"
    out.parent.mkdir()
    argv, before = _earlier_run(cli, files, out)
    pid = _kill_when_ready(argv + ["--keep", "0.3"], tmp_path, "journal")
    after = _contents(out.parent)
    assert {k: v for k, v in after.items() if not k.startswith(".")} == before
    assert sorted(k for k in after if k.startswith(".")) == sorted(
        [k for k in after if re.fullmatch(rf"\.pruned\.pt(\.json)?\..+-{pid}\.\w+\.tmp", k)])
    assert cli(*argv, "--keep", "0.3").code == 0
    assert sorted(_contents(out.parent)) == ["pruned.pt", "pruned.pt.json"]
    assert json.loads(report_path(out).read_text())["budget"]["keep"] == 0.3


@pytest.mark.parametrize("next_command", ["info", "load", "prune"])
def test_sigkill_between_renames_is_completed_by_the_next_command(files, tmp_path, cli, next_command):
    """Killed after the journal and the model's rename, before the report's: the next greedyprune command that
    reads or writes the pair finishes the renames, so the new model never stays beside the old report."""
    out = tmp_path / "run" / "pruned.pt"
    out.parent.mkdir()
    argv, before = _earlier_run(cli, files, out)
    _kill_when_ready(argv + ["--keep", "0.3"], tmp_path, "between-renames")
    journals = sorted(p.name for p in out.parent.glob(".*.commit"))
    assert journals == [".pruned.pt.commit"]
    assert json.loads(report_path(out).read_text())["budget"]["keep"] == 0.5  # the old report, for now
    if next_command == "info":
        result = cli("info", out)
        assert result.code == 0 and "method reoptimized" in result.out, result.err
    elif next_command == "load":
        assert greedyprune.load(out)[1].out_features == 90
    else:
        assert cli(*argv, "--keep", "0.3", "--seed", "1").code == 0
    assert json.loads(report_path(out).read_text())["budget"]["keep"] == 0.3  # completed: the new pair
    assert load_report(out)["budget"]["keep"] == 0.3
    assert sorted(_contents(out.parent)) == ["pruned.pt", "pruned.pt.json"]  # no journal, no temporaries


def test_failed_report_write_at_the_end_keeps_the_earlier_outputs(files, tmp_path, cli, monkeypatch):
    """The disk fills up while the report is written, after the pruning: exit 2 with one line, and the
    earlier pruned.pt and pruned.pt.json are exactly as they were (the new model is not lost either: it was
    never put in their place)."""
    import errno

    from greedyprune.commit import OutputSet
    out = tmp_path / "pruned.pt"
    argv, before = _earlier_run(cli, files, out)
    real = OutputSet.save_json

    def full_disk(self, obj, path):  # the report's first bytes go out, then the disk is full
        if not str(path).endswith(".pt.json"):
            return real(self, obj, path)
        with self.open(path, "w") as handle:
            handle.write("{")
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(OutputSet, "save_json", full_disk)
    result = cli(*argv, "--keep", "0.3")
    assert result.code == 2 and len(result.lines) == 1 and "Traceback" not in result.err, result.err
    assert "No space left on device" in result.lines[0] and "nothing was replaced" in result.lines[0]
    assert _contents(tmp_path) == before


def test_outputs_get_the_umask_mode_and_replaced_files_keep_theirs(files, tmp_path, cli):
    """mkstemp creates 0600 files; outputs get 0666 minus the umask, like any file the user creates."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "pruned.pt"
        assert cli("prune", "--model", files.lenet, "--keep", "0.5", "--refit", "none", "--out", out, *CALIB).code == 0
        assert _mode(out) == _mode(report_path(out)) == 0o644  # others can read the pruned model
        os.umask(0o077)
        save_json({"run": 1}, tmp_path / "private.json")
        assert _mode(tmp_path / "private.json") == 0o600
        os.umask(0o002)
        (tmp_path / "private.json").chmod(0o640)
        save_json({"run": 2}, tmp_path / "private.json")  # replaced: keeps the mode it had
        assert _mode(tmp_path / "private.json") == 0o640
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
