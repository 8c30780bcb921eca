# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Tiny random models for tests, examples and benchmark smoke runs (the way `transformers.testing_utils` serves
transformers' tests): deliberately odd tower configs (hidden 32, intermediate 37, 30 px images) so that shape bugs
fail loudly, a tiny random model of every promptable segmenter family, and the official RveRNet code's model as it
is described (`OfficialRveRNet`, `save_official_checkpoint`: the converter's counterpart). Random weights: their
outputs mean nothing; their shapes, code paths and costs are real. Not imported by the files uploaded with a
model."""

import torch


IMAGE_SIZE = 30


def folder_training_args(root) -> list[str]:
    """`rvernet-hf train` arguments for the built-in benchmark's folders under `root` (`rvernet_hf.synthetic`
    writes `train/`, `train_masks/`, `validation/`, `validation_masks/`)."""
    return [
        "--train_dir",
        str(root / "train"),
        "--train_masks_dir",
        str(root / "train_masks"),
        "--validation_dir",
        str(root / "validation"),
        "--validation_masks_dir",
        str(root / "validation_masks"),
    ]


def machine_facts() -> dict:
    """Where a benchmark ran: device, processor and cores, torch version and threads (printed with its figures)."""
    import os
    import platform

    import torch

    return {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(url: str, process, seconds: float = 120) -> None:
    """Wait until `url` answers, while `process` (a `subprocess.Popen`) runs; raise if it exits or never answers."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer at {url} within {seconds:g} s")


def python_command(*module_args: str, processes: int = 1) -> list[str]:
    """`python -m <module_args>`, under `torchrun` on a free local port when `processes > 1` (gloo on CPU)."""
    import sys

    if processes == 1:
        return [sys.executable, "-m", *module_args]
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(free_port())]
    return [sys.executable, *launcher, "-m", *module_args]


def _synchronised_seconds(fn) -> float:
    """Wall time of one `fn()` call (CUDA synchronised around it when a GPU is present)."""
    import time

    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def median_seconds(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` calls after `warmup` untimed ones (CUDA synchronised around each
    call when a GPU is present): `benchmarks/`' timer of one thing (`interleaved_seconds` compares several)."""
    import statistics

    for _ in range(warmup):
        fn()
    return statistics.median(_synchronised_seconds(fn) for _ in range(repeats))


def interleaved_seconds(fns: dict, repeats: int = 5, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times of several callables measured in rounds, one call of each per round, the order rotated from round
    to round: `{name: [seconds per round]}`. A ratio of two of them taken round by round (then its median) is what
    a drifting, shared machine lets one compare; their medians taken apart are not."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_synchronised_seconds(fns[name]))
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """The median of the round-by-round ratios of two `interleaved_seconds` series."""
    import statistics

    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def write_dataset_repo(folder, rows_per_split: dict, features, id2label: dict | None = None):
    """A local folder shaped like a Hub dataset repository as the public food datasets publish it: one parquet file
    per split under `data/` and, when given, the class names in `id2label.json`; `datasets.load_dataset(folder)`
    reads it as it reads the Hub id."""
    import json
    from pathlib import Path

    import datasets

    folder = Path(folder)
    (folder / "data").mkdir(parents=True)
    for split, rows in rows_per_split.items():
        dataset = datasets.Dataset.from_dict(rows, features=features)
        dataset.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    if id2label is not None:
        (folder / "id2label.json").write_text(json.dumps({str(k): v for k, v in id2label.items()}))
    return folder


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
            num_channels=3,
            hidden_sizes=[8, 16],
            depths=[1, 1],
            num_stages=2,
            patch_size=2,
            image_size=image_size,
            num_labels=num_labels,
        )
    if family == "resnet":
        return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=num_labels)
    if family == "mobilenet_v2":
        return MobileNetV2Config(depth_multiplier=0.25, image_size=image_size, num_labels=num_labels)
    if family == "swin":
        return SwinConfig(
            image_size=image_size,
            patch_size=3,
            embed_dim=8,
            depths=[1, 1],
            num_heads=[2, 2],
            window_size=5,
            num_labels=num_labels,
        )
    if family == "timm":
        return TimmWrapperConfig(architecture="test_efficientnet", num_labels=num_labels)
    raise ValueError(family)


TOWER_FAMILIES = ("deit", "deit_distilled", "vit", "convnext", "resnet", "mobilenet_v2", "swin", "timm")


def tiny_sam(seed: int = 0):
    """A tiny random `SamModel` (the real code path): 64 px input, 8x8 embedding (`tiny_segmenter("sam")`)."""
    return tiny_segmenter("sam", seed)


SEGMENTER_FAMILIES = ("sam", "sam_hq", "sam2", "edgetam", "sam3_tracker")


def tiny_segmenter(family: str, seed: int = 0, sam_size: tuple[int, int] = (64, 8)):
    """A tiny random promptable segmenter of one family (the real transformers code path): SAM/SAM-HQ at 64 px
    (`sam_size`: input size and patch size), SAM 2 / EdgeTAM at 128 px and the SAM 3 tracker at 112 px, 32-wide
    decoders."""
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
            hidden_size=32,
            output_channels=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=sam_size[0],
            patch_size=sam_size[1],
            window_size=4,
            global_attn_indexes=[1],
            mlp_dim=37,
            num_pos_feats=16,
        )
        extra = {"vit_dim": 32} if family == "sam_hq" else {}
        config = getattr(T, f"{prefix}Config")(
            vision_config=vision,
            prompt_encoder_config=prompt(prefix, *sam_size),
            mask_decoder_config=decoder(prefix, **extra),
        )
        return getattr(T, f"{prefix}Model")(config).eval()
    levels = {"backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]], "fpn_hidden_size": 32}
    if family == "sam2":
        backbone = T.Sam2HieraDetConfig(
            hidden_size=12,
            image_size=128,
            blocks_per_stage=[1, 1, 1, 1],
            embed_dim_per_stage=[12, 24, 48, 96],
            num_attention_heads_per_stage=[1, 2, 4, 8],
        )
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
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            image_size=112,
            patch_size=14,
        )
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
            vocab_size=16,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            projection_dim=32,
        ),
        geometry_encoder_config=T.Sam3GeometryEncoderConfig(
            hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=37
        ),
        detr_encoder_config=T.Sam3DETREncoderConfig(
            hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=37
        ),
        detr_decoder_config=T.Sam3DETRDecoderConfig(
            hidden_size=32, num_layers=1, num_queries=10, num_attention_heads=2, intermediate_size=37
        ),
        mask_decoder_config=T.Sam3MaskDecoderConfig(hidden_size=32, num_attention_heads=2),
    )
    words = ["[PAD]", "[UNK]", "food", "sauce", "ketchup", "fries", "plate", "cup"]
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = T.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    processor = T.Sam3Processor(
        image_processor=T.Sam3ImageProcessor(size={"height": 112, "width": 112}), tokenizer=tokenizer
    )
    return T.Sam3Model(config).eval(), processor


def oracle_scene(seed: int, size: tuple[int, int] = (240, 320), objects: tuple[int, int] = (3, 10)):
    """A scene whose objects are known: `(photo, instance_map)`, RGB uint8 (H, W, 3) and int32 (H, W) with 0 for the
    background and k for the k-th visible object. `objects` (a range) of ellipses and rectangles, each 0.5 % to 40 %
    of the photo (log-uniform), textured, later ones on top; an object hidden behind later ones is dropped."""
    import numpy as np

    rng = np.random.default_rng(seed)
    height, width = size
    photo = np.clip(rng.normal(rng.integers(40, 215, 3), 12, (height, width, 3)), 0, 255)
    instance = np.zeros(size, dtype=np.int32)
    ys, xs = np.mgrid[:height, :width]
    for k in range(1, int(rng.integers(objects[0], objects[1] + 1)) + 1):
        area = float(np.exp(rng.uniform(np.log(0.005), np.log(0.4)))) * height * width
        aspect = float(rng.uniform(0.5, 2.0))
        half_h = min(height / 2, np.sqrt(area / aspect) / 2)
        ellipse = rng.random() < 0.5
        half_w = min(width / 2, area / (4 * half_h) * (4 / np.pi if ellipse else 1))
        cy, cx = rng.uniform(half_h, height - half_h), rng.uniform(half_w, width - half_w)
        if ellipse:
            shape = ((ys - cy) / half_h) ** 2 + ((xs - cx) / half_w) ** 2 <= 1
        else:
            shape = (np.abs(ys - cy) <= half_h) & (np.abs(xs - cx) <= half_w)
        instance[shape] = k
        photo[shape] = np.clip(rng.normal(rng.integers(20, 235, 3), 18, (int(shape.sum()), 3)), 0, 255)
    visible = [k for k in np.unique(instance) if k]
    relabelled = np.zeros_like(instance)
    for new_id, k in enumerate(visible, start=1):
        relabelled[instance == k] = new_id
    return photo.astype(np.uint8), relabelled


def scene_oracle(config=None, seed: int = 0):
    """A SAM (`SamModel`) of `config`'s shape (default: `tiny_sam`'s at 256 px; `SamConfig()` is SAM ViT-B's) whose image
    encoder and mask decoder run as usual, so their cost is real, but whose answer for a click is the true mask of
    the object under it (`set_scene(instance_map)`; the background counts as one region, like the table), with a
    predicted IoU of 0.95 for each of its three candidates. `oracle.prompts` counts the prompts decoded. It answers
    transformers' `mask-generation` pipeline too (same points, same frames)."""
    import torch
    import transformers as T

    class SceneOracle(T.SamModel):
        def set_scene(self, instance_map) -> None:
            """The next photo's objects: (H, W) ints, 0 = background. Precomputes each region's low-res logits."""
            import numpy as np

            self.instance_map = np.asarray(instance_map)
            height, width = self.instance_map.shape
            side = self.config.vision_config.image_size
            self.scale = side / max(height, width)
            frame = torch.zeros(side, side)
            low = side // 4
            self.region_logits = {}
            resized_h, resized_w = round(height * self.scale), round(width * self.scale)
            for k in np.unique(self.instance_map).tolist():
                region = torch.as_tensor(self.instance_map == k, dtype=torch.float32)[None, None]
                region = torch.nn.functional.interpolate(region, (resized_h, resized_w), mode="nearest")[0, 0]
                padded = frame.clone()
                padded[:resized_h, :resized_w] = region
                share = torch.nn.functional.adaptive_avg_pool2d(padded[None, None], low)[0, 0]
                self.region_logits[k] = torch.where(share >= 0.5, 20.0, -20.0)  # a confident, stable answer

        def forward(self, *args, **kwargs):
            outputs = super().forward(*args, **kwargs)  # the real decoder runs: its cost is real
            points, labels = kwargs["input_points"][0], kwargs.get("input_labels")
            height, width = self.instance_map.shape
            masks, scores = [], []
            for k in range(points.shape[0]):
                chosen = 0 if labels is None else int(torch.nonzero(labels[0, k] == 1)[0, 0])
                x, y = (float(v) / self.scale for v in points[k, chosen])
                region = int(self.instance_map[min(int(y), height - 1), min(int(x), width - 1)])
                masks.append(self.region_logits[region][None].expand(3, -1, -1))
                scores.append(torch.full((3,), 0.95))
            self.prompts += points.shape[0]
            outputs.pred_masks = torch.stack(masks)[None].to(outputs.pred_masks.dtype)
            outputs.iou_scores = torch.stack(scores)[None].to(outputs.iou_scores.dtype)
            return outputs

    torch.manual_seed(seed)
    if config is None:  # tiny, at 256 px: low-resolution masks of 64 x 64, fine enough for 0.5 % objects
        config = tiny_segmenter("sam", sam_size=(256, 16)).config
    model = SceneOracle(config).eval()
    model.prompts = 0
    return model


# ---------------------------------------------------------------------------------- the official code's model


class OfficialRveRNet(torch.nn.Module):
    """`RveRNet(backbone1, backbone2, input_size, num_classes)` as the official `RveRNets/models.py` is described:
    the two backbones' ImageNet logits (`.logits` for transformers' models) concatenated -> `integrated_fc1` (640) ->
    ReLU -> `integrated_fc2` -> `LogSoftmax`."""

    def __init__(self, roi_module, extra_roi_module, num_classes: int):
        super().__init__()
        self.roi_module, self.extra_roi_module = roi_module, extra_roi_module
        self.integrated_fc1 = torch.nn.Linear(2000, 640)
        self.integrated_fc2 = torch.nn.Linear(640, num_classes)
        self.softmax = torch.nn.LogSoftmax(1)

    def forward(self, x1, x2):
        outputs = [module(x) for module, x in ((self.roi_module, x1), (self.extra_roi_module, x2))]
        outputs = [out if isinstance(out, torch.Tensor) else out.logits for out in outputs]
        return self.softmax(self.integrated_fc2(torch.relu(self.integrated_fc1(torch.cat(outputs, dim=1)))))


_VIT_B = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}


def official_backbone(name: str, seed: int):
    """The official code's backbones at their ImageNet shapes, random weights (every weight non-zero, batch-norm
    statistics random: an all-zero head or an identity batch norm would hide a wrong mapping)."""
    import torchvision
    from transformers import DeiTConfig, DeiTForImageClassification, ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    if name == "mnet":
        model = torchvision.models.mobilenet_v2(weights=None)
    elif name == "vit":
        model = torchvision.models.vit_b_16(weights=None)
    elif name == "deit":  # facebook/deit-base-patch16-224 is a ViT checkpoint
        model = ViTForImageClassification(ViTConfig(**_VIT_B, image_size=224, patch_size=16, num_labels=1000))
    else:  # deit-dist: facebook/deit-base-distilled-patch16-224 loaded as DeiTForImageClassification (class head)
        model = DeiTForImageClassification(DeiTConfig(**_VIT_B, image_size=224, patch_size=16, num_labels=1000))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.abs().sum():
                parameter.normal_(0, 0.02, generator=generator)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval()


def save_official_checkpoint(path, roi: str, context: str, num_classes: int = 5, legacy_names: bool = False):
    """The official model saved as its training script saves it: `torch.save` of the `nn.DataParallel` wrapper's
    state dict (keys `module.*`). `legacy_names`: transformers' backbones under the names transformers 4 gave their
    weights (the official code's era), as their checkpoints on the Hub still name them."""
    from pathlib import Path

    from safetensors.torch import load_file
    from transformers import DeiTForImageClassification, ViTForImageClassification

    path = Path(path)
    model = OfficialRveRNet(official_backbone(roi, 0), official_backbone(context, 1), num_classes).eval()
    state = torch.nn.DataParallel(model).state_dict()
    if legacy_names:
        for prefix, backbone in (
            ("module.roi_module.", model.roi_module),
            ("module.extra_roi_module.", model.extra_roi_module),
        ):
            if isinstance(backbone, (ViTForImageClassification, DeiTForImageClassification)):
                folder = path.with_suffix(f".{prefix.split('.')[1]}")
                backbone.save_pretrained(folder)  # transformers 5 writes the legacy (4.x) names
                state = {k: v for k, v in state.items() if not k.startswith(prefix)}
                state.update({prefix + k: v for k, v in load_file(folder / "model.safetensors").items()})
    torch.save(state, path)
    return model


__all__ = [
    "IMAGE_SIZE",
    "OfficialRveRNet",
    "SEGMENTER_FAMILIES",
    "TOWER_FAMILIES",
    "folder_training_args",
    "free_port",
    "machine_facts",
    "median_seconds",
    "oracle_scene",
    "official_backbone",
    "python_command",
    "save_official_checkpoint",
    "scene_oracle",
    "tiny_sam",
    "tiny_sam3",
    "tiny_segmenter",
    "tiny_tower_config",
    "wait_for_server",
]
