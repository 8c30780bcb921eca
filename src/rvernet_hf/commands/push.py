# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`rvernet-hf push`: upload a saved model folder (after checking it and its card) over the Hub's HTTP API, or write
the exact upload (dry run); optionally a Space that serves it (`hub.push_folder`)."""

import argparse

from .options import check_paths


def register(subparsers) -> None:
    parser = subparsers.add_parser("push", help="upload a saved model folder to the Hub (HTTP API), or dry-run it")
    parser.add_argument("folder", help="a folder written by `train` (weights, config with auto_map, code, README.md)")
    parser.add_argument("--repo_id", required=True, help="namespace/name on the Hub")
    parser.add_argument("--revision", help="branch to push to (created if missing)")
    parser.add_argument("--create_pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--private", action="store_true", default=None, help="create the repository as private")
    parser.add_argument("--token", help="Hub token (default: the logged-in one)")
    parser.add_argument("--commit_message", default="Upload RveRNet model")
    parser.add_argument("--dry_run_dir", help="upload nothing: write the exact folder that would be uploaded here")
    parser.add_argument(
        "--space_id",
        help="also create a Gradio Space (namespace/name) that serves the model with `rvernet-hf app`; the model card "
        "links it (with --dry_run_dir, its files go to DRY_RUN_DIR-space)",
    )
    parser.add_argument(
        "--sam_model_id",
        help="the segmenter's Hub id to name in the upload when the saved processor names a local path (default: "
        "facebook/sam-vit-base)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub import push_folder

    check_paths(local={"FOLDER": args.folder})
    where = push_folder(
        args.folder,
        args.repo_id,
        revision=args.revision,
        create_pr=args.create_pr,
        private=args.private,
        token=args.token,
        commit_message=args.commit_message,
        dry_run_dir=args.dry_run_dir,
        sam_model_id=args.sam_model_id,
        space_id=args.space_id,
    )
    print(f"dry run: the upload would be exactly {where}" if args.dry_run_dir else f"pushed: {where}")
    if args.space_id:
        space = f"{args.dry_run_dir}-space" if args.dry_run_dir else f"https://huggingface.co/spaces/{args.space_id}"
        print(f"dry run: the Space would be exactly {space}" if args.dry_run_dir else f"Space: {space}")
    return 0
