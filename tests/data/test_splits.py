"""Tests of gnnrec.data.splits.

Exact cases use the hand-written log ``tests.helpers.TINY_LOG`` (20 events, 4 users, 6
items; reproduced in the helpers module with one note per row): user 0 buys items 0, 1, 3 at
ts 120 / 140 / 160 (with views / a cart of the same items), user 1 buys items 2 and 4 at 200
and 220 and views item 3 at 220 (a tie with that buy), user 2 only views (cold on the target),
user 3 buys item 3 twice (ts 60 and 70). Property tests run over random small logs with many
timestamp ties and repeated pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnrec.config import GraphConfig, SplitConfig
from gnnrec.data.splits import make_split
from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID, InteractionTable, Split
from gnnrec.errors import ConfigError
from gnnrec.graph.build import build_train_data
from tests.helpers import make_table, random_tables, tiny_table

PROPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUY = 3
CODES = {TRAIN, VALID, TEST, EXCLUDED}


def rows_of(split: Split, code: int) -> list[int]:
    return np.flatnonzero(split.assign == code).tolist()


def pair_set(table: InteractionTable, rows: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(table.user[rows].tolist(), table.item[rows].tolist()))


def heldout_rows(split: Split) -> np.ndarray:
    return np.flatnonzero((split.assign == VALID) | (split.assign == TEST))


def message_passing_pairs(table: InteractionTable, split: Split) -> set[tuple[int, int]]:
    """Every (user, item) pair that is an edge of any behaviour in the training graph."""
    data = build_train_data(table, split, GraphConfig())
    out: set[tuple[int, int]] = set()
    for ei in data.edge_index.values():
        out |= set(zip(ei[0].tolist(), ei[1].tolist()))
    return out


def check_common(table: InteractionTable, split: Split) -> None:
    """Invariants of every mode."""
    assert split.assign.shape == (len(table),)
    assert split.assign.dtype == np.int8
    assert set(np.unique(split.assign).tolist()) <= CODES
    held = heldout_rows(split)
    assert (table.behavior[held] == split.target).all()  # only the target is ever held out
    info = split.info
    assert info["train"] + info["valid"] + info["test"] + info["excluded"] == len(table)
    assert sum(info["excluded_by_reason"].values()) == info["excluded"]


# --------------------------------------------------------------------------- exact cases


def test_leave_last_out_tiny_exact() -> None:
    table = tiny_table()
    split = make_split(table, SplitConfig(mode="leave_last_out"), seed=0)
    expected = [0, 0, 0, 0, 1, -1, 2, 0, 0, 0, 0, 0, 2, -1, 0, 0, 0, 0, 0, 2]
    assert split.assign.tolist() == expected
    # user 0: buys at 120/140/160 → VALID 140 (row 4), TEST 160 (row 6), view at 150 excluded
    # user 1: 2 buys → TEST row 12 only; the view at the same ts 220 (row 13) is excluded
    # user 3: repeat purchase → TEST row 19 (ts 70); its earlier buy of the same item trains
    assert split.info["heldout_seen_in_train"] == 1
    assert split.info["excluded_by_reason"] == {"at_or_after_user_cutoff": 2}
    assert (split.info["train"], split.info["valid"], split.info["test"]) == (14, 1, 3)
    check_common(table, split)


def test_temporal_tiny_exact() -> None:
    table = tiny_table()
    split = make_split(table, SplitConfig(mode="temporal", ratios=(0.5, 0.25, 0.25)), seed=0)
    # 20 sorted ts: quantile 0.5 → between 130 and 140 = 135; quantile 0.75 → 210 + 0.25*10 = 212.5
    assert split.info["t_valid"] == 135
    assert split.info["t_test"] == 213
    expected = [0, 0, 0, 0, 1, -1, 1, 0, 0, 0, 1, -1, 2, -1, -1, -1, -1, 0, 0, 0]
    assert split.assign.tolist() == expected
    assert split.info["excluded_by_reason"] == {"after_cutoff_non_target": 6}
    check_common(table, split)


def test_temporal_zero_shares_mean_no_cutoff() -> None:
    table = tiny_table()
    split = make_split(table, SplitConfig(mode="temporal", ratios=(0.5, 0.5, 0.0)), seed=0)
    assert split.info["t_test"] is None
    assert rows_of(split, TEST) == []
    assert rows_of(split, VALID) == [4, 6, 10, 12]  # every buy at ts >= 135
    split = make_split(table, SplitConfig(mode="temporal", ratios=(1.0, 0.0, 0.0)), seed=0)
    assert (split.assign == TRAIN).all()


@pytest.mark.parametrize("seed", range(12))
def test_random_tiny_thirds(seed: int) -> None:
    """With ratios 1/3 each, systematic sampling fixes the per-user counts for any seed."""
    table = tiny_table()
    split = make_split(table, SplitConfig(mode="random", ratios=(1 / 3, 1 / 3, 1 / 3)), seed=seed)
    check_common(table, split)
    a = split.assign
    # user 0 has 3 buy pairs (items 0, 1, 3; rows 2, 4, 6): exactly one of each
    assert sorted(a[[2, 4, 6]].tolist()) == [TRAIN, VALID, TEST]
    # user 1 has 2 buy pairs (rows 10, 12): one kept for training, one held out
    assert sorted(a[[10, 12]].tolist())[1] in (VALID, TEST) and TRAIN in a[[10, 12]]
    # user 2 has no buy: untouched
    assert a[[14, 15, 16]].tolist() == [TRAIN] * 3
    # other events of a held-out pair are excluded, of a kept pair trained
    companions = {2: [0, 1], 4: [3], 6: [5], 10: [9], 12: [11]}
    for label_row, others in companions.items():
        want = EXCLUDED if a[label_row] != TRAIN else TRAIN
        assert a[others].tolist() == [want] * len(others)
    # user 3 (one pair, two buys): held out → the earliest buy (row 18) is the label
    if a[18] == TRAIN:
        assert a[[17, 18, 19]].tolist() == [TRAIN] * 3
    else:
        assert a[18] in (VALID, TEST) and a[[17, 19]].tolist() == [EXCLUDED, EXCLUDED]
    # user 1's view of item 3 (row 13) is not a buy pair and always trains
    assert a[13] == TRAIN and a[7] == TRAIN and a[8] == TRAIN


def test_random_min_user_targets() -> None:
    table = tiny_table()
    cfg = SplitConfig(mode="random", ratios=(0.2, 0.4, 0.4), min_user_targets=3)
    for seed in range(5):
        split = make_split(table, cfg, seed)
        assert set(table.user[heldout_rows(split)].tolist()) == {0}  # only user 0 has 3 pairs
        assert (split.assign[table.user != 0] == TRAIN).all()
    split = make_split(table, cfg.model_copy(update={"min_user_targets": 4}), 0)
    assert (split.assign == TRAIN).all()


def test_random_is_deterministic_and_seeded() -> None:
    table = make_table(
        users=np.repeat(np.arange(20), 5), items=np.tile(np.arange(5), 20), behaviors=["buy"] * 100
    )
    cfg = SplitConfig(mode="random", ratios=(0.6, 0.2, 0.2))
    a = make_split(table, cfg, 7).assign
    assert np.array_equal(a, make_split(table, cfg, 7).assign)
    assert not np.array_equal(a, make_split(table, cfg, 8).assign)
    # 20 users x 5 pairs: systematic sampling gives exactly 3 / 1 / 1 per user
    counts = np.stack([np.bincount(table.user[a == c], minlength=20) for c in (TRAIN, VALID, TEST)])
    assert (counts == np.array([[3], [1], [1]])).all()


def test_given_split_and_carving() -> None:
    # rows: 0..3 user 0, 4..7 user 1; buys of items 0..2 train, one buy test, one view "test"
    table = make_table(
        users=[0, 0, 0, 0, 0, 1, 1, 1, 1],
        items=[0, 1, 2, 0, 3, 0, 1, 1, 2],
        behaviors=["buy", "buy", "buy", "view", "buy", "buy", "buy", "view", "view"],
        ts=[1, 2, 3, 4, 9, 1, 2, 3, 9],
        given=["train", "train", "train", "train", "test", "train", "train", "train", "test"],
    )
    no_carve = make_split(table, SplitConfig(mode="given", valid_from_train=False), 0)
    assert no_carve.assign.tolist() == [0, 0, 0, 0, 2, 0, 0, 0, -1]
    assert no_carve.info["excluded_by_reason"] == {"given_heldout_non_target": 1}
    # share 0.5/(0.5+0.25) = 2/3 of training pairs to valid: user 0 (3 pairs) → 2 valid,
    # user 1 (2 pairs) → 1 valid (one must stay in training)
    cfg = SplitConfig(mode="given", ratios=(0.25, 0.5, 0.25))
    for seed in range(6):
        split = make_split(table, cfg, seed)
        check_common(table, split)
        a = split.assign
        assert split.info["valid_carved"] is True
        assert a[4] == TEST and a[8] == EXCLUDED
        assert sorted(a[[0, 1, 2]].tolist()) == [TRAIN, VALID, VALID]
        assert sorted(a[[5, 6]].tolist()) == [TRAIN, VALID]
        # the view of a carved pair leaves the graph with it
        assert a[3] == (EXCLUDED if a[0] == VALID else TRAIN)
        assert a[7] == (EXCLUDED if a[6] == VALID else TRAIN)
        assert not pair_set(table, np.flatnonzero(a == VALID)) & message_passing_pairs(table, split)


def test_given_carve_keep_context() -> None:
    # the same log as above; with valid_context keep a carved buy's view stays in training
    table = make_table(
        users=[0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
        items=[0, 1, 2, 0, 3, 0, 1, 1, 2, 0],
        behaviors=["buy", "buy", "buy", "view", "buy", "buy", "buy", "view", "view", "buy"],
        ts=[1, 2, 3, 4, 9, 1, 2, 3, 9, 5],
        given=["train", "train", "train", "train", "test", "train", "train", "train", "test", "train"],
    )
    cfg = SplitConfig(mode="given", ratios=(0.25, 0.5, 0.25), valid_context="keep")
    seen = set()
    for seed in range(8):
        split = make_split(table, cfg, seed)
        check_common(table, split)
        a = split.assign
        assert split.info["valid_context"] == "keep"
        assert a[3] == TRAIN and a[7] == TRAIN  # the views stay, carved or not
        assert a[4] == TEST and a[8] == EXCLUDED
        assert sorted(a[[0, 1, 2]].tolist()) == [TRAIN, VALID, VALID]
        # user 1 bought item 0 twice (rows 5 and 9): a carved pair loses both buy events
        if a[5] == VALID or a[9] == VALID:
            seen.add("dup")
            assert sorted(a[[5, 9]].tolist()) == [EXCLUDED, VALID] and a[6] == TRAIN
            assert split.info["excluded_by_reason"]["heldout_pair_duplicate_target"] == 1
        else:
            seen.add("single")
            assert a[6] == VALID and a[5] == a[9] == TRAIN
        assert "heldout_pair_other_behavior" not in split.info["excluded_by_reason"]  # zero counts are dropped
        # no carved buy is a message-passing buy edge; its view is one
        valid_pairs = pair_set(table, np.flatnonzero(a == VALID))
        buy_train = pair_set(table, np.flatnonzero((a == TRAIN) & (table.behavior == BUY)))
        assert not valid_pairs & buy_train
    assert seen == {"dup", "single"}
    with pytest.raises(ValueError, match="valid_context 'keep' applies"):
        SplitConfig(mode="given", valid_carve="last", valid_context="keep")
    with pytest.raises(ValueError, match="valid_context 'keep' applies"):
        SplitConfig(mode="random", valid_context="keep")


def test_given_carve_last_exact() -> None:
    # user 0: buys at ts 1, 2, 3 and a view at ts 3 (tied with its last buy); user 1: buys at
    # 1, 2 (eligible); user 2: one buy (ineligible); user 3: a given test; user 4: two buys
    # at the same ts (ineligible: holding one out would leave no earlier training buy)
    table = make_table(
        users=[0, 0, 0, 0, 1, 1, 2, 3, 3, 4, 4],
        items=[0, 1, 2, 3, 0, 1, 0, 1, 2, 0, 1],
        behaviors=["buy", "buy", "buy", "view", "buy", "buy", "buy", "view", "buy", "buy", "buy"],
        ts=[1, 2, 3, 3, 1, 2, 5, 1, 2, 4, 4],
        given=["train"] * 8 + ["test", "train", "train"],
    )
    # share 0.5 / (0.5 + 0.5) = 1/2 of the 2 eligible users (0 and 1): one drawn per seed
    cfg = SplitConfig(mode="given", ratios=(0.5, 0.5, 0.0), valid_carve="last")
    drawn = set()
    for seed in range(8):
        split = make_split(table, cfg, seed)
        check_common(table, split)
        a = split.assign.tolist()
        assert split.info["valid_carve"] == "last"
        if a[2] == VALID:  # user 0: its last buy, and the tied view leaves training
            drawn.add(0)
            assert a == [0, 0, 1, -1, 0, 0, 0, 0, 2, 0, 0]
            assert split.info["excluded_by_reason"] == {"valid_at_or_after_user_cutoff": 1}
        else:
            drawn.add(1)
            assert a == [0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0]
            assert split.info["excluded_by_reason"] == {}
    assert drawn == {0, 1}


@PROPS
@given(table=random_tables(with_given=True), seed=st.integers(0, 2**16))
def test_given_carve_last_properties(table: InteractionTable, seed: int) -> None:
    cfg = SplitConfig(mode="given", ratios=(0.5, 0.5, 0.0), valid_carve="last")
    split = make_split(table, cfg, seed)
    check_common(table, split)
    g, a = table.given_split, split.assign
    assert g is not None
    tgt = table.behavior == BUY
    if (g[tgt] == VALID).any():
        return  # the given validation rows are kept (tested above)
    assert (a[(g == TEST) & tgt] == TEST).all()
    assert (g[a == TRAIN] == TRAIN).all()
    base = make_split(table, SplitConfig(mode="given", valid_from_train=False), seed).assign

    def has_earlier(u: int) -> bool:  # a training target event strictly before the last one
        t = table.ts[(table.user == u) & tgt & (base == TRAIN)]
        return t.size > 0 and bool((t < t.max()).any())

    eligible = [u for u in range(table.num_users) if has_earlier(u)]
    valid = np.flatnonzero(a == VALID)
    # one VALID per drawn user, round(share * eligible) of them
    assert sorted(table.user[valid].tolist()) == sorted(set(table.user[valid].tolist()))
    assert valid.size == round(0.5 * len(eligible))
    for r in valid:
        u, t = table.user[r], table.ts[r]
        mine = table.user == u
        # it was the user's last training target event by (ts, row) ...
        later = mine & tgt & (base == TRAIN) & ((table.ts > t) | ((table.ts == t) & (np.arange(len(table)) > r)))
        assert not later.any()
        # ... its history strictly precedes it, and at least one target event stays
        assert (table.ts[mine & (a == TRAIN)] < t).all()
        assert (mine & tgt & (a == TRAIN)).any()


def test_given_with_valid_rows_is_kept() -> None:
    table = make_table([0, 0, 0], [0, 1, 2], ["buy"] * 3, given=["train", "valid", "unused"])
    split = make_split(table, SplitConfig(mode="given"), 0)
    assert split.assign.tolist() == [TRAIN, VALID, EXCLUDED]
    assert split.info["valid_carved"] is False
    assert split.info["excluded_by_reason"] == {"given_unused": 1}


def test_config_errors() -> None:
    table = tiny_table()
    with pytest.raises(ConfigError, match="unknown behaviour 'click'"):
        make_split(table, SplitConfig(target_behavior="click"), 0)
    with pytest.raises(ConfigError, match="needs a dataset with its own split"):
        make_split(table, SplitConfig(mode="given"), 0)
    no_ts = make_table([0, 1], [0, 1], ["buy", "view"])
    for mode in ("temporal", "leave_last_out"):
        with pytest.raises(ConfigError, match="needs timestamps"):
            make_split(no_ts, SplitConfig(mode=mode), 0)
    with pytest.raises(ConfigError, match="'cart' has no events"):
        make_split(make_table([0], [0], ["view"]), SplitConfig(target_behavior="cart"), 0)


def test_target_behavior_override() -> None:
    table = tiny_table()
    split = make_split(table, SplitConfig(mode="leave_last_out", target_behavior="view"), 0)
    assert split.target == 0 and split.info["target_behavior"] == "view"
    assert (table.behavior[heldout_rows(split)] == 0).all()


def test_random_without_timestamps_uses_first_row() -> None:
    table = make_table([0, 0, 0, 0], [0, 0, 1, 2], ["buy"] * 4)
    held_first = 0
    for seed in range(30):
        a = make_split(table, SplitConfig(mode="random", ratios=(0.4, 0.3, 0.3)), seed).assign
        if a[0] != TRAIN:
            held_first += 1
            assert a[1] == EXCLUDED  # the duplicate buy of the held-out pair
        assert a[1] in (TRAIN, EXCLUDED)  # never the label: row 0 is earlier
    assert held_first > 0


# ----------------------------------------------------------------------- property tests


@PROPS
@given(table=random_tables(with_ts=False), seed=st.integers(0, 2**16))
def test_random_properties(table: InteractionTable, seed: int) -> None:
    cfg = SplitConfig(mode="random", ratios=(0.5, 0.25, 0.25))
    split = make_split(table, cfg, seed)
    check_common(table, split)
    assert np.array_equal(split.assign, make_split(table, cfg, seed).assign)
    held = heldout_rows(split)
    held_pairs = pair_set(table, held)
    # one label per held-out pair, and the pair is nowhere in the training graph
    assert len(held_pairs) == held.size
    assert not held_pairs & message_passing_pairs(table, split)
    # a user with >= 2 target pairs keeps at least one for training
    tgt = table.behavior == BUY
    for u in np.unique(table.user[tgt]):
        pairs = pair_set(table, np.flatnonzero(tgt & (table.user == u)))
        train_pairs = pair_set(table, np.flatnonzero(tgt & (table.user == u) & (split.assign == TRAIN)))
        if len(pairs) >= 2:
            assert train_pairs
    # non-excluded events of pairs that are not held out all train
    other = np.array([(u, i) not in held_pairs for u, i in zip(table.user, table.item)], dtype=bool)
    assert (split.assign[other] == TRAIN).all()


@PROPS
@given(table=random_tables(), seed=st.integers(0, 2**16))
def test_temporal_properties(table: InteractionTable, seed: int) -> None:
    cfg = SplitConfig(mode="temporal", ratios=(0.6, 0.2, 0.2))
    split = make_split(table, cfg, seed)
    check_common(table, split)
    ts, a = table.ts, split.assign
    assert ts is not None
    t_valid, t_test = split.info["t_valid"], split.info["t_test"]
    assert (ts[a == TRAIN] < t_valid).all()
    assert ((ts[a == VALID] >= t_valid) & (ts[a == VALID] < t_test)).all()
    assert (ts[a == TEST] >= t_test).all()
    # every target event after the cut-off is held out, every earlier event trains
    assert (a[(ts >= t_valid) & (table.behavior == BUY)] != EXCLUDED).all()
    assert (a[ts < t_valid] == TRAIN).all()


@PROPS
@given(table=random_tables())
def test_leave_last_out_properties(table: InteractionTable) -> None:
    split = make_split(table, SplitConfig(mode="leave_last_out"), 0)
    check_common(table, split)
    ts, a = table.ts, split.assign
    assert ts is not None
    tgt = table.behavior == BUY
    for u in np.unique(table.user):
        mine = table.user == u
        n_tgt = int((mine & tgt).sum())
        assert int((mine & (a == TEST)).sum()) == (1 if n_tgt >= 2 else 0)
        assert int((mine & (a == VALID)).sum()) == (1 if n_tgt >= 3 else 0)
        held = mine & ((a == VALID) | (a == TEST))
        if held.any():
            cut = ts[held].min()
            assert (ts[mine & (a == TRAIN)] < cut).all()  # strict: ties are excluded
            assert (a[mine & (ts < cut)] == TRAIN).all()
            # the test event is a latest target event of the user
            assert ts[mine & (a == TEST)].max() == ts[mine & tgt].max()
        else:
            assert (a[mine] == TRAIN).all()


@PROPS
@given(table=random_tables(with_given=True), seed=st.integers(0, 2**16))
def test_given_properties(table: InteractionTable, seed: int) -> None:
    cfg = SplitConfig(mode="given", ratios=(0.5, 0.25, 0.25))
    split = make_split(table, cfg, seed)
    check_common(table, split)
    assert np.array_equal(split.assign, make_split(table, cfg, seed).assign)
    g, a = table.given_split, split.assign
    assert g is not None
    tgt = table.behavior == BUY
    # given target test rows stay test; nothing becomes training that was not given as training
    assert (a[(g == TEST) & tgt] == TEST).all()
    assert (g[a == TRAIN] == TRAIN).all()
    if (g[tgt] == VALID).any():
        assert np.array_equal(a == VALID, (g == VALID) & tgt)
    else:
        carved = np.flatnonzero(a == VALID)
        assert (g[carved] == TRAIN).all()
        assert not pair_set(table, carved) & message_passing_pairs(table, split)


@settings(max_examples=60, deadline=None)
@given(
    major=st.lists(st.integers(0, 2**20), min_size=0, max_size=40),
    data=st.data(),
)
def test_order_by_equals_lexsort(major: list[int], data: st.DataObject) -> None:
    from gnnrec.data.splits import _order_by

    n = len(major)
    ints = np.array(data.draw(st.lists(st.integers(-(2**30), 2**30), min_size=n, max_size=n)), dtype=np.int64)
    floats = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.999]), min_size=n, max_size=n)))
    m = np.array(major, dtype=np.int64)
    assert _order_by(m, ints).tolist() == np.lexsort((ints, m)).tolist()
    assert _order_by(m, floats).tolist() == np.lexsort((floats, m)).tolist()
    # a minor key too wide for the packed int64 falls back to lexsort
    wide = ints * (2**30)
    assert _order_by(m, wide).tolist() == np.lexsort((wide, m)).tolist()
