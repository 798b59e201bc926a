"""CPU speed of inpainting with the shipped model, each faster path beside the current one, with its quality.

    python benchmarks/cpu_inpaint.py --quick                  # 64 val-cases, a few minutes on 2 cores
    python benchmarks/cpu_inpaint.py --paths fp32+sweet-spot-0,int8,bf16 --json runs/cpu_inpaint.json
    python benchmarks/cpu_inpaint.py --cases runs/select-cases --paths fp32,int8

Every path inpaints the same cases with the same per-image seeds in the same run (so the machine's
load is shared alike), and reports:
- latency: the median wall time of inpainting one image alone (`--latency-runs` images, whole
  `MaskGIT.inpaint` call: pre-fill, encode, decode, composite);
- throughput: images per second inpainting all the cases in batches of `--batch-size`;
- quality: FID and KID against the ground truth (over the cases used: compare only equal N), LPIPS
  and hole PSNR.

Paths (the model's own sampling defaults unless the path changes them):
- fp32: float32 (`maskgit inpaint --precision fp32`);
- int8: the transformer's linear layers quantized dynamically to int8 (PyTorch's
  `quantize_dynamic`; weights int8, activations quantized per image), as `maskgit inpaint` runs on a
  CPU by default;
- bf16: the transformer under `torch.autocast("cpu", bfloat16)` (skipped where the CPU lacks bf16);
- compile: the transformer through `torch.compile` (its compile time is reported, not timed);
- onnx: the transformer under ONNX Runtime (`maskgit inpaint --backend onnx`; its export is the setup time);
- sweet-spot-S / steps-T: stop after step S (sweet-spot-0: decode every step); T steps in all;
- halton: the Halton reveal order (`--order halton`); remask-P / remask-random-P: the corrector re-masking
  a share P of the revealed tokens per step (`--corrector remask --corrector-share P`);
- best-N-CRITIC: best-of-N with that critic (`--candidates N --critic CRITIC`), e.g. best-2-likelihood;
- several joined by "+" (e.g. fp32+sweet-spot-0: catface64's path before 2026-12-03): all of them at once.
The machine (CPU model, cores, threads, PyTorch) is written with the results.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from maskgit.devices import cpu_has_native_bf16
from maskgit.metrics.evaluate import evaluate_arrays
from maskgit.metrics.sweep import load_cases as sweep_cases
from maskgit.pipeline import MaskGIT
from maskgit.seeding import image_generator


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_cases(folder: Path, limit: int | None):
    """(names, inputs, holes, ground truths) of the first `limit` cases (all: None), read as the sweep reads them."""
    images, holes, truths, names = sweep_cases(folder)
    return names[:limit], images[:limit], holes[:limit], truths[:limit]


def make_path(pipe: MaskGIT, name: str):
    """(pipe to use, sampling overrides, context manager factory, setup seconds) for a path name; names
    joined by "+" combine (e.g. "int8+sweet-spot-7")."""
    import contextlib

    overrides: dict = {}
    context = contextlib.nullcontext
    parts = name.split("+")
    if any(p in ("int8", "compile", "onnx") for p in parts):
        other = MaskGIT(pipe.tokenizer, copy.deepcopy(pipe.transformer), pipe.sampling, pipe.guided_decoder)
        other._code_patches = pipe.code_patches
    else:
        other = pipe
    start = time.perf_counter()
    for part in parts:
        if part == "fp32":
            continue
        if part.startswith("sweet-spot-"):
            overrides["sweet_spot"] = int(part.rsplit("-", 1)[1])
        elif part.startswith("steps-"):
            overrides["steps"] = int(part.rsplit("-", 1)[1])
        elif part == "halton":
            overrides["order"] = "halton"
        elif part.startswith("remask-"):
            corrector, share = part.rsplit("-", 1)
            overrides.update(corrector=corrector, corrector_share=float(share))
        elif part.startswith("best-"):
            _, count, critic = part.split("-", 2)
            overrides.update(candidates=int(count), critic=critic)
        elif part == "bf16":
            context = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
        elif part == "int8":
            other.quantize_int8()
        elif part == "compile":
            other.transformer = torch.compile(other.transformer)
        elif part == "onnx":
            import tempfile

            from maskgit.onnx_graphs import export_onnx, use_onnx_transformer

            with tempfile.TemporaryDirectory(prefix="cpu_inpaint_onnx-") as folder:  # the session holds the graph
                export_onnx(pipe, folder)  # from copies of pipe's networks
                use_onnx_transformer(other, folder)
        else:
            raise SystemExit(f"unknown path {part!r} in {name!r}")
    if "compile" in parts:
        other.inpaint(np.zeros((64, 64, 3), np.uint8), np.pad(np.ones((8, 8), bool), 28),
                      generator=image_generator(0, 0), **overrides)  # compile now, outside the timings
    return other, overrides, context, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="catface64")
    parser.add_argument("--cases", default=str(Path(__file__).resolve().parents[2] / "shared/data/catface64/val-cases"))
    parser.add_argument("--quick", action="store_true", help="the first 64 cases only")
    parser.add_argument("--limit", type=int, help="the first N cases")
    parser.add_argument("--paths", default="fp32+sweet-spot-0,fp32,int8,bf16")
    parser.add_argument("--latency-runs", type=int, default=16, help="single-image calls per path (median)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's)")
    parser.add_argument("--no-quality", action="store_true", help="speed only")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    limit = args.limit or (64 if args.quick else None)
    names, images, holes, truths = load_cases(Path(args.cases), limit)
    pipe = MaskGIT.from_pretrained(args.model, device="cpu")
    pipe.code_patches  # loaded with the model, or computed now: never inside a timing
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "bf16": cpu_has_native_bf16(), "cases": len(names), "model": args.model}
    print(json.dumps(machine))
    results = []
    extractor = None  # Inception, loaded once for every path's quality
    for name in [p.strip() for p in args.paths.split(",") if p.strip()]:
        if name == "bf16" and not cpu_has_native_bf16():
            print(f"{name}: skipped (no native bf16 on this CPU)")
            continue
        path_pipe, overrides, context, setup = make_path(pipe, name)
        with torch.inference_mode(), context():
            path_pipe.inpaint(images[0], holes[0], generator=image_generator(0, 0), **overrides)  # warm-up, untimed
            latencies = []
            for i in range(min(args.latency_runs, len(images))):
                start = time.perf_counter()
                path_pipe.inpaint(images[i], holes[i], generator=image_generator(0, i), **overrides)
                latencies.append(time.perf_counter() - start)
            start = time.perf_counter()
            out = path_pipe.inpaint(images, holes, generator=[image_generator(0, i) for i in range(len(images))],
                                    batch_size=args.batch_size, **overrides).images
            seconds = time.perf_counter() - start
        row = {"path": name, "setup_s": round(setup, 2), "latency_median_s": round(statistics.median(latencies), 4) if latencies else None,
               "images_per_s": round(len(images) / seconds, 3)}
        if not args.no_quality:
            if extractor is None:
                from maskgit.metrics.fid import InceptionFeatures

                extractor = InceptionFeatures("cpu")
            report = evaluate_arrays([np.asarray(o) for o in out], truths, names, holes, extractor=extractor)
            row.update(fid=round(report.fid, 3), kid=report.kid, kid_std=report.kid_std, lpips=report.lpips,
                       psnr_hole=report.psnr_hole)
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.json:  # after every path, so a long run's finished rows survive an interruption
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
