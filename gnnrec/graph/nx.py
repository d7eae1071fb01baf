"""A networkx view of a (small) training graph, for analysis and plots.

Not for training: networkx stores every node and edge as Python objects, so
:func:`to_networkx` refuses graphs above ``max_nodes``.
"""

from __future__ import annotations

from typing import Any

from gnnrec.errors import GnnrecError
from gnnrec.graph import schema
from gnnrec.graph.data import TrainData

__all__ = ["node_name", "to_networkx"]


def node_name(node_type: str, index: int) -> str:
    """The networkx node id of a node, e.g. ``node_name("user", 3) == "user:3"``."""
    return f"{node_type}:{index}"


def to_networkx(data: TrainData, max_nodes: int = 100_000) -> Any:
    """Convert training data into a ``networkx.MultiDiGraph``.

    Nodes: ``"user:<i>"``, ``"item:<i>"``, ``"category:<i>"`` with attribute ``type``
    (``user`` / ``item`` / ``category``) and ``index`` (the integer id). Edges (forward
    direction only; a reverse is implied): user→item, one per behaviour and pair, keyed by
    the behaviour, with attributes ``type`` (the relation), ``behavior``, ``time`` (last
    event ts) and ``count`` (events); item→category with ``type = "belongs_to"``.

    Args:
        data: training data (only training edges, so the view is leakage-free too).
        max_nodes: refuse larger graphs.

    Returns:
        The ``networkx.MultiDiGraph``.

    Raises:
        GnnrecError: the graph has more than ``max_nodes`` nodes.
    """
    import networkx as nx

    m = data.meta
    total = m.num_users + m.num_items + m.num_categories
    if total > max_nodes:
        raise GnnrecError(
            f"to_networkx is for small graphs: this one has {total} nodes, more than max_nodes={max_nodes}"
        )
    g = nx.MultiDiGraph()
    for node_type, count in (
        (schema.USER, m.num_users),
        (schema.ITEM, m.num_items),
        (schema.CATEGORY, m.num_categories),
    ):
        g.add_nodes_from((node_name(node_type, i), {"type": node_type, "index": i}) for i in range(count))
    for b in m.behaviors:
        users = data.edge_index[b][0].tolist()
        items = data.edge_index[b][1].tolist()
        times = data.edge_ts[b].tolist()
        counts = data.edge_count[b].tolist()
        g.add_edges_from(
            (
                node_name(schema.USER, u),
                node_name(schema.ITEM, i),
                b,
                {"type": b, "behavior": b, "time": t, "count": c},
            )
            for u, i, t, c in zip(users, items, times, counts)
        )
    cat = data.item_category.tolist()
    g.add_edges_from(
        (
            node_name(schema.ITEM, i),
            node_name(schema.CATEGORY, c),
            schema.BELONGS_TO,
            {"type": schema.BELONGS_TO},
        )
        for i, c in enumerate(cat)
        if c >= 0
    )
    return g
