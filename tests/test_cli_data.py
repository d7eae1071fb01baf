"""`gnnrec data validate` and `gnnrec run` on bad logs: one exact `error:` line, exit status 2;
under `--on-error drop` every dropped row is counted by reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnnrec.cli import main

HEADER = "user,item,category,behavior,timestamp\n"
GOOD = "1,10,100,pv,1511544070\n"

CASES = {
    "non_integer_id": (GOOD + "2,x11,100,buy,1511544071\n", "row 2, column 'item': item id is not an integer (got 'x11')"),
    "bad_timestamp": (GOOD + "2,11,100,buy,abc\n", "row 2, column 'timestamp': unparseable timestamp (got 'abc')"),
    "unknown_behavior": (
        GOOD + "1,10,100,click,1511544070\n",
        "row 2, column 'behavior': unknown behaviour (expected one of view, cart, fav, buy; "
        "map other values with data.behavior_map) (got 'click')",
    ),
    "duplicate_row": (GOOD + GOOD, "row 2: duplicate of row 1"),
    "conflicting_category": (
        GOOD + "2,10,101,pv,1511544071\n",
        "row 2, column 'category': item 10 already has category 100 (row 1) (got '101')",
    ),
    "null_id": (GOOD + "1,,100,pv,1511544070\n", "row 2, column 'item': missing item id"),
    "negative_id": (GOOD + "-1,10,100,pv,1511544070\n", "row 2, column 'user': user id is negative (got '-1')"),
    "timestamp_out_of_range": (
        GOOD + "1,10,100,pv,99999999999\n",
        "row 2, column 'timestamp': timestamp outside the valid range [0, 4102444800) in Unix seconds "
        "(got '99999999999')",
    ),
}


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def single_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("reason", sorted(CASES))
def test_validate_fails_with_exact_message(reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body, message = CASES[reason]
    path = tmp_path / "log.csv"
    path.write_text(HEADER + body)
    code, _, err = cli(["data", "validate", str(path), "--behavior-map", "pv=view"], capsys)
    assert code == 2
    assert single_error(err) == f"error: {path}, {message}"


@pytest.mark.parametrize("reason", sorted(CASES))
def test_drop_counts_every_reason(reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body, _ = CASES[reason]
    path = tmp_path / "log.csv"
    path.write_text(HEADER + body)
    code, out, _ = cli(["data", "validate", str(path), "--behavior-map", "pv=view", "--on-error", "drop"], capsys)
    assert code == 0
    assert "rows        1" in out
    assert f"{reason} 1" in out


def test_file_level_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    code, _, err = cli(["data", "validate", str(missing)], capsys)
    assert code == 2 and single_error(err) == f"error: {missing}: file not found"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = cli(["data", "validate", str(empty)], capsys)
    assert code == 2 and single_error(err) == f"error: {empty}: file is empty (no data rows)"
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("usr,item\n1,10\n")
    code, _, err = cli(["data", "validate", str(nocol)], capsys)
    assert code == 2
    assert single_error(err) == (
        f"error: {nocol}: missing required column 'user' (columns found: 'usr', 'item'); "
        "name it in the header or pass a column map"
    )
    # ...which the column map fixes
    code, out, _ = cli(["data", "validate", str(nocol), "--map", "user=usr"], capsys)
    assert code == 0 and "users       1" in out


def test_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.tsv"
    path.write_text("7\t10\t100\tpv\t1511544070\n8\t11\t100\tbuy\t1511544071\n8\t10\t100\tcart\t1511544072\n")
    code, out, _ = cli(["data", "validate", str(path), "--no-header", "--behavior-map", "pv=view"], capsys)
    assert code == 0
    assert "rows        3" in out
    assert "users       2" in out
    assert "items       2" in out
    assert "view 1, cart 1, fav 0, buy 1" in out
    assert "2017-11-24T17:21:10Z .. 2017-11-24T17:21:12Z" in out


def test_run_reports_dropped_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gnnrec run` on a generic log with on_error: drop records the counts in metrics.json."""
    rows = [f"{u},{10 + (u * 7 + j) % 12},{100 + ((u * 7 + j) % 12) % 3},buy,{1511544070 + j}" for u in range(12) for j in range(6)]
    rows += ["3,x,100,buy,1511544070", "4,10,100,buy,notatime", rows[0]]
    log = tmp_path / "log.csv"
    log.write_text(HEADER + "\n".join(rows) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{dataset: file, path: '{log}', on_error: drop}}\n"
        "model: {name: pop}\ntrain: {epochs: 1}\n"
    )
    code, _, _ = cli(["run", str(cfg), "--out", str(tmp_path / "run"), "-q"], capsys)
    assert code == 0
    m = json.loads((tmp_path / "run/metrics.json").read_text())
    assert m["dropped_rows"] == {"non_integer_id": 1, "bad_timestamp": 1, "duplicate_row": 1}
    assert m["data"]["events"] == 72
    log_text = (tmp_path / "run/run.log").read_text()
    assert "dropped 1 rows: duplicate_row" in log_text
