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
