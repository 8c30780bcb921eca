"""Issue 31, "One prompt, one front door": the prompt is read and checked by one class at every entry; the pipeline
runs every inference (with its stage timings); the processor's settings change only through the processor; the
subcommands share one option convention, their numbers checked where they are parsed."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import cli_error
from rvernet_hf import RveRNetForImageClassification, RveRNetImageClassificationPipeline, RveRNetImageProcessor
from rvernet_hf.cli import main as cli_main
from rvernet_hf.prompts_rvernet import RoiPrompt


SOURCE = Path(__file__).resolve().parents[1]
PACKAGE = SOURCE / "src" / "rvernet_hf"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from rvernet_hf import RveRNetConfig
    from rvernet_hf.hub import export_model
    from rvernet_hf.testing_utils import tiny_sam, tiny_tower_config

    folder = tmp_path_factory.mktemp("front_door")
    config = RveRNetConfig(
        roi_config=tiny_tower_config("deit"),
        context_config=tiny_tower_config("deit"),
        id2label={0: "ketchup", 1: "chili paste"},
        label2id={"ketchup": 0, "chili paste": 1},
        fusion_hidden_size=16,
    )
    torch.manual_seed(0)
    sam = tiny_sam()
    sam.save_pretrained(folder / "sam")
    processor = RveRNetImageProcessor(size={"height": 30, "width": 30}, sam_model_name_or_path=str(folder / "sam"))
    export_model(RveRNetForImageClassification(config), folder / "model", processor)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def _pipeline(folder):
    model = RveRNetForImageClassification.from_pretrained(folder / "model").eval()
    return RveRNetImageClassificationPipeline(
        model=model, image_processor=RveRNetImageProcessor.from_pretrained(folder / "model")
    )


# ---------------------------------------------------------------------------------------------------- one prompt


def test_the_prompt_vocabulary_is_written_once():
    """`PROMPT_KEYS` is the one vocabulary: no other module spells the tuple of prompt keys again."""
    spelled = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
                values = {e.value for e in node.elts}
                if {"points", "box", "mask"} <= values:
                    spelled.append(path.name)
    assert set(spelled) == {"prompts_rvernet.py"}


@pytest.mark.parametrize("labels", [[5], [-1], ["1"], [0.5]])
def test_a_click_label_other_than_one_or_zero_is_refused_at_every_entry(saved_model, labels):
    """Issue 35.2: the processor and the pipeline passed `input_labels=[5]` to the segmenter; the app refused it."""
    from rvernet_hf.app import parse_prompt

    message = r"must be 1 \(the object\) or 0 \(not the object\)"
    processor = RveRNetImageProcessor(size={"height": 32, "width": 32})
    photo = np.zeros((40, 60, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        processor(photo, input_points=[[10, 10]], input_labels=labels)
    with pytest.raises(ValueError, match=message):
        _pipeline(saved_model)(photo, points=[[10, 10]], point_labels=labels)
    with pytest.raises(ValueError, match=message):
        parse_prompt({"points": [[10, 10]], "point_labels": labels})


def test_one_prompt_has_one_kind_whatever_its_entry():
    assert RoiPrompt.from_keywords().kind == "automatic"
    assert RoiPrompt.from_keywords(points=[3, 4]).kind == "points"
    assert RoiPrompt.from_keywords(points=[[3, 4]], box=[0, 0, 9, 9]).kind == "box+points"
    (sam_style,) = RoiPrompt.per_image(1, False, input_boxes=[[[0, 0, 9, 9], [1, 1, 5, 5]]])
    assert sam_style.kind == "box" and sam_style.num_rois == 2
    assert RoiPrompt.from_keywords(all_objects=True).finds_objects and RoiPrompt(text="sauce").finds_objects
    with pytest.raises(ValueError, match="one click .* or the clicks of one object"):
        RoiPrompt.from_keywords(points=[[[1, 2]], [[3, 4]]])  # several objects: one input each
    with pytest.raises(ValueError, match="finite"):
        RoiPrompt.from_keywords(box=[0, 0, float("inf"), 3])
    with pytest.raises(ValueError, match="outside the image"):
        RoiPrompt.from_keywords(points=[30, 5]).checked((10, 20))


# ------------------------------------------------------------------------------------------- one inference path


def test_the_pipeline_reports_its_stage_timings(saved_model):
    classifier = _pipeline(saved_model)
    mask = np.zeros((40, 60), bool)
    mask[5:20, 10:30] = True
    result = classifier(str(saved_model / "a.png"), mask=mask, return_timings=True)
    assert set(result["timings_s"]) == {"read", "segment", "classify"}
    assert all(value >= 0 for value in result["timings_s"].values()) and result["prompt"] == "mask"
    assert "timings_s" not in classifier(str(saved_model / "a.png"), mask=mask)


def test_a_prompt_object_goes_through_the_pipeline_and_one_naming_several_rois_is_refused(saved_model):
    classifier = _pipeline(saved_model)
    photo = np.zeros((40, 60, 3), np.uint8)
    box = RoiPrompt.from_keywords(box=[5, 5, 30, 25])
    assert classifier(photo, prompt=box)["prompt"] == "box"
    assert classifier({"image": photo, "prompt": box})["prompt"] == "box"
    (two,) = RoiPrompt.per_image(1, False, input_boxes=[[5, 5, 30, 25], [1, 1, 9, 9]])
    with pytest.raises(ValueError, match="one object per input"):
        classifier(photo, prompt=two)
    with pytest.raises(ValueError, match="not both"):
        classifier(photo, prompt=box, box=[1, 1, 9, 9])
    with pytest.raises(ValueError, match="top_k must be a whole number >= 1"):
        classifier(photo, prompt=box, top_k=0)


def test_the_app_classifies_through_the_pipeline(saved_model, monkeypatch):
    from rvernet_hf.app import RveRNetApp

    app = RveRNetApp(str(saved_model / "model"))
    calls = []
    original = app.pipeline.__call__
    monkeypatch.setattr(type(app.pipeline), "__call__", lambda self, *a, **k: calls.append(k) or original(*a, **k))
    result = app.classify(saved_model / "a.png", {"box": [5, 5, 30, 25]})
    assert calls and isinstance(calls[0]["prompt"], RoiPrompt) and calls[0]["return_timings"] is True
    assert result["prompt"] == "box" and set(result["timings_s"]) == {"read", "segment", "classify", "total"}


# ------------------------------------------------------------------------------------- settings through the processor


def test_nothing_outside_the_processor_assigns_its_settings():
    """Settings change through `set_settings` (validated), never by assigning an attribute from outside."""
    from rvernet_hf.image_processing_rvernet import SETTINGS

    assigned = []
    for folder in ("src", "benchmarks", "examples"):
        for path in (SOURCE / folder).rglob("*.py"):
            if path.name == "image_processing_rvernet.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                for target in targets:
                    is_setting = isinstance(target, ast.Attribute) and target.attr in SETTINGS
                    if is_setting and "processor" in ast.unparse(target.value):
                        assigned.append(f"{path.name}:{node.lineno} {ast.unparse(target)}")
    assert assigned == []


def test_no_attribute_is_patched_onto_the_processor_class_after_its_body():
    """The segmenter's defaults stand in a class body a reader sees (they were set by a `setattr` loop)."""
    from rvernet_hf.image_processing_rvernet import SegmenterPart

    tree = ast.parse((PACKAGE / "image_processing_rvernet.py").read_text())
    top_level = [node for node in tree.body if not isinstance(node, (ast.ClassDef, ast.FunctionDef))]
    patched = [ast.unparse(node) for node in top_level if "setattr" in ast.unparse(node) or isinstance(node, ast.For)]
    assert patched == []
    assert RveRNetImageProcessor.sam_batch_size == 4 and "sam_batch_size" in vars(SegmenterPart)


def test_set_settings_validates_and_changes_nothing_when_refused():
    processor = RveRNetImageProcessor(size={"height": 32, "width": 32})
    processor.set_settings(sam_model_name_or_path="facebook/EdgeTAM", patch_size=16)
    assert processor.sam_model_name_or_path == "facebook/EdgeTAM"
    assert processor.patch_size == {"roi": 16, "context": 16}
    with pytest.raises(ValueError, match="not a multiple"):
        processor.set_settings(patch_size=5, sam_batch_size=2)
    assert processor.patch_size == {"roi": 16, "context": 16} and processor.sam_batch_size == 4
    with pytest.raises(TypeError, match="Unexpected arguments"):
        processor.set_settings(sam_modle="x")


# ------------------------------------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    "arguments, option",
    [
        (["predict", "a.png", "--model", "m", "--top_k", "0"], "--top_k"),
        (["predict", "a.png", "--model", "m", "--top_k", "-3"], "--top_k"),
        (["app", "--port", "70000"], "--port"),
        (["evaluate", "--model", "m", "--data_dir", "d", "--batch_size", "0"], "--batch_size"),
        (["masks", "--data_dir", "d", "--output_dir", "o", "--shard_size", "0"], "--shard_size"),
        (["export", "--model", "m", "--output_dir", "o", "--opset", "0"], "--opset"),
    ],
)
def test_numbers_are_checked_where_they_are_parsed(arguments, option, capsys):
    """Issue 35.7: torch's "selected index k out of range", "range() arg 3 must not be zero" and a traceback for
    port 70000 came after models were loaded."""
    with pytest.raises(SystemExit) as raised:
        cli_main(arguments)
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}" in error and "expected" in error


def test_former_spellings_still_work_with_a_note(saved_model, capsys, tmp_path):
    model, image = str(saved_model / "model"), str(saved_model / "a.png")
    mask = tmp_path / "mask.png"
    Image.fromarray(np.pad(np.full((10, 20), 255, np.uint8), ((5, 25), (10, 30)))).save(mask)
    assert cli_main(["predict", image, "--model", model, "--mask", str(mask), "--top-k", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert "note: --top-k is deprecated; it is now --top_k" in captured.err
    assert len(json.loads(captured.out)[0]["labels"]) == 1
    out = tmp_path / "rows.json"
    assert cli_main(["predict", image, "--model", model, "--mask", str(mask), "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["prompt"] == "mask"
    assert "--json" in cli_error(capsys, ["predict", image, "--model", model, "--mask", str(mask), "--json", str(out)])


def test_a_missing_local_only_folder_is_refused_before_any_work(saved_model, capsys):
    """Issue 35.1: a masks folder that does not exist is never a Hub id (here it looks like one: one slash)."""
    model = str(saved_model / "model")
    arguments = ["evaluate", "--model", model, "--data_dir", str(saved_model), "--masks_dir", "data/test_mask"]
    assert "--masks_dir 'data/test_mask' does not exist" in cli_error(capsys, arguments)


def test_a_bug_keeps_its_traceback(monkeypatch):
    """A `RuntimeError` from torch (out of memory, a kernel failure) is not a user error: it is not reduced to a line."""
    from rvernet_hf.commands import env

    def fails(args):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(env, "run", fails)
    with pytest.raises(RuntimeError, match="out of memory"):
        cli_main(["env"])


def test_the_plain_pipeline_has_no_video_processor_and_asks_nothing(saved_model, monkeypatch):
    """The processor is registered as what it is (a torchvision-backend image processor); for video, RveRNet says it
    has none, so transformers' image pipelines neither ask whether to run remote code nor get an image processor
    passed off as a video processor."""
    import builtins

    from transformers import pipeline

    asked = []
    monkeypatch.setattr(builtins, "input", lambda *args, **kwargs: asked.append(args) or "n")
    classifier = pipeline("image-classification", model=str(saved_model / "model"))
    assert asked == [] and classifier.video_processor is None
    assert isinstance(classifier.image_processor, RveRNetImageProcessor)
    assert classifier.image_processor.backend == "torchvision"
