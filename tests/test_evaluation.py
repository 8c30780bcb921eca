"""Evaluation helpers: the paper's robustness probes and evaluating a saved model on an image folder."""

import numpy as np
import pytest

from conftest import cli_error, data_args
from rvernet_hf.evaluation import patch_permutation, translocation


def test_patch_permutation_shuffles_whole_patches_with_the_mask():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)
    mask = np.zeros((64, 48), bool)
    mask[5:20, 10:30] = True
    shuffled, shuffled_mask = patch_permutation(image, mask, patch=16, seed=1)
    assert shuffled.shape == image.shape and not np.array_equal(shuffled, image)
    patches = lambda a: sorted(a[r : r + 16, c : c + 16].tobytes() for r in range(0, 64, 16) for c in range(0, 48, 16))  # noqa: E731
    assert patches(shuffled) == patches(image)  # the same patches, moved
    assert shuffled_mask.sum() == mask.sum()
    # The mask moved with its pixels: masked pixels are the same multiset as before.
    assert sorted(shuffled[shuffled_mask].tobytes()) == sorted(image[mask].tobytes())


def test_translocation_shifts_and_fills_grey():
    image = np.full((224, 224, 3), 200, dtype=np.uint8)
    mask = np.zeros((224, 224), bool)
    mask[100:150, 50:100] = True
    shifted, shifted_mask = translocation(image, mask)
    assert (shifted[:85] == 128).all() and (shifted[:, :60] == 128).all()
    assert (shifted[85:, 60:] == 200).all()
    assert shifted_mask[185:235, 110:160].all() and shifted_mask.sum() == mask[: 224 - 85, : 224 - 60].sum()


def test_patch_smaller_than_image_is_refused():
    with pytest.raises(ValueError, match="smaller than one 16-px patch"):
        patch_permutation(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool))


def test_evaluate_a_saved_model_with_probes(tmp_path, synthetic_data, tower_dir):
    from rvernet_hf.evaluation import evaluate_model, load_for_evaluation, load_split
    from rvernet_hf.training import main

    main(
        [
            *data_args(synthetic_data),
            "--roi_model_name_or_path",
            str(tower_dir),
            "--context_model_name_or_path",
            str(tower_dir),
            "--from_scratch",
            "--do_train",
            "--max_steps",
            "1",
            "--output_dir",
            str(tmp_path / "m"),
            "--report_to",
            "none",
            "--use_cpu",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ]
    )
    model, transform = load_for_evaluation(tmp_path / "m")
    split = load_split(synthetic_data, "validation")
    plain = evaluate_model(model, transform, split, ["ketchup", "chili_paste"])
    assert sum(plain["per_class"][name]["support"] for name in plain["per_class"]) == len(split)
    for probe in ("patch_permutation", "translocation"):
        probed = evaluate_model(model, transform, split, ["ketchup", "chili_paste"], probe=probe)
        assert 0 <= probed["ambiguous_f1"] <= 1
    with pytest.raises(ValueError, match="unknown probe"):
        evaluate_model(model, transform, split, probe="rotate")


def test_evaluate_command_one_row_per_mask_perturbation(tmp_path, synthetic_data, tower_dir, capsys):
    """Issue 23: `rvernet-hf evaluate MODEL --data_dir D --masks_dir M --mask_perturbations ...`: accuracy, macro-F1,
    ambiguous F1 and the mean IoU of the perturbed masks (exactly 1.0 for the given ones), JSON written once."""
    import json

    from conftest import train_briefly
    from rvernet_hf.cli import main as cli_main
    from rvernet_hf.evaluation import evaluate_mask_perturbations, evaluate_model, load_for_evaluation, load_split

    train_briefly(tmp_path / "m", synthetic_data, tower_dir)
    folder = [
        "--data_dir",
        str(synthetic_data / "validation"),
        "--masks_dir",
        str(synthetic_data / "validation_masks"),
    ]
    out = tmp_path / "rows.json"
    arguments = ["evaluate", "--model", str(tmp_path / "m"), *folder, "--ambiguous_labels", "ketchup,chili_paste"]
    picture = tmp_path / "iou.png"
    perturbations = ["--mask_perturbations", "none,erode:0.1,box,shift:0.3"]
    assert cli_main([*arguments, *perturbations, "--json", str(out), "--save_plot", str(picture)]) == 0
    assert picture.stat().st_size > 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert [row["perturbation"] for row in rows] == ["none", "erode:0.1", "box", "shift:0.3"]
    assert rows[0]["mean_iou"] == 1.0 and all(0 < row["mean_iou"] < 1 for row in rows[1:])
    assert all(0 <= row["accuracy"] <= 1 and 0 <= row["ambiguous_f1"] <= 1 for row in rows)
    assert "erode:0.1" in printed and f"{rows[3]['accuracy']:9.3f}" in printed
    # the 'none' row is evaluate_model's own figure; the rows do not depend on the batch size
    model, transform = load_for_evaluation(tmp_path / "m")
    split = load_split(synthetic_data, "validation")
    assert rows[0]["accuracy"] == evaluate_model(model, transform, split, ["ketchup", "chili_paste"])["accuracy"]
    again = evaluate_mask_perturbations(model, transform, split, "shift:0.3", ["ketchup", "chili_paste"], batch_size=3)
    assert again[0]["mean_iou"] == pytest.approx(rows[3]["mean_iou"]) and again[0]["accuracy"] == rows[3]["accuracy"]
    # refused before any work: a bad perturbation, an existing --json
    assert cli_main([*arguments, "--mask_perturbations", "melt:0.1"]) == 1
    assert "unknown mask perturbation 'melt'" in capsys.readouterr().err
    assert cli_main([*arguments, "--json", str(out)]) == 1
    assert "exists: finished work is never overwritten" in capsys.readouterr().err


def _segmentation_dataset(folder, root, split="validation"):
    """A save_to_disk segmentation dataset made of the benchmark's photos: each label map holds the photo's own food
    and, as a second class, its largest other object, so every photo gives two samples (`source_index`)."""
    import json

    import datasets
    from PIL import Image

    from rvernet_hf.synthetic import CLASSES

    names = sorted(CLASSES)
    images, maps = [], []
    for class_dir in sorted((root / split).iterdir()):
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.glob("*.png")):
            roi = np.asarray(Image.open(root / f"{split}_masks" / class_dir.name / path.name)) > 0
            objects = np.asarray(Image.open(root / f"{split}_object_masks" / class_dir.name / path.name))
            label_map = np.zeros(roi.shape, np.uint8)
            ids, counts = np.unique(objects[objects > 0], return_counts=True)
            label_map[objects == ids[counts.argmax()]] = (names.index(class_dir.name) + 1) % len(names) + 1
            label_map[roi] = names.index(class_dir.name) + 1
            images.append(Image.open(path).convert("RGB"))
            maps.append(Image.fromarray(label_map))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Image()})
    datasets.DatasetDict(
        test=datasets.Dataset.from_dict({"image": images, "label": maps}, features=features)
    ).save_to_disk(folder)
    (folder / "id2label.json").write_text(
        json.dumps({"0": "background", **{str(i + 1): n for i, n in enumerate(names)}})
    )
    return len(images)


def test_another_objects_mask_on_the_benchmark_and_on_a_segmentation_dataset(
    tmp_path, synthetic_data, tower_dir, capsys
):
    """Issue 23's 'another object's mask': from the benchmark's object maps (load_split reads them) and from a
    segmentation dataset's other samples of the same photo (`evaluate --dataset_name`); refused, before the model
    runs, on data that has neither."""
    import json

    from conftest import train_briefly
    from rvernet_hf.cli import main as cli_main
    from rvernet_hf.data import load_image_folder_dataset
    from rvernet_hf.evaluation import evaluate_mask_perturbations, load_for_evaluation, load_split

    train_briefly(tmp_path / "m", synthetic_data, tower_dir)
    model, transform = load_for_evaluation(tmp_path / "m")
    split = load_split(synthetic_data, "validation")
    assert "object_masks" in split.column_names
    none, other = evaluate_mask_perturbations(model, transform, split, "none,other", seed=1)
    assert none["samples"] == len(split) and none["mean_iou"] == 1.0
    assert 0 < other["samples"] <= len(split) and other["mean_iou"] < 0.5
    bare = load_image_folder_dataset(synthetic_data / "validation", synthetic_data / "validation_masks")
    calls = []
    hook = model.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError, match="'other' needs each photo's other objects"):
        evaluate_mask_perturbations(model, transform, bare, "none,other")
    hook.remove()
    assert calls == []  # refused before the first batch

    photos = _segmentation_dataset(tmp_path / "seg", synthetic_data)
    out = tmp_path / "rows.json"
    command = ["evaluate", str(tmp_path / "m"), "--dataset_name", str(tmp_path / "seg"), "--split", "test"]
    assert cli_main([*command, "--mask_perturbations", "none,other", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [row["samples"] for row in rows] == [2 * photos, 2 * photos]  # two objects a photo, each the other's
    assert rows[1]["mean_iou"] == 0.0  # the other object: disjoint from the ROI
    assert f"[test] ({2 * photos} samples)" in capsys.readouterr().out
    assert cli_main([*command, "--data_dir", str(synthetic_data / "validation")]) == 1
    assert "exactly one of --data_dir" in capsys.readouterr().err


def test_evaluation_matches_labels_by_name(tmp_path, synthetic_data, tower_dir):
    """A test folder with some of the model's classes (its ids are its own sorted folders) is scored under the
    model's ids; a class the model does not know is refused, naming it."""
    import shutil

    from conftest import train_briefly
    from rvernet_hf.data import load_image_folder_dataset
    from rvernet_hf.evaluation import evaluate_model, load_for_evaluation

    train_briefly(tmp_path / "m", synthetic_data, tower_dir)
    model, transform = load_for_evaluation(tmp_path / "m")
    for kind in ("validation", "validation_masks"):
        for name in ("ketchup", "fried_egg"):
            shutil.copytree(synthetic_data / kind / name, tmp_path / kind / name)
    subset = load_image_folder_dataset(tmp_path / "validation", tmp_path / "validation_masks")
    assert subset.features["label"].names == ["fried_egg", "ketchup"]
    scores = evaluate_model(model, transform, subset)
    supports = {name: row["support"] for name, row in scores["per_class"].items() if row["support"]}
    assert supports == {
        "fried_egg": len(list((tmp_path / "validation" / "fried_egg").iterdir())),
        "ketchup": len(list((tmp_path / "validation" / "ketchup").iterdir())),
    }
    shutil.copytree(synthetic_data / "validation" / "bread", tmp_path / "validation" / "sushi")
    shutil.copytree(synthetic_data / "validation_masks" / "bread", tmp_path / "validation_masks" / "sushi")
    unknown = load_image_folder_dataset(tmp_path / "validation", tmp_path / "validation_masks")
    with pytest.raises(ValueError, match=r"label\(s\) \['sushi'\] are not the model's"):
        evaluate_model(model, transform, unknown)


def test_a_perturbation_that_cannot_apply_is_refused_before_the_first_row_naming_the_file(tmp_path, monkeypatch):
    """Issue 35.3: `evaluate` refused such a perturbation after the rows before it were computed, naming "sample 0"
    but not its file."""
    from PIL import Image

    from rvernet_hf import evaluation
    from rvernet_hf.data import load_image_folder_dataset

    for name, height in (("wide", 20), ("thin", 2)):
        (tmp_path / "photos" / "a").mkdir(parents=True, exist_ok=True)
        (tmp_path / "masks" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "photos" / "a" / f"{name}.png")
        mask = np.zeros((40, 40), np.uint8)
        mask[10 : 10 + height, 5:35] = 255
        Image.fromarray(mask).save(tmp_path / "masks" / "a" / f"{name}.png")
    dataset = load_image_folder_dataset(tmp_path / "photos", tmp_path / "masks")
    monkeypatch.setattr(evaluation, "evaluate_model", lambda *a, **k: pytest.fail("a row was computed"))

    class Config:
        id2label = {0: "a"}

    class Model:
        config = Config()

    with pytest.raises(ValueError, match=r"erode:0\.5 cannot apply to sample \d \(.*thin\.png\): .*empties the ROI"):
        evaluation.evaluate_mask_perturbations(Model(), None, dataset, "none,box,erode:0.5")


def test_a_full_image_classifier_is_evaluated_without_masks(tiny_teacher_dir, tmp_path, capsys):
    """Issue 35.8: `evaluate` on a plain classifier and a folder without masks (its help says such models are
    accepted) ended in "the ROI mask of image 0 must be 2-D (H, W), got shape ()"."""
    import json

    from rvernet_hf.cli import main as cli_main
    from rvernet_hf.synthetic import generate_ambiguous_food

    generate_ambiguous_food(tmp_path / "data", num_per_class=2, image_size=32, seed=0, splits={"test": 1.0})
    arguments = ["evaluate", "--model", str(tiny_teacher_dir), "--data_dir", str(tmp_path / "data" / "test")]
    assert cli_main([*arguments, "--json", str(tmp_path / "rows.json")]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows[0]["perturbation"] == "none" and rows[0]["samples"] == 10 and rows[0]["mean_iou"] == 1.0
    error = cli_error(capsys, [*arguments, "--mask_perturbations", "none,box"])  # a perturbation needs the masks
    assert "has no ROI mask" in error and "--masks_dir" in error
