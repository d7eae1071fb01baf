"""Interest tags of a user: top categories with model weights and a behavioural trend.

* **Weight** — what the trained model believes: the user's category interest weights of
  :func:`gnnrec.eval.interest.user_category_interest` (softmax over categories of the user's
  mean score over each category's items).
* **Trend** — what the user's recent behaviour says, from TRAIN rows only (the history the
  model was trained on; ``drift.behaviors`` selects the behaviours). The user's events are
  cut into the per-user windows of the ``drift:`` config and the last
  ``ceil(drift.recent_share * W)`` non-empty windows are *recent* (the same split as the
  drift score; default: the last quarter of the user's events), the rest *earlier*. For each
  category, ``delta = recent share - earlier share`` of the user's events:

  - ``rising`` when ``delta >= TREND_DELTA`` (default 0.10, i.e. ten share points),
  - ``fading`` when ``delta <= -TREND_DELTA``,
  - ``stable`` otherwise (including categories the user never touched),
  - ``unknown`` when the recent or the earlier part has fewer than ``drift.min_events``
    events (too little behaviour to speak of a trend), or the log has no timestamps.

:func:`interest_tags` does it from a finished run directory (``config.yaml``, ``model.pt``,
``split.npz``, ``vocab/``): it rebuilds the data with :func:`gnnrec.runner.prepare_data`,
checks the split is the one the run used, rebuilds the model with
:func:`gnnrec.models.build_model` and loads the weights. ``gnnrec interests`` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from gnnrec.config import DriftConfig
from gnnrec.data.types import TRAIN, InteractionTable, Split
from gnnrec.errors import GnnrecError
from gnnrec.runs import LoadedRun, load_run

__all__ = ["TREND_DELTA", "category_trends", "interest_tags", "user_interest_tags"]

#: share-point change between earlier and recent behaviour that makes a trend rising / fading
TREND_DELTA = 0.10

_TREND_SCHEMA = {
    "user": pl.Int64,
    "category": pl.Int64,
    "recent_share": pl.Float64,
    "earlier_share": pl.Float64,
    "trend": pl.String,
}


def category_trends(
    table: InteractionTable,
    split: Split | None,
    users: Sequence[int] | np.ndarray,
    cfg: DriftConfig | None = None,
    delta: float = TREND_DELTA,
) -> pl.DataFrame:
    """Per (user, category) recent vs earlier behaviour shares and trend (module docstring).

    Args:
        table: the interaction table.
        split: TRAIN rows only are used; ``None`` uses every row.
        users: user indices.
        cfg: ``drift:`` settings (windows, behaviours, ``recent_share``, ``min_events``).
        delta: share-point threshold of rising / fading.

    Returns:
        One row per (user, category) the user has TRAIN events in: ``user``, ``category``
        (index), ``recent_share``, ``earlier_share``, ``trend``. Users without a
        trend-able history get their categories with trend ``unknown``.
    """
    from gnnrec.drift.analysis import user_windows

    cfg = cfg if cfg is not None else DriftConfig()
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    rows = np.isin(table.user, users)
    if split is not None:
        rows &= split.assign == TRAIN
    if table.ts is None:
        # no time order: shares over all events, trend unknown
        ts = np.zeros(len(table), dtype=np.int64)
        table = _with_ts(table, ts)
        no_time = True
    else:
        no_time = False
    counts = user_windows(table, cfg, rows)
    nw = counts.num_windows
    r = max(1, int(np.ceil(cfg.recent_share * nw)))
    nonempty = counts.events > 0
    from_end = np.cumsum(nonempty[:, ::-1], axis=1)[:, ::-1]
    recent_uw = nonempty & (from_end <= r)
    is_recent = recent_uw[counts.user, counts.window]
    nc = max(counts.num_categories, 1)
    key = counts.user * nc + counts.category
    uniq, inv = np.unique(key, return_inverse=True)
    rec = np.bincount(inv, weights=np.where(is_recent, counts.count, 0), minlength=uniq.size)
    ear = np.bincount(inv, weights=np.where(is_recent, 0, counts.count), minlength=uniq.size)
    owner = uniq // nc
    n_rec = np.bincount(owner, weights=rec, minlength=counts.num_users)[owner]
    n_ear = np.bincount(owner, weights=ear, minlength=counts.num_users)[owner]
    with np.errstate(invalid="ignore", divide="ignore"):
        rs = np.where(n_rec > 0, rec / n_rec, 0.0)
        es = np.where(n_ear > 0, ear / n_ear, 0.0)
    d = rs - es
    trend = np.where(d >= delta, "rising", np.where(d <= -delta, "fading", "stable"))
    unknown = (n_rec < cfg.min_events) | (n_ear < cfg.min_events) | no_time
    trend = np.where(unknown, "unknown", trend)
    return pl.DataFrame(
        {"user": owner, "category": uniq % nc, "recent_share": rs, "earlier_share": es, "trend": trend},
        schema=_TREND_SCHEMA,
    )


def _with_ts(table: InteractionTable, ts: np.ndarray) -> InteractionTable:
    from dataclasses import replace

    return replace(table, ts=ts)


def user_interest_tags(
    model: Any,
    emb: Any,
    data: Any,
    table: InteractionTable,
    split: Split | None,
    users: Sequence[int] | np.ndarray,
    cfg: DriftConfig | None = None,
    top: int = 5,
    delta: float = TREND_DELTA,
) -> pl.DataFrame:
    """Top-``top`` categories per user by model weight, with their behavioural trend.

    Args:
        model, emb, data: a trained recommender, its embeddings and the training data.
        table, split: the run's interaction table and split (trends from TRAIN rows).
        users: user indices.
        cfg: ``drift:`` settings for the trend.
        top: categories per user.
        delta: share-point threshold of rising / fading.

    Returns:
        ``user``, ``rank`` (1 = heaviest), ``category`` (index), ``category_id`` (the
        dataset's id), ``weight``, ``recent_share``, ``earlier_share``, ``trend``; plus
        ``name`` when the dataset names its categories (``meta["category_names"]``).
    """
    from gnnrec.eval.interest import user_category_interest

    users = np.asarray(users, dtype=np.int64).reshape(-1)
    weights = user_category_interest(model, emb, data, users, top=top)
    trends = category_trends(table, split, users, cfg, delta)
    out = (
        weights.with_columns(pl.int_range(1, pl.len() + 1).over("user").cast(pl.Int64).alias("rank"))
        .join(trends, on=["user", "category"], how="left")
        .with_columns(
            pl.col("recent_share").fill_null(0.0),
            pl.col("earlier_share").fill_null(0.0),
            pl.col("trend").fill_null("stable"),
        )
    )
    # users whose history is too short: every category unknown, not only those they touched
    short = trends.filter(pl.col("trend") == "unknown")["user"].unique().to_list()
    short += np.setdiff1d(users, trends["user"].to_numpy()).tolist()  # no TRAIN events at all
    if table.ts is None:
        short = users.tolist()
    out = out.with_columns(
        pl.when(pl.col("user").is_in(short)).then(pl.lit("unknown")).otherwise(pl.col("trend")).alias("trend")
    )
    cat_ids = table.category_ids.astype(str)
    out = out.with_columns(pl.Series("category_id", cat_ids[out["category"].to_numpy()]))
    cols = ["user", "rank", "category", "category_id", "weight", "recent_share", "earlier_share", "trend"]
    names = table.meta.get("category_names")
    if isinstance(names, pl.DataFrame) and {"category", "name"} <= set(names.columns):
        lookup = names.select(
            pl.col("category").cast(pl.String).alias("category_id"), pl.col("name").cast(pl.String)
        )
        out = out.join(lookup, on="category_id", how="left")
        cols.append("name")
    return out.select(cols).sort(["user", "rank"])


def _vocab_index(run_dir: Path, user_id: str) -> int:
    path = run_dir / "vocab" / "users.csv"
    if not path.is_file():
        raise GnnrecError(f"{path}: not found (is {run_dir} a finished run directory?)")
    vocab = pl.read_csv(path, schema_overrides={"index": pl.Int64, "id": pl.String})
    hit = vocab.filter(pl.col("id") == str(user_id))
    if hit.height == 0:
        raise GnnrecError(
            f"user '{user_id}' is not in {path} (ids are the run's raw or pseudonymised user ids)"
        )
    return int(hit["index"][0])


def interest_tags(
    run_dir: str | Path,
    user_id: str,
    top: int = 5,
    *,
    delta: float = TREND_DELTA,
    run: LoadedRun | None = None,
) -> pl.DataFrame:
    """Interest tags of one user of a finished run (see the module docstring).

    Args:
        run_dir: the run directory.
        user_id: the user's id as in ``vocab/users.csv`` (raw or pseudonymised).
        top: categories to return.
        delta: share-point threshold of rising / fading.
        run: an already loaded run (skips :func:`load_run`).

    Returns:
        As :func:`user_interest_tags`, with ``user_id`` instead of ``user``.

    Raises:
        GnnrecError: unknown user, or a missing / inconsistent run directory.
    """
    d = Path(run_dir)
    index = _vocab_index(d, user_id)
    loaded = run if run is not None else load_run(d)
    p = loaded.prepared
    if str(p.table.user_ids[index]) != str(user_id):
        raise GnnrecError(f"{d}: vocab/users.csv does not match the rebuilt data (user '{user_id}')")
    tags = user_interest_tags(
        loaded.model, loaded.emb, p.data, p.table, p.split, [index], loaded.cfg.drift, top, delta
    )
    return (
        tags.drop("user")
        .with_columns(pl.lit(str(user_id)).alias("user_id"))
        .select(["user_id", *[c for c in tags.columns if c != "user"]])
    )
