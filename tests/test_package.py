"""The package surface: the public API at the top level, lazily, so that `import rvernet_hf` needs only the core
dependencies and a missing extra is named."""

import subprocess
import sys
import textwrap

import rvernet_hf


def test_every_public_name_is_reachable_from_the_top_level():
    for name in rvernet_hf.__all__:
        assert getattr(rvernet_hf, name) is not None, name
    from rvernet_hf.data import precompute_roi_masks
    from rvernet_hf.distillation import RveRNetDistillationTrainer

    assert rvernet_hf.RveRNetDistillationTrainer is RveRNetDistillationTrainer
    assert rvernet_hf.precompute_roi_masks is precompute_roi_masks
    assert {"DistillationTrainingArguments", "load_image_folder_dataset", "RveRNetModel"} <= set(dir(rvernet_hf))


def test_import_without_the_train_extra_and_a_clear_error_naming_it():
    script = textwrap.dedent(
        """
        import sys
        for name in ("accelerate", "datasets", "evaluate"):
            sys.modules[name] = None  # as if the train extra were not installed
        import rvernet_hf
        from rvernet_hf import RveRNetForImageClassification, RveRNetImageProcessor, RveRNetModel
        try:
            rvernet_hf.RveRNetDistillationTrainer
        except ImportError as error:
            print("ERROR:", error)
        else:
            raise SystemExit("no ImportError")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "needs the 'train' extra" in result.stdout and "pip install 'rvernet-hf[train]'" in result.stdout
    assert "accelerate, datasets, evaluate" in result.stdout


def test_unknown_attribute_is_an_attribute_error():
    try:
        rvernet_hf.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_label_maps_have_one_normaliser_and_one_comparison():
    import pytest

    from rvernet_hf.labels import check_same_labels, label2id_of, normalize_id2label

    assert normalize_id2label({"1": "b", "0": "a"}) == {0: "a", 1: "b"} == normalize_id2label(["a", "b"])
    assert label2id_of({"0": "a", "1": "b"}) == {"a": 0, "b": 1}
    with pytest.raises(ValueError, match=r"label ids must be 0..1, got \[0, 2\]"):
        normalize_id2label({0: "a", 2: "b"})
    check_same_labels({0: "a", 1: "b"}, ["a", "b"], "the model", "the dataset")
    with pytest.raises(ValueError, match=r"the dataset and the model name 2 label ids differently.*same names, other"):
        check_same_labels({0: "a", 1: "b"}, ["b", "a"], "the model", "the dataset")
    with pytest.raises(ValueError, match=r"has 3 labels but the model has 2.*not in the model's label2id: \['c'\]"):
        check_same_labels(["a", "b"], ["a", "b", "c"], "the model", "the dataset")
    check_same_labels(["a", "b"], {0: "LABEL_0", 1: "LABEL_1"}, "the student", "the teacher")  # placeholders: count
