"""Run the installed transformers release's OWN common tests (`ModelTesterMixin` on a DeiT pair and on a ViT + ResNet
pair, `ConfigTester`, `ImageProcessingTestMixin`) against RveRNet, and say which contracts fail beyond the ones we
list as not applicable. A maintainer's check for the day a new transformers
release installs (it reads the release's test files from its source distribution on PyPI, so it needs the network
and is not part of the test suite; our own tests (`test_modeling_common_rvernet.py`, `test_settings_rvernet.py`,
`test_image_processing_rvernet.py`) mirror every contract that applies, written in our words).

    python tests/check_transformers_mixins.py [--sdist transformers-X.Y.Z.tar.gz] [--keep DIR]

Exit status 0 when every failure is listed in NOT_APPLICABLE (with its reason), 1 otherwise (the new failures are
printed: mirror the contract in our tests and fix the model, or add it to the list with a reason).
"""

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


# transformers' test -> why it does not apply to RveRNet (our own test of the same contract, where there is one).
NOT_APPLICABLE = {
    "test_attention_outputs": "two towers, two attention stacks of different lengths: returned per tower as "
    "roi_attentions / context_attentions (test_attention_outputs_per_tower)",
    "test_hidden_states_output": "per tower: roi_hidden_states / context_hidden_states "
    "(test_hidden_states_per_tower_equal_the_tower_alone)",
    "test_retain_grad_hidden_states_attentions": "per tower, as above "
    "(test_training_reaches_every_parameter_and_retains_grads_of_tower_outputs)",
    "test_model_get_set_embeddings": "expects one token nn.Embedding; RveRNet has two towers' patch embeddings "
    "(each tower exposes its own, which is what enable_input_require_grads walks)",
    "test_eager_matches_sdpa_inference": "feeds only the main input; RveRNet needs both cut-outs "
    "(test_per_tower_attention_implementations, test_eager_matches_sdpa_in_bfloat16)",
    "test_training": "trains every class not registered in transformers' MODEL_MAPPING, so also the headless "
    "RveRNetModel, which has no loss; the head's training passes (test_problem_types)",
    "test_model_weights_reload_no_missing_tied_weights": "replaces a saved folder's weights file with a placeholder; "
    "a folder this package writes carries its weights' sha256 and a changed file is refused by design (issue 35.4: "
    "test_weights_damaged_into_finite_numbers_are_refused); missing weights of a folder without it are reported "
    "(test_missing_weights_are_initialised_and_reported)",
    # ImageProcessingTestMixin
    "test_call_pil": "reads `pixel_values`; RveRNet's processor gives the two cut-outs (roi_pixel_values, "
    "context_pixel_values) of every input type (test_pil_numpy_torch_inputs_agree, "
    "test_a_batch_of_mixed_formats_and_channel_counts_is_converted_to_rgb)",
    "test_call_numpy": "as test_call_pil",
    "test_call_pytorch": "as test_call_pil",
    "test_call_numpy_4_channels": "the towers read RGB: a 4-channel image with `do_convert_rgb=False` is refused, "
    "naming the image, and 4-value stats are refused, naming the setting (RGBA converts by default)",
    "test_fast_image_processor_explicit_none_preserved": "an explicit None for a setting without an 'unset' value "
    "(do_normalize...) is refused, naming it and its default, where transformers reads it as 'not applied' "
    "(test_none_is_refused_for_a_setting_without_an_unset_value); explicit values and the Nones that mean "
    "something survive save/load (test_explicit_values_and_meaningful_nones_survive_save_and_load)",
}


def harness() -> str:
    """The adapter between transformers' mixin and RveRNet (two tiny DeiT towers)."""
    return """
import unittest

import torch

from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, RveRNetImageProcessor, RveRNetModel
from rvernet_hf.testing_utils import IMAGE_SIZE, tiny_tower_config

from .test_configuration_common import ConfigTester
from .test_image_processing_common import ImageProcessingTester, ImageProcessingTestMixin
from .test_modeling_common import ModelTesterMixin, floats_tensor


class Tester:
    towers, fusion = ("deit", "deit"), "logits"

    def __init__(self, parent):
        self.parent, self.batch_size, self.num_labels, self.is_training = parent, 3, 4, True
        self.image_size, self.num_channels, self.num_hidden_layers, self.hidden_size = IMAGE_SIZE, 3, 2, 32
        self.seq_length, self.base_model_class = None, RveRNetModel

    def get_config(self):
        return RveRNetConfig(
            roi_config=tiny_tower_config(self.towers[0], num_labels=7),
            context_config=tiny_tower_config(self.towers[1], num_labels=5),
            fusion=self.fusion,
            fusion_hidden_size=24,
            num_labels=self.num_labels,
        )


    def prepare_config_and_inputs_for_common(self):
        shape = [self.batch_size, 3, IMAGE_SIZE, IMAGE_SIZE]
        return self.get_config(), {"roi_pixel_values": floats_tensor(shape), "context_pixel_values": floats_tensor(shape)}


class MixedTester(Tester):
    # A ViT-family tower beside a CNN (no attention), their heads dropped (fusion="features").
    towers, fusion = ("vit", "resnet"), "features"


class RveRNetMixinCheck(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (RveRNetModel, RveRNetForImageClassification)
    test_resize_embeddings = False
    _is_composite = True

    def setUp(self):
        self.model_tester = Tester(self)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs = dict(inputs_dict)
        if return_labels and model_class is RveRNetForImageClassification:
            inputs["labels"] = torch.arange(self.model_tester.batch_size) % self.model_tester.num_labels
        return inputs


class RveRNetMixedMixinCheck(RveRNetMixinCheck):
    def setUp(self):
        self.model_tester = MixedTester(self)


class RveRNetConfigMixinCheck(unittest.TestCase):
    # transformers' ConfigTester, one test per contract so that a failure is named.
    def setUp(self):
        self.config_tester = ConfigTester(
            self,
            config_class=RveRNetConfig,
            has_text_modality=False,
            common_properties=["num_labels", "fusion"],
            # top-level settings only, as transformers' composite models (CLIP...) test theirs: a sub-config is
            # written whole, so its JSON is not the dict given (the default towers are built)
            fusion="features",
            fusion_hidden_size=24,
            classifier_dropout=0.25,
        )


for _name in [name for name in dir(ConfigTester) if name.startswith(("create_and_test_", "check_"))]:
    setattr(
        RveRNetConfigMixinCheck,
        "test_" + _name.removeprefix("create_and_").removeprefix("test_"),
        lambda self, name=_name: getattr(self.config_tester, name)(),
    )


class ProcessorTester(ImageProcessingTester):
    def __init__(self, parent):
        # "center": the automatic ROI without a segmenter (no SAM weights here)
        super().__init__(parent, batch_size=3, min_resolution=20, max_resolution=48, size={"height": 32, "width": 32},
                         do_normalize=True, auto_roi="center")

    def _get_image_processing_classes(self):
        return {"torchvision": RveRNetImageProcessor}

    def expected_output_image_shape(self, images):
        return (3, 32, 32)


class RveRNetImageProcessingMixinCheck(ImageProcessingTestMixin, unittest.TestCase):
    image_processor_tester_class = ProcessorTester
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", help="transformers' source distribution (default: downloaded from PyPI)")
    parser.add_argument("--keep", help="build the check here (default: a temporary folder)")
    args = parser.parse_args(argv)
    import transformers

    version = transformers.__version__
    root = Path(args.keep or tempfile.mkdtemp(prefix="mixin-check-"))
    root.mkdir(parents=True, exist_ok=True)
    sdist = Path(args.sdist) if args.sdist else None
    if sdist is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"transformers=={version}", "--no-binary", ":all:"]
            + ["--no-deps", "-d", str(root / "sdist")],
            check=True,
        )
        sdist = next((root / "sdist").glob("transformers-*.tar.gz"))
    tests = root / "tests"
    for package in ("", "exporters", "generation", "utils"):
        (tests / package).mkdir(parents=True, exist_ok=True)
        (tests / package / "__init__.py").write_text("")
    with tarfile.open(sdist) as archive:
        for name in ("test_modeling_common.py", "test_configuration_common.py", "test_image_processing_common.py"):
            member = archive.getmember(f"transformers-{version}/tests/{name}")
            (tests / name).write_bytes(archive.extractfile(member).read())
    # Their sibling packages are not in the source distribution; the mixin needs only these names from them.
    (tests / "exporters" / "test_export.py").write_text("class ExportTesterMixin:\n    pass\n")
    (tests / "generation" / "test_utils.py").write_text("class GenerationTesterMixin:\n    pass\n")
    (tests / "utils" / "test_configuration_utils.py").write_text("config_common_kwargs = {}\n")
    (root / "utils").mkdir(exist_ok=True)  # the image-processing mixin imports this helper of their CI
    (root / "utils" / "fetch_hub_objects_for_ci.py").write_text("def url_to_local_path(url):\n    return url\n")
    (tests / "test_rvernet_mixin.py").write_text(harness())
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "tests/test_rvernet_mixin.py"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    # parameterized cases (`test_x_00_fp16_...`) count under their test's name
    names = re.findall(
        r"^FAILED \S+::RveRNet(?:Mixed|Config|ImageProcessing)?MixinCheck::(test_\w+)", run.stdout, re.M
    )
    failed = sorted({re.sub(r"_\d\d(_\w+)?$", "", name) for name in names})
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    print(f"transformers {version}: {summary}")
    for name in failed:
        print(f"  {'not applicable' if name in NOT_APPLICABLE else 'NEW FAILURE'}: {name}")
    new = [name for name in failed if name not in NOT_APPLICABLE]
    if new or run.returncode not in (0, 1):
        print(run.stdout[-6000:] if new else run.stderr[-4000:])
        return 1
    print(f"every failure is listed as not applicable ({len(failed)} of {len(NOT_APPLICABLE)}); the rest pass.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
