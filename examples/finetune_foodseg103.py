"""Fine-tune RveRNet from a semantic-segmentation dataset in the FoodSeg103 layout, as the paper did: one sample per
(image, class present), the class's pixels as the ROI mask (no SAM needed).

    FoodSeg103/Images/img_dir/{train,test}/*.jpg   FoodSeg103/Images/ann_dir/{train,test}/*.png   FoodSeg103/category_id.txt

    python examples/finetune_foodseg103.py --foodseg_dir FoodSeg103 --output_dir rvernet-foodseg \
        --roi_model_name_or_path facebook/deit-base-distilled-patch16-224 \
        --context_model_name_or_path facebook/deit-base-distilled-patch16-224 --num_train_epochs 30 --bf16
"""

import argparse
import os

from rvernet_hf.data import load_foodseg103_folder, segmentation_to_roi_dataset
from rvernet_hf.training import main as train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--foodseg_dir", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--min_area", type=float, default=0.01, help="smallest class area kept (image fraction)")
    known, rest = parser.parse_known_args(argv)
    import datasets

    splits = {}
    for split, name in (("train", "train"), ("test", "validation")):
        images, id2label = load_foodseg103_folder(known.foodseg_dir, split)
        splits[name] = segmentation_to_roi_dataset(images, id2label, min_area=known.min_area)
    prepared = os.path.join(known.output_dir, "roi-dataset")
    datasets.DatasetDict(splits).save_to_disk(prepared)  # built once; the training script reads it from disk
    return train(
        [
            "--dataset_name",
            prepared,
            "--output_dir",
            known.output_dir,
            "--do_train",
            "--do_eval",
            "--eval_strategy",
            "epoch",
            "--save_strategy",
            "epoch",
            "--report_to",
            "none",
            *rest,
        ]
    )


if __name__ == "__main__":
    main()
