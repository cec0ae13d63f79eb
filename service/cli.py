"""The ``gradpool`` command line: one parser, one entry point."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import metadata

import grpc

from service.cli_client import add_client_commands, grpc_error_line
from service.cli_options import EXIT_USAGE, OneLineParser
from service.cli_serve import add_serve_command
from service.cli_train import EXIT_FAILED, add_train_command
from service.data import DataError

EXIT_INTERRUPTED = 130


def package_version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("gradpool")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The parser of every gradpool command."""
    parser = OneLineParser(
        prog="gradpool",
        description="Data-parallel training of a two-layer network on Ray.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action="version", version=f"gradpool {package_version()}"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    add_train_command(commands)
    add_serve_command(commands)
    add_client_commands(commands)
    for command in commands.choices.values():
        # Prefixes of options (--epoch for --epochs) would be taken silently.
        command.allow_abbrev = False
        command.set_defaults(parser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradpool`` console script."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Reported by the command's own parser, so the message names it.
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args)
    except DataError as error:
        flag = "--" + error.field.replace("_", "-")
        print(f"gradpool {args.command}: error: {flag}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as error:
        print(grpc_error_line(args.command, error, args.server), file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader of our output went away (gradpool list | head).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"gradpool {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
