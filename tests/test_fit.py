"""`maskgit fit`: folder checks, the split, budgets, the sampling rule, and (slow) every stage end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import copy_cat_faces
from PIL import Image

from maskgit import cli
from maskgit.errors import ConfigError, DataError
from maskgit.train import fit as fit_module
from maskgit.train.fit import (
    FitOptions,
    FitState,
    adoption,
    at_resolution,
    choose_resolution,
    held_out_count,
    scan_folder,
)


def _images(folder: Path, count: int, size: tuple[int, int] = (64, 64)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"im{i:03d}.png")
    return folder


def test_held_out_share_scales_with_the_folder():
    assert held_out_count(40) == 10  # a quarter of a small folder
    assert held_out_count(100) == 20
    assert held_out_count(1000) == 100  # a tenth
    assert held_out_count(7845) == 300  # at most 300


def test_scan_refuses_empty_small_unreadable_and_wide_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        scan_folder(tmp_path / "empty", 4, False)
    few = _images(tmp_path / "few", 3)
    with pytest.raises(DataError, match="3 images; fit needs at least 4"):
        scan_folder(few, 4, False)
    bad = _images(tmp_path / "bad", 5)
    (bad / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png"):
        scan_folder(bad, 4, False)
    wide = _images(tmp_path / "wide", 5)
    _images(tmp_path / "wide2", 1, (200, 64))
    shutil.copy(tmp_path / "wide2" / "im000.png", wide / "panorama.png")
    with pytest.raises(DataError, match="panorama.png is 200x64"):
        scan_folder(wide, 4, False)
    files, sizes = scan_folder(_images(tmp_path / "ok", 5, (80, 60)), 4, False)
    assert len(files) == 5 and sizes == [(80, 60)] * 5


def test_resolution_is_the_largest_preset_the_images_reach(tmp_path):
    assert choose_resolution([(64, 64)] * 3, None, False, tmp_path) == 64
    assert choose_resolution([(500, 375)] * 3, None, False, tmp_path) == 128
    assert choose_resolution([(40, 50)] * 3, None, False, tmp_path) == 32
    with pytest.raises(DataError, match="too small"):
        choose_resolution([(20, 20)] * 3, None, False, tmp_path)
    with pytest.raises(DataError, match="choose --resolution 64"):
        choose_resolution([(64, 64)] * 3, 128, False, tmp_path)
    with pytest.raises(ConfigError, match="no preset for --resolution 96"):
        choose_resolution([(100, 100)] * 3, 96, False, tmp_path)
    assert choose_resolution([(100, 100)] * 3, 96, True, tmp_path) == 96  # with a config of one's own


def test_presets_keep_a_16x16_grid_at_128_and_halve_it_at_32():
    from maskgit.config import load_tokenizer_training_config

    cfg = load_tokenizer_training_config("small-cpu")
    assert at_resolution(cfg, 128).model.token_grid == 16
    assert at_resolution(cfg, 64).model.token_grid == 16
    assert at_resolution(cfg, 32).model.token_grid == 8


def test_the_sampling_rule_adopts_only_clear_wins_or_cheaper_ties():
    assert adoption(9.0, 10.0, 10.0, 0.4, cheaper=False) == "better by more than 2 x noise"
    assert adoption(9.5, 10.0, 10.0, 0.4, cheaper=False) is None  # within the noise: the current one stays
    assert adoption(10.5, 10.0, 10.0, 0.4, cheaper=True).startswith("cheaper and within 2 x noise")
    assert adoption(11.0, 10.0, 10.0, 0.4, cheaper=True) is None
    # After one cheaper step (10.7 chosen, 10.0 the best seen), the next may not drift further from the best:
    assert adoption(11.2, 10.7, 10.0, 0.4, cheaper=True) is None


def _fake_stages(monkeypatch, calls: list, fail: dict | None = None):
    """Every stage after `data` replaced by one that records its name (and raises `fail[name]` once)."""
    fail = fail if fail is not None else {}

    def runner(name):
        def run(**_):
            calls.append(name)
            if name in fail:
                import time

                time.sleep(0.2)
                raise fail.pop(name)
            return {}
        return run

    for name in list(fit_module._STAGE_RUNNERS):
        monkeypatch.setitem(fit_module._STAGE_RUNNERS, name, runner(name))
    monkeypatch.setattr(fit_module, "_check_weights", lambda *args, **kwargs: None)


def test_the_stage_loop_stops_where_asked_and_resumes_after_failures(tmp_path, monkeypatch):
    data = _images(tmp_path / "data", 24, (32, 32))
    out = tmp_path / "m"
    calls: list = []
    _fake_stages(monkeypatch, calls, {"guided": RuntimeError("boom")})
    options = FitOptions(data=str(data), out=str(out), time_limit=1.0, device="cpu", recipe="tiny", min_images=20)
    fit_module.fit(options, progress=False, until="transformer")
    assert calls == ["tokenizer", "transformer"]
    fit_module.fit(FitOptions(data="", out=str(out)), resume=True, progress=False, until="tokenizer")
    assert calls == ["tokenizer", "transformer"]  # already past the tokenizer: nothing runs
    with pytest.raises(RuntimeError, match="boom"):
        fit_module.fit(FitOptions(data="", out=str(out)), resume=True, progress=False)
    state = FitState.load(out)
    assert state.stage("guided")["status"] == "interrupted" and state.stage("guided")["seconds"] >= 0.2
    fit_module.fit(FitOptions(data="", out=str(out)), resume=True, progress=False, device="cpu")
    assert calls == ["tokenizer", "transformer", "guided", "guided", "export", "choose", "report"]
    state = FitState.load(out)
    assert all(state.done(s) for s in fit_module.STAGES) and state.stage("guided")["seconds"] >= 0.2
    assert len(state.data["resumed"]) == 3 and "configs" in state.data


def test_a_fit_killed_while_storing_its_data_resumes(tmp_path, monkeypatch):
    data = _images(tmp_path / "data", 24, (32, 32))
    out = tmp_path / "m"
    calls: list = []
    _fake_stages(monkeypatch, calls)
    prepare = fit_module.prepare_data

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "prepare_data", killed)
    with pytest.raises(KeyboardInterrupt):
        fit_module.fit(FitOptions(data=str(data), out=str(out), time_limit=1.0, device="cpu", recipe="tiny",
                                  min_images=20), progress=False)
    assert FitState.load(out).stage("data")["status"] == "interrupted"
    monkeypatch.setattr(fit_module, "prepare_data", prepare)
    fit_module.fit(FitOptions(data="", out=str(out)), resume=True, progress=False)
    state = FitState.load(out)
    assert state.done("data") and state.data["data"]["train"] + state.data["data"]["select"] + \
        state.data["data"]["test"] == 24
    assert calls == ["tokenizer", "transformer", "guided", "export", "choose", "report"]


def test_budget_shares_follow_what_is_left(tmp_path):
    state = FitState(tmp_path, {"budget_s": 1000.0, "stages": {"data": {"status": "done", "seconds": 100.0}}})
    shares = fit_module.SHARES
    assert state.budget_for("tokenizer") == pytest.approx(900.0 * shares["tokenizer"] / sum(shares.values()))
    state.data["guided"] = False  # no guided decoder: its share goes to the others
    state.data["stages"]["guided"] = {"status": "skipped", "seconds": 0.0}
    total = sum(v for k, v in shares.items() if k != "guided")
    assert state.budget_for("transformer") == pytest.approx(900.0 * shares["transformer"] / total)
    state.data["stages"]["tokenizer"] = {"status": "started", "seconds": 50.0, "budget_s": 200.0}
    assert state.budget_for("tokenizer") == pytest.approx(150.0)  # a resumed stage keeps its plan, less what it used


def test_a_held_out_folder_is_split_into_selection_and_test_and_all_of_data_trains(tmp_path):
    data = _images(tmp_path / "data", 12, (48, 40))
    held = _images(tmp_path / "held", 10, (40, 40))
    files = sorted(data.glob("*.png"))
    summary = fit_module.prepare_data(files, data, 32, tmp_path / "work", False, (sorted(held.glob("*.png")), held))
    assert (summary["train"], summary["select"], summary["test"]) == (12, 5, 5)
    split = [line.split("\t") for line in (tmp_path / "work" / "data" / "split.tsv").read_text().splitlines()[1:]]
    assert sorted(source for part, _, source in split if part == "train") == [f.name for f in files]
    assert len({source for part, _, source in split if part != "train"}) == 10  # each held-out image once
    for part in ("select", "test"):
        cases = tmp_path / "work" / "data" / f"{part}-cases"
        assert len(list((cases / "gt").iterdir())) == 5 and len(list((cases / "mask64").iterdir())) == 5
        assert Image.open(next((cases / "gt").iterdir())).size == (32, 32)


def test_held_out_images_must_not_be_training_images(tmp_path):
    data = _images(tmp_path / "data", 6)
    _images(data / "nested", 3)
    files = sorted(data.rglob("*.png"))
    with pytest.raises(DataError, match="both a training and a held-out image"):
        fit_module.check_disjoint(files, sorted((data / "nested").glob("*.png")))  # --held-out inside --data
    copy = tmp_path / "held" / "renamed.png"
    copy.parent.mkdir()
    shutil.copy(data / "im002.png", copy)
    with pytest.raises(DataError, match="renamed.png is a copy of the training image"):
        fit_module.check_disjoint(files, [copy])
    other = _images(tmp_path / "other", 3, (48, 48))
    fit_module.check_disjoint(files, sorted(other.glob("*.png")))  # disjoint: accepted


def test_the_sampling_grid_tries_no_sweet_spot():
    from maskgit.config import SamplingConfig, with_overrides

    base = SamplingConfig(steps=12, sweet_spot=7)
    tried = [with_overrides(base, steps=t, sweet_spot=s) for t, s in dict(fit_module.CHOICE_GRID)[("steps", "sweet_spot")]]
    assert [(c.steps, c.sweet_spot) for c in tried] == [(12, 7), (12, None), (8, None)]
    assert fit_module._cost(tried[0]) < fit_module._cost(tried[2]) < fit_module._cost(tried[1])  # passes: 7, 8, 12


def test_cli_errors_are_one_line_and_leave_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(fit_module, "_check_weights", lambda recipe, opts, until=None: None)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "model"
    assert cli.main(["fit", "--data", str(tmp_path / "empty"), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no images" in err and not out.exists()
    # A file that opens but cannot be decoded fails while the data are stored: the folder is removed again.
    data = _images(tmp_path / "data", 8)
    png = (data / "im000.png").read_bytes()
    (data / "truncated.png").write_bytes(png[: len(png) // 2])
    assert cli.main(["fit", "--data", str(data), "--out", str(out), "--min-images", "4", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "truncated.png" in err and err.count("\n") == 0 and not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli.main(["fit", "--data", str(data), "--out", str(out), "-q"]) == 2
    assert "not empty" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert cli.main(["fit", "--resume", str(tmp_path / "nothing"), "-q"]) == 2
    assert "not a `maskgit fit` run" in capsys.readouterr().err
    assert cli.main(["fit", "--resume", str(out), "--data", str(data), "-q"]) == 2
    assert "drop --data" in capsys.readouterr().err
    assert cli.main(["fit", "--data", str(data), "--out", str(tmp_path / "m2"), "--held-out", str(data), "--min-images", "4", "-q"]) == 2
    assert "is the --data folder" in capsys.readouterr().err and not (tmp_path / "m2").exists()
    assert cli.main(["fit", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m3"), "--resolution", "96",
                     "-q"]) == 2  # refused before the folder is read
    assert "no preset for --resolution 96" in capsys.readouterr().err
    inside = _images(tmp_path / "d2" / "nested", 10)
    assert cli.main(["fit", "--data", str(tmp_path / "d2"), "--out", str(tmp_path / "m4"), "--held-out", str(inside),
                     "--min-images", "4", "-q"]) == 2
    assert "both a training and a held-out image" in capsys.readouterr().err and not (tmp_path / "m4").exists()


@pytest.mark.slow
def test_fit_end_to_end_with_a_kill_between_stages_and_init(shared, tmp_path, monkeypatch):
    from maskgit.pipeline import MaskGIT

    data = copy_cat_faces(shared, tmp_path / "cats", 40)
    out = tmp_path / "model"
    monkeypatch.chdir(tmp_path)  # a relative --data, resumed below from another folder
    options = FitOptions(data="cats", out=str(out), time_limit=1.0, device="cpu", recipe="tiny", min_images=20)

    def killed(**_):
        raise KeyboardInterrupt

    guided = fit_module._STAGE_RUNNERS["guided"]
    monkeypatch.setitem(fit_module._STAGE_RUNNERS, "guided", killed)
    with pytest.raises(KeyboardInterrupt):
        fit_module.fit(options, progress=False)
    state = FitState.load(out)
    assert [state.stage(s)["status"] for s in ("data", "tokenizer", "transformer", "guided")] == \
        ["done", "done", "done", "interrupted"]
    tokenizer_checkpoint = (out / "fit" / "tokenizer" / "checkpoint.pt").stat().st_mtime_ns
    monkeypatch.setitem(fit_module._STAGE_RUNNERS, "guided", guided)  # (undo() would also drop the test env)

    assert state.data["options"]["data"] == str(data.resolve())
    monkeypatch.chdir(out)
    fit_module.fit(FitOptions(data="", out=str(out)), resume=True, progress=False)
    assert (out / "fit" / "tokenizer" / "checkpoint.pt").stat().st_mtime_ns == tokenizer_checkpoint  # not redone
    state = FitState.load(out)
    assert all(state.done(s) for s in fit_module.STAGES)
    split = (out / "fit" / "data" / "split.tsv").read_text().splitlines()[1:]
    parts = [line.split("\t")[0] for line in split]
    assert (parts.count("train"), parts.count("select"), parts.count("test")) == (30, 5, 5)
    assert len({line.split("\t")[2] for line in split}) == 40  # each image in exactly one part
    card = (out / "README.md").read_text()
    assert "OpenCV Navier-Stokes" in card and "this model" in card and "trace.png" in card
    assert len((out / "evaluation.csv").read_text().splitlines()) == 5  # header + gray, Telea, NS, the model
    assert (out / "trace.png").is_file() and (out / "stages.tsv").is_file()

    pipe = MaskGIT.from_pretrained(out)
    assert pipe.guided_decoder is not None and pipe.sampling.decoder == "guided"
    image = np.asarray(Image.open(data / sorted(p.name for p in data.iterdir())[0]).convert("RGB"))
    hole = np.zeros(image.shape[:2], bool)
    hole[20:40, 20:40] = True
    filled = np.asarray(pipe.inpaint(image, hole).images[0])
    assert np.array_equal(filled[~hole], image[~hole])  # known pixels kept

    tuned = tmp_path / "tuned"
    held = copy_cat_faces(shared, tmp_path / "held", 10, split="val")
    fit_module.fit(FitOptions(data=str(data), out=str(tuned), time_limit=1.0, device="cpu", recipe="tiny",
                              min_images=20, init=str(out), held_out=str(held)), progress=False, until="export")
    state = FitState.load(tuned)
    assert state.done("export") and not state.done("choose") and not (tuned / "README.md").exists()
    assert (state.data["data"]["train"], state.data["data"]["select"], state.data["data"]["test"]) == (40, 5, 5)
    fit_module.fit(FitOptions(data="", out=str(tuned)), resume=True, progress=False, device="cpu")
    state = FitState.load(tuned)
    assert all(state.done(s) for s in fit_module.STAGES)
    assert state.stage("tokenizer")["from"].startswith(str(out))
    assert state.stage("transformer")["from"].startswith(str(out))
    assert state.stage("guided")["from"].startswith(str(out))
    assert f"--init {out}" in (tuned / "README.md").read_text()


def test_an_interrupted_stage_resumes_with_its_plan_less_what_it_used_once(tmp_path):
    import time

    state = FitState(tmp_path, {"budget_s": 1000.0, "stages": {}})
    state.start("tokenizer", 290.0, heartbeat=False)
    for used in (100.0, 40.0):  # two interrupts: 100 s, then 40 s more
        state.stage("tokenizer")["started_at"] = time.time() - used  # a fake clock: the stage ran `used` seconds
        state.interrupt("tokenizer")
        budget = state.budget_for("tokenizer")
        state.start("tokenizer", budget, heartbeat=False)
        assert state.stage("tokenizer")["budget_s"] == 290.0  # the plan, as stages.tsv and the card show it
    assert state.budget_for("tokenizer") == pytest.approx(150.0, abs=0.5)  # 290 - 100 - 40, not compounded


def test_a_stage_killed_outright_without_a_folder_of_its_own_is_charged_its_time(tmp_path):
    import os

    state = FitState(tmp_path, {"budget_s": 1000.0, "stages": {}})
    state.work.mkdir(parents=True)
    state.start("choose", None)  # the choose stage writes no fit/choose/ folder
    assert state.heartbeat_path("choose").is_file()
    state.stop_heartbeat()  # as if the process had been killed: no finish, no interrupt
    state.heartbeat_path("choose").touch()
    started = state.stage("choose")["started_at"]
    os.utime(state.heartbeat_path("choose"), (started + 120.0, started + 120.0))  # its last sign of life
    again = FitState.load(tmp_path)
    again.start("choose", None, heartbeat=False)
    assert again.stage("choose")["seconds"] == pytest.approx(120.0, abs=0.01)


def test_choose_and_report_use_the_arithmetic_users_get(tmp_path, micro_pipe, monkeypatch):
    """On a CPU `maskgit inpaint` runs the transformer in int8: so must the stages whose figures the card shows."""
    micro_pipe.save_pretrained(tmp_path / "model")
    state = FitState(tmp_path / "model", {"budget_s": 100.0, "stages": {}})
    seen = []

    def choose(pipe, cases, budget, progress=False):
        seen.append(("choose", pipe.precision))
        return pipe.sampling, [], 0.0

    def report(pipe, cases):
        seen.append(("report", pipe.precision))
        raise KeyboardInterrupt  # nothing after it is under test

    monkeypatch.setattr(fit_module, "choose_sampling", choose)
    monkeypatch.setattr(fit_module, "report_rows", report)
    monkeypatch.setattr(fit_module, "_save_training_configs", lambda *a: None)
    assert fit_module._stage_choose(state=state, work=tmp_path, device="cpu", budget=None, progress=False)["precision"] == "int8"
    with pytest.raises(KeyboardInterrupt):
        fit_module._stage_report(state=state, work=tmp_path, device="cpu", configs=None)
    assert seen == [("choose", "int8"), ("report", "int8")]


def test_the_card_claims_a_win_over_navier_stokes_only_beyond_twice_the_noise():
    verdict = fit_module.navier_stokes_verdict
    assert verdict(9.0, 10.0, 0.3).startswith("**beats**")
    assert verdict(9.5, 10.0, 0.3).startswith("is level")  # lower by 0.5 < 2 x 0.3
    assert verdict(10.5, 10.0, 0.3).startswith("does **not**")


def _choose_with(monkeypatch, fid_of, budget=None, seconds_per_try=0.0):
    """choose_sampling on a fake model: FID from `fid_of(sampling, seed)`, each try `seconds_per_try` on a fake clock."""
    import types

    from maskgit.config import SamplingConfig
    from maskgit.metrics import evaluate, fid, sweep

    clock = [0.0]
    monkeypatch.setattr(fit_module.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(sweep, "load_cases", lambda cases: ([None], [None], [None], ["a"]))
    monkeypatch.setattr(fid, "InceptionFeatures", lambda device: None)
    monkeypatch.setattr(fid, "cached_stats", lambda *a, **k: None)
    current = {}

    def inpaint_all(pipe, images, holes, seed, **sampling):
        clock[0] += seconds_per_try
        current["fid"] = fid_of(fit_module.with_overrides(SamplingConfig(), **sampling), seed)
        return [None]

    monkeypatch.setattr(fit_module, "_inpaint_all", inpaint_all)
    monkeypatch.setattr(evaluate, "evaluate_arrays",
                        lambda *a, **k: types.SimpleNamespace(fid=current["fid"], kid=None, psnr_hole=None))
    base = SamplingConfig(pixel_evidence=3.0, choice_temperature=4.5, steps=12, sweet_spot=7)
    pipe = types.SimpleNamespace(sampling=base, device="cpu")
    return fit_module.choose_sampling(pipe, Path("cases"), budget)


def test_choose_adopts_a_cheaper_setting_within_the_noise_and_never_a_dearer_one(monkeypatch):
    def fid_of(s, seed):  # every setting as good as the defaults (10.0 / 10.2), whatever its cost
        return 10.0 + 0.2 * seed

    chosen, rows, noise = _choose_with(monkeypatch, fid_of)
    assert noise == pytest.approx(0.1414, abs=1e-3)
    assert chosen.pixel_evidence == 0.0  # cheaper (no evidence) and not worse: adopted
    assert chosen.steps == 12 and chosen.sweet_spot == 7  # 12 or 8 full steps cost more than 7: kept
    assert chosen.order == "confidence" and chosen.corrector == "none"  # the same cost, no gain: kept


def test_choose_keeps_a_noise_floor_when_the_seeds_agree(monkeypatch):
    def fid_of(s, seed):  # seeds agree exactly; the Halton order wins by 0.5 % only
        return 9.95 if s.order == "halton" else 10.0

    chosen, _, noise = _choose_with(monkeypatch, fid_of)
    assert noise == pytest.approx(fit_module.NOISE_FLOOR * 10.0)
    assert chosen.order == "confidence"


def test_choose_adopts_a_clear_win_and_stops_when_the_budget_is_spent(monkeypatch):
    def fid_of(s, seed):
        return 9.0 if s.choice_temperature == 0 else 10.0 + 0.1 * seed

    chosen, rows, _ = _choose_with(monkeypatch, fid_of)
    assert chosen.choice_temperature == 0  # better by more than twice the noise
    tried = sum("fid" in r for r in rows)
    _, rows, _ = _choose_with(monkeypatch, fid_of, budget=35.0, seconds_per_try=10.0)
    assert sum("fid" in r for r in rows) == 3 < tried  # 2 default seeds + 1 try fit in 35 s of 10-s tries
    assert all(r["decision"] == "not tried: the budget was spent" for r in rows if "fid" not in r)


def test_choose_counts_the_evidence_and_the_candidates_as_cost():
    from maskgit.config import SamplingConfig

    cost = fit_module._cost
    assert cost(SamplingConfig(steps=12, sweet_spot=7, pixel_evidence=3.0)) > cost(SamplingConfig(steps=12, sweet_spot=7))
    assert cost(SamplingConfig(steps=12, candidates=2, critic="agreement")) == 2 * cost(SamplingConfig(steps=12))


def test_inpaint_all_seeds_every_image_by_its_index_in_the_run(monkeypatch):
    import types

    from maskgit.seeding import image_generator

    seen = []

    def inpaint(images, holes, generator, **_):
        seen.extend(int(torch.randint(0, 2**31, (1,), generator=g)) for g in generator)
        return types.SimpleNamespace(images=[np.zeros((2, 2, 3), np.uint8)] * len(images))

    import torch

    fit_module._inpaint_all(types.SimpleNamespace(inpaint=inpaint), [None] * 40, [None] * 40, seed=3)
    expected = [int(torch.randint(0, 2**31, (1,), generator=image_generator(3, i))) for i in range(40)]
    assert seen == expected  # not restarting at image 32, and the run's seed used
