"""Interest association outputs of a trained recommender.

Two views of what a model has learnt about *categories* (items without a known category,
``item_category == -1``, are ignored throughout):

* :func:`user_category_interest` — per-user category interest weights: the user's mean
  model score over each category's items, normalised over categories.
* :func:`category_association_graph` — a category–category graph whose edges link each
  category to its most similar categories in the item embedding space (cosine of category
  centroids), annotated with how many training users interacted with both.

:func:`export_graph` writes such a graph as GraphML or as a CSV edge list.

Everything here reads only the model's embeddings/scores and the *training* graph of
:class:`~gnnrec.graph.data.TrainData`, so no held-out interaction is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from gnnrec.errors import ConfigError, GnnrecError
from gnnrec.graph.data import TrainData
from gnnrec.models.base import EmbDict, Recommender

if TYPE_CHECKING:  # networkx is imported lazily (only needed for the graph outputs)
    import networkx as nx

__all__ = ["category_association_graph", "export_graph", "user_category_interest"]

_INTEREST_SCHEMA = {"user": pl.Int64, "category": pl.Int64, "weight": pl.Float64}


def _category_sizes(data: TrainData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(item_category on CPU, items per category [C], known-item mask [I])``.

    Raises:
        GnnrecError: no item has a known category.
    """
    cat = data.item_category.detach().to("cpu", torch.long)
    known = cat >= 0
    if not bool(known.any()):
        raise GnnrecError(
            "interest outputs need item categories, but no item of this dataset has a known "
            "category (item_category is -1 everywhere)"
        )
    num_cat = max(int(data.meta.num_categories), int(cat.max()) + 1)
    sizes = torch.bincount(cat[known], minlength=num_cat)
    return cat, sizes, known


def user_category_interest(
    model: Recommender,
    emb: EmbDict,
    data: TrainData,
    users: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    top: int | None = None,
    *,
    normalize: Literal["softmax", "sum"] = "softmax",
    temperature: float = 1.0,
    batch_size: int = 1024,
) -> pl.DataFrame:
    r"""Per-user category interest weights from a trained model's full-ranking scores.

    For user :math:`u` and category :math:`c` with item set :math:`I_c` (items of unknown
    category ignored; categories without items left out),

    .. math::
        m_{uc} = \frac{1}{|I_c|} \sum_{i \in I_c} s(u, i), \qquad
        w_{uc} = \operatorname{softmax}_c(m_{uc} / \tau) \quad (\texttt{normalize="softmax"})

    or, with ``normalize="sum"``, :math:`w_{uc} = \max(m_{uc}, 0) / \sum_{c'} \max(m_{uc'}, 0)`
    (scores are unbounded dot products, so negative means are clipped to 0; a user whose
    means are all ``<= 0`` gets uniform weights). Either way each user's weights over all
    categories sum to 1. Scores come from ``model.score_all`` in user batches; the category
    means are one sparse product per batch (no per-category loop).

    Args:
        model: a trained recommender (put in eval mode; scores under ``torch.no_grad()``).
        emb: its embeddings (``model.encode(data)``).
        data: the training data (for ``item_category``).
        users: user indices (default: every user).
        top: keep only each user's ``top`` heaviest categories (weights are not
            re-normalised); ``None`` keeps all.
        normalize: ``"softmax"`` (default) or ``"sum"`` (see above).
        temperature: softmax temperature :math:`\tau > 0`.
        batch_size: users scored at a time (bounds memory at ``batch_size × num_items``).

    Returns:
        Columns ``user`` (Int64), ``category`` (Int64), ``weight`` (Float64), sorted by user,
        then weight descending, then category.

    Raises:
        ConfigError: a bad ``normalize``, ``temperature``, ``top`` or ``batch_size``.
        GnnrecError: the dataset has no item categories.
    """
    if normalize not in ("softmax", "sum"):
        raise ConfigError(f"normalize must be 'softmax' or 'sum', got '{normalize}'")
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if top is not None and top < 1:
        raise ConfigError(f"top must be >= 1 or None, got {top}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    cat, sizes, known = _category_sizes(data)
    valid_cats = torch.nonzero(sizes > 0).view(-1)  # categories with at least one item
    col_of = torch.full((sizes.numel(),), -1, dtype=torch.long)
    col_of[valid_cats] = torch.arange(valid_cats.numel())
    items = torch.nonzero(known).view(-1)
    c_cols = col_of[cat[items]]
    num_c = int(valid_cats.numel())
    num_items = int(cat.numel())

    device = emb["item"].device
    # mean operator M^T [C', I]: row c has 1/|I_c| at the items of category c
    mean_op = (
        torch.sparse_coo_tensor(
            torch.stack([c_cols, items]),
            1.0 / sizes[cat[items]].to(torch.float32),
            (num_c, num_items),
            check_invariants=False,
        )
        .coalesce()
        .to_sparse_csr()
        .to(device)
    )

    if users is None:
        user_idx = torch.arange(data.meta.num_users, dtype=torch.long)
    else:
        user_idx = torch.as_tensor(np.asarray(users), dtype=torch.long).view(-1)
    k = num_c if top is None else min(top, num_c)

    frames: list[pl.DataFrame] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, int(user_idx.numel()), batch_size):
                ub = user_idx[start : start + batch_size].to(device)
                scores = model.score_all(emb, ub).to(torch.float32)  # [B, I]
                means = torch.sparse.mm(mean_op, scores.T.contiguous()).T  # [B, C']
                if normalize == "softmax":
                    w = torch.softmax(means / temperature, dim=1)
                else:
                    pos = means.clamp(min=0)
                    tot = pos.sum(1, keepdim=True)
                    w = torch.where(tot > 0, pos / tot.clamp(min=1e-30), torch.full_like(pos, 1.0 / num_c))
                # stable descending sort: equal weights keep ascending category order
                w_sorted, order = torch.sort(w, dim=1, descending=True, stable=True)
                w_sorted, order = w_sorted[:, :k].cpu(), order[:, :k].cpu()
                frames.append(
                    pl.DataFrame(
                        {
                            "user": ub.cpu().repeat_interleave(k).numpy(),
                            "category": valid_cats[order.reshape(-1)].numpy(),
                            "weight": w_sorted.reshape(-1).to(torch.float64).numpy(),
                        },
                        schema=_INTEREST_SCHEMA,
                    )
                )
    finally:
        model.train(was_training)
    if not frames:
        return pl.DataFrame(schema=_INTEREST_SCHEMA)
    return pl.concat(frames)


def _user_category_matrix(
    data: TrainData, cat: torch.Tensor, behaviors: tuple[str, ...] | None
) -> sp.csr_matrix:
    """Binary ``[U, C]``: user has a training interaction with an item of category c."""
    pairs = data.interaction_pairs(behaviors).cpu()
    u = pairs[0].numpy()
    c = cat[pairs[1]].numpy()
    keep = c >= 0
    u, c = u[keep], c[keep]
    m = sp.csr_matrix(
        (np.ones(u.size, dtype=np.int64), (u, c)),
        shape=(int(data.meta.num_users), int(cat.max()) + 1),
    )
    m.data[:] = 1  # duplicates were summed by the constructor: back to 0/1
    return m


def category_association_graph(
    emb: EmbDict,
    data: TrainData,
    top_k: int = 5,
    min_weight: float = 0.0,
    *,
    names: Sequence[str] | None = None,
    behaviors: tuple[str, ...] | None = None,
    chunk_size: int = 2048,
) -> nx.Graph:
    r"""Category–category association graph from item embeddings and training co-interactions.

    Nodes: every category with at least one item (attributes ``num_items``, ``num_users`` =
    training users who interacted with one of its items, and ``label`` when ``names`` is
    given). Category centroids :math:`\bar e_c` are the means of ``emb["item"]`` over the
    category's items. Each category is linked to its ``top_k`` most similar *other*
    categories by cosine similarity of centroids, keeping only similarities
    ``>= min_weight``; the graph is undirected, so an edge found from either end appears
    once. Edge attributes:

    * ``weight`` — cosine similarity of the two centroids (float, in ``[-1, 1]``);
    * ``co_users`` — number of users with a *training* interaction (over ``behaviors``,
      default all edge behaviours) with items of both categories (int).

    Edges come from the embedding similarity only; ``co_users`` annotates them (it may be
    0), so the graph shows what the model associates and how much of it is direct
    co-interaction.

    Args:
        emb: embeddings with ``emb["item"]`` ``[I, d]``.
        data: the training data (item categories and training edges).
        top_k: neighbours per category (``>= 1``).
        min_weight: minimum cosine similarity of an edge.
        names: optional category names indexed by category id (e.g. the run's
            ``vocab/categories.csv``), stored as node attribute ``label``.
        behaviors: training behaviours counted in ``co_users``; ``None`` = all edge types.
        chunk_size: categories per similarity block (bounds memory at ``chunk × C``).

    Returns:
        A ``networkx.Graph`` with integer category ids as nodes.

    Raises:
        ConfigError: ``top_k < 1`` or ``chunk_size < 1``.
        GnnrecError: the dataset has no item categories.
    """
    import networkx as nx

    if top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    cat, sizes, known = _category_sizes(data)
    valid = torch.nonzero(sizes > 0).view(-1)  # category ids with items
    item_emb = emb["item"].detach().to("cpu", torch.float32)
    d = item_emb.shape[1]
    sums = torch.zeros(sizes.numel(), d).index_add_(0, cat[known], item_emb[known])
    centroids = sums[valid] / sizes[valid].unsqueeze(1).to(torch.float32)
    unit = torch.nn.functional.normalize(centroids, dim=1)

    ucm = _user_category_matrix(data, cat, behaviors)
    num_users = np.asarray(ucm.sum(axis=0)).reshape(-1)
    co = (ucm.T @ ucm).tocsr()  # [C, C] co-interacting users

    g = nx.Graph()
    for c in valid.tolist():  # one node per category (a Python loop over categories, not rows)
        attrs: dict[str, object] = {"num_items": int(sizes[c]), "num_users": int(num_users[c])}
        if names is not None:
            attrs["label"] = str(names[c])
        g.add_node(int(c), **attrs)

    n = int(valid.numel())
    k = min(top_k, n - 1)
    if k <= 0:
        return g
    src_all, dst_all, sim_all = [], [], []
    for start in range(0, n, chunk_size):
        block = unit[start : start + chunk_size] @ unit.T  # [b, C']
        rows = torch.arange(block.shape[0])
        block[rows, rows + start] = -torch.inf  # not a neighbour of itself
        sim, nbr = torch.topk(block, k, dim=1)
        keep = sim >= min_weight
        src_all.append((rows + start).unsqueeze(1).expand_as(nbr)[keep])
        dst_all.append(nbr[keep])
        sim_all.append(sim[keep])
    src = torch.cat(src_all)
    dst = torch.cat(dst_all)
    sim = torch.cat(sim_all)
    # undirected: canonical (low, high) pairs, each once
    lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
    _, first = np.unique((lo * n + hi).numpy(), return_index=True)
    # copies: scipy's fancy indexing needs writeable arrays (tensor views are not)
    lo_c = np.array(valid[lo[first]].numpy(), dtype=np.int64)
    hi_c = np.array(valid[hi[first]].numpy(), dtype=np.int64)
    weights = sim[first].numpy().astype(np.float64)
    co_counts = np.asarray(co[lo_c, hi_c]).reshape(-1) if lo_c.size else np.zeros(0, dtype=np.int64)
    g.add_edges_from(
        (int(a), int(b), {"weight": float(w), "co_users": int(c)})
        for a, b, w, c in zip(lo_c, hi_c, weights, co_counts)
    )
    return g


def export_graph(graph: nx.Graph, path: str | Path) -> Path:
    """Write ``graph`` as GraphML (``.graphml``, ``.graphml.gz``) or as a CSV edge list
    (``.csv``: columns ``source``, ``target`` and one per edge attribute; isolated nodes
    and node attributes are not in a CSV edge list — use GraphML to keep them).

    Returns:
        The written path.

    Raises:
        ConfigError: an unsupported file suffix.
    """
    import networkx as nx

    p = Path(path)
    name = p.name.lower()
    if name.endswith((".graphml", ".graphml.gz")):
        p.parent.mkdir(parents=True, exist_ok=True)
        nx.write_graphml(graph, p)
        return p
    if name.endswith(".csv"):
        p.parent.mkdir(parents=True, exist_ok=True)
        edges = list(graph.edges(data=True))
        keys = sorted({k for _, _, a in edges for k in a})
        cols: dict[str, list[object]] = {"source": [e[0] for e in edges], "target": [e[1] for e in edges]}
        for key in keys:
            cols[key] = [a.get(key) for _, _, a in edges]
        pl.DataFrame(cols).write_csv(p)
        return p
    raise ConfigError(f"{p}: unsupported graph file type; use .graphml, .graphml.gz or .csv")
