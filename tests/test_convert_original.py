"""Issue 32: a checkpoint of the official RveRNet code loads here. The official model is built in these tests from its
description (our own code: both backbones at their real shapes with random weights, the fusion head, saved from
`nn.DataParallel` as the official training script saves it), converted, and compared: log-probabilities to 1e-4 for
every backbone kind; the official preprocessing reproduced to the grey level; bad files refused by name."""

import json
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from transformers import (
    AutoModelForImageClassification,
)

from conftest import cli_error
from rvernet_hf import RveRNetImageProcessor
from rvernet_hf.cli import main as cli_main
from rvernet_hf.convert_original import OfficialCheckpointError, convert_original_checkpoint, official_processor
from rvernet_hf.testing_utils import save_official_checkpoint as save_official


def assert_same_log_probabilities(official: nn.Module, folder: Path, size: int = 224) -> None:
    converted = AutoModelForImageClassification.from_pretrained(folder).eval()
    generator = torch.Generator().manual_seed(7)
    roi, context = torch.rand(2, 3, size, size, generator=generator), torch.rand(2, 3, size, size, generator=generator)
    with torch.no_grad():
        expected = official(roi, context)
        got = torch.log_softmax(converted(roi_pixel_values=roi, context_pixel_values=context).logits, dim=-1)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------------------------------- parity


def test_mobilenets_convert_exactly_and_the_folder_is_complete(tmp_path):
    official = save_official(tmp_path / "mm.pth", "mnet", "mnet", num_classes=7)
    convert_original_checkpoint(tmp_path / "mm.pth", tmp_path / "out", "mnet", "mnet", num_labels=7)
    assert_same_log_probabilities(official, tmp_path / "out")
    names = {path.name for path in (tmp_path / "out").iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "preprocessor_config.json",
        "README.md",
        "pipeline_rvernet.py",
    } <= names
    card = (tmp_path / "out" / "README.md").read_text()
    assert "github.com/Seonwhee-Genome/RveRNet" in card and "`mnet`" in card
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.slow
@pytest.mark.parametrize(
    "roi, context, legacy_names",
    [("deit-dist", "deit", True), ("deit", "deit-dist", False), ("mnet", "vit", False), ("vit", "mnet", False)],
)
def test_every_backbone_kind_converts_to_the_same_log_probabilities(tmp_path, roi, context, legacy_names):
    """Real shapes (ViT-B/16, DeiT-B, MobileNetV2), the official transformers backbones under both their key names."""
    official = save_official(tmp_path / "x.pth", roi, context, legacy_names=legacy_names)
    convert_original_checkpoint(tmp_path / "x.pth", tmp_path / "out", roi, context, num_labels=5)
    assert_same_log_probabilities(official, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------- refusals


def test_a_wrong_backbone_is_named_before_anything_is_written(tmp_path):
    save_official(tmp_path / "mm.pth", "mnet", "mnet")
    with pytest.raises(
        OfficialCheckpointError, match=r"roi_module: the weight 'features\.0\.0\.weight' is not one of a vit"
    ):
        convert_original_checkpoint(tmp_path / "mm.pth", tmp_path / "out", "vit", "mnet", num_labels=5)
    with pytest.raises(OfficialCheckpointError, match="unknown backbone 'resnet'"):
        convert_original_checkpoint(tmp_path / "mm.pth", tmp_path / "out", "mnet", "resnet", num_labels=5)
    with pytest.raises(OfficialCheckpointError, match=r"classifies 5 classes; 9 were given"):
        convert_original_checkpoint(tmp_path / "mm.pth", tmp_path / "out", "mnet", "mnet", num_labels=9)
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_shape_that_is_not_the_backbones_is_named(tmp_path):
    state = torch.load(save_official(tmp_path / "mm.pth", "mnet", "mnet") and tmp_path / "mm.pth", weights_only=True)
    state["module.extra_roi_module.features.18.0.weight"] = torch.zeros(1000, 320, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    message = r"extra_roi_module \(mnet.*the weight 'mobilenet_v2\.conv_1x1\.convolution\.weight' has shape \(1000, 320, 1, 1\), but the mnet tower's is \(1280, 320, 1, 1\)"
    with pytest.raises(OfficialCheckpointError, match=message):
        convert_original_checkpoint(tmp_path / "bad.pth", tmp_path / "out", "mnet", "mnet", num_labels=5)


def test_a_truncated_file_and_a_pickle_with_code_are_refused_unrun(tmp_path):
    save_official(tmp_path / "mm.pth", "mnet", "mnet")
    data = (tmp_path / "mm.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(OfficialCheckpointError, match="not a readable torch checkpoint"):
        convert_original_checkpoint(tmp_path / "cut.pth", tmp_path / "out", "mnet", "mnet", num_labels=5)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "evil.pth", "wb") as handle:
        pickle.dump({"module.roi_module.features.0.0.weight": Payload()}, handle)
    with pytest.raises(OfficialCheckpointError, match="refused unread"):
        convert_original_checkpoint(tmp_path / "evil.pth", tmp_path / "out", "mnet", "mnet", num_labels=5)
    assert not marker.exists()  # the pickle's code never ran


def test_an_existing_output_folder_is_refused(tmp_path):
    save_official(tmp_path / "mm.pth", "mnet", "mnet")
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="finished work is never overwritten"):
        convert_original_checkpoint(tmp_path / "mm.pth", tmp_path / "out", "mnet", "mnet", num_labels=5)


# ------------------------------------------------------------------------------------------ the official inputs


def official_resize_and_pad(image: Image.Image, target: int) -> np.ndarray:
    """`ResizeAndPad` and `ToTensor` as the official `RveRNets/datasets.py` is described: the longest side to
    `target` with PIL's default resize, the other floored, centred on grey 125 (the left/top pad takes the odd
    pixel), values in [0, 1], channels first."""
    w, h = image.size
    r = target / max(w, h)
    resized = image.resize((math.floor(w * r), math.floor(h * r))) if r != 1 else image
    new_w, new_h = resized.size
    left, top = math.ceil((target - new_w) / 2), math.ceil((target - new_h) / 2)
    canvas = Image.new("RGB", (target, target), (125, 125, 125))
    canvas.paste(resized, (left, top))
    return np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1) / 255


@pytest.mark.parametrize("shape", [(457, 640), (300, 211), (224, 224), (97, 301)])
def test_the_processor_makes_the_official_inputs(shape):
    """Part 3 of the issue: on the official cut-outs (`preprocess_pairs`) and on a photo with its mask (the
    pipeline's path), the official inputs: mean difference within half a grey level, max within 3."""
    from skimage import data

    photo = np.asarray(Image.fromarray(data.astronaut()).resize(shape[::-1]))
    mask = np.zeros(shape, dtype=bool)
    mask[shape[0] // 5 : shape[0] * 3 // 5, shape[1] // 4 : shape[1] * 4 // 5] = True
    roi_cut, context_cut = photo * mask[..., None], photo * ~mask[..., None]
    expected = [official_resize_and_pad(Image.fromarray(cut), 224) for cut in (roi_cut, context_cut)]
    processor = official_processor(224)
    pairs = processor.preprocess_pairs(roi_cut, context_cut)
    prompted = processor(photo, roi_masks=mask)
    for batch in (pairs, prompted):
        for got, want in zip((batch["roi_pixel_values"][0], batch["context_pixel_values"][0]), expected):
            difference = (got.numpy() - want) * 255
            assert np.abs(difference).mean() <= 0.5 and np.abs(difference).max() <= 3, np.abs(difference).max()


def test_the_official_settings_are_saved_and_checked():
    processor = official_processor(224)
    saved = processor.to_dict()
    assert saved["resize_mode"] == "letterbox_official" and saved["resample"] == 3 and saved["cut_before_resize"]
    assert RveRNetImageProcessor.from_dict(saved).to_dict() == saved
    with pytest.raises(ValueError, match="cut_before_resize=True.*cutout_style='fill' and fill_value=0.0"):
        RveRNetImageProcessor(cut_before_resize=True, cutout_style="blur")
    with pytest.raises(ValueError, match="`resample` must be"):
        RveRNetImageProcessor(resample=0)


# ------------------------------------------------------------------------------- the converted folder in use


@pytest.fixture(scope="module")
def converted(tmp_path_factory, request):
    """An official mnet + mnet checkpoint over the built-in benchmark's classes, converted by the command line."""
    from rvernet_hf.synthetic import generate_ambiguous_food

    root = tmp_path_factory.mktemp("official")
    generate_ambiguous_food(root / "data", num_per_class=2, image_size=48, seed=0, splits={"test": 1.0})
    classes = sorted(p.name for p in (root / "data" / "test").iterdir() if p.is_dir())
    (root / "classes.yaml").write_text("".join(f"{name}: {index}\n" for index, name in enumerate(classes)))
    save_official(root / "official.pth", "mnet", "mnet", num_classes=len(classes))
    arguments = ["convert-original", str(root / "official.pth"), str(root / "model")]
    arguments += ["--roi_module", "mnet", "--extra_roi_module", "mnet", "--id2label_file", str(root / "classes.yaml")]
    assert cli_main(arguments) == 0
    return root, classes


def test_the_converted_folder_runs_in_pipeline_predict_evaluate_and_the_app(converted, capsys, tmp_path):
    from transformers import pipeline

    from rvernet_hf.app import RveRNetApp, mask_to_rle

    root, classes = converted
    config = json.loads((root / "model" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(classes))] == classes
    photo = next((root / "data" / "test").glob("*/*.png"))
    mask_file = root / "data" / "test_masks" / photo.parent.name / photo.name
    classifier = pipeline("rvernet-image-classification", model=str(root / "model"))
    result = classifier(str(photo), mask=str(mask_file), top_k=2)
    assert result["prompt"] == "mask" and result["labels"][0]["label"] in classes
    capsys.readouterr()
    assert cli_main(["predict", str(photo), "--model", str(root / "model"), "--mask", str(mask_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["labels"][0] == result["labels"][0]
    data = ["--data_dir", str(root / "data" / "test"), "--masks_dir", str(root / "data" / "test_masks")]
    assert cli_main(["evaluate", "--model", str(root / "model"), *data, "--json", str(tmp_path / "rows.json")]) == 0
    assert json.loads((tmp_path / "rows.json").read_text())[0]["samples"] == 2 * len(classes)
    mask = np.asarray(Image.open(mask_file)) > 0
    app = RveRNetApp(str(root / "model"))
    assert app.classify(photo, {"mask": mask_to_rle(mask)})["rois"][0]["labels"][0] == result["labels"][0]


@pytest.mark.slow
def test_the_converted_folder_exports_to_onnx(converted, tmp_path):
    root, _ = converted
    arguments = ["export", "--model", str(root / "model"), "--output_dir", str(tmp_path / "onnx")]
    assert cli_main(arguments) == 0
    assert (tmp_path / "onnx" / "model.onnx").is_file()


def test_the_command_line_names_bad_arguments(tmp_path, capsys):
    assert "CKPT" in cli_error(
        capsys,
        [
            "convert-original",
            str(tmp_path / "none.pth"),
            str(tmp_path / "o"),
            "--roi_module",
            "mnet",
            "--extra_roi_module",
            "mnet",
            "--num_labels",
            "3",
        ],
    )
    with pytest.raises(SystemExit):
        cli_main(
            [
                "convert-original",
                "a.pth",
                "o",
                "--roi_module",
                "resnet",
                "--extra_roi_module",
                "mnet",
                "--num_labels",
                "3",
            ]
        )
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the official training


def test_frozen_towers_stay_bit_identical_and_only_the_head_learns(converted, tmp_path):
    """`train --freeze_towers` on a converted model (MobileNetV2 towers: batch norm, whose statistics would move in
    training mode): the towers' weights and statistics unchanged to the bit, the fusion head trained, and the
    optimizer holding the head alone."""
    from safetensors.torch import load_file

    from rvernet_hf.synthetic import generate_ambiguous_food
    from rvernet_hf.testing_utils import folder_training_args
    from rvernet_hf.training import main as train

    root, _ = converted
    generate_ambiguous_food(tmp_path / "data", num_per_class=4, image_size=48, seed=1)
    before = AutoModelForImageClassification.from_pretrained(root / "model").state_dict()
    arguments = [*folder_training_args(tmp_path / "data"), "--model_name_or_path", str(root / "model")]
    arguments += ["--freeze_towers", "--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "2"]
    arguments += ["--learning_rate", "0.05", "--per_device_train_batch_size", "4", "--report_to", "none"]
    train([*arguments, "--use_cpu", "--save_strategy", "no", "--disable_tqdm", "true"])
    after = AutoModelForImageClassification.from_pretrained(tmp_path / "out").state_dict()
    towers = [key for key in before if key.startswith("rvernet.")]
    assert any("running_mean" in key for key in towers)
    assert all(torch.equal(before[key], after[key]) for key in towers)
    assert not torch.equal(before["classifier.dense.weight"], after["classifier.dense.weight"])
    assert load_file(tmp_path / "out" / "model.safetensors")  # saved whole, towers included


def test_the_optimizer_of_a_frozen_model_holds_the_head_alone(converted, tmp_path):
    from transformers import TrainingArguments

    from rvernet_hf import RveRNetTrainer

    root, _ = converted
    model = AutoModelForImageClassification.from_pretrained(root / "model")
    model.freeze_towers()
    model.train()
    assert not model.roi_model.training and not model.context_model.training and model.classifier.training
    trainer = RveRNetTrainer(model=model, args=TrainingArguments(str(tmp_path), report_to="none", use_cpu=True))
    optimized = {id(p) for group in trainer.create_optimizer().param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.classifier.parameters()}


def test_the_papers_recipe_fills_what_is_not_given(tmp_path):
    from rvernet_hf.training import parse_args

    arguments = ["--recipe", "paper", "--output_dir", str(tmp_path), "--num_train_epochs", "2"]
    model, data, training, _ = parse_args(arguments)
    assert training.learning_rate == 4e-3 and training.lr_scheduler_type == "cosine" and training.warmup_steps == 0.1
    assert training.per_device_train_batch_size == 50 and training.weight_decay == 0.0
    assert training.num_train_epochs == 2  # given: kept
    assert data.flip_prob == 0.5 and data.crop_scale_min == 1.0 and model.image_size == 224
    (tmp_path / "args.json").write_text(
        json.dumps({"recipe": "paper", "output_dir": str(tmp_path), "learning_rate": 1e-3})
    )
    model, data, training, _ = parse_args([str(tmp_path / "args.json")])
    assert training.learning_rate == 1e-3 and training.num_train_epochs == 30 and model.recipe == "paper"
