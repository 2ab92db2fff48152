"""Shared pieces of the reliability tests: tiny model files, image folders, and a CLI runner.

Every bad-input case runs the real CLI entry point (``greedyprune.cli.main.main``) and checks what a
user sees: exit code 2, exactly one stderr line ``greedyprune COMMAND: error: ...`` holding the key
words, no traceback, and no output file (nor a temporary one) left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import greedyprune
from greedyprune.cli.main import main
from greedyprune.models import build_model

REPO = Path(__file__).resolve().parents[2]
CALIB = ["--data", "random:1x28x28", "--calib", "48", "--batch-size", "16", "--no-progress"]


@dataclass
class Files:
    """Model/weights files every test may read (written once per session; never modified)."""

    root: Path
    lenet: Path          # greedyprune model file (spec + state dict) of lenet300-100
    lenet_weights: Path  # plain state dict of lenet300-100
    cnn_weights: Path    # plain state dict of small-cnn (wrong architecture for lenet300-100)
    truncated: Path      # lenet_weights cut in half
    garbage: Path        # bytes that are no checkpoint
    empty: Path          # 0 bytes
    nan_model: Path      # small-cnn model file whose first conv holds NaN
    dead_model: Path     # lenet300-100 model file whose first layer's ReLUs never fire
    mnv3: Path           # mobilenet_v3_small model file (random weights, for 3-channel image folders)


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> Files:
    root = tmp_path_factory.mktemp("model-files")
    torch.manual_seed(0)
    lenet = build_model("lenet300-100")
    greedyprune.save(root / "lenet.pt", lenet)
    torch.save(lenet.state_dict(), root / "lenet-weights.pth")
    torch.save(build_model("small-cnn").state_dict(), root / "small-cnn-weights.pth")
    data = (root / "lenet-weights.pth").read_bytes()
    (root / "truncated.pth").write_bytes(data[: len(data) // 2])
    (root / "garbage.pth").write_bytes(b"GIF89a" + bytes(range(256)) * 8)
    (root / "empty.pth").write_bytes(b"")
    cnn = build_model("small-cnn")
    with torch.no_grad():
        cnn[0].weight[0, 0, 0, 0] = float("nan")
    greedyprune.save(root / "nan.pt", cnn)
    dead = build_model("lenet300-100")
    with torch.no_grad():
        dead[1].bias.fill_(-1e4)
    greedyprune.save(root / "dead.pt", dead)
    greedyprune.save(root / "mnv3.pt", build_model("mobilenet_v3_small"))
    return Files(root, root / "lenet.pt", root / "lenet-weights.pth", root / "small-cnn-weights.pth",
                 root / "truncated.pth", root / "garbage.pth", root / "empty.pth", root / "nan.pt", root / "dead.pt",
                 root / "mnv3.pt")


def write_image_folder(root: Path, per_class: int = 3, size: int = 12, classes=("a", "b"), seed: int = 0,
                       same: bool = False) -> Path:
    """``root/<class>/<i>.png`` RGB images (random, or all identical with ``same``)."""
    rng = np.random.default_rng(seed)
    fixed = (rng.random((size, size, 3)) * 255).astype("uint8")
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = fixed if same else (rng.random((size, size, 3)) * 255).astype("uint8")
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys):
    """``cli(*argv)`` runs the greedyprune CLI in this process and returns (exit code, stdout, stderr)."""
    def run(*argv) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)
    return run


def assert_user_error(result: Result, command: str, *words: str, outputs: tuple = ()) -> str:
    """Exit 2, one stderr line ``greedyprune COMMAND: error: ...`` with ``words``, no traceback, no outputs."""
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err
    assert len(result.lines) == 1, result.err
    line = result.lines[0]
    assert line.startswith(f"greedyprune {command}: error: "), line
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    for path in outputs:
        path = Path(path)
        assert not path.exists(), f"{path} left behind"
        if path.parent.is_dir():
            leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]
            assert not leftovers, leftovers
    return line


def run_cli_subprocess(*argv, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    """`python -m greedyprune ARGS` in a fresh process: the console script's code path (what a user's shell runs)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-m", "greedyprune", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or REPO, env=env)


@pytest.fixture(scope="session")
def read_only_dir(tmp_path_factory) -> Path:
    """A folder this process cannot create files in (chmod 555; as root, where that does not bind, /sys)."""
    folder = tmp_path_factory.mktemp("read-only")
    folder.chmod(0o555)
    try:
        fd, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        return folder
    os.close(fd)
    os.unlink(probe)
    folder.chmod(0o755)
    shutil.rmtree(folder)
    sysfs = Path("/sys")  # root ignores file modes; sysfs refuses new files even for root
    assert sysfs.is_dir(), "no read-only folder available for this test"
    return sysfs
