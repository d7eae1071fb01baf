"""Property tests: the vectorised window counts, drift scores and best splits agree with
plain per-user reference computations on random small logs."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.drift.changepoint import best_splits
from gnnrec.drift.score import drift_scores, js_divergence
from gnnrec.drift.windows import window_counts


@st.composite
def logs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    nu = draw(st.integers(1, 4))
    nc = draw(st.integers(1, 4))
    n = draw(st.integers(0, 40))
    u = np.array(draw(st.lists(st.integers(0, nu - 1), min_size=n, max_size=n)), dtype=np.int64)
    c = np.array(draw(st.lists(st.integers(0, nc - 1), min_size=n, max_size=n)), dtype=np.int64)
    t = np.array(draw(st.lists(st.integers(0, 50), min_size=n, max_size=n)), dtype=np.int64)
    return u, c, t, nu, nc


def _reference_windows(u, c, t, nu, nc, w):
    """[U, W, C] counts by a plain loop per user (stable time order, rank * W // n)."""
    out = np.zeros((nu, w, nc), dtype=np.int64)
    for user in range(nu):
        idx = np.flatnonzero(u == user)
        idx = idx[np.argsort(t[idx], kind="stable")]
        for r, i in enumerate(idx):
            out[user, r * w // len(idx), c[i]] += 1
    return out


@settings(max_examples=60, deadline=None)
@given(logs(), st.integers(2, 6))
def test_window_counts_match_reference(log, w) -> None:
    u, c, t, nu, nc = log
    wc = window_counts(u, c, t, nu, nc, num_windows=w)
    ref = _reference_windows(u, c, t, nu, nc, w)
    np.testing.assert_array_equal(wc.dense(), ref)
    np.testing.assert_array_equal(wc.events, ref.sum(axis=2))


def _ll(x: np.ndarray) -> float:
    n = x.sum()
    return float(sum(v * math.log(v / n) for v in x if v > 0))


@settings(max_examples=60, deadline=None)
@given(logs(), st.integers(2, 6), st.integers(1, 4))
def test_best_split_matches_brute_force(log, w, min_events) -> None:
    u, c, t, nu, nc = log
    wc = window_counts(u, c, t, nu, nc, num_windows=w)
    dense = wc.dense()
    s = best_splits(wc, min_events)
    for user in range(nu):
        x = dense[user]
        best_gain, best_k = -math.inf, -1
        for k in range(1, w):
            b, a = x[:k].sum(0), x[k:].sum(0)
            if b.sum() < min_events or a.sum() < min_events:
                continue
            gain = _ll(b) + _ll(a) - _ll(x.sum(0))
            if gain > best_gain + 1e-9:
                best_gain, best_k = gain, k
        if best_k < 0:
            assert s.split[user] == -1
            continue
        assert math.isclose(s.gain[user], best_gain, rel_tol=1e-9, abs_tol=1e-9)
        k = s.split[user]
        b, a = x[:k].sum(0), x[k:].sum(0)  # the chosen split is a maximiser
        assert math.isclose(_ll(b) + _ll(a) - _ll(x.sum(0)), best_gain, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(s.js[user], float(js_divergence(b, a)), rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(logs(), st.integers(2, 6))
def test_drift_score_matches_reference(log, w) -> None:
    u, c, t, nu, nc = log
    wc = window_counts(u, c, t, nu, nc, num_windows=w)
    dense = wc.dense()
    s = drift_scores(wc, recent_share=0.25, min_events=1)
    r = math.ceil(0.25 * wc.num_windows)
    for user in range(nu):
        nonempty = np.flatnonzero(dense[user].sum(1) > 0)
        recent = nonempty[-r:]
        rec = dense[user][recent].sum(0)
        his = dense[user].sum(0) - rec
        if rec.sum() == 0 or his.sum() == 0:
            assert math.isnan(s.score[user])
        else:
            assert math.isclose(s.score[user], float(js_divergence(rec, his)), rel_tol=1e-9, abs_tol=1e-12)
            assert 0.0 <= s.score[user] <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=1, max_size=6), st.lists(st.floats(0, 10), min_size=1, max_size=6))
def test_js_symmetric_and_bounded(p, q) -> None:
    n = min(len(p), len(q))
    a, b = np.array(p[:n]) + 1e-3, np.array(q[:n]) + 1e-3
    v = float(js_divergence(a, b))
    assert 0.0 <= v <= 1.0
    assert math.isclose(v, float(js_divergence(b, a)), rel_tol=1e-9, abs_tol=1e-12)
