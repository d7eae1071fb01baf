"""Shared machinery of the sequential / session models (GRU4Rec, SASRec, SR-GNN).

A sequential model represents a user by a readout over the user's last ``max_len`` training
events (:attr:`TrainData.events`, time-ordered; history strictly before any held-out event
because the split keeps only earlier events in TRAIN). ``encode`` returns the item table;
``score`` / ``score_all`` run the readout for the requested users only.

Training: the model draws its own batches through the trainer's ``train_batches`` hook —
one example per training event of the target behaviour (``train_targets: target``; or of
any behaviour, ``all``) that has at least one earlier event: history = the events before it
(last ``max_len``), label = its item — the prefix → next-item expansion of SR-GNN / SASRec,
trained with full softmax cross-entropy over all items. Under the generic trainer path
(:class:`PairBatch`, e.g. the encoder contract) the loss is BPR / BCE of the user's whole
training history against the sampled items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from gnnrec import losses
from gnnrec.errors import GnnrecError
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, ModelConfig, PairBatch, Recommender
from gnnrec.temporal.sequences import last_items

__all__ = ["SeqBatch", "SequentialConfig", "SequentialRecommender"]


class SequentialConfig(ModelConfig):
    """Options shared by the sequential models."""

    dim: int = Field(64, ge=1)  # embedding size d
    max_len: int = Field(50, ge=1)  # history window L (last L training events)
    train_targets: Literal["target", "all"] = "target"  # events used as next-item labels
    reg: float = Field(0.0, ge=0)  # extra L2 on the batch's embeddings (Adam weight_decay is separate)
    # < 1: a trainer epoch is the next 1/k part (k = round(1 / epoch_fraction)) of a shuffled
    # pass over the examples; k epochs cover every example once, then the pass is reshuffled
    epoch_fraction: float = Field(1.0, gt=0, le=1)


@dataclass
class SeqBatch:
    """A batch of next-item examples: ``user[B]`` (example index; its length is the batch
    size the trainer averages with), ``window[B, L]`` right-aligned history padded with
    ``num_items``, ``length[B]``, ``pos[B]`` the next item."""

    user: torch.Tensor
    window: torch.Tensor
    length: torch.Tensor
    pos: torch.Tensor


class SequentialRecommender(Recommender):
    """Base class: histories from ``TrainData.events``, a padded item table, CE training.

    Subclasses implement :meth:`readout` (``window [B, L], length [B] -> [B, d]``) and may
    override :meth:`item_table`.
    """

    def __init__(self, meta: GraphMeta, config: SequentialConfig) -> None:
        super().__init__(meta)
        self.config = config
        self.pad = meta.num_items  # row num_items of the item table is padding
        self.item_emb = nn.Embedding(meta.num_items + 1, config.dim, padding_idx=self.pad)
        for name in ("_offsets", "_items", "_ex_pos", "_ex_start"):
            self.register_buffer(name, torch.zeros(0, dtype=torch.long), persistent=False)
        # epoch_fraction < 1: the current pass's permutation and the next part to serve
        self._walk_perm: torch.Tensor | None = None
        self._walk_part = 0

    # ------------------------------------------------------------------ data
    def prepare(self, data: TrainData) -> None:
        """Cache the users' time-ordered histories and the training example positions."""
        if data.events is None:
            raise GnnrecError(
                f"model '{type(self).__name__}' needs time-ordered training events "
                "(TrainData.events); build the data with gnnrec.graph.build.build_train_data"
            )
        ev = data.events.to(self._offsets.device)
        nu = self.meta.num_users
        user, item, is_target = ev[0], ev[1], ev[2]
        if user.numel() > 1 and bool((user[1:] < user[:-1]).any()):
            raise GnnrecError("TrainData.events must be sorted by user")
        counts = torch.bincount(user, minlength=nu)
        offsets = torch.zeros(nu + 1, dtype=torch.long, device=ev.device)
        offsets[1:] = torch.cumsum(counts, 0)
        start = offsets[user]  # run start of every position
        pos = torch.arange(user.numel(), device=ev.device)
        label = (
            is_target.bool()
            if self.config.train_targets == "target"
            else torch.ones_like(pos, dtype=torch.bool)
        )
        ex = label & (pos > start)  # a label needs at least one earlier event
        self._offsets, self._items = offsets, item.clone()
        self._ex_pos, self._ex_start = pos[ex], start[ex]
        self._walk_perm, self._walk_part = None, 0  # new examples: start a fresh pass

    @property
    def num_examples(self) -> int:
        """Next-item training examples per epoch."""
        return int(self._ex_pos.numel())

    @staticmethod
    def _trim(window: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Drop the all-padding left columns (the batch's longest history decides the width).

        Every readout is invariant to extra left padding, so this only saves work: most
        sessions are far shorter than ``max_len``."""
        width = max(1, int(length.max())) if length.numel() else 1
        return window[:, window.shape[1] - width :], length

    def user_window(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-aligned last ``max_len`` training items of ``users`` and their lengths
        (trimmed to the longest of them)."""
        users = users.to(self._offsets.device)
        return self._trim(
            *last_items(
                self._items,
                self._offsets[users],
                self._offsets[users + 1],
                self.config.max_len,
                self.pad,
            )
        )

    def parts_per_pass(self, n: int | None = None) -> int:
        """Trainer epochs per pass over the ``n`` (default: all) training examples:
        ``round(1 / epoch_fraction)``, at most ``n``."""
        n = self.num_examples if n is None else n
        return max(1, min(n, round(1.0 / self.config.epoch_fraction)))

    def _epoch_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Example indices of one trainer epoch.

        ``epoch_fraction == 1``: a fresh permutation of all ``n`` examples. ``< 1``: the next
        of ``k`` near-equal consecutive parts of one permutation, so that ``k`` epochs see
        every example exactly once (as one epoch of the reference code does) and the
        permutation is redrawn only at the start of a pass. (Drawing a fresh random share
        every epoch instead would repeat some examples and skip others within a pass.) The
        walk's position is held by the model, not in its state dict: a run resumed from a
        checkpoint mid-pass starts a new pass.
        """

        def draw() -> torch.Tensor:
            perm = torch.randperm(n, generator=generator, device=generator.device)
            return perm.to(self._ex_pos.device)

        if self.config.epoch_fraction >= 1:
            return draw()
        k = self.parts_per_pass(n)
        if self._walk_perm is None or self._walk_perm.numel() != n or self._walk_part >= k:
            self._walk_perm, self._walk_part = draw(), 0
        i = self._walk_part
        self._walk_part += 1
        return self._walk_perm[i * n // k : (i + 1) * n // k]

    def train_batches(
        self, data: TrainData, batch_size: int, generator: torch.Generator
    ) -> Iterator[SeqBatch]:
        """Trainer hook: one epoch of shuffled next-item examples (see :meth:`_epoch_order`)."""
        n = self.num_examples
        if n == 0:
            raise GnnrecError(
                "no next-item training examples: no training event of the target behaviour has an "
                "earlier event (set model.params.train_targets: all, or check the split)"
            )
        order = self._epoch_order(n, generator)
        for s in range(0, order.numel(), batch_size):
            idx = order[s : s + batch_size]
            p, st = self._ex_pos[idx], self._ex_start[idx]
            window, length = self._trim(*last_items(self._items, st, p, self.config.max_len, self.pad))
            yield SeqBatch(user=idx, window=window, length=length, pos=self._items[p])

    # ------------------------------------------------------------------ model
    def item_table(self) -> torch.Tensor:
        """``[num_items + 1, d]`` item embeddings used as input (row ``pad`` is zeros)."""
        return self.item_emb.weight

    def readout(self, window: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def output_items(self) -> torch.Tensor:
        """``[num_items, d]`` item embeddings scored against the readout."""
        return self.item_table()[: self.meta.num_items]

    def encode(self, data: TrainData) -> EmbDict:
        return {"item": self.output_items()}

    def _user_repr(self, users: torch.Tensor) -> torch.Tensor:
        uniq, inv = torch.unique(users, return_inverse=True)
        window, length = self.user_window(uniq)
        rep = self.readout(window, length)
        rep = torch.where((length > 0).unsqueeze(1), rep, torch.zeros_like(rep))  # no history: 0
        return rep[inv]

    def score(self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor) -> torch.Tensor:
        return (self._user_repr(user_index) * emb["item"][item_index]).sum(-1)

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        return self._user_repr(user_index) @ emb["item"].T

    def loss(self, emb: EmbDict, batch: PairBatch | SeqBatch, kind: str = "bpr") -> torch.Tensor:  # type: ignore[override]
        """Cross-entropy over all items for a :class:`SeqBatch`; BPR/BCE for a PairBatch."""
        if isinstance(batch, SeqBatch):
            rep = self.readout(batch.window, batch.length)
            logits = rep @ emb["item"].T
            out = F.cross_entropy(logits, batch.pos)
            if self.config.reg > 0:
                out = out + self.config.reg * (rep.pow(2).sum() + emb["item"][batch.pos].pow(2).sum()) / (
                    2 * rep.shape[0]
                )
            return out
        rep = self._user_repr(batch.user)
        pos = (rep * emb["item"][batch.pos]).sum(-1)
        neg = torch.einsum("bd,bnd->bn", rep, emb["item"][batch.neg])
        return losses.get(kind)(pos, neg)
