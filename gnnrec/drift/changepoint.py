r"""Per-user change-point detection on the sequence of window category distributions.

**Method** (at most one change per user). For a user with window counts
:math:`x_{w,c}` (:class:`~gnnrec.drift.windows.WindowCounts`) and a candidate split
:math:`k` (windows :math:`< k` *before*, :math:`\ge k` *after*), the multinomial
log-likelihood gain of modelling the two segments with their own category distributions
instead of one is

.. math::
    \Delta_k = \sum_c B_c \ln\frac{B_c}{n_B} + \sum_c A_c \ln\frac{A_c}{n_A}
             - \sum_c T_c \ln\frac{T_c}{N}
           = N \cdot \mathrm{JS}_{\pi}(p_B, p_A)

(the count-weighted Jensen–Shannon divergence with weights :math:`\pi = (n_B/N, n_A/N)`, in
nats; :math:`2\Delta_k` is the G-test statistic). The change point is the split with the
largest gain among splits with at least ``min_events`` events on each side (the maximum
likelihood single change point). It is reported as *detected* when both

1. the effect is large: the plain JS divergence between the before and after distributions
   is at least ``threshold`` bits (1 bit = disjoint categories), and
2. it is significant: a permutation test, which shuffles the categories of the user's events
   across the user's windows (window sizes kept) ``permutations`` times and recomputes the
   best gain, gives a p-value :math:`(1 + \#\{\Delta^{perm} \ge \Delta\}) / (1 + B)` of at
   most ``alpha``. ``permutations = 0`` skips the test (threshold only).

The permutation test guards against the maximum over splits of noisy small segments; the JS
threshold keeps statistically clear but small shifts (heavy users whose mixture wobbles) from
counting as a migration. Events of one funnel (view, cart, buy of one item) are not
independent, so the permutation null is somewhat too narrow on multi-behaviour logs; the
effect threshold is what keeps stable users below the line there (``drift.behaviors:
[view]`` counts views only).

The estimated change time is the midpoint between the user's last event before the split
and the first event after it.

**Vectorisation.** Each user's (user, category) pairs form the rows of a dense ``[P, W]``
count matrix (P = distinct pairs); cumulative sums give the before/after counts at every
split, and per-user sums are sparse indicator products — no Python loop over users or
events. Permutations are batched as extra "virtual users" (one pass for many permutations);
both are chunked to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnnrec.drift.score import sparse_js
from gnnrec.drift.windows import EMPTY_TS, WindowCounts
from gnnrec.errors import ConfigError

__all__ = ["ChangePoints", "best_splits", "detect_change_points"]

#: bound on the dense [pairs, windows] cells built at once (memory ~ 5 float64 arrays of it)
_MAX_CELLS = 4_000_000


def _xlogx(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


@dataclass
class _Splits:
    split: np.ndarray  # int64 [U] first window after the change, -1 when no valid split
    gain: np.ndarray  # float64 [U] log-likelihood gain at the split (nats), -inf when none
    js: np.ndarray  # float64 [U] JS(before, after) bits at the split, NaN when none
    before: np.ndarray  # int64 [U] events before the split
    after: np.ndarray  # int64 [U] events after


def _coo_splits(
    user: np.ndarray,
    window: np.ndarray,
    category: np.ndarray,
    count: np.ndarray,
    events: np.ndarray,
    num_categories: int,
    min_events: int,
    with_js: bool = True,
) -> _Splits:
    """Best split of every user of a COO chunk (users ``0..len(events)-1`` of the chunk)."""
    nu, nw = events.shape
    n_split = nw - 1
    split = np.full(nu, -1, dtype=np.int64)
    gain_out = np.full(nu, -np.inf)
    js_out = np.full(nu, np.nan)
    total = events.sum(axis=1)
    n_before_all = np.cumsum(events, axis=1)[:, :n_split]  # [U, W-1]: events in windows < k
    if n_split < 1 or user.size == 0:
        z = np.zeros(nu, dtype=np.int64)
        return _Splits(split, gain_out, js_out, z, z.copy())
    key = user * max(num_categories, 1) + category
    order = np.argsort(key, kind="stable")
    ks = key[order]
    new = np.concatenate([[True], ks[1:] != ks[:-1]])
    pair_of = np.cumsum(new) - 1
    n_pairs = int(pair_of[-1]) + 1
    owner = ks[new] // max(num_categories, 1)
    mat = np.zeros((n_pairs, nw))
    mat[pair_of, window[order]] = count[order]
    before = np.cumsum(mat, axis=1)[:, :n_split]  # [P, W-1]
    tot = mat.sum(axis=1)
    after = tot[:, None] - before
    ind = sp.csr_matrix((np.ones(n_pairs), (owner, np.arange(n_pairs))), shape=(nu, n_pairs))
    s_b = np.asarray(ind @ _xlogx(before))
    s_a = np.asarray(ind @ _xlogx(after))
    s_t = np.bincount(owner, weights=_xlogx(tot), minlength=nu)
    n_b = n_before_all.astype(np.float64)
    n_a = total[:, None] - n_b
    gain = (s_b - _xlogx(n_b)) + (s_a - _xlogx(n_a)) - (s_t - _xlogx(total))[:, None]
    valid = (n_b >= min_events) & (n_a >= min_events)
    gain = np.where(valid, gain, -np.inf)
    best = np.argmax(gain, axis=1)  # first maximum: the earliest of equivalent splits
    has = valid.any(axis=1)
    rows = np.arange(nu)
    gain_out = np.where(has, gain[rows, best], -np.inf)
    split = np.where(has, best + 1, -1)
    nb = np.where(has, n_before_all[rows, best], 0).astype(np.int64)
    na = np.where(has, total - nb, 0).astype(np.int64)
    if with_js:
        col = np.maximum(split[owner] - 1, 0)
        js, _, _ = sparse_js(owner, before[np.arange(n_pairs), col], after[np.arange(n_pairs), col], nu)
        js_out = np.where(has, js, np.nan)
    return _Splits(split, gain_out, js_out, nb, na)


def _user_chunks(counts: WindowCounts) -> list[tuple[int, int]]:
    """User ranges ``[lo, hi)`` whose dense pair × window matrix stays under ``_MAX_CELLS``."""
    nu, nw = counts.num_users, counts.num_windows
    per_user = np.bincount(counts.user, minlength=nu)  # COO entries bound the pairs per user
    cells = np.cumsum(per_user) * nw
    out, lo = [], 0
    while lo < nu:
        base = cells[lo - 1] if lo else 0
        hi = int(np.searchsorted(cells, base + _MAX_CELLS, side="right"))
        hi = min(max(hi, lo + 1), nu)
        out.append((lo, hi))
        lo = hi
    return out


def best_splits(counts: WindowCounts, min_events: int = 5) -> _Splits:
    """The maximum-likelihood single change point of every user (see the module docstring).

    Returns arrays over all ``counts.num_users`` users: ``split`` (first window after the
    change; -1 when no split has ``min_events`` events on both sides), ``gain`` (nats),
    ``js`` (bits), ``before`` / ``after`` event counts.
    """
    nu = counts.num_users
    parts: list[_Splits] = []
    bounds = np.searchsorted(counts.user, np.arange(nu + 1), side="left")
    for lo, hi in _user_chunks(counts):
        a, b = bounds[lo], bounds[hi]
        parts.append(
            _coo_splits(
                counts.user[a:b] - lo,
                counts.window[a:b],
                counts.category[a:b],
                counts.count[a:b],
                counts.events[lo:hi],
                counts.num_categories,
                min_events,
            )
        )
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return _Splits(z, np.zeros(0), np.zeros(0), z, z)
    return _Splits(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("split", "gain", "js", "before", "after"))
    )


def _permutation_pvalues(
    counts: WindowCounts,
    users: np.ndarray,
    observed: np.ndarray,
    permutations: int,
    min_events: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Permutation p-values of the best-split gain of ``users`` (see the module docstring)."""
    if users.size == 0 or permutations == 0:
        return np.full(users.shape[0], np.nan)
    nw, nc = counts.num_windows, counts.num_categories
    sel = np.isin(counts.user, users)
    local = np.searchsorted(users, counts.user[sel])  # candidate index 0..m-1
    m = users.shape[0]
    # expand the COO back to one row per event: (candidate, window, category), sorted by
    # candidate then window, so permuting categories within a candidate keeps window sizes
    reps = counts.count[sel]
    ev_u = np.repeat(local, reps)
    ev_w = np.repeat(counts.window[sel], reps)
    ev_c = np.repeat(counts.category[sel], reps)
    events = counts.events[users]
    n_ev = ev_u.shape[0]
    pairs_per_user = max(1.0, np.bincount(local, minlength=m).mean())
    batch = max(1, int(_MAX_CELLS // max(1.0, m * pairs_per_user * nw)))
    exceed = np.zeros(m, dtype=np.int64)
    done = 0
    while done < permutations:
        b = min(batch, permutations - done)
        # b permutations at once: virtual user = perm * m + candidate
        vu = (np.arange(b, dtype=np.int64)[:, None] * m + ev_u[None, :]).reshape(-1)
        vw = np.tile(ev_w, b)
        order = np.lexsort((rng.random(b * n_ev), vu))  # shuffle inside each virtual user
        vc = np.tile(ev_c, b)[order]
        key = np.sort((vu * nw + vw) * nc + vc)
        new = np.concatenate([[True], key[1:] != key[:-1]]) if key.size else np.zeros(0, bool)
        starts = np.flatnonzero(new)
        cnt = np.diff(np.concatenate([starts, [key.size]]))
        k = key[starts]
        uw, c = np.divmod(k, nc)
        u, w = np.divmod(uw, nw)
        res = _coo_splits(u, w, c, cnt, np.tile(events, (b, 1)), nc, min_events, with_js=False)
        perm_gain = res.gain.reshape(b, m)
        # a relative tolerance, so float noise on equal partitions counts as a tie (conservative)
        exceed += (perm_gain >= observed[None, :] - 1e-9 * np.maximum(1.0, np.abs(observed))[None, :]).sum(0)
        done += b
    return (1.0 + exceed) / (1.0 + permutations)


@dataclass
class ChangePoints:
    """Detected change points, one entry per user.

    Attributes:
        detected: bool ``[U]``.
        split: int64 ``[U]`` best split (first window after it); -1 when no split has
            ``min_events`` events on both sides.
        change_ts: int64 ``[U]`` estimated change time (midpoint of the last event before
            and the first after the split); -1 where ``split`` is -1.
        js: float64 ``[U]`` JS(before, after) in bits at the split (NaN without a split).
        gain: float64 ``[U]`` log-likelihood gain in nats (``-inf`` without a split).
        p_value: float64 ``[U]`` permutation p-value (NaN when not tested: no split, below
            the JS threshold, or ``permutations = 0``).
        events, before, after: int64 ``[U]`` events counted / before / after the split.
        info: settings and counts.
    """

    detected: np.ndarray
    split: np.ndarray
    change_ts: np.ndarray
    js: np.ndarray
    gain: np.ndarray
    p_value: np.ndarray
    events: np.ndarray
    before: np.ndarray
    after: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def detect_change_points(
    counts: WindowCounts,
    *,
    threshold: float = 0.5,
    min_events: int = 5,
    permutations: int = 99,
    alpha: float = 0.01,
    seed: int = 0,
) -> ChangePoints:
    """Detect at most one interest change point per user (method: module docstring).

    Args:
        counts: per-user window counts.
        threshold: minimum JS divergence (bits) between before and after.
        min_events: minimum events on each side of a split.
        permutations: permutation-test draws (0: no test).
        alpha: maximum permutation p-value of a detection.
        seed: seed of the permutation test.

    Returns:
        The :class:`ChangePoints`.

    Raises:
        ConfigError: a setting out of range.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"drift.threshold must be in [0, 1] bits, got {threshold}")
    if min_events < 1 or permutations < 0 or not 0.0 < alpha <= 1.0:
        raise ConfigError("drift: min_events >= 1, permutations >= 0 and 0 < alpha <= 1 are required")
    s = best_splits(counts, min_events)
    has = s.split >= 0
    candidate = has & (s.js >= threshold)
    p = np.full(counts.num_users, np.nan)
    if permutations > 0:
        cand = np.flatnonzero(candidate)
        p[cand] = _permutation_pvalues(
            counts, cand, s.gain[cand], permutations, min_events, np.random.default_rng(seed)
        )
        detected = candidate & (p <= alpha)
    else:
        detected = candidate

    # change time: midpoint of the last event before the split and the first after it
    nu, nw = counts.num_users, counts.num_windows
    last = np.maximum.accumulate(counts.last_ts, axis=1)  # EMPTY_TS (-1) never wins
    big = np.iinfo(np.int64).max
    first = np.where(counts.first_ts == EMPTY_TS, big, counts.first_ts)
    first = np.minimum.accumulate(first[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(nu)
    k = np.clip(s.split, 1, max(nw - 1, 1))
    if nw > 1:
        lb = last[rows, k - 1]
        fa = first[rows, np.minimum(k, nw - 1)]
        change = np.where(has, lb + (fa - lb) // 2, -1)
    else:
        change = np.full(nu, -1, dtype=np.int64)
    return ChangePoints(
        detected=detected,
        split=s.split,
        change_ts=change.astype(np.int64),
        js=s.js,
        gain=s.gain,
        p_value=p,
        events=counts.events.sum(axis=1).astype(np.int64),
        before=s.before,
        after=s.after,
        info={
            "method": "max-likelihood single split, JS threshold + permutation test",
            "threshold_bits": float(threshold),
            "min_events": int(min_events),
            "permutations": int(permutations),
            "alpha": float(alpha),
            "seed": int(seed),
            "candidates": int(candidate.sum()),
            "detected": int(detected.sum()),
        },
    )
