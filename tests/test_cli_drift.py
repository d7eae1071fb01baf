"""`gnnrec drift` and `gnnrec interests` end to end (in-process CLI), and their error cases."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.helpers import one_error_line, run_cli

SMALL = {"num_users": 300, "num_items": 300, "num_categories": 20, "events_per_user": 60}


def _config(tmp_path: Path, **extra: object) -> Path:
    raw = {"name": "d", "seed": 0, "out_dir": str(tmp_path / "runs"), "data": {"synthetic": SMALL}}
    raw.update(extra)
    path = tmp_path / "drift.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_drift_writes_json_with_prf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, drift={"behaviors": ["view"]})
    code, out, err = run_cli(["drift", str(cfg), "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "drift.json").read_text())
    for key in ("precision", "recall", "f1"):
        assert 0.0 <= doc[key] <= 1.0
    assert doc["f1"] >= 0.8
    assert doc["tolerance"] == 172800
    assert doc["config"]["behaviors"] == ["view"]
    assert doc["summary"]["evaluation"]["true_changes"] > 0
    assert doc["rows"] == {"detection": "all", "drift_score": "train"}
    assert set(doc["train_buckets"]) == {"stable", "migrating", "unknown", "threshold", "alpha"}
    assert 0 < len(doc["detections"]) <= 20
    per_user = pl.read_parquet(tmp_path / "out" / "per_user_drift.parquet")
    assert per_user.height == SMALL["num_users"]
    assert int(per_user["detected"].sum()) == doc["summary"]["detected"]
    assert "f1" in out and "precision" in out


def test_drift_set_override_and_default_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    code, _, err = run_cli(
        ["drift", str(cfg), "--set", "drift.permutations=0", "--set", "drift.threshold=0.6"], capsys
    )
    assert code == 0, err
    found = list((tmp_path / "runs").glob("d-drift-*/drift.json"))
    assert len(found) == 1
    doc = json.loads(found[0].read_text())
    assert doc["config"]["permutations"] == 0 and doc["config"]["threshold"] == 0.6


def test_drift_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    code, _, err = run_cli(["drift", str(cfg), "--set", "drift.behaviors=[click]"], capsys)
    assert code == 2
    assert "drift.behaviors: unknown behaviour 'click'" in one_error_line(err)
    code, _, err = run_cli(["drift", str(cfg), "--set", "drift.windows=3"], capsys)
    assert code == 2
    assert "drift.windows: unknown key" in one_error_line(err)
    code, _, err = run_cli(["drift", str(cfg), "--set", "drift.threshold=2"], capsys)
    assert code == 2
    assert "drift.threshold" in one_error_line(err)


def test_drift_needs_timestamps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.csv"
    log.write_text("user,item,category,behavior\n1,10,100,buy\n2,11,100,buy\n1,11,100,buy\n")
    cfg = _config(tmp_path, data={"dataset": "file", "path": str(log)})
    code, _, err = run_cli(["drift", str(cfg)], capsys)
    assert code == 2
    assert one_error_line(err) == "error: drift analysis needs timestamps, but this dataset has none"


# ---------------------------------------------------------------- interests
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished mf_bpr run on pseudonymised synthetic data (2 epochs)."""
    from gnnrec.config import config_from_dict
    from gnnrec.runner import run

    cfg = config_from_dict(
        {
            "threads": 1,
            "data": {
                "synthetic": {"num_users": 60, "num_items": 80, "num_categories": 6, "events_per_user": 40},
                "pseudonymize_users": True,
                "pseudonym_key": "k",
            },
            "model": {"name": "mf_bpr", "params": {"dim": 8}},
            "train": {"epochs": 2, "batch_size": 512},
            "drift": {"num_windows": 8, "min_events": 2},
        }
    )
    return run(cfg, tmp_path_factory.mktemp("interests") / "run", progress=False).run_dir


def _some_user(run_dir: Path) -> str:
    vocab = pl.read_csv(run_dir / "vocab" / "users.csv", schema_overrides={"id": pl.String})
    return str(vocab["id"][3])


def test_interests_prints_categories_and_trends(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gnnrec.drift.tags import interest_tags

    user = _some_user(finished_run)
    expected = interest_tags(finished_run, user, top=3)
    assert expected.height == 3
    assert expected["weight"].to_list() == sorted(expected["weight"].to_list(), reverse=True)
    assert expected["rank"].to_list() == [1, 2, 3]
    assert set(expected["trend"].to_list()) <= {"rising", "stable", "fading", "unknown"}
    assert (expected["user_id"] == user).all()

    code, out, err = run_cli(["interests", str(finished_run), "--user", user, "--top", "3"], capsys)
    assert code == 0, err
    for row in expected.iter_rows(named=True):
        assert row["category_id"] in out and row["trend"] in out
    assert f"{expected['weight'][0]:.4f}" in out

    code, out, err = run_cli(["interests", str(finished_run), "--user", user, "--top", "2", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["category_id"] for r in rows] == expected["category_id"].to_list()[:2]
    assert [r["trend"] for r in rows] == expected["trend"].to_list()[:2]


def test_interests_trends_follow_behaviour(finished_run: Path) -> None:
    """Trend = recent vs earlier share of the user's TRAIN events (threshold 0.10)."""
    from gnnrec.drift.tags import TREND_DELTA, interest_tags

    user = _some_user(finished_run)
    tags = interest_tags(finished_run, user, top=6)
    for r in tags.iter_rows(named=True):
        d = r["recent_share"] - r["earlier_share"]
        if r["trend"] == "rising":
            assert d >= TREND_DELTA
        elif r["trend"] == "fading":
            assert d <= -TREND_DELTA
        elif r["trend"] == "stable":
            assert abs(d) < TREND_DELTA


def test_interests_unknown_user(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["interests", str(finished_run), "--user", "nobody-42"], capsys)
    assert code == 2
    line = one_error_line(err)
    assert "user 'nobody-42' is not in" in line and "users.csv" in line


def test_interests_bad_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["interests", str(tmp_path / "nope"), "--user", "1"], capsys)
    assert code == 2
    assert "run directory not found" in one_error_line(err)
    (tmp_path / "half").mkdir()
    code, _, err = run_cli(["interests", str(tmp_path / "half"), "--user", "1"], capsys)
    assert code == 2
    assert "not found" in one_error_line(err)


def test_interests_bad_top(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["interests", str(finished_run), "--user", _some_user(finished_run), "--top", "0"], capsys
    )
    assert code == 2
    assert one_error_line(err) == "error: --top must be >= 1, got 0"
