"""Command-line conveniences: the model file as a positional argument, and output piped into ``head``."""

import os
import subprocess
import sys

from .conftest import REPO


def test_model_file_positionally_or_with_flag(cli, files):
    by_position, by_flag = cli("info", files.lenet), cli("info", "--model", files.lenet)
    assert by_position.code == by_flag.code == 0
    assert by_position.out == by_flag.out and "lenet300-100" in by_position.out
    evaluated = cli("eval", files.lenet, "--data", "random:1x28x28")
    assert evaluated.code == 0 and '"params": 266610' in evaluated.out


def test_a_reader_that_stops_early_is_not_an_error(files):
    """``greedyprune info m.pt | head -1``: the closed pipe ends the command quietly (exit 141, no traceback)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "greedyprune.cli.main", "info", str(files.lenet)], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before the child (still importing torch) writes anything
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141 and b"Traceback" not in err and err.strip() == b"", err.decode()
