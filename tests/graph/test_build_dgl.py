"""Tests of gnnrec.graph.build_dgl: the DGL heterograph equals PyG's HeteroData.

Tests marked ``dgl`` need DGL, which only imports with torch <= 2.2.1: CI runs them in the
second environment (``scripts/dgl_env.sh``, ``make test-dgl``); in the main environment they
skip with one reason. ``GNNREC_REQUIRE_DGL=1`` (set by ``make test-dgl``) turns the skip into
an import failure, so the DGL run cannot pass by skipping everything.

Exact cases use ``tests.helpers.TINY_LOG`` (every row is listed there); with every event in
training its edges are those listed at the top of tests/graph/test_build.py.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import numpy as np
import pytest
import torch

from gnnrec.config import GraphConfig, SplitConfig
from gnnrec.data.splits import make_split
from gnnrec.data.types import InteractionTable, Split
from gnnrec.errors import GnnrecError
from gnnrec.graph import schema
from gnnrec.graph.build import build_hetero_data, build_train_data
from gnnrec.graph.build_dgl import build_dgl_graph, build_dgl_norm_graph, dgl_available, import_dgl
from gnnrec.graph.data import TrainData
from tests.helpers import make_table, tiny_table

DGL_REASON = "DGL backend not installed (needs torch<=2.2.1: bash scripts/dgl_env.sh; make test-dgl)"


@pytest.fixture
def dgl() -> ModuleType:
    if os.environ.get("GNNREC_REQUIRE_DGL") == "1":
        import dgl as mod  # the DGL environment: a failed import must fail, not skip

        return mod
    return pytest.importorskip("dgl", reason=DGL_REASON)


def all_train(table: InteractionTable) -> Split:
    return Split(assign=np.zeros(len(table), dtype=np.int8), target=table.behavior_index("buy"), mode="given")


def pairs(src: torch.Tensor, dst: torch.Tensor) -> list[tuple[int, int]]:
    return list(zip(src.tolist(), dst.tolist()))


# --------------------------------------------------------------------------- without DGL
def test_missing_dgl_is_a_gnnrec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dgl", None)  # `import dgl` now raises ImportError
    table = tiny_table()
    data = build_train_data(table, all_train(table), GraphConfig())
    for call in (lambda: build_dgl_graph(data), lambda: build_dgl_norm_graph(data), import_dgl):
        with pytest.raises(GnnrecError, match=r"backend: dgl needs the gnnrec\[dgl\] extra .*torch<=2.2.1"):
            call()
    assert not dgl_available()


@pytest.mark.parametrize("name", ["lightgcn", "rgcn"])
def test_backend_dgl_without_dgl_fails_when_the_model_is_built(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gnnrec.config import ModelSpec
    from gnnrec.models import build_model

    monkeypatch.setitem(sys.modules, "dgl", None)
    table = tiny_table()
    data = build_train_data(table, all_train(table), GraphConfig())
    build_model(ModelSpec(name=name, params={"dim": 4}), data.meta)  # pyg: no DGL needed
    with pytest.raises(GnnrecError, match=r"backend: dgl needs the gnnrec\[dgl\] extra"):
        build_model(ModelSpec(name=name, params={"dim": 4, "backend": "dgl"}), data.meta)


def test_broken_dgl_install_is_a_gnnrec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """DGL 2.1 with torch > 2.2.1 fails on import with FileNotFoundError (graphbolt)."""

    class _Finder:
        def find_spec(self, name: str, *args: object) -> None:
            if name == "dgl":  # other modules: None = "not mine", the next finder looks
                raise FileNotFoundError("Cannot find DGL C graphbolt library at libgraphbolt_pytorch_2.13.0.so")

    monkeypatch.delitem(sys.modules, "dgl", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Finder(), *sys.meta_path])
    with pytest.raises(GnnrecError, match="FileNotFoundError.*graphbolt"):
        import_dgl()


# --------------------------------------------------------------------------- with DGL
@pytest.mark.dgl
def test_tiny_graph_exact(dgl: ModuleType) -> None:
    table = tiny_table()
    data = build_train_data(table, all_train(table), GraphConfig())
    g = build_dgl_graph(data)
    assert isinstance(g, dgl.DGLHeteroGraph) and g.idtype == torch.int64
    assert {t: g.num_nodes(t) for t in g.ntypes} == {"user": 4, "item": 6, "category": 2}
    assert set(g.canonical_etypes) == {
        ("user", "view", "item"),
        ("item", "rev_view", "user"),
        ("user", "cart", "item"),
        ("item", "rev_cart", "user"),
        ("user", "fav", "item"),
        ("item", "rev_fav", "user"),
        ("user", "buy", "item"),
        ("item", "rev_buy", "user"),
        ("item", "belongs_to", "category"),
        ("category", "rev_belongs_to", "item"),
    }
    buy = ("user", "buy", "item")
    assert pairs(*g.edges(etype=buy)) == [(0, 0), (0, 1), (0, 3), (1, 2), (1, 4), (3, 3)]
    assert g.edges[buy].data["time"].tolist() == [120, 140, 160, 200, 220, 70]
    assert g.edges[buy].data["count"].tolist() == [1, 1, 1, 1, 1, 2]
    rev_view = ("item", "rev_view", "user")
    assert pairs(*g.edges(etype=rev_view)) == [(0, 0), (1, 0), (3, 0), (1, 1), (2, 1), (3, 1), (4, 1), (0, 2), (5, 2)]
    assert g.edges[rev_view].data["count"].tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 2]
    # item 5 has no category: 5 belongs_to edges
    assert pairs(*g.edges(etype=schema.ITEM_CATEGORY)) == [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1)]
    assert pairs(*g.edges(etype=schema.CATEGORY_ITEM)) == [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4)]
    assert g.in_degrees(etype=("user", "fav", "item")).tolist() == [0, 1, 0, 0, 0, 0]


def assert_same_graph(g: object, h: object) -> None:
    """DGL graph ``g`` equals PyG HeteroData ``h``: node counts, edge types, edges in order,
    edge features."""
    assert {t: g.num_nodes(t) for t in g.ntypes} == {t: h[t].num_nodes for t in h.node_types}
    assert sorted(g.canonical_etypes) == sorted(h.edge_types)
    for et in h.edge_types:
        src, dst = g.edges(etype=et, order="eid")
        assert g.num_edges(et) == h[et].num_edges
        assert torch.equal(torch.stack([src, dst]), h[et].edge_index), et
        for key in ("time", "count"):
            if key in h[et]:
                assert torch.equal(g.edges[et].data[key], h[et][key]), (et, key)
            else:
                assert key not in g.edges[et].data, (et, key)


@pytest.mark.dgl
@pytest.mark.parametrize("add_reverse", [True, False])
@pytest.mark.parametrize("mode", ["leave_last_out", "random"])
def test_same_graph_as_hetero_data(dgl: ModuleType, mode: str, add_reverse: bool) -> None:
    table = tiny_table()
    split = make_split(table, SplitConfig(mode=mode), 0)
    data = build_train_data(table, split, GraphConfig(add_reverse=add_reverse))
    g = build_dgl_graph(data)
    h = build_hetero_data(data)
    assert_same_graph(g, h)
    rev_types = [et for et in g.canonical_etypes if et[1].startswith("rev_")]
    assert bool(rev_types) == add_reverse


@pytest.mark.dgl
def test_same_graph_edge_cases(dgl: ModuleType) -> None:
    # no categories at all, a listed behaviour without training events (empty edge type),
    # a user and an item without any event
    table = make_table([0, 0, 1], [0, 1, 1], ["view", "buy", "view"], [1, 2, 3], num_users=3, num_items=3)
    data = build_train_data(table, all_train(table), GraphConfig(behaviors=("view", "cart", "buy")))
    g = build_dgl_graph(data)
    assert_same_graph(g, build_hetero_data(data))
    assert g.num_nodes("category") == 0 and g.num_edges(("user", "cart", "item")) == 0
    assert g.num_nodes("user") == 3 and g.num_nodes("item") == 3


@pytest.mark.dgl
def test_norm_graph_equals_norm_adj(dgl: ModuleType) -> None:
    table = tiny_table()
    data = build_train_data(table, make_split(table, SplitConfig(mode="leave_last_out"), 0), GraphConfig())
    for behaviors in (None, ("buy",), ("view", "cart")):
        g = build_dgl_norm_graph(data, behaviors)
        assert g.num_nodes() == data.meta.num_users + data.meta.num_items
        dense = torch.zeros(g.num_nodes(), g.num_nodes())
        src, dst = g.edges()
        dense[dst, src] = g.edata["w"]
        assert torch.allclose(dense, data.norm_adj(behaviors).to_dense(), atol=1e-7, rtol=0)


@pytest.mark.dgl
def test_add_reverse_override_and_training_data_only(dgl: ModuleType) -> None:
    table = tiny_table()
    split = make_split(table, SplitConfig(mode="leave_last_out"), 0)
    data: TrainData = build_train_data(table, split, GraphConfig())
    g = build_dgl_graph(data, add_reverse=False)
    assert all(not et[1].startswith("rev_") for et in g.canonical_etypes)
    # held out buys (0,1) (0,3) (1,4) and the last (3,3) are not edges; only TRAIN rows are
    assert pairs(*g.edges(etype=("user", "buy", "item"))) == [(0, 0), (1, 2), (3, 3)]
    assert g.edges[("user", "buy", "item")].data["time"].tolist() == [120, 200, 60]
