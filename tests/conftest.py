"""Shared test fixtures: a labelled registry of tiny hand-written behaviour logs.

Every case is a function returning a *fresh* polars DataFrame with canonical columns typed
like a validated log (``user``/``item``/``category`` Int64, ``behavior`` Utf8 vocabulary
names, ``timestamp`` Int64 Unix seconds, optional ``split`` Utf8), in "file" order. Cases
carry tags, so a test can ask for what it exercises (the idea of DGL's ``graph_cases``)::

    from tests.conftest import case_names, get_case, case_table

    @pytest.mark.parametrize("name", case_names("valid"))
    def test_something(name):
        table = case_table(name)          # validate + build with a default DataConfig
        ...

Helpers: :func:`get_case`, :func:`case_names`, :func:`case_tags`, :func:`case_raw_log`,
:func:`case_valid_log`, :func:`case_table`, :func:`write_case_csv`; fixtures ``log_case``
(the :func:`get_case` factory), ``base_log`` and ``base_table``.

The registry is shared by every test package: add cases, do not change existing ones
(other tests pin their exact numbers). Case names are unique.

The ``base`` case (tags ``valid``, ``multi_behavior``, ``timestamp_tie``, ``cold_user``,
``two_categories``), 15 rows::

    row user item cat behavior   ts      note
      1    1   10 100 view     1000
      2    1   10 100 cart     1010
      3    1   10 100 buy      1020      tie: user 1, rows 3 and 4 share ts 1020
      4    1   11 100 view     1020
      5    1   14 200 view     1030
      6    2   11 100 view     1000
      7    2   12 100 fav      1040
      8    2   12 100 buy      1050
      9    2   15 200 view     1060
     10    3   14 200 view     1005
     11    3   15 200 cart     1015
     12    3   15 200 buy      1025      tie: user 3, rows 12 and 13 share ts 1025
     13    3   16 200 view     1025
     14    3   13 100 view     1035
     15    4   16 200 view     1070      cold user: one event, no buy

    users 1..4 (4), items 10..16 (7), categories 100 (items 10-13) and 200 (items 14-16);
    events per behaviour: view 9, cart 2, fav 1, buy 3; buys: (1,10), (2,12), (3,15).
    Contiguous ids (sorted raw ids): user u -> u-1, item i -> i-10, category 100 -> 0,
    200 -> 1; item_category = [0, 0, 0, 0, 1, 1, 1].

Other cases: ``no_timestamp``, ``no_category``, ``no_behavior`` (base minus a column),
``given_split`` (base plus a ``split`` column), ``item_two_categories`` and
``duplicate_rows`` (base plus one invalid row each, tag ``invalid``), ``kcore`` (a k-core
cascade with a known fixed point) and ``migration`` (a user whose interest moves from one
category to another over time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from gnnrec.data.types import ROW_COLUMN, InteractionTable, RawLog, ValidLog

_SCHEMA: dict[str, Any] = {
    "user": pl.Int64,
    "item": pl.Int64,
    "category": pl.Int64,
    "behavior": pl.String,
    "timestamp": pl.Int64,
    "split": pl.String,
}


@dataclass(frozen=True)
class LogCase:
    """A named, tagged tiny log."""

    name: str
    tags: frozenset[str]
    build: Callable[[], pl.DataFrame]
    doc: str


CASES: dict[str, LogCase] = {}


def register_case(
    name: str, *tags: str
) -> Callable[[Callable[[], pl.DataFrame]], Callable[[], pl.DataFrame]]:
    """Decorator adding a frame-building function to :data:`CASES` (names are unique)."""

    def deco(fn: Callable[[], pl.DataFrame]) -> Callable[[], pl.DataFrame]:
        if name in CASES:
            raise ValueError(f"log case '{name}' is already registered")
        CASES[name] = LogCase(name=name, tags=frozenset(tags), build=fn, doc=(fn.__doc__ or "").strip())
        return fn

    return deco


def _frame(rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={c: _SCHEMA[c] for c in columns}, orient="row")


_BASE_COLUMNS = ("user", "item", "category", "behavior", "timestamp")
_BASE_ROWS: list[tuple[Any, ...]] = [
    (1, 10, 100, "view", 1000),
    (1, 10, 100, "cart", 1010),
    (1, 10, 100, "buy", 1020),
    (1, 11, 100, "view", 1020),
    (1, 14, 200, "view", 1030),
    (2, 11, 100, "view", 1000),
    (2, 12, 100, "fav", 1040),
    (2, 12, 100, "buy", 1050),
    (2, 15, 200, "view", 1060),
    (3, 14, 200, "view", 1005),
    (3, 15, 200, "cart", 1015),
    (3, 15, 200, "buy", 1025),
    (3, 16, 200, "view", 1025),
    (3, 13, 100, "view", 1035),
    (4, 16, 200, "view", 1070),
]


@register_case("base", "valid", "multi_behavior", "timestamp_tie", "cold_user", "two_categories")
def _base() -> pl.DataFrame:
    """4 users, 7 items, 2 categories, all four behaviours, two timestamp ties, a cold user."""
    return _frame(_BASE_ROWS, _BASE_COLUMNS)


@register_case("no_timestamp", "valid", "multi_behavior", "cold_user", "two_categories", "no_timestamp")
def _no_timestamp() -> pl.DataFrame:
    """``base`` without the timestamp column (no two rows become equal)."""
    return _base().drop("timestamp")


@register_case("no_category", "valid", "multi_behavior", "timestamp_tie", "cold_user", "no_category")
def _no_category() -> pl.DataFrame:
    """``base`` without the category column."""
    return _base().drop("category")


@register_case("no_behavior", "valid", "timestamp_tie", "cold_user", "two_categories", "no_behavior")
def _no_behavior() -> pl.DataFrame:
    """``base`` without the behaviour column: every event is the default behaviour (view)."""
    return _base().drop("behavior")


@register_case("given_split", "valid", "multi_behavior", "cold_user", "two_categories", "given_split")
def _given_split() -> pl.DataFrame:
    """``base`` plus a dataset split: per user, the last buy is test, the row before it
    valid (when it exists), the cold user's only event unused, the rest train.

    split by row: 1-2 train, 3 test, 4-5 train, 6 train, 7 valid, 8 test, 9 train,
    10 train, 11 valid, 12 test, 13-14 train, 15 unused.
    """
    split = [
        "train", "train", "test", "train", "train",
        "train", "valid", "test", "train",
        "train", "valid", "test", "train", "train",
        "unused",
    ]  # fmt: skip
    return _base().with_columns(pl.Series("split", split, dtype=pl.String))


@register_case("item_two_categories", "invalid", "conflicting_category", "multi_behavior")
def _item_two_categories() -> pl.DataFrame:
    """``base`` plus row 16: user 2 views item 10 under category 200 at ts 1080 (item 10's
    first row, row 1, says 100), the ``conflicting_category`` row."""
    return pl.concat([_base(), _frame([(2, 10, 200, "view", 1080)], _BASE_COLUMNS)])


@register_case("duplicate_rows", "invalid", "duplicate_row", "multi_behavior")
def _duplicate_rows() -> pl.DataFrame:
    """``base`` plus row 16, an exact copy of row 2 (user 1 carts item 10 at ts 1010)."""
    return pl.concat([_base(), _frame([_BASE_ROWS[1]], _BASE_COLUMNS)])


@register_case("kcore", "valid", "kcore")
def _kcore() -> pl.DataFrame:
    """9 view events whose 2-core (min 2 per user and per item) needs two rounds.

    Events (user, item): (1,10) (1,11) (2,10) (2,12) (3,12) (4,11) (4,13) (5,10) (5,11).
    With min_user_interactions = min_item_interactions = 2: round 1 removes user 3
    (1 row, kcore_user), then items 12 and 13 (2 rows, kcore_item); round 2 removes users
    2 and 4, now down to one event each (2 rows, kcore_user). Fixed point: users 1 and 5,
    items 10 and 11, 4 rows; dropped {"kcore_user": 3, "kcore_item": 2}. A single round
    would wrongly keep (2,10) and (4,11).
    Items 10, 11 are category 100; 12, 13 category 200.
    """
    pairs = [(1, 10), (1, 11), (2, 10), (2, 12), (3, 12), (4, 11), (4, 13), (5, 10), (5, 11)]
    rows = [(u, i, 100 if i < 12 else 200, "view", 1000 + 10 * k) for k, (u, i) in enumerate(pairs)]
    return _frame(rows, _BASE_COLUMNS)


@register_case("migration", "valid", "migration", "multi_behavior", "two_categories")
def _migration() -> pl.DataFrame:
    """User 1 moves from category 100 (items 10-12, ts 1000-1020) to category 200
    (items 20-22, ts 2000-2030, including a buy of 21); user 2 stays in category 100
    throughout (items 10-12), user 3 stays in 200 (items 20-22)."""
    rows = [
        (1, 10, 100, "view", 1000),
        (1, 11, 100, "view", 1010),
        (1, 12, 100, "buy", 1020),
        (1, 20, 200, "view", 2000),
        (1, 21, 200, "cart", 2010),
        (1, 21, 200, "buy", 2020),
        (1, 22, 200, "view", 2030),
        (2, 10, 100, "view", 1005),
        (2, 11, 100, "buy", 1500),
        (2, 12, 100, "view", 2500),
        (3, 20, 200, "view", 1100),
        (3, 22, 200, "fav", 1900),
        (3, 21, 200, "buy", 2600),
    ]
    return _frame(rows, _BASE_COLUMNS)


def get_case(name: str) -> pl.DataFrame:
    """A fresh copy of the named case's frame."""
    try:
        return CASES[name].build()
    except KeyError:
        raise KeyError(f"unknown log case '{name}' (known: {', '.join(sorted(CASES))})") from None


def case_names(*tags: str) -> list[str]:
    """Names of the cases carrying every given tag (all cases without tags), sorted."""
    return sorted(name for name, case in CASES.items() if set(tags) <= case.tags)


def case_tags(name: str) -> frozenset[str]:
    """The tags of a case."""
    return CASES[name].tags


def case_raw_log(name: str, **kwargs: Any) -> RawLog:
    """The case as a :class:`RawLog` (typed values, ``_row`` = 1..n, source ``case:NAME``);
    keyword arguments go to :class:`RawLog` (``behavior_map``, ``target_behavior``, ...)."""
    frame = get_case(name).with_row_index(ROW_COLUMN, offset=1)
    kwargs.setdefault("source", f"case:{name}")
    return RawLog(frame=frame, **kwargs)


def case_valid_log(name: str, cfg: Any = None) -> ValidLog:
    """The case validated with ``cfg`` (default: ``DataConfig(on_error="drop")``)."""
    from gnnrec.config import DataConfig
    from gnnrec.data.schema import validate_log

    return validate_log(case_raw_log(name), cfg if cfg is not None else DataConfig(on_error="drop"))


def case_table(name: str, cfg: Any = None) -> InteractionTable:
    """The case validated and built into an :class:`InteractionTable` with ``cfg``
    (default: ``DataConfig(on_error="drop")``)."""
    from gnnrec.config import DataConfig
    from gnnrec.data.interactions import build_interactions

    cfg = cfg if cfg is not None else DataConfig(on_error="drop")
    return build_interactions(case_valid_log(name, cfg), cfg)


def write_case_csv(name: str, path: str | Path, *, header: bool = True, delimiter: str = ",") -> Path:
    """Write a case as a CSV file (``.gz`` suffix: gzip-compressed) and return the path."""
    p = Path(path)
    text = _csv_text(get_case(name), header=header, delimiter=delimiter)
    if p.suffix == ".gz":
        import gzip

        p.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        p.write_text(text)
    return p


def _csv_text(frame: pl.DataFrame, *, header: bool, delimiter: str) -> str:
    lines = [delimiter.join(frame.columns)] if header else []
    for row in frame.iter_rows():
        lines.append(delimiter.join("" if v is None else str(v) for v in row))
    return "\n".join(lines) + "\n"


@pytest.fixture
def log_case() -> Callable[[str], pl.DataFrame]:
    """Factory fixture: ``log_case("base")`` returns a fresh frame of that case."""
    return get_case


@pytest.fixture
def base_log() -> pl.DataFrame:
    """The ``base`` case frame."""
    return get_case("base")


@pytest.fixture
def base_table() -> InteractionTable:
    """The ``base`` case as an interaction table (default config)."""
    return case_table("base")
