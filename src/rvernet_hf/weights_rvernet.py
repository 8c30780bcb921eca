# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""What RveRNet's `from_pretrained` refuses to load: weights that cannot be the model's (NaN or infinite values: a
damaged file, a diverged run's save). A loading policy kept apart from the model's forward pass. Uploaded next to the
weights with the modeling code (remote code): imports only torch.
"""

import os

import torch
from torch import nn


def check_finite_weights(model: nn.Module, source) -> None:
    """Refuse a model whose parameters hold NaN or infinite values (or whose buffers hold NaN: some buffers hold -inf
    on purpose), naming `source`'s weights file and the first such tensor.

    One float64 sum per tensor screens it (a NaN or an infinity makes the sum non-finite; float64 cannot overflow on
    finite weights), one device-to-host sync for all; only a flagged tensor is looked at element by element."""
    tensors = [(name, value, True) for name, value in model.named_parameters()]
    tensors += [(name, value, False) for name, value in model.named_buffers()]
    tensors = [item for item in tensors if item[1].is_floating_point() and item[1].device.type != "meta"]
    if not tensors:
        return
    with torch.no_grad():
        sums = torch.stack([value.sum(dtype=torch.float64).to(tensors[0][1].device) for _, value, _ in tensors])
        flagged = torch.nonzero(~torch.isfinite(sums)).flatten().tolist()
        for position in flagged:
            name, value, strict = tensors[position]
            bad = ~torch.isfinite(value) if strict else torch.isnan(value)
            count = int(bad.sum())
            if count:
                weights = os.fspath(source)
                weights = os.path.join(weights, "model.safetensors") if os.path.isdir(weights) else weights
                raise ValueError(
                    f"{weights}: the weight {name} holds {count} NaN or infinite value(s) of {value.numel()}: the "
                    "file is damaged or was saved from a run that diverged. Download or save it again."
                )


__all__ = ["check_finite_weights"]
