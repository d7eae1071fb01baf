"""The SR-GNN-format session reader (diginetica-session / tmall-session) on tiny files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from gnnrec.config import DataConfig, SplitConfig
from gnnrec.data.datasets import load_dataset
from gnnrec.data.interactions import build_interactions
from gnnrec.data.schema import validate_log
from gnnrec.data.splits import make_split
from gnnrec.data.types import TEST, TRAIN
from gnnrec.errors import DataError
from gnnrec.eval.evaluator import build_targets


def write(root: Path, train: str, test: str, folder: str = "diginetica-session") -> Path:
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    (d / "train_sessions.txt.gz").write_bytes(gzip.compress(train.encode()))
    (d / "test.txt.gz").write_bytes(gzip.compress(test.encode()))
    return d


TRAIN_TXT = "1 2\n3 4 5\n6\n\n2 3\n"  # line 3: a length-1 session, line 4 blank
TEST_TXT = "1 2 3\t4\n1 2\t3\n9 1\t2\n7\t8\n9\t1\n"  # 9 and 7 unseen in training, 8 too


def cfg(root: Path, name: str = "diginetica-session") -> DataConfig:
    return DataConfig(dataset=name, root=str(root), behaviors=("context", "click"))


def test_reader_exact(tmp_path: Path) -> None:
    write(tmp_path, TRAIN_TXT, TEST_TXT)
    raw = load_dataset(cfg(tmp_path))
    assert raw.meta["dropped"] == {
        "blank_line": 1,
        "session_too_short": 1,
        "test_target_not_in_train": 1,  # line 4: target 8
        "test_item_not_in_train": 2,  # item 9 in lines 3 and 5
        "test_prefix_empty": 1,  # line 5: prefix '9' becomes empty
    }
    f = raw.frame.sort(["user", "timestamp"])
    rows = list(zip(f["user"], f["item"], f["behavior"], f["timestamp"], f["split"]))
    # 5 training lines: test users are 5 + line
    assert rows == [
        (1, 1, "click", 1, "train"),
        (1, 2, "click", 2, "train"),
        (2, 3, "click", 1, "train"),
        (2, 4, "click", 2, "train"),
        (2, 5, "click", 3, "train"),
        (5, 2, "click", 1, "train"),
        (5, 3, "click", 2, "train"),
        (6, 1, "context", 1, "train"),
        (6, 2, "context", 2, "train"),
        (6, 3, "context", 3, "train"),
        (6, 4, "click", 4, "test"),
        (7, 1, "context", 1, "train"),
        (7, 2, "context", 2, "train"),
        (7, 3, "click", 3, "test"),
        (8, 1, "context", 1, "train"),  # 9 removed, positions renumbered
        (8, 2, "click", 2, "test"),
    ]


def test_protocol_through_split_and_targets(tmp_path: Path) -> None:
    write(tmp_path, TRAIN_TXT, TEST_TXT, folder="tmall-session")
    c = cfg(tmp_path, "tmall-session")
    table = build_interactions(validate_log(load_dataset(c), c), c)
    # the reader's protocol drops reach the table's counts (metrics.json dropped_rows)
    assert table.dropped["session_too_short"] == 1 and table.dropped["test_item_not_in_train"] == 2
    split = make_split(table, SplitConfig(mode="given", valid_from_train=False), seed=0)
    assert table.behaviors[split.target] == "click"
    assert int((split.assign == TEST).sum()) == 3
    assert int((split.assign == TRAIN).sum()) == 13
    t = build_targets(table, split, "test", "none")
    assert t.num_users == 3 and t.exclude is None
    # every held-out target comes after its user's context
    test_rows = np.flatnonzero(split.assign == TEST)
    for r in test_rows:
        same = (table.user == table.user[r]) & (split.assign == TRAIN)
        assert (table.ts[same] < table.ts[r]).all()


@pytest.mark.parametrize(
    ("train", "test", "file", "row", "column", "value"),
    [
        ("1 2\n3 x 5\n", "1\t2\n", "train_sessions.txt.gz", 2, "session", "x"),
        ("1 2\n0 5\n", "1\t2\n", "train_sessions.txt.gz", 2, "session", "0"),
        ("1 2\n", "1\t2\n1 2\n", "test.txt.gz", 2, "target", "1 2"),
        ("1 2\n", "1\t2\n1\tb\n", "test.txt.gz", 2, "target", "b"),
        ("1 2\n", "1\t2\n1 -3\t2\n", "test.txt.gz", 2, "prefix", "-3"),
    ],
)
def test_bad_rows_name_file_row_column(
    tmp_path: Path, train: str, test: str, file: str, row: int, column: str, value: str
) -> None:
    write(tmp_path, train, test)
    with pytest.raises(DataError) as err:
        load_dataset(cfg(tmp_path))
    msg = str(err.value)
    assert file in msg and f"row {row}" in msg and f"column '{column}'" in msg and value in msg


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(cfg(tmp_path))
