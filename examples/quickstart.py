"""The smallest end-to-end RveRNet run: build, train a few steps, save, reload through the Auto classes, predict.

Runs offline on CPU in seconds. Two tiny random DeiT towers (no pretrained weights needed), a synthetic scene whose
label is decided by what surrounds the object, the paper's two cut-outs made by hand from the object's mask.

    python examples/quickstart.py [--output_dir rvernet-quickstart] [--steps 60]
"""

import argparse

import torch
from transformers import AutoModelForImageClassification, DeiTConfig

from rvernet_hf import RveRNetConfig, RveRNetForImageClassification, export_model


def make_batch(batch_size: int, size: int, generator: torch.Generator):
    """Red blobs (the ROI) on a background whose colour decides the label: the ROI alone cannot tell them apart."""
    labels = torch.randint(0, 2, (batch_size,), generator=generator)
    images = torch.rand(batch_size, 3, size, size, generator=generator) * 0.2
    images[labels == 0, 1] += 0.6  # green surroundings -> class 0
    images[labels == 1, 2] += 0.6  # blue surroundings -> class 1
    masks = torch.zeros(batch_size, 1, size, size, dtype=torch.bool)
    for i in range(batch_size):
        y, x = torch.randint(4, size - 12, (2,), generator=generator).tolist()
        masks[i, :, y : y + 8, x : x + 8] = True
    images = torch.where(masks, torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1), images)
    roi = torch.where(masks, images, torch.zeros(()))  # outside the ROI blacked out
    context = torch.where(masks, torch.zeros(()), images)  # the ROI blacked out
    return roi, context, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="rvernet-quickstart")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()

    torch.manual_seed(0)
    tower = DeiTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
        num_labels=8,
    )
    config = RveRNetConfig(
        roi_config=tower,
        context_config=tower,
        fusion_hidden_size=32,
        id2label={0: "ketchup", 1: "chili paste"},
        label2id={"ketchup": 0, "chili paste": 1},
    )
    model = RveRNetForImageClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(1, args.steps + 1):
        roi, context, labels = make_batch(16, 32, generator)
        loss = model(roi_pixel_values=roi, context_pixel_values=context, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 20 == 0:
            print(f"step {step:3d}  loss {loss.item():.3f}")

    export_model(model, args.output_dir)  # weights, config, modeling code and the prompted pipeline's code
    reloaded = AutoModelForImageClassification.from_pretrained(args.output_dir).eval()
    roi, context, labels = make_batch(64, 32, generator)
    with torch.no_grad():
        predictions = reloaded(roi_pixel_values=roi, context_pixel_values=context).logits.argmax(-1)
    accuracy = (predictions == labels).float().mean().item()
    print(
        f"saved to {args.output_dir}/ ; reloaded with AutoModelForImageClassification ; held-out accuracy {accuracy:.2f}"
    )
    print("first predictions:", [reloaded.config.id2label[int(i)] for i in predictions[:4]])


if __name__ == "__main__":
    main()
