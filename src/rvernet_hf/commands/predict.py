# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf predict`: classify photos with a saved model, through the prompted pipeline (the package's one
inference path); each photo's prompt (`RoiPrompt`) is checked against its size, read from its header, before any
model is loaded."""

import argparse
from pathlib import Path

from .options import (
    FormerName,
    add_json_option,
    add_model_options,
    check_paths,
    positive_int,
    refuse_existing,
    resolve_model,
    write_json,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="classify images with a saved model (box, click, mask, every object, or automatic ROI)"
    )
    parser.add_argument("images", nargs="+", help="image files")
    add_model_options(parser, what="a saved RveRNet folder or Hub id (a single classifier reads whole photos)")
    parser.add_argument("--point", action="append", metavar="X,Y", help="a click on the object (repeat for more)")
    parser.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box around the object")
    parser.add_argument(
        "--mask", metavar="FILE", action="append", help="a binary mask image of the object: one per image, in order"
    )
    parser.add_argument(
        "--all_objects",
        action=FormerName,
        former="--all-objects",
        nargs=0,
        const=True,
        default=False,
        help="label every object of each photo (a table; with --save_viz every region outlined)",
    )
    parser.add_argument(
        "--text", metavar="CONCEPT", help="label every instance of a concept ('sauce'), found by a SAM 3 segmenter"
    )
    parser.add_argument(
        "--top_k", type=positive_int, default=5, action=FormerName, former="--top-k", help="labels per ROI"
    )
    parser.add_argument(
        "--save_viz",
        action=FormerName,
        former="--save-viz",
        metavar="OUT.png",
        help="write the ROI outline, both cut-outs and the top-k bars (one file per image; never over a file)",
    )
    add_json_option(parser, "the predictions")
    parser.add_argument(
        "--sam_model_name_or_path",
        dest="sam_model",
        action=FormerName,
        former="--sam_model",
        help="segmenter for box/click/automatic ROIs (default: the processor's)",
    )
    parser.add_argument(
        "--token_selection",
        choices=["dense", "mask"],
        help="override the model's: mask = ViT-family towers read only the patches of their region (same weights)",
    )
    parser.set_defaults(func=run)


def _numbers(text: str, count: int, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise ValueError(f"{flag} expects {count} comma-separated numbers, got {text!r}.")
    return values


def _prompts(args: argparse.Namespace) -> list:
    """One `RoiPrompt` per photo from the options, each checked against the photo's size (from its header: no pixel
    decoded) before any model is loaded; an error names the file."""
    from ..image_utils_rvernet import image_size_from_header
    from ..prompts_rvernet import RoiPrompt

    masks = args.mask or []
    if masks and len(masks) != len(args.images):
        raise ValueError(
            f"--mask gives one image's mask: give one --mask per image, in order ({len(args.images)} images, "
            f"{len(masks)} masks)."
        )
    keywords = {"all_objects": args.all_objects, "text": args.text}
    if args.point:
        keywords["points"] = [_numbers(point, 2, "--point") for point in args.point]
    if args.box:
        keywords["box"] = _numbers(args.box, 4, "--box")
    prompts = []
    for index, image in enumerate(args.images):
        if not Path(image).is_file():
            raise ValueError(f"image {image} does not exist.")
        try:
            prompt = RoiPrompt.from_keywords(**keywords, mask=masks[index] if masks else None, index=index)
            prompts.append(prompt.checked(image_size_from_header(image, f"image {image}")))
        except ValueError as error:
            raise ValueError(f"{image}: {error}") from None
    return prompts


def run(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    resolve_model(args)
    check_paths({"--model": args.model, "--sam_model_name_or_path": args.sam_model})
    prompts = _prompts(args)
    targets = _picture_paths(args)
    refuse_existing(("--json", args.json), *(("--save_viz", target) for target in targets))
    config = AutoConfig.from_pretrained(args.model, revision=args.revision)
    if config.model_type != "rvernet":
        results = _predict_whole_photos(args, config, prompted=any(prompt.kind != "automatic" for prompt in prompts))
    else:
        results = _predict_rois(args, prompts, targets)
    if args.json:
        write_json(args.json, results)
        if args.json == "-":
            return 0
    _print(results)
    return 0


def _picture_paths(args: argparse.Namespace) -> list[Path]:
    if not args.save_viz:
        return []
    target = Path(args.save_viz)
    if len(args.images) == 1:
        return [target]
    return [target.with_name(f"{target.stem}_{index}{target.suffix or '.png'}") for index in range(len(args.images))]


def _predict_rois(args: argparse.Namespace, prompts: list, targets: list[Path]) -> list[dict]:
    """Each photo through the prompted pipeline, with its prompt; the pictures asked for."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from ..pipeline_rvernet import RveRNetImageClassificationPipeline
    from ..visualization import save_objects_visualization, save_roi_visualization

    selection = {"token_selection": args.token_selection} if args.token_selection else {}
    model = AutoModelForImageClassification.from_pretrained(args.model, revision=args.revision, **selection).eval()
    processor = AutoImageProcessor.from_pretrained(args.model, revision=args.revision)
    if args.sam_model:
        processor.set_settings(sam_model_name_or_path=args.sam_model)
    classifier = RveRNetImageClassificationPipeline(model=model, image_processor=processor, device=args.device)
    results = []
    for index, (image, prompt) in enumerate(zip(args.images, prompts)):
        try:
            prediction = classifier(image, prompt=prompt, top_k=args.top_k)
        except ValueError as error:  # the pipeline sees one image at a time: name the file, not "image 0"
            raise ValueError(f"{image}: {error}") from error
        if prompt.finds_objects:  # every object (or instance) of the photo: a table
            found = [
                {"box": item["box"], "roi_pixels": int(item["mask"].sum()), "labels": item["labels"]}
                for item in prediction
            ]
            kind = "all_objects" if prompt.all_objects else f"text: {prompt.text}"
            results.append({"image": image, "prompt": kind, "objects": found})
            if targets:
                save_objects_visualization(image, prediction, targets[index], background=processor.pad_value)
        else:
            results.append(
                {
                    "image": image,
                    "prompt": prediction["prompt"],
                    "labels": prediction["labels"],
                    "roi_pixels": int(prediction["mask"].sum()),
                }
            )
            if targets:
                save_roi_visualization(
                    image, prediction["mask"], processor, targets[index], labels=prediction["labels"]
                )
        if targets:
            results[-1]["visualization"] = str(targets[index])
    return results


def _predict_whole_photos(args: argparse.Namespace, config, prompted: bool) -> list[dict]:
    """A plain image classifier (e.g. the teacher `train --model_type single` writes) reads the whole photo, so it is
    run on the whole photo, and says so; it takes no ROI, and one trained on a cut-out is refused."""
    from transformers import pipeline

    view = getattr(config, "rvernet_single_view", "full_image")
    what = f"{args.model} is a single image classifier (model_type {config.model_type!r}), not an RveRNet"
    if view != "full_image":
        raise ValueError(
            f"{what}, trained on the {view} cut-out: predict runs single classifiers on whole photos only. Evaluate "
            "it on cut-outs with rvernet_hf.evaluate_model, or predict with an RveRNet."
        )
    if prompted:
        raise ValueError(
            f"{what}: it reads the whole photo and takes no --mask, --box, --point, --all_objects or --text."
        )
    if args.save_viz:
        raise ValueError(
            f"{what}: --save_viz draws an ROI and its cut-outs, which a whole-photo classifier has none of."
        )
    classifier = pipeline("image-classification", model=args.model, revision=args.revision, device=args.device)
    if not args.json:
        print(f"{what}: each whole photo is classified.")
    return [
        {"image": image, "prompt": "whole photo (single classifier)", "labels": classifier(image, top_k=args.top_k)}
        for image in args.images
    ]


def _print(results: list[dict]) -> None:
    """Per photo its labels, or its objects' table."""
    for result in results:
        if "objects" in result:
            print(f"{result['image']}: {len(result['objects'])} objects")
            print(f"  {'#':>3}  {'box (x0, y0, x1, y1)':<24} {'pixels':>8}  {'score':>5}  label")
            for k, found in enumerate(result["objects"], 1):
                best = found["labels"][0]
                box = ", ".join(str(v) for v in found["box"])
                print(f"  {k:>3}  {box:<24} {found['roi_pixels']:>8}  {best['score']:.3f}  {best['label']}")
        elif "roi_pixels" in result:
            print(f"{result['image']} ({result['prompt']} ROI, {result['roi_pixels']} px)")
            for entry in result["labels"]:
                print(f"  {entry['score']:.3f}  {entry['label']}")
        else:
            print(result["image"])
            for entry in result["labels"]:
                print(f"  {entry['score']:.3f}  {entry['label']}")
        if "visualization" in result:
            print(f"  picture: {result['visualization']}")
