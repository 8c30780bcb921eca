# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The `rvernet-hf` command line: the parser, one line per user error, and the two small subcommands that live here
(`env`, and `masks`, which writes its dataset folder complete or not at all); `demo`, `train`, `predict` and `push`
run in the modules that do the work."""

import argparse
import re
import sys


def _env(args: argparse.Namespace) -> int:
    """Print the versions that matter when reporting a bug."""
    import platform

    import torch
    import transformers

    from . import __version__

    rows = {
        "rvernet-hf": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda available": torch.cuda.is_available(),
        "transformers": transformers.__version__,
    }
    for optional in ("timm", "accelerate", "datasets", "evaluate", "huggingface_hub", "safetensors", "onnxruntime"):
        try:
            rows[optional] = __import__(optional).__version__
        except ImportError:
            rows[optional] = "not installed"
    for key, value in rows.items():
        print(f"- {key}: {value}")
    return 0


def _masks(args: argparse.Namespace) -> int:
    """SAM masks for an image folder, stored with the dataset (`save_to_disk`), resumable, computed once."""
    import os
    import shutil
    from pathlib import Path

    from .data import load_image_folder_dataset, precompute_roi_masks
    from .image_processing_rvernet import RveRNetImageProcessor

    output = Path(args.output_dir)
    if output.exists() and any(output.iterdir()):
        raise SystemExit(
            f"--output_dir {output} exists and is not empty: choose another folder (nothing is replaced)."
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun / accelerate launch: split the shards by rank
        from accelerate import PartialState

        PartialState()  # joins the process group (gloo on CPU, NCCL on GPUs)
    dataset = load_image_folder_dataset(args.data_dir, masks_dir=args.masks_dir)
    processor = (
        RveRNetImageProcessor.from_pretrained(args.processor)
        if args.processor
        else RveRNetImageProcessor(sam_model_name_or_path=args.sam_model, sam_batch_size=args.sam_batch_size)
    )
    masked, report = precompute_roi_masks(
        dataset,
        processor,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        cache_dir=args.cache_dir,
        on_error=args.on_error,
    )
    where = f"process {report.process_index} of {report.num_processes}: " if report.num_processes > 1 else ""
    print(f"{where}shards computed: {report.shards_computed}, reused from cache: {report.shards_reused}")
    if report.process_index != 0:
        return 0
    partial = output.with_name(f".{output.name}.incomplete")  # readers find the dataset complete or absent
    if partial.exists():
        shutil.rmtree(partial)  # left by a killed run
    masked.save_to_disk(str(partial))
    if output.exists():
        output.rmdir()  # empty: checked before any work
    partial.rename(output)
    print(f"{len(masked)} samples with ROI masks saved to {args.output_dir}")
    if report.skipped:
        print(f"skipped {len(report.skipped)} samples:")
        for entry in report.skipped:
            print(f"  - {entry['name'] or entry['index']}: {entry['error']}")
    return 0


# --dataset_name's reading options for `evaluate` (as `train` names them): (option, default, help).
EVALUATE_DATASET_OPTIONS = (
    ("dataset_config_name", None, "the Hub dataset's configuration"),
    ("split", "test", "the split to evaluate"),
    ("data_layout", "auto", "auto, hub or segmentation (label maps: one sample per (image, class), as in training)"),
    ("id2label_file", None, "segmentation: JSON {id: name} of the label maps (default: the dataset's id2label.json)"),
    ("label_channel", "auto", "segmentation: the channel of a colour label map that holds the ids"),
    ("image_column", "image", "the image column"),
    ("label_column", "label", "the label column (segmentation: the label map)"),
    ("mask_column", "roi_mask", "the ROI mask column"),
)


def _evaluate(args: argparse.Namespace) -> int:
    """Accuracy, macro-F1 and ambiguous-group F1 of a saved model, one row per mask perturbation."""
    import json
    import os

    from .paths_rvernet import check_local_path
    from .perturbations import parse_perturbations

    parse_perturbations(args.mask_perturbations)  # refused before anything is loaded
    if (args.data_dir is None) == (args.dataset_name is None):
        raise ValueError("give exactly one of --data_dir (an image folder) and --dataset_name (a Hub dataset).")
    if args.dataset_name and (args.masks_dir or args.object_masks_dir):
        raise ValueError("--masks_dir and --object_masks_dir go with --data_dir; a dataset holds its own masks.")
    for value, option in (
        (args.model, "MODEL"),
        (args.data_dir, "--data_dir"),
        (args.masks_dir, "--masks_dir"),
        (args.object_masks_dir, "--object_masks_dir"),
        (args.dataset_name, "--dataset_name"),
        (args.id2label_file, "--id2label_file"),
    ):
        check_local_path(value, option)
    for option, path in (("--json", args.json), ("--save_plot", args.save_plot)):
        if path and os.path.exists(path):
            raise ValueError(f"{option} {path} exists: finished work is never overwritten; choose another file.")
    from .evaluation import evaluate_mask_perturbations, load_evaluation_data, load_for_evaluation

    options = {option: getattr(args, option) for option, _, _ in EVALUATE_DATASET_OPTIONS}
    dataset = load_evaluation_data(args.data_dir, args.masks_dir, args.object_masks_dir, args.dataset_name, **options)
    source = args.data_dir or f"{args.dataset_name} [{args.split}]"
    model, transform = load_for_evaluation(args.model)
    if getattr(model.config, "model_type", None) == "rvernet" or args.mask_perturbations != "none":
        masks = dataset["roi_mask"] if "roi_mask" in dataset.column_names else [None] * len(dataset)
        missing = [i for i, mask in enumerate(masks) if mask is None]
        if missing:
            raise ValueError(
                f"sample {missing[0]} of {source} has no ROI mask ({len(missing)} of {len(dataset)} lack one): "
                "give --masks_dir, or make them once with `rvernet-hf masks`."
            )
    ambiguous = [name.strip() for name in args.ambiguous_labels.split(",")] if args.ambiguous_labels else []
    rows = evaluate_mask_perturbations(
        model, transform, dataset, args.mask_perturbations, ambiguous, args.batch_size, args.device, args.seed
    )
    print(f"{args.model} on {source} ({len(dataset)} samples):")
    print(f"  {'masks':<14} {'mean IoU':>8} {'accuracy':>9} {'macro-F1':>9} {'ambig.F1':>9} {'samples':>8}")
    for row in rows:
        ambiguous_f1 = f"{row['ambiguous_f1']:9.3f}" if row.get("ambiguous_f1") is not None else f"{'-':>9}"
        print(
            f"  {row['perturbation']:<14} {row['mean_iou']:8.3f} {row['accuracy']:9.3f} {row['macro_f1']:9.3f} "
            f"{ambiguous_f1} {row['samples']:8d}"
        )
    if args.json:
        from .run_folder import replaced_atomically

        with replaced_atomically(args.json) as partial, open(partial, "w") as handle:
            json.dump(rows, handle, indent=2, default=lambda value: getattr(value, "tolist", lambda: str(value))())
        print(f"  written: {args.json}")
    if args.save_plot:
        from .visualization import save_mask_robustness_plot

        print(f"  picture: {save_mask_robustness_plot({args.model: {'rows': rows}}, args.save_plot)}")
    return 0


def _train(args: argparse.Namespace) -> int:
    """Everything after `train` goes to the training script's own parser (HfArgumentParser)."""
    from .training import main as train_main

    train_main(args.training_args)
    return 0


def _push(args: argparse.Namespace) -> int:
    """Upload an existing model folder (after checking it and its card), or write the dry-run folder."""
    from .hub import push_folder

    where = push_folder(
        args.folder,
        args.repo_id,
        revision=args.revision,
        create_pr=args.create_pr,
        private=args.private,
        token=args.token,
        commit_message=args.commit_message,
        dry_run_dir=args.dry_run_dir,
        sam_model_id=args.sam_model_id,
        space_id=args.space_id,
    )
    print(f"dry run: the upload would be exactly {where}" if args.dry_run_dir else f"pushed: {where}")
    if args.space_id:
        space = f"{args.dry_run_dir}-space" if args.dry_run_dir else f"https://huggingface.co/spaces/{args.space_id}"
        print(f"dry run: the Space would be exactly {space}" if args.dry_run_dir else f"Space: {space}")
    return 0


def _export(args: argparse.Namespace) -> int:
    """Export a saved model to ONNX (both towers and the head in one graph), checked against PyTorch."""
    from .onnx_export import export_onnx
    from .paths_rvernet import check_local_path

    check_local_path(args.model, "MODEL")
    written = export_onnx(args.model, args.output_dir, token_selection=args.token_selection, opset_version=args.opset)
    print(f"exported: {written}/model.onnx (with config.json and the image processor; checked with ONNX Runtime)")
    return 0


def _app(args: argparse.Namespace) -> int:
    """Serve the web page (Gradio) and its `/classify` API."""
    from .app import main as app_main

    return app_main(args=args)


def add_app_parser(subparsers) -> None:
    from .app import build_parser as app_parser

    app = subparsers.add_parser(
        "app", help="a web page: click an object in a photo and read its label (Gradio; the `app` extra)"
    )
    app_parser(app).set_defaults(func=_app)


def add_export_parser(subparsers) -> None:
    export = subparsers.add_parser("export", help="export a saved model to ONNX (both towers and the head)")
    export.add_argument("model", help="a folder written by `train` (RveRNet or --model_type single), or a Hub id")
    export.add_argument("output_dir", help="the new folder: model.onnx, config.json, the processor (must not exist)")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="the format (onnx)")
    export.add_argument(
        "--token_selection",
        choices=["dense"],
        help="export a token-sparse model dense (every patch read): sparse gathers cannot be an ONNX graph",
    )
    export.add_argument("--opset", type=int, help="ONNX opset (default: torch's exporter's)")
    export.set_defaults(func=_export)


def _numbers(text: str, count: int, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise SystemExit(f"{flag} expects {count} comma-separated numbers, got {text!r}.")
    return values


def _predict_single(args: argparse.Namespace, config, given_prompt: bool) -> int:
    """A plain image classifier (e.g. the teacher `train --model_type single` writes): it reads the whole photo, so
    it is run on the whole photo, and says so; it takes no ROI, and one trained on a cut-out is refused."""
    import json

    from transformers import pipeline

    view = getattr(config, "rvernet_single_view", "full_image")
    what = f"{args.model} is a single image classifier (model_type {config.model_type!r}), not an RveRNet"
    if view != "full_image":
        raise SystemExit(
            f"{what}, trained on the {view} cut-out: predict runs single classifiers on whole photos only. Evaluate "
            "it on cut-outs with rvernet_hf.evaluate_model, or predict with an RveRNet."
        )
    if given_prompt:
        raise SystemExit(
            f"{what}: it reads the whole photo and takes no --mask, --box, --point, --all-objects or --text."
        )
    classifier = pipeline("image-classification", model=args.model, revision=args.revision, device=args.device)
    results = []
    for image in args.images:
        labels = classifier(image, top_k=args.top_k)
        results.append({"image": image, "prompt": "whole photo (single classifier)", "labels": labels})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{what}: each whole photo is classified.")
    for result in results:
        print(result["image"])
        for entry in result["labels"]:
            print(f"  {entry['score']:.3f}  {entry['label']}")
    return 0


def _check_prompts_against_images(images: list[str], prompts: dict, masks: list[str]) -> None:
    """Each image's prompt checked against its size, read from its header (no pixel decoded): a click or box outside
    the photo, or a mask file of another size, is named before a model is loaded."""
    from .image_utils_rvernet import image_size_from_header
    from .prompts_rvernet import image_request

    points = prompts.get("points")
    for index, image in enumerate(images):
        try:
            shape = image_size_from_header(image, f"image {image}")
            mask = masks[index] if masks else None
            labels = [1] * len(points) if points else None
            image_request(index, shape, (mask, points, labels, prompts.get("box"), None))
        except ValueError as error:
            raise ValueError(f"{image}: {error}") from None


def _print_predictions(results: list[dict], as_json: bool) -> None:
    """`predict`'s output: JSON, or per image its labels (or its objects' table)."""
    import json

    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            if "objects" in result:
                print(f"{result['image']}: {len(result['objects'])} objects")
                print(f"  {'#':>3}  {'box (x0, y0, x1, y1)':<24} {'pixels':>8}  {'score':>5}  label")
                for k, found in enumerate(result["objects"], 1):
                    best = found["labels"][0]
                    box = ", ".join(str(v) for v in found["box"])
                    print(f"  {k:>3}  {box:<24} {found['roi_pixels']:>8}  {best['score']:.3f}  {best['label']}")
                if "visualization" in result:
                    print(f"  picture: {result['visualization']}")
                continue
            print(f"{result['image']} ({result['prompt']} ROI, {result['roi_pixels']} px)")
            for entry in result["labels"]:
                print(f"  {entry['score']:.3f}  {entry['label']}")
            if "visualization" in result:
                print(f"  picture: {result['visualization']}")


def _predict(args: argparse.Namespace) -> int:
    """Classify images (optionally prompted) with a saved model; print labels, optionally JSON and a picture."""
    from pathlib import Path

    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    from .paths_rvernet import check_local_path
    from .pipeline_rvernet import RveRNetImageClassificationPipeline
    from .visualization import save_objects_visualization, save_roi_visualization

    prompts = {}
    if args.point:
        prompts["points"] = [_numbers(point, 2, "--point") for point in args.point]
    if args.box:
        prompts["box"] = _numbers(args.box, 4, "--box")
    masks = args.mask or []
    if masks and len(masks) != len(args.images):
        raise SystemExit(
            f"--mask gives one image's mask: give one --mask per image, in order ({len(args.images)} images, "
            f"{len(masks)} masks)."
        )
    if masks and prompts:
        raise SystemExit("give one prompt: --mask, or --box, or --point.")
    if args.all_objects and (prompts or masks):
        raise SystemExit("--all-objects finds every object itself: leave out --mask, --box and --point.")
    if args.text is not None and (prompts or masks or args.all_objects or not args.text.strip()):
        raise SystemExit(
            "--text CONCEPT (not empty) finds the objects itself: leave out --mask, --box, --point and --all-objects."
        )
    many = args.all_objects or args.text is not None  # every object (or instance) of each photo: a table
    for image in args.images:
        if not Path(image).is_file():
            raise SystemExit(f"image {image} does not exist.")
    check_local_path(args.model, "--model")
    check_local_path(args.sam_model, "--sam_model")
    _check_prompts_against_images(args.images, prompts, masks)  # before any model is loaded
    config = AutoConfig.from_pretrained(args.model, revision=args.revision)
    if config.model_type != "rvernet":
        return _predict_single(args, config, given_prompt=bool(prompts or masks or many))
    selection = {"token_selection": args.token_selection} if args.token_selection else {}
    model = AutoModelForImageClassification.from_pretrained(args.model, revision=args.revision, **selection).eval()
    processor = AutoImageProcessor.from_pretrained(args.model, revision=args.revision)
    if args.sam_model:
        processor.sam_model_name_or_path = args.sam_model
    classifier = RveRNetImageClassificationPipeline(model=model, image_processor=processor, device=args.device)
    results = []
    for index, image in enumerate(args.images):
        target = None
        if args.save_viz:
            target = Path(args.save_viz)
            if len(args.images) > 1:
                target = target.with_name(f"{target.stem}_{index}{target.suffix or '.png'}")
        request = (
            {"all_objects": True}
            if args.all_objects
            else {"text": args.text}
            if args.text is not None
            else {**prompts, **({"mask": masks[index]} if masks else {})}
        )
        try:
            prediction = classifier(image, top_k=args.top_k, **request)
        except ValueError as error:  # the pipeline sees one image at a time: name the file, not "image 0"
            raise ValueError(f"{image}: {error}") from error
        if many:
            objects = prediction
            found_objects = [
                {"box": found["box"], "roi_pixels": int(found["mask"].sum()), "labels": found["labels"]}
                for found in objects
            ]
            prompt = "all_objects" if args.all_objects else f"text: {args.text}"
            results.append({"image": image, "prompt": prompt, "objects": found_objects})
            if target is not None:
                save_objects_visualization(image, objects, target, background=processor.pad_value)
                results[-1]["visualization"] = str(target)
            continue
        results.append(
            {
                "image": image,
                "prompt": prediction["prompt"],
                "labels": prediction["labels"],
                "roi_pixels": int(prediction["mask"].sum()),
            }
        )
        if target is not None:
            save_roi_visualization(image, prediction["mask"], processor, target, labels=prediction["labels"])
            results[-1]["visualization"] = str(target)
    _print_predictions(results, as_json=args.json)
    return 0


class _OldNameToo(argparse.Action):
    """An option with a former name, still accepted: using the former name prints a deprecation note."""

    def __init__(self, option_strings, dest, old_name: str, **kwargs):
        self.old_name = old_name
        super().__init__([*option_strings, old_name], dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == self.old_name:
            print(
                f"note: {self.old_name} is deprecated; it is now {self.option_strings[0]} (the same option in "
                "every subcommand).",
                file=sys.stderr,
            )
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvernet-hf", description="RveRNet: ROI + context classification with SAM masks and CNN distillation."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    env = subparsers.add_parser("env", help="print the versions of rvernet-hf and its dependencies")
    env.set_defaults(func=_env)

    masks = subparsers.add_parser(
        "masks", help="compute SAM ROI masks for an image folder once, store them with the dataset (resumable)"
    )
    masks.add_argument("--data_dir", required=True, help="image folder: <data_dir>/<class>/<image>")
    masks.add_argument("--output_dir", required=True, help="where the dataset with masks is saved (save_to_disk)")
    masks.add_argument("--masks_dir", help="optional masks you already have: <masks_dir>/<class>/<stem>.png")
    masks.add_argument("--processor", help="an RveRNet processor folder or Hub id (its SAM settings are used)")
    masks.add_argument(
        "--sam_model_name_or_path",
        dest="sam_model",
        action=_OldNameToo,
        old_name="--sam_model",
        default="facebook/sam-vit-base",
        help="segmenter checkpoint (Hub id or folder)",
    )
    masks.add_argument("--sam_batch_size", type=int, default=4, help="images per SAM image-encoder pass")
    masks.add_argument("--batch_size", type=int, default=8, help="samples per `datasets.map` batch")
    masks.add_argument("--shard_size", type=int, default=256, help="samples per resumable cache shard")
    masks.add_argument("--cache_dir", help="where the shard cache lives (default: next to the dataset cache)")
    masks.add_argument(
        "--on_bad_samples",
        dest="on_error",
        action=_OldNameToo,
        old_name="--on_error",
        choices=["raise", "skip"],
        default="raise",
        help="stop at the first bad sample, or skip bad samples and report them",
    )
    masks.set_defaults(func=_masks)

    evaluate = subparsers.add_parser(
        "evaluate", help="evaluate a saved model on an image folder, with the masks given or perturbed"
    )
    evaluate.add_argument("model", help="a folder written by `train` (RveRNet or --model_type single), or a Hub id")
    evaluate.add_argument("--data_dir", help="image folder: <data_dir>/<class>/<image>")
    evaluate.add_argument("--masks_dir", help="its ROI masks: <masks_dir>/<class>/<stem>.png (RveRNet needs them)")
    evaluate.add_argument(
        "--object_masks_dir", help="each photo's other objects, instance maps <dir>/<class>/<stem>.png (for 'other')"
    )
    evaluate.add_argument("--dataset_name", help="instead of --data_dir: a Hub dataset id or a save_to_disk folder")
    for option, default, text in EVALUATE_DATASET_OPTIONS:
        evaluate.add_argument(f"--{option}", default=default, help=text)
    evaluate.add_argument("--ambiguous_labels", help="comma-separated labels whose macro-F1 is reported on its own")
    evaluate.add_argument(
        "--mask_perturbations",
        default="none",
        help="comma-separated: none, erode:S, dilate:S, shift:S, box, disk, noise:S (S a fraction of the ROI's size), "
        "other (another object's mask: needs --object_masks_dir or a segmentation --dataset_name)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the per-sample perturbations")
    evaluate.add_argument("--batch_size", type=int, default=32)
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    evaluate.add_argument("--json", metavar="FILE", help="also write every row (with the per-class report) here")
    evaluate.add_argument("--save_plot", metavar="OUT.png", help="draw accuracy against the masks' mean IoU")
    evaluate.set_defaults(func=_evaluate)

    train = subparsers.add_parser(
        "train",
        add_help=False,
        help="fine-tune RveRNet or a single classifier (teacher, baseline), with distillation: `train --help`",
    )
    train.add_argument("training_args", nargs=argparse.REMAINDER)
    train.set_defaults(func=_train)

    subparsers.add_parser("demo", add_help=False, help="the whole method end to end, offline on CPU: `demo --help`")
    push = subparsers.add_parser("push", help="upload a saved model folder to the Hub (HTTP API), or dry-run it")
    push.add_argument("folder", help="a folder written by `train` (weights, config with auto_map, code, README.md)")
    push.add_argument("--repo_id", required=True, help="namespace/name on the Hub")
    push.add_argument("--revision", help="branch to push to (created if missing)")
    push.add_argument("--create_pr", action="store_true", help="open a pull request instead of committing")
    push.add_argument("--private", action="store_true", default=None, help="create the repository as private")
    push.add_argument("--token", help="Hub token (default: the logged-in one)")
    push.add_argument("--commit_message", default="Upload RveRNet model")
    push.add_argument("--dry_run_dir", help="upload nothing: write the exact folder that would be uploaded here")
    push.add_argument(
        "--space_id",
        help="also create a Gradio Space (namespace/name) that serves the model with `rvernet-hf app`; the model card "
        "links it (with --dry_run_dir, its files go to DRY_RUN_DIR-space)",
    )
    push.add_argument(
        "--sam_model_id",
        help="the segmenter's Hub id to name in the upload when the saved processor "
        "names a local path (default: facebook/sam-vit-base)",
    )
    push.set_defaults(func=_push)
    add_export_parser(subparsers)
    add_app_parser(subparsers)

    predict = subparsers.add_parser(
        "predict", help="classify images with a saved model (box, click, mask or automatic ROI)"
    )
    predict.add_argument("images", nargs="+", help="image files")
    predict.add_argument("--model", required=True, help="a saved RveRNet folder or Hub id")
    predict.add_argument("--revision", help="Hub revision")
    predict.add_argument("--point", action="append", metavar="X,Y", help="a foreground click (repeat for more)")
    predict.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box around the object")
    predict.add_argument(
        "--mask",
        metavar="FILE",
        action="append",
        help="a binary mask image of the object: one per image, in the images' order",
    )
    predict.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=5, help="labels to show")
    predict.add_argument(
        "--save-viz",
        "--save_viz",
        dest="save_viz",
        metavar="OUT.png",
        help="write the ROI outline, both cut-outs and the top-k bars (one file per image)",
    )
    predict.add_argument(
        "--all-objects",
        "--all_objects",
        dest="all_objects",
        action="store_true",
        help="label every object of each photo (a table; with --save-viz every region outlined)",
    )
    predict.add_argument(
        "--text",
        metavar="CONCEPT",
        help="label every instance of a concept ('sauce'), found by a SAM 3 segmenter (--sam_model_name_or_path)",
    )
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.add_argument(
        "--sam_model_name_or_path",
        dest="sam_model",
        action=_OldNameToo,
        old_name="--sam_model",
        help="segmenter for box/click/automatic ROIs (default: the processor's)",
    )
    predict.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cpu)")
    predict.add_argument(
        "--token_selection",
        choices=["dense", "mask"],
        help="override the model's: mask = ViT-family towers read only the patches of their region (same weights)",
    )
    predict.set_defaults(func=_predict)
    return parser


# Errors a user fixes by changing an input or an option (a bad image, a bad box, a missing file, a folder in use, a
# missing extra): one clear line and a non-zero exit, the traceback only with --debug.
USER_ERRORS = (ValueError, OSError, RuntimeError, ImportError)
_NUMBER_LIST = re.compile(r"^-?\d+(\.\d*)?(,-?\d+(\.\d*)?)*$")


def _join_negative_values(argv: list[str], flags=("--box", "--point")) -> list[str]:
    """`--box -10,5,30,40` as `--box=-10,5,30,40`: argparse would take the value for an option."""
    joined, index = [], 0
    while index < len(argv):
        token = argv[index]
        if token in flags and index + 1 < len(argv) and _NUMBER_LIST.match(argv[index + 1]):
            joined.append(f"{token}={argv[index + 1]}")
            index += 2
            continue
        joined.append(token)
        index += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [token for token in argv if token != "--debug"]
    try:
        return _dispatch(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"rvernet-hf: error: {error}", file=sys.stderr)
        print("(run again with --debug for the traceback)", file=sys.stderr)
        return 1


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["demo"]:
        from .demo import main as demo_main

        return demo_main(argv[1:])
    if argv[:1] == ["train"]:  # the training script parses its own arguments (including --help and a JSON file)
        return _train(argparse.Namespace(training_args=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(argv))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
