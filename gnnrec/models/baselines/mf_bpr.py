"""Matrix factorisation trained with BPR."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, ModelConfig, PairBatch, Recommender, register_model


def ego_l2(reg: float, user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    r"""``reg * (||u||² + ||i⁺||² + ||i⁻||²) / 2 / B`` on a batch's embedding rows.

    ``user`` and ``pos`` are ``[B, d]``; ``neg`` is ``[B, n, d]`` or ``[B, d]`` (with ``n``
    negatives per positive, all of them are summed). This is the L2 term of LightGCN's
    reference code (``reg_loss`` / batch size), i.e. weight decay restricted to the rows a
    batch touches.
    """
    b = user.shape[0]
    sq = user.pow(2).sum() + pos.pow(2).sum() + neg.pow(2).sum()
    return reg * sq / 2 / b


def batch_ego_l2(reg: float, user_emb: nn.Embedding, item_emb: nn.Embedding, batch: PairBatch) -> torch.Tensor:
    """:func:`ego_l2` on the rows of the ego tables a batch touches (0 when ``reg`` is 0)."""
    if reg == 0:
        return torch.zeros((), device=batch.user.device)
    # index_select: its backward is an index_add_, cheaper than advanced indexing's index_put_
    w = item_emb.weight
    return ego_l2(
        reg,
        user_emb.weight.index_select(0, batch.user),
        w.index_select(0, batch.pos),
        w.index_select(0, batch.neg.reshape(-1)).view(*batch.neg.shape, -1),
    )


class MFBPRConfig(ModelConfig):
    """Hyper-parameters of :class:`MFBPR`."""

    dim: int = Field(64, ge=1)  # embedding size d
    reg: float = Field(1e-4, ge=0)  # L2 weight on the batch's embeddings (see ego_l2)
    init: Literal["normal", "xavier"] = "normal"  # normal(0, init_std) or xavier_uniform
    init_std: float = Field(0.1, gt=0)  # std of the normal init


@register_model(
    "mf_bpr",
    config=MFBPRConfig,
    description="Matrix factorisation with BPR loss (Rendle et al. 2009).",
)
class MFBPR(Recommender):
    r"""Matrix factorisation :math:`s(u, i) = \mathbf{p}_u^\top \mathbf{q}_i`.

    Rendle et al., "BPR: Bayesian personalized ranking from implicit feedback", UAI 2009
    (https://arxiv.org/abs/1205.2618).

    Trained by the generic trainer with ``train.loss`` (BPR by default) plus
    :func:`ego_l2` on the batch's user, positive and negative embeddings.

    Differences from the paper:
        * Adam with mini-batches of uniformly shuffled positives instead of SGD with
          bootstrap sampling of (u, i, j) triples.
        * The L2 term is ``reg/2 · (‖p_u‖² + ‖q_i‖² + ‖q_j‖²)`` averaged over the batch, as in
          LightGCN's reference code, with one ``reg`` for users and items (the paper has
          separate λ's, applied per SGD update).
        * Initialisation: normal with std ``init_std`` (0.1, LightGCN's choice) by default,
          or Xavier-uniform (``init: xavier``); the paper uses N(0, 0.01)-like small values.

    Args:
        meta: graph sizes.
        config: :class:`MFBPRConfig`.

    Shapes:
        ``encode``: ``{"user": [U, d], "item": [I, d]}``; ``score``: ``[B]``;
        ``score_all``: ``[B, I]``.
    """

    def __init__(self, meta: GraphMeta, config: MFBPRConfig) -> None:
        super().__init__(meta)
        self.config = config
        self.user_emb = nn.Embedding(meta.num_users, config.dim)
        self.item_emb = nn.Embedding(meta.num_items, config.dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.user_emb, self.item_emb):
            if self.config.init == "normal":
                nn.init.normal_(emb.weight, std=self.config.init_std)
            else:
                nn.init.xavier_uniform_(emb.weight)

    def encode(self, data: TrainData) -> EmbDict:
        return {"user": self.user_emb.weight, "item": self.item_emb.weight}

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        return batch_ego_l2(self.config.reg, self.user_emb, self.item_emb, batch)

    def extra_repr(self) -> str:
        return f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, " + super().extra_repr()
