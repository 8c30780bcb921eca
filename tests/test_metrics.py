"""The shipped evaluate metric module (offline) against scikit-learn (which the Hub's accuracy/f1 metrics wrap)."""

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from transformers import EvalPrediction

from rvernet_hf.metrics import ClassificationMetrics, load_metric, resolve_label_ids, save_confusion_matrix


def test_metric_module_agrees_with_scikit_learn():
    rng = np.random.default_rng(0)
    references = rng.integers(0, 6, 200)
    predictions = np.where(rng.uniform(size=200) < 0.6, references, rng.integers(0, 6, 200))
    result = load_metric().compute(
        predictions=predictions, references=references, num_labels=6, ambiguous_labels=[0, 1]
    )
    assert result["accuracy"] == pytest.approx(accuracy_score(references, predictions))
    assert result["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro"))
    assert result["ambiguous_f1"] == pytest.approx(f1_score(references, predictions, labels=[0, 1], average="macro"))
    assert result["confusion_matrix"] == confusion_matrix(references, predictions).tolist()
    assert sum(row["support"] for row in result["per_class"].values()) == 200


def test_ambiguous_f1_is_restricted_to_the_group_inside_the_full_classifier():
    # The pair is confused with each other; the easy class is perfect: ambiguous F1 is low, macro F1 higher.
    references = [0, 0, 1, 1, 2, 2]
    predictions = [1, 0, 0, 1, 2, 2]
    result = load_metric().compute(predictions=predictions, references=references, ambiguous_labels=[0, 1])
    assert result["ambiguous_f1"] == pytest.approx(0.5)
    assert result["macro_f1"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_metric_rejects_ids_outside_the_label_set():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        load_metric().compute(predictions=[0, 5], references=[0, 1], num_labels=3)
    with pytest.raises(ValueError, match="ambiguous_labels"):
        load_metric().compute(predictions=[0, 1], references=[0, 1], num_labels=3, ambiguous_labels=[7])


def test_trainer_metrics_take_the_fused_logits_and_name_unknown_labels():
    metrics = ClassificationMetrics(
        {0: "ketchup", 1: "chili_paste", 2: "bread"}, ambiguous_labels=["ketchup", "chili_paste"]
    )
    fused = np.array([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]])
    roi_only = np.zeros((3, 3))  # RveRNet's extra outputs come after the fused logits
    scores = metrics(EvalPrediction(predictions=(fused, roi_only, roi_only), label_ids=np.array([0, 1, 2])))
    assert scores == {"accuracy": 1.0, "macro_f1": 1.0, "ambiguous_f1": 1.0}
    assert metrics.last_result["per_class"]["bread"]["support"] == 1
    with pytest.raises(ValueError, match=r"unknown labels \['mustard'\]"):
        resolve_label_ids(["ketchup", "mustard"], {"ketchup": 0})


def test_confusion_matrix_png(tmp_path):
    path = save_confusion_matrix([[3, 1], [0, 4]], ["ketchup", "chili_paste"], tmp_path / "cm.png", title="t")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100
    assert not list(tmp_path.glob(".*.tmp"))
