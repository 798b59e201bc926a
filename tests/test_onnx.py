"""`maskgit export --onnx` and the ONNX Runtime backend: the graphs compute what the PyTorch modules compute."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import brush_holes

from maskgit.cli import main
from maskgit.pipeline import MaskGIT

pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

TOLERANCE = 1e-4  # float32 graphs against float32 PyTorch: differences are summation order only (seen: ~1e-6)


def tiny_model(tmp_path: Path, hints: bool) -> Path:
    """The tiny presets (64x64 -> 16x16 tokens of 64 codes, a 2-layer transformer, a guided decoder),
    random weights, saved as a model folder."""
    from maskgit.config import (
        GUIDED_DECODER_PRESETS,
        TOKENIZER_PRESETS,
        TRANSFORMER_PRESETS,
        SamplingConfig,
    )
    from maskgit.tokenizer import VQGAN, GuidedDecoder
    from maskgit.transformer import BidirectionalTransformer

    torch.manual_seed(0)
    tokenizer = VQGAN(TOKENIZER_PRESETS["tiny"]().model)
    transformer = BidirectionalTransformer(dataclasses.replace(TRANSFORMER_PRESETS["tiny"]().model, hints=hints))
    guided = GuidedDecoder.from_tokenizer(tokenizer, GUIDED_DECODER_PRESETS["tiny"]().guide_channels)
    for p in guided.parameters():  # its guide branch starts at zero: give it something to compute
        p.data.add_(0.01 * torch.randn_like(p))
    pipe = MaskGIT(tokenizer, transformer, SamplingConfig(decoder="guided", pixel_evidence=1.0, steps=4), guided)
    return pipe.save_pretrained(tmp_path / "model", code_patches=True)


def session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("hints", [False, True])
def test_onnx_graphs_compute_what_the_model_computes(tmp_path, hints):
    model = tiny_model(tmp_path, hints)
    out = tmp_path / "exported"
    assert main(["export", "--model", str(model), "--out", str(out), "--onnx", "-q"]) == 0
    graphs = out / "onnx"
    assert sorted(p.name for p in graphs.iterdir()) == ["decoder.onnx", "encoder.onnx", "guided_decoder.onnx",
                                                         "transformer.onnx"]
    pipe = MaskGIT.from_pretrained(out)
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1  # batch 3: not the export's 2
    ids = pipe.tokenizer.encode(images).flatten(1)
    assert np.array_equal(session(graphs / "encoder.onnx").run(None, {"images": images.numpy()})[0], ids.numpy())
    masked = ids.clone()
    masked[:, ::3] = pipe.transformer.config.mask_token_id
    feeds = {"token_ids": masked.numpy()}
    if hints:
        feeds["hint_ids"] = ids.numpy()
    with torch.no_grad():
        logits = pipe.transformer(masked, ids if hints else None)
    got = session(graphs / "transformer.onnx").run(None, feeds)[0]
    assert got.shape == tuple(logits.shape) and np.abs(got - logits.numpy()).max() < TOLERANCE
    decoded = session(graphs / "decoder.onnx").run(None, {"token_ids": ids.numpy()})[0]
    assert np.abs(decoded - pipe.tokenizer.decode(ids).numpy()).max() < TOLERANCE
    known = (torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(2)) > 0.3).float()
    guided = session(graphs / "guided_decoder.onnx").run(
        None, {"token_ids": ids.numpy(), "images": images.numpy(), "known": known.numpy()})[0]
    reference = pipe.decode_guided(ids, images, known[:, 0] < 0.5)
    assert np.abs(guided - reference.numpy()).max() < TOLERANCE
    assert np.abs(guided - decoded).max() > 1e-3  # the guided graph is not the plain one


def test_the_onnx_backend_inpaints_as_pytorch_does(tmp_path):
    model = tiny_model(tmp_path, hints=True)
    out = tmp_path / "exported"
    assert main(["export", "--model", str(model), "--out", str(out), "--onnx", "-q"]) == 0
    from maskgit.onnx_graphs import OnnxTransformer, use_onnx_transformer

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    holes = brush_holes(3, 64)
    reference = MaskGIT.from_pretrained(out).inpaint(images, holes, generator=torch.Generator().manual_seed(5)).images
    onnx = use_onnx_transformer(MaskGIT.from_pretrained(out), out)
    assert isinstance(onnx.transformer, OnnxTransformer) and onnx.device.type == "cpu"
    got = onnx.inpaint(images, holes, generator=torch.Generator().manual_seed(5)).images
    for a, b, image, hole in zip(got, reference, images, holes):
        a, b = np.asarray(a), np.asarray(b)
        assert np.array_equal(a[~hole], image[~hole])
        assert np.array_equal(a, b)  # the same tokens (logits within 1e-5), decoded by the same PyTorch decoder
    cases = Path(__file__).resolve().parents[1] / "examples" / "lab-samples"
    assert main(["inpaint", "--model", str(out), str(cases), "--backend", "onnx", "--out", str(tmp_path / "filled"),
                 "-q"]) == 0
    assert len(list((tmp_path / "filled").glob("*.png"))) == len(list((cases / "masked_image").glob("*.png")))


def test_the_onnx_backend_says_what_is_missing(tmp_path, capsys):
    model = tiny_model(tmp_path, hints=False)
    cases = str(Path(__file__).resolve().parents[1] / "examples" / "lab-samples")

    def error(*extra):
        assert main(["inpaint", "--model", str(model), cases, "--backend", "onnx", "--out", str(tmp_path / "o"), *extra]) != 0
        return capsys.readouterr().err

    assert "onnx/transformer.onnx missing: write the model's ONNX graphs with `maskgit export --model MODEL --out DIR --onnx`" in error()
    assert "--precision int8 and --backend onnx do not go together" in error("--precision", "int8")
    (model / "onnx").mkdir()
    (model / "onnx" / "transformer.onnx").write_bytes(b"not a graph")
    assert "transformer.onnx: not a readable ONNX graph" in error()
    assert "--backend onnx runs on the CPU; --device cuda does not go with it" in error("--device", "cuda")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())  # nothing written


def test_a_failed_onnx_export_leaves_nothing_behind(tmp_path, monkeypatch):
    import maskgit.onnx_graphs as onnx_graphs

    model = tiny_model(tmp_path, hints=False)

    def broken(pipe, directory):
        (Path(directory) / "onnx").mkdir()
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(onnx_graphs, "export_onnx", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        main(["export", "--model", str(model), "--out", str(tmp_path / "exported"), "--onnx", "-q"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no OUT, no staging folder


@pytest.mark.slow
def test_the_shipped_model_exports_to_onnx(tmp_path):
    assert main(["export", "--model", "catface64", "--out", str(tmp_path / "c64"), "--onnx", "-q"]) == 0
    pipe = MaskGIT.from_pretrained(tmp_path / "c64")
    ids = torch.randint(0, 1024, (2, 256), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = pipe.transformer(ids)
    got = session(tmp_path / "c64" / "onnx" / "transformer.onnx").run(None, {"token_ids": ids.numpy()})[0]
    assert np.abs(got - logits.numpy()).max() < 1e-3  # 8 layers of 384: a little more summation noise
    assert (tmp_path / "c64" / "onnx" / "guided_decoder.onnx").is_file()
