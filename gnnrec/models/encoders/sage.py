"""GraphSAGE over the user–item–category graph, with category (and feature) item inputs.

Also home of the propagation helpers shared with :mod:`gnnrec.models.encoders.rgcn`:
:class:`RelationAdjacency` (cached mean aggregation of one relation, or of several stacked),
:class:`DstPlan` / :func:`plan_relations` / :func:`relation_messages` (all relations into one
node type in a few fused sparse products).

Why cached operators instead of PyG's edge-list message passing: the trainer calls
``encode`` on the *full* graph at every step, so propagation dominates training time. Mean
aggregation over a fixed relation is ``A @ X`` with a constant row-normalised sparse ``A``.
``torch.sparse.mm`` forward on CSR is fast, but its autograd backward transposes the CSR
matrix (a sort of all non-zeros) at every step, and PyG's scatter path is slower still on
CPU; :class:`RelationAdjacency` builds ``A`` and ``Aᵀ`` once (in ``prepare``) and its
backward is ``Aᵀ @ grad``. Because ``mean(h) W = mean(h W)``, each relation multiplies by
its weight on the smaller side (800 users rather than 50k items on Taobao), and relations
into one node type share one sparse product. The layers stay PyG modules
(:class:`FastSAGEConv`, ``TypedRGCNConv``) whose own ``forward`` on an edge list is the
reference; tests check that both paths agree.

Measured (one training step, 2-layer d=64, batch 2048, CPU time with one thread on the shared
2-core machine): synthetic (2,000 users, 2,994 items, 77k edges) graphsage 46 ms, rgcn 70 ms;
taobao head (814 users, 55k items) graphsage 280 ms, rgcn 233 ms. The plain PyG edge-list
forward+backward of the same layers was 2.7× (SAGEConv) and 4.3× (RGCNConv) slower.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch_geometric.nn import HeteroConv, SAGEConv

from gnnrec.features.fusion import FeatureFusion
from gnnrec.graph import schema
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

__all__ = [
    "INTERACTS",
    "ITEM_FEATURES",
    "DstPlan",
    "FastSAGEConv",
    "GraphCache",
    "GraphSAGE",
    "GraphSAGEConfig",
    "RelationAdjacency",
    "plan_relations",
    "relation_messages",
    "seen_mask",
]

#: Relation name of the union-of-behaviours user→item edges GraphSAGE propagates on.
INTERACTS = "interacts"
#: Key of an optional numeric item-feature matrix in ``TrainData.cache`` (see GraphSAGE).
ITEM_FEATURES = "item_features"


# --------------------------------------------------------------------------- propagation
class _RelationSpMM(torch.autograd.Function):
    """``A @ X`` with a constant sparse ``A`` whose transpose is cached: backward ``Aᵀ @ g``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, adj: torch.Tensor, adj_t: torch.Tensor) -> torch.Tensor:
        ctx.adj_t = adj_t  # a graph constant: a reference, not a saved (version-checked) tensor
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return torch.sparse.mm(ctx.adj_t, grad.contiguous()), None, None


def _csr(row: torch.Tensor, col: torch.Tensor, val: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    """CSR ``[n_rows, n_cols]`` from unique (row, col) entries in any order."""
    order = torch.argsort(row * max(n_cols, 1) + col)
    row, col, val = row[order], col[order], val[order]
    crow = torch.zeros(n_rows + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=n_rows), 0)
    return torch.sparse_csr_tensor(
        crow, col, val, size=(n_rows, n_cols), dtype=torch.float32, device=row.device,
        check_invariants=False,
    )  # fmt: skip


class RelationAdjacency:
    """Mean aggregation over one relation ``src → dst``, built once and reused every step.

    Holds the row-normalised adjacency ``A[dst, src] = 1 / deg(dst)`` (CSR) and its transpose,
    so that :meth:`propagate` computes, for every destination node, the mean of its source
    neighbours' rows (zeros for a destination without neighbours, as PyG's ``aggr="mean"``).
    :meth:`hstack` / :meth:`vstack` fuse several relations into one operator (each block
    keeps its own normalisation), so that one sparse product serves them all.

    Args:
        src: source node index per edge ``[E]``.
        dst: destination node index per edge ``[E]`` (pairs must be unique).
        num_src: number of source nodes.
        num_dst: number of destination nodes.
        values: per-edge weights ``[E]``; default ``1 / deg(dst)`` (mean aggregation).

    Attributes:
        edge_index: ``[2, E]`` (row 0 source, row 1 destination), PyG's convention; kept for
            inspection and for the edge-list reference path in tests.
        values: ``[E]`` weight of each edge.
    """

    def __init__(
        self,
        src: torch.Tensor,
        dst: torch.Tensor,
        num_src: int,
        num_dst: int,
        values: torch.Tensor | None = None,
    ) -> None:
        src, dst = src.long(), dst.long()
        self.num_src, self.num_dst = int(num_src), int(num_dst)
        self.edge_index = torch.stack([src, dst])
        self.nnz = int(src.numel())
        if values is None:
            deg = torch.bincount(dst, minlength=self.num_dst).clamp(min=1).to(torch.float32)
            values = 1.0 / deg[dst]
        self.values = values.to(torch.float32)
        self._csr: tuple[torch.Tensor, torch.Tensor] | None = None  # (A, Aᵀ), built on first use

    @classmethod
    def hstack(cls, blocks: list[RelationAdjacency]) -> RelationAdjacency:
        """``[A_1 | A_2 | ...]``: same destinations, sources concatenated (in block order)."""
        if len({b.num_dst for b in blocks}) != 1:
            raise ValueError("hstack needs blocks with the same number of destinations")
        off = [0]
        for b in blocks[:-1]:
            off.append(off[-1] + b.num_src)
        src = torch.cat([b.edge_index[0] + o for b, o in zip(blocks, off)])
        dst = torch.cat([b.edge_index[1] for b in blocks])
        val = torch.cat([b.values for b in blocks])
        return cls(src, dst, off[-1] + blocks[-1].num_src, blocks[0].num_dst, val)

    @classmethod
    def vstack(cls, blocks: list[RelationAdjacency]) -> RelationAdjacency:
        """``[A_1; A_2; ...]``: same sources, destinations concatenated (in block order)."""
        if len({b.num_src for b in blocks}) != 1:
            raise ValueError("vstack needs blocks with the same number of sources")
        off = [0]
        for b in blocks[:-1]:
            off.append(off[-1] + b.num_dst)
        src = torch.cat([b.edge_index[0] for b in blocks])
        dst = torch.cat([b.edge_index[1] + o for b, o in zip(blocks, off)])
        val = torch.cat([b.values for b in blocks])
        return cls(src, dst, blocks[0].num_src, off[-1] + blocks[-1].num_dst, val)

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    def csr(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A [num_dst, num_src], Aᵀ)`` as CSR tensors (built once)."""
        if self._csr is None:
            src, dst = self.edge_index
            self._csr = (
                _csr(dst, src, self.values, self.num_dst, self.num_src),
                _csr(src, dst, self.values, self.num_src, self.num_dst),
            )
        return self._csr

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        """``A @ x``: ``[num_dst, d]`` from ``x`` ``[num_src, d]`` — for one relation with the
        default values, the mean of each destination's source rows."""
        if self.nnz == 0:  # an empty relation (a behaviour without training events)
            return x.new_zeros(self.num_dst, x.shape[1])
        adj, adj_t = self.csr()
        if x.requires_grad and torch.is_grad_enabled():
            return _RelationSpMM.apply(x, adj, adj_t)
        return torch.sparse.mm(adj, x)

    def __repr__(self) -> str:
        return f"RelationAdjacency(num_src={self.num_src}, num_dst={self.num_dst}, nnz={self.nnz})"


@dataclass
class DstPlan:
    """The relations into one node type, fused into few sparse products.

    ``mean_j(h_j) W_r = mean_j(h_j W_r)``, so each relation can multiply by ``W_r`` on
    whichever side has fewer nodes:

    * *transform first* (``num_src < num_dst``, e.g. 800 users → 50k items): the
      relations' transformed sources ``h_src W_r`` are concatenated and one horizontally
      stacked operator ``[A_1 | A_2 | ...]`` sums their per-relation means;
    * *aggregate first* (otherwise): per source type, one vertically stacked operator
      ``[A_1; A_2; ...]`` gives every relation's means ``[R', N_dst, d]`` and a single
      matmul with the stacked ``[W_r]`` sums them.

    Empty relations (behaviours without training edges) are left out.
    """

    dst: str
    num_dst: int
    transform_first: list[tuple[int, str]] = field(default_factory=list)  # (relation, src type)
    hstack: RelationAdjacency | None = None
    aggregate_first: list[tuple[str, list[int], RelationAdjacency]] = field(default_factory=list)


def plan_relations(
    relations: Sequence[tuple[int, tuple[str, str, str], RelationAdjacency]],
) -> list[DstPlan]:
    """Group ``(relation index, (src, rel, dst), RelationAdjacency)`` by destination type
    into :class:`DstPlan` s (built once per graph, in ``prepare``)."""
    plans: dict[str, DstPlan] = {}
    first: dict[str, list[RelationAdjacency]] = {}
    agg: dict[tuple[str, str], tuple[list[int], list[RelationAdjacency]]] = {}
    for r, (src, _, dst), adj in relations:
        plan = plans.setdefault(dst, DstPlan(dst, adj.num_dst))
        if adj.nnz == 0:
            continue
        if adj.num_src < adj.num_dst:
            plan.transform_first.append((r, src))
            first.setdefault(dst, []).append(adj)
        else:
            rs, blocks = agg.setdefault((dst, src), ([], []))
            rs.append(r)
            blocks.append(adj)
    for dst, blocks in first.items():
        plans[dst].hstack = RelationAdjacency.hstack(blocks)
    for (dst, src), (rs, blocks) in agg.items():
        plans[dst].aggregate_first.append((src, rs, RelationAdjacency.vstack(blocks)))
    return list(plans.values())


def relation_messages(plan: DstPlan, x: dict[str, torch.Tensor], weight: torch.Tensor) -> torch.Tensor | None:
    """``Σ_r mean_{j∈N_r(i)} h_j W_r`` for the destination type of ``plan``.

    Args:
        plan: the fused relations into one node type (:func:`plan_relations`).
        x: node type → ``[N_t, d_in]``.
        weight: ``[R, d_in, d_out]``, indexed by the relation indices of the plan.

    Returns:
        ``[N_dst, d_out]``, or ``None`` when every relation into the type is empty.
    """
    out: torch.Tensor | None = None
    d_out = weight.shape[-1]
    if plan.hstack is not None:
        src = torch.cat([x[s] @ weight[r] for r, s in plan.transform_first])
        out = plan.hstack.propagate(src)
    for s, rs, vstack in plan.aggregate_first:
        k, d_in = len(rs), x[s].shape[1]
        means = vstack.propagate(x[s]).view(k, plan.num_dst, d_in)  # per-relation means
        # Σ_r means_r W_r as one matmul: [N, k·d_in] @ [k·d_in, d_out]
        msg = means.transpose(0, 1).reshape(plan.num_dst, k * d_in) @ weight[rs].reshape(k * d_in, d_out)
        out = msg if out is None else out + msg
    return out


def seen_mask(data: TrainData) -> tuple[torch.Tensor, torch.Tensor]:
    """Users and items with at least one training event (graph edge or training positive).

    Returns:
        ``(user_seen [U], item_seen [I])`` bool tensors on ``data``'s device.
    """
    parts = [data.edge_index[b] for b in data.meta.behaviors] + [data.pos_index]
    pairs = torch.cat([p.long().reshape(2, -1) for p in parts], dim=1)
    user = torch.zeros(data.meta.num_users, dtype=torch.bool, device=data.device)
    item = torch.zeros(data.meta.num_items, dtype=torch.bool, device=data.device)
    user[pairs[0]] = True
    item[pairs[1]] = True
    return user, item


class GraphCache:
    """Structures derived from one :class:`TrainData`, tied to it by a weak reference.

    ``encode`` may receive the very object ``prepare`` saw (training, validation) or another
    one (a device copy, or a new graph at inference for inductive scoring); the cache is
    rebuilt only in the second case, never per step.
    """

    def __init__(
        self,
        data: TrainData,
        adjs: dict[tuple[str, str, str], RelationAdjacency],
        **extra: Any,
    ):
        self._owner = weakref.ref(data)
        self.adjs = adjs
        self.extra = extra

    def valid_for(self, data: TrainData) -> bool:
        return self._owner() is data


# --------------------------------------------------------------------------- layer
class FastSAGEConv(SAGEConv):
    """PyG :class:`~torch_geometric.nn.conv.SAGEConv` (mean aggregation) that also accepts a
    :class:`RelationAdjacency` as ``edge_index``.

    With a :class:`RelationAdjacency` it computes exactly what ``SAGEConv.forward`` computes
    (``lin_l(mean_j x_j) + lin_r(x_i)``, optional L2 normalisation) through the cached
    sparse operator; with an edge-index tensor it is PyG's ``SAGEConv``.
    """

    def __init__(self, in_channels: int | tuple[int, int], out_channels: int, **kwargs: Any) -> None:
        if kwargs.get("aggr", "mean") != "mean" or kwargs.get("project", False):
            raise ValueError("FastSAGEConv supports aggr='mean' without project only")
        super().__init__(in_channels, out_channels, aggr="mean", **kwargs)

    def forward(self, x: Any, edge_index: Any, size: Any = None) -> torch.Tensor:
        if not isinstance(edge_index, RelationAdjacency):
            return super().forward(x, edge_index, size)
        if isinstance(x, torch.Tensor):
            x = (x, x)
        adj = edge_index
        if adj.num_src < adj.num_dst and adj.nnz > 0:
            # mean_j(W x_j) = W mean_j(x_j): transform the smaller side (e.g. 800 users, not
            # 50k items); rows without neighbours stay 0 before the bias either way
            out = adj.propagate(F.linear(x[0], self.lin_l.weight))
            out = out + self.lin_l.bias if self.lin_l.bias is not None else out
        else:
            out = self.lin_l(adj.propagate(x[0]))
        if self.root_weight and x[1] is not None:
            out = out + self.lin_r(x[1])
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out


# --------------------------------------------------------------------------- model
class GraphSAGEConfig(ModelConfig):
    """Hyper-parameters of :class:`GraphSAGE`."""

    dim: int = Field(64, ge=1)  # embedding / hidden size d (all layers)
    num_layers: int = Field(2, ge=1)  # SAGE layers (hops)
    item_id_emb: bool = True  # add a learned item-ID embedding to the category input (seen items only)
    user_id_emb: bool = True  # learned user-ID embedding as the user input (seen users only; else zeros)
    dropout: float = Field(0.0, ge=0, lt=1)  # dropout after each hidden layer's ReLU
    normalize: bool = False  # L2-normalise every layer's output (the paper's step 7)
    reg: float = Field(1e-4, ge=0)  # L2 on the batch's input (layer-0) vectors, as mf_bpr's ego_l2
    init_std: float = Field(0.1, gt=0)  # std of the normal init of ID / category embeddings


@register_model(
    "graphsage",
    config=GraphSAGEConfig,
    description="GraphSAGE (Hamilton et al. 2017): inductive, category/feature item inputs.",
)
class GraphSAGE(Recommender):
    r"""GraphSAGE over the user–item–category graph; items are described by their category.

    Hamilton, Ying, Leskovec, "Inductive Representation Learning on Large Graphs", NeurIPS
    2017 (https://arxiv.org/abs/1706.02216).

    Graph (built once in :meth:`prepare` from the training data only): node types ``user``,
    ``item``, ``category``; relations ``(user, interacts, item)`` — the *union* of all
    behaviour edge types, unweighted — ``(item, belongs_to, category)`` and their reverses.
    One user↔item relation is a deliberate choice: GraphSAGE's aggregator has no notion of
    relation types (that is :mod:`~gnnrec.models.encoders.rgcn`'s job), and the union gives
    every user the largest neighbourhood. Reverse relations are always used (a user's input is
    built from its items), whatever ``graph.add_reverse`` says.

    Inputs (what makes the model inductive):

    * item ``i`` of category ``c``: ``x_i = e_c + [item_id_emb] · seen_i · q_i + W_f f_i``.
      ``e_c`` is a learned category embedding (one extra row for "unknown category"),
      ``q_i`` a learned item-ID embedding used only for items with a training event, and
      ``f_i`` optional numeric item features: if ``data.cache["item_features"]`` holds a float
      tensor ``[num_items, F]`` when :meth:`prepare` runs, a linear projection ``W_f``
      (``F → d``) is created there — before the trainer builds its optimiser — and used from
      then on (``TrainData.to`` carries the features over). With ``features.fusion`` ``concat``
      or ``gated`` (``data.cache["item_feature_fusion"]``, set by
      :func:`gnnrec.features.attach_item_features`) the sum is replaced by a
      :class:`~gnnrec.features.fusion.FeatureFusion` of ``x_i`` and ``f_i``.
    * user ``u``: ``x_u = [user_id_emb] · seen_u · p_u`` (zeros otherwise). The mean of the
      user's training items' inputs is what the first layer aggregates, so a user unseen in
      training is represented by its neighbourhood only.
    * category ``c``: ``e_c`` (the same table as the item input).

    Layer ``l`` (``HeteroConv`` of one :class:`FastSAGEConv` per relation, summed per
    destination type, as ``to_hetero(SAGEConv)`` builds it)::

        h_u ← W_l^{ui} mean_{i∈N(u)} h_i + W_r^{ui} h_u
        h_i ← W_l^{ui'} mean_{u∈N(i)} h_u + W_l^{ci} h_{c(i)} + (W_r^{ui'} + W_r^{ci}) h_i
        h_c ← W_l^{ic} mean_{i∈c} h_i + W_r^{ic} h_c

    with ReLU (and dropout) between layers, none after the last; the last layer has no
    category outputs (they would not be read). The layers are PyG modules (parameters, and
    the reference forward, used with ``normalize``); :meth:`fused_layer` computes the same
    sum with one root product and fused sparse products per destination type. Scores are
    dot products of the last layer's user and item vectors, trained with the trainer's loss
    (BPR by default) plus ``reg/2 · ‖x‖²`` on the batch's input vectors.

    An item with no training edge but a known category is thus embedded from its category
    alone (``x_i = e_c``, no user neighbours): all such items of one category share one
    embedding, which after training lies near the items of that category (tested on a
    two-community toy problem).

    Differences from the paper:
        * Full-graph propagation (all neighbours, mean aggregator) instead of sampled
          fixed-size neighbourhoods: PyG's ``NeighborLoader`` needs pyg-lib/torch-sparse,
          unavailable here, and the graphs fit in memory.
        * Supervised with BPR on user–item pairs instead of the unsupervised random-walk
          loss; dot-product scoring.
        * Root and neighbour terms are summed (``SAGEConv``'s ``lin_l``/``lin_r``), not
          concatenated; output normalisation is off by default (``normalize``), because
          unit vectors bound dot-product scores and slow BPR down.
        * Inputs are learned category (and optional ID) embeddings rather than fixed
          node features; only the category part transfers to unseen nodes.

    Args:
        meta: graph sizes.
        config: :class:`GraphSAGEConfig`.

    Shapes:
        ``encode``: ``{"user": [U, d], "item": [I, d], "user_ego": [U, d], "item_ego": [I, d]}``
        (``*_ego``: layer-0 inputs); ``score``: ``[B]``; ``score_all``: ``[B, I]``.
    """

    #: cold items from category (+ features), users without events from the zero input
    cold_start = "both"
    user_seen: torch.Tensor  # buffers (see __init__)
    item_seen: torch.Tensor

    def __init__(self, meta: GraphMeta, config: GraphSAGEConfig) -> None:
        super().__init__(meta)
        self.config = config
        d = config.dim
        self.has_categories = meta.num_categories > 0
        # last row: items whose category is unknown (-1)
        self.category_emb = nn.Embedding(meta.num_categories + 1, d)
        self.item_emb = nn.Embedding(meta.num_items, d) if config.item_id_emb else None
        self.user_emb = nn.Embedding(meta.num_users, d) if config.user_id_emb else None
        # which users/items had a training event; persisted with the weights so a reloaded
        # model still knows which ID embeddings were trained
        self.register_buffer("user_seen", torch.ones(meta.num_users, dtype=torch.bool))
        self.register_buffer("item_seen", torch.ones(meta.num_items, dtype=torch.bool))
        self.feature_proj: nn.Linear | None = None
        self.feature_fusion: FeatureFusion | None = None  # features.fusion concat / gated
        # the last layer only feeds users and items (category outputs would be unused weights)
        with warnings.catch_warnings():
            # HeteroConv warns that the last layer does not update categories: intended
            warnings.filterwarnings("ignore", message=".*do not get updated during message passing.*")
            self.convs = nn.ModuleList(
                HeteroConv(
                    {
                        et: FastSAGEConv(d, d, normalize=config.normalize)
                        for et in self.edge_types()
                        if layer < config.num_layers - 1 or et[2] != schema.CATEGORY
                    },
                    aggr="sum",
                )
                for layer in range(config.num_layers)
            )
        self._cache: GraphCache | None = None
        self.reset_parameters()

    def edge_types(self) -> list[tuple[str, str, str]]:
        """The relations propagated on (``(src, relation, dst)``)."""
        ets = [
            (schema.USER, INTERACTS, schema.ITEM),
            (schema.ITEM, schema.REV_PREFIX + INTERACTS, schema.USER),
        ]
        if self.has_categories:
            ets += [schema.ITEM_CATEGORY, schema.CATEGORY_ITEM]
        return ets

    def reset_parameters(self) -> None:
        for emb in (self.category_emb, self.item_emb, self.user_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=self.config.init_std)
        for conv in self.convs:
            cast(HeteroConv, conv).reset_parameters()

    # ------------------------------------------------------------------ structure
    def _build_graph(self, data: TrainData) -> GraphCache:
        m = data.meta
        pairs = union_pairs([data.edge_index[b] for b in m.behaviors], m.num_items).to(data.device)
        u, i = pairs[0], pairs[1]
        adjs = {
            (schema.USER, INTERACTS, schema.ITEM): RelationAdjacency(u, i, m.num_users, m.num_items),
            (
                schema.ITEM,
                schema.REV_PREFIX + INTERACTS,
                schema.USER,
            ): RelationAdjacency(i, u, m.num_items, m.num_users),
        }
        cat = data.item_category.long()
        if self.has_categories:
            known = torch.nonzero(cat >= 0).reshape(-1)
            adjs[schema.ITEM_CATEGORY] = RelationAdjacency(known, cat[known], m.num_items, m.num_categories)
            adjs[schema.CATEGORY_ITEM] = RelationAdjacency(cat[known], known, m.num_categories, m.num_items)
        # category input row per item; unknown (-1) → the extra last row
        cat_row = torch.where(cat >= 0, cat, torch.full_like(cat, m.num_categories))
        feats = data.cache.get(ITEM_FEATURES)
        plans = plan_relations([(r, et, adjs[et]) for r, et in enumerate(self.edge_types())])
        return GraphCache(data, adjs, cat_row=cat_row, item_features=feats, plans=plans)

    def prepare(self, data: TrainData) -> None:
        """Build the propagation graph and the seen-user/item masks from the training data.

        Also creates the item-feature projection when ``data.cache["item_features"]`` is set.
        """
        user_seen, item_seen = seen_mask(data)
        self.user_seen.copy_(user_seen)
        self.item_seen.copy_(item_seen)
        self._cache = self._build_graph(data)
        feats = self._cache.extra["item_features"]
        if feats is not None:
            if feats.dim() != 2 or feats.shape[0] != self.meta.num_items:
                raise ValueError(
                    f"data.cache['{ITEM_FEATURES}'] must be [num_items={self.meta.num_items}, F], "
                    f"got {list(feats.shape)}"
                )
            mode = data.cache.get("item_feature_fusion", "sum")
            if mode == "sum":
                if self.feature_proj is None or self.feature_proj.in_features != feats.shape[1]:
                    self.feature_proj = nn.Linear(feats.shape[1], self.config.dim).to(
                        self.category_emb.weight.device
                    )
            elif (
                self.feature_fusion is None
                or self.feature_fusion.feat_dim != feats.shape[1]
                or self.feature_fusion.mode != mode
            ):
                self.feature_fusion = FeatureFusion(self.config.dim, int(feats.shape[1]), mode).to(
                    self.category_emb.weight.device
                )

    def _graph(self, data: TrainData) -> GraphCache:
        if self._cache is None:
            self.prepare(data)
        elif not self._cache.valid_for(data):
            # another graph (a device copy, or new edges at inference): rebuild the structure
            # but keep the training-time seen masks, i.e. untrained ID embeddings stay unused
            self._cache = self._build_graph(data)
        assert self._cache is not None
        return self._cache

    def propagation_edges(self, data: TrainData) -> dict[tuple[str, str, str], torch.Tensor]:
        """``[2, E]`` (source, destination) per relation the model propagates on."""
        return {et: adj.edge_index for et, adj in self._graph(data).adjs.items()}

    # ------------------------------------------------------------------ forward
    def inputs(self, data: TrainData) -> dict[str, torch.Tensor]:
        """Layer-0 vectors per node type (see the class docstring)."""
        g = self._graph(data)
        item = self.category_emb(g.extra["cat_row"])
        if self.item_emb is not None:
            item = item + self.item_emb.weight * self.item_seen.unsqueeze(1).to(item.dtype)
        feats = g.extra["item_features"]
        if feats is not None and self.feature_fusion is not None:
            item = self.feature_fusion(item, feats)
        elif feats is not None and self.feature_proj is not None:
            item = item + self.feature_proj(feats.to(item.dtype))
        if self.user_emb is not None:
            user = self.user_emb.weight * self.user_seen.unsqueeze(1).to(item.dtype)
        else:
            user = item.new_zeros(self.meta.num_users, self.config.dim)
        x = {schema.USER: user, schema.ITEM: item}
        if self.has_categories:
            x[schema.CATEGORY] = self.category_emb.weight[: self.meta.num_categories]
        return x

    def encode(self, data: TrainData) -> EmbDict:
        g = self._graph(data)
        x0 = self.inputs(data)
        x = x0
        last = len(self.convs) - 1
        for layer, conv in enumerate(self.convs):
            if self.config.normalize:  # per-relation normalisation: PyG's HeteroConv as is
                x = conv(x, g.adjs)
            else:
                x = self.fused_layer(conv, x, g.extra["plans"])
            if layer < last:
                x = {k: F.dropout(v.relu(), self.config.dropout, self.training) for k, v in x.items()}
        return {
            "user": x[schema.USER],
            "item": x[schema.ITEM],
            "user_ego": x0[schema.USER],
            "item_ego": x0[schema.ITEM],
        }

    def fused_layer(
        self, conv: HeteroConv, x: dict[str, torch.Tensor], plans: list[DstPlan]
    ) -> dict[str, torch.Tensor]:
        """``conv(x, adjs)`` (a ``HeteroConv`` of :class:`FastSAGEConv`, summed per destination)
        computed with one root product and fused neighbour products per destination type.

        For destination ``t``: ``Σ_{r→t} (lin_l^r(mean_r h) + lin_r^r(h_t))
        = h_t (Σ_r W_r^r)ᵀ + Σ_r b^r + Σ_r mean_r(h) (W_l^r)ᵀ`` — the same function, with the
        item-sized products done once instead of once per relation. Without ``normalize`` only.
        """
        ets = self.edge_types()
        convs = {et: conv.convs[et] for et in ets if et in conv.convs}
        d_in = next(iter(x.values())).shape[1]
        # relation r's message weight [d_in, d_out]: lin_l's, transposed (zeros: no conv here)
        weight = torch.stack(
            [
                convs[et].lin_l.weight.T if et in convs else x[ets[0][0]].new_zeros(d_in, self.config.dim)
                for et in ets
            ]
        )
        out: dict[str, torch.Tensor] = {}
        for plan in plans:
            into = [convs[et] for et in ets if et[2] == plan.dst and et in convs]
            if not into:  # e.g. categories in the last layer
                continue
            root = sum(c.lin_r.weight for c in into)  # every FastSAGEConv has root_weight=True
            bias = sum(c.lin_l.bias for c in into)
            o = F.linear(x[plan.dst], root, bias)
            msg = relation_messages(plan, x, weight)
            out[plan.dst] = o if msg is None else o + msg
        return out

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
        return (
            f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, "
            f"num_categories={self.meta.num_categories}, " + super().extra_repr()
        )
