"""Registered datasets: readers that turn a named dataset into a :class:`RawLog`.

Every loader has the signature ``loader(cfg: DataConfig, seed: int = 0) -> RawLog`` and is
registered in :data:`DATASETS` with metadata:

* ``description``: one line for ``gnnrec datasets``;
* ``folder``: sub-folder of the data root (``None`` for ``synthetic`` and ``file``);
* ``variants``: accepted ``data.variant`` values, the first being the default (empty: none);
* ``given_split``: whether the dataset brings its own train/test split (``split`` column);
* ``target``: default evaluated behaviour (``None`` = the configured ``data.default_behavior``,
  for single-behaviour datasets; ``"auto"`` = decided later from the data, for ``file``);
* ``timestamps`` / ``categories``: whether those columns exist.

Readers return raw values under canonical column names (plus ``split`` and the 1-based source
line ``_row`` where there is a file); typing, behaviour mapping, range checks and drop counts
are the job of :func:`gnnrec.data.schema.validate_log`. Datasets without timestamps or
behaviours leave those columns out; validation then gives every row the default behaviour.

Real datasets live under a data root: ``data.root``, else the ``GNNREC_DATA`` environment
variable (see :func:`resolve_root`). They are read-only and never copied.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from gnnrec.config import DataConfig
from gnnrec.data.ingest import read_log
from gnnrec.data.synthetic import ground_truth_path, simulate
from gnnrec.data.types import CANONICAL_COLUMNS, ROW_COLUMN, SPLIT_COLUMN, RawLog
from gnnrec.errors import ConfigError, DataError
from gnnrec.registry import Registry

Loader = Callable[..., RawLog]

#: name -> loader(cfg, seed=0) -> RawLog, with metadata (see module docstring)
DATASETS: Registry[Loader] = Registry("dataset")

#: environment variable naming the data root when ``data.root`` is not set
DATA_ENV = "GNNREC_DATA"


def register_dataset(
    name: str,
    *,
    description: str,
    folder: str | None,
    given_split: bool,
    target: str | None,
    timestamps: bool,
    categories: bool,
    variants: tuple[str, ...] = (),
) -> Callable[[Loader], Loader]:
    """Register ``loader(cfg, seed=0) -> RawLog`` under ``name`` with its metadata."""
    return DATASETS.register(
        name,
        description=description,
        folder=folder,
        given_split=given_split,
        target=target,
        timestamps=timestamps,
        categories=categories,
        variants=variants,
    )


def load_dataset(cfg: DataConfig, seed: int = 0) -> RawLog:
    """Read the dataset named by ``cfg.dataset``.

    Args:
        cfg: data section of the experiment config.
        seed: experiment seed (used by the simulator; real datasets ignore it).

    Returns:
        The raw log with canonical column names.

    Raises:
        ConfigError: unknown dataset, variant or a missing required setting.
        DataError: a dataset folder or file is missing or unreadable.
    """
    try:
        loader = DATASETS.get(cfg.dataset)
    except ConfigError as err:
        raise ConfigError(f"data.dataset: {err}") from None
    meta = DATASETS.meta(cfg.dataset)
    if cfg.variant is not None and cfg.variant not in meta["variants"]:
        if meta["variants"]:
            known = ", ".join(meta["variants"])
            msg = f"dataset '{cfg.dataset}' has no variant '{cfg.variant}' (known: {known})"
        else:
            msg = f"dataset '{cfg.dataset}' has no variants, got '{cfg.variant}'"
        raise ConfigError(f"data.variant: {msg}")
    if cfg.path is not None and cfg.dataset != "file":
        raise ConfigError(
            f"data.path is only read by dataset 'file', but data.dataset is '{cfg.dataset}' "
            "(remove data.path, or set data.dataset: file)"
        )
    return loader(cfg, seed)


def resolve_root(cfg: DataConfig, environ: Mapping[str, str] = os.environ) -> Path:
    """The data root: ``cfg.root``, else ``$GNNREC_DATA``.

    Raises:
        ConfigError: neither is set.
    """
    root = cfg.root or environ.get(DATA_ENV) or None
    if root is None:
        raise ConfigError(
            f"data.root is not set: set data.root in the config or the {DATA_ENV} environment "
            "variable to the folder holding the datasets"
        )
    return Path(root).expanduser()


def dataset_dir(cfg: DataConfig, name: str, environ: Mapping[str, str] = os.environ) -> Path:
    """The folder of registered dataset ``name`` under the data root.

    Raises:
        DataError: the folder does not exist (the message names the expected path).
    """
    folder = DATASETS.meta(name)["folder"]
    path = resolve_root(cfg, environ) / folder
    if not path.is_dir():
        raise DataError(
            f"dataset '{name}' not found: expected the folder {path} (data root from data.root or {DATA_ENV})"
        )
    return path


def _variant(cfg: DataConfig, name: str) -> str:
    variants: tuple[str, ...] = DATASETS.meta(name)["variants"]
    return cfg.variant if cfg.variant is not None else variants[0]


# ---------------------------------------------------------------- file readers


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the name ends in ``.gz``."""
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"cannot decompress gzip file: {err}", file=str(path)) from None
    return data


def _decode(data: bytes, path: Path, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"not valid {encoding} text at byte {err.start}", file=str(path)) from None


def _with_row(frame: pl.DataFrame) -> pl.DataFrame:
    """Append the 1-based source line as ``_row`` (Int64)."""
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_COLUMN))


def _read_delimited(
    path: Path, columns: tuple[str, ...], separator: str, encoding: str = "utf-8"
) -> pl.DataFrame:
    """A headerless delimited file, every column as String, plus ``_row``."""
    data = _read_bytes(path)
    if encoding != "utf-8":
        data = _decode(data, path, encoding).encode("utf-8")
    try:
        frame = pl.read_csv(
            io.BytesIO(data),
            has_header=False,
            separator=separator,
            quote_char=None,
            schema={c: pl.String for c in columns},
        )
    except pl.exceptions.PolarsError as err:
        # e.g. a line with more fields than expected; polars does not say which line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"cannot parse as {len(columns)} {separator!r}-separated columns ({', '.join(columns)}): {first}",
            file=str(path),
        ) from None
    return _with_row(frame)


def _read_adjacency(path: Path) -> pl.DataFrame:
    """Lines ``user item item ...`` (any whitespace) → one row per (user, item) pair.

    Returns String columns ``user``, ``item`` and ``_row`` (the source line). Lines with a
    user but no items hold no event and give no row.
    """
    text = _decode(_read_bytes(path), path)
    lines = pl.Series("line", text.splitlines(), dtype=pl.String)
    frame = (
        pl.DataFrame([lines])
        .with_columns(pl.int_range(1, lines.len() + 1, dtype=pl.Int64).alias(ROW_COLUMN))
        .with_columns(pl.col("line").str.replace_all(r"\s+", " ").str.strip_chars(" ").str.split(" "))
        .select(
            pl.col("line").list.first().alias("user"),
            pl.col("line").list.slice(1).alias("item"),
            pl.col(ROW_COLUMN),
        )
        .explode("item")
        .filter(pl.col("item").is_not_null())
    )
    return frame.select("user", "item", ROW_COLUMN)


def _concat_files(parts: list[tuple[pl.DataFrame, dict[str, str]]]) -> pl.DataFrame:
    """Concatenate per-file frames, adding constant String columns (behaviour, split)."""
    frames = [f.with_columns(pl.lit(v, pl.String).alias(k) for k, v in extra.items()) for f, extra in parts]
    return pl.concat(frames, how="vertical")


# ---------------------------------------------------------------- datasets


@register_dataset(
    "synthetic",
    description="embedded simulator: Zipf catalogue, sparse interests, funnel, planted migration",
    folder=None,
    given_split=False,
    target="buy",
    timestamps=True,
    categories=True,
)
def load_synthetic(cfg: DataConfig, seed: int = 0) -> RawLog:
    """Simulate a log with :func:`gnnrec.data.synthetic.simulate` (settings ``data.synthetic``).

    ``meta["ground_truth"]`` holds the planted interests and migrations, one row per user.
    """
    log, truth = simulate(cfg.synthetic, seed)
    s = cfg.synthetic
    return RawLog(
        frame=log,
        source=f"synthetic(seed={seed}, users={s.num_users}, items={s.num_items})",
        target_behavior="buy",
        meta={"ground_truth": truth},
    )


@register_dataset(
    "file",
    description="a generic behaviour log (data.path: CSV/TSV, optionally .gz, or Parquet)",
    folder=None,
    given_split=False,
    target="auto",
    timestamps=True,
    categories=True,
)
def load_file(cfg: DataConfig, seed: int = 0) -> RawLog:
    """Read ``cfg.path`` with :func:`gnnrec.data.ingest.read_log`.

    ``data.format``, ``data.has_header``, ``data.delimiter`` and ``data.columns`` are passed on.
    If a ``<stem>.ground_truth.parquet`` file lies beside the log (as written by
    :func:`gnnrec.data.synthetic.write_synthetic`), it is loaded into ``meta["ground_truth"]``.

    Raises:
        ConfigError: ``data.path`` is not set.
    """
    if cfg.path is None:
        raise ConfigError("data.path is required for data.dataset 'file' (the log file to read)")
    raw = read_log(
        cfg.path,
        format=cfg.format,
        has_header=cfg.has_header,
        delimiter=cfg.delimiter,
        columns=dict(cfg.columns),
    )
    truth = ground_truth_path(cfg.path)
    if Path(cfg.path).suffix == ".parquet" and truth.is_file():
        raw.meta["ground_truth"] = pl.read_parquet(truth)
    return raw


#: Taobao UserBehavior's official period, 2017-11-25 .. 2017-12-03 in China time (UTC+8),
#: as [start, end) Unix seconds; rows outside it exist in the raw data
TAOBAO_PERIOD: tuple[int, int] = (1511539200, 1512316800)
TAOBAO_FILES: dict[str, str] = {
    "head": "UserBehavior_head_whole_users.csv.gz",
    "timeslice": "UserBehavior_timeslice_20171126.csv.gz",
}
TAOBAO_BEHAVIOR_MAP: dict[str, str] = {"pv": "view", "cart": "cart", "fav": "fav", "buy": "buy"}


@register_dataset(
    "taobao",
    description="Taobao UserBehavior samples (Tianchi 649): pv/cart/fav/buy with categories, time",
    folder="taobao-userbehavior",
    given_split=False,
    target="buy",
    timestamps=True,
    categories=True,
    variants=tuple(TAOBAO_FILES),
)
def load_taobao(cfg: DataConfig, seed: int = 0) -> RawLog:
    """Taobao UserBehavior (headerless ``user,item,category,behavior,timestamp``).

    Variants: ``head`` (default; 84,287 rows, the complete histories of 814 users) and
    ``timeslice`` (96,168 rows of all users in a 2-hour window; ~1.6 events per user).
    Behaviour ``pv`` is mapped to ``view``; the target is ``buy``.

    Data caveats (see SOURCE.md): the head sample has 35 rows outside the official period
    :data:`TAOBAO_PERIOD` (as early as 2017-09-11), and one item appears with two category
    ids (validation rejects its rows after the first category seen). Configs should set
    ``data.time_range: [1511539200, 1512316800]`` with ``data.on_error: drop``: validation then
    drops and counts 35 ``timestamp_out_of_range`` rows and 1 ``conflicting_category`` row of
    the head sample; with ``on_error: fail`` it stops at the first of them.
    ``meta["official_period"]`` holds the period.
    """
    path = dataset_dir(cfg, "taobao") / TAOBAO_FILES[_variant(cfg, "taobao")]
    frame = _read_delimited(path, CANONICAL_COLUMNS, ",")
    return RawLog(
        frame=frame,
        source=str(path),
        behavior_map=dict(TAOBAO_BEHAVIOR_MAP),
        target_behavior="buy",
        meta={"official_period": TAOBAO_PERIOD},
    )


@register_dataset(
    "ml-100k",
    description="MovieLens 100K ratings as implicit feedback; category = one genre per movie",
    folder="movielens-100k",
    given_split=False,
    target=None,
    timestamps=True,
    categories=True,
)
def load_ml100k(cfg: DataConfig, seed: int = 0) -> RawLog:
    """MovieLens 100K: every rating (1-5) is one implicit interaction.

    The log has no behaviour column: validation gives every row ``data.default_behavior``
    (``view`` by default), which is also the target behaviour. Ratings are not kept (use a
    ``file`` log if rating thresholds are needed).

    Category rule: the interaction table has one integer category per item, but movies have up
    to six genre flags. An item's category is the ``u.genre`` index (0-18) of its first flagged
    genre in ``u.genre`` order (1 Action, 2 Adventure, ..., 18 Western), skipping ``unknown``
    (0); 0 only when no other flag is set (2 movies); missing when no flag is set (none in the
    real file). Extras, all with String ids: ``meta["category_names"]`` (category, name),
    ``meta["item_genres"]`` (item, list of all its genre names), ``meta["item_title"]``
    (item, title) and ``meta["item_features"]`` (item, title, year: the release year, null
    when ``u.item`` has no date), the item table of :mod:`gnnrec.features`.
    """
    folder = dataset_dir(cfg, "ml-100k") / "raw"
    ratings = _read_delimited(folder / "u.data.gz", ("user", "item", "rating", "timestamp"), "\t")

    genre_path = folder / "u.genre"
    genres = _read_delimited(genre_path, ("name", "category"), "|").filter(pl.col("name").is_not_null())
    names = genres["name"].to_numpy()
    n_genres = names.shape[0]
    if genres["category"].to_list() != [str(i) for i in range(n_genres)] or names[0] != "unknown":
        raise DataError(
            "expected lines 'name|index' with indices 0, 1, ... in order, genre 0 'unknown'",
            file=str(genre_path),
        )

    item_path = folder / "u.item"
    fields = ("item", "title", "release", "video_release", "url") + tuple(f"g{i}" for i in range(n_genres))
    items = _read_delimited(item_path, fields, "|", encoding="latin-1")
    if items["item"].n_unique() != items.height:
        raise DataError("item ids must be unique", file=str(item_path))
    try:
        flags = items.select(pl.col(f"g{i}").cast(pl.Int8) for i in range(n_genres)).to_numpy() == 1
    except pl.exceptions.PolarsError:
        raise DataError("genre flags must be 0 or 1", file=str(item_path)) from None
    # first real genre (index >= 1) in u.genre order; 'unknown' (0) only when no other flag
    real = flags[:, 1:]
    first = np.where(real.any(axis=1), real.argmax(axis=1) + 1, np.where(flags[:, 0], 0, -1))
    item_cat = pl.DataFrame(
        {"item": items["item"], "category": first},
        schema={"item": pl.String, "category": pl.Int64},
    ).select(
        "item", pl.when(pl.col("category") >= 0).then(pl.col("category").cast(pl.String)).alias("category")
    )

    frame = (
        ratings.join(item_cat, on="item", how="left")
        .sort(ROW_COLUMN)
        .select("user", "item", "category", "timestamp", ROW_COLUMN)
    )
    rows, cols = np.nonzero(flags)  # row-major, so genres come in u.genre order per item
    item_genres = (
        pl.DataFrame({"item": items["item"].to_numpy()[rows], "genre": names[cols]})
        .group_by("item", maintain_order=True)
        .agg(pl.col("genre").alias("genres"))
    )
    return RawLog(
        frame=frame,
        source=str(folder / "u.data.gz"),
        target_behavior=cfg.default_behavior,
        meta={
            "category_names": genres.select("category", "name"),
            "item_genres": item_genres,
            "item_title": items.select("item", "title"),
            # item table for gnnrec.features: title (text), release year (numeric, null if unknown)
            "item_features": items.select(
                "item",
                "title",
                pl.col("release").str.slice(-4).cast(pl.Int64, strict=False).alias("year"),
            ),
        },
    )


@register_dataset(
    "gowalla",
    description="LightGCN/NGCF Gowalla check-ins: implicit, given train/test split",
    folder="lightgcn-gowalla",
    given_split=True,
    target=None,
    timestamps=False,
    categories=False,
)
def load_gowalla(cfg: DataConfig, seed: int = 0) -> RawLog:
    """The Gowalla benchmark split of NGCF/LightGCN (29,858 users, 40,981 items).

    ``train.txt.gz`` / ``test.txt.gz`` hold lines ``user item item ...``; the ``split`` column
    says which file a pair came from (``train`` / ``test``), and ``_row`` is the line in that
    file. No timestamps, categories or behaviours: every pair gets ``data.default_behavior``,
    which is the target.
    """
    folder = dataset_dir(cfg, "gowalla")
    parts = [(_read_adjacency(folder / f"{s}.txt.gz"), {SPLIT_COLUMN: s}) for s in ("train", "test")]
    return RawLog(
        frame=_concat_files(parts).select("user", "item", SPLIT_COLUMN, ROW_COLUMN),
        source=str(folder / "{train,test}.txt.gz"),
        target_behavior=cfg.default_behavior,
        meta={"file_rows": {f"{s}.txt.gz": p[0].height for s, p in zip(("train", "test"), parts)}},
    )


#: given split of each Tmall (MB-CGCN) file, per variant
TMALL_SPLITS: dict[str, dict[str, str]] = {
    # MB-CGCN: view/cart graphs from *_train only; their held-out items are not used
    "mbcgcn": {
        "view_train": "train",
        "cart_train": "train",
        "buy_train": "train",
        "view_test": "unused",
        "cart_test": "unused",
        "buy_test": "test",
    },
    # MuLe / DA-GCN: view and cart = train ∪ test, buy_test held out
    "mule": {
        "view_train": "train",
        "cart_train": "train",
        "buy_train": "train",
        "view_test": "train",
        "cart_test": "train",
        "buy_test": "test",
    },
}


@register_dataset(
    "tmall-mb",
    description="Tmall view/cart/buy split of MB-CGCN (leave-one-out buy test), target buy",
    folder="tmall-mbcgcn",
    given_split=True,
    target="buy",
    timestamps=False,
    categories=False,
    variants=tuple(TMALL_SPLITS),
)
def load_tmall_mb(cfg: DataConfig, seed: int = 0) -> RawLog:
    """The multi-behaviour Tmall split released with MB-CGCN (15,449 users, 11,953 items).

    Files ``{view,cart,buy}_{train,test}.txt.gz`` hold tab-separated ``user item item ...``
    lines. The ``behavior`` column is the file's behaviour; ``split`` follows the variant:

    * ``mbcgcn`` (default, as MB-CGCN): ``*_train`` → ``train``, ``buy_test`` → ``test``,
      ``view_test`` / ``cart_test`` → ``unused`` (kept as rows so they are counted as
      excluded by the split, not silently dropped);
    * ``mule`` (as MuLe and DA-GCN): ``view_test`` / ``cart_test`` also → ``train``.

    ``_row`` is the line in the pair's own file; ``meta["file_rows"]`` counts pairs per file.
    """
    folder = dataset_dir(cfg, "tmall-mb")
    mapping = TMALL_SPLITS[_variant(cfg, "tmall-mb")]
    parts = []
    for stem, split in mapping.items():
        behavior = stem.split("_")[0]
        parts.append(
            (_read_adjacency(folder / f"{stem}.txt.gz"), {"behavior": behavior, SPLIT_COLUMN: split})
        )
    frame = _concat_files(parts).select("user", "item", "behavior", SPLIT_COLUMN, ROW_COLUMN)
    return RawLog(
        frame=frame,
        source=str(folder / "{view,cart,buy}_{train,test}.txt.gz"),
        target_behavior="buy",
        meta={"file_rows": {f"{stem}.txt.gz": p[0].height for stem, p in zip(mapping, parts)}},
    )


# ---------------------------------------------------------------- session datasets (SR-GNN format)

#: behaviour of a training-session click (the target) and of a test prefix click (context
#: the model reads but never trains on); configs set ``data.behaviors: [context, click]``
SESSION_BEHAVIORS: tuple[str, str] = ("context", "click")


def _session_lines(path: Path) -> pl.DataFrame:
    """Non-blank lines of a text file with their 1-based line number ``_row``."""
    text = _decode(_read_bytes(path), path)
    lines = pl.Series("line", text.splitlines(), dtype=pl.String)
    return pl.DataFrame([lines]).with_columns(
        pl.int_range(1, lines.len() + 1, dtype=pl.Int64).alias(ROW_COLUMN)
    )


def _explode_items(frame: pl.DataFrame, column: str, path: Path, what: str) -> pl.DataFrame:
    """Space-separated item ids of ``column`` → one row per item with its 1-based position
    ``pos``; every id must be a positive integer (0 is SR-GNN's padding id).

    Raises:
        DataError: a token that is not a positive integer (file, line and column named).
    """
    out = (
        frame.with_columns(pl.col(column).str.strip_chars().str.split(" ").alias("_tok"))
        .with_columns(pl.int_ranges(1, pl.col("_tok").list.len() + 1).alias("pos"))
        .explode(["_tok", "pos"])
        .with_columns(pl.col("_tok").cast(pl.Int64, strict=False).alias("item"))
    )
    bad = out.filter(pl.col("item").is_null() | (pl.col("item") < 1))
    if bad.height:
        r = bad.row(0, named=True)
        raise DataError(
            f"{what} must be space-separated positive integer item ids",
            file=str(path),
            row=int(r[ROW_COLUMN]),
            column=what,
            value=r["_tok"],
        )
    return out.drop("_tok")


def _load_session_dataset(cfg: DataConfig, name: str) -> RawLog:
    """Read ``train_sessions.txt.gz`` and ``test.txt.gz`` (SR-GNN / GCE-GNN format).

    Training sessions are lines of item ids in click order; every session becomes a "user"
    (id = its line) whose clicks have behaviour ``click`` (the target), timestamp = position in
    the session (1, 2, ...) and split ``train``. The trainer's sequential models expand them
    into prefix → next-item examples, as SR-GNN does (its ``train.txt``).

    Test lines ``prefix<TAB>target`` are already prefix-expanded; each becomes its own user
    ``q<line>``: the prefix clicks are behaviour ``context`` with split ``train`` (history
    the model reads at evaluation, never a training target: ``train.positives: target`` and
    the sequential models only train on ``click`` events), and the target is a ``click``
    with split ``test`` and timestamp ``len(prefix) + 1``, so the whole history strictly
    precedes it. Graph models (LightGCN, ...) do see context rows as edges.

    SR-GNN protocol checks, counted in ``meta["dropped"]`` (never silently): training
    sessions shorter than 2 clicks (``session_too_short``), blank lines (``blank_line``),
    test prefix items not seen in training (``test_item_not_in_train``, removed from the
    prefix), test examples whose target is not seen in training (``test_target_not_in_train``)
    or whose prefix is empty after that (``test_prefix_empty``).

    Raises:
        DataError: missing file, or a malformed line (file, 1-based line and column named).
    """
    folder = dataset_dir(cfg, name)
    train_path, test_path = folder / "train_sessions.txt.gz", folder / "test.txt.gz"
    dropped: dict[str, int] = {}

    tr = _session_lines(train_path)
    test_base = tr.height  # test example users are numbered after the training lines
    blank = tr["line"].str.strip_chars().str.len_chars() == 0
    dropped["blank_line"] = int(blank.sum())
    tr = tr.filter(~blank)
    tr = _explode_items(tr, "line", train_path, "session")
    length = pl.col("pos").max().over(ROW_COLUMN)
    dropped["session_too_short"] = int(tr.filter(length < 2).select(pl.col(ROW_COLUMN).n_unique()).item())
    tr = tr.filter(length >= 2)
    train_items = tr["item"].unique()

    te = _session_lines(test_path)
    blank = te["line"].str.strip_chars().str.len_chars() == 0
    dropped["blank_line"] += int(blank.sum())
    te = te.filter(~blank).with_columns(pl.col("line").str.split("\t").alias("_f"))
    wrong = te.filter(pl.col("_f").list.len() != 2)
    if wrong.height:
        r = wrong.row(0, named=True)
        raise DataError(
            "expected 'prefix items<TAB>target item' (exactly one tab)",
            file=str(test_path),
            row=int(r[ROW_COLUMN]),
            column="target",
            value=r["line"],
        )
    te = te.select(
        pl.col("_f").list.get(0).alias("prefix"),
        pl.col("_f").list.get(1).str.strip_chars().alias("target"),
        ROW_COLUMN,
    )
    target = te.with_columns(pl.col("target").cast(pl.Int64, strict=False).alias("item"))
    bad = target.filter(pl.col("item").is_null() | (pl.col("item") < 1))
    if bad.height:
        r = bad.row(0, named=True)
        raise DataError(
            "target must be one positive integer item id",
            file=str(test_path),
            row=int(r[ROW_COLUMN]),
            column="target",
            value=r["target"],
        )
    unseen_target = ~target["item"].is_in(train_items.implode())
    dropped["test_target_not_in_train"] = int(unseen_target.sum())
    target = target.filter(~unseen_target).select(ROW_COLUMN, "item")
    prefix = _explode_items(te.select("prefix", ROW_COLUMN), "prefix", test_path, "prefix")
    prefix = prefix.filter(pl.col(ROW_COLUMN).is_in(target[ROW_COLUMN].implode()))
    seen = prefix["item"].is_in(train_items.implode())
    dropped["test_item_not_in_train"] = int((~seen).sum())
    prefix = prefix.filter(seen).drop("prefix")
    # positions renumbered after removing unseen items, so the target follows the prefix
    prefix = prefix.with_columns(pl.int_range(1, pl.len() + 1).over(ROW_COLUMN).alias("pos"))
    plen = prefix.group_by(ROW_COLUMN).agg(pl.len().alias("n"))
    target = target.join(plen, on=ROW_COLUMN, how="left")
    empty = target["n"].is_null()
    dropped["test_prefix_empty"] = int(empty.sum())
    target = target.filter(~empty).with_columns((pl.col("n") + 1).alias("pos"))

    # user ids: training session = its line; test example = (training lines) + its line
    def part(df: pl.DataFrame, base: int, behavior: str, split: str) -> pl.DataFrame:
        return df.select(
            (pl.col(ROW_COLUMN) + base).cast(pl.Int64).alias("user"),
            pl.col("item").cast(pl.Int64),
            pl.lit(behavior).alias("behavior"),
            pl.col("pos").cast(pl.Int64).alias("timestamp"),
            pl.lit(split).alias(SPLIT_COLUMN),
            pl.col(ROW_COLUMN).cast(pl.Int64),
        )

    frame = pl.concat(
        [
            part(tr, 0, "click", "train"),
            part(prefix, test_base, "context", "train"),
            part(target, test_base, "click", "test"),
        ]
    )
    return RawLog(
        frame=frame,
        source=str(folder / "{train_sessions,test}.txt.gz"),
        behavior_map={b: b for b in SESSION_BEHAVIORS},
        target_behavior="click",
        meta={
            "dropped": {k: v for k, v in dropped.items() if v},
            "protocol": "session",
            "num_train_sessions": int(tr[ROW_COLUMN].n_unique()),
            "num_test_examples": int(target.height),
        },
    )


def _register_session(name: str, folder: str, description: str) -> None:
    def loader(cfg: DataConfig, seed: int = 0) -> RawLog:
        return _load_session_dataset(cfg, name)

    loader.__doc__ = _load_session_dataset.__doc__
    register_dataset(
        name,
        description=description,
        folder=folder,
        given_split=True,
        target="click",
        timestamps=True,
        categories=False,
    )(loader)


_register_session(
    "diginetica-session",
    "diginetica-session",
    "Diginetica sessions, SR-GNN/GCE-GNN split (prefix -> next item, P@20/MRR@20)",
)
# the short name lets experiments be called <model>-diginetica.yaml
_register_session("diginetica", "diginetica-session", "alias of diginetica-session")
_register_session(
    "tmall-session", "tmall-session", "Tmall sessions, GCE-GNN split (prefix -> next item, P@20/MRR@20)"
)


@register_dataset(
    "amazon-grocery",
    description="Amazon Grocery_and_Gourmet_Food 5-core (ReChorus): implicit, time, one category per item",
    folder="amazon-grocery-rechorus",
    given_split=False,
    target=None,
    timestamps=True,
    categories=True,
)
def load_amazon_grocery(cfg: DataConfig, seed: int = 0) -> RawLog:
    """ReChorus's Amazon Grocery_and_Gourmet_Food (14,681 users, 8,687 items, 121,892 events).

    ``train.csv.gz`` (tab-separated, header ``user_id item_id time``; time in Unix seconds at
    day resolution) is the whole log: ReChorus's own dev/test files are not in the snapshot
    (see SOURCE.md), so splits are ours. Every row is one implicit interaction with
    ``data.default_behavior`` (the target). ``item_meta.csv.gz`` gives one Amazon level-2
    category per item (``i_category``); its value 0 ("none", no level-2 category) is kept as a
    category of its own, since validation requires a category on every row of a log that has
    the column (an item absent from the metadata would be reported there). ``_row`` is the 1-based data row of ``train.csv.gz`` (header excluded).
    ``meta["item_relations"]`` keeps ``r_complement`` / ``r_substitute`` (raw strings).
    """
    folder = dataset_dir(cfg, "amazon-grocery")
    path = folder / "train.csv.gz"
    log = _read_delimited(path, ("user", "item", "timestamp"), "\t")
    head = log.row(0, named=True) if log.height else {}
    if (head.get("user"), head.get("item"), head.get("timestamp")) != ("user_id", "item_id", "time"):
        raise DataError("expected the header line 'user_id<TAB>item_id<TAB>time'", file=str(path))
    # data rows numbered from 1 after the header, as DataError reports rows
    log = log.filter(pl.col(ROW_COLUMN) > 1).with_columns(pl.col(ROW_COLUMN) - 1)
    meta_path = folder / "item_meta.csv.gz"
    meta = _read_delimited(meta_path, ("item", "category", "r_complement", "r_substitute"), "\t")
    meta = meta.filter(pl.col(ROW_COLUMN) > 1)
    frame = log.join(meta.select("item", "category"), on="item", how="left").sort(ROW_COLUMN)
    return RawLog(
        frame=frame.select("user", "item", "category", "timestamp", ROW_COLUMN),
        source=str(path),
        target_behavior=cfg.default_behavior,
        meta={"item_relations": meta.select("item", "r_complement", "r_substitute")},
    )
