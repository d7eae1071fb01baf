"""Temporal data: per-user sequences, sessions, time-window snapshots, edge time features."""

from gnnrec.temporal.features import delta_t, recency
from gnnrec.temporal.sequences import (
    Sequences,
    build_sequences,
    last_items,
    sequences_from_events,
    train_sequences,
)
from gnnrec.temporal.sessions import session_ids, sessions_of
from gnnrec.temporal.snapshots import Snapshot, snapshots, window_bounds, window_index

__all__ = [
    "Sequences",
    "Snapshot",
    "build_sequences",
    "delta_t",
    "last_items",
    "recency",
    "sequences_from_events",
    "session_ids",
    "sessions_of",
    "snapshots",
    "train_sequences",
    "window_bounds",
    "window_index",
]
