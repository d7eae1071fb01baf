"""Interest-drift analysis: per-user category distributions over time windows.

* :mod:`gnnrec.drift.windows` — per-user × window × category counts (sparse COO);
* :mod:`gnnrec.drift.score` — Jensen–Shannon drift score, recent vs history;
* :mod:`gnnrec.drift.changepoint` — per-user change-point detection;
* :mod:`gnnrec.drift.evaluate` — precision / recall / F1 against planted ground truth;
* :mod:`gnnrec.drift.analysis` — all of it from an interaction table (``gnnrec drift``);
* :mod:`gnnrec.drift.tags` — interest tags (top categories, weights, trends) of a run.
"""

from gnnrec.drift.analysis import DriftReport, analyze_table
from gnnrec.drift.changepoint import ChangePoints, detect_change_points
from gnnrec.drift.evaluate import evaluate_detections
from gnnrec.drift.score import drift_scores, js_divergence
from gnnrec.drift.windows import WindowCounts, table_window_counts, window_counts

__all__ = [
    "ChangePoints",
    "DriftReport",
    "WindowCounts",
    "analyze_table",
    "detect_change_points",
    "drift_scores",
    "evaluate_detections",
    "js_divergence",
    "table_window_counts",
    "window_counts",
]
