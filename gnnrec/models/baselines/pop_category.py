"""Popularity within the user's training categories (cold-start baseline)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, ModelConfig, Recommender, register_model


class PopCategoryConfig(ModelConfig):
    """Hyper-parameters of :class:`PopCategory`."""

    pop_weight: float = Field(0.01, ge=0)  # weight of the item-popularity term (ties inside a category)
    cold_item_prior: bool = True  # items without training events get their category's mean popularity


@register_model(
    "pop_category",
    config=PopCategoryConfig,
    description="Popularity within the user's training categories; cold users/items via category.",
)
class PopCategory(Recommender):
    r"""Recommends popular items of the categories a user interacted with in training.

    A category-aware popularity baseline in the spirit of the "popular in your categories"
    fallbacks of cold-start studies (e.g. Schein et al., "Methods and metrics for cold-start
    recommendations", SIGIR 2002, https://doi.org/10.1145/564376.564421, whose baselines
    are attribute-aware popularity rankings); not a reproduction of a published model.

    .. math::
        s(u, i) = w_{u, c(i)} + \alpha \, \frac{\log(1 + \hat n_i)}{\log(1 + \max_j \hat n_j)}

    * :math:`w_{u,c}`: share of the user's unique training ``(user, item)`` pairs (all edge
      behaviours and training positives) whose item is in category ``c`` (items of unknown
      category form one extra bucket);
    * :math:`\hat n_i`: training popularity — distinct training users with a positive on
      ``i`` (as ``pop``); for an item without any training event (a cold item) with
      ``cold_item_prior``, the mean popularity of the warm items of its category, so a new
      item enters its category's ranking at an average position instead of last;
    * :math:`\alpha` = ``pop_weight`` (0.01: the category share decides, popularity orders
      within a share level).

    Cold users: a user with ``k`` training events is ranked from those ``k`` events' categories;
    a user with no training event (``split.cold_k: 0``) has :math:`w_u = 0` and gets the
    global popularity ranking (with the cold-item prior). Hence ``cold_start = "both"``.
    Statistics come from ``TrainData`` only (training rows), so a held-out cold item's own
    events never enter :math:`\hat n`.

    Args:
        meta: graph sizes.
        config: :class:`PopCategoryConfig`.

    Shapes:
        ``score``: ``[B]``; ``score_all``: ``[B, num_items]``.
    """

    trainable = False
    cold_start = "both"

    def __init__(self, meta: GraphMeta, config: PopCategoryConfig) -> None:
        super().__init__(meta)
        self.config = config
        self.pop: torch.Tensor
        self.item_cat: torch.Tensor
        self.register_buffer("pop", torch.zeros(meta.num_items))
        self.register_buffer("item_cat", torch.zeros(meta.num_items, dtype=torch.long))
        self.user_cat: sp.csr_matrix = sp.csr_matrix(
            (meta.num_users, meta.num_categories + 1), dtype=np.float32
        )

    def prepare(self, data: TrainData) -> None:
        m = self.meta
        ni, nc = m.num_items, m.num_categories
        cat = data.item_category.long().cpu().numpy()
        cat = np.where(cat >= 0, cat, nc)  # unknown category: the extra last bucket
        pos = data.pos_index.long().cpu().numpy()
        pos_keys = np.unique(pos[0] * max(ni, 1) + pos[1])
        counts = np.bincount(pos_keys % max(ni, 1), minlength=ni).astype(np.float64)
        pairs = torch.cat([data.interaction_pairs(), data.pos_index.long()], dim=1).cpu().numpy()
        keys = np.unique(pairs[0] * max(ni, 1) + pairs[1])
        u, i = keys // max(ni, 1), keys % max(ni, 1)
        seen = np.zeros(ni, dtype=bool)
        seen[i] = True
        est = counts.copy()
        if self.config.cold_item_prior:
            tot = np.bincount(cat[seen], weights=counts[seen], minlength=nc + 1).astype(np.float64)
            num = np.bincount(cat[seen], minlength=nc + 1)
            mean = np.divide(tot, num, out=np.zeros_like(tot), where=num > 0)
            est[~seen] = mean[cat[~seen]]
        logp = np.log1p(est)
        norm = logp / (1.0 + logp.max()) if logp.size else logp
        w = sp.csr_matrix(
            (np.ones(u.size, dtype=np.float32), (u, cat[i])),
            shape=(m.num_users, nc + 1),
        )
        w.sum_duplicates()
        deg = np.asarray(w.sum(axis=1)).ravel()
        self.user_cat = sp.diags(np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)) @ w
        self.user_cat = sp.csr_matrix(self.user_cat, dtype=np.float32)
        self.pop = torch.as_tensor(norm, dtype=torch.float32, device=self.pop.device)
        self.item_cat = torch.as_tensor(cat, dtype=torch.long, device=self.item_cat.device)

    def encode(self, data: TrainData) -> EmbDict:
        return {"pop": self.pop, "cat": self.item_cat}

    def _profile(self, user_index: torch.Tensor, device: torch.device) -> torch.Tensor:
        rows = self.user_cat[user_index.cpu().numpy()].toarray()
        return torch.as_tensor(rows, dtype=torch.float32, device=device)

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        prof = self._profile(user_index, emb["pop"].device)  # [B, C+1]
        return prof[:, emb["cat"]] + self.config.pop_weight * emb["pop"].unsqueeze(0)

    def score(self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor) -> torch.Tensor:
        prof = self._profile(user_index, emb["pop"].device)
        w = prof.gather(1, emb["cat"][item_index].unsqueeze(1)).squeeze(1)
        return w + self.config.pop_weight * emb["pop"][item_index]

    def extra_repr(self) -> str:
        return (
            f"num_items={self.meta.num_items}, num_categories={self.meta.num_categories}, "
            + super().extra_repr()
        )
