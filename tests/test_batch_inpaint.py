from maskgit.cli import main

from conftest import REPO

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
