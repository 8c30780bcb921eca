"""Training epochs of `rvernet-hf train` against a plain PyTorch loop over the same model and pre-made cut-outs
(issue 25), paired step by step: in the same process, one step of the loop runs just before each of the trainer's
training steps (and the loop's evaluation before the trainer's), so that the machine's load hits both alike. (Two
runs minutes apart, or two epochs seconds apart, differ on a shared 2-core machine by more than the whole data
pipeline costs; two steps a tenth of a second apart do not.)

    python benchmarks/epoch_speed.py [--image_size 64] [--num_per_class 400] [--epochs 3] [--rounds 3]
                                     [--workers 0 1] [--json out.json]

The demo's scale by default: 5 classes x 400 images of 64 px (1400 train / 300 validation), two random-init DeiT
towers (96 wide, 4 layers, patch 8; patch 16 above 96 px), batch 32, cached teacher logits (hard distillation from
a Lite0 fine-tuned for two steps). Each run trains `--epochs` epochs with an evaluation after each; the loop's
evaluation is a no-grad pass over the validation cut-outs.

Printed per run and as medians over the rounds (of each run's mean), for the first epoch (which decodes every
photo) and for the later ones (photos kept decoded, `--decoded_cache_mb`): the trainer's epoch with and without its
evaluation, the loop's, their ratio per epoch, and where the trainer's epoch goes (the time it waited for the next
batch, its evaluation; the rest is steps and bookkeeping), per `--dataloader_num_workers` value.
"""

import argparse
import contextlib
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


@contextlib.contextmanager
def trainer_clock(loop: "PlainLoop | None" = None):
    """Times, per epoch, what `Trainer` spends in the whole epoch (its end-of-epoch evaluation included), in
    evaluation, and waiting for training batches (`get_batch_samples`: the data pipeline on the critical path),
    by wrapping those methods for the duration of the block. Yields the list of per-epoch dicts.

    With `loop`, one step of the plain loop runs just before each of the trainer's training steps, and its no-grad
    evaluation just before each of the trainer's: their seconds are recorded (`loop_train_s`, `loop_eval_s`) and
    left out of the trainer's. The two alternate every ~0.1 s and share the machine's state."""
    from transformers import Trainer

    epochs: list[dict[str, float]] = []
    current: list[dict[str, float]] = []  # the epoch running now, if any
    wrapped = ("_run_epoch", "evaluate", "get_batch_samples", "training_step")
    originals = {name: getattr(Trainer, name) for name in wrapped}

    def add(key: str, seconds: float) -> None:
        if current:  # (an evaluation after training belongs to no epoch)
            current[0][key] += seconds

    def paired(name: str, key: str, loop_part=None, loop_key: str = ""):
        def wrapper(self, *args, **kwargs):
            if loop_part is not None and current:
                started = time.perf_counter()
                loop_part()
                add(loop_key, time.perf_counter() - started)
                add("excluded_s", time.perf_counter() - started)
            started = time.perf_counter()
            try:
                return originals[name](self, *args, **kwargs)
            finally:
                add(key, time.perf_counter() - started)

        return wrapper

    def run_epoch(self, *args, **kwargs):
        keys = ("epoch_s", "eval_s", "fetch_s", "step_s", "loop_train_s", "loop_eval_s", "excluded_s")
        current.append(dict.fromkeys(keys, 0.0))
        try:
            return paired("_run_epoch", "epoch_s")(self, *args, **kwargs)
        finally:
            epoch = current.pop()
            epoch["epoch_s"] -= epoch.pop("excluded_s")  # the loop's own steps ran inside the trainer's epoch
            epochs.append(epoch if loop is not None else {k: epoch[k] for k in keys[:4]})

    Trainer._run_epoch = run_epoch
    Trainer.evaluate = paired("evaluate", "eval_s", loop and loop.evaluate, "loop_eval_s")
    Trainer.get_batch_samples = paired("get_batch_samples", "fetch_s")
    Trainer.training_step = paired("training_step", "step_s", loop and loop.step, "loop_train_s")
    try:
        yield epochs
    finally:
        for name, method in originals.items():
            setattr(Trainer, name, method)


class PlainLoop:
    """A plain PyTorch loop (AdamW, gradient clipping at 1.0 as Trainer's default, no scheduler, no augmentation)
    over the same model and samples, decoded and cut once beforehand: `step()` trains on its next batch (a new
    random order each pass over the data), `evaluate()` makes a no-grad pass over the validation cut-outs (batch
    64)."""

    def __init__(self, model_dir: Path, data: Path, batch_size: int):
        from rvernet_hf import RveRNetForImageClassification, RveRNetImageProcessor
        from rvernet_hf.data import MODEL_INPUTS, RveRNetTransform, load_image_folder_dataset

        self.model = RveRNetForImageClassification.from_pretrained(model_dir)
        processor = RveRNetImageProcessor.from_pretrained(model_dir)

        def cut(split):
            dataset = load_image_folder_dataset(data / split, data / f"{split}_masks")
            batch = RveRNetTransform(processor)(dataset[:])
            return {k: v for k, v in batch.items() if k in (*MODEL_INPUTS, "labels")}

        self.train, self.validation = cut("train"), cut("validation")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=5e-5)
        self.generator = torch.Generator().manual_seed(0)
        self.batch_size = batch_size
        self.batches: list[torch.Tensor] = []

    def step(self) -> None:
        if not self.batches:
            count = len(self.train["labels"])
            self.batches = list(torch.randperm(count, generator=self.generator).split(self.batch_size))
        indices = self.batches.pop(0)
        self.model.train()
        loss = self.model(**{k: v[indices] for k, v in self.train.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def evaluate(self) -> None:
        self.model.eval()
        with torch.no_grad():
            inputs = {k: v for k, v in self.validation.items() if k != "labels"}
            for start in range(0, len(self.validation["labels"]), 64):
                self.model(**{k: v[start : start + 64] for k, v in inputs.items()})


def summarise(runs: list[list[dict]], pick) -> dict[str, float]:
    """Medians over the rounds of the per-run means of the epochs `pick` selects (ratios: of each epoch's pair)."""
    keys = runs[0][0].keys()
    means = [{k: statistics.mean(e[k] for e in pick(run)) for k in keys} for run in runs]
    return {k: statistics.median(m[k] for m in means) for k in keys}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--num_per_class", type=int, default=400)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0], help="dataloader_num_workers to compare")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from cost import deit_config
    from rvernet_hf.synthetic import generate_ambiguous_food
    from rvernet_hf.testing_utils import folder_training_args, machine_facts
    from rvernet_hf.training import main as train

    work = Path(tempfile.mkdtemp(prefix="epoch-speed-"))
    data = work / "data"
    generate_ambiguous_food(
        data,
        num_per_class=args.num_per_class,
        image_size=args.image_size,
        seed=0,
        splits={"train": 0.7, "validation": 0.15, "test": 0.15},
    )
    config = deit_config(96, 4, args.image_size)
    config.patch_size, config.num_attention_heads = (8 if args.image_size <= 96 else 16), 3
    config.save_pretrained(work / "tower")
    folders = folder_training_args(data)
    quiet = ["--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true"]
    train([
        "--model_type", "single", "--model_name_or_path", "efficientnet-lite0-imagenet", "--image_size",
        str(args.image_size), *folders, "--do_train", "--max_steps", "2", "--output_dir", str(work / "teacher"),
        *quiet,
    ])  # fmt: skip
    common = [
        *folders, "--roi_model_name_or_path", str(work / "tower"), "--context_model_name_or_path",
        str(work / "tower"), "--from_scratch", "--fusion_hidden_size", "128", "--do_train",
        "--per_device_train_batch_size", str(args.batch_size), "--per_device_eval_batch_size", "64",
        "--distillation_type", "hard", "--teacher_model_name_or_path", str(work / "teacher"),
        "--cache_teacher_logits", "--mask_cache_dir", str(work / "mask-cache"), "--eval_strategy", "epoch", *quiet,
    ]  # fmt: skip

    def trainer_run(name: str, epochs: int, workers: int, loop: PlainLoop | None = None) -> list[dict[str, float]]:
        with trainer_clock(loop) as clock:
            train([
                *common, "--num_train_epochs", str(epochs), "--dataloader_num_workers", str(workers),
                "--output_dir", str(work / name), "--overwrite_output_dir",
            ])  # fmt: skip
        return clock

    trainer_run("warm-up", 1, 0)  # fills the mask cache (checks, teacher logits) once; the model folder for the loop
    runs: dict[str, list] = {f"w{w}": [] for w in args.workers}
    for number in range(args.rounds):
        for workers in args.workers:
            loop = PlainLoop(work / "warm-up", data, args.batch_size)  # a loop step before each trainer step
            runs[f"w{workers}"].append(trainer_run(f"r{number}-w{workers}", args.epochs, workers, loop))
            print(f"round {number} workers {workers}: " + "; ".join(
                ", ".join(f"{k} {v:.2f}" for k, v in epoch.items()) for epoch in runs[f"w{workers}"][-1]
            ), flush=True)  # fmt: skip

    figures = {**machine_facts(), "image_size": args.image_size, "train_images": round(0.7 * 5 * args.num_per_class)}
    figures.update({"epochs": args.epochs, "rounds": args.rounds, "batch_size": args.batch_size})
    for epoch in (epoch for run_list in runs.values() for run in run_list for epoch in run):  # ratios per pair
        epoch["over_loop"] = (epoch["epoch_s"] - epoch["eval_s"]) / epoch["loop_train_s"]
        epoch["over_loop_with_eval"] = epoch["epoch_s"] / (epoch["loop_train_s"] + epoch["loop_eval_s"])
    later = slice(1, None) if args.epochs > 1 else slice(None)
    for phase, pick in (("first_epoch", lambda run: run[:1]), ("later_epochs", lambda run: run[later])):
        for workers in args.workers:
            mine, key = summarise(runs[f"w{workers}"], pick), f"{phase}_w{workers}"
            figures[f"{key}_loop_s"] = mine["loop_train_s"]
            figures[f"{key}_loop_with_eval_s"] = mine["loop_train_s"] + mine["loop_eval_s"]
            figures[f"{key}_trainer_with_eval_s"] = mine["epoch_s"]
            figures[f"{key}_trainer_s"] = mine["epoch_s"] - mine["eval_s"]
            figures[f"{key}_over_loop"] = mine["over_loop"]
            figures[f"{key}_over_loop_with_eval"] = mine["over_loop_with_eval"]
            figures[f"{key}_fetch_share"] = mine["fetch_s"] / mine["epoch_s"]
            figures[f"{key}_eval_share"] = mine["eval_s"] / mine["epoch_s"]
            figures[f"{key}_forward_backward_share"] = mine["step_s"] / mine["epoch_s"]
            figures[f"{key}_eval_over_loop_eval"] = mine["eval_s"] / mine["loop_eval_s"]

    print(f"\nEpochs of `rvernet-hf train` vs a plain loop ({figures['machine']}, {args.image_size} px):")
    for key, value in figures.items():
        if isinstance(value, float):
            target = 1.1 if key.endswith("_over_loop_with_eval") and key.startswith("later") else None
            verdict = "" if target is None else f"  [target <= {target}: {'met' if value <= target else 'MISSED'}]"
            print(f"  {key:<44} {value:.3f}{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
