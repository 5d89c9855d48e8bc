"""The ``cellfrontier`` command: ``run`` and ``status`` for jobs, ``simulate`` for the reference workloads.

Each subcommand's parser and handler live with it (:mod:`cellfrontier.commands.run`,
:mod:`cellfrontier.commands.status`, :mod:`cellfrontier.simulate.cli`); this module only puts
them together.  ``python -m cellfrontier`` is the same command.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cellfrontier.commands import run, status
from cellfrontier.simulate import cli as simulate

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cellfrontier",
        description="Run and inspect cellfrontier jobs, and the reference workloads.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parser(subcommands)
    status.add_parser(subcommands)
    simulate.add_parser(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    status_code: int = args.handler(args)
    return status_code
