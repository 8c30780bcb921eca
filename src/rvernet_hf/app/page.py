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


def _drawn_prompt(image: np.ndarray, prompt: dict) -> np.ndarray:
    """The photo with the clicks (green: object, red: not) and the box drawn on it."""
    if "points" not in prompt and "box" not in prompt:
        return image
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    radius = max(3, min(image.shape[:2]) // 60)
    if "box" in prompt:
        draw.rectangle(prompt["box"], outline=(255, 215, 0), width=max(1, radius // 2))
    for (x, y), label in zip(prompt.get("points", []), prompt.get("point_labels", [])):
        colour = (0, 200, 0) if label == 1 else (220, 0, 0)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(255, 255, 255))
    return np.asarray(picture)


def _counted(prompt: dict) -> str:
    clicks = len(prompt.get("points", []))
    return f" ({clicks} click{'s' if clicks > 1 else ''})" if clicks else ""


def _outputs(app: RveRNetApp, result: dict, prompt: dict) -> tuple:
    """A result -> (annotated image, top-k table, timings, tower inputs)."""
    regions = []
    rows = []
    for k, (mask, roi) in enumerate(zip(result["_masks"], result["rois"])):
        top = roi["labels"][0]
        regions.append((mask.astype(np.float32), f"{k}: {top['label']} {top['score']:.2f}"))
        rows.extend([k, entry["label"], round(entry["score"], 4)] for entry in roi["labels"])
    timings = result["timings_s"]
    shown = (
        f"**{len(result['rois'])} ROI(s)**, prompt `{result['prompt']}`{_counted(prompt)} · read {timings['read'] * 1000:.0f} ms · "
        f"segment {timings['segment'] * 1000:.0f} ms · classify {timings['classify'] * 1000:.0f} ms · "
        f"total {timings['total'] * 1000:.0f} ms"
    )
    annotated = (_drawn_prompt(result["_image"], prompt), regions)
    return annotated, rows, shown, app.tower_inputs(result)


def _prompt_column(takes_text: bool | None) -> tuple:
    """The photo and the prompts: (photo, click mode, [box, mask, every, text], run, clear)."""
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
        gr.Markdown("No prompt: the automatic ROI (the segmenter's most salient object).")
    return photo, mode, [box, mask, every, text], run, clear


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
        with gr.Row():
            photo, mode, fields, run, clear = _prompt_column(takes_text)
            results = _result_column()
        box, mask, every, text = fields

        def classify_page(image, state, box_text, mask_image, every_object, concept):
            if image is None:
                raise ValueError("upload a photo first (or pick an example).")
            prompt = page_prompt(state, box_text, mask_image, every_object, concept)
            return _outputs(app, app.classify(image, prompt), prompt)

        def click(image, state, click_mode, box_text, event: gr.SelectData):
            """A click adds a point (or a box corner) and classifies at once; the other prompts are cleared."""
            if image is None:
                raise ValueError("upload a photo first (or pick an example).")
            x, y = (int(v) for v in event.index)
            state = {key: list(value) if isinstance(value, list) else value for key, value in state.items()}
            if click_mode == CLICK_MODES[2]:
                if state["corner"] is None:
                    state["corner"] = [x, y]
                    return (state, box_text, None, False, "", *[gr.skip()] * len(results))
                (x0, y0), state["corner"] = state["corner"], None
                box_text = f"{min(x0, x)}, {min(y0, y)}, {max(x0, x)}, {max(y0, y)}"
            else:
                state["points"].append([x, y])
                state["labels"].append(1 if click_mode == CLICK_MODES[0] else 0)
            return (state, box_text, None, False, "", *classify_page(image, state, box_text, None, False, ""))

        def reset():
            return (_empty_clicks(), "", None, False, "", None, None, "", None)

        def api_classify(path, prompt_json):
            if path is None:
                raise ValueError("no image was sent.")
            return app.api_result(app.classify(path, prompt_json))

        run.click(_guarded(classify_page), [photo, clicks, *fields], results, api_visibility="private")
        photo.select(
            _guarded(click), [photo, clicks, mode, box], [clicks, *fields, *results], api_visibility="private"
        )
        clear.click(reset, None, [clicks, *fields, *results], api_visibility="private")
        photo.upload(reset, None, [clicks, *fields, *results], api_visibility="private")
        photo.change(_empty_clicks, None, clicks, api_visibility="private")  # a new photo: its own clicks
        if app.examples:

            def example(image, mask_image):
                return classify_page(image, _empty_clicks(), "", mask_image, False, "")

            gr.Examples(
                examples=[[photo_path, mask_path] for photo_path, mask_path in app.examples],
                inputs=[photo, mask],
                outputs=results,
                fn=_guarded(example),
                run_on_click=True,
                cache_examples=False,
                label="Examples (the demo's test photos, with their exact masks: no segmenter needed)",
                elem_id="examples",
                examples_per_page=5,
            )
        with gr.Row(visible=False):
            api_image, api_prompt, api_result = gr.File(), gr.Textbox(), gr.JSON()
            api_button = gr.Button()
        api_button.click(_guarded(api_classify), [api_image, api_prompt], api_result, api_name="classify")
    return page


__all__ = ["build_page", "page_css", "page_prompt"]
