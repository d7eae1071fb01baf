"""Pseudonymised user ids: raw ids reach no output (vocabulary, per-user metrics, meta)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gnnrec.config import config_from_dict
from gnnrec.data.datasets import load_dataset
from gnnrec.data.interactions import build_interactions, pseudonymize
from gnnrec.data.schema import validate_log
from gnnrec.runner import run

SMALL = {"num_users": 60, "num_items": 80, "num_categories": 6, "events_per_user": 25, "migration_share": 0.5}


def test_ground_truth_users_get_the_same_pseudonyms() -> None:
    cfg = config_from_dict({"data": {"synthetic": SMALL, "pseudonymize_users": True, "pseudonym_key": "k1"}})
    raw = load_dataset(cfg.data, seed=0)
    table = build_interactions(validate_log(raw, cfg.data), cfg.data)
    truth = table.meta["ground_truth"]
    raw_truth = raw.meta["ground_truth"]
    expected = pseudonymize([str(u) for u in raw_truth["user"].to_list()], b"k1").tolist()
    assert truth["user"].to_list() == expected
    assert set(truth["user"].to_list()) <= set(table.user_ids.tolist())
    assert not set(str(u) for u in raw_truth["user"].to_list()) & set(truth["user"].to_list())


def test_run_outputs_hold_no_raw_user_ids(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {
            "data": {"synthetic": SMALL, "pseudonymize_users": True, "pseudonym_key": "secret"},
            "model": {"name": "pop"},
        }
    )
    result = run(cfg, tmp_path / "run", progress=False)
    raw_ids = {str(u) for u in range(SMALL["num_users"])}
    vocab = pl.read_csv(result.run_dir / "vocab/users.csv", schema_overrides={"id": pl.Utf8})
    assert not raw_ids & set(vocab["id"].to_list())
    assert all(len(x) == 16 for x in vocab["id"].to_list())
    per_user = pl.read_parquet(result.run_dir / "per_user_test.parquet")
    assert not raw_ids & set(per_user["user_id"].to_list())
    assert set(per_user["user_id"].to_list()) <= set(vocab["id"].to_list())
