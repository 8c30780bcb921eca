"""Training data: builders on tiny local datasets, SAM mask pre-computation (calls counted), paired augmentations."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from rvernet_hf import RveRNetImageProcessor
from rvernet_hf.data import (
    PairedTransform,
    RveRNetTransform,
    load_image_folder_dataset,
    load_paired_folder_dataset,
    precompute_roi_masks,
    segmentation_to_roi_dataset,
)
from test_image_processing_rvernet import count_calls, rectangle_mask, tiny_sam


datasets = pytest.importorskip("datasets")


def _image(seed, size=(40, 48)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.fixture
def image_folder(tmp_path):
    """2 classes x 3 images; masks for all but one image; a box prompt for one image in metadata.jsonl."""
    root, masks = tmp_path / "images", tmp_path / "masks"
    for c, name in enumerate(["chili paste", "ketchup"]):
        (root / name).mkdir(parents=True)
        (masks / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(_image(10 * c + i)).save(root / name / f"img{i}.png")
            if (c, i) != (1, 2):
                Image.fromarray(rectangle_mask((40, 48), 5 + i, 6, 10, 12)).save(masks / name / f"img{i}.png")
    (root / "metadata.jsonl").write_text(json.dumps({"file_name": "ketchup/img2.png", "roi_box": [4, 4, 30, 30]}))
    return root, masks


def test_image_folder_builder(image_folder):
    root, masks = image_folder
    dataset = load_image_folder_dataset(root, masks_dir=masks)
    assert len(dataset) == 6
    assert dataset.features["label"].names == ["chili paste", "ketchup"]
    assert [row is None for row in dataset["roi_mask"]].count(True) == 1
    assert dataset[5]["roi_box"] == [4, 4, 30, 30]
    np.testing.assert_array_equal(np.asarray(dataset[1]["roi_mask"]) > 0, rectangle_mask((40, 48), 6, 6, 10, 12))
    with pytest.raises(ValueError, match="no mask for image .*img2.png"):
        load_image_folder_dataset(root, masks_dir=masks, require_masks=True)


def test_segmentation_builder_one_sample_per_class_present():
    label_maps = [np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8)]
    label_maps[0][:10, :10] = 3  # 25 %
    label_maps[0][15:, 15:] = 5  # 6.25 %
    label_maps[0][0, 19] = 7  # a single pixel: below min_area
    label_maps[1][5:15, 5:15] = 5
    source = datasets.Dataset.from_dict(
        {
            "image": [Image.fromarray(_image(i, (20, 20))) for i in range(2)],
            "label": [Image.fromarray(m) for m in label_maps],
        },
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Image()}),
    )
    id2label = {0: "background", 3: "rice", 5: "ketchup", 7: "chili paste"}
    rois = segmentation_to_roi_dataset(source, id2label, min_area=0.01)
    assert rois.features["label"].names == ["rice", "ketchup", "chili paste"]
    assert len(rois) == 3 and rois["source_index"] == [0, 0, 1]
    assert [rois.features["label"].int2str(i) for i in rois["label"]] == ["rice", "ketchup", "ketchup"]
    np.testing.assert_array_equal(np.asarray(rois[1]["roi_mask"]) > 0, label_maps[0] == 5)


def test_paired_layout_builder(tmp_path):
    for side in ("roi", "extra-roi"):
        for name in ("ketchup", "chili"):
            (tmp_path / "train" / side / name).mkdir(parents=True)
            Image.fromarray(_image(1)).save(tmp_path / "train" / side / name / "a.jpg")
    Image.fromarray(_image(2)).save(tmp_path / "train" / "roi" / "chili" / "lonely.jpg")
    with pytest.raises(ValueError, match="lonely.jpg has no context partner"):
        load_paired_folder_dataset(tmp_path, "train")
    dataset = load_paired_folder_dataset(tmp_path, "train", on_missing="skip")
    assert len(dataset) == 2 and dataset.features["label"].names == ["chili", "ketchup"]
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    batch = PairedTransform(processor, train=True).__call__(dataset[:2])
    assert batch["roi_pixel_values"].shape == (2, 3, 16, 16) and batch["labels"].tolist() == [0, 1]


def test_precompute_masks_once_then_zero_sam_calls(image_folder, tmp_path):
    root, _ = image_folder
    dataset = load_image_folder_dataset(root)  # no masks: SAM makes all six (one from a box, five automatic)
    sam = tiny_sam()
    processor = RveRNetImageProcessor(
        size={"height": 16, "width": 16}, sam_model=sam, auto_roi_min_area=0.0, auto_roi_max_area=1.0
    )
    encoder_calls = count_calls(sam.vision_encoder)
    masked, report = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", batch_size=4, shard_size=4)
    assert sum(encoder_calls) == 6 and report.shards_computed == 2 and not report.skipped
    assert all(m is not None for m in masked["roi_mask"])
    encoder_calls.clear()
    again, report = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", batch_size=4, shard_size=4)
    assert encoder_calls == [] and report.shards_reused == 2
    assert [np.asarray(m).tolist() for m in again["roi_mask"]] == [np.asarray(m).tolist() for m in masked["roi_mask"]]
    # Training epochs read the stored masks: still no SAM.
    transform = RveRNetTransform(processor, train=True)
    for _ in range(2):
        transform(again[:6])
    assert encoder_calls == []


def test_precompute_masks_resumes_after_interruption(image_folder, tmp_path, monkeypatch):
    root, masks = image_folder
    dataset = load_image_folder_dataset(root)
    sam = tiny_sam()
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam)
    original = processor.compute_roi_masks
    done = []

    def interrupted(*args, **kwargs):
        if done:
            raise KeyboardInterrupt  # the run is killed while working on the second shard
        done.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(processor, "compute_roi_masks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", batch_size=3, shard_size=3)
    monkeypatch.setattr(processor, "compute_roi_masks", original)
    encoder_calls = count_calls(sam.vision_encoder)
    _, report = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", batch_size=3, shard_size=3)
    assert report.shards_reused == 1 and report.shards_computed == 1
    assert sum(encoder_calls) == 3  # only the unfinished shard ran SAM again


def test_precompute_masks_skip_or_raise_on_bad_samples(image_folder, tmp_path):
    root, masks = image_folder
    broken = root / "ketchup" / "img1.png"
    broken.write_bytes(broken.read_bytes()[:60])  # truncated file
    dataset = load_image_folder_dataset(root, masks_dir=masks)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=tiny_sam())
    with pytest.raises(ValueError, match="img1.png"):
        precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "raise", on_error="raise")
    kept, report = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "skip", on_error="skip")
    assert len(kept) == 5 and len(report.skipped) == 1
    assert (
        report.skipped[0]["name"].endswith("ketchup/img1.png") and "not a readable image" in report.skipped[0]["error"]
    )


def test_a_skip_decision_does_not_outlive_its_run(image_folder, tmp_path):
    """The cache records what each sample was found to be; a later run decides from its own `on_error` (issue 24.1:
    a run without the skip flag used to drop the sample that an earlier skipping run had cached)."""
    root, masks = image_folder
    broken = root / "ketchup" / "img1.png"
    broken.write_bytes(broken.read_bytes()[:60])
    dataset = load_image_folder_dataset(root, masks_dir=masks)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=tiny_sam())
    kept, _ = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", on_error="skip")
    assert len(kept) == 5
    with pytest.raises(ValueError, match=r"sample \d+ \(.*img1.png\): .*not a readable image"):
        precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", on_error="raise")
    again, report = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", on_error="skip")
    assert len(again) == 5 and report.shards_reused == report.shards_computed + report.shards_reused


def test_augmentations_are_shared_by_both_cut_outs():
    processor = RveRNetImageProcessor(
        size={"height": 24, "width": 24}, do_normalize=False, fill_value=-1.0, resize_mode="resize"
    )
    image = _image(3, (60, 80))
    mask = rectangle_mask((60, 80), 10, 5, 30, 20)  # off-centre, so a flip moves it
    batch = {"image": [image] * 8, "roi_mask": [mask] * 8, "label": [0] * 8}
    torch.manual_seed(0)
    out = RveRNetTransform(processor, train=True, flip_prob=0.5, crop_scale=(0.4, 0.9))(batch)
    roi_hidden = (out["roi_pixel_values"] == -1).all(dim=1)
    context_hidden = (out["context_pixel_values"] == -1).all(dim=1)
    assert (roi_hidden ^ context_hidden).all()  # every pixel is in exactly one cut-out: same crop, same flip
    assert len({tuple(h.flatten().tolist()) for h in roi_hidden}) > 1  # the draws differ between samples
    flipped = RveRNetTransform(processor, train=True, flip_prob=1.0, crop_scale=(1.0, 1.0))(batch)
    reference = processor(image[:, ::-1].copy(), roi_masks=mask[:, ::-1].copy())
    torch.testing.assert_close(flipped["roi_pixel_values"][0], reference["roi_pixel_values"][0])
    torch.testing.assert_close(flipped["context_pixel_values"][0], reference["context_pixel_values"][0])
    plain = RveRNetTransform(processor, train=False)(batch)
    torch.testing.assert_close(plain["roi_pixel_values"][0], processor(image, roi_masks=mask)["roi_pixel_values"][0])


@pytest.mark.parametrize("cutout_style", ["fill", "blur"])
def test_training_batch_equals_each_sample_cut_alone(cutout_style):
    """Issue 25: the training transform resizes each augmented sample alone and normalises, fills and picks the
    token grid once for the batch: every value equals `make_cutouts` + `token_masks` of that sample alone (photos
    of different sizes, seeded crops and flips, a token threshold and ring)."""
    processor = RveRNetImageProcessor(
        size={"height": 32, "width": 32}, patch_size=8, token_keep_threshold=0.3, token_margin=1,
        cutout_style=cutout_style,
    )  # fmt: skip
    shapes = [(60, 80), (45, 45), (70, 30), (50, 64)]
    images = [_image(seed, shape) for seed, shape in enumerate(shapes)]
    masks = [rectangle_mask(shape, 5 + i, 4, 20, 18) for i, shape in enumerate(shapes)]
    batch = {"image": images, "roi_mask": masks, "label": [0, 1, 0, 1], "sample_index": [7, 3, 11, 5]}
    transform = RveRNetTransform(processor, train=True, seed=4, crop_scale=(0.5, 1.0))
    transform.epoch = 2
    out = transform(batch)
    for position in range(4):
        generator = transform.generator_for(batch, position)
        image, mask = transform.augment(images[position], masks[position].astype(bool), generator)
        roi, context, canvas_mask = processor.make_cutouts(image, mask)
        assert torch.equal(out["roi_pixel_values"][position], roi), position
        assert torch.equal(out["context_pixel_values"][position], context), position
        for name, keep in processor.token_masks(canvas_mask).items():
            assert torch.equal(out[name][position], keep), (position, name)
    assert out["labels"].tolist() == [0, 1, 0, 1] and "roi_image_index" not in out


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_persistent_dataloader_workers_draw_each_epochs_augmentations(context):
    """A persistent dataloader worker keeps the copy of the transform it started with: the epoch that the training
    callback sets in the main process must still reach it, or every epoch would repeat epoch 0's crops and flips."""
    from torch.utils.data import DataLoader

    from rvernet_hf.data import add_sample_index

    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    images = [_image(seed, (30, 40)) for seed in range(4)]
    rows = {"image": images, "roi_mask": [rectangle_mask((30, 40), 5, 6, 15, 20)] * 4, "label": [0, 1, 0, 1]}
    features = datasets.Features(
        {"image": datasets.Image(), "roi_mask": datasets.Image(), "label": datasets.Value("int64")}
    )
    dataset = add_sample_index(datasets.Dataset.from_dict(rows, features=features))
    transform = RveRNetTransform(processor, train=True, seed=0, crop_scale=(0.3, 0.9))
    expected = []
    for epoch in range(3):  # what the same transform draws in this process
        transform.epoch = epoch
        expected.append(transform(dataset[:])["roi_pixel_values"])
    transform.epoch = 0
    loader = DataLoader(
        dataset.with_transform(transform), batch_size=4, num_workers=1, persistent_workers=True,
        multiprocessing_context=context, collate_fn=list,
    )  # fmt: skip
    for epoch in range(3):
        transform.epoch = epoch  # as `augmentation_epoch_callback` does at each epoch's start
        drawn = torch.stack([sample["roi_pixel_values"] for sample in next(iter(loader))])
        assert torch.equal(drawn, expected[epoch]), f"epoch {epoch}"
    assert not torch.equal(expected[0], expected[1])


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_mask_augmentation_counts_add_up_across_dataloader_workers(context):
    """Issue 35.3's counters live in shared memory: two workers of either start method add to the counts the main
    process reads (a lock made in the fork context could not reach spawned workers: every spawn run failed)."""
    from torch.utils.data import DataLoader

    from rvernet_hf.data import add_sample_index

    processor = RveRNetImageProcessor(size={"height": 16, "width": 16})
    rows = {
        "image": [_image(seed, (30, 40)) for seed in range(6)],
        "roi_mask": [rectangle_mask((30, 40), 5, 6, 15, 20)] * 6,
        "label": [0, 1] * 3,
    }
    features = datasets.Features(
        {"image": datasets.Image(), "roi_mask": datasets.Image(), "label": datasets.Value("int64")}
    )
    dataset = add_sample_index(datasets.Dataset.from_dict(rows, features=features))
    transform = RveRNetTransform(processor, train=True, seed=0, mask_augmentation=1.0, mask_perturbations="dilate:0.2")
    loader = DataLoader(
        dataset.with_transform(transform), batch_size=2, num_workers=2, multiprocessing_context=context,
        collate_fn=list,
    )  # fmt: skip
    assert sum(len(batch) for batch in loader) == 6
    assert transform.mask_augmentation_counts == (6, 0)  # every sample drew one, and a dilation always applies


def test_mask_augmentation_perturbs_the_mask_before_both_cut_outs():
    """Issue 23: `mask_augmentation=P` perturbs a training sample's mask with probability P, per (seed, epoch,
    sample); both cut-outs come from the perturbed mask, so they stay complementary; 0 draws nothing."""
    processor = RveRNetImageProcessor(
        size={"height": 24, "width": 24}, do_normalize=False, fill_value=-1.0, resize_mode="resize"
    )
    image = _image(3, (60, 80))
    lshape = rectangle_mask((60, 80), 10, 5, 30, 20)
    lshape[10:25, 5:15] = False  # its bounding box differs from it
    batch = {"image": [image] * 8, "roi_mask": [lshape] * 8, "label": [0] * 8, "sample_index": list(range(8))}
    fixed = {"flip_prob": 0.0, "crop_scale": (1.0, 1.0), "seed": 0}
    boxed = RveRNetTransform(processor, train=True, mask_augmentation=1.0, mask_perturbations="box", **fixed)(batch)
    box = rectangle_mask((60, 80), 10, 5, 30, 20)
    reference = processor(image, roi_masks=box)
    torch.testing.assert_close(boxed["roi_pixel_values"][0], reference["roi_pixel_values"][0])
    torch.testing.assert_close(boxed["context_pixel_values"][0], reference["context_pixel_values"][0])
    off = RveRNetTransform(processor, train=True, mask_augmentation=0.0, mask_perturbations="box", **fixed)(batch)
    torch.testing.assert_close(off["roi_pixel_values"][0], processor(image, roi_masks=lshape)["roi_pixel_values"][0])
    # drawn per (seed, epoch, sample): the same again, other draws in another epoch; cut-outs stay complementary
    mixed = RveRNetTransform(
        processor, train=True, mask_augmentation=0.5, flip_prob=0.0, crop_scale=(1.0, 1.0), seed=1
    )
    first, again = mixed(batch), mixed(batch)
    torch.testing.assert_close(first["roi_pixel_values"], again["roi_pixel_values"])
    changed = [not torch.equal(first["roi_pixel_values"][i], off["roi_pixel_values"][i]) for i in range(8)]
    assert 0 < sum(changed) < 8  # some samples perturbed, some not
    mixed.epoch = 1
    assert not torch.equal(mixed(batch)["roi_pixel_values"], first["roi_pixel_values"])
    roi_hidden = (first["roi_pixel_values"] == -1).all(dim=1)
    context_hidden = (first["context_pixel_values"] == -1).all(dim=1)
    assert (roi_hidden ^ context_hidden).all()
    with pytest.raises(ValueError, match=r"`mask_augmentation` must be a probability in \[0, 1\]"):
        RveRNetTransform(processor, train=True, mask_augmentation=2.0)


def test_visualization_png(tmp_path):
    from rvernet_hf.visualization import save_roi_visualization

    processor = RveRNetImageProcessor(size={"height": 32, "width": 32})
    image = _image(4, (60, 90))
    path = save_roi_visualization(image, rectangle_mask((60, 90), 10, 10, 30, 40), processor, tmp_path / "viz.png")
    with Image.open(path) as picture:
        array = np.asarray(picture.convert("RGB"))
    assert picture.height == 224 + 16 and picture.width > 3 * 224
    assert ((array == (255, 0, 0)).all(-1)).sum() > 50  # the red ROI outline is drawn


def test_masks_cli(image_folder, tmp_path):
    from rvernet_hf.cli import main

    root, masks = image_folder
    (root / "metadata.jsonl").unlink()  # no box prompt: the one image without a mask gets the central box
    processor_dir = tmp_path / "processor"
    RveRNetImageProcessor(auto_roi="center").save_pretrained(processor_dir)  # no SAM needed for this folder
    assert (
        main(
            [
                "masks",
                "--data_dir",
                str(root),
                "--masks_dir",
                str(masks),
                "--output_dir",
                str(tmp_path / "out"),
                "--processor",
                str(processor_dir),
                "--cache_dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    saved = datasets.load_from_disk(str(tmp_path / "out"))
    assert len(saved) == 6 and all(m is not None for m in saved["roi_mask"])


def test_masks_cli_refuses_to_replace_a_finished_dataset(image_folder, tmp_path, capsys):
    from conftest import cli_error

    root, _ = image_folder
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dataset_info.json").write_text("{}")
    arguments = ["masks", "--data_dir", str(root), "--output_dir", str(tmp_path / "out")]
    assert "exists and is not empty" in cli_error(capsys, arguments)
    assert (tmp_path / "out" / "dataset_info.json").read_text() == "{}"


@pytest.mark.slow
def test_masks_on_two_processes_split_the_shards_and_equal_one_process(tmp_path):
    """torchrun, 2 CPU processes (gloo): each computes its own shards (none twice), rank 0 writes the dataset, and
    the masks are byte-identical to a 1-process run; a lost shard is recomputed by a later run of another size."""
    import os
    import subprocess

    from rvernet_hf.testing_utils import python_command

    root = tmp_path / "images"
    for c, name in enumerate(["chili paste", "ketchup"]):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(_image(10 * c + i)).save(root / name / f"img{i}.png")
    tiny_sam().save_pretrained(tmp_path / "sam")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def masks(output, cache, processes):
        command = python_command(
            "rvernet_hf.cli",
            "masks",
            "--data_dir",
            str(root),
            "--output_dir",
            str(output),
            "--sam_model_name_or_path",
            str(tmp_path / "sam"),
            "--shard_size",
            "2",
            "--batch_size",
            "2",
            "--cache_dir",
            str(cache),
            processes=processes,
        )
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    two = masks(tmp_path / "two", tmp_path / "cache-two", 2)
    one = masks(tmp_path / "one", tmp_path / "cache-one", 1)
    assert "process 0 of 2: shards computed: 3" in two and "process 1 of 2: shards computed: 2" in two
    assert "shards computed: 5, reused from cache: 0" in one
    masks_of = [
        datasets.load_from_disk(str(tmp_path / name)).cast_column("roi_mask", datasets.Image(decode=False))
        for name in ("two", "one")
    ]
    assert [m["bytes"] for m in masks_of[0]["roi_mask"]] == [m["bytes"] for m in masks_of[1]["roi_mask"]]
    # a lost shard of the 2-process cache: a 1-process run recomputes it alone
    sorted((tmp_path / "cache-two").glob("masks-*.arrow"))[3].unlink()
    again = masks(tmp_path / "again", tmp_path / "cache-two", 1)
    assert "shards computed: 1, reused from cache: 4" in again


def test_precompute_decodes_each_image_once(image_folder, tmp_path, monkeypatch):
    """The up-front check and SAM used to decode every image twice (three times with teacher logits)."""
    root, _ = image_folder
    dataset = load_image_folder_dataset(root)
    opened = _opened_images(monkeypatch)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=tiny_sam(), auto_roi="center")
    precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", batch_size=4, shard_size=4)
    images = [str(source) for source in opened if not isinstance(source, io.BytesIO)]
    assert len(opened) == 6 and len(set(images)) == len(images)  # six images, each opened once


def _opened_images(monkeypatch) -> list:
    """Every image file the package's image reader opens (masks and images given by path)."""
    import rvernet_hf.image_utils_rvernet as processing

    opened = []
    original = processing.Image.open
    monkeypatch.setattr(
        processing.Image, "open", lambda source, *a, **k: opened.append(source) or original(source, *a, **k)
    )
    return opened


def test_cached_teacher_logits_come_from_the_mask_pass_each_image_decoded_once(
    image_folder, tmp_path, monkeypatch, tiny_teacher_dir
):
    """Before, the teacher's pass decoded every photo again after the check and SAM had."""
    from rvernet_hf.distillation import compute_teacher_logits, load_teacher

    root, _ = image_folder
    dataset = load_image_folder_dataset(root)
    teacher = load_teacher(str(tiny_teacher_dir))
    expected = np.asarray(compute_teacher_logits(dataset, teacher, device="cpu")["teacher_logits"])
    opened = _opened_images(monkeypatch)
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=tiny_sam(), auto_roi="center")
    result, report = precompute_roi_masks(
        dataset, processor, cache_dir=tmp_path / "cache", batch_size=4, shard_size=4, teacher=teacher
    )
    assert len(opened) == 6 and len(set(map(str, opened))) == 6  # six photos, each opened once for all three uses
    np.testing.assert_allclose(np.asarray(result["teacher_logits"]), expected, rtol=1e-5, atol=1e-5)
    assert report.shards_computed == 2 and all(m is not None for m in result["roi_mask"])
    batch = RveRNetTransform(processor)(result[:6])  # passed on to the distillation loss
    np.testing.assert_allclose(batch["teacher_logits"].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_masks_cached_without_the_teacher_are_reused_when_it_comes(image_folder, tmp_path, tiny_teacher_dir):
    """A run that adds cached teacher logits must not run SAM again over masks already made."""
    from rvernet_hf.distillation import compute_teacher_logits, load_teacher

    root, _ = image_folder
    dataset = load_image_folder_dataset(root)
    sam = tiny_sam()
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=sam, auto_roi="center")
    masks_only, _ = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", shard_size=4)
    teacher = load_teacher(str(tiny_teacher_dir))
    encoder_calls = count_calls(sam.vision_encoder)
    both, report = precompute_roi_masks(
        dataset, processor, cache_dir=tmp_path / "cache", shard_size=4, teacher=teacher
    )
    assert encoder_calls == [] and report.shards_reused == 0 and report.shards_computed == 2
    assert [np.asarray(m).tolist() for m in both["roi_mask"]] == [
        np.asarray(m).tolist() for m in masks_only["roi_mask"]
    ]
    expected = np.asarray(compute_teacher_logits(dataset, teacher, device="cpu")["teacher_logits"])
    np.testing.assert_allclose(np.asarray(both["teacher_logits"]), expected, rtol=1e-5, atol=1e-5)
    _, report = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", shard_size=4, teacher=teacher)
    assert report.shards_reused == 2 and encoder_calls == []  # the teacher's shards are cached too


def test_given_masks_are_checked_once_and_stored_as_1_bit(image_folder, tmp_path):
    """The cache stores every mask in one checked form, so epochs never re-check an 8-bit mask's values."""
    root, masks = image_folder
    Image.fromarray(rectangle_mask((40, 48), 5, 6, 10, 12).astype(np.uint8) * 255).save(masks / "chili paste/img0.png")
    dataset = load_image_folder_dataset(root, masks_dir=masks)
    given = Image.open(dataset[0]["roi_mask"].filename)
    assert given.mode == "L"  # a user's 0/255 PNG
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=tiny_sam(), auto_roi="center")
    result, _ = precompute_roi_masks(dataset, processor, cache_dir=tmp_path / "cache", shard_size=4)
    stored = result[0]["roi_mask"]
    assert stored.mode == "1"
    np.testing.assert_array_equal(np.asarray(stored), np.asarray(given) > 0)


def test_a_photo_of_several_classes_is_decoded_once_for_all_its_samples(tmp_path, monkeypatch):
    """FoodSeg103 makes one sample per (photo, class): building them reads only each photo's size, and the mask
    pass decodes each photo once for all its samples (FoodSeg103 photos hold about 3.6 classes)."""
    import PIL.ImageFile

    photos = []
    for seed in range(2):
        photos.append(str(tmp_path / f"photo{seed}.png"))
        Image.fromarray(_image(seed)).save(photos[-1])
    label_map = np.zeros((40, 48), dtype=np.uint8)
    label_map[:, :16], label_map[:, 16:32] = 1, 2
    maps = [Image.fromarray(label_map), Image.fromarray(label_map)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Image()})
    segmentation = datasets.Dataset.from_dict({"image": photos, "label": maps}, features=features)
    decodes = []
    original = PIL.ImageFile.ImageFile.load
    monkeypatch.setattr(
        PIL.ImageFile.ImageFile,
        "load",
        lambda self: (
            (decodes.append(self.filename) if self.tile and self.filename in photos else None) or original(self)
        ),
    )
    samples = segmentation_to_roi_dataset(segmentation, {0: "background", 1: "rice", 2: "egg"}, min_area=0.0)
    assert len(samples) == 4 and decodes == []  # sizes read from the headers
    processor = RveRNetImageProcessor(size={"height": 16, "width": 16}, sam_model=tiny_sam())
    result, _ = precompute_roi_masks(samples, processor, cache_dir=tmp_path / "cache", batch_size=4)
    assert sorted(decodes) == photos  # four samples, two photos, two decodes
    assert result.features["image"].decode and np.asarray(result[0]["image"]).shape == (40, 48, 3)


def test_photo_size_from_the_header_follows_exif_orientation():
    """The label-map size check reads the header only; a photo stored rotated (EXIF 6) decodes transposed."""
    from rvernet_hf.data.sources import _image_size

    exif = Image.Exif()
    exif[Image.ExifTags.Base.Orientation] = 6
    buffer = io.BytesIO()
    Image.fromarray(_image(0, (30, 50))).save(buffer, "JPEG", exif=exif.tobytes())
    cell = {"bytes": buffer.getvalue(), "path": None}
    assert _image_size(cell, 0) == np.asarray(datasets.Image().decode_example(cell)).shape[:2] == (50, 30)
    with pytest.raises(ValueError, match="the image of sample 7 is not a readable image file"):
        _image_size({"bytes": b"not an image", "path": None}, 7)
