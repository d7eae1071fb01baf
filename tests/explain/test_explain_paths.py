"""Explanation paths on the tiny hand-written log (tests/helpers.py ``TINY_LOG``).

Split by hand: the pairs (user 0, item 3) and (user 1, item 4) are held out — their buy rows
(6, 12) are TEST, their view rows (5, 11) EXCLUDED — so neither is a training edge.

Training graph (union of behaviours; label = furthest behaviour):
user 0: items 0 (buy), 1 (buy); user 1: items 1 (fav), 2 (buy), 3 (view); user 2: items 0,
5 (view); user 3: item 3 (buy). Degrees: users (2, 3, 2, 1), items (2, 2, 1, 2, 0, 1).
Categories: items 0-2 -> c0 (3 items), items 3-4 -> c1 (2 items), item 5 unknown.
"""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from gnnrec.config import GraphConfig
from gnnrec.data.types import EXCLUDED, TEST, TRAIN, Split
from gnnrec.explain.paths import Explainer, TrainGraph, format_path, paths_to_networkx
from gnnrec.graph.build import build_train_data
from tests.helpers import tiny_table


def _setup():  # type: ignore[no-untyped-def]
    table = tiny_table()
    assign = np.full(len(table), TRAIN, dtype=np.int8)
    assign[[6, 12]] = TEST
    assign[[5, 11]] = EXCLUDED
    split = Split(assign, target=table.behavior_index("buy"), mode="given")
    data = build_train_data(table, split, GraphConfig(), "all")
    graph = TrainGraph.from_train_data(data, table.behaviors)
    names = {
        "user": table.user_ids.astype(str),
        "item": table.item_ids.astype(str),
        "category": table.category_ids.astype(str),
    }
    return table, split, data, graph, names


def test_collaborative_path_and_score_by_hand() -> None:
    _, _, _, graph, names = _setup()
    paths = Explainer(graph).explain(0, 3, top=10)
    assert len(paths) == 1
    p = paths[0]
    assert p.kind == "collaborative"
    assert format_path(p, names) == "user u0 -[buy]-> item i1 <-[fav]- user u1 -[view]-> item i3"
    # 1/sqrt(2*2) * 1/sqrt(3*2) * 1/sqrt(3*2)
    assert p.score == pytest.approx(1 / 12)


def test_content_path_by_hand() -> None:
    _, _, _, graph, names = _setup()
    paths = Explainer(graph).explain(1, 4, top=10)
    assert [format_path(p, names) for p in paths] == [
        "user u1 -[view]-> item i3 -[in]-> category c1 <-[in]- item i4"
    ]
    assert paths[0].score == pytest.approx(1 / math.sqrt(6) * (1 / math.sqrt(2)) ** 2)


def test_direct_path_first_when_it_scores_highest() -> None:
    _, _, _, graph, names = _setup()
    paths = Explainer(graph).explain(0, 0, top=3)
    assert format_path(paths[0], names) == "user u0 -[buy]-> item i0"
    assert paths[0].score == pytest.approx(1 / math.sqrt(2 * 2))
    assert [p.score for p in paths] == sorted((p.score for p in paths), reverse=True)


def test_no_path_and_suggestions() -> None:
    _, _, _, graph, _ = _setup()
    ex = Explainer(graph)
    assert ex.explain(2, 4) == []
    sugg = set(ex.suggest(2, top=10).tolist())
    assert {1, 2} <= sugg
    assert not sugg & {0, 5}  # the user's own items are never suggested
    assert all(ex.explain(2, int(i)) for i in sugg)  # every suggestion does connect


def test_every_path_uses_training_edges_only() -> None:
    table, split, _, graph, _ = _setup()
    train = np.asarray(split.assign) == TRAIN
    train_pairs = set(zip(table.user[train].tolist(), table.item[train].tolist()))
    held = set(zip(table.user[~train].tolist(), table.item[~train].tolist())) - train_pairs
    assert held == {(0, 3), (1, 4)}
    ex = Explainer(graph)
    n_paths = 0
    for u, i in itertools.product(range(table.num_users), range(table.num_items)):
        for p in ex.explain(u, i, top=100):
            n_paths += 1
            assert p.nodes[0] == ("user", u) and p.nodes[-1] == ("item", i)
            for (ta, a), (tb, b) in zip(p.nodes[:-1], p.nodes[1:]):
                if {ta, tb} == {"user", "item"}:
                    pair = (a, b) if ta == "user" else (b, a)
                    assert pair in train_pairs
                    assert pair not in held
                else:
                    item, cat = (a, b) if ta == "item" else (b, a)
                    assert table.item_category[item] == cat
    assert n_paths > 10


def test_model_mode_reweights_by_item_similarity() -> None:
    _, _, _, graph, _ = _setup()
    emb = np.eye(6)
    emb[1] = emb[3]  # item 1 identical to item 3 -> factor (1 + 1) / 2 = 1
    paths = Explainer(graph, emb).explain(0, 3, mode="model")
    assert paths[0].score == pytest.approx(1 / 12)
    emb[1] = -emb[3]  # opposite -> factor 0
    assert Explainer(graph, emb).explain(0, 3, mode="model")[0].score == pytest.approx(0.0)


def test_networkx_export_has_the_path_edges() -> None:
    _, _, _, graph, names = _setup()
    paths = Explainer(graph).explain(0, 3)
    g = paths_to_networkx(paths, names)
    assert set(g.edges) == {
        ("user:u0", "item:i1"),
        ("user:u1", "item:i1"),
        ("user:u1", "item:i3"),
    }
    assert g.edges["user:u1", "item:i1"]["relation"] == "fav"
    assert "user u0" in g.graph["paths"]
    nx.generate_graphml(g)  # serialisable
