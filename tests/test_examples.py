"""Every script in examples/ runs, at tiny size."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


EXAMPLES = Path(__file__).parents[1] / "examples"
TINY = [
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "8",
    "--use_cpu",
    "--save_strategy",
    "no",
    "--eval_strategy",
    "no",
    "--disable_tqdm",
    "true",
]


def example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_teacher_then_image_folder_then_inference_then_push(tmp_path, synthetic_data, tower_dir):
    from rvernet_hf.training import main as train

    teacher = example("train_teacher")
    train(
        [
            *teacher.DEFAULTS,
            "--image_size",
            "32",
            "--train_dir",
            str(synthetic_data / "train"),
            "--validation_dir",
            str(synthetic_data / "validation"),
            "--output_dir",
            str(tmp_path / "teacher"),
            *TINY,
        ]
    )
    results = example("finetune_image_folder").main(
        [
            "--data_dir",
            str(synthetic_data),
            "--teacher",
            str(tmp_path / "teacher"),
            "--output_dir",
            str(tmp_path / "rvernet"),
            "--roi_model_name_or_path",
            str(tower_dir),
            "--context_model_name_or_path",
            str(tower_dir),
            "--from_scratch",
            *TINY,
        ]
    )
    assert "eval_accuracy" in results
    image = next((synthetic_data / "validation" / "ketchup").glob("*.png"))
    mask = synthetic_data / "validation_masks" / "ketchup" / image.name
    predictions = example("inference_pipeline").main(
        [str(image), "--model", str(tmp_path / "rvernet"), "--mask", str(mask)]
    )
    assert predictions[0]["prompt"] == "mask" and len(predictions[0]["labels"]) == 5
    where = example("push_to_hub").main(
        [str(tmp_path / "rvernet"), "--repo_id", "me/x", "--dry_run_dir", str(tmp_path / "upload")]
    )
    assert (Path(where) / "model.safetensors").exists() and (Path(where) / "pipeline_rvernet.py").exists()


@pytest.mark.slow
def test_foodseg103_layout(tmp_path, tower_dir):
    from rvernet_hf.synthetic import render_scene

    root = tmp_path / "FoodSeg103"
    (root / "category_id.txt").parent.mkdir(parents=True)
    (root / "category_id.txt").write_text("0\tbackground\n1\tketchup\n2\tbread\n")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 4)):
        (root / "Images" / "img_dir" / split).mkdir(parents=True)
        (root / "Images" / "ann_dir" / split).mkdir(parents=True)
        for i in range(count):
            label = ("ketchup", "bread")[i % 2]
            pixels, mask, _ = render_scene(label, 32, rng)
            Image.fromarray(pixels).save(root / "Images" / "img_dir" / split / f"{i}.jpg")
            Image.fromarray((mask * (1 + i % 2)).astype(np.uint8)).save(
                root / "Images" / "ann_dir" / split / f"{i}.png"
            )
    results = example("finetune_foodseg103").main(
        [
            "--foodseg_dir",
            str(root),
            "--output_dir",
            str(tmp_path / "out"),
            "--roi_model_name_or_path",
            str(tower_dir),
            "--context_model_name_or_path",
            str(tower_dir),
            "--from_scratch",
            *TINY,
        ]
    )
    assert "eval_accuracy" in results
    import json

    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert sorted(config["id2label"].values()) == ["bread", "ketchup"]  # background dropped


def test_accelerate_config_is_multi_gpu_bf16():
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(EXAMPLES / "accelerate_multi_gpu_bf16.yaml")
    assert config.mixed_precision == "bf16" and config.num_processes == 8
    assert str(config.distributed_type).endswith("MULTI_GPU")
