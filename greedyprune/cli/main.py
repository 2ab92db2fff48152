"""``greedyprune`` console script: one sub-command per registered module.

Every sub-command module exposes ``Options`` (a dataclass), ``HELP`` (one line) and ``run(options)``.
Bad input raises :class:`greedyprune.errors.UserError`, printed here as one line with exit code 2
(``--debug`` shows the traceback instead). Under ``torchrun`` (``WORLD_SIZE > 1``) the process group is
joined before the command runs (NCCL for ``--device cuda``, else gloo) and left when it ends; an error
every rank raised (``UserError.all_ranks``) is printed by rank 0 alone. ``python -m greedyprune`` runs
:func:`main` too (``torchrun ... -m greedyprune COMMAND ...``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import UserError
from .options import add_arguments, from_namespace

# name -> module (imported lazily so `greedyprune --help` stays fast)
registered_commands = {
    "prune": "greedyprune.cli.prune",
    "eval": "greedyprune.cli.evaluate",
    "info": "greedyprune.cli.info",
    "train": "greedyprune.cli.train",
    "analyze": "greedyprune.cli.analyze",
    "baseline": "greedyprune.cli.baseline",
    "demo": "greedyprune.cli.demo",
}


def _available() -> dict[str, object]:
    modules = {}
    for name, path in registered_commands.items():
        try:
            modules[name] = importlib.import_module(path)
        except ModuleNotFoundError as err:
            if err.name != path:  # a real missing dependency inside the module: surface it
                raise
    return modules


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): the same shape as every other greedyprune error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # under torchrun every rank parses the same arguments: rank 0 alone says what is wrong
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n" if _launch_rank() == 0 else None)


def _launch_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun or when unreadable)."""
    value = os.environ.get("RANK", "0").strip()
    return int(value) if value.isdigit() and os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1") else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="greedyprune", description="Provable pruning by greedy forward selection.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _available().items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        add_arguments(command, module.Options)
        command.set_defaults(_module=module)
    return parser


def _set_threads() -> None:
    import torch
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _set_threads()
    from ..distributed import destroy, init_from_env, world
    rank = _launch_rank()
    try:
        try:
            options = from_namespace(args._module.Options, args)
        except UserError as err:  # the same arguments on every rank: the same error
            err.all_ranks = True
            raise
        joined = init_from_env(getattr(options, "device", None))
        rank = world()[0]
        try:
            args._module.run(options)
        finally:
            if joined:
                destroy()
    except UserError as err:
        if args.debug:
            raise
        if rank == 0 or not err.all_ranks:  # an error every rank raised is printed once, by rank 0
            print(f"greedyprune {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"greedyprune {args.command}: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as err:  # under torchrun: a collective that timed out or lost a rank -> one line
        from ..distributed import lost_ranks_error
        launched = os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1")
        error = lost_ranks_error(err, rank) if launched else None
        if error is None or args.debug:
            raise
        print(f"greedyprune {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a reader that stopped early (| head): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
