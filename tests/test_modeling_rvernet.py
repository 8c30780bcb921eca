"""RveRNet config and model tests, in the pattern of transformers' own model tests."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    DeiTConfig,
    DeiTForImageClassificationWithTeacher,
    ResNetConfig,
)

from conftest import IMAGE_SIZE, TOWER_FAMILIES, tiny_tower_config
from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageClassifierOutput


class RveRNetModelTester:
    """Builds tiny inputs and checks outputs for one (roi family, context family, fusion) combination."""

    def __init__(self, roi_family="deit", context_family="resnet", fusion="logits", batch_size=3, num_labels=4):
        self.batch_size = batch_size
        self.num_labels = num_labels
        self.config = RveRNetConfig(
            roi_config=tiny_tower_config(roi_family, num_labels=7),
            context_config=tiny_tower_config(context_family, num_labels=5),
            fusion=fusion,
            fusion_hidden_size=24,
            num_labels=num_labels,
        )

    def prepare_inputs(self, with_labels=False, seed=0):
        generator = torch.Generator().manual_seed(seed)
        shape = (self.batch_size, 3, IMAGE_SIZE, IMAGE_SIZE)
        inputs = {
            "roi_pixel_values": torch.randn(shape, generator=generator),
            "context_pixel_values": torch.randn(shape, generator=generator),
        }
        if with_labels:
            inputs["labels"] = torch.randint(0, self.num_labels, (self.batch_size,), generator=generator)
        return inputs

    def create_and_check_model(self):
        torch.manual_seed(0)
        model = RveRNetForImageClassification(self.config).eval()
        with torch.no_grad():
            outputs = model(**self.prepare_inputs())
        assert isinstance(outputs, RveRNetImageClassifierOutput)
        assert outputs.logits.shape == (self.batch_size, self.num_labels)
        assert outputs.roi_logits.shape == (self.batch_size, model.roi_output_size)
        assert outputs.context_logits.shape == (self.batch_size, model.context_output_size)
        assert model.classifier.dense.in_features == model.roi_output_size + model.context_output_size
        assert outputs.loss is None
        assert torch.isfinite(outputs.logits).all()
        return model


# ---------------------------------------------------------------- config


def test_config_defaults_are_the_paper_shape():
    config = RveRNetConfig()
    assert config.model_type == "rvernet"
    assert isinstance(config.roi_config, DeiTConfig) and isinstance(config.context_config, DeiTConfig)
    assert config.roi_config.hidden_size == 768  # DeiT-B
    assert (config.fusion, config.fusion_hidden_size) == ("logits", 640)


def test_config_dict_and_json_round_trip(tiny_config, tmp_path):
    from_dict = RveRNetConfig.from_dict(tiny_config.to_dict())
    from_json = RveRNetConfig.from_json_file(_write(tmp_path / "c.json", tiny_config.to_json_string()))
    tiny_config.save_pretrained(tmp_path / "saved")
    from_folder = AutoConfig.from_pretrained(tmp_path / "saved")
    for config in (from_dict, from_json, from_folder):
        assert isinstance(config, RveRNetConfig)
        assert isinstance(config.roi_config, DeiTConfig)
        assert isinstance(config.context_config, ResNetConfig)
        assert config.roi_config.hidden_size == 32 and config.context_config.hidden_sizes == [8, 16]
        assert config.id2label == {0: "ketchup", 1: "chili paste", 2: "fries"}
        assert config.fusion_hidden_size == 24
        ignored = ("_name_or_path", "auto_map", "custom_pipelines")  # where it was loaded from; added by saving
        restored = {k: v for k, v in config.to_dict().items() if k not in ignored}
        assert restored == {k: v for k, v in tiny_config.to_dict().items() if k not in ignored}


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("family", TOWER_FAMILIES)
def test_config_round_trip_for_every_family(family):
    config = RveRNetConfig(roi_config=tiny_tower_config(family), context_config=tiny_tower_config("deit"))
    restored = RveRNetConfig.from_dict(json.loads(config.to_json_string()))
    assert type(restored.roi_config) is type(config.roi_config)
    assert restored.roi_config.num_labels == config.roi_config.num_labels
    assert restored.roi_config.architectures == config.roi_config.architectures


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="fusion"):
        RveRNetConfig(fusion="sum")
    with pytest.raises(ValueError, match="fusion_hidden_size"):
        RveRNetConfig(fusion_hidden_size=0)
    with pytest.raises(ValueError, match="classifier_dropout"):
        RveRNetConfig(classifier_dropout=1.5)


def test_features_fusion_drops_tower_heads():
    config = RveRNetConfig(
        roi_config=tiny_tower_config("deit"), context_config=tiny_tower_config("timm"), fusion="features"
    )
    assert config.roi_config.num_labels == 0 and config.context_config.num_labels == 0
    model = RveRNetForImageClassification(config)
    assert model.roi_output_size == 32  # DeiT hidden size
    assert model.context_output_size == model.context_model.timm_model.num_features
    assert not any("classifier" in name for name, _ in model.roi_model.named_parameters())


# ---------------------------------------------------------------- model


@pytest.mark.parametrize("fusion", ["logits", "features"])
@pytest.mark.parametrize("family", TOWER_FAMILIES)
def test_model_every_family(family, fusion):
    """Every family works as the ROI tower, paired with a tower of another family as context."""
    context_family = TOWER_FAMILIES[(TOWER_FAMILIES.index(family) + 3) % len(TOWER_FAMILIES)]
    tester = RveRNetModelTester(roi_family=family, context_family=context_family, fusion=fusion)
    model = tester.create_and_check_model()
    if fusion == "logits":
        assert model.roi_output_size == 7 and model.context_output_size == 5
    if family == "deit_distilled":
        assert isinstance(model.roi_model, DeiTForImageClassificationWithTeacher)


def test_loss_only_with_labels_and_backward_reaches_every_part():
    tester = RveRNetModelTester()
    model = RveRNetForImageClassification(tester.config).train()
    assert model(**tester.prepare_inputs()).loss is None
    outputs = model(**tester.prepare_inputs(with_labels=True))
    assert outputs.loss.ndim == 0 and outputs.loss.item() > 0
    outputs.loss.backward()
    for part in (model.roi_model, model.context_model, model.classifier):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), type(part).__name__
        assert sum(g.abs().sum().item() for g in grads) > 0


def test_loss_matches_cross_entropy_and_multi_label():
    tester = RveRNetModelTester()
    model = RveRNetForImageClassification(tester.config).eval()
    inputs = tester.prepare_inputs(with_labels=True)
    outputs = model(**inputs)
    expected = torch.nn.functional.cross_entropy(outputs.logits, inputs["labels"])
    torch.testing.assert_close(outputs.loss, expected)

    model.config.problem_type = "multi_label_classification"
    multi_hot = torch.zeros(tester.batch_size, tester.num_labels)
    multi_hot[:, 1] = 1.0
    outputs = model(
        roi_pixel_values=inputs["roi_pixel_values"],
        context_pixel_values=inputs["context_pixel_values"],
        labels=multi_hot,
    )
    torch.testing.assert_close(
        outputs.loss, torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits, multi_hot)
    )


def test_ignore_index_labels_are_accepted():
    tester = RveRNetModelTester()
    model = RveRNetForImageClassification(tester.config).eval()
    inputs = tester.prepare_inputs(with_labels=True)
    inputs["labels"][0] = -100
    loss = model(**inputs).loss
    expected = torch.nn.functional.cross_entropy(model(**inputs).logits[1:], inputs["labels"][1:])
    torch.testing.assert_close(loss, expected)


def test_batch_equals_items_one_by_one():
    tester = RveRNetModelTester(roi_family="deit_distilled", context_family="convnext")
    model = RveRNetForImageClassification(tester.config).eval()
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        batched = model(**inputs).logits
        single = torch.cat([model(**{k: v[i : i + 1] for k, v in inputs.items()}).logits for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_tuple_output_and_hidden_states():
    tester = RveRNetModelTester(roi_family="vit", context_family="swin")
    model = RveRNetForImageClassification(tester.config).eval()
    inputs = tester.prepare_inputs(with_labels=True)
    as_tuple = model(**inputs, return_dict=False)
    as_dict = model(**inputs)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_dict.loss)
    torch.testing.assert_close(as_tuple[1], as_dict.logits)
    assert as_dict.roi_hidden_states is None
    with_hidden = model(**inputs, output_hidden_states=True)
    assert len(with_hidden.roi_hidden_states) == 3  # embeddings + 2 layers
    assert with_hidden.roi_hidden_states[-1].shape[0] == tester.batch_size
    assert len(with_hidden.context_hidden_states) > 0


def test_save_load_equivalence_without_missing_keys(tmp_path):
    tester = RveRNetModelTester(roi_family="deit_distilled", context_family="mobilenet_v2")
    model = RveRNetForImageClassification(tester.config).eval()
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "config.json", "modeling_rvernet.py", "configuration_rvernet.py"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"] == {
        "AutoConfig": "configuration_rvernet.RveRNetConfig",
        "AutoModel": "modeling_rvernet.RveRNetModel",
        "AutoModelForImageClassification": "modeling_rvernet.RveRNetForImageClassification",
    }
    reloaded, info = AutoModelForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(reloaded, RveRNetForImageClassification)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(**inputs).logits, model(**inputs).logits, atol=0, rtol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"roi_pixel_values": None}, "roi_pixel_values` is missing"),
        ({"context_pixel_values": None}, "context_pixel_values` is missing"),
        ({"context_pixel_values": torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE)}, "different batch sizes"),
        ({"roi_pixel_values": torch.zeros(3, 1, IMAGE_SIZE, IMAGE_SIZE)}, "roi_pixel_values` has 1 channels"),
        ({"context_pixel_values": torch.zeros(3, IMAGE_SIZE, IMAGE_SIZE, 3)}, "context_pixel_values` has 30 channels"),
        ({"roi_pixel_values": torch.zeros(3, IMAGE_SIZE, IMAGE_SIZE)}, "roi_pixel_values` must be a 4-D tensor"),
        ({"labels": torch.tensor([0, 1, 4])}, r"labels` must be in \[0, 4\)"),
        ({"labels": torch.tensor([0, -1, 2])}, r"labels` must be in \[0, 4\)"),
        ({"labels": torch.tensor([0, 1])}, "`labels` has 2 entries"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, message):
    tester = RveRNetModelTester()
    model = RveRNetForImageClassification(tester.config)
    inputs = tester.prepare_inputs() | kwargs
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_towers_must_be_image_classifiers():
    from transformers import BertConfig

    with pytest.raises(ValueError, match="image-classification"):
        RveRNetForImageClassification(RveRNetConfig(roi_config=BertConfig(hidden_size=32), context_config=None))


# ---------------------------------------------------------------- pretrained towers


def _save_tower(family, path, num_labels=6, seed=0):
    from rvernet_hf.modeling_rvernet import build_tower

    torch.manual_seed(seed)
    tower = build_tower(tiny_tower_config(family, num_labels=num_labels))
    tower.save_pretrained(path)
    return tower


@pytest.mark.parametrize("fusion", ["logits", "features"])
def test_from_towers_pretrained_loads_tower_weights(tmp_path, fusion):
    roi = _save_tower("deit_distilled", tmp_path / "roi", seed=1)
    context = _save_tower("mobilenet_v2", tmp_path / "context", seed=2)
    model = RveRNetForImageClassification.from_towers_pretrained(
        str(tmp_path / "roi"),
        str(tmp_path / "context"),
        id2label={0: "a", 1: "b", 2: "c"},
        fusion=fusion,
        fusion_hidden_size=16,
    )
    assert model.config.num_labels == 3 and model.config.label2id == {"a": 0, "b": 1, "c": 2}
    assert model.config.fusion_hidden_size == 16
    assert isinstance(model.roi_model, DeiTForImageClassificationWithTeacher)
    for tower, loaded in ((roi, model.roi_model), (context, model.context_model)):
        loaded_state = loaded.state_dict()
        for name, tensor in tower.state_dict().items():
            if fusion == "features" and "classifier" in name:
                assert name not in loaded_state  # the tower's head is not used in features fusion
                continue
            torch.testing.assert_close(loaded_state[name], tensor, atol=0, rtol=0, msg=name)
    # The fused model round-trips like any other.
    model.save_pretrained(tmp_path / "fused")
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path / "fused")
    torch.testing.assert_close(
        reloaded.roi_model.state_dict()["deit.embeddings.cls_token"], roi.state_dict()["deit.embeddings.cls_token"]
    )


def test_from_towers_pretrained_routes_prefixed_kwargs(tmp_path):
    _save_tower("deit", tmp_path / "roi")
    _save_tower("resnet", tmp_path / "context")
    model = RveRNetForImageClassification.from_towers_pretrained(
        str(tmp_path / "roi"), str(tmp_path / "context"), roi_num_labels=9, classifier_dropout=0.1
    )
    assert model.roi_output_size == 9  # the ROI tower got a fresh 9-way head, the context tower kept its 6
    assert model.context_output_size == 6
    assert model.config.classifier_dropout == 0.1


# ---------------------------------------------------------------- runtime features


def test_gradient_checkpointing_gives_the_same_gradients():
    tester = RveRNetModelTester(roi_family="deit", context_family="vit")
    torch.manual_seed(0)
    model = RveRNetForImageClassification(tester.config).train()
    inputs = tester.prepare_inputs(with_labels=True)
    model(**inputs).loss.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.activation_checkpointing_enable()
    for tower in (model.roi_model, model.context_model):
        assert any(getattr(m, "gradient_checkpointing", False) for m in tower.modules())
    model(**inputs).loss.backward()
    for name, grad in reference.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-5, msg=name)


def test_attention_implementations_agree(tmp_path):
    tester = RveRNetModelTester(roi_family="deit", context_family="vit")
    RveRNetForImageClassification(tester.config).save_pretrained(tmp_path)
    inputs = tester.prepare_inputs()
    logits = {}
    for implementation in ("eager", "sdpa"):
        model = AutoModelForImageClassification.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert model.roi_model.config._attn_implementation == implementation
        assert model.context_model.config._attn_implementation == implementation
        with torch.no_grad():
            logits[implementation] = model(**inputs).logits
    torch.testing.assert_close(logits["eager"], logits["sdpa"], atol=1e-5, rtol=1e-4)


def test_bf16_autocast_on_cpu():
    tester = RveRNetModelTester(roi_family="deit", context_family="convnext")
    model = RveRNetForImageClassification(tester.config).train()
    inputs = tester.prepare_inputs(with_labels=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(**inputs)
    assert outputs.logits.dtype == torch.bfloat16
    outputs.loss.backward()
    assert model.classifier.dense.weight.grad is not None
    with torch.no_grad():
        full = model.eval()(**inputs).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(**inputs).logits.float()
    torch.testing.assert_close(half, full, atol=0.1, rtol=0.1)


def test_bf16_weights():
    tester = RveRNetModelTester(roi_family="deit", context_family="resnet")
    model = RveRNetForImageClassification(tester.config).to(torch.bfloat16).eval()
    inputs = {k: v.to(torch.bfloat16) for k, v in tester.prepare_inputs().items()}
    assert model(**inputs).logits.dtype == torch.bfloat16


@pytest.mark.slow
def test_torch_compile():
    tester = RveRNetModelTester(roi_family="deit", context_family="resnet")
    model = RveRNetForImageClassification(tester.config).eval()
    inputs = tester.prepare_inputs()
    with torch.no_grad():
        eager = model(**inputs).logits
        compiled = torch.compile(model)(**inputs).logits
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- Hub integration


def test_auto_classes_are_registered(tiny_config):
    assert isinstance(AutoConfig.for_model("rvernet"), RveRNetConfig)
    model = AutoModelForImageClassification.from_config(tiny_config)
    assert isinstance(model, RveRNetForImageClassification)


@pytest.mark.slow
def test_remote_code_reload_without_the_package(tmp_path):
    """A saved folder loads with `trust_remote_code=True` where `rvernet_hf` cannot be imported, with equal logits."""
    tester = RveRNetModelTester(roi_family="deit_distilled", context_family="timm", fusion="logits")
    model = RveRNetForImageClassification(tester.config).eval()
    model.save_pretrained(tmp_path / "model")
    inputs = tester.prepare_inputs()
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = model(**inputs).logits
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["rvernet_hf"] = None  # hide the package: `import rvernet_hf` now fails
        try:
            import rvernet_hf
            raise SystemExit("rvernet_hf is still importable")
        except ImportError:
            pass
        import torch
        from transformers import AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
        inputs = torch.load({str(tmp_path / "inputs.pt")!r}, weights_only=True)
        with torch.no_grad():
            torch.save(model.eval()(**inputs).logits, {str(tmp_path / "logits.pt")!r})
        from transformers import AutoModel
        base = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
        assert type(base).__name__ == "RveRNetModel" and type(base).__module__.startswith("transformers_modules.")
        with torch.no_grad():
            torch.testing.assert_close(base(**inputs).pooler_output, model.rvernet(**inputs).pooler_output)
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt", weights_only=True), expected, atol=0, rtol=0)


@pytest.mark.slow
def test_remote_code_processor_without_the_package(tmp_path):
    """A saved processor (with its flat modules: image I/O, prompts, segmentation, segmenters, token grid) loads with
    `trust_remote_code=True` where `rvernet_hf` cannot be imported, and gives the same cut-outs and token masks."""
    import numpy as np

    from rvernet_hf import RveRNetImageProcessor

    processor = RveRNetImageProcessor(size={"height": 32, "width": 32}, patch_size=8, auto_roi="center")
    processor.save_pretrained(tmp_path / "processor")
    image = np.random.default_rng(0).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    expected = processor(image)  # the automatic ROI (auto_roi="center": no segmenter)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["rvernet_hf"] = None
        import numpy as np, torch
        from transformers import AutoImageProcessor
        processor = AutoImageProcessor.from_pretrained({str(tmp_path / "processor")!r}, trust_remote_code=True)
        assert type(processor).__module__.startswith("transformers_modules."), type(processor).__module__
        batch = processor(np.load({str(tmp_path / "image.npy")!r}))
        torch.save(dict(batch), {str(tmp_path / "batch.pt")!r})
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    got = torch.load(tmp_path / "batch.pt", weights_only=True)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def _damage_first_float_tensor(weights_file, fill: bytes = b"\xff") -> str:
    """Overwrite the data of the safetensors file's first float32 tensor with NaN bytes, its header intact."""
    raw = bytearray(weights_file.read_bytes())
    header_size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_size])
    name = next(key for key, info in header.items() if key != "__metadata__" and info["dtype"] == "F32")
    start, end = header[name]["data_offsets"]
    raw[8 + header_size + start : 8 + header_size + end] = fill * (end - start)
    weights_file.write_bytes(bytes(raw))
    return name


def test_damaged_weights_are_refused_at_load_naming_the_file_and_tensor(tmp_path):
    """Issue 24.2: a weights file whose data bytes were damaged (header intact) used to load and give NaN scores."""
    from transformers import AutoModelForImageClassification

    tester = RveRNetModelTester(roi_family="deit", context_family="resnet")
    RveRNetForImageClassification(tester.config).save_pretrained(tmp_path)
    AutoModelForImageClassification.from_pretrained(tmp_path)  # intact: loads
    damaged = _damage_first_float_tensor(tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors: the file differs from the one saved \(its sha256"):
        AutoModelForImageClassification.from_pretrained(tmp_path)  # the checksum written at save tells first
    (tmp_path / "rvernet_weights.json").unlink()  # a folder saved elsewhere: the values are checked
    with pytest.raises(ValueError, match=r"model\.safetensors: the weight .* NaN or infinite value") as raised:
        AutoModelForImageClassification.from_pretrained(tmp_path)
    assert f"the weight {damaged} holds" in str(raised.value)
    with pytest.raises(ValueError, match="NaN or infinite"):
        RveRNetForImageClassification.from_pretrained(tmp_path, output_loading_info=True)


def test_the_finite_check_allows_minus_inf_buffers_and_refuses_inf_weights_and_nan_buffers():
    from torch import nn

    from rvernet_hf.weights_rvernet import check_finite_weights

    module = nn.Linear(3, 2)
    module.register_buffer("causal", torch.tensor([0.0, float("-inf")]))
    check_finite_weights(module, "folder")  # a -inf buffer is meant
    with torch.no_grad():
        module.weight[1, 2] = float("inf")
    with pytest.raises(ValueError, match=r"folder: the weight weight holds 1 NaN or infinite value\(s\) of 6"):
        check_finite_weights(module, "folder")
    with torch.no_grad():
        module.weight[1, 2] = 0.0
        module.causal[0] = float("nan")
    with pytest.raises(ValueError, match="the weight causal holds 1 NaN"):
        check_finite_weights(module, "folder")


def test_weights_damaged_into_finite_numbers_are_refused(tmp_path):
    """Issue 35.4: bytes that decode to finite numbers (sum |w| ~ 6e38) loaded and predicted. A folder this package
    writes carries its weights' sha256 (checked at load, naming the file); any folder's absurd magnitudes are
    refused."""
    import json

    from transformers import AutoModelForImageClassification

    tester = RveRNetModelTester(roi_family="deit", context_family="resnet")
    RveRNetForImageClassification(tester.config).save_pretrained(tmp_path)
    record = json.loads((tmp_path / "rvernet_weights.json").read_text())
    assert set(record) == {"model.safetensors"} and len(record["model.safetensors"]["sha256"]) == 64
    damaged = _damage_first_float_tensor(tmp_path / "model.safetensors", fill=b"\x7e")  # 0x7e7e7e7e: 8.4e37
    with pytest.raises(ValueError, match="differs from the one saved"):
        AutoModelForImageClassification.from_pretrained(tmp_path)
    (tmp_path / "rvernet_weights.json").unlink()
    message = rf"the weight {damaged} holds \d+ value\(s\) beyond 1e\+12 .*the largest 8\.4\d?e\+37"
    with pytest.raises(ValueError, match=message):
        AutoModelForImageClassification.from_pretrained(tmp_path)


def test_a_listed_weights_file_that_is_missing_is_named(tmp_path):
    from transformers import AutoModelForImageClassification

    from rvernet_hf.weights_rvernet import verify_checksums

    tester = RveRNetModelTester(roi_family="deit", context_family="resnet")
    RveRNetForImageClassification(tester.config).save_pretrained(tmp_path)
    AutoModelForImageClassification.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    with pytest.raises(ValueError, match="lists model.safetensors, which is not there"):
        verify_checksums(tmp_path)


def test_weights_given_as_a_state_dict_load_and_are_checked_too():
    """`from_pretrained(None, config=..., state_dict=...)` (transformers' API, used by its common tests) used to fail
    in the finite check with a TypeError; the weights given are checked and named as such."""
    tester = RveRNetModelTester(roi_family="deit", context_family="resnet")
    source = RveRNetForImageClassification(tester.config)
    state = {name: tensor.clone() for name, tensor in source.state_dict().items()}
    loaded = RveRNetForImageClassification.from_pretrained(None, config=tester.config, state_dict=state)
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, state[name], atol=0, rtol=0)
    first = next(name for name, tensor in state.items() if tensor.is_floating_point() and tensor.numel() > 1)
    state[first].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=rf"the weights given: the weight .*{first.split('.')[-1]} holds 1 NaN"):
        RveRNetForImageClassification.from_pretrained(None, config=tester.config, state_dict=state)
