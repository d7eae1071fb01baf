"""build_interactions: exact ids and vocabularies, k-core fixed point, pseudonymisation,
plus the summary helpers."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.config import DataConfig
from gnnrec.data.interactions import (
    _contiguous_ints,
    build_interactions,
    int_strings,
    kcore_mask,
    pseudonymize,
    resolve_pseudonym_key,
)
from gnnrec.data.summary import format_summary, summarize
from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID, ValidLog
from gnnrec.errors import ConfigError, DataError
from tests.conftest import case_table, case_valid_log, get_case


def test_base_exact_ids_and_vocabularies() -> None:
    t = case_table("base")
    assert len(t) == 15
    assert t.user.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]
    assert t.item.tolist() == [0, 0, 0, 1, 4, 1, 2, 2, 5, 4, 5, 5, 6, 3, 6]
    assert t.user_ids.tolist() == ["1", "2", "3", "4"]
    assert t.item_ids.tolist() == ["10", "11", "12", "13", "14", "15", "16"]
    assert t.category_ids.tolist() == ["100", "200"]
    assert t.item_category.tolist() == [0, 0, 0, 0, 1, 1, 1]
    # view=0 cart=1 fav=2 buy=3
    assert t.behavior.tolist() == [0, 1, 3, 0, 0, 0, 2, 3, 0, 0, 1, 3, 0, 0, 0]
    assert t.ts is not None and t.ts.tolist() == get_case("base")["timestamp"].to_list()
    assert t.behaviors == ("view", "cart", "fav", "buy")
    assert t.target_behavior == "buy"
    assert t.given_split is None
    assert t.dropped == {}
    assert (t.num_users, t.num_items, t.num_categories) == (4, 7, 2)
    assert t.user.dtype == np.int64 and t.item.dtype == np.int64 and t.behavior.dtype == np.int8
    assert t.ts.dtype == np.int64 and t.item_category.dtype == np.int64
    assert t.user_ids.dtype.kind == "U" and t.item_ids.dtype.kind == "U"


def test_ids_follow_sorted_raw_ids_not_first_appearance() -> None:
    log = ValidLog(
        frame=pl.DataFrame({"user": [30, 4, 30], "item": [7, 100, 9], "behavior": ["view"] * 3}),
        source="mem",
        behaviors=("view", "buy"),
        target_behavior="view",
    )
    t = build_interactions(log, DataConfig())
    assert t.user_ids.tolist() == ["4", "30"]
    assert t.user.tolist() == [1, 0, 1]
    assert t.item_ids.tolist() == ["7", "9", "100"]  # numeric order, not text order
    assert t.item.tolist() == [0, 2, 1]
    assert t.ts is None
    assert t.item_category.tolist() == [-1, -1, -1]
    assert t.category_ids.tolist() == []


def test_text_ids_from_a_custom_valid_log() -> None:
    log = ValidLog(
        frame=pl.DataFrame(
            {"user": ["b", "a", "b"], "item": ["x", "y", "x"], "behavior": ["buy", "view", "buy"]}
        ),
        source="mem",
        behaviors=("view", "buy"),
        target_behavior="buy",
    )
    t = build_interactions(log, DataConfig())
    assert t.user_ids.tolist() == ["a", "b"]
    assert t.user.tolist() == [1, 0, 1]
    assert t.item.tolist() == [0, 1, 0]
    assert t.behavior.tolist() == [1, 0, 1]


def test_given_split_codes() -> None:
    t = case_table("given_split")
    T, V, X, E = TRAIN, VALID, TEST, EXCLUDED
    assert t.given_split is not None
    assert t.given_split.tolist() == [T, T, X, T, T, T, V, X, T, T, V, X, T, T, E]
    assert t.given_split.dtype == np.int8


def test_dropped_carries_validation_counts() -> None:
    t = case_table("duplicate_rows")
    assert t.dropped == {"duplicate_row": 1}
    assert len(t) == 15


def test_kcore_fixed_point_exact_counts() -> None:
    cfg = DataConfig(min_user_interactions=2, min_item_interactions=2)
    t = case_table("kcore", cfg)
    assert t.dropped == {"kcore_user": 3, "kcore_item": 2}
    assert t.user_ids.tolist() == ["1", "5"]
    assert t.item_ids.tolist() == ["10", "11"]
    assert list(zip(t.user.tolist(), t.item.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert t.ts is not None and t.ts.tolist() == [1000, 1010, 1070, 1080]
    assert t.category_ids.tolist() == ["100"]
    assert t.item_category.tolist() == [0, 0]
    assert np.bincount(t.user).min() >= 2 and np.bincount(t.item).min() >= 2


def test_kcore_user_only_and_item_only() -> None:
    t = case_table("kcore", DataConfig(min_user_interactions=2))
    assert t.dropped == {"kcore_user": 1}
    assert t.user_ids.tolist() == ["1", "2", "4", "5"]
    t = case_table("kcore", DataConfig(min_item_interactions=3))
    # items 10 and 11 have 3 events each; 12 (2 events) and 13 (1) go
    assert t.dropped == {"kcore_item": 3}
    assert t.item_ids.tolist() == ["10", "11"]
    assert t.user_ids.tolist() == ["1", "2", "4", "5"]  # user 3's only item was 12


def test_kcore_removing_everything_is_an_error() -> None:
    with pytest.raises(DataError) as err:
        case_table("kcore", DataConfig(min_user_interactions=3))
    assert str(err.value) == (
        "case:kcore: no interactions left after the k-core filter "
        "(min_user_interactions=3, min_item_interactions=0)"
    )


def test_kcore_mask_matches_naive_loop() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        u = rng.integers(0, 15, 80)
        i = rng.integers(0, 25, 80)
        keep, ru, ri = kcore_mask(u, i, 3, 2)
        alive = np.ones(80, dtype=bool)
        while True:  # naive: recount from scratch until stable
            before = alive.copy()
            for uid in set(u[alive].tolist()):
                if (u[alive] == uid).sum() < 3:
                    alive &= u != uid
            for iid in set(i[alive].tolist()):
                if (i[alive] == iid).sum() < 2:
                    alive &= i != iid
            if (alive == before).all():
                break
        got = np.ones(80, dtype=bool) if keep is None else keep
        assert (got == alive).all()
        assert ru + ri == int((~alive).sum())


def test_no_filter_when_thresholds_at_most_one() -> None:
    assert kcore_mask(np.array([0, 1]), np.array([0, 0]), 1, 0) == (None, 0, 0)


KEY = "secret-key"


def _hmac16(key: str, raw: str) -> str:
    return hmac.new(key.encode(), raw.encode(), hashlib.sha256).hexdigest()[:16]


def test_pseudonymised_vocab_hides_raw_ids_and_keeps_events() -> None:
    cfg = DataConfig(pseudonymize_users=True, pseudonym_key=KEY)
    t = case_table("base", cfg)
    expected = sorted(_hmac16(KEY, u) for u in ["1", "2", "3", "4"])
    assert t.user_ids.tolist() == expected  # numbered in pseudonym order
    assert not set(t.user_ids.tolist()) & {"1", "2", "3", "4"}
    raw_users = get_case("base")["user"].to_list()
    assert t.user_ids[t.user].tolist() == [_hmac16(KEY, str(u)) for u in raw_users]
    assert t.meta["pseudonymized_users"] is True
    # items and categories are not pseudonymised
    assert t.item_ids.tolist() == ["10", "11", "12", "13", "14", "15", "16"]


def test_pseudonyms_stable_under_same_key_and_differ_under_another() -> None:
    a = case_table("base", DataConfig(pseudonymize_users=True, pseudonym_key=KEY))
    b = case_table("base", DataConfig(pseudonymize_users=True, pseudonym_key=KEY))
    c = case_table("base", DataConfig(pseudonymize_users=True, pseudonym_key="other"))
    assert a.user_ids.tolist() == b.user_ids.tolist()
    assert a.user.tolist() == b.user.tolist()
    assert not set(a.user_ids.tolist()) & set(c.user_ids.tolist())


def test_pseudonymize_matches_hmac_new() -> None:
    assert pseudonymize(["1", "42"], b"k").tolist() == [_hmac16("k", "1"), _hmac16("k", "42")]


def test_pseudonym_key_from_environment() -> None:
    cfg = DataConfig(pseudonymize_users=True)
    assert resolve_pseudonym_key(cfg, environ={"GNNREC_PSEUDONYM_KEY": "env-key"}) == b"env-key"
    cfg_key = DataConfig(pseudonymize_users=True, pseudonym_key="cfg-key")
    assert resolve_pseudonym_key(cfg_key, environ={"GNNREC_PSEUDONYM_KEY": "env-key"}) == b"cfg-key"
    with pytest.raises(ConfigError) as err:
        resolve_pseudonym_key(cfg, environ={})
    assert str(err.value) == (
        "data.pseudonymize_users is on but no key is set: give data.pseudonym_key or the "
        "GNNREC_PSEUDONYM_KEY environment variable"
    )


def test_missing_key_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GNNREC_PSEUDONYM_KEY", raising=False)
    cfg = DataConfig(pseudonymize_users=True)
    with pytest.raises(ConfigError):
        build_interactions(case_valid_log("base"), cfg)
    monkeypatch.setenv("GNNREC_PSEUDONYM_KEY", KEY)
    t = build_interactions(case_valid_log("base"), cfg)
    assert t.user_ids.tolist() == sorted(_hmac16(KEY, u) for u in ["1", "2", "3", "4"])


def test_no_category_and_no_timestamp_cases() -> None:
    t = case_table("no_category")
    assert t.item_category.tolist() == [-1] * 7 and t.category_ids.tolist() == []
    t = case_table("no_timestamp")
    assert t.ts is None


def test_unknown_behaviour_in_an_unvalidated_log() -> None:
    log = ValidLog(
        frame=pl.DataFrame({"user": [1], "item": [2], "behavior": ["click"]}),
        source="mem",
        behaviors=("view", "buy"),
        target_behavior="buy",
    )
    with pytest.raises(DataError) as err:
        build_interactions(log, DataConfig())
    assert str(err.value) == "behaviour 'click' is not in the vocabulary (view, buy)"


@pytest.mark.parametrize(
    "values",
    [[0], [5, 0, 5, 3], [7, 1_000_000_000_000, 7], list(range(0, 40, 3)), [2**40, 2**40 + 1]],
)
def test_contiguous_ints_matches_np_unique(values: list[int]) -> None:
    v = np.array(values, dtype=np.int64)
    uniq, inv = _contiguous_ints(v)
    exp_u, exp_inv = np.unique(v, return_inverse=True)
    assert uniq.tolist() == exp_u.tolist()
    assert inv.tolist() == exp_inv.reshape(-1).tolist()
    uniq, inv = _contiguous_ints(v[:2], v[2:])  # chunked input, same result
    assert uniq.tolist() == exp_u.tolist()
    assert inv.tolist() == exp_inv.reshape(-1).tolist()


def test_chunked_log_frame_gives_the_same_table() -> None:
    cfg = DataConfig(min_user_interactions=2)
    log = case_valid_log("base")
    chunked = ValidLog(
        frame=pl.concat([log.frame.slice(0, 4), log.frame.slice(4, 7), log.frame.slice(11)], rechunk=False),
        source=log.source,
        behaviors=log.behaviors,
        target_behavior=log.target_behavior,
    )
    assert chunked.frame["user"].n_chunks() == 3
    for c in (DataConfig(), cfg):
        a, b = build_interactions(log, c), build_interactions(chunked, c)
        for field in (
            "user",
            "item",
            "behavior",
            "ts",
            "item_category",
            "user_ids",
            "item_ids",
            "category_ids",
        ):
            assert getattr(a, field).tolist() == getattr(b, field).tolist(), field
    assert build_interactions(chunked, cfg).dropped == {"kcore_user": 1}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=30))
def test_int_strings_matches_astype_str(values: list[int]) -> None:
    v = np.array(values, dtype=np.int64)
    assert int_strings(v).tolist() == v.astype(str).tolist()


def test_int_strings_edge_values() -> None:
    v = np.array([0, 9, 10, 99, 100, 2**63 - 1], dtype=np.int64)
    assert int_strings(v).tolist() == ["0", "9", "10", "99", "100", "9223372036854775807"]
    assert int_strings(np.array([], dtype=np.int64)).tolist() == []


def test_summaries_of_log_and_table_agree() -> None:
    table = summarize(case_table("base"))
    assert table == {
        "rows": 15,
        "users": 4,
        "items": 7,
        "categories": 2,
        "behaviors": {"view": 9, "cart": 2, "fav": 1, "buy": 3},
        "time_range": ("1970-01-01T00:16:40Z", "1970-01-01T00:17:50Z"),
        "target_behavior": "buy",
        "dropped": {},
    }
    log = summarize(case_valid_log("base"))
    assert log == {**table, "source": "case:base"}


def test_summary_without_category_or_timestamp() -> None:
    d = summarize(case_table("no_timestamp"))
    assert d["time_range"] is None and d["categories"] == 2
    d = summarize(case_valid_log("no_category"))
    assert d["categories"] is None


def test_format_summary_text() -> None:
    d = summarize(case_valid_log("duplicate_rows"))
    assert format_summary(d) == "\n".join(
        [
            "source      case:duplicate_rows",
            "rows        15",
            "users       4",
            "items       7",
            "categories  2",
            "behaviors   view 9, cart 2, fav 1, buy 3",
            "time range  1970-01-01T00:16:40Z .. 1970-01-01T00:17:50Z",
            "target      buy",
            "dropped     duplicate_row 1",
        ]
    )


def test_summarize_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        summarize("nope")  # type: ignore[arg-type]
