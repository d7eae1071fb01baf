"""Evaluation buckets (history length, drift) on tiny hand-made tables, the leakage guard,
and the ``buckets`` section of a real run's metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gnnrec.config import DriftConfig, config_from_dict
from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID, Split
from gnnrec.errors import ConfigError
from gnnrec.eval.buckets import (
    bucket_metrics,
    drift_buckets,
    evaluation_buckets,
    history_labels,
    history_length,
    history_length_buckets,
)
from tests.helpers import make_table

BUY = 3  # index of "buy" in the default vocabulary


def _history_table():
    """Users 0..5 with 0, 1, 3, 6, 11 and 2 TRAIN buys; user 1 also has a TEST buy and user 5
    a VALID buy (not counted), user 0 has 4 TRAIN views (counted only with behavior="all")."""
    buys = [0, 1, 3, 6, 11, 2]
    users, items, beh, assign = [], [], [], []
    for u, n in enumerate(buys):
        users += [u] * n
        items += list(range(n))
        beh += ["buy"] * n
        assign += [TRAIN] * n
    users += [1, 5, 0, 0, 0, 0]
    items += [20, 20, 1, 2, 3, 4]
    beh += ["buy", "buy", "view", "view", "view", "view"]
    assign += [TEST, VALID, TRAIN, TRAIN, TRAIN, TRAIN]
    table = make_table(users, items, beh, ts=np.arange(len(users)), categories_per_item=[0] * 21)
    return table, Split(np.array(assign, dtype=np.int8), target=BUY, mode="manual")


def test_history_labels() -> None:
    assert history_labels() == ["0", "1-2", "3-5", "6-10", ">10"]
    assert history_labels((0, 2)) == ["0-1", ">1"]
    with pytest.raises(ConfigError):
        history_labels((1, 3))


def test_history_length_buckets_exact() -> None:
    table, split = _history_table()
    users = np.arange(6)
    assert history_length(table, split, users).tolist() == [0, 1, 3, 6, 11, 2]
    assert history_length(table, split, users, "all").tolist() == [4, 1, 3, 6, 11, 2]
    assert history_length_buckets(table, split, users).tolist() == ["0", "1-2", "3-5", "6-10", ">10", "1-2"]
    assert history_length_buckets(table, split, [5, 0], behavior="all").tolist() == ["1-2", "3-5"]


def test_bucket_metrics_exact() -> None:
    per_user = pl.DataFrame(
        {"user": [0, 1, 2, 3], "user_id": ["a", "b", "c", "d"], "recall@10": [1.0, 0.0, 0.5, 0.25]}
    )
    out = bucket_metrics(per_user, ["x", "y", "x", "y"], order=["x", "y", "z"])
    assert out == {
        "x": {"recall@10": 0.75, "users": 2},
        "y": {"recall@10": 0.125, "users": 2},
        "z": {"recall@10": None, "users": 0},
    }
    with pytest.raises(ValueError):
        bucket_metrics(per_user, ["x"])


def _drift_table(extra_heldout: bool = False, extra_code: int = TEST):
    """Category 0 = items 0-1, category 1 = items 2-3, category 2 = items 4-5. Times increase
    with the row.

    user 0: 6 views of category 0, then 2 of category 1 → migrating (last window all new)
    user 1: 8 views alternating categories 0 / 1 → stable
    user 2: 3 views → unknown (too few for min_events = 2 on both sides)
    ``extra_heldout`` appends 12 later buys of user 1 in category 2 (items 4-5) with code
    ``extra_code``.
    """
    users = [0] * 8 + [1] * 8 + [2] * 3
    items = [0, 1, 0, 1, 0, 1, 2, 3] + [0, 2] * 4 + [0, 1, 0]
    beh = ["view"] * 19
    assign = [TRAIN] * 19
    if extra_heldout:
        users += [1] * 12
        items += [4, 5] * 6
        beh += ["buy"] * 12
        assign += [extra_code] * 12
    table = make_table(
        users, items, beh, ts=np.arange(len(users)) * 10, categories_per_item=[0, 0, 1, 1, 2, 2], num_items=6
    )
    return table, Split(np.array(assign, dtype=np.int8), target=BUY, mode="manual")


# alpha 0.05: the G-test on a handful of events cannot reach the default 0.01
CFG = DriftConfig(num_windows=4, recent_share=0.25, min_events=2, bucket_threshold=0.2, alpha=0.05)


def test_drift_bucket_labels_exact() -> None:
    table, split = _drift_table()
    assert drift_buckets(table, split, [0, 1, 2], CFG).tolist() == ["migrating", "stable", "unknown"]


@pytest.mark.parametrize("code", [VALID, TEST, EXCLUDED])
def test_drift_buckets_ignore_held_out_events(code: int) -> None:
    """Held-out events of a new category at the end of user 1's history would make user 1
    look migrating; the buckets must not see them."""
    table, split = _drift_table(extra_heldout=True, extra_code=code)
    assert drift_buckets(table, split, [0, 1, 2], CFG).tolist() == ["migrating", "stable", "unknown"]
    # the same events as TRAIN rows do flip user 1 (so the check above can fail)
    table, split = _drift_table(extra_heldout=True, extra_code=TRAIN)
    assert drift_buckets(table, split, [1], CFG).tolist() == ["migrating"]


def test_evaluation_buckets_section() -> None:
    table, split = _drift_table()
    per_user = pl.DataFrame({"user": [0, 1, 2], "ndcg@20": [0.2, 0.4, 0.9]})
    out = evaluation_buckets(table, split, per_user, CFG)
    assert out["drift"] == {
        "stable": {"ndcg@20": 0.4, "users": 1},
        "migrating": {"ndcg@20": 0.2, "users": 1},
        "unknown": {"ndcg@20": 0.9, "users": 1},
    }
    # no TRAIN buys at all → everyone in bucket "0"
    assert out["history_length"]["0"] == {"ndcg@20": pytest.approx(0.5), "users": 3}
    assert list(out["history_length"]) == ["0", "1-2", "3-5", "6-10", ">10"]
    # without timestamps the drift section is empty and says why
    no_ts = make_table([0, 1], [0, 1], ["buy", "buy"], categories_per_item=[0, 1])
    out2 = evaluation_buckets(no_ts, Split(np.zeros(2, np.int8), BUY, "manual"), per_user.head(2), CFG)
    assert out2["drift"] == {} and "timestamps" in out2["drift_unavailable"]


def test_metrics_json_has_buckets(tmp_path: Path) -> None:
    from gnnrec.runner import run

    cfg = config_from_dict(
        {
            "threads": 1,
            "data": {
                "synthetic": {"num_users": 80, "num_items": 100, "num_categories": 8, "events_per_user": 30}
            },
            "model": {"name": "pop"},
        }
    )
    result = run(cfg, tmp_path / "run", progress=False)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    b = metrics["buckets"]
    assert list(b["history_length"]) == ["0", "1-2", "3-5", "6-10", ">10"]
    assert list(b["drift"]) == ["stable", "migrating", "unknown"]
    n_test = metrics["eval_users"]["test"]
    assert sum(v["users"] for v in b["history_length"].values()) == n_test
    assert sum(v["users"] for v in b["drift"].values()) == n_test
    assert b["drift"]["migrating"]["users"] > 0
    per_user = pl.read_parquet(result.run_dir / "per_user_test.parquet")
    migrating = [v for k, v in b["drift"].items() if v["users"]]
    assert all("ndcg@20" in v for v in migrating)
    assert per_user.height == n_test
