"""Fine-tune RveRNet (or a single classifier: the CNN teacher, a baseline) with optional CNN-teacher distillation.

The same code as `rvernet-hf train`; see `rvernet_hf/training/arguments.py` for every argument (`--help`). Runs under
`python`, `torchrun --nproc_per_node N` and `accelerate launch --config_file examples/accelerate_multi_gpu_bf16.yaml`.

    python examples/run_rvernet.py --train_dir data/train --train_masks_dir data/train_masks \
        --validation_dir data/validation --validation_masks_dir data/validation_masks \
        --distillation_type hard --teacher_model_name_or_path teacher-folder --cache_teacher_logits \
        --output_dir rvernet-food --do_train --do_eval
    python examples/run_rvernet.py args.json   # all arguments from one JSON file
"""

from rvernet_hf.training import main


if __name__ == "__main__":
    main()
