"""Time features of training edges: recency relative to a cut-off and the gap to the
user's previous event."""

from __future__ import annotations

import numpy as np

from gnnrec.temporal.sequences import Sequences

__all__ = ["delta_t", "recency"]


def recency(seq: Sequences, cutoff: int) -> np.ndarray:
    """Seconds from every event to ``cutoff`` (``cutoff - ts``; e.g. the split's first
    held-out time, so training events have recency >= 0 under a temporal split).

    Returns:
        int64 ``[N]`` aligned with ``seq.items``.
    """
    return np.int64(cutoff) - seq.times


def delta_t(seq: Sequences, first: int = -1) -> np.ndarray:
    """Seconds since the same user's previous event; ``first`` for a user's first event.

    Returns:
        int64 ``[N]`` aligned with ``seq.items`` (>= 0 except at first events).
    """
    n = seq.items.shape[0]
    out = np.empty(n, dtype=np.int64)
    if n == 0:
        return out
    out[0] = first
    out[1:] = seq.times[1:] - seq.times[:-1]
    out[seq.offsets[:-1][seq.lengths > 0]] = first  # a new user restarts the clock
    return out
