# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`RveRNetTrainer`: transformers' `Trainer` with what an RveRNet run needs whatever its loss: checkpoints written
whole or not at all, resume from the newest complete one, reload through `from_pretrained`, and named loss parts in
the logs. Runs without a teacher (and single classifiers) use it as it is; `distillation.RveRNetDistillationTrainer`
adds the teacher and its loss.

Needs the `train` extra. Not uploaded with the weights.
"""

import os
import shutil
from collections import defaultdict
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from .run_folder import STAGING_DIR, find_resumable_checkpoint, replaced_atomically


class RveRNetTrainer(Trainer):
    """`Trainer` whose checkpoints are atomic and whose resume skips incomplete ones.

    - A `checkpoint-N` folder is always complete: it is written under `<output_dir>/.incomplete/` and renamed into
      place once every process has written its part (a kill or a full disk leaves only the staging copy).
    - `train(resume_from_checkpoint=True)` takes the newest COMPLETE checkpoint (an incomplete one is named in a
      warning and skipped).
    - Resume and the best-model reload go through `from_pretrained` (see `_reload_through_from_pretrained`).
    - Loss parts recorded with `record_loss_parts` (e.g. `task_loss`, `distillation_loss`) are logged with the loss,
      as means over the logging interval (`eval_` prefixed in evaluation).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self._loss_parts = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._staging = False
        super().__init__(*args, **kwargs)

    def record_loss_parts(self, model, **parts: torch.Tensor) -> None:
        """Keep this step's named loss parts (scalars) for the next log line."""
        mode = "train" if model.training else "eval"
        for name, value in parts.items():
            self._loss_parts[mode][name].append(value.detach())

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any):
        """As `Trainer.train`; `resume_from_checkpoint=True` takes the newest COMPLETE checkpoint of `output_dir`
        (an incomplete one is skipped, named in a warning), where Trainer would take the newest folder."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = find_resumable_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No complete checkpoint to resume from in {self.args.output_dir}.")
        return super().train(resume_from_checkpoint, *args, **kwargs)

    # Private Trainer methods, overridden because no public hook serves: `_save_checkpoint` writes the model,
    # optimizer, RNG and state into one folder with no callback in between (`on_save` runs after it is complete), and
    # `_get_output_dir` is where it takes that folder's parent from.
    def _get_output_dir(self, trial) -> str:
        run_dir = super()._get_output_dir(trial)
        return os.path.join(run_dir, STAGING_DIR) if self._staging else run_dir

    def _save_checkpoint(self, model, trial) -> None:
        """Write the checkpoint under `<output_dir>/.incomplete/` and rename it into place once every process has
        written its part, so that a `checkpoint-N` folder is always complete: a kill or a full disk while saving
        leaves only the staging copy, which resume skips (naming it). With `push_to_hub` (uploads read the folder
        in the background) Trainer's own path is kept."""
        if self.args.push_to_hub:
            return super()._save_checkpoint(model, trial)
        run_dir = self._get_output_dir(trial=trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = os.path.join(run_dir, STAGING_DIR)
        if self.args.should_save:  # a leftover of a run killed at this very step
            shutil.rmtree(os.path.join(staging, name), ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._staging = True  # Trainer writes (and rotates) inside the staging folder
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging = False
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            final = os.path.join(run_dir, name)
            if os.path.isdir(final):  # the same step saved twice (e.g. at the end of training)
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            if not os.listdir(staging):
                os.rmdir(staging)
            best = self.state.best_model_checkpoint
            if best and os.path.dirname(os.path.abspath(best)) == os.path.abspath(staging):
                self.state.best_model_checkpoint = os.path.join(run_dir, os.path.basename(best))
                state_file = os.path.join(final, TRAINER_STATE_NAME)
                with replaced_atomically(state_file) as partial:
                    self.state.save_to_json(partial)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()

    # transformers 5 saves some models (DeiT, ViT, ...) under their legacy key names and renames them back inside
    # `from_pretrained`; Trainer's resume and best-model reload read the raw state dict, so every tower weight would
    # be "missing". Reload through `from_pretrained` instead (plain single-process / DDP runs; FSDP, DeepSpeed and
    # PEFT keep Trainer's own path).
    def _reload_through_from_pretrained(self, folder: str, model=None) -> bool:
        from transformers import PreTrainedModel

        model = self.accelerator.unwrap_model(model if model is not None else self.model)
        weights = os.path.join(folder, "model.safetensors")
        if (
            self.is_fsdp_enabled
            or self.is_deepspeed_enabled
            or not isinstance(model, PreTrainedModel)
            or not os.path.isfile(weights)
        ):
            return False
        reloaded = type(model).from_pretrained(folder, config=model.config)
        model.load_state_dict(reloaded.state_dict(), strict=True)
        del reloaded
        return True

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if not self._reload_through_from_pretrained(resume_from_checkpoint, model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        if not self._reload_through_from_pretrained(self.state.best_model_checkpoint):
            super()._load_best_model()

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        # Training logs carry `loss`; evaluation logs `<prefix>_loss` (eval_, test_, ...); the run summary `train_loss`.
        eval_keys = [k for k in logs if k.endswith("_loss") and k != "train_loss"]
        mode, prefix = (
            ("train", "") if "loss" in logs else ("eval", eval_keys[0][: -len("loss")]) if eval_keys else (None, "")
        )
        if mode is not None and self._loss_parts[mode]:
            for name, values in self._loss_parts[mode].items():
                mean = torch.stack(values).mean()
                mean = self.accelerator.reduce(mean.to(self.accelerator.device), reduction="mean")
                logs[f"{prefix}{name}"] = round(float(mean), 6)
            self._loss_parts[mode].clear()
        super().log(logs, *args, **kwargs)


__all__ = ["RveRNetTrainer"]
