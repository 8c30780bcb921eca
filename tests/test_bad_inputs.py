"""Bad inputs, by class of failure (issue 15): each case must end in a clear early error that names the input, or in
what the documentation says, never in a silent coercion. Work-lost cases (output folders, locks, half checkpoints)
are in test_run_folder.py."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import cli_error
from rvernet_hf import RveRNetImageProcessor
from rvernet_hf.cli import main as cli_main
from rvernet_hf.image_processing_rvernet import load_image


MASK = np.zeros((20, 30), dtype=bool)
MASK[5:15, 5:20] = True


# ---------------------------------------------------------------- silently wrong -> refused, named


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((20, 30, 3), np.nan, dtype=np.float32), r"image 0 has NaN or infinite values"),
        (np.full((20, 30, 3), np.inf, dtype=np.float64), r"image 0 has NaN or infinite values"),
        (
            np.full((20, 30, 3), 200.0, dtype=np.float32),
            r"values in \[200, 200\], but a float array .* is read as 0-1",
        ),
        (np.full((20, 30, 3), -0.5, dtype=np.float32), r"read as 0-1"),
        (np.full((20, 30, 3), 300, dtype=np.int32), r"an integer array \(int32\) is read as 0-255"),
        (np.full((20, 30, 3), -1, dtype=np.int64), r"read as 0-255"),
    ],
)
def test_array_values_are_read_by_dtype_never_guessed(array, message):
    with pytest.raises(ValueError, match=message):
        RveRNetImageProcessor(size={"height": 16, "width": 16})(array, roi_masks=MASK)


def test_a_float_image_all_below_one_is_not_rescaled_by_guess():
    """A 0-255 float photo whose values happen to be <= 1 (a very dark one) used to be read as 0-1 by guess; the
    rule is the dtype's: floats are 0-1, so this is read as bright 0-1 values, as documented, and a 0-255 float
    photo with larger values is refused (above)."""
    dark = np.full((20, 30, 3), 0.5, dtype=np.float32)
    assert load_image(dark)[0, 0, 0] == 128
    assert load_image(np.full((20, 30, 3), 128, dtype=np.uint8))[0, 0, 0] == 128
    assert load_image(np.full((20, 30, 3), 32896, dtype=np.uint16))[0, 0, 0] == 128


def test_pil_float_and_32_bit_modes_are_read_by_mode():
    with pytest.raises(ValueError, match=r"PIL mode 'F' is read as 0-1"):
        load_image(Image.fromarray(np.full((4, 4), 200.0, dtype=np.float32), mode="F"))
    grey = load_image(Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32), mode="F"))
    assert grey[0, 0, 0] == 128


@pytest.mark.parametrize("size", [(1, 1)])
def test_an_image_too_small_for_roi_and_context_is_refused_whatever_the_roi_source(size):
    tiny = np.zeros((*size, 3), dtype=np.uint8)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, auto_roi="center")
    for call in ({}, {"input_points": [0, 0]}, {"roi_masks": np.ones(size, dtype=bool)}):
        with pytest.raises(ValueError, match=r"too small for an ROI and a context|covers the whole image"):
            processor(tiny, **call)


def test_an_roi_that_covers_the_whole_image_is_refused_from_any_source(monkeypatch):
    """The same rule for a given mask and a segmenter's mask (it used to refuse only the first)."""
    from conftest import tiny_segmenter
    from rvernet_hf.segmenters_rvernet import Segmenter

    photo = np.zeros((20, 30, 3), dtype=np.uint8)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=tiny_segmenter("sam"))
    with pytest.raises(ValueError, match="covers the whole image"):
        processor(photo, roi_masks=np.ones((20, 30), dtype=bool))
    monkeypatch.setattr(Segmenter, "decode", lambda *a, **k: (torch.full((1, 3, 16, 16), 5.0), torch.ones(1, 3)))
    with pytest.raises(ValueError, match=r"the ROI 0 of image 0 \(30x20\) covers the whole image"):
        processor(photo, input_boxes=[0, 0, 30, 20])


# ---------------------------------------------------------------- the command line: one clear line, the file named


@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "plate.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_cli_prints_one_clear_line_for_a_user_error_and_the_traceback_with_debug(saved_model_dir, photo_file, capsys):
    code = cli_main(["predict", str(photo_file), "--model", str(saved_model_dir), "--box", "10,5,300,40"])
    error = capsys.readouterr().err
    messages = [line for line in error.splitlines() if line.startswith("rvernet-hf: error:")]
    assert code == 1 and len(messages) == 1 and "Traceback" not in error
    assert f"rvernet-hf: error: {photo_file}: input box (10, 5, 300, 40)" in error  # the file, not "image 0"
    with pytest.raises(ValueError, match="input box"):
        cli_main(["predict", str(photo_file), "--model", str(saved_model_dir), "--box", "10,5,300,40", "--debug"])


def test_cli_accepts_negative_numbers_in_box_and_point(saved_model_dir, photo_file, capsys):
    """`--box -10,5,30,40` used to be taken for an option; now the value reaches the processor, which says why a
    negative coordinate is outside the image."""
    assert cli_main(["predict", str(photo_file), "--model", str(saved_model_dir), "--box", "-10,5,30,40"]) == 1
    assert "input box (-10, 5, 30, 40)" in capsys.readouterr().err
    assert cli_main(["predict", str(photo_file), "--model", str(saved_model_dir), "--point", "-3,4"]) == 1
    assert "input point (-3, 4)" in capsys.readouterr().err


def test_cli_one_mask_per_image(saved_model_dir, photo_file, tmp_path, capsys):
    import json

    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "m1.png")
    Image.fromarray(np.roll(mask, 10, axis=1)).save(tmp_path / "m2.png")
    error = cli_error(
        capsys,
        [
            "predict",
            str(photo_file),
            str(photo_file),
            "--model",
            str(saved_model_dir),
            "--mask",
            str(tmp_path / "m1.png"),
        ],
    )
    assert re.search(r"one --mask per image.*2 images, 1 masks", error)
    assert (
        cli_main(
            [
                "predict",
                str(photo_file),
                str(photo_file),
                "--model",
                str(saved_model_dir),
                "--mask",
                str(tmp_path / "m1.png"),
                "--mask",
                str(tmp_path / "m2.png"),
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert [entry["roi_pixels"] for entry in printed] == [400, 400] and printed[0]["prompt"] == "mask"


def test_cli_predict_with_a_single_classifier_reads_the_whole_photo_and_says_so(
    tiny_teacher_dir, photo_file, tmp_path, capsys
):
    """Issue 24.3: a plain image classifier (a teacher folder) used to end in a 50-line traceback
    (`unexpected keyword argument 'roi_masks'`)."""
    import json

    assert cli_main(["predict", str(photo_file), "--model", str(tiny_teacher_dir), "--top_k", "2"]) == 0
    out = capsys.readouterr().out
    assert "is a single image classifier (model_type 'resnet'), not an RveRNet: each whole photo is classified" in out
    assert cli_main(["predict", str(photo_file), "--model", str(tiny_teacher_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["prompt"] == "whole photo (single classifier)" and printed[0]["labels"][0]["label"]
    error = cli_error(capsys, ["predict", str(photo_file), "--model", str(tiny_teacher_dir), "--box", "1,1,20,20"])
    assert "takes no --mask, --box, --point, --all_objects or --text" in error
    roi_only = tmp_path / "roi_only"
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_teacher_dir)
    config.rvernet_single_view = "roi"
    for item in tiny_teacher_dir.iterdir():
        roi_only.mkdir(exist_ok=True)
        (roi_only / item.name).write_bytes(item.read_bytes())
    config.save_pretrained(roi_only)
    assert "trained on the roi cut-out" in cli_error(capsys, ["predict", str(photo_file), "--model", str(roi_only)])


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    from transformers import AutoModelForImageClassification  # noqa: F401  (registers the Auto classes)

    from conftest import tiny_tower_config
    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification

    folder = tmp_path_factory.mktemp("bad_inputs_model")
    config = RveRNetConfig(
        roi_config=tiny_tower_config("deit"),
        context_config=tiny_tower_config("resnet"),
        id2label={0: "a", 1: "b"},
        fusion_hidden_size=8,
    )
    RveRNetForImageClassification(config).save_pretrained(folder)
    RveRNetImageProcessor(
        size={"height": 30, "width": 30}, sam_model_name_or_path="/no/segmenter/here"
    ).save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- what leaves the machine


def test_an_upload_never_names_a_local_segmenter_path(saved_model_dir, tmp_path, caplog):
    import json
    import logging
    import shutil

    from huggingface_hub import ModelCard
    from transformers.utils import logging as hf_logging

    from rvernet_hf.hub import push_folder, render_model_card

    folder = tmp_path / "model"
    shutil.copytree(saved_model_dir, folder)
    (tmp_path / "sam-local").mkdir()
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    settings["sam_model_name_or_path"] = str(tmp_path / "sam-local")  # a folder on the trainer's machine
    (folder / "preprocessor_config.json").write_text(json.dumps(settings))
    ModelCard(str(render_model_card("m", repo_id="me/m"))).save(folder / "README.md")
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            push_folder(folder, "me/m", dry_run_dir=tmp_path / "dry")
    finally:
        hf_logging.disable_propagation()
    uploaded = json.loads((tmp_path / "dry" / "preprocessor_config.json").read_text())
    assert uploaded["sam_model_name_or_path"] == "facebook/sam-vit-base" and "a path on this machine" in caplog.text
    assert json.loads((folder / "preprocessor_config.json").read_text())["sam_model_name_or_path"] == str(
        tmp_path / "sam-local"
    )  # the local folder keeps working here
    push_folder(folder, "me/m", dry_run_dir=tmp_path / "dry2", sam_model_id="facebook/sam2.1-hiera-tiny")
    assert json.loads((tmp_path / "dry2" / "preprocessor_config.json").read_text())["sam_model_name_or_path"] == (
        "facebook/sam2.1-hiera-tiny"
    )


# ---------------------------------------------------------------- files and arguments that are not what they claim


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda config: {**config, "model_type": "vit"}, "config.json has model_type 'vit', not 'rvernet'"),
        (lambda config: {k: v for k, v in config.items() if k != "roi_config"}, "config.json has no roi_config"),
    ],
)
def test_a_config_that_is_not_an_rvernet_is_refused_naming_the_folder(saved_model_dir, tmp_path, edit, message):
    """Before: a random ViT (another model_type) or DeiT-B towers and a size mismatch (no roi_config)."""
    import json
    import shutil

    from transformers import AutoModelForImageClassification

    from rvernet_hf import RveRNetForImageClassification

    folder = tmp_path / "model"
    shutil.copytree(saved_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(config)))
    with pytest.raises(ValueError, match=f"{folder}: {message}"):
        RveRNetForImageClassification.from_pretrained(folder)
    if "model_type" in message:  # the Auto class reads model_type and builds what it names, as asked
        assert type(AutoModelForImageClassification.from_pretrained(folder)).__name__ == "ViTForImageClassification"


def test_teacher_paths_that_are_not_a_single_classifier_are_refused_naming_the_argument(saved_model_dir, tmp_path):
    from rvernet_hf.distillation import load_teacher

    with pytest.raises(ValueError, match=r"--teacher_model_name_or_path: \./no/teacher does not exist"):
        load_teacher("./no/teacher")
    with pytest.raises(ValueError, match=rf"--teacher_model_name_or_path: {saved_model_dir} is an RveRNet"):
        load_teacher(str(saved_model_dir))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="a folder without a valid config.json"):
        load_teacher(str(tmp_path / "empty"))


def test_one_option_name_across_subcommands_and_the_old_names_still_work_with_a_note(capsys):
    from rvernet_hf.cli import build_parser

    parser = build_parser()
    new = parser.parse_args(
        [
            "masks",
            "--data_dir",
            "d",
            "--output_dir",
            "o",
            "--on_bad_samples",
            "skip",
            "--sam_model_name_or_path",
            "facebook/sam2.1-hiera-tiny",
        ]
    )
    assert (new.on_error, new.sam_model) == ("skip", "facebook/sam2.1-hiera-tiny") and capsys.readouterr().err == ""
    old = parser.parse_args(
        ["masks", "--data_dir", "d", "--output_dir", "o", "--on_error", "skip", "--sam_model", "x"]
    )
    assert (old.on_error, old.sam_model) == ("skip", "x")
    notes = capsys.readouterr().err
    assert "--on_error is deprecated; it is now --on_bad_samples" in notes
    assert "--sam_model is deprecated; it is now --sam_model_name_or_path" in notes
    predict = parser.parse_args(["predict", "a.png", "--model", "m", "--sam_model_name_or_path", "s"])
    assert predict.sam_model == "s"


def test_missing_local_paths_are_named_as_missing_before_any_hub_call(photo_file, tmp_path, capsys, caplog):
    """Issue 24.7: `./typo` used to be reported as a Hub failure (repo id format, or could not connect)."""
    missing = tmp_path / "typo"
    assert cli_main(["predict", str(photo_file), "--model", f"./{missing.name}"]) == 1
    assert "--model './typo' is a local path that does not exist" in capsys.readouterr().err
    assert cli_main(["predict", str(photo_file), "--model", str(missing)]) == 1
    assert f"--model '{missing}' is a local path that does not exist" in capsys.readouterr().err
    arguments = ["train", "--output_dir", str(tmp_path / "out"), "--dataset_name", "./missing/data", "--do_train"]
    assert cli_main(arguments) == 1
    assert "--dataset_name './missing/data' is a local path that does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before the output folder was claimed
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model_name_or_path=str(missing))
    with pytest.raises(FileNotFoundError, match=r"the segmenter \(sam_model_name_or_path\) .*typo' is a local path"):
        processor(np.zeros((20, 20, 3), np.uint8), input_boxes=[1, 1, 10, 10])


def test_hub_ids_are_not_taken_for_local_paths():
    from rvernet_hf.paths_rvernet import looks_like_local_path

    assert not looks_like_local_path("facebook/sam-vit-base") and not looks_like_local_path("efficientnet-lite0")
    assert all(looks_like_local_path(p) for p in ("./m", "../m", "/abs/m", "~/m", "models/deit/tiny"))


def test_cli_prompts_are_checked_against_each_image_before_any_model_is_loaded(
    saved_model_dir, photo_file, tmp_path, capsys, monkeypatch
):
    """Issue 24.10: a box outside the second photo, or a mask of another size, used to be found after the model was
    loaded and the first photo classified."""
    import transformers

    def no_loading(*args, **kwargs):
        raise AssertionError("a model or config was loaded before the inputs were checked")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_loading)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(small)
    arguments = ["predict", str(photo_file), str(small), "--model", str(saved_model_dir)]
    with pytest.raises(AssertionError, match="loaded before"):  # inside both photos: checked, then the model loads
        cli_main([*arguments, "--box", "1,1,25,15"])
    assert cli_main([*arguments, "--box", "1,1,40,15"]) == 1
    err = capsys.readouterr().err
    assert f"{small}: input box (1, 1, 40, 15) of image 1 must satisfy 0 <= x0 < x1 <= 30" in err
    mask = tmp_path / "m.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(mask)
    assert cli_main(["predict", str(small), "--model", str(saved_model_dir), "--mask", str(mask)]) == 1
    assert "the ROI mask of image 0 has size 10x10 (WxH) but the image is 30x20" in capsys.readouterr().err


def test_a_path_that_reads_both_ways_names_both_readings(tmp_path, monkeypatch):
    """Issue 35.13: `towers/nope` while a folder `towers/` is here was reported as a Hub failure."""
    import huggingface_hub
    from huggingface_hub import constants

    from rvernet_hf.paths_rvernet import check_local_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "towers" / "deit").mkdir(parents=True)
    check_local_path("towers/deit", "--model")  # here: fine
    check_local_path("org/name", "--model")  # no folder `org/` here: a Hub id, left to the Hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    message = r"--model 'towers/nope' is neither here nor on the Hub: as a local path, .*towers/nope does not exist"
    with pytest.raises(FileNotFoundError, match=message + r".*as a Hub id, it cannot be reached \(HF_HUB_OFFLINE"):
        check_local_path("towers/nope", "--model")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "repo_exists", lambda repo_id: repo_id == "towers/on-the-hub")
    check_local_path("towers/on-the-hub", "--model")  # the Hub holds it: a Hub id after all
    with pytest.raises(FileNotFoundError, match="as a Hub id, no such repository"):
        check_local_path("towers/nope", "--model")
