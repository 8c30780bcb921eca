# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The `rvernet-hf` subcommands, one module each, registered one way: each module's `register(subparsers)` adds its
parser with `run(args) -> int` as its function (as transformers' command line registers its commands). `demo` and
`train` parse their own arguments (their `main(argv)`), so that `--help` and a JSON file reach their parsers. What a
command does lives in the modules it calls: a command parses, checks and prints."""

from . import app, convert_original, demo, env, evaluate, export, masks, predict, push, train


COMMANDS = (demo, train, predict, evaluate, masks, export, convert_original, push, app, env)

__all__ = ["COMMANDS"]
