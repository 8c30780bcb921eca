"""Token-sparse towers (`token_selection="mask"`): each ViT-family tower encodes only the patches of its region.

What must hold: with every patch kept the sparse model IS the dense one (logits and gradients); a dropped patch has no
path to the output; padding a batch changes nothing; a dense checkpoint loads as sparse and back with the same weights;
the processor, transforms, evaluation, pipeline and training all carry the token masks.
"""

import copy

import numpy as np
import pytest
import torch
from transformers import pipeline
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from conftest import IMAGE_SIZE, rvernet_args, tiny_tower_config
from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageProcessor, RveRNetModel
from rvernet_hf.data import RveRNetTransform
from rvernet_hf.modeling_rvernet import kept_token_index


PATCH = tiny_tower_config("deit").patch_size
GRID = IMAGE_SIZE // PATCH
NUM_PATCHES = GRID * GRID


def build(roi="deit", context="vit", seed=0, model_class=RveRNetForImageClassification, **config_kwargs):
    torch.manual_seed(seed)
    config = RveRNetConfig(
        roi_config=tiny_tower_config(roi, num_labels=7),
        context_config=tiny_tower_config(context, num_labels=5),
        fusion_hidden_size=24,
        num_labels=4,
        **config_kwargs,
    )
    return model_class(config).eval()


def sparse_copy(model):
    sparse = copy.deepcopy(model)
    sparse.config.token_selection = "mask"
    return sparse


def pixels(batch, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, 3, IMAGE_SIZE, IMAGE_SIZE)
    return {
        "roi_pixel_values": torch.randn(shape, generator=generator),
        "context_pixel_values": torch.randn(shape, generator=generator),
    }


def varied_masks(batch, seed=0):
    """Keep masks from one patch to every patch, at random places."""
    generator = torch.Generator().manual_seed(seed)
    counts = torch.linspace(1, NUM_PATCHES, batch).round().long()
    masks = torch.zeros(batch, NUM_PATCHES, dtype=torch.bool)
    for row, count in enumerate(counts):
        masks[row, torch.randperm(NUM_PATCHES, generator=generator)[:count]] = True
    return masks


# ---------------------------------------------------------------- equal to dense where it must be


@pytest.mark.parametrize(
    ("roi", "context", "fusion"), [("deit", "vit", "logits"), ("deit_distilled", "deit", "features")]
)
def test_every_patch_kept_equals_dense_logits_and_gradients(roi, context, fusion):
    dense = build(roi, context, fusion=fusion).train()
    sparse = sparse_copy(dense)
    for module in (dense, sparse):  # no dropout in these configs; train mode exercises the training path
        assert all(not isinstance(m, torch.nn.Dropout) or m.p == 0 for m in module.modules())
    inputs = {**pixels(3), "labels": torch.tensor([0, 3, 1])}
    every = torch.ones(3, NUM_PATCHES, dtype=torch.bool)
    dense_out = dense(**inputs)
    sparse_out = sparse(**inputs, roi_token_mask=every, context_token_mask=every.long())
    torch.testing.assert_close(sparse_out.logits, dense_out.logits, atol=1e-5, rtol=1e-5)
    dense_out.loss.backward()
    sparse_out.loss.backward()
    dense_grads = dict(dense.named_parameters())
    for name, parameter in sparse.named_parameters():
        if dense_grads[name].grad is None:
            assert parameter.grad is None, name
            continue
        torch.testing.assert_close(parameter.grad, dense_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_dense_model_ignores_token_masks():
    dense = build()
    inputs = pixels(2)
    masks = {"roi_token_mask": varied_masks(2), "context_token_mask": varied_masks(2, seed=1)}
    torch.testing.assert_close(dense(**inputs, **masks).logits, dense(**inputs).logits, atol=0, rtol=0)


# ---------------------------------------------------------------- dropped tokens are gone


@pytest.mark.parametrize("tower", ["roi", "context"])
def test_pixels_of_dropped_patches_do_not_reach_the_output(tower):
    model = sparse_copy(build("deit_distilled", "vit"))
    keep = varied_masks(4, seed=3)
    keep[:, 0] = False  # patch 0 (top-left) is dropped everywhere
    keep[:, 1] = True  # patch 1 is kept everywhere
    inputs = {**pixels(4), "roi_token_mask": keep, "context_token_mask": keep}
    changed_dropped = {k: v.clone() for k, v in inputs.items()}
    changed_dropped[f"{tower}_pixel_values"][:, :, :PATCH, :PATCH] = 1e3  # inside patch 0 only
    changed_kept = {k: v.clone() for k, v in inputs.items()}
    changed_kept[f"{tower}_pixel_values"][:, :, :PATCH, PATCH : 2 * PATCH] = 1e3  # inside patch 1 only
    with torch.no_grad():
        base = model(**inputs)
        dropped = model(**changed_dropped)
        kept = model(**changed_kept)
    field = f"{tower}_logits"
    torch.testing.assert_close(getattr(dropped, field), getattr(base, field), atol=0, rtol=0)
    torch.testing.assert_close(dropped.logits, base.logits, atol=0, rtol=0)
    assert (getattr(kept, field) - getattr(base, field)).abs().amax(-1).min() > 1e-3  # the test could fail


def test_a_dropped_patch_gets_no_gradient():
    model = sparse_copy(build())
    inputs = pixels(2)
    inputs["roi_pixel_values"].requires_grad_(True)
    keep = torch.zeros(2, NUM_PATCHES, dtype=torch.bool)
    keep[:, 1] = True
    model(**inputs, roi_token_mask=keep, context_token_mask=~keep).logits.sum().backward()
    grad = inputs["roi_pixel_values"].grad
    assert grad[:, :, :PATCH, :PATCH].abs().max() == 0  # patch 0: dropped
    assert grad[:, :, :PATCH, PATCH : 2 * PATCH].abs().max() > 0  # patch 1: kept


# ---------------------------------------------------------------- padding is inert


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_a_batch_equals_its_samples_one_by_one(attn_implementation):
    model = sparse_copy(build("deit", "vit"))
    model.set_attn_implementation(attn_implementation)
    batch = 5
    inputs = {**pixels(batch), "roi_token_mask": varied_masks(batch), "context_token_mask": varied_masks(batch, 1)}
    assert inputs["roi_token_mask"].sum(1).tolist()[0] == 1 and inputs["roi_token_mask"][-1].all()
    with torch.no_grad():
        together = model(**inputs).logits
        alone = torch.cat([model(**{k: v[i : i + 1] for k, v in inputs.items()}).logits for i in range(batch)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_hidden_states_and_attentions_are_over_the_kept_tokens():
    model = sparse_copy(build("deit", "vit"))
    model.set_attn_implementation("eager")
    keep = varied_masks(3)
    with torch.no_grad():
        out = model(
            **pixels(3),
            roi_token_mask=keep,
            context_token_mask=keep,
            output_hidden_states=True,
            output_attentions=True,
        )
    longest = int(keep.sum(1).max())
    assert out.roi_hidden_states[0].shape == (3, 2 + longest, 32)  # CLS + distillation + kept patches
    assert out.context_hidden_states[-1].shape == (3, 1 + longest, 32)  # CLS + kept patches
    attention = out.roi_attentions[0]
    assert attention.shape == (3, 4, 2 + longest, 2 + longest)
    # padding is never attended to: the first sample keeps one patch, so only 3 keys carry weight
    assert attention[0, :, :, 3:].abs().max() == 0
    torch.testing.assert_close(attention[0, :, :, :3].sum(-1), torch.ones(4, 2 + longest))


def test_kept_token_index_keeps_raster_order_and_marks_padding():
    keep = torch.tensor([[False, True, False, True], [True, True, True, False]])
    index, valid = kept_token_index(keep)
    assert index[0, :2].tolist() == [1, 3] and index[1].tolist() == [0, 1, 2]
    assert valid.tolist() == [[True, True, False], [True, True, True]]


# ---------------------------------------------------------------- training paths


def test_gradient_checkpointing_and_bf16_autocast():
    model = sparse_copy(build("deit", "vit")).train()
    inputs = {
        **pixels(3),
        "roi_token_mask": varied_masks(3),
        "context_token_mask": varied_masks(3, 1),
        "labels": torch.tensor([0, 1, 2]),
    }
    reference = model(**inputs)
    reference.loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    checkpointed = model(**inputs)
    checkpointed.loss.backward()
    torch.testing.assert_close(checkpointed.logits, reference.logits, atol=1e-6, rtol=1e-6)
    for name, grad in expected.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-5, msg=name)
    model.gradient_checkpointing_disable()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(**inputs)
    assert low.logits.dtype == torch.bfloat16
    low.loss.backward()
    torch.testing.assert_close(low.logits.float(), reference.logits, atol=0.1, rtol=0.1)


@pytest.mark.slow
def test_torch_compile():
    model = sparse_copy(build("deit_distilled", "vit"))
    inputs = {**pixels(3), "roi_token_mask": varied_masks(3), "context_token_mask": varied_masks(3, 1)}
    torch._dynamo.reset()
    with torch.no_grad():
        compiled = torch.compile(model)(**inputs).logits
        eager = model(**inputs).logits
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- loading, refusals, other families


def test_dense_checkpoint_reloads_as_sparse_and_back(tmp_path):
    dense = build("deit_distilled", "vit")
    dense.save_pretrained(tmp_path / "dense")
    sparse, info = RveRNetForImageClassification.from_pretrained(
        tmp_path / "dense", token_selection="mask", output_loading_info=True
    )
    assert sparse.config.token_selection == "mask"
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    for (name, a), b in zip(dense.state_dict().items(), sparse.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
    sparse.save_pretrained(tmp_path / "sparse")
    again, info = RveRNetForImageClassification.from_pretrained(
        tmp_path / "sparse", token_selection="dense", output_loading_info=True
    )
    assert RveRNetForImageClassification.from_pretrained(tmp_path / "sparse").config.token_selection == "mask"
    assert again.config.token_selection == "dense" and not info["missing_keys"] and not info["unexpected_keys"]
    every = torch.ones(2, NUM_PATCHES, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(
            sparse.eval()(**pixels(2), roi_token_mask=every, context_token_mask=every).logits,
            again.eval()(**pixels(2)).logits,
            atol=1e-5,
            rtol=1e-5,
        )


def test_missing_or_malformed_token_masks_are_refused_naming_the_input():
    model = sparse_copy(build("deit", "vit", model_class=RveRNetModel))
    every = torch.ones(2, NUM_PATCHES, dtype=torch.bool)
    with pytest.raises(ValueError, match=rf"needs `context_token_mask`.*patch_size={PATCH}"):
        model(**pixels(2), roi_token_mask=every)
    with pytest.raises(ValueError, match=rf"`roi_token_mask` must be a bool tensor of shape \(2, {NUM_PATCHES}\)"):
        model(**pixels(2), roi_token_mask=every[:, :-1], context_token_mask=every)
    with pytest.raises(ValueError, match="must be bool"):
        model(**pixels(2), roi_token_mask=every.float(), context_token_mask=every)


def test_towers_of_other_families_stay_dense_and_say_so():
    logger = logging.get_logger("rvernet_hf.modeling_rvernet")
    with CaptureLogger(logger) as captured:
        model = build("deit", "resnet", token_selection="mask")
    assert "the context tower (ResNetForImageClassification) stays dense" in captured.out
    assert "ROI tower" not in captured.out
    assert model.token_patch_sizes == {"roi": PATCH, "context": None}
    keep = varied_masks(2)
    with torch.no_grad():  # the ResNet tower needs no mask; the DeiT tower reads only its kept patches
        out = model(**pixels(2), roi_token_mask=keep)
        alone = model.roi_model(pixels(2)["roi_pixel_values"][:1]).logits
    assert out.logits.shape == (2, 4)
    assert (out.roi_logits[:1] - alone).abs().max() > 1e-4  # sample 0 keeps one patch: not the dense output


# ---------------------------------------------------------------- the processor and everything it feeds


def _square_mask(size, top, left, side):
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_processor_token_masks_follow_the_documented_overlap_rule():
    processor = RveRNetImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, patch_size=PATCH)
    image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 200, dtype=np.uint8)
    aligned = _square_mask(IMAGE_SIZE, PATCH, PATCH, 2 * PATCH)  # exactly patches (1,1),(1,2),(2,1),(2,2)
    batch = processor(image, roi_masks=aligned)
    roi = batch["roi_token_mask"][0].reshape(GRID, GRID)
    expected = torch.zeros(GRID, GRID, dtype=torch.bool)
    expected[1:3, 1:3] = True
    assert torch.equal(roi, expected) and torch.equal(batch["context_token_mask"][0].reshape(GRID, GRID), ~expected)
    # one pixel past the aligned square: the boundary patches now belong to both towers
    shifted = _square_mask(IMAGE_SIZE, PATCH, PATCH, 2 * PATCH + 1)
    both = processor(image, roi_masks=shifted)
    overlap = both["roi_token_mask"][0] & both["context_token_mask"][0]
    assert int(overlap.sum()) == 5 and bool((both["roi_token_mask"][0] | both["context_token_mask"][0]).all())
    # with a threshold, a patch needs more than that share of its pixels
    strict = processor(image, roi_masks=shifted, token_keep_threshold=0.5)
    assert torch.equal(strict["roi_token_mask"][0].reshape(GRID, GRID), expected)
    assert processor(image, roi_masks=aligned, context_mode="full")["context_token_mask"].all()
    # a ring of one patch around each region (what a model trained dense saw next to it)
    ring = processor(image, roi_masks=aligned, token_margin=1)
    grown = torch.zeros(GRID, GRID, dtype=torch.bool)
    grown[0:4, 0:4] = True
    assert torch.equal(ring["roi_token_mask"][0].reshape(GRID, GRID), grown)
    assert ring["context_token_mask"].all()
    # per tower, or one tower only
    one = processor(image, roi_masks=aligned, patch_size={"roi": PATCH})
    assert "roi_token_mask" in one and "context_token_mask" not in one
    assert "roi_token_mask" not in RveRNetImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})(
        image, roi_masks=aligned
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"patch_size": 7}, "not a multiple of the roi tower's `patch_size` 7"),
        ({"patch_size": 0}, "positive integer"),
        ({"patch_size": {"roi": 6, "ctx": 6}}, "keys must be"),
        ({"patch_size": 6, "token_keep_threshold": 1.0}, r"`token_keep_threshold` must be in \[0, 1\)"),
        ({"patch_size": 6, "token_margin": -1}, r"`token_margin` must be >= 0"),
    ],
)
def test_processor_refuses_bad_token_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        RveRNetImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, **settings)


def test_processor_patch_size_survives_save_and_load(tmp_path):
    processor = RveRNetImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, patch_size={"roi": PATCH})
    processor.save_pretrained(tmp_path)
    loaded = RveRNetImageProcessor.from_pretrained(tmp_path)
    assert loaded.patch_size == {"roi": PATCH, "context": None} and loaded.token_keep_threshold == 0.0


def test_processor_to_model_end_to_end_and_the_training_transform():
    model = sparse_copy(build("deit", "vit"))
    processor = RveRNetImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, patch_size=model.token_patch_sizes
    )
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(3)]
    masks = [np.pad(_square_mask(40, 5, 5, side), ((0, 0), (0, 10))) for side in (3, 15, 30)]
    batch = processor(images, roi_masks=masks)
    counts = batch["roi_token_mask"].sum(1).tolist()
    assert counts[0] < counts[1] < counts[2] and batch["context_token_mask"].sum(1).min() > 0
    with torch.no_grad():
        logits = model(**batch).logits
    transform = RveRNetTransform(processor)
    rows = transform({"image": images, "roi_mask": masks, "label": [0, 1, 2]})
    assert torch.equal(rows["roi_token_mask"], batch["roi_token_mask"])
    with torch.no_grad():
        torch.testing.assert_close(model(**{k: v for k, v in rows.items() if k != "labels"}).logits, logits)


def test_pipelines_pass_the_token_masks(tmp_path):
    model = sparse_copy(build("deit", "vit"))
    model.config.id2label = {i: f"class_{i}" for i in range(4)}
    processor = RveRNetImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, auto_roi="center")
    image = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    mask = _square_mask(40, 4, 4, 12)
    prompted = pipeline("rvernet-image-classification", model=model, image_processor=processor)
    result = prompted(image, mask=mask, top_k=4)
    with torch.no_grad():  # the pipeline made the token masks on the model's patch grids
        expected = model(**processor(image, roi_masks=mask, patch_size=model.token_patch_sizes)).logits[0]
    scores = {entry["label"]: entry["score"] for entry in result["labels"]}
    torch.testing.assert_close(torch.tensor([scores[f"class_{i}"] for i in range(4)]), expected.softmax(-1))
    # the plain image-classification pipeline reads what the (saved) processor makes
    processor.set_settings(patch_size={"roi": PATCH, "context": PATCH})
    plain = pipeline("image-classification", model=model, image_processor=processor)
    assert len(plain(image, top_k=2)) == 2


def test_training_with_token_selection_mask_then_evaluation_and_a_dense_switch(tmp_path, synthetic_data, tower_dir):
    import json

    from rvernet_hf.evaluation import evaluate_model, load_for_evaluation, load_split
    from rvernet_hf.training import main

    out = tmp_path / "sparse"
    main(
        [
            *rvernet_args(synthetic_data, tower_dir),
            "--token_selection",
            "mask",
            "--output_dir",
            str(out),
            "--report_to",
            "none",
            "--use_cpu",
            "--per_device_train_batch_size",
            "8",
            "--max_steps",
            "2",
            "--do_train",
            "--do_eval",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ]
    )
    assert json.loads((out / "config.json").read_text())["token_selection"] == "mask"
    assert json.loads((out / "preprocessor_config.json").read_text())["patch_size"] == {"roi": 8, "context": 8}
    model, transform = load_for_evaluation(out)
    validation = load_split(synthetic_data, "validation")
    sparse = evaluate_model(model, transform, validation)
    model.config.token_selection = "dense"  # the same weights, every patch
    dense = evaluate_model(model, transform, validation)
    assert 0.0 <= sparse["accuracy"] <= 1.0 and 0.0 <= dense["accuracy"] <= 1.0


def test_training_takes_the_token_rule_and_saves_it_with_the_processor(tmp_path, synthetic_data, tower_dir):
    import json

    from rvernet_hf.training import main

    out = tmp_path / "half"
    rule = ["--token_keep_threshold", "0.5", "--token_margin", "1"]
    common = ["--report_to", "none", "--use_cpu", "--max_steps", "1", "--do_train", "--save_strategy", "no"]
    main(
        [
            *rvernet_args(synthetic_data, tower_dir),
            "--token_selection",
            "mask",
            *rule,
            "--output_dir",
            str(out),
            *common,
        ]
    )
    saved = json.loads((out / "preprocessor_config.json").read_text())
    assert saved["token_keep_threshold"] == 0.5 and saved["token_margin"] == 1
    with pytest.raises(ValueError, match="token_keep_threshold"):
        main(
            [
                *rvernet_args(synthetic_data, tower_dir),
                "--token_keep_threshold",
                "1.5",
                "--output_dir",
                str(tmp_path / "bad"),
                *common,
            ]
        )


def test_length_groups_split_only_where_padding_is_saved():
    from rvernet_hf.token_grid_rvernet import length_groups

    assert length_groups([10, 10, 9, 9, 8, 8, 8, 8]) == [[0, 1, 2, 3, 4, 5, 6, 7]]  # similar lengths: one pass
    assert length_groups([1, 40, 2, 41, 3, 42, 4, 43]) == [[7, 5, 3, 1], [6, 4, 2, 0]]  # longest first, by length
    assert length_groups([40, 40, 40, 40, 1, 1, 1]) == [[0, 1, 2, 3, 4, 5, 6]]  # a group of 3 would be too small
    assert len(length_groups(list(range(64, 0, -1)))) == 4  # at most four groups
    assert length_groups([]) == [[]]


def test_grouped_batches_give_the_logits_and_gradients_of_one_padded_pass():
    model = sparse_copy(build("deit", "vit"))
    batch = 12
    inputs = {**pixels(batch), "roi_token_mask": varied_masks(batch), "context_token_mask": varied_masks(batch, 1)}
    from rvernet_hf.token_grid_rvernet import length_groups

    assert len(length_groups(inputs["roi_token_mask"].sum(1).tolist())) > 1  # the batch is grouped

    def run(grouped):
        model.zero_grad()
        model.config.group_by_length = grouped
        logits = model(**inputs).logits
        (logits**2).sum().backward()
        return logits.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    grouped_logits, grouped_grads = run(True)
    padded_logits, padded_grads = run(False)
    torch.testing.assert_close(grouped_logits, padded_logits, atol=1e-5, rtol=1e-5)
    assert grouped_grads.keys() == padded_grads.keys()
    for name in grouped_grads:
        torch.testing.assert_close(grouped_grads[name], padded_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_a_short_training_run_ends_with_the_same_weights_grouped_or_not():
    batch = 12
    inputs = {**pixels(batch), "roi_token_mask": varied_masks(batch), "context_token_mask": varied_masks(batch, 1)}
    labels = torch.arange(batch) % 3
    trained = []
    for grouped in (True, False):
        model = sparse_copy(build("deit", "vit", seed=3))
        model.config.group_by_length = grouped
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(3):
            model(**inputs, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        trained.append(model.state_dict())
    # Adam divides each gradient by its running size: where a gradient is ~1e-8 (attention keys of this tiny model)
    # float rounding of 1e-14 moves a step by up to ~0.3 % of lr (seen on some CPUs). A grouping bug moves weights
    # by a whole step (lr = 1e-2): 1 % of a step tells the two apart.
    for name, value in trained[0].items():
        torch.testing.assert_close(value, trained[1][name], atol=1e-4, rtol=1e-4, msg=name)
