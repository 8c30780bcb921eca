# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Knowledge distillation from a CNN teacher while fine-tuning RveRNet: training arguments, the frozen teacher, the
loss (DeiT's soft and hard distillation), cached teacher logits and `RveRNetDistillationTrainer`, a thin subclass of
`RveRNetTrainer` that adds the teacher and the loss.

Needs the `train` extra. Not uploaded with the weights.

The teacher sees its own input (`teacher_pixel_values`, by default the untouched full photo at the teacher's size and
normalisation), the student sees the two cut-outs: the teacher's input is passed next to the student's, as in
`facebookresearch/deit`'s `DistillationLoss`.
"""

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import TrainingArguments
from transformers.utils import logging

from .data import TEACHER_INPUTS, FullImagePreprocessor
from .labels import check_same_labels, normalize_id2label
from .losses import DISTILLATION_TYPES, DistillationLoss, distillation_loss
from .teachers import load_classifier
from .trainer import RveRNetTrainer


logger = logging.get_logger(__name__)


@dataclass
class DistillationTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus the distillation settings.

    `remove_unused_columns` defaults to `False` here: the transform reads the `image` and `roi_mask` columns, which
    `Trainer` would otherwise drop because the model's `forward` does not name them.
    """

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start over in an --output_dir that holds an earlier run: its checkpoints and model are "
            "deleted first. Without it (or --resume_from_checkpoint True) such a folder is refused."
        },
    )
    distillation_type: str = field(
        default="none",
        metadata={
            "help": "none: plain cross-entropy. soft: (1-a)*CE + a*T^2*KL(teacher/T || student/T). "
            "hard: (1-a)*CE + a*CE(student, argmax teacher).",
            "choices": list(DISTILLATION_TYPES),
        },
    )
    distillation_alpha: float = field(
        default=0.5, metadata={"help": "Weight a of the distillation term, in [0, 1] (DeiT: 0.5)."}
    )
    distillation_temperature: float = field(
        default=1.0, metadata={"help": "Temperature T of the soft loss (> 0; DeiT: 1.0). Unused by `hard`."}
    )
    teacher_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "The CNN teacher: `efficientnet-lite0-imagenet` (built in, offline), a timm model "
            "(`timm/<name>`), or any AutoModelForImageClassification checkpoint (Hub id or folder). "
            "It must predict the student's label set: fine-tune it first with `--model_type single`."
        },
    )
    teacher_input: str = field(
        default="full_image",
        metadata={
            "help": "What the teacher sees: full_image (the untouched photo, no cut-out and no random "
            "augmentation) or augmented_full_image (the photo with the student's crop and flip).",
            "choices": list(TEACHER_INPUTS),
        },
    )
    cache_teacher_logits: bool = field(
        default=False,
        metadata={
            "help": "Run the teacher once per sample before training and store its logits with the dataset "
            "(needs teacher_input=full_image)."
        },
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep the dataset's image/mask columns for the transform (Trainer drops them if True)."},
    )

    dataloader_persistent_workers: bool | None = field(
        default=None,
        metadata={
            "help": "Keep the dataloader workers (and the photos each keeps decoded) from one epoch and evaluation "
            "to the next. Default: on whenever --dataloader_num_workers > 0 (transformers' default is off: each "
            "epoch would start its workers again and decode every photo again).",
            # As a bool field parses: the flag alone means True (`HfArgumentParser` does not add these for a
            # `None` default).
            "nargs": "?",
            "const": True,
        },
    )

    def __post_init__(self):
        if self.dataloader_persistent_workers is None:
            self.dataloader_persistent_workers = self.dataloader_num_workers > 0
        super().__post_init__()
        if self.distillation_type not in DISTILLATION_TYPES:
            raise ValueError(
                f"`distillation_type` must be one of {DISTILLATION_TYPES}, got {self.distillation_type!r}."
            )
        if not 0.0 <= self.distillation_alpha <= 1.0 or math.isnan(self.distillation_alpha):
            raise ValueError(f"`distillation_alpha` must be in [0, 1], got {self.distillation_alpha}.")
        if not self.distillation_temperature > 0:
            raise ValueError(f"`distillation_temperature` must be > 0, got {self.distillation_temperature}.")
        if self.teacher_input not in TEACHER_INPUTS:
            raise ValueError(f"`teacher_input` must be one of {TEACHER_INPUTS}, got {self.teacher_input!r}.")
        if self.distillation_type != "none" and not self.teacher_model_name_or_path:
            raise ValueError(
                f"`distillation_type={self.distillation_type!r}` needs `teacher_model_name_or_path` (the teacher)."
            )
        if self.cache_teacher_logits and self.teacher_input != "full_image":
            raise ValueError(
                "`cache_teacher_logits` needs `teacher_input='full_image'`: an augmented teacher input changes "
                "every epoch, so its logits cannot be computed once."
            )


# --------------------------------------------------------------------------------------------------- the teacher


class FrozenTeacher(nn.Module):
    """A classifier used as a distillation teacher: no gradients, always in eval mode (`train()` is a no-op, so
    Trainer's `model.train()` calls and dropout/batch-norm updates never reach it), returns logits as a tensor
    whatever the wrapped model returns (a transformers output or a timm tensor).

    Attributes:
        id2label: the teacher's label names.
        preprocessing: `{"size", "mean", "std"}` of the teacher's own input.
    """

    def __init__(self, model: nn.Module, preprocessing: dict, id2label: dict[int, str] | None = None):
        super().__init__()
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.preprocessing = preprocessing
        config_labels = getattr(getattr(model, "config", None), "id2label", None)
        self.id2label = normalize_id2label(id2label or config_labels or {})
        self.train(False)

    def train(self, mode: bool = True):
        return super().train(False)

    def input_processor(self) -> FullImagePreprocessor:
        """The teacher's resize + normalisation, for `RveRNetTransform(teacher_processor=...)`."""
        return FullImagePreprocessor(**self.preprocessing)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        outputs = self.model(pixel_values)
        return outputs if isinstance(outputs, torch.Tensor) else outputs.logits

    def fingerprint(self) -> str:
        """A digest of the teacher's preprocessing and weights: the cache key of its logits."""
        digest = hashlib.sha256(repr(self.input_processor()).encode())
        for tensor in self.state_dict().values():
            digest.update(tensor.detach().float().cpu().numpy().tobytes()[:4096])
        return digest.hexdigest()[:16]

    def logits_of_images(
        self, images: list[np.ndarray], device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> np.ndarray:
        """Logits (float32, `(len(images), num_labels)`) of decoded uint8 HWC photos, each resized and normalised as
        the teacher expects; run on `device` (moved there), under autocast when `dtype` is fp16/bf16."""
        device = torch.device(device or next(self.parameters()).device)
        self.to(device)
        processor = self.input_processor()
        pixels = torch.stack([processor(image) for image in images]).to(device)
        autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype in (torch.float16, torch.bfloat16))
        with torch.inference_mode(), autocast:
            return self(pixels).float().cpu().numpy()


def load_teacher(name_or_path: str, **kwargs) -> FrozenTeacher:
    """A `FrozenTeacher` from a name: see `teachers.load_classifier` for the names accepted."""
    model, preprocessing = load_classifier(name_or_path, what="--teacher_model_name_or_path", **kwargs)
    return FrozenTeacher(model, preprocessing)


def check_teacher_labels(teacher_id2label: dict[int, str], student_id2label: dict[int, str], teacher_name: str = ""):
    """Refuse a teacher that does not predict the student's label set (count, and names where both have names)."""
    hint = (
        " Fine-tune the teacher on the target dataset first: `rvernet-hf train --model_type single "
        f"--model_name_or_path {teacher_name or '<teacher>'} ...` (full images), then pass that folder as "
        "`--teacher_model_name_or_path`."
    )
    check_same_labels(student_id2label, teacher_id2label, "the student", f"the teacher {teacher_name!r}", hint)


# --------------------------------------------------------------------------------------------------- cached logits


def compute_teacher_logits(
    dataset,
    teacher: FrozenTeacher,
    image_column: str = "image",
    batch_size: int = 32,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    column: str = "teacher_logits",
):
    """Run the teacher once over every sample's untouched full image; return the dataset with a `column` of logits.

    The result is a `datasets` `map`, fingerprinted by the teacher's weights and preprocessing: on a dataset saved
    on disk a second call reads the cache instead of running the teacher again. (`precompute_roi_masks(teacher=...)`
    makes the same column in its pass over the photos, so that each photo is decoded once for both.)
    """
    from .image_utils_rvernet import load_image

    if image_column not in dataset.column_names:
        raise ValueError(f"the dataset has no image column {image_column!r} (columns: {dataset.column_names}).")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def add_logits(batch, indices):
        images = [load_image(image, index) for image, index in zip(batch[image_column], indices)]
        return {column: teacher.logits_of_images(images, device, dtype)}

    return dataset.map(
        add_logits,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        desc="Teacher logits (once)",
        new_fingerprint=hashlib.sha256(f"{dataset._fingerprint}{teacher.fingerprint()}".encode()).hexdigest()[:16],
    )


# --------------------------------------------------------------------------------------------------- the trainer


class RveRNetDistillationTrainer(RveRNetTrainer):
    """`Trainer` whose loss adds a frozen CNN teacher's knowledge: `(1 - a) * task + a * distillation`
    (`losses.DistillationLoss`, which also takes `distillation_type="none"`: the task term alone).

    Args:
        teacher_model (`FrozenTeacher` or `nn.Module`, *optional*): the teacher; loaded from
            `args.teacher_model_name_or_path` when not given. Not needed when every batch carries `teacher_logits`
            (`args.cache_teacher_logits`). Refused before training if its label count or names differ from the
            student's. It is prepared through the accelerator for evaluation (device, mixed precision; never
            DDP-wrapped) and runs under `torch.no_grad()` in the student's dtype.
        All other arguments are `RveRNetTrainer`'s (atomic checkpoints, resume, reload), hence `Trainer`'s.

    Batches carry `teacher_pixel_values` (the teacher's own input, made by `RveRNetTransform(teacher_processor=...)`)
    or `teacher_logits`. The task term is Trainer's own loss; the loss module's named parts are logged as
    `task_loss` and `distillation_loss` (`eval_` prefixed in evaluation).
    """

    def __init__(self, model=None, args: DistillationTrainingArguments = None, teacher_model=None, **kwargs):
        if args is not None and not isinstance(args, DistillationTrainingArguments):
            raise TypeError(f"`args` must be DistillationTrainingArguments, got {type(args).__name__}.")
        super().__init__(model=model, args=args, **kwargs)
        self.distillation = DistillationLoss(
            self.args.distillation_type, self.args.distillation_alpha, self.args.distillation_temperature
        )
        if not self.distillation.needs_teacher:
            return
        if teacher_model is None and not self.args.cache_teacher_logits:
            teacher_model = load_teacher(self.args.teacher_model_name_or_path)
        if teacher_model is not None:
            if not isinstance(teacher_model, FrozenTeacher):
                teacher_model = FrozenTeacher(teacher_model, preprocessing={})
            check_teacher_labels(
                teacher_model.id2label, self.model.config.id2label, self.args.teacher_model_name_or_path or ""
            )
            student_dtype = next(self.model.parameters()).dtype
            teacher_model.to(dtype=student_dtype)
            self.distillation.teacher = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)

    @property
    def teacher(self):
        """The prepared teacher (None without one: no distillation, or cached logits)."""
        return self.distillation.teacher

    def _loss_scale(self, num_items_in_batch) -> float:
        """The factor Trainer multiplies a loss normalised over the accumulated batch's items by, across devices (see
        `Trainer.compute_loss`): the distillation term gets the task term's."""
        if not (self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs and num_items_in_batch):
            return 1.0
        return self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1 else self.args.n_gpu

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        teacher_inputs = {
            name: inputs.pop(name) for name in ("teacher_logits", "teacher_pixel_values") if name in inputs
        }
        labels = inputs.get("labels")
        # The task term: Trainer's own loss of the student, called through `model` (it may be DDP-wrapped).
        task_loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        counted = num_items_in_batch if num_items_in_batch is not None and self.model_accepts_loss_kwargs else None
        parts = self.distillation(
            task_loss,
            outputs.logits,
            labels,
            **teacher_inputs,
            num_items_in_batch=counted,
            scale=self._loss_scale(counted),
        )
        loss = parts.pop("loss")
        if parts:
            self.record_loss_parts(model, **parts)
        if return_outputs:
            outputs["loss"] = loss
            return loss, outputs
        return loss


__all__ = [
    "DISTILLATION_TYPES",
    "DistillationTrainingArguments",
    "FrozenTeacher",
    "RveRNetDistillationTrainer",
    "check_teacher_labels",
    "compute_teacher_logits",
    "distillation_loss",
    "load_teacher",
]
