"""pipeline() on a saved RveRNet folder: the standard image-classification task (automatic ROI), the prompted custom
task (saved in the folder's config), batching, remote code without the package, and `rvernet-hf predict`."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import pipeline

from conftest import cli_error
from rvernet_hf import (
    RveRNetForImageClassification,
    RveRNetImageClassificationPipeline,
    RveRNetImageProcessor,
    export_model,
)
from rvernet_hf.cli import main as cli_main


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from conftest import tiny_tower_config
    from rvernet_hf import RveRNetConfig
    from test_image_processing_rvernet import tiny_sam

    folder = tmp_path_factory.mktemp("rvernet_saved")
    config = RveRNetConfig(
        roi_config=tiny_tower_config("deit"),
        context_config=tiny_tower_config("resnet"),
        id2label={0: "ketchup", 1: "chili paste", 2: "fries"},
        label2id={"ketchup": 0, "chili paste": 1, "fries": 2},
        fusion_hidden_size=24,
    )
    torch.manual_seed(0)
    model = RveRNetForImageClassification(config)
    sam_folder = tmp_path_factory.mktemp("tiny_sam")
    tiny_sam().save_pretrained(sam_folder)
    processor = RveRNetImageProcessor(size={"height": 30, "width": 30}, sam_model_name_or_path=str(sam_folder))
    export_model(model, folder, processor)
    return folder


def photo(seed=0, size=(48, 64)):
    return np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)


def test_saved_folder_declares_the_prompted_pipeline(saved_model):
    config = json.loads((saved_model / "config.json").read_text())
    assert config["custom_pipelines"]["rvernet-image-classification"]["impl"] == (
        "pipeline_rvernet.RveRNetImageClassificationPipeline"
    )
    assert (saved_model / "pipeline_rvernet.py").exists()


def test_with_the_package_imported_the_prompted_pipeline_needs_no_trust_remote_code(saved_model):
    """The registered task serves the folder's declared pipeline: before, transformers asked for
    `trust_remote_code=True` to run code the package already holds."""
    from rvernet_hf.pipeline_rvernet import RveRNetImageClassificationPipeline

    classifier = pipeline("rvernet-image-classification", model=str(saved_model))
    assert type(classifier) is RveRNetImageClassificationPipeline
    mask = np.zeros((48, 64), dtype=bool)
    mask[10:30, 20:40] = True
    assert classifier(photo(), mask=mask)["prompt"] == "mask"


def test_image_classification_pipeline_with_automatic_roi_and_batching(saved_model):
    classifier = pipeline("image-classification", model=str(saved_model))
    single = classifier(photo(), top_k=2)
    assert [set(entry) for entry in single] == [{"label", "score"}] * 2
    assert single[0]["score"] >= single[1]["score"]
    batched = classifier([photo(1), photo(2), photo(3)], batch_size=2, top_k=3)
    assert len(batched) == 3 and all(len(result) == 3 for result in batched)
    # Batching changes nothing.
    one_by_one = [classifier(photo(i), top_k=3) for i in (1, 2, 3)]
    for a, b in zip(batched, one_by_one):
        assert [x["label"] for x in a] == [x["label"] for x in b]
        np.testing.assert_allclose([x["score"] for x in a], [x["score"] for x in b], atol=1e-5)


def test_feature_extraction_pipeline_returns_what_the_fusion_head_reads(saved_model):
    """`pipeline("image-feature-extraction")` loads the base `RveRNetModel` (AutoModel) and returns, per image, the
    concatenated tower outputs of its automatic ROI: the fusion head's input."""
    from transformers import AutoImageProcessor, AutoModel

    from rvernet_hf import RveRNetModel

    extractor = pipeline("image-feature-extraction", model=str(saved_model))
    assert isinstance(extractor.model, RveRNetModel)
    from PIL import Image

    features = extractor(Image.fromarray(photo()), return_tensors=True)
    model, processor = AutoModel.from_pretrained(saved_model).eval(), AutoImageProcessor.from_pretrained(saved_model)
    with torch.no_grad():
        expected = model(**processor(photo())).pooler_output
    assert features.shape == (1, model.roi_output_size + model.context_output_size) == expected.shape
    torch.testing.assert_close(features, expected)
    pooled = extractor([Image.fromarray(photo(1)), Image.fromarray(photo(2))], pool=True)
    assert len(pooled) == 2 and len(pooled[0][0]) == features.shape[-1]


def test_prompted_pipeline_returns_labels_and_the_mask_it_used(saved_model):
    classifier = pipeline("rvernet-image-classification", model=str(saved_model), trust_remote_code=True)
    mask = np.zeros((48, 64), dtype=bool)
    mask[10:30, 20:40] = True
    result = classifier(photo(), mask=mask, top_k=3)
    assert result["prompt"] == "mask" and result["mask"].shape == (48, 64)
    assert np.array_equal(result["mask"], mask)
    assert abs(sum(entry["score"] for entry in result["labels"]) - 1) < 1e-5
    boxed = classifier(photo(), box=[5, 5, 40, 30])
    assert boxed["prompt"] == "box" and boxed["mask"].shape == (48, 64) and boxed["mask"].any()
    clicked = classifier(photo(), points=[20, 15])
    assert clicked["prompt"] == "points"
    # A batch with a prompt per image (dict inputs).
    results = classifier(
        [{"image": photo(1), "mask": mask}, {"image": photo(2), "box": [0, 0, 20, 20]}, {"image": photo(3)}],
        batch_size=2,
    )
    assert [r["prompt"] for r in results] == ["mask", "box", "automatic"]
    assert np.array_equal(results[0]["mask"], mask)
    # The prompted result for a mask equals the model on the processor's cut-outs.
    processor = RveRNetImageProcessor.from_pretrained(saved_model)
    inputs = processor(photo(), roi_masks=mask, return_tensors="pt")
    with torch.no_grad():
        probabilities = classifier.model(
            roi_pixel_values=inputs["roi_pixel_values"], context_pixel_values=inputs["context_pixel_values"]
        ).logits.softmax(-1)[0]
    assert result["labels"][0]["score"] == pytest.approx(float(probabilities.max()), abs=1e-5)


def test_prompted_pipeline_errors_name_the_problem(saved_model):
    classifier = RveRNetImageClassificationPipeline(
        model=RveRNetForImageClassification.from_pretrained(saved_model),
        image_processor=RveRNetImageProcessor.from_pretrained(saved_model),
    )
    with pytest.raises(ValueError, match="one prompt per image"):
        classifier(photo(), mask=np.ones((48, 64), bool), box=[0, 0, 5, 5])
    with pytest.raises(ValueError, match="'image'"):
        classifier({"picture": photo()})
    with pytest.raises(ValueError, match="unknown arguments"):
        classifier(photo(), boxes=[0, 0, 5, 5])


def test_prompted_pipeline_refuses_a_model_that_is_not_an_rvernet(tmp_path):
    """Issue 24.6: a checkpoint of another model type (here a ViT) used to build, then fail on the first photo with
    `AttributeError: 'NoneType' object has no attribute 'dtype'`."""
    from transformers import ViTForImageClassification

    from conftest import tiny_tower_config

    ViTForImageClassification(tiny_tower_config("vit")).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"model_type 'vit', not 'rvernet': this pipeline needs an RveRNet"):
        RveRNetImageClassificationPipeline(
            model=ViTForImageClassification.from_pretrained(tmp_path),
            image_processor=RveRNetImageProcessor(size={"height": 32, "width": 32}),
        )
    with pytest.raises(ValueError, match=str(tmp_path)):
        pipeline("rvernet-image-classification", model=str(tmp_path), image_processor=RveRNetImageProcessor())


@pytest.mark.slow
def test_pipelines_load_as_remote_code_without_the_package(saved_model, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["rvernet_hf"] = None  # the package is not installed here
        import numpy as np
        from transformers import pipeline
        image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        plain = pipeline("image-classification", model={str(saved_model)!r}, trust_remote_code=True)
        print("PLAIN", plain(image, top_k=1)[0]["label"])
        prompted = pipeline("rvernet-image-classification", model={str(saved_model)!r}, trust_remote_code=True)
        mask = np.zeros((48, 64), bool); mask[5:20, 5:20] = True
        result = prompted(image, mask=mask)
        print("PROMPTED", int(result["mask"].sum()), type(prompted).__module__, result["labels"][0]["label"])
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PLAIN " in done.stdout
    line = next(line for line in done.stdout.splitlines() if line.startswith("PROMPTED"))
    assert line.split()[1] == "225" and "transformers_modules" in line.split()[2]


def test_predict_cli_prints_json_and_writes_the_picture(saved_model, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(photo()).save(tmp_path / "a.png")
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "a_mask.png")
    assert (
        cli_main(
            [
                "predict",
                str(tmp_path / "a.png"),
                "--model",
                str(saved_model),
                "--mask",
                str(tmp_path / "a_mask.png"),
                "--top-k",
                "2",
                "--json",
                "--save-viz",
                str(tmp_path / "v.png"),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["prompt"] == "mask" and printed[0]["roi_pixels"] == 400 and len(printed[0]["labels"]) == 2
    with Image.open(tmp_path / "v.png") as picture:
        assert picture.width > 3 * picture.height  # outline | ROI | context | bars
    bad_box = ["predict", str(tmp_path / "a.png"), "--model", str(saved_model), "--box", "1,2,3"]
    assert "--box expects 4" in cli_error(capsys, bad_box)
    assert "does not exist" in cli_error(
        capsys, ["predict", str(tmp_path / "missing.png"), "--model", str(saved_model)]
    )
    again = ["predict", str(tmp_path / "a.png"), "--model", str(saved_model), "--save_viz", str(tmp_path / "v.png")]
    error = cli_error(capsys, again)  # a picture already there is finished work
    assert "--save_viz" in error and "never overwritten" in error


def test_prompted_pipeline_labels_every_object(saved_model):
    """`all_objects=True`: one {box, mask, labels} per object, in the spirit of the object-detection pipeline."""
    from transformers import AutoModelForImageClassification

    from conftest import tiny_segmenter

    processor = RveRNetImageProcessor(
        size={"height": 30, "width": 30},
        sam_model=tiny_segmenter("sam2"),
        all_objects_points_per_side=3,
        all_objects_pred_iou_threshold=-10.0,
        all_objects_stability_threshold=0.0,
        all_objects_min_area=0.0,
    )
    model = AutoModelForImageClassification.from_pretrained(saved_model).eval()
    classifier = RveRNetImageClassificationPipeline(model=model, image_processor=processor)
    objects = classifier(photo(), all_objects=True, top_k=2)
    assert isinstance(objects, list) and len(objects) >= 2
    features = processor(photo(), all_objects=True, return_roi_masks=True)
    with torch.no_grad():
        expected = model(features["roi_pixel_values"], features["context_pixel_values"]).logits.softmax(-1)
    for k, found in enumerate(objects):
        assert set(found) == {"box", "mask", "labels"} and found["mask"].shape == (48, 64)
        assert found["box"] == features["roi_boxes"][k].tolist()
        assert [entry["label"] for entry in found["labels"]] == [
            model.config.id2label[int(i)] for i in expected[k].topk(2).indices
        ]
    many = classifier([photo(1), photo(2)], all_objects=True, batch_size=2)
    assert len(many) == 2 and all(isinstance(result, list) and result for result in many)
    for result, seed in zip(many, (1, 2)):  # batching photos with different object counts changes nothing
        alone = classifier(photo(seed), all_objects=True)
        assert [o["box"] for o in result] == [o["box"] for o in alone]
        for a, b in zip(result, alone):
            assert a["labels"][0]["label"] == b["labels"][0]["label"]
            assert abs(a["labels"][0]["score"] - b["labels"][0]["score"]) < 1e-5
    with pytest.raises(ValueError, match="`box` / `input_boxes`\\) cannot be given with it"):
        classifier(photo(), all_objects=True, box=[1, 1, 10, 10])


def test_predict_cli_all_objects_table_json_and_picture(saved_model, tmp_path, capsys):
    import shutil

    from PIL import Image

    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    saved = RveRNetImageProcessor.from_pretrained(folder)
    relaxed = {
        "all_objects_points_per_side": 3,
        "all_objects_pred_iou_threshold": -10.0,
        "all_objects_stability_threshold": 0.0,
        "all_objects_min_area": 0.0,
    }
    RveRNetImageProcessor(**{**saved.to_dict(), **relaxed}).save_pretrained(folder)
    image = np.random.default_rng(3).integers(0, 255, (60, 120, 3)).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "plate.png")
    args = ["predict", str(tmp_path / "plate.png"), "--model", str(folder), "--all-objects", "--top-k", "1"]
    assert cli_main([*args, "--json", "--save-viz", str(tmp_path / "objects.png")]) == 0
    printed = json.loads(capsys.readouterr().out)[0]
    assert printed["prompt"] == "all_objects" and len(printed["objects"]) >= 2
    for found in printed["objects"]:
        x0, y0, x1, y1 = found["box"]
        assert 0 <= x0 < x1 <= 120 and 0 <= y0 < y1 <= 60 and found["roi_pixels"] > 0 and len(found["labels"]) == 1
    with Image.open(tmp_path / "objects.png") as picture:
        assert picture.size == (120, 60)  # the photo itself, regions drawn on it
        assert np.abs(np.asarray(picture, dtype=int) - image).max() > 0
    assert cli_main(args) == 0
    table = capsys.readouterr().out
    assert f"{len(printed['objects'])} objects" in table and "box (x0, y0, x1, y1)" in table
    assert "`all_objects` finds every object itself: a box" in cli_error(capsys, [*args, "--box", "1,2,30,40"])


def test_plain_pipeline_says_it_classifies_one_automatic_roi(saved_model, caplog):
    import logging

    from transformers.utils import logging as hf_logging

    from rvernet_hf import image_processing_rvernet

    image_processing_rvernet.logger.warning_once.cache_clear()
    classifier = pipeline("image-classification", model=str(saved_model))
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            classifier(photo(), top_k=1)
    finally:
        hf_logging.disable_propagation()
    assert "ONE automatic ROI" in caplog.text and "all_objects=True" in caplog.text


def test_prompted_pipeline_labels_every_instance_of_a_text_concept(saved_model):
    """Issue 24 (also seen): `text=` worked in the processor, but the pipeline said "unknown arguments ['text']"."""
    from conftest import tiny_sam3

    sam3, sam3_processor = tiny_sam3()
    processor = RveRNetImageProcessor.from_pretrained(saved_model, text_score_threshold=0.0)
    processor.set_sam_model(sam3, sam3_processor)
    classifier = RveRNetImageClassificationPipeline(
        model=RveRNetForImageClassification.from_pretrained(saved_model), image_processor=processor
    )
    image = photo()
    objects = classifier(image, text="food", top_k=2)
    direct = processor(image, text="food", return_roi_masks=True)
    assert len(objects) == len(direct["roi_masks"]) >= 1
    for found, mask, box in zip(objects, direct["roi_masks"], direct["roi_boxes"].tolist()):
        assert np.array_equal(found["mask"], mask) and found["box"] == box and len(found["labels"]) == 2
    assert classifier({"image": image, "text": "food"}, top_k=1)[0]["box"] == objects[0]["box"]
    with pytest.raises(ValueError, match=r"`text` names the objects itself: a box \(`box`"):
        classifier(image, text="food", box=[0, 0, 5, 5])
    with pytest.raises(ValueError, match="`text` names the objects itself: `all_objects` cannot be given with it"):
        classifier(image, text="food", all_objects=True)


def test_predict_cli_text_labels_every_instance_with_a_local_sam3(saved_model, tmp_path, capsys):
    import json

    from PIL import Image

    from conftest import tiny_sam3

    sam3, sam3_processor = tiny_sam3()
    sam3.save_pretrained(tmp_path / "sam3")
    sam3_processor.save_pretrained(tmp_path / "sam3")
    Image.fromarray(photo()).save(tmp_path / "a.png")
    arguments = ["predict", str(tmp_path / "a.png"), "--model", str(saved_model), "--text", "food"]
    assert cli_main([*arguments, "--sam_model_name_or_path", str(tmp_path / "sam3"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["prompt"] == "text: food" and len(printed[0]["objects"]) >= 1
    assert all(len(found["box"]) == 4 and found["labels"] for found in printed[0]["objects"])
    assert "`text` names the objects itself: a box" in cli_error(capsys, [*arguments, "--box", "1,1,20,20"])


def test_prompted_pipeline_checks_every_prompt_of_a_list_before_running(saved_model, monkeypatch):
    """Issue 24.10: a bad prompt of the last input used to be found after the model had run on the others."""
    classifier = RveRNetImageClassificationPipeline(
        model=RveRNetForImageClassification.from_pretrained(saved_model),
        image_processor=RveRNetImageProcessor.from_pretrained(saved_model),
    )
    calls = []
    monkeypatch.setattr(classifier, "_forward", lambda *a, **k: calls.append(1))
    good = {"image": photo(), "box": [0, 0, 10, 10]}
    for bad, message in (
        ({"image": photo(), "box": [0, 0, 10]}, r"a box of image 2 must be \[x0, y0, x1, y1\]"),
        ({"image": photo(), "points": [[1, 2, 3]]}, r"each point of image 2 must be \[x, y\]"),
        ({"image": photo(), "mask": np.ones((48, 64), bool), "box": [0, 0, 5, 5]}, "one prompt per image"),
        ({"photo": photo()}, "a dict input needs an 'image'"),
    ):
        with pytest.raises(ValueError, match=message):
            classifier([good, good, bad])
    assert calls == []
