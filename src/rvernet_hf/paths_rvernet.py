# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Telling a local path from a Hub id, so that a missing folder is named as missing before any Hub call (a Hub error
for `./typo` says nothing useful). Uploaded next to the weights with the segmenter code: imports only the standard
library (and huggingface_hub, to ask the Hub about a value that reads both ways).
"""

import os


def looks_like_local_path(value: str) -> bool:
    """A local path, not a Hub id (`org/name`): it starts with `.`, `/` or `~`, holds the OS's own separator where
    that is not `/`, or has more than one `/`."""
    return value.startswith((".", "/", "~")) or (os.sep != "/" and os.sep in value) or value.count("/") > 1


def check_local_path(value: str | os.PathLike | None, argument: str) -> None:
    """Refuse (`FileNotFoundError`, naming `argument`) a value that looks like a local path but does not exist; and
    one that reads both ways (`towers/nope` where a folder `towers/` is here, without `nope` in it) unless the Hub
    holds it, saying both readings."""
    if value is None:
        return
    value = os.fspath(value)
    where = os.path.abspath(os.path.expanduser(value))
    if looks_like_local_path(value):
        if not os.path.exists(os.path.expanduser(value)):
            raise FileNotFoundError(f"{argument} {value!r} is a local path that does not exist ({where}).")
        return
    first = value.split("/", 1)[0]
    if "/" in value and os.path.isdir(first) and not os.path.exists(value):
        reached = _hub_answer(value)
        if reached is not True:
            raise FileNotFoundError(
                f"{argument} {value!r} is neither here nor on the Hub: as a local path, {where} does not exist (its "
                f"folder {first}/ does); as a Hub id, {reached}."
            )


def _hub_answer(repo_id: str):
    """True when the Hub holds the model repository `repo_id`, else why not (a sentence)."""
    try:
        from huggingface_hub import constants, repo_exists

        if constants.HF_HUB_OFFLINE:
            return "it cannot be reached (HF_HUB_OFFLINE is set)"
        return True if repo_exists(repo_id) else "no such repository"
    except Exception as error:  # no connection, a malformed id, no huggingface_hub: the Hub did not answer
        return f"it could not be reached ({type(error).__name__})"


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
