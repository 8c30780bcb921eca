"""Model cards and pushing: the card parses back with the fields the Hub reads; the upload goes through HfApi's
HTTP methods (replaced here: tests never touch the network) with exactly the files of the dry-run folder."""

import json

import pytest
import torch
from huggingface_hub import HfApi, ModelCard

from rvernet_hf import RveRNetForImageClassification, RveRNetImageProcessor
from rvernet_hf.hub import push_folder, render_model_card, verify_reload


@pytest.fixture
def model_folder(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = RveRNetForImageClassification(tiny_config).eval()
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    RveRNetImageProcessor(size={"height": 30, "width": 30}).save_pretrained(folder)
    (folder / "training_args.bin").write_bytes(b"pickle")  # what Trainer leaves: never uploaded
    (folder / "checkpoint-5").mkdir()
    render_model_card("rvernet-tiny", "me/rvernet-tiny", tiny_config, metrics={"accuracy": 0.5}).save(
        folder / "README.md"
    )
    return model, folder


def test_card_front_matter_and_model_index(tiny_config):
    card = render_model_card(
        "rvernet-tiny",
        "me/rvernet-tiny",
        tiny_config,
        datasets=["me/foods"],
        base_model=["facebook/deit-tiny"],
        metrics={"accuracy": 0.91234, "macro_f1": 0.8, "ambiguous_f1": 0.7},
        dataset_name="foods",
        ambiguous_labels=["ketchup", "chili paste"],
    )
    parsed = ModelCard(str(card))
    assert parsed.data.library_name == "transformers"
    assert parsed.data.pipeline_tag == "image-classification"
    assert parsed.data.license == "apache-2.0"
    assert parsed.data.datasets == ["me/foods"] and parsed.data.base_model == ["facebook/deit-tiny"]
    assert {"rvernet", "knowledge-distillation"} <= set(parsed.data.tags)
    values = {result.metric_type: result.metric_value for result in parsed.data.eval_results}
    assert values == {"accuracy": 0.9123, "macro_f1": 0.8, "ambiguous_f1": 0.7}
    assert "ketchup, chili paste" in parsed.text and "me/rvernet-tiny" in parsed.text


def test_a_single_classifiers_card_is_not_tagged_as_rvernet(tiny_config):
    """Issue 24 (also seen): the teacher's card was tagged `rvernet`, `segment-anything`, `custom_code`."""
    from conftest import tiny_tower_config

    plain = ModelCard(str(render_model_card("teacher", config=tiny_tower_config("resnet"), distillation="none")))
    assert plain.data.tags == ["image-classification"]
    rvernet = ModelCard(str(render_model_card("rvernet-x", config=tiny_config)))
    assert {"rvernet", "segment-anything", "custom_code"} <= set(rvernet.data.tags)


def test_card_without_results_claims_none(tiny_config):
    parsed = ModelCard(str(render_model_card("rvernet-x", config=tiny_config)))
    assert parsed.data.eval_results is None
    assert "No evaluation results" in parsed.text


def test_dry_run_writes_exactly_the_uploadable_files(model_folder, tmp_path):
    _, folder = model_folder
    target = push_folder(folder, "me/rvernet-tiny", dry_run_dir=tmp_path / "dry")
    names = sorted(p.name for p in (tmp_path / "dry").iterdir())
    assert names == [
        "README.md",
        "config.json",
        "configuration_rvernet.py",
        "cutouts_rvernet.py",
        "image_processing_rvernet.py",
        "image_utils_rvernet.py",  # the processor's flat modules travel with it
        "model.safetensors",
        "modeling_rvernet.py",
        "paths_rvernet.py",
        "pipeline_rvernet.py",
        "preprocessor_config.json",
        "prompts_rvernet.py",
        "roi_masks_rvernet.py",
        "rvernet_weights.json",  # the weights' checksum, checked when they are loaded
        "segmenters_rvernet.py",
        "token_grid_rvernet.py",  # shared by the processor and the model
        "towers_rvernet.py",
        "weights_rvernet.py",  # the modeling code's loading policy travels with it
    ]
    assert json.loads((tmp_path / "dry" / "config.json").read_text())["auto_map"]
    assert target == str(tmp_path / "dry")


def test_push_uses_the_http_api_with_revision_and_pr(model_folder, monkeypatch):
    _, folder = model_folder
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create_repo", repo_id, kw)))
    monkeypatch.setattr(
        HfApi, "create_branch", lambda self, repo_id, **kw: calls.append(("create_branch", repo_id, kw))
    )
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload_folder", kw)) or "commit")
    assert push_folder(folder, "me/rvernet-tiny", revision="v1", private=True) == "commit"
    assert [c[0] for c in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert calls[0][2]["private"] is True and calls[1][2]["branch"] == "v1"
    upload = calls[2][1]
    assert upload["revision"] == "v1" and upload["create_pr"] is False and upload["repo_id"] == "me/rvernet-tiny"
    assert "training_args.bin" not in upload["allow_patterns"] and "model.safetensors" in upload["allow_patterns"]
    # saved with model.save_pretrained (no pipeline code): the upload adds the prompted pipeline and declares it
    assert "pipeline_rvernet.py" in upload["allow_patterns"] and not (folder / "pipeline_rvernet.py").exists()
    calls.clear()
    push_folder(folder, "me/rvernet-tiny", create_pr=True)
    assert [c[0] for c in calls] == ["create_repo", "upload_folder"] and calls[1][1]["create_pr"] is True


def test_incomplete_folders_are_refused_before_any_upload(model_folder, monkeypatch):
    _, folder = model_folder
    monkeypatch.setattr(HfApi, "create_repo", lambda *a, **k: pytest.fail("must not reach the network"))
    (folder / "modeling_rvernet.py").unlink()
    (folder / "README.md").unlink()
    with pytest.raises(ValueError, match="README.md.*modeling_rvernet"):
        push_folder(folder, "me/x")


def test_reload_parity_gate(model_folder, tiny_config):
    model, folder = model_folder
    assert verify_reload(model, folder) == 0.0
    other = RveRNetForImageClassification(tiny_config)
    with pytest.raises(RuntimeError, match="reloads with logits"):
        verify_reload(other, folder)


def test_shipped_rvernet_deit_b_card_is_the_rendered_template():
    """model_cards/rvernet-deit-b/README.md is generated (model_cards/render.py): it must not drift from it."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).parents[1] / "model_cards"
    spec = importlib.util.spec_from_file_location("render_cards", root / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (root / "rvernet-deit-b" / "README.md").read_text() == str(module.rvernet_deit_b_card()) + "\n"
    parsed = ModelCard.load(root / "rvernet-deit-b" / "README.md")
    assert parsed.data.eval_results is None  # no weights trained by us: no numbers
    assert "105" in parsed.text and "FoodSeg103" in parsed.text


def test_the_cards_how_to_use_code_runs_against_the_upload_and_names_its_repo(model_folder, tmp_path):
    """The card's snippet once used a pipeline argument that does not exist (`input_boxes=`) and a local folder
    name even in an upload for `you/name`: executed here, with the uploaded repo id pointed at the uploaded files."""
    import re

    import numpy as np
    from PIL import Image

    from conftest import tiny_sam

    _, folder = model_folder
    upload = tmp_path / "upload"
    push_folder(folder, "you/rvernet-food", dry_run_dir=upload)
    # offline, a tiny random SAM stands in for the uploaded processor's Hub segmenter
    tiny_sam().save_pretrained(tmp_path / "sam")
    settings = json.loads((upload / "preprocessor_config.json").read_text())
    assert settings["sam_model_name_or_path"] == "facebook/sam-vit-base"
    settings.update(sam_model_name_or_path=str(tmp_path / "sam"), all_objects_points_per_side=4)
    (upload / "preprocessor_config.json").write_text(json.dumps(settings))
    card = (upload / "README.md").read_text()
    snippet = re.search(r"## How to use\n\n```python\n(.*?)```", card, re.S).group(1)
    assert 'model="you/rvernet-food"' in snippet and "me/rvernet-tiny" not in card
    assert "--model you/rvernet-food" in card
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(photo)
    runnable = snippet.replace('"you/rvernet-food"', repr(str(upload))).replace('"photo.jpg"', repr(str(photo)))
    namespace = {}
    exec(compile(runnable, "README.md", "exec"), namespace)  # every line of the snippet runs
    prompted = namespace["prompted"]
    assert prompted(str(photo), box=[60, 40, 220, 180])["prompt"] == "box"
