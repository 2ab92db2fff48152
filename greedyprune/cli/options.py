"""Hyperparameters as dataclasses; their field help drives the CLI.

A field is declared as ``name: type = field(default=..., metadata={"help": "...", "choices": [...]})``.
:func:`add_arguments` turns every field into ``--name`` (underscores become dashes), booleans into
``--name / --no-name``; :func:`from_namespace` builds the dataclass back from parsed arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def opt(default: Any, help: str, choices: list[str] | None = None, short: str | None = None) -> Any:
    """Declare a dataclass field with CLI help (and optional choices / short flag)."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = list(choices)
    if short is not None:
        meta["short"] = short
    return dataclasses.field(default=default, metadata=meta)


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; plain types pass through."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one ``--flag`` per dataclass field of ``cls``, with the field's help text and default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        names = [flag] + ([f.metadata["short"]] if "short" in f.metadata else [])
        if kind is bool:
            parser.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help_text)
            continue
        default_shown = "" if f.default is None else f" (default: {f.default})"
        parser.add_argument(*names, dest=f.name, type=kind, default=f.default,
                            choices=f.metadata.get("choices"), help=help_text + default_shown,
                            metavar=None if "choices" in f.metadata else f.name.upper())


def from_namespace(cls: type[T], namespace: argparse.Namespace) -> T:
    """Build ``cls`` from the parsed arguments (fields absent from the namespace keep their defaults)."""
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if hasattr(namespace, f.name)}
    return cls(**values)


def non_default(options: Any) -> dict[str, Any]:
    """The fields of a dataclass instance that differ from their defaults."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if getattr(options, f.name) != f.default}


def settings_hash(options: Any, length: int = 10) -> str:
    """A short stable hash of the non-default settings: experiment folders are named by it."""
    text = json.dumps(non_default(options), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
