"""One call from an interaction table to drift results: windows → scores → change points →
(when the dataset has planted ground truth) precision / recall / F1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from gnnrec.config import DriftConfig
from gnnrec.data.types import InteractionTable
from gnnrec.drift.changepoint import ChangePoints, detect_change_points
from gnnrec.drift.evaluate import evaluate_detections
from gnnrec.drift.score import DriftScores, drift_scores
from gnnrec.drift.windows import WindowCounts, table_window_counts

__all__ = ["DriftReport", "analyze_table", "user_windows"]


@dataclass
class DriftReport:
    """Drift analysis of one table.

    Attributes:
        per_user: one row per user with counted events: ``user`` (index), ``user_id``,
            ``events``, ``drift_score`` (JS recent vs history, bits; null when too few
            events), ``drift_p_value`` (its G-test p-value), ``detected``, ``change_ts`` (null unless detected), ``js``,
            ``p_value``, ``before``, ``after``.
        summary: counts and settings (JSON-ready), plus ``evaluation`` (precision, recall,
            F1, tolerance, ...) when the table carries ``meta["ground_truth"]``.
        counts, scores, change_points: the intermediate results.
    """

    per_user: pl.DataFrame
    summary: dict[str, Any]
    counts: WindowCounts
    scores: DriftScores
    change_points: ChangePoints
    extra: dict[str, Any] = field(default_factory=dict)


def user_windows(table: InteractionTable, cfg: DriftConfig, rows: np.ndarray | None = None) -> WindowCounts:
    """Window counts of ``table`` with the windows, behaviours of a ``drift:`` config."""
    return table_window_counts(
        table,
        rows,
        behaviors=cfg.behaviors,
        mode=cfg.window,
        num_windows=cfg.num_windows,
        window_seconds=cfg.window_seconds,
    )


def analyze_table(
    table: InteractionTable, cfg: DriftConfig, *, rows: np.ndarray | None = None, seed: int = 0
) -> DriftReport:
    """Window the events, score drift, detect change points and, when the table has planted
    ground truth (``meta["ground_truth"]``), score the detections.

    Args:
        table: the interaction table (needs timestamps and categories).
        cfg: the ``drift:`` settings.
        rows: rows to analyse (bool mask or indices; default all).
        seed: seed of the permutation test.

    Returns:
        The :class:`DriftReport`.
    """
    counts = user_windows(table, cfg, rows)
    scores = drift_scores(counts, cfg.recent_share, cfg.min_events)
    cp = detect_change_points(
        counts,
        threshold=cfg.threshold,
        min_events=cfg.min_events,
        permutations=cfg.permutations,
        alpha=cfg.alpha,
        seed=seed,
    )
    active = cp.events > 0
    idx = np.flatnonzero(active)
    per_user = pl.DataFrame(
        {
            "user": idx.astype(np.int64),
            "user_id": table.user_ids[idx].astype(str),
            "events": cp.events[idx],
            "drift_score": scores.score[idx],
            "drift_p_value": scores.p_value[idx]
            if scores.p_value is not None
            else np.full(idx.shape, np.nan),
            "detected": cp.detected[idx],
            "change_ts": cp.change_ts[idx],
            "js": cp.js[idx],
            "p_value": cp.p_value[idx],
            "before": cp.before[idx],
            "after": cp.after[idx],
        }
    ).with_columns(
        pl.col("drift_score").fill_nan(None),
        pl.col("drift_p_value").fill_nan(None),
        pl.col("js").fill_nan(None),
        pl.col("p_value").fill_nan(None),
        pl.when(pl.col("detected")).then(pl.col("change_ts")).alias("change_ts"),
    )
    s = scores.score[idx]
    summary: dict[str, Any] = {
        "users": int(table.num_users),
        "users_with_events": int(idx.shape[0]),
        "events": int(counts.info["events"]),
        "unknown_category_events": int(counts.info["unknown_category"]),
        "windows": {"mode": counts.mode, "num_windows": int(counts.num_windows)},
        "scored_users": int(np.isfinite(s).sum()),
        "drift_score_mean": float(np.nanmean(s)) if np.isfinite(s).any() else None,
        "detected": int(cp.detected.sum()),
        "candidates": int(cp.info["candidates"]),
        "detector": cp.info,
    }
    truth = table.meta.get("ground_truth")
    if isinstance(truth, pl.DataFrame) and {"user", "migrates", "change_ts"} <= set(truth.columns):
        det = per_user.filter(pl.col("detected")).select("user_id", "change_ts").rename({"user_id": "user"})
        summary["evaluation"] = evaluate_detections(det, truth, cfg.tolerance)
    return DriftReport(per_user, summary, counts, scores, cp)
