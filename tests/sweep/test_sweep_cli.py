"""`gnnrec sweep` end to end on a tiny synthetic log: outputs, resume, best config, data reuse."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import optuna
import pytest

from gnnrec.cli import main
from gnnrec.config import load_config
from gnnrec.sweep.outputs import TRIAL_COLUMNS
from tests.sweep.conftest import write_config


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_tiny_sweep_outputs_and_resume(
    tmp_path: Path,
    tiny_cfg: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gnnrec.runner

    prepares = []
    real_prepare = gnnrec.runner.prepare_data
    monkeypatch.setattr(gnnrec.runner, "prepare_data", lambda cfg: prepares.append(1) or real_prepare(cfg))

    config = write_config(tmp_path / "tiny.yaml", tiny_cfg)
    out = tmp_path / "sweep"
    args = ["sweep", str(config), "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    # one progress line per finished trial, then the table of the top trials
    lines = [ln for ln in text.splitlines() if re.match(r"trial +\d+ (COMPLETE|PRUNED|FAIL)", ln)]
    assert len(lines) == 3, text
    assert re.match(
        r"trial +0 COMPLETE ndcg@10=[0-9.]+ +train\.lr=[0-9.e-]+ model\.params\.dim=[48] +\([0-9.]+ s\)",
        lines[0],
    )
    assert "top 3 trials (valid ndcg@10)" in text
    assert len(prepares) == 1  # the space touches no data key: data prepared once for 3 trials

    columns, rows = _rows(out / "trials.csv")
    metrics = ["recall@10", "ndcg@10"]
    assert columns == [
        *TRIAL_COLUMNS,
        "params.train.lr",
        "params.model.params.dim",
        *(f"valid.{m}" for m in metrics),
        *(f"test.{m}" for m in metrics),
    ]
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    assert {r["state"] for r in rows} == {"COMPLETE"}
    for r in rows:
        assert float(r["value"]) == pytest.approx(float(r["valid.ndcg@10"]))
        assert r["run_dir"] == str((out / f"trial-{int(r['number']):04d}").resolve())
        assert (Path(r["run_dir"]) / "metrics.json").is_file()
        assert r["epochs"] == "2" and r["params.model.params.dim"] in ("4", "8")
        assert 1e-3 <= float(r["params.train.lr"]) <= 1e-1

    # best config: the best trial's config, loads and runs as a normal experiment
    best = max(rows, key=lambda r: (float(r["value"]), -int(r["number"])))
    best_cfg = load_config(out / "best_config.yaml")
    assert best_cfg.train.lr == pytest.approx(float(best["params.train.lr"]))
    assert best_cfg.model.params["dim"] == int(best["params.model.params.dim"])
    assert best_cfg.sweep is None and best_cfg.compare == ()
    assert (
        (out / "best_config.yaml")
        .read_text()
        .startswith(f"# Best trial {best['number']} of sweep study 'tiny'")
    )
    assert main(["run", str(out / "best_config.yaml"), "--out", str(tmp_path / "rerun"), "-q"]) == 0
    assert (tmp_path / "rerun" / "metrics.json").is_file()
    capsys.readouterr()

    for name in ("optimization_history", "param_importances", "intermediate_values"):
        assert (out / f"{name}.png").stat().st_size > 1000, name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "best trial" in html

    # TensorBoard: one hparams entry per trial
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb_runs = sorted(p.name for p in (out / "tb").iterdir())
    assert tb_runs == ["trial-0000", "trial-0001", "trial-0002"]
    acc = EventAccumulator(str(out / "tb" / "trial-0001"))
    acc.Reload()
    assert "hparam/valid_ndcg@10" in acc.Tags()["scalars"]

    # Re-running the same command resumes: nothing left to do. More trials: only the missing ones.
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "resuming: 3 finished trials" in text
    assert not re.search(r"^trial +\d+ COMPLETE", text, re.MULTILINE)
    assert main([*args, "--trials", "4"]) == 0
    text = capsys.readouterr().out
    assert len(re.findall(r"^trial +3 COMPLETE", text, re.MULTILINE)) == 1
    _, rows = _rows(out / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4 and study.user_attrs["metric"] == "ndcg@10"


def test_resuming_with_another_metric_is_refused(
    tmp_path: Path, tiny_cfg: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_cfg["sweep"]["trials"] = 1
    tiny_cfg["train"]["epochs"] = 1
    config = write_config(tmp_path / "tiny.yaml", tiny_cfg)
    out = tmp_path / "sweep"
    assert main(["sweep", str(config), "--out", str(out)]) == 0
    capsys.readouterr()
    tiny_cfg["sweep"]["metric"] = "recall@10"
    write_config(config, tiny_cfg)
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: study 'tiny' exists and optimises ndcg@10; this sweep asks for recall@10 "
        "(use --study NAME for a new study)"
    )


def test_failing_trials_are_recorded_and_bounded(
    tmp_path: Path, tiny_cfg: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A hook that breaks the config fails each trial with its message; the sweep stops
    after as many failures as requested trials instead of looping."""
    (tmp_path / "badhook.py").write_text("def space(trial, cfg):\n    cfg['train']['lr'] = -1.0\n")
    tiny_cfg["sweep"].update(trials=2, hook="badhook:space")
    config = write_config(tmp_path / "tiny.yaml", tiny_cfg)
    out = tmp_path / "sweep"
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "error: 2 trials failed in this worker; last error: train.lr: Input should be greater than 0"
    )
    assert "trial    0 FAIL     train.lr: Input should be greater than 0" in captured.out
    _, rows = _rows(out / "trials.csv")  # outputs are written even when the sweep fails
    assert [(r["state"], r["error"]) for r in rows] == [
        ("FAIL", "train.lr: Input should be greater than 0")
    ] * 2
    assert not (out / "best_config.yaml").exists()
