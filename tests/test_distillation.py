"""The distillation Trainer: arguments, the loss, the frozen teacher, cached logits, gradient accumulation, bf16,
resume, and a 2-process (gloo) run against a 1-process run."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import rvernet_args
from rvernet_hf.data import RveRNetTransform, add_sample_index, augmentation_epoch_callback, load_image_folder_dataset
from rvernet_hf.distillation import (
    DistillationTrainingArguments,
    RveRNetDistillationTrainer,
    check_teacher_labels,
    compute_teacher_logits,
    distillation_loss,
    load_teacher,
)
from rvernet_hf.testing_utils import python_command


def training_args(tmp_path, **overrides):
    settings = {
        "output_dir": str(tmp_path / "out"),
        "report_to": "none",
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 4,
        "learning_rate": 1e-3,
        "max_steps": 3,
        "logging_steps": 1,
        "save_strategy": "no",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    settings.update(overrides)
    return DistillationTrainingArguments(**settings)


def student_and_data(synthetic_data, tower_dir, teacher=None, train=False):
    from rvernet_hf.training import DataArguments, ModelArguments, build_model

    dataset = load_image_folder_dataset(synthetic_data / "train", synthetic_data / "train_masks")
    id2label = dict(enumerate(dataset.features["label"].names))
    model_args = ModelArguments(
        roi_model_name_or_path=str(tower_dir),
        context_model_name_or_path=str(tower_dir),
        from_scratch=True,
        fusion_hidden_size=16,
    )
    torch.manual_seed(0)
    model, processor, _ = build_model(model_args, id2label)
    assert DataArguments  # the dataclass the script parses into
    kwargs = {"teacher_processor": teacher.input_processor()} if teacher is not None else {}
    transform = RveRNetTransform(processor, train=train, **kwargs)
    return model, dataset, transform


# ------------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"distillation_type": "medium"}, "distillation_type"),
        ({"distillation_type": "soft", "teacher_model_name_or_path": "t", "distillation_alpha": 1.5}, "alpha"),
        ({"distillation_type": "soft", "teacher_model_name_or_path": "t", "distillation_alpha": -0.1}, "alpha"),
        (
            {"distillation_type": "soft", "teacher_model_name_or_path": "t", "distillation_temperature": 0.0},
            "temperature",
        ),
        ({"distillation_type": "hard"}, "teacher_model_name_or_path"),
        (
            {
                "distillation_type": "hard",
                "teacher_model_name_or_path": "t",
                "cache_teacher_logits": True,
                "teacher_input": "augmented_full_image",
            },
            "cache_teacher_logits",
        ),
        ({"teacher_input": "roi"}, "teacher_input"),
    ],
)
def test_arguments_are_validated(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        training_args(tmp_path, **overrides)


def test_arguments_keep_image_columns_by_default(tmp_path):
    assert training_args(tmp_path).remove_unused_columns is False


def test_dataloader_workers_persist_by_default_when_there_are_any(tmp_path):
    """Issue 25: workers keep the photos they decoded only if they live from one epoch to the next; with no worker
    the flag stays off (torch refuses persistent workers without any), and a user's choice is kept."""
    assert training_args(tmp_path).dataloader_persistent_workers is False
    assert training_args(tmp_path, dataloader_num_workers=2).dataloader_persistent_workers is True
    chosen = training_args(tmp_path, dataloader_num_workers=2, dataloader_persistent_workers=False)
    assert chosen.dataloader_persistent_workers is False
    # On the command line as transformers' bool flags parse: the flag alone, a value, or nothing (auto).
    from transformers import HfArgumentParser

    parser = HfArgumentParser(DistillationTrainingArguments)
    base = ["--output_dir", str(tmp_path / "cli"), "--report_to", "none", "--dataloader_num_workers", "1"]
    for extra, expected in (([], True), (["--dataloader_persistent_workers"], True),
                            (["--dataloader_persistent_workers", "false"], False)):  # fmt: skip
        (parsed,) = parser.parse_args_into_dataclasses(base + extra)
        assert parsed.dataloader_persistent_workers is expected, extra


# ------------------------------------------------------------------------------------------- the loss


def test_soft_loss_is_temperature_scaled_batchmean_kl():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    temperature = 2.0
    per_sample = distillation_loss(student, teacher, "soft", temperature)
    expected = (
        F.kl_div(F.log_softmax(student / temperature, -1), F.softmax(teacher / temperature, -1), reduction="batchmean")
        * temperature**2
    )
    assert per_sample.shape == (6,)
    torch.testing.assert_close(per_sample.mean(), expected)
    # Zero when the student equals the teacher.
    assert distillation_loss(teacher, teacher, "soft", temperature).abs().max() < 1e-6


def test_hard_loss_is_cross_entropy_against_teacher_argmax():
    torch.manual_seed(1)
    student, teacher = torch.randn(7, 4), torch.randn(7, 4)
    expected = F.cross_entropy(student, teacher.argmax(-1), reduction="none")
    torch.testing.assert_close(distillation_loss(student, teacher, "hard"), expected)


def test_loss_refuses_other_label_counts():
    with pytest.raises(ValueError, match="label set"):
        distillation_loss(torch.randn(2, 5), torch.randn(2, 1000), "soft")


# ------------------------------------------------------------------------------------------- the teacher


def test_teacher_labels_must_match():
    student = {0: "ketchup", 1: "chili paste"}
    check_teacher_labels({0: "ketchup", 1: "chili paste"}, student)
    with pytest.raises(ValueError, match="has 1000 labels but the student has 2.*model_type single"):
        check_teacher_labels({i: f"class {i}" for i in range(1000)}, student, "imagenet-cnn")
    with pytest.raises(ValueError, match="'chili paste'"):
        check_teacher_labels({0: "ketchup", 1: "mustard"}, student)


def test_frozen_teacher_stays_in_eval_mode_without_gradients(tiny_teacher_dir):
    teacher = load_teacher(str(tiny_teacher_dir))
    teacher.train()
    assert not teacher.training and not teacher.model.training
    assert not any(p.requires_grad for p in teacher.parameters())
    # Its own input facts travel with it (24 px, mean 0.5, std 0.25), not the towers'.
    processor = teacher.input_processor()
    assert processor.size == (24, 24)
    assert processor.std == [0.25] * 3
    assert teacher(torch.randn(2, 3, 24, 24)).shape == (2, 5)


def test_trainer_refuses_a_teacher_with_other_labels_before_training(tmp_path, synthetic_data, tower_dir):
    from transformers import ResNetForImageClassification

    from conftest import tiny_tower_config

    model, dataset, transform = student_and_data(synthetic_data, tower_dir)
    imagenet_like = ResNetForImageClassification(tiny_tower_config("resnet", num_labels=10))
    args = training_args(tmp_path, distillation_type="soft", teacher_model_name_or_path="resnet-10")
    with pytest.raises(ValueError, match="has 10 labels but the student has 5"):
        RveRNetDistillationTrainer(
            model=model, args=args, teacher_model=imagenet_like, train_dataset=dataset.with_transform(transform)
        )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------------------- the trainer


def one_batch(dataset, transform, size=4):
    return transform(dataset[:size])


@pytest.mark.parametrize("distillation_type", ["soft", "hard"])
def test_compute_loss_combines_task_and_teacher_terms(
    tmp_path, synthetic_data, tower_dir, tiny_teacher_dir, distillation_type
):
    teacher = load_teacher(str(tiny_teacher_dir))
    model, dataset, transform = student_and_data(synthetic_data, tower_dir, teacher)
    args = training_args(
        tmp_path,
        distillation_type=distillation_type,
        distillation_alpha=0.3,
        distillation_temperature=2.0,
        teacher_model_name_or_path=str(tiny_teacher_dir),
    )
    trainer = RveRNetDistillationTrainer(model=model, args=args, teacher_model=teacher)
    batch = one_batch(dataset, transform)
    model.eval()
    loss = trainer.compute_loss(model, dict(batch))
    with torch.no_grad():
        logits = model(
            roi_pixel_values=batch["roi_pixel_values"], context_pixel_values=batch["context_pixel_values"]
        ).logits
        teacher_logits = teacher(batch["teacher_pixel_values"])
    task = F.cross_entropy(logits, batch["labels"])
    distill = distillation_loss(logits, teacher_logits, distillation_type, 2.0).mean()
    torch.testing.assert_close(loss, 0.7 * task + 0.3 * distill, rtol=1e-5, atol=1e-6)
    # The teacher saw its own 24 px input, not the 32 px cut-outs.
    assert batch["teacher_pixel_values"].shape[-2:] == (24, 24)


def test_the_task_term_is_the_models_own_loss_with_ignored_labels_and_multi_label(
    tmp_path, synthetic_data, tower_dir, tiny_teacher_dir
):
    """One task-loss path: the student's own loss (what training without distillation minimises), so -100 labels
    and multi-label problems behave as they do without a teacher; the distillation term leaves -100 samples out."""
    teacher = load_teacher(str(tiny_teacher_dir))
    model, dataset, transform = student_and_data(synthetic_data, tower_dir, teacher)
    args = training_args(
        tmp_path, distillation_type="soft", distillation_alpha=0.4, teacher_model_name_or_path=str(tiny_teacher_dir)
    )
    trainer = RveRNetDistillationTrainer(model=model, args=args, teacher_model=teacher)
    batch = one_batch(dataset, transform)
    batch["labels"][1] = -100
    model.eval()
    loss = trainer.compute_loss(model, dict(batch))
    inputs = {k: batch[k] for k in ("roi_pixel_values", "context_pixel_values")}
    with torch.no_grad():
        own = model(**inputs, labels=batch["labels"]).loss
        logits = model(**inputs).logits
        teacher_logits = teacher(batch["teacher_pixel_values"])
    kept = batch["labels"] != -100
    distill = distillation_loss(logits[kept], teacher_logits[kept], "soft").mean()
    torch.testing.assert_close(loss, 0.6 * own + 0.4 * distill, rtol=1e-5, atol=1e-6)

    model.config.problem_type = "multi_label_classification"
    multi_hot = torch.nn.functional.one_hot(batch["labels"].clamp_min(0), 5).float()
    multi_hot[0, 3] = 1.0
    multi = {**batch, "labels": multi_hot}
    loss = trainer.compute_loss(model, dict(multi))
    with torch.no_grad():
        own = model(**inputs, labels=multi_hot).loss  # transformers' multi-label loss (BCE with logits)
    distill = distillation_loss(logits, teacher_logits, "soft", multi_label=True).mean()
    torch.testing.assert_close(loss, 0.6 * own + 0.4 * distill, rtol=1e-5, atol=1e-6)
    expected = F.binary_cross_entropy_with_logits(logits, torch.sigmoid(teacher_logits), reduction="none").mean(-1)
    torch.testing.assert_close(distillation_loss(logits, teacher_logits, "soft", multi_label=True), expected)


def test_none_is_the_plain_trainer_loss(tmp_path, synthetic_data, tower_dir):
    model, dataset, transform = student_and_data(synthetic_data, tower_dir)
    trainer = RveRNetDistillationTrainer(model=model, args=training_args(tmp_path))
    batch = one_batch(dataset, transform)
    model.eval()
    with torch.no_grad():
        expected = model(**batch).loss
        got = trainer.compute_loss(model, dict(batch))
    torch.testing.assert_close(got, expected)


def test_training_logs_both_terms_and_keeps_the_teacher_frozen(tmp_path, synthetic_data, tower_dir, tiny_teacher_dir):
    teacher = load_teacher(str(tiny_teacher_dir))
    before = {k: v.clone() for k, v in teacher.state_dict().items()}  # batch-norm running stats included
    model, dataset, transform = student_and_data(synthetic_data, tower_dir, teacher, train=True)
    args = training_args(
        tmp_path,
        distillation_type="soft",
        teacher_model_name_or_path=str(tiny_teacher_dir),
        eval_strategy="steps",
        eval_steps=3,
    )
    trainer = RveRNetDistillationTrainer(
        model=model,
        args=args,
        teacher_model=teacher,
        train_dataset=dataset.with_transform(transform),
        eval_dataset=dataset.select(range(8)).with_transform(
            RveRNetTransform(transform.processor, teacher_processor=transform.teacher_processor)
        ),
    )
    trainer.train()
    train_logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(train_logs) == 3
    assert all("task_loss" in entry and "distillation_loss" in entry for entry in train_logs)
    eval_logs = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert "eval_task_loss" in eval_logs[0] and "eval_distillation_loss" in eval_logs[0]
    assert not trainer.teacher.training
    for key, value in trainer.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_cached_teacher_logits_replace_the_teacher(tmp_path, synthetic_data, tower_dir, tiny_teacher_dir):
    teacher = load_teacher(str(tiny_teacher_dir))
    model, dataset, transform = student_and_data(synthetic_data, tower_dir, teacher)
    cached = compute_teacher_logits(dataset, teacher, batch_size=5, device="cpu")
    assert len(cached[0]["teacher_logits"]) == 5
    online = one_batch(dataset, transform)
    with torch.no_grad():
        expected = teacher(online["teacher_pixel_values"])
    offline = one_batch(cached, RveRNetTransform(transform.processor))
    torch.testing.assert_close(offline["teacher_logits"], expected, rtol=1e-5, atol=1e-5)

    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    args = training_args(
        tmp_path,
        distillation_type="hard",
        teacher_model_name_or_path=str(tiny_teacher_dir),
        cache_teacher_logits=True,
        max_steps=4,
    )
    trainer = RveRNetDistillationTrainer(
        model=model, args=args, train_dataset=cached.with_transform(RveRNetTransform(transform.processor, train=True))
    )
    assert trainer.teacher is None  # never loaded: the logits are in the data
    trainer.train()
    assert calls == []


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_gradient_accumulation_equals_the_big_batch(tmp_path, synthetic_data, tower_dir, tiny_teacher_dir):
    """2 x 4 samples accumulated = 8 samples at once (the loss is normalised over the accumulated batch)."""
    teacher = load_teacher(str(tiny_teacher_dir))
    results = []
    for batch_size, accumulation in ((8, 1), (4, 2)):
        model, dataset, transform = student_and_data(synthetic_data, tower_dir, teacher)
        args = training_args(
            tmp_path / f"{batch_size}",
            distillation_type="soft",
            max_steps=2,
            teacher_model_name_or_path=str(tiny_teacher_dir),
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            learning_rate=1e-2,
        )
        trainer = RveRNetDistillationTrainer(
            model=model, args=args, teacher_model=teacher, train_dataset=dataset.with_transform(transform)
        )
        trainer.train()
        results.append(_weights(model))
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], rtol=1e-4, atol=1e-5, msg=key)


def test_bf16_mixed_precision_runs_on_cpu(tmp_path, synthetic_data, tower_dir, tiny_teacher_dir):
    teacher = load_teacher(str(tiny_teacher_dir))
    model, dataset, transform = student_and_data(synthetic_data, tower_dir, teacher)
    args = training_args(tmp_path, bf16=True, distillation_type="hard", teacher_model_name_or_path="t")
    trainer = RveRNetDistillationTrainer(
        model=model, args=args, teacher_model=teacher, train_dataset=dataset.with_transform(transform)
    )
    seen = []
    model.classifier.out_proj.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert torch.bfloat16 in seen  # autocast reached the student
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


# ------------------------------------------------------------------------------------------- reliability


class StopAt:
    """A callback that kills the run after `step` (as a crash would, right after a checkpoint)."""

    def __new__(cls, step):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= step:
                    control.should_training_stop = True

        return _Stop()


def test_resume_after_a_kill_ends_with_the_same_weights(tmp_path, synthetic_data, tower_dir, tiny_teacher_dir):
    teacher = load_teacher(str(tiny_teacher_dir))

    def trainer_for(output_dir, callbacks=()):
        model, dataset, transform = student_and_data(synthetic_data, tower_dir, teacher, train=True)
        transform.seed = 0  # augmentations drawn per (seed, epoch, sample): the prefetched batch cannot shift them
        args = training_args(
            output_dir,
            max_steps=12,
            save_strategy="steps",
            save_steps=5,
            distillation_type="soft",
            teacher_model_name_or_path="t",
            learning_rate=1e-2,
        )
        return RveRNetDistillationTrainer(
            model=model,
            args=args,
            teacher_model=teacher,
            train_dataset=add_sample_index(dataset).with_transform(transform),
            callbacks=[augmentation_epoch_callback(transform), *callbacks],
        )

    straight = trainer_for(tmp_path / "straight")
    straight.train()
    killed = trainer_for(tmp_path / "killed", callbacks=[StopAt(5)])  # 12 steps span 2 epochs of 8 batches
    killed.train()
    assert killed.state.global_step == 5
    assert not torch.allclose(killed.model.classifier.out_proj.weight, straight.model.classifier.out_proj.weight)
    resumed = trainer_for(tmp_path / "killed")
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 12
    for key, value in _weights(straight.model).items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.slow
@pytest.mark.parametrize(("token_selection", "cached_teacher"), [("dense", True), ("mask", False)])
def test_two_process_gloo_run_matches_one_process(
    tmp_path, synthetic_data, tower_dir, tiny_teacher_dir, token_selection, cached_teacher
):
    """torchrun, 2 CPU processes (gloo) x batch 4 = 1 process x batch 8: same weights after 3 steps (token-sparse
    towers too: each process pads its own batch, and padding changes nothing; cached teacher logits too: each
    process computes those of its own mask-cache shards)."""
    teacher = ["--distillation_type", "hard", "--teacher_model_name_or_path", str(tiny_teacher_dir)]
    common = [
        *(teacher + ["--cache_teacher_logits"] if cached_teacher else []),
        *rvernet_args(synthetic_data, tower_dir),
        "--do_train",
        "--max_steps",
        "3",
        "--learning_rate",
        "1e-2",
        "--report_to",
        "none",
        "--use_cpu",
        "--save_strategy",
        "no",
        "--seed",
        "0",
        "--dataloader_num_workers",
        "0",
        "--token_selection",
        token_selection,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    single = subprocess.run(
        [
            *python_command("rvernet_hf.cli", "train"),
            *common,
            "--output_dir",
            str(tmp_path / "one"),
            "--per_device_train_batch_size",
            "8",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    double = subprocess.run(
        [
            *python_command("rvernet_hf.cli", "train", processes=2),
            *common,
            "--output_dir",
            str(tmp_path / "two"),
            "--per_device_train_batch_size",
            "4",
            "--ddp_backend",
            "gloo",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one = load_file(tmp_path / "one" / "model.safetensors")
    two = load_file(tmp_path / "two" / "model.safetensors")
    state = json.loads((tmp_path / "two" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)


def test_runs_without_a_teacher_use_the_plain_rvernet_trainer(tmp_path, synthetic_data, tower_dir):
    """`RveRNetTrainer` alone: complete checkpoints (no staging folder left), and loss parts that a subclass records
    are logged beside the loss."""
    from rvernet_hf.run_folder import STAGING_DIR
    from rvernet_hf.trainer import RveRNetTrainer

    assert issubclass(RveRNetDistillationTrainer, RveRNetTrainer)

    class DoubledLossTrainer(RveRNetTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self.record_loss_parts(model, doubled=2 * (loss[0] if return_outputs else loss))
            return loss

    model, dataset, transform = student_and_data(synthetic_data, tower_dir, train=True)
    args = training_args(tmp_path, max_steps=4, save_strategy="steps", save_steps=2)
    trainer = DoubledLossTrainer(
        model=model, args=args, train_dataset=add_sample_index(dataset).with_transform(transform)
    )
    trainer.train()
    out = Path(args.output_dir)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert all((out / name / "trainer_state.json").is_file() for name in ("checkpoint-2", "checkpoint-4"))
    assert not (out / STAGING_DIR).exists()
    logged = [entry for entry in trainer.state.log_history if "doubled" in entry]
    assert len(logged) == 4
    for entry in logged:
        assert entry["doubled"] == pytest.approx(2 * entry["loss"], rel=1e-3)
    from transformers import TrainerCallback

    steps = []

    class CountSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    resumed = DoubledLossTrainer(
        model=model,
        args=training_args(tmp_path, max_steps=6, save_strategy="steps", save_steps=2),
        train_dataset=add_sample_index(dataset).with_transform(transform),
        callbacks=[CountSteps()],
    )
    resumed.train(resume_from_checkpoint=True)  # the newest complete checkpoint
    assert steps == [5, 6]


@pytest.mark.slow
def test_torchrun_on_a_machine_without_gpus_and_without_use_cpu_says_what_to_do(tmp_path, synthetic_data, tower_dir):
    """Issue 24.4: both processes used to run as rank 0, and the output-folder lock stopped the second with "another
    training run is writing to ...". Now every process refuses at once, saying to add --use_cpu."""
    if torch.cuda.is_available():
        pytest.skip("with GPUs, torchrun without --use_cpu is the normal multi-GPU run")
    command = python_command(
        "rvernet_hf.cli",
        "train",
        *rvernet_args(synthetic_data, tower_dir),
        "--output_dir",
        str(tmp_path / "out"),
        "--max_steps",
        "1",
        "--report_to",
        "none",
        processes=2,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert done.stderr.count("launched as 2 processes (torchrun / accelerate launch)") == 2, done.stderr[-3000:]
    assert "add --use_cpu" in done.stderr and "another training run is writing" not in done.stderr
    assert not (tmp_path / "out").exists()
