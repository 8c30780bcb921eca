"""What ROI masking costs per photo with each promptable segmenter family, side by side, measured here and now.

    python benchmarks/segmenters.py [--families sam_vit_b slimsam_50 sam_hq_vit_b sam2.1_hiera_tiny edgetam]
                                    [--points_per_side 16] [--regions 8] [--repeats 2] [--json out.json] [--quick]

Each family runs at its real checkpoint's shape with RANDOM weights (no weights can be downloaded here: the times are
real, the masks are not), in its own process (so that the peak memory is its own), on the same photo
(`skimage.data.coffee()`, 600 x 400). Per family:
- encoder: one image-encoder pass;
- automatic ROI: `processor(photo)` (encoder + one decoder call over the auto-ROI grid + post-processing);
- every object: `processor(photo, all_objects=True)` at `--points_per_side` (encoder + decoder calls of 64 points);
- mask-generation: transformers' own `pipeline("mask-generation")` on the same model and photo, same grid, no crops,
  64 points per batch, its default filters;
- peak memory: the process's peak resident set (CPU) or the CUDA allocator's peak.
Then the RveRNet forward (two DeiT-B towers, the paper's shape) for `--regions` regions batched, and the labelled
objects per second end to end: regions / (every object + that forward). The every-object mode's target (issue 12) is
at most the mask-generation pipeline's time at the same grid.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys


os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAMILIES = ("sam_vit_b", "slimsam_50", "sam_hq_vit_b", "sam2.1_hiera_tiny", "edgetam")


def build(family: str, quick: bool):
    """A random-weight segmenter with the real checkpoint's shape (`quick`: a tiny shape, for the CI smoke run)."""
    import transformers as T

    if quick:
        from rvernet_hf.testing_utils import tiny_segmenter

        return tiny_segmenter({"sam_vit_b": "sam", "slimsam_50": "sam", "sam_hq_vit_b": "sam_hq"}.get(family, "sam2"))
    if family == "sam_vit_b":  # facebook/sam-vit-base
        return T.SamModel(T.SamConfig())
    if family == "slimsam_50":  # nielsr/slimsam-50-uniform: the ViT-B encoder pruned to width 384, MLP 1536
        return T.SamModel(T.SamConfig(vision_config={"hidden_size": 384, "mlp_dim": 1536}))
    if family == "sam_hq_vit_b":  # syscv-community/sam-hq-vit-base
        return T.SamHQModel(T.SamHQConfig())
    if family == "sam2.1_hiera_tiny":  # facebook/sam2.1-hiera-tiny (Hiera-T: blocks 1-2-7-2, width 96)
        return T.Sam2Model(T.Sam2Config())
    if family == "edgetam":  # facebook/EdgeTAM: a RepViT-M1 backbone (channels 48-96-192-384) and SAM 2's decoder
        backbone = T.TimmWrapperConfig(
            architecture="repvit_m1", model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}
        )
        return T.EdgeTamModel(T.EdgeTamConfig(vision_config=T.EdgeTamVisionConfig(backbone_config=backbone)))
    raise ValueError(family)


def timed(fn, repeats: int) -> float:
    from rvernet_hf.testing_utils import median_seconds

    return median_seconds(fn, repeats, warmup=0)


def peak_memory_mib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_family(args) -> dict:
    import numpy as np
    import torch
    from skimage import data
    from transformers import pipeline

    from rvernet_hf import RveRNetImageProcessor
    from rvernet_hf.segmenters_rvernet import Segmenter

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build(args.one, args.quick).to(device).eval()
    photo = np.ascontiguousarray(data.coffee())
    processor = RveRNetImageProcessor(sam_model=model, all_objects_points_per_side=args.points_per_side)
    segmenter = Segmenter(model)
    with torch.no_grad():
        figures = {
            "family": args.one,
            "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            "encoder_s": timed(lambda: segmenter.embed([photo]), args.repeats),
            "automatic_roi_s": timed(lambda: processor(photo), args.repeats),
        }
        try:
            generator = pipeline(
                "mask-generation", model=model, image_processor=segmenter.image_processor, device=device
            )

            def mask_generation():
                generator(
                    photo_pil(photo), points_per_batch=64, points_per_crop=args.points_per_side, crops_n_layers=0
                )

        except Exception as error:  # a family the mask-generation pipeline does not take
            mask_generation = None
            figures["mask_generation_error"] = f"{type(error).__name__}: {str(error)[:160]}"
        # Every object and mask-generation are timed in turn (A B A B ...): the machine's drift over minutes is
        # larger than their difference, and their ratio must compare the same moments.
        every, generation = [], []
        for _ in range(args.repeats):
            every.append(timed(lambda: processor(photo, all_objects=True), 1))
            if mask_generation is not None:
                generation.append(timed(mask_generation, 1))
        figures["every_object_s"] = statistics.median(every)
        figures["mask_generation_s"] = statistics.median(generation) if generation else None
        figures["every_over_mask_generation_per_repeat"] = [round(a / b, 3) for a, b in zip(every, generation)]
    figures["peak_memory_mib"] = round(peak_memory_mib(device), 0)
    return figures


def photo_pil(photo):
    from PIL import Image

    return Image.fromarray(photo)


def measure_rvernet(args) -> dict:
    import torch
    from transformers import DeiTConfig

    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tower = (
        DeiTConfig(num_labels=105)
        if not args.quick
        else DeiTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    )
    model = RveRNetForImageClassification(RveRNetConfig(roi_config=tower, context_config=tower, num_labels=105))
    model = model.to(device).eval()
    size = tower.image_size
    inputs = {
        name: torch.randn(args.regions, 3, size, size, device=device)
        for name in ("roi_pixel_values", "context_pixel_values")
    }
    with torch.no_grad():
        model(**inputs)  # warm-up
        seconds = timed(lambda: model(**inputs), args.repeats)
    return {"family": "rvernet_deit_b", "regions": args.regions, "forward_s": seconds}


def run_child(args, name: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--one",
        name,
        "--points_per_side",
        str(args.points_per_side),
        "--regions",
        str(args.regions),
        "--repeats",
        str(args.repeats),
    ] + (["--quick"] if args.quick else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="*", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--points_per_side", type=int, default=16, help="every-object grid (and mask-generation's)")
    parser.add_argument("--regions", type=int, default=8, help="regions per photo for the RveRNet forward")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (CI smoke run): figures mean nothing")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    if args.one == "rvernet":
        print(json.dumps(measure_rvernet(args)))
        return {}
    if args.one:
        print(json.dumps(measure_family(args)))
        return {}

    rows = [run_child(args, family) for family in args.families]
    rvernet = run_child(args, "rvernet")
    device = "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    shapes = (
        "TINY shapes (--quick: a smoke run, the figures mean nothing)" if args.quick else "each checkpoint's shape"
    )
    print(
        f"Segmenters on one 600x400 photo, {device}, random weights at {shapes}; every-object grid "
        f"{args.points_per_side}x{args.points_per_side}; median of {args.repeats}."
    )
    header = (
        "family",
        "params M",
        "encoder s",
        "auto ROI s",
        "every obj s",
        "enc share",
        "mask-gen s",
        "every/mask-gen",
        "peak MiB",
        "objects/s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        every = row["every_object_s"]
        row["encoder_share_of_every_object"] = row["encoder_s"] / every
        row["every_over_mask_generation"] = every / row["mask_generation_s"] if row["mask_generation_s"] else None
        row["labelled_objects_per_s"] = args.regions / (every + rvernet["forward_s"])
        cells = (
            row["family"],
            f"{row['parameters_m']}",
            f"{row['encoder_s']:.2f}",
            f"{row['automatic_roi_s']:.2f}",
            f"{every:.2f}",
            f"{row['encoder_share_of_every_object']:.0%}",
            f"{row['mask_generation_s']:.2f}" if row["mask_generation_s"] else "n/a",
            f"{row['every_over_mask_generation']:.2f}" if row["every_over_mask_generation"] else "n/a",
            f"{row['peak_memory_mib']:.0f}",
            f"{row['labelled_objects_per_s']:.2f}",
        )
        print("| " + " | ".join(cells) + " |")
    print(
        f"RveRNet forward (two DeiT-B towers), {args.regions} regions batched: {rvernet['forward_s']:.2f} s; "
        f"objects/s = {args.regions} / (every object + that forward)."
    )
    for row in rows:
        if row.get("mask_generation_error"):
            print(f"mask-generation pipeline with {row['family']}: {row['mask_generation_error']}")
    result = {"families": rows, "rvernet": rvernet, "device": device, "points_per_side": args.points_per_side}
    if args.json:
        from rvernet_hf.run_folder import replaced_atomically

        with replaced_atomically(args.json) as partial, open(partial, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
