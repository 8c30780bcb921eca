# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Evaluation: the shipped `evaluate` metric module, a `compute_metrics` for `Trainer`, the confusion-matrix PNG."""

import os
from pathlib import Path

import numpy as np

from ..run_folder import replaced_atomically


METRIC_PATH = str(Path(__file__).with_name("rvernet_classification.py"))


def load_metric():
    """The package's metric module through `evaluate.load` (a local path: no network)."""
    import evaluate

    return evaluate.load(METRIC_PATH)


def resolve_label_ids(names_or_ids, label2id: dict[str, int], field_name: str = "ambiguous_labels") -> list[int]:
    """Label names (or ids) -> ids, with an error naming the unknown ones and the known labels."""
    label2id = {str(k): int(v) for k, v in label2id.items()}
    ids, unknown = [], []
    for item in names_or_ids or ():
        item = str(item).strip()
        if item in label2id:
            ids.append(label2id[item])
        elif item.isdigit() and int(item) in label2id.values():
            ids.append(int(item))
        else:
            unknown.append(item)
    if unknown:
        raise ValueError(f"`{field_name}` names unknown labels {unknown}; known labels: {sorted(label2id)}.")
    return ids


class ClassificationMetrics:
    """`Trainer(compute_metrics=...)`: accuracy, macro-F1 and ambiguous-group F1 as scalars for the logs; the full
    result of the last call (per-class report, confusion matrix) stays in `last_result`.

    Args:
        id2label: the model's labels.
        ambiguous_labels: names or ids of the ambiguous group (the paper's ketchup and chili paste).
    """

    def __init__(self, id2label: dict[int, str], ambiguous_labels=None):
        self.id2label = {int(k): v for k, v in id2label.items()}
        self.ambiguous_ids = resolve_label_ids(ambiguous_labels, {v: k for k, v in self.id2label.items()})
        self.metric = load_metric()
        self.last_result: dict | None = None

    def __call__(self, eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        if isinstance(logits, (tuple, list)):  # RveRNet also returns each tower's logits: the fused ones come first
            logits = logits[0]
        result = self.metric.compute(
            predictions=np.asarray(logits).argmax(-1),
            references=np.asarray(eval_prediction.label_ids),
            num_labels=len(self.id2label),
            ambiguous_labels=self.ambiguous_ids or None,
            label_names=[self.id2label[i] for i in range(len(self.id2label))],
        )
        self.last_result = result
        return {k: v for k, v in result.items() if isinstance(v, float)}


def save_confusion_matrix(matrix, label_names: list[str], path: str | os.PathLike, title: str = "") -> str:
    """A confusion-matrix PNG (rows: true, columns: predicted; counts in the cells), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    size = max(4.0, 0.45 * len(label_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(label_names)), label_names, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(label_names)), label_names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if title:
        axis.set_title(title)
    if len(label_names) <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), value in np.ndenumerate(matrix):
            axis.text(
                column,
                row,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > threshold else "black",
            )
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
    return str(path)


__all__ = ["METRIC_PATH", "ClassificationMetrics", "load_metric", "resolve_label_ids", "save_confusion_matrix"]
