"""read_log: formats, header and delimiter detection, column maps, and one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from gnnrec.data.ingest import parse_column_map, read_log
from gnnrec.errors import ConfigError, DataError
from tests.conftest import get_case, write_case_csv

ROWS = [
    ("1", "10", "100", "pv", "1511544070"),
    ("1", "11", "100", "buy", "1511544080"),
    ("2", "10", "100", "cart", "1511544090"),
]
CANON = ["user", "item", "category", "behavior", "timestamp"]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _text(rows: list[tuple[str, ...]], sep: str, header: list[str] | None = None) -> list[str]:
    out = [sep.join(header)] if header is not None else []
    return out + [sep.join(r) for r in rows]


def _values(frame: pl.DataFrame) -> list[tuple[str, ...]]:
    """Rows of the canonical columns as text, whatever dtype the reader chose."""
    cols = [c for c in CANON if c in frame.columns]
    return [tuple(str(v) for v in row) for row in frame.select(cols).iter_rows()]


@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
@pytest.mark.parametrize("header", [True, False])
def test_delimiters_with_and_without_header(tmp_path: Path, sep: str, header: bool) -> None:
    p = _write(tmp_path / "log.txt", _text(ROWS, sep, CANON if header else None))
    raw = read_log(p)
    assert raw.frame.columns == [*CANON, "_row"]
    assert _values(raw.frame) == ROWS
    assert raw.frame["_row"].to_list() == [1, 2, 3]  # data rows, header excluded
    assert raw.meta["delimiter"] == sep
    assert raw.meta["has_header"] is header
    assert raw.source == str(p)


def test_headerless_five_columns_are_positional_and_meta_records_positions(tmp_path: Path) -> None:
    raw = read_log(_write(tmp_path / "log.csv", _text(ROWS, ",")))
    assert raw.meta["columns"] == {"user": 0, "item": 1, "category": 2, "behavior": 3, "timestamp": 4}
    # clean integer columns are parsed while reading; the text column stays text
    assert raw.frame.schema["user"] == pl.Int64
    assert raw.frame.schema["behavior"] == pl.String


def test_headerless_two_columns_are_user_item(tmp_path: Path) -> None:
    raw = read_log(_write(tmp_path / "pairs.txt", ["0 5", "0 7", "3 5"]))
    assert raw.meta["delimiter"] == " "
    assert raw.frame.columns == ["user", "item", "_row"]
    assert _values(raw.frame) == [("0", "5"), ("0", "7"), ("3", "5")]


@pytest.mark.parametrize("ncols", [3, 4, 6])
def test_headerless_ambiguous_column_count_asks_for_a_map(tmp_path: Path, ncols: int) -> None:
    p = _write(tmp_path / "log.csv", [",".join(str(k) for k in range(ncols))] * 2)
    with pytest.raises(DataError) as err:
        read_log(p)
    assert str(err.value) == (
        f"{p}: headerless file with {ncols} column(s): cannot tell which column is which; pass a "
        "column map, e.g. columns={'user': 0, 'item': 1, 'timestamp': 2} "
        "(CLI: --map user=0 --map item=1 --map timestamp=2)"
    )


def test_headerless_map_by_position(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.tsv", ["7\t1\t20190616\t42", "8\t3\t20190617\t43"])
    raw = read_log(p, columns={"user": 3, "item": 0, "behavior": 1})
    assert raw.meta["format"] == "tsv"
    assert raw.frame.columns == ["user", "item", "behavior", "_row"]
    assert _values(raw.frame) == [("42", "7", "1"), ("43", "8", "3")]


def test_header_with_other_names_and_order_via_map_extra_columns_ignored(tmp_path: Path) -> None:
    lines = ["time,uid,junk,iid", "5,1,x,9", "6,2,y,8"]
    raw = read_log(
        _write(tmp_path / "log.csv", lines), columns={"user": "uid", "item": "IID", "timestamp": "time"}
    )
    assert raw.frame.columns == ["user", "item", "timestamp", "_row"]
    assert _values(raw.frame) == [("1", "9", "5"), ("2", "8", "6")]
    assert raw.meta["columns"] == {"user": "uid", "item": "iid", "timestamp": "time"}


def test_header_canonical_names_any_case_and_order_plus_split(tmp_path: Path) -> None:
    lines = ["Timestamp,ITEM,user,split", "5,9,1,train", "6,8,2,test"]
    raw = read_log(_write(tmp_path / "log.csv", lines))
    assert raw.frame.columns == ["user", "item", "timestamp", "split", "_row"]
    assert raw.frame["split"].to_list() == ["train", "test"]


def test_header_without_canonical_names_is_a_missing_column(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.csv", ["user_id\titem_id\ttime", "1\t2\t3"])
    with pytest.raises(DataError) as err:
        read_log(p)
    assert str(err.value) == (
        f"{p}: missing required column 'user' (columns found: 'user_id', 'item_id', 'time'); "
        "name it in the header or pass a column map"
    )


def test_missing_item_in_headerless_map(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.csv", ["1,2,3", "4,5,6"])
    with pytest.raises(DataError) as err:
        read_log(p, columns={"user": 0, "timestamp": 2})
    assert str(err.value) == (
        f"{p}: missing required column 'item' (columns found: 3 unnamed column(s)); "
        "name it in the header or pass a column map"
    )


def test_mapped_name_not_in_header(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.csv", ["a,b", "1,2"])
    with pytest.raises(DataError) as err:
        read_log(p, columns={"user": "uid", "item": "b"})
    assert str(err.value) == f"{p}: column 'uid' (mapped to user) not found; columns found: 'a', 'b'"


def test_map_position_out_of_range(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.csv", ["1,2", "3,4"])
    with pytest.raises(DataError) as err:
        read_log(p, columns={"user": 0, "item": 5})
    assert str(err.value) == f"{p}: column map: item=5 but the file has 2 columns (positions 0..1)"


def test_map_unknown_canonical_name_is_a_config_error(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.csv", ["1,2"])
    with pytest.raises(ConfigError) as err:
        read_log(p, columns={"usr": 0})
    assert str(err.value) == (
        "column map: unknown column 'usr' (expected one of user, item, category, behavior, timestamp, split)"
    )


def test_parse_column_map() -> None:
    assert parse_column_map(["user=user_id", "item=2", " timestamp = time "]) == {
        "user": "user_id",
        "item": 2,
        "timestamp": "time",
    }
    with pytest.raises(ConfigError) as err:
        parse_column_map(["user"])
    assert str(err.value) == "--map expects canonical=column, got 'user'"


def test_gzip_round_trip_matches_plain(tmp_path: Path) -> None:
    plain = read_log(write_case_csv("base", tmp_path / "log.csv"))
    gz = read_log(write_case_csv("base", tmp_path / "log.csv.gz"))
    assert gz.frame.equals(plain.frame)
    assert gz.frame.height == 15


def test_gzip_detected_by_content_not_suffix(tmp_path: Path) -> None:
    p = tmp_path / "log.dat"
    p.write_bytes(gzip.compress(b"user,item\n1,2\n"))
    assert _values(read_log(p).frame) == [("1", "2")]


def test_parquet_round_trip_keeps_types(tmp_path: Path) -> None:
    frame = get_case("base")
    p = tmp_path / "log.parquet"
    frame.write_parquet(p)
    raw = read_log(p)
    assert raw.meta["format"] == "parquet"
    assert raw.frame.drop("_row").equals(frame)
    assert raw.frame["_row"].to_list() == list(range(1, 16))


def test_parquet_detected_by_content_and_mapped_by_name(tmp_path: Path) -> None:
    p = tmp_path / "log.bin"
    pl.DataFrame({"uid": [3, 4], "iid": [5, 6]}).write_parquet(p)
    raw = read_log(p, columns={"user": "uid", "item": "iid"})
    assert raw.frame.columns == ["user", "item", "_row"]
    assert raw.frame["user"].to_list() == [3, 4]


def test_bad_value_after_inference_window_falls_back_to_text(tmp_path: Path) -> None:
    # 10,050 clean rows, then one bad id: the typed read fails and the text read keeps
    # the exact value for validation to report
    lines = ["user,item"] + [f"{k},{k}" for k in range(10_050)] + ["12a,3"]
    raw = read_log(_write(tmp_path / "log.csv", lines))
    assert raw.frame.schema["user"] == pl.String
    assert raw.frame["user"][-1] == "12a"
    assert raw.frame["_row"][-1] == 10_051


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.csv"
    with pytest.raises(DataError) as err:
        read_log(p)
    assert str(err.value) == f"{p}: file not found"


@pytest.mark.parametrize("content", [b"", b"\n\n", b"user,item\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "log.csv"
    p.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_log(p)
    assert str(err.value) == f"{p}: file is empty (no data rows)"


def test_empty_parquet(tmp_path: Path) -> None:
    p = tmp_path / "log.parquet"
    pl.DataFrame({"user": [], "item": []}, schema={"user": pl.Int64, "item": pl.Int64}).write_parquet(p)
    with pytest.raises(DataError) as err:
        read_log(p)
    assert str(err.value) == f"{p}: file is empty (no data rows)"


def test_corrupt_gzip(tmp_path: Path) -> None:
    p = tmp_path / "log.csv.gz"
    p.write_bytes(b"\x1f\x8b" + b"not really gzip at all")
    with pytest.raises(DataError) as err:
        read_log(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: cannot read file: corrupt gzip data (")
    assert "\n" not in msg


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(("".join(f"{k},{k + 1}\n" for k in range(100_000))).encode())
    p = tmp_path / "log.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        read_log(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: corrupt gzip data: ")
    assert "\n" not in msg


def test_corrupt_parquet(tmp_path: Path) -> None:
    p = tmp_path / "log.parquet"
    p.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(DataError) as err:
        read_log(p)
    assert str(err.value).startswith(f"{p}: cannot read Parquet file: ")
    assert "\n" not in str(err.value)


def test_ragged_line_is_a_one_line_error(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.csv", ["user,item", "1,2", "3,4,5,6"])
    with pytest.raises(DataError) as err:
        read_log(p)
    assert str(err.value).startswith(f"{p}: cannot parse file: ")
    assert "\n" not in str(err.value)


def test_bad_format_and_delimiter_are_config_errors(tmp_path: Path) -> None:
    p = _write(tmp_path / "log.csv", ["1,2"])
    with pytest.raises(ConfigError) as err:
        read_log(p, format="xlsx")
    assert str(err.value) == "unknown log format 'xlsx' (expected auto, csv, tsv or parquet)"
    with pytest.raises(ConfigError) as err:
        read_log(p, delimiter=",,")
    assert str(err.value) == "a delimiter must be a single character, got ',,'"


def test_explicit_delimiter_and_header_flags(tmp_path: Path) -> None:
    # "user;item" would be detected as a header; has_header=False reads it as data
    p = _write(tmp_path / "log.csv", ["user;item", "7;8"])
    raw = read_log(p, delimiter=";", has_header=False)
    assert _values(raw.frame) == [("user", "item"), ("7", "8")]
    assert raw.frame["_row"].to_list() == [1, 2]
    raw = read_log(_write(tmp_path / "t.tsv", ["user\titem", "1\t2"]), delimiter="tab")
    assert _values(raw.frame) == [("1", "2")]


def test_blank_line_is_a_null_row_with_its_row_number(tmp_path: Path) -> None:
    raw = read_log(_write(tmp_path / "log.csv", ["user,item", "1,2", "", "3,4"]))
    assert raw.frame["user"].to_list() == [1, None, 3]
    assert raw.frame["_row"].to_list() == [1, 2, 3]


def test_numeric_behaviour_codes_stay_text(tmp_path: Path) -> None:
    raw = read_log(_write(tmp_path / "log.csv", ["user,item,behavior", "1,2,01", "1,3,4"]))
    assert raw.frame["behavior"].to_list() == ["01", "4"]
