import pytest

from maskgit.cli import main
from maskgit.train import common
from maskgit.train.common import StepPlan, learning_rate


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(common.time, "perf_counter", fake)
    return fake


def test_without_a_time_limit_the_end_is_fixed(clock):
    plan = StepPlan(0, 500)
    for done in range(1, 100):
        clock.now += 10.0
        assert plan.update(done) == 500


def test_the_end_is_laid_out_over_the_budget(clock):
    plan = StepPlan(0, 10**9, time_limit=60.0, calibration_steps=5, safety=1.0)
    clock.now += 5.0  # set-up counts against the budget
    for done in range(1, 6):
        clock.now += 3.0  # slow first steps (warm-up, compilation) are not used for the estimate
        assert plan.update(done) == 10**9
    for done in range(6, 16):
        clock.now += 0.5
        plan.update(done)
    # 10 steps in 5 s since calibration: 2 steps/s; 60 - 5 - 15 - 5 = 35 s left -> 70 more steps.
    assert plan.end() == 15 + 70
    done = 15
    while done < plan.end():
        done += 1
        clock.now += 0.5
        plan.update(done)
    assert done == 85
    assert clock.now - 100.0 == pytest.approx(60.0)


def test_running_out_of_time_ends_at_once_and_the_cap_holds(clock):
    plan = StepPlan(10, 40, time_limit=30.0, calibration_steps=2, safety=1.0)
    clock.now += 1.0
    assert plan.update(11) == 40
    clock.now += 1.0
    plan.update(12)
    clock.now += 0.1
    assert plan.update(13) == 40  # fast steps: the cap (max_steps) still binds
    clock.now += 100.0  # a stall: the budget is spent
    assert plan.update(14) == 14 and plan.out_of_time


def test_time_limit_must_be_positive(capsys):
    with pytest.raises(ValueError):
        StepPlan(0, 10, time_limit=0)
    with pytest.raises(SystemExit):
        main(["train", "--time-limit", "0", "--out", "x"])
    assert "positive" in capsys.readouterr().err


def test_learning_rate_schedule():
    assert learning_rate(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert learning_rate(9, 1.0, 10, 100) == pytest.approx(1.0)
    assert learning_rate(50, 1.0, 10, 100, "constant") == 1.0
    assert learning_rate(10, 1.0, 10, 100, "cosine", 0.1) == pytest.approx(1.0)
    assert learning_rate(100, 1.0, 10, 100, "cosine", 0.1) == pytest.approx(0.1)
    values = [learning_rate(s, 1.0, 10, 100, "cosine") for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_a_timed_plan_keeps_a_safety_margin_by_default(clock):
    plan = StepPlan(0, 10**9, time_limit=60.0, calibration_steps=5)  # as run_steps makes it
    clock.now += 5.0
    for done in range(1, 16):
        clock.now += 3.0 if done <= 5 else 0.5
        plan.update(done)
    # As above, 35 s left at 2 steps/s would be 70 more steps; 3 % of them are kept in hand.
    assert plan.end() == 15 + int(70 * 0.97)


def test_a_resumed_run_drops_the_metric_rows_logged_after_its_checkpoint(tmp_path):
    columns = ["loss", "lr"]
    logger = common.MetricsLogger(tmp_path, columns)
    for step in range(1, 11):
        logger.log(step, {"loss": 1.0 / step, "lr": 0.1})
    logger.close()
    resumed = common.MetricsLogger(tmp_path, columns, start_step=6)  # its checkpoint: step 6
    resumed.log(7, {"loss": 0.5, "lr": 0.1})
    resumed.close()
    steps = [int(line.split(",")[0]) for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5, 6, 7]
