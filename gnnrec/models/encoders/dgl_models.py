"""DGL implementations of the ``lightgcn`` and ``rgcn`` encoders (``backend: dgl``).

PyG is the source of truth: these functions compute the *same* embeddings as
:meth:`LightGCN.encode <gnnrec.models.encoders.lightgcn.LightGCN.encode>` and
:meth:`RGCN.encode <gnnrec.models.encoders.rgcn.RGCN.encode>` from the *same* parameters
(the model's ego embeddings and layer weights), with DGL message passing instead of the
cached torch sparse operators. ``tests/models/test_dgl_parity.py`` builds both from one
table and split and asserts equal embeddings and gradients (atol 1e-5).

A model selects this path with ``backend: dgl`` in its params; its ``encode`` then calls
:func:`lightgcn_encode_dgl` / :func:`rgcn_encode_dgl` with itself, and its constructor calls
:func:`require_dgl` so a missing DGL is a config-time :class:`~gnnrec.errors.GnnrecError`.

DGL graphs are cached in ``TrainData.cache`` (like ``norm_adj``), so they are built once per
training graph and device, never per step. DGL is imported lazily: importing this module
does not need DGL.

Differences from the PyG path: none in the function computed. Floating-point summation order
differs (DGL's per-relation message passing vs the PyG path's cached torch CSR products), so
results agree to ~1e-6, not bit for bit. Hidden-layer dropout draws from the global torch RNG
in the same order, so under one seed both paths drop the same units. The PyPI DGL 2.1.0
wheel is CPU-only: ``backend: dgl`` on a CUDA device needs a CUDA build of DGL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from gnnrec.graph import schema
from gnnrec.graph.build_dgl import build_dgl_graph, build_dgl_norm_graph, import_dgl
from gnnrec.graph.data import TrainData
from gnnrec.models.base import EmbDict

if TYPE_CHECKING:  # optional dependency / avoid import cycles with the model modules
    import dgl

    from gnnrec.models.encoders.lightgcn import LightGCN
    from gnnrec.models.encoders.rgcn import RGCN

__all__ = [
    "dgl_hetero_graph",
    "dgl_norm_graph",
    "lightgcn_encode_dgl",
    "lightgcn_propagate_dgl",
    "require_dgl",
    "rgcn_encode_dgl",
    "rgcn_layer_dgl",
]

EdgeType = tuple[str, str, str]


def require_dgl() -> None:
    """Raise :class:`~gnnrec.errors.GnnrecError` unless DGL imports here (model constructors
    call it for ``backend: dgl``, so the error comes before any training)."""
    import_dgl()


# --------------------------------------------------------------------------- cached graphs
def dgl_norm_graph(data: TrainData, behaviors: tuple[str, ...] | None = None) -> dgl.DGLGraph:
    """Cached :func:`~gnnrec.graph.build_dgl.build_dgl_norm_graph` of ``data`` (the DGL
    counterpart of :meth:`TrainData.norm_adj`)."""
    key = ("dgl_norm_graph", behaviors)
    if key not in data.cache:
        data.cache[key] = build_dgl_norm_graph(data, behaviors)
    return data.cache[key]


def dgl_hetero_graph(data: TrainData, add_reverse: bool | None = None) -> dgl.DGLHeteroGraph:
    """Cached :func:`~gnnrec.graph.build_dgl.build_dgl_graph` of ``data`` (the DGL
    counterpart of :meth:`TrainData.hetero`)."""
    rev = data.meta.add_reverse if add_reverse is None else add_reverse
    key = ("dgl_hetero", rev)
    if key not in data.cache:
        data.cache[key] = build_dgl_graph(data, add_reverse=rev)
    return data.cache[key]


# --------------------------------------------------------------------------- LightGCN
def lightgcn_propagate_dgl(graph: dgl.DGLGraph, x: torch.Tensor, num_layers: int) -> list[torch.Tensor]:
    """``[x, Â x, ..., Â^K x]`` by DGL message passing (``K = num_layers``).

    Each layer is ``h_i <- sum_{j -> i} w_ji h_j`` (``u_mul_e`` messages, ``sum`` reduce),
    with ``w`` the normalised-adjacency weights of :func:`build_dgl_norm_graph`, i.e. the same
    ``D^-1/2 A D^-1/2`` product as :func:`~gnnrec.models.encoders.propagation.propagate`.

    Args:
        graph: homogeneous graph with edata ``w`` ``[E]``.
        x: node features ``[N, d]`` (users first, then items).
        num_layers: ``K >= 0``.

    Returns:
        ``K + 1`` tensors ``[N, d]``, the input first.
    """
    dgl = import_dgl()
    w = graph.edata["w"].unsqueeze(-1)  # [E, 1]: broadcast over the feature dimension
    out = [x]
    for _ in range(num_layers):
        out.append(dgl.ops.u_mul_e_sum(graph, out[-1], w))
    return out


def lightgcn_encode_dgl(model: LightGCN, data: TrainData) -> EmbDict:
    """:meth:`LightGCN.encode` computed with DGL from ``model``'s ego embeddings.

    Args:
        model: a :class:`~gnnrec.models.encoders.lightgcn.LightGCN` (its ``user_emb``,
            ``item_emb``, ``behaviors`` and ``config.num_layers`` are used).
        data: training data.

    Returns:
        ``{"user": [U, d], "item": [I, d]}``, the layer mean ``1/(K+1) sum_k Â^k E``.
    """
    graph = dgl_norm_graph(data, model.behaviors)
    layers = lightgcn_propagate_dgl(graph, model.ego(), model.config.num_layers)
    out = layers[0]
    for h in layers[1:]:
        out = out + h
    out = out / len(layers)  # alpha_k = 1 / (K + 1), as the paper and the PyG path
    nu = model.meta.num_users
    return {"user": out[:nu], "item": out[nu:]}


# --------------------------------------------------------------------------- R-GCN
def rgcn_layer_dgl(
    graph: dgl.DGLHeteroGraph,
    x: dict[str, torch.Tensor],
    relations: Sequence[EdgeType],
    weight: torch.Tensor,
    root: torch.Tensor | None,
    bias: torch.Tensor | None,
    out_types: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """One R-GCN layer on a DGL heterograph (mean aggregation per relation)::

        h'_i = W_0 h_i + b + Σ_r mean_{j ∈ N_r(i)} W_r h_j

    Args:
        graph: heterograph holding every canonical edge type in ``relations``.
        x: node type → ``[N_t, d_in]``.
        relations: the relation of each weight row, ``relations[r]`` ↔ ``weight[r]``.
        weight: ``[R, d_in, d_out]`` (``TypedRGCNConv.relation_weight()``).
        root: self-loop weight ``W_0`` ``[d_in, d_out]`` or ``None``.
        bias: ``[d_out]`` or ``None``.
        out_types: node types to compute (default: all of ``x``); relations into other
            types are skipped.

    Returns:
        node type → ``[N_t, d_out]``. A node without neighbours under ``r`` gets 0 from it
        (DGL's ``mean`` reduce, like PyG's ``aggr="mean"``).
    """
    dgl = import_dgl()
    fn = dgl.function
    types = list(x) if out_types is None else list(out_types)
    out: dict[str, torch.Tensor] = {}
    for t in types:
        h = x[t]
        o = h @ root if root is not None else h.new_zeros(h.shape[0], weight.shape[-1])
        out[t] = o + bias if bias is not None else o
    with graph.local_scope():
        for t in graph.ntypes:
            if t in x:
                graph.nodes[t].data["h"] = x[t]
        for r, et in enumerate(relations):  # a handful of relations; the work inside is sparse
            dst = et[2]
            if dst not in out:
                continue
            if graph.num_edges(et) == 0:  # an empty relation (behaviour without training events)
                continue
            graph.update_all(fn.copy_u("h", "m"), fn.mean("m", "a"), etype=et)
            # mean then W_r (linear, so equal to mean of W_r h_j) — the PyG path's order
            out[dst] = out[dst] + graph.nodes[dst].data.pop("a") @ weight[r]
    return out


def rgcn_encode_dgl(model: RGCN, data: TrainData) -> EmbDict:
    """:meth:`RGCN.encode` computed with DGL from ``model``'s embeddings and conv weights.

    Same layer stack as the PyG path: ReLU + dropout on hidden layers, identity on the last,
    optional residual, the last layer computed for users and items only.

    Args:
        model: an :class:`~gnnrec.models.encoders.rgcn.RGCN` (``emb``, ``convs``,
            ``relations``, ``config``).
        data: training data with the model's behaviours.

    Returns:
        ``{"user", "item", "user_ego", "item_ego"}`` as :meth:`RGCN.encode`.
    """
    if tuple(data.meta.behaviors) != tuple(model.meta.behaviors):
        raise ValueError(
            f"rgcn was built for behaviours {list(model.meta.behaviors)}, "
            f"the data has {list(data.meta.behaviors)}"
        )
    graph = dgl_hetero_graph(data, model.meta.add_reverse)
    relations = list(model.relations)
    x0 = {t: e.weight for t, e in model.emb.items()}
    h = x0
    last = len(model.convs) - 1
    readout = (schema.USER, schema.ITEM)
    for layer, conv in enumerate(model.convs):
        out = rgcn_layer_dgl(
            graph,
            h,
            relations,
            conv.relation_weight(),  # full W_r, or the basis combination
            conv.root,
            conv.bias,
            out_types=readout if layer == last else None,
        )
        if layer < last:
            out = {t: F.dropout(v.relu(), model.config.dropout, model.training) for t, v in out.items()}
        h = {t: h[t] + out[t] for t in out} if model.config.residual else out
    return {
        "user": h[schema.USER],
        "item": h[schema.ITEM],
        "user_ego": x0[schema.USER],
        "item_ego": x0[schema.ITEM],
    }
