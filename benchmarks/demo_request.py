"""Latency of one demo request: POST /api/inpaint with the shipped model at T = 12, answered in full
(every step's pictures streamed, then the result), through the real app (Starlette test client).

    python benchmarks/demo_request.py [--repeats 10] [--steps 12] [--sweet-spot 7] [--precision fp32] [--device cpu]

Prints the median and the slowest of the repeats after one warm-up request; the goal is < 2 s on
the 2-core CPU the project is developed on (docs/demo.md).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from maskgit.demo.app import create_app, model_executor
from maskgit.demo.handler import png_data_url
from maskgit.masks import generate_mask
from maskgit.pipeline import PRECISIONS, MaskGIT

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="catface64")
    parser.add_argument("--sweet-spot", type=int, help="stop after this step (default: the model's)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the transformer's arithmetic, as `maskgit demo --precision` (auto: int8 on a CPU)")
    args = parser.parse_args()

    from starlette.testclient import TestClient

    executor = model_executor()  # as `maskgit demo`: the model is loaded and run by one thread
    pipe = executor.submit(lambda: MaskGIT.from_pretrained(args.model, device=args.device)
                           .set_precision(args.precision)).result()
    client = TestClient(create_app(pipe, REPO / "examples" / "cases" / "gt", executor=executor))
    image = client.get("/api/examples/" + client.get("/api/info").json()["examples"][0]).json()["image"]
    res = pipe.resolution
    times = []
    for i in range(args.repeats + 1):
        hole = generate_mask("brush", res, np.random.default_rng([7, i]))
        body = {"image": image, "mask": png_data_url(hole.astype(np.uint8) * 255), "steps": args.steps, "seed": i}
        if args.sweet_spot is not None:
            body["sweet_spot"] = args.sweet_spot
        start = time.perf_counter()
        response = client.post("/api/inpaint", json=body)
        lines = response.text.splitlines()
        elapsed = time.perf_counter() - start
        assert response.status_code == 200 and '"result"' in lines[-1], lines[-1][:200]
        if i:  # the first request warms up
            times.append(elapsed)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"model {args.model} {pipe.precision}, T = {args.steps}"
          f"{f', sweet spot {args.sweet_spot}' if args.sweet_spot is not None else ''}, {args.repeats} requests")
    print(f"median {statistics.median(times):.3f} s, slowest {max(times):.3f} s per request")


if __name__ == "__main__":
    main()
