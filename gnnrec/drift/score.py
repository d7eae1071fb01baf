r"""Drift score: Jensen–Shannon divergence of a user's recent category distribution vs history.

For distributions :math:`p, q` over categories and :math:`m = (p + q) / 2`,

.. math::
    \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 \mathrm{KL}(q \,\|\, m)

in **bits** (log base 2), so it lies in ``[0, 1]``: 0 for identical distributions, 1 for
distributions on disjoint categories. It is symmetric and defined when one side gives a
category zero probability (unlike KL).

:func:`drift_scores` compares, per user, the category counts of the user's *recent* windows
(the last ``ceil(recent_share * W)`` non-empty windows of :class:`WindowCounts`) with those
of all the user's earlier windows (the *history*). With the default per-user quantile windows
that is the last quarter of the user's events vs the first three quarters. Users with fewer
than ``min_events`` events on either side get ``NaN`` (too little evidence to score).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import (
    chdtrc,  # chi-square survival function (lighter import than scipy.stats)
)

from gnnrec.drift.windows import WindowCounts
from gnnrec.errors import ConfigError

__all__ = ["DriftScores", "drift_scores", "js_divergence", "sparse_js"]

_LN2 = math.log(2.0)


def js_divergence(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """Jensen–Shannon divergence in bits between (unnormalised) distributions along ``axis``.

    Args:
        p, q: non-negative arrays of the same shape (counts or probabilities; each is
            normalised along ``axis``).
        axis: the category axis.

    Returns:
        JS divergence in ``[0, 1]`` bits per slice; ``NaN`` where ``p`` or ``q`` sums to 0.

    Raises:
        ValueError: shapes differ or a value is negative.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"p and q differ in shape: {p.shape} vs {q.shape}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("distributions must be non-negative")
    sp = p.sum(axis=axis, keepdims=True)
    sq = q.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pn = p / sp
        qn = q / sq
        m = 0.5 * (pn + qn)
        tp = np.where(pn > 0, pn * np.log(pn / np.where(m > 0, m, 1.0)), 0.0)
        tq = np.where(qn > 0, qn * np.log(qn / np.where(m > 0, m, 1.0)), 0.0)
    out = 0.5 * (tp.sum(axis=axis) + tq.sum(axis=axis)) / _LN2
    bad = (np.squeeze(sp, axis=axis) <= 0) | (np.squeeze(sq, axis=axis) <= 0)
    out = np.where(bad, np.nan, np.clip(out, 0.0, 1.0))
    return out


def sparse_js(
    owner: np.ndarray, a: np.ndarray, b: np.ndarray, num_owners: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-owner JS divergence (bits) of two count vectors given as sparse entries.

    Entry ``e`` says owner ``owner[e]`` has ``a[e]`` events of some category on side A and
    ``b[e]`` on side B (one entry per (owner, category); categories absent from both sides
    have no entry). Everything is a weighted ``bincount``, no loop over owners.

    Returns:
        ``(js, n_a, n_b)``: float64 ``[num_owners]`` JS in bits (``NaN`` when a side is
        empty) and the side totals.
    """
    owner = np.asarray(owner, dtype=np.int64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n_a = np.bincount(owner, weights=a, minlength=num_owners)
    n_b = np.bincount(owner, weights=b, minlength=num_owners)
    with np.errstate(invalid="ignore", divide="ignore"):
        pa = a / n_a[owner]
        pb = b / n_b[owner]
        m = 0.5 * (pa + pb)
        ta = np.where(pa > 0, pa * np.log(pa / np.where(m > 0, m, 1.0)), 0.0)
        tb = np.where(pb > 0, pb * np.log(pb / np.where(m > 0, m, 1.0)), 0.0)
    js = 0.5 * np.bincount(owner, weights=np.nan_to_num(ta + tb), minlength=num_owners) / _LN2
    js = np.where((n_a > 0) & (n_b > 0), np.clip(js, 0.0, 1.0), np.nan)
    return js, n_a, n_b


def _xlogx(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


@dataclass
class DriftScores:
    """Per-user drift scores.

    Attributes:
        score: float64 ``[U]`` JS(recent, history) in bits; ``NaN`` when either side has
            fewer than ``min_events`` events.
        recent_events, history_events: int64 ``[U]`` events on each side.
        recent_windows: how many non-empty windows count as recent.
        p_value: float64 ``[U]`` p-value of a G-test that recent and history events come from
            one category distribution (chi-square, ``categories of the user - 1`` degrees
            of freedom, events taken as independent); ``NaN`` where ``score`` is.
    """

    score: np.ndarray
    recent_events: np.ndarray
    history_events: np.ndarray
    recent_windows: int
    p_value: np.ndarray | None = None


def drift_scores(counts: WindowCounts, recent_share: float = 0.25, min_events: int = 5) -> DriftScores:
    """JS divergence of each user's recent windows vs their earlier windows.

    Args:
        counts: per-user window counts (:func:`~gnnrec.drift.windows.window_counts`).
        recent_share: the last ``ceil(recent_share * W)`` *non-empty* windows of a user are
            recent (``0 < recent_share < 1``).
        min_events: minimum events on each side for a score (else ``NaN``).

    Returns:
        The :class:`DriftScores`.

    Raises:
        ConfigError: ``recent_share`` outside ``(0, 1)`` or ``min_events < 1``.
    """
    if not 0.0 < recent_share < 1.0:
        raise ConfigError(f"drift.recent_share must be in (0, 1), got {recent_share}")
    if min_events < 1:
        raise ConfigError(f"drift.min_events must be >= 1, got {min_events}")
    nu, nw, nc = counts.num_users, counts.num_windows, counts.num_categories
    r = max(1, math.ceil(recent_share * nw))
    nonempty = counts.events > 0
    # number of non-empty windows at or after each window: a window is recent when that
    # number is <= r (and it is non-empty)
    from_end = np.cumsum(nonempty[:, ::-1], axis=1)[:, ::-1]
    recent_uw = nonempty & (from_end <= r)
    is_recent = recent_uw[counts.user, counts.window]
    # aggregate to (user, category): recent and history counts per pair
    key = counts.user * max(nc, 1) + counts.category
    order = np.argsort(key, kind="stable")
    k_sorted = key[order]
    if k_sorted.size:
        start = np.concatenate([[0], np.flatnonzero(k_sorted[1:] != k_sorted[:-1]) + 1])
    else:
        start = np.zeros(0, dtype=np.int64)
    pair_of = (
        np.cumsum(np.concatenate([[0], (k_sorted[1:] != k_sorted[:-1]).astype(np.int64)]))
        if k_sorted.size
        else k_sorted
    )
    n_pairs = start.shape[0]
    cnt = counts.count[order].astype(np.float64)
    rec = np.bincount(pair_of, weights=np.where(is_recent[order], cnt, 0.0), minlength=n_pairs)
    his = np.bincount(pair_of, weights=np.where(is_recent[order], 0.0, cnt), minlength=n_pairs)
    owner = k_sorted[start] // max(nc, 1)
    js, n_r, n_h = sparse_js(owner, rec, his, nu)
    enough = (n_r >= min_events) & (n_h >= min_events)
    # G-test of "same distribution recent and before": G = 2 * (log-likelihood of two
    # distributions - of one), chi-square with (categories of the user - 1) df under H0
    tot = rec + his
    half_g = (
        np.bincount(owner, weights=_xlogx(rec) + _xlogx(his) - _xlogx(tot), minlength=nu)
        - _xlogx(n_r)
        - _xlogx(n_h)
        + _xlogx(n_r + n_h)
    )
    df = np.bincount(owner, minlength=nu) - 1  # every pair has tot > 0
    p = np.where(df > 0, chdtrc(np.maximum(df, 1), 2.0 * np.maximum(half_g, 0.0)), 1.0)
    return DriftScores(
        score=np.where(enough, js, np.nan),
        recent_events=n_r.astype(np.int64),
        history_events=n_h.astype(np.int64),
        recent_windows=r,
        p_value=np.where(enough, p, np.nan),
    )
