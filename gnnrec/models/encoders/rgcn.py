"""R-GCN over behaviour-typed user–item edges and item–category edges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch_geometric.nn import RGCNConv

from gnnrec.graph import schema
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import (
    EmbDict,
    ModelConfig,
    PairBatch,
    Recommender,
    register_model,
)
from gnnrec.models.baselines.mf_bpr import ego_l2
from gnnrec.models.encoders.sage import (
    DstPlan,
    GraphCache,
    RelationAdjacency,
    plan_relations,
    relation_messages,
)

__all__ = [
    "RGCN",
    "DstPlan",
    "RGCNConfig",
    "TypedRGCNConv",
    "plan_relations",
    "relation_types",
]

EdgeType = tuple[str, str, str]
#: node types whose last-layer vectors are the model's output
READOUT = (schema.USER, schema.ITEM)


def relation_types(meta: GraphMeta) -> list[EdgeType]:
    """R-GCN's relations, in weight order: per behaviour ``(user, b, item)`` and, with
    ``meta.add_reverse``, ``(item, rev_b, user)``; then ``(item, belongs_to, category)``
    (and its reverse) when there are categories. The same edge types as
    :func:`~gnnrec.graph.build.build_hetero_data` produces."""
    out: list[EdgeType] = []
    for b in meta.behaviors:
        out.append(schema.behavior_edge(b))
        if meta.add_reverse:
            out.append(schema.reverse_edge(b))
    if meta.num_categories > 0:
        out.append(schema.ITEM_CATEGORY)
        if meta.add_reverse:
            out.append(schema.CATEGORY_ITEM)
    return out


class TypedRGCNConv(RGCNConv):
    """PyG :class:`~torch_geometric.nn.conv.RGCNConv` (``aggr="mean"``) with a fast typed path.

    Called as PyG's ``RGCNConv`` (``x [N, d]``, ``edge_index [2, E]``, ``edge_type [E]`` on
    one homogeneous node set) it *is* ``RGCNConv``. Called with ``x`` a dict of per-node-type
    features and ``edge_index`` a list of :class:`DstPlan` (:func:`plan_relations`), it
    computes the same function on typed node blocks::

        h'_i = W_0 h_i + b + Σ_r mean_{j∈N_r(i)} W_r h_j     (W_r = Σ_b a_rb V_b with bases)

    through sparse operators built once per graph, fused per destination type, instead of
    re-masking the edge list per relation at every call (see
    :mod:`gnnrec.models.encoders.sage` for the speed rationale). Block-diagonal
    decomposition is not supported on the typed path.
    """

    def relation_weight(self) -> torch.Tensor:
        """``[R, d_in, d_out]``: ``weight``, or ``Σ_b comp[r, b] V_b`` with bases."""
        if self.num_blocks is not None:
            raise NotImplementedError("TypedRGCNConv: block-diagonal decomposition on typed inputs")
        if self.num_bases is None:
            return self.weight
        return (self.comp @ self.weight.view(self.num_bases, -1)).view(
            self.num_relations, self.in_channels_l, self.out_channels
        )

    def forward(
        self,
        x: Any,
        edge_index: Any,
        edge_type: Any = None,
        *,
        out_types: Sequence[str] | None = None,
    ) -> Any:
        """PyG's ``RGCNConv.forward`` for tensors; the typed path for a dict ``x``.

        Typed path: ``x`` maps node type → ``[N_t, d]``; ``edge_index`` is a list of
        :class:`DstPlan`; ``out_types`` limits the node types computed (default: all of
        ``x``; plans for other types are skipped). Returns node type → ``[N_t, out_channels]``.
        """
        if not isinstance(x, dict):
            return super().forward(x, edge_index, edge_type)
        weight = self.relation_weight()
        out: dict[str, torch.Tensor] = {}
        for t in x if out_types is None else out_types:
            h = x[t]
            o = h @ self.root if self.root is not None else h.new_zeros(h.shape[0], self.out_channels)
            out[t] = o + self.bias if self.bias is not None else o
        for plan in edge_index:  # one per destination type
            if plan.dst not in out:
                continue
            msg = relation_messages(plan, x, weight)
            if msg is not None:
                out[plan.dst] = out[plan.dst] + msg
        return out


class RGCNConfig(ModelConfig):
    """Hyper-parameters of :class:`RGCN`."""

    dim: int = Field(64, ge=1)  # embedding / hidden size d (all layers)
    num_layers: int = Field(2, ge=1)  # R-GCN layers
    num_bases: int | None = Field(None, ge=1)  # basis decomposition with B bases; None = full W_r
    residual: bool = True  # h^{l+1} = h^l + layer(h^l) (on top of the layer's own self-loop W_0)
    dropout: float = Field(0.0, ge=0, lt=1)  # dropout after each hidden layer's ReLU
    reg: float = Field(1e-4, ge=0)  # L2 on the batch's ego embeddings, as mf_bpr's ego_l2
    init_std: float = Field(0.1, gt=0)  # std of the normal init of node embeddings
    backend: Literal["pyg", "dgl"] = "pyg"  # dgl: same function by DGL message passing (dgl_models)


@register_model(
    "rgcn",
    config=RGCNConfig,
    description="R-GCN (Schlichtkrull et al. 2018) over behaviour-typed and item-category edges.",
)
class RGCN(Recommender):
    r"""Relational GCN over the typed user–item–category graph.

    Schlichtkrull, Kipf, Bloem, van den Berg, Titov, Welling, "Modeling Relational Data with
    Graph Convolutional Networks", ESWC 2018 (https://arxiv.org/abs/1703.06103).

    Nodes: users, items and categories, each with a learned ID embedding (layer 0). Relations
    (:func:`relation_types`, from ``GraphMeta``): one per behaviour present in the training
    data, ``(user, <behaviour>, item)``, the item–category relation, and — with
    ``graph.add_reverse`` (default) — their inverses, as the paper adds inverse relations. So
    any behaviour vocabulary works: weights are sized by ``len(meta.behaviors)``. Edges are
    unique training pairs per behaviour (repeat counts and timestamps are not used).

    Layer (:class:`TypedRGCNConv`, i.e. PyG's ``RGCNConv`` with ``aggr="mean"``: the
    paper's ``c_{i,r} = |N_i^r|``)::

        h_i^{l+1} = h_i^l + σ( W_0 h_i^l + b + Σ_r mean_{j∈N_r(i)} W_r h_j^l )

    ``σ`` is ReLU (with dropout) on hidden layers and the identity on the last (which only
    computes users and items: category outputs are not read); the outer ``h_i^l +`` is the
    optional residual (``residual``). ``W_r`` are full ``d×d`` matrices or,
    with ``num_bases = B``, combinations ``Σ_b a_rb V_b`` of ``B`` shared bases. Scores are
    dot products of the last layer's user and item vectors; loss = the trainer's (BPR by
    default) + ``reg/2 · ‖ego‖²`` on the batch's layer-0 embeddings.

    Implementation choice: PyG's ``RGCNConv`` over one homogeneous node set (users, items,
    categories concatenated) rather than ``HeteroConv`` of ``GraphConv``: ``RGCNConv`` has
    the paper's single self-loop ``W_0`` and basis decomposition, which per-relation
    ``GraphConv`` (one root weight per relation) lacks. Its typed fast path propagates
    through :class:`~gnnrec.models.encoders.sage.RelationAdjacency` operators fused per
    destination type (:class:`DstPlan`), built once in :meth:`prepare`; a test checks it
    equals ``RGCNConv.forward`` on the homogeneous edge list. ``backend: dgl`` computes the
    same function with DGL message passing
    (:func:`~gnnrec.models.encoders.dgl_models.rgcn_encode_dgl`; DGL environment only).

    Differences from the paper:
        * Used as a recommender encoder (the paper does entity classification and link
          prediction with DistMult): dot-product scores, BPR loss, no relation-specific
          decoder.
        * Learned ID embeddings as layer-0 input (the paper uses one-hot features, i.e. the
          first layer's weights play that role); residual connections between layers.
        * Full-batch propagation on the training graph; no edge dropout.

    Args:
        meta: graph sizes and behaviours.
        config: :class:`RGCNConfig`.

    Shapes:
        ``encode``: ``{"user": [U, d], "item": [I, d], "user_ego": [U, d], "item_ego": [I, d]}``;
        ``score``: ``[B]``; ``score_all``: ``[B, I]``.
    """

    def __init__(self, meta: GraphMeta, config: RGCNConfig) -> None:
        super().__init__(meta)
        self.config = config
        d = config.dim
        self.relations = relation_types(meta)
        self.emb = nn.ModuleDict(
            {
                schema.USER: nn.Embedding(meta.num_users, d),
                schema.ITEM: nn.Embedding(meta.num_items, d),
                schema.CATEGORY: nn.Embedding(meta.num_categories, d),
            }
        )
        self.convs = nn.ModuleList(
            TypedRGCNConv(
                d,
                d,
                num_relations=len(self.relations),
                num_bases=config.num_bases,
                aggr="mean",
            )
            for _ in range(config.num_layers)
        )
        self._cache: GraphCache | None = None
        if config.backend == "dgl":
            from gnnrec.models.encoders.dgl_models import require_dgl

            require_dgl()  # a missing DGL is an error now, not after data loading
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in self.emb.values():
            nn.init.normal_(cast(nn.Embedding, emb).weight, std=self.config.init_std)
        for conv in self.convs:
            cast(TypedRGCNConv, conv).reset_parameters()

    # ------------------------------------------------------------------ structure
    def _build_graph(self, data: TrainData) -> GraphCache:
        m = data.meta
        if tuple(m.behaviors) != tuple(self.meta.behaviors):
            raise ValueError(
                f"rgcn was built for behaviours {list(self.meta.behaviors)}, the data has {list(m.behaviors)}"
            )
        sizes = {
            schema.USER: m.num_users,
            schema.ITEM: m.num_items,
            schema.CATEGORY: m.num_categories,
        }
        cat = data.item_category.long()
        known = torch.nonzero(cat >= 0).reshape(-1)
        edges: dict[EdgeType, tuple[torch.Tensor, torch.Tensor]] = {}
        for b in m.behaviors:
            ei = data.edge_index[b].long()
            edges[schema.behavior_edge(b)] = (ei[0], ei[1])
            edges[schema.reverse_edge(b)] = (ei[1], ei[0])
        edges[schema.ITEM_CATEGORY] = (known, cat[known])
        edges[schema.CATEGORY_ITEM] = (cat[known], known)
        rels = []
        for r, et in enumerate(self.relations):
            src, dst = edges[et]
            rels.append((r, et, RelationAdjacency(src, dst, sizes[et[0]], sizes[et[2]])))
        return GraphCache(data, {}, relations=rels, plans=plan_relations(rels))

    def prepare(self, data: TrainData) -> None:
        """Build the fused propagation operators from the training data (once)."""
        if self.config.backend == "pyg":
            self._cache = self._build_graph(data)

    def _graph(self, data: TrainData) -> GraphCache:
        if self._cache is None or not self._cache.valid_for(data):
            self._cache = self._build_graph(data)
        return self._cache

    def propagation_edges(self, data: TrainData) -> dict[EdgeType, torch.Tensor]:
        """``[2, E]`` (source, destination) per relation the model propagates on."""
        return {et: adj.edge_index for _, et, adj in self._graph(data).extra["relations"]}

    # ------------------------------------------------------------------ forward
    def encode(self, data: TrainData) -> EmbDict:
        if self.config.backend == "dgl":
            from gnnrec.models.encoders.dgl_models import rgcn_encode_dgl

            return rgcn_encode_dgl(self, data)
        plans = self._graph(data).extra["plans"]
        x0 = {t: cast(nn.Embedding, e).weight for t, e in self.emb.items()}
        h = x0
        last = len(self.convs) - 1
        for layer, conv in enumerate(self.convs):
            # the last layer computes users and items only (category outputs are not read out)
            out = conv(h, plans, out_types=READOUT if layer == last else None)
            if layer < last:
                out = {t: F.dropout(v.relu(), self.config.dropout, self.training) for t, v in out.items()}
            h = {t: h[t] + out[t] for t in out} if self.config.residual else out
        return {
            "user": h[schema.USER],
            "item": h[schema.ITEM],
            "user_ego": x0[schema.USER],
            "item_ego": x0[schema.ITEM],
        }

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
            f"num_categories={self.meta.num_categories}, relations={len(self.relations)}, "
            + super().extra_repr()
        )
