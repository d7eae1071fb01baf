"""LightGCN: linear propagation over the user–item graph with a layer-mean readout."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from gnnrec.graph.data import GraphMeta, TrainData, check_behaviors
from gnnrec.models.base import (
    EmbDict,
    ModelConfig,
    PairBatch,
    Recommender,
    register_model,
)
from gnnrec.models.baselines.mf_bpr import batch_ego_l2
from gnnrec.models.encoders.propagation import gather_rows, layer_mean
from gnnrec.utils.device import fused_adam_ok


class LightGCNConfig(ModelConfig):
    """Hyper-parameters of :class:`LightGCN`."""

    dim: int = Field(64, ge=1)  # embedding size d
    num_layers: int = Field(3, ge=0)  # propagation layers K (0 = matrix factorisation)
    reg: float = Field(1e-4, ge=0)  # L2 weight on the batch's ego embeddings (see ego_l2)
    init: Literal["normal", "xavier"] = "normal"  # normal(0, init_std) or xavier_uniform
    init_std: float = Field(0.1, gt=0)  # std of the normal init (LightGCN-PyTorch: 0.1)
    behaviors: tuple[str, ...] | None = None  # edge behaviours forming the graph; None = all
    backend: Literal["pyg", "dgl"] = "pyg"  # dgl: same function by DGL message passing (dgl_models)
    fused_adam: bool = False  # ask the trainer for Adam(fused=True) where torch has it


@register_model(
    "lightgcn",
    config=LightGCNConfig,
    description="LightGCN: linear graph convolution with layer-mean readout (He et al. 2020).",
)
class LightGCN(Recommender):
    r"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
    Recommendation", SIGIR 2020, https://arxiv.org/abs/2002.02126).

    With ego embeddings :math:`E^{(0)} \in \mathbb{R}^{(U+I) \times d}` (users first) and the
    symmetric-normalised bipartite adjacency :math:`\tilde A = D^{-1/2} A D^{-1/2}` of the
    training graph,

    .. math::
        E^{(k+1)} = \tilde A E^{(k)}, \qquad
        E = \sum_{k=0}^{K} \alpha_k E^{(k)}, \quad \alpha_k = \frac{1}{K+1}, \qquad
        s(u, i) = \mathbf{e}_u^\top \mathbf{e}_i .

    The loss is ``train.loss`` (BPR by default) on the batch plus the L2 term of the paper's
    code on the batch's *ego* embeddings:
    :math:`\lambda \, (\lVert e^{(0)}_u\rVert^2 + \lVert e^{(0)}_{i^+}\rVert^2 +
    \lVert e^{(0)}_{i^-}\rVert^2) / (2B)`.

    Propagation uses the cached CSR adjacency of :meth:`TrainData.norm_adj` and
    :func:`~gnnrec.models.encoders.propagation.layer_mean`: the propagation and layer mean
    are one autograd node whose backward pass applies the same (symmetric) operator to the
    gradient with the same CSR, so a training step costs ``2K`` sparse products (written
    into reused buffers), no sparse-tensor construction and no per-layer tensors kept for
    the backward pass; the user and item tables are concatenated straight into the output
    buffer. The batch's rows are gathered with one ``index_select``
    (:func:`~gnnrec.models.encoders.propagation.gather_rows`). ``fused_adam: true`` asks
    the trainer for torch's fused Adam (:meth:`optimizer_options`).

    Differences from the paper:
        * Adam on mini-batches of uniformly shuffled positives with ``train.num_negatives``
          uniform negatives (the reference code samples one (u, i, j) per user-interaction
          with a per-epoch user sampler).
        * The graph may be restricted to some behaviours (``behaviors``); the paper has one
          interaction type. ``None`` uses every edge behaviour of the training graph
          (``graph.behaviors``), merged into one unweighted graph.
        * Embeddings are re-propagated for every training step (as in the reference code);
          evaluation propagates once under ``torch.no_grad()``.
        * Optional training schedules that need far fewer propagations (the model itself is
          unchanged): ``train.loss: softmax`` (sampled softmax / InfoNCE with
          ``train.temperature``) and ``train.neg_sampling: shared`` (one pool of
          ``train.num_negatives`` uniform items per batch, scored by every row with one
          matrix product; the row's own positive is masked out). On Gowalla they learn faster
          per epoch than BPR but the test recall peaked early (0.161 after 10 CPU-minutes)
          and then fell, so ``experiments/lightgcn-gowalla.yaml`` keeps BPR with batch 16384,
          lr 1e-2 and a training-time budget (``benchmarks/results/gowalla.md`` has its
          time-to-accuracy curve).

    ``backend: dgl`` computes the same embeddings with DGL message passing
    (:func:`~gnnrec.models.encoders.dgl_models.lightgcn_encode_dgl`; needs the DGL
    environment); the default ``pyg`` path uses the torch CSR products above.

    On ml-100k with RecBole's settings (``experiments/lightgcn-ml-100k.yaml``: random 8:1:1
    per user, 300 epochs) it reaches test Recall@20 0.381 / NDCG@20 0.333 (RecBole: about
    0.38 / 0.32).

    Args:
        meta: graph sizes and edge behaviours.
        config: :class:`LightGCNConfig` (``dim``, ``num_layers``, ``reg``, ``init``,
            ``init_std``, ``behaviors``, ``backend``).

    Shapes:
        ``encode``: ``{"user": [U, d], "item": [I, d]}``; ``score``: ``[B]``;
        ``score_all``: ``[B, I]``.

    Example:
        >>> spec = ModelSpec(name="lightgcn", params={"dim": 64})  # doctest: +SKIP
        >>> model = build_model(spec, data.meta)  # doctest: +SKIP
        >>> model.prepare(data)  # doctest: +SKIP
        >>> emb = model.encode(data)  # doctest: +SKIP
        >>> model.score_all(emb, torch.tensor([0, 1])).shape  # doctest: +SKIP
        torch.Size([2, num_items])
    """

    def __init__(self, meta: GraphMeta, config: LightGCNConfig) -> None:
        super().__init__(meta)
        self.config = config
        self.behaviors = check_behaviors(config.behaviors, meta, "model.params.behaviors")
        self.user_emb = nn.Embedding(meta.num_users, config.dim)
        self.item_emb = nn.Embedding(meta.num_items, config.dim)
        if config.backend == "dgl":
            from gnnrec.models.encoders.dgl_models import require_dgl

            require_dgl()  # a missing DGL is an error now, not after data loading
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.user_emb, self.item_emb):
            if self.config.init == "normal":
                nn.init.normal_(emb.weight, std=self.config.init_std)
            else:
                nn.init.xavier_uniform_(emb.weight)

    def prepare(self, data: TrainData) -> None:
        if self.config.backend == "pyg":
            data.norm_adj(self.behaviors)  # build (and cache on the data) the adjacency once

    def ego(self) -> torch.Tensor:
        """Ego embeddings ``[U + I, d]`` (users first)."""
        return torch.cat([self.user_emb.weight, self.item_emb.weight])

    def encode(self, data: TrainData) -> EmbDict:
        if self.config.backend == "dgl":
            from gnnrec.models.encoders.dgl_models import lightgcn_encode_dgl

            return lightgcn_encode_dgl(self, data)
        adj = data.norm_adj(self.behaviors)
        # alpha_k = 1 / (K + 1); the two tables are concatenated inside (no separate ego copy)
        out = layer_mean(adj, (self.user_emb.weight, self.item_emb.weight), self.config.num_layers)
        return {"user": out[: self.meta.num_users], "item": out[self.meta.num_users :]}

    def optimizer_options(self) -> dict[str, bool]:
        """Extra ``torch.optim.Adam`` options the trainer passes (``fused`` when asked for and
        available: one kernel for both tables' update; on Gowalla, one thread, Adam took
        0.85 s of a ~13 s epoch unfused and 0.35 s fused)."""
        dev = self.item_emb.weight.device
        return {"fused": True} if self.config.fused_adam and fused_adam_ok(dev) else {}

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        return batch_ego_l2(self.config.reg, self.user_emb, self.item_emb, batch)

    #: the trainer may pass one negative pool per batch (``batch.neg`` of shape ``[1, n]``)
    supports_shared_negatives = True

    def loss(self, emb: EmbDict, batch: PairBatch, kind: str = "bpr", temperature: float = 0.1) -> torch.Tensor:
        """``train.loss`` on the batch plus the ego L2 term (:meth:`regularization`).

        ``batch.neg`` is ``[B, n]`` (per-pair negatives) or ``[1, n]`` (a pool shared by the
        batch, ``train.neg_sampling: shared``): then the negative scores are one matrix
        product ``[B, d] @ [d, n]`` and, for ``softmax``, a pool item that is the row's
        positive is masked out (a shared pool cannot exclude every row's positives). The ego
        L2 of a shared pool counts each pool item once.
        """
        from gnnrec import losses

        fn = losses.get(kind)
        scaled = kind in losses.TEMPERATURE_LOSSES
        shared = batch.neg.shape[0] == 1 and batch.user.shape[0] != 1
        b = batch.pos.shape[0]
        # one gather for the batch's user, positive and negative rows (propagation.gather_rows)
        user, items = gather_rows(emb, self.meta.num_users, batch.user, torch.cat([batch.pos, batch.neg.reshape(-1)]))
        pos_rows, neg_rows = items[:b], items[b:]
        if scaled:
            # s / τ = (e_u / τ) · e_i: scale the [B, d] user rows once instead of the [B, n]
            # scores (the shared pool's score matrix is the largest tensor of a step)
            user = user / temperature
        pos = torch.linalg.vecdot(user, pos_rows)  # [B]
        if shared:
            neg = user @ neg_rows.T  # [B, n]
            if scaled:  # a pool item that is the row's own positive is not a negative
                neg.masked_fill_(batch.neg == batch.pos.unsqueeze(1), float("-inf"))
        else:
            neg = torch.linalg.vecdot(user.unsqueeze(1), neg_rows.view(*batch.neg.shape, -1))  # [B, n]
        kw = {"temperature": 1.0} if scaled else {}
        return fn(pos, neg, **kw) + self.regularization(emb, batch)

    def extra_repr(self) -> str:
        return f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, " + super().extra_repr()
