"""Time-window snapshots of the user–item–category graph.

A snapshot holds, per behaviour, the unique user→item edges of the TRAIN events whose
timestamp falls in ``[start, end)``, plus the item→category map (static). Windows are given
by their boundaries, so equal-width, sliding-by-boundary or calendar windows are the
caller's choice (:func:`window_bounds` makes equal-width ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnnrec.data.types import TRAIN, InteractionTable, Split
from gnnrec.errors import ConfigError

__all__ = ["Snapshot", "snapshots", "window_bounds", "window_index"]


@dataclass(frozen=True)
class Snapshot:
    """Edges of one time window.

    Attributes:
        start, end: the window ``[start, end)`` in the log's time unit.
        edge_index: behaviour name → int64 ``[2, E]`` unique (user, item) pairs sorted by
            (user, item) (behaviours without events in the window give ``[2, 0]``).
        item_category: int64 ``[num_items]`` category per item (``-1`` unknown).
    """

    start: int
    end: int
    edge_index: dict[str, np.ndarray]
    item_category: np.ndarray

    def num_edges(self) -> int:
        return int(sum(e.shape[1] for e in self.edge_index.values()))


def window_bounds(t_min: int, t_max: int, width: int) -> np.ndarray:
    """Equal-width boundaries ``t_min, t_min + width, ...`` covering ``[t_min, t_max]``.

    Raises:
        ConfigError: ``width`` is not positive.
    """
    if width <= 0:
        raise ConfigError(f"snapshot window width must be positive, got {width}")
    count = (int(t_max) - int(t_min)) // width + 1
    return int(t_min) + width * np.arange(count + 1, dtype=np.int64)


def window_index(ts: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Window of every timestamp (``-1`` outside ``[bounds[0], bounds[-1])``)."""
    idx = np.searchsorted(bounds, ts, side="right") - 1
    idx[(ts < bounds[0]) | (ts >= bounds[-1])] = -1
    return idx.astype(np.int64)


def snapshots(table: InteractionTable, split: Split, bounds: np.ndarray) -> list[Snapshot]:
    """One :class:`Snapshot` per consecutive pair of ``bounds`` (TRAIN rows only).

    Raises:
        ConfigError: the log has no timestamps, or ``bounds`` is not strictly increasing.
    """
    if table.ts is None:
        raise ConfigError("time-window snapshots need timestamps, but the log has none")
    bounds = np.asarray(bounds, dtype=np.int64)
    if bounds.size < 2 or (np.diff(bounds) <= 0).any():
        raise ConfigError(
            f"snapshot bounds must be strictly increasing with >= 2 values, got {bounds.tolist()}"
        )
    m = np.asarray(split.assign) == TRAIN
    user = np.asarray(table.user, dtype=np.int64)[m]
    item = np.asarray(table.item, dtype=np.int64)[m]
    beh = np.asarray(table.behavior, dtype=np.int64)[m]
    win = window_index(np.asarray(table.ts, dtype=np.int64)[m], bounds)
    ni = max(table.num_items, 1)
    nb = len(table.behaviors)
    # one sort of (window, behaviour, user, item) keys; each window/behaviour is a slice
    keep = win >= 0
    key = ((win[keep] * nb + beh[keep]) * max(table.num_users, 1) + user[keep]) * ni + item[keep]
    key = np.unique(key)
    pair = key % (max(table.num_users, 1) * ni)
    group = key // (max(table.num_users, 1) * ni)  # window * nb + behaviour
    cuts = np.searchsorted(group, np.arange(len(bounds) * nb + 1))
    out = []
    for w in range(len(bounds) - 1):  # a loop over windows and behaviours, not events
        edges = {}
        for b, name in enumerate(table.behaviors):
            p = pair[cuts[w * nb + b] : cuts[w * nb + b + 1]]
            edges[name] = np.stack([p // ni, p % ni]).astype(np.int64)
        out.append(
            Snapshot(
                int(bounds[w]),
                int(bounds[w + 1]),
                edges,
                np.asarray(table.item_category).copy(),
            )
        )
    return out
