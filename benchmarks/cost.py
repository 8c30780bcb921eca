"""What RveRNet costs, as ratios measured in one run on this machine (CPU, or the GPU when there is one).

    python benchmarks/cost.py [--quick] [--json out.json] [--parts step sam sam_epochs pipeline memory epoch]

Prints one table; every figure is measured here, now. Targets (issue 6): RveRNet step / one-tower step <= 2.1;
cached-teacher epoch / plain epoch <= 1.05; SAM 4 prompts / 1 prompt <= 1.2 on one image; SAM passes in epoch 2 = 0.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
MEMORY_KIND = "cuda_allocated" if DEVICE.type == "cuda" else "rss"


def timed(fn, repeats=5, warmup=2):
    from rvernet_hf.testing_utils import median_seconds  # after the offline switch above

    return median_seconds(fn, repeats, warmup)


def deit_config(hidden, layers, image_size, num_labels=5):
    from transformers import DeiTConfig

    return DeiTConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=4 * hidden,
        image_size=image_size,
        patch_size=16,
        num_labels=num_labels,
    )


def step_ratio(args):
    """Training step (forward, backward, AdamW step) of RveRNet vs one DeiT tower of the same config, same batch."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import DeiTForImageClassification

    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification

    tower = deit_config(args.hidden, args.layers, args.image_size)
    rvernet = RveRNetForImageClassification(RveRNetConfig(roi_config=tower, context_config=tower, num_labels=5)).to(
        DEVICE
    )
    single = DeiTForImageClassification(tower).to(DEVICE)
    batch = args.batch_size
    pixels = torch.randn(batch, 3, args.image_size, args.image_size, device=DEVICE)
    labels = torch.randint(0, 5, (batch,), device=DEVICE)

    def stepper(model, inputs):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            loss = model(**inputs, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    rv_step = stepper(rvernet, {"roi_pixel_values": pixels, "context_pixel_values": pixels.flip(-1)})
    one_step = stepper(single, {"pixel_values": pixels})
    rv_time, one_time = timed(rv_step, args.repeats), timed(one_step, args.repeats)
    with FlopCounterMode(display=False) as counter:
        rv_step()
    flops = counter.get_total_flops()
    size = 2048 if args.quick else 4096
    a, b = torch.randn(size, size, device=DEVICE), torch.randn(size, size, device=DEVICE)
    matmul_time = timed(lambda: a @ b, repeats=5)
    matmul_flops = 2 * size**3 / matmul_time
    return {
        "config": f"DeiT hidden {args.hidden}, {args.layers} layers, {args.image_size} px, batch {batch}",
        "rvernet_step_s": rv_time,
        "one_tower_step_s": one_time,
        "step_ratio": rv_time / one_time,
        "rvernet_step_gflop": flops / 1e9,
        "achieved_gflops": flops / rv_time / 1e9,
        "matmul_gflops": matmul_flops / 1e9,
        "fraction_of_matmul": (flops / rv_time) / matmul_flops,
    }


def epoch_ratio(args, workdir: Path):
    """One epoch through the real training script: no distillation, cached teacher logits, online teacher."""
    from rvernet_hf.synthetic import generate_ambiguous_food
    from rvernet_hf.testing_utils import folder_training_args
    from rvernet_hf.training import main as train

    data = workdir / "data"
    generate_ambiguous_food(
        data,
        num_per_class=args.epoch_images // 5,
        image_size=args.image_size,
        seed=0,
        splits={"train": 0.9, "validation": 0.1},
    )
    deit_config(args.hidden, args.layers, args.image_size).save_pretrained(workdir / "tower")
    folders = folder_training_args(data)
    common = [
        *folders,
        "--roi_model_name_or_path",
        str(workdir / "tower"),
        "--context_model_name_or_path",
        str(workdir / "tower"),
        "--from_scratch",
        "--do_train",
        "--num_train_epochs",
        "1",
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        "--dataloader_num_workers",
        "0",
    ]
    teacher_dir = workdir / "teacher"
    train(
        [
            "--model_type",
            "single",
            "--model_name_or_path",
            "efficientnet-lite0-imagenet",
            "--image_size",
            str(args.image_size),
            *folders,
            "--do_train",
            "--max_steps",
            "2",
            "--report_to",
            "none",
            "--output_dir",
            str(teacher_dir),
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ]
    )
    teacher = ["--distillation_type", "hard", "--teacher_model_name_or_path", str(teacher_dir)]
    runs = {"none": [], "cached": [*teacher, "--cache_teacher_logits"], "online": teacher}
    seconds = {}
    for name, extra in runs.items():
        result = train([*common, *extra, "--output_dir", str(workdir / name)])
        seconds[name] = result["train_runtime"]  # the epoch itself: caching happens before training starts
    loop = plain_loop_epoch(workdir / "none", data / "train", data / "train_masks", args.batch_size)
    return {
        "epoch_plain_s": seconds["none"],
        "epoch_cached_s": seconds["cached"],
        "epoch_online_s": seconds["online"],
        "cached_ratio": seconds["cached"] / seconds["none"],
        "online_ratio": seconds["online"] / seconds["none"],
        "epoch_pytorch_loop_s": loop,
        "trainer_over_pytorch_loop": seconds["none"] / loop,
    }


def plain_loop_epoch(model_dir: Path, train_dir: Path, masks_dir: Path, batch_size: int) -> float:
    """One epoch of a plain PyTorch loop (AdamW, gradient clipping at 1.0 as Trainer's default, no scheduler) over
    the same model and the same samples, decoded and cut beforehand: what `rvernet-hf train` adds on top (the data
    pipeline per step, augmentation, Trainer's bookkeeping) is the ratio to it."""
    from rvernet_hf import RveRNetForImageClassification, RveRNetImageProcessor
    from rvernet_hf.data import MODEL_INPUTS, RveRNetTransform, load_image_folder_dataset

    model = RveRNetForImageClassification.from_pretrained(model_dir).to(DEVICE).train()
    dataset = load_image_folder_dataset(train_dir, masks_dir)
    batch = RveRNetTransform(RveRNetImageProcessor.from_pretrained(model_dir))(dataset[:])
    tensors = {k: v.to(DEVICE) for k, v in batch.items() if k in (*MODEL_INPUTS, "labels")}
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for indices in torch.randperm(len(dataset), generator=generator).split(batch_size):
        loss = model(**{k: v[indices.to(DEVICE)] for k, v in tensors.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def sam_costs(args):
    """SAM: 4 prompts vs 1 on one image (tiny and base-size random SAM); passes in a second epoch."""
    import numpy as np
    from transformers import SamConfig, SamModel

    from rvernet_hf import RveRNetImageProcessor
    from rvernet_hf.testing_utils import tiny_sam

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    boxes = [[10, 10, 200, 200], [220, 40, 400, 300], [300, 200, 600, 460], [50, 250, 250, 470]]
    results = {}
    sizes = {"tiny": tiny_sam()} if args.quick else {"tiny": tiny_sam(), "base": SamModel(SamConfig()).eval()}
    for name, sam in sizes.items():
        sam = sam.to(DEVICE)
        processor = RveRNetImageProcessor(sam_model=sam, size={"height": 64, "width": 64})
        one = timed(lambda: processor.compute_roi_masks([image], input_boxes=[boxes[:1]]), repeats=3, warmup=1)  # noqa: B023
        four = timed(lambda: processor.compute_roi_masks([image], input_boxes=[boxes]), repeats=3, warmup=1)  # noqa: B023
        results[f"sam_{name}_1_prompt_s"] = one
        results[f"sam_{name}_4_prompts_s"] = four
        results[f"sam_{name}_4_over_1"] = four / one
        masks = [processor.compute_roi_masks([image], input_boxes=[boxes[:1]])[1][0][0]]
        mask = masks[0]
        automatic = timed(lambda: processor(image, return_tensors="pt"), repeats=2, warmup=1)  # noqa: B023
        given = timed(lambda: processor(image, roi_masks=mask, return_tensors="pt"), repeats=5, warmup=1)  # noqa: B023
        results[f"preprocess_{name}_automatic_roi_s"] = automatic
        results["preprocess_given_mask_s"] = given
    return results


def sam_passes_in_second_epoch(workdir: Path):
    """precompute_roi_masks once, then two epochs of the training transform: SAM image-encoder calls per phase."""
    import numpy as np
    from PIL import Image

    from rvernet_hf import RveRNetImageProcessor
    from rvernet_hf.data import RveRNetTransform, load_image_folder_dataset, precompute_roi_masks
    from rvernet_hf.testing_utils import tiny_sam

    root = workdir / "sam-epochs"
    for i in range(6):
        (root / "food").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(
            root / "food" / f"{i}.png"
        )
    sam = tiny_sam()
    calls = []
    sam.vision_encoder.register_forward_hook(lambda *_: calls.append(1))
    processor = RveRNetImageProcessor(sam_model=sam, size={"height": 32, "width": 32})
    dataset, _ = precompute_roi_masks(load_image_folder_dataset(root), processor, cache_dir=workdir / "mask-cache")
    first = len(calls)
    transform = RveRNetTransform(processor, train=True)
    for _ in range(2):
        for start in range(0, len(dataset), 4):
            transform(dataset[start : start + 4])
    return {"sam_passes_precompute": first, "sam_passes_two_epochs_after": len(calls) - first}


def pipeline_latency(args, workdir: Path):
    """pipeline() per image: given mask, automatic ROI and a box prompt with tiny and base-size SAM; single, batched."""
    import numpy as np
    from transformers import pipeline

    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageProcessor
    from rvernet_hf.testing_utils import tiny_sam

    tower = deit_config(args.hidden, args.layers, args.image_size)
    folder = workdir / "pipeline-model"
    RveRNetForImageClassification(RveRNetConfig(roi_config=tower, context_config=tower, num_labels=5)).save_pretrained(
        folder
    )
    RveRNetImageProcessor(size={"height": args.image_size, "width": args.image_size}).save_pretrained(folder)
    images = [np.random.default_rng(i).integers(0, 255, (480, 640, 3), dtype=np.uint8) for i in range(8)]
    mask = np.zeros((480, 640), bool)
    mask[100:300, 200:400] = True
    prompted = pipeline("rvernet-image-classification", model=str(folder), trust_remote_code=True, device=DEVICE)
    single = timed(lambda: prompted(images[0], mask=mask), repeats=5)
    batched = timed(lambda: prompted([{"image": im, "mask": mask} for im in images], batch_size=8), repeats=3) / 8
    figures = {"pipeline_mask_single_s": single, "pipeline_mask_batched_per_image_s": batched}
    sams = {"tiny": (tiny_sam(), 3, 8)}
    if not args.quick:
        from transformers import SamConfig, SamModel

        sams["base"] = (SamModel(SamConfig()).eval(), 1, 4)  # ~10 s an image on 2 CPU cores: fewer repeats
    for name, (sam, repeats, batch) in sams.items():
        prompted.image_processor.set_sam_model(sam.to(DEVICE))
        figures[f"pipeline_{name}_sam_automatic_single_s"] = timed(lambda: prompted(images[0]), repeats, 1)
        figures[f"pipeline_{name}_sam_automatic_batched_per_image_s"] = (
            timed(lambda n=batch: prompted(images[:n], batch_size=n), repeats, 1) / batch
        )
        figures[f"pipeline_{name}_sam_box_single_s"] = timed(
            lambda: prompted(images[0], box=[200, 100, 400, 300]), repeats, 1
        )
    return figures


def mask_scaling(args, workdir: Path) -> dict:
    """`rvernet-hf masks` on 1 process and on 2 (torchrun, gloo on CPU): images per second and the ratio, with a
    tiny random SAM (many images) and, unless --quick, a base-size random SAM (fewer)."""

    import numpy as np
    from PIL import Image
    from transformers import SamConfig, SamModel

    from rvernet_hf.testing_utils import python_command, tiny_sam

    sams = {"tiny": (tiny_sam(), 8 if args.quick else 64)}
    if not args.quick:
        sams["base"] = (SamModel(SamConfig()).eval(), 8)
    figures = {}
    for name, (sam, count) in sams.items():
        root = workdir / f"scaling-{name}" / "images"
        for i in range(count):
            folder = root / ("a" if i % 2 else "b")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(i).integers(0, 255, (480, 640, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
        sam.save_pretrained(workdir / f"scaling-{name}" / "sam")
        for processes in (1, 2):
            out = workdir / f"scaling-{name}" / f"out-{processes}"
            command = python_command(
                "rvernet_hf.cli",
                "masks",
                "--data_dir",
                str(root),
                "--output_dir",
                str(out),
                "--sam_model_name_or_path",
                str(workdir / f"scaling-{name}" / "sam"),
                "--shard_size",
                str(max(1, count // 8)),
                "--cache_dir",
                str(out.with_name(f"cache-{processes}")),
                processes=processes,
            )
            threads = max(1, (os.cpu_count() or 1) // processes)  # the same cores either way
            start = time.perf_counter()
            subprocess.run(
                command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}
            )
            figures[f"masks_{name}_sam_{processes}_process_images_per_s"] = count / (time.perf_counter() - start)
        figures[f"masks_{name}_sam_2_over_1_process_speed"] = (
            figures[f"masks_{name}_sam_2_process_images_per_s"] / figures[f"masks_{name}_sam_1_process_images_per_s"]
        )
    return figures


def peak_memory(part: str, args) -> float:
    """Peak memory (MiB) that one part adds on top of the loaded model and inputs, in a fresh process: resident set
    on CPU, the CUDA allocator's peak on a GPU."""
    code = f"""
import sys, torch
sys.argv = ['cost.py'] + {[f"--hidden={args.hidden}", f"--layers={args.layers}", f"--image_size={args.image_size}", f"--batch_size={args.batch_size}"]!r}
sys.path.insert(0, {str(Path(__file__).parent)!r})
import cost
args = cost.build_parser().parse_args()
from rvernet_hf import RveRNetConfig, RveRNetForImageClassification
tower = cost.deit_config(args.hidden, args.layers, args.image_size)
device = cost.DEVICE
model = RveRNetForImageClassification(RveRNetConfig(roi_config=tower, context_config=tower, num_labels=5)).to(device)
pixels = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
labels = torch.zeros(args.batch_size, dtype=torch.long, device=device)
def status(field):
    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith(field + ':'))
if device.type == 'cuda':  # GPU: the allocator's peak above the loaded model and inputs
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); before = torch.cuda.memory_allocated()
else:  # CPU: resident-set high-water mark above libraries, weights and inputs already in memory
    before = status('VmRSS') * 1024
    open('/proc/self/clear_refs', 'w').write('5')  # reset the high-water mark (Linux): the import peak does not count
if {part!r} == 'train':
    opt = torch.optim.AdamW(model.parameters())
    for _ in range(2):
        model(roi_pixel_values=pixels, context_pixel_values=pixels, labels=labels).loss.backward(); opt.step(); opt.zero_grad()
else:
    with torch.no_grad():
        model.eval()(roi_pixel_values=pixels, context_pixel_values=pixels)
peak = torch.cuda.max_memory_allocated() if device.type == 'cuda' else status('VmHWM') * 1024
print((peak - before) / 2**20)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def processor_speed(args) -> dict:
    """Issue 25: `RveRNetImageProcessor(photos, roi_masks=masks)` against transformers' `DeiTImageProcessor`
    (torchvision backend) and its PIL backend on the same 640x480 photos, at batch 1 and 32, as medians of
    interleaved rounds (every processor timed once per round, so load changes hit them alike). "before" is the same
    code with the photo converted to float before its resize, as it was until issue 25."""
    import statistics

    import numpy as np
    from PIL import Image
    from skimage import data as photos
    from transformers import DeiTImageProcessor, DeiTImageProcessorPil

    from rvernet_hf import RveRNetImageProcessor
    from rvernet_hf.image_utils_rvernet import to_chw_float

    sources = [photos.coffee(), photos.astronaut(), photos.chelsea(), photos.rocket()]
    rng = np.random.default_rng(0)
    images, masks = [], []
    for index in range(32):
        photo = np.asarray(Image.fromarray(sources[index % 4]).resize((640, 480)))
        mask = np.zeros((480, 640), bool)
        top, left = rng.integers(40, 200), rng.integers(40, 300)
        mask[top : top + rng.integers(80, 240), left : left + rng.integers(80, 300)] = True
        images.append(photo)
        masks.append(mask)
    size = {"height": args.image_size, "width": args.image_size}
    rvernet = RveRNetImageProcessor(size=size)
    deit = DeiTImageProcessor(size=size, crop_size=size)
    deit_pil = DeiTImageProcessorPil(size=size, crop_size=size)
    try:  # where the pixel functions live: their own module since issue 31, the processor's before
        import rvernet_hf.cutouts_rvernet as processing
    except ImportError:
        import rvernet_hf.image_processing_rvernet as processing
    fast_view = getattr(processing, "to_chw_uint8", None)  # None: code from before issue 25 (PYTHONPATH)

    def before(batch):
        if fast_view is not None:
            processing.to_chw_uint8 = to_chw_float  # the float photo, resized in float
        try:
            return rvernet(images[:batch], roi_masks=masks[:batch], return_tensors="pt")
        finally:
            if fast_view is not None:
                processing.to_chw_uint8 = fast_view

    figures = {}
    for batch in (1, 32):
        calls = {
            "rvernet": lambda b=batch: rvernet(images[:b], roi_masks=masks[:b], return_tensors="pt"),
            "rvernet_before": lambda b=batch: before(b),
            "deit": lambda b=batch: deit(images[:b], return_tensors="pt"),
            "deit_pil": lambda b=batch: deit_pil(images[:b], return_tensors="pt"),
        }
        rounds = max(5, args.repeats * (4 if batch == 1 else 1))
        times = {name: [] for name in calls}
        for round_index in range(rounds + 1):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                if round_index:  # the first round warms up
                    times[name].append(time.perf_counter() - started)
        median = {name: statistics.median(values) for name, values in times.items()}
        figures[f"processor_b{batch}_ms_per_image"] = 1000 * median["rvernet"] / batch
        figures[f"processor_b{batch}_over_deit"] = median["rvernet"] / median["deit"]
        figures[f"processor_b{batch}_over_deit_pil"] = median["rvernet"] / median["deit_pil"]
        figures[f"processor_b{batch}_before_over_deit"] = median["rvernet_before"] / median["deit"]
        figures[f"processor_b{batch}_after_over_before"] = median["rvernet"] / median["rvernet_before"]
    return figures


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=192, help="DeiT width (192: DeiT-Ti)")
    parser.add_argument("--layers", type=int, default=12, help="DeiT depth (12: DeiT-Ti)")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epoch_images", type=int, default=400, help="images in the epoch-ratio run")
    parser.add_argument("--quick", action="store_true", help="smaller everything, no base-size SAM (CI smoke run)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument(
        "--parts",
        nargs="*",
        choices=["step", "sam", "sam_epochs", "pipeline", "memory", "epoch", "masks", "processor"],
        help="measure only these parts (default: all; each part's ratios come from one run)",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        args.hidden, args.layers, args.image_size, args.batch_size, args.repeats, args.epoch_images = (
            64,
            2,
            64,
            8,
            2,
            40,
        )
    torch.manual_seed(0)
    from rvernet_hf.testing_utils import machine_facts

    figures = {
        **machine_facts(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        parts = {
            "step": lambda: step_ratio(args),
            "sam": lambda: sam_costs(args),
            "sam_epochs": lambda: sam_passes_in_second_epoch(workdir),
            "pipeline": lambda: pipeline_latency(args, workdir),
            "memory": lambda: {
                f"peak_{MEMORY_KIND}_added_train_2_steps_mib": peak_memory("train", args),
                f"peak_{MEMORY_KIND}_added_inference_mib": peak_memory("inference", args),
            },
            "epoch": lambda: epoch_ratio(args, workdir),
            "masks": lambda: mask_scaling(args, workdir),
            "processor": lambda: processor_speed(args),
        }
        for name in args.parts or list(parts):
            figures.update(parts[name]())
    targets = {
        "step_ratio": 2.1,
        "cached_ratio": 1.05,
        "sam_base_4_over_1": 1.2,
        "sam_passes_two_epochs_after": 0,
        "trainer_over_pytorch_loop": 1.15,
        "processor_b1_over_deit": 1.3,
        "processor_b32_over_deit": 1.3,
    }
    print(f"\nRveRNet cost on {figures['machine']} ({figures['device']}, torch {figures['torch']}):")
    for key, value in figures.items():
        target = targets.get(key)
        verdict = "" if target is None else f"  [target <= {target}: {'met' if value <= target else 'MISSED'}]"
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"  {key:<48} {shown}{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
