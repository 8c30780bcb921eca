"""ONNX export (issue 21): both towers and the fusion head in one graph, a dynamic batch axis, inputs named as
`forward` names them, the config and processor beside it; ONNX Runtime agrees with PyTorch to 1e-4."""

import json
import os

import numpy as np
import pytest
import torch

from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageProcessor
from rvernet_hf.testing_utils import IMAGE_SIZE, tiny_tower_config


onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def saved_model(folder, roi="deit", context="convnext", **config):
    torch.manual_seed(0)
    model = RveRNetForImageClassification(
        RveRNetConfig(
            roi_config=tiny_tower_config(roi, num_labels=5),
            context_config=tiny_tower_config(context, num_labels=5),
            fusion_hidden_size=24,
            num_labels=4,
            **config,
        )
    ).eval()
    model.save_pretrained(folder)
    RveRNetImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(folder)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("towers", [("deit", "convnext"), ("deit", "deit")])
def test_export_matches_pytorch_at_any_batch_size(tmp_path, towers):
    from rvernet_hf.cli import main as cli_main

    model = saved_model(tmp_path / "model", *towers)
    out = tmp_path / "onnx"
    if towers == ("deit", "deit"):  # the former form, `export MODEL OUTPUT_DIR`, still works (with a note)
        assert cli_main(["export", str(tmp_path / "model"), str(out), "--format", "onnx"]) == 0
    else:
        assert cli_main(["export", "--model", str(tmp_path / "model"), "--output_dir", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"model.onnx", "config.json", "preprocessor_config.json"}
    assert json.loads((out / "config.json").read_text())["model_type"] == "rvernet"
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["roi_pixel_values", "context_pixel_values"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    for batch in (1, 7):
        generator = torch.Generator().manual_seed(batch)
        inputs = {
            name: torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
            for name in ("roi_pixel_values", "context_pixel_values")
        }
        (logits,) = session.run(None, {k: v.numpy() for k, v in inputs.items()})
        with torch.no_grad():
            expected = model(**inputs).logits.numpy()
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    # the processor beside the graph makes its inputs
    processor = RveRNetImageProcessor.from_pretrained(out)
    photo = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    mask = np.zeros((40, 50), bool)
    mask[5:20, 5:30] = True
    batch = processor(photo, roi_masks=mask, return_tensors="np")
    (logits,) = session.run(None, {i.name: batch[i.name] for i in session.get_inputs()})  # README's line
    assert logits.shape == (1, 4)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's owner-only folder (issue 35.9)


@pytest.mark.slow
def test_an_opset_the_exporter_cannot_write_is_refused_and_nothing_is_written(tmp_path, recwarn):
    """Issue 35.9: `--opset 7` wrote opset 18 after a traceback and said "exported"; the graph wrapper was in training
    mode (a warning)."""
    from rvernet_hf.onnx_export import export_onnx, graph_opset

    saved_model(tmp_path / "model", "deit", "deit")
    with pytest.raises(ValueError, match="--opset 7 was asked, but the exporter wrote opset 18"):
        export_onnx(tmp_path / "model", tmp_path / "onnx", opset_version=7)
    assert not (tmp_path / "onnx").exists() and [p.name for p in tmp_path.iterdir()] == ["model"]
    export_onnx(tmp_path / "model", tmp_path / "onnx", opset_version=18)
    assert graph_opset(tmp_path / "onnx" / "model.onnx") == 18
    assert not [w for w in recwarn if "training" in str(w.message).lower()]


def test_export_refuses_sparse_towers_and_an_existing_folder_before_any_work(tmp_path, monkeypatch):
    import rvernet_hf.onnx_export as onnx_export

    calls = []
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(1))
    saved_model(tmp_path / "sparse", token_selection="mask")
    with pytest.raises(ValueError, match="token_selection='mask'.*--token_selection dense"):
        onnx_export.export_onnx(tmp_path / "sparse", tmp_path / "out")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="taken exists: finished work is never overwritten"):
        onnx_export.export_onnx(tmp_path / "sparse", tmp_path / "taken", token_selection="dense")
    assert calls == [] and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_sparse_model_exports_dense_on_request_and_a_failed_check_leaves_nothing(tmp_path, monkeypatch):
    import rvernet_hf.onnx_export as onnx_export

    saved_model(tmp_path / "sparse", token_selection="mask")
    out = onnx_export.export_onnx(tmp_path / "sparse", tmp_path / "dense", token_selection="dense")
    assert json.loads((out / "config.json").read_text())["token_selection"] == "dense"
    monkeypatch.setattr(onnx_export, "ONNX_TOLERANCE", -1.0)  # every graph now "differs"
    with pytest.raises(ValueError, match="differ from PyTorch's"):
        onnx_export.export_onnx(tmp_path / "sparse", tmp_path / "failed", token_selection="dense")
    assert not (tmp_path / "failed").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".failed.partial")]


@pytest.mark.slow
def test_a_single_classifier_exports_with_its_one_input(tmp_path):
    from transformers import DeiTForImageClassification

    from rvernet_hf.onnx_export import export_onnx

    torch.manual_seed(0)
    model = DeiTForImageClassification(tiny_tower_config("deit", num_labels=3)).eval()
    model.save_pretrained(tmp_path / "single")
    out = export_onnx(tmp_path / "single", tmp_path / "onnx")
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixel_values"]
    pixels = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        expected = model(pixel_values=pixels).logits.numpy()
    np.testing.assert_allclose(session.run(None, {"pixel_values": pixels.numpy()})[0], expected, atol=1e-4, rtol=0)
