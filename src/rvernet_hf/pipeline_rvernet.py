# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The prompted RveRNet pipeline: classify the object you point at (a box, clicks, or a mask) and get back the mask
that was used. Uploaded next to the weights (remote code): imports only numpy, torch and transformers.

    >>> from transformers import pipeline
    >>> classifier = pipeline("rvernet-image-classification", model="folder-or-hub-id", trust_remote_code=True)
    >>> classifier("photo.jpg", box=[60, 40, 220, 180])
    {'labels': [{'label': 'ketchup', 'score': 0.91}, ...], 'mask': array([[False, ...]]), 'prompt': 'box'}
    >>> classifier([{"image": "a.jpg", "points": [[120, 80]]}, {"image": "b.jpg", "mask": "b_mask.png"}], top_k=3)

Without a prompt the processor's automatic ROI is used (SAM's most salient mask), as in the plain
`pipeline("image-classification")`. With `all_objects=True` every object of the photo is labelled: the result is a
list of `{"box": [x0, y0, x1, y1], "mask": bool array, "labels": [{"label", "score"}, ...]}`, one per object, in the
spirit of transformers' object-detection pipeline.

    >>> classifier("plate.jpg", all_objects=True, top_k=1)
    [{'box': [12, 40, 96, 120], 'mask': array(...), 'labels': [{'label': 'fries', 'score': 0.87}]}, ...]
"""

from typing import Any

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .prompts_rvernet import normalize_box_prompts, normalize_point_prompts


PIPELINE_TASK = "rvernet-image-classification"
PROMPT_KEYS = ("box", "points", "point_labels", "mask", "text")
TOKEN_MASKS = ("roi_token_mask", "context_token_mask")


class RveRNetImageClassificationPipeline(ChunkPipeline):
    """Image classification of the prompted object of each image, or of every object (`all_objects=True`).

    Inputs: an image (path, URL-free file, PIL, numpy, torch) with prompts as keyword arguments (`box=[x0, y0, x1, y1]`,
    `points=[[x, y], ...]` with optional `point_labels`, or `mask=`), or dicts `{"image": ..., "box": ...}` (one per
    image, for batches with a prompt each). Returns, per image, `{"labels": [{"label", "score"}, ...], "mask": bool
    array at the image's size, "prompt": "box" | "points" | "mask" | "automatic"}`; with `all_objects=True`, or with
    `text="sauce"` (a concept; needs a SAM 3 segmenter), a list of `{"box", "mask", "labels"}`, one per object. Each ROI is one chunk, so `batch_size` batches ROIs across images
    whatever their number per image.
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        model_type = getattr(self.model.config, "model_type", None)
        if model_type != "rvernet":  # refused before any photo is read, naming the checkpoint
            where = getattr(self.model.config, "_name_or_path", None) or type(self.model).__name__
            raise ValueError(
                f"{where}: config.json has model_type {model_type!r}, not 'rvernet': this pipeline needs an RveRNet. "
                "A single image classifier runs in pipeline('image-classification') on whole photos."
            )

    def _sanitize_parameters(
        self, top_k=None, box=None, points=None, point_labels=None, mask=None, all_objects=None, text=None, **kwargs
    ):
        given = {"box": box, "points": points, "point_labels": point_labels, "mask": mask, "all_objects": all_objects}
        given["text"] = text
        preprocess = {key: value for key, value in given.items() if value is not None}
        unknown = set(kwargs) - {"timeout"}
        if unknown:
            raise ValueError(f"unknown arguments {sorted(unknown)}; prompts are {PROMPT_KEYS}, all_objects and top_k.")
        postprocess = {"top_k": top_k} if top_k is not None else {}
        return preprocess, {}, postprocess

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any):
        """As every pipeline; a list of inputs has each one's prompt checked (keys, nesting, one prompt per image)
        before any image is read or the model runs, so that a bad prompt of the tenth image fails first."""
        if isinstance(inputs, (list, tuple)):
            defaults = {key: kwargs[key] for key in PROMPT_KEYS if key in kwargs}
            for index, item in enumerate(inputs):
                _, prompts = _image_and_prompts(item, defaults)
                if prompts["box"] is not None:
                    normalize_box_prompts(prompts["box"], index)
                if prompts["points"] is not None:
                    normalize_point_prompts(prompts["points"], prompts["point_labels"], index)
        return super().__call__(inputs, *args, **kwargs)

    def preprocess(self, inputs: Any, all_objects=False, **given):
        inputs, prompts = _image_and_prompts(inputs, given)
        box, points, point_labels = prompts["box"], prompts["points"], prompts["point_labels"]
        mask, text = prompts["mask"], prompts["text"]
        prompt = (
            "mask"
            if mask is not None
            else "box"
            if box is not None
            else "points"
            if points is not None
            else "automatic"
        )
        # A model that reads selected tokens (token_selection="mask") needs each tower's token mask: made on the
        # towers' patch grids when the processor does not carry them already.
        options = {"return_tensors": "pt", "return_roi_masks": True}
        if getattr(self.model.config, "token_selection", "dense") == "mask" and not self.image_processor.patch_size:
            options["patch_size"] = self.model.token_patch_sizes
        if all_objects or text is not None:
            mode = "all_objects" if all_objects else "text"
            if prompt != "automatic" or (all_objects and text is not None):
                given = "text" if prompt == "automatic" else prompt
                raise ValueError(f"`{mode}` finds the objects itself: the `{given}` prompt cannot be given with it.")
            features = self.image_processor(images=[inputs], all_objects=all_objects, text=text, **options)
            prompt = mode
        else:
            features = self.image_processor(
                images=[inputs],
                roi_masks=[mask],
                input_boxes=[box],
                input_points=[points],
                input_labels=[point_labels],
                **options,
            )
            features["roi_masks"] = features["roi_masks"][:1]
        count = len(features["roi_masks"])
        for k in range(count):  # one chunk per ROI
            chunk = {
                "roi_pixel_values": features["roi_pixel_values"][k : k + 1].to(self.dtype),
                "context_pixel_values": features["context_pixel_values"][k : k + 1].to(self.dtype),
                "roi_mask": np.asarray(features["roi_masks"][k], dtype=bool),
                "prompt": prompt,
                "is_last": k == count - 1,
            }
            for name in TOKEN_MASKS:
                if name in features:
                    chunk[name] = features[name][k : k + 1]
            if "roi_boxes" in features:
                chunk["roi_box"] = features["roi_boxes"][k : k + 1]
            yield chunk

    def _forward(self, model_inputs):
        names = self.image_processor.model_input_names  # what the model reads; the rest is passed through
        outputs = self.model(**{k: v for k, v in model_inputs.items() if k in names})
        return {"logits": outputs.logits, **{k: v for k, v in model_inputs.items() if k not in names}}

    def _labels(self, logits: torch.Tensor, top_k: int) -> list[dict]:
        logits = logits[0] if logits.ndim == 2 else logits
        scores = torch.softmax(logits.float(), dim=-1)
        values, indices = scores.topk(min(int(top_k), scores.numel()))
        return [{"label": self.model.config.id2label[int(i)], "score": float(v)} for v, i in zip(values, indices)]

    @staticmethod
    def _one(value):
        """A chunk's entry as the chunk saw it (batching wraps non-tensor entries in a list of one)."""
        return value[0] if isinstance(value, list) else value

    def postprocess(self, model_outputs, top_k: int = 5):
        chunks = model_outputs if isinstance(model_outputs, list) else [model_outputs]
        if self._one(chunks[0]["prompt"]) in ("all_objects", "text"):  # every object (or instance) of one photo
            return [
                {
                    "box": [int(v) for v in chunk["roi_box"].reshape(-1)],
                    "mask": np.asarray(self._one(chunk["roi_mask"])).reshape(self._one(chunk["roi_mask"]).shape[-2:]),
                    "labels": self._labels(chunk["logits"], top_k),
                }
                for chunk in chunks
            ]
        chunk = chunks[0]
        mask = np.asarray(self._one(chunk["roi_mask"]))
        return {
            "labels": self._labels(chunk["logits"], top_k),
            "mask": mask.reshape(mask.shape[-2:]),
            "prompt": self._one(chunk["prompt"]),
        }


def _image_and_prompts(inputs: Any, given: dict) -> tuple[Any, dict]:
    """One input (an image, or a dict `{"image": ..., "box": ...}` whose prompts override `given`) -> (the image, its
    prompts `PROMPT_KEYS`), checked: known keys, one of a mask / a box / points, points as a list of clicks."""
    prompts = {key: given.get(key) for key in PROMPT_KEYS}
    if isinstance(inputs, dict):
        unknown = set(inputs) - {"image", *PROMPT_KEYS}
        if "image" not in inputs or unknown:
            raise ValueError(f"a dict input needs an 'image' and optional {PROMPT_KEYS}; got keys {sorted(inputs)}.")
        prompts.update({key: inputs[key] for key in PROMPT_KEYS if key in inputs})
        inputs = inputs["image"]
    if prompts["points"] is not None and np.asarray(prompts["points"]).ndim == 1:
        prompts["points"] = [prompts["points"]]  # one click
    if prompts["point_labels"] is None and prompts["points"] is not None:
        prompts["point_labels"] = [1] * len(prompts["points"])
    if prompts["mask"] is not None and (prompts["box"] is not None or prompts["points"] is not None):
        raise ValueError("give one prompt per image: a mask, a box, or points.")
    return inputs, prompts
