"""Shared fixtures: tiny, deliberately odd tower configs (hidden 32, intermediate 37, 30 px images) so that shape bugs
fail loudly, and an offline environment. The tiny models themselves live in `rvernet_hf.testing_utils`."""

import os

import pytest


# Tests never touch the network: every Hub path is exercised on local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from rvernet_hf.testing_utils import (  # noqa: E402, F401  (after the offline switches; re-exported for the tests)
    IMAGE_SIZE,
    SEGMENTER_FAMILIES,
    TOWER_FAMILIES,
    tiny_sam,
    tiny_sam3,
    tiny_segmenter,
    tiny_tower_config,
)


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


def data_args(root):
    """The training script's arguments for the built-in benchmark's folders under `root` (images and masks)."""
    from rvernet_hf.testing_utils import folder_training_args

    return folder_training_args(root)


def rvernet_args(root, tower_dir):
    """`data_args` plus `tower_args`."""
    return [*data_args(root), *tower_args(tower_dir)]


def train_briefly(output_dir, root, tower_dir=None, *extra: str) -> None:
    """One training step on the built-in benchmark's folders under `root` into `output_dir`: an RveRNet of two tiny
    random DeiT towers (`tower_dir`), or whatever `extra` asks for (e.g. `--model_type single ...`)."""
    from rvernet_hf.training import main

    towers = tower_args(tower_dir) if tower_dir is not None else []
    common = ["--do_train", "--max_steps", "1", "--report_to", "none", "--use_cpu", "--save_strategy", "no"]
    main([*data_args(root), *towers, "--output_dir", str(output_dir), *common, "--disable_tqdm", "true", *extra])


def tower_args(tower_dir):
    """Two random-init towers from the tiny DeiT config folder and a small fusion head."""
    return [
        "--roi_model_name_or_path",
        str(tower_dir),
        "--context_model_name_or_path",
        str(tower_dir),
        "--from_scratch",
        "--fusion_hidden_size",
        "16",
    ]


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """The built-in ambiguous-food benchmark at test size: 5 classes x 8 images of 32 px, with masks."""
    from rvernet_hf.synthetic import generate_ambiguous_food

    root = tmp_path_factory.mktemp("ambiguous_food")
    generate_ambiguous_food(
        root, num_per_class=8, image_size=SYNTH_SIZE, seed=0, splits={"train": 0.75, "validation": 0.25}
    )
    return root


@pytest.fixture(scope="session")
def tower_dir(tmp_path_factory):
    """A saved tiny DeiT config (32 px), used as a tower 'checkpoint' with `--from_scratch`."""
    from transformers import DeiTConfig

    folder = tmp_path_factory.mktemp("tiny_deit")
    DeiTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=SYNTH_SIZE,
        patch_size=8,
    ).save_pretrained(folder)
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
    ViTImageProcessor(size={"height": 24, "width": 24}, image_mean=[0.5] * 3, image_std=[0.25] * 3).save_pretrained(
        folder
    )
    return folder


def cli_error(capsys, arguments: list[str]) -> str:
    """Run `rvernet-hf ARGUMENTS`, which must refuse them as a user error (exit 1, one line); its message."""
    from rvernet_hf.cli import main

    capsys.readouterr()
    assert main(arguments) == 1
    error = capsys.readouterr().err
    assert "rvernet-hf: error: " in error and "Traceback" not in error
    return error
