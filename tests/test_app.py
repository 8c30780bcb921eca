"""The web page and its API (`rvernet-hf app`), and the Space that `push --space_id` writes: a real server on
127.0.0.1 in a subprocess answered through `gradio_client` for every prompt kind, each bad input refused with its
message while the server keeps serving, the segmenter's image encoder run once for several clicks on one photo, and a
real browser (the system Chromium, driven by Playwright) that uploads a photo, clicks it and sees the labelled region.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rvernet_hf.app import RveRNetApp, demo_examples, mask_to_rle, parse_prompt, rle_to_mask
from rvernet_hf.cli import main as cli_main
from rvernet_hf.prompts_rvernet import RoiPrompt
from rvernet_hf.testing_utils import free_port, tiny_sam, tiny_sam3, tiny_tower_config, wait_for_server


LABELS = ("ketchup", "chili paste", "fries")
PHOTO_SIZE = (64, 48)  # (W, H)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny RveRNet folder (its processor names a tiny SAM folder), a SAM 3 folder, photos, masks, a non-image."""
    import torch

    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageProcessor
    from rvernet_hf.hub import render_model_card

    root = tmp_path_factory.mktemp("app")
    torch.manual_seed(0)
    config = RveRNetConfig(
        roi_config=tiny_tower_config("deit"),
        context_config=tiny_tower_config("deit"),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
        fusion_hidden_size=16,
    )
    RveRNetForImageClassification(config).eval().save_pretrained(root / "model")
    tiny_sam().save_pretrained(root / "sam")
    sam3, sam3_processor = tiny_sam3()
    sam3.save_pretrained(root / "sam3")
    sam3_processor.save_pretrained(root / "sam3")
    RveRNetImageProcessor(size={"height": 30, "width": 30}, sam_model_name_or_path=str(root / "sam")).save_pretrained(
        root / "model"
    )
    render_model_card("rvernet-tiny", "me/rvernet-tiny", config).save(root / "model" / "README.md")
    rng = np.random.default_rng(0)
    width, height = PHOTO_SIZE
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / "photo.png")
    Image.fromarray(rng.integers(0, 256, (height + 8, width, 3), dtype=np.uint8)).save(root / "other.png")
    mask = np.zeros((height, width), dtype=bool)
    mask[10:30, 20:40] = True
    Image.fromarray(mask.astype(np.uint8) * 255).save(root / "mask.png")
    (root / "not_an_image.png").write_text("hello")
    return root


def _start(command: list[str], port: int, log, env: dict | None = None, cwd=None) -> subprocess.Popen:
    """Start a server and wait (up to 120 s) until its page answers on 127.0.0.1:port."""
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=cwd
    )
    try:
        wait_for_server(f"http://127.0.0.1:{port}/", process)
    except RuntimeError as error:
        process.kill()
        log.flush()
        raise AssertionError(f"{error}: {Path(log.name).read_text()[-3000:]}") from None
    return process


@pytest.fixture(scope="module")
def server(files):
    """`rvernet-hf app --model FOLDER` on 127.0.0.1 in a subprocess; yields its URL."""
    port = free_port()
    with open(files / "server.log", "w") as log:
        command = [sys.executable, "-m", "rvernet_hf.cli", "app", "--model", str(files / "model"), "--port", str(port)]
        process = _start(command, port, log)
        yield f"http://127.0.0.1:{port}/"
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def _classify(client, image, prompt) -> dict:
    from gradio_client import handle_file

    return client.predict(
        handle_file(str(image)), prompt if isinstance(prompt, str) else json.dumps(prompt), api_name="/classify"
    )


# ------------------------------------------------------------------------------------------------ prompts, RLE


@pytest.mark.parametrize("seed", range(4))
def test_rle_round_trips_and_is_cocos_column_major_layout(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((7, 5)) < 0.4
    mask[0, 0] = seed % 2 == 1  # both a mask that starts with the object and one that does not
    rle = mask_to_rle(mask)
    assert rle["size"] == [7, 5] and sum(rle["counts"]) == 35
    assert np.array_equal(rle_to_mask(rle), mask)
    flat = mask.ravel(order="F")  # runs in column-major order, the first run counting zeros
    expected, value, run = [], False, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            expected.append(run)
            value, run = pixel, 1
    expected.append(run)
    assert rle["counts"] == expected


@pytest.mark.parametrize(
    "rle, message",
    [
        ([1, 2], "RLE object"),
        ({"size": [2, 2], "counts": [1, 2]}, "add up to 3"),
        ({"size": [2, 0], "counts": []}, "positive integers"),
        ({"size": [2, 2], "counts": [5, -1]}, "integers >= 0"),
    ],
)
def test_malformed_rle_is_refused(rle, message):
    with pytest.raises(ValueError, match=message):
        rle_to_mask(rle)


def test_an_rle_declaring_another_size_than_the_photo_is_refused_before_it_is_decoded():
    """Issue 35.10: 60 bytes declaring 20000x20000 cost ~380 MB before the size check. The declared size is checked
    against the photo first; the decoder is never reached."""
    import tracemalloc

    huge = {"size": [20000, 20000], "counts": [200_000_000, 200_000_000]}
    tracemalloc.start()
    with pytest.raises(
        ValueError, match=r"mask has size 20000x20000 \(WxH, declared by its RLE\) but the image is 64x48"
    ):
        parse_prompt(json.dumps({"mask": huge}), image_size=(48, 64))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000, peak  # bytes: nothing of the declared size was allocated
    small = mask_to_rle(np.eye(4, dtype=bool))
    assert np.array_equal(parse_prompt({"mask": small}, image_size=(4, 4)).masks[0], np.eye(4, dtype=bool))


def test_prompt_json_forms():
    """The API's JSON is the pipeline's prompt vocabulary, checked by the one prompt class (`RoiPrompt`)."""
    assert parse_prompt("").kind == parse_prompt("{}").kind == "automatic"
    clicks = parse_prompt('{"points": [[3, 4]]}')
    assert clicks.kind == "points" and clicks.points[0][0].tolist() == [[3.0, 4.0]]
    assert clicks.points[0][1].tolist() == [1]  # the object, by default
    parsed = parse_prompt({"points": [[3, 4], [9, 9]], "point_labels": [1, 0], "box": [1, 2, 30, 40]})
    assert parsed.kind == "box+points" and parsed.points[0][1].tolist() == [1, 0]
    assert parsed.boxes[0].tolist() == [1.0, 2.0, 30.0, 40.0]
    assert parse_prompt({"all_objects": True}).kind == "all_objects"
    assert parse_prompt({"text": "sauce"}).text == "sauce"
    mask = np.eye(4, dtype=bool)
    assert np.array_equal(parse_prompt({"mask": mask_to_rle(mask)}).masks[0], mask)
    assert parse_prompt(parsed) is parsed and isinstance(parsed, RoiPrompt)


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("{nope", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"point": [[1, 2]]}', "unknown keys \\['point'\\]"),
        ('{"points": [[[1, 2]]]}', "one click \\[x, y\\] or the clicks of one object"),
        ('{"points": [[1, 2, 3]]}', "each point of image 0 must be \\[x, y\\]"),
        ('{"points": [[1, 2]], "point_labels": [2]}', "must be 1 \\(the object\\) or 0 \\(not the object\\)"),
        ('{"point_labels": [1]}', "point_labels but no points"),
        ('{"box": [5, 5, 5, 30]}', "zero or negative size"),
        ('{"box": [5, 5, 30]}', "x0, y0, x1, y1"),
        ('{"box": [0, 0, NaN, 3]}', "finite numbers"),
        ('{"text": ""}', "non-empty string"),
        ('{"all_objects": "yes"}', "True or False"),
        ('{"all_objects": true, "points": [[1, 2]]}', "`all_objects` finds every object itself: clicks"),
        ('{"mask": [1, 2]}', "RLE object"),
    ],
)
def test_bad_prompt_json_is_refused_naming_the_field(prompt, message):
    with pytest.raises(ValueError, match=message):
        parse_prompt(prompt)


# ------------------------------------------------------------------------------------------- the app in-process


def test_three_clicks_on_one_photo_run_the_image_encoder_once(files):
    app = RveRNetApp(str(files / "model"), embedding_cache=1)
    segmenter = app.segmenter()
    calls = []
    encode = segmenter.model.get_image_embeddings
    segmenter.model.get_image_embeddings = lambda *args, **kwargs: calls.append(1) or encode(*args, **kwargs)
    results = [app.classify(files / "photo.png", {"points": [[10 + 10 * k, 20]]}) for k in range(3)]
    assert len(calls) == 1
    assert [r["prompt"] for r in results] == ["points"] * 3
    app.classify(files / "other.png", {"box": [2, 2, 40, 30]})  # a new photo replaces it (a cache of one)
    assert len(calls) == 2
    again = app.classify(files / "photo.png", {"points": [[10, 20]]})
    assert len(calls) == 3  # evicted: computed again, and the same answer as the first time
    assert again["rois"] == results[0]["rois"]
    # The cached embedding gives what a segmenter without a cache gives.
    segmenter.cache_embeddings(0)
    fresh = app.classify(files / "photo.png", {"points": [[20, 20]]})
    assert fresh["rois"] == results[1]["rois"]


def test_text_prompts_need_a_sam3_segmenter(files):
    app = RveRNetApp(str(files / "model"), sam_model_name_or_path=str(files / "sam3"))
    assert app.takes_text() is True
    result = app.classify(files / "photo.png", {"text": "sauce"})
    assert result["prompt"] == "text" and result["rois"]
    with pytest.raises(ValueError, match="SAM 3"):
        app.classify(files / "photo.png", {"points": [[3, 3]]})


def test_a_non_rvernet_model_is_refused(files, tmp_path):
    from transformers import DeiTForImageClassification

    DeiTForImageClassification(tiny_tower_config("deit")).save_pretrained(tmp_path / "deit")
    with pytest.raises(ValueError, match="not an RveRNet"):
        RveRNetApp(str(tmp_path / "deit"))


def test_no_model_and_no_demo_exits_non_zero_saying_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["app"]) == 2
    assert "run `rvernet-hf demo` first" in capsys.readouterr().err


def test_the_demos_test_photos_are_examples_with_their_masks(tmp_path):
    for name in ("ketchup", "fries"):
        for k in range(3):
            for folder in ("test", "test_masks"):
                (tmp_path / "data" / folder / name).mkdir(parents=True, exist_ok=True)
                Image.new("L", (4, 4)).save(tmp_path / "data" / folder / name / f"{k}.png")
    examples = demo_examples(tmp_path / "rvernet", limit=5)
    assert [os.path.relpath(photo, tmp_path) for photo, _ in examples] == [
        "data/test/fries/0.png",
        "data/test/ketchup/0.png",
        "data/test/fries/1.png",
        "data/test/ketchup/1.png",
        "data/test/fries/2.png",
    ]
    assert all(mask == photo.replace("/test/", "/test_masks/") for photo, mask in examples)
    assert demo_examples(tmp_path / "elsewhere") == []  # another model: no examples


# ------------------------------------------------------------------------------------------------ the server


@pytest.mark.slow
def test_the_api_answers_every_prompt_kind(client, files):
    mask = np.asarray(Image.open(files / "mask.png")) > 0
    cases = {
        "points": {"points": [[30, 20]]},
        "box": {"box": [5, 5, 40, 30]},
        "box+points": {"box": [5, 5, 40, 30], "points": [[20, 20]], "point_labels": [0]},
        "mask": {"mask": mask_to_rle(mask)},
        "all_objects": {"all_objects": True},
        "automatic": {},
    }
    for kind, prompt in cases.items():
        result = _classify(client, files / "photo.png", prompt)
        assert result["prompt"] == kind
        assert result["image_size"] == list(PHOTO_SIZE)
        assert result["rois"] and set(result["timings_s"]) == {"read", "segment", "classify", "total"}
        for roi in result["rois"]:
            assert {entry["label"] for entry in roi["labels"]} == set(LABELS)
            assert abs(sum(entry["score"] for entry in roi["labels"]) - 1) < 1e-4
            decoded = rle_to_mask(roi["mask"])
            assert decoded.shape == (PHOTO_SIZE[1], PHOTO_SIZE[0]) and decoded.any()
            rows, cols = np.flatnonzero(decoded.any(1)), np.flatnonzero(decoded.any(0))
            assert roi["box"] == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    given = _classify(client, files / "photo.png", cases["mask"])
    assert np.array_equal(rle_to_mask(given["rois"][0]["mask"]), mask)  # a given mask is the ROI, as it is


@pytest.mark.slow
def test_the_api_refuses_bad_input_by_name_and_keeps_serving(client, files):
    from gradio_client.exceptions import AppError

    small = mask_to_rle(np.eye(10, dtype=bool))
    cases = [
        (files / "not_an_image.png", {}, "not a readable image"),
        (files / "photo.png", {"points": [[300, 20]]}, "outside the image"),
        (files / "photo.png", {"box": [5, 5, 5, 30]}, "zero or negative size"),
        (files / "photo.png", {"mask": small}, "has size 10x10 .* but the image is 64x48"),
        (files / "photo.png", {"text": "sauce"}, "needs a text-prompted segmenter"),
        (files / "photo.png", "{nope", "not valid JSON"),
    ]
    for image, prompt, message in cases:
        with pytest.raises(AppError, match=message) as raised:
            _classify(client, image, prompt)
        assert "Traceback" not in str(raised.value)
    assert _classify(client, files / "photo.png", {"points": [[30, 20]]})["rois"]  # still serving


@pytest.mark.slow
def _venv_python(where: Path) -> str:
    """A fresh virtual environment that sees this machine's packages (nothing can be downloaded here) but has its
    own site-packages, where what is installed into it goes. Without a pip of its own: the seeded pip brings an old
    setuptools that would shadow the one torch requires; this machine's pip installs into the environment."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)], check=True)
    return str(where / "bin" / "python")


def test_the_space_that_push_writes_installs_and_serves_the_model(files, tmp_path):
    """Issue 35.5: the Space's requirements.txt was `rvernet-hf[app]==<version>`, which no index holds: the Space
    could not build. It now holds the package beside app.py and lists what the package needs from PyPI; a fresh
    virtual environment installs that list (offline: from what this machine has) and runs app.py, which imports the
    Space's copy of the package and serves the model."""
    from huggingface_hub import metadata_load
    from packaging.requirements import Requirement

    from rvernet_hf.hub import push_folder

    push_folder(files / "model", "me/rvernet-tiny", dry_run_dir=tmp_path / "upload", space_id="me/rvernet-tiny-demo")
    space = tmp_path / "upload-space"
    assert sorted(path.name for path in space.iterdir()) == ["README.md", "app.py", "requirements.txt", "rvernet_hf"]
    front = metadata_load(space / "README.md")
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and front["models"] == ["me/rvernet-tiny"]
    required = {Requirement(line).name for line in (space / "requirements.txt").read_text().splitlines()}
    assert {"torch", "transformers", "gradio"} <= required and "rvernet-hf" not in required
    assert (space / "rvernet_hf" / "templates" / "model_card.md").is_file() and not list(space.rglob("__pycache__"))
    assert "https://huggingface.co/spaces/me/rvernet-tiny-demo" in (tmp_path / "upload" / "README.md").read_text()
    python = _venv_python(tmp_path / "venv")
    subprocess.run(
        [python, "-m", "pip", "install", "--no-index", "--quiet", "-r", "requirements.txt"], cwd=space, check=True
    )  # every line resolvable (here: already present)
    imported = subprocess.run(
        [python, "-c", "import rvernet_hf; print(rvernet_hf.__file__)"], cwd=space, capture_output=True, text=True
    )
    assert imported.stdout.strip() == str(space / "rvernet_hf" / "__init__.py"), imported.stderr[-2000:]
    port = free_port()
    env = {
        "RVERNET_MODEL": str(tmp_path / "upload"),
        "RVERNET_SAM_MODEL": str(files / "sam"),  # the upload names the Hub's segmenter, unreachable here
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
    }
    with open(tmp_path / "space.log", "w") as log:
        process = _start([python, "app.py"], port, log, env, cwd=space)
        try:
            from gradio_client import Client

            result = _classify(
                Client(f"http://127.0.0.1:{port}/", verbose=False), files / "photo.png", {"points": [[30, 20]]}
            )
            assert result["prompt"] == "points" and result["rois"]
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.mark.parametrize(
    "repo_id, space_id, sam_model_id, message",
    [
        ("bad id!", None, None, "--repo_id 'bad id!' is not a valid Hub id"),
        ("rvernet-tiny", None, None, "--repo_id 'rvernet-tiny' must be namespace/name"),
        ("me/rvernet-tiny", "not a space", None, "--space_id 'not a space' is not a valid Hub id"),
        ("me/rvernet-tiny", "demo", None, "--space_id 'demo' must be namespace/name"),
        ("me/rvernet-tiny", None, "./towers/sam-tiny", "--sam_model_id './towers/sam-tiny' is a path on this machine"),
    ],
)
def test_push_refuses_ids_the_hub_would_refuse_before_writing_anything(
    files, tmp_path, repo_id, space_id, sam_model_id, message
):
    """Issue 35.5: invalid ids were accepted (and failed, if at all, at the Hub after the work); a local segmenter
    path was written into the upload."""
    from rvernet_hf.hub import push_folder

    with pytest.raises(ValueError, match=re.escape(message)):
        push_folder(
            files / "model", repo_id, dry_run_dir=tmp_path / "up", space_id=space_id, sam_model_id=sam_model_id
        )
    assert not (tmp_path / "up").exists() and not (tmp_path / "up-space").exists()


def test_a_space_for_a_model_the_app_cannot_serve_is_refused(tmp_path):
    """Issue 35.5: a plain classifier got a Space whose app.py exited at start."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    from rvernet_hf.hub import push_folder

    torch.manual_seed(0)
    folder = tmp_path / "vit"
    ViTForImageClassification(ViTConfig(**tiny_tower_config("vit").to_dict())).save_pretrained(folder)
    (folder / "README.md").write_text("# a ViT\n")
    with pytest.raises(ValueError, match="the Space serves RveRNet models .* holds a 'vit' model"):
        push_folder(folder, "me/vit", dry_run_dir=tmp_path / "up", space_id="me/vit-demo")
    assert not (tmp_path / "up").exists()
    push_folder(folder, "me/vit", dry_run_dir=tmp_path / "up")  # without a Space it uploads


def _chromium() -> str | None:
    return os.environ.get("RVERNET_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no Chromium (.ci/run installs Debian's `chromium`)")
def test_a_browser_uploads_a_photo_clicks_it_and_sees_the_labelled_region(server, files, tmp_path):
    from playwright.sync_api import sync_playwright
    from skimage import data

    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server)
            page.set_input_files("#photo input[type=file]", str(tmp_path / "coffee.png"))
            photo = page.wait_for_selector("#photo img")
            page.wait_for_timeout(500)
            box = photo.bounding_box()
            for clicks, (fx, fy) in enumerate([(0.45, 0.35), (0.55, 0.4)], start=1):
                page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                shown = f"({clicks} click{'s' if clicks > 1 else ''})"
                page.wait_for_function(
                    f"document.querySelector('#timings').innerText.includes('{shown}')", timeout=60000
                )
            page.wait_for_selector("#result img", timeout=30000)
            legend = page.inner_text("#result")
            assert any(f"0: {label}" in legend for label in LABELS), legend
            assert "prompt points (2 clicks)" in page.inner_text("#timings")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_a_small_photo_is_shown_enlarged_and_read_back_exactly():
    """Issue 35.11: the demo's 64-px photos sat as a thumbnail in a 420-px frame, too small to click an object. A
    small photo is shown enlarged whole times (each pixel a square); the handlers read the photo back exactly and
    map a click to the photo pixel under it."""
    pytest.importorskip("gradio")
    from rvernet_hf.app.page import DISPLAY_MIN_SIDE, display_scale, show_photo, shown_photo

    photo = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    display, shown = show_photo(photo)
    assert shown["scale"] == display_scale(photo.shape) == DISPLAY_MIN_SIDE // 64 == 8
    assert display.shape == (384, 512, 3) and shown["shape"] == [384, 512]
    back, scale = shown_photo(display, shown)
    assert scale == 8 and np.array_equal(back, photo)
    assert np.array_equal(display[8 * 20 + 7, 8 * 30 + 2], photo[20, 30])  # a click at (242, 167) is pixel (30, 20)
    other = np.zeros((300, 200, 3), np.uint8)  # a new upload before the page enlarged it: the photo itself
    assert shown_photo(other, shown) == (other, 1)
    big = np.zeros((400, 600, 3), np.uint8)  # larger than DISPLAY_MIN_SIDE: as it is
    assert show_photo(big)[1]["scale"] == 1 and show_photo(big)[0] is big
    assert show_photo(None) == (None, None)


def test_an_roi_is_tinted_translucently_with_an_opaque_outline():
    """Issue 35.11: the ROI's colour hid the object it labels. Inside it is translucent; its border is opaque."""
    pytest.importorskip("gradio")
    from rvernet_hf.app.page import ROI_TINT, tint

    mask = np.zeros((20, 30), bool)
    mask[5:15, 8:22] = True
    overlay = tint(mask, outline=2)
    assert overlay.dtype == np.float32 and overlay.shape == mask.shape
    assert (overlay[~mask] == 0).all()
    assert overlay[10, 15] == pytest.approx(ROI_TINT) and 0 < ROI_TINT < 1
    assert overlay[5, 15] == overlay[6, 15] == overlay[10, 8] == 1.0 and overlay[7, 15] == pytest.approx(ROI_TINT)
    thin = np.zeros((5, 5), bool)
    thin[2, :] = True  # a one-pixel line is all outline
    assert (tint(thin, outline=1)[thin] == 1.0).all()


def test_the_prompt_status_says_what_will_be_sent():
    """Issue 35.11: after a click or an example's mask the page still said "No prompt: the automatic ROI"."""
    pytest.importorskip("gradio")
    from rvernet_hf.app.page import NO_PROMPT, page_prompt, prompt_status

    empty = {"points": [], "labels": [], "corner": None}
    assert prompt_status(page_prompt(empty, "", None, False, "")) == NO_PROMPT
    clicks = {"points": [[1, 2], [3, 4], [5, 6]], "labels": [1, 1, 0], "corner": None}
    assert prompt_status(page_prompt(clicks, "", None, False, "")) == "Prompt: 2 click(s) on the object, 1 off it."
    status = prompt_status(page_prompt(empty, "5, 6, 40, 30", np.ones((4, 4), np.uint8), True, "sauce"))
    assert status == "Prompt: a box 5, 6, 40, 30; the uploaded mask; every object; the concept 'sauce'."
    waiting = prompt_status(page_prompt(empty, "", None, False, ""), [12, 7])
    assert waiting.endswith("Box: first corner at (12, 7); click the opposite corner.")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no Chromium (.ci/run installs Debian's `chromium`)")
def test_a_browser_shows_a_small_photo_enlarged_maps_clicks_back_and_says_the_prompt(server, files, tmp_path):
    """Issue 35.11, seen in a real browser: the 64x48 photo fills its frame (enlarged 8 times), a box drawn from two
    corner clicks lands on the photo's pixels, and the status line says the prompt (not "No prompt")."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server)
            page.set_input_files("#photo input[type=file]", str(files / "photo.png"))
            page.wait_for_function(
                "(document.querySelector('#photo img') || {}).naturalWidth === 512", timeout=60000
            )  # 64 px wide, shown 8 times enlarged
            assert "No prompt" in page.inner_text("#prompt_status")
            page.get_by_label("a box corner").check()
            frame = page.query_selector("#photo img").bounding_box()  # the image is fitted inside, centred
            fit = min(frame["width"] / 512, frame["height"] / 384, 1)
            left, top = frame["x"] + (frame["width"] - 512 * fit) / 2, frame["y"] + (frame["height"] - 384 * fit) / 2
            assert 512 * fit > 400  # the photo fills most of its frame, no thumbnail
            for x, y in ((10, 8), (41, 33)):  # photo pixels: aim at the middle of each enlarged square
                page.mouse.click(left + (x * 8 + 4) * fit, top + (y * 8 + 4) * fit)
                page.wait_for_timeout(300)
                if (x, y) == (10, 8):
                    page.wait_for_function(
                        "document.querySelector('#prompt_status').innerText.includes('first corner at (10, 8)')",
                        timeout=30000,
                    )
            page.wait_for_function(
                "document.querySelector('#prompt_status').innerText.includes('Prompt: a box 10, 8, 41, 33')",
                timeout=60000,
            )
            page.wait_for_function("document.querySelector('#timings').innerText.includes('ROI')", timeout=60000)
            page.screenshot(path=str(tmp_path / "small.png"), full_page=True)
        finally:
            browser.close()


def test_an_example_is_shown_enlarged_and_its_mask_named_as_the_prompt(files):
    """The handler behind an example (a small photo and its exact mask): the photo field gets the enlarged photo,
    the result is drawn at that scale, and the status names the mask."""
    pytest.importorskip("gradio")
    from rvernet_hf.app.page import _Handlers

    app = RveRNetApp(str(files / "model"))
    photo = np.asarray(Image.open(files / "photo.png").convert("RGB"))
    mask = np.asarray(Image.open(files / "mask.png"))
    shown_value, shown, annotated, table, info, towers, status = _Handlers(app, 4).example(photo, mask)
    assert shown == {"scale": 8, "shape": [384, 512]} and shown_value.shape == (384, 512, 3)
    image, regions = annotated
    assert image.shape == (384, 512, 3) and regions[0][0].shape == (384, 512)
    assert status == "Prompt: the uploaded mask." and "prompt `mask`" in info
    assert {row[1] for row in table} == set(LABELS)


def test_a_caching_segmenter_is_shared_by_copies_and_pickles_without_its_cache(files):
    import copy
    import pickle

    from rvernet_hf import RveRNetImageProcessor
    from rvernet_hf.segmenters_rvernet import Segmenter

    segmenter = Segmenter(tiny_sam())
    segmenter.cache_embeddings(2)
    segmenter.embed([np.zeros((8, 8, 3), dtype=np.uint8)])
    processor = RveRNetImageProcessor(size={"height": 30, "width": 30})
    processor.set_sam_model(segmenter)
    assert copy.deepcopy(processor)._sam is segmenter  # one model in memory, whatever copies the processor
    assert "sam_model_name_or_path" in processor.to_dict()
    restored = pickle.loads(pickle.dumps(segmenter))
    assert restored.embedding_cache_size == 2 and len(restored._embeddings) == 0
    assert len(restored.embed([np.zeros((8, 8, 3), dtype=np.uint8)])) == 1
