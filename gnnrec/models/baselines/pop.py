"""Most-popular baseline."""

from __future__ import annotations

import torch

from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, ModelConfig, Recommender, register_model


class PopConfig(ModelConfig):
    """Pop has no hyper-parameters."""


@register_model(
    "pop",
    config=PopConfig,
    description="Most popular items by number of training positives (non-personalised).",
)
class Pop(Recommender):
    r"""Recommends the items with the most training positives to every user.

    The score of item :math:`i` is the number of distinct training users with a positive on
    it, :math:`s(u, i) = |\{v : (v, i) \in \text{pos}\}|`, the same for all users. It is the
    usual sanity floor of top-N evaluation, e.g. Cremonesi et al., "Performance of
    recommender algorithms on top-N recommendation tasks", RecSys 2010
    (https://doi.org/10.1145/1864708.1864721).

    Differences from the paper:
        Counts come from ``TrainData.pos_index`` (unique training positive pairs of the
        target behaviour, or of all behaviours per ``train.positives``), so an item is
        counted once per user, not once per event. Ties keep ``torch.topk``'s order.

    Args:
        meta: graph sizes.
        config: :class:`PopConfig` (empty).

    Shapes:
        ``score``: ``[B]``; ``score_all``: ``[B, num_items]``.
    """

    trainable = False
    #: a user without training events gets the same global ranking; cold items score 0
    cold_start = "user"

    def __init__(self, meta: GraphMeta, config: PopConfig) -> None:
        super().__init__(meta)
        self.config = config
        # a buffer, so it follows model.to(device) and is saved with the state dict
        self.counts: torch.Tensor
        self.register_buffer("counts", torch.zeros(meta.num_items))

    def prepare(self, data: TrainData) -> None:
        # pos_index holds unique pairs by contract; dedupe anyway so a user counts once
        users, items = data.pos_index[0].long(), data.pos_index[1].long()
        items = torch.unique(users * self.meta.num_items + items) % self.meta.num_items
        counts = torch.bincount(items, minlength=self.meta.num_items).to(torch.float32)
        self.counts = counts.to(self.counts.device)

    def encode(self, data: TrainData) -> EmbDict:
        return {"pop": self.counts}

    def score(self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor) -> torch.Tensor:
        return emb["pop"][item_index]

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        # a real copy, not an expanded view: callers may mask scores in place
        return emb["pop"].unsqueeze(0).repeat(user_index.shape[0], 1)

    def extra_repr(self) -> str:
        return f"num_items={self.meta.num_items}"
