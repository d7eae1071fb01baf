"""Read a behaviour log file (CSV / TSV, plain or gzip, or Parquet) into a :class:`RawLog`.

The reader only finds the columns and reads them; it never interprets values beyond what
polars parses losslessly. A CSV file is first read with polars' type inference: when every
id / timestamp column comes out as clean integers and the behaviour / split columns as text
(the usual case), the ids are never materialised as strings. When any value would not
parse (``"12a"``, ``" 5"``, ``"1.0"`` in an id column, an ISO date after integer rows,
...), the file is read again with every column as text (``Utf8``), so that
:func:`gnnrec.data.schema.validate_log` reports the exact bad value.
Parquet columns keep their stored types. A ``_row`` column holds the 1-based data row number
(header excluded), so an error can point at a row the user can find.

Column resolution, in order:

1. an explicit ``columns`` map ``{canonical name: file column name or 0-based position}``;
2. a header whose names are the canonical names (``user, item, category, behavior,
   timestamp``, plus an optional ``split``), compared case-insensitively;
3. a headerless file with 2 columns (``user, item``) or 5 columns (the canonical order).
   With 3 or 4 columns the meaning is ambiguous (``user,item,timestamp``?
   ``user,item,behavior``?), so the reader asks for a column map instead of guessing.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from gnnrec.data.types import (
    CANONICAL_COLUMNS,
    REQUIRED_COLUMNS,
    ROW_COLUMN,
    SPLIT_COLUMN,
    RawLog,
)
from gnnrec.errors import ConfigError, DataError

#: columns a reader may take from a file (canonical columns plus a dataset's own split)
READABLE_COLUMNS: tuple[str, ...] = (*CANONICAL_COLUMNS, SPLIT_COLUMN)
#: delimiters tried by detection, in order of preference on ties
DETECTED_DELIMITERS: tuple[str, ...] = (",", "\t", ";", "|")
#: bytes of (decompressed) text inspected to detect the delimiter and the header
_HEAD_BYTES = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
#: rows polars samples to infer column types on the fast path
_INFER_ROWS = 10_000
_DELIMITER_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def read_log(
    path: str | Path,
    *,
    format: str = "auto",
    has_header: bool | None = None,
    delimiter: str | None = None,
    columns: Mapping[str, str | int] | None = None,
) -> RawLog:
    """Read a behaviour log into a :class:`RawLog` with canonical column names.

    Args:
        path: CSV/TSV file (optionally gzip-compressed, detected from the content) or
            Parquet file.
        format: ``"auto"`` (Parquet by content or by a ``.parquet``/``.pq`` suffix, TSV by a
            ``.tsv``/``.tab`` suffix, otherwise CSV), ``"csv"``, ``"tsv"`` or ``"parquet"``.
        has_header: whether the first CSV line is a header; ``None`` detects it (a header
            names a canonical or mapped column, or holds text above numbers).
        delimiter: CSV delimiter; ``None`` detects it from the first line (``, \\t ; |``,
            then a space). ``"\\t"``/``"tab"`` are accepted for a tab.
        columns: canonical name -> file column name, or 0-based position.

    Returns:
        The raw log: canonical columns (integers where polars parsed them cleanly, else
        text), ``split`` when the file has one, and ``_row``; ``meta`` records the format,
        delimiter, header flag and the file column (name or position) behind each
        canonical column.

    Raises:
        DataError: missing, empty, unreadable or corrupt file; a required column missing; a
            headerless file whose column meaning is ambiguous.
        ConfigError: an invalid ``format``, ``delimiter`` or column map key.
    """
    p = Path(path)
    src = str(path)
    col_map = _check_column_map(columns or {})
    if not p.exists():
        raise DataError("file not found", file=src)
    if p.is_dir():
        raise DataError("is a directory, expected a log file", file=src)
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise DataError(f"cannot read file: {err.strerror or err}", file=src) from None
    fmt = _resolve_format(format, p, magic)
    if fmt == "parquet":
        return _read_parquet(p, src, col_map)
    sep = _normalise_delimiter(delimiter if delimiter is not None else ("\t" if fmt == "tsv" else None))
    return _read_csv(p, src, magic[:2] == _GZIP_MAGIC, sep, has_header, col_map, fmt)


def parse_column_map(items: Iterable[str]) -> dict[str, str | int]:
    """Parse CLI ``--map user=user_id --map item=2`` items into a column map.

    A value made of digits is a 0-based column position, anything else a column name.
    """
    out: dict[str, str | int] = {}
    for text in items:
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(f"--map expects canonical=column, got '{text}'")
        out[key] = int(value) if value.isdigit() else value
    return _check_column_map(out)


def _check_column_map(columns: Mapping[str, str | int]) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for key, ref in columns.items():
        if key not in READABLE_COLUMNS:
            raise ConfigError(
                f"column map: unknown column '{key}' (expected one of {', '.join(READABLE_COLUMNS)})"
            )
        if isinstance(ref, bool) or not isinstance(ref, (str, int)) or (isinstance(ref, int) and ref < 0):
            raise ConfigError(f"column map: {key} must be a column name or a 0-based position, got {ref!r}")
        out[key] = ref
    refs = list(out.values())
    if len(set(refs)) != len(refs):
        raise ConfigError(f"column map: two columns map to the same file column ({out})")
    return out


def _resolve_format(format: str, p: Path, magic: bytes) -> str:
    if format not in ("auto", "csv", "tsv", "parquet"):
        raise ConfigError(f"unknown log format '{format}' (expected auto, csv, tsv or parquet)")
    if format != "auto":
        return format
    suffixes = [s.lower() for s in p.suffixes]
    if magic == _PARQUET_MAGIC or (suffixes and suffixes[-1] in (".parquet", ".pq")):
        return "parquet"
    if any(s in (".tsv", ".tab") for s in suffixes[-2:]):
        return "tsv"
    return "csv"


def _normalise_delimiter(delimiter: str | None) -> str | None:
    if delimiter is None:
        return None
    d = _DELIMITER_ALIASES.get(delimiter.lower(), delimiter)
    if len(d) != 1 or d in ('"', "\n", "\r"):
        raise ConfigError(f"a delimiter must be a single character, got {delimiter!r}")
    return d


def _read_head(p: Path, src: str, gz: bool) -> tuple[str, bool]:
    """The first (decompressed) bytes of a text file as text without a BOM, and whether
    the file goes on beyond them."""
    try:
        if gz:
            with gzip.open(p, "rb") as fh:
                head = fh.read(_HEAD_BYTES)
        else:
            with p.open("rb") as fh:
                head = fh.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read file: corrupt gzip data ({err})", file=src) from None
    text = head.decode("utf-8", errors="replace")
    return (text.removeprefix("\ufeff")), len(head) >= _HEAD_BYTES


def _complete_lines(text: str, truncated: bool, n: int) -> list[str]:
    """Up to ``n`` non-blank lines from the head of a file (a cut-off last line excluded)."""
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the head may end inside a line
    return [ln for ln in lines if ln.strip()][:n]


def _detect_delimiter(first_line: str) -> str:
    counts = [(first_line.count(d), -i, d) for i, d in enumerate(DETECTED_DELIMITERS)]
    best = max(counts)
    if best[0] > 0:
        return best[2]
    if " " in first_line.strip():
        return " "
    return ","


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _detect_header(first: list[str], second: list[str] | None, col_map: Mapping[str, str | int]) -> bool:
    names = {f.strip().lower() for f in first}
    mapped = {ref.strip().lower() for ref in col_map.values() if isinstance(ref, str)}
    if names & (set(READABLE_COLUMNS) | mapped):
        return True
    if mapped:
        # the user names columns, so the file must have a header; a name missing from it
        # is then reported as a missing column rather than read as data
        return True
    # csv.Sniffer's idea: text above a number in the same column is a header
    if second is not None:
        return any(a.strip() != "" and not _is_number(a) and _is_number(b) for a, b in zip(first, second))
    return False


def _resolve_columns(
    header: list[str] | None, ncols: int, col_map: Mapping[str, str | int], src: str
) -> dict[str, int]:
    """Canonical name -> 0-based position in the file."""
    found: dict[str, int] = {}
    norm = [h.strip().lower() for h in header] if header is not None else None
    for key, ref in col_map.items():
        if isinstance(ref, int):
            if ref >= ncols:
                raise DataError(
                    f"column map: {key}={ref} but the file has {ncols} columns (positions 0..{ncols - 1})",
                    file=src,
                )
            found[key] = ref
            continue
        if header is None or norm is None:
            raise DataError(
                f"column map names column '{ref}' for {key}, but the file has no header row; "
                "use 0-based positions (e.g. user=0)",
                file=src,
            )
        if ref in header:
            found[key] = header.index(ref)
        elif ref.strip().lower() in norm:
            found[key] = norm.index(ref.strip().lower())
        else:
            raise DataError(
                f"column '{ref}' (mapped to {key}) not found; columns found: {_quoted(header)}",
                file=src,
            )
    if norm is not None:
        taken = set(found.values())
        for name in READABLE_COLUMNS:
            if name not in found and name in norm and norm.index(name) not in taken:
                found[name] = norm.index(name)
    elif not col_map:
        if ncols == 2:
            found = {"user": 0, "item": 1}
        elif ncols == 5:
            found = {name: i for i, name in enumerate(CANONICAL_COLUMNS)}
        else:
            raise DataError(
                f"headerless file with {ncols} column(s): cannot tell which column is which; "
                "pass a column map, e.g. columns={'user': 0, 'item': 1, 'timestamp': 2} "
                "(CLI: --map user=0 --map item=1 --map timestamp=2)",
                file=src,
            )
    for name in REQUIRED_COLUMNS:
        if name not in found:
            have = _quoted(header) if header is not None else f"{ncols} unnamed column(s)"
            raise DataError(
                f"missing required column '{name}' (columns found: {have}); "
                "name it in the header or pass a column map",
                file=src,
            )
    return found


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _polars_error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _read_csv(
    p: Path,
    src: str,
    gz: bool,
    sep: str | None,
    has_header: bool | None,
    col_map: Mapping[str, str | int],
    fmt: str,
) -> RawLog:
    head, truncated = _read_head(p, src, gz)
    lines = _complete_lines(head, truncated, 2)
    if not lines:
        raise DataError("file is empty (no data rows)", file=src)
    if sep is None:
        sep = _detect_delimiter(lines[0])
    rows = list(csv.reader(lines, delimiter=sep))
    first, second = rows[0], (rows[1] if len(rows) > 1 else None)
    header_flag = _detect_header(first, second, col_map) if has_header is None else has_header
    header = [f.strip() for f in first] if header_flag else None
    positions = _resolve_columns(header, len(first), col_map, src)

    # read only the needed columns, in file order, then name them by position: polars'
    # automatic names for headerless files differ between versions (column_0 / column_1)
    ordered = sorted(positions.items(), key=lambda kv: kv[1])
    names_in_order = [name for name, _ in ordered]

    def read(infer_rows: int) -> pl.DataFrame:
        frame = pl.read_csv(
            p,
            has_header=header_flag,
            separator=sep,
            columns=[i for _, i in ordered],
            infer_schema_length=infer_rows,
            row_index_name=ROW_COLUMN,
            row_index_offset=1,
            raise_if_empty=False,
        )
        frame.columns = [ROW_COLUMN, *names_in_order]
        return frame

    # Fast path: let polars parse clean integer columns while reading (no string column
    # to build, no cast pass later). Any value that does not parse as the inferred type
    # aborts this read, and the file is read again with every column as text, so the
    # validator still sees, and reports, the exact bad value. An id column inferred as
    # anything but integer or text also goes the text way (validation of "1.0" as an id
    # must not depend on the path), and so do a float timestamp column and a behaviour
    # column read as numbers.
    frame: pl.DataFrame | None = None
    try:
        frame = read(_INFER_ROWS)
    except (pl.exceptions.PolarsError, OSError, ValueError, zlib.error):
        frame = None
    if frame is not None and not _clean_types(frame):
        frame = None
    if frame is None:
        try:
            frame = read(0)  # every column as Utf8
        except (pl.exceptions.PolarsError, OSError, ValueError, zlib.error) as err:
            gz_err = gz and isinstance(err, (OSError, zlib.error))
            what = "corrupt gzip data" if gz_err else "cannot parse file"
            raise DataError(f"{what}: {_polars_error_line(err)}", file=src) from None
    if frame.height == 0:
        raise DataError("file is empty (no data rows)", file=src)
    names: list[str | int] = list(header) if header is not None else list(range(len(first)))
    return RawLog(
        frame=frame.select([c for c in (*READABLE_COLUMNS, ROW_COLUMN) if c in frame.columns]),
        source=src,
        meta={
            "format": fmt,
            "delimiter": sep,
            "has_header": header_flag,
            "columns": {name: names[i] for name, i in positions.items()},
        },
    )


def _clean_types(frame: pl.DataFrame) -> bool:
    """Whether inferred column types keep validation identical to the all-text path."""
    for name, dtype in frame.schema.items():
        if name in ("user", "item", "category") and not (dtype.is_integer() or dtype == pl.String):
            return False
        if name in ("behavior", SPLIT_COLUMN) and dtype != pl.String:
            return False  # behaviour codes are mapped as text: "01" must stay "01"
        if name == "timestamp" and not (dtype.is_integer() or dtype == pl.String):
            return False  # a float column would report "-2" as "-2.0"
    return True


def _read_parquet(p: Path, src: str, col_map: Mapping[str, str | int]) -> RawLog:
    try:
        schema = pl.scan_parquet(p).collect_schema()
    except (pl.exceptions.PolarsError, OSError, ValueError) as err:
        raise DataError(f"cannot read Parquet file: {_polars_error_line(err)}", file=src) from None
    names = list(schema.names())
    positions = _resolve_columns(names, len(names), col_map, src)
    try:
        frame = pl.read_parquet(p, columns=[names[i] for i in positions.values()])
    except (pl.exceptions.PolarsError, OSError, ValueError) as err:
        raise DataError(f"cannot read Parquet file: {_polars_error_line(err)}", file=src) from None
    frame = frame.rename({names[i]: name for name, i in positions.items()})
    if frame.height == 0:
        raise DataError("file is empty (no data rows)", file=src)
    # Parquet values keep their stored types (exact already); validation accepts both
    frame = frame.with_row_index(ROW_COLUMN, offset=1)
    return RawLog(
        frame=frame.select([c for c in (*READABLE_COLUMNS, ROW_COLUMN) if c in frame.columns]),
        source=src,
        meta={"format": "parquet", "columns": {name: names[i] for name, i in positions.items()}},
    )
