"""DGL export of the training graph: the second backend, with PyG as the source of truth.

:func:`build_dgl_graph` writes the *same* graph as :func:`gnnrec.graph.build.build_hetero_data`
(same node types and counts, same canonical edge types, same edge order and edge features)
as a ``dgl.DGLHeteroGraph``; :func:`build_dgl_norm_graph` is the homogeneous user+item graph
whose edge weights are the entries of :meth:`TrainData.norm_adj
<gnnrec.graph.data.TrainData.norm_adj>` (LightGCN / NGCF propagation).

DGL is optional (``pip install gnnrec[dgl]``) and its newest Linux wheel (2.1.0) only imports
with torch <= 2.2.1, so it lives in a second environment (``scripts/dgl_env.sh``). It is
imported lazily here, and a missing or unusable DGL becomes a :class:`~gnnrec.errors.GnnrecError`
instead of an import traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING

import torch

from gnnrec.errors import GnnrecError
from gnnrec.graph import schema
from gnnrec.graph.data import TrainData

if TYPE_CHECKING:  # dgl is an optional dependency
    import dgl

__all__ = ["DGL_MISSING", "build_dgl_graph", "build_dgl_norm_graph", "dgl_available", "import_dgl"]

#: The one-line reason shown when the DGL backend cannot be used.
DGL_MISSING = (
    "backend: dgl needs the gnnrec[dgl] extra in an environment with torch<=2.2.1; see README "
    "(scripts/dgl_env.sh builds one)"
)


def import_dgl() -> ModuleType:
    """Import and return the ``dgl`` module.

    Raises:
        GnnrecError: DGL is not installed, or cannot load with this torch (DGL 2.1 ships its
            graphbolt library only for torch 2.0.0-2.2.1 and fails with ``FileNotFoundError``
            on newer ones).
    """
    try:
        import dgl
    except (ImportError, OSError) as exc:  # OSError: FileNotFoundError for libgraphbolt_pytorch_X
        raise GnnrecError(f"{DGL_MISSING} (import dgl failed: {type(exc).__name__}: {exc})") from exc
    return dgl


@contextmanager
def _device_errors(device: torch.device) -> Iterator[None]:
    """Turn DGL's failure to place a graph on a non-CPU device into a GnnrecError."""
    try:
        yield
    except Exception as exc:  # dgl.DGLError; DGL's CPU wheel raises it for CUDA tensors
        if device.type == "cpu":
            raise
        raise GnnrecError(
            f"backend: dgl could not build the graph on {device} ({type(exc).__name__}: {exc}); "
            "the PyPI DGL 2.1.0 wheel is CPU-only: set `device: cpu` in the config or use a CUDA build of DGL"
        ) from exc


def dgl_available() -> bool:
    """Whether :func:`import_dgl` would succeed (for skipping, not for control flow in models)."""
    try:
        import_dgl()
    except GnnrecError:
        return False
    return True


def build_dgl_graph(data: TrainData, add_reverse: bool | None = None) -> dgl.DGLHeteroGraph:
    """DGL heterograph of the training graph, equal to :func:`~gnnrec.graph.build.build_hetero_data`.

    Node types ``user`` / ``item`` / ``category`` with ``data.meta``'s counts (no features:
    models own their embeddings). Canonical edge types, in this order: per behaviour
    ``(user, <behaviour>, item)`` with edata ``time`` (last event ts) and ``count`` (events),
    and with reverses ``(item, rev_<behaviour>, user)`` (same ``time`` / ``count``); then
    ``(item, belongs_to, category)`` for items with a known category and, with reverses,
    ``(category, rev_belongs_to, item)``. Edge ``k`` of each type is column ``k`` of the
    matching HeteroData ``edge_index``, so edge features line up one to one.

    Args:
        data: training data (any device DGL supports; the CPU wheel supports the CPU only).
        add_reverse: add the reverse edge types; ``None`` = ``data.meta.add_reverse``.

    Returns:
        A ``dgl.DGLHeteroGraph`` with int64 ids on ``data``'s device.

    Raises:
        GnnrecError: DGL is not installed or unusable here (see :func:`import_dgl`).
    """
    dgl = import_dgl()
    rev = data.meta.add_reverse if add_reverse is None else add_reverse
    m = data.meta
    edges: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}
    feats: dict[tuple[str, str, str], dict[str, torch.Tensor]] = {}
    for name in m.behaviors:  # a handful of behaviours; the work per type is vectorised
        ei = data.edge_index[name].long()
        f = {"time": data.edge_ts[name], "count": data.edge_count[name]}
        edges[schema.behavior_edge(name)] = (ei[0], ei[1])
        feats[schema.behavior_edge(name)] = f
        if rev:
            edges[schema.reverse_edge(name)] = (ei[1], ei[0])
            feats[schema.reverse_edge(name)] = f
    cat = data.item_category.long()
    known = torch.nonzero(cat >= 0).reshape(-1)
    edges[schema.ITEM_CATEGORY] = (known, cat[known])
    if rev:
        edges[schema.CATEGORY_ITEM] = (cat[known], known)
    num_nodes = {schema.USER: m.num_users, schema.ITEM: m.num_items, schema.CATEGORY: m.num_categories}
    with _device_errors(data.device):
        g = dgl.heterograph(edges, num_nodes_dict=num_nodes, idtype=torch.int64, device=data.device)
    for etype, f in feats.items():
        for key, value in f.items():
            g.edges[etype].data[key] = value
    return g


def build_dgl_norm_graph(data: TrainData, behaviors: tuple[str, ...] | None = None) -> dgl.DGLGraph:
    """Homogeneous user+item DGL graph carrying the normalised adjacency as edge weights.

    Nodes ``0..U-1`` are users, ``U..U+I-1`` items (the order of
    :meth:`TrainData.norm_adj <gnnrec.graph.data.TrainData.norm_adj>`). Each unique
    user–item training pair over ``behaviors`` is an edge in both directions, with edata
    ``w = 1 / sqrt(deg(u) deg(i))``, so ``sum_{j->i} w_ji x_j`` is ``(D^-1/2 A D^-1/2 x)_i``.
    Nodes without edges are isolated (their rows of ``Â x`` are zero, as in ``norm_adj``).

    Args:
        data: training data.
        behaviors: edge behaviours merged into the graph (``None`` = all edge behaviours).

    Returns:
        A ``dgl.DGLGraph`` with ``U + I`` nodes and edata ``w`` (float32).

    Raises:
        GnnrecError: DGL is not installed or unusable here.
    """
    dgl = import_dgl()
    m = data.meta
    n = m.num_users + m.num_items
    pairs = data.interaction_pairs(behaviors)
    u, i = pairs[0], pairs[1] + m.num_users
    src, dst = torch.cat([u, i]), torch.cat([i, u])
    with _device_errors(data.device):
        g = dgl.graph((src, dst), num_nodes=n, idtype=torch.int64, device=data.device)
    deg = g.in_degrees().to(torch.float32)  # = out-degrees: the graph is symmetric
    dinv = deg.clamp(min=1).pow(-0.5)
    g.edata["w"] = dinv[src] * dinv[dst]
    return g
