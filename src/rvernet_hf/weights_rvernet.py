# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""What RveRNet's `from_pretrained` refuses to load, a loading policy kept apart from the model's forward pass:
weights whose file changed since this package saved it (`CHECKSUM_FILE`: the sha256 of each weights file, written at
save, checked at load), and, for any folder, weights that cannot be a trained model's (NaN or infinite values, or
magnitudes beyond `MAX_WEIGHT_MAGNITUDE`: a damaged file decodes to numbers like 1e37). Uploaded next to the weights
with the modeling code (remote code): imports only torch and transformers.
"""

import hashlib
import json
import os

import torch
from torch import nn


CHECKSUM_FILE = "rvernet_weights.json"
# No trained network holds a parameter this large (float16 stops at 6.5e4); random bytes decode to such numbers in
# about a third of float32 values, so a damaged stretch of a file is all but sure to hold one.
MAX_WEIGHT_MAGNITUDE = 1e12
_WEIGHTS = "model.safetensors"
_INDEX = "model.safetensors.index.json"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_files(folder: str | os.PathLike) -> list[str]:
    """The weights files of a saved folder: `model.safetensors`, or the shards its index lists."""
    folder = os.fspath(folder)
    if os.path.isfile(os.path.join(folder, _WEIGHTS)):
        return [_WEIGHTS]
    index = os.path.join(folder, _INDEX)
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as handle:
            return sorted(set(json.load(handle)["weight_map"].values()))
    return []


def write_checksums(folder: str | os.PathLike) -> None:
    """`CHECKSUM_FILE` beside the weights: `{file: {"sha256", "bytes"}}`, written aside, then renamed."""
    folder = os.fspath(folder)
    record = {
        name: {"sha256": _sha256(os.path.join(folder, name)), "bytes": os.path.getsize(os.path.join(folder, name))}
        for name in weight_files(folder)
    }
    if not record:
        return
    partial = os.path.join(folder, f".{CHECKSUM_FILE}.tmp-{os.getpid()}")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.replace(partial, os.path.join(folder, CHECKSUM_FILE))


def _local_file(source: str, name: str, revision: str | None) -> str | None:
    """`name` in the folder `source`, or in the local copy of the Hub repository `source` (never downloaded here)."""
    if os.path.isdir(source):
        path = os.path.join(source, name)
        return path if os.path.isfile(path) else None
    from transformers.utils import cached_file

    try:
        return cached_file(
            source,
            name,
            revision=revision,
            local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    except (OSError, ValueError):
        return None


def verify_checksums(source, revision: str | None = None) -> None:
    """Refuse, naming the file, weights whose sha256 differs from the one this package wrote when it saved them
    (a folder without `CHECKSUM_FILE`, saved elsewhere, is not checked this way)."""
    record_path = _local_file(os.fspath(source), CHECKSUM_FILE, revision)
    if record_path is None:
        return
    with open(record_path, encoding="utf-8") as handle:
        record = json.load(handle)
    for name, expected in sorted(record.items()):
        path = _local_file(os.fspath(source), name, revision)
        if path is None:
            raise ValueError(f"{source}: {CHECKSUM_FILE} lists {name}, which is not there: the folder is incomplete.")
        if os.path.getsize(path) != expected["bytes"] or _sha256(path) != expected["sha256"]:
            raise ValueError(
                f"{path}: the file differs from the one saved (its sha256 in {CHECKSUM_FILE} does not match): it was "
                f"damaged or changed after saving. Download or save it again (if you changed it on purpose, delete "
                f"{CHECKSUM_FILE}: the weights' values are still checked)."
            )


def _extremes(value: torch.Tensor) -> torch.Tensor:
    """(min, max) of a tensor as float64, one pass and no copy: a NaN anywhere makes both NaN, an infinity shows as
    one of them."""
    if not value.numel():
        return torch.zeros(2, dtype=torch.float64, device=value.device)
    return torch.stack(torch.aminmax(value)).double()


def check_finite_weights(model: nn.Module, source) -> None:
    """Refuse a model whose parameters hold NaN or infinite values or magnitudes beyond `MAX_WEIGHT_MAGNITUDE` (or
    whose buffers hold NaN: some buffers hold -inf on purpose), naming `source`'s weights file and the first such
    tensor.

    One min/max pass per tensor screens it (`torch.aminmax`: NaN propagates, an infinity or a huge value is an
    extreme), one device-to-host sync for all; only a flagged tensor is looked at element by element."""
    tensors = [(name, value, True) for name, value in model.named_parameters()]
    tensors += [(name, value, False) for name, value in model.named_buffers()]
    tensors = [item for item in tensors if item[1].is_floating_point() and item[1].device.type != "meta"]
    if not tensors:
        return
    weights = "the weights given" if source is None else os.fspath(source)  # `from_pretrained(None, state_dict=...)`
    weights = os.path.join(weights, _WEIGHTS) if os.path.isdir(weights) else weights
    with torch.no_grad():
        device = tensors[0][1].device
        extremes = torch.stack([_extremes(value).to(device) for _, value, _ in tensors])  # (n, 2)
        strict = torch.tensor([item[2] for item in tensors], device=device)
        magnitude = extremes.abs().amax(dim=1)
        bad = extremes.isnan().any(dim=1) | (strict & ~(magnitude <= MAX_WEIGHT_MAGNITUDE))
        for position in torch.nonzero(bad).flatten().tolist():
            name, value, is_parameter = tensors[position]
            count = int((~torch.isfinite(value) if is_parameter else torch.isnan(value)).sum())
            if count:
                raise ValueError(
                    f"{weights}: the weight {name} holds {count} NaN or infinite value(s) of {value.numel()}: the "
                    "file is damaged or was saved from a run that diverged. Download or save it again."
                )
            huge = int((value.abs() > MAX_WEIGHT_MAGNITUDE).sum())
            raise ValueError(
                f"{weights}: the weight {name} holds {huge} value(s) beyond {MAX_WEIGHT_MAGNITUDE:g} in magnitude "
                f"(the largest {float(magnitude[position]):.3g}): no trained model holds such weights; the file is "
                "damaged. Download or save it again."
            )


__all__ = ["CHECKSUM_FILE", "MAX_WEIGHT_MAGNITUDE", "check_finite_weights", "verify_checksums", "write_checksums"]
