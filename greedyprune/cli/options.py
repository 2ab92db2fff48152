"""Hyperparameters as dataclasses; their field help drives the CLI.

A field is declared with :func:`greedyprune.options.opt` (help text, choices).
:func:`add_arguments` turns every field into ``--name`` (underscores become dashes), booleans into
``--name / --no-name``; :func:`from_namespace` builds the dataclass back from parsed arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, TypeVar

from ..errors import UserError
from ..options import check_range, non_default, opt, settings_hash  # noqa: F401  (re-exported for the commands)

T = TypeVar("T")
_POSITIONAL = "positional_"  # namespace prefix of a field's positional twin


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
        choices = f.metadata.get("choices")
        if callable(choices):  # read from a registry now, when the command line is built
            choices = list(choices())
        parser.add_argument(*names, dest=f.name, type=kind, default=f.default,
                            choices=choices, help=help_text + default_shown,
                            metavar=None if "choices" in f.metadata else f.name.upper())
        if f.metadata.get("positional"):
            parser.add_argument(_POSITIONAL + f.name, nargs="?", type=kind, default=None, metavar=f.name.upper(),
                                help=f"the same as {flag}")


def from_namespace(cls: type[T], namespace: argparse.Namespace) -> T:
    """Build ``cls`` from the parsed arguments (fields absent from the namespace keep their defaults).

    Raises :class:`UserError` when a field is given both as ``--name X`` and positionally as ``Y != X``.
    """
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if hasattr(namespace, f.name)}
    for f in dataclasses.fields(cls):
        given = getattr(namespace, _POSITIONAL + f.name, None)
        if given is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if values.get(f.name) not in (None, f.default, given):
            raise UserError(f"{f.name} given twice ({flag} {values[f.name]} and {given}); give it once")
        values[f.name] = given
    for f in dataclasses.fields(cls):  # declared ranges: refused now, before any work
        if "between" in f.metadata:
            problem = check_range("--" + f.name.replace("_", "-"), values.get(f.name), f.metadata["between"])
            if problem:
                raise UserError(problem)
    return cls(**values)


def prefixed_fields(cls: type, prefix: str, help_prefix: str,
                    exclude: tuple[str, ...] = ()) -> list[tuple[str, Any, dataclasses.Field]]:
    """The fields of option dataclass ``cls`` renamed ``prefix + name`` (help ``help_prefix + help``), as
    ``(name, type, field)`` for :func:`dataclasses.make_dataclass`: a command exposes a component's options
    (``--ye-candidates``) from that component's own declaration instead of restating them."""
    hints = typing.get_type_hints(cls)
    return [(prefix + f.name, hints[f.name],
             dataclasses.field(default=f.default, metadata={**f.metadata, "help": help_prefix + f.metadata["help"]}))
            for f in dataclasses.fields(cls) if f.name not in exclude]


def unprefixed(cls: type[T], options: Any, prefix: str, **given: Any) -> T:
    """Build ``cls`` from the ``prefix + name`` fields of ``options`` (the inverse of :func:`prefixed_fields`);
    ``given`` supplies the excluded fields."""
    return cls(**{f.name: getattr(options, prefix + f.name) for f in dataclasses.fields(cls) if f.name not in given},
               **given)


def with_flags(err: UserError, cls: type) -> UserError:
    """``err`` with the field names of ``cls`` it mentions written as the command's flags.

    A library check says ``batch_size must be >= 1``; on the command line that is ``--batch-size``.
    Names with an underscore are replaced wherever they stand alone; one-word names (``lr``) only where
    they start the message.
    """
    import re
    message = str(err)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if "_" in f.name:
            message = re.sub(rf"(?<![\w-]){re.escape(f.name)}(?![\w-])", flag, message)
        elif message.startswith(f"{f.name} "):
            message = flag + message[len(f.name):]
    return UserError(message)
