# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The options every subcommand shares, written once: `--model` (with `--revision` and `--device`), `--json [FILE]`,
numbers checked where they are parsed, paths checked before any work, and former spellings still accepted with a
note. One convention for all: options spelled with underscores (`--top_k`, as transformers' scripts), the model
always `--model`."""

import argparse
import os
import sys
from collections.abc import Callable


def _number(kind: type, low: float, high: float | None = None, what: str = "") -> Callable[[str], float]:
    """An argparse `type`: a number of `kind` in [low, high], refused (naming the option, by argparse) otherwise."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"expected {what or kind.__name__} {bounds}, got {text!r}")
        return value

    parse.__name__ = what or kind.__name__  # argparse names the type in its message
    return parse


positive_int = _number(int, 1, what="a whole number")
non_negative_int = _number(int, 0, what="a whole number")
port_number = _number(int, 1, 65535, what="a port number")
probability = _number(float, 0.0, 1.0, what="a number")


def check_paths(hub_or_local: dict[str, str | None] = None, local: dict[str, str | None] = None) -> None:
    """Before any work: a Hub id or local path (`{option: value}`) that looks like a path must exist; what can only be
    local (an image or masks folder, a file) must exist whatever it looks like. Each refusal names the option."""
    from ..paths_rvernet import check_existing_path, check_local_path

    for option, value in (hub_or_local or {}).items():
        check_local_path(value, option)
    for option, value in (local or {}).items():
        check_existing_path(value, option)


class FormerName(argparse.Action):
    """An option that had another spelling: the former one still works and prints a note saying the new one."""

    def __init__(self, option_strings, dest, former: str, **kwargs):
        self.former = former
        super().__init__([*option_strings, former], dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == self.former:
            print(
                f"note: {self.former} is deprecated; it is now {self.option_strings[0]} (the same option in every "
                "subcommand).",
                file=sys.stderr,
            )
        setattr(namespace, self.dest, values if self.nargs != 0 else self.const)


def add_model_options(
    parser: argparse.ArgumentParser,
    required: bool = True,
    what: str = "a saved model folder or Hub id",
    former_positional: bool = False,
) -> None:
    """`--model` (with `former_positional`, also accepted as the first positional argument, its former place, with a
    note), `--revision` and `--device`."""
    parser.add_argument("--model", help=what)
    if former_positional:
        parser.add_argument("former_model", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--revision", help="the model's branch, tag or commit (Hub ids)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cpu, or the pipeline's choice)")
    parser.set_defaults(model_required=required)


def resolve_model(args: argparse.Namespace) -> argparse.Namespace:
    """`--model`, or the model given where it used to go (the first positional argument), with a note."""
    former = getattr(args, "former_model", None)
    if former is not None:
        if args.model is not None:
            raise ValueError(f"the model is given twice ({former!r} and --model {args.model!r}): give --model only.")
        print(f"note: the model as the first argument is deprecated; it is now --model {former}.", file=sys.stderr)
        args.model = former
    if getattr(args, "model_required", False) and args.model is None:
        raise ValueError("--model is required (a saved model folder or Hub id).")
    return args


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json` alone prints JSON on stdout; `--json FILE` writes it to FILE (never over an existing one)."""
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE", help=f"{what} as JSON: on stdout, or to FILE")


def refuse_existing(*pairs: tuple[str, str | None]) -> None:
    """Output files (`(option, path)`) must not exist: finished work is never overwritten."""
    for option, path in pairs:
        if path and path != "-" and os.path.exists(path):
            raise ValueError(f"{option} {path} exists: finished work is never overwritten; choose another file.")


def write_json(target: str, rows) -> None:
    """`--json`'s output: stdout for "-", else the file, written aside then renamed (complete or absent)."""
    import json

    from ..run_folder import replaced_atomically

    text = json.dumps(rows, indent=2, default=lambda value: getattr(value, "tolist", lambda: str(value))())
    if target == "-":
        print(text)
        return
    with replaced_atomically(target) as partial, open(partial, "w") as handle:
        handle.write(text + "\n")


__all__ = [
    "FormerName",
    "add_json_option",
    "add_model_options",
    "check_paths",
    "non_negative_int",
    "port_number",
    "positive_int",
    "probability",
    "refuse_existing",
    "resolve_model",
    "write_json",
]
