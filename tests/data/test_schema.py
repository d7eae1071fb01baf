"""validate_log: every bad-input case under on_error=fail (exact message) and drop (counts)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnrec.config import DataConfig
from gnnrec.data.ingest import read_log
from gnnrec.data.schema import REASONS, drop_rows, validate_log
from gnnrec.data.types import RawLog
from gnnrec.errors import ConfigError, DataError
from tests.conftest import case_raw_log, get_case, write_case_csv

HEADER = "user,item,category,behavior,timestamp"
GOOD = ["1,10,100,view,1000", "2,11,100,buy,1001"]
LAST = "3,12,200,cart,1004"


def _file(tmp_path: Path, bad: str, header: str = HEADER) -> Path:
    """A log whose data row 3 is ``bad`` (rows 1, 2 and 4 are valid)."""
    p = tmp_path / "log.csv"
    p.write_text("\n".join([header, *GOOD, bad, LAST]) + "\n")
    return p


def _validate(path: Path, **cfg: object) -> object:
    return validate_log(read_log(path), DataConfig(**cfg))  # type: ignore[arg-type]


BEHAVIOURS = "view, cart, fav, buy"
# (bad row 3, message after "FILE, row 3", reason counted under drop)
BAD_ROWS = [
    (",10,100,view,1003", ", column 'user': missing user id", "null_id"),
    ("1,,100,view,1003", ", column 'item': missing item id", "null_id"),
    ("u1,10,100,view,1003", ", column 'user': user id is not an integer (got 'u1')", "non_integer_id"),
    ("1,1.5,100,view,1003", ", column 'item': item id is not an integer (got '1.5')", "non_integer_id"),
    (
        "99999999999999999999,10,100,view,1003",
        ", column 'user': user id is not an integer (got '99999999999999999999')",
        "non_integer_id",
    ),
    ("-3,10,100,view,1003", ", column 'user': user id is negative (got '-3')", "negative_id"),
    ("1,-10,100,view,1003", ", column 'item': item id is negative (got '-10')", "negative_id"),
    ("1,10,,view,1003", ", column 'category': missing category id", "null_category"),
    (
        "1,10,c7,view,1003",
        ", column 'category': category id is not an integer (got 'c7')",
        "non_integer_category",
    ),
    ("1,10,-1,view,1003", ", column 'category': category id is negative (got '-1')", "negative_category"),
    (
        "1,10,100,click,1003",
        (
            f", column 'behavior': unknown behaviour (expected one of {BEHAVIOURS}; map other values "
            "with data.behavior_map) (got 'click')"
        ),
        "unknown_behavior",
    ),
    (
        "1,10,100,,1003",
        (
            f", column 'behavior': unknown behaviour (expected one of {BEHAVIOURS}; map other values "
            "with data.behavior_map) (got None)"
        ),
        "unknown_behavior",
    ),
    (
        "1,10,100,view,2017-13-45",
        ", column 'timestamp': unparseable timestamp (got '2017-13-45')",
        "bad_timestamp",
    ),
    ("1,10,100,view,", ", column 'timestamp': missing timestamp", "bad_timestamp"),
    (
        "1,10,100,view,4102444800",
        (
            ", column 'timestamp': timestamp outside the valid range [0, 4102444800) in Unix seconds "
            "(got '4102444800')"
        ),
        "timestamp_out_of_range",
    ),
    (
        "1,10,100,view,-5",
        ", column 'timestamp': timestamp outside the valid range [0, 4102444800) in Unix seconds (got '-5')",
        "timestamp_out_of_range",
    ),
    (
        "1,10,100,view,1511544070000",
        (
            ", column 'timestamp': timestamp outside the valid range [0, 4102444800) in Unix seconds "
            "(got '1511544070000')"
        ),
        "timestamp_out_of_range",
    ),
    ("1,10,100,view,1000", ": duplicate of row 1", "duplicate_row"),
    (
        "4,10,200,view,1003",
        ", column 'category': item 10 already has category 100 (row 1) (got '200')",
        "conflicting_category",
    ),
]


@pytest.mark.parametrize(("bad", "message", "reason"), BAD_ROWS, ids=[r[0] for r in BAD_ROWS])
def test_bad_row_fails_with_exact_message(tmp_path: Path, bad: str, message: str, reason: str) -> None:
    p = _file(tmp_path, bad)
    with pytest.raises(DataError) as err:
        _validate(p)
    assert str(err.value) == f"{p}, row 3{message}"
    assert err.value.row == 3


@pytest.mark.parametrize(("bad", "message", "reason"), BAD_ROWS, ids=[r[0] for r in BAD_ROWS])
def test_bad_row_is_dropped_and_counted(tmp_path: Path, bad: str, message: str, reason: str) -> None:
    log = _validate(_file(tmp_path, bad), on_error="drop")
    assert log.dropped == {reason: 1}
    assert log.frame["user"].to_list() == [1, 2, 3]
    assert log.frame["timestamp"].to_list() == [1000, 1001, 1004]


def test_bad_split(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("user,item,split\n1,2,train\n1,3,tst\n1,4,test\n")
    with pytest.raises(DataError) as err:
        _validate(p)
    assert str(err.value) == (
        f"{p}, row 2, column 'split': unknown split (expected one of train, valid, test, unused) (got 'tst')"
    )
    log = _validate(p, on_error="drop")
    assert log.dropped == {"bad_split": 1}
    assert log.frame["split"].to_list() == ["train", "test"]


MIXED = [
    "1,10,100,view,1000",  # 1 ok
    "1,10,100,view,1000",  # 2 duplicate of 1
    "x,10,100,view,1000",  # 3 non_integer_id
    ",10,100,view,1000",  # 4 null_id
    "2,11,100,clk,1001",  # 5 unknown_behavior
    "2,11,200,buy,1002",  # 6 ok (item 11's first valid row)
    "2,11,100,cart,1003",  # 7 conflicting_category (item 11 is 200 since row 6)
    "3,12,5,buy,soon",  # 8 bad_timestamp
    "-3,12,5,buy,soon",  # 9 negative_id (user checked before timestamp)
    "3,12,5,fav,1004",  # 10 ok
    "",  # 11 blank line: skipped in both modes, counted
    "3,12,5,fav,1004",  # 12 duplicate of 10
    ",,,,",  # 13 only delimiters: a blank row too
]


def _mixed(tmp_path: Path) -> Path:
    p = tmp_path / "mixed.csv"
    p.write_text("\n".join([HEADER, *MIXED]) + "\n")
    return p


def test_fail_reports_first_offending_row_in_file_order(tmp_path: Path) -> None:
    p = _mixed(tmp_path)
    with pytest.raises(DataError) as err:
        _validate(p)
    assert str(err.value) == f"{p}, row 2: duplicate of row 1"


def test_drop_counts_every_reason_and_warns_once_per_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = _mixed(tmp_path)
    with caplog.at_level(logging.WARNING, logger="gnnrec.data"):
        log = _validate(p, on_error="drop")
    assert log.dropped == {
        "blank_row": 2,
        "null_id": 1,
        "non_integer_id": 1,
        "negative_id": 1,
        "unknown_behavior": 1,
        "bad_timestamp": 1,
        "duplicate_row": 2,
        "conflicting_category": 1,
    }
    assert list(log.dropped) == [r for r in REASONS if r in log.dropped]  # checking order
    assert log.frame.rows() == [
        (1, 10, 100, "view", 1000),
        (2, 11, 200, "buy", 1002),
        (3, 12, 5, "fav", 1004),
    ]
    lines = [r.getMessage() for r in caplog.records if r.name == "gnnrec.data"]
    assert len(lines) == 8
    assert f"{p}: dropped 2 row(s), blank_row: blank line (first at row 11)" in lines
    assert (
        f"{p}: dropped 2 row(s), duplicate_row: exact duplicate of an earlier row (first at row 2)" in lines
    )


def test_trailing_blank_line_does_not_fail(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("user,item\n1,2\n\n")
    log = _validate(p)
    assert log.frame.rows() == [(1, 2, "view")]
    assert log.dropped == {"blank_row": 1}


def test_all_rows_dropped_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("user,item\na,1\nb,2\n")
    with pytest.raises(DataError) as err:
        _validate(p, on_error="drop")
    assert str(err.value) == f"{p}: no valid rows left after validation (dropped: non_integer_id 2)"


def test_output_types_order_and_columns(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("split,timestamp,behavior,category,item,user\ntrain,5,buy,7,3,2\ntest,6,view,7,4,1\n")
    log = _validate(p)
    assert log.frame.schema == pl.Schema(
        {
            "user": pl.Int64,
            "item": pl.Int64,
            "category": pl.Int64,
            "behavior": pl.String,
            "timestamp": pl.Int64,
            "split": pl.String,
        }
    )
    assert log.frame.rows() == [(2, 3, 7, "buy", 5, "train"), (1, 4, 7, "view", 6, "test")]
    assert log.source == str(p)
    assert log.behaviors == ("view", "cart", "fav", "buy")


def test_text_values_with_spaces_and_signs_are_accepted(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("user,item,behavior,timestamp\n 5 ,+7, buy ,1000\n007,8,view, 1001\n")
    log = _validate(p)
    assert log.frame.rows() == [(5, 7, "buy", 1000), (7, 8, "view", 1001)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1511604000", 1511604000),
        ("1511604000.9", 1511604000),
        ("1.5116040e9", 1511604000),
        ("2017-11-25T10:00:00", 1511604000),
        ("2017-11-25 10:00:00", 1511604000),
        ("2017-11-25T10:00:00.750", 1511604000),
        ("2017-11-25T10:00:00Z", 1511604000),
        ("2017-11-25T11:00:00+01:00", 1511604000),
        ("2017-11-25T10:00", 1511604000),
        ("2017-11-25", 1511568000),
    ],
)
def test_timestamp_formats(tmp_path: Path, text: str, expected: int) -> None:
    p = tmp_path / "log.csv"
    p.write_text(f"user,item,timestamp\n1,2,1511600000\n1,3,{text}\n")
    log = _validate(p)
    assert log.frame["timestamp"].to_list() == [1511600000, expected]


def test_custom_time_range(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("user,item,timestamp\n1,2,100\n1,3,200\n")
    with pytest.raises(DataError) as err:
        _validate(p, time_range=(100, 200))
    assert str(err.value) == (
        f"{p}, row 2, column 'timestamp': timestamp outside the valid range [100, 200) in Unix seconds (got '200')"
    )
    with pytest.raises(ConfigError) as cerr:
        _validate(p, time_range=(5, 5))
    assert str(cerr.value) == "data.time_range must be [start, end) with start < end, got [5, 5]"


def test_behavior_map_pv_to_view(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text(
        "1,10,100,pv,1000\n1,11,100,buy,1001\n2,10,100,pv,1002\n1,12,200,fav,1003\n2,12,200,cart,1004\n"
    )
    with pytest.raises(DataError) as err:
        _validate(p)
    assert str(err.value).startswith(f"{p}, row 1, column 'behavior': unknown behaviour")
    log = _validate(p, behavior_map={"pv": "view"})
    assert log.frame["behavior"].to_list() == ["view", "buy", "view", "fav", "cart"]


def test_dataset_map_is_overridden_by_config_map() -> None:
    raw = RawLog(
        frame=pl.DataFrame({"user": ["1", "1", "2"], "item": ["5", "6", "5"], "behavior": ["1", "2", "4"]}),
        source="mem",
        behavior_map={"1": "view", "2": "fav", "4": "buy"},
    )
    assert validate_log(raw, DataConfig()).frame["behavior"].to_list() == ["view", "fav", "buy"]
    log = validate_log(raw, DataConfig(behavior_map={"2": "cart"}))
    assert log.frame["behavior"].to_list() == ["view", "cart", "buy"]


def test_integer_behaviour_codes_are_mapped_as_text() -> None:
    raw = RawLog(
        frame=pl.DataFrame({"user": [1, 2], "item": [5, 5], "behavior": [1, 4]}),
        source="mem",
        behavior_map={"1": "view", "4": "buy"},
    )
    assert validate_log(raw, DataConfig()).frame["behavior"].to_list() == ["view", "buy"]


def test_config_map_outside_vocabulary_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        validate_log(case_raw_log("base"), DataConfig(behavior_map={"pv": "click"}))
    assert str(err.value) == (
        "data.behavior_map: 'pv' maps to 'click', which is not in data.behaviors (view, cart, fav, buy)"
    )


def test_no_behavior_column_uses_default_behavior() -> None:
    log = validate_log(case_raw_log("no_behavior"), DataConfig(default_behavior="buy"))
    assert log.frame["behavior"].to_list() == ["buy"] * 15
    assert log.frame.columns == ["user", "item", "category", "behavior", "timestamp"]
    with pytest.raises(ConfigError) as err:
        validate_log(case_raw_log("no_behavior"), DataConfig(default_behavior="click"))
    assert str(err.value) == (
        "data.default_behavior 'click' is not in data.behaviors (view, cart, fav, buy) "
        "and the log has no behaviour column"
    )


def test_missing_required_column_in_raw_frame() -> None:
    raw = RawLog(frame=pl.DataFrame({"user": [1], "time": [5]}), source="mem")
    with pytest.raises(DataError) as err:
        validate_log(raw, DataConfig())
    assert str(err.value) == "mem: missing required column 'item' (columns found: 'user', 'time')"


def test_typed_case_errors_name_case_row_and_value() -> None:
    with pytest.raises(DataError) as err:
        validate_log(case_raw_log("duplicate_rows"), DataConfig())
    assert str(err.value) == "case:duplicate_rows, row 16: duplicate of row 2"
    with pytest.raises(DataError) as err:
        validate_log(case_raw_log("item_two_categories"), DataConfig())
    assert str(err.value) == (
        "case:item_two_categories, row 16, column 'category': item 10 already has category 100 (row 1) (got '200')"
    )
    log = validate_log(case_raw_log("item_two_categories"), DataConfig(on_error="drop"))
    assert log.dropped == {"conflicting_category": 1}
    assert log.frame.equals(get_case("base"))


def test_typed_negative_id_reports_text_value() -> None:
    raw = RawLog(frame=pl.DataFrame({"user": [1, -3], "item": [5, 6]}), source="mem")
    with pytest.raises(DataError) as err:
        validate_log(raw, DataConfig())
    assert str(err.value) == "mem, row 2, column 'user': user id is negative (got '-3')"


def test_typed_float_ids_and_timestamps() -> None:
    raw = RawLog(
        frame=pl.DataFrame({"user": [1.0, 2.5], "item": [5.0, 6.0], "timestamp": [10.7, 11.0]}), source="mem"
    )
    log = validate_log(raw, DataConfig(on_error="drop"))
    assert log.dropped == {"non_integer_id": 1}
    assert log.frame.rows() == [(1, 5, "view", 10)]


@pytest.mark.parametrize("name", ["base", "no_timestamp", "no_category", "given_split", "kcore", "migration"])
def test_valid_cases_pass_unchanged(name: str) -> None:
    log = validate_log(case_raw_log(name), DataConfig())
    assert log.dropped == {}
    assert log.frame.equals(get_case(name))


@pytest.mark.parametrize(
    ("behaviours", "target", "expected"),
    [
        (["view", "cart", "buy"], None, "buy"),
        (["view", "cart", "view"], None, "cart"),
        (["view", "fav", "cart"], None, "fav"),
        (["view", "view"], None, "view"),
        (["view", "buy"], "cart", "cart"),
        (["view", "buy"], "click", "buy"),
    ],
)
def test_target_behavior(behaviours: list[str], target: str | None, expected: str) -> None:
    n = len(behaviours)
    raw = RawLog(
        frame=pl.DataFrame({"user": [1] * n, "item": list(range(n)), "behavior": behaviours}),
        source="mem",
        target_behavior=target,
    )
    assert validate_log(raw, DataConfig()).target_behavior == expected


_cell = st.sampled_from(["1", "2", "3", "10", "-1", "x", "", " 4", "1.5"])
_beh = st.sampled_from(["view", "buy", "pv", "", "cart "])
_ts = st.sampled_from(["1000", "1001", "2017-11-25", "1.5e3", "bad", "", "-2"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_cell, _cell, _cell, _beh, _ts), min_size=1, max_size=12))
def test_typed_and_text_paths_agree(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    """Reading a file (typed fast path when values are clean) and validating the same
    values given as text give the same log, counts and first error."""
    p = tmp_path / "prop.csv"
    p.write_text("\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n")
    text = RawLog(
        frame=pl.DataFrame(
            [[v if v != "" else None for v in col] for col in zip(*rows)],
            schema={c: pl.String for c in HEADER.split(",")},
        ).with_row_index("_row", offset=1),
        source=str(p),
    )
    cfg = DataConfig(on_error="drop", behavior_map={"pv": "view"})
    outcomes = []
    for raw in (read_log(p, has_header=True), text):
        try:
            log = validate_log(raw, cfg)
            outcomes.append((log.frame.rows(), log.dropped))
        except DataError as err:
            outcomes.append(str(err))
        try:
            validate_log(raw, cfg.model_copy(update={"on_error": "fail"}))
            outcomes.append("ok")
        except DataError as err:
            outcomes.append(str(err))
    assert outcomes[:2] == outcomes[2:]


def test_target_behavior_ignores_dropped_rows() -> None:
    # the only buy has a bad user id: once it is dropped, cart is the last behaviour present
    raw = RawLog(
        frame=pl.DataFrame(
            {"user": ["1", "x", "2"], "item": ["5", "5", "6"], "behavior": ["view", "buy", "cart"]}
        ),
        source="mem",
    )
    log = validate_log(raw, DataConfig(on_error="drop"))
    assert log.dropped == {"non_integer_id": 1}
    assert log.target_behavior == "cart"
    assert validate_log(case_raw_log("no_behavior"), DataConfig()).target_behavior == "view"


def test_fail_reports_bad_value_before_a_later_duplicate(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text(f"{HEADER}\n1,10,100,view,1000\n1,x,100,view,1000\n1,10,100,view,1000\n")
    with pytest.raises(DataError) as err:
        _validate(p)
    assert str(err.value) == f"{p}, row 2, column 'item': item id is not an integer (got 'x')"


@pytest.mark.parametrize(
    ("name", "expected", "first_error_row"),
    [
        ("base", "base", None),
        ("given_split", "given_split", None),
        ("no_category", "no_category", None),
        ("duplicate_rows", "base", 16),
        ("item_two_categories", "base", 16),
    ],
)
def test_csv_typed_path_and_text_path_give_the_same_log(
    tmp_path: Path, name: str, expected: str, first_error_row: int | None
) -> None:
    p = write_case_csv(name, tmp_path / f"{name}.csv")
    typed = read_log(p)
    assert typed.frame.schema["user"] == pl.Int64  # clean file: integers parsed while reading
    text = RawLog(frame=typed.frame.with_columns(pl.exclude("_row").cast(pl.String)), source=typed.source)
    cfg = DataConfig(on_error="drop")
    a, b = validate_log(typed, cfg), validate_log(text, cfg)
    assert a.frame.equals(b.frame) and a.dropped == b.dropped
    assert a.frame.equals(get_case(expected))
    for raw in (typed, text):
        if first_error_row is None:
            validate_log(raw, DataConfig())
        else:
            with pytest.raises(DataError) as err:
                validate_log(raw, DataConfig())
            assert err.value.row == first_error_row


@pytest.mark.parametrize("gone", [[], [0], [3], [9], [2, 3, 7], list(range(10))])
def test_drop_rows_matches_filter(gone: list[int]) -> None:
    frame = pl.DataFrame({"a": list(range(10)), "b": [str(k) for k in range(10)]})
    keep = np.ones(10, dtype=bool)
    keep[gone] = False
    assert drop_rows(frame, keep).equals(frame.filter(pl.Series(keep)))


def test_regression_misaligned_chunks_in_category_check(tmp_path: Path) -> None:
    # found by test_typed_and_text_paths_agree: a clean item column keeps its chunks while
    # the category column is recomputed, so their chunk boundaries differed
    p = tmp_path / "log.csv"
    p.write_text(f"{HEADER}\n1,1,1,view,1000\n1,1,-1,view,1000\n1,1,-1,view,1000\n1,2,1,view,1000\n")
    log = _validate(p, on_error="drop")
    assert log.dropped == {"negative_category": 2}
    assert log.frame.rows() == [(1, 1, 1, "view", 1000), (1, 2, 1, "view", 1000)]
