# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The ROI mask cache: every sample of a dataset read and checked once, its missing masks made by SAM once (and, when
asked, a distillation teacher's logits from the same decoded photo).

`precompute_roi_masks` writes the masks into the dataset in shards, each a `datasets` cache file written whole or
not at all; shards are split across the processes of a `torch.distributed` group (`torchrun`, `accelerate launch`),
a killed run resumes at the unfinished shards with any number of processes, and the result does not depend on how
many processes made it. Every mask leaves the cache in one form, checked once here (the image's size, binary, not
empty): a 1-bit PNG, whose values the training transforms need not check again each epoch.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..image_processing_rvernet import RveRNetImageProcessor
from ..image_utils_rvernet import load_image, load_mask
from .sources import _datasets, encode_mask


def _settings_fingerprint(processor: RveRNetImageProcessor, *parts: Any) -> str:
    sam_settings = {k: v for k, v in processor.to_dict().items() if k.startswith(("sam_", "auto_roi", "mask_"))}
    return hashlib.sha256(json.dumps([sam_settings, *parts], sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class MaskingReport:
    """What `precompute_roi_masks` did: samples it skipped (index, name, reason), the shards this process computed
    and those it found already written, and which process of how many it was."""

    skipped: list[dict] = field(default_factory=list)
    shards_computed: int = 0
    shards_reused: int = 0
    process_index: int = 0
    num_processes: int = 1


def _source_key(cell: Any) -> Any:
    """What identifies an undecoded `datasets.Image` cell's photo (its bytes, else its path); None for in-memory
    images."""
    if isinstance(cell, dict):
        data = cell.get("bytes")
        return ("bytes", len(data), hash(data)) if data else ("path", cell.get("path"))
    return None


def _process_group() -> tuple[int, int, Any]:
    """(rank, world size, barrier) of the running `torch.distributed` group (`torchrun`, `accelerate launch`, a
    multi-process Trainer), or (0, 1, no-op) for a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size(), dist.barrier
    return 0, 1, lambda: None


def precompute_roi_masks(
    dataset,
    processor: RveRNetImageProcessor,
    image_column: str = "image",
    mask_column: str = "roi_mask",
    box_column: str | None = "roi_box",
    points_column: str | None = "roi_points",
    batch_size: int = 8,
    shard_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
    on_error: str = "raise",
    sam_model: Any = None,
    teacher: Any = None,
    teacher_device: Any = None,
    teacher_dtype: Any = None,
):
    """Read every sample of a `datasets.Dataset` once: check it, run SAM where its ROI mask is missing, and store
    every sample's mask (1-bit PNG) in `mask_column`; with a `teacher`, also its logits in `teacher_logits`.

    Each image is decoded once here, and that decoded copy is what the check, SAM and the teacher read. A given mask
    is checked (the image's size, binary, not empty) and stored in the same 1-bit form as SAM's, so that the training
    transforms read every mask without checking it again. Boxes/points in `box_column`/`points_column` prompt SAM; a
    sample with neither gets the processor's automatic ROI. Work is done in shards of `shard_size` samples, each a
    batched `map` written to its own cache file named by the dataset's fingerprint and the SAM (and teacher)
    settings: an interrupted run resumes at the first unfinished shard, and a second run (and every training epoch
    after it) performs no SAM forward pass at all. Under a `torch.distributed` group the shards are split across
    the processes (round robin by rank) and every process returns the whole result.

    Args:
        on_error: `"raise"` stops at the first bad sample, naming it; `"skip"` drops bad samples and reports them
            (count and names) in the returned `MaskingReport`. Finished shards are kept either way.
        teacher: a `FrozenTeacher` whose logits of each untouched photo are cached with the masks (the column
            `RveRNetTransform` passes on as `teacher_logits`), run on `teacher_device` in `teacher_dtype`. Masks
            cached earlier without it are reused (only the teacher runs then, decoding those images again).

    Returns:
        `(dataset with mask_column filled, MaskingReport)`.
    """
    datasets = _datasets()
    if on_error not in ("raise", "skip"):
        raise ValueError(f"`on_error` must be 'raise' or 'skip', got {on_error!r}.")
    if image_column not in dataset.column_names:
        raise ValueError(f"the dataset has no image column {image_column!r} (columns: {dataset.column_names}).")
    if sam_model is not None:
        processor.set_sam_model(sam_model)
    cache_dir = _cache_dir(dataset, cache_dir)
    fingerprint = _settings_fingerprint(processor, dataset._fingerprint, image_column, box_column, points_column)
    # Images (and existing masks) are read by the processor, not decoded by `datasets`: a broken file then becomes
    # a named error of one sample instead of an exception deep inside `map`.
    image_feature = dataset.features[image_column]
    dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    if mask_column in dataset.column_names:
        dataset = dataset.cast_column(mask_column, datasets.Image(decode=False))
    features = dataset.features.copy()
    features[mask_column] = datasets.Image()
    features["_roi_mask_error"] = datasets.Value("string")
    teacher_features = features.copy()
    teacher_features["teacher_logits"] = datasets.Sequence(datasets.Value("float32"))
    job = _MaskJob(
        dataset=dataset,
        processor=processor,
        image_column=image_column,
        mask_column=mask_column,
        box_column=box_column,
        points_column=points_column,
        names=[(cell or {}).get("path") for cell in dataset[image_column]],
        on_error=on_error,
        batch_size=batch_size,
        shard_size=shard_size,
        cache_dir=cache_dir,
        fingerprint=fingerprint,
        teacher_fingerprint=_settings_fingerprint(processor, fingerprint, teacher.fingerprint()) if teacher else None,
        teacher=teacher,
        teacher_device=teacher_device,
        teacher_dtype=teacher_dtype,
        features=features,
        teacher_features=teacher_features,
    )
    rank, world_size, wait_for_everyone = _process_group()
    report = MaskingReport(process_index=rank, num_processes=world_size)
    starts = list(enumerate(range(0, len(dataset), shard_size)))
    # Each process computes the missing shards of its rank (round robin: shard i is rank i % world_size's), then
    # every process reads every shard once all are written: no shard is computed twice, and the result does not
    # depend on how many processes made it.
    built = {}
    for shard_index, start in starts:
        if _written(job, shard_index):
            report.shards_reused += 1
        elif shard_index % world_size == rank:
            report.shards_computed += 1
            built[shard_index] = _build_shard(job, shard_index, start)
    wait_for_everyone()
    shards = [built[index] if index in built else _build_shard(job, index, start) for index, start in starts]
    result = datasets.concatenate_datasets(shards) if shards else dataset
    result = _drop_skipped(job, result, report)
    result = result.remove_columns("_roi_mask_error").cast_column(mask_column, datasets.Image())
    return result.cast_column(image_column, image_feature), report


def _cache_dir(dataset, cache_dir) -> Path:
    """The folder of the mask shards: as given, else beside the dataset's own cache files, else in `datasets`'."""
    if cache_dir is None:
        if dataset.cache_files:
            cache_dir = Path(dataset.cache_files[0]["filename"]).parent / "rvernet_roi_masks"
        else:
            cache_dir = Path(_datasets().config.HF_DATASETS_CACHE) / "rvernet_roi_masks"
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return cache_dir


def _drop_skipped(job: "_MaskJob", result, report: MaskingReport):
    """The samples that could not be used: with `on_error="skip"` reported (index, name, why) and left out; with
    `"raise"` the first is raised, naming it. The cache records what each sample was found to be, not what a run
    decided, so that each run decides from its own `on_error` (shards written by a skipping run hold the errors)."""
    errors = result["_roi_mask_error"]
    bad = [i for i, e in enumerate(errors) if e is not None]
    if bad and job.on_error == "raise":
        raise ValueError(f"sample {bad[0]} ({job.names[bad[0]] or 'in memory'}): {errors[bad[0]]}")
    report.skipped = [{"index": i, "name": job.names[i], "error": errors[i]} for i in bad]
    if not bad:
        return result
    from transformers.utils import logging

    logging.get_logger(__name__).warning(
        f"Skipped {len(bad)} samples without a usable ROI: {[r['name'] or r['index'] for r in report.skipped[:10]]}"
    )
    return result.select([i for i in range(len(result)) if errors[i] is None])


@dataclass
class _MaskJob:
    """What one `precompute_roi_masks` call works on: the dataset (images undecoded), its columns, the processor and
    teacher, and where and under which fingerprints its shards are cached."""

    dataset: Any
    processor: RveRNetImageProcessor
    image_column: str
    mask_column: str
    box_column: str | None
    points_column: str | None
    names: list
    on_error: str
    batch_size: int
    shard_size: int
    cache_dir: Path
    fingerprint: str
    teacher_fingerprint: str | None
    teacher: Any
    teacher_device: Any
    teacher_dtype: Any
    features: Any
    teacher_features: Any

    def shard_file(self, kind: str, shard_index: int) -> Path:
        """`masks`, `masks+teacher` (one pass) or `teacher` (over masks cached without it)."""
        key = self.fingerprint if kind == "masks" else self.teacher_fingerprint
        return self.cache_dir / f"{kind}-{key}-{shard_index:05d}-of-{len(self.dataset)}.arrow"


def _written(job: _MaskJob, shard_index: int) -> bool:
    if job.teacher is None:
        return job.shard_file("masks", shard_index).exists()
    return job.shard_file("masks+teacher", shard_index).exists() or (
        job.shard_file("masks", shard_index).exists() and job.shard_file("teacher", shard_index).exists()
    )


def _decode(job: _MaskJob, cell: Any, index: int, by_source: dict):
    """A sample's decoded photo; samples of one photo (one per food of a segmentation dataset, neighbours in a
    batch) share one decode through `by_source`."""
    source = _source_key(cell)
    if source is not None and source in by_source:
        return by_source[source]
    array = load_image(cell, index, job.processor.pad_value, do_convert_rgb=job.processor.do_convert_rgb)
    if source is not None:
        by_source[source] = array
    return array


def _photo_logits(job: _MaskJob, photos: dict[int, Any], size: int) -> list:
    """The teacher's logits for each batch position that has a decoded photo (None elsewhere), once per photo."""
    unique = {id(array): array for array in photos.values()}
    logits = (
        job.teacher.logits_of_images(list(unique.values()), job.teacher_device, job.teacher_dtype) if unique else []
    )
    by_photo = dict(zip(unique, logits))
    return [by_photo[id(photos[i])] if i in photos else None for i in range(size)]


def _segmenter_masks(job: _MaskJob, decoded: dict, missing: list[int], boxes, points) -> dict[int, Any]:
    """The segmenter's mask of each sample in `missing` (batch positions), or the `ValueError` that refused it: the
    batch at once, then (one bad sample, with `on_error="skip"`) one sample at a time to find the culprit."""

    def prompts(positions):
        return {
            "input_boxes": [boxes[i] if boxes and boxes[i] else None for i in positions],
            "input_points": [points[i] if points and points[i] else None for i in positions],
        }

    try:
        _, computed = job.processor.compute_roi_masks([decoded[i] for i in missing], **prompts(missing))
        return {i: image_masks[0] for i, image_masks in zip(missing, computed)}
    except ValueError:
        if job.on_error == "raise":
            raise
    results = {}
    for i in missing:
        try:
            _, (image_masks,) = job.processor.compute_roi_masks([decoded[i]], **prompts([i]))
            results[i] = image_masks[0]
        except ValueError as error:
            results[i] = error
    return results


def _add_masks(job: _MaskJob, batch: dict, indices: list[int], run_teacher: bool) -> dict:
    """One `map` batch: every sample checked alone first (one decode), so that a bad file is named now rather than
    found hours into training, and one bad sample does not take its batch down; given masks checked here, once;
    the segmenter for the rest; the teacher's logits from the same decoded photos when `run_teacher`."""
    existing = batch.get(job.mask_column) or [None] * len(indices)
    results: dict[int, Any] = {}
    missing, decoded, by_source = [], {}, {}
    for i, given_mask in enumerate(existing):
        try:
            decoded[i] = _decode(job, batch[job.image_column][i], indices[i], by_source)
            if given_mask is not None:
                results[i] = load_mask(given_mask, indices[i], decoded[i].shape[:2], allow_full=True)
            else:
                missing.append(i)
        except ValueError as error:
            results[i] = error
    if missing:
        boxes = batch.get(job.box_column) if job.box_column else None
        points = batch.get(job.points_column) if job.points_column else None
        results.update(_segmenter_masks(job, decoded, missing, boxes, points))
    masks, errors = [], []
    for i in range(len(indices)):
        if isinstance(results[i], Exception):
            if job.on_error == "raise":
                raise ValueError(f"sample {indices[i]} ({job.names[indices[i]] or 'in memory'}): {results[i]}")
            masks.append(None)
            errors.append(str(results[i]))
        else:
            masks.append(encode_mask(results[i]))
            errors.append(None)
    columns = {job.mask_column: masks, "_roi_mask_error": errors}
    if run_teacher:
        good = {i: decoded[i] for i in range(len(indices)) if errors[i] is None}
        columns["teacher_logits"] = _photo_logits(job, good, len(indices))
    return columns


def _add_teacher_logits(job: _MaskJob, batch: dict, indices: list[int]) -> dict:
    """Masks cached before without the teacher: only the teacher runs (decoding those photos again)."""
    by_source = {}
    photos = {
        i: _decode(job, batch[job.image_column][i], indices[i], by_source)
        for i, error in enumerate(batch["_roi_mask_error"])
        if error is None
    }
    return {"teacher_logits": _photo_logits(job, photos, len(indices))}


def _mapped(job: _MaskJob, shard, function, kind: str, shard_index: int, features, desc: str):
    # `datasets` writes the cache file under a temporary name and renames it when complete: a killed run leaves no
    # torn shard, and the next run (with any number of processes) recomputes only what is missing.
    cache_file = job.shard_file(kind, shard_index)
    return shard.map(
        function,
        batched=True,
        batch_size=job.batch_size,
        with_indices=True,
        features=features,
        cache_file_name=str(cache_file),
        load_from_cache_file=True,
        new_fingerprint=cache_file.stem,
        desc=desc,
    )


def _build_shard(job: _MaskJob, shard_index: int, start: int):
    """The shard's masks (and teacher logits): read from its cache files when written, else computed."""
    datasets = _datasets()
    stop = min(start + job.shard_size, len(job.dataset))
    shard = job.dataset.select(range(start, stop))
    if job.mask_column not in shard.column_names:
        shard = shard.add_column(job.mask_column, [None] * len(shard), feature=datasets.Image())
    reuse_masks = (
        job.shard_file("masks", shard_index).exists() and not job.shard_file("masks+teacher", shard_index).exists()
    )
    combined = job.teacher is not None and not reuse_masks  # one pass: each photo decoded once for all three uses
    shard = _mapped(
        job,
        shard,
        lambda batch, idx: _add_masks(job, batch, [start + i for i in idx], run_teacher=combined),
        "masks+teacher" if combined else "masks",
        shard_index,
        job.teacher_features if combined else job.features,
        f"ROI masks{' and teacher logits' if combined else ''}, shard {shard_index + 1}",
    )
    if job.teacher is None or combined:
        return shard
    return _mapped(
        job,
        shard,
        lambda batch, idx: _add_teacher_logits(job, batch, [start + i for i in idx]),
        "teacher",
        shard_index,
        job.teacher_features,
        f"Teacher logits, shard {shard_index + 1}",
    )
