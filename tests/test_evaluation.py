"""Evaluation helpers: the paper's robustness probes and evaluating a saved model on an image folder."""

import numpy as np
import pytest

from conftest import data_args
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
    arguments = ["evaluate", str(tmp_path / "m"), *folder, "--ambiguous_labels", "ketchup,chili_paste"]
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
