"""The `maskgit` command: thin wrappers over the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import MaskgitError

log = logging.getLogger("maskgit")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {message}"


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    rank = int(os.environ.get("RANK", "0"))
    level = logging.ERROR if rank != 0 else (logging.WARNING if quiet else logging.INFO)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# --- train-tokenizer ---------------------------------------------------------------------------


def _train_tokenizer(args: argparse.Namespace) -> None:
    from .config import load_tokenizer_training_config
    from .train.tokenizer import load_run_config, train_tokenizer

    if args.resume:
        config, saved_data = load_run_config(args.resume)
        out, data = Path(args.resume), args.data or saved_data
        if args.out and Path(args.out) != out:
            raise MaskgitError("--out and --resume name different folders; --resume continues the run in its own folder")
        if data is None:
            raise MaskgitError(f"{out}: the run does not record its data folder; pass --data")
    else:
        if not args.data or not args.out:
            raise MaskgitError("train-tokenizer needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
        config, out, data = load_tokenizer_training_config(args.config), Path(args.out), args.data
    if args.max_steps is not None:
        config.max_steps = args.max_steps
    if args.batch_size is not None:
        config.batch_size = args.batch_size
    if args.seed is not None:
        if args.resume:
            raise MaskgitError("--seed cannot change on --resume")
        config.seed = args.seed
    config.__post_init__()
    exported = train_tokenizer(config, data, out, resume=bool(args.resume), device=args.device,
                               stop_after=args.stop_after, progress=not args.quiet)
    log.info("tokenizer saved to %s", exported)


def _add_train_tokenizer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-tokenizer", help="train the VQGAN tokenizer on a folder of images",
                       description="Train the VQGAN tokenizer on every JPEG/PNG/WebP under --data (recursive).")
    p.add_argument("--data", help="folder of training images (any size: resized and centre-cropped)")
    p.add_argument("--config", default="catface64", help="preset name (catface64, tiny) or a YAML/JSON file")
    p.add_argument("--out", help="run folder for checkpoints, logs, samples and the exported tokenizer")
    p.add_argument("--max-steps", type=int, help="total training steps (overrides the config)")
    p.add_argument("--batch-size", type=int, help="images per step and process (overrides the config)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA if available)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    p.add_argument("--stop-after", type=int, metavar="STEP", help="stop with a checkpoint at this step (to split a run)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or info messages")
    p.set_defaults(func=_train_tokenizer)


# --- reconstruct -------------------------------------------------------------------------------


def _reconstruct(args: argparse.Namespace) -> None:
    from .lpips import LPIPS
    from .reconstruct import reconstruct_folder
    from .tokenizer import VQGAN
    from .train.distributed import pick_device

    device = pick_device(args.device)
    tokenizer = VQGAN.from_pretrained(args.tokenizer, device=device)
    lpips = None if args.no_lpips else LPIPS.pretrained("alex")
    report = reconstruct_folder(tokenizer, args.data, args.out, batch_size=args.batch_size, lpips=lpips,
                                progress=not args.quiet)
    print(report.summary())
    if args.out:
        log.info("reconstructions and metrics.json written to %s", args.out)


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="encode + decode a folder with a tokenizer; print PSNR, LPIPS, usage")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder or training run folder")
    p.add_argument("--data", required=True, help="folder of images (or one image)")
    p.add_argument("--out", help="folder for the reconstructions (PNG) and metrics.json")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA if available)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (no AlexNet weights needed)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_reconstruct)


# --- lpips -------------------------------------------------------------------------------------


def _lpips(args: argparse.Namespace) -> None:
    import torch

    from .errors import DataError
    from .image_io import load_image, to_tensor
    from .lpips import LPIPS

    a, b = load_image(args.image_a), load_image(args.image_b)
    if a.size != b.size:
        raise DataError(f"{args.image_a} is {a.size[0]}x{a.size[1]} but {args.image_b} is {b.size[0]}x{b.size[1]}")
    with torch.no_grad():
        distance = LPIPS.pretrained(args.net)(to_tensor(a)[None], to_tensor(b)[None]).item()
    print(f"{distance:.4f}")


def _add_lpips(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lpips", help="LPIPS distance between two images of the same size")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--net", choices=["alex", "vgg"], default="alex")
    p.set_defaults(func=_lpips, quiet=False)


# --- entry point -------------------------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_train_tokenizer, _add_reconstruct, _add_lpips]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskgit", description="Image inpainting with MaskGIT.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "quiet", False))
    try:
        args.func(args)
    except MaskgitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
