"""Change-point detection and its evaluation on hand-made users with known answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from gnnrec.drift.changepoint import best_splits, detect_change_points
from gnnrec.drift.evaluate import evaluate_detections
from gnnrec.drift.windows import window_counts
from gnnrec.errors import ConfigError, GnnrecError


def _users() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """user 0: 10 events of c0 at ts 0..900, then 10 of c1 at ts 1000..1900 (a clear change
    between 900 and 1000); user 1: 20 events alternating c0 / c1 (no change);
    user 2: 4 events (fewer than 2 * min_events); user 3: 3 x c0 then 3 x c1 (a clean but
    tiny switch: 2 of the 20 orderings of its events are as extreme, so p is about 0.1)."""
    u = np.concatenate([np.zeros(20), np.ones(20), np.full(4, 2), np.full(6, 3)]).astype(np.int64)
    c = np.concatenate([np.repeat([0, 1], 10), np.tile([0, 1], 10), [0, 1, 0, 1], [0, 0, 0, 1, 1, 1]]).astype(
        np.int64
    )
    t = np.concatenate(
        [np.arange(20) * 100, np.arange(20) * 100, np.arange(4) * 100, np.arange(6) * 100]
    ).astype(np.int64)
    return u, c, t


def test_change_found_at_the_right_window() -> None:
    u, c, t = _users()
    wc = window_counts(u, c, t, 4, 2, num_windows=20)
    s = best_splits(wc, min_events=3)
    assert s.split[0] == 10  # windows 0..9 before (one event each), 10..19 after
    assert s.js[0] == pytest.approx(1.0)
    # gain = 20 ln 2 (two pure halves vs one 50/50 segment), in nats
    assert s.gain[0] == pytest.approx(20 * np.log(2.0))
    assert (s.before[0], s.after[0]) == (10, 10)
    assert s.split[2] == -1 and s.gain[2] == -np.inf  # 4 events: no split with 3 on each side
    cp = detect_change_points(wc, threshold=0.5, min_events=3, permutations=99, alpha=0.01, seed=0)
    assert cp.detected.tolist() == [True, False, False, False]
    assert cp.change_ts[0] == 950  # midpoint of the last event before (900) and first after (1000)
    assert cp.p_value[0] == pytest.approx(0.01)  # no permutation reaches a perfect split
    assert cp.js[1] < 0.5 and np.isnan(cp.p_value[1])  # below the threshold: not even tested
    # user 3 is a perfect switch (JS 1) but too small to be significant
    assert cp.js[3] == pytest.approx(1.0) and cp.p_value[3] > 0.01
    # without the permutation test the threshold alone accepts it
    cp0 = detect_change_points(wc, threshold=0.5, min_events=3, permutations=0)
    assert cp0.detected.tolist() == [True, False, False, True]
    assert np.isnan(cp0.p_value).all()


def test_detection_is_deterministic_given_seed() -> None:
    u, c, t = _users()
    wc = window_counts(u, c, t, 4, 2, num_windows=20)
    a = detect_change_points(wc, min_events=3, seed=5)
    b = detect_change_points(wc, min_events=3, seed=5)
    np.testing.assert_array_equal(a.p_value, b.p_value)


def test_bad_settings() -> None:
    u, c, t = _users()
    wc = window_counts(u, c, t, 4, 2, num_windows=20)
    with pytest.raises(ConfigError):
        detect_change_points(wc, threshold=1.5)
    with pytest.raises(ConfigError):
        detect_change_points(wc, alpha=0.0)


def test_tolerance_matching_exact() -> None:
    truth = pl.DataFrame(
        {
            "user": [1, 2, 3, 4, 5, 6],
            "migrates": [True, True, False, False, True, True],
            "change_ts": [1000, 5000, None, None, 100, 2000],
        }
    )
    det = pl.DataFrame({"user": ["1", "2", "3", "6"], "change_ts": [1200, 9000, 300, 1900]})
    # user 1: |1200-1000| = 200 <= 200 → TP (inclusive); user 2: 4000 away → FP and FN;
    # user 3: no true change → FP; user 4: nothing → TN; user 5: missed → FN; user 6: TP
    r = evaluate_detections(det, truth, tolerance=200)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (2, 2, 2, 1)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.5)
    assert r["tolerance"] == 200 and r["true_changes"] == 4 and r["detections"] == 4
    r2 = evaluate_detections(det, truth, tolerance=199)  # user 1 falls out of the window
    assert (r2["tp"], r2["fp"], r2["fn"]) == (1, 3, 3)
    empty = evaluate_detections(det.head(0), truth, tolerance=10)
    assert (empty["precision"], empty["recall"], empty["f1"]) == (0.0, 0.0, 0.0)
    with pytest.raises(GnnrecError):
        evaluate_detections(det.rename({"change_ts": "t"}), truth, 10)
