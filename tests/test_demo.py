"""`rvernet-hf demo` end to end at tiny size: every promised output exists and the figures are the measured ones."""

import json

import pytest
from huggingface_hub import ModelCard

from rvernet_hf.cli import main


@pytest.mark.slow
def test_demo_writes_everything_it_promises(tmp_path, capsys, caplog):
    import logging

    from transformers.utils import logging as hf_logging

    out = tmp_path / "demo"
    hf_logging.enable_propagation()
    caplog.set_level(logging.WARNING)
    try:
        code = main(
            [
                "demo",
                "--output_dir",
                str(out),
                "--num_per_class",
                "8",
                "--image_size",
                "32",
                "--tower_hidden",
                "32",
                "--tower_layers",
                "1",
                "--epochs",
                "1",
                "--teacher_epochs",
                "1",
                "--batch_size",
                "16",
            ]
        )
    finally:
        hf_logging.disable_propagation()
    assert code == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "demo_results.json").read_text())
    for name, scores in results["test"].items():
        assert f"{scores['accuracy']:9.3f}" in printed, name
    for path in (
        "data/dataset_info.json",
        "teacher/model.safetensors",
        "rvernet/model.safetensors",
        "rvernet/README.md",
        "rvernet/training_curves.png",
        "rvernet/confusion_matrix.png",
        "hub-upload/pipeline_rvernet.py",
        "confusion_test_rvernet.png",
        "roi_prediction_0.png",
    ):
        assert (out / path).exists(), path
    card = ModelCard.load(out / "rvernet" / "README.md")
    assert {r.metric_type for r in card.data.eval_results} == {"accuracy", "macro_f1", "ambiguous_f1"}
    assert "where everything went" in printed
    assert "No image processor for the" not in caplog.text  # the demo's own towers carry their input facts
