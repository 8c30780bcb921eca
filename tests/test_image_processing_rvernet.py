"""RveRNetImageProcessor: the pixel contract, input formats, SAM prompts (tiny random SamModel), errors.

transformers 5.25's `ImageProcessingTestMixin`, contract by contract: attributes, from/to dict and JSON, save/load
(and through AutoImageProcessor), init without parameters, PIL/numpy/torch calls, mixed formats converted to RGB,
per-call arguments checked, instances independent, `valid_kwargs`, outputs cast by `BatchFeature.to`: tested here in
our own words. Not applicable, and why:
- backend equivalence, save/load per backend, "PIL runs without torchvision", "new models need the torchvision
  backend", compiling it: one backend (torch), no PIL twin to be equivalent to;
- "explicit None preserved through save/load": a None setting means the default (transformers'
  `_set_attributes` reads it so); none of our settings has a None value of its own;
- 4-channel images with `do_convert_rgb=False`: the towers read RGB; refused, naming the image and the remedy;
- semantic-segmentation post-processing and legacy annotation formats: not a segmentation or detection processor.
"""

import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    ViTImageProcessor,
)
from transformers.utils import logging as hf_logging

from rvernet_hf import RveRNetImageProcessor
from rvernet_hf.image_processing_rvernet import load_image
from rvernet_hf.segmenters_rvernet import Segmenter
from rvernet_hf.testing_utils import tiny_sam


skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture
def sam():
    return tiny_sam()


def count_calls(module: torch.nn.Module) -> list[int]:
    """Batch sizes of every forward call of `module`."""
    calls: list[int] = []

    def hook(_module, args, kwargs, _output):
        first = next(v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor))
        calls.append(first.shape[0])

    module.register_forward_hook(hook, with_kwargs=True)
    return calls


def rectangle_mask(shape, top, left, height, width):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + height, left : left + width] = True
    return mask


# ---------------------------------------------------------------- pixel contract


def test_exact_pixel_contract_complement_mode():
    processor = RveRNetImageProcessor(
        size={"height": 30, "width": 30},
        resize_mode="resize",
        fill_value=-7.0,
        roi_image_mean=[0.1, 0.2, 0.3],
        roi_image_std=[0.5, 0.25, 0.125],
        context_image_mean=[0.5, 0.5, 0.5],
        context_image_std=[0.5, 0.5, 0.5],
    )
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    mask = rectangle_mask((30, 30), 5, 7, 10, 12)
    batch = processor(image, roi_masks=mask)
    pixels = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    roi_norm = (pixels - torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)) / torch.tensor([0.5, 0.25, 0.125]).view(3, 1, 1)
    context_norm = (pixels - 0.5) / 0.5
    m = torch.from_numpy(mask)
    expected_roi = torch.where(m, roi_norm, torch.tensor(-7.0))
    expected_context = torch.where(m, torch.tensor(-7.0), context_norm)
    torch.testing.assert_close(batch["roi_pixel_values"][0], expected_roi, atol=1e-5, rtol=0)
    torch.testing.assert_close(batch["context_pixel_values"][0], expected_context, atol=1e-5, rtol=0)


def test_full_context_mode_sees_the_untouched_image():
    processor = RveRNetImageProcessor(size={"height": 30, "width": 30}, resize_mode="resize", context_mode="full")
    image = np.random.default_rng(1).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    mask = rectangle_mask((30, 30), 0, 0, 10, 10)
    full = processor(image, roi_masks=mask)["context_pixel_values"][0]
    unmasked = processor(image, roi_masks=~mask)  # another ROI: the context must not change
    torch.testing.assert_close(full, unmasked["context_pixel_values"][0])


def test_letterbox_keeps_aspect_ratio_and_pads_grey():
    processor = RveRNetImageProcessor(size={"height": 32, "width": 32}, do_normalize=False, fill_value=0.0)
    image = np.full((20, 40, 3), 200, dtype=np.uint8)  # wide: resized to 16x32, 8 rows of padding above and below
    mask = rectangle_mask((20, 40), 0, 0, 20, 20)  # left half
    batch = processor(image, roi_masks=mask)
    context, roi = batch["context_pixel_values"][0], batch["roi_pixel_values"][0]
    torch.testing.assert_close(context[:, :8], torch.full((3, 8, 32), 125 / 255))  # pad_value, grey
    torch.testing.assert_close(context[:, 24:], torch.full((3, 8, 32), 125 / 255))
    torch.testing.assert_close(context[:, 8:24, 16:], torch.full((3, 16, 16), 200 / 255))
    assert (context[:, 8:24, :16] == 0).all()  # the ROI is hidden from the context tower
    assert (roi[:, :8] == 0).all()  # padding lies outside the ROI
    torch.testing.assert_close(roi[:, 8:24, :16], torch.full((3, 16, 16), 200 / 255))


def test_tiny_roi_survives_downscaling():
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    mask = rectangle_mask((400, 400), 200, 200, 3, 3)  # 9 pixels of 160,000
    batch = processor(image, roi_masks=mask, return_tensors="pt")
    assert (batch["roi_pixel_values"][0] != processor.fill_value).any()


def test_pil_numpy_torch_inputs_agree():
    processor = RveRNetImageProcessor(size={"height": 24, "width": 24})
    image = skimage_data.chelsea()
    mask = rectangle_mask(image.shape[:2], 50, 100, 120, 150)
    outputs = [
        processor(source, roi_masks=mask)["roi_pixel_values"]
        for source in (image, Image.fromarray(image), torch.from_numpy(image).permute(2, 0, 1), image / 255.0)
    ]
    for other in outputs[1:]:
        torch.testing.assert_close(other, outputs[0])


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1", "F"])
def test_any_pil_mode(mode):
    rgb = Image.fromarray(skimage_data.astronaut()).resize((64, 48))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
        assert image.mode in ("I;16", "I")
    elif mode == "F":
        image = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0, mode="F")
    else:
        image = rgb.convert(mode)
    array = load_image(image)
    assert array.shape == (48, 64, 3) and array.dtype == np.uint8
    if mode in ("L", "I;16", "F", "1", "LA"):
        assert (array[..., 0] == array[..., 1]).all()  # grey stays grey
    if mode in ("I;16", "F"):  # 16-bit and float images are scaled to 8 bits, not clipped
        np.testing.assert_allclose(array[..., 0], np.asarray(rgb.convert("L")), atol=1)


def test_transparent_pixels_become_grey():
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:5, :, 3] = 255  # top half opaque red, bottom transparent
    array = load_image(Image.fromarray(rgba, mode="RGBA"), background=125)
    assert tuple(array[0, 0]) == (255, 0, 0)
    assert tuple(array[9, 9]) == (125, 125, 125)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_image(path).shape == (40, 20, 3)
    with Image.open(path) as opened:
        assert load_image(opened).shape == (40, 20, 3)


def test_real_photos_with_masks_and_returned_masks():
    processor = RveRNetImageProcessor(size={"height": 32, "width": 32})
    images = [skimage_data.coffee(), skimage_data.chelsea(), skimage_data.astronaut()]
    masks = [rectangle_mask(im.shape[:2], 30, 40, 100, 120) for im in images]
    batch = processor(images, roi_masks=[masks[0], [masks[1], ~masks[1]], masks[2]], return_roi_masks=True)
    assert batch["roi_pixel_values"].shape == (4, 3, 32, 32)
    assert batch["roi_image_index"].tolist() == [0, 1, 1, 2]
    np.testing.assert_array_equal(batch["roi_masks"][2], ~masks[1])
    assert torch.isfinite(batch["roi_pixel_values"]).all()


def test_masks_in_every_format_agree():
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = rectangle_mask((20, 30), 2, 3, 8, 9)
    formats = [
        mask,
        mask.astype(np.uint8),
        mask.astype(np.uint8) * 255,
        torch.from_numpy(mask),
        Image.fromarray(mask.astype(np.uint8) * 255),
        Image.fromarray(mask),
    ]
    outputs = [processor(image, roi_masks=m)["roi_pixel_values"] for m in formats]
    for other in outputs[1:]:
        torch.testing.assert_close(other, outputs[0])


# ---------------------------------------------------------------- save / load


def test_save_load_round_trip_without_weights(tmp_path, sam):
    processor = RveRNetImageProcessor(
        size={"height": 48, "width": 40},
        context_mode="full",
        sam_model=sam,
        sam_model_name_or_path="some/sam",
        auto_roi_points_per_side=3,
    )
    processor.save_pretrained(tmp_path)
    saved = (tmp_path / "preprocessor_config.json").read_text()
    assert "_sam" not in saved and 'sam_model"' not in saved
    reloaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(reloaded, RveRNetImageProcessor)
    assert reloaded.to_dict() == processor.to_dict()
    assert reloaded.size == {"height": 48, "width": 40} and reloaded._sam is None


def test_from_towers_pretrained_reads_tower_normalisation(tmp_path):
    ViTImageProcessor(
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], size={"height": 40, "width": 40}
    ).save_pretrained(tmp_path / "roi")
    ViTImageProcessor(image_mean=[0.1, 0.2, 0.3], image_std=[0.3, 0.2, 0.1]).save_pretrained(tmp_path / "context")
    processor = RveRNetImageProcessor.from_towers_pretrained(str(tmp_path / "roi"), str(tmp_path / "context"))
    assert processor.roi_image_mean == [0.5, 0.5, 0.5] and processor.context_image_std == [0.3, 0.2, 0.1]
    assert processor.size == {"height": 40, "width": 40}


def test_bad_settings():
    with pytest.raises(ValueError, match="resize_mode"):
        RveRNetImageProcessor(resize_mode="crop")
    with pytest.raises(ValueError, match="context_mode"):
        RveRNetImageProcessor(context_mode="none")
    with pytest.raises(ValueError, match="roi_image_mean"):
        RveRNetImageProcessor(roi_image_mean=[0.5])


# ---------------------------------------------------------------- SAM


def test_masks_never_load_sam():
    processor = RveRNetImageProcessor(sam_model_name_or_path="/nonexistent/sam", size={"height": 16, "width": 16})
    image = skimage_data.coffee()
    processor(image, roi_masks=rectangle_mask(image.shape[:2], 0, 0, 50, 50))
    assert processor._sam is None
    with pytest.raises(OSError):  # an unprompted image does need SAM: proves the load is lazy, not skipped
        processor(image)


def test_embedding_once_per_image_and_batched(sam):
    processor = RveRNetImageProcessor(size={"height": 32, "width": 32}, sam_batch_size=2, sam_model=sam)
    encoder_calls = count_calls(sam.vision_encoder)
    decoder_calls = count_calls(sam.mask_decoder)
    images = [skimage_data.coffee(), skimage_data.chelsea(), skimage_data.astronaut()]
    batch = processor(
        images,
        input_points=[[[[100, 100]], [[300, 200], [320, 220]], [[500, 50]]], None, None],  # 3 ROIs
        input_boxes=[None, [[10, 10, 200, 200], [50, 60, 250, 290]], None],  # 2 ROIs
        return_roi_masks=True,
    )  # the third image: automatic ROI (one grid-point decoder call)
    assert encoder_calls == [2, 1]  # 3 images through the encoder in batches of 2: one embedding each
    assert len(decoder_calls) == 3  # one decoder call per image, whatever its number of prompts
    assert batch["roi_image_index"].tolist() == [0, 0, 0, 1, 1, 2]
    for mask, index in zip(batch["roi_masks"], batch["roi_image_index"].tolist()):
        assert mask.shape == images[index].shape[:2] and mask.dtype == bool and mask.any()


def test_k_prompts_cost_one_encoder_pass(sam):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam)
    encoder_calls = count_calls(sam.vision_encoder)
    image = skimage_data.chelsea()
    points = [[[40 * k + 10, 30 * k + 10]] for k in range(4)]
    batch = processor(image, input_points=points)
    assert batch["roi_pixel_values"].shape[0] == 4 and encoder_calls == [1]


def test_best_candidate_is_chosen_by_predicted_iou(sam, monkeypatch):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam)
    low_res = torch.full((1, 3, 16, 16), -5.0)
    low_res[0, 0, :4, :4] = 5.0  # candidate 0: top-left corner
    low_res[0, 1, 8:, 8:] = 5.0  # candidate 1: bottom-right quarter
    low_res[0, 2, :, :8] = 5.0  # candidate 2: left half
    scores = torch.tensor([[0.2, 0.9, 0.5]])
    monkeypatch.setattr(Segmenter, "decode", lambda *args, **kwargs: (low_res, scores))
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    mask = processor(image, input_points=[10, 10], return_roi_masks=True)["roi_masks"][0]
    assert mask.shape == (64, 64)  # post-processed to the original size
    assert mask[50, 50] and not mask[5, 5] and 0.2 < mask.mean() < 0.3  # the bottom-right quarter won


def test_empty_sam_mask_falls_back_to_the_box(sam, monkeypatch):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam)
    monkeypatch.setattr(Segmenter, "decode", lambda *a, **k: (torch.full((1, 3, 16, 16), -5.0), torch.ones(1, 3)))
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    mask = processor(image, input_boxes=[8, 16, 24, 48], return_roi_masks=True)["roi_masks"][0]
    np.testing.assert_array_equal(mask, rectangle_mask((64, 64), 16, 8, 32, 16))


def test_automatic_roi_is_deterministic_and_in_area_range(sam):
    processor = RveRNetImageProcessor(
        size={"height": 16, "width": 16}, sam_model=sam, auto_roi_min_area=0.01, auto_roi_max_area=0.99
    )
    image = skimage_data.coffee()
    first = processor(image, return_roi_masks=True)["roi_masks"][0]
    second = processor(image, return_roi_masks=True)["roi_masks"][0]
    np.testing.assert_array_equal(first, second)
    assert first.any() and not first.all()


def test_automatic_roi_fallback_warns_and_is_never_empty(sam, caplog):
    processor = RveRNetImageProcessor(
        size={"height": 16, "width": 16},
        sam_model=sam,
        auto_roi_min_area=0.999,
        auto_roi_max_area=1.0,
        auto_roi_fallback_fraction=0.5,
    )
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            batch = processor(image, return_roi_masks=True)
    finally:
        hf_logging.disable_propagation()
    np.testing.assert_array_equal(batch["roi_masks"][0], rectangle_mask((40, 80), 10, 20, 20, 40))
    assert "falling back to the central box" in caplog.text
    assert (batch["roi_pixel_values"] != processor.fill_value).any()


def test_center_strategy_needs_no_sam():
    processor = RveRNetImageProcessor(
        sam_model_name_or_path="/nonexistent", auto_roi="center", size={"height": 16, "width": 16}
    )
    batch = processor(np.zeros((20, 20, 3), dtype=np.uint8), return_roi_masks=True)
    assert batch["roi_masks"][0].sum() == 100


# ---------------------------------------------------------------- errors


def _png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p, im: p([im, im], input_points=[None, [700, 10]]), r"input point \(700, 10\) of image 1 is outside"),
        (lambda p, im: p(im, input_boxes=[10, 10, 5, 50]), "input box .* of image 0 must satisfy"),
        (lambda p, im: p(im, input_boxes=[0, 0, 601, 100]), "input box .* of image 0 must satisfy"),
        (lambda p, im: p(im, roi_masks=np.ones((10, 10), bool)), "ROI mask of image 0 has size 10x10"),
        (lambda p, im: p(im, roi_masks=np.zeros(im.shape[:2], bool)), "ROI mask of image 0 is empty"),
        (lambda p, im: p(im, roi_masks=np.ones(im.shape[:2], bool)), "ROI mask of image 0 covers the whole image"),
        (
            lambda p, im: p(im, roi_masks=np.arange(im.shape[0] * im.shape[1]).reshape(im.shape[:2]) % 7),
            "ROI mask of image 0 is not binary",
        ),
        (lambda p, im: p([im, np.zeros((0, 10, 3), np.uint8)]), "image 1 has zero size"),
        (lambda p, im: p(im, roi_masks=np.ones(im.shape[:2], bool), input_points=[1, 1]), "both a mask and a box"),
        (lambda p, im: p([im, im], roi_masks=[None]), "one entry per image"),
    ],
)
def test_bad_input_names_the_image(call, message, sam):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam)
    encoder_calls = count_calls(sam.vision_encoder)
    with pytest.raises(ValueError, match=message):
        call(processor, skimage_data.coffee())
    assert encoder_calls == []  # raised before any heavy work


def test_bad_files_name_the_path(tmp_path, monkeypatch):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, auto_roi="center")
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is not a JPEG")
    with pytest.raises(ValueError, match=r"image 0 \(.*notes.jpg\) is not a readable image"):
        processor(str(not_image))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(_png_bytes(skimage_data.coffee())[:5000])
    with pytest.raises(ValueError, match=r"image 1 \(.*truncated.png\) is not a readable image"):
        processor([_write_png(tmp_path / "ok.png"), str(truncated)])
    with pytest.raises(ValueError, match=r"does not exist"):
        processor(str(tmp_path / "missing.png"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match="decompression-bomb limit"):
        processor(_write_png(tmp_path / "big.png"))
    with pytest.raises(ValueError, match="decompression-bomb limit"):
        processor(Image.new("RGB", (100, 100)))


def _write_png(path):
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(path)
    return str(path)


# ---------------------------------------------------------------- per-call settings (transformers' contract)


def _photo_and_mask():
    image = skimage_data.coffee()[::8, ::8]  # 50 x 75, non-square
    return image, rectangle_mask(image.shape[:2], 10, 20, 20, 30)


@pytest.mark.parametrize(
    "override, check",
    [
        ({"size": {"height": 40, "width": 24}}, lambda out, ref: out["roi_pixel_values"].shape[-2:] == (40, 24)),
        (
            {"do_normalize": False},
            lambda out, ref: 0 <= out["context_pixel_values"].min() <= out["context_pixel_values"].max() <= 1,
        ),
        ({"image_mean": [0.0] * 3, "image_std": [1.0] * 3}, lambda out, ref: out["context_pixel_values"].max() <= 1),
        (
            {"roi_image_mean": [0.2] * 3},
            lambda out, ref: (
                torch.equal(out["context_pixel_values"], ref["context_pixel_values"])
                and not torch.equal(out["roi_pixel_values"], ref["roi_pixel_values"])
            ),
        ),
        (
            {"context_mode": "full"},
            lambda out, ref: not torch.equal(out["context_pixel_values"], ref["context_pixel_values"]),
        ),
        ({"fill_value": -3.0}, lambda out, ref: (out["roi_pixel_values"] == -3.0).any()),
        (
            {"resize_mode": "resize"},
            lambda out, ref: not torch.equal(out["roi_pixel_values"], ref["roi_pixel_values"]),
        ),
        ({"pad_value": 0}, lambda out, ref: not torch.equal(out["context_pixel_values"], ref["context_pixel_values"])),
    ],
)
def test_every_setting_can_be_overridden_per_call_without_changing_the_processor(override, check):
    processor = RveRNetImageProcessor(size={"height": 32, "width": 32})
    saved = processor.to_json_string()
    image, mask = _photo_and_mask()
    reference = processor(image, roi_masks=mask)
    out = processor(image, roi_masks=mask, **override)
    assert check(out, reference), override
    assert processor.to_json_string() == saved  # the saved settings are untouched
    torch.testing.assert_close(processor(image, roi_masks=mask)["roi_pixel_values"], reference["roi_pixel_values"])


def test_per_call_settings_equal_a_processor_built_with_them():
    image, mask = _photo_and_mask()
    settings = {"size": {"height": 24, "width": 36}, "context_mode": "full", "context_image_std": [0.5, 0.4, 0.3]}
    per_call = RveRNetImageProcessor()(image, roi_masks=mask, **settings)
    built = RveRNetImageProcessor(**settings)(image, roi_masks=mask)
    for key in ("roi_pixel_values", "context_pixel_values"):
        torch.testing.assert_close(per_call[key], built[key], atol=0, rtol=0)


@pytest.mark.parametrize(
    "override, as_constructor_argument, message",
    [
        ({"size": {"shortest_edge": 30}}, None, "size"),
        ({"resize_mode": "crop"}, None, "resize_mode"),
        ({"image_std": [0.0, 1.0, 1.0]}, {"context_image_std": [0.0, 1.0, 1.0]}, "must not contain 0"),
        ({"roi_image_mean": [0.5]}, None, "roi_image_mean"),
        ({"do_normalize": "yes"}, None, "do_normalize"),
        ({"sam_batch_size": 0}, None, "sam_batch_size"),
    ],
)
def test_per_call_settings_are_validated_like_the_constructor(override, as_constructor_argument, message):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    image, mask = _photo_and_mask()
    with pytest.raises(ValueError, match=message):
        processor(image, roi_masks=mask, **override)
    with pytest.raises(ValueError, match=message):
        RveRNetImageProcessor(**(as_constructor_argument or override))


def test_unknown_arguments_are_refused_with_the_accepted_ones():
    image, mask = _photo_and_mask()
    with pytest.raises(TypeError, match=r"Unexpected arguments.*\['sizes'\].*do_normalize"):
        RveRNetImageProcessor()(image, roi_masks=mask, sizes=3)


def test_input_data_format_and_channel_layouts():
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    image, mask = _photo_and_mask()
    reference = processor(image, roi_masks=mask)["roi_pixel_values"]
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    for array, data_format in (
        (image, "channels_last"),
        (chw, "channels_first"),
        (torch.from_numpy(chw), "channels_first"),
        (chw, None),
        (image, None),
    ):
        out = processor(array, roi_masks=mask, input_data_format=data_format)["roi_pixel_values"]
        torch.testing.assert_close(out, reference, atol=0, rtol=0)
    from transformers.image_utils import ChannelDimension

    out = processor(chw, roi_masks=mask, input_data_format=ChannelDimension.FIRST)["roi_pixel_values"]
    torch.testing.assert_close(out, reference, atol=0, rtol=0)
    # a 3x3 image in CHW is ambiguous by shape; the explicit format decides
    tiny = np.arange(27, dtype=np.uint8).reshape(3, 3, 3)
    first = load_image(tiny, input_data_format="channels_first")
    last = load_image(tiny, input_data_format="channels_last")
    assert np.array_equal(first, tiny.transpose(1, 2, 0)) and np.array_equal(last, tiny)
    with pytest.raises(ValueError, match="input_data_format"):
        processor(image, roi_masks=mask, input_data_format="hwc")


def test_do_convert_rgb():
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    grey = Image.fromarray(skimage_data.camera()[::8, ::8])
    mask = rectangle_mask((grey.height, grey.width), 5, 5, 20, 20)
    converted = processor(grey, roi_masks=mask)
    assert converted["roi_pixel_values"].shape[1] == 3
    with pytest.raises(ValueError, match=r"image 0 has PIL mode 'L'.*do_convert_rgb"):
        processor(grey, roi_masks=mask, do_convert_rgb=False)
    with pytest.raises(ValueError, match="not a 3-channel RGB array"):
        processor(np.asarray(grey), roi_masks=mask, do_convert_rgb=False)
    rgb = grey.convert("RGB")
    torch.testing.assert_close(
        processor(rgb, roi_masks=mask, do_convert_rgb=False)["roi_pixel_values"], converted["roi_pixel_values"]
    )


def test_device_argument_places_outputs_and_sam(monkeypatch):
    from rvernet_hf import image_processing_rvernet

    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    image, mask = _photo_and_mask()
    out = processor(image, roi_masks=mask, device="cpu")
    assert {v.device.type for v in out.values()} == {"cpu"}
    seen = []
    processor_with_spy = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model_name_or_path="/no/sam")

    def spy(name_or_path, revision, device, dtype):
        seen.append((name_or_path, device))
        raise OSError("stop before loading")

    monkeypatch.setattr(image_processing_rvernet, "load_segmenter", spy)
    with pytest.raises(OSError, match="stop before loading"):
        processor_with_spy(image, device="cpu")  # no prompt: needs SAM
    assert seen == [("/no/sam", "cpu")] and processor_with_spy.sam_device is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_cuda_outputs():
    image, mask = _photo_and_mask()
    out = RveRNetImageProcessor(size={"height": 16, "width": 16})(image, roi_masks=mask, device="cuda")
    assert out["roi_pixel_values"].device.type == "cuda"


def test_per_call_sam_model_is_not_kept(sam):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model_name_or_path="/no/sam")
    image = skimage_data.coffee()[::8, ::8]
    processor(image, input_boxes=[5, 5, 40, 30], sam_model=sam)
    assert processor._sam is None


# ---------------------------------------------------------------- prompt nesting as SamProcessor writes it


def test_sam_batch_nesting_for_one_image_and_a_batch(sam):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam)
    image = skimage_data.coffee()[::8, ::8]
    per_image = processor(image, input_points=[[[10, 10]], [[40, 30]]], return_roi_masks=True)
    sam_style = processor(
        image, input_points=[[[[10, 10]], [[40, 30]]]], input_labels=[[[1], [1]]], return_roi_masks=True
    )
    assert len(sam_style["roi_masks"]) == 2
    for a, b in zip(per_image["roi_masks"], sam_style["roi_masks"]):
        assert np.array_equal(a, b)
    boxes = [[5, 5, 40, 30], [30, 10, 70, 45]]
    assert np.array_equal(
        np.stack(processor(image, input_boxes=[boxes], return_roi_masks=True)["roi_masks"]),
        np.stack(processor(image, input_boxes=boxes, return_roi_masks=True)["roi_masks"]),
    )
    tensor_points = torch.tensor([[[[10.0, 10.0]], [[40.0, 30.0]]]])  # (image, object, point, xy)
    assert processor(image, input_points=tensor_points)["roi_pixel_values"].shape[0] == 2
    batch = processor([image, image], input_points=[[[[10, 10]]], [[[40, 30]], [[5, 5]]]])
    assert batch["roi_image_index"].tolist() == [0, 1, 1]


@pytest.mark.parametrize(
    "prompts, message",
    [
        ({"input_points": [[[[10, 10]]], [[[20, 20]]]]}, r"batch nesting for 2 images, but one image"),
        ({"input_boxes": [[[5, 5, 40, 30]], [[5, 5, 40, 30]]]}, r"batch nesting for 2 images, but one image"),
        ({"input_points": [[[[[10, 10]]]]]}, r"nesting depth 5; accepted: \[x, y\]"),
        ({"input_points": 10}, r"nesting depth 0; accepted"),
        ({"input_boxes": [[[[5, 5, 40, 30]]]]}, r"nesting depth 4; accepted: \[x0, y0, x1, y1\]"),
    ],
)
def test_ambiguous_prompt_nesting_shows_the_accepted_forms(prompts, message, sam):
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam)
    encoder_calls = count_calls(sam.vision_encoder)
    with pytest.raises(ValueError, match=message):
        processor(skimage_data.coffee()[::8, ::8], **prompts)
    assert encoder_calls == []  # refused before SAM ran


@pytest.mark.parametrize("style", ["dim", "blur"])
def test_cutout_styles_keep_a_hint_of_the_hidden_part(style):
    """Issue 23: `cutout_style` "dim" / "blur" show the hidden part darkened / blurred instead of a constant; the
    shown part is the same as with "fill"."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = rectangle_mask((32, 32), 8, 8, 16, 16)
    settings = {"size": {"height": 32, "width": 32}, "resize_mode": "resize", "do_normalize": False}
    fill = RveRNetImageProcessor(**settings, fill_value=-1.0)(image, roi_masks=mask)
    styled = RveRNetImageProcessor(**settings, cutout_style=style)(image, roi_masks=mask)
    inside = torch.from_numpy(mask)
    for name, shown in (("roi_pixel_values", inside), ("context_pixel_values", ~inside)):
        torch.testing.assert_close(styled[name][0][:, shown], fill[name][0][:, shown])
        assert (fill[name][0][:, ~shown] == -1).all()  # "fill": a constant there
    hidden_roi = styled["roi_pixel_values"][0][:, ~inside]
    original = torch.from_numpy(image).permute(2, 0, 1).float()[:, ~inside] / 255
    if style == "dim":
        torch.testing.assert_close(hidden_roi, original * 0.25)
    else:  # blurred: the same mean brightness, far less of the pixel noise
        assert abs(float(hidden_roi.mean() - original.mean())) < 0.05
        assert float(hidden_roi.std()) < 0.5 * float(original.std())
    with pytest.raises(ValueError, match="`cutout_style` must be one of"):
        RveRNetImageProcessor(cutout_style="smudge")


# ------------------------------------------- transformers' ImageProcessingTestMixin contracts (5.25), in our own words


def test_processor_contracts_of_transformers_image_processors(tmp_path, caplog):
    """Built with no argument; `valid_kwargs` is this module's Kwargs class; instances share no mutable default
    (size, means); outputs cast with `BatchFeature.to(dtype)` (floats only, the index stays an integer); a
    misspelt setting is warned about, naming it, not silently kept."""
    from rvernet_hf import image_processing_rvernet

    assert RveRNetImageProcessor.valid_kwargs is image_processing_rvernet.RveRNetImageProcessorKwargs
    first, second = RveRNetImageProcessor(), RveRNetImageProcessor()
    first.size["height"] = -1
    first.roi_image_mean[0] = -1.0
    assert second.size == {"height": 224, "width": 224} and second.roi_image_mean[0] == pytest.approx(0.485)
    assert RveRNetImageProcessor().size == {"height": 224, "width": 224}

    image = np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8)
    mask = np.zeros((20, 24), bool)
    mask[5:15, 5:15] = True
    batch = RveRNetImageProcessor(size={"height": 16, "width": 16})(image, roi_masks=mask, return_tensors="pt")
    half = batch.to(torch.float16)
    assert half["roi_pixel_values"].dtype == half["context_pixel_values"].dtype == torch.float16
    assert half["roi_image_index"].dtype == torch.int64
    assert batch.to("cpu", torch.bfloat16)["roi_pixel_values"].dtype == torch.bfloat16

    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            RveRNetImageProcessor(fil_value=3.0)
            quiet_before = caplog.text.count("are not settings")
            RveRNetImageProcessor().save_pretrained(tmp_path)
            AutoImageProcessor.from_pretrained(tmp_path)  # its own saved config: no warning
    finally:
        hf_logging.disable_propagation()
    assert "['fil_value'] are not settings of this processor" in caplog.text
    assert caplog.text.count("are not settings") == quiet_before == 1


def test_a_batch_of_mixed_formats_and_channel_counts_is_converted_to_rgb():
    """PIL, channels-last and channels-first arrays and tensors, grey, RGB and RGBA, in one call: each becomes the
    RGB the same photo would give as PIL."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
    grey = rng.integers(0, 255, (20, 24), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((20, 24), 255, np.uint8)])
    mask = np.zeros((20, 24), bool)
    mask[4:12, 6:18] = True
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    images = [Image.fromarray(rgb), rgb, torch.from_numpy(rgb).permute(2, 0, 1), grey, rgba]
    mixed = processor(images, roi_masks=[mask] * 5, return_tensors="pt")["roi_pixel_values"]
    reference = [
        Image.fromarray(rgb),
        Image.fromarray(rgb),
        Image.fromarray(rgb),
        Image.fromarray(grey).convert("RGB"),
    ]
    expected = processor([*reference, Image.fromarray(rgb)], roi_masks=[mask] * 5, return_tensors="pt")
    torch.testing.assert_close(mixed, expected["roi_pixel_values"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("resize_mode", ["letterbox", "resize"])
@pytest.mark.parametrize("size", [(224, 224), (96, 160), (640, 640)])
def test_resizing_in_uint8_is_within_one_grey_level_of_float(resize_mode, size):
    """Issue 25: a uint8 photo is resized in uint8 (down and up), then converted: within one grey level of resizing
    the float photo, less than a third of one on average; the mask at the output size is the same."""
    from rvernet_hf.image_processing_rvernet import resize_to_canvas

    for photo in (skimage_data.coffee(), skimage_data.astronaut(), skimage_data.chelsea()):
        pixels = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)
        mask = torch.zeros(photo.shape[:2], dtype=torch.bool)
        mask[50:230, 80:300] = True
        target = {"height": size[0], "width": size[1]}
        fast, fast_mask = resize_to_canvas(pixels, mask, target, resize_mode, 125)
        exact, exact_mask = resize_to_canvas(pixels.float(), mask, target, resize_mode, 125)
        assert fast.dtype == torch.uint8 and fast.shape == exact.shape
        difference = (fast.float() - exact).abs()
        assert difference.max() <= 1.01 and difference.mean() < 0.34  # 1 %: the uint8 kernel's fixed point
        assert torch.equal(fast_mask, exact_mask)


def test_a_photo_already_at_the_output_size_is_not_resampled():
    """The identity geometry (the demo's 64-px photos into 64-px towers) skips both resizes: the canvas is the photo
    itself and the mask is the given one, exactly; a letterboxed one still pads where it must."""
    from rvernet_hf.image_processing_rvernet import resize_to_canvas

    photo = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 40, 30), dtype=np.uint8))
    mask = torch.zeros((40, 30), dtype=torch.bool)
    mask[3:9, 4:21] = True
    for resize_mode in ("letterbox", "resize"):
        canvas, canvas_mask = resize_to_canvas(photo, mask, {"height": 40, "width": 30}, resize_mode)
        assert torch.equal(canvas, photo) and torch.equal(canvas_mask, mask)
    padded, padded_mask = resize_to_canvas(photo, mask, {"height": 40, "width": 40}, "letterbox", pad_value=7)
    assert torch.equal(padded[:, :, 5:35], photo) and (padded[:, :, :5] == 7).all()
    assert torch.equal(padded_mask[:, 5:35], mask) and not padded_mask[:, :5].any()


@pytest.mark.parametrize("cutout_style", ["fill", "blur", "dim"])
def test_batched_cutouts_equal_the_per_sample_ones(cutout_style):
    """The processor normalises and fills the stacked batch at once: the values of `make_cutouts` per sample."""
    rng = np.random.default_rng(0)
    processor = RveRNetImageProcessor(size={"height": 24, "width": 32}, cutout_style=cutout_style)
    photos = [rng.integers(0, 255, shape, dtype=np.uint8) for shape in ((30, 40, 3), (50, 20, 3))]
    masks = []
    for photo in photos:
        first, second = np.zeros(photo.shape[:2], bool), np.zeros(photo.shape[:2], bool)
        first[3:12, 4:15], second[10:25, 2:9] = True, True
        masks.append([first, second])
    batch = processor.cutouts(photos, masks)
    singles = [
        processor.make_cutouts(photo, mask) for photo, photo_masks in zip(photos, masks) for mask in photo_masks
    ]
    assert torch.equal(batch["roi_pixel_values"], torch.stack([roi for roi, _, _ in singles]))
    assert torch.equal(batch["context_pixel_values"], torch.stack([context for _, context, _ in singles]))
    assert batch["roi_image_index"].tolist() == [0, 0, 1, 1]
