"""SASRec: causal self-attention over the click sequence."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from gnnrec.graph.data import GraphMeta
from gnnrec.models.base import register_model
from gnnrec.models.sequential.base import SequentialConfig, SequentialRecommender


class SASRecConfig(SequentialConfig):
    """Hyper-parameters of :class:`SASRec`."""

    num_layers: int = Field(2, ge=1)  # self-attention blocks
    num_heads: int = Field(1, ge=1)  # attention heads (dim must be divisible by it)
    dropout: float = Field(0.2, ge=0, lt=1)  # dropout in embeddings and blocks


@register_model(
    "sasrec",
    config=SASRecConfig,
    description="SASRec: causal self-attention over the click sequence (Kang & McAuley 2018).",
)
class SASRec(SequentialRecommender):
    """SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018,
    https://arxiv.org/abs/1808.09781).

    Item + learned positional embeddings of the last ``max_len`` items (right-aligned, as the
    paper's left padding), ``num_layers`` pre-norm Transformer blocks
    (:class:`torch.nn.TransformerEncoder`) with a causal mask that also hides padding, and the
    output at the last position scored against the (shared) item embeddings.

    Differences from the paper: full softmax cross-entropy on the last position of each
    prefix example (the paper: binary cross-entropy with one sampled negative at every
    position); every padded query attends to itself only (keeps the softmax finite).

    Shapes:
        ``encode``: ``{"item": [I, d]}``; ``score``: ``[B]``; ``score_all``: ``[B, I]``.
    """

    def __init__(self, meta: GraphMeta, config: SASRecConfig) -> None:
        super().__init__(meta, config)
        if config.dim % config.num_heads:
            from gnnrec.errors import ConfigError

            raise ConfigError(
                f"model.params.dim ({config.dim}) must be divisible by num_heads ({config.num_heads})"
            )
        nn.init.normal_(self.item_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[self.pad].zero_()
        self.pos_emb = nn.Embedding(config.max_len, config.dim)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        self.drop = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.dim,
            config.num_heads,
            dim_feedforward=config.dim,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)

    def readout(self, window: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        b, L = window.shape
        dev = window.device
        # positions counted from the right end, so trimming left padding changes nothing
        pos = self.pos_emb.weight[self.config.max_len - L :]
        x = self.item_emb(window) * (self.config.dim**0.5) + pos.unsqueeze(0)
        x = self.drop(x)
        real = torch.arange(L, device=dev).unsqueeze(0) >= (L - length).unsqueeze(1)  # [B, L]
        q = torch.arange(L, device=dev)
        causal = q.unsqueeze(1) >= q.unsqueeze(0)  # [L(query), L(key)]
        allowed = (causal.unsqueeze(0) & real.unsqueeze(1)) | torch.eye(L, dtype=torch.bool, device=dev)
        mask = torch.zeros(b, L, L, device=dev).masked_fill(~allowed, float("-inf"))
        mask = mask.repeat_interleave(self.config.num_heads, dim=0)
        h = self.encoder(x, mask=mask)
        return self.norm(h[:, -1])
