"""Option dataclass fields with help text (``opt``) and hashing of settings.

Library modules declare their hyperparameters with :func:`opt`; the command line (``greedyprune.cli.options``)
turns the same fields into flags, so help text lives in one place and the library never imports the CLI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Callable


SEED_RANGE = (0, 2**32 - 1)  # what every generator (torch, numpy, python) accepts


def opt(default: Any, help: str, choices: list[str] | Callable[[], list[str]] | None = None,
        short: str | None = None, positional: bool = False,
        between: tuple[float | None, float | None] | None = None) -> Any:
    """Declare a dataclass field with CLI help (and optional choices / short flag / allowed range).

    ``choices`` is a list, or a function returning one when the command line is built (choices read
    from a registry, so a method registered later is accepted). ``positional=True`` also accepts the
    value as an optional positional argument (``greedyprune info pruned.pt`` as well as
    ``greedyprune info --model pruned.pt``). ``between=(low, high)`` (either may be None) bounds a
    number: the command line refuses a value outside it, naming the flag, before any work
    (:func:`check_range`).
    """
    meta: dict[str, Any] = {"help": help}
    if between is not None:
        meta["between"] = tuple(between)
    if positional:
        meta["positional"] = True
    if choices is not None:
        meta["choices"] = choices if callable(choices) else list(choices)
    if short is not None:
        meta["short"] = short
    return dataclasses.field(default=default, metadata=meta)


def non_default(options: Any) -> dict[str, Any]:
    """The fields of a dataclass instance that differ from their defaults."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if getattr(options, f.name) != f.default}


def settings_hash(options: Any, length: int = 10) -> str:
    """A short stable hash of the non-default settings: experiment folders are named by it."""
    text = json.dumps(non_default(options), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def check_range(name: str, value: Any, between: tuple) -> str | None:
    """Why ``value`` is outside ``between = (low, high)`` (None when inside, or when ``value`` is None)."""
    low, high = between
    if value is None or isinstance(value, bool):
        return None
    if value != value:  # NaN
        return f"{name} must be a number, got {value}"
    if low is not None and high is not None and not low <= value <= high:
        return f"{name} must be between {low} and {high}, got {value}"
    if low is not None and value < low:
        return f"{name} must be at least {low}, got {value}"
    if high is not None and value > high:
        return f"{name} must be at most {high}, got {value}"
    return None
