# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The Gradio page of `rvernet-hf app` (what it does and the API: `rvernet_hf.app`). Needs the `app` extra."""

import functools
import logging
import re
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from .api import RveRNetApp


logger = logging.getLogger(__name__)

CLICK_MODES = ("the object", "not the object", "a box corner")
TABLE_HEADERS = ["ROI", "label", "score"]
DISPLAY_MIN_SIDE = 512  # a smaller photo is shown enlarged (whole times, each pixel a square), clicks mapped back
ROI_TINT = 0.4  # the opacity of an ROI's colour over the photo; its outline is opaque
NO_PROMPT = "No prompt: the automatic ROI (the segmenter's most salient object)."


def page_css() -> str:
    return "#photo img, #result img {cursor: crosshair} footer {display: none !important}"


def _message(error: Exception) -> str:
    """The user's words for an error: the pipeline's "image 0" is the photo on the page."""
    return re.sub(r"\bimage 0\b", "the photo", str(error)) or type(error).__name__


def _guarded(fn):
    """Run a handler; bad input becomes a message on the page (and a `gradio_client` error), never a stack trace."""

    @functools.wraps(fn)  # Gradio reads the signature (a `gr.SelectData` parameter gets the click)
    def run(*args):
        try:
            return fn(*args)
        except gr.Error:
            raise
        except (ValueError, OSError, TypeError) as error:
            raise gr.Error(_message(error), print_exception=False) from None
        except Exception as error:  # a bug: logged in full on the server, named on the page
            logger.exception("request failed")
            raise gr.Error(
                f"internal error ({type(error).__name__}): {_message(error)}", print_exception=False
            ) from None

    return run


def _empty_clicks() -> dict:
    return {"points": [], "labels": [], "corner": None}


def display_scale(shape: tuple[int, ...]) -> int:
    """How many times a photo of `shape` (H, W, ...) is enlarged on the page: whole times, so that a click maps back
    to one pixel of the photo (`x // scale`)."""
    return max(1, DISPLAY_MIN_SIDE // max(1, max(shape[:2])))


def enlarged(image: np.ndarray, scale: int) -> np.ndarray:
    """Each pixel as a `scale` x `scale` square (the photo itself is `enlarged[::scale, ::scale]`)."""
    return image if scale == 1 else np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def shown_photo(image: np.ndarray | None, shown: dict | None) -> tuple[np.ndarray | None, int]:
    """The page's photo field -> (the photo as uploaded, how many times it is enlarged on the page). `shown` is what
    the page enlarged last (`{"scale", "shape"}`); a field that holds another image (a new upload, the webcam) is the
    photo itself."""
    if image is None or not shown or shown["scale"] == 1 or list(image.shape[:2]) != list(shown["shape"]):
        return image, 1
    return image[:: shown["scale"], :: shown["scale"]], shown["scale"]


def show_photo(image: np.ndarray | None) -> tuple[np.ndarray | None, dict | None]:
    """A photo as the page shows it (enlarged when small) and the record `shown_photo` reads it back with."""
    if image is None:
        return None, None
    scale = display_scale(image.shape)
    display = enlarged(image, scale)
    return display, {"scale": scale, "shape": list(display.shape[:2])}


def tint(mask: np.ndarray, outline: int) -> np.ndarray:
    """An ROI's overlay: `ROI_TINT` inside, opaque on its `outline`-pixel border, so the object stays visible."""
    mask = np.asarray(mask, dtype=bool)
    inner = mask.copy()
    for _ in range(max(1, outline)):
        padded = np.pad(inner, 1)
        inner = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    overlay = np.where(mask, ROI_TINT, 0.0).astype(np.float32)
    overlay[mask & ~inner] = 1.0
    return overlay


def prompt_status(prompt: dict, corner: list | None = None) -> str:
    """What the page will send, in words (shown under the buttons, kept current)."""
    parts = []
    labels = prompt.get("point_labels", [])
    if labels:
        on, off = sum(1 for label in labels if label == 1), sum(1 for label in labels if label != 1)
        parts.append(f"{on} click(s) on the object" + (f", {off} off it" if off else ""))
    if "box" in prompt:
        parts.append("a box " + ", ".join(f"{v:g}" for v in prompt["box"]))
    if "mask" in prompt:
        parts.append("the uploaded mask")
    if prompt.get("all_objects"):
        parts.append("every object")
    if prompt.get("text"):
        parts.append(f"the concept {prompt['text']!r}")
    status = ("Prompt: " + "; ".join(parts) + ".") if parts else NO_PROMPT
    if corner is not None:
        status += f" Box: first corner at ({corner[0]}, {corner[1]}); click the opposite corner."
    return status


def _parse_box(text: str) -> list[float] | None:
    if not text or not text.strip():
        return None
    parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    try:
        return [float(part) for part in parts]
    except ValueError:
        raise ValueError(f"the box {text!r} must be four numbers: x0, y0, x1, y1.") from None


def page_prompt(clicks: dict, box_text: str, mask: Any, every: bool, text: str) -> dict:
    """The page's fields -> one prompt in the API's form (checked by `parse_prompt`)."""
    prompt: dict[str, Any] = {}
    if clicks["points"]:
        prompt["points"], prompt["point_labels"] = clicks["points"], clicks["labels"]
    box = _parse_box(box_text)
    if box is not None:
        prompt["box"] = box
    if mask is not None:
        prompt["mask"] = np.asarray(mask)
    if every:
        prompt["all_objects"] = True
    if text and text.strip():
        prompt["text"] = text
    return prompt


def _drawn_prompt(image: np.ndarray, prompt: dict, scale: int = 1) -> np.ndarray:
    """The photo (enlarged `scale` times) with the clicks (green: object, red: not) and the box drawn on it."""
    image = enlarged(image, scale)
    if "points" not in prompt and "box" not in prompt:
        return image
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    radius = max(3, min(image.shape[:2]) // 60)
    if "box" in prompt:
        draw.rectangle([v * scale for v in prompt["box"]], outline=(255, 215, 0), width=max(1, radius // 2))
    centre = (scale - 1) / 2  # the middle of the clicked photo pixel
    for (x, y), label in zip(prompt.get("points", []), prompt.get("point_labels", [])):
        x, y = x * scale + centre, y * scale + centre
        colour = (0, 200, 0) if label == 1 else (220, 0, 0)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(255, 255, 255))
    return np.asarray(picture)


def _counted(prompt: dict) -> str:
    clicks = len(prompt.get("points", []))
    return f" ({clicks} click{'s' if clicks > 1 else ''})" if clicks else ""


def _outputs(app: RveRNetApp, result: dict, prompt: dict, scale: int = 1) -> tuple:
    """A result -> (annotated image, top-k table, timings, tower inputs), the photo enlarged as on the left."""
    regions = []
    rows = []
    outline = max(1, max(result["_image"].shape[:2]) * scale // 200)
    for k, (mask, roi) in enumerate(zip(result["_masks"], result["rois"])):
        top = roi["labels"][0]
        regions.append((tint(enlarged(mask, scale), outline), f"{k}: {top['label']} {top['score']:.2f}"))
        rows.extend([k, entry["label"], round(entry["score"], 4)] for entry in roi["labels"])
    timings = result["timings_s"]
    shown = (
        f"**{len(result['rois'])} ROI(s)**, prompt `{result['prompt']}`{_counted(prompt)} · read {timings['read'] * 1000:.0f} ms · "
        f"segment {timings['segment'] * 1000:.0f} ms · classify {timings['classify'] * 1000:.0f} ms · "
        f"total {timings['total'] * 1000:.0f} ms"
    )
    annotated = (_drawn_prompt(result["_image"], prompt, scale), regions)
    return annotated, rows, shown, app.tower_inputs(result)


def _prompt_column(takes_text: bool | None) -> tuple:
    """The photo and the prompts: (photo, click mode, [box, mask, every, text], run, clear, prompt status)."""
    with gr.Column():
        photo = gr.Image(
            label="Photo (click the object)",
            type="numpy",
            sources=["upload", "clipboard", "webcam"],
            elem_id="photo",
            height=420,
        )
        mode = gr.Radio(list(CLICK_MODES), value=CLICK_MODES[0], label="A click marks")
        with gr.Accordion("Other prompts", open=False):
            box = gr.Textbox(label="Box: x0, y0, x1, y1 (pixels)", placeholder="60, 40, 220, 180")
            mask = gr.Image(
                label="Mask (white: the object; the photo's size)", type="numpy", image_mode="L", sources=["upload"]
            )
            every = gr.Checkbox(label="Every object")
            text = gr.Textbox(label="Concept (needs a SAM 3 segmenter)", visible=takes_text is not False)
        with gr.Row():
            run = gr.Button("Classify", variant="primary", elem_id="classify")
            clear = gr.Button("Clear prompts")
        status = gr.Markdown(NO_PROMPT, elem_id="prompt_status")
    return photo, mode, [box, mask, every, text], run, clear, status


def _result_column() -> list:
    """The results: [annotated photo, top-k table, prompt and timings, what each tower saw]."""
    with gr.Column():
        annotated = gr.AnnotatedImage(label="ROIs and their labels", elem_id="result", height=420)
        info = gr.Markdown(elem_id="timings")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Top labels per ROI", interactive=False)
        gallery = gr.Image(
            label="What each tower saw (the photo and ROI | ROI tower input | context tower input | scores)",
            type="pil",
            interactive=False,
            elem_id="towers",
        )
    return [annotated, table, info, gallery]


class _Handlers:
    """The page's event handlers for one app. The photo field may hold the photo enlarged (`show_photo`); every
    handler reads the photo as uploaded back from it (`shown_photo`) and maps clicks to its pixels."""

    def __init__(self, app: RveRNetApp, result_count: int):
        self.app, self.result_count = app, result_count

    def _classified(self, photo: np.ndarray, prompt: dict, scale: int) -> tuple:
        """(annotated photo, table, timings, tower inputs, prompt status) for one prompt."""
        return (*_outputs(self.app, self.app.classify(photo, prompt), prompt, scale), prompt_status(prompt))

    def classify_page(self, image, state, box_text, mask_image, every_object, concept, shown):
        photo, scale = shown_photo(image, shown)
        if photo is None:
            raise ValueError("upload a photo first (or pick an example).")
        return self._classified(photo, page_prompt(state, box_text, mask_image, every_object, concept), scale)

    def click(self, image, state, click_mode, box_text, shown, event: gr.SelectData):
        """A click adds a point (or a box corner) and classifies at once; the other prompts are cleared."""
        photo, scale = shown_photo(image, shown)
        if photo is None:
            raise ValueError("upload a photo first (or pick an example).")
        x, y = (int(v) // scale for v in event.index)  # the photo's pixel under the click
        state = {key: list(value) if isinstance(value, list) else value for key, value in state.items()}
        if click_mode == CLICK_MODES[2]:
            if state["corner"] is None:
                state["corner"] = [x, y]
                waiting = prompt_status(page_prompt(state, box_text, None, False, ""), state["corner"])
                return (state, box_text, None, False, "", *[gr.skip()] * self.result_count, waiting)
            (x0, y0), state["corner"] = state["corner"], None
            box_text = f"{min(x0, x)}, {min(y0, y)}, {max(x0, x)}, {max(y0, y)}"
        else:
            state["points"].append([x, y])
            state["labels"].append(1 if click_mode == CLICK_MODES[0] else 0)
        prompt = page_prompt(state, box_text, None, False, "")
        return (state, box_text, None, False, "", *self._classified(photo, prompt, scale))

    def example(self, image, mask_image):
        """An example (a photo and its exact mask): shown enlarged when small, and classified."""
        display, shown = show_photo(image)
        prompt = page_prompt(_empty_clicks(), "", mask_image, False, "")
        shown_value = gr.skip() if shown["scale"] == 1 else display
        return (shown_value, shown, *self._classified(image, prompt, shown["scale"]))

    def reset(self):
        return (_empty_clicks(), "", None, False, "", *[None] * self.result_count, NO_PROMPT)

    def upload(self, image):
        """A new photo: shown enlarged when small; its clicks and results cleared."""
        display, shown = show_photo(image)
        return (display if shown and shown["scale"] > 1 else gr.skip(), shown, *self.reset())

    @staticmethod
    def status(state, box_text, mask_image, every_object, concept):
        try:
            return prompt_status(page_prompt(state, box_text, mask_image, every_object, concept), state["corner"])
        except ValueError as error:  # a box being typed
            return _message(error)

    def api_classify(self, path, prompt_json):  # the public `/classify` endpoint (no other handler is named so)
        if path is None:
            raise ValueError("no image was sent.")
        return self.app.api_result(self.app.classify(path, prompt_json))


def build_page(app: RveRNetApp) -> gr.Blocks:
    """The page: a photo to click, the other prompts, and the results; plus the `/classify` API endpoint."""
    takes_text = app.takes_text()
    with gr.Blocks(title="RveRNet") as page:
        gr.Markdown(
            f"# RveRNet: what is this object?\nModel `{app.model_name}` · segmenter `{app.segmenter_name}`. Click an "
            "object on the photo (or draw a box from two corners, upload its mask, or ask for every object) and read "
            "its label. RveRNet reads the object (ROI tower) and what surrounds it (context tower)."
        )
        clicks = gr.State(_empty_clicks())
        shown = gr.State(None)  # how the photo field's image is enlarged (`show_photo`)
        with gr.Row():
            photo, mode, fields, run, clear, status = _prompt_column(takes_text)
            results = _result_column()
        handlers = _Handlers(app, len(results))
        private = {"api_visibility": "private"}
        run.click(_guarded(handlers.classify_page), [photo, clicks, *fields, shown], [*results, status], **private)
        photo.select(
            _guarded(handlers.click), [photo, clicks, mode, fields[0], shown], [clicks, *fields, *results, status],
            **private,
        )  # fmt: skip
        clear.click(handlers.reset, None, [clicks, *fields, *results, status], **private)
        photo.upload(handlers.upload, photo, [photo, shown, clicks, *fields, *results, status], **private)
        photo.change(_empty_clicks, None, clicks, **private)  # a new photo: its own clicks
        gr.on(
            [field.change for field in fields],
            handlers.status,
            [clicks, *fields],
            status,
            show_progress="hidden",
            **private,
        )  # the status line follows every prompt field
        if app.examples:
            gr.Examples(
                examples=[[photo_path, mask_path] for photo_path, mask_path in app.examples],
                inputs=[photo, fields[1]],
                outputs=[photo, shown, *results, status],
                fn=_guarded(handlers.example),
                run_on_click=True,
                cache_examples=False,
                label="Examples (the demo's test photos, with their exact masks: no segmenter needed)",
                elem_id="examples",
                examples_per_page=5,
            )
        with gr.Row(visible=False):
            api_image, api_prompt, api_result = gr.File(), gr.Textbox(), gr.JSON()
            api_button = gr.Button()
        api_button.click(_guarded(handlers.api_classify), [api_image, api_prompt], api_result, api_name="classify")
    return page


__all__ = ["build_page", "display_scale", "page_css", "page_prompt", "prompt_status", "shown_photo", "tint"]
