# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Reading photos and ROI masks: one set of rules for every consumer (the image processor, the mask cache, the
training transforms, evaluation, the pictures, the teacher).

A photo becomes an RGB `uint8` (H, W, 3) array (`load_image`), a mask a bool (H, W) array of the photo's size
(`load_mask`). Value ranges come from the dtype, never from the values; nothing is clipped or guessed: what cannot be
read as the rules say is refused with a `ValueError` that names the image. Uploaded next to the weights (remote code):
imports only numpy, PIL and torch.
"""

import io
import os
import warnings
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError


INPUT_DATA_FORMATS = ("channels_first", "channels_last")
_HIGH_BIT_PIL_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def unwrap_cell(value: Any) -> Any:
    """A `datasets.Image(decode=False)` cell (`{"bytes": ..., "path": ...}`) as what it holds (its bytes, else its
    path); anything else as it is."""
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        return value.get("bytes") or value.get("path")
    return value


def describe_image(index: int, source: Any) -> str:
    """How errors name an image: its position, and its path when it has one."""
    if isinstance(source, (str, os.PathLike)):
        return f"image {index} ({os.fspath(source)})"
    return f"image {index}"


def to_chw_uint8(array: np.ndarray) -> torch.Tensor:
    """An (H, W, 3) uint8 array as a (3, H, W) uint8 tensor view (copying read-only arrays, which torch cannot
    wrap)."""
    array = np.ascontiguousarray(array) if array.flags.writeable else np.array(array)
    return torch.from_numpy(array).permute(2, 0, 1)


def to_chw_float(array: np.ndarray) -> torch.Tensor:
    """An (H, W, 3) uint8 array as a (3, H, W) float tensor (copying read-only arrays, which torch cannot wrap)."""
    array = np.ascontiguousarray(array) if array.flags.writeable else np.array(array)
    return torch.from_numpy(array).permute(2, 0, 1).float()


def _pil_to_rgb(image: Image.Image, background: int, name: str = "the image") -> Image.Image:
    """Any PIL mode to RGB: alpha composited on a grey `background`; 16- and 32-bit integer modes read as 16-bit
    (0-65535) and float mode "F" as 0-1, each scaled to 8 bits (never clipped: values outside are refused)."""
    if image.mode in _HIGH_BIT_PIL_MODES:
        array = np.asarray(image, dtype=np.float64)
        peak = 1.0 if image.mode == "F" else 65535.0
        _check_range(array, 0.0, peak, name, f"PIL mode {image.mode!r} is read as 0-{peak:g}")
        array = (array / peak * 255.0).round().astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (background, background, background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _check_range(array: np.ndarray, low: float, high: float, name: str, rule: str) -> None:
    """Refuse NaN/inf and values outside [low, high], naming the image and the rule that reads its values."""
    if array.size == 0:
        return
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has NaN or infinite values: fix or drop it (nothing is guessed for them).")
    found_low, found_high = float(array.min()), float(array.max())
    if found_low < low or found_high > high:
        raise ValueError(
            f"{name} has values in [{found_low:g}, {found_high:g}], but {rule}: rescale it (e.g. a 0-255 float image "
            "divided by 255) or pass it as uint8."
        )


def load_image(
    image: Any,
    index: int = 0,
    background: int = 125,
    input_data_format: str | None = None,
    do_convert_rgb: bool = True,
) -> np.ndarray:
    """Read one image (path, bytes, PIL, numpy or torch, or a `datasets` cell) into an RGB `uint8` array (H, W, 3).

    EXIF orientation is applied; any PIL mode is converted (see `_pil_to_rgb`); numpy/torch inputs may be HW, HWC or
    CHW. Their value range comes from the dtype: bool, uint8 (0-255), uint16 (0-65535), other integers (0-255),
    floats (0-1); NaN, inf and values outside that range are refused, naming the image. `input_data_format`
    (`"channels_first"` or `"channels_last"`) says where the channels of a 3-D array are; without it they are inferred
    from the shape. With `do_convert_rgb=False` an image that is not already 3-channel RGB is refused instead of
    converted. Raises `ValueError` naming the image for: a file that is not an image or is truncated, an image over
    PIL's decompression-bomb limit, a zero-size image, an array of the wrong shape.
    """
    input_data_format = getattr(input_data_format, "value", input_data_format)  # a ChannelDimension
    if input_data_format is not None and input_data_format not in INPUT_DATA_FORMATS:
        raise ValueError(
            f"`input_data_format` must be one of {INPUT_DATA_FORMATS} or None, got {input_data_format!r}."
        )
    image = unwrap_cell(image)
    name = describe_image(index, image)
    if isinstance(image, (str, os.PathLike, bytes, io.IOBase)):
        image = _open_image_file(image, name)
    if isinstance(image, Image.Image):
        return _rgb_from_pil(image, name, background, do_convert_rgb)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a path, a PIL image, a numpy array or a torch tensor, got {type(image)}.")
    return _rgb_from_array(image, name, background, input_data_format, do_convert_rgb)


def _open_image_file(source: Any, name: str) -> Image.Image:
    """Decode an image file (path, bytes or file object) whole, EXIF orientation applied."""
    source = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened)
                image.load()
                return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(
            f"{name} is larger than PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS} pixels): {error}. "
            "Raise `PIL.Image.MAX_IMAGE_PIXELS` if you trust this file."
        ) from None
    except FileNotFoundError:
        raise ValueError(f"{name} does not exist.") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{name} is not a readable image file (not an image, or truncated): {error}") from None


def _rgb_from_pil(image: Image.Image, name: str, background: int, do_convert_rgb: bool) -> np.ndarray:
    width, height = image.size
    if width == 0 or height == 0:
        raise ValueError(f"{name} has zero size ({width}x{height}).")
    if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
        raise ValueError(
            f"{name} has {width * height} pixels, over PIL's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS})."
        )
    image = ImageOps.exif_transpose(image)
    if not do_convert_rgb and image.mode != "RGB":
        raise ValueError(
            f"{name} has PIL mode {image.mode!r}, not RGB, and `do_convert_rgb=False`: convert it, or leave "
            "`do_convert_rgb=True` (the default) to convert it."
        )
    return np.asarray(_pil_to_rgb(image, background, name))


def _rgb_from_array(
    image: np.ndarray, name: str, background: int, input_data_format: str | None, do_convert_rgb: bool
) -> np.ndarray:
    array = image
    if array.ndim == 3 and input_data_format == "channels_first":
        array = np.moveaxis(array, 0, -1)
    elif (
        array.ndim == 3
        and input_data_format is None
        and array.shape[0] in (1, 3, 4)
        and array.shape[-1] not in (1, 3, 4)
    ):
        array = np.moveaxis(array, 0, -1)  # CHW -> HWC
    if not do_convert_rgb and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ValueError(
            f"{name} is not a 3-channel RGB array (shape {image.shape}) and `do_convert_rgb=False`: leave "
            "`do_convert_rgb=True` (the default) to convert grey and RGBA arrays."
        )
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"{name} must have shape (H, W), (H, W, C) or (C, H, W) with C in 1/3/4, got {image.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} has zero size ({array.shape[1]}x{array.shape[0]}).")
    array = _as_uint8(array, name)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.shape[-1] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + background * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def _as_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """The value range comes from the dtype, never from the values: bool 0/1, uint8 0-255, uint16 0-65535, other
    integers 0-255, floats 0-1 (transformers' convention for rescaled images). Anything else is refused, named."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        _check_range(array, 0.0, 1.0, name, f"a float array ({array.dtype}) is read as 0-1")
        return (array * 255.0).round().astype(np.uint8)
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if array.dtype != np.uint8:
        _check_range(array, 0, 255, name, f"an integer array ({array.dtype}) is read as 0-255")
        return array.astype(np.uint8)
    return array


def image_size_from_header(source: Any, name: str) -> tuple[int, int]:
    """(height, width) of an image file (path or bytes) as `load_image` decodes it (EXIF orientation applied), read
    from its header only: for checks that need the size before any pixel is decoded."""
    source = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(source) as opened:
            width, height = opened.size
            exif = Image.Exif()
            if "exif" in opened.info:  # found in the header (JPEG's APP1, PNG's eXIf before the pixels)
                exif.load(opened.info["exif"])
            elif opened.format != "PNG":  # (PNG's getexif() would decode the pixels to look after them)
                exif = opened.getexif()
            if exif.get(Image.ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                width, height = height, width
    except FileNotFoundError:
        raise ValueError(f"{name} does not exist.") from None
    except (OSError, SyntaxError, TypeError) as error:
        raise ValueError(f"{name} is not a readable image file: {error}") from None
    return height, width


def load_mask(mask: Any, index: int, image_shape: tuple[int, int], allow_full: bool = False) -> np.ndarray:
    """Read a user-given ROI mask into a bool (H, W) array matching the image.

    Accepts bool, {0, 1} or {0, 255} arrays/tensors, PIL images (mode 1, L, P, RGB with equal channels) and paths.
    Raises `ValueError` naming the image for: a size that differs from the image's, non-binary values, an empty mask,
    or a mask covering the whole image (no context left), unless `allow_full`.
    """
    name = f"the ROI mask of image {index}"
    mask = unwrap_cell(mask)
    if mask is None:
        raise ValueError(f"{name} is missing: a mask (array, tensor, PIL image or file) was expected.")
    if isinstance(mask, (str, os.PathLike, bytes)):
        try:
            with Image.open(io.BytesIO(mask) if isinstance(mask, bytes) else mask) as opened:
                opened.load()
                mask = opened.copy()
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{name} is not a readable image file: {error}") from None
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L") if mask.mode not in ("1", "L", "P", "I", "I;16") else mask)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[-1]):
        mask = mask.reshape(mask.shape[1:] if mask.shape[0] == 1 else mask.shape[:-1])
    if mask.ndim == 3 and mask.shape[-1] in (3, 4) and (mask[..., :3] == mask[..., :1]).all():
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {mask.shape}.")
    if tuple(mask.shape) != tuple(image_shape):
        raise ValueError(
            f"{name} has size {mask.shape[1]}x{mask.shape[0]} (WxH) but the image is {image_shape[1]}x{image_shape[0]}."
        )
    if mask.dtype != np.bool_:
        values = np.unique(mask)
        if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
            shown = values[:6].tolist()
            raise ValueError(f"{name} is not binary: expected values {{0, 1}} or {{0, 255}}, found {shown}...")
        mask = mask > 0
    if not mask.any():
        raise ValueError(f"{name} is empty (all zero): there is no ROI to classify.")
    if mask.all() and not allow_full:
        raise ValueError(f"{name} covers the whole image (all one): nothing is left for the context tower.")
    return mask


def mask_box(mask: np.ndarray) -> list[int]:
    """The extent `[x0, y0, x1, y1]` of a non-empty bool mask, in pixels (x1, y1 exclusive)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


__all__ = [
    "describe_image",
    "image_size_from_header",
    "load_image",
    "load_mask",
    "mask_box",
    "to_chw_float",
    "unwrap_cell",
]
