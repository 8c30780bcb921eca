"""Time to the first training step of `rvernet-hf train` on a FoodSeg103-schema replica, and how often each photo is
decoded before it: the cost of reading every sample once (the check, the masks, the cached teacher logits).

    python benchmarks/first_step.py [--images 500] [--classes 2] [--size 512 384] [--src PATH ...] [--json out.json]

The replica is FoodSeg103 as published on the Hub (parquet train and validation splits, 90 / 10 % of the photos:
image, label map, classes_on_image, id; id2label.json), `--images` JPEG photos with `--classes` foods each, so
`images * classes` samples (500 x 2 = 1,000 by default). The run distils from the real ImageNet EfficientNet-Lite0 (given a head for the replica's foods) with cached teacher
logits, into two tiny random DeiT towers, so the figure is the data preparation, not the step. Each `--src` is a
checkout's `src` folder (e.g. of an older commit: `git worktree add /tmp/before <rev>`), run in its own process with
fresh caches; without `--src`, the installed package. Printed: seconds from `main()` to the first training step,
photo decodes (JPEG pixel reads) per photo while the data is prepared (before the Trainer is built; the first batch's
decodes are not counted), and each run's time as a ratio of the first.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


os.environ.setdefault("HF_HUB_OFFLINE", "1")

FOODS = {0: "background", 1: "rice", 2: "egg", 3: "sauce", 4: "bread"}

# Run in a child process with the code under test first on sys.path: times main() to the first training step and
# counts JPEG decodes (pixel reads, not header reads; the replica's photos are JPEG, its label maps and masks PNG).
DRIVER = r"""
import json, sys, time
import PIL.ImageFile, transformers
opened = {"jpeg": 0}
original_load = PIL.ImageFile.ImageFile.load
def counting_load(self):
    if self.format == "JPEG" and self.tile:  # pixels not read yet: this call decodes them
        opened["jpeg"] += 1
    return original_load(self)
PIL.ImageFile.ImageFile.load = counting_load
first = {}
original_step = transformers.Trainer.training_step
def timed_step(self, *args, **kwargs):
    first.setdefault("at", time.perf_counter())
    return original_step(self, *args, **kwargs)
transformers.Trainer.training_step = timed_step
original_init = transformers.Trainer.__init__
def counted_init(self, *args, **kwargs):  # every sample has been read once when the Trainer is built
    first.setdefault("prepared", opened["jpeg"])
    original_init(self, *args, **kwargs)
transformers.Trainer.__init__ = counted_init
from rvernet_hf.training import main
argv = json.loads(sys.argv[1])
start = time.perf_counter()
main(argv)
import rvernet_hf
result = {"seconds": first["at"] - start, "jpeg_decodes": first["prepared"], "package": rvernet_hf.__file__}
print("FIRST_STEP " + json.dumps(result), flush=True)
"""


def write_replica(folder: Path, images: int, classes: int, size: tuple[int, int], seed: int = 0) -> Path:
    """FoodSeg103 as published: data/{train,validation}-*.parquet (image, label, classes_on_image, id) +
    id2label.json."""
    import datasets
    from PIL import Image

    from rvernet_hf.testing_utils import write_dataset_repo

    rng = np.random.default_rng(seed)
    width, height = size
    foods = [i for i in FOODS if i]
    rows = {"image": [], "label": [], "classes_on_image": [], "id": []}
    for index in range(images):
        pixels = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
        photo = Image.fromarray(pixels).resize((width, height), Image.BILINEAR)  # smooth, so JPEG is photo-like
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG", quality=90)
        present = [foods[(index + k) % len(foods)] for k in range(classes)]
        label_map = np.zeros((height, width), dtype=np.uint8)
        for slot, class_id in enumerate(present):  # vertical bands, background in the last one
            band = width // (classes + 1)
            label_map[:, slot * band : (slot + 1) * band] = class_id
        rows["image"].append({"bytes": buffer.getvalue(), "path": None})
        rows["label"].append(Image.fromarray(label_map, mode="L"))
        rows["classes_on_image"].append([0, *present])
        rows["id"].append(index)
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.Image(),
            "classes_on_image": datasets.Sequence(datasets.Value("int64")),
            "id": datasets.Value("int64"),
        }
    )
    held = images - max(1, images // 10)  # as published: a train and a validation split (here 90 / 10 % of the photos)
    splits = {"train": {k: v[:held] for k, v in rows.items()}, "validation": {k: v[held:] for k, v in rows.items()}}
    return write_dataset_repo(folder, splits, features, FOODS)


def write_models(folder: Path) -> tuple[Path, Path]:
    """A tiny DeiT config (the towers, random-init) and the real Lite0 with a head for the replica's foods."""
    from rvernet_hf.teachers import BUILTIN_LITE0, load_classifier
    from rvernet_hf.testing_utils import tiny_tower_config

    towers = folder / "tiny_deit"
    tiny_tower_config("deit", image_size=32).save_pretrained(towers)
    teacher, _ = load_classifier(BUILTIN_LITE0, {i - 1: FOODS[i] for i in FOODS if i})
    teacher.save_pretrained(folder / "teacher")
    return towers, folder / "teacher"


def run_once(src: str | None, dataset: Path, towers: Path, teacher: Path, work: Path) -> dict:
    options = {
        "dataset_name": dataset,
        "roi_model_name_or_path": towers,
        "context_model_name_or_path": towers,
        "fusion_hidden_size": 16,
        "distillation_type": "hard",
        "teacher_model_name_or_path": teacher,
        "output_dir": work / "out",
        "mask_cache_dir": work / "masks",
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 32,
        "max_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": "true",
    }
    switches = ["--from_scratch", "--cache_teacher_logits", "--do_train", "--use_cpu"]
    argv = [item for name, value in options.items() for item in (f"--{name}", str(value))] + switches
    env = dict(os.environ, HF_DATASETS_CACHE=str(work / "hf_datasets"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    if src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argv)], env=env, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FIRST_STEP ")]
    if done.returncode or not lines:
        raise SystemExit(f"run with src={src or 'installed'} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("FIRST_STEP ") :])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--classes", type=int, default=2, help="foods per photo (samples = images x classes)")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 384), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--src", nargs="*", default=[None], help="checkouts' src folders (default: installed)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from rvernet_hf.run_folder import replaced_atomically
    from rvernet_hf.testing_utils import machine_facts

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset = write_replica(tmp / "FoodSeg103", args.images, args.classes, tuple(args.size))
        towers, teacher = write_models(tmp)
        for number, src in enumerate(args.src):
            result = run_once(src, dataset, towers, teacher, tmp / f"run{number}")
            result["src"] = src or "installed"
            results.append(result)
    print(
        f"\nTime to the first training step: FoodSeg103-schema replica, {args.images} photos x {args.classes} foods "
        f"= {args.images * args.classes} samples ({args.size[0]}x{args.size[1]} JPEG), cached Lite0 teacher logits"
    )
    print(f"{'code':<48} {'seconds':>8} {'JPEG decodes / photo':>21} {'ratio':>6}")
    for result in results:
        result["decodes_per_photo"] = result["jpeg_decodes"] / args.images
        result["ratio"] = result["seconds"] / results[0]["seconds"]
        print(
            f"{result['src'][-48:]:<48} {result['seconds']:8.1f} {result['decodes_per_photo']:21.2f} {result['ratio']:6.2f}"
        )
    if args.json:
        report = {"machine": machine_facts(), "arguments": {k: str(v) for k, v in vars(args).items()}, "runs": results}
        with replaced_atomically(args.json) as temporary:
            Path(temporary).write_text(json.dumps(report, indent=2))
    return results


if __name__ == "__main__":
    main()
