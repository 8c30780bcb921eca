"""ONNX Runtime against PyTorch, per image, at batch 1 and 32 on this machine (issue 21): the same RveRNet exported
by `rvernet-hf export --format onnx`, timed in interleaved rounds (PyTorch, ONNX Runtime, PyTorch, ...).

    python benchmarks/onnx_speed.py [--hidden 192 --layers 12 --image_size 224] [--rounds 5] [--json out.json]

Default model: two DeiT-Ti-shaped towers (192 wide, 12 layers, patch 16, 224 px; random weights: speed does not
depend on them), dense. Printed: ms per image for each runtime and batch, and ONNX Runtime / PyTorch.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    import onnxruntime

    from cost import deit_config
    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification
    from rvernet_hf.onnx_export import export_onnx
    from rvernet_hf.testing_utils import machine_facts

    tower = deit_config(args.hidden, args.layers, args.image_size)
    tower.patch_size = 16 if args.image_size >= 64 else 8
    work = Path(tempfile.mkdtemp(prefix="onnx-speed-"))
    torch.manual_seed(0)
    model = RveRNetForImageClassification(RveRNetConfig(roi_config=tower, context_config=tower, num_labels=5))
    model.eval().save_pretrained(work / "model")
    started = time.perf_counter()
    export_onnx(work / "model", work / "onnx")
    export_seconds = time.perf_counter() - started
    session = onnxruntime.InferenceSession(str(work / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    figures = {**machine_facts(), "hidden": args.hidden, "layers": args.layers, "export_s": export_seconds}
    for batch in args.batches:
        inputs = {
            name: torch.randn(batch, 3, args.image_size, args.image_size)
            for name in ("roi_pixel_values", "context_pixel_values")
        }
        arrays = {name: value.numpy() for name, value in inputs.items()}
        times = {"pytorch": [], "onnxruntime": []}
        for round_index in range(args.rounds + 1):
            started = time.perf_counter()
            with torch.no_grad():
                model(**inputs)
            pytorch = time.perf_counter() - started
            started = time.perf_counter()
            session.run(None, arrays)
            runtime = time.perf_counter() - started
            if round_index:  # the first round warms up
                times["pytorch"].append(pytorch)
                times["onnxruntime"].append(runtime)
        median = {name: statistics.median(values) for name, values in times.items()}
        figures[f"b{batch}_pytorch_ms_per_image"] = 1000 * median["pytorch"] / batch
        figures[f"b{batch}_onnxruntime_ms_per_image"] = 1000 * median["onnxruntime"] / batch
        figures[f"b{batch}_onnxruntime_over_pytorch"] = median["onnxruntime"] / median["pytorch"]
    print(f"\nONNX Runtime vs PyTorch ({figures['machine']}, {figures['threads']} threads, {args.image_size} px):")
    for key, value in figures.items():
        if isinstance(value, float):
            print(f"  {key:<36} {value:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
