# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The patch-grid contract of token-sparse towers (`token_selection="mask"`), in one place for the image processor
(which patches each tower reads: `token_keep_masks`) and the model (which towers can read a subset and how:
`tower_token_patch_size`, `kept_token_index`, `keep_tokens`).

A token mask is `(num_patches,)` bool per sample (batched `(batch, num_patches)`), in raster order over the cut-out's
`(height // p) x (width // p)` patch grid of the tower's patch size `p`. Uploaded next to the weights (remote code):
imports only torch and transformers.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedConfig, PreTrainedModel


TOKEN_TOWERS = ("roi", "context")


def normalize_patch_sizes(value: Any) -> dict[str, int | None]:
    """`patch_size` in its saved form: `{"roi": p or None, "context": q or None}` (an int means both towers)."""
    if isinstance(value, dict):
        unknown = set(value) - set(TOKEN_TOWERS)
        if unknown:
            raise ValueError(f"`patch_size` keys must be {TOKEN_TOWERS}, got {sorted(value)}.")
        sizes = {tower: value.get(tower) for tower in TOKEN_TOWERS}
    else:
        sizes = dict.fromkeys(TOKEN_TOWERS, value)
    for tower, size in sizes.items():
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"`patch_size` of the {tower} tower must be a positive integer or None, got {size!r}.")
    return sizes


def token_keep_masks(
    canvas_mask: torch.Tensor,
    patch_sizes: dict[str, int | None] | None,
    keep_threshold: float = 0.0,
    margin: int = 0,
    context_mode: str = "complement",
) -> dict[str, torch.Tensor]:
    """The patches each tower reads, from the ROI mask at the cut-out size, (H, W) bool or a batch (N, H, W):
    `{"roi_token_mask": (num_patches,) or (N, num_patches) bool, "context_token_mask": ...}` for the towers with a
    patch size (empty without any).

    A patch is read by the ROI tower when more than `keep_threshold` of its pixels are in the ROI, by the context
    tower when more than that fraction is outside it (`context_mode="full"`: every patch); `margin` adds a ring of
    that many patches around each tower's region."""
    masks = {}
    batch = canvas_mask.reshape(-1, 1, *canvas_mask.shape[-2:]).float()  # (N, 1, H, W)
    for tower, patch in (patch_sizes or {}).items():
        if patch is None:
            continue
        inside = F.avg_pool2d(batch, patch)  # ROI share of each patch, (N, 1, H / patch, W / patch)
        if tower == "roi":
            keep = inside > keep_threshold
        elif context_mode == "complement":
            keep = (1.0 - inside) > keep_threshold
        else:  # the context tower sees the whole image
            keep = torch.ones_like(inside, dtype=torch.bool)
        if margin:  # a ring of `margin` patches around the region
            keep = F.max_pool2d(keep.float(), 2 * margin + 1, stride=1, padding=margin) > 0
        masks[f"{tower}_token_mask"] = keep.reshape(*canvas_mask.shape[:-2], -1)
    return masks


# ViT-family towers that can read a subset of their patches (`token_selection="mask"`): model_type -> the number of
# special tokens before the patches (CLS; DeiT adds its distillation token). Their forward is embeddings (position
# embeddings included) -> layers that take an attention mask -> layer norm -> a head that reads only the special
# tokens, so dropping patch tokens right after the embeddings is exact. (Dinov2 pools the mean of the patch tokens
# and BEiT-style towers carry a relative position bias per patch pair: not here.)
SPARSE_TOWER_SPECIAL_TOKENS = {"deit": 2, "vit": 1}


def tower_token_patch_size(config: PreTrainedConfig) -> int | None:
    """The patch size of a tower that can read selected tokens (the grid its token mask is on), else None."""
    if config.model_type in SPARSE_TOWER_SPECIAL_TOKENS:
        return int(config.patch_size)
    return None


def tower_num_patches(config: PreTrainedConfig, pixel_values: torch.Tensor) -> int:
    """How many patch tokens a sparse-capable tower makes of `pixel_values` (its token mask's length)."""
    patch_size = tower_token_patch_size(config)
    return (pixel_values.shape[-2] // patch_size) * (pixel_values.shape[-1] // patch_size)


def kept_token_index(token_mask: torch.Tensor, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A `(batch, num_patches)` keep mask -> `(index, valid)`, both `(batch, length)`: each sample's kept patch
    positions first, in raster order, padded to the batch's largest kept count `length` (`valid` False there).

    Reading `length` is one device-to-host sync per tower and step: the encoder's input size depends on the data.
    """
    keep = token_mask.bool()
    if length is None:  # given by a caller that has read the kept counts already
        length = int(keep.sum(dim=1).max()) if keep.numel() else 0
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :length]
    return order, keep.gather(1, order)


@contextlib.contextmanager
def keep_tokens(tower: PreTrainedModel, index: torch.Tensor, valid: torch.Tensor) -> Iterator[torch.Tensor]:
    """While active, `tower` encodes only its special tokens and the patches `index` selects; yields the attention
    mask `(batch, special + length)` to pass to the tower's forward (padding is masked out as keys, and its
    embeddings are zero, so no dropped patch reaches the output by any path)."""
    special = SPARSE_TOWER_SPECIAL_TOKENS[tower.config.model_type]

    def select(module, args, embeddings):
        patches = embeddings[:, special:].gather(1, index.unsqueeze(-1).expand(-1, -1, embeddings.shape[-1]))
        patches = patches * valid.unsqueeze(-1).to(patches.dtype)
        return torch.cat([embeddings[:, :special], patches], dim=1)

    handle = tower.base_model.embeddings.register_forward_hook(select)
    try:
        yield torch.cat([valid.new_ones(valid.shape[0], special), valid], dim=1).long()
    finally:
        handle.remove()


def length_groups(counts: list[int], min_size: int = 4, keep: float = 0.75, max_groups: int = 4) -> list[list[int]]:
    """Sample indices in groups of similar kept-token counts, longest first: a group ends where the next sample keeps
    fewer than `keep` of the group's longest, when both it and the rest hold at least `min_size` samples; at most
    `max_groups` groups. One group (the whole batch) when nothing is gained."""
    order = sorted(range(len(counts)), key=lambda i: -counts[i])
    groups: list[list[int]] = [[]]
    for position, index in enumerate(order):
        current = groups[-1]
        if (
            current
            and counts[index] < keep * counts[current[0]]
            and len(current) >= min_size
            and len(order) - position >= min_size
            and len(groups) < max_groups
        ):
            groups.append([])
        groups[-1].append(index)
    return groups


def run_in_groups(tower: PreTrainedModel, pixel_values, token_mask, groups: list[list[int]], counts, options: dict):
    """The tower's pooled output for the batch, computed group by group (each padded to its own longest kept count,
    from `counts`) and put back in the batch's order: the same values as one padded pass (padding is masked out
    either way)."""
    parts, order = [], []
    for group in groups:
        index = torch.as_tensor(group, device=pixel_values.device)
        length = max(counts[i] for i in group)
        with keep_tokens(tower, *kept_token_index(token_mask[index], length)) as attention_mask:
            outputs = tower(pixel_values=pixel_values[index], attention_mask=attention_mask, **options)
        parts.append(outputs.logits if "logits" in outputs else outputs.pooler_output)
        order.extend(group)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.as_tensor(order)] = torch.arange(len(order))
    return torch.cat(parts)[inverse.to(parts[0].device)]


__all__ = [
    "SPARSE_TOWER_SPECIAL_TOKENS",
    "TOKEN_TOWERS",
    "keep_tokens",
    "kept_token_index",
    "length_groups",
    "normalize_patch_sizes",
    "run_in_groups",
    "token_keep_masks",
    "tower_num_patches",
    "tower_token_patch_size",
]
