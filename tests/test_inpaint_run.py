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
