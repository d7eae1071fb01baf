"""Interest association outputs on a hand-made example with known scores.

Fixture: 2 users, 4 items; item categories ``[0, 0, 1, -1]`` (item 3 unknown, so ignored).
A fixed-score recommender returns

    S = [[1, 3, 0, 9],      user 0: mean over category 0 = (1 + 3) / 2 = 2, category 1 = 0
         [2, 2, 4, 0]]      user 1: category 0 = 2, category 1 = 4

so softmax weights are user 0: (e²/(e²+1), 1/(e²+1)), user 1: (1/(e²+1), e²/(e²+1)), and
sum-normalised weights user 0: (1, 0), user 1: (1/3, 2/3). (Item 3's score 9 would change
user 0's category-0 mean if it were not ignored.)

Training edges (view): u0-i0, u0-i2, u1-i1, u1-i3 (i3 unknown category). Users with items
in both categories: only u0, so co_users(0, 1) = 1. Item embeddings i0 = (1, 0), i1 = (1, 2),
i2 = (0, 3), i3 = (5, 5): centroids c0 = (1, 1), c1 = (0, 3); cosine = 3 / (sqrt2 * 3) = 1/sqrt2.
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import polars as pl
import pytest
import torch

from gnnrec.errors import ConfigError, GnnrecError
from gnnrec.eval.interest import category_association_graph, export_graph, user_category_interest
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, Recommender

S = torch.tensor([[1.0, 3.0, 0.0, 9.0], [2.0, 2.0, 4.0, 0.0]])
E2 = math.exp(2.0)


class FixedScores(Recommender):
    """``score_all`` returns rows of the fixed matrix :data:`S`."""

    def __init__(self, meta: GraphMeta) -> None:
        super().__init__(meta)

    def encode(self, data: TrainData) -> EmbDict:
        return {"user": torch.zeros(2, 1), "item": torch.zeros(4, 1)}

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        return S[user_index]


def make_data(categories: list[int] | None = None) -> TrainData:
    cats = torch.tensor(categories if categories is not None else [0, 0, 1, -1])
    meta = GraphMeta(2, 4, 2, ("view", "buy"), "buy")
    view = torch.tensor([[0, 0, 1, 1], [0, 2, 1, 3]])
    buy = torch.tensor([[0], [0]])
    ei = {"view": view, "buy": buy}
    return TrainData(
        meta=meta,
        edge_index=ei,
        edge_ts={b: torch.zeros(e.shape[1], dtype=torch.long) for b, e in ei.items()},
        edge_count={b: torch.ones(e.shape[1], dtype=torch.long) for b, e in ei.items()},
        pos_index=buy,
        item_category=cats,
    )


@pytest.fixture
def model() -> FixedScores:
    return FixedScores(make_data().meta)


def test_softmax_weights_exact(model: FixedScores) -> None:
    data = make_data()
    df = user_category_interest(model, model.encode(data), data)
    assert df.schema == {"user": pl.Int64, "category": pl.Int64, "weight": pl.Float64}
    assert df["user"].to_list() == [0, 0, 1, 1]
    assert df["category"].to_list() == [0, 1, 1, 0]  # heaviest first per user
    expected = [E2 / (E2 + 1), 1 / (E2 + 1), E2 / (E2 + 1), 1 / (E2 + 1)]
    assert df["weight"].to_list() == pytest.approx(expected, rel=1e-6)


def test_sum_normalised_weights_exact(model: FixedScores) -> None:
    data = make_data()
    df = user_category_interest(model, model.encode(data), data, normalize="sum")
    got = {(u, c): w for u, c, w in df.iter_rows()}
    assert got == pytest.approx({(0, 0): 1.0, (0, 1): 0.0, (1, 0): 1 / 3, (1, 1): 2 / 3})


def test_temperature_top_users_and_batches(model: FixedScores) -> None:
    data = make_data()
    emb = model.encode(data)
    # tau = 2: user 1 means (2, 4) / 2 = (1, 2) -> e / (e + 1) on category 1
    df = user_category_interest(model, emb, data, users=[1], top=1, temperature=2.0, batch_size=1)
    assert df.rows() == [(1, 1, pytest.approx(math.e / (math.e + 1)))]
    # batch size 1 gives the same frame as one batch
    a = user_category_interest(model, emb, data, batch_size=1)
    b = user_category_interest(model, emb, data, batch_size=64)
    assert a.equals(b)


def test_all_non_positive_means_give_uniform_sum_weights() -> None:
    data = make_data()

    class Negative(FixedScores):
        def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
            return -S[user_index] - 1

    m = Negative(data.meta)
    df = user_category_interest(m, m.encode(data), data, normalize="sum")
    assert df["weight"].to_list() == [0.5, 0.5, 0.5, 0.5]


def test_interest_errors(model: FixedScores) -> None:
    data = make_data()
    emb = model.encode(data)
    with pytest.raises(ConfigError, match="normalize"):
        user_category_interest(model, emb, data, normalize="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="top"):
        user_category_interest(model, emb, data, top=0)
    no_cat = make_data([-1, -1, -1, -1])
    with pytest.raises(GnnrecError, match="no item of this dataset has a known category"):
        user_category_interest(model, emb, no_cat)


def _emb() -> EmbDict:
    item = torch.tensor([[1.0, 0.0], [1.0, 2.0], [0.0, 3.0], [5.0, 5.0]])
    return {"user": torch.zeros(2, 2), "item": item}


def test_association_graph_exact() -> None:
    g = category_association_graph(_emb(), make_data(), top_k=5, min_weight=0.0, names=["shoes", "bags"])
    assert sorted(g.nodes) == [0, 1]
    assert g.nodes[0] == {"num_items": 2, "num_users": 2, "label": "shoes"}
    assert g.nodes[1] == {"num_items": 1, "num_users": 1, "label": "bags"}
    assert list(g.edges) == [(0, 1)]
    assert g.edges[0, 1]["weight"] == pytest.approx(1 / math.sqrt(2), rel=1e-6)
    assert g.edges[0, 1]["co_users"] == 1


def test_association_graph_min_weight_and_behaviors() -> None:
    # cosine 0.707 < 0.8: no edge; nodes stay
    g = category_association_graph(_emb(), make_data(), min_weight=0.8)
    assert g.number_of_edges() == 0 and g.number_of_nodes() == 2
    # counting buys only: u0 bought item 0 (category 0) only -> nobody co-interacts
    g = category_association_graph(_emb(), make_data(), behaviors=("buy",))
    assert g.edges[0, 1]["co_users"] == 0
    assert g.nodes[0]["num_users"] == 1 and g.nodes[1]["num_users"] == 0
    with pytest.raises(ConfigError, match="top_k"):
        category_association_graph(_emb(), make_data(), top_k=0)


def test_association_graph_top_k_on_three_categories() -> None:
    # items 0..2 in categories 0, 1, 2 with embeddings at angles 0, 10 and 90 degrees:
    # with top_k = 1, category 0 <-> 1 is the nearest pair; category 2's nearest is 1 (80 deg)
    a10 = math.radians(10)
    item = torch.tensor([[1.0, 0.0], [math.cos(a10), math.sin(a10)], [0.0, 1.0], [0.0, 0.0]])
    data = make_data([0, 1, 2, -1])
    g = category_association_graph({"user": torch.zeros(2, 2), "item": item}, data, top_k=1)
    assert sorted(g.edges) == [(0, 1), (1, 2)]
    assert g.edges[1, 2]["weight"] == pytest.approx(math.cos(math.radians(80)), rel=1e-5)


def test_export_graphml_and_csv(tmp_path: Path) -> None:
    g = category_association_graph(_emb(), make_data(), names=["shoes", "bags"])
    p = export_graph(g, tmp_path / "assoc.graphml")
    back = nx.read_graphml(p, node_type=int)
    assert back.edges[0, 1]["co_users"] == 1
    assert back.edges[0, 1]["weight"] == pytest.approx(1 / math.sqrt(2), rel=1e-6)
    assert back.nodes[1]["label"] == "bags"
    p = export_graph(g, tmp_path / "sub" / "assoc.csv")
    df = pl.read_csv(p)
    assert df.columns == ["source", "target", "co_users", "weight"]
    assert df.row(0)[:3] == (0, 1, 1)
    with pytest.raises(ConfigError, match="unsupported graph file type"):
        export_graph(g, tmp_path / "assoc.json")
