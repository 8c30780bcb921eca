"""The contracts every transformers vision model keeps, checked on RveRNet the way transformers' common model and
config tests check them (our own code, tiny odd configs: hidden 32, intermediate 37, 30 px images).

Checks of transformers' common suite that do not apply to RveRNet, and why:
- input-embedding get/set and token-embedding resizing, tied weights: no token embeddings (patch embeddings are
  convolutions inside each tower) and nothing is tied;
- feed-forward chunking, head masking, torch.fx tracing: not offered by the vision towers in transformers 5;
- generation, past key values, cache: not a generative model;
- flash-attention numerics and multi-GPU model parallelism: need a GPU and flash-attn (the dispatch checks, which
  decide what is allowed, run here).

transformers' own `ModelTesterMixin` of the installed release runs against RveRNet with
`python tests/check_transformers_mixins.py` (a maintainer's check: it reads the release's test files from PyPI). On
5.25.0: 76 pass, 66 skip (GPU, flash-attention, text/MoE/RoPE-only), and the 6 that fail are the ones it lists as not
applicable, each with its reason and our test of the same contract: per-tower attentions and hidden states (3), a
token `nn.Embedding` (1), eager-vs-SDPA fed only the main input (1), and training the headless base model (1).
"""

import inspect

import pytest
import torch
from transformers import AutoModel, AutoModelForImageClassification

from conftest import IMAGE_SIZE, tiny_tower_config
from rvernet_hf import (
    RveRNetConfig,
    RveRNetForImageClassification,
    RveRNetImageClassifierOutput,
    RveRNetModel,
    RveRNetModelOutput,
)


# (ROI family, context family): attention towers with different special-token counts, a CNN, a windowed one, timm.
TOWER_PAIRS = [("deit_distilled", "resnet"), ("vit", "swin"), ("deit", "timm")]
ALL_MODEL_CLASSES = (RveRNetModel, RveRNetForImageClassification)


class RveRNetModelTester:
    def __init__(self, roi_family="deit", context_family="resnet", batch_size=3, num_labels=4, fusion="logits"):
        self.roi_family, self.context_family = roi_family, context_family
        self.batch_size, self.num_labels = batch_size, num_labels
        self.fusion = fusion

    def get_config(self, **kwargs):
        return RveRNetConfig(
            roi_config=tiny_tower_config(self.roi_family, num_labels=7),
            context_config=tiny_tower_config(self.context_family, num_labels=5),
            fusion=self.fusion,
            fusion_hidden_size=24,
            num_labels=self.num_labels,
            **kwargs,
        )

    def inputs(self, seed=0, labels=False):
        generator = torch.Generator().manual_seed(seed)
        shape = (self.batch_size, 3, IMAGE_SIZE, IMAGE_SIZE)
        inputs = {
            "roi_pixel_values": torch.randn(shape, generator=generator),
            "context_pixel_values": torch.randn(shape, generator=generator),
        }
        if labels:
            inputs["labels"] = torch.randint(0, self.num_labels, (self.batch_size,), generator=generator)
        return inputs

    def tower_alone(self, model, which, **kwargs):
        """Run one tower by itself on this tester's inputs (the reference for per-tower outputs)."""
        tower = model.roi_model if which == "roi" else model.context_model
        return tower(pixel_values=self.inputs()[f"{which}_pixel_values"], return_dict=True, **kwargs)


def build(model_class, tester, seed=0, **config_kwargs):
    torch.manual_seed(seed)
    return model_class(tester.get_config(**config_kwargs)).eval()


# ---------------------------------------------------------------- config (ConfigTester's checks)


def test_config_common_properties_and_num_labels(tmp_path):
    config = RveRNetModelTester().get_config()
    for name in ("roi_config", "context_config", "fusion", "fusion_hidden_size", "num_labels", "id2label"):
        assert hasattr(config, name), name
    config.num_labels = 5
    assert len(config.id2label) == 5 and len(config.label2id) == 5
    config.num_labels = 3
    assert len(config.id2label) == 3
    config.to_json_file(tmp_path / "c.json")
    restored = RveRNetConfig.from_json_file(tmp_path / "c.json")
    assert restored.to_dict() == config.to_dict()
    assert RveRNetConfig().num_labels == 2  # can be built without arguments


# ---------------------------------------------------------------- signatures and outputs


@pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES)
def test_forward_signature(model_class):
    names = list(inspect.signature(model_class.forward).parameters)
    assert names[1:3] == ["roi_pixel_values", "context_pixel_values"]
    assert {"output_attentions", "output_hidden_states", "return_dict"} <= set(names)


@pytest.mark.parametrize("pair", TOWER_PAIRS)
@pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES)
def test_model_outputs_equivalence_tuple_and_dict(model_class, pair):
    tester = RveRNetModelTester(*pair)
    model = build(model_class, tester)
    for options in ({}, {"output_hidden_states": True}):
        with torch.no_grad():
            as_dict = model(**tester.inputs(), **options)
            as_tuple = model(**tester.inputs(), return_dict=False, **options)
        flat_dict = list(as_dict.to_tuple())
        assert len(flat_dict) == len(as_tuple)
        for left, right in zip(flat_dict, as_tuple):
            torch.testing.assert_close(left, right, atol=0, rtol=0)


@pytest.mark.parametrize("pair", TOWER_PAIRS)
def test_hidden_states_per_tower_equal_the_tower_alone(pair):
    tester = RveRNetModelTester(*pair)
    for via_config in (False, True):
        model = build(RveRNetModel, tester, output_hidden_states=True) if via_config else build(RveRNetModel, tester)
        with torch.no_grad():
            outputs = model(**tester.inputs()) if via_config else model(**tester.inputs(), output_hidden_states=True)
            for which in ("roi", "context"):
                alone = tester.tower_alone(model, which, output_hidden_states=True).hidden_states
                ours = getattr(outputs, f"{which}_hidden_states")
                assert len(ours) == len(alone) > 1
                for mine, theirs in zip(ours, alone):
                    torch.testing.assert_close(mine, theirs)
    with torch.no_grad():
        plain = build(RveRNetModel, tester)(**tester.inputs())
    assert plain.roi_hidden_states is None and plain.context_hidden_states is None


def _expected_tokens(family):
    patch = tiny_tower_config(family).patch_size
    special = 2 if family == "deit_distilled" or family == "deit" else 1  # DeiT: CLS + distillation token
    return (IMAGE_SIZE // patch) ** 2 + special


@pytest.mark.parametrize("pair", TOWER_PAIRS)
@pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES)
def test_attention_outputs_per_tower(model_class, pair):
    tester = RveRNetModelTester(*pair)
    for via_config in (False, True):
        model = build(model_class, tester, output_attentions=True) if via_config else build(model_class, tester)
        model.set_attn_implementation({"roi_config": "eager", "context_config": "eager"})
        with torch.no_grad():
            outputs = model(**tester.inputs()) if via_config else model(**tester.inputs(), output_attentions=True)
        for which, family in (("roi", tester.roi_family), ("context", tester.context_family)):
            attentions = getattr(outputs, f"{which}_attentions")
            if family in ("resnet", "timm", "convnext", "mobilenet_v2"):
                assert attentions is None, (which, family)  # no attention maps in CNNs and timm towers
                continue
            config = tiny_tower_config(family)
            assert len(attentions) == (config.num_hidden_layers if family != "swin" else sum(config.depths))
            if family != "swin":
                tokens = _expected_tokens(family)
                assert attentions[0].shape == (tester.batch_size, config.num_attention_heads, tokens, tokens)
                # rows of an attention map are probability distributions
                torch.testing.assert_close(attentions[0].sum(-1), torch.ones_like(attentions[0].sum(-1)))
            with torch.no_grad():
                alone = tester.tower_alone(model, which, output_attentions=True).attentions
            for mine, theirs in zip(attentions, alone):
                torch.testing.assert_close(mine, theirs)
    with torch.no_grad():
        plain = build(model_class, tester)(**tester.inputs())
    assert plain.roi_attentions is None and plain.context_attentions is None


def test_attentions_from_a_tower_on_sdpa_are_left_out_as_transformers_does():
    """Issue 24 (transformers' contracts): asking for attentions while a tower runs SDPA used to raise; transformers'
    models warn and return no maps for those layers, so callers that ask every model for attentions keep working."""
    tester = RveRNetModelTester("deit", "vit")
    model = build(RveRNetForImageClassification, tester)
    model.set_attn_implementation({"roi_config": "eager", "context_config": "sdpa"})
    with torch.no_grad():
        out = model(**tester.inputs(), output_attentions=True)
        plain = model(**tester.inputs())
    assert len(out.roi_attentions) == model.config.roi_config.num_hidden_layers
    assert out.roi_attentions[0].shape[1] == model.config.roi_config.num_attention_heads
    assert len(out.context_attentions) == 0  # the SDPA tower's maps are left out
    torch.testing.assert_close(out.logits, plain.logits)


@pytest.mark.parametrize("pair", [("deit", "vit"), ("vit", "resnet")])
def test_setting_the_attention_implementation_of_the_composite_only(pair):
    """`{"": impl}` changes the top-level config only, also when one tower has no attention (RveRNet's own layers
    run none); a tower's key changes that tower only (transformers'
    `test_can_set_attention_dynamically_composite_model`)."""
    tester = RveRNetModelTester(*pair)
    model = build(RveRNetForImageClassification, tester)
    model.set_attn_implementation("eager")
    model.set_attn_implementation({"": "sdpa"})
    assert model.config._attn_implementation == "sdpa"
    assert model.roi_model.config._attn_implementation == model.context_model.config._attn_implementation == "eager"
    model.set_attn_implementation({"": "eager", "roi_config": "sdpa"})
    assert model.config._attn_implementation == "eager"
    assert model.roi_model.config._attn_implementation == "sdpa"
    assert model.context_model.config._attn_implementation == "eager"
    if pair[1] == "resnet":  # one name for both towers: the CNN tower cannot run it, and nothing changes
        with pytest.raises(ValueError, match="context"):
            model.set_attn_implementation("sdpa")
        assert model.context_model.config._attn_implementation == "eager"
        assert model.roi_model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("fusion", ["logits", "features"])
def test_base_model_and_head_are_consistent(tmp_path, fusion):
    tester = RveRNetModelTester("deit_distilled", "resnet", fusion=fusion)
    head = build(RveRNetForImageClassification, tester)
    head.save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, RveRNetModel)
    with torch.no_grad():
        base_out = base(**tester.inputs())
        head_out = head(**tester.inputs())
    assert isinstance(base_out, RveRNetModelOutput) and isinstance(head_out, RveRNetImageClassifierOutput)
    assert base_out.pooler_output.shape == (tester.batch_size, head.roi_output_size + head.context_output_size)
    torch.testing.assert_close(base_out.roi_pooler_output, head_out.roi_logits, atol=0, rtol=0)
    torch.testing.assert_close(base_out.context_pooler_output, head_out.context_logits, atol=0, rtol=0)
    torch.testing.assert_close(head.classifier(base_out.pooler_output), head_out.logits, atol=0, rtol=0)
    assert head.base_model is head.rvernet and head.roi_model is head.rvernet.roi_model


# ---------------------------------------------------------------- save / load


def _load_info(model_class, folder, **kwargs):
    model, info = model_class.from_pretrained(folder, output_loading_info=True, **kwargs)
    return model.eval(), {k: set(v) if not isinstance(v, set) else v for k, v in info.items() if k != "error_msgs"}


def test_save_load_with_and_without_the_base_prefix(tmp_path):
    tester = RveRNetModelTester("deit", "mobilenet_v2")
    head = build(RveRNetForImageClassification, tester)
    base = build(RveRNetModel, tester, seed=1)
    head.save_pretrained(tmp_path / "head")
    base.save_pretrained(tmp_path / "base")

    # head checkpoint -> base model: every tower weight found, the fusion head left out without complaint
    loaded, info = _load_info(RveRNetModel, tmp_path / "head")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(**tester.inputs()).pooler_output, head.rvernet(**tester.inputs()).pooler_output
        )

    # base checkpoint -> classifier: the towers load, only the new fusion head is missing
    loaded, info = _load_info(RveRNetForImageClassification, tmp_path / "base")
    assert info["missing_keys"] and all(k.startswith("classifier.") for k in info["missing_keys"])
    assert not info["unexpected_keys"]
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.rvernet(**tester.inputs()).pooler_output, base(**tester.inputs()).pooler_output
        )

    # same class round trips exactly
    for model_class, model, folder in ((RveRNetForImageClassification, head, "head"), (RveRNetModel, base, "base")):
        loaded, info = _load_info(model_class, tmp_path / folder)
        assert not any(info.values()), info
        with torch.no_grad():
            torch.testing.assert_close(loaded(**tester.inputs())[0], model(**tester.inputs())[0], atol=0, rtol=0)


def test_checkpoint_in_the_layout_before_the_base_model_loads_with_identical_logits(tmp_path):
    """Checkpoints saved before `RveRNetModel` existed have the towers at the top level (`roi_model.*`)."""
    from safetensors.torch import load_file, save_file

    tester = RveRNetModelTester("deit_distilled", "convnext")
    model = build(RveRNetForImageClassification, tester)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    state = load_file(weights)
    assert any(k.startswith("rvernet.roi_model.") for k in state)
    old_layout = {k.removeprefix("rvernet."): v.clone() for k, v in state.items()}
    assert not any(k.startswith("rvernet.") for k in old_layout)
    save_file(old_layout, weights, metadata={"format": "pt"})
    (tmp_path / "rvernet_weights.json").unlink()  # such a folder predates the checksum file (issue 35.4)

    for model_class in (RveRNetForImageClassification, AutoModelForImageClassification):
        loaded, info = _load_info(model_class, tmp_path)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        with torch.no_grad():
            torch.testing.assert_close(
                loaded(**tester.inputs()).logits, model(**tester.inputs()).logits, atol=0, rtol=0
            )
    base, info = _load_info(RveRNetModel, tmp_path)
    assert not info["missing_keys"]


def test_load_with_mismatched_fusion_head_size(tmp_path):
    tester = RveRNetModelTester("deit", "resnet", num_labels=4)
    model = build(RveRNetForImageClassification, tester)
    model.save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match="size mismatch|mismatch"):
        RveRNetForImageClassification.from_pretrained(tmp_path, num_labels=7)
    loaded, info = _load_info(RveRNetForImageClassification, tmp_path, num_labels=7, ignore_mismatched_sizes=True)
    assert {k for k, *_ in info["mismatched_keys"]} == {"classifier.out_proj.weight", "classifier.out_proj.bias"}
    assert loaded(**tester.inputs()).logits.shape == (tester.batch_size, 7)
    torch.testing.assert_close(loaded.classifier.dense.weight, model.classifier.dense.weight)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dtype_and_device_map_loading(tmp_path, dtype):
    tester = RveRNetModelTester("deit", "resnet")
    build(RveRNetForImageClassification, tester).save_pretrained(tmp_path)
    loaded = RveRNetForImageClassification.from_pretrained(tmp_path, dtype=dtype)
    assert {p.dtype for p in loaded.parameters()} == {dtype}
    with_map = RveRNetForImageClassification.from_pretrained(tmp_path, device_map="cpu")
    assert {p.device.type for p in with_map.parameters()} == {"cpu"}
    if dtype == torch.bfloat16:  # CPU kernels exist for bf16 convolutions and attention
        inputs = {k: v.to(dtype) for k, v in tester.inputs().items()}
        assert loaded(**inputs).logits.dtype == dtype


def test_torch_dtype_is_still_accepted_as_dtype(tmp_path):
    """transformers 5 renamed `torch_dtype` to `dtype` and still takes the old name."""
    tester = RveRNetModelTester("deit", "resnet")
    build(RveRNetForImageClassification, tester).save_pretrained(tmp_path)
    loaded = RveRNetForImageClassification.from_pretrained(tmp_path, torch_dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


def test_missing_weights_are_initialised_and_reported(tmp_path):
    """A checkpoint without the fusion head loads with the head freshly initialised (finite, not zeros, not the
    saved values), and `missing_keys` names exactly what was missing."""
    from safetensors.torch import load_file, save_file

    tester = RveRNetModelTester("deit", "resnet")
    model = build(RveRNetForImageClassification, tester)
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = sorted(key for key in weights if key.startswith("classifier."))
    save_file({k: v for k, v in weights.items() if k not in dropped}, tmp_path / "model.safetensors", {"format": "pt"})
    (tmp_path / "rvernet_weights.json").unlink()  # weights written by hand, not by save_pretrained
    loaded, info = RveRNetForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == dropped
    state = loaded.state_dict()
    for key in dropped:
        assert torch.isfinite(state[key]).all()
    weight = next(key for key in dropped if key.endswith("weight"))
    assert state[weight].abs().sum() > 0 and not torch.equal(state[weight], weights[weight])
    torch.testing.assert_close(loaded.roi_model.state_dict(), model.roi_model.state_dict())


def test_every_tensor_is_a_parameter_or_a_buffer():
    """What `to()`, `state_dict()` and device maps move: no tensor hides in a plain attribute."""
    for pair in TOWER_PAIRS:
        model = build(RveRNetForImageClassification, RveRNetModelTester(*pair))
        registered = {id(t) for t in model.parameters()} | {id(t) for t in model.buffers()}
        for name, module in model.named_modules():
            for attribute, value in vars(module).items():
                if isinstance(value, torch.Tensor) and not attribute.startswith("_"):
                    assert id(value) in registered, f"{name}.{attribute} is a tensor outside parameters/buffers"


def test_made_on_the_meta_device_and_loaded_under_a_device_context(tmp_path):
    tester = RveRNetModelTester("deit", "resnet")
    with torch.device("meta"):
        empty = RveRNetForImageClassification(tester.get_config())
    assert {p.device.type for p in empty.parameters()} == {"meta"}
    build(RveRNetForImageClassification, tester).save_pretrained(tmp_path)
    with torch.device("cpu"):
        loaded = RveRNetForImageClassification.from_pretrained(tmp_path)
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
    with pytest.raises(RuntimeError), torch.device("meta"):  # transformers refuses to load weights onto meta
        RveRNetForImageClassification.from_pretrained(tmp_path)


@pytest.mark.parametrize("token_selection", ["dense", "mask"])
def test_batching_equivalence(token_selection):
    """Each sample's logits are the same alone as in a batch (sparse towers pad a batch to its longest sample)."""
    tester = RveRNetModelTester("deit", "vit", batch_size=4)
    model = build(RveRNetForImageClassification, tester, token_selection=token_selection)
    inputs = tester.inputs()
    if token_selection == "mask":
        grid = IMAGE_SIZE // tiny_tower_config("deit").patch_size
        generator = torch.Generator().manual_seed(1)
        keep = torch.rand(tester.batch_size, grid * grid, generator=generator) < 0.5
        keep[:, 0] = True  # every sample keeps at least one patch in each tower
        inputs["roi_token_mask"], inputs["context_token_mask"] = keep, ~keep | (torch.arange(grid * grid) == 1)
    with torch.no_grad():
        batched = model(**inputs).logits
        alone = torch.cat([model(**{k: v[i : i + 1] for k, v in inputs.items()}).logits for i in range(4)])
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=1e-4)


def test_eager_matches_sdpa_in_bfloat16(tmp_path):
    """transformers checks eager against SDPA in every dtype; fp32 is checked per tower above, bf16 here."""
    tester = RveRNetModelTester("deit", "vit")
    build(RveRNetForImageClassification, tester).save_pretrained(tmp_path)
    inputs = {k: v.to(torch.bfloat16) for k, v in tester.inputs().items()}
    logits = {}
    for implementation in ("eager", "sdpa"):
        model = RveRNetForImageClassification.from_pretrained(
            tmp_path, attn_implementation=implementation, dtype=torch.bfloat16
        ).eval()
        with torch.no_grad():
            logits[implementation] = model(**inputs).logits.float()
    torch.testing.assert_close(logits["sdpa"], logits["eager"], atol=3e-2, rtol=3e-2)


# ---------------------------------------------------------------- problem types, training


@pytest.mark.parametrize(
    "problem_type, make_labels, reference",
    [
        ("single_label_classification", lambda b, n: torch.randint(0, n, (b,)), torch.nn.functional.cross_entropy),
        (
            "multi_label_classification",
            lambda b, n: torch.randint(0, 2, (b, n)).float(),
            torch.nn.functional.binary_cross_entropy_with_logits,
        ),
        ("regression", lambda b, n: torch.randn(b, n), torch.nn.functional.mse_loss),
    ],
)
def test_problem_types(problem_type, make_labels, reference):
    tester = RveRNetModelTester("vit", "resnet")
    model = build(RveRNetForImageClassification, tester, problem_type=problem_type)
    labels = make_labels(tester.batch_size, tester.num_labels)
    outputs = model(**tester.inputs(), labels=labels)
    torch.testing.assert_close(outputs.loss, reference(outputs.logits, labels))
    outputs.loss.backward()


def test_training_reaches_every_parameter_and_retains_grads_of_tower_outputs():
    tester = RveRNetModelTester("deit", "vit")
    model = build(RveRNetForImageClassification, tester).train()
    model.set_attn_implementation("eager")
    outputs = model(**tester.inputs(labels=True), output_hidden_states=True, output_attentions=True)
    for tensor in (outputs.roi_hidden_states[0], outputs.context_attentions[0]):
        tensor.retain_grad()
    outputs.loss.backward()
    assert outputs.roi_hidden_states[0].grad is not None and outputs.context_attentions[0].grad is not None
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    # DeiT's distillation-token head is unused by DeiTForImageClassification (only the CLS head feeds its logits)
    assert all("distillation" in n or "mask_token" in n for n in missing), missing


def test_determinism():
    tester = RveRNetModelTester("deit_distilled", "swin")
    model = build(RveRNetForImageClassification, tester)
    with torch.no_grad():
        first, second = model(**tester.inputs()).logits, model(**tester.inputs()).logits
    torch.testing.assert_close(first, second, atol=0, rtol=0)


def test_labels_on_an_accelerator_cost_no_host_sync():
    """The whole forward + loss runs on the meta device, where any host sync (`bool()`, `.item()`, `.tolist()`)
    raises: so the step has no data-dependent device-to-host transfer. Labels on the CPU are still range-checked."""
    tester = RveRNetModelTester("deit", "resnet")
    with pytest.raises(RuntimeError):  # the check this replaces would have failed here
        bool(torch.zeros(3, dtype=torch.long, device="meta").ge(0).all())
    model = build(RveRNetForImageClassification, tester).to("meta")
    inputs = {k: v.to("meta") for k, v in tester.inputs(labels=True).items()}
    outputs = model(**inputs)
    assert outputs.loss.device.type == "meta" and outputs.logits.shape == (tester.batch_size, tester.num_labels)
    cpu_model = build(RveRNetForImageClassification, tester)
    with pytest.raises(ValueError, match=r"labels` must be in \[0, 4\)"):
        cpu_model(**tester.inputs(), labels=torch.tensor([0, 9, 1]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_step_does_not_sync_on_cuda():
    tester = RveRNetModelTester("deit", "resnet")
    model = build(RveRNetForImageClassification, tester).cuda().train()
    inputs = {k: v.cuda() for k, v in tester.inputs(labels=True).items()}
    model(**inputs).loss.backward()  # warm-up (lazy CUDA initialisation syncs)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(**inputs).loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ---------------------------------------------------------------- attention dispatch: flags tell the truth


@pytest.mark.parametrize(
    "pair, sdpa, flash, flex",
    [
        (("deit", "vit"), True, True, True),
        (("deit", "swin"), True, False, False),
        (("deit", "resnet"), False, False, False),
        (("convnext", "mobilenet_v2"), False, False, False),
    ],
)
def test_support_flags_are_derived_from_the_towers(pair, sdpa, flash, flex):
    model = build(RveRNetForImageClassification, RveRNetModelTester(*pair))
    assert (model._supports_sdpa, model._supports_flash_attn, model._supports_flex_attn) == (sdpa, flash, flex)


@pytest.mark.parametrize("how", ["from_pretrained", "set_attn_implementation"])
@pytest.mark.parametrize(
    "requested, tower",
    [("sdpa", r"context tower \(ResNetForImageClassification\)"), ("flex_attention", r"context tower")],
)
def test_an_implementation_one_tower_cannot_run_is_refused_naming_it(tmp_path, how, requested, tower):
    tester = RveRNetModelTester("deit", "resnet")
    model = build(RveRNetForImageClassification, tester)
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=tower + r".*supports \['eager'\]"):
        if how == "from_pretrained":
            RveRNetForImageClassification.from_pretrained(tmp_path, attn_implementation=requested)
        else:
            model.set_attn_implementation(requested)


def test_per_tower_attention_implementations(tmp_path):
    tester = RveRNetModelTester("deit", "vit")
    build(RveRNetForImageClassification, tester).save_pretrained(tmp_path)
    logits = {}
    for request in ("eager", "sdpa", {"roi_config": "sdpa", "context_config": "eager"}):
        model = RveRNetForImageClassification.from_pretrained(tmp_path, attn_implementation=request).eval()
        expected = request if isinstance(request, dict) else {"roi_config": request, "context_config": request}
        assert model.roi_model.config._attn_implementation == expected["roi_config"]
        assert model.context_model.config._attn_implementation == expected["context_config"]
        with torch.no_grad():
            logits[str(request)] = model(**tester.inputs()).logits
    for value in logits.values():
        torch.testing.assert_close(value, logits["eager"], atol=1e-5, rtol=1e-4)
    mixed = RveRNetForImageClassification.from_pretrained(
        tmp_path, attn_implementation={"roi_config": "sdpa", "context_config": "eager"}
    )
    mixed.set_attn_implementation({"context_config": "sdpa"})
    assert mixed.context_model.config._attn_implementation == "sdpa"
    cnn = build(RveRNetForImageClassification, RveRNetModelTester("deit", "resnet"))
    cnn.set_attn_implementation({"roi_config": "sdpa", "context_config": "eager"})  # a per-tower dict keeps working
    assert cnn.roi_model.config._attn_implementation == "sdpa"


# ---------------------------------------------------------------- compile and export


@pytest.mark.slow
@pytest.mark.parametrize("pair", [("deit", "resnet"), ("convnext", "mobilenet_v2")])
def test_torch_compile_fullgraph(pair):
    """`_can_compile_fullgraph` is what this test shows (ResNet, ConvNeXt and MobileNetV2 do not declare it)."""
    tester = RveRNetModelTester(*pair)
    model = build(RveRNetForImageClassification, tester)
    assert model._can_compile_fullgraph
    torch._dynamo.reset()
    with torch.no_grad():
        compiled = torch.compile(model, fullgraph=True)(**tester.inputs()).logits
        eager = model(**tester.inputs()).logits
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)
    assert not build(RveRNetForImageClassification, RveRNetModelTester("deit", "timm"))._can_compile_fullgraph


@pytest.mark.slow
@pytest.mark.parametrize("model_class", ALL_MODEL_CLASSES)
def test_torch_export(model_class):
    tester = RveRNetModelTester("deit", "resnet")
    model = build(model_class, tester)
    inputs = tester.inputs()
    exported = torch.export.export(model, args=(), kwargs=inputs, strict=False)
    with torch.no_grad():
        expected = model(**inputs)[0]
    torch.testing.assert_close(exported.module()(**inputs)[0], expected, atol=1e-5, rtol=1e-5)


def test_towers_from_pretrained_checkpoints_carry_a_resolved_attention_implementation(tmp_path):
    """Building the config from the towers' own config objects reset their implementation to None (transformers
    then warned at every `train` that the dispatch went wrong): the towers keep what they were loaded with."""
    from transformers import DeiTForImageClassification, ResNetForImageClassification

    DeiTForImageClassification(tiny_tower_config("deit")).save_pretrained(tmp_path / "deit")
    ResNetForImageClassification(tiny_tower_config("resnet")).save_pretrained(tmp_path / "resnet")
    model = RveRNetForImageClassification.from_towers_pretrained(tmp_path / "deit", tmp_path / "resnet")
    assert model.roi_model.config._attn_implementation == "sdpa"
    assert model.config.roi_config._attn_implementation == "sdpa" and model.roi_model.config is model.config.roi_config
    assert model.context_model.config._attn_implementation == "eager"
    eager = RveRNetForImageClassification.from_towers_pretrained(
        tmp_path / "deit", tmp_path / "resnet", attn_implementation="eager"
    )
    assert eager.roi_model.config._attn_implementation == "eager"
