"""The paper's table on the built-in ambiguous-food benchmark: single models vs RveRNet, with and without CNN-teacher
distillation, several seeds, plus the robustness probes (patch permutation, translocation).

    python benchmarks/accuracy.py --output_dir bench-accuracy [--seeds 0 1 2] [--configs rvernet_deit_hard ...]

Every run is the real training script; each finished run leaves `<output_dir>/runs/<config>-seed<k>/scores.json`,
so an interrupted benchmark resumes where it stopped (a run trained but not yet scored is scored, not retrained). The
distillation teacher is scored too, as the table's first row. The table prints mean +- standard deviation over seeds of
accuracy, macro-F1 and ambiguous-group F1 on the test split, and the ambiguous F1 under each probe.
"""

import argparse
import json
import os
import statistics
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROBES = ("none", "patch_permutation", "translocation")


def configs(towers: dict[str, str], teacher: str) -> dict[str, list[str]]:
    """Name -> training arguments. `towers`: deit (random-init config folder), cnn (ImageNet Lite0 folder)."""

    def rvernet(roi, context, distillation="none", scratch=False, token_selection="dense"):
        extra = ["--from_scratch"] if scratch else []
        extra += ["--token_selection", token_selection]
        if distillation != "none":
            extra += [
                "--distillation_type",
                distillation,
                "--teacher_model_name_or_path",
                teacher,
                "--cache_teacher_logits",
            ]
        return [
            "--roi_model_name_or_path",
            towers[roi],
            "--context_model_name_or_path",
            towers[context],
            "--fusion_hidden_size",
            "128",
            *extra,
        ]

    def single(view, tower):
        scratch = ["--from_scratch"] if tower == "deit" else []
        return ["--model_type", "single", "--single_view", view, "--model_name_or_path", towers[tower], *scratch]

    table = {
        "single_cnn_full_image": single("full_image", "cnn"),
        "single_deit_full_image": single("full_image", "deit"),
        "single_deit_roi_only": single("roi", "deit"),
        "single_deit_context_only": single("context", "deit"),
    }
    for kind in ("none", "soft", "hard"):
        table[f"rvernet_deit_deit_{kind}"] = rvernet("deit", "deit", kind, scratch=True)
        table[f"rvernet_cnn_cnn_{kind}"] = rvernet("cnn", "cnn", kind)
        # Token-sparse towers: each DeiT tower encodes only the patches of its region (the same recipe otherwise).
        table[f"rvernet_deit_deit_sparse_{kind}"] = rvernet("deit", "deit", kind, scratch=True, token_selection="mask")
        if kind != "soft":  # issue 22: a patch is read when its region covers half of it (not any overlap)
            table[f"rvernet_deit_deit_sparse_{kind}_t05"] = [
                *table[f"rvernet_deit_deit_sparse_{kind}"],
                "--token_keep_threshold",
                "0.5",
            ]
    # When the mask is wrong (issue 23): trained with perturbed masks half the time, and other cut-out styles.
    for style in ("fill", "blur", "dim"):
        styled = [] if style == "fill" else [f"_{style}"]
        name = "rvernet_deit_deit_hard" + "".join(styled)
        if style != "fill":
            table[name] = [*rvernet("deit", "deit", "hard", scratch=True), "--cutout_style", style]
        table[f"{name}_maskaug"] = [*table.get(name, table["rvernet_deit_deit_hard"]), "--mask_augmentation", "0.5"]
    table["rvernet_deit_deit_sparse_hard_maskaug"] = [
        *table["rvernet_deit_deit_sparse_hard"],
        "--mask_augmentation",
        "0.5",
    ]
    # Mixed towers: the pretrained CNN reads the ROI, a random-init DeiT the context.
    for kind in ("none", "soft", "hard"):
        table[f"rvernet_cnn_roi_deit_context_{kind}"] = [*rvernet("cnn", "deit", kind), "--context_from_scratch"]
    return table


def main(argv=None):
    from transformers import DeiTConfig

    from rvernet_hf.evaluation import evaluate_model, load_for_evaluation, load_split
    from rvernet_hf.run_folder import replaced_atomically
    from rvernet_hf.synthetic import generate_ambiguous_food
    from rvernet_hf.teachers import lite0_for_image_classification
    from rvernet_hf.testing_utils import folder_training_args
    from rvernet_hf.training import main as train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="bench-accuracy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="*", help="subset of the configurations (default: all)")
    parser.add_argument("--num_per_class", type=int, default=400)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--teacher_epochs", type=float, default=4)
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=1e-3,
        help="every student's; another recipe wants another --output_dir (runs are named by config)",
    )
    parser.add_argument("--warmup_steps", type=int, default=20)
    parser.add_argument(
        "--distractor_prob",
        type=float,
        default=0.5,
        help="share of scenes with another target food (the multi-object case: the photo alone does not "
        "say which object is asked about); 0 = one target food per scene",
    )
    parser.add_argument(
        "--table_only", action="store_true", help="print the table of the finished runs; train nothing"
    )
    args = parser.parse_args(argv)
    known = configs({"deit": "", "cnn": ""}, "")
    unknown = sorted(set(args.configs or ()) - set(known))
    if unknown:  # before any data is generated or any model trained
        raise ValueError(f"--configs: unknown {unknown}; known: {sorted(known)}")
    root = Path(args.output_dir)
    data = root / "data"
    if not (data / "dataset_info.json").exists():
        generate_ambiguous_food(
            data,
            num_per_class=args.num_per_class,
            image_size=args.image_size,
            seed=1234,
            distractor_prob=args.distractor_prob,
        )
    info = json.loads((data / "dataset_info.json").read_text())
    towers = {"deit": str(root / "deit-config"), "cnn": str(root / "lite0-imagenet")}
    DeiTConfig(
        hidden_size=96,
        num_hidden_layers=4,
        num_attention_heads=3,
        intermediate_size=384,
        image_size=args.image_size,
        patch_size=8,
    ).save_pretrained(towers["deit"])
    if not Path(towers["cnn"], "model.safetensors").exists():
        lite0_for_image_classification().save_pretrained(towers["cnn"])
    folders = folder_training_args(data)
    common = [
        "--do_train",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--per_device_train_batch_size",
        "32",
        "--weight_decay",
        "0.05",
        "--disable_tqdm",
        "true",
        "--image_size",
        str(args.image_size),
    ]
    # The students' recipe; the teacher keeps its own whatever --learning_rate/--warmup_steps say, so every recipe
    # distils from the same teacher.
    student = [*common, "--learning_rate", str(args.learning_rate), "--warmup_steps", str(args.warmup_steps)]
    teacher = root / "teacher"
    table = configs(towers, str(teacher))
    chosen = args.configs or list(table)
    needs_teacher = any("--teacher_model_name_or_path" in table[name] for name in chosen)
    if needs_teacher and not (teacher / "model.safetensors").exists() and not args.table_only:
        train(
            [
                *folders,
                *common,
                "--model_type",
                "single",
                "--model_name_or_path",
                "efficientnet-lite0-imagenet",
                "--num_train_epochs",
                str(args.teacher_epochs),
                "--learning_rate",
                "2e-3",
                "--warmup_steps",
                "20",
                "--output_dir",
                str(teacher),
                "--overwrite_output_dir",
            ]
        )
    test = load_split(data, "test")

    def evaluate(run_dir: Path, token_selection: str | None = None, token_margin: int = 0, threshold=None) -> dict:
        """Test-split scores under every probe, written once to <run_dir>/scores.json (read back after that);
        with `token_selection` (and `token_margin`, `threshold`: the processor's `token_keep_threshold`), the same
        weights evaluated that way (scores-<token_selection>[-margin<k>][-t<threshold>].json)."""
        variant = (
            ""
            if token_selection is None
            else f"-{token_selection}"
            + (f"-margin{token_margin}" if token_margin else "")
            + (f"-t{threshold}" if threshold is not None else "")
        )
        done = run_dir / f"scores{variant}.json"
        if not done.exists():
            model, transform = load_for_evaluation(run_dir)
            if token_selection is not None:
                model.config.token_selection = token_selection
                transform.processor.set_settings(token_margin=token_margin)
                if threshold is not None:
                    transform.processor.set_settings(token_keep_threshold=threshold)
            result = {
                probe: {
                    k: v
                    for k, v in evaluate_model(model, transform, test, info["ambiguous_labels"], probe=probe).items()
                    if isinstance(v, float)
                }
                for probe in PROBES
            }
            with replaced_atomically(done) as partial:  # a killed run never leaves a torn marker
                Path(partial).write_text(json.dumps(result, indent=2))
        return json.loads(done.read_text())

    scores: dict[str, list[dict]] = {}
    if (teacher / "model.safetensors").exists():  # the distillation teacher, for reference
        scores[f"teacher_cnn_full_image_{args.teacher_epochs:g}_epochs"] = [evaluate(teacher)]
    for name in chosen:
        for seed in args.seeds:
            run_dir = root / "runs" / f"{name}-seed{seed}"
            if not (run_dir / "scores.json").exists():
                if args.table_only:
                    continue
                if not (run_dir / "train_results.json").exists():  # trained but not scored: only scored below
                    train(
                        [
                            *folders,
                            *student,
                            *table[name],
                            "--num_train_epochs",
                            str(args.epochs),
                            "--seed",
                            str(seed),
                            "--output_dir",
                            str(run_dir),
                            "--overwrite_output_dir",
                        ]
                    )
            scores.setdefault(name, []).append(evaluate(run_dir))
            if name.startswith("rvernet_deit_deit_") and "_sparse_" not in name:  # dense weights, read sparse
                scores.setdefault(f"{name}, evaluated sparse", []).append(evaluate(run_dir, "mask"))
                margin = f"{name}, evaluated sparse with a 1-patch ring"
                scores.setdefault(margin, []).append(evaluate(run_dir, "mask", token_margin=1))
                half = f"{name}, evaluated sparse with a 1-patch ring, token_keep_threshold 0.5"
                scores.setdefault(half, []).append(evaluate(run_dir, "mask", token_margin=1, threshold=0.5))

    def cell(runs, probe, metric):
        values = [run[probe][metric] for run in runs]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} +- {spread:.3f}"

    print(f"\nTest split ({len(test)} images), seeds {args.seeds}; ambiguous group {info['ambiguous_labels']}")
    header = ["accuracy", "macro-F1", "ambiguous F1", "amb. F1 patch-perm.", "amb. F1 transloc.", "amb. F1 per seed"]
    print(f"| model | {' | '.join(header)} |\n|---|{'---|' * len(header)}")
    for name, runs in scores.items():
        cells = [
            cell(runs, "none", "accuracy"),
            cell(runs, "none", "macro_f1"),
            cell(runs, "none", "ambiguous_f1"),
            cell(runs, "patch_permutation", "ambiguous_f1"),
            cell(runs, "translocation", "ambiguous_f1"),
            " / ".join(f"{run['none']['ambiguous_f1']:.3f}" for run in runs),
        ]
        print(f"| {name} ({len(runs)} seed{'s' if len(runs) > 1 else ''}) | {' | '.join(cells)} |")
    return scores


if __name__ == "__main__":
    main()
