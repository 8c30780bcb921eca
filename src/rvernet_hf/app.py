# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf app`: RveRNet on a web page (Gradio, what Hugging Face Spaces run). Drop a photo, click the food (or
draw a box from two clicks, upload a mask, ask for every object, or a concept with SAM 3), and read the label of each
region, with what each tower was shown and the time each stage took.

    rvernet-hf app                                   # the model `rvernet-hf demo` wrote, on http://127.0.0.1:7860
    rvernet-hf app --model you/rvernet --sam_model_name_or_path facebook/sam-vit-base --port 8000

The same app answers programs through its API endpoint `/classify(image, prompt_json)`:

    >>> from gradio_client import Client, handle_file
    >>> client = Client("http://127.0.0.1:7860/")
    >>> client.predict(handle_file("plate.jpg"), '{"points": [[120, 80]]}', api_name="/classify")
    {'prompt': 'points', 'image_size': [640, 480], 'rois': [{'box': [..], 'labels': [{'label': 'fries', ...}], 'mask': {..}}],
     'timings_s': {'read': 0.01, 'segment': 0.4, 'classify': 0.05, 'total': 0.46}}

`prompt_json` takes the prompted pipeline's prompts: `{"points": [[x, y], ...], "point_labels": [1, 0, ...]}` (1: the
object, 0: not the object; default all 1), `{"box": [x0, y0, x1, y1]}` (with points too, as SAM allows), `{"mask":
RLE}`, `{"all_objects": true}`, `{"text": "sauce"}` (a SAM 3 segmenter), or `{}` for the automatic ROI. Coordinates
are pixels of the photo as stored (x right, y down). Each ROI's `mask` is COCO's uncompressed RLE: `{"size": [height,
width], "counts": [...]}`, run lengths of the flattened mask in column-major (Fortran) order, starting with a run of
zeros (possibly 0), which `pycocotools.mask.frPyObjects` reads; `rle_to_mask` here decodes it without pycocotools.

Bad input (an unreadable image, a click outside the photo, a zero-size box, a mask of another size, a text prompt for
a segmenter that takes none, malformed JSON) is refused with a message that names it, on the page and through the API
(`gradio_client` raises it); the server keeps serving. Uploads are capped at `MAX_FILE_SIZE`, requests wait in a queue
of at most `QUEUE_SIZE`, one runs at a time. The page listens on 127.0.0.1 unless `--host` says otherwise, and
`--share` (a public gradio.live link) is off unless asked for.

Clicking again on the same photo reuses its segmenter image embedding (the last `EMBEDDING_CACHE_IMAGES` photos are
kept): a second click runs only SAM's mask decoder, as in SAM's own demos.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


logger = logging.getLogger(__name__)

MAX_FILE_SIZE = "20mb"
QUEUE_SIZE = 16
EMBEDDING_CACHE_IMAGES = 4
MAX_PREVIEWS = 8  # tower-input pictures shown for every-object results
MAX_EXAMPLES = 10
DEMO_FOLDER = Path("rvernet-demo")  # where `rvernet-hf demo` writes (its --output_dir default)
PROMPT_KEYS = ("points", "point_labels", "box", "mask", "all_objects", "text")


# ----------------------------------------------------------------------------------------------------- prompts


def mask_to_rle(mask: np.ndarray) -> dict:
    """A 2-D bool mask -> COCO uncompressed RLE `{"size": [h, w], "counts": [...]}` (column-major, zeros first)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_to_mask(rle: Any, name: str = "mask") -> np.ndarray:
    """COCO uncompressed RLE (as `mask_to_rle` writes it) -> a 2-D bool mask; refused, naming `name`, if malformed."""
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise ValueError(
            f"{name} must be an RLE object {{'size': [height, width], 'counts': [...]}}, got {rle!r:.80}."
        )
    size, counts = rle["size"], rle["counts"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError(f"{name}['size'] must be [height, width] (positive integers), got {size!r}.")
    if not (isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts)):
        raise ValueError(f"{name}['counts'] must be a list of run lengths (integers >= 0).")
    if sum(counts) != size[0] * size[1]:
        raise ValueError(f"{name}['counts'] add up to {sum(counts)} pixels, not height x width = {size[0] * size[1]}.")
    values = np.arange(len(counts)) % 2 == 1  # runs alternate, zeros first
    return np.repeat(values, counts).reshape(size, order="F")


def _numbers(value: Any, name: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value
    ):
        raise ValueError(f"{name} must be a list of numbers, got {value!r:.80}.")
    return [float(v) for v in value]


def parse_prompt(prompt: str | dict | None) -> dict:
    """The API's `prompt_json` (JSON text or a dict; empty: the automatic ROI) -> the prompted pipeline's keyword
    arguments, checked: known keys, clicks as `[[x, y], ...]` with 0/1 labels, a box `[x0, y0, x1, y1]` with
    `x1 > x0` and `y1 > y0`, one kind of prompt (points and a box may go together). Whether the clicks and the box lie
    inside the photo, and whether a mask has its size, is checked against the photo by the processor."""
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        return {}
    if isinstance(prompt, str):
        try:
            prompt = json.loads(prompt)
        except json.JSONDecodeError as error:
            raise ValueError(f"prompt_json is not valid JSON ({error.msg} at character {error.pos}).") from None
    if not isinstance(prompt, dict):
        raise ValueError(f'prompt_json must be a JSON object such as {{"points": [[x, y]]}}, got {prompt!r:.80}.')
    unknown = sorted(set(prompt) - set(PROMPT_KEYS))
    if unknown:
        raise ValueError(f"prompt_json has unknown keys {unknown}; the keys are {list(PROMPT_KEYS)}.")
    parsed: dict[str, Any] = {}
    if "points" in prompt:
        points = prompt["points"]
        if not isinstance(points, list) or not points:
            raise ValueError(f"points must be a non-empty list of [x, y] clicks, got {points!r:.80}.")
        parsed["points"] = [_numbers(point, f"points[{i}]") for i, point in enumerate(points)]
        if any(len(point) != 2 for point in parsed["points"]):
            raise ValueError(f"each click is [x, y], got {points!r:.80}.")
        labels = prompt.get("point_labels", [1] * len(points))
        if not isinstance(labels, list) or len(labels) != len(points) or any(v not in (0, 1) for v in labels):
            raise ValueError(
                f"point_labels must give 1 (the object) or 0 (not the object) for each of the {len(points)} clicks, "
                f"got {labels!r:.80}."
            )
        parsed["point_labels"] = [int(v) for v in labels]
    elif "point_labels" in prompt:
        raise ValueError("point_labels were given without points.")
    if "box" in prompt:
        box = _numbers(prompt["box"], "box")
        if len(box) != 4:
            raise ValueError(f"box must be [x0, y0, x1, y1], got {prompt['box']!r:.80}.")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"box {prompt['box']} has zero or negative size: it needs x1 > x0 and y1 > y0.")
        parsed["box"] = box
    if "mask" in prompt:  # RLE (the API), or an array (the page's upload)
        mask = prompt["mask"]
        parsed["mask"] = mask if isinstance(mask, np.ndarray) else rle_to_mask(mask, "mask")
    if prompt.get("all_objects") not in (None, True, False):
        raise ValueError(f"all_objects must be true or false, got {prompt['all_objects']!r}.")
    if prompt.get("all_objects"):
        parsed["all_objects"] = True
    if "text" in prompt:
        if not isinstance(prompt["text"], str) or not prompt["text"].strip():
            raise ValueError(f"text must be a concept such as 'sauce' (a non-empty string), got {prompt['text']!r}.")
        parsed["text"] = prompt["text"].strip()
    kinds = [kind for kind in ("mask", "all_objects", "text") if kind in parsed]
    if len(kinds) + bool("points" in parsed or "box" in parsed) > 1:
        given = [key for key in ("points", "box", "mask", "all_objects", "text") if key in parsed]
        raise ValueError(f"give one kind of prompt (clicks and a box may go together), got {given}.")
    return parsed


def prompt_kind(prompt: dict) -> str:
    for kind in ("mask", "all_objects", "text"):
        if kind in prompt:
            return kind
    if "box" in prompt:
        return "box+points" if "points" in prompt else "box"
    return "points" if "points" in prompt else "automatic"


# ------------------------------------------------------------------------------------------------------ the app


class RveRNetApp:
    """What the page and the API run: one model, its processor and prompted pipeline, and its segmenter (loaded on
    the first prompt that needs it, its image embeddings cached per photo).

    Args:
        model: a saved RveRNet folder or Hub id.
        sam_model_name_or_path: the segmenter for clicks, boxes, every object and text (default: the processor's).
        examples: `[(photo, mask or None), ...]` offered on the page.
    """

    def __init__(
        self,
        model: str,
        sam_model_name_or_path: str | None = None,
        revision: str | None = None,
        device: str | None = None,
        top_k: int = 5,
        examples: list[tuple[str, str | None]] | None = None,
        embedding_cache: int = EMBEDDING_CACHE_IMAGES,
    ):
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

        from .paths_rvernet import check_local_path
        from .pipeline_rvernet import RveRNetImageClassificationPipeline

        check_local_path(model, "--model")
        config = AutoConfig.from_pretrained(model, revision=revision)
        if config.model_type != "rvernet":
            raise ValueError(f"{model} is a {config.model_type!r} model, not an RveRNet (model_type 'rvernet').")
        self.model_name = model
        self.model = AutoModelForImageClassification.from_pretrained(model, revision=revision).eval()
        self.processor = AutoImageProcessor.from_pretrained(model, revision=revision)
        if sam_model_name_or_path:
            check_local_path(sam_model_name_or_path, "--sam_model_name_or_path")
            self.processor.sam_model_name_or_path = sam_model_name_or_path
        self.pipeline = RveRNetImageClassificationPipeline(
            model=self.model, image_processor=self.processor, device=device
        )
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}.")
        self.top_k = int(top_k)
        self.examples = list(examples or [])
        self.embedding_cache = embedding_cache
        self._segmenter = None

    @property
    def segmenter_name(self) -> str:
        return self.processor.sam_model_name_or_path

    def segmenter(self):
        """The segmenter, loaded once, with its embedding cache on (a given segmenter is used as it is)."""
        if self._segmenter is None:
            from .segmenters_rvernet import load_segmenter

            settings = self.processor.segmenter_settings
            segmenter = load_segmenter(settings.model_name_or_path, settings.revision, settings.device, settings.dtype)
            if hasattr(segmenter, "cache_embeddings"):
                segmenter.cache_embeddings(self.embedding_cache)
            self.processor.set_sam_model(segmenter)
            self._segmenter = segmenter
        return self._segmenter

    def takes_text(self) -> bool | None:
        """Whether the segmenter takes text prompts (SAM 3), read from its config in its folder or the local Hub
        cache (never the network: the page must start offline); None when it is not there to read."""
        import os

        from huggingface_hub import try_to_load_from_cache

        from .segmenters_rvernet import TEXT_FAMILIES

        name = self.segmenter_name
        path = (
            os.path.join(name, "config.json") if os.path.isdir(name) else try_to_load_from_cache(name, "config.json")
        )
        if not isinstance(path, str) or not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("model_type") in TEXT_FAMILIES

    def find_masks(self, image: np.ndarray, prompt: dict) -> list[np.ndarray]:
        """The ROI masks of one photo for one parsed prompt (the segmenter runs only when the prompt needs it)."""
        kwargs: dict[str, Any] = {"roi_masks": [prompt["mask"]]} if "mask" in prompt else {}
        if "points" in prompt or "box" in prompt:
            kwargs = {
                "input_points": [prompt.get("points")],
                "input_labels": [prompt.get("point_labels")],
                "input_boxes": [prompt.get("box")],
            }
        if "all_objects" in prompt or "text" in prompt:
            kwargs = {"all_objects": "all_objects" in prompt, "text": prompt.get("text")}
        needs_segmenter = "mask" not in prompt and not (
            prompt_kind(prompt) == "automatic" and self.processor.auto_roi == "center"
        )
        if needs_segmenter:
            self.segmenter()
        _, masks = self.processor.compute_roi_masks([image], **kwargs)
        return masks[0]

    def classify(self, image: Any, prompt: str | dict | None = None, top_k: int | None = None) -> dict:
        """One photo (path, PIL, array) and one prompt (`parse_prompt`'s forms) -> the API's JSON-ready result, plus
        `"_masks"` (the bool masks, for the page; the API drops it). Raises `ValueError` naming bad input."""
        from .image_utils_rvernet import load_image, mask_box

        started = time.perf_counter()
        parsed = parse_prompt(prompt)
        array = load_image(image, background=self.processor.pad_value)
        read = time.perf_counter()
        masks = self.find_masks(array, parsed)
        segmented = time.perf_counter()
        predictions = self.pipeline(
            [{"image": array, "mask": mask} for mask in masks], top_k=top_k or self.top_k, batch_size=8
        )
        done = time.perf_counter()
        rois = [
            {"box": mask_box(mask), "labels": prediction["labels"], "mask": mask_to_rle(mask)}
            for mask, prediction in zip(masks, predictions)
        ]
        timings = {"read": read - started, "segment": segmented - read, "classify": done - segmented}
        timings["total"] = done - started
        return {
            "prompt": prompt_kind(parsed),
            "image_size": [int(array.shape[1]), int(array.shape[0])],
            "rois": rois,
            "timings_s": {name: round(seconds, 4) for name, seconds in timings.items()},
            "_image": array,
            "_masks": masks,
        }

    def api_result(self, result: dict) -> dict:
        return {key: value for key, value in result.items() if not key.startswith("_")}

    def tower_inputs(self, result: dict):
        """What each tower was shown, one row per ROI (at most `MAX_PREVIEWS`), as `save_roi_visualization` draws it:
        one PIL image."""
        from PIL import Image

        from .visualization import roi_visualization

        pairs = list(zip(result["_masks"], result["rois"]))[:MAX_PREVIEWS]
        rows = [roi_visualization(result["_image"], mask, self.processor, labels=roi["labels"]) for mask, roi in pairs]
        canvas = Image.new("RGB", (max(row.width for row in rows), sum(row.height for row in rows)), "white")
        top = 0
        for row in rows:
            canvas.paste(row, (0, top))
            top += row.height
        return canvas


def demo_examples(model: str | Path, limit: int = MAX_EXAMPLES) -> list[tuple[str, str | None]]:
    """When `model` is the folder `rvernet-hf demo` wrote (`<root>/rvernet`), the benchmark's test photos with their
    exact masks (`<root>/data/test`, `test_masks`), a few per class; else none."""
    root = Path(model).parent
    photos, masks = root / "data" / "test", root / "data" / "test_masks"
    if Path(model).name != "rvernet" or not photos.is_dir() or not masks.is_dir():
        return []
    classes = sorted(path for path in photos.iterdir() if path.is_dir())
    per_class = [sorted(folder.glob("*.png")) for folder in classes]
    examples = []
    for rank in range(max((len(files) for files in per_class), default=0)):
        for files in per_class:
            if rank < len(files) and len(examples) < limit:
                photo = files[rank]
                mask = masks / photo.parent.name / photo.name
                examples.append((str(photo), str(mask) if mask.is_file() else None))
    return examples


def default_model() -> str | None:
    folder = DEMO_FOLDER / "rvernet"
    return str(folder) if (folder / "config.json").is_file() else None


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="rvernet-hf app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=f"a saved RveRNet folder or Hub id (default: {DEMO_FOLDER}/rvernet)")
    parser.add_argument("--revision", help="the model's branch, tag or commit (Hub ids)")
    parser.add_argument("--sam_model_name_or_path", help="the segmenter for clicks/boxes (default: the processor's)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the pipeline's choice)")
    parser.add_argument("--top_k", type=int, default=5, help="labels shown per ROI")
    return parser


def make_app(args: argparse.Namespace) -> RveRNetApp | None:
    """The app for parsed arguments; None (after saying why) when no model is given and the demo's is absent."""
    model = args.model or default_model()
    if model is None:
        print(
            f"no model: run `rvernet-hf demo` first (it writes {DEMO_FOLDER}/rvernet), or pass --model FOLDER_OR_ID.",
            file=sys.stderr,
        )
        return None
    return RveRNetApp(
        model,
        sam_model_name_or_path=args.sam_model_name_or_path,
        revision=args.revision,
        device=args.device,
        top_k=args.top_k,
        examples=demo_examples(model),
    )


def launch(app: RveRNetApp, host: str | None = "127.0.0.1", port: int | None = 7860, share: bool = False, **kwargs):
    """Serve the page: a bounded queue, one request at a time, uploads capped at `MAX_FILE_SIZE`. `host`/`port` None:
    Gradio's environment variables (`GRADIO_SERVER_NAME`, `GRADIO_SERVER_PORT`, which Spaces set) or its defaults."""
    from .app_page import build_page, page_css

    page = build_page(app)
    page.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return page.launch(
        server_name=host, server_port=port, share=share, max_file_size=MAX_FILE_SIZE, css=page_css(), **kwargs
    )


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    args = args if args is not None else build_parser().parse_args(argv)
    app = make_app(args)
    if app is None:
        return 2
    launch(app, host=args.host, port=args.port, share=args.share)
    return 0


__all__ = [
    "MAX_FILE_SIZE",
    "QUEUE_SIZE",
    "RveRNetApp",
    "demo_examples",
    "launch",
    "main",
    "mask_to_rle",
    "parse_prompt",
    "rle_to_mask",
]
