# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The prompted RveRNet pipeline: classify the object you point at (a box, clicks, or a mask) and get back the mask
that was used. The one inference path of the package: `rvernet-hf predict` and the app run it too. Uploaded next to
the weights (remote code): imports only numpy, torch and transformers.

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

import time
from typing import Any

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .image_utils_rvernet import load_image
from .prompts_rvernet import PROMPT_KEYS, RoiPrompt


PIPELINE_TASK = "rvernet-image-classification"
TOKEN_MASKS = ("roi_token_mask", "context_token_mask")
MANY_OBJECTS = ("all_objects", "text")  # prompt kinds whose result is a list of objects
STAGES = ("read", "segment", "classify")


class RveRNetImageClassificationPipeline(ChunkPipeline):
    """Image classification of the prompted object of each image, or of every object (`all_objects=True`).

    Inputs: an image (path, PIL, numpy, torch) with its prompt as keyword arguments (`PROMPT_KEYS`: `box=[x0, y0,
    x1, y1]`, `points=[[x, y], ...]` with optional `point_labels` (1 the object, 0 not), `mask=`, `text=`,
    `all_objects=True`) or as one `prompt=RoiPrompt(...)`, or dicts `{"image": ..., "box": ...}` (one per image, for
    batches with a prompt each). One object per input: its prompt is checked (`RoiPrompt`) before any image is read.
    Returns, per image, `{"labels": [{"label", "score"}, ...], "mask": bool array at the image's size, "prompt": the
    prompt's kind}`; with `all_objects=True`, or with `text="sauce"` (a concept; needs a SAM 3 segmenter), a list of
    `{"box", "mask", "labels"}`, one per object. Each ROI is one chunk, so `batch_size` batches ROIs across images
    whatever their number per image. `top_k` labels per ROI (default 5). `return_timings=True` adds `"timings_s"`:
    `{"read", "segment", "classify"}` seconds for the photo (decoding and checking it; the segmenter; the cut-outs
    and the model, its share of each batch), the same for each object of a photo.
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

    def _sanitize_parameters(self, top_k=None, return_timings=None, prompt=None, timeout=None, **prompts):
        unknown = set(prompts) - set(PROMPT_KEYS)
        if unknown:
            raise ValueError(
                f"unknown arguments {sorted(unknown)}; prompts are {PROMPT_KEYS} (or `prompt`, a RoiPrompt), plus "
                "top_k and return_timings."
            )
        preprocess = {key: value for key, value in prompts.items() if value is not None}
        if prompt is not None:
            preprocess["prompt"] = prompt
        postprocess = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a whole number >= 1 (labels per ROI), got {top_k!r}.")
            postprocess["top_k"] = top_k
        if return_timings is not None:
            postprocess["return_timings"] = bool(return_timings)
        return preprocess, {}, postprocess

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any):
        """As every pipeline; a list of inputs has each one's prompt checked (keys, nesting, values, one kind)
        before any image is read or the model runs, so that a bad prompt of the tenth image fails first."""
        if isinstance(inputs, (list, tuple)):
            for index, item in enumerate(inputs):
                _image_and_prompt(item, kwargs, index)
        return super().__call__(inputs, *args, **kwargs)

    def preprocess(self, inputs: Any, **given):
        started = time.perf_counter()
        image, prompt = _image_and_prompt(inputs, given)
        processor = self.image_processor
        array = load_image(image, 0, background=processor.pad_value)
        read = time.perf_counter()
        arrays, masks = processor.compute_roi_masks([array], prompts=[prompt])
        segmented = time.perf_counter()
        # A model that reads selected tokens (token_selection="mask") needs each tower's token mask: made on the
        # towers' patch grids when the processor does not carry them already.
        options = {}
        if getattr(self.model.config, "token_selection", "dense") == "mask" and not processor.patch_size:
            options["patch_size"] = self.model.token_patch_sizes
        features = processor.cutouts(arrays, masks, **options)
        stages = {"read_s": read - started, "segment_s": segmented - read, "cutout_s": time.perf_counter() - segmented}
        count = len(masks[0])
        for k in range(count):  # one chunk per ROI
            chunk = {
                "roi_pixel_values": features["roi_pixel_values"][k : k + 1].to(self.dtype),
                "context_pixel_values": features["context_pixel_values"][k : k + 1].to(self.dtype),
                "roi_mask": masks[0][k],
                "roi_box": features["roi_boxes"][k : k + 1],
                "prompt": prompt.kind,
                "is_last": k == count - 1,
                **stages,
            }
            for name in TOKEN_MASKS:
                if name in features:
                    chunk[name] = features[name][k : k + 1]
            yield chunk

    def _forward(self, model_inputs):
        names = self.image_processor.model_input_names  # what the model reads; the rest is passed through
        started = time.perf_counter()
        outputs = self.model(**{k: v for k, v in model_inputs.items() if k in names})
        count = outputs.logits.shape[0]
        share = torch.full((count,), (time.perf_counter() - started) / count)  # each chunk's share of the batch
        passed = {k: v for k, v in model_inputs.items() if k not in names}
        return {"logits": outputs.logits, "model_s": share, **passed}

    def _labels(self, logits: torch.Tensor, top_k: int) -> list[dict]:
        logits = logits[0] if logits.ndim == 2 else logits
        scores = torch.softmax(logits.float(), dim=-1)
        values, indices = scores.topk(min(int(top_k), scores.numel()))
        return [{"label": self.model.config.id2label[int(i)], "score": float(v)} for v, i in zip(values, indices)]

    @staticmethod
    def _one(value):
        """A chunk's entry as the chunk saw it (batching wraps non-tensor entries in a list of one)."""
        return value[0] if isinstance(value, list) else value

    def _mask(self, chunk) -> np.ndarray:
        mask = np.asarray(self._one(chunk["roi_mask"]), dtype=bool)
        return mask.reshape(mask.shape[-2:])

    def postprocess(self, model_outputs, top_k: int = 5, return_timings: bool = False):
        chunks = model_outputs if isinstance(model_outputs, list) else [model_outputs]
        extra = {}
        if return_timings:
            first = chunks[0]
            classify = float(self._one(first["cutout_s"])) + sum(float(chunk["model_s"].sum()) for chunk in chunks)
            seconds = {
                "read": self._one(first["read_s"]),
                "segment": self._one(first["segment_s"]),
                "classify": classify,
            }
            extra["timings_s"] = {stage: round(float(value), 6) for stage, value in seconds.items()}
        if self._one(chunks[0]["prompt"]) in MANY_OBJECTS:  # every object (or instance) of one photo
            return [
                {
                    "box": [int(v) for v in chunk["roi_box"].reshape(-1)],
                    "mask": self._mask(chunk),
                    "labels": self._labels(chunk["logits"], top_k),
                    **extra,
                }
                for chunk in chunks
            ]
        chunk = chunks[0]
        return {
            "labels": self._labels(chunk["logits"], top_k),
            "mask": self._mask(chunk),
            "prompt": self._one(chunk["prompt"]),
            **extra,
        }


def _image_and_prompt(inputs: Any, given: dict, index: int = 0) -> tuple[Any, RoiPrompt]:
    """One input (an image, or a dict `{"image": ..., "box": ...}` whose prompt replaces the call's keywords) -> the
    image and its `RoiPrompt` (one object: `RoiPrompt.from_keywords`), checked."""
    keywords = {key: given[key] for key in PROMPT_KEYS if given.get(key) is not None}
    prompt = given.get("prompt")
    if isinstance(inputs, dict):
        unknown = set(inputs) - {"image", "prompt", *PROMPT_KEYS}
        if "image" not in inputs or unknown:
            raise ValueError(
                f"a dict input needs an 'image' and optional {PROMPT_KEYS} (or 'prompt'); got keys {sorted(inputs)}."
            )
        keywords.update({key: inputs[key] for key in PROMPT_KEYS if inputs.get(key) is not None})
        prompt = inputs.get("prompt", prompt)
        inputs = inputs["image"]
    if prompt is None:
        return inputs, RoiPrompt.from_keywords(**keywords, index=index)
    if not isinstance(prompt, RoiPrompt) or keywords:
        raise ValueError("give one prompt per image: `prompt` (a RoiPrompt) or the prompt keywords, not both.")
    if prompt.num_rois not in (None, 1):
        raise ValueError(
            f"the pipeline classifies one object per input; the prompt of image {index} names {prompt.num_rois}."
        )
    return inputs, prompt
