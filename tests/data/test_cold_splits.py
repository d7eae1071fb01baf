"""Cold-start split modes: exact tiny cases and leakage properties (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.config import GraphConfig, ModelSpec, SplitConfig
from gnnrec.data.sampling import UniformNegativeSampler
from gnnrec.data.splits import make_split
from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID
from gnnrec.graph.build import build_train_data
from gnnrec.graph.data import TrainData
from gnnrec.models import build_model
from tests.helpers import make_table

PROPS = settings(max_examples=40, deadline=None)


def test_cold_user_exact() -> None:
    # u0: view i0 @1, buy i4 @1 (tied with the history), buy i1 @2, buy i2 @3, view i3 @4
    # u1: buy i0 @1, view i3 @2 (a single target event: leave_last_out keeps it in TRAIN)
    table = make_table(
        [0, 0, 0, 0, 0, 1, 1],
        [0, 4, 1, 2, 3, 0, 3],
        ["view", "buy", "buy", "buy", "view", "buy", "view"],
        ts=[1, 1, 2, 3, 4, 1, 2],
        categories_per_item=[0, 0, 1, 1, 1],
    )
    split = make_split(table, SplitConfig(mode="cold_user", cold_k=1, cold_ratio=0.5), seed=0)
    # only u0 is eligible (u1's single buy is its first event); one cold user, tested
    assert split.info["cold_user_index"] == [0]
    assert split.assign.tolist() == [
        TRAIN,
        EXCLUDED,
        TEST,
        TEST,
        EXCLUDED,
        TRAIN,
        TRAIN,
    ]
    assert split.info["excluded_by_reason"]["cold_user_tied_with_history"] == 1
    assert split.info["excluded_by_reason"]["cold_user_after_history_non_target"] == 1
    assert split.info["warm_protocol"] == "leave_last_out"


def test_cold_user_k0_has_no_training_event() -> None:
    table = make_table([0, 0, 1, 1], [0, 1, 0, 1], ["buy", "buy", "buy", "view"], ts=[1, 2, 1, 2])
    split = make_split(table, SplitConfig(mode="cold_user", cold_k=0, cold_ratio=0.5), seed=3)
    (cold,) = split.info["cold_user_index"]
    rows = np.flatnonzero(table.user == cold)
    assert not (split.assign[rows] == TRAIN).any()


def test_cold_item_exact() -> None:
    # items 0, 1 bought; item 1 also viewed; item 2 only viewed (not eligible)
    table = make_table(
        [0, 0, 1, 1, 2],
        [0, 1, 1, 2, 1],
        ["buy", "buy", "buy", "view", "view"],
        ts=[1, 2, 3, 4, 5],
        categories_per_item=[0, 1, 1],
    )
    split = make_split(table, SplitConfig(mode="cold_item", cold_ratio=0.4), seed=1)
    (cold,) = split.info["cold_item_index"]
    expected = {
        0: [TEST, TRAIN, TRAIN, TRAIN, TRAIN],
        1: [TRAIN, TEST, TEST, TRAIN, EXCLUDED],
    }[cold]
    assert split.assign.tolist() == expected
    data = build_train_data(table, split, GraphConfig())
    assert data.cache["negative_items"].tolist() == sorted({0, 1, 2} - {cold})
    # the item table still knows the cold item's category (item -> category edge)
    assert int(data.item_category[cold]) == int(table.item_category[cold])


@st.composite
def logs(draw: st.DrawFn) -> tuple:
    n_users = draw(st.integers(2, 8))
    n_items = draw(st.integers(2, 8))
    n = draw(st.integers(4, 50))
    users = draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    behs = draw(st.lists(st.sampled_from(["view", "buy"]), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    cats = draw(st.lists(st.integers(0, 2), min_size=n_items, max_size=n_items))
    return users, items, behs, ts, cats


def _table(log: tuple, with_ts: bool = True):
    users, items, behs, ts, cats = log
    n_users, n_items = max(users) + 1, max(items) + 1
    return make_table(users, items, behs, ts=ts if with_ts else None, categories_per_item=cats[:n_items],
                      num_users=n_users, num_items=n_items)  # fmt: skip


@PROPS
@given(logs(), st.integers(0, 4), st.floats(0.1, 0.9), st.integers(0, 3), st.booleans())
def test_cold_user_properties(log: tuple, k: int, ratio: float, seed: int, with_ts: bool) -> None:
    table = _table(log, with_ts)
    if not (table.behavior == table.behavior_index("buy")).any():
        return
    split = make_split(table, SplitConfig(mode="cold_user", cold_k=k, cold_ratio=ratio), seed)
    a = split.assign
    ts = table.ts if table.ts is not None else np.zeros(len(table), dtype=np.int64)
    cold = np.asarray(split.info["cold_user_index"], dtype=np.int64)
    assert cold.size == split.info["cold_users"]
    is_buy = table.behavior == table.behavior_index("buy")
    for u in cold.tolist():  # a handful of users: a loop per user is fine in a test
        rows = np.flatnonzero(table.user == u)
        train, held = (
            rows[a[rows] == TRAIN],
            rows[(a[rows] == VALID) | (a[rows] == TEST)],
        )
        assert train.size <= k
        assert held.size >= 0 and is_buy[held].all()
        assert len(set(a[held].tolist())) <= 1  # a cold user validates or tests, not both
        if train.size and held.size and table.ts is not None:
            assert ts[train].max() < ts[held].min()  # history strictly precedes the labels
        # the training rows are the user's first events in (ts, row) order
        order = rows[np.lexsort((rows, ts[rows]))]
        assert set(train.tolist()) <= set(order[:k].tolist())
    data = build_train_data(table, split, GraphConfig(), positives="all")
    # graph built from TRAIN rows only: a cold user has at most k edges in any behaviour
    for name in data.meta.behaviors:
        e = data.edge_index[name]
        assert np.isin(e[0].numpy(), cold).sum() <= k * max(cold.size, 1)
    assert data.meta.num_users == table.num_users and data.meta.num_items == table.num_items
    train_items = np.unique(table.item[a == TRAIN])
    assert data.cache["negative_items"].tolist() == train_items.tolist()


@PROPS
@given(logs(), st.floats(0.1, 0.9), st.integers(0, 3))
def test_cold_item_no_leakage(log: tuple, ratio: float, seed: int) -> None:
    table = _table(log)
    is_buy = table.behavior == table.behavior_index("buy")
    if not is_buy.any():
        return
    split = make_split(table, SplitConfig(mode="cold_item", cold_ratio=ratio), seed)
    a = split.assign
    cold = np.asarray(split.info["cold_item_index"], dtype=np.int64)
    assert cold.size >= 1
    cold_rows = np.isin(table.item, cold)
    assert not (a[cold_rows] == TRAIN).any()  # no training interaction at all
    assert ((a[cold_rows] != EXCLUDED) == is_buy[cold_rows]).all()  # buys held out, rest excluded
    assert (a[~cold_rows] == TRAIN).all()  # warm items: everything trains
    data = build_train_data(table, split, GraphConfig(), positives="all")
    for name in data.meta.behaviors:  # no training edge
        assert not np.isin(data.edge_index[name][1].numpy(), cold).any()
    assert not np.isin(data.pos_index[1].numpy(), cold).any()
    cand = data.cache["negative_items"]
    assert not np.isin(cand.numpy(), cold).any()
    if data.pos_index.shape[1] and cand.numel() > 1:
        users = data.pos_index[0]
        g = torch.Generator().manual_seed(seed)
        try:
            sampler = UniformNegativeSampler(data.meta.num_items, data.pos_index, g, candidates=cand)
        except Exception:  # a user with every candidate as a positive: nothing to sample
            return
        neg = sampler.sample(users, 4)
        assert not np.isin(neg.numpy(), cold).any()  # no negative sample
    # no popularity statistic
    for name in ("pop", "pop_category"):
        model = build_model(ModelSpec(name=name), data.meta)
        model.prepare(data)
        if name == "pop":
            assert float(model.counts[torch.as_tensor(cold)].sum()) == 0.0


def test_cold_split_requires_target_events() -> None:
    table = make_table([0, 1], [0, 1], ["view", "view"], ts=[1, 2])
    with pytest.raises(Exception, match="no events"):
        make_split(table, SplitConfig(mode="cold_item"), seed=0)


def test_portable_cache_survives_to() -> None:
    table = make_table(
        [0, 0, 1],
        [0, 1, 1],
        ["buy", "buy", "buy"],
        ts=[1, 2, 3],
        categories_per_item=[0, 1],
    )
    split = make_split(table, SplitConfig(mode="cold_item", cold_ratio=0.5), seed=0)
    data: TrainData = build_train_data(table, split, GraphConfig())
    data.cache["item_features"] = torch.ones(2, 3)
    moved = data.to("cpu")
    assert moved.cache["negative_items"].tolist() == data.cache["negative_items"].tolist()
    assert moved.cache["item_features"].shape == (2, 3)
