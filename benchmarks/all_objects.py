"""Every object for a fraction of the decoder work (issue 22), measured on scenes whose objects are known.

    python benchmarks/all_objects.py [--sam base] [--scenes 6] [--grid 16] [--rounds 1] [--label] [--json out.json]

Part 1 (segmenting): a scene oracle (`rvernet_hf.testing_utils.scene_oracle`) of SAM ViT-B's shape (`--sam base`:
`SamConfig()`, 1024 px, random weights, so the image encoder and the mask decoder cost what the real ones cost) whose
answer for a click is the true mask of the object under it, on random scenes of 3 to 10 objects (0.5 % to 40 % of a
640x480 photo, plus the background). Per scene, in turn: RveRNet's every-object mode, adaptive (the default) and the
full grid, and transformers' `pipeline("mask-generation")` on the same oracle, photo and grid (no crops, 64 points per
batch). Printed per scene: decoder prompts, seconds, regions found, and whether every region the mask-generation
pipeline finds is found by the adaptive mode (mask IoU >= 0.8); then the medians and the ratios against
mask-generation (the image encoder, run once by each, is counted in the times; its own time is printed).

Part 2 (`--label`): labelled objects per second, dense vs token-sparse towers (`token_selection="mask"`), two DeiT-B
towers at 224 px (random weights), 2, 8 and 32 objects of one photo in one batch (masks given: the labelling alone).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


def _oracle(kind: str):
    from transformers import SamConfig

    from rvernet_hf.testing_utils import scene_oracle

    return scene_oracle(SamConfig() if kind == "base" else None)


def _best_iou(mask: np.ndarray, masks) -> float:
    return max(((mask & other).sum() / max(1, (mask | other).sum()) for other in masks), default=0.0)


def segment_scene(oracle, generator, photo, instance_map, grid: int, rounds: int = 1) -> dict:
    """One scene: encoder alone, then adaptive, full grid and mask-generation in turn (prompts, seconds, regions);
    with `rounds` > 1, adaptive and mask-generation again, in turns that alternate which goes first: their seconds
    are the medians, and their time ratio the median of the round-by-round ratios."""
    from PIL import Image

    from rvernet_hf import RveRNetImageProcessor
    from rvernet_hf.segmenters_rvernet import Segmenter
    from rvernet_hf.testing_utils import interleaved_seconds, median_ratio

    oracle.set_scene(instance_map)
    row = {"objects": int(instance_map.max()), "size": list(instance_map.shape[::-1])}
    segmenter = Segmenter(oracle, generator.image_processor)
    started = time.perf_counter()
    segmenter.embed([photo])
    row["encoder_s"] = time.perf_counter() - started
    found = {}
    for strategy in ("adaptive", "grid"):
        processor = RveRNetImageProcessor(
            sam_model=oracle, all_objects_strategy=strategy, all_objects_points_per_side=grid
        )
        oracle.prompts = 0
        started = time.perf_counter()
        _, masks = processor.compute_roi_masks(photo, all_objects=True)
        row[f"{strategy}_s"] = time.perf_counter() - started
        row[f"{strategy}_prompts"], row[f"{strategy}_regions"] = oracle.prompts, len(masks[0])
        found[strategy] = masks[0]
    oracle.prompts = 0
    started = time.perf_counter()
    result = generator(Image.fromarray(photo), points_per_batch=64, points_per_crop=grid, crops_n_layers=0)
    row["mask_generation_s"] = time.perf_counter() - started
    row["mask_generation_prompts"], row["mask_generation_regions"] = oracle.prompts, len(result["masks"])
    reference = [np.asarray(mask, dtype=bool) for mask in result["masks"]]
    row["adaptive_finds_all"] = all(_best_iou(mask, found["adaptive"]) >= 0.8 for mask in reference)
    row["adaptive_finds_all_of_grid"] = all(_best_iou(mask, found["adaptive"]) >= 0.8 for mask in found["grid"])
    adaptive = RveRNetImageProcessor(sam_model=oracle, all_objects_points_per_side=grid)
    calls = {
        "adaptive": lambda: adaptive.compute_roi_masks(photo, all_objects=True),
        "mask_generation": lambda: generator(
            Image.fromarray(photo), points_per_batch=64, points_per_crop=grid, crops_n_layers=0
        ),
    }
    more = interleaved_seconds(calls, repeats=rounds - 1, warmup=0)  # the order alternates from round to round
    times = {name: [row[f"{name}_s"], *more[name]] for name in calls}
    for name, series in times.items():
        row[f"{name}_s"] = statistics.median(series)
    row["adaptive_over_mask_generation_s"] = median_ratio(times["adaptive"], times["mask_generation"])
    return row


def segmenting(args) -> dict:
    from transformers import pipeline

    from rvernet_hf.segmenters_rvernet import default_image_processor
    from rvernet_hf.testing_utils import oracle_scene

    oracle = _oracle(args.sam)
    generator = pipeline("mask-generation", model=oracle, image_processor=default_image_processor(oracle))
    rows = []
    for seed in range(args.scenes):
        photo, instance_map = oracle_scene(seed, size=(480, 640))
        row = segment_scene(oracle, generator, photo, instance_map, args.grid, args.rounds)
        rows.append(row)
        print(
            f"scene {seed}: {row['objects']} objects | prompts adaptive {row['adaptive_prompts']} grid "
            f"{row['grid_prompts']} mask-gen {row['mask_generation_prompts']} | s: encoder {row['encoder_s']:.2f} "
            f"adaptive {row['adaptive_s']:.2f} grid {row['grid_s']:.2f} mask-gen {row['mask_generation_s']:.2f} | "
            f"regions {row['adaptive_regions']}/{row['grid_regions']}/{row['mask_generation_regions']} | every "
            f"region found: {row['adaptive_finds_all']}",
            flush=True,
        )
    figures = {"scenes": rows}
    for name in ("prompts", "s"):
        ratios = [r[f"adaptive_{name}"] / r[f"mask_generation_{name}"] for r in rows]
        if name == "s":  # paired round by round
            ratios = [r["adaptive_over_mask_generation_s"] for r in rows]
        figures[f"adaptive_over_mask_generation_{name}_median"] = statistics.median(ratios)
        figures[f"adaptive_over_mask_generation_{name}_max"] = max(ratios)
    after = [(r["adaptive_s"] - r["encoder_s"]) / max(1e-9, r["mask_generation_s"] - r["encoder_s"]) for r in rows]
    figures["adaptive_over_mask_generation_after_encoder_median"] = statistics.median(after)
    figures["grid_over_mask_generation_s_median"] = statistics.median(
        r["grid_s"] / r["mask_generation_s"] for r in rows
    )
    figures["every_object_found_in_all_scenes"] = all(r["adaptive_finds_all"] for r in rows)
    return figures


def labelling(args) -> dict:
    """Labelled objects per second, dense vs token-sparse, for 2, 8 and 32 objects of one photo in one batch."""
    from cost import deit_config
    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageProcessor
    from rvernet_hf.testing_utils import median_seconds, oracle_scene

    tower = deit_config(768, 12, 224)
    figures = {}
    models = {}
    for selection in ("dense", "mask"):
        torch.manual_seed(0)
        config = RveRNetConfig(roi_config=tower, context_config=tower, num_labels=5, token_selection=selection)
        models[selection] = RveRNetForImageClassification(config).eval()
    for count in args.objects:
        photo, instance_map = oracle_scene(count, size=(480, 640), objects=(count, count))
        ids = [k for k in np.unique(instance_map) if k] or [0]
        masks = [instance_map == ids[i % len(ids)] for i in range(count)]
        for selection, model in models.items():
            options = {"patch_size": 16} if selection == "mask" else {}
            processor = RveRNetImageProcessor(**options)

            def run(processor=processor, model=model, photo=photo, masks=masks, count=count):
                batch = processor([photo] * count, roi_masks=masks, return_tensors="pt")
                names = ("roi_pixel_values", "context_pixel_values", "roi_token_mask", "context_token_mask")
                with torch.inference_mode():
                    model(**{k: v for k, v in batch.items() if k in names})

            seconds = median_seconds(run, repeats=args.repeats, warmup=1)
            figures[f"objects_per_s_{selection}_{count}"] = count / seconds
            print(f"{count:2d} objects, {selection:5s}: {count / seconds:.2f} objects/s ({seconds:.2f} s)", flush=True)
        dense, sparse = figures[f"objects_per_s_dense_{count}"], figures[f"objects_per_s_mask_{count}"]
        figures[f"sparse_over_dense_speed_{count}"] = sparse / dense
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam", choices=["base", "tiny"], default="base")
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--grid", type=int, default=16, help="points per side (mask-generation's default is 32)")
    parser.add_argument("--label", action="store_true", help="also: labelled objects per second, dense vs sparse")
    parser.add_argument("--objects", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=1, help="adaptive and mask-generation timed this many times per scene, paired"
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from rvernet_hf.testing_utils import machine_facts

    figures = {**machine_facts(), "sam": args.sam, "grid": args.grid}
    if args.scenes:
        figures.update(segmenting(args))
    if args.label:
        figures.update(labelling(args))
    for name, value in figures.items():
        if name != "scenes":
            print(f"{name:52s} {value:.3f}" if isinstance(value, float) else f"{name:52s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=float) + "\n")
    return figures


if __name__ == "__main__":
    main()
