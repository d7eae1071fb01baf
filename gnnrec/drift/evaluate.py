"""Precision / recall / F1 of detected change points against planted ground truth.

**Matching rule** (each user has at most one true change and at most one detection):

* a detection is a *true positive* when the user truly migrates and
  ``|detected change time - true change time| <= tolerance`` (seconds, inclusive);
* a detection that is not a true positive is a *false positive* (the user does not migrate,
  or the detected time is further than ``tolerance`` from the true one);
* a true change without a true-positive detection is a *false negative* (a detection at the
  wrong time therefore counts once as a false positive and once as a false negative);
* a user with neither a detection nor a true change is a *true negative*.

``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``f1`` their harmonic mean; each
is 0.0 when its denominator is 0 (the ``zero_division=0`` convention of scikit-learn).
Users are matched by their id as a string (the table vocabulary, raw or pseudonymised);
ground-truth users missing from the detections (e.g. removed by a k-core filter) count as
users without a detection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from gnnrec.errors import GnnrecError

__all__ = ["evaluate_detections"]


def evaluate_detections(detections: pl.DataFrame, truth: pl.DataFrame, tolerance: int) -> dict[str, Any]:
    """Score detected change points against ground truth.

    Args:
        detections: one row per *detected* change: ``user`` (id, any type; compared as
            string) and ``change_ts`` (Int64 seconds).
        truth: one row per user: ``user``, ``migrates`` (bool) and ``change_ts`` (null or
            ignored when not migrating), as written by the synthetic simulator.
        tolerance: matching window in seconds (see the module docstring).

    Returns:
        ``{"precision", "recall", "f1", "tolerance", "tp", "fp", "fn", "tn", "true_changes",
        "detections", "users"}``.

    Raises:
        GnnrecError: a missing column, a negative tolerance, or duplicate users.
    """
    for name, frame, cols in (
        ("detections", detections, ("user", "change_ts")),
        ("truth", truth, ("user", "migrates", "change_ts")),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise GnnrecError(f"{name} frame lacks column(s) {missing}")
        if frame["user"].n_unique() != frame.height:
            raise GnnrecError(f"{name} frame has duplicate users (at most one change per user is supported)")
    if tolerance < 0:
        raise GnnrecError(f"tolerance must be >= 0 seconds, got {tolerance}")
    det = detections.select(
        pl.col("user").cast(pl.String), pl.col("change_ts").cast(pl.Int64).alias("det_ts")
    )
    tru = truth.select(
        pl.col("user").cast(pl.String),
        pl.col("migrates").cast(pl.Boolean),
        pl.col("change_ts").cast(pl.Int64).alias("true_ts"),
    )
    joined = tru.join(det, on="user", how="full", coalesce=True)
    migrates = joined["migrates"].fill_null(False).to_numpy()
    has_det = joined["det_ts"].is_not_null().to_numpy()
    det_ts = joined["det_ts"].fill_null(0).to_numpy()
    true_ts = joined["true_ts"].fill_null(0).to_numpy()
    close = np.abs(det_ts - true_ts) <= tolerance
    tp = int((has_det & migrates & close).sum())
    n_det = int(has_det.sum())
    n_true = int(migrates.sum())
    fp = n_det - tp
    fn = n_true - tp
    tn = int((~has_det & ~migrates).sum())
    precision = tp / n_det if n_det else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tolerance": int(tolerance),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "true_changes": n_true,
        "detections": n_det,
        "users": int(joined.height),
    }
