"""A checkpoint that would run code when unpickled is refused by every greedyprune entry point.

The payload is real: ``torch.load(weights_only=False)`` of the same file creates the marker file (checked
first), so the marker's absence afterwards shows that nothing in greedyprune unpickled it.
"""

from __future__ import annotations

import builtins
import pickle
import re
from pathlib import Path

import pytest
import torch

import greedyprune
from greedyprune.errors import UserError
from greedyprune.io import load_checkpoint
from greedyprune.modelfile import load_report
from greedyprune.models import build_model, cached_model_path, load_weights, trained_model
from greedyprune.paths import checkpoint_path

from .conftest import CALIB, REPO, assert_user_error


class Payload:
    """Unpickling this calls ``exec`` with code that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.fixture
def evil(tmp_path) -> dict:
    """Malicious checkpoints in the shapes greedyprune reads, and the marker their payload would create."""
    marker = tmp_path / "PWNED"
    state = build_model("lenet300-100").state_dict()
    files = {
        # a greedyprune model file with the payload hidden among the tensors
        "model": {"format": "greedyprune-model/1", "spec": {"name": "lenet300-100", "num_classes": 10},
                  "state_dict": {**state, "1.weight": Payload(marker)}, "report_json": None},
        # a plain state dict (as --weights reads)
        "weights": {**state, "extra": Payload(marker)},
        # the bare payload
        "bare": Payload(marker),
    }
    paths = {}
    for name, obj in files.items():
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(obj, paths[name])
    paths["legacy"] = tmp_path / "legacy.pth"  # the pre-zip torch.save format: a raw pickle stream
    paths["legacy"].write_bytes(pickle.dumps(Payload(marker), protocol=2))
    return {"marker": marker, **paths}


def _refused(message: str) -> None:
    assert "refusing to load" in message and "import exec" in message and "could run code" in message, message
    assert "\n" not in message


def test_the_payload_is_live(evil):
    """Guard: loading unsafely really runs the code -- so its absence below means it was never unpickled."""
    torch.load(evil["bare"], weights_only=False)
    assert evil["marker"].exists()


@pytest.mark.parametrize("kind", ["model", "weights", "bare", "legacy"])
def test_python_entry_points_refuse(evil, kind):
    path = evil[kind]
    for load in (load_checkpoint, load_report, greedyprune.load,
                 lambda p: greedyprune.load(p, model=build_model("lenet300-100")),
                 lambda p: load_weights(build_model("lenet300-100"), p)):
        with pytest.raises(UserError) as info:
            load(path)
        _refused(str(info.value))
    assert not evil["marker"].exists()


@pytest.mark.parametrize("command", ["prune", "eval", "info", "analyze"])
def test_cli_model_file_refused(cli, evil, tmp_path, command):
    out = tmp_path / "out"
    extra = {"prune": ["--keep", "0.5", "--out", out, *CALIB], "eval": ["--data", "random:1x28x28"], "info": [],
             "analyze": ["--out", out, *CALIB]}[command]
    line = assert_user_error(cli(command, "--model", evil["model"], *extra), command, "refusing to load",
                             "would import exec", outputs=(out,))
    assert "model.pt" in line
    assert not evil["marker"].exists()


@pytest.mark.parametrize("command", ["prune", "eval", "analyze"])
def test_cli_weights_file_refused(cli, evil, tmp_path, command):
    out = tmp_path / "out"
    extra = {"prune": ["--keep", "0.5", "--out", out, *CALIB], "eval": ["--data", "random:1x28x28"],
             "analyze": ["--out", out, *CALIB]}[command]
    for kind in ("weights", "legacy"):
        assert_user_error(cli(command, "--model", "lenet300-100", "--weights", evil[kind], *extra), command,
                          "refusing to load", "would import exec", outputs=(out,))
    assert not evil["marker"].exists()


def test_training_resume_refuses_a_planted_checkpoint(cli, evil, tmp_path):
    """``greedyprune train --out DIR`` resumes from DIR/checkpoint.pt: a planted one is refused, nothing trains."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    checkpoint_path(run_dir).write_bytes(evil["weights"].read_bytes())
    assert_user_error(cli("train", "--model", "small-cnn", "--data", "random:1x28x28", "--epochs", "0.05",
                          "--out", run_dir), "train", "refusing to load", "checkpoint.pt", "would import exec",
                      outputs=(run_dir / "model.pt",))
    assert not evil["marker"].exists()


def test_model_cache_refuses_a_planted_model(evil, tmp_path, monkeypatch):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    path = cached_model_path("small-cnn")
    path.parent.mkdir(parents=True)
    path.write_bytes(evil["model"].read_bytes())
    with pytest.raises(UserError) as info:
        trained_model("small-cnn", progress=False)
    _refused(str(info.value))
    assert not evil["marker"].exists()


def _call_text(text: str, start: int) -> str:
    """The source of a call from its name to the matching closing parenthesis."""
    depth, i = 0, text.index("(", start)
    while i < len(text):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i + 1]
        i += 1
    return text[start:]


def test_every_torch_load_in_the_repository_is_weights_only():
    """Static guard: no ``torch.load(`` anywhere in the project without ``weights_only=True``."""
    offenders = []
    for folder in ("greedyprune", "analysis", "experiments", "scripts", "tests"):
        for path in sorted((REPO / folder).rglob("*.py")) if (REPO / folder).is_dir() else []:
            text = path.read_text()
            for match in re.finditer(r"torch\.load\(", text):
                call = _call_text(text, match.start())
                if "weights_only=True" in call:
                    continue
                if path.name == Path(__file__).name and "weights_only=False" in call:
                    continue  # test_the_payload_is_live: proves the payload runs when loaded unsafely
                offenders.append(f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}: {call}")
    assert not offenders, offenders
