"""Tests of gnnrec.graph.build and gnnrec.graph.nx.

Exact cases use the hand-written log ``tests.helpers.TINY_LOG`` (20 events; every row is
listed with a note in tests/helpers.py). With every event in training its edges are:

* view (9): (0,0)@100, (0,1)@130, (0,3)@150, (1,1)@100, (1,2)@105, (1,3)@220, (1,4)@210,
  (2,0)@300, (2,5)@320 x2 events
* cart (2): (0,0)@110, (3,3)@50
* fav (1): (1,1)@105
* buy (6): (0,0)@120, (0,1)@140, (0,3)@160, (1,2)@200, (1,4)@220, (3,3)@70 x2 events
* belongs_to (5): items 0, 1, 2 → category 0; items 3, 4 → category 1; item 5 unknown.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.config import GraphConfig, SplitConfig
from gnnrec.data.splits import make_split
from gnnrec.data.types import TRAIN, InteractionTable, Split
from gnnrec.errors import ConfigError, GnnrecError
from gnnrec.graph.build import (
    _item_rows,
    build_hetero_data,
    build_train_data,
    normalized_adjacency,
    union_pairs,
)
from gnnrec.graph.nx import to_networkx
from tests.helpers import make_table, random_tables, tiny_table

PROPS = settings(max_examples=50, deadline=None)


def all_train(table: InteractionTable) -> Split:
    return Split(assign=np.zeros(len(table), dtype=np.int8), target=table.behavior_index("buy"), mode="given")


def edges(ei: torch.Tensor) -> list[tuple[int, int]]:
    return list(zip(ei[0].tolist(), ei[1].tolist()))


def test_train_data_all_train_exact() -> None:
    table = tiny_table()
    data = build_train_data(table, all_train(table), GraphConfig())
    m = data.meta
    assert (m.num_users, m.num_items, m.num_categories) == (4, 6, 2)
    assert m.behaviors == ("view", "cart", "fav", "buy") and m.target_behavior == "buy"
    assert edges(data.edge_index["view"]) == [
        (0, 0),
        (0, 1),
        (0, 3),
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (2, 0),
        (2, 5),
    ]
    assert data.edge_ts["view"].tolist() == [100, 130, 150, 100, 105, 220, 210, 300, 320]
    assert data.edge_count["view"].tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 2]
    assert edges(data.edge_index["cart"]) == [(0, 0), (3, 3)]
    assert edges(data.edge_index["fav"]) == [(1, 1)]
    assert edges(data.edge_index["buy"]) == [(0, 0), (0, 1), (0, 3), (1, 2), (1, 4), (3, 3)]
    assert data.edge_ts["buy"].tolist() == [120, 140, 160, 200, 220, 70]
    assert data.edge_count["buy"].tolist() == [1, 1, 1, 1, 1, 2]
    assert all(t.dtype == torch.long for t in [*data.edge_index.values(), *data.edge_ts.values()])
    assert edges(data.pos_index) == edges(data.edge_index["buy"])
    assert data.item_category.tolist() == [0, 0, 0, 1, 1, -1]


def test_train_data_uses_only_train_rows() -> None:
    table = tiny_table()
    split = make_split(table, SplitConfig(mode="leave_last_out"), 0)
    data = build_train_data(table, split, GraphConfig())
    # held out: buys (0,1) (0,3) (1,4) (3,3)@70; excluded: view (0,3)@150, view (1,3)@220
    assert edges(data.edge_index["view"]) == [(0, 0), (0, 1), (1, 1), (1, 2), (1, 4), (2, 0), (2, 5)]
    assert edges(data.edge_index["buy"]) == [(0, 0), (1, 2), (3, 3)]
    assert data.edge_ts["buy"].tolist() == [120, 200, 60]
    assert data.edge_count["buy"].tolist() == [1, 1, 1]
    assert edges(data.edge_index["cart"]) == [(0, 0), (3, 3)]
    assert edges(data.pos_index) == [(0, 0), (1, 2), (3, 3)]


def test_hetero_data_exact() -> None:
    table = tiny_table()
    data = build_train_data(table, all_train(table), GraphConfig())
    h = data.hetero()
    assert h is data.hetero()  # cached
    assert h.validate()
    assert (h["user"].num_nodes, h["item"].num_nodes, h["category"].num_nodes) == (4, 6, 2)
    sizes = {et: h[et].edge_index.shape[1] for et in h.edge_types}
    assert sizes == {
        ("user", "view", "item"): 9,
        ("item", "rev_view", "user"): 9,
        ("user", "cart", "item"): 2,
        ("item", "rev_cart", "user"): 2,
        ("user", "fav", "item"): 1,
        ("item", "rev_fav", "user"): 1,
        ("user", "buy", "item"): 6,
        ("item", "rev_buy", "user"): 6,
        ("item", "belongs_to", "category"): 5,
        ("category", "rev_belongs_to", "item"): 5,
    }
    view = edges(h["user", "view", "item"].edge_index)
    assert (2, 5) in view and (3, 3) not in view and (2, 1) not in view
    assert (5, 2) in edges(h["item", "rev_view", "user"].edge_index)
    assert edges(h["item", "belongs_to", "category"].edge_index) == [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1)]
    assert (1, 3) in edges(h["category", "rev_belongs_to", "item"].edge_index)
    k = view.index((2, 5))
    assert h["user", "view", "item"].time[k] == 320 and h["user", "view", "item"].count[k] == 2
    assert h["item", "rev_view", "user"].count[k] == 2


def test_hetero_without_reverse_and_with_behaviour_subset() -> None:
    table = tiny_table()
    data = build_train_data(
        table, all_train(table), GraphConfig(behaviors=("buy", "cart"), add_reverse=False)
    )
    assert data.meta.behaviors == ("buy", "cart")
    assert data.meta.add_reverse is False
    h = build_hetero_data(data)
    assert h.validate()
    assert set(h.edge_types) == {
        ("user", "buy", "item"),
        ("user", "cart", "item"),
        ("item", "belongs_to", "category"),
    }
    assert set(build_hetero_data(data, add_reverse=True).edge_types) >= {("item", "rev_buy", "user")}


def test_positives_all_and_errors() -> None:
    table = tiny_table()
    split = all_train(table)
    data = build_train_data(table, split, GraphConfig(behaviors=("buy",)), positives="all")
    assert edges(data.pos_index) == [
        (0, 0),
        (0, 1),
        (0, 3),
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (2, 0),
        (2, 5),
        (3, 3),
    ]
    with pytest.raises(ConfigError, match=r"graph\.behaviors: unknown behaviour 'click'"):
        build_train_data(table, split, GraphConfig(behaviors=("click",)))
    with pytest.raises(ConfigError, match=r"train\.positives"):
        build_train_data(table, split, GraphConfig(), positives="some")
    with pytest.raises(GnnrecError, match="split has 3 rows"):
        build_train_data(table, Split(np.zeros(3, dtype=np.int8), 3, "given"), GraphConfig())


def test_empty_behaviour_and_no_timestamps() -> None:
    table = make_table([0, 1, 1], [0, 1, 1], ["buy", "view", "view"], categories_per_item=[-1, -1])
    data = build_train_data(table, all_train(table), GraphConfig(behaviors=("view", "fav", "buy")))
    assert data.edge_index["fav"].shape == (2, 0)
    assert data.edge_ts["view"].tolist() == [0] and data.edge_count["view"].tolist() == [2]
    h = data.hetero()
    assert h.validate()
    assert h["category"].num_nodes == 0 and h["item", "belongs_to", "category"].edge_index.shape == (2, 0)


def test_normalized_adjacency_by_hand() -> None:
    # 2 users, 3 items; pairs (0,0), (0,1), (1,1), given unsorted and with a duplicate;
    # degrees: u0 2, u1 1, i0 1, i1 2, i2 0 → node order u0 u1 i0 i1 i2
    pairs = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 1]])
    adj = normalized_adjacency(pairs, 2, 3)
    assert adj.layout == torch.sparse_csr and adj.dtype == torch.float32 and adj.shape == (5, 5)
    r2 = 1 / math.sqrt(2)
    expected = torch.tensor(
        [
            [0, 0, r2, 0.5, 0],
            [0, 0, 0, r2, 0],
            [r2, 0, 0, 0, 0],
            [0.5, r2, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    assert torch.allclose(adj.to_dense(), expected)
    assert adj.crow_indices().tolist() == [0, 2, 3, 4, 6, 6]
    # int32 index arrays (MKL's and cuSPARSE's own type: no conversion per product)
    assert adj.crow_indices().dtype == adj.col_indices().dtype == torch.int32


def test_norm_adj_cached_on_train_data() -> None:
    table = tiny_table()
    data = build_train_data(table, all_train(table), GraphConfig())
    a = data.norm_adj(("buy",))
    assert a is data.norm_adj(("buy",))
    assert a._nnz() == 2 * 6
    assert data.norm_adj()._nnz() == 2 * 10  # union over behaviours has 10 unique pairs


def test_union_pairs() -> None:
    a = torch.tensor([[1, 0], [2, 1]])
    b = torch.tensor([[0, 1, 2], [1, 2, 0]])
    assert edges(union_pairs([a, b], 3)) == [(0, 1), (1, 2), (2, 0)]
    assert union_pairs([], 3).shape == (2, 0)


def test_to_networkx() -> None:
    table = tiny_table()
    data = build_train_data(table, all_train(table), GraphConfig())
    g = to_networkx(data)
    assert isinstance(g, nx.MultiDiGraph)
    assert g.number_of_nodes() == 4 + 6 + 2
    assert g.number_of_edges() == 9 + 2 + 1 + 6 + 5
    assert g.nodes["item:5"] == {"type": "item", "index": 5}
    attrs = g.edges["user:2", "item:5", "view"]
    assert attrs == {"type": "view", "behavior": "view", "time": 320, "count": 2}
    assert g.has_edge("user:0", "item:0", "cart") and not g.has_edge("user:0", "item:0", "fav")
    assert g.has_edge("item:3", "category:1", "belongs_to") and not g.has_node("category:-1")
    with pytest.raises(GnnrecError, match="12 nodes, more than max_nodes=11"):
        to_networkx(data, max_nodes=11)


@PROPS
@given(table=random_tables(), mode=st.sampled_from(["random", "temporal", "leave_last_out"]))
def test_edges_are_exactly_the_train_pairs(table: InteractionTable, mode: str) -> None:
    split = make_split(table, SplitConfig(mode=mode, ratios=(0.5, 0.25, 0.25)), 0)
    data = build_train_data(table, split, GraphConfig())
    train = split.assign == TRAIN
    assert table.ts is not None
    for b in data.meta.behaviors:
        m = train & (table.behavior == table.behavior_index(b))
        expected = sorted(set(zip(table.user[m].tolist(), table.item[m].tolist())))
        assert edges(data.edge_index[b]) == expected
        assert int(data.edge_count[b].sum()) == int(m.sum())
        for (u, i), t in zip(expected, data.edge_ts[b].tolist()):
            assert t == table.ts[m & (table.user == u) & (table.item == i)].max()
    assert data.hetero().validate()
    # normalised adjacency: symmetric, and rows of connected nodes match D^-1/2 A D^-1/2
    dense = data.norm_adj().to_dense()
    assert torch.allclose(dense, dense.T)
    a = torch.zeros_like(dense)
    p = data.interaction_pairs()
    a[p[0], p[1] + table.num_users] = 1
    a = a + a.T
    d = a.sum(1)
    dinv = torch.where(d > 0, d.pow(-0.5), torch.zeros_like(d))
    assert torch.allclose(dense, dinv[:, None] * a * dinv[None, :])


@PROPS
@given(
    table=random_tables(),
    behaviors=st.sampled_from([None, ("view",), ("buy", "cart"), ("fav", "view", "buy", "cart")]),
    positives=st.sampled_from(["target", "all"]),
)
def test_pairs_positives_and_item_rows_match_naive(
    table: InteractionTable, behaviors: tuple[str, ...] | None, positives: str
) -> None:
    split = make_split(table, SplitConfig(mode="random", ratios=(0.5, 0.25, 0.25)), 0)
    data = build_train_data(table, split, GraphConfig(behaviors=behaviors), positives=positives)
    train = split.assign == TRAIN

    def pairs(m: np.ndarray) -> list[tuple[int, int]]:
        return sorted(set(zip(table.user[m].tolist(), table.item[m].tolist())))

    # the cached union over the edge types (seeded by build_train_data) is the naive union
    names = data.meta.behaviors
    in_names = np.isin(table.behavior, [table.behavior_index(b) for b in names])
    assert edges(data.interaction_pairs()) == pairs(train & in_names)
    pos_rows = train & (table.behavior == split.target) if positives == "target" else train
    assert edges(data.pos_index) == pairs(pos_rows)
    # both transposition paths of the adjacency give the same (item, user) order
    p = data.interaction_pairs()
    u, i = p[0], p[1]
    val = torch.rand(u.numel())
    ptr = torch.zeros(table.num_users + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.bincount(u, minlength=table.num_users), 0)
    c1, v1 = _item_rows(u, i, val, ptr, table.num_items, counting_sort=True)
    c2, v2 = _item_rows(u, i, val, ptr, table.num_items, counting_sort=False)
    assert c1.tolist() == c2.tolist() and torch.equal(v1, v2)


@given(table=random_tables(), mode=st.sampled_from(["random", "leave_last_out"]), lazy_first=st.booleans())
@settings(max_examples=40, deadline=None)
def test_events_are_the_train_events_in_user_time_order(table: InteractionTable, mode: str, lazy_first: bool) -> None:
    split = make_split(table, SplitConfig(mode=mode, target_behavior="buy"), seed=0)
    data = build_train_data(table, split, GraphConfig())
    if lazy_first:  # built lazily: moving the data first must not change it
        data = data.to("cpu")
    ev = data.events
    assert ev is not None and ev.dtype == torch.long
    train = split.assign == TRAIN
    u, i, b, t = table.user[train], table.item[train], table.behavior[train].astype(np.int64), table.ts[train]
    order = np.lexsort((i, b, t, u))  # the documented order: (user, ts, behaviour, item)
    want = np.stack([u[order], i[order], (b[order] == split.target).astype(np.int64), t[order]])
    np.testing.assert_array_equal(ev.numpy(), want)
    assert data.events is ev  # cached
