"""Push a trained model folder to the Hub (HTTP API): checks the folder, reloads it and compares outputs, uploads.

huggingface-cli login
python examples/push_to_hub.py rvernet-demo/rvernet --repo_id you/rvernet-demo [--revision v1] [--create_pr]
python examples/push_to_hub.py rvernet-demo/rvernet --repo_id you/rvernet-demo --dry_run_dir upload-preview
"""

import argparse

from transformers import AutoModelForImageClassification

from rvernet_hf.hub import push_folder, verify_reload


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--repo_id", required=True)
    parser.add_argument("--revision")
    parser.add_argument("--create_pr", action="store_true")
    parser.add_argument("--private", action="store_true", default=None)
    parser.add_argument("--dry_run_dir", help="write the exact upload here instead of pushing")
    args = parser.parse_args(argv)
    model = AutoModelForImageClassification.from_pretrained(args.folder)
    print(f"reload parity: max |logits difference| = {verify_reload(model, args.folder):.2e}")
    where = push_folder(
        args.folder,
        args.repo_id,
        revision=args.revision,
        create_pr=args.create_pr,
        private=args.private,
        dry_run_dir=args.dry_run_dir,
    )
    print(f"{'dry run written to' if args.dry_run_dir else 'pushed:'} {where}")
    return where


if __name__ == "__main__":
    main()
