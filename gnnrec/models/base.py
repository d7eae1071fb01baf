"""The one model protocol served by the trainer and the evaluator.

Every recommender, baseline or GNN, is a :class:`Recommender`:

* ``prepare(data)`` — called once with the training data before training; caches structure
  (adjacency) or, for non-trainable models (``trainable = False``), fits them (popularity
  counts, item–item similarities).
* ``encode(data) -> EmbDict`` — embeddings of the current parameters (a GNN propagates here);
  the trainer calls it once per step, the evaluator once per evaluation.
* ``score(emb, user_index, item_index) -> [B]`` — pair scores.
* ``score_all(emb, user_index) -> [B, num_items]`` — full-ranking scores.
* ``loss(emb, batch, kind)`` — training loss of a :class:`PairBatch`; the default is BPR or
  BCE over ``score`` plus ``regularization``.
* ``recommend(emb, user_index, k, exclude)`` — top-k items.

``forward`` is not used: losses and scores are explicit methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from gnnrec.config import ModelSpec, validate_section
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.registry import Registry

EmbDict = dict[str, torch.Tensor]


class ModelConfig(BaseModel):
    """Base of each model's hyper-parameter config (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class PairBatch:
    """A training batch: ``user[B]``, ``pos[B]`` and ``neg[B, n]`` item indices."""

    user: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(self.user.to(device), self.pos.to(device), self.neg.to(device))


class Recommender(nn.Module):
    """Base class of all models (see module docstring for the protocol)."""

    #: False for models fitted in ``prepare`` without gradient steps (pop, itemknn)
    trainable: ClassVar[bool] = True
    #: which entities *without any training event* the model scores meaningfully (from
    #: categories, features or a learned fallback) rather than from untrained ID embeddings:
    #: "none", "user", "item" or "both"; checked by gnnrec.models.cold before a cold-start run
    cold_start: ClassVar[Literal["none", "user", "item", "both"]] = "none"

    def __init__(self, meta: GraphMeta) -> None:
        super().__init__()
        self.meta = meta

    def prepare(self, data: TrainData) -> None:
        """Cache structure from the training data / fit non-trainable models."""

    def encode(self, data: TrainData) -> EmbDict:
        raise NotImplementedError

    def score(self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor) -> torch.Tensor:
        """Default: dot product of ``emb["user"]`` and ``emb["item"]`` rows."""
        return (emb["user"][user_index] * emb["item"][item_index]).sum(-1)

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        """Default: ``emb["user"][users] @ emb["item"].T``."""
        return emb["user"][user_index] @ emb["item"].T

    def score_from_rows(
        self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor, chunk: int = 2**24
    ) -> torch.Tensor:
        """Pair scores for models whose natural output is a full row (kNN, graph filters):
        full rows of the distinct users in chunks of at most ``chunk`` scores, then a gather."""
        out = torch.zeros(user_index.shape[0], device=user_index.device)
        uniq, inv = torch.unique(user_index, return_inverse=True)
        step = max(1, chunk // max(1, self.meta.num_items))
        for s in range(0, uniq.shape[0], step):
            rows = self.score_all(emb, uniq[s : s + step])
            sel = (inv >= s) & (inv < s + step)
            out[sel] = rows[inv[sel] - s, item_index[sel]]
        return out

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        """Extra loss term (e.g. L2 on the batch's ego embeddings); default 0."""
        return torch.zeros((), device=batch.user.device)

    def loss(self, emb: EmbDict, batch: PairBatch, kind: str = "bpr", temperature: float = 0.1) -> torch.Tensor:
        from gnnrec import losses

        pos = self.score(emb, batch.user, batch.pos)  # [B]
        n = batch.neg.shape[1]
        neg = self.score(emb, batch.user.repeat_interleave(n), batch.neg.reshape(-1)).view(-1, n)
        extra = {"temperature": temperature} if kind in losses.TEMPERATURE_LOSSES else {}
        return losses.get(kind)(pos, neg, **extra) + self.regularization(emb, batch)

    @torch.no_grad()
    def recommend(
        self,
        emb: EmbDict,
        user_index: torch.Tensor,
        k: int,
        exclude: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` (scores, items) per user; ``exclude`` is a bool mask ``[B, num_items]``."""
        scores = self.score_all(emb, user_index)
        if exclude is not None:
            scores = scores.masked_fill(exclude, float("-inf"))
        return scores.topk(min(k, scores.shape[1]), dim=1)

    def extra_repr(self) -> str:
        cfg = getattr(self, "config", None)
        return "" if cfg is None else ", ".join(f"{k}={v}" for k, v in cfg.model_dump().items())


MODELS: Registry[type[Recommender]] = Registry("model")


def register_model(name: str, config: type[ModelConfig], description: str = "") -> Any:
    """Class decorator: ``@register_model("mf_bpr", config=MFConfig, description=...)``.

    The model class is constructed as ``cls(meta, config)``.
    """
    return MODELS.register(name, config=config, description=description)


def build_model(spec: ModelSpec, meta: GraphMeta) -> Recommender:
    """Validate ``spec.params`` against the model's config class and build the model."""
    from gnnrec import models as _models  # noqa: F401  (populates the registry)

    cls = MODELS.get(spec.name)
    cfg = validate_section(MODELS.meta(spec.name)["config"], spec.params, "model.params")
    return cls(meta, cfg)  # type: ignore[call-arg]
