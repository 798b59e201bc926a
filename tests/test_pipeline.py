import numpy as np
import pytest
import torch
from helpers import REPO, brush_holes, gens, micro_transformer_config
from PIL import Image

from maskgit.cli import main
from maskgit.errors import CheckpointError, ConfigError, DataError
from maskgit.image_io import composite, load_mask, save_mask
from maskgit.inpaint.oracle import oracle_inpaint
from maskgit.pipeline import MaskGIT
from maskgit.transformer import BidirectionalTransformer


def _images(count, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]



def test_pixels_outside_the_hole_are_bit_exact(micro_pipe):
    images, holes = _images(3), brush_holes(3)
    out = micro_pipe.inpaint(images, holes, generator=gens(3))
    for image, hole, result in zip(images, holes, out.images):
        result = np.asarray(result)
        assert result.shape == image.shape
        assert np.array_equal(result[~hole], image[~hole])
        assert not np.array_equal(result[hole], image[hole])  # the hole was filled


def test_other_sizes_are_inpainted_at_their_own_size(micro_pipe):
    image = _images(1, size=80)[0][:60]  # 60 x 80
    hole = np.zeros((60, 80), bool)
    hole[20:40, 30:50] = True
    result = np.asarray(micro_pipe.inpaint(image, hole, generator=gens(1)).images[0])
    assert result.shape == (60, 80, 3)
    assert np.array_equal(result[~hole], image[~hole])


@pytest.mark.parametrize("prefill", ["gray", "navier-stokes"])
@pytest.mark.parametrize("height,width", [(32, 32), (64, 64), (100, 100), (150, 200)])
def test_what_is_inside_the_hole_never_reaches_the_output(micro_pipe, height, width, prefill):
    from maskgit.masks import make_masks

    image = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    hole = np.asarray(Image.fromarray(make_masks("brush", 1, 64, seed=2)[0]).resize((width, height), Image.NEAREST))
    outputs = []
    for value in (0, 255):
        painted = image.copy()
        painted[hole] = value
        outputs.append(np.asarray(micro_pipe.inpaint(painted, hole, generator=gens(1), composite=False,
                                                     prefill=prefill).images[0]))
    assert np.array_equal(outputs[0], outputs[1])


def test_composite_off_returns_the_decoder_output(micro_pipe):
    images, holes = _images(1), brush_holes(1)
    raw = np.asarray(micro_pipe.inpaint(images, holes, generator=gens(1), composite=False).images[0])
    pasted = np.asarray(micro_pipe.inpaint(images, holes, generator=gens(1)).images[0])
    assert not np.array_equal(raw[~holes[0]], images[0][~holes[0]])
    assert np.array_equal(raw[holes[0]], pasted[holes[0]])


def test_feather_blends_only_a_ring_of_known_pixels():
    original = np.zeros((16, 16, 3), np.uint8)
    generated = np.full((16, 16, 3), 200, np.uint8)
    hole = np.zeros((16, 16), bool)
    hole[6:10, 6:10] = True
    hard = composite(original, generated, hole)
    assert (hard[hole] == 200).all() and (hard[~hole] == 0).all()
    soft = composite(original, generated, hole, feather=2)
    assert (soft[hole] == 200).all()
    assert soft[5, 7, 0] == round(200 * 2 / 3) and soft[4, 7, 0] == round(200 / 3)
    assert (soft[:3] == 0).all() and (soft[:, 13:] == 0).all()  # beyond the ring: exact


def test_mask_without_hole_returns_the_input_and_full_mask_is_refused(micro_pipe):
    image = _images(1)[0]
    out = micro_pipe.inpaint(image, np.zeros((32, 32), bool))
    assert np.array_equal(np.asarray(out.images[0]), image)
    with pytest.raises(DataError, match="whole image"):
        micro_pipe.inpaint(image, np.ones((32, 32), bool))


def test_input_kinds_give_the_same_result(micro_pipe):
    image, hole = _images(1)[0], brush_holes(1)[0]
    expected = np.asarray(micro_pipe.inpaint(image, hole, generator=gens(1)).images[0])
    as_pil = micro_pipe.inpaint(Image.fromarray(image), Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)),
                                generator=gens(1))
    as_tensor = micro_pipe.inpaint(torch.from_numpy(image).permute(2, 0, 1).float() / 255, torch.from_numpy(hole),
                                   generator=gens(1))
    lab_mask = micro_pipe.inpaint(image, np.where(hole, 0, 255).astype(np.uint8), mask_convention="lab", generator=gens(1))
    for out in (as_pil, as_tensor, lab_mask):
        assert np.array_equal(np.asarray(out.images[0]), expected)


def test_alone_equals_inside_a_batch_of_mixed_masks(micro_pipe):
    images = _images(4, seed=1)
    holes = brush_holes(2) + [np.zeros((32, 32), bool), np.pad(np.ones((10, 20), bool), ((0, 22), (0, 12)))]
    batched = micro_pipe.inpaint(images, holes, generator=gens(4, seed=7)).images
    for i in range(4):
        alone = micro_pipe.inpaint(images[i], holes[i], generator=gens(1, seed=7 + i)).images[0]
        assert np.array_equal(np.asarray(alone), np.asarray(batched[i]))
    # One generator for the whole call: per-image seeds are drawn from it, so batch size does not matter.
    a = micro_pipe.inpaint(images, holes, generator=torch.Generator().manual_seed(3), batch_size=4).images
    b = micro_pipe.inpaint(images, holes, generator=torch.Generator().manual_seed(3), batch_size=1).images
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


@pytest.mark.parametrize("overrides", [{}, {"sample": True, "choice_temperature": 2.0}, {"confidence": "lab", "schedule": "square"},
                                       {"pixel_evidence": 0.5, "sample": True}, {"order": "halton"},
                                       {"corrector": "remask-random", "corrector_share": 0.3},
                                       {"candidates": 3, "critic": "likelihood"}])
def test_one_decoding_gives_every_sweet_spot_as_separate_calls_would(micro_pipe, overrides):
    images = _images(5, seed=2)
    holes = brush_holes(4) + [np.zeros((32, 32), bool)]
    shared = micro_pipe.inpaint_sweet_spots(images, holes, [None, 2, 5, 6], generator=gens(5, seed=4), steps=6,
                                            batch_size=3, **overrides)
    for sweet_spot, results in shared.items():
        alone = micro_pipe.inpaint(images, holes, generator=gens(5, seed=4), steps=6, sweet_spot=sweet_spot or 0,
                                   **overrides).images
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(alone, results)), sweet_spot
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(shared[None], shared[2]))
    with pytest.raises(ConfigError, match="sweet spot 7"):
        micro_pipe.inpaint_sweet_spots(images, holes, [7], steps=6)


def test_code_patches_are_each_codes_own_decoding(micro_pipe):
    patches = micro_pipe.tokenizer.code_patches()
    assert patches.shape == (32, 3, 4, 4) and patches.abs().max() <= 1
    assert torch.allclose(micro_pipe.tokenizer.code_patches(batch_size=5), patches, atol=1e-5)
    grids = torch.full((1, 5, 5), 7)
    decoded = micro_pipe.tokenizer.decode_quantized(micro_pipe.tokenizer.quantizer.lookup(grids)).clamp(-1, 1)
    assert torch.allclose(decoded[0, :, 8:12, 8:12], patches[7], atol=1e-5)


def test_pixel_evidence_picks_codes_that_fit_the_known_pixels(micro_pipe):
    """With an overwhelming weight, a partly covered token takes the code whose own patch is closest to the
    token's known pixels (checked in numpy); known pixels stay exact and weight 0 is the default."""
    from maskgit.sampling import iterative_decode

    images, holes = _images(4, seed=5), brush_holes(4, seed=5)
    cfg = micro_pipe.sampling_for(pixel_evidence=1e4, choice_temperature=0.0)
    inputs = micro_pipe.prepare_batch(images, holes, cfg)
    assert micro_pipe.sampling_for().pixel_evidence == 0
    assert micro_pipe.known_pixel_log_likelihood(inputs.pixels, inputs.hole_pixels, 0.0) is None
    evidence = micro_pipe.known_pixel_log_likelihood(inputs.pixels, inputs.hole_pixels, cfg.pixel_evidence)
    ids = iterative_decode(micro_pipe.transformer, inputs.token_ids, inputs.unknown, cfg,
                           pixel_log_likelihood=evidence).token_ids
    codes = micro_pipe.tokenizer.code_patches().numpy().transpose(0, 2, 3, 1)  # (K, 4, 4, 3)
    checked = 0
    for b in range(4):
        pixels = images[b].astype(np.float64) / 127.5 - 1
        for n in np.flatnonzero(inputs.unknown[b].numpy()):
            r, c = divmod(int(n), 8)
            known = ~holes[b][4 * r:4 * r + 4, 4 * c:4 * c + 4]
            if known.any():
                error = ((pixels[4 * r:4 * r + 4, 4 * c:4 * c + 4][known] - codes[:, known]) ** 2).sum((1, 2))
                assert int(ids[b, n]) == int(error.argmin())
                checked += 1
    assert checked > 10
    out = micro_pipe.inpaint(images, holes, generator=gens(4), pixel_evidence=3.0).images
    plain = micro_pipe.inpaint(images, holes, generator=gens(4)).images
    assert all(np.array_equal(np.asarray(o)[~h], im[~h]) for o, h, im in zip(out, holes, images))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(out, plain))
    same = micro_pipe.inpaint(images, holes, generator=gens(4), pixel_evidence=0.0).images
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(same, plain))


def test_step_pictures_may_be_cheaper_but_results_never_are(micro_pipe, monkeypatch):
    """On a CPU with native bf16 the trace's and the demo's step pictures decode under bf16 (about twice
    as fast); they stay within a few levels of float32, and the inpainted images do not change."""
    import maskgit.pipeline as pipeline_module

    images, holes = _images(2), brush_holes(2)
    monkeypatch.setattr(pipeline_module, "cpu_has_native_bf16", lambda: False)
    exact = micro_pipe.inpaint(images, holes, generator=gens(2), steps=4, return_trace=True)
    monkeypatch.setattr(pipeline_module, "cpu_has_native_bf16", lambda: True)
    fast = micro_pipe.inpaint(images, holes, generator=gens(2), steps=4, return_trace=True)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(exact.images, fast.images))
    for a, b in zip(exact.trace, fast.trace):
        steps = [np.asarray(x, dtype=int) - np.asarray(y) for x, y in zip(a.images[1:], b.images[1:])]
        assert all(np.abs(d).max() <= 8 for d in steps) and any(np.abs(d).max() > 0 for d in steps)  # bf16, close
        assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))  # the input stage is the input


def test_trace_has_one_stage_per_step(micro_pipe, tmp_path):
    out = micro_pipe.inpaint(_images(2), brush_holes(2), generator=gens(2), steps=6, sweet_spot=4, return_trace=True)
    for trace in out.trace:
        assert len(trace.images) == len(trace.token_masks) == 5  # input + 4 steps
        assert trace.token_masks[0].shape == (8, 8) and trace.token_masks[0].any() and not trace.token_masks[-1].any()
    from maskgit.inpaint.trace import save_trace, trace_figure

    figure = trace_figure(out.trace[0])
    assert figure.size == (5 * 34 + 2, 14 + 2 * 34 + 2)  # a label row, then masks and images
    pixels = np.asarray(figure)
    last_mask = pixels[16:48, 2 + 4 * 34:2 + 4 * 34 + 32]  # step 4: nothing unknown, yet framed
    assert (last_mask[1:-1, 1:-1] == 255).all() and (last_mask[0] == 128).all()
    first_mask = pixels[16:48, 2:34, 0]
    assert (first_mask[1:-1, 1:-1] == 0).any()  # the input's unknown tokens are black
    png, gif = save_trace(out.trace[0], tmp_path, "case")
    with Image.open(gif) as animation:
        assert animation.n_frames == 5
    assert Image.open(png).size == figure.size


def test_save_and_load_pretrained(micro_pipe, tmp_path):
    micro_pipe.save_pretrained(tmp_path / "model")
    loaded = MaskGIT.from_pretrained(tmp_path / "model")
    image, hole = _images(1)[0], brush_holes(1)[0]
    a = micro_pipe.inpaint(image, hole, generator=gens(1)).images[0]
    b = loaded.inpaint(image, hole, generator=gens(1)).images[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(CheckpointError, match="not a MaskGIT model folder"):
        MaskGIT.from_pretrained(tmp_path)


def test_mismatched_parts_are_refused(micro_pipe):
    cfg = micro_transformer_config().model
    cfg.codebook_size = 16
    with pytest.raises(ConfigError, match="do not fit"):
        MaskGIT(micro_pipe.tokenizer, BidirectionalTransformer(cfg))


def test_load_mask_conventions_threshold_and_resize(tmp_path):
    values = np.array([[0, 100, 127], [128, 200, 255]], np.uint8)
    Image.fromarray(values, mode="L").save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png", "lab").tolist() == [[True, True, True], [False, False, False]]
    assert load_mask(tmp_path / "m.png", "white-hole").tolist() == [[False, False, False], [True, True, True]]
    big = load_mask(tmp_path / "m.png", "lab", size=(6, 4))
    assert big.shape == (4, 6) and big[:2].all() and not big[2:].any()
    with pytest.raises(ValueError, match="unknown mask convention"):
        load_mask(tmp_path / "m.png", "black-hole")


# --- the command line --------------------------------------------------------------------------


def _lab_folder(root, images, holes):
    for i, (image, hole) in enumerate(zip(images, holes)):
        masked = image.copy()
        masked[hole] = 128
        (root / "masked_image").mkdir(parents=True, exist_ok=True)
        Image.fromarray(masked).save(root / "masked_image" / f"image_{i:03d}.png")
        save_mask(hole, root / "mask64" / f"mask_{i:03d}.png", "lab")
    return root


def test_lab_folder_and_white_hole_folder_give_the_same_result(micro_pipe, tmp_path):
    micro_pipe.save_pretrained(tmp_path / "model")
    images, holes = _images(3), brush_holes(3)
    lab = _lab_folder(tmp_path / "lab", images, holes)
    plain, masks = tmp_path / "plain", tmp_path / "masks"
    for i, hole in enumerate(holes):
        plain.mkdir(exist_ok=True)
        Image.open(lab / "masked_image" / f"image_{i:03d}.png").save(plain / f"image_{i:03d}.png")
        save_mask(hole, masks / f"image_{i:03d}.png", "white-hole")
    model = str(tmp_path / "model")
    assert main(["inpaint", "--model", model, str(lab), "--out", str(tmp_path / "a"), "-q", "--batch-size", "2"]) == 0
    assert main(["inpaint", "--model", model, str(plain), "--masks", str(masks), "--mask-convention", "white-hole",
                 "--out", str(tmp_path / "b"), "-q"]) == 0
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "a" / f"image_{i:03d}.png"))
        b = np.asarray(Image.open(tmp_path / "b" / f"image_{i:03d}.png"))
        assert np.array_equal(a, b)
        masked = np.asarray(Image.open(lab / "masked_image" / f"image_{i:03d}.png"))
        assert np.array_equal(a[~holes[i]], masked[~holes[i]])
    # Single files with their mask files, and a trace (the first input: seeded as the folder's first).
    assert main(["inpaint", "--model", model, str(plain / "image_000.png"), "--masks", str(masks / "image_000.png"),
                 "--mask-convention", "white-hole", "--out", str(tmp_path / "c"), "--trace", str(tmp_path / "t"), "-q"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c" / "image_000.png")),
                          np.asarray(Image.open(tmp_path / "a" / "image_000.png")))
    assert (tmp_path / "t" / "image_000.png").is_file() and (tmp_path / "t" / "image_000.gif").is_file()


@pytest.mark.parametrize("problem", ["missing-mask", "unreadable-image", "non-image", "no-convention", "full-mask"])
def test_bad_inputs_fail_with_one_line_naming_the_file_and_write_nothing(micro_pipe, tmp_path, capsys, problem):
    micro_pipe.save_pretrained(tmp_path / "model")
    lab = _lab_folder(tmp_path / "lab", _images(3), brush_holes(3))
    args = ["inpaint", "--model", str(tmp_path / "model"), str(lab), "--out", str(tmp_path / "out"), "-q"]
    if problem == "missing-mask":
        (lab / "mask64" / "mask_002.png").unlink()
        culprit = "mask_002.png"
    elif problem == "unreadable-image":
        (lab / "masked_image" / "image_001.png").write_bytes(b"\x89PNG broken")
        culprit = "image_001.png"
    elif problem == "non-image":
        (tmp_path / "notes.txt").write_text("hello")
        args = ["inpaint", "--model", str(tmp_path / "model"), str(tmp_path / "notes.txt"), "--masks",
                str(lab / "mask64" / "mask_000.png"), "--mask-convention", "lab", "--out", str(tmp_path / "out"), "-q"]
        culprit = "notes.txt"
    elif problem == "no-convention":
        args = ["inpaint", "--model", str(tmp_path / "model"), str(lab / "masked_image" / "image_000.png"), "--masks",
                str(lab / "mask64" / "mask_000.png"), "--out", str(tmp_path / "out"), "-q"]
        culprit = "--mask-convention"
    else:
        save_mask(np.ones((32, 32), bool), lab / "mask64" / "mask_001.png", "lab")
        culprit = "mask_001.png"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and culprit in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_prefill_is_made_at_the_inputs_own_size(micro_pipe, monkeypatch):
    import maskgit.pipeline as pipeline

    seen = []
    real = pipeline.fill_hole
    monkeypatch.setattr(pipeline, "fill_hole", lambda image, hole, method: (seen.append((image.shape, method)),
                                                                           real(image, hole, method))[1])
    image = images_of_size(100, 80)
    hole = np.zeros((100, 80), bool)
    hole[30:60, 20:50] = True
    out = np.asarray(micro_pipe.inpaint(image, hole, generator=gens(1), prefill="navier-stokes").images[0])
    assert seen[0] == ((60, 60, 3), "navier-stokes")  # the crop around the hole, in the input's own pixels
    assert np.array_equal(out[~hole], image[~hole])
    seen.clear()
    out = np.asarray(micro_pipe.inpaint(image, hole, generator=gens(1), prefill="navier-stokes", window="whole").images[0])
    assert seen[0] == ((100, 100, 3), "navier-stokes")  # the whole image, padded to a square, not squashed
    assert np.array_equal(out[~hole], image[~hole])


def images_of_size(height, width):
    return np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_oracles_use_the_ground_truth_only_where_a_perfect_model_would(micro_pipe, tmp_path, capsys):
    from maskgit.image_io import fill_hole, tensor_to_uint8, uint8_to_tensor
    from maskgit.masks import tokens_from_hole

    images, holes = _images(3), brush_holes(3)
    truths = _images(3, seed=9)
    for image, truth, hole in zip(images, truths, holes):
        image[hole] = 128
        truth[~hole] = image[~hole]  # the ground truth agrees with the input outside the hole
    pipe, tok, out_true = micro_pipe, micro_pipe.tokenizer, None
    tensor = lambda arrays: uint8_to_tensor(torch.from_numpy(np.stack(arrays)))  # noqa: E731
    true_ids = tok.encode(tensor(truths)).flatten(1)
    context = tok.encode(tensor([fill_hole(i, h, pipe.sampling.prefill) for i, h in zip(images, holes)])).flatten(1)
    unknown = tokens_from_hole(torch.from_numpy(np.stack(holes)), 8).flatten(1)
    expected = tensor_to_uint8(tok.decode(torch.where(unknown, true_ids, context)))
    reconstruction = tensor_to_uint8(tok.decode(true_ids))
    for mode, decoded in (("true-tokens", expected), ("reconstruction", reconstruction)):
        out = [np.asarray(o) for o in oracle_inpaint(pipe, images, holes, truths, mode)]
        out_true = out if mode == "true-tokens" else out_true
        for o, image, hole, d in zip(out, images, holes, decoded):
            assert np.array_equal(o[~hole], image[~hole]) and np.array_equal(o[hole], d[hole])
    with pytest.raises(ValueError, match="oracle"):
        oracle_inpaint(pipe, images, holes, truths, "perfect")
    # Sampling overrides mean what they mean for inpaint (sweet_spot=0: none).
    assert np.array_equal(np.asarray(oracle_inpaint(pipe, images, holes, truths, sweet_spot=0)[0]), np.asarray(out_true[0]))
    # The command line: lab-layout cases with gt/ only.
    pipe.save_pretrained(tmp_path / "model")
    lab = _lab_folder(tmp_path / "lab", truths, holes)
    (lab / "gt").mkdir()
    for i, truth in enumerate(truths):
        Image.fromarray(truth).save(lab / "gt" / f"image_{i:03d}.png")
    model = str(tmp_path / "model")
    assert main(["inpaint", "--model", model, str(lab), "--oracle", "true-tokens", "--out", str(tmp_path / "o"), "-q"]) == 0
    for i in range(3):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / f"image_{i:03d}.png"))[holes[i]], expected[i][holes[i]])
    import shutil

    shutil.rmtree(lab / "gt")
    assert main(["inpaint", "--model", model, str(lab), "--oracle", "true-tokens", "--out", str(tmp_path / "p"), "-q"]) == 2
    assert "needs the ground truth" in capsys.readouterr().err and not (tmp_path / "p").exists()


def test_exported_code_patches_load_with_the_model_and_are_never_recomputed(micro_pipe, tmp_path, monkeypatch, caplog):
    from maskgit.code_patches import CODE_PATCHES_NAME
    from maskgit.tokenizer import VQGAN

    folder = micro_pipe.save_pretrained(tmp_path / "model", dtype=torch.float16, code_patches=True)
    assert (folder / CODE_PATCHES_NAME).is_file()
    fresh = MaskGIT.from_pretrained(folder).tokenizer.code_patches()  # what a load without the file computes
    monkeypatch.setattr(VQGAN, "code_patches", lambda self, *a, **k: pytest.fail("recomputed"))
    loaded = MaskGIT.from_pretrained(folder)
    assert torch.equal(loaded.code_patches, fresh)
    image, hole = _images(1)[0], brush_holes(1)[0]
    loaded.inpaint(image, hole, generator=gens(1), pixel_evidence=2.0)  # uses them, computes nothing
    monkeypatch.undo()
    # Patches of other weights (another codebook, or only another decoder) are ignored with a warning.
    for weight in (micro_pipe.tokenizer.decoder.conv_out.weight, micro_pipe.tokenizer.quantizer.codebook.weight):
        with torch.no_grad():
            weight.mul_(1.1)
        micro_pipe.tokenizer.save_pretrained(folder / "tokenizer")
        caplog.clear()
        with caplog.at_level("WARNING"):
            other = MaskGIT.from_pretrained(folder)
        assert "other tokenizer weights" in caplog.text
        assert torch.equal(other.code_patches, other.tokenizer.code_patches())
    # A save without them removes a stale file.
    micro_pipe.save_pretrained(folder)
    assert not (folder / CODE_PATCHES_NAME).exists()


@pytest.mark.parametrize("size", [(128, 128), (50, 70), (20, 24)])
def test_model_pixels_the_resize_mixed_with_the_prefill_do_not_count_as_known(micro_pipe, size):
    """Whatever fills the hole, the model pixels the evidence and the guided decoder take as exact are the same."""
    from maskgit.config import SamplingConfig

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    hole = np.zeros(size, bool)
    hole[size[0] // 3:size[0] // 2, size[1] // 4:size[1] // 2] = True
    inputs = {p: micro_pipe.prepare_batch([image], [hole], SamplingConfig(prefill=p)) for p in ("gray", "navier-stokes")}
    exact = ~inputs["gray"].hole_pixels[0].numpy()
    assert torch.equal(inputs["gray"].hole_pixels, inputs["navier-stokes"].hole_pixels) and exact.any()
    assert np.array_equal(inputs["gray"].images[0][exact], inputs["navier-stokes"].images[0][exact])


def test_windows_crop_around_the_hole_when_that_keeps_detail_and_never_squash():
    from maskgit.windows import Window, choose_window

    hole = np.zeros((480, 640), bool)
    hole[200:260, 300:350] = True  # a 60-pixel hole in a photo
    window = choose_window(hole, 64)
    assert window == Window(170, 265, 120)  # twice the hole's extent, centred on it
    assert choose_window(hole, 64, "whole") == Window(-80, 0, 640)  # mirror-padded to a square
    big = np.zeros((480, 640), bool)
    big[20:460, 40:600] = True  # wider than the image is high
    assert choose_window(big, 64) == Window(-80, 0, 640)  # the hole needs the whole image
    edge = np.zeros((480, 640), bool)
    edge[0:10, 630:640] = True
    w = choose_window(edge, 64)
    assert (w.top, w.left, w.size) == (0, 576, 64)  # at least the model's size, moved inside the image
    assert choose_window(np.ones((64, 64), bool), 64) == Window(0, 0, 64)
    # Extract and place are inverse where the window lies in the image; mirrored padding outside.
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    crop = window.extract(image)
    assert crop.shape == (120, 120, 3) and np.array_equal(crop, image[170:290, 265:385])
    assert np.array_equal(window.place(crop, np.zeros_like(image))[170:290, 265:385], crop)
    padded = Window(-80, 0, 640).extract(image)
    assert padded.shape == (640, 640, 3) and np.array_equal(padded[80:560], image)
    assert np.array_equal(padded[79], image[0]) and np.array_equal(Window(-80, 0, 640).place(padded, image), image)


def test_a_large_image_is_inpainted_in_a_crop_around_its_hole(micro_pipe, monkeypatch):
    import maskgit.pipeline as pipeline

    image = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    hole = np.zeros((240, 320), bool)
    hole[100:120, 150:170] = True
    resized = []
    real = pipeline.resize
    monkeypatch.setattr(pipeline, "resize", lambda a, w, h: (resized.append((a.shape[:2], (h, w))), real(a, w, h))[1])
    out = np.asarray(micro_pipe.inpaint(image, hole, generator=gens(1)).images[0])
    assert resized == [((40, 40), (32, 32)), ((32, 32), (40, 40))]  # a 40-pixel crop in, and back
    assert np.array_equal(out[~hole], image[~hole]) and not np.array_equal(out[hole], image[hole])


def test_windows_keep_context_around_the_hole_and_all_of_small_images():
    from maskgit.windows import Window, choose_window

    band = np.zeros((50, 100), bool)
    band[:, 25:75] = True  # a crop of the hole's size would hold nothing but hole
    assert choose_window(band, 32) == Window(-25, 0, 100)
    small = np.zeros((40, 60), bool)
    small[10:20, 10:20] = True
    assert choose_window(small, 64) == Window(-10, 0, 60)  # smaller than the model: the whole image
    for height in (64, 65):  # a strip whose short side is the model's: a crop around the hole, not shrunk 4x
        strip = np.zeros((height, 256), bool)
        strip[30:40, 120:130] = True
        assert choose_window(strip, 64) == Window(height - 64, 93, 64)  # centred on the hole, inside the image


def test_masks_one_pixel_wide_or_with_channel_axes_are_read_as_holes():
    from maskgit.holes import as_holes

    thin = np.array([[True], [False], [True]])
    assert np.array_equal(as_holes([thin], [(3, 1)], "white-hole")[0], thin)
    square = np.zeros((4, 4), bool)
    square[1, 2] = True
    for shaped in (square[None], square[None, None], square[..., None]):
        assert np.array_equal(as_holes([shaped], [(4, 4)], "white-hole")[0], square)


def test_int8_quantized_transformer_inpaints_alike_and_keeps_known_pixels(micro_pipe, tmp_path):
    import copy

    quantized = MaskGIT(micro_pipe.tokenizer, copy.deepcopy(micro_pipe.transformer), micro_pipe.sampling).quantize_int8()
    assert not any(type(m) is torch.nn.Linear for m in quantized.transformer.modules())  # every linear replaced
    images, holes = _images(4), brush_holes(4)
    x = torch.randint(0, 32, (3, 64))
    assert torch.corrcoef(torch.stack([micro_pipe.transformer(x).flatten(), quantized.transformer(x).flatten()]))[0, 1] > 0.99
    out = quantized.inpaint(images, holes, generator=gens(4)).images
    assert all(np.array_equal(np.asarray(o)[~h], im[~h]) for o, h, im in zip(out, holes, images))
    assert quantized.precision == "int8" and micro_pipe.precision == "fp32"


def test_int8_gives_an_image_the_same_result_alone_or_in_a_batch(micro_pipe):
    """Dynamic int8 scales activations by their range over a call: the quantized transformer runs one
    image per call so that batch-mates never change an image's result."""
    import copy

    quantized = MaskGIT(micro_pipe.tokenizer, copy.deepcopy(micro_pipe.transformer), micro_pipe.sampling).quantize_int8()
    x = torch.randint(0, 32, (3, 64))
    x[0] = 7  # an image whose activations span another range than its batch-mates'
    batched = quantized.transformer(x)
    for i in range(3):
        assert torch.equal(quantized.transformer(x[i : i + 1])[0], batched[i])
    images, holes = _images(3), brush_holes(3)
    together = quantized.inpaint(images, holes, generator=gens(3)).images
    for i in range(3):
        alone = quantized.inpaint(images[i], holes[i], generator=gens(1, seed=i)).images[0]
        assert np.array_equal(np.asarray(alone), np.asarray(together[i]))


def test_the_command_line_runs_int8_on_the_cpu_by_default_and_says_so(micro_pipe, tmp_path, capsys):
    model = micro_pipe.save_pretrained(tmp_path / "model")
    cases = str(REPO / "examples" / "lab-samples")

    def run(name, *extra):
        assert main(["inpaint", "--model", str(model), cases, "--steps", "2", "--out", str(tmp_path / name), *extra]) == 0
        return capsys.readouterr().err, [np.asarray(Image.open(p)) for p in sorted((tmp_path / name).glob("*.png"))]

    said, default = run("default")
    assert "transformer: int8 (the default on cpu; --precision fp32 for float32)" in said
    said, int8 = run("int8", "--precision", "int8")
    assert "transformer: int8 (--precision int8" in said
    said, fp32 = run("fp32", "--precision", "fp32")
    assert "transformer: fp32 (--precision fp32; --precision auto for the fastest)" in said
    assert len(default) == 6 and all(np.array_equal(a, b) for a, b in zip(default, int8))
    assert main(["inpaint", "--model", str(model), cases, "--precision", "int8", "--device", "cuda",
                 "--out", str(tmp_path / "cuda")]) != 0
    assert "--precision int8 is for the CPU; this run is on cuda:0 (add --device cpu" in capsys.readouterr().err
    assert main(["inpaint", "--model", str(model), cases, "--int8", "--out", str(tmp_path / "old")]) != 0
    assert "--int8 is now --precision int8" in capsys.readouterr().err
    # An oracle never runs the transformer: nothing is quantized.
    assert main(["inpaint", "--model", str(model), cases, "--oracle", "true-tokens", "--steps", "2",
                 "--out", str(tmp_path / "oracle")]) == 0
    assert "transformer:" not in capsys.readouterr().err


def test_set_precision_chooses_the_arithmetic_by_device(micro_pipe):
    import copy

    from maskgit.errors import ConfigError

    fp32 = MaskGIT(micro_pipe.tokenizer, copy.deepcopy(micro_pipe.transformer)).set_precision("fp32")
    assert fp32.precision == "fp32" and not fp32.mixed_precision
    auto = MaskGIT(micro_pipe.tokenizer, copy.deepcopy(micro_pipe.transformer)).set_precision("auto")
    assert auto.precision == "int8"  # on a CPU
    with pytest.raises(ConfigError, match="bf16 autocast is for CUDA"):
        fp32.set_precision("bf16")
    with pytest.raises(ConfigError, match="quantized to int8 already"):
        auto.set_precision("fp32")
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16, int8"):
        fp32.set_precision("fp16")


def _with_critic(monkeypatch, judge):
    from maskgit import critics

    monkeypatch.setitem(critics.CRITICS, "test", critics.Critic("a test critic", judge))


def test_best_of_n_keeps_the_candidate_its_critic_scores_best(micro_pipe, monkeypatch):
    from maskgit.critics import Judgement
    from maskgit.seeding import candidate_generators

    images, holes = _images(3, seed=5), brush_holes(3, seed=2)
    calls = []

    def by_call(pipe, inputs, token_ids, cfg, evidence):  # candidate c scores c for image 0, -c for the others
        c = len(calls)
        calls.append(token_ids)
        return Judgement(torch.tensor([c, -c, -c], dtype=torch.float))

    _with_critic(monkeypatch, by_call)
    best = micro_pipe.inpaint(images, holes, generator=gens(3), candidates=4, critic="test", sample=True).images
    assert len(calls) == 4 and not all(torch.equal(calls[0], c) for c in calls[1:])  # the candidates differ
    last = candidate_generators(gens(3), 4)[3]
    expected_first = micro_pipe.inpaint(images[0], holes[0], generator=[last[0]], sample=True).images[0]
    assert np.array_equal(np.asarray(best[0]), np.asarray(expected_first))  # image 0: the last candidate
    plain = micro_pipe.inpaint(images, holes, generator=gens(3), sample=True).images  # candidate 0 is the one-candidate result
    for b in (1, 2):
        assert np.array_equal(np.asarray(best[b]), np.asarray(plain[b]))
    for out, image, hole in zip(best, images, holes):
        assert np.array_equal(np.asarray(out)[~hole], image[~hole])  # known pixels unchanged


@pytest.mark.parametrize("critic", ["likelihood", "agreement", "cycle"])
def test_each_critic_gives_an_image_the_same_result_alone_or_in_a_batch(micro_pipe, critic):
    images, holes = _images(3, seed=6), brush_holes(3, seed=3)
    batched = micro_pipe.inpaint(images, holes, generator=gens(3, seed=2), candidates=3, critic=critic).images
    alone = micro_pipe.inpaint(images[2], holes[2], generator=gens(1, seed=4), candidates=3, critic=critic).images[0]
    assert np.array_equal(np.asarray(alone), np.asarray(batched[2]))
    for out, image, hole in zip(batched, images, holes):
        assert np.array_equal(np.asarray(out)[~hole], image[~hole])


@pytest.mark.parametrize("critic", ["agreement", "cycle"])
def test_a_critics_own_decoding_is_what_the_kept_candidate_decodes_to(micro_pipe, critic):
    from maskgit.config import SamplingConfig

    for pipe in (micro_pipe, _with_guided_decoder(micro_pipe)):
        cfg = SamplingConfig(decoder="guided" if pipe.guided_decoder is not None else "plain", critic=critic,
                             candidates=2)
        inputs = pipe.prepare_batch(_images(2, seed=1), brush_holes(2, seed=1), cfg)
        g = torch.Generator().manual_seed(0)
        candidates = [torch.randint(0, 32, inputs.token_ids.shape, generator=g) for _ in range(2)]
        best, ids, decoded = pipe.best_candidate(inputs, candidates, cfg)
        own = (pipe.decode_guided(ids, inputs.pixels, inputs.hole_pixels) if pipe.guided_decoder is not None
               else pipe.tokenizer.decode(ids).clamp(-1, 1))
        assert decoded is not None and torch.equal(decoded, own)
        assert all(torch.equal(ids[b], candidates[int(best[b])][b]) for b in range(2))


def _with_guided_decoder(pipe):
    from maskgit.tokenizer import GuidedDecoder

    decoder = GuidedDecoder.from_tokenizer(pipe.tokenizer, guide_channels=8)
    torch.manual_seed(0)
    for conv in decoder.inject:
        torch.nn.init.normal_(conv.weight, std=0.3)
    return MaskGIT(pipe.tokenizer, pipe.transformer, pipe.sampling, decoder.eval())


def test_agreement_critic_prefers_the_fill_that_matches_the_known_border(micro_pipe, monkeypatch):
    from maskgit.config import SamplingConfig
    from maskgit.critics import border_agreement

    cfg = SamplingConfig()
    image = np.random.default_rng(3).integers(64, 192, (32, 32, 3), dtype=np.uint8)  # far from the clamp at +-1
    inputs = micro_pipe.prepare_batch([image], brush_holes(1, seed=3), cfg)
    target = inputs.pixels.clone()
    monkeypatch.setattr(micro_pipe.tokenizer, "decode", lambda ids: target + 0.1 * ids[:, :1, None, None].float())
    close = border_agreement(micro_pipe, inputs, torch.zeros_like(inputs.token_ids), cfg, None)
    far = border_agreement(micro_pipe, inputs, torch.ones_like(inputs.token_ids), cfg, None)
    assert float(close.scores[0]) == 0.0 and float(far.scores[0]) == pytest.approx(-0.01, rel=1e-4)


def test_likelihood_critic_prefers_the_tokens_the_transformer_expects(micro_pipe):
    from maskgit.config import SamplingConfig
    from maskgit.critics import pseudo_likelihood

    cfg = SamplingConfig()
    inputs = micro_pipe.prepare_batch(_images(2, seed=4), brush_holes(2, seed=4), cfg)
    expected = micro_pipe.transformer(inputs.token_ids.masked_fill(inputs.unknown, micro_pipe.transformer.config.mask_token_id)
                                      ).argmax(-1)
    likely = torch.where(inputs.unknown, expected, inputs.token_ids)
    unlikely = torch.where(inputs.unknown, micro_pipe.transformer(inputs.token_ids).argmin(-1), inputs.token_ids)
    assert (pseudo_likelihood(micro_pipe, inputs, likely, cfg, None).scores
            > pseudo_likelihood(micro_pipe, inputs, unlikely, cfg, None).scores).all()


def test_bad_best_of_n_and_order_settings_are_refused(micro_pipe):
    for bad in ({"candidates": 0}, {"critic": "oracle"}, {"order": "raster"}, {"corrector": "undo"},
                {"corrector_share": 1.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            micro_pipe.inpaint(_images(1)[0], brush_holes(1)[0], **bad)


def test_a_model_pixel_barely_covered_by_a_resized_hole_counts_as_hole(micro_pipe):
    from maskgit.config import SamplingConfig

    image = _images(1, size=64, seed=8)[0]
    hole = np.zeros((64, 64), bool)
    hole[5, 9] = True  # one input pixel: a quarter of model pixel (2, 4) at 32 x 32
    inputs = micro_pipe.prepare_batch([image], [hole], SamplingConfig(window="whole"))
    assert inputs.unknown[0].nonzero().flatten().tolist() == [1]  # its token (0, 1) of the 8 x 8 grid is unknown
    assert inputs.hole_pixels[0, 2, 4]  # and the pixel is no known pixel for the evidence and the guided decoder


def test_the_sweeps_weights_checksum_counts_the_int8_layers(micro_pipe):
    import copy

    from maskgit.metrics.sweep import weights_checksum

    fp32 = weights_checksum(micro_pipe)
    quantized = MaskGIT(micro_pipe.tokenizer, copy.deepcopy(micro_pipe.transformer)).quantize_int8()
    int8 = weights_checksum(quantized)
    assert int8 != fp32 and abs(int8 - fp32) < 0.01 * fp32  # the same weights, rounded: not left out
