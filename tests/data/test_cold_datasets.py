"""Readers touched by the cold-start / item-feature work: amazon-grocery, ml-100k item table."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnnrec.config import DataConfig
from gnnrec.data.datasets import load_dataset
from gnnrec.errors import DataError
from tests.data.test_datasets import _fake_ml100k, _write


def _fake_grocery(root: Path, header: str = "user_id\titem_id\ttime") -> None:
    folder = root / "amazon-grocery-rechorus"
    _write(folder / "train.csv.gz", f"{header}\n7\t1\t965779200\n8\t2\t1068249600\n7\t2\t1073433600\n")
    _write(
        folder / "item_meta.csv.gz",
        "item_id\ti_category\tr_complement\tr_substitute\n1\t0\t[2]\t[]\n2\t21\t[]\t[1]\n",
    )


def test_amazon_grocery_reader(tmp_path: Path) -> None:
    _fake_grocery(tmp_path)
    raw = load_dataset(DataConfig(dataset="amazon-grocery", root=str(tmp_path)))
    assert raw.frame.columns == ["user", "item", "category", "timestamp", "_row"]
    # rows numbered after the header; category 0 ("none") is kept as its own category
    assert raw.frame.rows() == [
        ("7", "1", "0", "965779200", 1),
        ("8", "2", "21", "1068249600", 2),
        ("7", "2", "21", "1073433600", 3),
    ]
    assert raw.target_behavior == "view"
    assert raw.meta["item_relations"].rows() == [("1", "[2]", "[]"), ("2", "[]", "[1]")]


def test_amazon_grocery_reader_checks_the_header(tmp_path: Path) -> None:
    _fake_grocery(tmp_path, header="u\ti\tt")
    with pytest.raises(DataError, match="train.csv.gz: expected the header line"):
        load_dataset(DataConfig(dataset="amazon-grocery", root=str(tmp_path)))


def test_ml100k_item_table_has_title_and_year(tmp_path: Path) -> None:
    _fake_ml100k(tmp_path)
    raw = load_dataset(DataConfig(dataset="ml-100k", root=str(tmp_path)))
    assert raw.meta["item_features"].rows() == [
        ("10", "Café (1990)", 1990),
        ("11", "B (1991)", 1991),
        ("12", "C (1992)", None),  # no release date
        ("13", "D (1993)", None),
    ]
