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
import torch.nn.functional as F
from torch import nn
from transformers import TrainingArguments
from transformers.utils import logging

from .data import TEACHER_INPUTS, FullImagePreprocessor
from .labels import check_same_labels, normalize_id2label
from .teachers import load_classifier
from .trainer import RveRNetTrainer


logger = logging.get_logger(__name__)

DISTILLATION_TYPES = ("none", "soft", "hard")


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


# --------------------------------------------------------------------------------------------------- the loss


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    distillation_type: str,
    temperature: float = 1.0,
    multi_label: bool = False,
) -> torch.Tensor:
    """The per-sample distillation term, shape `(batch,)`.

    - `soft`: `T^2 * KL(softmax(teacher / T) || softmax(student / T))`, summed over classes: the mean of this over
      the batch is PyTorch's `reduction="batchmean"` (timm's and HF's choice), the true KL per sample. (DeiT's
      `losses.py` divides the sum by `numel`, i.e. also by the number of classes: a 1/num_classes smaller term.)
    - `hard`: cross-entropy of the student against the teacher's argmax.

    With `multi_label` (independent classes, as the multi-label loss treats them): `soft` is `T^2 *` the binary
    cross-entropy against `sigmoid(teacher / T)`, `hard` against `teacher > 0`, averaged over classes (the scale of
    transformers' multi-label loss).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ: "
            "the teacher must predict the student's label set."
        )
    if multi_label and distillation_type in ("soft", "hard"):
        if distillation_type == "soft":
            target = torch.sigmoid(teacher_logits / temperature)
            per_class = F.binary_cross_entropy_with_logits(student_logits / temperature, target, reduction="none")
            return per_class.mean(-1) * temperature**2
        target = (teacher_logits > 0).to(student_logits.dtype)
        return F.binary_cross_entropy_with_logits(student_logits, target, reduction="none").mean(-1)
    if distillation_type == "soft":
        log_student = F.log_softmax(student_logits / temperature, dim=-1)
        log_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
        return F.kl_div(log_student, log_teacher, reduction="none", log_target=True).sum(-1) * temperature**2
    if distillation_type == "hard":
        return F.cross_entropy(student_logits, teacher_logits.argmax(-1), reduction="none")
    raise ValueError(f"unknown distillation type {distillation_type!r} (expected 'soft' or 'hard').")


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
    """`Trainer` whose loss adds a frozen CNN teacher's knowledge: `(1 - a) * CE(labels) + a * distillation`.

    Args:
        teacher_model (`FrozenTeacher` or `nn.Module`, *optional*): the teacher; loaded from
            `args.teacher_model_name_or_path` when not given. Not needed when every batch carries `teacher_logits`
            (`args.cache_teacher_logits`). Refused before training if its label count or names differ from the
            student's. It is prepared through the accelerator for evaluation (device, mixed precision; never
            DDP-wrapped) and runs under `torch.no_grad()` in the student's dtype.
        All other arguments are `RveRNetTrainer`'s (atomic checkpoints, resume, reload), hence `Trainer`'s.

    Batches carry `teacher_pixel_values` (the teacher's own input, made by `RveRNetTransform(teacher_processor=...)`)
    or `teacher_logits`. The two loss terms are logged as `task_loss` and `distillation_loss` (`eval_` prefixed in
    evaluation). With `distillation_type="none"` this is the plain `Trainer` loss.
    """

    def __init__(self, model=None, args: DistillationTrainingArguments = None, teacher_model=None, **kwargs):
        if args is not None and not isinstance(args, DistillationTrainingArguments):
            raise TypeError(f"`args` must be DistillationTrainingArguments, got {type(args).__name__}.")
        super().__init__(model=model, args=args, **kwargs)
        self.teacher = None
        if self.args.distillation_type == "none":
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
            self.teacher = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        teacher_pixel_values = inputs.pop("teacher_pixel_values", None)
        teacher_logits = inputs.pop("teacher_logits", None)
        if self.args.distillation_type == "none":
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError("distillation needs `labels` in every batch (the task term of the loss).")
        # The task term is the student's own loss: its problem type, -100 ignored, and Trainer's normalisation over
        # the whole accumulated batch (`num_items_in_batch`), exactly what training without distillation minimises.
        counted = num_items_in_batch is not None and self.model_accepts_loss_kwargs
        if counted:
            inputs["num_items_in_batch"] = num_items_in_batch
        outputs = model(**inputs)  # the student, through `model`: it may be DDP-wrapped
        task_loss = outputs.loss
        student_logits = outputs.logits.float()
        if teacher_logits is None:
            if teacher_pixel_values is None or self.teacher is None:
                raise ValueError(
                    "the batch has neither `teacher_logits` nor `teacher_pixel_values` (or no teacher is loaded): "
                    "build the transform with `teacher_processor=teacher.input_processor()` or cache the logits."
                )
            with torch.no_grad():
                teacher_logits = self.teacher(teacher_pixel_values)
        teacher_logits = teacher_logits.detach().float()

        # The distillation term is reduced as the task term is: per sample, samples labelled -100 left out, summed
        # over the accumulated batch's items when Trainer counted them (single-label), else a mean.
        multi_label = labels.is_floating_point() and labels.dim() == 2
        valid = torch.ones_like(labels[:, 0], dtype=torch.bool) if multi_label else labels != -100
        distill = (
            distillation_loss(
                student_logits,
                teacher_logits,
                self.args.distillation_type,
                self.args.distillation_temperature,
                multi_label=multi_label,
            )
            * valid
        )
        count = valid.sum().clamp_min(1).to(distill.dtype)
        by_items = counted and not multi_label  # transformers' multi-label loss is a mean whatever it is given
        denominator = (
            torch.as_tensor(num_items_in_batch, device=distill.device, dtype=distill.dtype) if by_items else count
        )
        distill_loss = distill.sum() / denominator
        alpha = self.args.distillation_alpha
        loss = (1 - alpha) * task_loss + alpha * distill_loss
        if counted and self.args.average_tokens_across_devices:  # as Trainer scales the model's own loss
            loss = loss * self.accelerator.num_processes

        # The named parts, per sample (mean over the labelled samples of this batch), logged as `task_loss` and
        # `distillation_loss`.
        task_per_sample = (task_loss * denominator / count) if by_items else task_loss
        self.record_loss_parts(model, task_loss=task_per_sample, distillation_loss=distill.sum() / count)
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
