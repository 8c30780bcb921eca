# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""RveRNet classification metrics as an `evaluate` module that ships with the package (works offline).

    >>> import evaluate
    >>> from rvernet_hf.metrics import METRIC_PATH
    >>> metric = evaluate.load(METRIC_PATH)
    >>> metric.compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 1], ambiguous_labels=[0, 1], num_labels=3)

This file imports only `evaluate`, `datasets`, `numpy` and `scikit-learn`: `evaluate.load` copies it into its module
cache and imports it on its own.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


_DESCRIPTION = """
Accuracy, macro-F1 over all classes, and the RveRNet paper's "ambiguous F1": macro-F1 restricted to a named group of
labels (ketchup and chili paste in the paper) inside the full multi-class classifier (scikit-learn's `f1_score` with
`labels=<group ids>, average="macro"`). Also a per-class report and the confusion matrix.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): true class ids.
    num_labels (`int`, *optional*): number of classes (so that classes never predicted nor seen still count in the
        confusion matrix and the per-class report). Defaults to the largest id seen + 1.
    ambiguous_labels (`list[int]`, *optional*): the ids of the ambiguous group; adds `ambiguous_f1`.
    label_names (`list[str]`, *optional*): names for the per-class report.
Returns:
    accuracy, macro_f1, ambiguous_f1 (when asked), per_class ({name: {precision, recall, f1, support}}),
    confusion_matrix (rows: true class, columns: predicted class).
"""

_CITATION = """
@article{jin2024rvernet,
  title={Knowledge distillation to effectively attain both region-of-interest and global semantics from an image
         where multiple objects appear},
  author={Jin, Seonwhee},
  journal={arXiv preprint arXiv:2407.08257},
  year={2024}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RveRNetClassification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://arxiv.org/abs/2407.08257"],
        )

    def _compute(self, predictions, references, num_labels=None, ambiguous_labels=None, label_names=None):
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if predictions.size == 0:
            raise ValueError("no predictions to score.")
        seen = int(max(predictions.max(), references.max())) + 1
        num_labels = int(num_labels) if num_labels is not None else seen
        if seen > num_labels or min(predictions.min(), references.min()) < 0:
            raise ValueError(f"class ids must be in [0, {num_labels}); got ids up to {seen - 1}.")
        labels = list(range(num_labels))
        names = list(label_names) if label_names is not None else [str(i) for i in labels]
        if len(names) != num_labels:
            raise ValueError(f"`label_names` has {len(names)} names for {num_labels} labels.")
        # Macro-F1 over the classes present in the references or the predictions, as scikit-learn's default.
        results = {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(f1_score(references, predictions, average="macro", zero_division=0)),
        }
        if ambiguous_labels:
            group = [int(i) for i in ambiguous_labels]
            if any(not 0 <= i < num_labels for i in group):
                raise ValueError(f"`ambiguous_labels` {group} must be class ids in [0, {num_labels}).")
            results["ambiguous_f1"] = float(
                f1_score(references, predictions, labels=group, average="macro", zero_division=0)
            )
        precision, recall, f1, support = precision_recall_fscore_support(
            references, predictions, labels=labels, zero_division=0
        )
        results["per_class"] = {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)
        }
        results["confusion_matrix"] = confusion_matrix(references, predictions, labels=labels).tolist()
        return results
