# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The `rvernet-hf` command line: the parser made of the subcommands (`commands/`, one module each, each registering
itself), and one line per user error. `python -m rvernet_hf.cli` and `python -m rvernet_hf` run it too."""

import argparse
import re
import sys

from .commands import COMMANDS
from .errors import RveRNetError


# Errors a user fixes by changing an input or an option (a bad image, a bad box, a missing file, a folder in use, a
# missing extra): one clear line and a non-zero exit, the traceback only with --debug. A `RuntimeError` from torch
# (out of memory, a kernel failure) is a bug or a machine problem, not a bad input: it keeps its traceback.
USER_ERRORS = (RveRNetError, ValueError, OSError)
_NUMBER_LIST = re.compile(r"^-?\d+(\.\d*)?(,-?\d+(\.\d*)?)*$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvernet-hf", description="RveRNet: ROI + context classification with SAM masks and CNN distillation."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def _join_negative_values(argv: list[str], flags=("--box", "--point")) -> list[str]:
    """`--box -10,5,30,40` as `--box=-10,5,30,40`: argparse would take the value for an option."""
    joined, index = [], 0
    while index < len(argv):
        token = argv[index]
        if token in flags and index + 1 < len(argv) and _NUMBER_LIST.match(argv[index + 1]):
            joined.append(f"{token}={argv[index + 1]}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [token for token in argv if token != "--debug"]
    try:
        return _dispatch(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"rvernet-hf: error: {error}", file=sys.stderr)
        print("(run again with --debug for the traceback)", file=sys.stderr)
        return 1


def _dispatch(argv: list[str]) -> int:
    for command in COMMANDS:  # `demo` and `train` parse their own arguments (their --help, a JSON file)
        name = command.__name__.rsplit(".", 1)[-1]
        if getattr(command, "OWN_ARGUMENTS", False) and argv[:1] == [name]:
            return int(command.main(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(argv))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
