# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The promptable segmenters RveRNet can use, behind one interface: every family that transformers ships behind
`AutoModelForMaskGeneration`, loaded once per process (`load_segmenter`) or wrapped when given (`Segmenter`, and
`TextSegmenter` for SAM 3's text prompts). `roi_masks_rvernet` decides which masks to ask for; this module runs the
models. Uploaded next to the weights with the image processor (remote code): imports only torch, numpy, PIL and
transformers.

Supported families (`model_type`): SAM (`sam`: ViT-B/L/H and SlimSAM checkpoints), SAM-HQ (`sam_hq`), SAM 2 / 2.1
(`sam2`, `sam2_video`), EdgeTAM (`edgetam`, `edgetam_video`) and the SAM 3 tracker (`sam3_tracker`, `sam3_video`).
Their differences are handled here, in one place:

| family | image processor | embeddings | prompt frame | post-processing |
|---|---|---|---|---|
| SAM, SAM-HQ | resize the longest edge, pad to a square | a tensor (SAM-HQ: plus intermediate embeddings) | the resized image | needs the resized size |
| SAM 2, EdgeTAM, SAM 3 tracker | resize to a square | a list of feature levels | the square input | original size only |

For every family the image encoder runs once per image (images batched by `batch_size`), all prompts of an image go
through the mask decoder in one call (point groups padded with SAM's "not a point" label), and a batch whose images
have different numbers of prompts works.
"""

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.utils import logging

from .paths_rvernet import check_local_path


logger = logging.get_logger(__name__)

DEFAULT_SEGMENTER = "facebook/sam-vit-base"
# model_type -> how its image processor frames prompts and post-processes masks ("sam": resize + pad, "sam2": square)
SEGMENTER_FAMILIES = {
    "sam": "sam",
    "sam_hq": "sam",
    "sam2": "sam2",
    "sam2_video": "sam2",
    "edgetam": "sam2",
    "edgetam_video": "sam2",
    "sam3_tracker": "sam2",
    "sam3_video": "sam2",
}
FAMILY_NAMES = "SAM (ViT-B/L/H, SlimSAM), SAM-HQ, SAM 2 / 2.1, EdgeTAM, SAM 3 tracker; SAM 3 for text prompts"
# Segmenters that take a text prompt (a concept: every instance of it becomes an ROI), model_type -> its class.
TEXT_FAMILIES = {"sam3": "Sam3Model"}
_PAD_LABEL = -10  # SAM's and SAM 2's "not a point" label, used to pad point groups of different lengths

# One segmenter per (checkpoint, revision, device, dtype) per process, shared by every processor instance.
_SEGMENTER_CACHE: dict[tuple, "Segmenter"] = {}
_SEGMENTER_CACHE_LOCK = threading.Lock()


@dataclass
class ImageEmbedding:
    """One image's encoder output, ready for the mask decoder."""

    decoder_inputs: dict[str, Any]  # the family's embedding keyword arguments, sliced to this image
    original_size: tuple[int, int]  # (H, W) of the photo
    prompt_frame: tuple[int, int]  # (H, W) of the image the prompt encoder's coordinates refer to
    input_size: tuple[int, int]  # (H, W) of the encoder input (the prompt frame plus any padding)


class Segmenter:
    """A promptable segmenter (a transformers mask-generation model and its image processor) behind one interface:
    `embed` (the image encoder, once per image), `decode` (every prompt of one image in one call) and `to_original`
    (the family's own post-processing to the photo's size)."""

    def __init__(self, model: Any, image_processor: Any = None, name: str | None = None):
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in SEGMENTER_FAMILIES:
            what = name or type(model).__name__
            raise ValueError(
                f"{what} is not a promptable segmenter RveRNet can use (model_type {model_type!r}). Supported "
                f"families: {FAMILY_NAMES} (model types {sorted(SEGMENTER_FAMILIES)})."
            )
        self.model = model
        self.model_type = model_type
        self.style = SEGMENTER_FAMILIES[model_type]
        self.image_processor = image_processor if image_processor is not None else default_image_processor(model)
        self._embeddings: OrderedDict[tuple, ImageEmbedding] = OrderedDict()  # image key -> embedding (LRU)
        self._embeddings_lock = threading.Lock()
        self.embedding_cache_size = 0

    def __deepcopy__(self, memo: dict) -> "Segmenter":
        """The segmenter itself: a loaded model is shared, never duplicated (a processor's `to_dict` and copies made
        per call deep-copy their attributes)."""
        return self

    def __getstate__(self) -> dict:  # pickled (e.g. to a spawned worker) without its lock and cached embeddings
        state = dict(self.__dict__)
        state.pop("_embeddings_lock")
        state["_embeddings"] = OrderedDict()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._embeddings_lock = threading.Lock()

    def cache_embeddings(self, max_images: int) -> None:
        """Keep the embeddings of the last `max_images` images (0: none, the default) and reuse them when the same
        image comes again, as SAM's interactive demos do: a second click on a photo runs the mask decoder only.
        Images are recognised by their pixels (a hash of the RGB array), so a copy of a photo hits the cache too."""
        if int(max_images) < 0:
            raise ValueError(f"max_images must be >= 0, got {max_images}.")
        with self._embeddings_lock:
            self.embedding_cache_size = int(max_images)
            while len(self._embeddings) > self.embedding_cache_size:
                self._embeddings.popitem(last=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def embed(self, images: list[np.ndarray]) -> list[ImageEmbedding]:
        """RGB uint8 arrays -> one `ImageEmbedding` each, from ONE image-encoder forward pass over all of them (over
        those not in the embedding cache, when `cache_embeddings` turned it on)."""
        if not self.embedding_cache_size:
            return self._embed(images)
        keys = [
            (image.shape, hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest())
            for image in images
        ]
        with self._embeddings_lock:
            found = {key: self._embeddings[key] for key in keys if key in self._embeddings}
        missing = [i for i, key in enumerate(keys) if key not in found]
        computed = self._embed([images[i] for i in missing]) if missing else []
        found.update({keys[i]: embedding for i, embedding in zip(missing, computed)})
        with self._embeddings_lock:
            for key in keys:
                self._embeddings[key] = found[key]
                self._embeddings.move_to_end(key)
            while len(self._embeddings) > self.embedding_cache_size:
                self._embeddings.popitem(last=False)
        return [found[key] for key in keys]

    @torch.no_grad()
    def _embed(self, images: list[np.ndarray]) -> list[ImageEmbedding]:
        encoded = self.image_processor(images=[Image.fromarray(image) for image in images], return_tensors="pt")
        pixel_values = encoded["pixel_values"].to(device=self.device, dtype=self.dtype)
        output = self.model.get_image_embeddings(pixel_values)
        input_size = tuple(int(v) for v in pixel_values.shape[-2:])
        embeddings = []
        for i in range(len(images)):
            if self.model_type == "sam_hq":  # (embeddings, intermediate embeddings of the ViT layers)
                inputs = {
                    "image_embeddings": output[0][i : i + 1],
                    "intermediate_embeddings": [t[i : i + 1] for t in output[1]],
                }
            elif self.style == "sam":
                inputs = {"image_embeddings": output[i : i + 1]}
            else:  # a list of feature levels, finest first
                inputs = {"image_embeddings": [level[i : i + 1] for level in output]}
            original = tuple(int(v) for v in encoded["original_sizes"][i])
            frame = tuple(int(v) for v in encoded["reshaped_input_sizes"][i]) if self.style == "sam" else input_size
            embeddings.append(ImageEmbedding(inputs, original, frame, input_size))
        return embeddings

    def _to_frame(self, coords: np.ndarray, embedding: ImageEmbedding) -> np.ndarray:
        """Pixel coordinates of the photo (x, y, ...) -> the prompt encoder's frame."""
        scaled = np.array(coords, dtype=np.float64)
        scaled[..., 0::2] *= embedding.prompt_frame[1] / embedding.original_size[1]
        scaled[..., 1::2] *= embedding.prompt_frame[0] / embedding.original_size[0]
        return scaled

    @torch.no_grad()
    def decode(
        self,
        embedding: ImageEmbedding,
        points: list[tuple[np.ndarray, np.ndarray]] | None = None,
        boxes: list[np.ndarray] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every prompt of one image in one decoder call: `points` (one (P, 2) group + labels per ROI, padded here)
        and/or `boxes` ((4,) each; with points, the i-th box pairs with the i-th group). Returns the low-resolution
        mask logits `(k, 3, h, w)` and predicted IoUs `(k, 3)`, float32."""
        inputs = dict(embedding.decoder_inputs, multimask_output=True)
        if points:
            width = max(len(p) for p, _ in points)
            point_array = np.zeros((len(points), width, 2))
            label_array = np.full((len(points), width), _PAD_LABEL, dtype=np.int64)
            for k, (roi_points, roi_labels) in enumerate(points):
                point_array[k, : len(roi_points)] = self._to_frame(roi_points, embedding)
                label_array[k, : len(roi_labels)] = roi_labels
            inputs["input_points"] = torch.as_tensor(point_array, dtype=self.dtype, device=self.device)[None]
            inputs["input_labels"] = torch.as_tensor(label_array, device=self.device)[None]
        if boxes:
            box_array = self._to_frame(np.stack(boxes), embedding)
            inputs["input_boxes"] = torch.as_tensor(box_array, dtype=self.dtype, device=self.device)[None]
        outputs = self.model(**inputs)
        return outputs.pred_masks[0].float(), outputs.iou_scores[0].float()

    def to_original(self, low_res: torch.Tensor, embedding: ImageEmbedding, threshold: float) -> np.ndarray:
        """Low-resolution logits `(n, h, w)` -> bool masks `(n, H, W)` at the photo's size (the family's own
        post-processing: SAM crops its padding first)."""
        masks = [low_res[:, None].float().cpu()]
        if self.style == "sam":
            result = self.image_processor.post_process_masks(
                masks, [embedding.original_size], [embedding.prompt_frame], mask_threshold=threshold
            )
        else:
            result = self.image_processor.post_process_masks(
                masks, [embedding.original_size], mask_threshold=threshold
            )
        return result[0][:, 0].numpy().astype(bool)

    def unpadded_low_res(self, low_res: torch.Tensor, embedding: ImageEmbedding) -> torch.Tensor:
        """The part of low-resolution logits `(..., h, w)` that covers the photo (SAM pads the encoder input)."""
        crop_h = max(1, round(low_res.shape[-2] * embedding.prompt_frame[0] / embedding.input_size[0]))
        crop_w = max(1, round(low_res.shape[-1] * embedding.prompt_frame[1] / embedding.input_size[1]))
        return low_res[..., :crop_h, :crop_w]


def default_image_processor(model: Any) -> Any:
    """The family's image processor at the model's input size (for a model given without one)."""
    import transformers

    side = int(model.config.prompt_encoder_config.image_size)
    if SEGMENTER_FAMILIES[model.config.model_type] == "sam":
        return transformers.SamImageProcessor(size={"longest_edge": side}, pad_size={"height": side, "width": side})
    if model.config.model_type.startswith("sam3"):
        return transformers.Sam3ImageProcessor(size={"height": side, "width": side})
    return transformers.Sam2ImageProcessor(size={"height": side, "width": side})


def resolve_device_and_dtype(device: str | None, dtype: str) -> tuple[torch.device, torch.dtype]:
    """`device` None: CUDA when available, else CPU. `dtype` "auto": bfloat16 on a GPU that supports it, float16 on
    other GPUs, float32 on CPU; or a dtype name."""
    resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype == "auto":
        if resolved.type == "cuda":
            return resolved, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return resolved, torch.float32
    return resolved, getattr(torch, str(dtype).replace("torch.", ""))


class TextSegmenter:
    """SAM 3 (`Sam3Model` with its `Sam3Processor`: image processor + tokenizer): a text prompt (a concept, e.g.
    "food") -> one mask per instance found, scored and filtered by the processor's own post-processing. It takes no
    box or click prompts here (SAM 3's tracker does: load it as a `sam3_tracker` checkpoint)."""

    def __init__(self, model: Any, processor: Any = None, name: str | None = None):
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in TEXT_FAMILIES:
            raise ValueError(f"{name or type(model).__name__} is not a text-prompted segmenter (SAM 3).")
        if processor is None or getattr(processor, "tokenizer", None) is None:
            raise ValueError(
                f"{name or type(model).__name__} needs its `Sam3Processor` (image processor and tokenizer): pass it "
                "as `sam_image_processor`, or load the checkpoint by name."
            )
        self.model, self.processor, self.model_type = model, processor, model_type

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def segment_text(
        self, images: list[np.ndarray], texts: list[str], score_threshold: float, mask_threshold: float
    ) -> list[list[np.ndarray]]:
        """One forward pass for the images (each with its text): per image, the bool masks of the instances whose
        score passes `score_threshold`, at the photo's size."""
        inputs = self.processor(images=[Image.fromarray(image) for image in images], text=texts, return_tensors="pt")
        original_sizes = [tuple(int(v) for v in size) for size in inputs["original_sizes"]]
        dtype = next(self.model.parameters()).dtype
        model_inputs = {
            k: (v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor) and k != "original_sizes"
        }
        outputs = self.model(**model_inputs)
        results = self.processor.post_process_instance_segmentation(
            outputs, threshold=score_threshold, mask_threshold=mask_threshold, target_sizes=original_sizes
        )
        return [[np.asarray(mask.cpu(), dtype=bool) for mask in result["masks"]] for result in results]


def load_segmenter(name_or_path: str, revision: str | None = None, device: str | None = None, dtype: str = "auto"):
    """The segmenter of a checkpoint (Hub id or folder), loaded once per process per (checkpoint, revision, device,
    dtype) through `AutoModelForMaskGeneration`. A checkpoint of another kind is refused, naming it, before any
    weight is read."""
    import transformers

    resolved_device, resolved_dtype = resolve_device_and_dtype(device, dtype)
    key = (name_or_path, revision, str(resolved_device), str(resolved_dtype))
    with _SEGMENTER_CACHE_LOCK:
        if key not in _SEGMENTER_CACHE:
            check_local_path(name_or_path, "the segmenter (sam_model_name_or_path)")
            source = "the local folder" if os.path.isdir(name_or_path) else "the Hugging Face Hub (or its cache)"
            default = (
                " (the default: set `sam_model_name_or_path` to choose)" if name_or_path == DEFAULT_SEGMENTER else ""
            )
            logger.warning(f"Loading the segmenter {name_or_path}{default} from {source}.")
            try:
                config = transformers.AutoConfig.from_pretrained(name_or_path, revision=revision or "main")
            except OSError as error:  # offline, or no such repository: name the checkpoint it tried
                raise OSError(f"the segmenter {name_or_path!r} could not be loaded: {error}") from error
            if config.model_type in TEXT_FAMILIES:
                model = getattr(transformers, TEXT_FAMILIES[config.model_type]).from_pretrained(
                    name_or_path, revision=revision or "main", dtype=resolved_dtype
                )
                model = model.to(resolved_device).eval().requires_grad_(False)
                processor = transformers.AutoProcessor.from_pretrained(name_or_path, revision=revision or "main")
                _SEGMENTER_CACHE[key] = TextSegmenter(model, processor, name=name_or_path)
                return _SEGMENTER_CACHE[key]
            if config.model_type not in SEGMENTER_FAMILIES:
                raise ValueError(
                    f"sam_model_name_or_path={name_or_path!r} is a {config.model_type!r} checkpoint, not a promptable "
                    f"segmenter. Supported families: {FAMILY_NAMES} (model types {sorted(SEGMENTER_FAMILIES)})."
                )
            logger.info(
                f"Loading the {config.model_type} segmenter {name_or_path} on {resolved_device} ({resolved_dtype})."
            )
            model = transformers.AutoModelForMaskGeneration.from_pretrained(
                name_or_path, revision=revision or "main", dtype=resolved_dtype
            )
            model = model.to(resolved_device).eval().requires_grad_(False)
            try:
                image_processor = transformers.AutoImageProcessor.from_pretrained(
                    name_or_path, revision=revision or "main"
                )
            except (OSError, ValueError):
                image_processor = default_image_processor(model)
                logger.warning(
                    f"{name_or_path} has no image processor: using {type(image_processor).__name__} at the model's "
                    f"input size ({model.config.prompt_encoder_config.image_size} px)."
                )
            _SEGMENTER_CACHE[key] = Segmenter(model, image_processor, name=name_or_path)
        return _SEGMENTER_CACHE[key]


__all__ = [
    "DEFAULT_SEGMENTER",
    "FAMILY_NAMES",
    "ImageEmbedding",
    "SEGMENTER_FAMILIES",
    "Segmenter",
    "TEXT_FAMILIES",
    "TextSegmenter",
    "load_segmenter",
]
