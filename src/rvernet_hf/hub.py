# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Model cards and the Hub: render the card, check and reload a saved folder, upload it over the Hub's HTTP API
(`huggingface_hub.HfApi`, no git), or write the exact folder that would be uploaded (dry run)."""

import json
import os
import re
import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging

from .run_folder import replaced_atomically


TEMPLATE_PATH = Path(__file__).with_name("templates") / "model_card.md"
# What a model folder uploads: weights (safetensors only), configs, the remote-code files, the card and its pictures,
# the metrics files. Checkpoints, logs and pickled `training_args.bin` stay local.
UPLOAD_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "rvernet_weights.json",
    "config.json",
    "preprocessor_config.json",
    "generation_config.json",
    "*.py",
    "README.md",
    "*_results.json",
    "per_class_report.json",
    "*.png",
)
PIPELINE_TAG = "image-classification"
logger = logging.get_logger(__name__)


def render_model_card(
    model_name: str,
    repo_id: str | None = None,
    config: Any = None,
    summary: str = "",
    datasets: list[str] | None = None,
    base_model: list[str] | None = None,
    metrics: dict[str, float] | None = None,
    dataset_name: str | None = None,
    dataset_type: str | None = None,
    sam_model: str = "facebook/sam-vit-base",
    distillation: str = "none",
    training: str = "",
    ambiguous_labels: list[str] | None = None,
    limitations: str = "",
    license: str = "apache-2.0",
    tags: list[str] | None = None,
):
    """A `huggingface_hub.ModelCard` from the package's template.

    The YAML front matter carries library_name, pipeline_tag, tags, license, datasets, base_model and, when `metrics`
    are given (measured, never assumed), a model-index with one result per metric.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    repo_id = repo_id or model_name
    # A single classifier (e.g. an RveRNet's CNN teacher) is a plain transformers model: no custom code, no SAM.
    is_rvernet = getattr(config, "model_type", "rvernet") == "rvernet"
    rvernet_tags = ["rvernet", "segment-anything", "knowledge-distillation", "custom_code"] if is_rvernet else []
    if not is_rvernet and distillation != "none":
        rvernet_tags.append("knowledge-distillation")
    eval_results = None
    if metrics:
        eval_results = [
            EvalResult(
                task_type=PIPELINE_TAG,
                dataset_type=dataset_type or dataset_name or "custom",
                dataset_name=dataset_name or dataset_type or "custom",
                metric_type=name,
                metric_value=round(float(value), 4),
                metric_name=name.replace("_", " "),
            )
            for name, value in metrics.items()
        ]
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        license=license,
        tags=sorted({"image-classification", *rvernet_tags, *(tags or [])}),
        datasets=datasets or None,
        base_model=base_model or None,
        model_name=model_name,
        eval_results=eval_results,
    )

    def tower(sub_config) -> str:
        if sub_config is None:
            return "-"
        name = getattr(sub_config, "_name_or_path", "") or ""
        kind = (sub_config.architectures or [type(sub_config).__name__])[0]
        return f"{kind} (`{name}`)" if name else kind

    if metrics:
        rows = "\n".join(f"| {name.replace('_', ' ')} | {value:.4f} |" for name, value in metrics.items())
        results = (
            f"Measured on the evaluation split of {dataset_name or 'the training data'}:\n\n"
            f"| metric | value |\n|---|---|\n{rows}"
        )
    else:
        results = "No evaluation results are reported for this checkpoint: it has not been evaluated by us."
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=model_name,
        repo_id=repo_id,
        summary=summary or f"An RveRNet image classifier ({PIPELINE_TAG}).",
        roi_tower=tower(getattr(config, "roi_config", None)),
        context_tower=tower(getattr(config, "context_config", None)),
        fusion=getattr(config, "fusion", "-"),
        num_labels=getattr(config, "num_labels", "-"),
        ambiguous_labels=", ".join(ambiguous_labels or []),
        sam_model=f"`{sam_model}`",
        distillation=distillation,
        training=training or "See the repository's `examples/` for the training commands.",
        results=results,
        limitations=limitations,
    )


def files_to_upload(folder: str | os.PathLike) -> list[str]:
    """The files of `folder` that `push_folder` uploads (relative paths, top level only)."""
    folder = Path(folder)
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and any(fnmatch(p.name, pat) for pat in UPLOAD_PATTERNS)
    )


def save_prompted_pipeline(folder: str | os.PathLike) -> None:
    """Write the prompted pipeline's code into a saved RveRNet `folder` and declare it in its `config.json`
    (`custom_pipelines`), as transformers' `Pipeline.save_pretrained` does for a registered pipeline, without
    writing the weights again. Then `pipeline("rvernet-image-classification", model=folder_or_id,
    trust_remote_code=True)` works where `rvernet_hf` is not installed."""
    from transformers.dynamic_module_utils import custom_object_save

    from .pipeline_rvernet import PIPELINE_TASK, RveRNetImageClassificationPipeline

    folder = Path(folder)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    custom_object_save(RveRNetImageClassificationPipeline, folder)
    config["custom_pipelines"] = {
        PIPELINE_TASK: {
            "impl": f"pipeline_rvernet.{RveRNetImageClassificationPipeline.__name__}",
            "pt": ["AutoModelForImageClassification"],
            "type": "image",
        }
    }
    with replaced_atomically(config_file) as partial:
        Path(partial).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def export_model(model, folder: str | os.PathLike, processor: Any = None) -> Path:
    """The one export path of an RveRNet: weights and config (with `auto_map` and the modeling code), the processor
    (with its segmentation module) when given, and the prompted pipeline's code declared in `config.json`: a folder
    that loads in every way the README shows, with or without `rvernet_hf` installed."""
    model.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    if getattr(model.config, "model_type", None) == "rvernet":
        save_prompted_pipeline(folder)
    return Path(folder)


def check_folder(folder: str | os.PathLike) -> list[str]:
    """Refuse a folder that would not load from the Hub: missing weights, config, card, or remote-code files."""
    folder = Path(folder)
    files = files_to_upload(folder) if folder.is_dir() else []
    problems = []
    if "config.json" not in files:
        problems.append("config.json is missing")
    if not any(name.endswith(".safetensors") for name in files):
        problems.append("no *.safetensors weights (pickled .bin weights are not uploaded)")
    if "README.md" not in files:
        problems.append("README.md (the model card) is missing")
    if "config.json" in files:
        config = json.loads((folder / "config.json").read_text())
        for reference in (config.get("auto_map") or {}).values():
            reference = reference[0] if isinstance(reference, list) else reference
            if reference and f"{reference.split('.')[0].split('--')[-1]}.py" not in files:
                problems.append(f"auto_map names {reference} but its code file is missing")
        if config.get("model_type") == "rvernet" and not config.get("auto_map"):
            problems.append("config.json has no auto_map (import rvernet_hf before saving)")
        for task, spec in (config.get("custom_pipelines") or {}).items():
            if f"{spec['impl'].split('.')[0]}.py" not in files:
                problems.append(f"custom_pipelines declares {task} but its code file is missing")
    if problems:
        raise ValueError(f"{folder} is not ready to push: " + "; ".join(problems) + ".")
    return files


def verify_reload(model: torch.nn.Module, folder: str | os.PathLike, atol: float = 1e-5) -> float:
    """Reload `folder` with `AutoModelForImageClassification` and compare its logits with `model`'s on a random
    input; returns the largest difference. Raises if it exceeds `atol` (the parity gate before any push)."""
    from transformers import AutoModelForImageClassification

    reloaded = AutoModelForImageClassification.from_pretrained(folder).eval()
    model_was_training = model.training
    model.eval()
    config = model.config
    generator = torch.Generator().manual_seed(0)
    if getattr(config, "model_type", None) == "rvernet":
        size = getattr(config.roi_config, "image_size", 224)
        context_size = getattr(config.context_config, "image_size", size)
        inputs = {
            "roi_pixel_values": torch.randn(2, 3, size, size, generator=generator),
            "context_pixel_values": torch.randn(2, 3, context_size, context_size, generator=generator),
        }
        for tower, patch in model.token_patch_sizes.items():  # sparse towers read random patches; dense ignore them
            if patch is not None:
                pixels = inputs[f"{tower}_pixel_values"]
                grid = (pixels.shape[-2] // patch) * (pixels.shape[-1] // patch)
                inputs[f"{tower}_token_mask"] = torch.rand(2, grid, generator=generator) < 0.5
    else:
        size = (
            getattr(config, "image_size", None) or (config.pretrained_cfg or {}).get("input_size", (3, 224, 224))[-1]
        )
        inputs = {"pixel_values": torch.randn(2, 3, size, size, generator=generator)}
    device = next(model.parameters()).device
    with torch.no_grad():
        expected = model(**{k: v.to(device) for k, v in inputs.items()}).logits.float().cpu()
        got = reloaded(**inputs).logits.float()
    model.train(model_was_training)
    difference = float((expected - got).abs().max())
    if difference > atol:
        raise RuntimeError(f"{folder} reloads with logits {difference:.2e} away from the model in memory (> {atol}).")
    return difference


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    revision: str | None = None,
    create_pr: bool = False,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload RveRNet model",
    dry_run_dir: str | os.PathLike | None = None,
    sam_model_id: str | None = None,
    space_id: str | None = None,
):
    """Upload a saved model folder to the Hub over HTTP (`HfApi.create_repo` + `upload_folder`), and with `space_id`
    a Gradio Space that serves it (`write_space`); the model card then links the Space.

    Args:
        revision: a branch to push to (created from main if missing).
        create_pr: open a pull request instead of committing to the branch.
        dry_run_dir: upload nothing; copy exactly the files that would be uploaded there and return its path.
        sam_model_id: the Hub id of the segmenter to name in the uploaded `preprocessor_config.json` when the saved
            one names a path on this machine (default: the package's default segmenter); never a machine path.
        space_id: also create (or update) this Gradio Space; with `dry_run_dir`, its files go to `<dry_run_dir>-space`.
    Returns:
        the commit info (or the dry-run folder).
    """
    import tempfile

    files = check_folder(folder)
    check_push_ids(folder, repo_id, space_id, sam_model_id)
    if dry_run_dir is not None:
        target = Path(dry_run_dir)
        space_target = Path(f"{dry_run_dir}-space") if space_id else None
        for where in (target, space_target):
            if where is not None and where.exists() and any(where.iterdir()):
                raise ValueError(f"dry run folder {where} exists and is not empty.")
        _stage_upload(folder, files, target, sam_model_id, repo_id, space_id)
        if space_target is not None:
            write_space(space_target, repo_id, space_id)
        return str(target)
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rvernet-upload-") as staged:
        staged_files = _stage_upload(folder, files, Path(staged), sam_model_id, repo_id, space_id)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=staged,
            allow_patterns=staged_files,
            revision=revision,
            create_pr=create_pr,
            commit_message=commit_message,
            repo_type="model",
        )
    if space_id:
        api.create_repo(space_id, private=private, exist_ok=True, repo_type="space", space_sdk="gradio")
        with tempfile.TemporaryDirectory(prefix="rvernet-space-") as staged:
            write_space(Path(staged), repo_id, space_id)
            api.upload_folder(
                repo_id=space_id, folder_path=staged, repo_type="space", commit_message=f"Serve {repo_id}"
            )
    return commit


def check_push_ids(folder: str | os.PathLike, repo_id: str, space_id: str | None, sam_model_id: str | None) -> None:
    """Refuse, before anything is uploaded or written, ids the Hub would refuse or that would not serve: `repo_id` and
    `space_id` must be `namespace/name` as the Hub validates them; a Space serves RveRNet models only (its `app.py`
    runs `rvernet_hf.app`); `sam_model_id` goes into the upload, so it must be a Hub id, not a path here."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    for option, value in (("--repo_id", repo_id), ("--space_id", space_id), ("--sam_model_id", sam_model_id)):
        if value is None:
            continue
        if option == "--sam_model_id" and (os.path.isabs(value) or os.path.exists(value) or value.startswith(".")):
            raise ValueError(
                f"{option} {value!r} is a path on this machine; the upload is read elsewhere: give the segmenter's "
                "Hub id (e.g. facebook/sam-vit-base)."
            )
        try:
            validate_repo_id(value)
        except HFValidationError as error:
            raise ValueError(f"{option} {value!r} is not a valid Hub id: {error}") from None
        if value.count("/") != 1:
            raise ValueError(f"{option} {value!r} must be namespace/name (e.g. your-name/rvernet-deit-b).")
    model_type = json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    if space_id is not None and model_type != "rvernet":
        raise ValueError(
            f"--space_id: the Space serves RveRNet models (rvernet_hf.app), and {folder} holds a {model_type!r} "
            "model; push it without --space_id."
        )


SPACE_APP = '''"""A Gradio Space for the RveRNet model {repo_id} (rvernet-hf's `rvernet-hf app`): click an object in a
photo and read its label. RVERNET_MODEL serves another model (a Hub id or a local folder), RVERNET_SAM_MODEL another
segmenter. The package itself (rvernet_hf {version}) is in this Space, beside this file; requirements.txt holds what
it needs from PyPI."""

import os

from rvernet_hf.app import RveRNetApp, launch


app = RveRNetApp(
    os.environ.get("RVERNET_MODEL", "{repo_id}"),
    sam_model_name_or_path=os.environ.get("RVERNET_SAM_MODEL") or None,
)
launch(app, host=None, port=None)  # Spaces set GRADIO_SERVER_NAME / GRADIO_SERVER_PORT
'''


def space_requirements() -> str:
    """The Space's `requirements.txt`: what this package and its `app` extra need, from PyPI (as its metadata declares
    them). The package itself is not on an index: the Space holds it (`write_space`)."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    try:
        declared = requires("rvernet-hf") or []
    except PackageNotFoundError:  # running from a source tree that was never installed
        raise RuntimeError("rvernet-hf is not installed (pip install -e .): its requirements are unknown.") from None
    lines = []
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            if not requirement.marker.evaluate({"extra": "app"}):
                continue  # another extra's
            requirement.marker = None  # the `app` extra's
        if requirement.name != "rvernet-hf":
            lines.append(str(requirement))
    return "".join(f"{line}\n" for line in sorted(set(lines)))


def _copy_package(target: Path) -> None:
    """This package's source (what its wheel holds: modules, templates, metric scripts) into `target`/rvernet_hf."""
    source = Path(__file__).resolve().parent
    shutil.copytree(source, target / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def write_space(target: str | os.PathLike, repo_id: str, space_id: str) -> list[str]:
    """Write a Gradio Space that serves `repo_id` through `rvernet_hf.app`: `README.md` (the Space's front matter:
    `sdk: gradio`, `app_file`, `models`), `app.py`, this package (`rvernet_hf/`, imported from beside `app.py`: it is
    on no index) and `requirements.txt` (what the package and its `app` extra need, from PyPI). Returns the names."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    try:
        gradio_version = version("gradio")
    except PackageNotFoundError:
        gradio_version = "6.0.0"
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    if (target / "rvernet_hf").exists():
        raise ValueError(f"{target / 'rvernet_hf'} exists: write the Space into an empty folder.")
    name = repo_id.split("/")[-1]
    files = {
        "README.md": (
            f"---\ntitle: {name}\nemoji: 🍽️\ncolorFrom: yellow\ncolorTo: red\nsdk: gradio\n"
            f"sdk_version: {gradio_version}\napp_file: app.py\nmodels:\n- {repo_id}\nlicense: apache-2.0\n"
            f"short_description: Click an object in a photo; RveRNet labels it\n---\n\n"
            f"# {name}\n\nThe RveRNet model [{repo_id}](https://huggingface.co/{repo_id}) on a page: drop a photo, click "
            "the object (or draw a box, upload a mask, ask for every object) and read its label, with what each tower "
            "saw. Programs call the `/classify` endpoint with `gradio_client` "
            f'(`Client("{space_id}").predict(handle_file("photo.jpg"), \'{{"points": [[120, 80]]}}\', '
            'api_name="/classify")`).\n'
        ),
        "app.py": SPACE_APP.replace("{repo_id}", repo_id).replace("{version}", __version__),
        "requirements.txt": space_requirements(),
    }
    for file_name, text in files.items():
        with replaced_atomically(target / file_name) as temporary:
            Path(temporary).write_text(text, encoding="utf-8")
    _copy_package(target)
    return sorted([*files, "rvernet_hf"])


def _stage_upload(
    folder: str | os.PathLike,
    files: list[str],
    target: Path,
    sam_model_id: str | None,
    repo_id: str,
    space_id: str | None = None,
) -> list[str]:
    """Copy the files to upload into `target`, with a processor config that names its segmenter portably and a card
    whose code names the repository being uploaded (it was rendered with the folder's or another name)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy2(Path(folder) / name, target / name)
    if json.loads((target / "config.json").read_text()).get("model_type") == "rvernet":
        save_prompted_pipeline(target)  # every upload carries the prompted pipeline, however the folder was saved
    card = target / "README.md"
    if card.exists():
        text = card.read_text()
        text = re.sub(r'(pipeline\([^)]*?model=)"[^"]*"', rf'\1"{repo_id}"', text)
        text = re.sub(r"(rvernet-hf predict \S+ --model )\S+", rf"\g<1>{repo_id}", text)
        if space_id:  # under the title: where to try it
            link = f"\n**Try it on a page:** the Space [{space_id}](https://huggingface.co/spaces/{space_id}).\n"
            text = re.sub(r"^(# .*\n)", lambda match: match.group(1) + link, text, count=1, flags=re.MULTILINE)
        card.write_text(text)
    processor_file = target / "preprocessor_config.json"
    if not processor_file.exists():
        return sorted(path.name for path in target.iterdir() if path.is_file())
    settings = json.loads(processor_file.read_text())
    named = settings.get("sam_model_name_or_path")
    if named and (os.path.isabs(named) or os.path.exists(named) or os.path.exists(Path(folder) / named)):
        from .segmenters_rvernet import DEFAULT_SEGMENTER

        portable = sam_model_id or DEFAULT_SEGMENTER
        logger.warning(
            f"{Path(folder) / 'preprocessor_config.json'} names its segmenter by a path on this machine ({named}); "
            f"the upload names {portable} instead (set it with sam_model_id / --sam_model_id)."
        )
        settings["sam_model_name_or_path"] = portable
        processor_file.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    return sorted(path.name for path in target.iterdir() if path.is_file())


__all__ = [
    "TEMPLATE_PATH",
    "check_folder",
    "check_push_ids",
    "export_model",
    "files_to_upload",
    "push_folder",
    "render_model_card",
    "save_prompted_pipeline",
    "space_requirements",
    "verify_reload",
    "write_space",
]
