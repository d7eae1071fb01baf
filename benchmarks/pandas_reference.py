"""A straightforward pandas implementation of gnnrec's ingest → split → graph pipeline.

This is the reference that ``benchmarks/ingest_throughput.py`` measures gnnrec against. It is
written the way a data scientist would write it with pandas / numpy / scipy.sparse —
``pd.read_csv``, per-column checks with pandas ops, ``pd.factorize`` for ids, a groupby-based
per-user random split, ``drop_duplicates`` / ``groupby`` for edges and a scipy.sparse
normalised adjacency — idiomatic, not deliberately slow, and not tuned either.

It reproduces the semantics of the gnnrec stages for the benchmark's configuration (default
:class:`~gnnrec.config.DataConfig` behaviour vocabulary, ``on_error="drop"``, no k-core filter,
no pseudonymisation, ``split.mode`` random or temporal with the default ratios, all behaviours
as edge types, ``positives="target"``), so that both produce identical counts and the speed
ratio compares equal work:

* validation reasons and their precedence (:mod:`gnnrec.data.schema`), including exact
  duplicate rows and items seen with a second category;
* contiguous ids in sorted raw-id order (:mod:`gnnrec.data.interactions`);
* the random split's systematic sampling with the *same* random draws in the same order
  (pairs in (user, item) order, then one offset per user) and its exclusion of every other
  event of a held-out pair; the temporal split's global quantile cut-offs
  (:mod:`gnnrec.data.splits`);
* unique training edges per behaviour with last timestamp and event count, unique target
  positives, and ``D^-1/2 A D^-1/2`` over the union of training pairs
  (:mod:`gnnrec.graph.build`).

Nothing here imports gnnrec, so the reference's memory and time are its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

BEHAVIORS: tuple[str, ...] = ("view", "cart", "fav", "buy")
TARGET = "buy"
#: [1970-01-01, 2100-01-01) in Unix seconds, gnnrec's default valid time range
TIME_RANGE: tuple[int, int] = (0, 4102444800)
RATIOS: tuple[float, float, float] = (0.8, 0.1, 0.1)
MIN_USER_TARGETS = 1
TRAIN, VALID, TEST, EXCLUDED = 0, 1, 2, -1
COLUMNS: tuple[str, ...] = ("user", "item", "category", "behavior", "timestamp")


@dataclass
class Table:
    """Events with contiguous ids (the pandas counterpart of ``InteractionTable``)."""

    events: pd.DataFrame  # user, item (int64 codes), behavior (int8 code), ts (int64)
    num_users: int
    num_items: int
    num_categories: int
    item_category: np.ndarray  # int64 [num_items], -1 when unknown
    behaviors: tuple[str, ...]
    target: int
    dropped: dict[str, int]


@dataclass
class Graph:
    """Training edges and the normalised adjacency (the counterpart of ``TrainData``)."""

    edges: dict[str, pd.DataFrame]  # per behaviour: user, item, ts (last), count
    positives: pd.DataFrame  # unique training target pairs
    adj: sp.csr_matrix  # [U+I, U+I] symmetric-normalised, users first


def read(path: str | Path, fmt: str) -> pd.DataFrame:
    """Read the log with pandas' default parsers."""
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def _id_checks(df: pd.DataFrame, col: str, kind: str) -> tuple[pd.Series, list[tuple[str, pd.Series]]]:
    """Numeric values and (reason, mask) checks of an id column, in gnnrec's order."""
    raw = df[col]
    missing = raw.isna()
    if pd.api.types.is_integer_dtype(raw):  # the parser already proved every value an integer
        num, integral = raw, ~missing
    else:
        num = pd.to_numeric(raw, errors="coerce")
        integral = num.notna() & (num == np.floor(num))
    return num, [
        (f"null_{kind}", missing),
        (f"non_integer_{kind}", ~missing & ~integral),
        (f"negative_{kind}", integral & (num < 0)),
    ]


def validate(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Check every column, drop offending rows (counted under their first failed reason)."""
    checks: list[tuple[str, pd.Series]] = []
    user, c = _id_checks(df, "user", "id")
    checks += c
    item, c = _id_checks(df, "item", "id")
    checks += c
    category, c = _id_checks(df, "category", "category")
    checks += c
    behavior = df["behavior"].map({b: b for b in BEHAVIORS})
    checks.append(("unknown_behavior", behavior.isna()))
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    checks.append(("bad_timestamp", ts.isna()))
    checks.append(("timestamp_out_of_range", (ts < TIME_RANGE[0]) | (ts >= TIME_RANGE[1])))
    names = [name for name, _ in checks] + ["duplicate_row", "conflicting_category"]

    # reason code per row: 1 + index of the first failed check, 0 = valid
    code = np.select([m.to_numpy(bool) for _, m in checks], np.arange(1, len(checks) + 1), 0)
    ok = code == 0
    clean = pd.DataFrame(
        {
            "user": user[ok].astype("int64"),
            "item": item[ok].astype("int64"),
            "category": category[ok].astype("int64"),
            "behavior": behavior[ok],
            "timestamp": ts[ok].astype("int64"),
        }
    )
    # duplicates, then category conflicts, are judged among the basically valid rows
    dup = clean.duplicated().to_numpy()
    conflict = (clean.groupby("item")["category"].transform("first") != clean["category"]).to_numpy()
    late = np.select([dup, conflict], [len(checks) + 1, len(checks) + 2], 0)
    code[ok] = late
    counts = np.bincount(code, minlength=len(names) + 1)
    dropped: dict[str, int] = {}
    for k, name in enumerate(names):  # user and item share their reason names
        if counts[k + 1]:
            dropped[name] = dropped.get(name, 0) + int(counts[k + 1])
    return clean[late == 0].reset_index(drop=True), dropped


def build(df: pd.DataFrame, dropped: dict[str, int]) -> Table:
    """Contiguous ids (sorted raw ids), behaviour codes, item categories."""
    user, users = pd.factorize(df["user"], sort=True)
    item, items = pd.factorize(df["item"], sort=True)
    cat, cats = pd.factorize(df["category"], sort=True)
    behavior = pd.Categorical(df["behavior"], categories=list(BEHAVIORS)).codes
    item_category = np.full(len(items), -1, dtype=np.int64)
    first = pd.Series(cat).groupby(item).first()
    item_category[first.index.to_numpy()] = first.to_numpy()
    events = pd.DataFrame(
        {
            "user": user.astype(np.int64),
            "item": item.astype(np.int64),
            "behavior": behavior.astype(np.int8),
            "ts": df["timestamp"].to_numpy(np.int64),
        }
    )
    present = set(df["behavior"].unique())
    target = TARGET if TARGET in present else next(b for b in reversed(BEHAVIORS) if b in present)
    return Table(
        events=events,
        num_users=len(users),
        num_items=len(items),
        num_categories=len(cats),
        item_category=item_category,
        behaviors=BEHAVIORS,
        target=BEHAVIORS.index(target),
        dropped=dropped,
    )


def split(table: Table, mode: str, seed: int) -> np.ndarray:
    """Split codes per event (TRAIN / VALID / TEST / EXCLUDED)."""
    if mode == "temporal":
        return _temporal(table)
    if mode == "random":
        return _random(table, seed)
    raise ValueError(f"the reference implements random and temporal splits, not {mode!r}")


def _temporal(table: Table) -> np.ndarray:
    ev = table.events
    t_valid = int(np.ceil(ev["ts"].quantile(RATIOS[0])))
    t_test = max(int(np.ceil(ev["ts"].quantile(RATIOS[0] + RATIOS[1]))), t_valid)
    is_target = ev["behavior"] == table.target
    late = ev["ts"] >= t_valid
    assign = pd.Series(TRAIN, index=ev.index, dtype=np.int8)
    assign[late & ~is_target] = EXCLUDED
    assign[late & is_target & (ev["ts"] < t_test)] = VALID
    assign[is_target & (ev["ts"] >= t_test)] = TEST
    return assign.to_numpy()


def _random(table: Table, seed: int) -> np.ndarray:
    """Per user, shuffle the unique target pairs and cut them by the ratios with one random
    offset per user (systematic sampling); held-out pairs lose all their other events."""
    rng = np.random.default_rng(seed)
    ev = table.events.assign(row=np.arange(len(table.events)))
    target = ev[ev["behavior"] == table.target]
    # one pair per (user, item): its earliest target event (ties: first row) is the label
    pairs = target.sort_values(["user", "item", "ts", "row"]).drop_duplicates(["user", "item"])
    pairs = pairs[["user", "item", "row"]].reset_index(drop=True)
    pairs["r"] = rng.random(len(pairs))
    pairs = pairs.sort_values(["user", "r"])
    by_user = pairs.groupby("user", sort=True)
    pairs["rank"] = by_user.cumcount()
    pairs["n"] = by_user["item"].transform("size")
    users = np.sort(pairs["user"].unique())
    offset = pd.Series(rng.random(len(users)), index=users)
    pairs["q"] = (pairs["rank"] + pairs["user"].map(offset)) / pairs["n"]
    valid_share, test_share = RATIOS[1], RATIOS[2]
    train_share = 1.0 - valid_share - test_share
    label = np.where(
        pairs["q"] < train_share, TRAIN, np.where(pairs["q"] < train_share + valid_share, VALID, TEST)
    )
    label[((pairs["rank"] == 0) & (pairs["n"] >= 2)).to_numpy()] = TRAIN
    label[(pairs["n"] < MIN_USER_TARGETS).to_numpy()] = TRAIN
    pairs["label"] = label
    held = pairs[pairs["label"] != TRAIN]

    flagged = ev[["user", "item"]].merge(
        held[["user", "item"]].assign(held=True), on=["user", "item"], how="left"
    )
    assign = np.where(flagged["held"].fillna(False).to_numpy(bool), EXCLUDED, TRAIN).astype(np.int8)
    assign[held["row"].to_numpy()] = held["label"].to_numpy()
    return assign


def edges(table: Table, assign: np.ndarray) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Unique training edges per behaviour (last ts, event count) and unique positives."""
    train = table.events[assign == TRAIN]
    out: dict[str, pd.DataFrame] = {}
    for code, name in enumerate(table.behaviors):
        sub = train[train["behavior"] == code]
        if len(sub) == 0:
            continue
        out[name] = (
            sub.groupby(["user", "item"], sort=True).agg(ts=("ts", "max"), count=("ts", "size")).reset_index()
        )
    positives = train.loc[train["behavior"] == table.target, ["user", "item"]].drop_duplicates()
    return out, positives


def adjacency(table: Table, assign: np.ndarray) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` over the unique training pairs of every behaviour."""
    train = table.events[assign == TRAIN]
    pairs = train[["user", "item"]].drop_duplicates()
    u = pairs["user"].to_numpy()
    i = pairs["item"].to_numpy() + table.num_users
    n = table.num_users + table.num_items
    a = sp.coo_matrix(
        (np.ones(2 * len(pairs), dtype=np.float32), (np.concatenate([u, i]), np.concatenate([i, u]))),
        shape=(n, n),
    ).tocsr()
    deg = np.asarray(a.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        dinv = np.where(deg > 0, deg**-0.5, 0.0).astype(np.float32)
    d = sp.diags(dinv)
    return (d @ a @ d).tocsr()


def graph(table: Table, assign: np.ndarray) -> Graph:
    """Unique training edges per behaviour, positives, normalised adjacency."""
    e, positives = edges(table, assign)
    return Graph(edges=e, positives=positives, adj=adjacency(table, assign))


def summarize(table: Table, assign: np.ndarray, g: Graph, rows_read: int) -> dict[str, Any]:
    """The counts compared with gnnrec's (keys as in the benchmark's COUNT_KEYS)."""
    return {
        "rows_read": int(rows_read),
        "events": len(table.events),
        "users": table.num_users,
        "items": table.num_items,
        "categories": table.num_categories,
        "train": int((assign == TRAIN).sum()),
        "valid": int((assign == VALID).sum()),
        "test": int((assign == TEST).sum()),
        "excluded": int((assign == EXCLUDED).sum()),
        "edges": int(sum(len(e) for e in g.edges.values())),
        "edges_by_behavior": {b: len(e) for b, e in sorted(g.edges.items())},
        "positives": len(g.positives),
        "adj_nnz": int(g.adj.nnz),
        "adj_shape": [int(s) for s in g.adj.shape],
        "adj_sum": float(g.adj.sum(dtype=np.float64)),
        "dropped": dict(sorted(table.dropped.items())),
    }
