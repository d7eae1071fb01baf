"""Sessions: runs of a user's events separated by an inactivity gap.

A new session starts at a user's first event and whenever the time since the user's previous
event is *greater than* ``gap`` seconds (a gap exactly equal to ``gap`` stays in the session).
"""

from __future__ import annotations

import numpy as np

from gnnrec.temporal.sequences import Sequences

__all__ = ["session_ids", "sessions_of"]


def session_ids(seq: Sequences, gap: int) -> np.ndarray:
    """Session id of every position of ``seq`` (0, 1, ... in (user, time) order).

    Args:
        seq: per-user time-ordered events.
        gap: inactivity gap in seconds (``>= 0``).

    Returns:
        int64 ``[N]`` session ids, non-decreasing along ``seq``.

    Raises:
        ValueError: ``gap`` is negative.
    """
    if gap < 0:
        raise ValueError(f"session gap must be >= 0 seconds, got {gap}")
    n = seq.items.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.zeros(n, dtype=bool)
    new[seq.offsets[:-1][seq.lengths > 0]] = True  # each user's first event
    new[1:] |= (seq.times[1:] - seq.times[:-1]) > gap
    return np.cumsum(new, dtype=np.int64) - 1


def sessions_of(seq: Sequences, gap: int) -> tuple[Sequences, np.ndarray]:
    """Regroup ``seq`` by session: one CSR row per session.

    Returns:
        ``(sessions, session_user)``: a :class:`Sequences` whose rows are sessions (same
        flat arrays, new offsets) and int64 ``[num_sessions]`` owner of every session.
    """
    sid = session_ids(seq, gap)
    num = int(sid[-1]) + 1 if sid.size else 0
    offsets = np.zeros(num + 1, dtype=np.int64)
    np.cumsum(np.bincount(sid, minlength=num), out=offsets[1:])
    owner = seq.users[offsets[:-1]] if num else np.zeros(0, dtype=np.int64)
    return Sequences(offsets, seq.items, seq.times, seq.behaviors), owner
