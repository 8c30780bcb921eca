# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""A training run's output folder: nothing finished is lost, nothing half-written is used.

- `check_output_dir`: a folder that already holds a run (checkpoints or a finished model) is resumed when asked, or
  replaced when `--overwrite_output_dir` says so, or refused before any work, with a message that says how to go on.
- `OutputDirLock`: one training run per folder; a second one refuses to start and names the first (its process id,
  host, start time and command). A lock left by a killed process on this host is taken over, with a warning.
- Checkpoints are written under `<output_dir>/.incomplete/` and renamed into place when every process has finished
  writing (`RveRNetTrainer._save_checkpoint`), so a `checkpoint-N` folder is always complete;
  `find_resumable_checkpoint` also checks each one and skips (naming it) any that is not.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from .errors import FolderInUseError


logger = logging.get_logger(__name__)

STAGING_DIR = ".incomplete"
LOCK_FILE = ".rvernet-train.lock"
# Files that mean "a finished run lives here" (written at the end of `run`).
FINISHED_FILES = ("model.safetensors", "train_results.json", "trainer_state.json")
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path` to write a file or a folder to; when the block ends without error, one
    rename puts it in place (a reader finds the old file or the new one, never a torn one; a folder may replace an
    empty folder only); on error what was written is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary)
        elif os.path.exists(temporary):
            os.remove(temporary)


def checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The `checkpoint-N` folders of `output_dir`, newest (highest N) first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)]
    return sorted(found, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)), reverse=True)


def incomplete_reason(checkpoint: str | os.PathLike) -> str | None:
    """Why a checkpoint folder cannot be resumed from (None when it is complete): its trainer state and weights must
    be there and readable, and the optimizer state, when saved, must not be empty."""
    folder = Path(checkpoint)
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as error:
        return f"trainer_state.json is unreadable ({error})"
    weights = [*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")]
    if not weights:
        return "no model weights"
    if any(p.stat().st_size == 0 for p in weights):
        return "empty model weights"
    optimizer = folder / "optimizer.pt"
    if optimizer.exists() and optimizer.stat().st_size == 0:
        return "optimizer.pt is empty"
    return None


def find_resumable_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest COMPLETE checkpoint of `output_dir` (None when there is none); each newer one that is not complete
    is named in a warning, as are leftovers of a checkpoint that was being written when its run was killed."""
    staging = Path(output_dir) / STAGING_DIR
    for leftover in sorted(staging.glob(f"{PREFIX_CHECKPOINT_DIR}-*")) if staging.is_dir() else ():
        logger.warning(f"Skipping {leftover}: a checkpoint that was still being written when its run stopped.")
    for checkpoint in checkpoints(output_dir):
        reason = incomplete_reason(checkpoint)
        if reason is None:
            return str(checkpoint)
        logger.warning(f"Skipping {checkpoint}: it is incomplete ({reason}).")
    return None


def holds_a_run(output_dir: str | os.PathLike) -> list[str]:
    """What in `output_dir` belongs to an earlier run (checkpoints, a finished model), as names to show."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [p.name for p in checkpoints(folder)]
    found += [name for name in FINISHED_FILES if (folder / name).exists()]
    return found


def check_output_dir(output_dir: str | os.PathLike, resume: bool, overwrite: bool) -> str | None:
    """Decide, before any work, what a training run does with `output_dir`. Returns the checkpoint to resume from
    (or None to start fresh). Refuses (ValueError) a folder that holds an earlier run unless `resume` (which needs a
    complete checkpoint) or `overwrite` (which removes that run's checkpoints and finished files first) is given."""
    earlier = holds_a_run(output_dir)
    if resume and overwrite:
        raise ValueError("--resume_from_checkpoint and --overwrite_output_dir contradict each other: choose one.")
    if resume:
        checkpoint = find_resumable_checkpoint(output_dir)
        if checkpoint is None:
            raise ValueError(
                f"--resume_from_checkpoint True, but {output_dir} has no complete checkpoint to resume from"
                + (f" (it holds {', '.join(earlier)})" if earlier else "")
                + ". Start over with --overwrite_output_dir, or choose another --output_dir."
            )
        return checkpoint
    if not earlier:
        return None
    if not overwrite:
        shown = ", ".join(earlier[:6]) + (", ..." if len(earlier) > 6 else "")
        raise ValueError(
            f"{output_dir} already holds a training run ({shown}). Resume it with --resume_from_checkpoint True, "
            "start over with --overwrite_output_dir (its checkpoints and model are deleted), or choose another "
            "--output_dir. Nothing was done."
        )
    folder = Path(output_dir)
    for name in earlier:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    shutil.rmtree(folder / STAGING_DIR, ignore_errors=True)
    logger.warning(f"--overwrite_output_dir: removed the earlier run's {', '.join(earlier)} from {output_dir}.")
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputDirLock:
    """`with OutputDirLock(output_dir):` holds `<output_dir>/.rvernet-train.lock` for the run (created atomically with
    O_EXCL). A second run into the same folder raises `RuntimeError` naming the first; a lock whose process is gone
    (same host) is taken over with a warning; a lock from another host is never broken (delete it by hand)."""

    def __init__(self, output_dir: str | os.PathLike, command: str = ""):
        self.path = Path(output_dir) / LOCK_FILE
        self.record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": command,
        }

    def _create(self) -> bool:
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.record, handle)
        return True

    def acquire(self) -> "OutputDirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._create():
            return self
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            holder = {}
        same_host = holder.get("host") == self.record["host"]
        if same_host and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
            logger.warning(
                f"Taking over {self.path}: its run (pid {holder['pid']}, started {holder.get('started')}) is gone."
            )
            self.path.unlink(missing_ok=True)
            if self._create():
                return self
            holder = json.loads(self.path.read_text())
        raise FolderInUseError(
            f"another training run is writing to {self.path.parent}: pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}, started {holder.get('started', '?')} ({holder.get('command', '')}). Wait for "
            f"it to finish, or choose another --output_dir. If that run is not running any more (killed on another "
            f"machine), delete {self.path}."
        )

    def release(self) -> None:
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> "OutputDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = [
    "LOCK_FILE",
    "STAGING_DIR",
    "OutputDirLock",
    "check_output_dir",
    "checkpoints",
    "find_resumable_checkpoint",
    "holds_a_run",
    "incomplete_reason",
]
