# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Starting `rvernet-hf app`: which model and examples to serve (the demo's by default) and the server itself, above
the app's state and API (`api`) and its page (`page`). Needs the `app` extra to launch."""

import sys
from pathlib import Path

from .api import MAX_FILE_SIZE, QUEUE_SIZE, RveRNetApp


MAX_EXAMPLES = 10
DEMO_FOLDER = Path("rvernet-demo")  # where `rvernet-hf demo` writes (its --output_dir default)


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
    """The model `rvernet-hf demo` wrote, when it is there."""
    folder = DEMO_FOLDER / "rvernet"
    return str(folder) if (folder / "config.json").is_file() else None


def make_app(model: str | None = None, **options) -> RveRNetApp | None:
    """The app for `model` (default: the demo's, with its test photos as examples); None (after saying why) when no
    model is given and the demo's is absent. `options` go to `RveRNetApp`."""
    model = model or default_model()
    if model is None:
        print(
            f"no model: run `rvernet-hf demo` first (it writes {DEMO_FOLDER}/rvernet), or pass --model FOLDER_OR_ID.",
            file=sys.stderr,
        )
        return None
    return RveRNetApp(model, examples=demo_examples(model), **options)


def launch(app: RveRNetApp, host: str | None = "127.0.0.1", port: int | None = 7860, share: bool = False, **kwargs):
    """Serve the page: a bounded queue, one request at a time, uploads capped at `MAX_FILE_SIZE`. `host`/`port` None:
    Gradio's environment variables (`GRADIO_SERVER_NAME`, `GRADIO_SERVER_PORT`, which Spaces set) or its defaults."""
    from .page import build_page, page_css

    page = build_page(app)
    page.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return page.launch(
        server_name=host, server_port=port, share=share, max_file_size=MAX_FILE_SIZE, css=page_css(), **kwargs
    )


__all__ = ["DEMO_FOLDER", "demo_examples", "default_model", "launch", "make_app"]
