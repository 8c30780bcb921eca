# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The built-in benchmark: seeded, photo-like table scenes with several foods and exact ROI masks.

No food dataset can be downloaded everywhere, so this generator makes one where the paper's situation holds by
construction:

- `ketchup` and `chili_paste` (the ambiguous group) are drawn from the *same* red-paste appearance distribution: the
  ROI alone cannot tell them apart. Ketchup sits with fries and a burger, chili paste with a rice bowl and greens,
  each with probability `context_reliability` (default 0.85): the rest of the time the surroundings are the other
  dish's, so context is informative but not a label leak.
- `fried_egg`, `broccoli`, `bread` look distinct on their own but appear with either dish's surroundings at random:
  context alone cannot tell them apart.
- 2 to 4 context objects per scene, random positions, scales, table colours, lighting (brightness, colour cast,
  gradient), pixel noise, and partial occlusion of the ROI by a context object (the mask is the visible part).

So an ROI-only model is at chance on the ambiguous pair, a context-only model is at chance among the easy classes and
at about `context_reliability` on the pair, and only a model that reads both can do well on all of them.

Written as image folders with masks (`<out>/<split>/<class>/<name>.png`, `<out>/<split>_masks/<class>/<name>.png`,
`<split>/metadata.jsonl` with each ROI's box), loadable with `rvernet_hf.data.load_image_folder_dataset`, plus
`<out>/dataset_info.json` naming the ambiguous group, and each scene's other objects as an instance map
(`<out>/<split>_object_masks/<class>/<name>.png`: 0 where no other object is visible, k on the k-th), for the
"another object's mask" perturbation of `rvernet-hf evaluate`.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


AMBIGUOUS_CLASSES = ("ketchup", "chili_paste")
EASY_CLASSES = ("fried_egg", "broccoli", "bread")
CLASSES = (*AMBIGUOUS_CLASSES, *EASY_CLASSES)
# Which dish's surroundings go with each ambiguous class (the easy ones get either at random).
CONTEXT_OF = {"ketchup": "fast_food", "chili_paste": "rice_meal"}
CONTEXT_OBJECTS = {"fast_food": ("fries", "burger"), "rice_meal": ("rice_bowl", "greens")}


@dataclass
class SceneSpec:
    """What one generated image holds (saved in metadata.jsonl)."""

    label: str
    context: str
    box: tuple[int, int, int, int]
    occluded: bool


def _jitter(rng: np.random.Generator, colour, amount: float = 18.0) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in colour)


def _blob(rng, cx, cy, radius, points=14, roughness=0.25):
    """An irregular closed polygon around (cx, cy)."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = radius * (1 + rng.uniform(-roughness, roughness, points))
    return [
        (float(cx + r * np.cos(a)), float(cy + r * np.sin(a) * rng.uniform(0.7, 1.0))) for a, r in zip(angles, radii)
    ]


def _draw_object(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, rng: np.random.Generator):
    """Draw one food; the same calls on an "L" mask layer (fill=255) give its exact mask."""
    mask_mode = draw.im.mode == "L"

    def fill(colour):
        return 255 if mask_mode else _jitter(rng, colour)

    if kind in AMBIGUOUS_CLASSES:  # one red-paste distribution for both
        draw.polygon(_blob(rng, cx, cy, r, roughness=0.3), fill=fill((190, 30, 25)))
        if not mask_mode:
            for _ in range(3):
                dx, dy = rng.uniform(-0.5, 0.5, 2) * r
                draw.ellipse(
                    [cx + dx - r * 0.15, cy + dy - r * 0.1, cx + dx + r * 0.15, cy + dy + r * 0.1],
                    fill=_jitter(rng, (225, 70, 60), 12),
                )
    elif kind == "fried_egg":
        draw.polygon(_blob(rng, cx, cy, r, roughness=0.2), fill=fill((245, 243, 235)))
        if not mask_mode:
            draw.ellipse([cx - r * 0.4, cy - r * 0.4, cx + r * 0.4, cy + r * 0.4], fill=_jitter(rng, (250, 185, 20)))
    elif kind == "broccoli":
        for _ in range(6):
            dx, dy = rng.uniform(-0.55, 0.55, 2) * r
            draw.ellipse(
                [cx + dx - r * 0.45, cy + dy - r * 0.45, cx + dx + r * 0.45, cy + dy + r * 0.45],
                fill=fill((40, 120, 40)),
            )
        draw.rectangle([cx - r * 0.15, cy, cx + r * 0.15, cy + r], fill=fill((120, 170, 90)))
    elif kind == "bread":
        draw.rounded_rectangle([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], radius=r * 0.4, fill=fill((200, 140, 70)))
        if not mask_mode:
            draw.rounded_rectangle(
                [cx - r * 0.75, cy - r * 0.45, cx + r * 0.75, cy + r * 0.45],
                radius=r * 0.3,
                fill=_jitter(rng, (240, 215, 165)),
            )
    elif kind == "fries":
        for _ in range(9):
            x0, y0 = cx + rng.uniform(-r, r * 0.6), cy + rng.uniform(-r, r * 0.3)
            draw.rectangle(
                [x0, y0, x0 + r * rng.uniform(0.15, 0.25), y0 + r * rng.uniform(0.6, 1.0)], fill=fill((235, 190, 60))
            )
    elif kind == "burger":
        draw.ellipse([cx - r, cy - r * 0.8, cx + r, cy], fill=fill((200, 130, 50)))
        draw.rectangle([cx - r, cy - r * 0.1, cx + r, cy + r * 0.25], fill=fill((90, 50, 30)))
        draw.rectangle([cx - r, cy + r * 0.25, cx + r, cy + r * 0.45], fill=fill((80, 160, 60)))
        draw.ellipse([cx - r, cy + r * 0.3, cx + r, cy + r * 0.8], fill=fill((200, 130, 50)))
    elif kind == "rice_bowl":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill((60, 90, 150)))
        draw.ellipse([cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8], fill=fill((238, 238, 228)))
    elif kind == "greens":
        for _ in range(5):
            dx, dy = rng.uniform(-0.6, 0.6, 2) * r
            draw.polygon(_blob(rng, cx + dx, cy + dy, r * 0.45, points=7, roughness=0.5), fill=fill((70, 160, 50)))
    else:
        raise ValueError(f"unknown object kind {kind!r}")


def _traced(draw, layer: np.ndarray, value: int, kind: str, x, y, r, rng: np.random.Generator, after: str) -> None:
    """Draw an object on the photo and, with the same random draws, mark its pixels `value` in `layer` (the
    instance map of the scene's objects: later objects cover earlier ones). The mask layer draws fewer numbers than
    the photo (no colours); `after` says which of the two leaves the generator's state ("photo" or "mask"), as the
    generator has always done for that object, so that every scene stays byte for byte what it was."""
    start = rng.bit_generator.state
    _draw_object(draw, kind, x, y, r, rng)
    end = rng.bit_generator.state
    rng.bit_generator.state = start
    shape = Image.new("L", (layer.shape[1], layer.shape[0]), 0)
    _draw_object(ImageDraw.Draw(shape), kind, x, y, r, rng)
    layer[np.asarray(shape) > 0] = value
    if after == "photo":
        rng.bit_generator.state = end


def render_scene(
    label: str,
    size: int,
    rng: np.random.Generator,
    context_reliability: float = 0.85,
    distractor_prob: float = 0.0,
    objects: bool = False,
):
    """One scene: `(RGB uint8 image, bool ROI mask, SceneSpec)`, and with `objects=True` a 4th item: the instance
    map of the scene's other objects (uint8 (H, W); 0 where none is visible, k for the k-th object: the plate, the
    context objects, a distractor, an occluder), each object's visible part. The same draws either way: the photo and
    its ROI mask do not depend on `objects`.

    With probability `distractor_prob` the scene also holds one other *target-class* food (an easy class other than
    `label`): then the photo alone does not say which object is asked about, only the ROI does (as in real photos
    with several foods). Without distractors a full-image classifier can find the one target food by itself."""
    if label in AMBIGUOUS_CLASSES:
        dish = CONTEXT_OF[label]
        if rng.uniform() > context_reliability:
            dish = "rice_meal" if dish == "fast_food" else "fast_food"
    else:
        dish = str(rng.choice(sorted(CONTEXT_OBJECTS)))
    table = _jitter(rng, rng.choice([(150, 110, 75), (205, 200, 190), (120, 125, 130), (180, 160, 120)]), 20)
    image = Image.new("RGB", (size, size), table)
    draw = ImageDraw.Draw(image)
    layer = np.zeros((size, size), dtype=np.uint8)
    count = 0
    # A plate under the target, sometimes.
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    radius = rng.uniform(0.12, 0.2) * size
    if rng.uniform() < 0.6:
        plate = radius * 1.5
        draw.ellipse([cx - plate, cy - plate, cx + plate, cy + plate], fill=_jitter(rng, (235, 235, 240), 8))
        shape = Image.new("L", (size, size), 0)
        ImageDraw.Draw(shape).ellipse([cx - plate, cy - plate, cx + plate, cy + plate], fill=255)
        count += 1
        layer[np.asarray(shape) > 0] = count
    # Context objects around the target, away from its centre.
    kinds = list(CONTEXT_OBJECTS[dish])
    others = [kinds[i % 2] for i in range(int(rng.integers(2, 5)))]
    if distractor_prob > 0 and rng.uniform() < distractor_prob:
        others.append(str(rng.choice([c for c in EASY_CLASSES if c != label])))
    placed = []
    for kind in others:
        for _ in range(20):
            ox, oy = rng.uniform(0.12, 0.88, 2) * size
            if np.hypot(ox - cx, oy - cy) > radius * 1.6:
                break
        placed.append((kind, ox, oy, rng.uniform(0.1, 0.18) * size))
    for kind, ox, oy, r in placed:
        count += 1
        if objects:
            _traced(draw, layer, count, kind, ox, oy, r, rng, after="photo")
        else:
            _draw_object(draw, kind, ox, oy, r, rng)
    # The target and its exact mask (same random draws on both layers).
    state = rng.bit_generator.state
    _draw_object(draw, label, cx, cy, radius, rng)
    mask_image = Image.new("L", (size, size), 0)
    rng.bit_generator.state = state
    _draw_object(ImageDraw.Draw(mask_image), label, cx, cy, radius, rng)
    mask = np.asarray(mask_image) > 0
    layer[mask] = 0
    # Occlusion: one more context object over part of the target; the mask keeps the visible part.
    occluded = bool(rng.uniform() < 0.3)
    if occluded:
        angle = rng.uniform(0, 2 * np.pi)
        ox, oy, r = cx + np.cos(angle) * radius * 1.2, cy + np.sin(angle) * radius * 1.2, radius * 0.6
        kind = kinds[int(rng.integers(0, 2))]
        count += 1
        _traced(draw, layer, count, kind, ox, oy, r, rng, after="mask")
        visible = mask & ~(layer == count)
        mask = visible if visible.sum() >= 0.3 * mask.sum() else mask  # keep at least a third visible
        if visible.sum() < 0.3 * mask.sum():
            occluded = False
    # Lighting: brightness, colour cast, a gradient; then blur and sensor noise.
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] / size
    direction = rng.uniform(-1, 1, 2)
    gradient = 1 + 0.25 * (direction[0] * (xx - 0.5) + direction[1] * (yy - 0.5))
    pixels *= rng.uniform(0.75, 1.15) * gradient[..., None] * rng.uniform(0.9, 1.1, 3)
    pixels += rng.normal(0, 6, pixels.shape)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    spec = SceneSpec(label=label, context=dish, box=box, occluded=occluded)
    if not objects:
        return pixels, mask, spec
    layer[mask] = 0  # the ROI's visible pixels belong to it
    return pixels, mask, spec, layer


def generate_ambiguous_food(
    output_dir: str | os.PathLike,
    num_per_class: dict[str, int] | int = 40,
    image_size: int = 96,
    seed: int = 0,
    splits: dict[str, float] | None = None,
    context_reliability: float = 0.85,
    distractor_prob: float = 0.0,
) -> dict:
    """Write the benchmark to `output_dir`; returns its `dataset_info.json` content.

    Args:
        num_per_class: images per class (all splits together).
        image_size: side of the square images, in pixels.
        seed: the one seed everything is drawn from: same seed, same bytes.
        splits: fractions per split (default train 0.7, validation 0.15, test 0.15).
        context_reliability: probability that an ambiguous class sits with its own dish's surroundings.
        distractor_prob: probability that a scene also holds another target-class food (see `render_scene`).
    """
    if image_size < 24:
        raise ValueError(f"`image_size` must be at least 24 pixels, got {image_size}.")
    if not 0.5 <= context_reliability <= 1.0:
        raise ValueError(f"`context_reliability` must be in [0.5, 1], got {context_reliability}.")
    if not 0.0 <= distractor_prob <= 1.0:
        raise ValueError(f"`distractor_prob` must be in [0, 1], got {distractor_prob}.")
    splits = splits or {"train": 0.7, "validation": 0.15, "test": 0.15}
    if abs(sum(splits.values()) - 1) > 1e-6 or min(splits.values()) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {splits}.")
    counts = num_per_class if isinstance(num_per_class, dict) else dict.fromkeys(CLASSES, int(num_per_class))
    root = Path(output_dir)
    rng = np.random.default_rng(seed)
    written = dict.fromkeys(splits, 0)
    for split in splits:
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}_masks").mkdir(parents=True, exist_ok=True)
        (root / f"{split}_object_masks").mkdir(parents=True, exist_ok=True)
    metadata = {split: [] for split in splits}
    for label in CLASSES:
        total = counts.get(label, 0)
        split_sizes = {split: int(round(total * fraction)) for split, fraction in splits.items()}
        split_sizes[next(iter(splits))] += total - sum(split_sizes.values())
        index = 0
        for split, size in split_sizes.items():
            (root / split / label).mkdir(exist_ok=True)
            (root / f"{split}_masks" / label).mkdir(exist_ok=True)
            (root / f"{split}_object_masks" / label).mkdir(exist_ok=True)
            for _ in range(size):
                pixels, mask, spec, objects = render_scene(
                    label, image_size, rng, context_reliability, distractor_prob, objects=True
                )
                name = f"{label}_{index:05d}.png"
                Image.fromarray(pixels).save(root / split / label / name)
                Image.fromarray(mask).save(root / f"{split}_masks" / label / name)
                Image.fromarray(objects).save(root / f"{split}_object_masks" / label / name)
                metadata[split].append(
                    {
                        "file_name": f"{label}/{name}",
                        "roi_box": list(spec.box),
                        **{k: v for k, v in asdict(spec).items() if k != "box"},
                    }
                )
                written[split] += 1
                index += 1
    for split, rows in metadata.items():
        (root / split / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    info = {
        "name": "rvernet-ambiguous-food",
        "classes": list(CLASSES),
        "ambiguous_labels": list(AMBIGUOUS_CLASSES),
        "context_reliability": context_reliability,
        "distractor_prob": distractor_prob,
        "image_size": image_size,
        "seed": seed,
        "num_images": written,
        "layout": "<split>/<class>/<name>.png, masks in <split>_masks/<class>/<name>.png, the other objects' "
        "instance maps (0 = none, k = object k) in <split>_object_masks/<class>/<name>.png",
    }
    (root / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return info


__all__ = ["AMBIGUOUS_CLASSES", "CLASSES", "EASY_CLASSES", "generate_ambiguous_food", "render_scene"]
