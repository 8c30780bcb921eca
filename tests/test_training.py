"""The training script end to end (teacher fine-tuning, then RveRNet with distillation, card, dry-run push), and its
input checks, which must fire before any training step."""

import json

import pytest
from huggingface_hub import ModelCard

from conftest import data_args, rvernet_args
from rvernet_hf.training import main


def common(output_dir):
    return [
        "--output_dir",
        str(output_dir),
        "--report_to",
        "none",
        "--use_cpu",
        "--per_device_train_batch_size",
        "8",
        "--logging_steps",
        "2",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
    ]


@pytest.mark.slow
def test_teacher_then_distilled_rvernet_then_card_and_dry_run(tmp_path, synthetic_data, tower_dir):
    teacher_dir = tmp_path / "teacher"
    teacher = main(
        [
            "--model_type",
            "single",
            "--model_name_or_path",
            "efficientnet-lite0-imagenet",
            "--image_size",
            "32",
            *data_args(synthetic_data),
            *common(teacher_dir),
            "--do_train",
            "--do_eval",
            "--max_steps",
            "4",
            "--learning_rate",
            "1e-3",
        ]
    )
    assert "eval_accuracy" in teacher
    config = json.loads((teacher_dir / "config.json").read_text())
    assert config["label_names"] == ["bread", "broccoli", "chili_paste", "fried_egg", "ketchup"] and config[
        "pretrained_cfg"
    ]["mean"] == [0.5, 0.5, 0.5]

    arguments = {
        **{
            a[2:]: b
            for a, b in zip(
                rvernet_args(synthetic_data, tower_dir)[::2], rvernet_args(synthetic_data, tower_dir)[1::2]
            )
            if a != "--from_scratch"
        },
        "from_scratch": True,
        "output_dir": str(tmp_path / "rvernet"),
        "report_to": "none",
        "use_cpu": True,
        "per_device_train_batch_size": 8,
        "max_steps": 6,
        "do_train": True,
        "do_eval": True,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "logging_steps": 1,
        "save_strategy": "no",
        "distillation_type": "hard",
        "teacher_model_name_or_path": str(teacher_dir),
        "cache_teacher_logits": True,
        "ambiguous_labels": "ketchup,chili_paste",
        "push_to_hub": True,
        "hub_model_id": "me/rvernet-tiny",
        "push_dry_run_dir": str(tmp_path / "upload"),
    }
    arguments["fusion_hidden_size"] = 16
    (tmp_path / "args.json").write_text(json.dumps(arguments))
    results = main([str(tmp_path / "args.json")])  # one JSON file holds every argument
    out = tmp_path / "rvernet"
    for name in (
        "model.safetensors",
        "config.json",
        "preprocessor_config.json",
        "modeling_rvernet.py",
        "README.md",
        "confusion_matrix.png",
        "training_curves.png",
        "per_class_report.json",
        "eval_results.json",
    ):
        assert (out / name).exists(), name
    card = ModelCard.load(out / "README.md")
    reported = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert reported["accuracy"] == round(results["eval_accuracy"], 4)
    assert "ambiguous_f1" in reported and "hard from" in card.text
    state = json.loads((out / "trainer_state.json").read_text())
    assert any("distillation_loss" in entry for entry in state["log_history"])
    uploaded = {p.name for p in (tmp_path / "upload").iterdir()}
    assert {"model.safetensors", "config.json", "README.md", "modeling_rvernet.py", "confusion_matrix.png"} <= uploaded
    assert not (tmp_path / "upload" / "training_args.bin").exists()
    assert (tmp_path / "upload" / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_imagenet_teacher_is_refused_before_training(tmp_path, synthetic_data, tower_dir):
    with pytest.raises(ValueError, match="has 1000 labels but the student has 5"):
        main(
            [
                *rvernet_args(synthetic_data, tower_dir),
                *common(tmp_path / "out"),
                "--do_train",
                "--distillation_type",
                "soft",
                "--teacher_model_name_or_path",
                "efficientnet-lite0-imagenet",
            ]
        )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("checkpoint-*"))


def test_dataset_without_the_named_columns_is_refused(tmp_path, synthetic_data, tower_dir):
    from rvernet_hf.data import load_image_folder_dataset

    dataset = load_image_folder_dataset(synthetic_data / "train").rename_column("image", "img")
    dataset.save_to_disk(tmp_path / "saved")
    with pytest.raises(ValueError, match="no image column 'image'.*--image_column"):
        main(
            [
                "--dataset_name",
                str(tmp_path / "saved"),
                "--roi_model_name_or_path",
                str(tower_dir),
                "--context_model_name_or_path",
                str(tower_dir),
                "--from_scratch",
                *common(tmp_path / "o"),
            ]
        )


def test_labels_not_in_the_checkpoint_label2id_are_refused(tmp_path, synthetic_data, tiny_config):
    from rvernet_hf import RveRNetForImageClassification, RveRNetImageProcessor

    RveRNetForImageClassification(tiny_config).save_pretrained(
        tmp_path / "ckpt"
    )  # labels: ketchup, chili paste, fries
    RveRNetImageProcessor(size={"height": 30, "width": 30}).save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match=r"labels not in .*label2id: \['bread', 'broccoli'"):
        main(["--model_name_or_path", str(tmp_path / "ckpt"), *data_args(synthetic_data), *common(tmp_path / "o")])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ambiguous_labels", "ketchup,mustard"], r"unknown labels \['mustard'\]"),
        (["--distillation_type", "soft", "--teacher_model_name_or_path", "t", "--distillation_alpha", "2"], "alpha"),
        (["--distillation_type", "distill"], "distillation_type"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, synthetic_data, tower_dir, extra, message, capsys):
    import re

    with pytest.raises((ValueError, SystemExit)) as raised:
        main([*rvernet_args(synthetic_data, tower_dir), *common(tmp_path / "o"), *extra])
    said = str(raised.value) if raised.type is ValueError else capsys.readouterr().err  # argparse prints, exits 2
    assert re.search(message, said), said


def test_a_pretrained_cnn_roi_tower_with_a_random_deit_context_tower(tmp_path, tower_dir):
    """Mixed towers: the pretrained one keeps its weights (and timm normalisation), the other starts random."""
    import torch
    from safetensors.torch import load_file

    from rvernet_hf.teachers import lite0_for_image_classification
    from rvernet_hf.training import ModelArguments, build_model

    lite0_for_image_classification().save_pretrained(tmp_path / "lite0")
    args = ModelArguments(
        roi_model_name_or_path=str(tmp_path / "lite0"),
        context_model_name_or_path=str(tower_dir),
        context_from_scratch=True,
        fusion_hidden_size=16,
    )
    model, processor, _ = build_model(args, {0: "ketchup", 1: "chili_paste"})
    saved = load_file(tmp_path / "lite0" / "model.safetensors")
    key = next(k for k in saved if k.endswith("conv_stem.weight"))
    assert torch.equal(model.roi_model.state_dict()[key], saved[key])
    assert model.config.context_config.num_labels == 2 and model.config.roi_config.num_labels == 1000
    assert processor.roi_image_mean == [0.5, 0.5, 0.5] and processor.context_image_mean != [0.5, 0.5, 0.5]


def test_labels_outside_the_label_set_are_refused_at_load_time(tmp_path):
    """The model's forward no longer range-checks labels on an accelerator (it would sync every step): the training
    data is checked once, when it is loaded, naming the split and the samples."""
    import datasets
    import numpy as np

    from rvernet_hf.training import DataArguments, load_data

    image = np.zeros((8, 8, 3), dtype=np.uint8)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    train = datasets.Dataset.from_dict({"image": [image] * 4, "label": [0, 1, 0, 1]}, features=features)
    validation = datasets.Dataset.from_dict({"image": [image] * 3, "label": [0, -1, 1]}, features=features)
    datasets.DatasetDict(train=train, validation=validation).save_to_disk(tmp_path / "data")
    with pytest.raises(
        ValueError, match=r"validation split has 1 label\(s\) outside \[0, 2\): values \[-1\] at samples \[1\]"
    ):
        load_data(DataArguments(dataset_name=str(tmp_path / "data")))


def test_a_bad_label_is_named_before_a_validation_split_is_carved(tmp_path):
    """Issue 24.9: with a -1 in the training split and no validation split, the stratified carve used to fail first
    ("the least populated class has only 1 member") and the check naming the sample never ran."""
    import datasets
    import numpy as np

    from rvernet_hf.training import DataArguments, load_data

    image = np.zeros((8, 8, 3), dtype=np.uint8)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    labels = [0, 1] * 5 + [-1]
    datasets.Dataset.from_dict({"image": [image] * 11, "label": labels}, features=features).save_to_disk(
        tmp_path / "data"
    )
    with pytest.raises(
        ValueError, match=r"train split has 1 label\(s\) outside \[0, 2\): values \[-1\] at samples \[10\]"
    ):
        load_data(DataArguments(dataset_name=str(tmp_path / "data")))


def _save_string_labelled(folder, train_labels, validation_labels):
    import datasets
    import numpy as np

    image = np.zeros((8, 8, 3), dtype=np.uint8)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    splits = {
        name: datasets.Dataset.from_dict({"image": [image] * len(labels), "label": labels}, features=features)
        for name, labels in (("train", train_labels), ("validation", validation_labels))
    }
    datasets.DatasetDict(splits).save_to_disk(folder)
    return folder


def test_string_labels_get_one_label_map_from_the_training_split(tmp_path):
    """Encoding each split on its own made "rocket" in validation the id of "coffee" in train (both id 0)."""
    from rvernet_hf.training import DataArguments, load_data

    folder = _save_string_labelled(tmp_path / "data", ["coffee", "rocket", "coffee", "rocket"], ["rocket", "rocket"])
    data, _ = load_data(DataArguments(dataset_name=str(folder)))
    assert data["train"].features["label"].names == data["validation"].features["label"].names == ["coffee", "rocket"]
    assert data["validation"]["label"] == [1, 1] and data["train"]["label"] == [0, 1, 0, 1]


def test_a_validation_label_the_training_split_lacks_is_refused_at_load_time(tmp_path):
    from rvernet_hf.training import DataArguments, load_data

    folder = _save_string_labelled(tmp_path / "data", ["coffee", "rocket"], ["rocket", "quokka"])
    with pytest.raises(ValueError, match=r"the validation split has labels the training split lacks: \['quokka'\]"):
        load_data(DataArguments(dataset_name=str(folder)))


def test_an_empty_class_folder_is_refused_in_training_and_reported_in_validation(tmp_path):
    import numpy as np
    from PIL import Image
    from transformers.testing_utils import CaptureLogger
    from transformers.utils import logging

    from rvernet_hf.training import DataArguments, load_data

    for split in ("train", "validation"):
        for name in ("coffee", "rocket"):
            (tmp_path / split / name).mkdir(parents=True)
            if not (split == "validation" and name == "rocket"):
                Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / split / name / "a.png")
                Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / split / name / "b.png")
    with CaptureLogger(logging.get_logger("rvernet_hf.training")) as captured:
        load_data(DataArguments(train_dir=str(tmp_path / "train"), validation_dir=str(tmp_path / "validation")))
    assert "the validation split has no sample of class(es) ['rocket']" in captured.out
    (tmp_path / "train" / "quokka").mkdir()
    (tmp_path / "validation" / "quokka").mkdir()
    with pytest.raises(ValueError, match=r"training split has no sample of class\(es\) \['quokka'\]"):
        load_data(DataArguments(train_dir=str(tmp_path / "train"), validation_dir=str(tmp_path / "validation")))


def test_bad_samples_of_every_split_are_found_before_the_first_step_and_skip_drops_them(
    tmp_path, synthetic_data, tower_dir, caplog
):
    """Before: with every mask given nothing was checked; a corrupt image crashed at step 20 of 46 ("image 0"), a
    wrong-size mask in validation at the first evaluation, and --on_bad_samples skip had no effect."""
    import shutil

    import numpy as np
    from PIL import Image
    from transformers.testing_utils import CaptureLogger
    from transformers.utils import logging

    data = tmp_path / "data"
    shutil.copytree(synthetic_data, data)
    corrupt = sorted((data / "train" / "ketchup").iterdir())[0]
    corrupt.write_bytes(b"not an image")
    small = sorted((data / "validation_masks" / "bread").iterdir())[0]
    Image.fromarray(np.ones((5, 5), dtype=np.uint8) * 255).save(small)
    arguments = [
        *rvernet_args(data, tower_dir),
        "--do_train",
        "--max_steps",
        "1",
    ]
    with pytest.raises(ValueError, match=rf"the train split: sample \d+ \({corrupt}\): .*not a readable image"):
        main([*arguments, *common(tmp_path / "raise")])
    assert not (tmp_path / "raise" / "model.safetensors").exists()
    corrupt.unlink()  # the validation split's mask is next
    with pytest.raises(ValueError, match=r"the validation split: sample \d+ .*has size 5x5"):
        main([*arguments, *common(tmp_path / "raise2")])
    with CaptureLogger(logging.get_logger("rvernet_hf.training")) as captured:
        results = main([*arguments, *common(tmp_path / "skip"), "--on_bad_samples", "skip", "--do_eval"])
    assert "the validation split: dropped 1 bad sample(s)" in captured.out and small.stem in captured.out
    assert "eval_accuracy" in results


def test_continuing_from_a_saved_rvernet_keeps_its_processor_settings(tmp_path, tiny_config):
    """Before: the training defaults (SAM checkpoint, context mode) silently replaced the saved processor's."""
    from rvernet_hf import RveRNetForImageClassification, RveRNetImageProcessor
    from rvernet_hf.training import ModelArguments, build_model

    RveRNetForImageClassification(tiny_config).save_pretrained(tmp_path)
    RveRNetImageProcessor(
        size={"height": 30, "width": 30}, context_mode="full", sam_model_name_or_path="facebook/sam2.1-hiera-tiny"
    ).save_pretrained(tmp_path)
    id2label = tiny_config.id2label
    _, processor, _ = build_model(ModelArguments(model_name_or_path=str(tmp_path)), id2label)
    assert (processor.context_mode, processor.sam_model_name_or_path) == ("full", "facebook/sam2.1-hiera-tiny")
    assert processor.patch_size == {"roi": tiny_config.roi_config.patch_size, "context": None}  # the DeiT tower's grid
    asked = ModelArguments(model_name_or_path=str(tmp_path), context_mode="complement")
    assert build_model(asked, id2label)[1].context_mode == "complement"


def test_processor_settings_given_to_from_pretrained_are_validated(tmp_path):
    from rvernet_hf import RveRNetImageProcessor

    RveRNetImageProcessor(size={"height": 30, "width": 30}).save_pretrained(tmp_path)
    assert RveRNetImageProcessor.from_pretrained(tmp_path, patch_size=6).patch_size == {"roi": 6, "context": 6}
    with pytest.raises(ValueError, match="`context_mode` must be one of"):
        RveRNetImageProcessor.from_pretrained(tmp_path, context_mode="everything")


def test_model_revision_reaches_the_towers_and_their_processors_not_the_config(tmp_path, monkeypatch):
    from transformers import AutoImageProcessor, DeiTForImageClassification, ViTImageProcessor

    from conftest import tiny_tower_config
    from rvernet_hf.training import ModelArguments, build_model

    DeiTForImageClassification(tiny_tower_config("deit")).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 30, "width": 30}).save_pretrained(tmp_path)
    asked = []
    original = AutoImageProcessor.from_pretrained
    monkeypatch.setattr(
        AutoImageProcessor,
        "from_pretrained",
        lambda *args, **kwargs: asked.append(kwargs.get("revision")) or original(*args, **kwargs),
    )
    arguments = ModelArguments(
        roi_model_name_or_path=str(tmp_path), context_model_name_or_path=str(tmp_path), model_revision="v1.0"
    )
    model, processor, _ = build_model(arguments, {0: "a", 1: "b"})
    assert asked == ["v1.0", "v1.0"]  # both towers' processors, at the revision asked for
    assert "revision" not in model.config.to_dict()  # before: routed into the RveRNet config, not to the towers


@pytest.mark.parametrize(
    ("source", "layout", "message"),
    [
        (
            {"train_dir": "x"},
            "segmentation",
            "--data_layout segmentation cannot read --train_dir: it is read as imagefolder",
        ),
        ({"paired_dir": "x"}, "hub", "cannot read --paired_dir"),
        ({"dataset_name": "x"}, "imagefolder", "cannot read --dataset_name: it is read as hub or segmentation"),
    ],
)
def test_a_data_layout_that_cannot_read_the_source_is_refused(source, layout, message):
    """Before: only `segmentation` changed anything, and `--data_layout segmentation --train_dir x` crashed on
    `Path(None)`."""
    from rvernet_hf.training import DataArguments, load_data

    with pytest.raises(ValueError, match=message):
        load_data(DataArguments(**source, data_layout=layout))


def test_a_cutout_size_a_vit_family_tower_cannot_read_is_refused_before_training(tmp_path, tower_dir):
    """Before: `--image_size 64` with 32 px DeiT towers built everything and failed at the first step."""
    from rvernet_hf.training import ModelArguments, build_model

    arguments = ModelArguments(
        roi_model_name_or_path=str(tower_dir),
        context_model_name_or_path=str(tower_dir),
        from_scratch=True,
        image_size=64,
    )
    with pytest.raises(ValueError, match=r"the roi tower \(deit\) reads 32 px images but the cut-outs would be 64 px"):
        build_model(arguments, {0: "a", 1: "b"})


def test_train_takes_the_masks_commands_option_name_too():
    """Issue 24 (also seen): `--on_error` was accepted by `masks` but refused by `train`."""
    from rvernet_hf.training.arguments import parse_args

    _, data_args, _, _ = parse_args(["--output_dir", "unused", "--on_error", "skip"])
    assert data_args.on_bad_samples == "skip"


def test_a_tower_that_cannot_be_loaded_is_named(monkeypatch):
    """Issue 24 (also seen): offline, the error for the towers did not name the checkpoint it tried."""
    import transformers

    from rvernet_hf import RveRNetForImageClassification

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", offline)
    with pytest.raises(OSError, match=r"the roi tower 'org/deit' could not be loaded: We couldn't connect"):
        RveRNetForImageClassification.from_towers_pretrained("org/deit", "org/other")


def test_training_with_mask_augmentation_runs_and_bad_settings_are_refused_when_parsed(
    tmp_path, synthetic_data, tower_dir
):
    from conftest import rvernet_args
    from rvernet_hf.training import main
    from rvernet_hf.training.arguments import parse_args

    arguments = [*rvernet_args(synthetic_data, tower_dir), "--output_dir", str(tmp_path / "out")]
    arguments += ["--do_train", "--max_steps", "2", "--report_to", "none", "--use_cpu", "--save_strategy", "no"]
    main([*arguments, "--mask_augmentation", "0.5", "--mask_perturbations", "erode:0.2,box"])
    assert (tmp_path / "out" / "model.safetensors").is_file()
    with pytest.raises(ValueError, match=r"--mask_augmentation must be a probability in \[0, 1\], got 1.5"):
        parse_args(["--output_dir", "unused", "--mask_augmentation", "1.5"])
    with pytest.raises(ValueError, match="mask perturbation 'erode' needs a strength"):
        parse_args(["--output_dir", "unused", "--mask_perturbations", "erode"])


def test_training_with_a_cutout_style_saves_it_with_the_processor(tmp_path, synthetic_data, tower_dir):
    from conftest import rvernet_args
    from rvernet_hf import RveRNetImageProcessor
    from rvernet_hf.training import main

    arguments = [*rvernet_args(synthetic_data, tower_dir), "--output_dir", str(tmp_path / "out"), "--do_train"]
    main(
        [
            *arguments,
            "--max_steps",
            "1",
            "--report_to",
            "none",
            "--use_cpu",
            "--save_strategy",
            "no",
            "--cutout_style",
            "dim",
        ]
    )
    assert RveRNetImageProcessor.from_pretrained(tmp_path / "out").cutout_style == "dim"


def test_mask_augmentation_zero_gives_the_weights_of_a_run_without_the_flag(tmp_path, synthetic_data, tower_dir):
    """Issue 23: `--mask_augmentation 0` (the default) draws nothing: bit-identical weights after 3 steps."""
    import torch
    from safetensors.torch import load_file

    from conftest import train_briefly

    train_briefly(tmp_path / "plain", synthetic_data, tower_dir, "--max_steps", "3")
    train_briefly(tmp_path / "zero", synthetic_data, tower_dir, "--max_steps", "3", "--mask_augmentation", "0")
    train_briefly(tmp_path / "half", synthetic_data, tower_dir, "--max_steps", "3", "--mask_augmentation", "0.5")
    plain, zero, half = (load_file(tmp_path / name / "model.safetensors") for name in ("plain", "zero", "half"))
    assert plain.keys() == zero.keys() and all(torch.equal(plain[key], zero[key]) for key in plain)
    assert any(not torch.equal(plain[key], half[key]) for key in plain)  # the check can tell them apart


def test_decoded_cache_changes_nothing_but_the_decodes(tmp_path, synthetic_data, tower_dir, monkeypatch):
    """Issue 25: photos decoded once per run (--decoded_cache_mb, on by default): two epochs with the cache and
    without give bit-identical weights; with it, the second epoch decodes nothing."""
    import torch
    from safetensors.torch import load_file

    import rvernet_hf.data.transforms as transforms
    from conftest import train_briefly

    decodes = []
    original = transforms.load_image
    monkeypatch.setattr(transforms, "load_image", lambda *a, **k: decodes.append(1) or original(*a, **k))
    two_epochs = ("--num_train_epochs", "2", "--per_device_train_batch_size", "10", "--max_steps", "-1")
    train_briefly(tmp_path / "cached", synthetic_data, tower_dir, *two_epochs)
    cached_decodes = len(decodes)
    decodes.clear()
    train_briefly(tmp_path / "plain", synthetic_data, tower_dir, *two_epochs, "--decoded_cache_mb", "0")
    samples = 30  # the benchmark's training split at test size
    assert len(decodes) == 2 * samples and cached_decodes == samples  # each photo decoded once per run
    cached, plain = (load_file(tmp_path / name / "model.safetensors") for name in ("cached", "plain"))
    assert cached.keys() == plain.keys() and all(torch.equal(cached[key], plain[key]) for key in cached)


def test_decoded_cache_keeps_to_its_budget_and_protects_what_it_keeps():
    import numpy as np

    from rvernet_hf.data import DecodedCache

    cache = DecodedCache(budget_mb=(2 * 1000 + 2 * 100) / 2**20)  # room for two 1000-byte photos and their masks
    for key in range(3):
        cache.keep(key, np.zeros((10, 100), np.uint8), np.zeros((10, 10), bool))
    assert sorted(cache) == [0, 1] and cache.used_bytes == 2200
    photo, mask = cache[0]
    with pytest.raises(ValueError, match="read-only"):
        photo[0, 0] = 1
    with pytest.raises(ValueError, match="MiB >= 0"):
        DecodedCache(-1)


def test_the_run_says_how_many_mask_augmentations_could_not_apply(tmp_path, synthetic_data, tower_dir, caplog):
    """Issue 35.3: a draw that cannot apply to one small ROI is skipped; the run counts and says how many were."""
    import json
    import logging

    from conftest import rvernet_args
    from rvernet_hf.training import main

    arguments = [*rvernet_args(synthetic_data, tower_dir), "--output_dir", str(tmp_path / "out"), "--do_train"]
    arguments += ["--max_steps", "2", "--report_to", "none", "--use_cpu", "--save_strategy", "no"]
    arguments += ["--mask_augmentation", "1", "--mask_perturbations", "erode:0.55"]
    arguments += ["--log_level", "warning"]  # the default follows transformers' verbosity, which other tests change
    with caplog.at_level(logging.WARNING):
        main(arguments)
    metrics = json.loads((tmp_path / "out" / "train_results.json").read_text())
    drawn = metrics["mask_augmentation_drawn"]
    assert drawn >= 2 * 8 and drawn % 8 == 0  # every sample fetched drew one (Trainer may fetch a batch ahead)
    assert 0 < metrics["mask_augmentation_skipped"] <= metrics["mask_augmentation_drawn"]
    assert f"{metrics['mask_augmentation_skipped']} of {drawn} perturbations drawn" in caplog.text
