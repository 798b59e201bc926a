"""Images/s of one transformer training step: the fast path against a lab-style reference.

    python benchmarks/train_throughput.py --preset lab --device cuda
    python benchmarks/train_throughput.py --preset tiny --device cpu --fast-batch 64

fast: fused attention (scaled_dot_product_attention), bf16 autocast on CUDA, a large batch,
      fused AdamW; with --compile also the same under torch.compile.
reference: configured like the lab: fp32, explicit softmax(QKᵀ/√d)V attention, batch 10.
All train the same preset on random token grids with the real masking and loss. Printed per row:
images/s, the ratio to the reference, achieved matmul TFLOP/s and, on a known card, MFU against
its dense bf16 peak (see flops.py for what is counted).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from flops import bf16_peak, describe, training_flops_per_image

from maskgit.config import load_transformer_training_config
from maskgit.masks import training_token_mask
from maskgit.train.common import adamw, autocast
from maskgit.transformer import BidirectionalTransformer, masked_token_loss


def measure(preset: str, device: torch.device, batch_size: int, fused: bool, bf16: bool, compile_model: bool,
            steps: int, warmup: int) -> float:
    cfg = load_transformer_training_config(preset)
    torch.manual_seed(0)
    model = BidirectionalTransformer(cfg.model).to(device).train()
    model.set_fused_attention(fused)
    optimizer = adamw(model, cfg.learning_rate, cfg.adam_betas, cfg.weight_decay, device)
    forward = torch.compile(model) if compile_model else model
    generator = torch.Generator().manual_seed(0)
    n, k = cfg.model.num_tokens, cfg.model.codebook_size
    batches = []
    for _ in range(4):
        targets = torch.randint(0, k, (batch_size, n), generator=generator)
        unknown = training_token_mask(batch_size, n, cfg.mask_schedule, generator)
        batches.append((targets.to(device), unknown.to(device)))

    def step(i: int) -> None:
        targets, unknown = batches[i % len(batches)]
        with autocast(device) if bf16 else torch.autocast(device.type, enabled=False):
            logits = forward(targets.masked_fill(unknown, cfg.model.mask_token_id))
        loss, _ = masked_token_loss(logits, targets, unknown, cfg.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch_size * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lab", help="transformer preset: lab, catface64, tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fast-batch", type=int, help="batch of the fast path (default 256 on CUDA, 64 on CPU)")
    parser.add_argument("--reference-batch", type=int, default=10, help="the lab's batch size")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the reference is plain fp32
    fast_batch = args.fast_batch or (256 if device.type == "cuda" else 64)
    bf16 = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    flops = training_flops_per_image(load_transformer_training_config(args.preset).model)
    peak = bf16_peak(device)
    print(f"training, preset {args.preset} on {name}, torch {torch.__version__}, "
          f"{flops / 1e9:.1f} GFLOP per image (matmuls, forward + backward)", flush=True)
    fast_name = f"fast ({'bf16' if bf16 else 'fp32'}, fused attention{', fused AdamW' if bf16 else ''}, batch {fast_batch}"
    settings = [(f"reference (fp32, explicit attention, batch {args.reference_batch})", args.reference_batch, False, False, False),
                (fast_name + ")", fast_batch, True, bf16, False)]
    if args.compile:
        settings.append((fast_name + ", torch.compile)", fast_batch, True, bf16, True))
    rows = []
    for label, batch, fused, use_bf16, compiled in settings:  # each row printed and saved as soon as measured
        rate = measure(args.preset, device, batch, fused=fused, bf16=use_bf16, compile_model=compiled,
                       steps=args.steps, warmup=args.warmup)
        rows.append({"setting": label, "batch": batch, "compiled": compiled, "images_per_s": rate,
                     "speedup": rate / rows[0]["images_per_s"] if rows else 1.0, "tflops": rate * flops / 1e12,
                     "mfu": rate * flops / peak if peak else None})
        print(f"  {label}: {rate:9.1f} images/s, {rows[-1]['speedup']:6.2f}x, {describe(rate, flops, peak)}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"preset": args.preset, "device": name, "torch": torch.__version__, "flops_per_image": flops,
                           "bf16_peak": peak, "rows": rows}, f, indent=2)

if __name__ == "__main__":
    main()
