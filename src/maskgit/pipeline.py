"""`MaskGIT`: tokenizer + transformer + sampling defaults, saved and loaded as one folder."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .atomic import atomic_write_text
from .code_patches import (
    CODE_PATCHES_NAME,
    decoding_checksum,
    load_code_patches,
    save_code_patches,
)
from .config import SamplingConfig, config_from_dict, config_to_dict, with_overrides
from .devices import (
    cpu_has_native_bf16,
    pick_device,  # noqa: F401  (re-exported: part of the public API)
)
from .errors import CheckpointError, ConfigError, DataError
from .files import CONFIG_NAME
from .holes import as_holes, check_convention, composite, fill_hole
from .image_io import ImageInput, as_image_list, tensor_to_uint8, uint8_to_tensor
from .masks import tokens_from_hole
from .sampling import DecodeStep, iterative_decode, known_pixel_evidence
from .seeding import candidate_generators, per_image_generators
from .tokenizer import VQGAN, GuidedDecoder
from .transformer import BidirectionalTransformer, autocast, is_int8, quantize_int8
from .windows import Window, choose_window, resize, resize_reach

SAMPLING_NAME = "sampling.json"
GUIDED_DECODER_DIR = "guided_decoder"  # optional part of a saved model
log = logging.getLogger(__name__)
ASSETS_DIR = Path(__file__).resolve().parent / "assets"  # pretrained models shipped in the package
DEFAULT_MODEL = "catface64"
PRECISIONS = ("auto", "fp32", "bf16", "int8")  # the transformer's arithmetic (`MaskGIT.set_precision`)


@dataclass(frozen=True)
class InpaintTrace:
    """How one image was decoded: stage 0 is the input, stage s the state after step s."""

    token_masks: list[np.ndarray]  # (h, w) bool per stage, True = still unknown
    images: list[Image.Image]  # per stage: the masked input, then the decoding of each step's tokens


@dataclass(frozen=True)
class InpaintOutput:
    images: list[Image.Image]  # inpainted, same sizes as the inputs
    trace: Optional[list[InpaintTrace]] = None  # one per image when return_trace=True


@dataclass(frozen=True)
class PreparedBatch:
    images: list[np.ndarray]  # (res, res, 3) uint8 per image, hole pre-filled (for traces)
    pixels: torch.Tensor  # (B, 3, res, res) in [-1, 1], the same images on the model's device
    hole_pixels: torch.Tensor  # (B, res, res) bool, the model pixels that are not exact known pixels (see below)
    token_ids: torch.Tensor  # (B, N) long, the pre-filled images' tokens
    unknown: torch.Tensor  # (B, N) bool, tokens to fill
    windows: list[Window]  # where in each input the model looks (windows.py)


class MaskGIT:
    """A VQGAN tokenizer and a bidirectional transformer that share a codebook and a token grid.

    Saved layout: `tokenizer/` and `transformer/` (each `config.json` + `model.safetensors`),
    `sampling.json`, and optionally `guided_decoder/` (the mask-aware decoder, `tokenizer/guided.py`).
    """

    def __init__(self, tokenizer: VQGAN, transformer: BidirectionalTransformer, sampling: Optional[SamplingConfig] = None,
                 guided_decoder: Optional[GuidedDecoder] = None):
        t, m = tokenizer.config, transformer.config
        if t.codebook_size != m.codebook_size or t.num_tokens != m.num_tokens:
            raise ConfigError(
                f"tokenizer ({t.codebook_size} codes, {t.num_tokens} tokens) and transformer "
                f"({m.codebook_size} codes, {m.num_tokens} tokens) do not fit together"
            )
        if guided_decoder is not None:
            guided_decoder.check_tokenizer(tokenizer)
        self.tokenizer = tokenizer.eval()
        self.transformer = transformer.eval()
        self.guided_decoder = guided_decoder.eval() if guided_decoder is not None else None
        self.sampling = sampling or SamplingConfig()
        self._code_patches: Optional[torch.Tensor] = None  # the tokenizer's: loaded with the model or computed on first use
        self.mixed_precision = True  # the transformer under bf16 autocast on CUDA (`set_precision`)
        self._told_window = False
        if self.sampling.decoder == "guided" and guided_decoder is None:
            raise ConfigError("the sampling defaults ask for the guided decoder, but the model has none")

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    @property
    def resolution(self) -> int:
        return self.tokenizer.config.resolution

    def to(self, device: Optional[torch.device | str] = None, dtype: Optional[torch.dtype] = None) -> "MaskGIT":
        """Move both models (the tokenizer stays float32: its quantizer needs it)."""
        self.tokenizer.to(device=device)
        self.transformer.to(device=device, dtype=dtype)
        if self._code_patches is not None and device is not None:
            self._code_patches = self._code_patches.to(device)
        if self.guided_decoder is not None:
            self.guided_decoder.to(device=device)
        return self

    @property
    def precision(self) -> str:
        """The transformer's arithmetic: "int8" (`quantize_int8`), "bf16" (autocast, on CUDA) or "fp32"."""
        if is_int8(self.transformer):
            return "int8"
        return "bf16" if self.mixed_precision and self.device.type == "cuda" else "fp32"

    def set_precision(self, precision: str) -> "MaskGIT":
        """Choose the transformer's arithmetic: "fp32"; "int8" (CPU only: `quantize_int8`); "bf16" (CUDA
        only: autocast); or "auto", the command line's default: int8 on a CPU, bf16 on CUDA, fp32
        elsewhere. The tokenizer and decoders stay float32 (docs/inpainting.md, Speed)."""
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        kind = self.device.type
        if precision == "auto":
            precision = {"cpu": "int8", "cuda": "bf16"}.get(kind, "fp32")
        if precision == "int8" and kind != "cpu":
            raise ConfigError(f"int8 is for the CPU; this model is on {self.device} (use fp32, or the CPU)")
        if precision == "bf16" and kind != "cuda":
            raise ConfigError(f"bf16 autocast is for CUDA; this model is on {self.device} (use fp32 or int8)")
        if precision == "int8" and not is_int8(self.transformer):
            self.quantize_int8()
        elif precision != "int8" and is_int8(self.transformer):
            raise ConfigError("this model's transformer is quantized to int8 already; load it again for " + precision)
        self.mixed_precision = precision == "bf16"
        return self

    def quantize_int8(self) -> "MaskGIT":
        """Quantize the transformer's linear layers to int8 for CPU inference (`transformer.quantize_int8`:
        about 3x faster on 2 cores at the same quality, docs/performance.md), in place: the transformer
        object itself changes. The tokenizer and decoders stay float32."""
        if self.device.type != "cpu":
            raise ConfigError("int8 quantization is for CPU inference; this model is on " + str(self.device))
        self.transformer = quantize_int8(self.transformer, inplace=True)
        return self

    @torch.no_grad()
    def inpaint(
        self,
        images: Union[ImageInput, Sequence[ImageInput]],
        masks: Union[ImageInput, Sequence[ImageInput]],
        *,
        steps: Optional[int] = None,
        sweet_spot: Optional[int] = None,
        schedule: Optional[str] = None,
        choice_temperature: Optional[float] = None,
        generator: Union[None, torch.Generator, Sequence[torch.Generator]] = None,
        return_trace: bool = False,
        mask_convention: str = "white-hole",
        batch_size: int = 64,
        progress: bool = False,
        mixed_precision: Optional[bool] = None,
        step_callback: Optional[Callable[[int, int, np.ndarray, Image.Image], None]] = None,
        **sampling_overrides: Any,
    ) -> InpaintOutput:
        """Fill the holes of images; pixels outside the hole are returned exactly as given.

        Args:
            images: a PIL image, an (H, W, 3) uint8 array, a (3, H, W) / (B, 3, H, W) float tensor in
                [0, 1], or a list of these. Any size: the model sees a square window of each (a crop
                around the hole, or the whole image mirror-padded; `window`, windows.py) resized to its
                resolution, and its output is resized back before compositing.
            masks: one per image, same kinds; bool arrays/tensors are True = hole, 8-bit images and
                arrays follow `mask_convention` ("white-hole": white = hole; "lab": 0 = hole), float
                ones in [0, 1] are thresholded at 0.5. Masks of another size are resized (nearest).
                A mask without hole returns its image unchanged; a mask that is all hole is refused.
            steps, sweet_spot, schedule, choice_temperature, and any other `SamplingConfig` field
                as keyword: override the model's `sampling.json` for this call (sweet_spot=0: none).
            generator: a `torch.Generator` (per-image seeds drawn from it in order) or one per image;
                the same per-image generator gives the same result alone or in any batch.
            return_trace: also return each image's token masks and decoded images per step.
            mixed_precision: run the transformer under bf16 autocast on CUDA (False: plain fp32; default:
                the model's, `set_precision`).
            step_callback: called as each decoding step ends, per image, with (image index, step,
                token mask (h, w) bool with True = still unknown, the step's tokens decoded at the
                model's resolution): the `trace` pictures, live.
        Returns:
            InpaintOutput(images=[PIL.Image, ...], trace=[InpaintTrace, ...] or None).
        """
        check_convention(mask_convention)
        mixed_precision = self.mixed_precision if mixed_precision is None else mixed_precision
        cfg = self.sampling_for(steps=steps, sweet_spot=sweet_spot, schedule=schedule,
                                choice_temperature=choice_temperature, **sampling_overrides)
        originals, holes = self._read_inputs(images, masks, mask_convention, cfg)
        generators = per_image_generators(generator, len(originals))
        outputs: list[Optional[Image.Image]] = [None] * len(originals)
        traces: list[Optional[InpaintTrace]] = [None] * len(originals)
        todo = []
        for i, (image, hole) in enumerate(zip(originals, holes)):
            if not hole.any():
                outputs[i] = Image.fromarray(image)
                traces[i] = InpaintTrace([np.zeros((self.tokenizer.config.token_grid,) * 2, bool)], [Image.fromarray(image)])
            elif hole.all():
                raise DataError(f"mask {i} covers the whole image: nothing is known to inpaint from "
                                f"(is the mask convention {mask_convention!r} right?)")
            else:
                todo.append(i)
        for start in tqdm(range(0, len(todo), batch_size), desc="inpaint", disable=not progress):
            index = todo[start : start + batch_size]
            batch_gens = [generators[i] for i in index] if generators is not None else None
            on_step = None
            if step_callback is not None:
                on_step = self._step_reporter(index, step_callback)
            results, batch_traces = self._inpaint_batch([originals[i] for i in index], [holes[i] for i in index],
                                                        cfg, batch_gens, return_trace, mixed_precision, on_step)
            for j, i in enumerate(index):
                outputs[i] = results[j]
                if return_trace:
                    traces[i] = batch_traces[j]
        return InpaintOutput([o for o in outputs if o is not None], [t for t in traces if t is not None] if return_trace else None)

    @torch.no_grad()
    def inpaint_sweet_spots(self, images: Sequence[ImageInput], masks: Sequence[ImageInput],
                            sweet_spots: Sequence[Optional[int]], *, generator: Union[None, torch.Generator, Sequence[torch.Generator]] = None,
                            mask_convention: str = "white-hole", batch_size: int = 64,
                            **sampling_overrides: Any) -> dict[Optional[int], list[Image.Image]]:
        """`inpaint` with each of several sweet spots (None: run all T steps), from one decoding.

        Decoding with sweet spot S takes the same steps and random draws as decoding without one up to
        step S, and then keeps step S's predictions everywhere still unknown; so one decoding (to the last
        sweet spot, or all T steps with None among them) gives every sweet spot's result, identical to a
        separate `inpaint(..., sweet_spot=S)` call.
        Returns {sweet spot: images}; the other arguments are `inpaint`'s.
        """
        check_convention(mask_convention)
        for name in ("sweet_spot", "return_trace", "step_callback", "mixed_precision"):
            if name in sampling_overrides:
                raise TypeError(f"inpaint_sweet_spots() takes the sweet spots as a list, and no {name!r}")
        cfg = self.sampling_for(sweet_spot=0, **sampling_overrides)
        for s in sweet_spots:
            if s is not None and not 0 < s <= cfg.steps:
                raise ConfigError(f"sweet spot {s} must lie between 1 and the steps ({cfg.steps})")
        if None not in sweet_spots and sweet_spots:  # no step after the last sweet spot is needed
            cfg = self.sampling_for(sweet_spot=max(sweet_spots), **sampling_overrides)
        originals, holes = self._read_inputs(images, masks, mask_convention, cfg)
        generators = per_image_generators(generator, len(originals))
        for i, hole in enumerate(holes):
            if hole.all():
                raise DataError(f"mask {i} covers the whole image: nothing is known to inpaint from")
        outputs: dict[Optional[int], list[Image.Image]] = {s: [] for s in sweet_spots}
        for start in range(0, len(originals), batch_size):
            index = range(start, min(start + batch_size, len(originals)))
            batch, batch_holes = [originals[i] for i in index], [holes[i] for i in index]
            inputs = self.prepare_batch(batch, batch_holes, cfg)
            token_ids, unknown = inputs.token_ids, inputs.unknown
            evidence = self.known_pixel_log_likelihood(inputs.pixels, inputs.hole_pixels, cfg.pixel_evidence)
            batch_gens = [generators[i] for i in index] if generators is not None else None
            grids: dict[Optional[int], list[torch.Tensor]] = {s: [] for s in sweet_spots}  # per sweet spot, per candidate
            for gens in candidate_generators(batch_gens, cfg.candidates):
                stopped: dict[int, torch.Tensor] = {}

                def keep_stops(step: int, state: DecodeStep) -> None:
                    if step in outputs:
                        stopped[step] = state.token_ids  # what a decoding with this sweet spot would end with

                result = iterative_decode(self.transformer, token_ids, unknown, cfg, gens,
                                          mixed_precision=self.mixed_precision, pixel_log_likelihood=evidence,
                                          on_step=keep_stops)
                for s in sweet_spots:
                    # A decoding that ended before step s ended the same way with sweet spot s.
                    grids[s].append(torch.where(unknown, stopped[s], token_ids) if s in stopped else result.token_ids)
            for s in sweet_spots:
                _, ids, decoded = self.best_candidate(inputs, grids[s], cfg, evidence)
                images = self.finish_batch(batch, batch_holes, ids, cfg, inputs, decoded)
                # As `inpaint`: an image without hole comes back as given (also with composite off).
                outputs[s].extend(im if h.any() else Image.fromarray(o) for im, h, o in zip(images, batch_holes, batch))
        return outputs

    def best_candidate(self, inputs: "PreparedBatch", candidates: Sequence[torch.Tensor], cfg: SamplingConfig,
                       evidence: Optional[torch.Tensor] = None
                       ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Best-of-N: of N candidate (B, N) token grids, each image's that `cfg.critic` scores highest
        (critics.py; the first on a tie). Returns (the chosen candidate per image (B,) long, its tokens
        (B, N), its decoded images (B, 3, res, res) where the critic made them, else None). One candidate
        is returned as it is, unjudged."""
        if len(candidates) == 1:
            return torch.zeros(candidates[0].shape[0], dtype=torch.long), candidates[0], None
        from .critics import CRITICS

        judgements = [CRITICS[cfg.critic].judge(self, inputs, ids, cfg, evidence) for ids in candidates]
        best = torch.stack([j.scores.float() for j in judgements]).argmax(0)  # (B,): argmax keeps the first of ties
        rows = torch.arange(best.shape[0], device=best.device)
        ids = torch.stack(list(candidates))[best, rows]
        decoded = None
        if all(j.decoded is not None for j in judgements):
            decoded = torch.stack([j.decoded for j in judgements])[best, rows]
        return best.cpu(), ids, decoded

    def sampling_for(self, **overrides: Any) -> SamplingConfig:
        """The sampling settings a call with these keyword overrides uses (None: the model's default;
        sweet_spot=0: none; the model's sweet spot is dropped when the steps asked for end before it).
        Raises ConfigError for settings that do not fit together."""
        cfg = with_overrides(self.sampling, **overrides)
        if cfg.decoder == "guided" and self.guided_decoder is None:
            raise ConfigError("decoder 'guided' asked for, but this model has no guided decoder "
                              "(train one with `maskgit train-decoder`)")
        return cfg

    def _read_inputs(self, images: Any, masks: Any, mask_convention: str, cfg: SamplingConfig
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(H, W, 3) uint8 images and (H, W) bool holes from any accepted kinds; says once per model how
        inputs of other sizes are handled."""
        originals = as_image_list(images)
        holes = as_holes(masks, [im.shape[:2] for im in originals], mask_convention)
        if not self._told_window and any(im.shape[:2] != (self.resolution,) * 2 for im in originals):
            self._told_window = True
            log.info("images that are not %dx%d are inpainted at %dx%d in a square window (window=%s: a crop "
                     "around the hole when that keeps more detail, else the whole image mirror-padded; never "
                     "squashed); only their hole pixels change", *(self.resolution,) * 4, cfg.window)
        return originals, holes

    def _step_reporter(self, index: list[int], callback: Callable[[int, int, np.ndarray, Image.Image], None]
                       ) -> Callable[[int, DecodeStep], None]:
        grid = self.tokenizer.config.token_grid

        def report(step: int, state: DecodeStep) -> None:
            decoded = self.step_pictures(state.token_ids)
            for b, i in enumerate(index):
                callback(i, step, state.unknown[b].reshape(grid, grid).cpu().numpy(), Image.fromarray(decoded[b]))

        return report

    def step_pictures(self, token_ids: torch.Tensor) -> np.ndarray:
        """(B, N) token ids as (B, res, res, 3) uint8 through the plain decoder: the pictures of a trace
        and of the demo's steps, never a result. On a CPU with native bf16 they are decoded under bf16
        autocast, about twice as fast as float32 and within a few levels of it (docs/performance.md)."""
        cheap = self.device.type == "cpu" and cpu_has_native_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cheap):
            return tensor_to_uint8(self.tokenizer.decode(token_ids))

    def prepare_batch(self, originals: list[np.ndarray], holes: list[np.ndarray], cfg: SamplingConfig) -> "PreparedBatch":
        """The first half of inpainting, as `inpaint` does it: each input's window (windows.py), its hole
        pre-filled (`cfg.prefill`) and resized to the model's size, encoded, and which tokens are
        unknown. images: (H, W, 3) uint8; holes: (H, W) bool, True = hole. Training the guided
        decoder prepares its batches with it, so training and inference cannot drift apart."""
        res, grid, device = self.resolution, self.tokenizer.config.token_grid, self.device
        model_images, model_holes, exact_holes, windows = [], [], [], []
        for image, hole in zip(originals, holes):
            window = choose_window(hole, res, cfg.window)
            image, hole = window.extract(image), window.extract(hole)
            windows.append(window)
            # The hole is filled at the input's own resolution, before any resize, so no hidden pixel
            # reaches the model through the resampling kernel.
            filled = fill_hole(image, hole, cfg.prefill)
            exact = hole
            if image.shape[:2] != (res, res):
                # The resize kernel reaches further than a model pixel's footprint: the model pixels it
                # mixed with the pre-fill are no known pixels for the evidence and the guided decoder,
                # which treat known pixels as exact.
                reach = resize_reach(hole, res)
                # Any hole pixel in a model pixel's footprint makes it hole: nothing unknown hides under a known token.
                hole = F.interpolate(torch.tensor(hole)[None, None].float(), size=(res, res), mode="area")[0, 0].numpy() > 0
                exact = hole | reach
                filled = resize(filled, res, res)
                if cfg.prefill == "gray":
                    filled = fill_hole(filled, hole, "gray")
            model_images.append(filled)
            model_holes.append(hole)
            exact_holes.append(exact)
        pixels = uint8_to_tensor(torch.from_numpy(np.stack(model_images))).to(device)  # (B, 3, res, res)
        hole_t = torch.from_numpy(np.stack(model_holes)).to(device)  # (B, res, res)
        token_ids = self.tokenizer.encode(pixels).flatten(1)  # (B, N)
        unknown = tokens_from_hole(hole_t, grid, cfg.min_overlap, cfg.dilate).flatten(1)  # (B, N)
        return PreparedBatch(model_images, pixels, torch.from_numpy(np.stack(exact_holes)).to(device), token_ids, unknown,
                            windows)

    def known_pixel_log_likelihood(self, pixels: torch.Tensor, holes: torch.Tensor, weight: float
                                   ) -> Optional[torch.Tensor]:
        """What the known pixels say of each code at each token (`sampling.known_pixel_evidence`):
        pixels (B, 3, res, res) in [-1, 1], holes (B, res, res) bool -> (B, N, K), or None at weight 0."""
        if weight <= 0:
            return None
        return known_pixel_evidence(pixels, holes, self.code_patches, weight)

    @torch.no_grad()
    def token_logits(self, token_ids: torch.Tensor, unknown: torch.Tensor, hint_ids: Optional[torch.Tensor] = None
                     ) -> torch.Tensor:
        """The transformer's float32 logits (B, N, K) for (B, N) token ids with the `unknown` positions masked,
        in the model's arithmetic (`set_precision`); `hint_ids` are used only by a model trained with hints."""
        hints = hint_ids if self.transformer.config.hints else None
        with autocast(token_ids.device, self.mixed_precision):
            return self.transformer(token_ids.masked_fill(unknown, self.transformer.config.mask_token_id), hints).float()

    @property
    def code_patches(self) -> torch.Tensor:
        """(K, 3, p, p): what each code decodes to on its own (`VQGAN.code_patches`), which the
        known-pixel evidence compares with the known pixels. Loaded with the model when its folder
        holds `code_patches.safetensors` (`maskgit export` writes it), else computed once per loaded
        model (seconds on a CPU for catface64)."""
        if self._code_patches is None:
            self._code_patches = self.tokenizer.code_patches()
        return self._code_patches

    @torch.no_grad()
    def decode_guided(self, token_ids: torch.Tensor, images: torch.Tensor, holes: torch.Tensor,
                      keep_known: bool = True) -> torch.Tensor:
        """The guided decoder: token ids (B, N), images (B, 3, H, W) in [-1, 1] at the model's size, holes
        (B, H, W) bool -> images (B, 3, H, W) in [-1, 1], known pixels as given (`keep_known=False`: as
        the network decoded them)."""
        if self.guided_decoder is None:
            raise ConfigError("this model has no guided decoder")
        grid = self.tokenizer.config.token_grid
        quantized = self.tokenizer.quantizer.lookup(token_ids.reshape(-1, grid, grid))
        known = (~holes)[:, None].float()
        return self.guided_decoder(quantized, images, known, keep_known).clamp(-1, 1)

    def finish_batch(self, originals: list[np.ndarray], holes: list[np.ndarray], token_ids: torch.Tensor,
                 cfg: SamplingConfig, inputs: "PreparedBatch", decoded_pixels: Optional[torch.Tensor] = None
                 ) -> list[Image.Image]:
        """The second half of inpainting, as `inpaint` does it: decode (B, N) token ids (plainly or with
        the guided decoder, `cfg.decoder`), resize each back to its window, place it in its input and
        paste the known pixels back (`cfg.composite`). `inputs` is `prepare_batch`'s for the same
        originals and holes; `decoded_pixels`, (B, 3, res, res) in [-1, 1]: that decoding, where made already."""
        if decoded_pixels is not None:
            decoded = tensor_to_uint8(decoded_pixels)
        elif cfg.decoder == "guided":
            decoded = tensor_to_uint8(self.decode_guided(token_ids, inputs.pixels, inputs.hole_pixels))
        else:
            decoded = tensor_to_uint8(self.tokenizer.decode(token_ids))  # (B, res, res, 3)
        outputs = []
        for image, hole, generated, window in zip(originals, holes, decoded, inputs.windows):
            if generated.shape[:2] != (window.size, window.size):
                generated = resize(generated, window.size, window.size)
            if window.size != image.shape[0] or window.size != image.shape[1] or window.top or window.left:
                generated = window.place(generated, image)  # pixels outside the window: the input's own
            outputs.append(Image.fromarray(composite(image, generated, hole, cfg.feather) if cfg.composite else generated))
        return outputs

    def _inpaint_batch(self, originals: list[np.ndarray], holes: list[np.ndarray], cfg: SamplingConfig,
                       generators: Optional[list[torch.Generator]], return_trace: bool,
                       mixed_precision: bool = True, on_step: Optional[Callable[[int, DecodeStep], None]] = None
                       ) -> tuple[list[Image.Image], list[InpaintTrace]]:
        grid = self.tokenizer.config.token_grid
        inputs = self.prepare_batch(originals, holes, cfg)
        model_images, token_ids, unknown = inputs.images, inputs.token_ids, inputs.unknown
        evidence = self.known_pixel_log_likelihood(inputs.pixels, inputs.hole_pixels, cfg.pixel_evidence)
        # Best-of-N: step pictures shown live (`on_step`) are the first candidate's; a trace is the kept one's.
        results = [iterative_decode(self.transformer, token_ids, unknown, cfg, gens, return_trace, mixed_precision,
                                    pixel_log_likelihood=evidence, on_step=on_step if c == 0 else None)
                   for c, gens in enumerate(candidate_generators(generators, cfg.candidates))]
        best, chosen, decoded = self.best_candidate(inputs, [r.token_ids for r in results], cfg, evidence)
        outputs = self.finish_batch(originals, holes, chosen, cfg, inputs, decoded)
        traces = []
        if return_trace:
            steps = results[0].steps if len(results) == 1 else [DecodeStep(torch.stack([results[int(c)].steps[k].token_ids[b] for b, c in enumerate(best)]),
                                torch.stack([results[int(c)].steps[k].unknown[b] for b, c in enumerate(best)]))
                     for k in range(len(results[0].steps))]
            stages = [self.step_pictures(step.token_ids) for step in steps]  # each (B, res, res, 3)
            for b in range(len(originals)):
                token_masks = [unknown[b].reshape(grid, grid).cpu().numpy()]
                token_masks += [step.unknown[b].reshape(grid, grid).cpu().numpy() for step in steps]
                frames = [Image.fromarray(model_images[b])] + [Image.fromarray(s[b]) for s in stages]
                traces.append(InpaintTrace(token_masks, frames))
        return outputs, traces

    def save_pretrained(self, directory: str | Path, dtype: Optional[torch.dtype] = None,
                        max_shard_bytes: Optional[int] = None, code_patches: bool = False) -> Path:
        """Write `tokenizer/`, `transformer/`, `sampling.json` (and `guided_decoder/`); see `files.save_module`
        for the options. `code_patches`: also `code_patches.safetensors`, computed from the tokenizer as
        saved (so as any later load computes them), so that loading never recomputes them."""
        directory = Path(directory)
        self.tokenizer.save_pretrained(directory / "tokenizer", dtype, max_shard_bytes)
        if code_patches:
            saved = VQGAN.from_pretrained(directory / "tokenizer").to(self.device)
            save_code_patches(saved.code_patches(), decoding_checksum(saved), directory / CODE_PATCHES_NAME)
        elif (directory / CODE_PATCHES_NAME).is_file():
            (directory / CODE_PATCHES_NAME).unlink()  # an earlier save's, perhaps of other weights
        self.transformer.save_pretrained(directory / "transformer", dtype, max_shard_bytes)
        if self.guided_decoder is not None:
            self.guided_decoder.save_pretrained(directory / GUIDED_DECODER_DIR, dtype, max_shard_bytes)
        elif (directory / GUIDED_DECODER_DIR).is_dir():
            import shutil

            shutil.rmtree(directory / GUIDED_DECODER_DIR)  # an earlier save's, no longer part of this model
        atomic_write_text(directory / SAMPLING_NAME, json.dumps(config_to_dict(self.sampling), indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, path: str | Path = DEFAULT_MODEL, device: Optional[torch.device | str] = None,
                        dtype: Optional[torch.dtype] = None) -> "MaskGIT":
        """Load a shipped model by name (`"catface64"`, see `pretrained_models()`), a saved MaskGIT
        folder, or a `train` run folder (which holds one)."""
        path = resolve_model(path)
        if not (path / "transformer" / CONFIG_NAME).is_file() or not (path / "tokenizer" / CONFIG_NAME).is_file():
            missing = [f"{part}/{CONFIG_NAME}" for part in ("tokenizer", "transformer") if not (path / part / CONFIG_NAME).is_file()]
            raise CheckpointError(f"{path}: not a MaskGIT model folder ({' and '.join(missing)} missing)")
        tokenizer = VQGAN.from_pretrained(path / "tokenizer")
        transformer = BidirectionalTransformer.from_pretrained(path / "transformer")
        sampling = SamplingConfig()
        if (path / SAMPLING_NAME).is_file():
            try:
                sampling = config_from_dict(SamplingConfig, json.loads((path / SAMPLING_NAME).read_text()),
                                            source=str(path / SAMPLING_NAME))
            except (ValueError, OSError) as exc:
                raise CheckpointError(f"cannot read {path / SAMPLING_NAME}: {exc}") from None
        guided = GuidedDecoder.from_pretrained(path / GUIDED_DECODER_DIR) if (path / GUIDED_DECODER_DIR).is_dir() else None
        try:
            pipe = cls(tokenizer, transformer, sampling, guided)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        if device is not None or dtype is not None:
            pipe.to(device, dtype)
        if (path / CODE_PATCHES_NAME).is_file():
            pipe._code_patches = load_code_patches(path / CODE_PATCHES_NAME, tokenizer, pipe.device)
        return pipe


def pretrained_models() -> list[str]:
    """Names of the models shipped in the package (loadable offline with `MaskGIT.from_pretrained(name)`)."""
    if not ASSETS_DIR.is_dir():
        return []
    return sorted(p.name for p in ASSETS_DIR.iterdir() if (p / "transformer" / CONFIG_NAME).is_file())


def resolve_model(path: str | Path) -> Path:
    """A model folder from a path, or from the name of a shipped model when no such path exists."""
    candidate = Path(path)
    if not candidate.exists() and str(path) in pretrained_models():
        return ASSETS_DIR / str(path)
    if not candidate.exists():
        shipped = ", ".join(pretrained_models()) or "none"
        raise CheckpointError(f"{path}: no such model folder, and not the name of a shipped model ({shipped})")
    return candidate
