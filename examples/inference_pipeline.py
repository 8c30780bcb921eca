"""Classify images with a saved or Hub RveRNet through `pipeline()`: automatic ROI, or a box / clicks / a mask.

python examples/inference_pipeline.py --model rvernet-demo/rvernet IMAGE [--box X0,Y0,X1,Y1] [--mask MASK.png]
"""

import argparse

from transformers import pipeline


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", required=True, help="folder or Hub id of an RveRNet model")
    parser.add_argument("--box", help="X0,Y0,X1,Y1 around the object (SAM turns it into a mask)")
    parser.add_argument("--mask", help="a binary mask image of the object")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--device", default=None, help="cpu, cuda, ...")
    parser.add_argument("--fp16", action="store_true", help="half precision (GPU)")
    args = parser.parse_args(argv)
    dtype = "float16" if args.fp16 else None
    if args.box or args.mask:  # the prompted task travels with every RveRNet folder
        classifier = pipeline(
            "rvernet-image-classification", model=args.model, trust_remote_code=True, device=args.device, dtype=dtype
        )
        prompt = {"box": [float(v) for v in args.box.split(",")]} if args.box else {"mask": args.mask}
        results = [classifier(image, **prompt) for image in args.images]
        for image, result in zip(args.images, results):
            print(image, result["prompt"], [(e["label"], round(e["score"], 3)) for e in result["labels"][:3]])
    else:  # the standard task: the processor picks the ROI (SAM's most salient mask)
        classifier = pipeline(
            "image-classification", model=args.model, trust_remote_code=True, device=args.device, dtype=dtype
        )
        results = classifier(args.images, batch_size=args.batch_size, top_k=3)
        for image, result in zip(args.images, results):
            print(image, [(e["label"], round(e["score"], 3)) for e in result])
    return results


if __name__ == "__main__":
    main()
