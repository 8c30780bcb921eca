"""Every object for a fraction of the decoder work (`all_objects_strategy="adaptive"`), checked against the full grid
on scenes whose objects are known: a scene oracle (`testing_utils.scene_oracle`: a SAM whose encoder and decoder run,
whose answer for a click is the true mask of the object under it) on random scenes of 3 to 10 objects and on the
built-in benchmark's scenes. What could go wrong: a skipped point was the only one on an object (an object lost), a
point decoded twice, the low-resolution NMS keeping other regions than full resolution would."""

import numpy as np
import pytest
import torch
from PIL import Image

from rvernet_hf import RveRNetImageProcessor
from rvernet_hf.roi_masks_rvernet import AllObjectsSettings, AutoRoiSettings, _Candidates, _grid, _nms_by_mask_iou
from rvernet_hf.segmenters_rvernet import Segmenter
from rvernet_hf.testing_utils import oracle_scene, scene_oracle


@pytest.fixture(scope="module")
def oracle():
    return scene_oracle()


def every_object(oracle, photo, instance_map, strategy: str, **settings) -> tuple[list[np.ndarray], int]:
    """The masks every-object mode finds on a scene, and the prompts the decoder was given."""
    oracle.set_scene(instance_map)
    oracle.prompts = 0
    processor = RveRNetImageProcessor(
        size={"height": 30, "width": 30}, sam_model=oracle, all_objects_strategy=strategy, **settings
    )
    _, masks = processor.compute_roi_masks(photo, all_objects=True)
    return masks[0], oracle.prompts


def best_iou(mask: np.ndarray, masks: list[np.ndarray]) -> float:
    return max(((mask & other).sum() / (mask | other).sum() for other in masks), default=0.0)


def assert_nothing_lost(grid_masks, adaptive_masks, where: str) -> None:
    for k, mask in enumerate(grid_masks):
        assert best_iou(mask, adaptive_masks) >= 0.8, f"{where}: the grid's region {k} ({mask.mean():.3f}) was lost"


def embedded_scene(oracle, seed: int):
    """A scene set on the oracle: (its instance map, the oracle as a `Segmenter`, the photo's embedding)."""
    photo, instance_map = oracle_scene(seed)
    oracle.set_scene(instance_map)
    oracle.prompts = 0
    segmenter = Segmenter(oracle)
    return instance_map, segmenter, segmenter.embed([photo])[0]


def test_the_oracle_answers_a_click_with_the_true_object(oracle):
    instance_map, segmenter, embedding = embedded_scene(oracle, 0)
    for k in np.unique(instance_map):
        rows, cols = np.nonzero(instance_map == k)
        pick = len(rows) // 2
        prompt = [(np.array([[cols[pick] + 0.5, rows[pick] + 0.5]]), np.ones(1, dtype=np.int64))]
        low_res, scores = segmenter.decode(embedding, points=prompt)
        mask = segmenter.to_original(low_res[:, 0], embedding, 0.0)[0]
        assert best_iou(instance_map == k, [mask]) > 0.7, k
        assert torch.allclose(scores, torch.tensor(0.95))
    assert oracle.prompts == len(np.unique(instance_map))


@pytest.mark.parametrize("seed", range(3))
def test_adaptive_finds_every_object_of_the_full_grid_with_far_fewer_prompts(oracle, seed):
    photo, instance_map = oracle_scene(seed)
    grid_masks, grid_prompts = every_object(oracle, photo, instance_map, "grid")
    adaptive_masks, adaptive_prompts = every_object(oracle, photo, instance_map, "adaptive")
    assert grid_prompts == 16 * 16
    assert adaptive_prompts <= 0.25 * grid_prompts, adaptive_prompts
    assert len(grid_masks) >= 4  # the scene's objects and the background: the test has something to lose
    assert_nothing_lost(grid_masks, adaptive_masks, f"scene {seed}")
    assert len(adaptive_masks) == len(grid_masks)


def test_no_object_is_lost_on_random_scenes(oracle):
    """A property over random scenes (sizes, counts, overlaps, aspect): whatever the grid finds, adaptive finds."""
    rng = np.random.default_rng(1234)
    for trial in range(30):
        height, width = int(rng.integers(48, 200)), int(rng.integers(48, 200))
        photo, instance_map = oracle_scene(int(rng.integers(1 << 30)), size=(height, width), objects=(1, 10))
        side = int(rng.choice([4, 8, 12, 16]))
        settings = {"all_objects_points_per_side": side, "all_objects_points_per_batch": int(rng.integers(3, 70))}
        grid_masks, grid_prompts = every_object(oracle, photo, instance_map, "grid", **settings)
        adaptive_masks, adaptive_prompts = every_object(oracle, photo, instance_map, "adaptive", **settings)
        assert adaptive_prompts <= grid_prompts == side * side  # no point decoded twice
        assert_nothing_lost(grid_masks, adaptive_masks, f"trial {trial} ({width}x{height}, grid {side})")


def test_the_built_in_benchmarks_scenes_lose_nothing(oracle, synthetic_data):
    """The benchmark's photos, their ROI (its food) and their other objects (instance maps) as the oracle's truth."""
    photos = sorted((synthetic_data / "train").rglob("*.png"))[:4]
    assert photos
    for path in photos:
        relative = path.relative_to(synthetic_data / "train")
        roi = np.asarray(Image.open(synthetic_data / "train_masks" / relative)) > 0
        others = np.asarray(Image.open(synthetic_data / "train_object_masks" / relative)).astype(np.int32)
        instance_map = np.where(others > 0, others + 1, 0)
        instance_map[roi] = 1
        photo = np.asarray(Image.open(path).convert("RGB"))
        grid_masks, grid_prompts = every_object(oracle, photo, instance_map, "grid")
        adaptive_masks, adaptive_prompts = every_object(oracle, photo, instance_map, "adaptive")
        assert adaptive_prompts < grid_prompts
        assert_nothing_lost(grid_masks, adaptive_masks, str(relative))
        assert best_iou(roi, adaptive_masks) >= 0.5, f"{relative}: the food itself"


def test_low_resolution_nms_keeps_the_regions_full_resolution_would(oracle):
    _, segmenter, embedding = embedded_scene(oracle, 3)
    settings = AllObjectsSettings(strategy="grid")
    candidates = _Candidates(segmenter, embedding, 0.0, settings, AutoRoiSettings())
    candidates.decode(_grid(embedding.original_size, settings.points_per_side))
    logits, scores = torch.cat(candidates.logits), torch.cat(candidates.scores)
    low = segmenter.unpadded_low_res(logits, embedding) > 0.0
    full = torch.as_tensor(segmenter.to_original(logits, embedding, 0.0))
    kept_low = _nms_by_mask_iou(low, scores, settings.nms_threshold, settings.max_regions)
    kept_full = _nms_by_mask_iou(full, scores, settings.nms_threshold, settings.max_regions)
    assert len(kept_low) == len(kept_full) >= 4
    regions_full = [full[i].numpy() for i in kept_full]
    for i in kept_low:
        assert best_iou(full[i].numpy(), regions_full) >= 0.9


def test_the_strategy_is_a_checked_setting_and_saved_folders_keep_the_grid(tmp_path):
    import json

    with pytest.raises(ValueError, match="all_objects_strategy"):
        RveRNetImageProcessor(all_objects_strategy="fast")
    assert RveRNetImageProcessor().all_objects_strategy == "adaptive"
    processor = RveRNetImageProcessor(all_objects_strategy="grid")
    processor.save_pretrained(tmp_path / "new")
    assert RveRNetImageProcessor.from_pretrained(tmp_path / "new").all_objects_strategy == "grid"
    RveRNetImageProcessor().save_pretrained(tmp_path / "old")
    saved = json.loads((tmp_path / "old" / "preprocessor_config.json").read_text())
    assert saved.pop("all_objects_strategy") == "adaptive"
    (tmp_path / "old" / "preprocessor_config.json").write_text(json.dumps(saved))  # saved before the setting
    assert RveRNetImageProcessor.from_pretrained(tmp_path / "old").all_objects_strategy == "grid"
