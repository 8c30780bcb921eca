# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""RveRNet's training loss with a teacher, as named parts (as timm's distillation tasks return theirs): the trainer
computes the task term its own way (Trainer's loss: label smoothing, the accumulated batch's item count), then this
module adds the teacher's term and says what each part was; the trainer optimises `loss` and logs the rest.
`distillation_type="none"` falls through to the task term here, the one place it is handled (DeiT's
`DistillationLoss` does the same). Imports only torch; not uploaded with the weights."""

import torch
import torch.nn.functional as F
from torch import nn


DISTILLATION_TYPES = ("none", "soft", "hard")


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


class DistillationLoss(nn.Module):
    """`(1 - alpha) * task + alpha * distillation` (DeiT's recipe), as named parts.

    Args:
        distillation_type (`str`): `"none"` (the task term alone), `"soft"` or `"hard"` (see `distillation_loss`).
        alpha (`float`): the distillation term's weight, in [0, 1].
        temperature (`float`): the soft term's temperature T.
        teacher (`nn.Module`, *optional*): a frozen classifier, `teacher(teacher_pixel_values) -> logits`, used
            when a batch carries the teacher's input rather than its cached logits.

    `forward` returns `{"loss": ...}` for `"none"`, else also `"task_loss"` and `"distillation_loss"`: each term's
    mean over this batch's labelled samples, detached, for the logs.
    """

    def __init__(self, distillation_type: str = "none", alpha: float = 0.5, temperature: float = 1.0, teacher=None):
        super().__init__()
        if distillation_type not in DISTILLATION_TYPES:
            raise ValueError(f"`distillation_type` must be one of {DISTILLATION_TYPES}, got {distillation_type!r}.")
        self.distillation_type, self.alpha, self.temperature = distillation_type, alpha, temperature
        self.teacher = teacher

    @property
    def needs_teacher(self) -> bool:
        """Whether batches need the teacher's input or logits."""
        return self.distillation_type != "none"

    def teacher_logits(self, teacher_logits=None, teacher_pixel_values=None) -> torch.Tensor:
        """The teacher's logits of a batch: cached ones, or the teacher run on its own input (no gradients)."""
        if teacher_logits is None:
            if teacher_pixel_values is None or self.teacher is None:
                raise ValueError(
                    "the batch has neither `teacher_logits` nor `teacher_pixel_values` (or no teacher is loaded): "
                    "build the transform with `teacher_processor=teacher.input_processor()` or cache the logits."
                )
            with torch.no_grad():
                teacher_logits = self.teacher(teacher_pixel_values)
        return teacher_logits.detach().float()

    def forward(
        self,
        task_loss: torch.Tensor,
        student_logits: torch.Tensor,
        labels: torch.Tensor | None,
        teacher_logits: torch.Tensor | None = None,
        teacher_pixel_values: torch.Tensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        scale: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """The loss of a batch from its task term (`task_loss`, as Trainer computed it: normalised over
        `num_items_in_batch` when Trainer counted the accumulated batch's items, else a mean; multiplied by `scale`,
        the factor Trainer applies across devices), the student's logits, the labels and the teacher's logits (or
        input). The distillation term is reduced as the task term is: per sample, samples labelled -100 left out,
        summed over `num_items_in_batch` items (single-label) or a mean, times `scale`."""
        if self.distillation_type == "none":
            return {"loss": task_loss}
        if labels is None:
            raise ValueError("distillation needs `labels` in every batch (the task term of the loss).")
        teacher = self.teacher_logits(teacher_logits, teacher_pixel_values)
        multi_label = labels.is_floating_point() and labels.dim() == 2
        valid = torch.ones_like(labels[:, 0], dtype=torch.bool) if multi_label else labels != -100
        per_sample = distillation_loss(
            student_logits.float(), teacher, self.distillation_type, self.temperature, multi_label=multi_label
        )
        per_sample = per_sample * valid
        count = valid.sum().clamp_min(1).to(per_sample.dtype)
        by_items = num_items_in_batch is not None and not multi_label  # transformers' multi-label loss is a mean
        denominator = (
            torch.as_tensor(num_items_in_batch, device=per_sample.device, dtype=per_sample.dtype)
            if by_items
            else count
        )
        loss = (1 - self.alpha) * task_loss + self.alpha * (per_sample.sum() / denominator) * scale
        task_mean = task_loss.detach() / scale * (denominator / count if by_items else 1)
        return {"loss": loss, "task_loss": task_mean, "distillation_loss": (per_sample.sum() / count).detach()}


__all__ = ["DISTILLATION_TYPES", "DistillationLoss", "distillation_loss"]
