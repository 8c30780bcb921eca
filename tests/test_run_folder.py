"""Nothing lost: a training run claims its output folder before any work (resume, overwrite, or refuse), one run per
folder (a lock naming the other run), and checkpoints that become visible only when complete (a real kill while one
is written leaves nothing that resume would pick)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers.trainer_utils import get_last_checkpoint

from conftest import rvernet_args
from rvernet_hf.run_folder import LOCK_FILE, STAGING_DIR, OutputDirLock, check_output_dir, find_resumable_checkpoint
from rvernet_hf.training import main
from test_training import common


def quick(root, tower_dir, output_dir, *extra):
    return [*rvernet_args(root, tower_dir), *common(output_dir), "--do_train", "--max_steps", "2", *extra]


def test_a_folder_that_holds_a_run_is_refused_before_any_work(tmp_path, synthetic_data, tower_dir):
    out = tmp_path / "run"
    main(quick(synthetic_data, tower_dir, out))
    weights = out / "model.safetensors"
    before = (weights.stat().st_mtime_ns, weights.read_bytes())
    with pytest.raises(
        ValueError,
        match=r"already holds a training run \(model.safetensors.*--resume_from_checkpoint "
        r"True.*--overwrite_output_dir.*Nothing was done",
    ):
        main(quick(synthetic_data, tower_dir, out))
    assert (weights.stat().st_mtime_ns, weights.read_bytes()) == before  # the finished model is untouched
    with pytest.raises(ValueError, match="no complete checkpoint to resume from"):
        main(quick(synthetic_data, tower_dir, out, "--resume_from_checkpoint", "True"))
    with pytest.raises(ValueError, match="contradict"):
        check_output_dir(out, resume=True, overwrite=True)
    main(quick(synthetic_data, tower_dir, out, "--overwrite_output_dir", "--seed", "7"))
    assert weights.read_bytes() != before[1]  # replaced, as asked
    assert not (out / LOCK_FILE).exists()  # the lock is released at the end


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(tmp_path, synthetic_data, tower_dir):
    import socket

    out = tmp_path / "run"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the first run, still alive
    first = {
        "pid": other.pid,
        "host": socket.gethostname(),
        "started": "2026-11-23 10:00:00",
        "command": "rvernet-hf train (the first run)",
    }
    (out / LOCK_FILE).write_text(json.dumps(first))
    try:
        with pytest.raises(RuntimeError, match=rf"another training run is writing to .*pid {other.pid}.*first run"):
            main(quick(synthetic_data, tower_dir, out))
        assert not (out / "model.safetensors").exists()
        assert json.loads((out / LOCK_FILE).read_text()) == first  # the first run's lock is left alone
    finally:
        other.kill()
        other.wait()
    # the first run is gone: its lock is taken over (with a warning), and this run's lock released at the end
    main(quick(synthetic_data, tower_dir, out))
    assert (out / "model.safetensors").exists() and not (out / LOCK_FILE).exists()
    with OutputDirLock(out, command="held") as lock:
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid() == lock.record["pid"]
    assert not (out / LOCK_FILE).exists()


def test_a_half_written_checkpoint_is_skipped_and_named(tmp_path, caplog):
    import logging

    from transformers.utils import logging as hf_logging

    out = tmp_path / "run"
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = out / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"x" * 10)
        (folder / "optimizer.pt").write_bytes(b"x" * 10 if complete else b"")  # killed while writing the optimizer
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (out / STAGING_DIR / "checkpoint-8").mkdir(parents=True)
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            assert find_resumable_checkpoint(out) == str(out / "checkpoint-4")
    finally:
        hf_logging.disable_propagation()
    assert "checkpoint-6: it is incomplete (no trainer_state.json)" in caplog.text
    assert f"{STAGING_DIR}/checkpoint-8: a checkpoint that was still being written" in caplog.text
    with pytest.raises(ValueError, match="checkpoint-6 cannot be resumed from: no trainer_state.json"):
        from rvernet_hf.distillation import DistillationTrainingArguments
        from rvernet_hf.training import claim_output_dir

        claim_output_dir(
            DistillationTrainingArguments(
                output_dir=str(out), do_train=True, resume_from_checkpoint=str(out / "checkpoint-6")
            )
        )


KILLED_RUN = """
import os, sys
import transformers
from rvernet_hf.training import main

original = transformers.Trainer._save_optimizer_and_scheduler

def save_then_die(self, output_dir):
    if self.state.global_step == {kill_at}:
        with open(os.path.join(output_dir, "optimizer.pt"), "wb") as handle:
            handle.write(b"half an optimizer")  # part of the file, then the process dies: no cleanup runs
        os._exit(137)
    return original(self, output_dir)

transformers.Trainer._save_optimizer_and_scheduler = save_then_die
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_kill_while_a_checkpoint_is_written_leaves_nothing_resume_would_pick(tmp_path, synthetic_data, tower_dir):
    arguments = [
        *rvernet_args(synthetic_data, tower_dir),
        "--report_to",
        "none",
        "--use_cpu",
        "--do_train",
        "--per_device_train_batch_size",
        "8",
        "--max_steps",
        "6",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
        "--disable_tqdm",
        "true",
        "--learning_rate",
        "1e-2",
        "--seed",
        "3",
    ]
    main([*arguments, "--output_dir", str(tmp_path / "straight")])

    killed = tmp_path / "killed"
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN.format(kill_at=4)))
    done = subprocess.run(
        [sys.executable, str(script), *arguments, "--output_dir", str(killed)],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(__file__),
    )
    assert done.returncode == 137, done.stderr[-2000:]
    assert (killed / STAGING_DIR / "checkpoint-4" / "optimizer.pt").exists()  # the half checkpoint is staged ...
    assert not (killed / "checkpoint-4").exists()  # ... and never became visible
    assert get_last_checkpoint(str(killed)) == str(killed / "checkpoint-2")  # even transformers' own lookup is safe

    main([*arguments, "--output_dir", str(killed), "--resume_from_checkpoint", "True"])
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    state = json.loads((killed / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    straight, resumed = load_file(tmp_path / "straight" / "model.safetensors"), load_file(killed / "model.safetensors")
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_checkpoints_are_renamed_into_place_and_rotated(tmp_path, synthetic_data, tower_dir):
    out = tmp_path / "run"
    main(
        [
            *rvernet_args(synthetic_data, tower_dir),
            "--report_to",
            "none",
            "--use_cpu",
            "--do_train",
            "--per_device_train_batch_size",
            "8",
            "--max_steps",
            "4",
            "--save_strategy",
            "steps",
            "--save_steps",
            "1",
            "--save_total_limit",
            "2",
            "--disable_tqdm",
            "true",
            "--output_dir",
            str(out),
        ]
    )
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    assert not (out / STAGING_DIR).exists()  # nothing left half-written
    assert find_resumable_checkpoint(out) == str(out / "checkpoint-4")


def test_replaced_atomically_keeps_the_old_file_when_writing_fails(tmp_path):
    from rvernet_hf.run_folder import replaced_atomically

    target = tmp_path / "scores.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), replaced_atomically(target) as partial:
        Path(partial).write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["scores.json"]
    with replaced_atomically(target) as partial:
        Path(partial).write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["scores.json"]
