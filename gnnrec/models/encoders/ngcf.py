"""NGCF: graph collaborative filtering with bi-interaction messages."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, ModelConfig, PairBatch, Recommender, register_model
from gnnrec.models.encoders.lightgcn import check_behaviors
from gnnrec.models.encoders.propagation import edge_dropout, sym_spmm, undirected_entry_ids


class NGCFConfig(ModelConfig):
    """Hyper-parameters of :class:`NGCF`."""

    dim: int = Field(64, ge=1)  # ego embedding size d_0
    layers: tuple[int, ...] = (64, 64, 64)  # output size of each propagation layer
    node_dropout: float = Field(0.0, ge=0, lt=1)  # share of graph edges dropped per step (training)
    mess_dropout: float = Field(0.1, ge=0, lt=1)  # dropout on each layer's output (training)
    reg: float = Field(1e-4, ge=0)  # weight of the embedding norm penalty
    reg_pow: bool = False  # False: sum of L2 norms / B (RecBole); True: squared norms / 2B (paper code)
    behaviors: tuple[str, ...] | None = None  # edge behaviours forming the graph; None = all


@register_model(
    "ngcf",
    config=NGCFConfig,
    description="NGCF: graph convolution with bi-interaction messages (Wang et al. 2019).",
)
class NGCF(Recommender):
    r"""Neural Graph Collaborative Filtering (Wang et al., SIGIR 2019,
    https://arxiv.org/abs/1905.08108).

    With the symmetric-normalised bipartite adjacency ("Laplacian")
    :math:`\mathcal L = D^{-1/2} A D^{-1/2}` of the training graph, each layer is (paper eq. 7)

    .. math::
        E^{(l)} = \mathrm{LeakyReLU}_{0.2}\big((\mathcal L + I) E^{(l-1)} W_1^{(l)}
                  + (\mathcal L E^{(l-1)} \odot E^{(l-1)}) W_2^{(l)}\big)

    computed as ``S = L @ E`` (one sparse product), ``(S + E) W_1 + (S ⊙ E) W_2`` (``W``
    with biases), followed by message dropout and row-wise L2 normalisation. The final
    embedding concatenates all layers, :math:`e = [E^{(0)} \Vert E^{(1)} \Vert \dots
    \Vert E^{(L)}]`, and :math:`s(u, i) = e_u^\top e_i`.

    The loss is ``train.loss`` (BPR by default) plus a penalty on the batch's *final*
    embeddings, as RecBole's NGCF: ``reg * (‖e_u‖ + ‖e_i⁺‖ + ‖e_i⁻‖) / B`` (norms over the
    batch, not squared) or, with ``reg_pow``, ``reg * (‖e_u‖² + ‖e_i⁺‖² + ‖e_i⁻‖²) / (2B)``
    as in the paper's TensorFlow code.

    Differences from the paper:
        * One LeakyReLU over the sum of both terms (paper eq. 7; the reference code applies
          it to each term separately) and the normalised layer output feeds the next layer
          (as RecBole; the reference code normalises only the stored copy).
        * "Node dropout" drops undirected *edges* (both directions together, rescaled by
          ``1/(1-p)``) so the adjacency stays symmetric; the reference code drops entries of
          the adjacency independently.
        * Xavier-normal initialisation of embeddings and weights, zero biases (RecBole).
        * Adam with mini-batches; L2 only on the batch's embeddings (no weight decay on
          ``W`` unless ``train.weight_decay`` is set).
        * ``behaviors`` restricts the graph to some edge behaviours (default all, merged).

    Args:
        meta: graph sizes and edge behaviours.
        config: :class:`NGCFConfig` (``dim``, ``layers``, ``node_dropout``, ``mess_dropout``,
            ``reg``, ``reg_pow``, ``behaviors``).

    Shapes:
        ``encode``: ``{"user": [U, D], "item": [I, D]}`` with ``D = dim + sum(layers)``;
        ``score``: ``[B]``; ``score_all``: ``[B, I]``.
    """

    def __init__(self, meta: GraphMeta, config: NGCFConfig) -> None:
        super().__init__(meta)
        self.config = config
        self.behaviors = check_behaviors(config.behaviors, meta, "model.params.behaviors")
        self.user_emb = nn.Embedding(meta.num_users, config.dim)
        self.item_emb = nn.Embedding(meta.num_items, config.dim)
        sizes = (config.dim, *config.layers)
        self.w_sum = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.w_bi = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out_dim = sum(sizes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.user_emb, self.item_emb):
            nn.init.xavier_normal_(emb.weight)
        for lin in (*self.w_sum, *self.w_bi):
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)

    def prepare(self, data: TrainData) -> None:
        adj = data.norm_adj(self.behaviors)
        if self.config.node_dropout > 0:
            self._entry_ids(data, adj)

    def _entry_ids(self, data: TrainData, adj: torch.Tensor) -> tuple[torch.Tensor, int]:
        key = f"undirected_entry_ids:{self.behaviors}"  # lives and dies with the adjacency cache
        if key not in data.cache:
            data.cache[key] = undirected_entry_ids(adj)
        return data.cache[key]

    def _adjacency(self, data: TrainData) -> torch.Tensor:
        adj = data.norm_adj(self.behaviors)
        p = self.config.node_dropout
        if self.training and p > 0:
            ids, num_edges = self._entry_ids(data, adj)
            adj = edge_dropout(adj, ids, num_edges, p)
        return adj

    def encode(self, data: TrainData) -> EmbDict:
        adj = self._adjacency(data)
        h = torch.cat([self.user_emb.weight, self.item_emb.weight])
        outs = [h]
        for w_sum, w_bi in zip(self.w_sum, self.w_bi):
            side = sym_spmm(adj, h)  # L E
            # (L + I) E W1 + (L E ⊙ E) W2, with (L + I) E = L E + E: no identity matrix needed
            h = F.leaky_relu(w_sum(side + h) + w_bi(side * h), negative_slope=0.2)
            h = F.normalize(self._dropout(h), p=2, dim=1)
            outs.append(h)
        out = torch.cat(outs, dim=1)
        return {"user": out[: self.meta.num_users], "item": out[self.meta.num_users :]}

    def _dropout(self, h: torch.Tensor) -> torch.Tensor:
        """Message dropout (inverted): ``nn.Dropout`` semantics with a uniform-draw mask.

        ``torch.rand`` + ``where`` instead of ``nn.Dropout``'s ``bernoulli_``, which drew
        15% of a training step's CPU time on ml-100k; same distribution, same global RNG.
        """
        p = self.config.mess_dropout
        if not self.training or p <= 0:
            return h
        keep = torch.rand(h.shape, device=h.device) >= p
        return torch.where(keep, h * (1.0 / (1.0 - p)), torch.zeros((), dtype=h.dtype, device=h.device))

    def _reg_rows(self, u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        reg = self.config.reg
        if reg == 0:
            return torch.zeros((), device=u.device)
        b = u.shape[0]
        if self.config.reg_pow:
            return reg * (u.pow(2).sum() + pos.pow(2).sum() + neg.pow(2).sum()) / 2 / b
        return reg * (u.norm() + pos.norm() + neg.norm()) / b

    def _rows(self, emb: EmbDict, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # index_select: its backward is an index_add_, much cheaper on the CPU than the
        # accumulating index_put_ behind advanced indexing
        return (
            emb["user"].index_select(0, batch.user),
            emb["item"].index_select(0, batch.pos),
            emb["item"].index_select(0, batch.neg.reshape(-1)),
        )

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        return self._reg_rows(*self._rows(emb, batch))

    def loss(self, emb: EmbDict, batch: PairBatch, kind: str = "bpr") -> torch.Tensor:
        """The base loss with each batch row gathered once (scores and penalty share them)."""
        from gnnrec import losses

        u, pos, neg = self._rows(emb, batch)
        n = batch.neg.shape[1]
        s_pos = (u * pos).sum(-1)
        s_neg = (u.unsqueeze(1) * neg.view(u.shape[0], n, -1)).sum(-1)
        return losses.get(kind)(s_pos, s_neg) + self._reg_rows(u, pos, neg)

    def extra_repr(self) -> str:
        return f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, " + super().extra_repr()
