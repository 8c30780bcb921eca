# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Look at what the model sees: the photo with its ROI outlined, the ROI cut-out and the context cut-out."""

import os
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from .image_processing_rvernet import RveRNetImageProcessor
from .image_utils_rvernet import load_image, load_mask
from .run_folder import replaced_atomically


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of the mask within `width` of its border."""
    edge = np.zeros_like(mask)
    inner = mask.copy()
    for _ in range(max(1, width)):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        edge |= inner & ~shrunk
        inner = shrunk
    return edge


def denormalize(pixel_values: torch.Tensor, mean, std, do_normalize: bool = True) -> np.ndarray:
    """A (3, H, W) model input back to an RGB uint8 picture (hidden pixels show as their fill value does)."""
    values = pixel_values.detach().float().cpu()
    if do_normalize:
        values = values * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return (values.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _bars_panel(labels: list[dict], height: int, width: int = 240) -> Image.Image:
    """Top-k scores as horizontal bars (label and score written on each)."""
    panel = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(panel)
    row = max(14, min(28, height // max(1, len(labels))))
    for i, entry in enumerate(labels):
        top = i * row + 2
        draw.rectangle([0, top, int((width - 2) * float(entry["score"])), top + row - 4], fill=(120, 160, 230))
        draw.text((3, top + 1), f"{entry['label']}  {float(entry['score']):.2f}", fill=(0, 0, 0))
    return panel


def roi_visualization(
    image: Any, mask: Any, processor: RveRNetImageProcessor, panel_height: int = 224, labels: list[dict] | None = None
) -> Image.Image:
    """One picture: [photo with the ROI outlined in red | ROI cut-out | context cut-out (| top-k bars)], as the towers
    see them. `labels`: a prediction (`[{"label", "score"}, ...]`) to draw as bars."""
    array = load_image(image, background=processor.pad_value)
    mask = load_mask(mask, 0, array.shape[:2], allow_full=True)
    roi, context, _ = processor.make_cutouts(array, mask)
    outlined = array.copy()
    outlined[_outline(mask, max(1, min(array.shape[:2]) // 150))] = (255, 0, 0)
    panels = [
        Image.fromarray(outlined),
        Image.fromarray(denormalize(roi, processor.roi_image_mean, processor.roi_image_std, processor.do_normalize)),
        Image.fromarray(
            denormalize(context, processor.context_image_mean, processor.context_image_std, processor.do_normalize)
        ),
    ]
    panels = [p.resize((max(1, round(p.width * panel_height / p.height)), panel_height)) for p in panels]
    titles = ["image + ROI", "ROI tower input", "context tower input"]
    if labels:
        panels.append(_bars_panel(labels, panel_height))
        titles.append("prediction")
    canvas = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), panel_height + 16), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for panel, title in zip(panels, titles):
        canvas.paste(panel, (x, 16))
        draw.text((x + 2, 2), title, fill=(0, 0, 0))
        x += panel.width + 8
    return canvas


def save_roi_visualization(
    image: Any, mask: Any, processor: RveRNetImageProcessor, path: str | os.PathLike, labels: list[dict] | None = None
) -> str:
    """Write `roi_visualization(...)` as a PNG (atomically: a half-written file never replaces a good one)."""
    path = os.fspath(path)
    with replaced_atomically(path) as temporary:
        roi_visualization(image, mask, processor, labels=labels).save(temporary, format="PNG")
    return path


# Distinct colours for regions (tab10), cycled.
REGION_COLOURS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def objects_visualization(image: Any, objects: list[dict], background: int = 125) -> Image.Image:
    """The photo with every object (`{"box", "mask", "labels"}`, as the pipeline's `all_objects=True` returns them)
    tinted and outlined in its own colour, numbered, with its top label and score written at its centroid."""
    array = load_image(image, background=background).astype(np.float32)
    width = max(1, min(array.shape[:2]) // 150)
    edges = []
    for k, found in enumerate(objects):
        colour = np.array(REGION_COLOURS[k % len(REGION_COLOURS)], dtype=np.float32)
        mask = np.asarray(found["mask"], dtype=bool)
        array[mask] = 0.65 * array[mask] + 0.35 * colour
        edges.append((_outline(mask, width), colour))
    for edge, colour in edges:  # outlines on top of every tint
        array[edge] = colour
    picture = Image.fromarray(array.round().clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for k, found in enumerate(objects):
        best = found["labels"][0] if found["labels"] else {"label": "?", "score": 0.0}
        text = f"{k + 1}: {best['label']} {float(best['score']):.2f}"
        rows, cols = np.nonzero(np.asarray(found["mask"], dtype=bool))
        # the label sits at the object's centroid (inside the object for compact shapes), kept on the picture
        left, top, right, bottom = draw.textbbox((0, 0), text)
        x = int(np.clip(cols.mean() - (right - left) / 2, 0, max(0, picture.width - (right - left) - 2)))
        y = int(np.clip(rows.mean() - (bottom - top) / 2, 0, max(0, picture.height - (bottom - top) - 2)))
        left, top, right, bottom = draw.textbbox((x, y), text)
        draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=REGION_COLOURS[k % len(REGION_COLOURS)])
        draw.text((x, y), text, fill=(255, 255, 255))
    return picture


def save_objects_visualization(image: Any, objects: list[dict], path: str | os.PathLike, background: int = 125) -> str:
    """Write `objects_visualization(...)` as a PNG, atomically."""
    path = os.fspath(path)
    with replaced_atomically(path) as temporary:
        objects_visualization(image, objects, background).save(temporary, format="PNG")
    return path


def save_training_curves(log_history: list[dict], path: str | os.PathLike) -> str | None:
    """Training curves from `trainer.state.log_history`: the losses (total, task, distillation) per step on the left,
    the evaluation metrics per step on the right. Written atomically; returns None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_keys = ("loss", "task_loss", "distillation_loss")
    eval_keys = ("eval_loss", "eval_accuracy", "eval_macro_f1", "eval_ambiguous_f1")
    series: dict[str, list[tuple[int, float]]] = {}
    for entry in log_history:
        for key in (*train_keys, *eval_keys):
            if key in entry and "step" in entry:
                series.setdefault(key, []).append((entry["step"], float(entry[key])))
    if not series:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, keys, title in ((left, train_keys, "training loss"), (right, eval_keys, "evaluation")):
        for key in keys:
            if key in series:
                steps, values = zip(*series[key])
                axis.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
        axis.set_xlabel("step")
        axis.set_title(title)
        if axis.lines:
            axis.legend(fontsize=8)
    figure.tight_layout()
    path = str(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with replaced_atomically(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return path


def save_mask_robustness_plot(results: dict, path: str | os.PathLike) -> str:
    """Accuracy against mean IoU (`results`: model name -> {"rows": `evaluate_mask_perturbations` rows}), written
    atomically to `path`: per model one colour; each family with a strength (erode, dilate, shift, noise) a
    line from the exact masks outwards, the others (box, disk, another object's mask) single markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"erode": "-", "dilate": "--", "shift": ":", "noise": "-."}
    markers = {"box": "s", "disk": "D", "other": "X"}
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for number, (name, result) in enumerate(results.items()):
        colour = f"C{number}"
        rows = result["rows"]
        exact = next((row for row in rows if row["perturbation"] == "none"), None)
        for family, style in styles.items():
            line = [row for row in rows if row["perturbation"].split(":")[0] == family]
            line = ([exact] if exact else []) + sorted(line, key=lambda row: -row["mean_iou"])
            if len(line) > 1:
                axis.plot(
                    [r["mean_iou"] for r in line], [r["accuracy"] for r in line], style, color=colour, marker="o"
                )
        for family, marker in markers.items():
            for row in rows:
                if row["perturbation"] == family:
                    axis.plot(row["mean_iou"], row["accuracy"], marker, color=colour, markersize=8)
        axis.plot([], [], color=colour, linewidth=6, label=name)
    for family, style in styles.items():
        axis.plot([], [], style, color="grey", label=family)
    for family, marker in markers.items():
        axis.plot([], [], marker, color="grey", label=family)
    axis.set_xlabel("mean IoU of the masks to the exact ones")
    axis.set_ylabel("accuracy")
    axis.set_title("When the mask is wrong")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    with replaced_atomically(path) as partial:
        figure.savefig(partial, format="png", dpi=110)
    plt.close(figure)
    return str(path)
