"""What refusing damaged weights costs at load (issue 24): `from_pretrained` of an RveRNet with two DeiT-B-sized
towers (86 M parameters each, 224 px), with the finite-weights check and without it (the check alone, and the load).

    python benchmarks/load_check.py [--layers 12] [--hidden 768] [--repeats 3] [--json out.json]

Prints the load time, the check's time (one pass over the parameters and buffers, one host sync) and its share.
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from transformers import DeiTConfig
    from transformers.utils import logging

    from rvernet_hf import RveRNetConfig, RveRNetForImageClassification
    from rvernet_hf.testing_utils import machine_facts, median_seconds
    from rvernet_hf.weights_rvernet import check_finite_weights, verify_checksums

    logging.set_verbosity_error()
    tower = DeiTConfig(
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 64),
        intermediate_size=4 * args.hidden,
        image_size=args.image_size,
        patch_size=16,
    )
    config = RveRNetConfig(roi_config=tower, context_config=tower, num_labels=105)
    with tempfile.TemporaryDirectory() as folder:
        model = RveRNetForImageClassification(config)
        parameters = sum(p.numel() for p in model.parameters())
        model.save_pretrained(folder)
        del model
        load = median_seconds(lambda: RveRNetForImageClassification.from_pretrained(folder), args.repeats)
        loaded = RveRNetForImageClassification.from_pretrained(folder)
        check = median_seconds(lambda: check_finite_weights(loaded, folder), max(args.repeats, 5))
        checksum = median_seconds(lambda: verify_checksums(folder), max(args.repeats, 5))
    figures = {
        **machine_facts(),
        "parameters": parameters,
        "from_pretrained_s": load,
        "finite_check_s": check,
        "checksum_s": checksum,
        "check_share_of_load": check / load,
        "checksum_share_of_load": checksum / load,
    }
    print(f"RveRNet, two DeiT towers ({args.layers} layers, {args.hidden} wide): {parameters / 1e6:.0f} M parameters")
    print(f"  from_pretrained (checks included): {load:.3f} s; the finite-and-magnitude check: {check * 1000:.1f} ms")
    print(f"  the weights file's sha256 against the one written at save: {checksum * 1000:.1f} ms")
    print(f"  the checks are {100 * check / load:.1f} % and {100 * checksum / load:.1f} % of the load")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
