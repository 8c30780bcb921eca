"""The page's speed (issue 21): a click's latency on one photo, the first click (segmenter image encoder + mask
decoder + RveRNet) against later clicks (the embedding reused: decoder + RveRNet), with a segmenter of a real
checkpoint's shape (SAM ViT-B, random weights: speed does not depend on them); and, in a real browser, page load to
the first result with the model `rvernet-hf demo` wrote (its first example: a test photo with its exact mask).

    python benchmarks/app_latency.py [--model rvernet-demo/rvernet] [--sam base] [--clicks 5] [--browser] [--json F]

`--model tiny` and `--sam tiny` build tiny random ones (for the test suite). The photo is scikit-image's coffee
(600x400). Printed: seconds per stage for the first and the later clicks, their ratio; with `--browser`, server start
and page load to first result.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _segmenter_folder(kind: str, work: Path) -> str:
    import torch
    from transformers import SamConfig, SamModel

    from rvernet_hf.testing_utils import tiny_sam

    torch.manual_seed(0)
    model = tiny_sam() if kind == "tiny" else SamModel(SamConfig()).eval()  # SamConfig(): ViT-B at 1024 px
    model.save_pretrained(work / "sam")
    return str(work / "sam")


def _tiny_model(work: Path) -> str:
    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageProcessor
    from rvernet_hf.testing_utils import tiny_tower_config

    config = RveRNetConfig(roi_config=tiny_tower_config("deit"), context_config=tiny_tower_config("deit"))
    RveRNetForImageClassification(config).save_pretrained(work / "model")
    RveRNetImageProcessor(size={"height": 30, "width": 30}).save_pretrained(work / "model")
    return str(work / "model")


def click_latency(model: str, sam: str, clicks: int) -> dict:
    """First click vs later clicks on one photo, in process (what the page's handler runs)."""
    from skimage import data

    from rvernet_hf.app import RveRNetApp

    photo = data.coffee()
    height, width = photo.shape[:2]
    app = RveRNetApp(model, sam_model_name_or_path=sam)
    started = time.perf_counter()
    app.segmenter()
    figures = {"segmenter_load_s": time.perf_counter() - started}
    points = [[width * (0.3 + 0.4 * k / max(1, clicks)), height * 0.5] for k in range(clicks + 1)]
    results = [app.classify(photo, {"points": [point]}) for point in points]
    first, later = results[0]["timings_s"], [r["timings_s"] for r in results[1:]]
    for stage in ("segment", "classify", "total"):
        figures[f"first_click_{stage}_s"] = first[stage]
        figures[f"later_click_{stage}_s"] = statistics.median(t[stage] for t in later)
    figures["first_over_later"] = figures["first_click_total_s"] / figures["later_click_total_s"]
    return figures


def page_to_first_result(model: str, chromium: str) -> dict:
    """Start `rvernet-hf app`, open the page in headless Chromium, pick the first example, wait for its labels."""
    from playwright.sync_api import sync_playwright

    from rvernet_hf.testing_utils import free_port, wait_for_server

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    command = [sys.executable, "-m", "rvernet_hf.cli", "app", "--model", model, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_server(url, process, seconds=180)
        figures = {"server_start_s": time.perf_counter() - started}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("#photo")
            figures["page_load_s"] = time.perf_counter() - started
            page.locator("#examples tr.tr-body").first.click()
            page.wait_for_function("document.querySelector('#timings').innerText.includes('ROI')", timeout=120000)
            figures["page_load_to_first_result_s"] = time.perf_counter() - started
            browser.close()
        return figures
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rvernet-demo/rvernet", help="a saved RveRNet, or 'tiny'")
    parser.add_argument("--sam", default="base", help="'base' (SAM ViT-B shape, random), 'tiny', or a folder")
    parser.add_argument("--clicks", type=int, default=5, help="later clicks timed after the first")
    parser.add_argument("--browser", action="store_true", help="also time page load to first result in Chromium")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from rvernet_hf.testing_utils import machine_facts

    work = Path(tempfile.mkdtemp(prefix="app-latency-"))
    try:
        model = _tiny_model(work) if args.model == "tiny" else args.model
        sam = _segmenter_folder(args.sam, work) if args.sam in ("base", "tiny") else args.sam
        figures = {**machine_facts(), "model": args.model, "sam": args.sam, **click_latency(model, sam, args.clicks)}
        if args.browser:
            chromium = os.environ.get("RVERNET_CHROMIUM") or shutil.which("chromium")
            if chromium is None:
                raise SystemExit("--browser needs Chromium (Debian: apt-get install chromium)")
            figures.update(page_to_first_result(model, chromium))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in figures.items():
        print(f"{name:34s} {value:.3f}" if isinstance(value, float) else f"{name:34s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
