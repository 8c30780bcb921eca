"""The public food datasets as published, through `--dataset_name` and nothing else: tiny local replicas of each
schema (parquet files in a dataset-repository-shaped folder with its `id2label.json`), loaded by the same
`load_dataset` call as the Hub id, each trained one step through the command line."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import SYNTH_SIZE, tower_args
from rvernet_hf.testing_utils import write_dataset_repo
from rvernet_hf.training import DataArguments, load_data, main


FOODS = {0: "background", 1: "rice", 2: "egg", 3: "sauce"}


def _photo(seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (SYNTH_SIZE, SYNTH_SIZE, 3), dtype=np.uint8))


def _label_map(seed, classes, rgb=False):
    """Background 0 with one block per class (each a quarter of the image)."""
    ids = np.zeros((SYNTH_SIZE, SYNTH_SIZE), dtype=np.uint8)
    half = SYNTH_SIZE // 2
    for slot, class_id in enumerate(classes):
        top, left = (slot // 2) * half, (slot % 2) * half
        ids[top : top + half, left : left + half] = class_id
    if rgb:  # UECFoodPix: the class id in the red channel, green and blue empty
        return Image.fromarray(np.stack([ids, np.zeros_like(ids), np.zeros_like(ids)], axis=-1))
    return Image.fromarray(ids, mode="L")


@pytest.fixture(scope="module")
def foodseg103_repo(tmp_path_factory):
    """FoodSeg103 on the Hub: image, label (class-id map), classes_on_image (background 0 included), id."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.Image(),
            "classes_on_image": datasets.Sequence(datasets.Value("int64")),
            "id": datasets.Value("int64"),
        }
    )
    layouts = {"train": [[1, 2], [2, 3], [1, 3], [1, 2, 3]], "validation": [[1, 2], [3]]}
    rows = {
        split: {
            "image": [_photo(i) for i in range(len(classes))],
            "label": [_label_map(i, c) for i, c in enumerate(classes)],
            "classes_on_image": [[0, *c] for c in classes],
            "id": list(range(len(classes))),
        }
        for split, classes in layouts.items()
    }
    return write_dataset_repo(tmp_path_factory.mktemp("FoodSeg103"), rows, features, FOODS)


def train_one_step(dataset, tower_dir, output_dir, *extra):
    return main(
        [
            "--dataset_name",
            str(dataset),
            *tower_args(tower_dir),
            "--output_dir",
            str(output_dir),
            "--report_to",
            "none",
            "--use_cpu",
            "--per_device_train_batch_size",
            "4",
            "--max_steps",
            "1",
            "--do_train",
            "--do_eval",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
            *extra,
        ]
    )


def test_foodseg103_as_published_one_sample_per_image_and_class(foodseg103_repo, tower_dir, tmp_path):
    data, layout = load_data(DataArguments(dataset_name=str(foodseg103_repo)))
    assert layout == "segmentation"  # read from the label column's type, no --data_layout needed
    assert data["train"].features["label"].names == ["rice", "egg", "sauce"]  # from the repo's id2label.json
    assert len(data["train"]) == 2 + 2 + 2 + 3 and len(data["validation"]) == 3  # background excluded
    first = data["train"][0]
    assert np.asarray(first["roi_mask"]).sum() == (SYNTH_SIZE // 2) ** 2
    results = train_one_step(foodseg103_repo, tower_dir, tmp_path / "out")
    assert "eval_accuracy" in results
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["id2label"] == {"0": "rice", "1": "egg", "2": "sauce"}


def test_a_label_map_with_ids_that_id2label_lacks_is_refused_before_any_work(foodseg103_repo, tmp_path):
    (tmp_path / "id2label.json").write_text(json.dumps({"0": "background", "1": "rice"}))
    with pytest.raises(ValueError, match=r"label map of sample 0 holds class id\(s\) \[2\] that id2label lacks"):
        load_data(DataArguments(dataset_name=str(foodseg103_repo), id2label_file=str(tmp_path / "id2label.json")))


def test_uecfoodpix_as_published_class_ids_in_the_red_channel(tower_dir, tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.Image()})
    layouts = {"train": [[1, 2], [2, 3], [1, 3]], "validation": [[1, 2]]}
    rows = {
        split: {
            "image": [_photo(i) for i in range(len(c))],
            "label": [_label_map(i, k, rgb=True) for i, k in enumerate(c)],
        }
        for split, c in layouts.items()
    }
    repo = write_dataset_repo(tmp_path / "UECFOODPIXCOMPLETE", rows, features, FOODS)
    with pytest.raises(ValueError, match=r"label map of sample 0 is a colour image.*--label_channel red"):
        load_data(DataArguments(dataset_name=str(repo)))
    data, _ = load_data(DataArguments(dataset_name=str(repo), label_channel="red"))
    assert data["train"].features["label"].names == ["rice", "egg", "sauce"] and len(data["train"]) == 6
    assert "eval_accuracy" in train_one_step(repo, tower_dir, tmp_path / "out", "--label_channel", "red")
    # Issue 24.5: a channel that holds only background used to end in a TypeError from deep inside.
    with pytest.raises(ValueError, match=r"label-map column 'label' \(label_channel 'green'\) yields no class"):
        load_data(DataArguments(dataset_name=str(repo), label_channel="green"))


def test_a_label_map_of_floats_is_refused_naming_the_sample():
    import datasets

    from rvernet_hf.data import segmentation_to_roi_dataset

    rows = {"image": [np.zeros((4, 4, 3), np.uint8)], "label": [np.full((4, 4), 1.5, np.float32)]}
    with pytest.raises(ValueError, match=r"label map of sample 0 holds float\d+ values, not class ids"):
        segmentation_to_roi_dataset(datasets.Dataset.from_dict(rows), {0: "background", 1: "rice"})


def test_food101_as_published_gets_its_automatic_roi_once(tower_dir, tmp_path):
    """Food-101: image + ClassLabel, no masks: each image's ROI comes from the segmenter, once, cached."""
    import datasets

    from conftest import tiny_sam

    names = ["apple_pie", "baby_back_ribs"]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    rows = {
        split: {"image": [_photo(i) for i in range(4)], "label": [0, 1, 0, 1]} for split in ("train", "validation")
    }
    repo = write_dataset_repo(tmp_path / "food101", rows, features)
    tiny_sam().save_pretrained(tmp_path / "sam")
    sam = ["--sam_model_name_or_path", str(tmp_path / "sam"), "--mask_cache_dir", str(tmp_path / "masks")]
    assert "eval_accuracy" in train_one_step(repo, tower_dir, tmp_path / "out", *sam)
    shards = sorted(path.name for path in (tmp_path / "masks").iterdir())
    assert shards  # the masks are cached: a second run reads them
    train_one_step(repo, tower_dir, tmp_path / "again", *sam)
    assert sorted(path.name for path in (tmp_path / "masks").iterdir()) == shards


def test_a_carved_validation_split_holds_whole_photos():
    """Without a validation split, samples of one photo (one per food) were split apart by label: a validation
    photo was then seen in training, under another food's label. Whole photos are held out now, in order."""
    import datasets

    from rvernet_hf.training import carve_validation

    sources = [photo for photo in range(20) for _ in range(3)]  # 20 photos, 3 foods each
    labels = [food for _ in range(20) for food in range(3)]
    features = datasets.Features(
        {"label": datasets.ClassLabel(names=["rice", "egg", "sauce"]), "source_index": datasets.Value("int64")}
    )
    split = datasets.Dataset.from_dict({"label": labels, "source_index": sources}, features=features)
    carved = carve_validation(split, 0.1, seed=0)
    train_photos, held_photos = set(carved["train"]["source_index"]), set(carved["validation"]["source_index"])
    assert not train_photos & held_photos and len(held_photos) == 2 and len(carved["validation"]) == 6
    assert carved["train"]["source_index"] == sorted(carved["train"]["source_index"])  # neighbours stay together
    assert carve_validation(split, 0.1, seed=0)["validation"]["source_index"] == carved["validation"]["source_index"]
    plain = carve_validation(split.remove_columns("source_index"), 0.1, seed=0)  # no photos named: by label
    assert len(plain["validation"]) == 6 and sorted(set(plain["validation"]["label"])) == [0, 1, 2]
