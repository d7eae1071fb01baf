"""Per-user × window × category event counts (sparse COO), the input of drift analysis.

Two kinds of windows (``drift.window``):

* ``"quantile"`` (default): each user's own events, ordered by (timestamp, table row), are cut
  into ``num_windows`` windows of (nearly) equal event counts: the event of rank ``r`` out of
  the user's ``n`` falls in window ``floor(r * W / n)``. Every user then has the same
  resolution whatever their activity; a user with fewer than ``W`` events has one event per
  window and windows ``n..W-1`` empty.
* ``"duration"``: calendar windows of ``window_seconds`` from ``origin`` (default: the
  earliest timestamp counted), the same for every user; ``W`` is the number needed to reach
  the latest timestamp.

Everything is vectorised (one ``lexsort`` of the events, sorted-key grouping): no Python
loop over users or events. Events without a known category are not counted (they carry no
category signal); :attr:`WindowCounts.info` says how many were left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gnnrec.data.types import InteractionTable
from gnnrec.errors import ConfigError, GnnrecError

__all__ = ["WindowCounts", "table_window_counts", "window_counts"]

#: first_ts / last_ts value of an empty (user, window)
EMPTY_TS = -1


@dataclass
class WindowCounts:
    """Sparse counts of events per (user, window, category).

    Attributes:
        user, window, category, count: int64 ``[nnz]`` COO entries, sorted by (user, window,
            category), unique, ``count > 0``.
        num_users, num_windows, num_categories: the dense shape ``[U, W, C]``.
        events: int64 ``[U, W]`` events per (user, window) (the COO summed over categories).
        first_ts, last_ts: int64 ``[U, W]`` earliest / latest timestamp of the (user, window),
            :data:`EMPTY_TS` where the window is empty.
        mode: ``"quantile"`` or ``"duration"``.
        edges: duration mode: int64 ``[W + 1]`` window edges (Unix seconds); else ``None``.
        info: counts for reports (``events``, ``unknown_category`` events left out).
    """

    user: np.ndarray
    window: np.ndarray
    category: np.ndarray
    count: np.ndarray
    num_users: int
    num_windows: int
    num_categories: int
    events: np.ndarray
    first_ts: np.ndarray
    last_ts: np.ndarray
    mode: str
    edges: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def dense(self) -> np.ndarray:
        """Dense int64 ``[U, W, C]`` counts (small inputs and tests only)."""
        out = np.zeros((self.num_users, self.num_windows, self.num_categories), dtype=np.int64)
        out[self.user, self.window, self.category] = self.count
        return out


def _group_bounds(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) positions of runs of equal values in a sorted array."""
    n = sorted_keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [n]]).astype(np.int64)
    return starts, ends


def window_counts(
    user: np.ndarray,
    category: np.ndarray,
    ts: np.ndarray,
    num_users: int,
    num_categories: int,
    *,
    mode: Literal["quantile", "duration"] = "quantile",
    num_windows: int = 50,
    window_seconds: int = 86400,
    origin: int | None = None,
) -> WindowCounts:
    """Count events per (user, window, category).

    Args:
        user: int64 ``[N]`` user ids in ``0..num_users-1``.
        category: int64 ``[N]`` category ids in ``0..num_categories-1`` (``-1`` = unknown:
            left out and counted in ``info["unknown_category"]``).
        ts: int64 ``[N]`` Unix seconds.
        num_users, num_categories: sizes of the dense shape.
        mode: ``"quantile"`` (per-user equal-count windows) or ``"duration"``.
        num_windows: quantile mode: windows per user (``>= 1``).
        window_seconds: duration mode: window length.
        origin: duration mode: start of window 0 (default: the earliest timestamp counted).

    Returns:
        The :class:`WindowCounts`.

    Raises:
        ConfigError: an unknown ``mode`` or a non-positive window setting.
    """
    if mode not in ("quantile", "duration"):
        raise ConfigError(f"drift.window must be 'quantile' or 'duration', got '{mode}'")
    if num_windows < 1 or window_seconds < 1:
        raise ConfigError("drift.num_windows and drift.window_seconds must be >= 1")
    user = np.asarray(user, dtype=np.int64)
    category = np.asarray(category, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.int64)
    known = category >= 0
    unknown = int((~known).sum())
    if unknown:
        user, category, ts = user[known], category[known], ts[known]
    n = user.shape[0]

    # order by user, then time; lexsort is stable, so equal times keep table-row order
    order = np.lexsort((ts, user))
    u, c, t = user[order], category[order], ts[order]
    edges: np.ndarray | None = None
    if mode == "quantile":
        starts, ends = _group_bounds(u)
        size_g = ends - starts
        # per event: its user's event count and the position of the user's first event
        size = np.repeat(size_g, size_g)
        first = np.repeat(starts, size_g)
        rank = np.arange(n, dtype=np.int64) - first
        w = (rank * num_windows) // np.maximum(size, 1)
        n_windows = int(num_windows)
    else:
        t0 = int(t.min()) if n and origin is None else int(origin or 0)
        if n and int(t.min()) < t0:
            raise ConfigError(f"drift window origin {t0} is after the earliest timestamp {int(t.min())}")
        w = (t - t0) // int(window_seconds)
        n_windows = int(w.max()) + 1 if n else 1
        edges = t0 + np.arange(n_windows + 1, dtype=np.int64) * int(window_seconds)

    # (user, window) groups: events are sorted by user and time, hence by (user, window)
    uw = u * n_windows + w
    s_uw, e_uw = _group_bounds(uw)
    events = np.zeros(num_users * n_windows, dtype=np.int64)
    first_ts = np.full(num_users * n_windows, EMPTY_TS, dtype=np.int64)
    last_ts = np.full(num_users * n_windows, EMPTY_TS, dtype=np.int64)
    if n:
        keys = uw[s_uw]
        events[keys] = e_uw - s_uw
        first_ts[keys] = t[s_uw]
        last_ts[keys] = t[e_uw - 1]

    # (user, window, category) COO: sort the combined key, count runs
    key = np.sort(uw * num_categories + c)
    s_k, e_k = _group_bounds(key)
    k = key[s_k]
    uw_k, cat_k = np.divmod(k, num_categories) if num_categories else (k, k)
    u_k, w_k = np.divmod(uw_k, n_windows)
    return WindowCounts(
        user=u_k.astype(np.int64),
        window=w_k.astype(np.int64),
        category=cat_k.astype(np.int64),
        count=(e_k - s_k).astype(np.int64),
        num_users=int(num_users),
        num_windows=n_windows,
        num_categories=int(num_categories),
        events=events.reshape(num_users, n_windows),
        first_ts=first_ts.reshape(num_users, n_windows),
        last_ts=last_ts.reshape(num_users, n_windows),
        mode=mode,
        edges=edges,
        info={"events": int(n), "unknown_category": unknown},
    )


def table_window_counts(
    table: InteractionTable,
    rows: np.ndarray | None = None,
    *,
    behaviors: tuple[str, ...] | None = None,
    mode: Literal["quantile", "duration"] = "quantile",
    num_windows: int = 50,
    window_seconds: int = 86400,
) -> WindowCounts:
    """:func:`window_counts` of (a subset of) an interaction table's events.

    Args:
        table: the interaction table (needs timestamps and item categories).
        rows: bool ``[N]`` mask or int indices of the rows to count (default: all), e.g.
            ``split.assign == TRAIN`` for a leakage-free drift score.
        behaviors: behaviour names to count (default: all).
        mode, num_windows, window_seconds: see :func:`window_counts`.

    Raises:
        GnnrecError: the table has no timestamps or no item categories.
        ConfigError: a behaviour outside the table's vocabulary.
    """
    if table.ts is None:
        raise GnnrecError("drift analysis needs timestamps, but this dataset has none")
    if table.num_categories == 0 or not bool((table.item_category >= 0).any()):
        raise GnnrecError("drift analysis needs item categories, but this dataset has none")
    sel = np.ones(len(table), dtype=bool)
    if rows is not None:
        r = np.asarray(rows)
        if r.dtype == bool:
            sel &= r
        else:
            m = np.zeros(len(table), dtype=bool)
            m[r] = True
            sel &= m
    if behaviors is not None:
        unknown = [b for b in behaviors if b not in table.behaviors]
        if unknown:
            raise ConfigError(
                f"drift.behaviors: unknown behaviour '{unknown[0]}'; "
                f"the log's behaviours are {list(table.behaviors)}"
            )
        codes = np.array([table.behavior_index(b) for b in behaviors], dtype=np.int8)
        sel &= np.isin(table.behavior, codes)
    idx = np.flatnonzero(sel)
    counts = window_counts(
        table.user[idx],
        table.item_category[table.item[idx]],
        table.ts[idx],
        table.num_users,
        table.num_categories,
        mode=mode,
        num_windows=num_windows,
        window_seconds=window_seconds,
    )
    return counts
