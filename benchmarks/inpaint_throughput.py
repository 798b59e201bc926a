"""Images/s of the batched inpainting sampler against a lab-style one-image-at-a-time loop.

    python benchmarks/inpaint_throughput.py --preset lab --device cuda
    python benchmarks/inpaint_throughput.py --model runs/maskgit --full --device cuda
    python benchmarks/inpaint_throughput.py --preset tiny --device cpu

batched: all images in one batch (default 64 on CUDA, 16 on CPU), fused attention, bf16 autocast
         on CUDA, each image with its own mask and generator.
reference: as the lab did: one image at a time, fp32, explicit softmax(QKᵀ/√d)V attention.
Same transformer, same holes (the lab's brush masks), same T and sweet spot. By default only the
transformer's decoding loop is timed; --full times `MaskGIT.inpaint` as a whole (tokenizer encode,
decode and compositing included) with a `--model` folder, its reference being the same call one
image at a time with explicit attention.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from flops import bf16_peak, describe, forward_flops_per_image

from maskgit.config import SamplingConfig, load_transformer_training_config
from maskgit.masks import make_masks, tokens_from_hole
from maskgit.sampling import iterative_decode
from maskgit.transformer import BidirectionalTransformer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lab", help="transformer preset with random weights (lab, catface64, tiny)")
    parser.add_argument("--model", help="a MaskGIT model folder instead of a preset")
    parser.add_argument("--full", action="store_true", help="time the whole pipeline (needs --model)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, help="images to inpaint (default 256 on CUDA, 32 on CPU)")
    parser.add_argument("--batch-size", type=int, help="batch of the fast path (default 64 on CUDA, 16 on CPU)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--sweet-spot", type=int, default=7, help="the lab's best setting: 7 of 12")
    parser.add_argument("--reference-images", type=int, help="images for the slow reference (default: all)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
    count = args.images or (256 if cuda else 32)
    batch = args.batch_size or (64 if cuda else 16)
    cfg = SamplingConfig(steps=args.steps, sweet_spot=args.sweet_spot)

    pipe = None
    if args.model:
        from maskgit.pipeline import MaskGIT

        pipe = MaskGIT.from_pretrained(args.model, device=device)
        transformer, resolution, grid = pipe.transformer, pipe.resolution, pipe.tokenizer.config.token_grid
    else:
        if args.full:
            parser.error("--full needs --model")
        torch.manual_seed(0)
        transformer = BidirectionalTransformer(load_transformer_training_config(args.preset).model).to(device).eval()
        resolution, grid = 64, int(transformer.config.num_tokens**0.5)
    holes = torch.from_numpy(make_masks("brush", count, resolution, seed=0))
    unknown = tokens_from_hole(holes, grid).flatten(1).to(device)
    tokens = torch.randint(0, transformer.config.codebook_size, unknown.shape, generator=torch.Generator().manual_seed(0)).to(device)
    images = np.random.default_rng(0).integers(0, 256, (count, resolution, resolution, 3), dtype=np.uint8)
    generators = [torch.Generator().manual_seed(i) for i in range(count)]

    def run_batched(n: int) -> float:
        _sync(device)
        start = time.perf_counter()
        for s in range(0, n, batch):
            if args.full:
                pipe.inpaint(list(images[s : s + batch]), list(holes[s : s + batch].numpy()), generator=generators[s : s + batch],
                             steps=args.steps, sweet_spot=args.sweet_spot, batch_size=batch)
            else:
                iterative_decode(transformer, tokens[s : s + batch], unknown[s : s + batch], cfg, generators[s : s + batch])
        _sync(device)
        return n / (time.perf_counter() - start)

    def run_reference(n: int) -> float:
        transformer.set_fused_attention(False)
        _sync(device)
        start = time.perf_counter()
        for s in range(n):
            if args.full:
                pipe.inpaint([images[s]], [holes[s].numpy()], generator=[generators[s]], steps=args.steps,
                             sweet_spot=args.sweet_spot, batch_size=1, mixed_precision=False)
            else:
                iterative_decode(transformer, tokens[s : s + 1], unknown[s : s + 1], cfg, [generators[s]],
                                 mixed_precision=False)
        _sync(device)
        transformer.set_fused_attention(True)
        return n / (time.perf_counter() - start)

    run_batched(min(count, batch))  # warm-up
    fast = run_batched(count)
    reference_count = args.reference_images or count
    run_reference(2)
    reference = run_reference(reference_count)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    what = "whole pipeline" if args.full else "transformer decoding loop"
    flops = forward_flops_per_image(transformer.config) * (args.sweet_spot or args.steps)  # one forward per step
    peak = bf16_peak(device)
    print(f"inpainting, {args.model or 'preset ' + args.preset} on {name}, torch {torch.__version__}, {what}, "
          f"T={args.steps}, sweet spot {args.sweet_spot}, {count} lab-style brush holes, "
          f"{flops / 1e9:.1f} GFLOP per image in the transformer")
    print(f"  reference (one image at a time, fp32, explicit attention): {reference:9.1f} images/s, "
          f"{describe(reference, flops, peak)}")
    print(f"  batched (batch {batch}, fused attention{', bf16' if cuda else ''}): {fast:9.1f} images/s, "
          f"{fast / reference:6.2f}x, {describe(fast, flops, peak)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model or args.preset, "device": name, "torch": torch.__version__, "full": args.full,
                       "steps": args.steps, "sweet_spot": args.sweet_spot, "batch": batch,
                       "reference_images_per_s": reference, "batched_images_per_s": fast, "speedup": fast / reference,
                       "flops_per_image": flops, "batched_tflops": fast * flops / 1e12,
                       "batched_mfu": fast * flops / peak if peak else None}, f, indent=2)

if __name__ == "__main__":
    main()
