# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The ROI mask cache: every sample of a dataset read and checked once, its missing masks made by SAM once.

`precompute_roi_masks` writes the masks into the dataset in shards, each a `datasets` cache file written whole or
not at all; shards are split across the processes of a `torch.distributed` group (`torchrun`, `accelerate launch`),
a killed run resumes at the unfinished shards with any number of processes, and the result does not depend on how
many processes made it. Every mask leaves the cache in one form, checked once here (the image's size, binary, not
empty): a 1-bit PNG that the training transforms decode without checking it again.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..image_processing_rvernet import RveRNetImageProcessor, load_image, load_mask
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
):
    """Run SAM over a `datasets.Dataset` once and store each sample's ROI mask (1-bit PNG) in `mask_column`.

    Samples that already have a mask keep it. Boxes/points in `box_column`/`points_column` prompt SAM; a sample with
    neither gets the processor's automatic ROI. Work is done in shards of `shard_size` samples, each a batched
    `map` written to its own cache file named by the dataset's fingerprint and the SAM settings: an interrupted run
    resumes at the first unfinished shard, and a second run (and every training epoch after it) performs no SAM
    forward pass at all.

    Args:
        on_error: `"raise"` stops at the first bad sample, naming it; `"skip"` drops bad samples and reports them
            (count and names) in the returned `MaskingReport`. Finished shards are kept either way.

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
    if cache_dir is None:
        if dataset.cache_files:
            cache_dir = Path(dataset.cache_files[0]["filename"]).parent / "rvernet_roi_masks"
        else:
            cache_dir = Path(datasets.config.HF_DATASETS_CACHE) / "rvernet_roi_masks"
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _settings_fingerprint(processor, dataset._fingerprint, image_column, box_column, points_column)
    report = MaskingReport()
    # Images (and existing masks) are read by the processor, not decoded by `datasets`: a broken file then becomes
    # a named error of one sample instead of an exception deep inside `map`.
    image_feature = dataset.features[image_column]
    dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    if mask_column in dataset.column_names:
        dataset = dataset.cast_column(mask_column, datasets.Image(decode=False))
    names = [(p or {}).get("path") for p in dataset[image_column]]

    def add_masks(batch, indices):
        masks, errors = [], []
        existing = batch.get(mask_column) or [None] * len(indices)
        boxes = batch.get(box_column) if box_column else None
        points = batch.get(points_column) if points_column else None
        results: dict[int, Any] = {}
        # Check every sample alone first (cheap: one decode), so that a bad file is named now rather than found
        # hours into training, and one bad sample does not take its batch down. Given masks are checked too.
        good, decoded = [], {}
        for i, given_mask in enumerate(existing):
            try:
                array = load_image(
                    batch[image_column][i], indices[i], processor.pad_value, do_convert_rgb=processor.do_convert_rgb
                )
                if given_mask is not None:
                    load_mask(given_mask, indices[i], array.shape[:2], allow_full=True)
                else:
                    good.append(i)
                    decoded[i] = array  # SAM reads this decoded copy: each image is decoded once here
            except ValueError as error:
                results[i] = error
        if good:
            try:
                _, computed = processor.compute_roi_masks(
                    [decoded[i] for i in good],
                    input_boxes=[boxes[i] if boxes and boxes[i] else None for i in good],
                    input_points=[points[i] if points and points[i] else None for i in good],
                )
                for i, image_masks in zip(good, computed):
                    results[i] = image_masks[0]
            except ValueError:
                if on_error == "raise":
                    raise
                for i in good:  # find the culprit one sample at a time
                    try:
                        results[i] = processor.compute_roi_masks(
                            [decoded[i]],
                            input_boxes=[boxes[i] if boxes and boxes[i] else None],
                            input_points=[points[i] if points and points[i] else None],
                        )[1][0][0]
                    except ValueError as sample_error:
                        results[i] = sample_error
        for i, mask in enumerate(existing):
            value = results.get(i, mask)
            if isinstance(value, Exception):
                if on_error == "raise":
                    raise ValueError(f"sample {indices[i]} ({names[indices[i]] or 'in memory'}): {value}")
                masks.append(None)
                errors.append(str(value))
            else:
                masks.append(encode_mask(value) if isinstance(value, np.ndarray) else value)
                errors.append(None)
        return {mask_column: masks, "_roi_mask_error": errors}

    features = dataset.features.copy()
    features[mask_column] = datasets.Image()
    features["_roi_mask_error"] = datasets.Value("string")
    rank, world_size, wait_for_everyone = _process_group()
    report.process_index, report.num_processes = rank, world_size

    def build_shard(shard_index: int, start: int):
        stop = min(start + shard_size, len(dataset))
        cache_file = cache_dir / f"masks-{fingerprint}-{shard_index:05d}-of-{len(dataset)}.arrow"
        shard = dataset.select(range(start, stop))
        if mask_column not in shard.column_names:
            shard = shard.add_column(mask_column, [None] * len(shard), feature=datasets.Image())
        # `datasets` writes the cache file under a temporary name and renames it when complete: a killed run
        # leaves no torn shard, and the next run (with any number of processes) recomputes only what is missing.
        return shard.map(
            lambda batch, idx, offset=start: add_masks(batch, [offset + i for i in idx]),
            batched=True,
            batch_size=batch_size,
            with_indices=True,
            features=features,
            cache_file_name=str(cache_file),
            load_from_cache_file=True,
            new_fingerprint=f"{fingerprint}-{shard_index}",
            desc=f"SAM masks, shard {shard_index + 1}",
        )

    starts = list(enumerate(range(0, len(dataset), shard_size)))
    shard_files = {i: cache_dir / f"masks-{fingerprint}-{i:05d}-of-{len(dataset)}.arrow" for i, _ in starts}
    # Each process computes the missing shards of its rank (round robin: shard i is rank i % world_size's), then
    # every process reads every shard once all are written: no shard is computed twice, and the result does not
    # depend on how many processes made it.
    built = {}
    for shard_index, start in starts:
        if shard_files[shard_index].exists():
            report.shards_reused += 1
        elif shard_index % world_size == rank:
            report.shards_computed += 1
            built[shard_index] = build_shard(shard_index, start)
    wait_for_everyone()
    shards = [built[index] if index in built else build_shard(index, start) for index, start in starts]
    result = datasets.concatenate_datasets(shards) if shards else dataset
    errors = result["_roi_mask_error"]
    bad = [i for i, e in enumerate(errors) if e is not None]
    report.skipped = [{"index": i, "name": names[i], "error": errors[i]} for i in bad]
    if bad:
        from transformers.utils import logging

        logging.get_logger(__name__).warning(
            f"Skipped {len(bad)} samples without a usable ROI: {[r['name'] or r['index'] for r in report.skipped[:10]]}"
        )
        result = result.select([i for i in range(len(result)) if errors[i] is None])
    result = result.remove_columns("_roi_mask_error").cast_column(mask_column, datasets.Image())
    return result.cast_column(image_column, image_feature), report
