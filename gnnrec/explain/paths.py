"""Why was item ``t`` recommended to user ``u``? The top paths of the training graph.

The graph is the run's *training* graph only (:class:`~gnnrec.graph.data.TrainData`, rebuilt
from the run directory's ``config.yaml`` and its saved ``split.npz``), with two node-type
relations:

* user — item: the union of the training edges of every graph behaviour; an edge is labelled
  with its furthest behaviour in funnel order (``view < cart < fav < buy``);
* item — category: each item's category.

A user–item path has odd length, so with at most 3 hops there are three kinds:

* ``direct``:        ``u -[b]-> t`` (the user already interacted with ``t`` in training);
* ``collaborative``: ``u -[b]-> i <-[b']- u' -[b'']-> t`` (another user who shares item ``i``
  with ``u`` interacted with ``t``);
* ``content``:       ``u -[b]-> i -[in]-> c <-[in]- t`` (``u`` interacted with an item of
  ``t``'s category).

**Score** (``mode="structural"``): the product of the path's edge weights, each the LightGCN /
GCN propagation weight ``1 / sqrt(d_a d_b)`` of the symmetric-normalised adjacency
(He et al. 2020) — the user–item degrees count unique training pairs over all behaviours; an
item–category edge has weight ``1 / sqrt(1 * n_c)`` (one category per item, ``n_c`` items in
the category). The product is exactly the weight with which the path carries ``t``'s ego
embedding into ``u``'s representation in a linear propagation of that length, so it measures
how much the path contributes to a propagation-based score. It is defined for every model
(popularity, item-kNN and MF runs included): it depends on the training graph only.

``mode="model"`` (default ``auto`` = ``model`` when the run's model has item embeddings
``emb["item"]`` of shape ``[I, d]``): the structural score times ``(1 + cos(e_i, e_t)) / 2``,
the model's similarity between the path's first item ``i`` and the target (1 for a direct
path) — the paths through items the trained model considers close to ``t`` rank first.

Paths are enumerated with sparse matrix slices restricted to the user's neighbourhood
(``R[users of t][:, items of u]`` for collaborative paths), never by a graph-wide search.
Every edge of every returned path is a TRAIN edge, so a held-out (user, item) pair never
appears in an explanation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnnrec.errors import GnnrecError
from gnnrec.runs import LoadedRun

log = logging.getLogger("gnnrec")

__all__ = [
    "Explainer",
    "ExplanationPath",
    "TrainGraph",
    "item_embeddings",
    "paths_to_networkx",
]

IN = "in"  # relation label of item -> category edges in printed paths


@dataclass
class ExplanationPath:
    """One explanation path.

    Attributes:
        kind: ``direct`` / ``collaborative`` / ``content``.
        nodes: ``(type, index)`` from the user to the target item.
        relations: label of each hop (behaviour name or ``in``), ``len(nodes) - 1`` entries.
        forward: per hop, True when the edge points along the path (user→item, item→category).
        weights: the normalised weight of each hop.
        score: the path score (see the module docstring).
    """

    kind: str
    nodes: list[tuple[str, int]]
    relations: list[str]
    forward: list[bool]
    weights: list[float]
    score: float


@dataclass
class TrainGraph:
    """The training graph as scipy matrices.

    Attributes:
        R: CSR ``[U, I]`` float64, the propagation weight ``1/sqrt(d_u d_i)`` of each training pair.
        label: CSR ``[U, I]`` int, ``1 + `` index of the pair's furthest behaviour in ``behaviors``.
        behaviors: behaviour names in funnel order.
        item_category: ``[I]`` int64, ``-1`` unknown.
        category_size: ``[C]`` items per category.
    """

    R: sp.csr_matrix
    label: sp.csr_matrix
    behaviors: tuple[str, ...]
    item_category: np.ndarray
    category_size: np.ndarray
    Rc: sp.csc_matrix = field(init=False)

    def __post_init__(self) -> None:
        self.Rc = self.R.tocsc()

    @classmethod
    def from_train_data(cls, data: Any, funnel: tuple[str, ...] | None = None) -> TrainGraph:
        """Build from :class:`~gnnrec.graph.data.TrainData` (training edges only)."""
        meta = data.meta
        nu, ni = meta.num_users, meta.num_items
        order = [b for b in (funnel or meta.behaviors) if b in meta.behaviors]
        order += [b for b in meta.behaviors if b not in order]
        label = sp.csr_matrix((nu, ni), dtype=np.int64)
        for rank, b in enumerate(order, 1):
            e = data.edge_index[b].cpu().numpy()
            m = sp.csr_matrix(
                (np.full(e.shape[1], rank, dtype=np.int64), (e[0], e[1])),
                shape=(nu, ni),
            )
            m.sum_duplicates()
            label = label.maximum(m)
        label = sp.csr_matrix(label)
        label.sort_indices()
        pattern = label.copy()
        pattern.data = np.ones_like(pattern.data, dtype=np.float64)
        du = np.asarray(pattern.sum(1)).ravel()
        di = np.asarray(pattern.sum(0)).ravel()
        coo = pattern.tocoo()
        w = 1.0 / np.sqrt(du[coo.row] * di[coo.col])
        R = sp.csr_matrix((w, (coo.row, coo.col)), shape=(nu, ni))
        R.sort_indices()
        cat = data.item_category.cpu().numpy().astype(np.int64)
        size = np.bincount(cat[cat >= 0], minlength=meta.num_categories)
        return cls(
            R=R,
            label=label,
            behaviors=tuple(order),
            item_category=cat,
            category_size=size,
        )

    def has_edge(self, u: int, i: int) -> bool:
        """Whether ``(u, i)`` is a training pair."""
        row = self.R.indices[self.R.indptr[u] : self.R.indptr[u + 1]]
        return bool(np.isin(i, row))

    def behavior_of(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Label names of training pairs (vectorised lookup)."""
        vals = np.asarray(self.label[np.asarray(u), np.asarray(i)]).ravel()
        names = np.array(("?",) + self.behaviors, dtype=object)
        return names[vals]

    def weight_of(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return np.asarray(self.R[np.asarray(u), np.asarray(i)]).ravel()


class Explainer:
    """Top paths between a user and an item of one training graph.

    Args:
        graph: the training graph.
        item_emb: ``[I, d]`` item embeddings of the model (enables ``mode="model"``), or None.
    """

    def __init__(self, graph: TrainGraph, item_emb: np.ndarray | None = None) -> None:
        self.g = graph
        self.item_emb = None
        if item_emb is not None:
            e = np.asarray(item_emb, dtype=np.float64)
            self.item_emb = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def resolve_mode(self, mode: str) -> str:
        if mode not in ("auto", "structural", "model"):
            raise GnnrecError(f"--mode must be auto, structural or model, got '{mode}'")
        if mode == "model" and self.item_emb is None:
            raise GnnrecError("--mode model needs a model with item embeddings; use --mode structural")
        if mode == "auto":
            return "model" if self.item_emb is not None else "structural"
        return mode

    def explain(self, user: int, item: int, top: int = 5, mode: str = "auto") -> list[ExplanationPath]:
        """The ``top`` highest-scoring paths of at most 3 hops from ``user`` to ``item``."""
        mode = self.resolve_mode(mode)
        g = self.g
        R = g.R
        u_items = R.indices[R.indptr[user] : R.indptr[user + 1]]
        u_w = R.data[R.indptr[user] : R.indptr[user + 1]]
        cands: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        # (kind, score, first item, middle node (user or category), weights [n, hops])

        # direct u -> t
        direct = u_items == item
        if direct.any():
            w = u_w[direct]
            cands.append(("direct", w, np.array([item]), np.array([-1]), w[:, None]))

        others = u_items != item
        nu_items, nu_w = u_items[others], u_w[others]
        # collaborative u -> i <- u' -> t : R[users of t, items of u]
        Rc = g.Rc
        t_users = Rc.indices[Rc.indptr[item] : Rc.indptr[item + 1]]
        t_w = Rc.data[Rc.indptr[item] : Rc.indptr[item + 1]]
        keep = t_users != user
        t_users, t_w = t_users[keep], t_w[keep]
        if t_users.size and nu_items.size:
            sub = R[t_users][:, nu_items].tocoo()  # rows: other users, cols: u's items
            w1 = nu_w[sub.col]
            w2 = sub.data
            w3 = t_w[sub.row]
            cands.append(
                (
                    "collaborative",
                    w1 * w2 * w3,
                    nu_items[sub.col],
                    t_users[sub.row],
                    np.stack([w1, w2, w3], 1),
                )
            )
        # content u -> i -> c <- t
        c = int(g.item_category[item]) if item < g.item_category.shape[0] else -1
        if c >= 0 and nu_items.size:
            same = g.item_category[nu_items] == c
            if same.any():
                wc = 1.0 / np.sqrt(float(g.category_size[c]))
                w1 = nu_w[same]
                cands.append(
                    (
                        "content",
                        w1 * wc * wc,
                        nu_items[same],
                        np.full(int(same.sum()), c),
                        np.stack([w1, np.full_like(w1, wc), np.full_like(w1, wc)], 1),
                    )
                )
        if not cands:
            return []
        kinds = np.concatenate([np.full(x[1].shape[0], k) for k, x in enumerate(cands)])
        score = np.concatenate([x[1] for x in cands])
        first = np.concatenate([x[2] for x in cands])
        mid = np.concatenate([x[3] for x in cands])
        if mode == "model":
            sim = self.item_emb[first] @ self.item_emb[item]  # type: ignore[index]
            score = score * (1.0 + np.clip(sim, -1.0, 1.0)) / 2.0
        # highest score first; ties by kind order then smaller ids (deterministic)
        order = np.lexsort((mid, first, kinds, -score))[:top]
        out: list[ExplanationPath] = []
        for j in order:  # at most `top` paths: formatting loop, not a data loop
            kind, _, _, _, _ = cands[kinds[j]]
            offset = sum(x[1].shape[0] for x in cands[: kinds[j]])
            weights = [float(x) for x in cands[kinds[j]][4][j - offset]]
            i = int(first[j])
            if kind == "direct":
                out.append(
                    ExplanationPath(
                        kind,
                        [("user", user), ("item", item)],
                        [str(g.behavior_of(np.array([user]), np.array([item]))[0])],
                        [True],
                        weights,
                        float(score[j]),
                    )
                )
            elif kind == "collaborative":
                v = int(mid[j])
                b = g.behavior_of(np.array([user, v, v]), np.array([i, i, item]))
                out.append(
                    ExplanationPath(
                        kind,
                        [("user", user), ("item", i), ("user", v), ("item", item)],
                        [str(b[0]), str(b[1]), str(b[2])],
                        [True, False, True],
                        weights,
                        float(score[j]),
                    )
                )
            else:
                cc = int(mid[j])
                b = g.behavior_of(np.array([user]), np.array([i]))
                out.append(
                    ExplanationPath(
                        kind,
                        [("user", user), ("item", i), ("category", cc), ("item", item)],
                        [str(b[0]), IN, IN],
                        [True, True, False],
                        weights,
                        float(score[j]),
                    )
                )
        return out

    def suggest(self, user: int, top: int = 5) -> np.ndarray:
        """Items reachable from ``user`` in 3 hops that the user has no training edge with,
        ranked by the summed structural score of their paths (collaborative + content)."""
        g = self.g
        R = g.R
        row = R[user]
        if row.nnz == 0:
            return np.zeros(0, dtype=np.int64)
        # walks u -> i <- u' -> j; those through u itself end on u's own items, masked below
        collab = ((row @ R.T) @ R).toarray().ravel()
        cat = g.item_category
        content = np.zeros(R.shape[1])
        known = cat >= 0
        if known.any():
            mass = np.bincount(
                cat[row.indices][cat[row.indices] >= 0],
                weights=row.data[cat[row.indices] >= 0],
                minlength=g.category_size.shape[0],
            )
            size = np.maximum(g.category_size, 1).astype(np.float64)
            content[known] = mass[cat[known]] / size[cat[known]]
        s = collab + content
        s[row.indices] = 0.0
        cand = np.flatnonzero(s > 0)
        return cand[np.argsort(-s[cand], kind="stable")][:top]


def format_path(p: ExplanationPath, names: dict[str, np.ndarray]) -> str:
    """``user u0 -[buy]-> item i1 -[in]-> category c0 <-[in]- item i2``."""
    parts = [f"{p.nodes[0][0]} {names[p.nodes[0][0]][p.nodes[0][1]]}"]
    for (typ, idx), rel, fwd in zip(p.nodes[1:], p.relations, p.forward):
        arrow = f"-[{rel}]->" if fwd else f"<-[{rel}]-"
        parts.append(f"{arrow} {typ} {names[typ][idx]}")
    return " ".join(parts)


def paths_to_networkx(paths: list[ExplanationPath], names: dict[str, np.ndarray]) -> Any:
    """The union of the paths as a ``networkx.DiGraph`` (edges user→item, item→category).

    Nodes ``"<type>:<id>"`` carry ``type``, ``id`` (raw id) and ``index``; edges carry
    ``relation`` and ``weight`` (normalised propagation weight); the graph attribute ``paths``
    holds the printed paths with their scores, one a line.
    """
    import networkx as nx

    g = nx.DiGraph()
    lines = []
    for p in paths:
        lines.append(f"{p.score:.6g}\t{format_path(p, names)}")
        keys = []
        for typ, idx in p.nodes:
            key = f"{typ}:{names[typ][idx]}"
            g.add_node(key, type=typ, id=str(names[typ][idx]), index=int(idx))
            keys.append(key)
        for a, b, rel, fwd, w in zip(keys[:-1], keys[1:], p.relations, p.forward, p.weights):
            src, dst = (a, b) if fwd else (b, a)
            g.add_edge(src, dst, relation=rel, weight=float(w))
    g.graph["paths"] = "\n".join(lines)
    return g


def plot_subgraph(g: Any, path: str | Path, title: str = "") -> None:
    """Write a PNG of an explanation subgraph (matplotlib Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    colors = {"user": "#4C72B0", "item": "#DD8452", "category": "#55A868"}
    fig, ax = plt.subplots(figsize=(8, 6))
    pos = nx.spring_layout(g, seed=0)
    nx.draw_networkx_nodes(
        g,
        pos,
        ax=ax,
        node_color=[colors.get(g.nodes[n]["type"], "#999") for n in g.nodes],
        node_size=600,
    )
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=8)
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True)
    nx.draw_networkx_edge_labels(
        g,
        pos,
        ax=ax,
        font_size=7,
        edge_labels={(a, b): d["relation"] for a, b, d in g.edges(data=True)},
    )
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def item_embeddings(run: LoadedRun) -> np.ndarray | None:
    """The run's item vectors for similarity-weighted path scores (``None``: no model, or a
    model without item embeddings — pop, itemknn — so scores stay structural)."""
    if run.emb is None:
        return None
    from gnnrec.explore.evaluate import item_features

    x = item_features(run.emb, run.data.meta.num_items)
    return None if x is None else x.cpu().numpy()
