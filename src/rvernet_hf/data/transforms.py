# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Transforms: dataset rows -> model inputs (`dataset.with_transform(...)`), with augmentations drawn once per sample
and shared by the image and its mask (so the ROI and context cut-outs always agree), and the full-image input of a
single classifier or a distillation teacher.
"""

import math
import multiprocessing.context
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..cutouts_rvernet import normalize, resize_to_canvas
from ..image_processing_rvernet import RveRNetImageProcessor
from ..image_utils_rvernet import load_image, load_mask
from ..perturbations import parse_perturbations, perturb_mask


class FullImagePreprocessor:
    """uint8 HWC image -> float CHW tensor at one model's input size and normalisation (no cut-out).

    What a single classifier (or a distillation teacher) trained on whole photos expects: a plain resize to `size`
    (bilinear, antialiased), scaled to [0, 1], normalised with that model's `mean`/`std`.

    Args:
        size (`int` or `(height, width)`): the model's input size.
        mean, std (`Sequence[float]`): the model's normalisation.
    """

    def __init__(self, size: int | Sequence[int], mean: Sequence[float], std: Sequence[float]):
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        if min(height, width) <= 0:
            raise ValueError(f"`size` must be positive, got {size!r}.")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"`mean` and `std` need 3 values each (std > 0), got mean={mean!r}, std={std!r}.")
        self.size = (int(height), int(width))
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)  # resized in uint8
        canvas, _ = resize_to_canvas(pixels, None, {"height": self.size[0], "width": self.size[1]}, "resize")
        return normalize(canvas, self.mean, self.std)

    def __repr__(self) -> str:
        return f"FullImagePreprocessor(size={self.size}, mean={self.mean}, std={self.std})"


def single_model_preprocessors(
    preprocessing: dict, size: int | None = None, **processor_settings: Any
) -> tuple[RveRNetImageProcessor, "FullImagePreprocessor"]:
    """The inputs of a single classifier (teacher, baseline) with normalisation `preprocessing` ({size, mean, std}):
    an `RveRNetImageProcessor` whose ROI and context cut-outs use that normalisation, and the full-image
    preprocessor. `size` overrides the square input side."""
    size = size or preprocessing["size"][0]
    mean, std = list(preprocessing["mean"]), list(preprocessing["std"])
    cutouts = RveRNetImageProcessor(
        size={"height": size, "width": size},
        roi_image_mean=mean,
        roi_image_std=std,
        context_image_mean=mean,
        context_image_std=std,
        **processor_settings,
    )
    return cutouts, FullImagePreprocessor(size, mean, std)


SINGLE_VIEWS = ("full_image", "roi", "context")
TEACHER_INPUTS = ("full_image", "augmented_full_image")


# What the transforms emit that a model reads (the rest: labels, teacher inputs and cached teacher logits).
# What `--mask_augmentation` draws from: each a wrong mask a segmenter or a hurried click would give.
DEFAULT_MASK_PERTURBATIONS = "erode:0.1,dilate:0.1,shift:0.1,box,disk,noise:0.1"
# What any model trained here reads: a single classifier's `pixel_values`, or RveRNet's processor outputs.
MODEL_INPUTS = ("pixel_values", *RveRNetImageProcessor.model_input_names)


class RveRNetTransform:
    """`dataset.with_transform(...)` callable: rows -> `roi_pixel_values`, `context_pixel_values`, `labels` (and
    `roi_token_mask` / `context_token_mask`, from the augmented mask, when the processor has a `patch_size`).

    With `train=True`, augmentations are drawn once per sample and applied to the image and its mask together,
    before the cut-outs are made, so the ROI and context cut-outs always share the same flip, crop and scale (the
    official code flipped the two streams independently: a bug). Random draws use torch's generator, so
    `transformers.set_seed` makes them reproducible.

    Args:
        processor: the `RveRNetImageProcessor` that makes the cut-outs.
        train: apply augmentations.
        flip_prob: probability of a horizontal flip.
        crop_scale: range of the random crop's area, as a fraction of the image (the crop always keeps part of the
            ROI); `(1.0, 1.0)` disables cropping.
        crop_ratio: range of the random crop's aspect ratio.
        teacher_processor: when given (a callable uint8 HWC image -> pixel tensor, e.g. a `FullImagePreprocessor`
            with the teacher's size and normalisation), also return `teacher_pixel_values`.
        teacher_input: what the teacher sees: `"full_image"` (the untouched photo, no cut-out and no random
            augmentation, so its logits can be cached) or `"augmented_full_image"` (the photo with the same crop and
            flip as the student's cut-outs, as in DeiT).
        single_view: for a single classifier (teacher fine-tuning, baselines) instead of RveRNet: return only
            `pixel_values` of one view, `"full_image"` (made by `single_processor`), `"roi"` or `"context"` (the
            processor's cut-outs). Masks are not needed for `"full_image"`.
        single_processor: the `FullImagePreprocessor` of the single classifier (for `single_view="full_image"`).
        seed: when given, each sample's augmentation is a pure function of `(seed, epoch, sample index)` (the index
            read from `index_column`, see `add_sample_index`; the epoch set by `AugmentationEpochCallback`), not of
            a global random stream: a resumed run and a multi-process run draw exactly the augmentations of an
            uninterrupted single-process run. Without it, torch's global generator is used.
        mask_augmentation: the probability that a training sample's mask is perturbed (after the crop and flip,
            before both cut-outs; drawn from the same per-sample generator) by one of `mask_perturbations`
            (`perturbations.parse_perturbations` forms), so that the model learns from the masks real segmenters and
            clicks give. 0 (the default) draws nothing: training is bit for bit what it was.
        decoded_cache: a `DecodedCache` (or a budget in MiB for one of its own) that keeps each sample's decoded
            photo and mask (keyed by `index_column`) after its first read: later epochs skip the PNG/JPEG decode.
            Results are identical with or without it. None (the default here) keeps nothing.

    A `teacher_logits` column (cached teacher outputs) is passed through as a float tensor. Masks made by
    `precompute_roi_masks` are 1-bit images whose values were checked when the cache was built: reading one each
    epoch costs its decode and a size check, not the value check of a user's 8-bit or colour mask.
    """

    def __init__(
        self,
        processor: RveRNetImageProcessor | None,
        train: bool = False,
        flip_prob: float = 0.5,
        crop_scale: tuple[float, float] = (0.6, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        image_column: str = "image",
        mask_column: str = "roi_mask",
        label_column: str = "label",
        teacher_processor: Any = None,
        teacher_input: str = "full_image",
        single_view: str | None = None,
        single_processor: Any = None,
        seed: int | None = None,
        index_column: str = "sample_index",
        mask_augmentation: float = 0.0,
        mask_perturbations: str = DEFAULT_MASK_PERTURBATIONS,
        decoded_cache: "DecodedCache | float | None" = None,
    ):
        if not 0.0 <= mask_augmentation <= 1.0:
            raise ValueError(f"`mask_augmentation` must be a probability in [0, 1], got {mask_augmentation!r}.")
        if teacher_input not in TEACHER_INPUTS:
            raise ValueError(f"`teacher_input` must be one of {TEACHER_INPUTS}, got {teacher_input!r}.")
        if single_view is not None and single_view not in SINGLE_VIEWS:
            raise ValueError(f"`single_view` must be one of {SINGLE_VIEWS} or None, got {single_view!r}.")
        if single_view == "full_image" and single_processor is None:
            raise ValueError("`single_view='full_image'` needs a `single_processor` (e.g. a FullImagePreprocessor).")
        if single_view != "full_image" and processor is None:
            raise ValueError("cut-outs need an RveRNetImageProcessor: `processor` is None.")
        self.processor = processor
        self.train = train
        self.flip_prob = flip_prob
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.image_column = image_column
        self.mask_column = mask_column
        self.label_column = label_column
        self.teacher_processor = teacher_processor
        self.teacher_input = teacher_input
        self.single_view = single_view
        self.single_processor = single_processor
        self.seed = seed
        self.index_column = index_column
        self.mask_augmentation = mask_augmentation
        self.mask_perturbations = parse_perturbations(mask_perturbations, training=True)
        self._epoch = _shared_epoch(0)
        self._augmentations = _shared_counts()  # [drawn, skipped]: mask perturbations this run
        if decoded_cache is not None and not isinstance(decoded_cache, DecodedCache):
            decoded_cache = DecodedCache(decoded_cache)
        self.decoded_cache = decoded_cache

    @property
    def epoch(self) -> int:
        """The epoch whose augmentations `seed` draws (set by `augmentation_epoch_callback`). Shared with the
        dataloader workers that copied this transform when they started, so that persistent workers draw each
        epoch's augmentations too; any other copy (pickle, deepcopy) gets its own."""
        return int(self._epoch.value)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.value = int(value)

    @property
    def mask_augmentation_counts(self) -> tuple[int, int]:
        """(perturbations drawn, those that could not apply to their ROI and kept the exact mask) so far, counted
        across this process's dataloader workers."""
        with self._augmentations.get_lock():
            return int(self._augmentations[0]), int(self._augmentations[1])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if multiprocessing.context.get_spawning_popen() is None:  # not a worker being started: a private copy
            state["_epoch"] = int(self._epoch.value)
            state["_augmentations"] = list(self.mask_augmentation_counts)
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["_epoch"], int):
            state["_epoch"] = _shared_epoch(state["_epoch"])
        if isinstance(state.get("_augmentations"), list):
            state["_augmentations"] = _shared_counts(*state["_augmentations"])
        self.__dict__.update(state)

    def _read(self, batch: dict[str, list], position: int, image: Any, mask: Any):
        """The sample's photo (RGB uint8) and mask (bool, or None when it has none): from `decoded_cache` when it
        holds them, else decoded (and offered to it)."""
        key = None
        if self.decoded_cache is not None and self.index_column in batch:
            key = (self.train, int(batch[self.index_column][position]))  # a training and an evaluation split
            if key in self.decoded_cache:
                return self.decoded_cache[key]
        pad_value = self.processor.pad_value if self.processor is not None else 125
        array = load_image(image, position, background=pad_value)
        if mask is not None:
            mask = load_mask(mask, position, array.shape[:2], allow_full=True)
        if key is not None:
            self.decoded_cache.keep(key, array, mask)
        return array, mask

    def _crop_box(self, mask: np.ndarray, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
        height, width = mask.shape
        if self.crop_scale == (1.0, 1.0):
            return 0, 0, height, width
        for _ in range(10):
            area = height * width * float(torch.empty(1).uniform_(*self.crop_scale, generator=generator))
            log_ratio = torch.empty(1).uniform_(
                np.log(self.crop_ratio[0]), np.log(self.crop_ratio[1]), generator=generator
            )
            ratio = float(torch.exp(log_ratio))
            crop_w, crop_h = round((area * ratio) ** 0.5), round((area / ratio) ** 0.5)
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = int(torch.randint(0, height - crop_h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - crop_w + 1, (1,), generator=generator))
                window = mask[top : top + crop_h, left : left + crop_w]
                if window.any() and not window.all():
                    return top, left, crop_h, crop_w
        return 0, 0, height, width

    def augment(
        self, image: np.ndarray, mask: np.ndarray, generator: torch.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One random crop and flip, the same for the image and its mask."""
        top, left, crop_h, crop_w = self._crop_box(mask, generator)
        image, mask = image[top : top + crop_h, left : left + crop_w], mask[top : top + crop_h, left : left + crop_w]
        if float(torch.rand(1, generator=generator)) < self.flip_prob:
            image, mask = image[:, ::-1], mask[:, ::-1]
        image, mask = np.ascontiguousarray(image), np.ascontiguousarray(mask)
        if self.mask_augmentation > 0:  # (at 0 nothing is drawn: the crops and flips are those of before)
            mask = self._perturbed_mask(mask, generator)
        return image, mask

    def _perturbed_mask(self, mask: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
        """With probability `mask_augmentation`, the mask perturbed by one of `mask_perturbations` (drawn from the
        sample's generator), before both cut-outs are made from it: they stay complementary. A draw that would
        leave no ROI or no context keeps the mask as it is (an augmentation that cannot apply is skipped)."""
        if float(torch.rand(1, generator=generator)) >= self.mask_augmentation:
            return mask
        choice = int(torch.randint(len(self.mask_perturbations), (1,), generator=generator))
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        kind, strength = self.mask_perturbations[choice]
        try:
            changed, skipped = perturb_mask(mask, kind, strength, rng), 0
        except ValueError:
            changed, skipped = mask, 1
        with self._augmentations.get_lock():  # counted, so that the run says how many could not apply
            self._augmentations[0] += 1
            self._augmentations[1] += skipped
        return changed

    def generator_for(self, batch: dict[str, list], position: int) -> torch.Generator | None:
        """The per-sample generator (seeded by seed, epoch and sample index), or None for the global one."""
        if self.seed is None:
            return None
        if self.index_column not in batch:
            raise ValueError(
                f"`seed` is set but the batch has no `{self.index_column}` column: call `add_sample_index(dataset)`."
            )
        index = int(batch[self.index_column][position])
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)

    def _model_inputs(self, batch: dict[str, list], output: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.label_column in batch:
            output["labels"] = torch.as_tensor(batch[self.label_column], dtype=torch.long)
        if "teacher_logits" in batch:
            output["teacher_logits"] = torch.as_tensor(np.asarray(batch["teacher_logits"]), dtype=torch.float32)
        return output

    def __call__(self, batch: dict[str, list]) -> dict[str, torch.Tensor]:
        views: dict[str, list] = {"pixel_values": [], "teacher_pixel_values": []}
        needs_mask = self.single_view != "full_image"
        masks = batch.get(self.mask_column) or [None] * len(batch[self.image_column])
        arrays, cut_masks = [], []  # each sample's geometry; its cut-outs are made for the whole batch at once
        for index, (image, mask) in enumerate(zip(batch[self.image_column], masks)):
            if mask is None and needs_mask:
                raise ValueError(
                    f"sample {index} of the batch has no `{self.mask_column}`: run `precompute_roi_masks` first."
                )
            array, mask = self._read(batch, index, image, mask)
            untouched = array
            if mask is None:  # full-image view without a mask: random crops keep part of the central half
                height, width = array.shape[:2]
                mask = np.zeros((height, width), dtype=bool)
                mask[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
            if self.train:
                array, mask = self.augment(array, mask, self.generator_for(batch, index))
            if self.single_view == "full_image":
                views["pixel_values"].append(self.single_processor(array))
            else:
                arrays.append(array)
                cut_masks.append([mask])
            if self.teacher_processor is not None:
                views["teacher_pixel_values"].append(
                    self.teacher_processor(untouched if self.teacher_input == "full_image" else array)
                )
        output = {name: torch.stack(tensors) for name, tensors in views.items() if tensors}
        if arrays:  # resized one by one, normalised and filled once for the batch (as the processor's own call)
            cutouts = self.processor.cutouts(arrays, cut_masks)
            if self.single_view is None:
                output.update({k: v for k, v in cutouts.items() if k in RveRNetImageProcessor.model_input_names})
            else:
                output["pixel_values"] = cutouts[f"{self.single_view}_pixel_values"]
        return self._model_inputs(batch, output)


def _shared_epoch(value: int):
    """An epoch counter in shared memory: a dataloader worker forked or spawned from this process reads the value
    the main process writes later."""
    return multiprocessing.RawValue("q", value)


def _shared_counts(drawn: int = 0, skipped: int = 0):
    """Counters in shared memory (with a lock) that dataloader workers add to and the main process reads. The lock
    is made in the spawn context: one made in the fork context (Linux's default) cannot be sent to a spawned or
    forkserver worker, while a spawn-context lock serves forked workers too."""
    return multiprocessing.get_context("spawn").Array("q", [drawn, skipped])


class DecodedCache(dict):
    """Decoded samples `{key: (photo, mask)}` kept up to `budget_mb` MiB, first come first kept (a sample past the
    budget is decoded each time it is read). Kept arrays are made read-only: every later epoch shares them, and an
    augmentation that wrote into one in place would raise instead of changing the data. One cache per process: a
    dataloader worker holds its own copy (useful with persistent workers)."""

    def __init__(self, budget_mb: float):
        super().__init__()
        if not (budget_mb >= 0 and math.isfinite(budget_mb)):
            raise ValueError(f"the decoded-sample cache's budget must be a size in MiB >= 0, got {budget_mb!r}.")
        self.budget_bytes = int(budget_mb * 2**20)
        self.used_bytes = 0

    def keep(self, key, array: np.ndarray, mask: np.ndarray | None) -> None:
        size = array.nbytes + (mask.nbytes if mask is not None else 0)
        if key in self or self.used_bytes + size > self.budget_bytes:
            return
        for kept in (array, mask):
            if kept is not None:
                kept.flags.writeable = False
        self[key] = (array, mask)
        self.used_bytes += size


class PairedTransform(RveRNetTransform):
    """The same for the paired layout (`roi_image` + `context_image`, already cut): one flip for both."""

    def __call__(self, batch: dict[str, list]) -> dict[str, torch.Tensor]:
        rois, contexts = [], []
        for index, (roi_image, context_image) in enumerate(zip(batch["roi_image"], batch["context_image"])):
            roi_array = load_image(roi_image, index)
            context_array = load_image(context_image, index)
            if self.train and float(torch.rand(1, generator=self.generator_for(batch, index))) < self.flip_prob:
                roi_array, context_array = roi_array[:, ::-1].copy(), context_array[:, ::-1].copy()
            pair = self.processor.preprocess_pairs([roi_array], [context_array])
            rois.append(pair["roi_pixel_values"][0])
            contexts.append(pair["context_pixel_values"][0])
        return self._model_inputs(
            batch, {"roi_pixel_values": torch.stack(rois), "context_pixel_values": torch.stack(contexts)}
        )


def add_sample_index(dataset, column: str = "sample_index"):
    """Number the samples (for `RveRNetTransform(seed=...)`: per-sample augmentation that survives resume and DDP)."""
    if column in dataset.column_names:
        return dataset
    return dataset.add_column(column, list(range(len(dataset))))


def augmentation_epoch_callback(*transforms: RveRNetTransform):
    """A `TrainerCallback` that tells seeded transforms which epoch starts (their augmentations change per epoch)."""
    from transformers import TrainerCallback

    class AugmentationEpochCallback(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            for transform in transforms:
                transform.epoch = int((state.epoch or 0) + 1e-6)

    return AugmentationEpochCallback()
