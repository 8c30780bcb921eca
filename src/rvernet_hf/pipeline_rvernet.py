# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The prompted RveRNet pipeline: classify the object you point at (a box, clicks, or a mask) and get back the mask
that was used. Uploaded next to the weights (remote code): imports only numpy, torch and transformers.

    >>> from transformers import pipeline
    >>> classifier = pipeline("rvernet-image-classification", model="folder-or-hub-id", trust_remote_code=True)
    >>> classifier("photo.jpg", box=[60, 40, 220, 180])
    {'labels': [{'label': 'ketchup', 'score': 0.91}, ...], 'mask': array([[False, ...]]), 'prompt': 'box'}
    >>> classifier([{"image": "a.jpg", "points": [[120, 80]]}, {"image": "b.jpg", "mask": "b_mask.png"}], top_k=3)

Without a prompt the processor's automatic ROI is used (SAM's most salient mask), as in the plain
`pipeline("image-classification")`.
"""

from typing import Any

import numpy as np
import torch
from transformers import Pipeline


PIPELINE_TASK = "rvernet-image-classification"
PROMPT_KEYS = ("box", "points", "point_labels", "mask")


class RveRNetImageClassificationPipeline(Pipeline):
    """Image classification of one prompted object per image.

    Inputs: an image (path, URL-free file, PIL, numpy, torch) with prompts as keyword arguments (`box=[x0, y0, x1, y1]`,
    `points=[[x, y], ...]` with optional `point_labels`, or `mask=`), or dicts `{"image": ..., "box": ...}` (one per
    image, for batches with a prompt each). Returns, per image, `{"labels": [{"label", "score"}, ...], "mask": bool
    array at the image's size, "prompt": "box" | "points" | "mask" | "automatic"}`.
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(self, top_k=None, box=None, points=None, point_labels=None, mask=None, **kwargs):
        preprocess = {key: value for key, value in
                      (("box", box), ("points", points), ("point_labels", point_labels), ("mask", mask))
                      if value is not None}  # fmt: skip
        unknown = set(kwargs) - {"timeout"}
        if unknown:
            raise ValueError(f"unknown arguments {sorted(unknown)}; prompts are {PROMPT_KEYS} and top_k.")
        postprocess = {"top_k": top_k} if top_k is not None else {}
        return preprocess, {}, postprocess

    def preprocess(self, inputs: Any, box=None, points=None, point_labels=None, mask=None, **kwargs):
        if isinstance(inputs, dict):
            unknown = set(inputs) - {"image", *PROMPT_KEYS}
            if "image" not in inputs or unknown:
                raise ValueError(f"a dict input needs an 'image' and optional {PROMPT_KEYS}; got keys {sorted(inputs)}.")
            box, points = inputs.get("box", box), inputs.get("points", points)
            point_labels, mask = inputs.get("point_labels", point_labels), inputs.get("mask", mask)
            inputs = inputs["image"]
        if points is not None and np.asarray(points).ndim == 1:
            points = [points]  # one click
        if point_labels is None and points is not None:
            point_labels = [1] * len(points)
        prompt = "mask" if mask is not None else "box" if box is not None else "points" if points is not None else "automatic"
        if mask is not None and (box is not None or points is not None):
            raise ValueError("give one prompt per image: a mask, a box, or points.")
        features = self.image_processor(
            images=[inputs], roi_masks=[mask], input_boxes=[box], input_points=[points],
            input_labels=[point_labels], return_tensors="pt", return_roi_masks=True,
        )  # fmt: skip
        used = np.asarray(features["roi_masks"][0], dtype=bool)
        return {
            "roi_pixel_values": features["roi_pixel_values"][:1].to(self.dtype),
            "context_pixel_values": features["context_pixel_values"][:1].to(self.dtype),
            "roi_mask": used,
            "prompt": prompt,
        }

    def _forward(self, model_inputs):
        outputs = self.model(
            roi_pixel_values=model_inputs["roi_pixel_values"], context_pixel_values=model_inputs["context_pixel_values"]
        )
        return {"logits": outputs.logits, "roi_mask": model_inputs["roi_mask"], "prompt": model_inputs["prompt"]}

    def postprocess(self, model_outputs, top_k: int = 5):
        logits = model_outputs["logits"]
        logits = logits[0] if logits.ndim == 2 else logits
        scores = torch.softmax(logits.float(), dim=-1)
        top_k = min(int(top_k), scores.numel())
        values, indices = scores.topk(top_k)
        labels = [{"label": self.model.config.id2label[int(i)], "score": float(v)} for v, i in zip(values, indices)]
        mask = np.asarray(model_outputs["roi_mask"])
        prompt = model_outputs["prompt"]
        return {"labels": labels, "mask": mask.reshape(mask.shape[-2:]),
                "prompt": prompt[0] if isinstance(prompt, list) else prompt}  # fmt: skip
