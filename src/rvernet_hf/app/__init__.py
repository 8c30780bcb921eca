# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf app`: RveRNet on a web page and its `/classify` API. `api`: the app's state and API (no Gradio);
`page`: the Gradio page; `serve`: which model to serve, and the server."""

from .api import MAX_FILE_SIZE, QUEUE_SIZE, RveRNetApp, mask_to_rle, parse_prompt, rle_to_mask
from .serve import DEMO_FOLDER, default_model, demo_examples, launch, make_app


__all__ = [
    "DEMO_FOLDER",
    "MAX_FILE_SIZE",
    "QUEUE_SIZE",
    "RveRNetApp",
    "default_model",
    "demo_examples",
    "launch",
    "make_app",
    "mask_to_rle",
    "parse_prompt",
    "rle_to_mask",
]
