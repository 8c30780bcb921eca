"""ROI masking with every promptable segmenter family transformers ships (tiny random configs, the real code path):
one encoder pass per image, one decoder call per image whatever its prompt count, masks aligned on non-square
photos, and a checkpoint that is not a segmenter refused by name."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import DeiTConfig

from conftest import SEGMENTER_FAMILIES, tiny_segmenter
from rvernet_hf import RveRNetImageProcessor
from rvernet_hf.segmenters_rvernet import SEGMENTER_FAMILIES as SUPPORTED
from rvernet_hf.segmenters_rvernet import Segmenter, load_segmenter
from test_image_processing_rvernet import count_calls


skimage_data = pytest.importorskip("skimage.data")


@pytest.mark.parametrize("family", SEGMENTER_FAMILIES)
def test_one_encoder_pass_per_image_and_one_decoder_call_per_image(family):
    segmenter = tiny_segmenter(family)
    assert segmenter.config.model_type in SUPPORTED
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_batch_size=2, sam_model=segmenter)
    encoder_calls = count_calls(segmenter.vision_encoder)
    decoder_calls = count_calls(segmenter.mask_decoder)
    images = [skimage_data.coffee()[::4, ::4], skimage_data.rocket()[::4, ::4], skimage_data.astronaut()[::8, ::8]]
    batch = processor(
        images,
        # image 0: three ROIs, one of them from two clicks (groups of different lengths are padded)
        input_points=[[[[20, 20]], [[60, 40], [70, 50]], [[100, 10]]], None, None],
        input_boxes=[None, [[5, 5, 60, 50], [20, 30, 100, 90]], None],  # image 1: two boxes
        return_roi_masks=True,
    )  # image 2: the automatic ROI (one grid decoder call)
    assert encoder_calls == [2, 1]  # 3 images in batches of 2, one embedding each
    assert len(decoder_calls) == 3  # one decoder call per image, whatever its number of prompts
    assert batch["roi_image_index"].tolist() == [0, 0, 0, 1, 1, 2]
    for mask, index in zip(batch["roi_masks"], batch["roi_image_index"].tolist()):
        assert mask.shape == images[index].shape[:2] and mask.dtype == bool and mask.any()


@pytest.mark.parametrize("family", SEGMENTER_FAMILIES)
def test_a_box_prompt_mask_stays_in_its_box_on_a_3_to_1_image(family, monkeypatch):
    """The decoder is made to answer 'exactly the prompt box, in the frame it was given': the mask that comes back
    at the photo's size must then be the box. A wrong prompt frame or post-processing (SAM's padding crop, SAM 2's
    square resize) would move or stretch it by up to 3x on a 3:1 photo."""
    model = tiny_segmenter(family)
    segmenter = Segmenter(model)
    photo = np.zeros((60, 180, 3), dtype=np.uint8)
    embedding = segmenter.embed([photo])[0]
    low_res_size = segmenter.decode(embedding, boxes=[np.array([0.0, 0.0, 10.0, 10.0])])[0].shape[-1]
    input_h, input_w = embedding.input_size

    seen_boxes = []

    def answer_the_box(**inputs):
        x0, y0, x1, y1 = inputs["input_boxes"][0, 0].tolist()  # in the prompt encoder's frame
        seen_boxes.append([x0, y0, x1, y1])
        logits = torch.full((1, 1, 3, low_res_size, low_res_size), -10.0)
        rows = torch.arange(low_res_size)[:, None] + 0.5
        cols = torch.arange(low_res_size)[None, :] + 0.5
        inside_x = (cols >= x0 * low_res_size / input_w) & (cols <= x1 * low_res_size / input_w)
        inside = inside_x & (rows >= y0 * low_res_size / input_h) & (rows <= y1 * low_res_size / input_h)
        logits[..., inside] = 10.0
        return type("Output", (), {"pred_masks": logits, "iou_scores": torch.ones(1, 1, 3)})()

    monkeypatch.setattr(model, "forward", answer_the_box)
    box = [120, 10, 170, 50]  # x0, y0, x1, y1 near the right edge of the wide photo
    mask = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=model)(
        photo, input_boxes=box, return_roi_masks=True
    )["roi_masks"][0]
    # The frame is transformers' own: the family's processor scales the same box to the same coordinates.
    import transformers

    processor_class = {
        "sam": "SamProcessor",
        "sam_hq": "SamHQProcessor",
        "sam2": "Sam2Processor",
        "edgetam": "Sam2Processor",
        "sam3_tracker": "Sam3TrackerProcessor",
    }[family]
    official = getattr(transformers, processor_class)(image_processor=segmenter.image_processor)(
        images=Image.fromarray(photo), input_boxes=[[box]], return_tensors="pt"
    )["input_boxes"][0, 0]
    np.testing.assert_allclose(seen_boxes[-1], official.tolist(), atol=1e-3)
    expected = np.zeros(photo.shape[:2], dtype=bool)
    expected[10:50, 120:170] = True
    cell = 180 / low_res_size  # one low-resolution cell, in photo pixels
    grown = np.zeros_like(expected)
    grown[max(0, int(10 - cell)) : int(50 + cell) + 1, max(0, int(120 - cell)) : int(170 + cell) + 1] = True
    assert mask.any() and not (mask & ~grown).any(), "mask leaves its box"
    assert (mask & expected).sum() / (mask | expected).sum() > 0.8


def test_a_checkpoint_that_is_not_a_segmenter_is_refused_naming_it(tmp_path):
    DeiTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37).save_pretrained(
        tmp_path / "deit"
    )
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model_name_or_path=str(tmp_path / "deit"))
    with pytest.raises(ValueError, match=r"deit'? is a 'deit' checkpoint, not a promptable segmenter.*SAM 2"):
        processor(skimage_data.coffee()[::8, ::8], input_boxes=[5, 5, 40, 30])
    from transformers import DeiTModel

    with pytest.raises(ValueError, match=r"DeiTModel is not a promptable segmenter.*Supported families"):
        RveRNetImageProcessor(
            sam_model=DeiTModel(
                DeiTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
            )
        )


@pytest.mark.parametrize("family", ["sam2", "sam_hq"])
def test_a_checkpoint_folder_loads_as_its_own_family(tmp_path, family):
    """A SAM 2 folder used to be loaded into `SamModel` (random ViT-B weights, a log line): now its own class."""
    model = tiny_segmenter(family)
    model.save_pretrained(tmp_path / family)
    loaded = load_segmenter(str(tmp_path / family), device="cpu")
    assert type(loaded.model) is type(model)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor, msg=name)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model_name_or_path=str(tmp_path / family))
    image = skimage_data.coffee()[::8, ::8]
    from_folder = processor(image, input_boxes=[5, 5, 40, 30], return_roi_masks=True)["roi_masks"][0]
    given = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=model)
    np.testing.assert_array_equal(
        from_folder, given(image, input_boxes=[5, 5, 40, 30], return_roi_masks=True)["roi_masks"][0]
    )


def test_bf16_segmenter_on_cpu():
    model = tiny_segmenter("sam2").to(torch.bfloat16)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=model)
    batch = processor(skimage_data.coffee()[::8, ::8], input_points=[[10, 10]], return_roi_masks=True)
    assert batch["roi_masks"][0].any() and batch["roi_pixel_values"].dtype == torch.float32


# ---------------------------------------------------------------- every object


def _relaxed(**overrides):
    """Filters open wide: random weights predict low IoUs, so the default filters would keep nothing."""
    settings = {
        "all_objects_points_per_side": 4,
        "all_objects_points_per_batch": 5,
        "all_objects_pred_iou_threshold": -10.0,
        "all_objects_stability_threshold": 0.0,
        "all_objects_min_area": 0.0,
        "all_objects_max_area": 1.0,
    }
    return settings | overrides


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_all_objects_gives_one_sample_per_object_with_its_own_mask_box_and_context(family):
    model = tiny_segmenter(family)
    settings = _relaxed(all_objects_strategy="grid")  # every grid point decoded
    processor = RveRNetImageProcessor(size={"height": 24, "width": 24}, sam_model=model, **settings)
    encoder_calls, decoder_calls = count_calls(model.vision_encoder), count_calls(model.mask_decoder)
    images = [skimage_data.coffee()[::8, ::8], skimage_data.chelsea()[::8, ::8]]
    batch = processor(images, all_objects=True, return_roi_masks=True)
    assert encoder_calls == [2]  # both photos in one encoder pass
    assert len(decoder_calls) == 2 * 4  # 16 grid points per photo, 5 per decoder call
    count = batch["roi_pixel_values"].shape[0]
    assert count >= 2 and sorted(set(batch["roi_image_index"].tolist())) == [0, 1]
    assert batch["roi_boxes"].shape == (count, 4)
    for k, (mask, box) in enumerate(zip(batch["roi_masks"], batch["roi_boxes"].tolist())):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert box == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
        # each sample's context is the photo without ITS object: recompute the cut-outs from its own mask
        image = images[batch["roi_image_index"][k]]
        roi, context, _ = processor.make_cutouts(image, mask)
        torch.testing.assert_close(batch["context_pixel_values"][k], context)
        torch.testing.assert_close(batch["roi_pixel_values"][k], roi)
    per_image = [m for m, i in zip(batch["roi_masks"], batch["roi_image_index"].tolist()) if i == 0]
    for a in range(len(per_image)):  # no two kept objects are (nearly) the same region
        for b in range(a + 1, len(per_image)):
            inter = (per_image[a] & per_image[b]).sum()
            assert inter / (per_image[a] | per_image[b]).sum() < 0.95


def test_all_objects_caps_regions_and_nms_keeps_overlapping_distinct_objects():
    from rvernet_hf.roi_masks_rvernet import _nms_by_mask_iou

    masks = torch.zeros(4, 10, 10, dtype=torch.bool)
    masks[0, :5] = True  # top half
    masks[1, :5] = True  # the same region, lower score: suppressed
    masks[2, :, :5] = True  # left half: overlaps the top half (IoU 1/3), a different object: kept
    masks[3, 8:, 8:] = True  # a small corner
    kept = _nms_by_mask_iou(masks, torch.tensor([0.9, 0.8, 0.7, 0.6]), threshold=0.7, limit=10)
    assert kept == [0, 2, 3]
    assert _nms_by_mask_iou(masks, torch.tensor([0.9, 0.8, 0.7, 0.6]), threshold=0.7, limit=2) == [0, 2]
    model = tiny_segmenter("sam")
    processor = RveRNetImageProcessor(
        size={"height": 16, "width": 16}, sam_model=model, **_relaxed(all_objects_max_regions=2)
    )
    batch = processor(skimage_data.coffee()[::8, ::8], all_objects=True)
    assert batch["roi_pixel_values"].shape[0] <= 2


def test_all_objects_filters_by_predicted_iou_stability_and_area(monkeypatch):
    """The decoder answers three candidates per point: a confident stable half, a low-IoU one, a tiny one."""
    model = tiny_segmenter("sam")

    def decode(self, embedding, points=None, boxes=None):
        k = len(points)
        low_res = torch.full((k, 3, 16, 16), -10.0)
        low_res[:, 0, :, :8] = 10.0  # left half, stable (logits far from the threshold)
        low_res[:, 1, 8:, :] = 10.0  # bottom half, but predicted IoU 0.5
        low_res[:, 2, 0, 0] = 10.0  # one low-res cell: below min_area
        scores = torch.tensor([[0.95, 0.5, 0.95]]).expand(k, 3)
        return low_res, scores

    monkeypatch.setattr(Segmenter, "decode", decode)
    processor = RveRNetImageProcessor(
        size={"height": 16, "width": 16}, sam_model=model, all_objects_points_per_side=2, all_objects_min_area=0.01
    )
    batch = processor(np.zeros((64, 64, 3), dtype=np.uint8), all_objects=True, return_roi_masks=True)
    assert len(batch["roi_masks"]) == 1  # four grid points found the same half: one object
    assert batch["roi_masks"][0][:, :32].all() and not batch["roi_masks"][0][:, 32:].any()


def test_all_objects_with_nothing_found_uses_the_automatic_roi_and_warns(caplog):
    import logging

    from transformers.utils import logging as hf_logging

    model = tiny_segmenter("sam")
    processor = RveRNetImageProcessor(
        size={"height": 16, "width": 16},
        sam_model=model,
        all_objects_pred_iou_threshold=99.0,
        all_objects_strategy="grid",
    )
    decoder_calls = count_calls(model.mask_decoder)
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            batch = processor(skimage_data.coffee()[::8, ::8], all_objects=True, return_roi_masks=True)
    finally:
        hf_logging.disable_propagation()
    assert batch["roi_pixel_values"].shape[0] == 1 and "No object of image 0 passed" in caplog.text
    # the automatic ROI is chosen among the grid's own candidates: 16 x 16 points / 64 per call, nothing more
    assert len(decoder_calls) == 4
    mask = batch["roi_masks"][0]
    assert mask.any() and not mask.all()


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"all_objects": True, "input_boxes": [5, 5, 40, 30]}, r"`input_boxes`\) cannot be given with it"),
        ({"all_objects": True, "input_points": [10, 10]}, r"`input_points`\) cannot be given with it"),
        ({"all_objects": True, "roi_masks": np.ones((25, 38), dtype=bool)}, r"`roi_masks`\) cannot be given with it"),
        ({"all_objects": True, "all_objects_points_per_side": 0}, r"all_objects_points_per_side` must be >= 1"),
        ({"all_objects": "yes"}, r"`all_objects` must be True or False"),
    ],
)
def test_all_objects_bad_arguments_are_refused_before_any_forward_pass(arguments, message):
    model = tiny_segmenter("sam")
    encoder_calls = count_calls(model.vision_encoder)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=model)
    with pytest.raises(ValueError, match=message):
        processor(skimage_data.coffee()[::16, ::16], **arguments)
    assert encoder_calls == []


# ---------------------------------------------------------------- a concept as text (SAM 3)


def test_text_prompt_gives_one_sample_per_instance_with_sam3():
    from conftest import tiny_sam3

    model, sam3_processor = tiny_sam3()
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, text_score_threshold=0.0)
    processor.set_sam_model(model, sam3_processor)
    vision_calls = count_calls(model.vision_encoder)
    images = [skimage_data.coffee()[::8, ::8], skimage_data.chelsea()[::8, ::8]]
    batch = processor(images, text="food", return_roi_masks=True)
    assert vision_calls == [2]  # both photos in one forward pass
    found = batch["roi_image_index"].tolist()
    assert sorted(set(found)) == [0, 1] and len(found) >= 2
    for mask, index in zip(batch["roi_masks"], found):
        assert mask.shape == images[index].shape[:2] and mask.any() and not mask.all()
    # the same through the processor's own post-processing: our masks are SAM 3's instances
    inputs = sam3_processor(images=[Image.fromarray(images[0])], text=["food"], return_tensors="pt")
    with torch.no_grad():
        outputs = model(
            pixel_values=inputs["pixel_values"], input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        )
    expected = sam3_processor.post_process_instance_segmentation(
        outputs, threshold=0.0, mask_threshold=0.5, target_sizes=[images[0].shape[:2]]
    )[0]["masks"]
    ours = [m for m, i in zip(batch["roi_masks"], found) if i == 0]
    kept = [np.asarray(m, dtype=bool) for m in expected if m.any() and not m.all()]
    assert len(ours) == len(kept) and all(np.array_equal(a, b) for a, b in zip(ours, kept))


def test_text_is_refused_by_a_box_and_click_segmenter_and_boxes_by_sam3():
    from conftest import tiny_sam3

    model = tiny_segmenter("sam2")
    encoder_calls = count_calls(model.vision_encoder)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=model)
    image = skimage_data.coffee()[::8, ::8]
    with pytest.raises(ValueError, match=r"`text` needs a text-prompted segmenter \(SAM 3.*'sam2' model"):
        processor(image, text="food")
    assert encoder_calls == []
    with pytest.raises(ValueError, match="`input_boxes`\\) cannot be given with it"):
        processor(image, text="food", input_boxes=[1, 1, 20, 20])
    with pytest.raises(ValueError, match="must be a non-empty string"):
        processor([image, image], text=["food", ""])
    sam3, sam3_processor = tiny_sam3()
    text_processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    text_processor.set_sam_model(sam3, sam3_processor)
    with pytest.raises(ValueError, match=r"SAM 3 \(text prompts\): give `text=`"):
        text_processor(image, input_boxes=[1, 1, 20, 20])
    with pytest.raises(ValueError, match="needs its `Sam3Processor`"):
        RveRNetImageProcessor().set_sam_model(sam3)
