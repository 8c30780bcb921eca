"""A model converted from the official RveRNet code against a natively built RveRNet of the same towers (issue 32):
time per image through the prompted pipeline with a given mask, at this machine's speed.

    python benchmarks/converted_speed.py [--roi mnet --context vit] [--rounds 15] [--json out.json]

Both models hold the official backbones' ImageNet shapes (random weights: speed does not depend on them). The
converted one carries the official preprocessing (the two cut-outs made at the photo's size, each resized bicubic
and letterboxed on its own, no normalisation); the native one this package's default (the photo and its mask
resized once, bilinear, then cut, normalised). Calls are interleaved (converted, native, ...) and compared round by
round; the pipeline's stage timings say where the difference lies.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np


os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roi", default="mnet", help="the official ROI backbone (mnet, vit, deit, deit-dist)")
    parser.add_argument("--context", default="vit", help="the official extra-ROI backbone")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--photo", default="640x480", help="the photo's size, WxH")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image
    from skimage import data as photos

    from rvernet_hf import (
        RveRNetConfig,
        RveRNetForImageClassification,
        RveRNetImageClassificationPipeline,
        RveRNetImageProcessor,
    )
    from rvernet_hf.convert_original import backbone_config, convert_original_checkpoint
    from rvernet_hf.testing_utils import interleaved_seconds, machine_facts, median_ratio, save_official_checkpoint

    work = Path(tempfile.mkdtemp(prefix="converted-speed-"))
    save_official_checkpoint(work / "official.pth", args.roi, args.context, num_classes=10)
    convert_original_checkpoint(work / "official.pth", work / "converted", args.roi, args.context, num_labels=10)
    config = RveRNetConfig(
        roi_config=backbone_config(args.roi), context_config=backbone_config(args.context), num_labels=10
    )
    native = RveRNetForImageClassification(config).eval()
    pipelines = {
        "converted": RveRNetImageClassificationPipeline(
            model=RveRNetForImageClassification.from_pretrained(work / "converted").eval(),
            image_processor=RveRNetImageProcessor.from_pretrained(work / "converted"),
        ),
        "native": RveRNetImageClassificationPipeline(model=native, image_processor=RveRNetImageProcessor()),
    }
    width, height = (int(v) for v in args.photo.split("x"))
    photo = np.asarray(Image.fromarray(photos.astronaut()).resize((width, height)))
    mask = np.zeros((height, width), dtype=bool)
    mask[height // 4 : height * 3 // 4, width // 5 : width // 2] = True
    stages = {name: [] for name in pipelines}

    def call(name):
        with torch.inference_mode():
            stages[name].append(pipelines[name](photo, mask=mask, return_timings=True)["timings_s"])

    times = interleaved_seconds({name: (lambda n=name: call(n)) for name in pipelines}, repeats=args.rounds)
    figures = {**machine_facts(), "backbones": f"{args.roi} + {args.context}", "photo": args.photo}
    for name in pipelines:
        figures[f"{name}_ms_per_image"] = 1000 * statistics.median(times[name])
        for stage in ("read", "segment", "classify"):
            figures[f"{name}_{stage}_ms"] = 1000 * statistics.median(entry[stage] for entry in stages[name])
    figures["converted_over_native"] = median_ratio(times["converted"], times["native"])
    print(f"A converted official RveRNet against a native one of the same towers ({figures['backbones']}):")
    for key, value in figures.items():
        print(f"  {key:<32} {value:.4g}" if isinstance(value, float) else f"  {key:<32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
