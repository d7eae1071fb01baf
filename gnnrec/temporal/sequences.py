"""Per-user, time-ordered event sequences in CSR form.

:class:`Sequences` stores every user's events in one flat array sorted by (user, time,
behaviour, item) with ``offsets`` marking where each user's run starts: user ``u``'s events
are ``items[offsets[u]:offsets[u + 1]]``. Everything is built with one ``lexsort`` and a
``bincount``/``cumsum`` (no loop per user or per event).

Leakage: :func:`train_sequences` reads only ``Split.assign == TRAIN`` rows, so under
``leave_last_out`` (whose TRAIN rows are strictly before the user's held-out event) every
history event precedes the held-out event and no held-out event is in any sequence.

Ties: events with the same timestamp are ordered by behaviour index then item id (not by
row), so the order does not depend on the order of the log's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gnnrec.data.types import TRAIN, InteractionTable, Split

__all__ = [
    "Sequences",
    "build_sequences",
    "last_items",
    "sequences_from_events",
    "train_sequences",
]


@dataclass(frozen=True)
class Sequences:
    """Events of ``num_users`` users, grouped by user, time-ordered within a user.

    Attributes:
        offsets: int64 ``[num_users + 1]``; user ``u`` owns positions
            ``offsets[u]:offsets[u + 1]``.
        items: int64 ``[N]`` item ids.
        times: int64 ``[N]`` timestamps (0 when unknown).
        behaviors: int64 ``[N]`` behaviour codes (a behaviour index, or 1/0 for
            target/non-target when built from :attr:`TrainData.events`).
    """

    offsets: np.ndarray
    items: np.ndarray
    times: np.ndarray
    behaviors: np.ndarray

    @property
    def num_users(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``[num_users]`` events per user."""
        return np.diff(self.offsets)

    @property
    def users(self) -> np.ndarray:
        """int64 ``[N]`` owner of every position."""
        return np.repeat(np.arange(self.num_users, dtype=np.int64), self.lengths)

    def user_items(self, user: int) -> np.ndarray:
        """Items of one user in time order (for tests and inspection)."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]


def build_sequences(
    user: np.ndarray,
    item: np.ndarray,
    ts: np.ndarray | None,
    behavior: np.ndarray | None,
    num_users: int,
) -> Sequences:
    """Group events by user and sort them by (ts, behaviour, item) within a user.

    Args:
        user, item: int ``[N]`` contiguous ids.
        ts: int ``[N]`` timestamps or ``None`` (then the order is by behaviour, item).
        behavior: int ``[N]`` behaviour codes or ``None`` (all 0).
        num_users: number of users (users without events get empty runs).

    Returns:
        The :class:`Sequences`.
    """
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    n = user.shape[0]
    ts = np.zeros(n, dtype=np.int64) if ts is None else np.asarray(ts, dtype=np.int64)
    beh = np.zeros(n, dtype=np.int64) if behavior is None else np.asarray(behavior, dtype=np.int64)
    order = np.lexsort((item, beh, ts, user))
    offsets = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user, minlength=num_users), out=offsets[1:])
    return Sequences(offsets=offsets, items=item[order], times=ts[order], behaviors=beh[order])


def train_sequences(table: InteractionTable, split: Split) -> Sequences:
    """Per-user sequences of the TRAIN rows of ``table`` (held-out and EXCLUDED rows never
    enter), behaviours as indices into ``table.behaviors``."""
    m = np.asarray(split.assign) == TRAIN
    ts = None if table.ts is None else np.asarray(table.ts)[m]
    return build_sequences(
        np.asarray(table.user)[m],
        np.asarray(table.item)[m],
        ts,
        np.asarray(table.behavior)[m],
        table.num_users,
    )


def sequences_from_events(events: torch.Tensor, num_users: int) -> Sequences:
    """Sequences of :attr:`gnnrec.graph.data.TrainData.events` (``[4, N]``: user, item,
    is_target, ts; already sorted by (user, ts, behaviour, item)); ``behaviors`` holds the
    is-target flag."""
    ev = events.detach().cpu().numpy()
    user = ev[0]
    if user.size > 1 and (np.diff(user) < 0).any():  # not grouped: sort (stable on the rest)
        return build_sequences(ev[0], ev[1], ev[3], ev[2], num_users)
    offsets = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user, minlength=num_users), out=offsets[1:])
    return Sequences(offsets=offsets, items=ev[1].copy(), times=ev[3].copy(), behaviors=ev[2].copy())


def last_items(
    items: torch.Tensor,
    starts: torch.Tensor,
    ends: torch.Tensor,
    max_len: int,
    pad: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-aligned windows of at most ``max_len`` items ending before position ``ends``.

    For row ``b`` the window is ``items[max(starts[b], ends[b] - max_len) : ends[b]]``,
    placed at the right end of a ``[B, max_len]`` matrix padded on the left with ``pad``.

    Args:
        items: int64 ``[N]`` flat item array.
        starts: int64 ``[B]`` first allowed positions (the user's run start).
        ends: int64 ``[B]`` exclusive end positions.
        max_len: window length L.
        pad: padding value.

    Returns:
        ``window`` int64 ``[B, L]`` and ``length`` int64 ``[B]`` (number of real items).
    """
    length = torch.clamp(ends - starts, min=0, max=max_len)
    col = torch.arange(max_len, device=items.device)
    # column c holds position ends - L + c, real when c >= L - length
    pos = ends.unsqueeze(1) - max_len + col.unsqueeze(0)
    real = col.unsqueeze(0) >= (max_len - length).unsqueeze(1)
    window = torch.where(
        real,
        items[pos.clamp(min=0, max=max(items.shape[0] - 1, 0))],
        torch.full_like(pos, pad),
    )
    return window, length
