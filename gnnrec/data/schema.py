"""Validate a :class:`RawLog` into a typed :class:`ValidLog`.

Every row is checked once, with vectorised polars expressions; each failed check has a
reason key (the keys of ``ValidLog.dropped``), checked in this order (a row failing several
checks is counted under the first):

==========================  ===============================================================
``blank_row``               every column empty (a blank line): always skipped, counted
``null_id``                 user or item missing / empty
``non_integer_id``          user or item not an integer (ids are non-negative integers)
``negative_id``             user or item below 0
``null_category``           category missing (when the log has a category column)
``non_integer_category``    category not an integer
``negative_category``       category below 0
``unknown_behavior``        behaviour not in ``data.behaviors`` after ``behavior_map``
``bad_timestamp``           timestamp missing or unparseable (accepted: integer or float Unix
                            seconds, ISO-8601 date / datetime, optionally with a UTC offset)
``timestamp_out_of_range``  outside ``data.time_range`` (default [1970-01-01, 2100-01-01))
``bad_split``               ``split`` value not one of train / valid / test / unused
``duplicate_row``           same (user, item, category, behavior, timestamp) as an earlier
                            valid row; the first is kept
``conflicting_category``    item seen earlier with another category; an item's category is
                            the one of its first valid row
==========================  ===============================================================

``data.on_error = "fail"`` raises a :class:`DataError` at the first offending row in file
order (file, 1-based row, column, raw value); ``"drop"`` removes offending rows, counts them
per reason and logs one warning line per reason on the ``gnnrec.data`` logger.

Cost (the ingest benchmark needs millions of rows per second):

* typed integer columns (CSV parsed as integers by the reader, Parquet) whose null count
  and min / max are in range get no per-row check at all;
* other columns are checked in one parallel ``select`` producing a nullable reason code per
  column; the null counts of those codes (metadata) say whether any row failed;
* behaviour values are mapped per distinct value, not per row;
* duplicates: 32-bit row fingerprints are sorted and only rows sharing a fingerprint are
  compared exactly; conflicting categories: an item-indexed table, then an exact check on
  the rows of items that look conflicting;
* slower fallbacks (whitespace stripping, float / ISO-8601 timestamps), locating the first
  bad row and per-reason counts run only when some row failed; a few dropped rows are cut
  out with zero-copy slices.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from gnnrec.config import DataConfig
from gnnrec.data.types import (
    CANONICAL_COLUMNS,
    GIVEN_CODES,
    REQUIRED_COLUMNS,
    ROW_COLUMN,
    SPLIT_COLUMN,
    RawLog,
    ValidLog,
)
from gnnrec.errors import ConfigError, DataError

logger = logging.getLogger("gnnrec.data")

#: valid timestamps by default: [1970-01-01, 2100-01-01) in Unix seconds
DEFAULT_TIME_RANGE: tuple[int, int] = (0, 4102444800)

#: (reason, column) of every reason code; code = position + 1, 0 = valid
_CODES: tuple[tuple[str, str | None], ...] = (
    ("blank_row", None),
    ("null_id", "user"),
    ("non_integer_id", "user"),
    ("negative_id", "user"),
    ("null_id", "item"),
    ("non_integer_id", "item"),
    ("negative_id", "item"),
    ("null_category", "category"),
    ("non_integer_category", "category"),
    ("negative_category", "category"),
    ("unknown_behavior", "behavior"),
    ("bad_timestamp", "timestamp"),
    ("timestamp_out_of_range", "timestamp"),
    ("bad_split", SPLIT_COLUMN),
    ("duplicate_row", None),
    ("conflicting_category", "category"),
)
_CODE = {key: i + 1 for i, key in enumerate(_CODES)}
BLANK, DUPLICATE, CONFLICT = (
    _CODE[("blank_row", None)],
    _CODE[("duplicate_row", None)],
    _CODE[("conflicting_category", "category")],
)

#: every reason key, in checking order
REASONS: tuple[str, ...] = tuple(dict.fromkeys(reason for reason, _ in _CODES))

#: one-line description of each reason (drop-mode warnings, docs)
REASON_TEXT: dict[str, str] = {
    "blank_row": "blank line",
    "null_id": "missing user or item id",
    "non_integer_id": "user or item id not an integer",
    "negative_id": "negative user or item id",
    "null_category": "missing category id",
    "non_integer_category": "category id not an integer",
    "negative_category": "negative category id",
    "unknown_behavior": "behaviour not in the vocabulary",
    "bad_timestamp": "missing or unparseable timestamp",
    "timestamp_out_of_range": "timestamp outside the valid range",
    "bad_split": "unknown split value",
    "duplicate_row": "exact duplicate of an earlier row",
    "conflicting_category": "item already seen with another category",
}

#: ISO-8601 layouts tried for text timestamps that are not numbers (naive = UTC)
_DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)

_VALUE_COLUMNS: tuple[str, ...] = (*CANONICAL_COLUMNS, SPLIT_COLUMN)
#: above this many distinct behaviour values, map them with one generic column pass
_MAX_DISTINCT_BEHAVIORS = 1000
#: up to this many dropped rows, the kept rows are sliced (zero-copy) instead of filtered
_MAX_SLICES = 1000


def validate_log(raw: RawLog, cfg: DataConfig) -> ValidLog:
    """Check, type and clean a raw log.

    Args:
        raw: reader output (canonical column names; values as text or typed).
        cfg: data section: behaviour vocabulary and mapping, time range, ``on_error``.

    Returns:
        A :class:`ValidLog` whose frame has ``user``/``item`` (Int64), ``category`` (Int64,
        when the log has one), ``behavior`` (Utf8, vocabulary names), ``timestamp`` (Int64
        Unix seconds, when the log has one) and ``split`` (when the log has one), in file
        order; ``dropped`` counts removed rows by reason (non-zero reasons only).

    Raises:
        DataError: a required column is missing; with ``on_error="fail"`` the first
            offending row; with ``"drop"`` a log with no valid row left.
        ConfigError: ``behavior_map`` / ``default_behavior`` outside the vocabulary, or an
            empty ``time_range``.
    """
    frame, src = raw.frame, raw.source
    for name in REQUIRED_COLUMNS:
        if name not in frame.columns:
            found = ", ".join(f"'{c}'" for c in frame.columns if c != ROW_COLUMN)
            raise DataError(f"missing required column '{name}' (columns found: {found})", file=src)
    n = frame.height
    if n == 0:
        raise DataError("the log has no rows", file=src)
    vocab = cfg.behaviors
    mapping = behavior_mapping(raw.behavior_map, cfg)
    if "behavior" not in frame.columns and cfg.default_behavior not in vocab:
        raise ConfigError(
            f"data.default_behavior '{cfg.default_behavior}' is not in data.behaviors "
            f"({', '.join(vocab)}) and the log has no behaviour column"
        )
    lo, hi = cfg.time_range if cfg.time_range is not None else DEFAULT_TIME_RANGE
    if lo >= hi:
        raise ConfigError(f"data.time_range must be [start, end) with start < end, got [{lo}, {hi}]")

    present = [c for c in _VALUE_COLUMNS if c in frame.columns]
    schema = frame.schema
    seen_behaviors: set[str] = set() if "behavior" in present else {cfg.default_behavior}

    def checks(col: str, slow: bool) -> tuple[pl.Expr, pl.Expr | None]:
        dtype = schema[col]
        if col in ("user", "item", "category"):
            return _id_check(col, dtype, slow)
        if col == "behavior":
            return _behavior_check(frame["behavior"], mapping, seen_behaviors)
        if col == "timestamp":
            return _timestamp_check(dtype, lo, hi, slow)
        return _split_check(dtype, slow)

    # Typed integer columns whose null count (free) and min / max (one cheap pass) show
    # that every value is valid need no per-row reason code at all.
    clean = _clean_integer_columns(frame, present, lo, hi)
    exprs: list[pl.Expr] = []
    code_cols: list[str] = []
    for col in present:
        if col in clean:
            exprs.append(pl.col(col).cast(pl.Int64))
            continue
        value, code = checks(col, slow=False)
        exprs.append(value.alias(col))
        if code is not None:
            exprs.append(code.alias(f"_code_{col}"))
            code_cols.append(f"_code_{col}")
    # a blank row has every column null: look for one only when every column has nulls
    blank_possible = all(frame[c].null_count() > 0 for c in present)
    if blank_possible:
        exprs.append(pl.all_horizontal([pl.col(c).is_null() for c in present]).alias("_blank"))
    t = frame.select(exprs)

    # slow fallbacks (stripped text; float / ISO timestamps) only for text columns where a
    # non-empty value failed the fast check
    redo = [
        c
        for c in present
        if f"_code_{c}" in code_cols
        and t[f"_code_{c}"].null_count() < n
        and c != "behavior"  # decided per distinct value already
        and not (schema[c].is_numeric() or schema[c].is_temporal())
        and bool((t[f"_code_{c}"].is_not_null() & frame[c].is_not_null()).any())
    ]
    if redo:
        again: list[pl.Expr] = []
        for col in redo:
            value, code = checks(col, slow=True)
            assert code is not None
            again += [value.alias(col), code.alias(f"_code_{col}")]
        t = t.with_columns(frame.select(again).get_columns())

    values = [c for c in _VALUE_COLUMNS if c in present]
    failing = [c for c in code_cols if t[c].null_count() < n]
    has_blank = blank_possible and bool(t["_blank"].any())
    codes: np.ndarray | None = None
    ok: np.ndarray | None = None
    sub = t.select(values)
    if has_blank or failing:
        first_fail = pl.coalesce([pl.col(c) for c in failing]) if failing else pl.lit(None, dtype=pl.UInt8)
        blank = pl.col("_blank") if has_blank else pl.lit(False)
        basic = t.select(pl.when(blank).then(pl.lit(BLANK, pl.UInt8)).otherwise(first_fail).fill_null(0))
        codes = basic.to_series().to_numpy().astype(np.uint8, copy=True)
        ok = codes == 0
        bad = (codes != 0) & (codes != BLANK)
        if cfg.on_error == "fail" and bad.any():
            # only a duplicate / conflict *before* the first bad row can be reported first,
            # so the row-pair checks need not look further
            ok[int(np.argmax(bad)) :] = False
        sub = drop_rows(sub, ok)

    late = _late_codes(sub)
    if late is not None:
        if codes is None:
            codes = late
        else:
            assert ok is not None
            codes[np.flatnonzero(ok)] = late

    dropped: dict[str, int] = {}
    if codes is None:
        out = sub
    else:
        offending = (codes != 0) & (codes != BLANK)
        if cfg.on_error == "fail" and offending.any():
            raise _row_error(raw, t, codes, int(np.argmax(offending)), vocab, lo, hi)
        dropped = _count_and_warn(raw, codes)
        keep = codes == 0
        out = drop_rows(sub, keep if ok is None else keep[ok])
        if out.height == 0:
            raise DataError(
                f"no valid rows left after validation (dropped: {_format_counts(dropped)})", file=src
            )
    if "behavior" not in present:
        # no behaviour column: every event is the default behaviour
        out = out.with_columns(pl.lit(cfg.default_behavior, dtype=pl.String).alias("behavior"))
        out = out.select([c for c in _VALUE_COLUMNS if c in out.columns])

    return ValidLog(
        frame=out,
        source=src,
        behaviors=vocab,
        # the behaviours seen while mapping are those of the output when no row was dropped
        target_behavior=_target_behavior(
            raw.target_behavior,
            vocab,
            out,
            seen_behaviors or set(vocab),  # empty: junk column, mapped in one generic pass
            exact=codes is None and bool(seen_behaviors),
        ),
        # rows a dataset reader already removed under its protocol (e.g. length-1 sessions),
        # counted there, are reported with validation's counts (metrics.json dropped_rows)
        dropped={**dropped, **{k: int(v) for k, v in raw.meta.get("dropped", {}).items() if v}},
        meta=dict(raw.meta),
    )


def behavior_mapping(dataset_map: dict[str, str], cfg: DataConfig) -> dict[str, str]:
    """Raw value -> vocabulary name: identity for vocabulary names, then the dataset's
    defaults, then ``data.behavior_map`` (which wins).

    Dataset entries pointing outside the vocabulary are left out (their values then count
    as ``unknown_behavior``: a user may shrink the vocabulary on purpose); a config entry
    pointing outside it is a :class:`ConfigError`.
    """
    vocab = cfg.behaviors
    for key, value in cfg.behavior_map.items():
        if value not in vocab:
            raise ConfigError(
                f"data.behavior_map: '{key}' maps to '{value}', which is not in data.behaviors "
                f"({', '.join(vocab)})"
            )
    mapping = {b: b for b in vocab}
    mapping.update({str(k): v for k, v in dataset_map.items() if v in vocab})
    mapping.update({str(k): v for k, v in cfg.behavior_map.items()})
    return mapping


def drop_rows(frame: pl.DataFrame, keep: np.ndarray) -> pl.DataFrame:
    """``frame.filter(keep)``; when only a few rows go, the kept runs are zero-copy slices
    (a filter would copy every column for the sake of a handful of bad rows)."""
    gone = np.flatnonzero(~keep)
    if gone.size == 0:
        return frame
    if gone.size > _MAX_SLICES:
        return frame.filter(pl.Series(keep))
    starts = np.concatenate([[0], gone + 1])
    ends = np.concatenate([gone, [frame.height]])
    parts = [frame.slice(int(a), int(b - a)) for a, b in zip(starts, ends) if b > a]
    return pl.concat(parts, rechunk=False) if parts else frame.clear()


def _clean_integer_columns(frame: pl.DataFrame, present: list[str], lo: int, hi: int) -> set[str]:
    """Typed integer id / timestamp columns in which every value is valid, found from the
    null count (metadata) and min / max (one pass, nothing allocated)."""
    cand = [
        c
        for c in present
        if c in ("user", "item", "category", "timestamp")
        and frame.schema[c].is_integer()
        and not frame[c].null_count()
    ]
    if not cand:
        return set()
    stats = frame.select(
        [e for c in cand for e in (pl.col(c).min().alias(f"{c}_min"), pl.col(c).max().alias(f"{c}_max"))]
    ).row(0)
    clean = set()
    for k, c in enumerate(cand):
        low, high = stats[2 * k], stats[2 * k + 1]
        if c == "timestamp":
            if low >= lo and high < hi:
                clean.add(c)
        elif low >= 0 and high <= np.iinfo(np.int64).max:
            clean.add(c)
    return clean


def _lit(code: int) -> pl.Expr:
    return pl.lit(code, dtype=pl.UInt8)


def _as_text(col: str, dtype: pl.DataType, strip: bool) -> pl.Expr:
    c = pl.col(col)
    s = c if dtype == pl.String else c.cast(pl.String)
    return s.str.strip_chars() if strip else s


def _id_check(col: str, dtype: pl.DataType, slow: bool) -> tuple[pl.Expr, pl.Expr]:
    """Int64 value and reason code (null = valid) of an id column."""
    key = "id" if col in ("user", "item") else "category"
    null_c = _lit(_CODE[(f"null_{key}", col)])
    nonint_c = _lit(_CODE[(f"non_integer_{key}", col)])
    neg_c = _lit(_CODE[(f"negative_{key}", col)])
    c = pl.col(col)
    if dtype.is_integer():
        v = c.cast(pl.Int64, strict=False)  # UInt64 above 2**63 -> null -> non-integer
        code = pl.when(c.is_null()).then(null_c).when(v.is_null()).then(nonint_c).when(v < 0).then(neg_c)
    elif dtype.is_float():
        integral = c.is_finite() & (c == c.floor()) & (c.abs() < 2.0**63)
        v = pl.when(integral).then(c.cast(pl.Int64, strict=False))
        code = pl.when(c.is_null()).then(null_c).when(~integral).then(nonint_c).when(v < 0).then(neg_c)
    else:
        s = _as_text(col, dtype, slow)  # slow path: tolerate spaces around the number
        v = s.cast(pl.Int64, strict=False)
        code = (
            pl.when(s.is_null() | (s.str.len_bytes() == 0))
            .then(null_c)
            .when(v.is_null())
            .then(nonint_c)
            .when(v < 0)
            .then(neg_c)
        )
    return v, code


def _behavior_check(
    values: pl.Series, mapping: dict[str, str], found: set[str] | None = None
) -> tuple[pl.Expr, pl.Expr | None]:
    """Vocabulary name and reason code (null = valid) of the behaviour column.

    A log has few distinct behaviour values, so the mapping is decided per distinct value
    (surrounding spaces tolerated) and the column is only touched to rename values that
    need it (``replace_strict`` over every row costs several times more). The vocabulary
    names seen are added to ``found`` (left empty for a junk column). The code is
    ``None`` when every value is known.
    """
    unknown_c = _lit(_CODE[("unknown_behavior", "behavior")])
    c = pl.col("behavior")
    s = c if values.dtype == pl.String else c.cast(pl.String)
    distinct = values.cast(pl.String).unique()
    if distinct.len() > _MAX_DISTINCT_BEHAVIORS:  # junk column: one generic pass
        v = s.str.strip_chars().replace_strict(mapping, default=None, return_dtype=pl.String)
        return v, pl.when(v.is_null()).then(unknown_c)
    rename: dict[str, str] = {}
    unknown: list[str] = []
    has_null = False
    for raw in distinct.to_list():
        if raw is None:
            has_null = True
            continue
        name = mapping.get(raw, mapping.get(raw.strip()))
        if name is None:
            unknown.append(raw)
        else:
            if found is not None:
                found.add(name)
            if name != raw:
                rename[raw] = name
    v = s.replace(rename) if rename else s
    bad: pl.Expr | None = s.is_in(unknown) if unknown else None
    if has_null:
        bad = s.is_null() if bad is None else (bad | s.is_null())
    return v, (pl.when(bad).then(unknown_c) if bad is not None else None)


def _timestamp_check(dtype: pl.DataType, lo: int, hi: int, slow: bool) -> tuple[pl.Expr, pl.Expr]:
    """Int64 Unix seconds and reason code (null = valid) of the timestamp column."""
    bad_c = _lit(_CODE[("bad_timestamp", "timestamp")])
    oor_c = _lit(_CODE[("timestamp_out_of_range", "timestamp")])
    c = pl.col("timestamp")
    if dtype.is_integer():
        v = c.cast(pl.Int64, strict=False)
        code = pl.when(c.is_null()).then(bad_c).when(v.is_null() | (v < lo) | (v >= hi)).then(oor_c)
        return v, code
    if dtype.is_float():
        code = pl.when(c.is_null() | ~c.is_finite()).then(bad_c).when((c < lo) | (c >= hi)).then(oor_c)
        return pl.when(code.is_null()).then(c.floor().cast(pl.Int64)), code
    if dtype.is_temporal() and dtype != pl.Time and not isinstance(dtype, pl.Duration):
        v = (c if isinstance(dtype, pl.Datetime) else c.cast(pl.Datetime("us"))).dt.epoch("s")
        code = pl.when(c.is_null()).then(bad_c).when((v < lo) | (v >= hi)).then(oor_c)
        return v, code
    if not slow:
        # fast path: integer seconds (the common case); anything else is retried below
        v = _as_text("timestamp", dtype, False).cast(pl.Int64, strict=False)
        code = pl.when(v.is_null()).then(bad_c).when((v < lo) | (v >= hi)).then(oor_c)
        return v, code
    s = _as_text("timestamp", dtype, True)
    i = s.cast(pl.Int64, strict=False)
    f = s.cast(pl.Float64, strict=False)
    f = pl.when(f.is_finite()).then(f)
    d = pl.coalesce(
        [s.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.epoch("s") for fmt in _DATETIME_FORMATS]
    )
    # range check in float so huge values cannot overflow; lo/hi are far below 2**53
    num = pl.coalesce([i.cast(pl.Float64), f, d.cast(pl.Float64)])
    code = pl.when(num.is_null()).then(bad_c).when((num < lo) | (num >= hi)).then(oor_c)
    v = pl.when(code.is_null()).then(pl.coalesce([i, f.floor().cast(pl.Int64, strict=False), d]))
    return v, code


def _split_check(dtype: pl.DataType, slow: bool) -> tuple[pl.Expr, pl.Expr]:
    s = _as_text(SPLIT_COLUMN, dtype, slow)
    bad = s.is_null() | ~s.is_in(list(GIVEN_CODES))
    return s, pl.when(bad).then(_lit(_CODE[("bad_split", SPLIT_COLUMN)]))


def _late_codes(sub: pl.DataFrame) -> np.ndarray | None:
    """Duplicate / conflicting-category codes of the basically valid rows, or ``None``
    when there are none."""
    dup = _duplicate_rows(sub, [c for c in CANONICAL_COLUMNS if c in sub.columns])
    conflict = _conflicting_rows(sub) if "category" in sub.columns else None
    if dup is None and conflict is None:
        return None
    late = np.zeros(sub.height, dtype=np.uint8)
    if conflict is not None:
        late[conflict] = CONFLICT
    if dup is not None:
        late[dup] = DUPLICATE  # checked first, so it wins
    return late


def _duplicate_rows(sub: pl.DataFrame, keys: list[str]) -> np.ndarray | None:
    """Rows equal (on ``keys``) to an earlier row, or ``None``.

    A polars ``is_first_distinct`` over a struct of all keys is ~10x slower than hashing
    rows and sorting the hashes, so: hash every row to a 32-bit fingerprint (sorting 32-bit
    keys takes half the time of 64-bit ones), and run the exact check only on the rows
    whose fingerprint occurs more than once: real duplicates plus fingerprint collisions
    (about n**2 / 2**33 of them: ~12k pairs for 10M rows, cheap to check exactly).
    """
    h = (sub.select(keys).hash_rows(seed=0).to_numpy() >> np.uint64(32)).astype(np.uint32)
    hs = np.sort(h)
    same = hs[1:] == hs[:-1]
    if not same.any():
        return None
    shared = np.unique(hs[1:][same]).tolist()
    cand = np.flatnonzero(pl.Series(h).is_in(shared).to_numpy())
    # gather the few candidate rows (in file order) rather than filter every column
    first = (
        sub.select(pl.col(keys).gather(pl.Series(cand)))
        .select(pl.struct(keys).is_first_distinct())
        .to_series()
        .to_numpy()
    )
    if first.all():
        return None
    mask = np.zeros(sub.height, dtype=bool)
    mask[cand[~first]] = True
    return mask


def _conflicting_rows(sub: pl.DataFrame) -> np.ndarray | None:
    """Rows whose category differs from that of the item's first row, or ``None``.

    A polars window (``first().over("item")``) over every row is slow, so a direct-address
    table indexed by item id first tells whether any item has two categories (whichever
    row's write wins, a second category differs from it); the exact window runs only on
    the rows of such items. The columns are read chunk by chunk, as zero-copy views.
    """
    n = sub.height
    if n == 0:
        return None
    hi = sub["item"].max()
    if not isinstance(hi, int) or hi >= max(2 * n, 1 << 22):
        out = sub.select(pl.col("category") != pl.col("category").first().over("item")).to_series().to_numpy()
        return out if out.any() else None
    pair = sub.select("item", "category")
    if pair["item"].chunk_lengths() != pair["category"].chunk_lengths():
        pair = pair.rechunk()  # the per-chunk loops below need aligned chunks
    items = [c.to_numpy() for c in pair["item"].get_chunks()]
    cats = [c.to_numpy() for c in pair["category"].get_chunks()]
    cat_max = sub["category"].max()
    small = isinstance(cat_max, int) and cat_max < np.iinfo(np.int32).max
    table = np.empty(hi + 1, dtype=np.int32 if small else np.int64)
    for it, cat in zip(items, cats):
        table[it] = cat
    bad_items = [it[table[it] != cat] for it, cat in zip(items, cats)]
    if not any(b.size for b in bad_items):
        return None
    bad_item = np.zeros(hi + 1, dtype=bool)
    for b in bad_items:
        bad_item[b] = True
    rows = np.concatenate([bad_item[it] for it in items])
    flags = (
        sub.select("item", "category")
        .filter(pl.Series(rows))
        .select(pl.col("category") != pl.col("category").first().over("item"))
        .to_series()
        .to_numpy()
    )
    mask = np.zeros(n, dtype=bool)
    mask[np.flatnonzero(rows)[flags]] = True
    return mask


def _raw_row(raw: RawLog, pos: int) -> int:
    if ROW_COLUMN in raw.frame.columns:
        return int(raw.frame[ROW_COLUMN][pos])
    return pos + 1


def _row_error(
    raw: RawLog, t: pl.DataFrame, codes: np.ndarray, pos: int, vocab: Sequence[str], lo: int, hi: int
) -> DataError:
    """The :class:`DataError` of the offending row at position ``pos``."""
    reason, col = _CODES[int(codes[pos]) - 1]
    src, row = raw.source, _raw_row(raw, pos)
    if reason == "duplicate_row":
        keys = [c for c in CANONICAL_COLUMNS if c in t.columns]
        first = _first_position(t, codes, pos, {k: t[k][pos] for k in keys})
        return DataError(f"duplicate of row {_raw_row(raw, first)}", file=src, row=row)
    value: Any = raw.frame[col][pos] if col is not None else None
    if value is not None and not isinstance(value, str):
        value = str(value)  # typed columns (Parquet, inferred CSV): report it as the text
    if reason == "conflicting_category":
        item = t["item"][pos]
        first = _first_position(t, codes, pos, {"item": item})
        return DataError(
            f"item {item} already has category {t['category'][first]} (row {_raw_row(raw, first)})",
            file=src,
            row=row,
            column=col,
            value=value,
            has_value=True,
        )
    if reason in ("null_id", "null_category"):
        what = "category" if col == "category" else f"{col}"
        return DataError(
            f"missing {what} id", file=src, row=row, column=col, value=value, has_value=value is not None
        )
    if reason == "bad_timestamp" and (value is None or str(value).strip() == ""):
        return DataError(
            "missing timestamp", file=src, row=row, column=col, value=value, has_value=value is not None
        )
    message = {
        "non_integer_id": f"{col} id is not an integer",
        "negative_id": f"{col} id is negative",
        "non_integer_category": "category id is not an integer",
        "negative_category": "category id is negative",
        "unknown_behavior": (
            f"unknown behaviour (expected one of {', '.join(vocab)}; map other values with data.behavior_map)"
        ),
        "bad_timestamp": "unparseable timestamp",
        "timestamp_out_of_range": f"timestamp outside the valid range [{lo}, {hi}) in Unix seconds",
        "bad_split": f"unknown split (expected one of {', '.join(GIVEN_CODES)})",
    }[reason]
    return DataError(message, file=src, row=row, column=col, value=value, has_value=True)


def _first_position(t: pl.DataFrame, codes: np.ndarray, before: int, equal: dict[str, Any]) -> int:
    """Position of the first valid row before ``before`` whose columns equal ``equal``."""
    cond = pl.lit(True)
    for k, v in equal.items():
        cond = cond & (pl.col(k).is_null() if v is None else (pl.col(k) == v))
    hits = t.head(before).with_row_index("_pos").filter(cond)["_pos"].to_numpy()
    hits = hits[codes[hits] == 0] if hits.size else hits
    return int(hits[0]) if hits.size else before


def _count_and_warn(raw: RawLog, codes: np.ndarray) -> dict[str, int]:
    counts = np.bincount(codes, minlength=len(_CODES) + 1)
    dropped: dict[str, int] = {}
    first_row: dict[str, int] = {}
    for code in np.flatnonzero(counts[1:]) + 1:
        reason = _CODES[code - 1][0]
        dropped[reason] = dropped.get(reason, 0) + int(counts[code])
        row = _raw_row(raw, int(np.argmax(codes == code)))
        first_row[reason] = min(first_row.get(reason, row), row)
    ordered = {r: dropped[r] for r in REASONS if r in dropped}
    for reason, count in ordered.items():
        logger.warning(
            "%s: dropped %d row(s), %s: %s (first at row %d)",
            raw.source,
            count,
            reason,
            REASON_TEXT[reason],
            first_row[reason],
        )
    return ordered


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _target_behavior(
    given: str | None, vocab: Sequence[str], frame: pl.DataFrame, seen: set[str], exact: bool
) -> str | None:
    """The dataset's target if in the vocabulary, else ``buy`` if present, else the last
    behaviour present in funnel order.

    ``seen``: the behaviours of the log before rows were dropped (a superset of those of
    ``frame``); ``exact``: no row was dropped, so ``seen`` is exactly ``frame``'s set.
    Otherwise presence is checked one behaviour at a time (usually only ``buy``), which is
    cheaper than a ``unique`` over every row.
    """
    if given is not None and given in vocab:
        return given

    def present(name: str) -> bool:
        if name not in seen:
            return False
        return exact or bool((frame["behavior"] == name).any())

    if "buy" in vocab and present("buy"):
        return "buy"
    for name in reversed(vocab):
        if present(name):
            return name
    return None
