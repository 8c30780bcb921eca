"""The page under load (issue 35.10): `rvernet-hf app` on 127.0.0.1, several clients sending a mix of requests
(clicks, boxes, masks, every object, the automatic ROI, and requests the app must refuse) for a few rounds of the
same mix; per round, the latency of the answered requests (p50, p95), how many were answered and refused, and the
server's resident memory (RSS) after the round. Memory must level off: RSS after the last round within 10 % of RSS
after the first.

    python benchmarks/app_load.py [--model tiny|FOLDER] [--sam tiny|base|FOLDER] [--clients 8] [--requests 25]
                                  [--rounds 3] [--json F]

Bounded: loopback only, `clients x requests x rounds` requests in all, each with a timeout; the server is stopped at
the end. `--sam base` is a segmenter of SAM ViT-B's shape (random weights: cost does not depend on them). Photos:
scikit-image's coffee, chelsea and astronaut (real photos of 400x600 to 512x512).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_latency import _segmenter_folder, _tiny_model  # noqa: E402


def _photos(work: Path) -> list[tuple[Path, dict]]:
    """(photo file, its exact-size RLE of a central box) for three real photos."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from rvernet_hf.app import mask_to_rle

    photos = []
    for name in ("coffee", "chelsea", "astronaut"):
        array = getattr(data, name)()
        path = work / f"{name}.png"
        Image.fromarray(array).save(path)
        height, width = array.shape[:2]
        mask = np.zeros((height, width), dtype=bool)
        mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = True
        photos.append((path, mask_to_rle(mask)))
    return photos


def _mix(photos: list[tuple[Path, dict]]) -> list[tuple[Path, str, bool]]:
    """One client's requests: (photo, prompt JSON, whether the app must answer it)."""
    huge = {"size": [20000, 20000], "counts": [200_000_000, 200_000_000]}  # 60 bytes declaring 400 M pixels
    mix = []
    for index, (photo, rle) in enumerate(photos):
        mix += [
            (photo, json.dumps({"points": [[100 + 20 * index, 120]]}), True),
            (photo, json.dumps({"box": [50, 40, 300, 280]}), True),
            (photo, json.dumps({"mask": rle}), True),
            (photo, json.dumps({"all_objects": True}), True),
            (photo, "", True),
            (photo, json.dumps({"points": [[5000, 20]]}), False),  # outside the photo
            (photo, json.dumps({"mask": huge}), False),  # a declared size that is not the photo's
            (photo, "{nope", False),  # not JSON
        ]
    return mix


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _client_run(url: str, requests: list, answered: list, refused: list, failed: list) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False)
    for photo, prompt, must_answer in requests:
        started = time.perf_counter()
        try:
            client.predict(handle_file(str(photo)), prompt, api_name="/classify")
            (answered if must_answer else failed).append(time.perf_counter() - started)
        except AppError as error:  # a refusal the app words (bad input, or a full queue)
            (refused if (not must_answer or "queue" in str(error).lower()) else failed).append(str(error)[:200])
        except Exception as error:  # noqa: BLE001 - reported, never hidden
            failed.append(f"{type(error).__name__}: {error}"[:200])


def load_rounds(model: str, clients: int, requests: int, rounds: int, work: Path, env: dict) -> dict:
    from rvernet_hf.testing_utils import free_port, wait_for_server

    photos = _photos(work)
    mix = _mix(photos)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "rvernet_hf.cli", "app", "--model", model, "--port", str(port)]
    log = open(work / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    figures = {}
    try:
        wait_for_server(url, process, seconds=300)
        figures["rss_start_mb"] = _rss_mb(process.pid)
        for round_index in range(1, rounds + 1):
            answered, refused, failed = [], [], []
            threads = []
            for client_index in range(clients):
                # each client its own rotation of the same mix: every round sends the same requests
                own = [mix[(client_index * 3 + k) % len(mix)] for k in range(requests)]
                thread = threading.Thread(target=_client_run, args=(url, own, answered, refused, failed))
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join(timeout=1800)
            if any(thread.is_alive() for thread in threads):
                raise RuntimeError(f"round {round_index}: clients still waiting after 30 minutes")
            quantiles = statistics.quantiles(answered, n=20) if len(answered) > 1 else [float("nan")] * 19
            figures[f"round{round_index}_answered"] = len(answered)
            figures[f"round{round_index}_refused"] = len(refused)
            figures[f"round{round_index}_failed"] = len(failed)
            figures[f"round{round_index}_p50_s"] = statistics.median(answered) if answered else float("nan")
            figures[f"round{round_index}_p95_s"] = quantiles[18]
            figures[f"round{round_index}_rss_mb"] = _rss_mb(process.pid)
            if failed:
                figures[f"round{round_index}_failures"] = sorted(set(failed))[:5]
        figures["rss_last_over_first"] = figures[f"round{rounds}_rss_mb"] / figures["round1_rss_mb"]
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="a saved RveRNet folder, or 'tiny'")
    parser.add_argument("--sam", default="tiny", help="'tiny', 'base' (SAM ViT-B shape, random) or a folder")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--malloc-arena-max", default=None, help="MALLOC_ARENA_MAX for the server (default: unset)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    for name in ("clients", "requests", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")

    from rvernet_hf.testing_utils import machine_facts

    work = Path(tempfile.mkdtemp(prefix="app-load-"))
    try:
        model = _tiny_model(work) if args.model == "tiny" else args.model
        sam = _segmenter_folder(args.sam, work) if args.sam in ("base", "tiny") else args.sam
        if sam:  # the processor saved with the model names the segmenter the app loads
            from rvernet_hf import RveRNetImageProcessor

            folder = work / "served"
            shutil.copytree(model, folder)
            RveRNetImageProcessor.from_pretrained(folder).set_settings(sam_model_name_or_path=sam).save_pretrained(
                folder
            )
            model = str(folder)
        env = {} if args.malloc_arena_max is None else {"MALLOC_ARENA_MAX": str(args.malloc_arena_max)}
        figures = {
            **machine_facts(),
            "model": args.model,
            "sam": args.sam,
            "clients": args.clients,
            "requests_per_client": args.requests,
            **load_rounds(model, args.clients, args.requests, args.rounds, work, env),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in figures.items():
        print(f"{name:28s} {value:.3f}" if isinstance(value, float) else f"{name:28s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
