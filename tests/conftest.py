"""Shared fixtures: tiny, deliberately odd tower configs (hidden 32, intermediate 37, 30 px images) so that shape bugs
fail loudly, and an offline environment."""

import os

import pytest


# Tests never touch the network: every Hub path is exercised on local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

IMAGE_SIZE = 30


def tiny_tower_config(family: str, num_labels: int = 5, image_size: int = IMAGE_SIZE):
    """A tiny config of one backbone family. `family` is one of `TOWER_FAMILIES`."""
    from transformers import (
        ConvNextConfig,
        DeiTConfig,
        MobileNetV2Config,
        ResNetConfig,
        SwinConfig,
        TimmWrapperConfig,
        ViTConfig,
    )

    vit_kwargs = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "image_size": image_size,
        "patch_size": 6 if image_size % 6 == 0 else 8,
        "num_labels": num_labels,
    }
    if family == "deit":
        return DeiTConfig(**vit_kwargs)
    if family == "deit_distilled":
        return DeiTConfig(**vit_kwargs, architectures=["DeiTForImageClassificationWithTeacher"])
    if family == "vit":
        return ViTConfig(**vit_kwargs)
    if family == "convnext":
        return ConvNextConfig(
            num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, patch_size=2, image_size=image_size,
            num_labels=num_labels,
        )  # fmt: skip
    if family == "resnet":
        return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=num_labels)
    if family == "mobilenet_v2":
        return MobileNetV2Config(depth_multiplier=0.25, image_size=image_size, num_labels=num_labels)
    if family == "swin":
        return SwinConfig(
            image_size=image_size, patch_size=3, embed_dim=8, depths=[1, 1], num_heads=[2, 2], window_size=5,
            num_labels=num_labels,
        )  # fmt: skip
    if family == "timm":
        return TimmWrapperConfig(architecture="test_efficientnet", num_labels=num_labels)
    raise ValueError(family)


TOWER_FAMILIES = ("deit", "deit_distilled", "vit", "convnext", "resnet", "mobilenet_v2", "swin", "timm")


@pytest.fixture
def tiny_config():
    """The standard tiny RveRNet: a DeiT ROI tower and a ResNet context tower, 3 labels."""
    from rvernet_hf import RveRNetConfig

    return RveRNetConfig(
        roi_config=tiny_tower_config("deit"),
        context_config=tiny_tower_config("resnet"),
        id2label={0: "ketchup", 1: "chili paste", 2: "fries"},
        label2id={"ketchup": 0, "chili paste": 1, "fries": 2},
        fusion_hidden_size=24,
    )


SYNTH_SIZE = 32


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """The built-in ambiguous-food benchmark at test size: 5 classes x 8 images of 32 px, with masks."""
    from rvernet_hf.synthetic import generate_ambiguous_food

    root = tmp_path_factory.mktemp("ambiguous_food")
    generate_ambiguous_food(root, num_per_class=8, image_size=SYNTH_SIZE, seed=0,
                            splits={"train": 0.75, "validation": 0.25})  # fmt: skip
    return root


@pytest.fixture(scope="session")
def tower_dir(tmp_path_factory):
    """A saved tiny DeiT config (32 px), used as a tower 'checkpoint' with `--from_scratch`."""
    from transformers import DeiTConfig

    folder = tmp_path_factory.mktemp("tiny_deit")
    DeiTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
               image_size=SYNTH_SIZE, patch_size=8).save_pretrained(folder)  # fmt: skip
    return folder


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory):
    """A tiny random ResNet teacher (with batch norm) that predicts the benchmark's 5 labels, saved with a
    processor (its own normalisation, 24 px: different from the towers')."""
    import torch
    from transformers import ResNetForImageClassification, ViTImageProcessor

    from rvernet_hf.synthetic import CLASSES

    folder = tmp_path_factory.mktemp("tiny_teacher")
    names = sorted(CLASSES)
    config = tiny_tower_config("resnet", num_labels=len(names))
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    torch.manual_seed(0)
    ResNetForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 24, "width": 24}, image_mean=[0.5] * 3, image_std=[0.25] * 3).save_pretrained(folder)
    return folder


SEGMENTER_FAMILIES = ("sam", "sam_hq", "sam2", "edgetam", "sam3_tracker")


def tiny_segmenter(family: str, seed: int = 0):
    """A tiny random promptable segmenter of one family (the real transformers code path): SAM/SAM-HQ at 64 px,
    SAM 2 / EdgeTAM at 128 px and the SAM 3 tracker at 112 px, 32-wide decoders."""
    import torch
    import transformers as T

    torch.manual_seed(seed)

    def prompt(prefix, image_size, patch_size):
        return getattr(T, f"{prefix}PromptEncoderConfig")(
            hidden_size=32, image_size=image_size, patch_size=patch_size, mask_input_channels=8
        )

    def decoder(prefix, **kwargs):
        return getattr(T, f"{prefix}MaskDecoderConfig")(
            hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=4, iou_head_hidden_dim=32, **kwargs
        )

    if family in ("sam", "sam_hq"):
        prefix = "Sam" if family == "sam" else "SamHQ"
        vision = getattr(T, f"{prefix}VisionConfig")(
            hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2, image_size=64,
            patch_size=8, window_size=4, global_attn_indexes=[1], mlp_dim=37, num_pos_feats=16,
        )  # fmt: skip
        extra = {"vit_dim": 32} if family == "sam_hq" else {}
        config = getattr(T, f"{prefix}Config")(
            vision_config=vision, prompt_encoder_config=prompt(prefix, 64, 8), mask_decoder_config=decoder(prefix, **extra)
        )
        return getattr(T, f"{prefix}Model")(config).eval()
    levels = {"backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]], "fpn_hidden_size": 32}
    if family == "sam2":
        backbone = T.Sam2HieraDetConfig(
            hidden_size=12, image_size=128, blocks_per_stage=[1, 1, 1, 1], embed_dim_per_stage=[12, 24, 48, 96],
            num_attention_heads_per_stage=[1, 2, 4, 8],
        )  # fmt: skip
        vision = T.Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[96, 48, 24, 12], **levels)
        prefix, size, patch = "Sam2", 128, 16
    elif family == "edgetam":
        backbone = T.TimmWrapperConfig(
            architecture="test_efficientnet",
            model_args={"in_chans": 3, "features_only": True, "out_indices": [1, 2, 3, 4]},
        )
        vision = T.EdgeTamVisionConfig(backbone_config=backbone, backbone_channel_list=[64, 48, 32, 24], **levels)
        prefix, size, patch = "EdgeTam", 128, 16
    elif family == "sam3_tracker":
        backbone = T.Sam3ViTConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, image_size=112,
            patch_size=14,
        )  # fmt: skip
        vision = T.Sam3VisionConfig(backbone_config=backbone, **levels)
        prefix, size, patch = "Sam3Tracker", 112, 14
    else:
        raise ValueError(family)
    config = getattr(T, f"{prefix}Config")(
        vision_config=vision, prompt_encoder_config=prompt(prefix, size, patch), mask_decoder_config=decoder(prefix)
    )
    return getattr(T, f"{prefix}Model")(config).eval()


def tiny_sam3():
    """A tiny random SAM 3 (`Sam3Model`, text prompts) and its `Sam3Processor`, with a word-level tokenizer of a few
    food words (no tokenizer can be downloaded here): 112 px, 32 wide, 10 queries."""
    import tokenizers
    import torch
    import transformers as T

    torch.manual_seed(0)
    backbone = T.Sam3ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, image_size=112, patch_size=14
    )
    config = T.Sam3Config(
        vision_config=T.Sam3VisionConfig(
            backbone_config=backbone, backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]], fpn_hidden_size=32
        ),
        text_config=T.CLIPTextConfig(
            vocab_size=16, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=32, projection_dim=32,
        ),
        geometry_encoder_config=T.Sam3GeometryEncoderConfig(hidden_size=32, num_layers=1, num_attention_heads=2,
                                                             intermediate_size=37),
        detr_encoder_config=T.Sam3DETREncoderConfig(hidden_size=32, num_layers=1, num_attention_heads=2,
                                                     intermediate_size=37),
        detr_decoder_config=T.Sam3DETRDecoderConfig(hidden_size=32, num_layers=1, num_queries=10,
                                                     num_attention_heads=2, intermediate_size=37),
        mask_decoder_config=T.Sam3MaskDecoderConfig(hidden_size=32, num_attention_heads=2),
    )  # fmt: skip
    words = ["[PAD]", "[UNK]", "food", "sauce", "ketchup", "fries", "plate", "cup"]
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = T.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    processor = T.Sam3Processor(image_processor=T.Sam3ImageProcessor(size={"height": 112, "width": 112}), tokenizer=tokenizer)
    return T.Sam3Model(config).eval(), processor
