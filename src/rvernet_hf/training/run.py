# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The training job's run, with its fixed ending: claim the output folder, train, save, log and save metrics,
evaluate, confusion matrix, curves, model card, push."""

import json
import logging as std_logging
import os
import sys
from pathlib import Path

import transformers
from transformers import set_seed
from transformers.utils import logging

from ..data import add_sample_index, augmentation_epoch_callback
from ..distillation import DistillationTrainingArguments, RveRNetDistillationTrainer
from ..labels import label2id_of, normalize_id2label
from ..run_folder import OutputDirLock, check_output_dir, find_resumable_checkpoint, incomplete_reason
from ..segmenters_rvernet import DEFAULT_SEGMENTER
from ..trainer import RveRNetTrainer
from .arguments import MODEL_TYPES, DataArguments, HubArguments, ModelArguments, check_paths, parse_args
from .build import build_model, build_teacher, build_transforms
from .splits import load_data, needs_masks, prepare_splits


logger = logging.get_logger(__name__)


def main(argv: list[str] | None = None) -> dict:
    """Run one training job; returns the final metrics (train and eval)."""
    model_args, data_args, training_args, hub_args = parse_args(argv)
    return run(model_args, data_args, training_args, hub_args)


def run(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: DistillationTrainingArguments,
    hub_args: HubArguments | None = None,
) -> dict:
    """Train and/or evaluate, then save, card and push (see the module docstring). Before any work a training run
    claims its `output_dir`: an earlier run there is resumed (`--resume_from_checkpoint True`: the newest complete
    checkpoint), replaced (`--overwrite_output_dir`) or refused, and a second run into the same folder is refused
    while this one holds its lock."""
    hub_args = hub_args or HubArguments()
    std_logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[std_logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(
        f"Process rank {training_args.process_index}, device {training_args.device}, "
        f"world size {training_args.world_size}, bf16 {training_args.bf16}, fp16 {training_args.fp16}"
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size == 1:  # each process would train alone, as the main one
        raise ValueError(
            f"launched as {launched} processes (torchrun / accelerate launch), but the training arguments see one "
            f"process on {training_args.device}: on a machine without GPUs add --use_cpu (the processes then train "
            "together over gloo), or launch a single process."
        )
    if model_args.model_type not in MODEL_TYPES:
        raise ValueError(f"--model_type must be one of {MODEL_TYPES}, got {model_args.model_type!r}.")
    if training_args.device.type == "cpu":
        training_args.dataloader_pin_memory = False  # nothing to pin to (avoids a warning per dataloader)
    push_wanted = training_args.push_to_hub or hub_args.push_dry_run_dir is not None
    training_args.push_to_hub = False  # pushed once at the end, by `push_folder`, after the parity check
    if push_wanted and not training_args.hub_model_id and hub_args.push_dry_run_dir is None:
        raise ValueError("--push_to_hub needs --hub_model_id (namespace/name).")

    check_paths(model_args, data_args, training_args)
    checkpoint, lock = claim_output_dir(training_args)
    try:
        return _run(model_args, data_args, training_args, hub_args, checkpoint, push_wanted)
    finally:
        if lock is not None:
            lock.release()


def encoded_images(dataset):
    """`dataset` with its image columns left encoded (`datasets.Image(decode=False)`): the training transforms read
    the bytes or paths (`load_image`, `load_mask`), decoding each once while it fits in --decoded_cache_mb."""
    import datasets

    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.Image) and feature.decode:
            dataset = dataset.cast_column(name, datasets.Image(decode=False))
    return dataset


def claim_output_dir(training_args: DistillationTrainingArguments):
    """(the checkpoint to resume from or None, the folder's lock or None), decided before any work (see `run`)."""
    if not training_args.do_train:
        return None, None
    resume = training_args.resume_from_checkpoint
    latest = resume in ("True", "true", True)
    if resume and not latest:  # an explicit checkpoint folder
        reason = incomplete_reason(resume) if os.path.isdir(resume) else "it does not exist"
        if reason is not None:
            raise ValueError(f"--resume_from_checkpoint {resume} cannot be resumed from: {reason}.")
        checkpoint = resume
    elif training_args.process_index == 0:
        checkpoint = check_output_dir(
            training_args.output_dir, resume=latest, overwrite=training_args.overwrite_output_dir
        )
    else:  # the other processes only read the folder (the main one deletes, with --overwrite_output_dir)
        checkpoint = find_resumable_checkpoint(training_args.output_dir) if latest else None
    lock = None
    if training_args.process_index == 0:
        lock = OutputDirLock(training_args.output_dir, command=" ".join(sys.argv)).acquire()
    if checkpoint:
        logger.info(f"Resuming from {checkpoint}.")
    return checkpoint, lock


def _run(model_args, data_args, training_args, hub_args, checkpoint, push_wanted) -> dict:
    from ..hub import push_folder, save_prompted_pipeline, verify_reload
    from ..metrics import ClassificationMetrics, resolve_label_ids, save_confusion_matrix
    from ..visualization import save_training_curves

    set_seed(training_args.seed)

    # ---- data, labels, model: every check happens here, before any training step
    data, layout = load_data(data_args, seed=training_args.seed)
    label_names = data["train"].features["label"].names
    id2label = normalize_id2label(label_names)
    ambiguous = [s.strip() for s in (data_args.ambiguous_labels or "").split(",") if s.strip()]
    resolve_label_ids(ambiguous, label2id_of(id2label))
    model, processor_to_save, preprocessing = build_model(model_args, id2label)
    if layout == "paired" and model_args.model_type != "rvernet":
        raise ValueError("the paired layout holds cut-outs only: it trains `--model_type rvernet`.")
    if layout == "paired" and model.config.token_selection == "mask":
        raise ValueError(
            "--token_selection mask needs ROI masks (which patches each tower reads); the paired layout holds "
            "cut-outs only. Use masks or an image folder, or --token_selection dense."
        )

    teacher = build_teacher(training_args, id2label, layout)
    # Every sample of every split read once, before the first step (checked; missing masks, cached teacher logits).
    data = prepare_splits(data, preprocessing, data_args, training_args, teacher, needs_masks(model_args, layout))
    train_transform, eval_transform = build_transforms(
        preprocessing, model_args, data_args, training_args, layout, teacher
    )
    # Augmentations are a pure function of (seed, epoch, sample index): resume and DDP see the same draws.
    # The transforms decode (and, within --decoded_cache_mb, keep) each photo themselves: `datasets` hands them the
    # encoded cells.
    train_dataset = add_sample_index(encoded_images(data["train"])).with_transform(train_transform)
    eval_dataset = add_sample_index(encoded_images(data["validation"])).with_transform(eval_transform)
    metrics_fn = ClassificationMetrics(id2label, ambiguous)

    # Without a teacher, the plain RveRNetTrainer; with cached logits the teacher's work is done: it is not kept.
    if training_args.distillation_type == "none":
        trainer_class, teacher_arguments = RveRNetTrainer, {}
    else:
        teacher_arguments = {"teacher_model": None if training_args.cache_teacher_logits else teacher}
        trainer_class = RveRNetDistillationTrainer
    trainer = trainer_class(
        model=model,
        args=training_args,
        **teacher_arguments,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        compute_metrics=metrics_fn,
        processing_class=processor_to_save,
        callbacks=[augmentation_epoch_callback(train_transform)],
    )

    results: dict = {}
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        drawn, skipped = train_transform.mask_augmentation_counts
        if drawn:  # a draw that cannot apply to its ROI (an erosion of a thin one) keeps the exact mask: say how often
            train_result.metrics["mask_augmentation_skipped"] = skipped
            train_result.metrics["mask_augmentation_drawn"] = drawn
            if skipped:
                logger.warning(
                    f"mask augmentation: {skipped} of {drawn} perturbations drawn in this process could not apply to "
                    f"their ROI ({skipped / drawn:.1%}) and kept the exact mask."
                )
        trainer.save_model()
        if trainer.is_world_process_zero() and model_args.model_type == "rvernet":
            save_prompted_pipeline(training_args.output_dir)
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
        trainer.save_state()
        results.update(train_result.metrics)
    if training_args.do_eval:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        results.update(eval_metrics)

    if trainer.is_world_process_zero():
        output_dir = Path(training_args.output_dir)
        if metrics_fn.last_result is not None:
            report = {k: metrics_fn.last_result[k] for k in ("per_class", "confusion_matrix")}
            (output_dir / "per_class_report.json").write_text(json.dumps(report, indent=2))
            save_confusion_matrix(
                metrics_fn.last_result["confusion_matrix"],
                label_names,
                output_dir / "confusion_matrix.png",
                title="evaluation",
            )
        save_training_curves(trainer.state.log_history, output_dir / "training_curves.png")
        if training_args.do_train:
            card = _model_card(
                model,
                model_args,
                data_args,
                training_args,
                hub_args,
                results,
                ambiguous,
                layout,
                sam_model=getattr(processor_to_save, "sam_model_name_or_path", None),
            )
            card.save(output_dir / "README.md")
            if push_wanted:
                verify_reload(trainer.accelerator.unwrap_model(trainer.model), output_dir)
                where = push_folder(
                    output_dir,
                    training_args.hub_model_id or output_dir.name,
                    revision=training_args.hub_revision,
                    create_pr=hub_args.hub_create_pr,
                    private=training_args.hub_private_repo,
                    token=training_args.hub_token,
                    dry_run_dir=hub_args.push_dry_run_dir,
                    sam_model_id=hub_args.hub_sam_model_id,
                )
                logger.info(f"Pushed: {where}")
                results["pushed"] = str(where)
        print(_written_summary(output_dir, results.get("pushed")), flush=True)
    # Every rank waits for the main one's writes, then the process group is torn down before the interpreter
    # exits: a live gloo group at exit can abort a rank ("terminate called without an active exception").
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return results


def _written_summary(output_dir: Path, pushed: str | None) -> str:
    """Where the run wrote what (printed at its end, as the demo does)."""
    described = [
        ("model.safetensors", "model weights (+ config.json, code files, preprocessor_config.json)"),
        ("README.md", "model card"),
        ("all_results.json", "metrics (train_results.json, eval_results.json)"),
        ("per_class_report.json", "per-class report"),
        ("confusion_matrix.png", "confusion matrix"),
        ("training_curves.png", "training curves"),
    ]
    lines = [f"[rvernet-hf train] wrote to {output_dir}:"]
    lines += [f"  {name:<24} {what}" for name, what in described if (output_dir / name).exists()]
    kept = sorted(p.name for p in output_dir.glob("checkpoint-*"))
    if kept:
        lines.append(f"  {'checkpoint-*':<24} {', '.join(kept)} (resume with --resume_from_checkpoint True)")
    if pushed:
        lines.append(f"  pushed to / dry run in   {pushed}")
    return "\n".join(lines)


def _model_card(model, model_args, data_args, training_args, hub_args, results, ambiguous, layout, sam_model=None):
    from ..hub import render_model_card

    dataset = (
        hub_args.model_card_dataset or data_args.dataset_name or Path(data_args.train_dir or data_args.paired_dir).name
    )
    metrics = {
        k[len("eval_") :]: v
        for k, v in results.items()
        if k in ("eval_accuracy", "eval_macro_f1", "eval_ambiguous_f1")
    }
    if model_args.model_type == "rvernet":
        base_model = sorted(
            {model_args.roi_model_name_or_path, model_args.context_model_name_or_path}
            if not model_args.model_name_or_path
            else {model_args.model_name_or_path}
        )
    else:
        base_model = [model_args.model_name_or_path]
    base_model = [] if model_args.from_scratch else [b for b in base_model if "/" in b and not os.path.isdir(b)]
    distillation = "none"
    if training_args.distillation_type != "none":
        distillation = (
            f"{training_args.distillation_type} from `{training_args.teacher_model_name_or_path}` "
            f"(alpha {training_args.distillation_alpha}, T {training_args.distillation_temperature}, "
            f"teacher input: {training_args.teacher_input})"
        )
    effective_batch = (
        training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * training_args.world_size
    )
    training = (
        f"Trained with `rvernet-hf train` ({model_args.model_type}"
        f"{', ' + model_args.single_view if model_args.model_type == 'single' else ''}) on `{dataset}` "
        f"({layout} layout): {training_args.num_train_epochs} epochs, learning rate {training_args.learning_rate}, "
        f"effective batch {effective_batch}, seed {training_args.seed}"
        f"{', bf16' if training_args.bf16 else ', fp16' if training_args.fp16 else ''}"
        f"{', from scratch (random initialisation)' if model_args.from_scratch else ''}."
    )
    name = training_args.hub_model_id or Path(training_args.output_dir).name
    hub_datasets = (
        [data_args.dataset_name] if data_args.dataset_name and not os.path.isdir(data_args.dataset_name) else []
    )
    summary = (
        ""
        if model_args.model_type == "rvernet"
        else (
            f"A single image classifier on the `{model_args.single_view}` view, trained with rvernet-hf as a distillation "
            "teacher or a baseline for RveRNet (this checkpoint is not an RveRNet model; use it with "
            "`pipeline('image-classification')`)."
        )
    )
    return render_model_card(
        model_name=name.split("/")[-1],
        repo_id=name,
        summary=summary,
        config=model.config,
        datasets=hub_datasets,
        base_model=base_model,
        metrics=metrics,
        dataset_name=dataset,
        sam_model=hub_args.hub_sam_model_id
        or (sam_model if sam_model and not os.path.exists(sam_model) else DEFAULT_SEGMENTER),
        distillation=distillation,
        training=training,
        ambiguous_labels=ambiguous,
    )
