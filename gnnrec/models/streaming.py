"""Streaming updates: fold new events into a trained model without retraining.

A :class:`StreamingRecommender` is a :class:`~gnnrec.models.base.Recommender` that also has
``update(events) -> set[int]``: it advances the model's graph/time state with an
:class:`EventBatch` of new events (no gradient step, no parameter change) and returns the
indices of the users whose representation changed. Every other user's scores stay
bit-identical. After an update, ``model.eval(); emb = model.encode(data)`` returns the
embeddings of the advanced state (a model may serve them from a snapshot; see its
docstring).

Events are already mapped to the model's vocabulary: ``user`` / ``item`` are contiguous
indices (``0..num_users-1`` / ``0..num_items-1`` of the training table), ``behavior`` an
index into ``meta.behaviors`` (the training graph's edge behaviours), ``ts`` Unix seconds.
Unknown users, items or behaviours are rejected with a :class:`~gnnrec.errors.DataError`
naming the 1-based event, the column and the value: a new item has no trained embedding,
so it needs retraining (or an item fold-in this module does not do).

:class:`FoldInStreamer` gives the static dot-product models (``mf_bpr``, ``lightgcn``, ...)
a cheap ``update`` for comparisons: an affected user's vector moves towards the mean
embedding of the items in their new events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from gnnrec.errors import DataError, GnnrecError
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, Recommender

__all__ = ["EventBatch", "FoldInStreamer", "StreamingRecommender", "is_streaming"]

IntArray = Sequence[int] | np.ndarray | torch.Tensor


def _as_long(x: IntArray, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.numel() == 0:  # np.asarray([]) is float64: an empty batch is fine
        return torch.zeros(0, dtype=torch.long, device=t.device)
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex:
        raise GnnrecError(
            f"EventBatch.{name}: expected integer indices, got dtype {t.dtype}"
        )
    return t.reshape(-1).to(torch.long)


@dataclass(frozen=True)
class EventBatch:
    """New events in the model's vocabulary (all ``int64 [N]``, CPU or any device).

    Attributes:
        user: user index ``0..num_users-1``.
        item: item index ``0..num_items-1``.
        behavior: index into ``meta.behaviors``.
        ts: Unix seconds.
    """

    user: torch.Tensor
    item: torch.Tensor
    behavior: torch.Tensor
    ts: torch.Tensor

    @classmethod
    def from_arrays(
        cls, user: IntArray, item: IntArray, behavior: IntArray, ts: IntArray
    ) -> EventBatch:
        """Build from lists / numpy arrays / tensors of equal length.

        Raises:
            GnnrecError: non-integer input or different lengths.
        """
        cols = {
            n: _as_long(v, n)
            for n, v in (
                ("user", user),
                ("item", item),
                ("behavior", behavior),
                ("ts", ts),
            )
        }
        sizes = {n: int(v.numel()) for n, v in cols.items()}
        if len(set(sizes.values())) != 1:
            raise GnnrecError(f"EventBatch: columns differ in length {sizes}")
        return cls(**cols)

    def __len__(self) -> int:
        return int(self.user.numel())

    def to(self, device: torch.device | str) -> EventBatch:
        return EventBatch(
            self.user.to(device),
            self.item.to(device),
            self.behavior.to(device),
            self.ts.to(device),
        )

    def validate(self, meta: GraphMeta) -> None:
        """Reject events outside the model's vocabulary.

        Raises:
            DataError: ``"row N, column 'item': item index is not in the model's vocabulary
                (0..I-1); new items need retraining (got 99)"`` for the first bad event
                (rows are 1-based positions in the batch).
        """
        n = len(self)
        for name, col in (
            ("user", self.user),
            ("item", self.item),
            ("behavior", self.behavior),
            ("ts", self.ts),
        ):
            if int(col.numel()) != n:
                raise GnnrecError(
                    f"EventBatch: column '{name}' has {int(col.numel())} values, expected {n}"
                )
        limits = (
            (
                "user",
                self.user,
                meta.num_users,
                "user index is not in the model's vocabulary",
            ),
            (
                "item",
                self.item,
                meta.num_items,
                "item index is not in the model's vocabulary",
            ),
            (
                "behavior",
                self.behavior,
                len(meta.behaviors),
                "behaviour index is not an edge behaviour of the model",
            ),
        )
        for name, col, size, what in limits:
            bad = (col < 0) | (col >= size)
            if bool(bad.any()):
                row = int(torch.nonzero(bad)[0])
                hint = "; new items need retraining" if name == "item" else ""
                if name == "behavior":
                    hint = f" {list(meta.behaviors)}"
                raise DataError(
                    f"{what} (0..{size - 1}){hint}",
                    row=row + 1,
                    column=name,
                    value=int(col[row]),
                )


@runtime_checkable
class StreamingRecommender(Protocol):
    """A recommender whose state can advance with new events (no gradient steps)."""

    def update(self, events: EventBatch) -> set[int]:
        """Fold ``events`` into the affected users' representations.

        Returns:
            The indices of the users whose representation changed.

        Raises:
            DataError: an event outside the model's vocabulary (nothing is applied then).
        """
        ...


def is_streaming(model: object) -> bool:
    """Whether ``model`` has a callable ``update`` (implements :class:`StreamingRecommender`)."""
    return isinstance(model, StreamingRecommender)


class FoldInStreamer:
    r"""Streaming for a *static* dot-product model by folding new items into user vectors.

    For a user with new events on items :math:`i_1..i_m` (distinct per batch or not; each
    event counts once),

    .. math::
        \mathbf{z}_u \leftarrow \mathbf{z}_u + \beta \, \frac{1}{m} \sum_{k} \mathbf{e}_{i_k}

    (item embeddings frozen; other users untouched). This is the cheapest fold-in: it
    needs no training, no graph change and no new parameters; it is meant as the static
    baseline of streaming comparisons, not as a faithful incremental LightGCN.

    Args:
        model: a trained recommender whose ``encode`` gives ``{"user", "item"}`` with
            dot-product scores (``mf_bpr``, ``lightgcn``, ``ngcf``, ...).
        data: its training data (``encode`` input).
        beta: step size of the fold-in.

    Attributes:
        emb: the current embeddings (``{"user": [U, d], "item": [I, d]}``); pass them to
            ``model.score_all``.
    """

    def __init__(self, model: Recommender, data: TrainData, beta: float = 1.0) -> None:
        self.model = model
        self.beta = float(beta)
        model.eval()
        with torch.no_grad():
            emb = model.encode(data)
        if "user" not in emb or "item" not in emb:
            raise GnnrecError(
                f"FoldInStreamer needs 'user' and 'item' embeddings, got {sorted(emb)}"
            )
        self.emb: EmbDict = {k: v.detach().clone() for k, v in emb.items()}

    @torch.no_grad()
    def update(self, events: EventBatch) -> set[int]:
        """Move each affected user's vector towards the mean of its new items."""
        events.validate(self.model.meta)
        if len(events) == 0:
            return set()
        user_t = self.emb["user"]
        ev = events.to(user_t.device)
        users, inv = torch.unique(ev.user, return_inverse=True)
        counts = torch.bincount(inv, minlength=users.numel()).to(user_t.dtype)
        sums = torch.zeros(
            users.numel(), user_t.shape[1], dtype=user_t.dtype, device=user_t.device
        )
        sums.index_add_(0, inv, self.emb["item"][ev.item])
        user_t[users] = user_t[users] + self.beta * sums / counts[:, None]
        return set(users.tolist())
