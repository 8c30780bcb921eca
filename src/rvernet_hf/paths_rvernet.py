# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Telling a local path from a Hub id, so that a missing folder is named as missing before any Hub call (a Hub error
for `./typo` says nothing useful). Uploaded next to the weights with the segmenter code: imports only the standard
library.
"""

import os


def looks_like_local_path(value: str) -> bool:
    """A local path, not a Hub id (`org/name`): it starts with `.`, `/` or `~`, holds the OS's own separator where
    that is not `/`, or has more than one `/`."""
    return value.startswith((".", "/", "~")) or (os.sep != "/" and os.sep in value) or value.count("/") > 1


def check_local_path(value: str | os.PathLike | None, argument: str) -> None:
    """Refuse (`FileNotFoundError`, naming `argument`) a value that looks like a local path but does not exist."""
    if value is None:
        return
    value = os.fspath(value)
    if looks_like_local_path(value) and not os.path.exists(os.path.expanduser(value)):
        where = os.path.abspath(os.path.expanduser(value))
        raise FileNotFoundError(f"{argument} {value!r} is a local path that does not exist ({where}).")


def check_existing_path(value: str | os.PathLike | None, argument: str) -> None:
    """Refuse (`FileNotFoundError`, naming `argument`) a value that can only be a local path (a folder of masks, a
    file) and does not exist, whatever it looks like: `data/train_mask` is never a Hub id there."""
    if value is None:
        return
    value = os.fspath(value)
    if not os.path.exists(os.path.expanduser(value)):
        where = os.path.abspath(os.path.expanduser(value))
        raise FileNotFoundError(f"{argument} {value!r} does not exist ({where}); it names a local file or folder.")


__all__ = ["check_existing_path", "check_local_path", "looks_like_local_path"]
