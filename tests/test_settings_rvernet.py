"""The processor's settings on transformers' machinery and the segmenter's settings as one object (issue 20)."""

import json

import numpy as np
import pytest

from rvernet_hf import RveRNetImageProcessor
from rvernet_hf.roi_masks_rvernet import AllObjectsSettings, AutoRoiSettings, SegmenterSettings, TextSettings


def test_flat_names_round_trip_and_cover_every_group():
    settings = SegmenterSettings(
        model_name_or_path="me/sam", batch_size=2, auto_roi=AutoRoiSettings(strategy="center", points_per_side=3)
    )
    flat = settings.to_flat()
    assert flat["sam_model_name_or_path"] == "me/sam" and flat["sam_batch_size"] == 2
    assert flat["auto_roi"] == "center" and flat["auto_roi_points_per_side"] == 3
    assert "all_objects_stability_offset" not in flat  # not a saved setting
    assert SegmenterSettings.from_flat(flat) == settings
    assert SegmenterSettings.from_flat({}) == SegmenterSettings()
    prefixes = {"sam_", "mask_", "auto_roi", "all_objects_", "text_"}
    assert all(any(name.startswith(prefix) for prefix in prefixes) for name in flat)
    assert len(flat) == 6 + 6 + 9 + 2  # top level, automatic ROI, every object, text


def test_the_processor_takes_its_segmenter_defaults_from_the_settings_object():
    processor = RveRNetImageProcessor()
    for name, default in SegmenterSettings().to_flat().items():
        assert getattr(processor, name) == default, name
        assert name in RveRNetImageProcessor.valid_kwargs.__annotations__
    assert processor.segmenter_settings == SegmenterSettings()
    assert processor.segmenter_settings.all_objects == AllObjectsSettings()
    assert processor.segmenter_settings.text == TextSettings()


def test_every_saved_key_is_a_valid_kwarg(tmp_path):
    processor = RveRNetImageProcessor(patch_size=16, fill_value=-1)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    settings = set(saved) - {"image_processor_type", "auto_map"}
    assert settings <= set(RveRNetImageProcessor.valid_kwargs.__annotations__)
    assert saved["patch_size"] == {"roi": 16, "context": 16} and saved["fill_value"] == -1.0
    assert "rescale_factor" not in saved and "image_mean" not in saved  # transformers' names this processor ignores


def test_per_call_overrides_reach_the_call_and_leave_the_processor_alone():
    """Per-call settings go through transformers' preprocess chain (typed, merged over the saved ones, validated):
    they reach the segmenter and the pixels of that call only."""
    processor = RveRNetImageProcessor(all_objects_max_regions=5, size={"height": 8, "width": 8}, do_normalize=False)
    image = np.full((40, 60, 3), 255, dtype=np.uint8)
    batch = processor(image, auto_roi="center", image_mean=[0.5] * 3, image_std=[0.5] * 3, do_normalize=True)
    roi = batch["roi_pixel_values"][0]
    assert float(roi.max()) == pytest.approx(1.0)  # (1 - 0.5) / 0.5: both towers' statistics, this call only
    assert processor.segmenter_settings.all_objects.max_regions == 5 and processor.auto_roi == "sam_grid"
    assert processor.roi_image_mean == [0.485, 0.456, 0.406] and processor.do_normalize is False
    with pytest.raises(ValueError, match="all_objects_max_regions"):  # typed: a string is not a count
        processor(image, auto_roi="center", all_objects_max_regions="3")


def test_a_per_call_auto_roi_changes_the_mask():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, auto_roi="center")
    half = processor(image, return_roi_masks=True)["roi_masks"][0]
    wide = processor(image, return_roi_masks=True, auto_roi_fallback_fraction=0.8)["roi_masks"][0]
    assert half.sum() == 20 * 30 and wide.sum() == 32 * 48


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auto_roi": "salient"}, "`auto_roi` must be one of"),
        ({"all_objects_points_per_batch": 0}, "`all_objects_points_per_batch` must be >= 1"),
        ({"sam_batch_size": 0}, "`sam_batch_size` must be >= 1"),
        ({"auto_roi_min_area": 0.9}, "`auto_roi_min_area` and `auto_roi_max_area`"),
        ({"resize_mode": "crop"}, "`resize_mode` must be one of"),
        ({"patch_size": {"roi": 5}}, "not a multiple of the roi tower's `patch_size` 5"),
        # Issue 24.8: settings that used to be accepted and fall back silently or fail later.
        ({"pad_value": 300}, r"`pad_value` must be a grey level in \[0, 255\], got 300"),
        ({"fill_value": float("nan")}, "`fill_value` must be a finite number"),
        ({"sam_dtype": "float17"}, "`sam_dtype` must be 'auto' or a torch dtype name"),
        ({"mask_threshold": float("nan")}, "`mask_threshold` must be a finite number"),
        ({"all_objects_nms_threshold": 1.5}, r"`all_objects_nms_threshold` must be in \[0, 1\], got 1.5"),
        ({"all_objects_pred_iou_threshold": float("nan")}, "`all_objects_pred_iou_threshold` must be a finite number"),
        ({"text_score_threshold": -0.1}, r"`text_score_threshold` must be in \[0, 1\]"),
        ({"auto_roi_fallback_fraction": 0}, r"`auto_roi_fallback_fraction` must be in \(0, 1\]"),
        ({"auto_roi_center_weight": -1}, "`auto_roi_center_weight` must be in"),
    ],
)
def test_bad_settings_are_refused_at_construction_per_call_and_at_load(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        RveRNetImageProcessor(**settings)
    processor = RveRNetImageProcessor()
    with pytest.raises(ValueError, match=message):
        processor(np.zeros((8, 8, 3), dtype=np.uint8), roi_masks=np.eye(8, dtype=bool), **settings)
    processor.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=message):
        RveRNetImageProcessor.from_pretrained(tmp_path, **settings)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"token_selection": "bogus"}, r"`token_selection` must be one of \('dense', 'mask'\), got 'bogus'"),
        ({"fusion": "sum"}, "`fusion` must be one of"),
        ({"fusion_hidden_size": 0}, "`fusion_hidden_size` must be a positive integer, got 0"),
        ({"classifier_dropout": 1.5}, r"`classifier_dropout` must be in \[0, 1\), got 1.5"),
    ],
)
def test_config_overrides_at_load_are_checked_as_at_construction(tmp_path, override, message):
    """Issue 24.8: `from_pretrained(folder, key=value)` used to set any value unchecked (transformers sets overrides
    after construction)."""
    from conftest import tiny_tower_config
    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification

    config = RveRNetConfig(roi_config=tiny_tower_config("deit"), context_config=tiny_tower_config("deit"))
    with pytest.raises(ValueError, match=message):
        RveRNetConfig(roi_config=tiny_tower_config("deit"), context_config=tiny_tower_config("deit"), **override)
    RveRNetForImageClassification(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=message):
        RveRNetConfig.from_pretrained(tmp_path, **override)
    with pytest.raises(ValueError, match=message):
        RveRNetForImageClassification.from_pretrained(tmp_path, **override)
    assert RveRNetConfig.from_pretrained(tmp_path, token_selection="mask").token_selection == "mask"


NULLABLE = {"image_mean", "image_std", "patch_size", "sam_revision", "sam_device"}


@pytest.mark.parametrize("name", sorted(set(RveRNetImageProcessor.valid_kwargs.__annotations__) - NULLABLE))
def test_none_is_refused_for_a_setting_without_an_unset_value(tmp_path, name):
    """Issue 35.16 (transformers' `test_fast_image_processor_explicit_none_preserved`): transformers reads an
    explicit None as "step not applied" when constructing and as "the saved value" in a call; this processor makes
    neither guess. Every setting not typed `... | None` refuses None, naming it and its default, at construction
    and from a saved file; before, several failed with Python's own words ("'NoneType' object is not iterable")."""
    with pytest.raises(ValueError, match=rf"`{name}` cannot be None .*leave it out for its default"):
        RveRNetImageProcessor(**{name: None})
    RveRNetImageProcessor().save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), name: None}))
    with pytest.raises(ValueError, match=rf"`{name}` cannot be None"):
        RveRNetImageProcessor.from_pretrained(tmp_path)


def test_explicit_values_and_meaningful_nones_survive_save_and_load(tmp_path):
    """The contract behind transformers' explicit-None test: what was set explicitly (a non-default False, a None
    that means something) is what a saved and reloaded processor holds."""
    processor = RveRNetImageProcessor(do_normalize=False, do_convert_rgb=False, sam_device=None, patch_size=None)
    assert processor.to_dict()["do_normalize"] is False and processor.to_dict()["do_convert_rgb"] is False
    processor.save_pretrained(tmp_path)
    reloaded = RveRNetImageProcessor.from_pretrained(tmp_path)
    assert reloaded.do_normalize is False and reloaded.do_convert_rgb is False
    assert reloaded.sam_device is None and reloaded.patch_size is None
    tokens = RveRNetImageProcessor(patch_size=16).set_settings(patch_size=None)
    assert tokens.patch_size is None  # None turns the token masks off again
    with pytest.raises(ValueError, match="`pad_value` cannot be None"):
        tokens.set_settings(pad_value=None)
    assert tokens.pad_value == RveRNetImageProcessor.pad_value  # a refused value changes nothing
