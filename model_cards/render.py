"""Render the shipped model cards from the package's template (`model_cards/TEMPLATE.md` links to it).

    python model_cards/render.py   # rewrites model_cards/rvernet-deit-b/README.md

The cards of trained models are written by `rvernet-hf train` itself, with the metrics it measured.
"""

from pathlib import Path

from transformers import DeiTConfig

from rvernet_hf import RveRNetConfig
from rvernet_hf.hub import render_model_card


DEIT_B_DISTILLED = "facebook/deit-base-distilled-patch16-224"


def rvernet_deit_b_card():
    """The paper's configuration: two DeiT-B distilled towers, FoodSeg103 + ketchup/chili paste, 105 classes."""
    tower = DeiTConfig(architectures=["DeiTForImageClassificationWithTeacher"])  # DeiT-B/16 at 224 px
    tower._name_or_path = DEIT_B_DISTILLED
    config = RveRNetConfig(roi_config=tower, context_config=tower, num_labels=105)
    training = f"""\
The paper's configuration (Jin, 2024): ROI and context towers both `{DEIT_B_DISTILLED}` (DeiT-B distilled by its
authors from a RegNetY-16GF CNN), logits fusion with a 640-wide hidden layer, 105 classes: FoodSeg103's 103 classes
(one sample per (image, class present): 18,320 train / 7,769 test) plus ketchup (69/38) and chili paste (72/34)
photos. The ambiguous group is ketchup and chili paste.

To train it with this package (one GPU or many; masks from SAM are computed once and cached):

```bash
pip install "rvernet-hf[train,teacher]"
# 1. the CNN teacher must predict the same 105 labels: fine-tune it on full images first
rvernet-hf train --model_type single --model_name_or_path timm/efficientnet_b0.ra_in1k \\
    --dataset_name <foodseg103-id> --data_layout segmentation --id2label_file id2label.json \\
    --output_dir teacher-105 --do_train --do_eval --num_train_epochs 10 --bf16
# 2. RveRNet with hard distillation from it (cached teacher logits)
accelerate launch --config_file examples/accelerate_multi_gpu_bf16.yaml -m rvernet_hf.cli train \\
    --dataset_name <foodseg103-id> --data_layout segmentation --id2label_file id2label.json \\
    --roi_model_name_or_path {DEIT_B_DISTILLED} --context_model_name_or_path {DEIT_B_DISTILLED} \\
    --distillation_type hard --teacher_model_name_or_path teacher-105 --cache_teacher_logits \\
    --ambiguous_labels ketchup,chili_paste --output_dir rvernet-deit-b --do_train --do_eval --push_to_hub \\
    --hub_model_id <you>/rvernet-deit-b
```

(The ketchup and chili-paste photos are not part of FoodSeg103; add them as extra samples with masks.)"""
    limitations = """\
- **No weights are published under this card by us yet**: we have not run this configuration (it needs the
  pretrained DeiT-B and SAM checkpoints and a GPU). The paper reports RveRNet beating single models by about 10 F1
  points on the ambiguous pair; secondary summaries quote F1 0.8286 for DeiT towers with distillation (unverified).
  Those are the paper's claims, not results of this package."""
    return render_model_card(
        model_name="rvernet-deit-b",
        repo_id="<you>/rvernet-deit-b",
        config=config,
        summary="RveRNet with two DeiT-B (distilled) towers, the configuration of the paper, for 105 food classes "
        "(FoodSeg103 + ketchup and chili paste).",
        datasets=["EduardoPacheco/FoodSeg103"],
        base_model=[DEIT_B_DISTILLED],
        metrics=None,
        dataset_name="FoodSeg103 + ketchup/chili paste",
        distillation="hard, from a CNN teacher fine-tuned on the "
        "same 105 labels (the towers themselves are DeiT's ImageNet-distilled checkpoints)",
        training=training,
        ambiguous_labels=["ketchup", "chili_paste"],
        limitations=limitations,
        tags=["food"],
    )


if __name__ == "__main__":
    target = Path(__file__).parent / "rvernet-deit-b" / "README.md"
    target.write_text(str(rvernet_deit_b_card()) + "\n")
    print(f"wrote {target}")
