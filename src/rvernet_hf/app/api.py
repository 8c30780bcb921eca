# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""What `rvernet-hf app` serves: RveRNet on a web page (Gradio, what Hugging Face Spaces run). Drop a photo, click the food (or
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

`prompt_json` takes the prompted pipeline's prompts (`prompts_rvernet.PROMPT_KEYS`, checked by `RoiPrompt` as every
entry's are): `{"points": [[x, y], ...], "point_labels": [1, 0, ...]}` (1: the object, 0: not the object; default all
1), `{"box": [x0, y0, x1, y1]}` (with points too, as SAM allows), `{"mask": RLE}`, `{"all_objects": true}`,
`{"text": "sauce"}` (a SAM 3 segmenter), or `{}` for the automatic ROI. Coordinates
are pixels of the photo as stored (x right, y down). Each ROI's `mask` is COCO's uncompressed RLE: `{"size": [height,
width], "counts": [...]}`, run lengths of the flattened mask in column-major (Fortran) order, starting with a run of
zeros (possibly 0), which `pycocotools.mask.frPyObjects` reads; `rle_to_mask` here decodes it without pycocotools.

Bad input (an unreadable image, a click outside the photo, a zero-size box, a mask of another size, a text prompt for
a segmenter that takes none, malformed JSON) is refused with a message that names it, on the page and through the API
(`gradio_client` raises it); the server keeps serving. Uploads are capped at `MAX_FILE_SIZE`, requests wait in a queue
of at most `QUEUE_SIZE`, one runs at a time. The page listens on 127.0.0.1 unless `--host` says otherwise, and
`--share` (a public gradio.live link) is off unless asked for.

Clicking again on the same photo reuses its segmenter image embedding (the last `EMBEDDING_CACHE_IMAGES` photos are
kept): a second click runs only SAM's mask decoder, as in SAM's own demos. Every request runs through the prompted
pipeline (`pipeline_rvernet`), the one inference path; this module holds the app's state and its API, `page` the
Gradio page, and `serve` starts both.
"""

import json
import time
from typing import Any

import numpy as np

from ..image_utils_rvernet import load_image, mask_box
from ..paths_rvernet import check_local_path
from ..pipeline_rvernet import RveRNetImageClassificationPipeline
from ..prompts_rvernet import PROMPT_KEYS, RoiPrompt


MAX_FILE_SIZE = "20mb"
QUEUE_SIZE = 16
EMBEDDING_CACHE_IMAGES = 4
MAX_PREVIEWS = 8  # tower-input pictures shown for every-object results


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


def rle_to_mask(rle: Any, name: str = "mask", image_size: tuple[int, int] | None = None) -> np.ndarray:
    """COCO uncompressed RLE (as `mask_to_rle` writes it) -> a 2-D bool mask; refused, naming `name`, if malformed
    or, given the photo's `(height, width)`, if its declared size is not the photo's: checked before anything is
    decoded (a few bytes may declare gigabytes)."""
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise ValueError(
            f"{name} must be an RLE object {{'size': [height, width], 'counts': [...]}}, got {rle!r:.80}."
        )
    size, counts = rle["size"], rle["counts"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError(f"{name}['size'] must be [height, width] (positive integers), got {size!r}.")
    if image_size is not None and tuple(size) != tuple(image_size):
        raise ValueError(  # worded as a decoded mask of another size is (`check_mask`)
            f"{name} has size {size[1]}x{size[0]} (WxH, declared by its RLE) but the image is "
            f"{image_size[1]}x{image_size[0]}."
        )
    if not (isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts)):
        raise ValueError(f"{name}['counts'] must be a list of run lengths (integers >= 0).")
    if sum(counts) != size[0] * size[1]:
        raise ValueError(f"{name}['counts'] add up to {sum(counts)} pixels, not height x width = {size[0] * size[1]}.")
    values = np.arange(len(counts)) % 2 == 1  # runs alternate, zeros first
    return np.repeat(values, counts).reshape(size, order="F")


def parse_prompt(prompt: str | dict | RoiPrompt | None, image_size: tuple[int, int] | None = None) -> RoiPrompt:
    """The API's `prompt_json` (JSON text or a dict; empty: the automatic ROI) -> its `RoiPrompt`, checked as every
    entry's prompt is: the pipeline's keys (`PROMPT_KEYS`), a mask as COCO RLE (the API) or an array (the page's
    upload). Given the photo's `(height, width)`, an RLE's declared size is checked against it before it is
    decoded; whether the clicks and the box lie inside the photo is checked when the photo is read."""
    if isinstance(prompt, RoiPrompt):
        return prompt
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        return RoiPrompt()
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
    keywords = dict(prompt)
    if keywords.get("mask") is not None and not isinstance(keywords["mask"], np.ndarray):
        keywords["mask"] = rle_to_mask(keywords["mask"], "mask", image_size)
    return RoiPrompt.from_keywords(**keywords)


# ------------------------------------------------------------------------------------------------------ the app


class RveRNetApp:
    """What the page and the API run: one model, its processor and prompted pipeline, and its segmenter (loaded by
    the processor on the first prompt that needs it, its image embeddings cached per photo).

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

        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a whole number >= 1, got {top_k!r}.")
        check_local_path(model, "--model")
        check_local_path(sam_model_name_or_path, "--sam_model_name_or_path")
        config = AutoConfig.from_pretrained(model, revision=revision)
        if config.model_type != "rvernet":
            raise ValueError(f"{model} is a {config.model_type!r} model, not an RveRNet (model_type 'rvernet').")
        self.model_name = model
        self.model = AutoModelForImageClassification.from_pretrained(model, revision=revision).eval()
        self.processor = AutoImageProcessor.from_pretrained(model, revision=revision)
        if sam_model_name_or_path:
            self.processor.set_settings(sam_model_name_or_path=sam_model_name_or_path)
        self.pipeline = RveRNetImageClassificationPipeline(
            model=self.model, image_processor=self.processor, device=device
        )
        self.top_k = top_k
        self.examples = list(examples or [])
        self.embedding_cache = embedding_cache
        self._segmenter = None

    @property
    def segmenter_name(self) -> str:
        return self.processor.sam_model_name_or_path

    def segmenter(self):
        """The processor's segmenter (it loads it, once per process), with its embedding cache on."""
        if self._segmenter is None:
            segmenter = self.processor.get_segmenter()
            if hasattr(segmenter, "cache_embeddings"):
                segmenter.cache_embeddings(self.embedding_cache)
            self._segmenter = segmenter
        return self._segmenter

    def takes_text(self) -> bool | None:
        """Whether the segmenter takes text prompts (SAM 3), read from its config in its folder or the local Hub
        cache (never the network: the page must start offline); None when it is not there to read."""
        import os

        from huggingface_hub import try_to_load_from_cache

        from ..segmenters_rvernet import TEXT_FAMILIES

        name = self.segmenter_name
        path = (
            os.path.join(name, "config.json") if os.path.isdir(name) else try_to_load_from_cache(name, "config.json")
        )
        if not isinstance(path, str) or not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("model_type") in TEXT_FAMILIES

    def classify(self, image: Any, prompt: str | dict | RoiPrompt | None = None, top_k: int | None = None) -> dict:
        """One photo (path, PIL, array) and one prompt (`parse_prompt`'s forms) -> the API's JSON-ready result, plus
        `"_image"` and `"_masks"` (the photo and the bool masks, for the page; the API drops them). Raises
        `ValueError` naming bad input."""
        started = time.perf_counter()
        array = load_image(image, background=self.processor.pad_value)  # first: a mask's size is checked against it
        parsed = parse_prompt(prompt, image_size=array.shape[:2])
        read = time.perf_counter()
        if parsed.kind != "mask" and not (parsed.kind == "automatic" and self.processor.auto_roi == "center"):
            self.segmenter()  # its embedding cache on before the pipeline asks for it
        result = self.pipeline(array, prompt=parsed, top_k=top_k or self.top_k, return_timings=True)
        done = time.perf_counter()
        objects = result if isinstance(result, list) else [result]
        masks = [found["mask"] for found in objects]
        rois = [
            {"box": mask_box(mask), "labels": found["labels"], "mask": mask_to_rle(mask)}
            for mask, found in zip(masks, objects)
        ]
        stages = objects[0]["timings_s"]
        timings = {"read": read - started, "segment": stages["segment"], "classify": stages["classify"]}
        timings["total"] = done - started
        return {
            "prompt": parsed.kind,
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

        from ..visualization import roi_visualization

        pairs = list(zip(result["_masks"], result["rois"]))[:MAX_PREVIEWS]
        rows = [roi_visualization(result["_image"], mask, self.processor, labels=roi["labels"]) for mask, roi in pairs]
        canvas = Image.new("RGB", (max(row.width for row in rows), sum(row.height for row in rows)), "white")
        top = 0
        for row in rows:
            canvas.paste(row, (0, top))
            top += row.height
        return canvas


__all__ = [
    "EMBEDDING_CACHE_IMAGES",
    "MAX_FILE_SIZE",
    "QUEUE_SIZE",
    "RveRNetApp",
    "mask_to_rle",
    "parse_prompt",
    "rle_to_mask",
]
