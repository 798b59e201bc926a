"""A model's networks as ONNX graphs (`maskgit export --onnx`), and ONNX Runtime in the transformer's place.

`export_onnx` writes `onnx/` into a model folder:

| file | inputs | output |
|---|---|---|
| `encoder.onnx` | `images` (B, 3, H, W) float32 in [-1, 1] | `token_ids` (B, N) int64 |
| `transformer.onnx` | `token_ids` (B, N) int64, mask id = K (and `hint_ids` (B, N) int64 for a model with hints) | `logits` (B, N, K) float32 |
| `decoder.onnx` | `token_ids` (B, N) int64 | `images` (B, 3, H, W) float32 in [-1, 1] |
| `guided_decoder.onnx` (models with one) | `token_ids`, `images` (B, 3, H, W), `known` (B, 1, H, W) float32, 1 = known | `images_out` |

The batch axis is dynamic. Iterative decoding (which tokens to reveal each step, `sampling.py`) is a
loop around `transformer.onnx` in the caller's language; `OnnxTransformer` runs the graph under ONNX
Runtime inside this package's own loop (`maskgit inpaint --backend onnx`). Needs the `onnx` extra
(`pip install "maskgit-inpaint[onnx]"`: onnx and onnxruntime).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch
from torch import nn

from .atomic import atomic_path
from .errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from .pipeline import MaskGIT
    from .tokenizer import VQGAN, GuidedDecoder

ONNX_DIR = "onnx"  # inside a model folder
OPSET = 17


class _Encode(nn.Module):
    def __init__(self, tokenizer: "VQGAN"):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.encode(images).flatten(1)


class _Decode(nn.Module):
    def __init__(self, tokenizer: "VQGAN"):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.decode(token_ids)


class _GuidedDecode(nn.Module):
    def __init__(self, tokenizer: "VQGAN", guided: "GuidedDecoder"):
        super().__init__()
        self.tokenizer, self.guided = tokenizer, guided

    def forward(self, token_ids: torch.Tensor, images: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        grid = self.tokenizer.config.token_grid
        quantized = self.tokenizer.quantizer.lookup(token_ids.reshape(-1, grid, grid))
        return self.guided(quantized, images, known).clamp(-1, 1)


def require_onnx() -> None:
    """Raise a one-line ConfigError when the onnx extra is missing."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise ConfigError('ONNX export needs the onnx package: pip install "maskgit-inpaint[onnx]"') from None


def _export(module: nn.Module, inputs: tuple, names: list[str], output: str, path: Path) -> None:
    axes = {name: {0: "batch"} for name in names + [output]}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing and on its own deprecation
        torch.onnx.export(module, inputs, str(tmp), input_names=names, output_names=[output], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)


@torch.no_grad()
def export_onnx(pipe: "MaskGIT", directory: str | Path) -> list[Path]:
    """Write the model's networks as ONNX graphs into `directory`/onnx/ (see the module's table), in float32,
    from CPU copies (`pipe` is left as it is)."""
    require_onnx()
    out = Path(directory) / ONNX_DIR
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = copy.deepcopy(pipe.tokenizer).float().cpu().eval()
    transformer = copy.deepcopy(pipe.transformer).float().cpu().eval()
    res, n = tokenizer.config.resolution, tokenizer.config.num_tokens
    images = torch.zeros(2, tokenizer.config.in_channels, res, res)
    token_ids = torch.zeros(2, n, dtype=torch.long)
    written = []
    _export(_Encode(tokenizer), (images,), ["images"], "token_ids", out / "encoder.onnx")
    written.append(out / "encoder.onnx")
    if transformer.config.hints:
        _export(transformer, (token_ids, token_ids), ["token_ids", "hint_ids"], "logits", out / "transformer.onnx")
    else:
        _export(transformer, (token_ids,), ["token_ids"], "logits", out / "transformer.onnx")
    written.append(out / "transformer.onnx")
    _export(_Decode(tokenizer), (token_ids,), ["token_ids"], "images", out / "decoder.onnx")
    written.append(out / "decoder.onnx")
    if pipe.guided_decoder is not None:
        known = torch.ones(2, 1, res, res)
        guided = copy.deepcopy(pipe.guided_decoder).float().cpu().eval()
        _export(_GuidedDecode(tokenizer, guided), (token_ids, images, known),
                ["token_ids", "images", "known"], "images_out", out / "guided_decoder.onnx")
        written.append(out / "guided_decoder.onnx")
    return written


def onnx_session(path: Path, threads: Optional[int] = None):
    """An ONNX Runtime CPU session for `path`, with PyTorch's thread count unless told otherwise."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError('the ONNX backend needs onnxruntime: pip install "maskgit-inpaint[onnx]"') from None
    if not path.is_file():
        raise CheckpointError(f"{path} missing: write the model's ONNX graphs with `maskgit export --model MODEL "
                              f"--out DIR --onnx` and inpaint with --model DIR")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime's own error kinds
        raise CheckpointError(f"{path}: not a readable ONNX graph ({str(exc).splitlines()[0][:200]})") from None


class OnnxTransformer(nn.Module):
    """`transformer.onnx` under ONNX Runtime, callable as the `BidirectionalTransformer` it came from
    (token_ids (B, N) long[, hint_ids] -> logits (B, N, K) float32, on the CPU). For a graph with hints,
    hint_ids=None feeds the token ids themselves, as iterative decoding does (`sampling.py`)."""

    def __init__(self, path: str | Path, config, threads: Optional[int] = None):
        super().__init__()
        self.config = config
        self.session = onnx_session(Path(path), threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # MaskGIT.device reads it

    def forward(self, token_ids: torch.Tensor, hint_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        feeds = {"token_ids": token_ids.cpu().numpy()}
        if "hint_ids" in self.input_names:
            feeds["hint_ids"] = (hint_ids if hint_ids is not None else token_ids).cpu().numpy()
        return torch.from_numpy(self.session.run(None, feeds)[0])


def use_onnx_transformer(pipe: "MaskGIT", model_dir: str | Path, threads: Optional[int] = None) -> "MaskGIT":
    """Make `pipe` (loaded from `model_dir`, on the CPU) run its transformer under ONNX Runtime."""
    if pipe.device.type != "cpu":
        raise ConfigError("the ONNX backend runs on the CPU; this model is on " + str(pipe.device))
    pipe.transformer = OnnxTransformer(Path(model_dir) / ONNX_DIR / "transformer.onnx", pipe.transformer.config, threads)
    return pipe
