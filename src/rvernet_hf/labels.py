# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""Label maps: the one place that normalises them and the one place that compares two label sets.

Configs written to JSON come back with string keys (`{"0": "ketchup"}`), datasets give names in id order, users
give either: everything that reads a label map goes through `normalize_id2label`, and every check that two label
sets agree (a dataset and a checkpoint, a teacher and its student) goes through `check_same_labels`. (The uploaded
`modeling_rvernet.py` keeps its own one-line conversion: remote code imports nothing from this package.)
"""

from collections.abc import Mapping, Sequence

from transformers.utils import logging


logger = logging.get_logger(__name__)


def normalize_id2label(labels: Mapping | Sequence[str]) -> dict[int, str]:
    """`{id: name}` with int keys 0..n-1 in order, from a mapping (int or str keys) or a list of names in id order.
    Ids that are not 0..n-1 are refused. (Names may repeat: ImageNet-1k names two classes "crane".)"""
    if isinstance(labels, Mapping):
        try:
            id2label = {int(key): str(name) for key, name in labels.items()}
        except (TypeError, ValueError):
            raise ValueError(f"label ids must be integers, got {sorted(map(str, labels))[:10]}.") from None
    else:
        id2label = {index: str(name) for index, name in enumerate(labels)}
    if sorted(id2label) != list(range(len(id2label))):
        raise ValueError(f"label ids must be 0..{len(id2label) - 1}, got {sorted(id2label)[:10]}.")
    return {i: id2label[i] for i in range(len(id2label))}


def label2id_of(id2label: Mapping | Sequence[str]) -> dict[str, int]:
    """The inverse map `{name: id}` of a (normalised) label map."""
    return {name: index for index, name in normalize_id2label(id2label).items()}


def is_generic(id2label: Mapping | Sequence[str]) -> bool:
    """transformers' placeholder names (`LABEL_0`, `LABEL_1`, ...): a model that was never told its labels."""
    return all(name == f"LABEL_{index}" for index, name in normalize_id2label(id2label).items())


def set_config_labels(config, labels: Mapping | Sequence[str]) -> dict[int, str]:
    """Write a label map into a transformers config (`id2label`, `label2id`; timm_wrapper also keeps `label_names`,
    which it saves instead); returns the normalised map."""
    id2label = normalize_id2label(labels)
    config.id2label = id2label
    config.label2id = label2id_of(id2label)
    if getattr(config, "model_type", None) == "timm_wrapper":
        config.label_names = list(id2label.values())
    return id2label


def preview(names: Sequence[str], limit: int = 10) -> str:
    """The first `limit` names, for a message (`...` when there are more)."""
    return f"{list(names[:limit])}{'...' if len(names) > limit else ''}"


def check_same_labels(
    expected: Mapping | Sequence[str],
    given: Mapping | Sequence[str],
    expected_name: str,
    given_name: str,
    hint: str = "",
) -> None:
    """Refuse two label sets that differ: in count, or in the name of an id (unless one side has only transformers'
    placeholder names, where the count is all there is to check: a warning says so). The message names both sides,
    the labels the expected side lacks, and the first differing ids."""
    expected, given = normalize_id2label(expected), normalize_id2label(given)
    generic = is_generic(expected) or is_generic(given)
    unknown = [name for name in given.values() if name not in expected.values()]
    if len(expected) != len(given):
        raise ValueError(
            f"{given_name} has {len(given)} labels but {expected_name} has {len(expected)}: they must share one "
            "label set"
            + (f"; labels not in {expected_name}'s label2id: {preview(unknown)}" if unknown and not generic else "")
            + f".{hint}"
        )
    if generic:
        logger.warning(f"{given_name} or {expected_name} has placeholder label names: only the count was checked.")
        return
    if expected == given:
        return
    differing = [(i, given[i], expected[i]) for i in sorted(given) if given[i] != expected[i]]
    shown = ", ".join(f"{i}: {g!r} vs {e!r}" for i, g, e in differing[:5])
    raise ValueError(
        f"{given_name} and {expected_name} name {len(differing)} label ids differently ({shown}); "
        + (f"labels not in {expected_name}'s label2id: {preview(unknown)}. " if unknown else "same names, other ids. ")
        + f"{given_name}: {preview(list(given.values()))}, {expected_name}: {preview(list(expected.values()))}."
        + hint
    )


__all__ = [
    "check_same_labels",
    "is_generic",
    "label2id_of",
    "normalize_id2label",
    "preview",
    "set_config_labels",
]
