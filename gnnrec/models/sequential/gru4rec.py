"""GRU4Rec: a GRU over the click sequence, the last hidden state as the user vector."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from gnnrec.graph.data import GraphMeta
from gnnrec.models.base import register_model
from gnnrec.models.sequential.base import SequentialConfig, SequentialRecommender


class GRU4RecConfig(SequentialConfig):
    """Hyper-parameters of :class:`GRU4Rec`."""

    num_layers: int = Field(1, ge=1)  # stacked GRU layers
    dropout: float = Field(0.0, ge=0, lt=1)  # dropout on the input embeddings


@register_model(
    "gru4rec",
    config=GRU4RecConfig,
    description="GRU4Rec: GRU over the user's click sequence (Hidasi et al. 2016).",
)
class GRU4Rec(SequentialRecommender):
    """GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural
    Networks", ICLR 2016, https://arxiv.org/abs/1511.06939), in the common RecBole form.

    The last ``max_len`` training items are embedded, run through a GRU (packed, so padding
    never enters the state), and the final hidden state, projected to ``dim``, is scored
    against the item embeddings by dot product.

    Differences from the paper: full softmax cross-entropy over all items (the paper uses
    session-parallel mini-batches with in-batch negatives and TOP1/BPR losses); examples are
    every prefix → next-item pair of a user's training history, shuffled.

    Shapes:
        ``encode``: ``{"item": [I, d]}``; ``score``: ``[B]``; ``score_all``: ``[B, I]``.
    """

    def __init__(self, meta: GraphMeta, config: GRU4RecConfig) -> None:
        super().__init__(meta, config)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        with torch.no_grad():
            self.item_emb.weight[self.pad].zero_()
        self.drop = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.dim, config.dim, num_layers=config.num_layers, batch_first=True)
        self.proj = nn.Linear(config.dim, config.dim)

    def readout(self, window: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        _b, L = window.shape
        # right-aligned → left-aligned so that packing sees the real clicks first
        shift = (L - length).unsqueeze(1)
        col = (torch.arange(L, device=window.device).unsqueeze(0) + shift) % L
        left = torch.gather(window, 1, col)
        x = self.drop(self.item_emb(left))
        lens = length.clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.proj(h[-1])
