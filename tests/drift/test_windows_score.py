"""Window counts and the Jensen–Shannon drift score on hand-made inputs with exact values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnnrec.drift.score import drift_scores, js_divergence, sparse_js
from gnnrec.drift.windows import EMPTY_TS, window_counts
from gnnrec.errors import ConfigError

# JS([1, 0], [1/2, 1/2]): m = (3/4, 1/4); KL(p||m) = log2(4/3); KL(q||m) = 1/2 log2(2/3) + 1/2 log2(2)
JS_HALF = 0.5 * (math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5)


def test_js_exact_values() -> None:
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert js_divergence(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == pytest.approx(0.0, abs=1e-15)
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(JS_HALF, rel=1e-12)
    assert JS_HALF == pytest.approx(0.3112781245, rel=1e-9)
    # counts are normalised; symmetric; rows along the last axis
    out = js_divergence(np.array([[2, 0], [3, 3]]), np.array([[3, 3], [2, 0]]))
    assert out.tolist() == pytest.approx([JS_HALF, JS_HALF])
    assert np.isnan(js_divergence(np.array([0.0, 0.0]), np.array([1.0, 0.0])))
    with pytest.raises(ValueError):
        js_divergence(np.array([1.0, -1.0]), np.array([1.0, 0.0]))


def test_sparse_js_matches_dense() -> None:
    # owner 0: A = (2, 0), B = (3, 3); owner 1: A = (1, 0, 0), B = (0, 0, 5); owner 2: B empty
    owner = np.array([0, 0, 1, 1, 2])
    a = np.array([2, 0, 1, 0, 4])
    b = np.array([3, 3, 0, 5, 0])
    js, n_a, n_b = sparse_js(owner, a, b, 3)
    assert js[:2].tolist() == pytest.approx([JS_HALF, 1.0])
    assert np.isnan(js[2])
    assert n_a.tolist() == [2, 1, 4] and n_b.tolist() == [6, 5, 0]


def test_quantile_windows_exact() -> None:
    # user 0: 4 events → 2 windows of 2; user 1: 3 events → ranks 0, 1, 2 → windows 0, 0, 1
    # (floor(r * 2 / 3)); user 2 has no events. Row order is shuffled on purpose.
    user = np.array([1, 0, 0, 1, 0, 0, 1, 0])
    cat = np.array([2, 0, 1, 2, 0, 1, 0, -1])
    ts = np.array([50, 30, 40, 10, 10, 20, 20, 5])
    wc = window_counts(user, cat, ts, 3, 3, mode="quantile", num_windows=2)
    # user 0 sorted by time: (10, c0) (20, c1) | (30, c0) (40, c1); the c=-1 row is left out
    # user 1 sorted: (10, c2) (20, c0) | (50, c2)
    assert list(zip(wc.user, wc.window, wc.category, wc.count)) == [
        (0, 0, 0, 1), (0, 0, 1, 1), (0, 1, 0, 1), (0, 1, 1, 1), (1, 0, 0, 1), (1, 0, 2, 1), (1, 1, 2, 1),
    ]  # fmt: skip
    assert wc.events.tolist() == [[2, 2], [2, 1], [0, 0]]
    assert wc.first_ts.tolist() == [[10, 30], [10, 50], [EMPTY_TS, EMPTY_TS]]
    assert wc.last_ts.tolist() == [[20, 40], [20, 50], [EMPTY_TS, EMPTY_TS]]
    assert wc.info == {"events": 7, "unknown_category": 1}
    assert wc.dense().sum() == 7


def test_duration_windows_exact() -> None:
    user = np.array([0, 0, 0, 1])
    cat = np.array([0, 0, 1, 1])
    ts = np.array([100, 114, 130, 145])
    wc = window_counts(user, cat, ts, 2, 2, mode="duration", window_seconds=15)
    # origin 100: windows [100,115) [115,130) [130,145) [145,160)
    assert wc.num_windows == 4
    assert wc.edges is not None and wc.edges.tolist() == [100, 115, 130, 145, 160]
    assert wc.events.tolist() == [[2, 0, 1, 0], [0, 0, 0, 1]]
    assert list(zip(wc.user, wc.window, wc.category, wc.count)) == [(0, 0, 0, 2), (0, 2, 1, 1), (1, 3, 1, 1)]
    with pytest.raises(ConfigError):
        window_counts(user, cat, ts, 2, 2, mode="weekly")  # type: ignore[arg-type]


def test_drift_score_recent_vs_history() -> None:
    # user 0: 8 events, 4 windows of 2: c0 c0 | c0 c0 | c0 c1 | c1 c1 → recent (last window) = (0, 2),
    # history = (5, 1): JS = JS([0, 1], [5/6, 1/6])
    # user 1: 2 events only → too few for min_events = 2 on both sides → NaN
    user = np.array([0] * 8 + [1, 1])
    cat = np.array([0, 0, 0, 0, 0, 1, 1, 1, 0, 1])
    ts = np.arange(10)
    wc = window_counts(user, cat, ts, 2, 2, num_windows=4)
    s = drift_scores(wc, recent_share=0.25, min_events=2)
    expected = js_divergence(np.array([0.0, 1.0]), np.array([5 / 6, 1 / 6]))
    assert s.recent_windows == 1
    assert s.score[0] == pytest.approx(float(expected), rel=1e-12)
    assert s.recent_events.tolist() == [2, 1] and s.history_events.tolist() == [6, 1]
    assert np.isnan(s.score[1])
    # half the windows recent: recent = (1, 3), history = (4, 0)
    s2 = drift_scores(wc, recent_share=0.5, min_events=2)
    assert s2.score[0] == pytest.approx(float(js_divergence(np.array([1.0, 3.0]), np.array([4.0, 0.0]))))
    with pytest.raises(ConfigError):
        drift_scores(wc, recent_share=1.0)
