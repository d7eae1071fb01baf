"""Content-tower matrix factorisation: items embedded from category and features."""

from __future__ import annotations

import weakref
from typing import Any

import torch
from pydantic import Field
from torch import nn

from gnnrec.features.fusion import FeatureFusion
from gnnrec.graph.build import union_pairs
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import (
    EmbDict,
    ModelConfig,
    PairBatch,
    Recommender,
    register_model,
)
from gnnrec.models.baselines.mf_bpr import ego_l2


class ContentMFConfig(ModelConfig):
    """Hyper-parameters of :class:`ContentMF`."""

    dim: int = Field(64, ge=1)  # embedding size d
    item_id_emb: bool = False  # add a learned ID embedding for items with training events
    user_id_emb: bool = True  # learned ID embedding for users with training events
    user_from_items: bool = True  # add the mean content vector of the user's training items
    reg: float = Field(1e-4, ge=0)  # L2 on the batch's input vectors (as mf_bpr's ego_l2)
    init_std: float = Field(0.1, gt=0)  # std of the normal init of embeddings


@register_model(
    "content_mf",
    config=ContentMFConfig,
    description="MF with a content item tower (category + text/numeric features); cold users and items.",
)
class ContentMF(Recommender):
    r"""Two-tower factorisation: the item tower reads content, so new items can be scored.

    A content-based factorisation in the line of "collaborative topic / content towers" (e.g.
    van den Oord et al., "Deep content-based music recommendation", NeurIPS 2013,
    https://papers.nips.cc/paper/5004; DropoutNet, Volkovs et al., NeurIPS 2017), trained
    end-to-end with BPR; not a reproduction of either.

    * item ``i``: :math:`x_i = e_{c(i)} + [\text{item\_id\_emb}]\, s_i q_i` fused with the item
      features :math:`f_i` of ``TrainData.cache["item_features"]`` when present
      (:class:`~gnnrec.features.fusion.FeatureFusion`, mode from ``features.fusion``), then
      :math:`t_i = W_2\,\mathrm{ReLU}(W_1 x_i + b_1) + b_2`. ``s_i`` = the item has a training
      event; by default there is no ID part, so warm and cold items are embedded alike.
    * user ``u``: :math:`p = b + s_u p_u + [\text{user\_from\_items}]\, \mathrm{mean}_{i \in N(u)} t_i`
      with a learned global vector ``b`` (what a user without training events gets: a learned
      global ranking), the ID embedding ``p_u`` of users with a training event and the mean
      content vector of the user's training items (all edge behaviours) — the only
      user-specific part of a cold user with ``k`` events.
    * :math:`s(u, i) = p^\top t_i`; BPR (``train.loss``) plus ``reg/2·‖·‖²`` on the batch's
      input vectors.

    ``cold_start = "both"``: cold items through category + features, users without events
    through ``b``. Without item features the item tower sees the category only, so items of
    one category are indistinguishable; on datasets with text, set ``features.text_column``.

    Args:
        meta: graph sizes.
        config: :class:`ContentMFConfig`.

    Shapes:
        ``encode``: ``{"user": [U, d], "item": [I, d], "user_ego": [U, d], "item_ego": [I, d]}``.
    """

    cold_start = "both"
    user_seen: torch.Tensor
    item_seen: torch.Tensor

    def __init__(self, meta: GraphMeta, config: ContentMFConfig) -> None:
        super().__init__(meta)
        self.config = config
        d = config.dim
        self.category_emb = nn.Embedding(meta.num_categories + 1, d)  # last row: unknown
        self.item_emb = nn.Embedding(meta.num_items, d) if config.item_id_emb else None
        self.user_emb = nn.Embedding(meta.num_users, d) if config.user_id_emb else None
        self.user_bias = nn.Parameter(torch.zeros(d))
        self.tower = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.fusion: FeatureFusion | None = None
        self.register_buffer("user_seen", torch.ones(meta.num_users, dtype=torch.bool))
        self.register_buffer("item_seen", torch.ones(meta.num_items, dtype=torch.bool))
        # (weak reference to the TrainData it was built from, category rows, user<-item mean, features)
        self._graph: tuple[Any, torch.Tensor, Any, torch.Tensor | None] | None = None
        for emb in (self.category_emb, self.item_emb, self.user_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=config.init_std)

    def prepare(self, data: TrainData) -> None:
        from gnnrec.models.encoders.sage import RelationAdjacency, seen_mask

        user_seen, item_seen = seen_mask(data)
        self.user_seen.copy_(user_seen)
        self.item_seen.copy_(item_seen)
        m = self.meta
        pairs = union_pairs([data.edge_index[b] for b in m.behaviors] + [data.pos_index], m.num_items)
        adj_ui = RelationAdjacency(pairs[1], pairs[0], m.num_items, m.num_users)  # user <- items mean
        cat = data.item_category.long()
        cat_row = torch.where(cat >= 0, cat, torch.full_like(cat, m.num_categories))
        feats = data.cache.get("item_features")
        self._graph = (weakref.ref(data), cat_row, adj_ui, feats)
        if feats is not None:
            mode = data.cache.get("item_feature_fusion", "concat")
            if self.fusion is None or self.fusion.feat_dim != feats.shape[1] or self.fusion.mode != mode:
                self.fusion = FeatureFusion(self.config.dim, int(feats.shape[1]), mode).to(
                    self.category_emb.weight.device
                )

    def _structure(self, data: TrainData) -> tuple[Any, torch.Tensor, Any, torch.Tensor | None]:
        if self._graph is None or self._graph[0]() is not data:
            seen = (self.user_seen.clone(), self.item_seen.clone()) if self._graph is not None else None
            self.prepare(data)
            if seen is not None:  # another graph object (device copy): keep training-time masks
                self.user_seen.copy_(seen[0])
                self.item_seen.copy_(seen[1])
        assert self._graph is not None
        return self._graph

    def encode(self, data: TrainData) -> EmbDict:
        _, cat_row, adj_ui, feats = self._structure(data)
        x = self.category_emb(cat_row)
        if self.item_emb is not None:
            x = x + self.item_emb.weight * self.item_seen.unsqueeze(1).to(x.dtype)
        if feats is not None and self.fusion is not None:
            x = self.fusion(x, feats)
        item = self.tower(x)
        user_ego = self.user_bias.expand(self.meta.num_users, -1)
        if self.user_emb is not None:
            user_ego = user_ego + self.user_emb.weight * self.user_seen.unsqueeze(1).to(x.dtype)
        user = user_ego
        if self.config.user_from_items:
            user = user + adj_ui.propagate(item)
        return {"user": user, "item": item, "user_ego": user_ego, "item_ego": x}

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        if self.config.reg == 0:
            return torch.zeros((), device=batch.user.device)
        return ego_l2(
            self.config.reg,
            emb["user_ego"][batch.user],
            emb["item_ego"][batch.pos],
            emb["item_ego"][batch.neg],
        )

    def extra_repr(self) -> str:
        return f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, " + super().extra_repr()
