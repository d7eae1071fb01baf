"""Tests of the embedded log simulator (gnnrec.data.synthetic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gnnrec.config import SyntheticConfig
from gnnrec.data import synthetic
from gnnrec.data.synthetic import iter_chunks, simulate, write_synthetic
from gnnrec.errors import ConfigError

SMALL = SyntheticConfig(num_users=300, num_items=400, num_categories=12, events_per_user=30)
DAY = 86400


def _views(log: pl.DataFrame) -> pl.DataFrame:
    return log.filter(pl.col("behavior") == "view")


def test_schema_and_value_ranges() -> None:
    log, truth = simulate(SMALL, 0)
    assert log.columns == ["user", "item", "category", "behavior", "timestamp"]
    assert log.dtypes == [pl.Int64, pl.Int64, pl.Int64, pl.String, pl.Int64]
    assert set(log["behavior"].unique()) == {"view", "cart", "fav", "buy"}
    assert log["user"].min() >= 0 and log["user"].max() < SMALL.num_users
    assert log["item"].min() >= 0 and log["item"].max() < SMALL.num_items
    assert log["category"].min() >= 0 and log["category"].max() < SMALL.num_categories
    assert log["timestamp"].min() >= SMALL.start
    assert log["timestamp"].max() < SMALL.start + SMALL.days * DAY
    # one category per item
    assert log.group_by("item").agg(pl.col("category").n_unique())["category"].max() == 1
    # sorted by user, then time
    assert log.select(pl.col("user").diff().min())[0, 0] >= 0
    assert log.select((pl.col("timestamp").diff().over("user")).min())[0, 0] >= 0
    assert truth["user"].to_list() == list(range(SMALL.num_users))
    assert truth.schema["change_ts"] == pl.Int64
    assert truth.schema["old_categories"] == pl.List(pl.Int64)
    # about events_per_user views per user
    assert abs(_views(log).height / SMALL.num_users - SMALL.events_per_user) < 2


def test_same_seed_same_frames_and_other_seed_differs() -> None:
    log_a, truth_a = simulate(SMALL, 7)
    log_b, truth_b = simulate(SMALL, 7)
    log_c, truth_c = simulate(SMALL, 8)
    assert log_a.equals(log_b) and truth_a.equals(truth_b)
    assert not log_a.equals(log_c)
    assert not truth_a.equals(truth_c)


def test_chunking_does_not_change_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    # small blocks so that chunks of 50 users straddle several block boundaries
    monkeypatch.setattr(synthetic, "BLOCK_USERS", 64)
    big = simulate(SMALL.model_copy(update={"chunk_users": 10_000}), 3)
    small = simulate(SMALL.model_copy(update={"chunk_users": 50}), 3)
    assert big[0].equals(small[0]) and big[1].equals(small[1])


def test_chunks_are_user_ranges_and_independent_of_consumption(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "BLOCK_USERS", 64)
    cfg = SMALL.model_copy(update={"chunk_users": 70})
    chunks = list(iter_chunks(cfg, 5))
    assert len(chunks) == 5  # 300 users in chunks of 70
    for i, (log, truth) in enumerate(chunks):
        lo, hi = 70 * i, min(300, 70 * (i + 1))
        assert truth["user"].to_list() == list(range(lo, hi))
        assert log.height > 0 and log["user"].min() >= lo and log["user"].max() < hi
    # consuming only the first chunk gives the same first chunk
    first_log, first_truth = next(iter(iter_chunks(cfg, 5)))
    assert first_log.equals(chunks[0][0]) and first_truth.equals(chunks[0][1])
    full_log, _ = simulate(cfg, 5)
    assert pl.concat([c[0] for c in chunks]).equals(full_log)


def test_funnel_order() -> None:
    log, _ = simulate(SMALL, 1)
    key = ["user", "item"]

    def first_time(behaviors: list[str]) -> pl.DataFrame:
        return log.filter(pl.col("behavior").is_in(behaviors)).group_by(key).agg(pl.col("timestamp").min())

    buys = log.filter(pl.col("behavior") == "buy")
    later = log.filter(pl.col("behavior").is_in(["cart", "fav"]))
    assert buys.height > 0 and later.height > 0
    # every buy has a cart or fav of the same user-item at an earlier-or-equal time
    b = buys.join(first_time(["cart", "fav"]), on=key, how="left", suffix="_prev")
    assert b["timestamp_prev"].null_count() == 0
    assert (b["timestamp_prev"] <= b["timestamp"]).all()
    # every cart/fav has a view of the same user-item at an earlier-or-equal time
    c = later.join(first_time(["view"]), on=key, how="left", suffix="_prev")
    assert c["timestamp_prev"].null_count() == 0
    assert (c["timestamp_prev"] <= c["timestamp"]).all()


def test_zero_rates_switch_behaviours_off() -> None:
    cfg = SMALL.model_copy(update={"cart_rate": 0.0, "fav_rate": 0.3, "buy_rate": 0.0})
    log, _ = simulate(cfg, 0)
    assert set(log["behavior"].unique()) == {"view", "fav"}
    cfg = SMALL.model_copy(update={"cart_rate": 0.0, "fav_rate": 0.0, "buy_rate": 1.0})
    assert set(simulate(cfg, 0)[0]["behavior"].unique()) == {"view"}


def test_migration_ground_truth() -> None:
    cfg = SyntheticConfig(num_users=2000, num_items=600, num_categories=20, events_per_user=10)
    _, truth = simulate(cfg, 0)
    share = truth["migrates"].mean()
    assert isinstance(share, float) and abs(share - cfg.migration_share) < 0.04
    mig = truth.filter("migrates")
    stay = truth.filter(~pl.col("migrates"))
    assert stay["change_ts"].null_count() == stay.height
    assert (stay["new_categories"].list.len() == 0).all()
    assert mig["change_ts"].null_count() == 0
    period = cfg.days * DAY
    frac = (mig["change_ts"] - cfg.start) / period
    assert frac.min() >= cfg.migration_window[0] and frac.max() <= cfg.migration_window[1]
    assert (mig["new_categories"].list.len() == cfg.interests_per_user).all()
    assert (truth["old_categories"].list.len() == cfg.interests_per_user).all()
    disjoint = mig.select(pl.col("old_categories").list.set_intersection(pl.col("new_categories")).list.len())
    assert (disjoint.to_series() == 0).all()
    assert np.allclose(truth["old_weights"].list.sum().to_numpy(), 1.0)
    assert np.allclose(mig["new_weights"].list.sum().to_numpy(), 1.0)


def _view_membership(cfg: SyntheticConfig) -> pl.DataFrame:
    """Views of migrating users with flags: after the change, in old set, in new set."""
    log, truth = simulate(cfg, 2)
    return (
        _views(log)
        .join(truth.filter("migrates"), on="user")
        .with_columns(
            (pl.col("timestamp") >= pl.col("change_ts")).alias("after"),
            pl.col("old_categories").list.contains(pl.col("category")).alias("in_old"),
            pl.col("new_categories").list.contains(pl.col("category")).alias("in_new"),
        )
    )


def test_views_follow_the_active_mixture_without_exploration() -> None:
    cfg = SMALL.model_copy(update={"exploration": 0.0, "migration_share": 0.5})
    v = _view_membership(cfg)
    assert v["after"].sum() > 100 and (~v["after"]).sum() > 100
    assert v.filter("after")["in_new"].all()
    assert v.filter(~pl.col("after"))["in_old"].all()


def test_views_after_migration_are_new_except_exploration() -> None:
    cfg = SMALL.model_copy(update={"exploration": 0.1, "migration_share": 0.5})
    v = _view_membership(cfg)
    after = v.filter("after")
    share_new = after["in_new"].mean()
    assert isinstance(share_new, float)
    # exploration is uniform over 12 categories, 3 of them new: expect 0.9 + 0.1 * 3/12
    assert 0.88 < share_new < 0.97
    assert share_new < 1.0  # exploration does happen


def test_conversion_follows_category_affinity() -> None:
    """Views in a user's top category convert to cart far more often than off-interest views."""
    cfg = SMALL.model_copy(update={"exploration": 0.3, "migration_share": 0.0, "fav_rate": 0.0})
    log, truth = simulate(cfg, 0)
    top = truth.select(
        "user",
        pl.col("old_categories").list.get(pl.col("old_weights").list.arg_max()).alias("top"),
        "old_categories",
    )
    # a view counts as converted when its (user, item) pair has a cart (enough for a rate)
    carted = log.filter(pl.col("behavior") == "cart").select("user", "item").unique()
    views = (
        _views(log)
        .join(top, on="user")
        .join(carted.with_columns(carted=True), on=["user", "item"], how="left")
        .with_columns(pl.col("carted").fill_null(False))
    )
    in_top = views.filter(pl.col("category") == pl.col("top"))["carted"].mean()
    outside = views.filter(~pl.col("old_categories").list.contains(pl.col("category")))["carted"].mean()
    assert isinstance(in_top, float) and isinstance(outside, float)
    assert in_top > 2.5 * outside


def test_no_migration_without_room_for_a_disjoint_set() -> None:
    cfg = SMALL.model_copy(update={"num_categories": 3, "migration_share": 1.0})
    _, truth = simulate(cfg, 0)
    assert not truth["migrates"].any()
    cfg = SMALL.model_copy(update={"num_categories": 4, "migration_share": 1.0})
    _, truth = simulate(cfg, 0)
    assert truth["migrates"].all()
    assert (truth["new_categories"].list.len() == 1).all()


def test_category_sizes_follow_zipf() -> None:
    cfg = SyntheticConfig(num_users=300, num_items=200, num_categories=5, events_per_user=40)
    log, _ = simulate(cfg, 0)
    items = log.group_by("category").agg(pl.col("item").n_unique()).sort("item")
    assert items["category"][-1] == 0  # rank-1 category is the largest
    assert items["item"][-1] > 3 * items["item"][0]
    flat = simulate(cfg.model_copy(update={"category_zipf": 0.0}), 0)[0]
    sizes = flat.group_by("category").agg(pl.col("item").n_unique())["item"]
    assert sizes.max() - sizes.min() <= 4  # equal sizes (40 each) up to unseen items


def test_more_categories_than_items() -> None:
    cfg = SyntheticConfig(num_users=20, num_items=3, num_categories=10, events_per_user=5)
    log, truth = simulate(cfg, 0)
    assert log["item"].max() < 3
    assert log.group_by("item").agg(pl.col("category").n_unique())["category"].max() == 1
    assert truth.height == 20


def test_category_interests_carry_signal() -> None:
    """Category-aware popularity (a model that knows interests) beats global popularity."""
    cfg = SyntheticConfig(num_users=600)
    log, _ = simulate(cfg, 0)
    u, i, c = (log[k].to_numpy() for k in ("user", "item", "category"))
    buy = (log["behavior"] == "buy").to_numpy()
    rows = np.flatnonzero(buy)
    # hold out each user's last buy (rows are time-sorted per user); train on the rest
    last = pl.DataFrame({"r": rows, "u": u[rows]}).group_by("u").agg(pl.col("r").max())["r"].to_numpy()
    train = np.ones(len(u), dtype=bool)
    train[last] = False
    n_u, n_i, n_c = cfg.num_users, cfg.num_items, cfg.num_categories
    pop = np.bincount(i[train], minlength=n_i).astype(float)
    item_cat = np.zeros(n_i, dtype=np.int64)
    item_cat[i] = c
    user_cat = np.full((n_u, n_c), 0.01)
    np.add.at(user_cat, (u[train], c[train]), 1.0)
    user_cat /= user_cat.sum(axis=1, keepdims=True)
    pop_in_cat = pop / np.maximum(np.bincount(item_cat, weights=pop, minlength=n_c)[item_cat], 1e-9)

    def hit_rate(scores: np.ndarray, k: int = 20) -> float:
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        return float((top[u[last]] == i[last][:, None]).any(axis=1).mean())

    global_hits = hit_rate(np.tile(pop, (n_u, 1)))
    category_hits = hit_rate(user_cat[:, item_cat] * pop_in_cat[None, :])
    assert category_hits > 2 * global_hits


def test_write_synthetic_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "BLOCK_USERS", 32)
    cfg = SMALL.model_copy(update={"num_users": 100, "chunk_users": 40})
    out = tmp_path / "sub" / "sim.parquet"
    info = write_synthetic(out, cfg, 4)
    log, truth = simulate(cfg, 4)
    gt_path = tmp_path / "sub" / "sim.ground_truth.parquet"
    assert info == {
        "rows": log.height,
        "users": 100,
        "migrating_users": int(truth["migrates"].sum()),
        "path": str(out),
        "ground_truth_path": str(gt_path),
    }
    assert pl.read_parquet(out).equals(log)
    assert pl.read_parquet(gt_path).equals(truth)


def test_invalid_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="migration_window"):
        simulate(SMALL.model_copy(update={"migration_window": (0.8, 0.2)}), 0)
    with pytest.raises(ConfigError, match="non-negative integer seed"):
        simulate(SMALL, -1)
