"""The built-in ambiguous-food benchmark generator."""

import json

import numpy as np
import pytest
from PIL import Image

from rvernet_hf.data import load_image_folder_dataset
from rvernet_hf.synthetic import AMBIGUOUS_CLASSES, CLASSES, CONTEXT_OF, generate_ambiguous_food, render_scene


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    generate_ambiguous_food(tmp_path / "a", num_per_class=2, image_size=32, seed=3)
    generate_ambiguous_food(tmp_path / "b", num_per_class=2, image_size=32, seed=3)
    generate_ambiguous_food(tmp_path / "c", num_per_class=2, image_size=32, seed=4)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 2 * len(CLASSES) * 3  # images + masks + other objects' instance maps
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert any((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files)


def test_loads_as_an_image_folder_with_exact_masks(synthetic_data):
    info = json.loads((synthetic_data / "dataset_info.json").read_text())
    assert info["ambiguous_labels"] == list(AMBIGUOUS_CLASSES)
    dataset = load_image_folder_dataset(synthetic_data / "train", synthetic_data / "train_masks", require_masks=True)
    assert sorted(dataset.features["label"].names) == sorted(CLASSES)
    assert len(dataset) == info["num_images"]["train"] == 30
    for row in dataset.select(range(0, 30, 7)):
        mask = np.asarray(row["roi_mask"]).astype(bool)
        x0, y0, x1, y1 = row["roi_box"]
        ys, xs = np.nonzero(mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
        assert 0 < mask.mean() < 0.6


def test_ambiguous_pair_looks_alike_and_context_decides():
    """The ROI pixels of ketchup and chili paste come from one distribution; their surroundings differ."""
    rng = np.random.default_rng(0)
    colours, contexts = {}, {}
    for label in AMBIGUOUS_CLASSES:
        scenes = [render_scene(label, 64, rng) for _ in range(200)]
        colours[label] = np.array([image[mask].mean(0) for image, mask, _ in scenes])
        contexts[label] = np.mean([spec.context == CONTEXT_OF[label] for _, _, spec in scenes])
    difference = np.abs(colours["ketchup"].mean(0) - colours["chili_paste"].mean(0))
    spread = colours["ketchup"].std(0)
    assert (difference < 0.25 * spread).all()  # no colour cue in the ROI
    for label in AMBIGUOUS_CLASSES:  # context is informative (0.85) but not a label leak
        assert 0.78 < contexts[label] < 0.92


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 8}, "image_size"),
        ({"context_reliability": 0.2}, "context_reliability"),
        ({"splits": {"train": 0.5}}, "sum to 1"),
        ({"distractor_prob": 1.5}, "distractor_prob"),
    ],
)
def test_bad_settings_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_ambiguous_food(tmp_path, num_per_class=1, **kwargs)


def test_mask_png_is_binary(synthetic_data):
    mask = np.asarray(Image.open(next((synthetic_data / "train_masks" / "ketchup").glob("*.png"))))
    assert set(np.unique(mask).tolist()) <= {0, 1, 255}


def test_distractors_add_another_target_food_and_default_bytes_do_not_change(monkeypatch):
    """distractor_prob=0 keeps the published demo data byte for byte; 1.0 puts a second target food in every scene."""
    import rvernet_hf.synthetic as synthetic

    plain, _, _ = render_scene("ketchup", 64, np.random.default_rng(5))
    again, _, _ = render_scene("ketchup", 64, np.random.default_rng(5), distractor_prob=0.0)
    assert np.array_equal(plain, again)
    drawn = []
    original = synthetic._draw_object
    monkeypatch.setattr(
        synthetic, "_draw_object", lambda draw, kind, *a: drawn.append(kind) or original(draw, kind, *a)
    )
    for prob, expected in ((0.0, 0), (1.0, 1)):
        for seed in range(10):
            drawn.clear()
            render_scene("bread", 64, np.random.default_rng(seed), distractor_prob=prob)
            others = [kind for kind in drawn if kind in CLASSES and kind != "bread"]
            assert len(others) == expected, (prob, drawn)  # distractors are drawn once (photo only, no mask)
