"""The `maskgit` command: thin wrappers over the library."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .errors import MaskgitError

log = logging.getLogger("maskgit")
QUIET_HELP = "no progress bars or info messages (warnings and errors still show)"


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {message}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (it may be swapped after set-up, e.g. by a test)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        """Through tqdm, so a message printed while a progress bar is drawn gets a line of its own."""
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _setup_logging(quiet: bool) -> None:
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    rank = int(os.environ.get("RANK", "0"))
    level = logging.ERROR if rank != 0 else (logging.WARNING if quiet else logging.INFO)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# --- train-tokenizer ---------------------------------------------------------------------------


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"the time limit must be positive, got {text}")
    return value


def _training_config(args: argparse.Namespace, load_preset: Callable, config_cls: type,
                     inputs: dict[str, str]) -> tuple[Any, Path, dict[str, Any]]:
    """Config, run folder and input paths of a training command, fresh or resumed, overrides applied.

    `inputs` maps argument names to the keys under which a run's `run.json` recorded them.
    """
    if args.resume:
        from .train.common import load_run_config

        config, info = load_run_config(args.resume, config_cls)
        out = Path(args.resume)
        if args.out and Path(args.out) != out:
            raise MaskgitError("--out and --resume name different folders; --resume continues the run in its own folder")
        if args.seed is not None:
            raise MaskgitError("--seed cannot change on --resume")
        paths = {name: getattr(args, name) or info.get(key) for name, key in inputs.items()}
        args.deterministic = args.deterministic or bool(info.get("deterministic"))  # a resumed run stays so
    else:
        config, out = load_preset(args.config), Path(args.out) if args.out else None
        paths = {name: getattr(args, name) for name in inputs}
    if (getattr(args, "checkpoint_minutes", None) or 0) < 0:
        raise MaskgitError(f"--checkpoint-minutes must be >= 0, got {args.checkpoint_minutes}")
    missing = [f"--{name}" for name, value in paths.items() if not value] + ([] if out else ["--out"])
    if missing:
        raise MaskgitError(f"{args.command} needs {', '.join(missing)} (or --resume RUN_DIR)")
    overrides = {name: getattr(args, name)
                 for name in ("max_steps", "batch_size", "accum", "seed", "checkpoint_every", "checkpoint_minutes")
                 if getattr(args, name, None) is not None}
    return dataclasses.replace(config, **overrides), out, paths  # replace() validates them again


def _add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The options both training commands share (read back by `_training_config`)."""
    p.add_argument("--max-steps", type=int, help="optimizer steps (overrides the config)")
    p.add_argument("--batch-size", type=int, help="images per step and process (overrides the config)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="write a checkpoint (and the exported model) every this many steps (overrides the config)")
    p.add_argument("--checkpoint-minutes", type=float, metavar="MINUTES",
                   help="also write one when this long has passed since the last, so a killed run loses at most "
                        "this much (0: off; overrides the config)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA if available)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    p.add_argument("--stop-after", type=int, metavar="STEP", help="stop with a checkpoint at this step (to split a run)")
    p.add_argument("--deterministic", action="store_true",
                   help="bit-reproducible: deterministic kernels, one CPU thread (slower); see README")
    p.add_argument("--time-limit", type=_minutes, metavar="MINUTES",
                   help="wall-clock budget: stop cleanly (checkpoint + export) at the last step that fits, with the "
                        "learning-rate schedule laid out over those steps; --max-steps still caps them")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments both training functions take from the shared options."""
    return dict(resume=bool(args.resume), device=args.device, stop_after=args.stop_after,
                time_limit=None if args.time_limit is None else args.time_limit * 60.0,
                deterministic=args.deterministic, progress=not args.quiet)


def _train_tokenizer(args: argparse.Namespace) -> None:
    from .config import TokenizerTrainingConfig, load_tokenizer_training_config
    from .train.tokenizer import train_tokenizer

    config, out, paths = _training_config(args, load_tokenizer_training_config, TokenizerTrainingConfig,
                                          {"data": "data_dir"})
    exported = train_tokenizer(config, paths["data"], out, **_run_options(args))
    log.info("tokenizer saved to %s", exported)


def _add_train_tokenizer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-tokenizer", help="train the VQGAN tokenizer on a folder of images",
                       description="Train the VQGAN tokenizer on every JPEG/PNG/WebP under --data (recursive).")
    p.add_argument("--data", help="folder of training images (any size: resized and centre-cropped) "
                                  "(required unless --resume)")
    p.add_argument("--config", default="catface64", help="preset name (catface64, tiny) or a YAML/JSON file")
    p.add_argument("--out", help="run folder for checkpoints, logs, samples and the exported tokenizer "
                                 "(required unless --resume)")
    _add_training_arguments(p)
    p.set_defaults(func=_train_tokenizer)


# --- reconstruct -------------------------------------------------------------------------------


def _reconstruct(args: argparse.Namespace) -> None:
    from .devices import pick_device
    from .lpips import LPIPS
    from .metrics.reconstruction import reconstruct_folder
    from .tokenizer import VQGAN

    _refuse_existing_output(args.out, args.overwrite)
    device = pick_device(args.device)
    tokenizer = VQGAN.from_pretrained(args.tokenizer, device=device)
    lpips = None if args.no_lpips else LPIPS.pretrained("alex")
    report = reconstruct_folder(tokenizer, args.data, args.out, batch_size=args.batch_size, lpips=lpips,
                                progress=not args.quiet)
    print(report.summary())
    if args.out:
        log.info("reconstructions and metrics.json written to %s", args.out)


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="encode + decode a folder with a tokenizer; print PSNR, LPIPS, usage",
                       description="Encode every image under --data with a tokenizer and decode it again: how much "
                                   "the tokenizer alone loses. Prints PSNR, LPIPS (alex), codebook usage and "
                                   "perplexity; with --out also writes the reconstructions and metrics.json.")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder or training run folder")
    p.add_argument("--data", required=True, help="folder of images (or one image)")
    p.add_argument("--out", help="folder for the reconstructions (PNG) and metrics.json")
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it already holds files")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA if available)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (no AlexNet weights needed)")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
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
    p = sub.add_parser("lpips", help="LPIPS distance between two images of the same size",
                       description="Print the LPIPS v0.1 distance between two images of the same size (read as RGB "
                                   "in [-1, 1]); the ImageNet trunk and heads come from MASKGIT_WEIGHTS_DIR or "
                                   "the usual download locations.")
    p.add_argument("image_a", help="first image")
    p.add_argument("image_b", help="second image, same size")
    p.add_argument("--net", choices=["alex", "vgg"], default="alex", help="LPIPS trunk")
    p.set_defaults(func=_lpips, quiet=False)


# --- make-cases --------------------------------------------------------------------------------


def _refuse_existing_output(folder: Optional[str], overwrite: bool) -> None:
    """An output folder that already holds files is only written into with --overwrite."""
    if folder and Path(folder).is_dir() and any(Path(folder).iterdir()) and not overwrite:
        raise MaskgitError(f"{folder} already holds files; pass --overwrite to write into it or choose another --out")


def _make_cases(args: argparse.Namespace) -> None:
    from .inpaint.lab_layout import make_cases

    _refuse_existing_output(args.out, args.overwrite)
    out = make_cases(args.data, args.masks, args.seed, args.out, resolution=args.resolution, limit=args.limit,
                     progress=not args.quiet)
    log.info("cases written to %s", out)


def _add_make_cases(sub: argparse._SubParsersAction) -> None:
    from .masks import MASK_KINDS, describe

    p = sub.add_parser("make-cases", help="mask a folder of images into inpainting cases (the lab's layout)",
                       description=f"Mask kinds and hole fractions: {describe()}; mixed: one of brush/thin/medium/thick/box.")
    p.add_argument("--data", required=True, help="folder of images (resized and centre-cropped)")
    p.add_argument("--masks", default="brush", choices=MASK_KINDS, help="mask kind (default: brush, like the lab's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the masks")
    p.add_argument("--out", required=True, help="cases folder: masked_image/, mask64/, gt/, index.txt")
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it already holds files")
    p.add_argument("--resolution", type=int, default=64, help="side of the square cases in pixels")
    p.add_argument("--limit", type=int, help="at most this many cases")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=_make_cases)


# --- encode ------------------------------------------------------------------------------------


def _encode(args: argparse.Namespace) -> None:
    from .data import encode_folder
    from .devices import pick_device
    from .tokenizer import VQGAN
    from .tokenizer.vqgan import resolve_tokenizer_dir

    _refuse_existing_output(args.out, args.overwrite)
    tokenizer = VQGAN.from_pretrained(args.tokenizer, device=pick_device(args.device))
    out = encode_folder(tokenizer, resolve_tokenizer_dir(args.tokenizer), args.data, args.out,
                        batch_size=args.batch_size, flips=not args.no_flip, progress=not args.quiet)
    log.info("token cache written to %s", out)


def _add_encode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="cache the token grids of a folder of images (with flips)",
                       description="Encode every image under --data (and its mirror image) with a tokenizer once, "
                                   "into a token cache that `maskgit train --tokens` reads instead of images.")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder or tokenizer training run")
    p.add_argument("--data", required=True, help="folder of images")
    p.add_argument("--out", required=True, help="token cache folder (tokens.safetensors + tokens.json)")
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it already holds files")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch")
    p.add_argument("--no-flip", action="store_true", help="do not add horizontally flipped copies")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA if available)")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=_encode)


# --- train -------------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> None:
    from .config import TransformerTrainingConfig, load_transformer_training_config
    from .train.transformer import train_transformer

    config, out, paths = _training_config(args, load_transformer_training_config, TransformerTrainingConfig,
                                          {"tokenizer": "tokenizer", "tokens": "tokens"})
    if args.compile:
        config.compile = True
    run = train_transformer(config, paths["tokenizer"], paths["tokens"], out, **_run_options(args))
    log.info("MaskGIT model saved to %s (load it with MaskGIT.from_pretrained)", run)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the bidirectional transformer on token grids",
                       description="Train the transformer with a frozen tokenizer on a token cache or an image folder.")
    p.add_argument("--tokenizer", help="tokenizer folder or tokenizer training run (required unless --resume)")
    p.add_argument("--tokens", help="token cache from `maskgit encode`, or a folder of images (encoded first) "
                                    "(required unless --resume)")
    p.add_argument("--config", default="catface64", help="preset (lab, catface64, tiny) or a YAML/JSON file")
    p.add_argument("--out", help="run folder; it becomes a MaskGIT model folder (required unless --resume)")
    p.add_argument("--accum", type=int, help="gradient accumulation micro-steps (overrides the config)")
    p.add_argument("--compile", action="store_true", help="torch.compile the transformer (CUDA)")
    _add_training_arguments(p)
    p.set_defaults(func=_train)


# --- train-decoder -----------------------------------------------------------------------------


def _train_decoder(args: argparse.Namespace) -> None:
    from .config import GuidedDecoderTrainingConfig, load_guided_decoder_training_config
    from .train.guided_decoder import train_guided_decoder

    config, out, paths = _training_config(args, load_guided_decoder_training_config, GuidedDecoderTrainingConfig,
                                          {"model": "model", "data": "data_dir"})
    exported = train_guided_decoder(config, paths["model"], paths["data"], out, **_run_options(args))
    log.info("guided decoder saved to %s; add it to a model with `maskgit export --model %s --guided-decoder %s "
             "--out DIR`", exported, paths["model"], exported)


def _add_train_decoder(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-decoder", help="fine-tune a guided (mask-aware) decoder for a trained model",
                       description="Fine-tune a decoder that also sees the known pixels and the hole (docs/inpainting.md, 'The guided decoder'), "
                                   "starting from the model's own decoder, on random holes in the images under --data. "
                                   "The tokenizer and transformer stay frozen. Add the result to a model with "
                                   "`maskgit export --guided-decoder RUN/guided_decoder`.")
    p.add_argument("--model", help="MaskGIT model folder, `maskgit train` run, or shipped model name")
    p.add_argument("--data", help="folder of training images (required unless --resume)")
    p.add_argument("--config", default="default", help="preset (default, tiny) or a YAML/JSON file")
    p.add_argument("--out", help="run folder for checkpoints, logs, samples and the decoder (required unless --resume)")
    _add_training_arguments(p)
    p.set_defaults(func=_train_decoder)


# --- inpaint -----------------------------------------------------------------------------------


def _inpaint(args: argparse.Namespace) -> None:
    from .inpaint.baselines import classical_filler
    from .inpaint.jobs import find_inpaint_jobs
    from .inpaint.lab_layout import GT_DIR, ground_truth_path, is_lab_layout
    from .inpaint.oracle import oracle_filler
    from .inpaint.run import inpaint_jobs, maskgit_filler
    from .pipeline import DEFAULT_MODEL

    sampling = _sampling_overrides(args)  # an option left out keeps the model's own default
    jobs = find_inpaint_jobs(args.inputs, args.masks)
    convention = args.mask_convention
    if convention is None:
        if all(Path(p).is_dir() and is_lab_layout(Path(p)) for p in args.inputs):
            convention = "lab"
        else:
            raise MaskgitError("say which mask pixels are holes: --mask-convention lab (0 = hole, 255 = known) "
                               "or --mask-convention white-hole (white = hole)")
    if args.oracle and (args.method != "maskgit" or args.trace):
        raise MaskgitError("--oracle replaces MaskGIT's transformer; it does not go with --method or --trace")
    if args.oracle:
        if not all(Path(p).is_dir() and (Path(p) / GT_DIR).is_dir() for p in args.inputs):
            raise MaskgitError(f"--oracle needs the ground truth: give lab-layout cases folders holding {GT_DIR}/")
        truths = [ground_truth_path(job.image, job.name) for job in jobs]
        for path in truths:
            if not path.is_file():
                raise MaskgitError(f"--oracle: no ground truth {path}")
        pipe = _load_for_inference(args.model or DEFAULT_MODEL, args, uses_transformer=False)
        fill = oracle_filler(pipe, truths, args.oracle, **sampling)
    elif args.method != "maskgit":
        fill = classical_filler(args.method, args.radius)
        if args.trace:
            raise MaskgitError("--trace shows MaskGIT's decoding steps; it does not apply to --method " + args.method)
    else:
        pipe = _load_for_inference(args.model or DEFAULT_MODEL, args)
        fill = maskgit_filler(pipe, args.seed, return_trace=args.trace is not None, **sampling)
    written = inpaint_jobs(jobs, args.out, convention, fill, batch_size=args.batch_size, trace_dir=args.trace,
                           overwrite=args.overwrite, progress=not args.quiet)
    log.info("%d inpainted images written to %s", len(written), args.out)


def _check_sampling(overrides: dict[str, Any]) -> None:
    from dataclasses import replace

    from .config import SamplingConfig, with_overrides

    values = dict(overrides)
    base = SamplingConfig()
    if values.get("sweet_spot") and "steps" not in values:  # checked against the model's own T later
        base = replace(base, steps=max(values["sweet_spot"], base.steps))
    try:
        with_overrides(base, **values)
    except MaskgitError as exc:
        flags = [f"--{name.replace('_', '-')}" for name in values if str(exc).startswith(name)]
        raise MaskgitError(f"{flags[0] if flags else 'sampling option'}: {exc}") from None


def _shipped_defaults() -> str:
    """The shipped model's sampling defaults as command-line options, read from its sampling.json."""
    import json

    path = Path(__file__).resolve().parent / "assets" / "catface64" / "sampling.json"
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return "see its sampling.json"
    shown = []
    for name, value in values.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            if name == "composite":
                shown.append("composited" if value else "--no-composite")
            elif value:
                shown.append(flag)
        elif value is None:
            if name == "sweet_spot":
                shown.append(f"no {flag}")
        else:
            shown.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return ", ".join(shown)


def _add_sampling_options(p: argparse.ArgumentParser) -> None:
    """The sampling options that inpaint and sweep share (each left out keeps the model's default)."""
    from .confidence import CONFIDENCE_RULES
    from .config import DECODERS
    from .correctors import CORRECTORS
    from .critics import CRITICS
    from .holes import PREFILLS
    from .orders import ORDERS
    from .windows import WINDOWS

    p.add_argument("--choice-temperature", type=float, help="Gumbel noise on confidences (annealed to 0)")
    p.add_argument("--confidence", choices=list(CONFIDENCE_RULES),
                   help="reveal-order rule: logprob (MaskGIT's), prob, lab (the lab report's); see docs/inpainting.md")
    p.add_argument("--sample", action="store_const", const=True, help="sample tokens instead of taking the most likely")
    p.add_argument("--temperature", type=float, help="sampling temperature (with --sample)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens (with --sample)")
    p.add_argument("--dilate", type=int, help="extra ring of unknown tokens around each hole")
    p.add_argument("--min-overlap", type=float, help="a token is unknown when more than this share of its patch is hole")
    p.add_argument("--feather", type=int, help="blend this many known pixels at the hole border (0: bit-exact)")
    p.add_argument("--border-first", type=float,
                   help="reveal tokens with more known neighbours first: this times their known share is added "
                        "to the confidence (0: off)")
    p.add_argument("--prefill", choices=PREFILLS,
                   help="what fills the hole (at the input's size) before encoding (default: the model's; "
                        "gray for a model without one in its sampling.json)")
    p.add_argument("--pixel-evidence", type=float,
                   help="let the known pixels of partly covered tokens choose among the codes: each code's logit "
                        "gets minus this times its squared error on them (0: off; see docs/inpainting.md)")
    p.add_argument("--decoder", choices=DECODERS,
                   help="plain: the tokenizer's decoder (tokens only); guided: the model's mask-aware decoder, which "
                        "also sees the known pixels (models trained with `maskgit train-decoder`)")
    p.add_argument("--no-composite", dest="composite", action="store_const", const=False,
                   help="return the decoder's output without pasting known pixels back (for an input larger "
                        "than the model inpainted in a crop, only the crop is the decoder's; the guided decoder "
                        "keeps known pixels at the model's size by itself)")
    p.add_argument("--window", choices=WINDOWS,
                   help="inputs of another size than the model's: auto inpaints a square crop around the hole "
                        "when that keeps more detail, else the whole image mirror-padded to a square (never "
                        "squashed); whole: always the whole image (default: auto)")
    p.add_argument("--order", choices=list(ORDERS),
                   help="which unknown tokens are revealed first: confidence (MaskGIT's, the default) or halton "
                        "(a low-discrepancy order over the hole's tokens, fixed before decoding; docs/inpainting.md)")
    p.add_argument("--corrector", choices=list(CORRECTORS),
                   help="re-mask tokens revealed at earlier steps so they are chosen again: remask (the least "
                        "confident), remask-random, or none (the default)")
    p.add_argument("--corrector-share", type=float, help="share of the revealed tokens re-masked per step (default 0.1)")
    p.add_argument("--candidates", type=int,
                   help="best-of-N: decode each image N times (each with its own random draws) and keep the "
                        "candidate --critic scores best; N times the decoding time (default: 1)")
    p.add_argument("--critic", choices=list(CRITICS),
                   help="how best-of-N judges a candidate: likelihood (the transformer's pseudo-likelihood of the "
                        "fill), agreement (the decoder's fit to the known pixels around the hole), cycle (the "
                        "share of the fill that encodes back to itself)")
    p.add_argument("--sampling", metavar="FILE",
                   help="YAML/JSON of sampling defaults (SamplingConfig fields) over the model's own; options "
                        "given on the command line win")
    _add_precision_option(p)


def _add_precision_option(p: argparse.ArgumentParser) -> None:
    from .pipeline import PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the transformer's arithmetic. int8: its linear layers quantized to int8, CPU only (about "
                        "3x faster on 2 cores at the same FID; docs/performance.md); bf16: autocast, CUDA only; "
                        "fp32: float32 anywhere; auto: int8 on a CPU, bf16 on CUDA (default: auto; the choice is "
                        "printed). The tokenizer and decoders always run in float32")
    p.add_argument("--int8", action="store_true", help=argparse.SUPPRESS)  # renamed: says so


def _load_for_inference(model: str, args: argparse.Namespace, uses_transformer: bool = True):
    """The model on --device, its transformer's arithmetic as --precision says, or under ONNX Runtime
    with --backend onnx; the choice said in the output."""
    from .devices import pick_device
    from .pipeline import MaskGIT, resolve_model

    if getattr(args, "int8", False):
        raise MaskgitError("--int8 is now --precision int8 (and the default on a CPU)")
    onnx = getattr(args, "backend", "torch") == "onnx"
    precision = getattr(args, "precision", "auto")
    if onnx and precision not in ("auto", "fp32"):
        raise MaskgitError(f"--precision {precision} and --backend onnx do not go together (ONNX Runtime runs "
                           "the float32 graph)")
    if onnx and args.device not in (None, "cpu"):
        raise MaskgitError(f"--backend onnx runs on the CPU; --device {args.device} does not go with it")
    device = "cpu" if onnx else pick_device(args.device)
    torch_device_type = getattr(device, "type", device)
    if uses_transformer and precision == "int8" and torch_device_type != "cpu":
        raise MaskgitError(f"--precision int8 is for the CPU; this run is on {device} (add --device cpu, or use "
                           "--precision fp32 or auto)")
    if uses_transformer and precision == "bf16" and torch_device_type != "cuda":
        raise MaskgitError(f"--precision bf16 is for CUDA; this run is on {device} (use --precision fp32, int8 or auto)")
    pipe = MaskGIT.from_pretrained(model, device=device)
    if not uses_transformer:
        return pipe
    if onnx:
        from .onnx_graphs import use_onnx_transformer

        folder = resolve_model(model)
        use_onnx_transformer(pipe, folder)
        log.info("transformer: fp32 under ONNX Runtime (%s)", folder / "onnx" / "transformer.onnx")
        return pipe
    pipe.set_precision(precision)
    how = f"the default on {torch_device_type}" if precision == "auto" else f"--precision {precision}"
    other = "--precision fp32 for float32" if pipe.precision != "fp32" else "--precision auto for the fastest"
    log.info("transformer: %s (%s; %s)", pipe.precision, how, other)
    return pipe


def _sampling_overrides(args: argparse.Namespace, axes: Sequence[str] = ()) -> dict[str, Any]:
    """Every SamplingConfig field set by --sampling FILE or an option (options win), checked.
    `axes`: fields the command sets itself (the sweep's steps, schedule, sweet spot); a file may not."""
    from .config import SamplingConfig, read_config_file

    values: dict[str, Any] = {}
    if getattr(args, "sampling", None):
        values.update(read_config_file(args.sampling))
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(SamplingConfig)})
        if unknown:
            raise MaskgitError(f"{args.sampling}: not sampling options: {', '.join(unknown)}")
        clash = sorted(set(values) & set(axes))
        if clash:
            raise MaskgitError(f"{args.sampling}: {', '.join(clash)} are this command's own options, not the file's")
    values.update({f.name: getattr(args, f.name) for f in dataclasses.fields(SamplingConfig)
                   if f.name not in axes and getattr(args, f.name, None) is not None})
    _check_sampling(values)  # before scanning folders or loading a model
    return values


def _add_inpaint(sub: argparse._SubParsersAction) -> None:
    from .holes import BASELINES
    from .inpaint.oracle import ORACLES
    from .schedules import MASK_SCHEDULES

    p = sub.add_parser("inpaint", help="fill the holes of images",
                       description="Inpaint a lab-layout folder (masked_image/ + mask64/), a folder of images with "
                                   "--masks DIR (matched by name), or image files with their mask files. Sampling "
                                   "options left out take the model's own defaults (its sampling.json; the shipped "
                                   f"catface64: {_shipped_defaults()}).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="lab-layout folder, image folder, or image files")
    p.add_argument("--model", help="MaskGIT model folder, `maskgit train` run, or shipped model name "
                                    "(default: the shipped catface64)")
    p.add_argument("--method", default="maskgit", choices=["maskgit", *BASELINES],
                   help="maskgit, or a classical baseline: OpenCV's Telea / Navier-Stokes, or gray fill")
    p.add_argument("--radius", type=int, default=3, help="inpainting radius of telea / navier-stokes")
    p.add_argument("--masks", nargs="+", metavar="MASK", help="a folder of masks named like the images, or one mask file per image")
    p.add_argument("--out", required=True, help="output folder; outputs keep the inputs' names")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist in --out")
    p.add_argument("--mask-convention", choices=["lab", "white-hole"],
                   help="lab: 0 = hole, 255 = known; white-hole: white = hole (default: lab for lab-layout folders)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (results do not depend on it)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA if available)")
    p.add_argument("--seed", type=int, default=0, help="image i uses a generator seeded from (seed, i)")
    p.add_argument("--steps", type=int, help="decoding steps T")
    p.add_argument("--sweet-spot", type=int,
                   help="stop after this many steps and fill the rest at once; 0 = no sweet spot (decode all T steps)")
    p.add_argument("--schedule", choices=sorted(MASK_SCHEDULES), help="mask schedule")
    _add_sampling_options(p)
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                   help="onnx: run the transformer under ONNX Runtime on the CPU, from the graphs `maskgit export "
                        "--onnx` wrote into the model folder (needs the onnx extra; docs/performance.md; default: torch)")
    p.add_argument("--trace", metavar="DIR", help="write each image's decoding steps as a PNG figure and a GIF")
    p.add_argument("--oracle", choices=ORACLES,
                   help="diagnostic for cases with gt/: what a perfect transformer would give (true-tokens: the "
                        "ground truth's tokens under the hole) or the tokenizer's reconstruction alone; evaluate "
                        "the output as usual (docs/evaluation.md)")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=_inpaint)


# --- export ------------------------------------------------------------------------------------

EXPORT_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def _export(args: argparse.Namespace) -> None:
    import shutil

    import torch

    from .pipeline import MaskGIT

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        if not args.force:
            raise MaskgitError(f"{out} exists and is not empty; pass --overwrite to replace it")
    if args.onnx:
        from .onnx_graphs import require_onnx

        require_onnx()  # before any work
    pipe = MaskGIT.from_pretrained(args.model)
    if args.guided_decoder:
        from .tokenizer import GuidedDecoder

        guided = GuidedDecoder.from_pretrained(args.guided_decoder)
        try:
            pipe = MaskGIT(pipe.tokenizer, pipe.transformer, dataclasses.replace(pipe.sampling, decoder="guided"), guided)
        except MaskgitError as exc:
            raise MaskgitError(f"{args.guided_decoder}: {exc} than {args.model}'s") from None
    if args.sampling:
        from .config import SamplingConfig, config_from_dict, read_config_file

        pipe.sampling = config_from_dict(SamplingConfig, read_config_file(args.sampling), base=pipe.sampling,
                                         source=args.sampling)
        pipe.sampling_for()  # e.g. decoder: guided needs a guided decoder
    staging = out.with_name(f".{out.name}.export-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        pipe.save_pretrained(staging, dtype=getattr(torch, args.dtype), max_shard_bytes=int(args.max_shard_mb * 2**20),
                             code_patches=True)  # loading never recomputes them
        if args.onnx:
            from .onnx_graphs import export_onnx

            # The graphs of the weights as saved (rounded to --dtype), so they agree with the folder's PyTorch weights.
            export_onnx(MaskGIT.from_pretrained(staging), staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # nothing half-written is left behind
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)  # the folder appears complete or not at all
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log.info("model exported to %s (%s weights, %.1f MB)", out, args.dtype, size / 1e6)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="copy a trained model into a compact folder (half-precision weights, shards)",
                       description="Write a MaskGIT model folder (tokenizer/, transformer/, sampling.json) from a "
                                   "`maskgit train` run or model folder, with weights stored in --dtype and split "
                                   "into files of at most --max-shard-mb. It loads with MaskGIT.from_pretrained.")
    p.add_argument("--model", required=True, help="MaskGIT model folder or `maskgit train` run")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--dtype", choices=sorted(EXPORT_DTYPES), default="float16",
                   help="storage type of the weights (cast back to float32 on loading; default float16)")
    p.add_argument("--max-shard-mb", type=float, default=14.0, help="largest weight file, in MiB (default 14)")
    p.add_argument("--overwrite", "--force", dest="force", action="store_true", help="replace --out if it exists")
    p.add_argument("--guided-decoder", metavar="DIR",
                   help="add this guided decoder (from `maskgit train-decoder`: RUN/guided_decoder) to the model and "
                        "make it the default decoder (a --sampling file saying `decoder: plain` keeps the plain one)")
    p.add_argument("--sampling", metavar="FILE",
                   help="YAML/JSON of sampling defaults (SamplingConfig fields) written into the exported "
                        "sampling.json over the model's own, e.g. configs/sampling/small-cpu.yaml")
    p.add_argument("--onnx", action="store_true",
                   help="also write the networks as ONNX graphs (float32) into OUT/onnx/: encoder, transformer, decoder "
                        "and guided decoder, for ONNX Runtime (`maskgit inpaint --backend onnx`; needs the onnx extra; "
                        "docs/performance.md)")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=_export)


# --- evaluate ----------------------------------------------------------------------------------


def _evaluate(args: argparse.Namespace) -> None:
    from .metrics.evaluate import evaluate_folders

    report = evaluate_folders(args.pred, args.gt, args.masks, mask_convention=args.mask_convention, device=args.device,
                              use_cache=not args.no_cache, compute_lpips=not args.no_lpips,
                              compute_lpips_vgg=args.lpips_vgg, progress=not args.quiet)
    print(report.summary())
    written = report.write(Path(args.out or args.pred) / "evaluation")
    log.info("written: %s", ", ".join(str(p) for p in written))


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="FID, KID, LPIPS, PSNR/SSIM (whole and hole) of predictions against ground truth",
                       description="Compare a folder of predictions with a folder of ground truth, matched by file name. "
                                   "--gt may be a lab-layout cases folder (its gt/ and mask64/ are used).")
    p.add_argument("--pred", required=True, help="folder of inpainted images")
    p.add_argument("--gt", required=True, help="folder of ground-truth images, or a cases folder holding gt/")
    p.add_argument("--masks", help="folder of masks for the hole-only metrics (default: the cases folder's mask64/)")
    p.add_argument("--mask-convention", choices=["lab", "white-hole"],
                   help="required with --masks: lab (0 = hole, 255 = known) or white-hole (white = hole); "
                        "a cases folder's mask64/ is read as lab")
    p.add_argument("--out", help="folder to write evaluation.json (summary + per image), evaluation.csv (per image) "
                                 "and evaluation-summary.csv (one row) into (default: the --pred folder)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA if available)")
    p.add_argument("--no-cache", action="store_true", help="recompute the ground truth's FID statistics")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (no AlexNet weights needed)")
    p.add_argument("--lpips-vgg", action="store_true",
                   help="also LPIPS with the VGG trunk (lpips_vgg; the trunk training losses use, so LPIPS with "
                        "AlexNet stays the figure of record)")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=_evaluate)


# --- sweep -------------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _seeds(text: str) -> list[int]:
    values = _int_list(text)
    if len(values) == 1 and "," not in text:
        if values[0] < 1:
            raise argparse.ArgumentTypeError(f"a lone number is a count of seeds (0..N-1) and must be >= 1, got "
                                             f"{text!r}; for seed 0 alone write '0,'")
        return list(range(values[0]))  # a count, as before
    if not values:
        raise argparse.ArgumentTypeError("no seeds given")
    return values


def _sweet_spots(text: str) -> list[Optional[int]]:
    try:
        return [None if v.strip().lower() in ("none", "0") else int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers or 'none', got {text!r}") from None


def _sweep(args: argparse.Namespace) -> None:
    from .metrics.sweep import format_table, run_sweep
    from .schedules import check_schedule

    if bool(args.cases_dir) == bool(args.cases):
        raise MaskgitError("give the cases folder once: `maskgit sweep CASES ...` (or --cases CASES)")
    cases = args.cases_dir or args.cases
    sampling = _sampling_overrides(args, axes=("steps", "schedule", "sweet_spot"))

    schedules = [check_schedule(s.strip()) for s in args.schedules.split(",") if s.strip()]
    for steps in args.steps:  # before minutes of loading: every T and sweet spot must make sense
        for spot in args.sweet_spots:
            _check_sampling({"steps": steps, **({"sweet_spot": spot} if spot and spot <= steps else {})})
    pipe = _load_for_inference(args.model, args)
    try:
        pipe.sampling = pipe.sampling_for(**sampling)  # the sweep's base settings (recorded in OUT/sweep.json)
    except MaskgitError as exc:
        raise MaskgitError(f"{args.model}: {exc}") from None
    summary = run_sweep(pipe, cases, args.out, schedules, args.steps, args.sweet_spots, args.seeds,
                        batch_size=args.batch_size, save_images=args.save_images, compute_lpips=not args.no_lpips,
                        progress=not args.quiet)
    print(format_table(summary))
    log.info("sweep.csv, summary.csv and fid_vs_steps.png written to %s", args.out)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="FID of every mask schedule x steps x sweet spot on a cases folder",
                       description="Inpaint a lab-layout cases folder (with gt/) under every schedule x T x sweet "
                                   "spot x seed, evaluate each, and write sweep.csv, summary.csv and fid_vs_steps.png. "
                                   "Every other sampling setting is the model's own unless given here (the same "
                                   "options as inpaint, or --sampling FILE). Finished settings are cached in "
                                   "OUT/results/, so an interrupted sweep continues.")
    p.add_argument("--model", default="catface64", help="model folder, training run or shipped model name")
    p.add_argument("cases_dir", nargs="?", metavar="CASES", help="cases folder: masked_image/, mask64/, gt/ "
                                                                  "(as inpaint's INPUT)")
    p.add_argument("--cases", help="the same, as an option (either one)")
    p.add_argument("--schedules", default="cosine,linear,square", help="comma-separated mask schedules")
    p.add_argument("--steps", type=_int_list, default=[8, 12, 16], help="comma-separated T values")
    p.add_argument("--sweet-spots", type=_sweet_spots, default=[None],
                   help="comma-separated stop steps; 0 = no sweet spot (decode all T steps) (default: 0)")
    p.add_argument("--seeds", type=_seeds, default=[0],
                   help="sampling seeds of every setting, comma-separated (0,1,2; '5,' is seed 5 alone); a lone "
                        "number N means the N seeds 0..N-1; the summary gives mean and standard deviation over "
                        "them (default: seed 0)")
    _add_sampling_options(p)  # the base settings every cell of the grid shares
    p.add_argument("--out", required=True, help="sweep folder: results/, sweep.csv, summary.csv, fid_vs_steps.png")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA if available)")
    p.add_argument("--save-images", action="store_true", help="also keep every setting's inpainted images")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (no AlexNet weights needed)")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=_sweep)


# --- demo --------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from .demo.app import serve
    except ImportError as exc:
        raise MaskgitError(f"the demo needs its extra ({exc.name} is missing): pip install -e '.[demo]'") from None
    import socket

    from .pipeline import DEFAULT_MODEL

    if args.examples and not Path(args.examples).is_dir():
        raise MaskgitError(f"--examples {args.examples}: no such folder")
    try:  # a clear message now rather than uvicorn's after the model has loaded
        with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((args.host, args.port))
    except OSError as exc:
        raise MaskgitError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); choose another --port") from None
    from .demo.app import model_executor

    executor = model_executor()  # loads the model and runs every request: one thread for PyTorch
    pipe = executor.submit(_load_for_inference, args.model or DEFAULT_MODEL, args).result()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this machine can use the demo", args.host)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"MaskGIT demo on http://{shown}:{args.port}/ (Ctrl+C stops it)", flush=True)
    serve(pipe, args.host, args.port, Path(args.examples) if args.examples else None, executor)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a local web page: paint a hole and watch MaskGIT fill it step by step",
                       description="Serve a web page to upload an image (or pick an example), paint a hole and see each "
                                   "decoding step. Needs the demo extra: pip install -e '.[demo]'. See docs/demo.md.")
    p.add_argument("--model", help="MaskGIT model folder or shipped model name (default: the shipped catface64)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--examples", help="folder of example images offered on the page "
                                      "(default: examples/cases/gt of a source checkout)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA if available)")
    _add_precision_option(p)
    p.set_defaults(func=_demo)


# --- entry point -------------------------------------------------------------------------------


class _SubParser(argparse.ArgumentParser):
    def __init__(self, **kwargs: Any):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(**kwargs)

# --- fit ---------------------------------------------------------------------------------------


def _fit(args: argparse.Namespace) -> None:
    from .train.fit import FitOptions, fit

    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in ("data", "out", "resolution", "init", "recipe", "tokenizer_config",
                                                            "transformer_config", "decoder_config", "time_limit")
                 if getattr(args, name) is not None]
        given += ["--held-out"] if args.held_out is not None else []
        if given:
            raise MaskgitError(f"--resume continues a fit as it was started; drop {', '.join(given)}")
        fit(FitOptions(data="", out=args.resume), resume=True, progress=not args.quiet, until=args.until,
            device=args.device)
        return
    if not args.data or not args.out:
        raise MaskgitError("fit needs --data DIR and --out MODEL (or --resume MODEL)")
    options = FitOptions(data=args.data, out=args.out, time_limit=args.time_limit or 120.0, device=args.device or "auto",
                         resolution=args.resolution, init=args.init, recipe=args.recipe or "auto",
                         tokenizer_config=args.tokenizer_config, transformer_config=args.transformer_config,
                         decoder_config=args.decoder_config, min_images=args.min_images, held_out=args.held_out)
    fit(options, progress=not args.quiet, until=args.until)


def _add_fit(sub: argparse._SubParsersAction) -> None:
    from .train.fit import MIN_IMAGES, RESOLUTIONS, STAGES

    p = sub.add_parser("fit", help="train and evaluate a model on your own folder of images, in one command",
                       description="Turn a folder of images into an evaluated inpainting model: split off held-out "
                                   "images, train the tokenizer, the transformer and the guided decoder, each on its "
                                   "share of one wall-clock budget, export, choose the sampling defaults on held-out "
                                   "cases and write a model card (MODEL/README.md) with FID, KID, LPIPS and hole PSNR "
                                   "beside OpenCV's inpainting on held-out test cases.")
    p.add_argument("--data", help="folder of images (any size; centre-cropped to squares)")
    p.add_argument("--out", help="model folder to create (must not exist or be empty)")
    p.add_argument("--time-limit", type=_minutes, metavar="MINUTES",
                   help="wall-clock budget for everything (default 120)")
    p.add_argument("--device", help="auto (CUDA if available; the default), cpu, cuda, cuda:1, ...; with --resume, "
                                    "where to continue (default: where it started)")
    p.add_argument("--held-out", metavar="DIR",
                   help="images to choose settings on and report on (half each) instead of a share of --data, "
                        "which then all trains")
    p.add_argument("--resolution", type=int,
                   help=f"image side in pixels: {', '.join(map(str, RESOLUTIONS))} (default: the largest not above "
                        "the images' median short side)")
    p.add_argument("--init", metavar="MODEL",
                   help="fine-tune: start every stage from this model's weights (e.g. catface64), at its resolution")
    p.add_argument("--recipe", choices=("auto", "cpu", "gpu", "tiny"),
                   help="training presets: auto (gpu on CUDA, cpu on a CPU, tiny under 10 minutes of CPU)")
    p.add_argument("--tokenizer-config", metavar="FILE", help="tokenizer training config (YAML) instead of the recipe's")
    p.add_argument("--transformer-config", metavar="FILE", help="transformer training config (YAML) instead of the recipe's")
    p.add_argument("--decoder-config", metavar="FILE", help="guided-decoder training config (YAML) instead of the recipe's")
    p.add_argument("--min-images", type=int, default=MIN_IMAGES,
                   help="refuse folders with fewer images than this")
    p.add_argument("--resume", metavar="MODEL", help="continue a killed fit at the stage and checkpoint where it stopped")
    p.add_argument("--until", choices=STAGES[1:],
                   help="stop after this stage (e.g. train on one machine, choose and report on another); "
                        "--resume continues")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.set_defaults(func=_fit)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    # What a newcomer runs first comes first: use, measure, then train.
    _add_inpaint, _add_evaluate, _add_make_cases, _add_sweep, _add_demo,
    _add_fit, _add_train_tokenizer, _add_reconstruct, _add_encode, _add_train, _add_train_decoder, _add_export,
    _add_lpips,
]


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Says which options are required and each option's default (unless its help already does)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required and action.option_strings:
            return text + " (required)"
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        default = ",".join(map(str, action.default)) if isinstance(action.default, list) else action.default
        return f"{text} (default: {default})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskgit", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Image inpainting with MaskGIT.",
        epilog="Start here: `maskgit inpaint examples/cases --out results` fills the example holes with the shipped "
               "model.\nThen: evaluate (scores against ground truth), fit (a model of your own images, one command; or "
               "step by step:\ntrain-tokenizer -> encode -> train -> train-decoder -> export), sweep (compare sampling settings), demo (a local web page).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_SubParser)
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
