from helpers import REPO

from maskgit.cli import main

LAB_SAMPLES = REPO / "examples" / "lab-samples"


def test_existing_outputs_are_never_replaced_unasked(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["inpaint", "--method", "gray", str(LAB_SAMPLES), "--out", str(out), "-q"]
    assert main(args) == 0
    written = sorted(out.glob("*.png"))
    assert len(written) == 6
    written[0].write_bytes(b"user's own file")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and str(out) in err
    assert written[0].read_bytes() == b"user's own file"  # nothing was touched
    assert main(args + ["--overwrite"]) == 0
    assert written[0].read_bytes() != b"user's own file"


def test_outputs_get_the_users_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        assert main(["inpaint", "--method", "gray", str(LAB_SAMPLES), "--out", str(tmp_path / "o"), "-q"]) == 0
    finally:
        os.umask(old)
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in (tmp_path / "o").glob("*.png"))


def test_bad_sampling_options_fail_before_any_folder_is_read(tmp_path, capsys):
    assert main(["inpaint", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--steps", "0"]) == 2
    err = capsys.readouterr().err
    assert "steps" in err and "missing" not in err and not (tmp_path / "o").exists()



def test_input_warnings_are_said_once_per_file(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    image = np.full((32, 32, 3), 200, np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    Image.fromarray(mask, mode="L").save(tmp_path / "a_mask.png")  # half size: resized, with a warning
    assert main(["inpaint", "--method", "gray", str(tmp_path / "a.png"), "--masks", str(tmp_path / "a_mask.png"),
                 "--mask-convention", "white-hole", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("resized") == 1


def test_each_input_is_read_once(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    import maskgit.inpaint.run as run

    for name in ("a", "b", "c"):
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / f"{name}.png")
        mask = np.zeros((32, 32), np.uint8)
        mask[8:16, 8:16] = 255
        Image.fromarray(mask, mode="L").save(tmp_path / f"{name}_mask.png")
    reads, mask_reads = [], []
    real, real_mask = run.load_image, run.load_mask
    monkeypatch.setattr(run, "load_image", lambda path: reads.append(path) or real(path))
    monkeypatch.setattr(run, "load_mask", lambda path, *a, **k: mask_reads.append(path) or real_mask(path, *a, **k))
    args = ["inpaint", "--method", "gray", *[str(tmp_path / f"{n}.png") for n in "abc"], "--masks",
            *[str(tmp_path / f"{n}_mask.png") for n in "abc"], "--mask-convention", "white-hole", "--batch-size", "2",
            "--out", str(tmp_path / "out"), "-q"]
    assert main(args) == 0 and len(reads) == 3 and len(mask_reads) == 3
    monkeypatch.setattr(run, "KEEP_BYTES", 0)  # beyond the memory budget the inputs are read again
    reads.clear()
    assert main(args[:-3] + ["--out", str(tmp_path / "out2"), "-q"]) == 0 and len(reads) == 6
