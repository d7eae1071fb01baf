"""Per-user sequences, sessions, edge time features and snapshots on hand-written logs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.config import GraphConfig, SplitConfig
from gnnrec.data.splits import make_split
from gnnrec.data.types import TEST, TRAIN, VALID, Split
from gnnrec.errors import ConfigError
from gnnrec.graph.build import build_train_data
from gnnrec.temporal import (
    build_sequences,
    delta_t,
    last_items,
    recency,
    sequences_from_events,
    session_ids,
    sessions_of,
    snapshots,
    train_sequences,
    window_bounds,
    window_index,
)
from tests.helpers import make_table

# user, item, behaviour, ts  (rows deliberately not in time order)
LOG = [
    (0, 3, "view", 50),
    (0, 1, "view", 10),
    (0, 2, "buy", 20),
    (1, 4, "view", 100),
    (0, 2, "view", 20),  # same ts as the buy of item 2: behaviour order view < buy
    (1, 0, "buy", 5000),
    (0, 5, "buy", 4000),
    (1, 1, "view", 160),
]


def table():
    u, i, b, t = (list(c) for c in zip(*LOG))
    return make_table(u, i, b, t, num_users=3, num_items=6)


def test_build_sequences_exact() -> None:
    u, i, b, t = (list(c) for c in zip(*LOG))
    beh = [("view", "cart", "fav", "buy").index(x) for x in b]
    seq = build_sequences(np.array(u), np.array(i), np.array(t), np.array(beh), num_users=3)
    assert seq.offsets.tolist() == [0, 5, 8, 8]  # user 2 has no events
    assert seq.items.tolist() == [1, 2, 2, 3, 5, 4, 1, 0]
    assert seq.times.tolist() == [10, 20, 20, 50, 4000, 100, 160, 5000]
    assert seq.behaviors.tolist() == [0, 0, 3, 0, 3, 0, 0, 3]
    assert seq.users.tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert seq.user_items(1).tolist() == [4, 1, 0]


def test_sessions_split_on_gaps_greater_than_gap() -> None:
    u, i, _b, t = (list(c) for c in zip(*LOG))
    seq = build_sequences(np.array(u), np.array(i), np.array(t), None, num_users=3)
    # user 0: 10 20 20 50 | 4000 ; user 1: 100 | 160 (gap 60 > 50) | 5000
    assert session_ids(seq, gap=50).tolist() == [0, 0, 0, 0, 1, 2, 3, 4]
    # a gap equal to the threshold stays in the session
    assert session_ids(seq, gap=60).tolist() == [0, 0, 0, 0, 1, 2, 2, 3]
    sess, owner = sessions_of(seq, gap=60)
    assert sess.offsets.tolist() == [0, 4, 5, 7, 8]
    assert owner.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError):
        session_ids(seq, gap=-1)


def test_time_features() -> None:
    u, i, _b, t = (list(c) for c in zip(*LOG))
    seq = build_sequences(np.array(u), np.array(i), np.array(t), None, num_users=3)
    assert delta_t(seq).tolist() == [-1, 10, 0, 30, 3950, -1, 60, 4840]
    assert recency(seq, 5000).tolist() == [4990, 4980, 4980, 4950, 1000, 4900, 4840, 0]


def test_last_items_right_aligned() -> None:
    items = torch.tensor([1, 2, 2, 3, 5, 4, 1, 0])
    window, length = last_items(items, torch.tensor([0, 5, 0]), torch.tensor([5, 7, 0]), 3, pad=9)
    assert window.tolist() == [[2, 3, 5], [9, 4, 1], [9, 9, 9]]
    assert length.tolist() == [3, 2, 0]


def test_train_sequences_leave_last_out_exact() -> None:
    tab = table()
    split = make_split(tab, SplitConfig(mode="leave_last_out", target_behavior="buy"), seed=0)
    seq = train_sequences(tab, split)
    # user 0 buys at 20 and 4000: the 4000 buy is TEST, history strictly before 4000
    # (the 20-buy is the user's first target event and stays); user 1: single buy stays
    assert seq.user_items(0).tolist() == [1, 2, 2, 3]
    assert seq.user_items(1).tolist() == [4, 1, 0]
    data = build_train_data(tab, split, GraphConfig(), "target")
    ev = sequences_from_events(data.events, 3)
    assert ev.items.tolist() == seq.items.tolist()
    assert ev.behaviors.tolist() == [0, 0, 1, 0, 0, 0, 1]  # is-target flags


def test_snapshots_exact() -> None:
    tab = table()
    split = Split(assign=np.zeros(len(tab), dtype=np.int8), target=3, mode="given", info={})
    bounds = window_bounds(0, 5000, 2500)
    assert bounds.tolist() == [0, 2500, 5000, 7500]
    assert window_index(np.array([0, 2499, 2500, 7500, -1]), bounds).tolist() == [
        0,
        0,
        1,
        -1,
        -1,
    ]
    snaps = snapshots(tab, split, bounds)
    assert [(s.start, s.end) for s in snaps] == [(0, 2500), (2500, 5000), (5000, 7500)]
    assert snaps[0].edge_index["view"].tolist() == [[0, 0, 0, 1, 1], [1, 2, 3, 1, 4]]
    assert snaps[0].edge_index["buy"].tolist() == [[0], [2]]
    assert snaps[1].edge_index["buy"].tolist() == [[0], [5]]
    assert snaps[2].edge_index["buy"].tolist() == [[1], [0]]
    assert snaps[2].num_edges() == 1
    with pytest.raises(ConfigError):
        window_bounds(0, 10, 0)
    with pytest.raises(ConfigError):
        snapshots(tab, split, np.array([5, 5]))


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[int], list[int], list[str], list[int]]:
    n = draw(st.integers(1, 40))
    users = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    behs = draw(st.lists(st.sampled_from(["view", "cart", "buy"]), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    return users, items, behs, ts


@settings(max_examples=60, deadline=None)
@given(logs())
def test_no_heldout_event_in_training_sequences(log: tuple[list[int], ...]) -> None:
    users, items, behs, ts = log
    tab = make_table(users, items, behs, ts, num_users=5, num_items=7)
    if "buy" not in behs:
        return
    split = make_split(tab, SplitConfig(mode="leave_last_out", target_behavior="buy"), seed=0)
    seq = train_sequences(tab, split)
    held = (split.assign == TEST) | (split.assign == VALID)
    assert int(seq.lengths.sum()) == int((split.assign == TRAIN).sum())
    for u in range(5):  # 5 users: a per-user check in the test is fine
        h = np.flatnonzero(held & (tab.user == u))
        lo, hi = seq.offsets[u], seq.offsets[u + 1]
        if h.size:
            # every history event strictly precedes every held-out event of the user
            assert (seq.times[lo:hi] < tab.ts[h].min()).all()
        # sequences are time-ordered
        assert (np.diff(seq.times[lo:hi]) >= 0).all()
    # the multiset of training events equals the TRAIN rows (no held-out row sneaks in)
    train = split.assign == TRAIN
    got = sorted(zip(seq.users.tolist(), seq.items.tolist(), seq.times.tolist()))
    want = sorted(zip(tab.user[train].tolist(), tab.item[train].tolist(), tab.ts[train].tolist()))
    assert got == want
