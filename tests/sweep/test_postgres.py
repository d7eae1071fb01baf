"""Two worker processes share one study on a real PostgreSQL server (Optuna's distributed mode)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from gnnrec.cli import main
from tests.sweep.conftest import write_config

# A barrier: each worker's trials wait until both workers have started one, so the test
# proves two processes ran trials of the same study at the same time (and cannot pass
# with one fast worker doing everything).
HOOK = """
import os, pathlib, time

def space(trial, cfg):
    barrier = pathlib.Path(__file__).parent / "barrier"
    barrier.mkdir(exist_ok=True)
    (barrier / str(os.getpid())).touch()
    deadline = time.time() + 180
    while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.1)
"""


@pytest.mark.slow
def test_two_workers_share_a_postgres_study(
    tmp_path: Path, tiny_cfg: dict[str, Any], pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pghook.py").write_text(HOOK)
    tiny_cfg["sweep"].update(trials=4, hook="pghook:space")
    config = write_config(tmp_path / "tiny.yaml", tiny_cfg)
    out = tmp_path / "sweep"
    study_name = f"pg-{os.getpid()}-{tmp_path.name}"
    args = [
        "sweep",
        str(config),
        "--storage",
        pg_url,
        "--study",
        study_name,
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    # In this process (worker 0, imports done) plus one spawned worker process.
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "storage postgresql://postgres@127.0.0.1:" in text and "2 worker(s)" in text

    from gnnrec.sweep.study import with_driver

    study = optuna.load_study(study_name=study_name, storage=with_driver(pg_url))
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 4 <= len(finished) <= 5  # two workers may both start the last trial
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    pids = {t.user_attrs["worker_pid"] for t in study.trials}
    assert len(pids) == 2 and os.getpid() in pids  # this process (worker 0) and a spawned one
    assert len(list((tmp_path / "barrier").iterdir())) == 2

    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["number"]) for r in rows) == sorted(t.number for t in study.trials)
    assert (out / "best_config.yaml").is_file()
    assert not (out / "study.db").exists()  # the study lives in PostgreSQL only
