# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""ONNX export: both towers and the fusion head in one graph (`rvernet-hf export MODEL --format onnx OUT`).

`export_onnx(model_dir, output_dir)` writes `model.onnx` (inputs named as `forward` names them: `roi_pixel_values`,
`context_pixel_values`; output `logits`; a dynamic batch axis), the config, and the image processor beside it, then
checks the graph against PyTorch with ONNX Runtime (when installed) at two batch sizes before the folder appears: a
folder a reader finds is complete and checked, or absent. A single classifier (`train --model_type single`) exports
the same way with its one input, `pixel_values`.

Token-sparse towers (`token_selection="mask"`) read a different number of patches per sample: the gather has a
data-dependent shape that the exported graph cannot hold. Such a model is refused, or exported dense with
`token_selection="dense"` (the same weights reading every patch, as `evaluate` can measure first).
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging


logger = logging.get_logger(__name__)


ONNX_TOLERANCE = 1e-4


class _PairLogits(torch.nn.Module):
    """RveRNet as a graph: the two cut-outs -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, roi_pixel_values, context_pixel_values):
        return self.model(roi_pixel_values=roi_pixel_values, context_pixel_values=context_pixel_values).logits


class _SingleLogits(torch.nn.Module):
    """A single classifier as a graph: pixel_values -> logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


def _inputs_of(model) -> tuple[tuple[str, ...], int]:
    """The model's image inputs and their side."""
    config = model.config
    if getattr(config, "model_type", None) == "rvernet":
        return ("roi_pixel_values", "context_pixel_values"), int(config.roi_config.image_size or 224)
    size = getattr(config, "image_size", None) or 224
    return ("pixel_values",), int(size if isinstance(size, int) else size[0])


def export_onnx(
    model_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    token_selection: str | None = None,
    opset_version: int | None = None,
    check: bool = True,
    revision: str | None = None,
) -> Path:
    """Export the model saved in `model_dir` (a folder or Hub id) to `output_dir/model.onnx`, with its config and
    image processor; returns `output_dir`. `output_dir` must not exist (finished work is never overwritten). With
    `check` (and onnxruntime installed), ONNX Runtime's logits must match PyTorch's to `ONNX_TOLERANCE` at batch 1
    and 3, else nothing is written."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    output_dir = Path(output_dir)
    if output_dir.exists():
        raise ValueError(f"{output_dir} exists: finished work is never overwritten; choose another folder.")
    if token_selection not in (None, "dense"):
        raise ValueError(f"token_selection for the export: None (the model's) or 'dense', got {token_selection!r}.")
    config = AutoConfig.from_pretrained(model_dir, revision=revision)
    if getattr(config, "token_selection", "dense") == "mask" and token_selection != "dense":
        raise ValueError(
            f"{model_dir} reads token-sparse towers (token_selection='mask'): each sample keeps its own number of "
            "patches, a data-dependent shape an ONNX graph cannot hold. Export it dense (`--token_selection dense`: "
            "the same weights reading every patch; measure that first with `rvernet-hf evaluate`)."
        )
    overrides = {"token_selection": "dense"} if token_selection == "dense" else {}
    model = AutoModelForImageClassification.from_pretrained(
        model_dir, revision=revision, attn_implementation="eager", **overrides
    )
    model = model.float().eval()
    names, side = _inputs_of(model)
    graph = (_PairLogits if len(names) == 2 else _SingleLogits)(model).eval()  # exported as it is served
    example = tuple(torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0)) for _ in names)
    batch = torch.export.Dim("batch", min=1, max=4096)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    try:
        program = torch.onnx.export(
            graph,
            example,
            dynamo=True,
            input_names=list(names),
            output_names=["logits"],
            dynamic_shapes={name: {0: batch} for name in names},
            opset_version=opset_version,
        )
        program.save(str(staging / "model.onnx"))
        written = graph_opset(staging / "model.onnx")
        if opset_version is not None and written != opset_version:
            raise ValueError(
                f"--opset {opset_version} was asked, but the exporter wrote opset {written} (torch's exporter writes "
                f"18 and later, and converts down only where its converter can): nothing was written. Ask for opset "
                f"{written} or later, or leave --opset out."
            )
        model.config.save_pretrained(staging)
        try:
            AutoImageProcessor.from_pretrained(model_dir, revision=revision).save_pretrained(staging)
        except (OSError, ValueError) as error:  # a model saved without a processor: the graph and config stand
            logger.warning(f"no image processor saved beside the graph: {model_dir} has none loadable ({error}).")
        if check:
            check_onnx_parity(staging / "model.onnx", graph, names, side)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # a folder like any other the package writes (mkdtemp's is owner-only)
        staging.rename(output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return output_dir


def graph_opset(onnx_path: str | os.PathLike) -> int:
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def check_onnx_parity(onnx_path: str | os.PathLike, graph, names, side: int, batches=(1, 3)) -> float:
    """The largest |ONNX Runtime - PyTorch| logit over random inputs at each batch size; refused above
    `ONNX_TOLERANCE`. Skipped (returns NaN) without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return float("nan")
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    generator = torch.Generator().manual_seed(1)
    for size in batches:
        inputs = [torch.randn(size, 3, side, side, generator=generator) for _ in names]
        with torch.no_grad():
            expected = graph(*inputs).numpy()
        (actual,) = session.run(["logits"], {name: value.numpy() for name, value in zip(names, inputs)})
        worst = max(worst, float(np.abs(actual - expected).max()))
    if worst > ONNX_TOLERANCE:
        raise ValueError(
            f"the exported graph's logits differ from PyTorch's by {worst:.2e} (> {ONNX_TOLERANCE}): not written."
        )
    return worst


__all__ = ["ONNX_TOLERANCE", "check_onnx_parity", "export_onnx", "graph_opset"]
