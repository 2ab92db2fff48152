"""``--ye-*`` flags come from Ye2020Options itself: every field reaches the baseline, none is restated."""

from __future__ import annotations

import argparse
import dataclasses

from greedyprune.cli import prune as prune_command
from greedyprune.cli.options import add_arguments, from_namespace, unprefixed
from greedyprune.ye2020 import Ye2020Options


def _changed(value):
    """A value of the same type that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1 if isinstance(value, int) else value / 2
    return "crop-flip" if value == "none" else "none"


def test_every_ye2020_setting_is_a_flag_that_reaches_the_baseline():
    parser = argparse.ArgumentParser()
    add_arguments(parser, prune_command.Options)
    settings = {f.name: _changed(f.default) for f in dataclasses.fields(Ye2020Options) if f.name != "seed"}
    argv = []
    for name, value in settings.items():
        flag = "--ye-" + name.replace("_", "-")
        argv += [flag if value else "--no-ye-" + name.replace("_", "-")] if isinstance(value, bool) else [flag, str(value)]
    options = from_namespace(prune_command.Options, parser.parse_args(argv + ["--seed", "7"]))
    ye = unprefixed(Ye2020Options, options, "ye_", seed=options.seed)
    assert dataclasses.asdict(ye) == {**settings, "seed": 7}
    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(prune_command.Options)}
    assert help_text["ye_tolerance"].startswith("ye2020: a layer stops growing")
    assert "ye_seed" not in help_text  # the command's --seed is the baseline's seed
