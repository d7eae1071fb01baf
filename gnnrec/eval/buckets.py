"""Evaluation buckets: test metrics per group of users (``metrics.json`` → ``buckets``).

Two groupings of the evaluated users, both computed from **TRAIN rows only** (the history a
model could see; valid / test / excluded events never decide a user's bucket):

* **History length** (:func:`history_length_buckets`): the number of the user's TRAIN
  events of the *target* behaviour (``drift.history_behavior: target``, default: the
  behaviour that is evaluated, so a user in bucket ``0`` has no training purchase) or of all
  behaviours (``all``). Default edges ``drift.history_buckets = (0, 1, 3, 6, 11)`` give the
  buckets ``0``, ``1-2``, ``3-5``, ``6-10`` and ``>10`` events (the cold-start buckets).
* **Drift** (:func:`drift_buckets`): ``"migrating"`` when the user's drift score — the
  Jensen–Shannon divergence (bits) of the category distribution of their recent TRAIN windows
  vs their earlier TRAIN windows (:func:`gnnrec.drift.score.drift_scores`, windows and
  behaviours of the ``drift:`` config) — is at least ``drift.bucket_threshold`` **and** the
  difference is significant (G-test p-value <= ``drift.alpha``: plain JS of small samples
  over many categories is large by chance alone, e.g. for real logs where users browse
  dozens of categories); ``"stable"`` otherwise; ``"unknown"`` when the user has fewer than
  ``drift.min_events`` TRAIN events on either side (no score). Needs timestamps and item
  categories; otherwise the ``drift`` section is empty and ``drift_unavailable`` says why.

The ``metrics.json`` section (:func:`evaluation_buckets`, test users)::

    "buckets": {
      "history_length": {"0": {"recall@20": ..., "ndcg@20": ..., "users": 12}, "1-2": {...}, ...},
      "drift": {"stable": {...}, "migrating": {...}, "unknown": {...}},
      "info": {"split": "test", "history_behavior": "target", "history_edges": [0, 1, 3, 6, 11],
               "drift_threshold": 0.2, "drift_alpha": 0.01, "rows": "train"}
    }

Every bucket is listed, empty ones with ``"users": 0`` and ``null`` metrics. Metrics are the
means of the per-user metrics of the bucket's users.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from gnnrec.config import DriftConfig
from gnnrec.data.types import TRAIN, InteractionTable, Split
from gnnrec.drift.score import DriftScores, drift_scores
from gnnrec.errors import ConfigError, GnnrecError

__all__ = [
    "DRIFT_LABELS",
    "HISTORY_EDGES",
    "bucket_metrics",
    "drift_buckets",
    "drift_labels",
    "evaluation_buckets",
    "history_labels",
    "history_length",
    "history_length_buckets",
]

#: lower edges of the default history-length buckets: 0, 1-2, 3-5, 6-10, >10 events
HISTORY_EDGES: tuple[int, ...] = (0, 1, 3, 6, 11)
#: drift bucket labels, in report order
DRIFT_LABELS: tuple[str, ...] = ("stable", "migrating", "unknown")


def history_labels(edges: Sequence[int] = HISTORY_EDGES) -> list[str]:
    """Bucket labels of lower ``edges``: ``(0, 1, 3, 6, 11)`` → ``0, 1-2, 3-5, 6-10, >10``.

    Raises:
        ConfigError: edges that do not start at 0 or do not increase strictly.
    """
    e = [int(x) for x in edges]
    if not e or e[0] != 0 or any(b <= a for a, b in itertools.pairwise(e)):
        raise ConfigError(f"history bucket edges must start at 0 and increase strictly, got {e}")
    out = []
    for lo, hi in itertools.pairwise(e):
        out.append(str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}")
    out.append(f">{e[-1] - 1}")
    return out


def _users(users: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(users, dtype=np.int64).reshape(-1)


def history_length(
    table: InteractionTable,
    split: Split,
    users: Sequence[int] | np.ndarray,
    behavior: Literal["target", "all"] = "target",
) -> np.ndarray:
    """TRAIN events per user (of the target behaviour ``split.target``, or of all).

    Returns:
        int64 array aligned with ``users``.
    """
    if behavior not in ("target", "all"):
        raise ConfigError(f"drift.history_behavior must be 'target' or 'all', got '{behavior}'")
    rows = split.assign == TRAIN
    if behavior == "target":
        rows &= table.behavior == split.target
    counts = np.bincount(table.user[rows], minlength=table.num_users)
    return counts[_users(users)].astype(np.int64)


def history_length_buckets(
    table: InteractionTable,
    split: Split,
    users: Sequence[int] | np.ndarray,
    edges: Sequence[int] = HISTORY_EDGES,
    behavior: Literal["target", "all"] = "target",
) -> np.ndarray:
    """History-length bucket label (see :func:`history_labels`) of each user in ``users``."""
    labels = np.array(history_labels(edges), dtype=object)
    n = history_length(table, split, users, behavior)
    pos = np.searchsorted(np.asarray(edges, dtype=np.int64), n, side="right") - 1
    return labels[pos].astype(str)


def drift_buckets(
    table: InteractionTable,
    split: Split,
    users: Sequence[int] | np.ndarray,
    cfg: DriftConfig | None = None,
) -> np.ndarray:
    """``"stable"`` / ``"migrating"`` / ``"unknown"`` per user by the TRAIN-only drift score.

    Raises:
        GnnrecError: the table has no timestamps or no item categories.
    """
    from gnnrec.drift.analysis import user_windows

    cfg = cfg if cfg is not None else DriftConfig()
    counts = user_windows(table, cfg, split.assign == TRAIN)
    return drift_labels(drift_scores(counts, cfg.recent_share, cfg.min_events), cfg)[_users(users)]


def drift_labels(scores: DriftScores, cfg: DriftConfig) -> np.ndarray:
    """Drift bucket of every user of ``scores``: ``migrating`` when the score is at least
    ``cfg.bucket_threshold`` *and* the G-test p-value is at most ``cfg.alpha``; ``unknown``
    without a score; ``stable`` otherwise."""
    score = scores.score
    p = scores.p_value if scores.p_value is not None else np.zeros_like(score)
    out = np.where((score >= cfg.bucket_threshold) & (p <= cfg.alpha), "migrating", "stable")
    return np.where(np.isnan(score), "unknown", out).astype(str)


def bucket_metrics(
    per_user: pl.DataFrame, labels: Sequence[str] | np.ndarray, order: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Mean of every metric column per bucket.

    Args:
        per_user: per-user metrics (column ``user`` and float metric columns; other
            non-float columns such as ``user_id`` are ignored).
        labels: bucket label per row of ``per_user``.
        order: buckets to report, in this order (empty ones get ``users: 0`` and ``None``
            metrics); default: the labels present, sorted.

    Returns:
        ``{bucket: {metric: mean or None, "users": n}}``.

    Raises:
        ValueError: ``labels`` does not have one entry per row.
    """
    lab = np.asarray(labels, dtype=str).reshape(-1)
    if lab.shape[0] != per_user.height:
        raise ValueError(f"{lab.shape[0]} labels for {per_user.height} per-user rows")
    metric_cols = [c for c, t in per_user.schema.items() if c != "user" and t.is_float()]
    keys = list(order) if order is not None else sorted(set(lab.tolist()))
    out: dict[str, dict[str, Any]] = {}
    values = {c: per_user[c].to_numpy().astype(np.float64) for c in metric_cols}
    for key in keys:  # a loop over buckets (a handful), not over users
        sel = lab == key
        n = int(sel.sum())
        entry: dict[str, Any] = {c: (float(np.nanmean(values[c][sel])) if n else None) for c in metric_cols}
        entry["users"] = n
        out[key] = entry
    return out


def evaluation_buckets(
    table: InteractionTable, split: Split, per_user: pl.DataFrame, cfg: DriftConfig | None = None
) -> dict[str, Any]:
    """The ``buckets`` section of ``metrics.json`` for one evaluation (module docstring).

    Args:
        table, split: the run's data.
        per_user: the evaluator's per-user metrics (column ``user`` = contiguous id).
        cfg: the ``drift:`` settings (default settings when ``None``).
    """
    cfg = cfg if cfg is not None else DriftConfig()
    users = per_user["user"].to_numpy().astype(np.int64)
    hist = history_length_buckets(table, split, users, cfg.history_buckets, cfg.history_behavior)
    out: dict[str, Any] = {
        "history_length": bucket_metrics(per_user, hist, history_labels(cfg.history_buckets)),
        "drift": {},
        "info": {
            "history_behavior": cfg.history_behavior,
            "history_edges": list(cfg.history_buckets),
            "drift_threshold": cfg.bucket_threshold,
            "drift_alpha": cfg.alpha,
            "rows": "train",
        },
    }
    try:
        labels = drift_buckets(table, split, users, cfg)
    except GnnrecError as err:
        out["drift_unavailable"] = str(err)
    else:
        out["drift"] = bucket_metrics(per_user, labels, DRIFT_LABELS)
    return out
