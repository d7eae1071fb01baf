"""A sweep killed mid-trial (SIGKILL) resumes: the trial is FAIL, its parameters are redone,
the study completes the requested number of trials and trials.csv lists every trial."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from gnnrec.cli import main
from tests.sweep.conftest import write_config

# Trial 1 trains "forever" (a huge epoch budget, no patience), so the kill lands inside
# Trainer.fit; the retry of its parameters has another number and trains normally.
HOOK = """
def space(trial, cfg):
    if trial.number == 1:
        cfg["train"]["epochs"] = 1000000
"""


def _sweep_cmd(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "gnnrec", "sweep", str(config), "--out", str(out)]


@pytest.mark.slow
def test_sigkill_mid_trial_then_resume(
    tmp_path: Path, tiny_cfg: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "killhook.py").write_text(HOOK)
    tiny_cfg["sweep"].update(trials=3, hook="killhook:space")
    config = write_config(tmp_path / "tiny.yaml", tiny_cfg)
    out = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(_sweep_cmd(config, out), stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        history = out / "trial-0001" / "history.csv"
        started = out / "trial-0001" / "run.log"
        deadline = time.monotonic() + 300
        while not started.exists():  # trial 1 has begun its run (data prepared, training next)
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "trial 1 never started"
            time.sleep(0.2)
        time.sleep(1.0)  # well inside the endless training loop
        assert proc.poll() is None and not history.exists()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    killed_params = study.trials[1].params

    # The same command again (in this process: it has the imports already).
    assert main(_sweep_cmd(config, out)[3:]) == 0
    text = capsys.readouterr().out
    assert "trial 1: its worker is gone; marked FAIL, its parameters are queued again" in text
    assert "resuming: 1 finished trials (1 complete, 0 pruned), 1 failed" in text

    study = optuna.load_study(study_name="tiny", storage=storage)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    retry = study.trials[2]
    assert retry.user_attrs["retry_of"] == 1 and retry.params == killed_params  # nothing lost
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 3

    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["number"], r["state"]) for r in rows] == [
        ("0", "COMPLETE"),
        ("1", "FAIL"),
        ("2", "COMPLETE"),
        ("3", "COMPLETE"),
    ]
    assert rows[1]["error"] == "interrupted (worker stopped or died)" and rows[2]["retry_of"] == "1"
