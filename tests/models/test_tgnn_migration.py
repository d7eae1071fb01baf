"""tgnn_migration: recency decay on hand-built graphs, recent-item tables, readout, CLI smoke run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrec.config import GraphConfig, ModelSpec, SplitConfig
from gnnrec.data.splits import make_split
from gnnrec.errors import ConfigError
from gnnrec.graph.build import build_train_data
from gnnrec.graph.data import TrainData
from gnnrec.models import build_model
from gnnrec.models.encoders.tgnn_migration import (
    TGNNMigration,
    decay_weights,
    recent_table,
)
from tests.helpers import make_table

H = 3600  # seconds per hour


def _data(
    rows: list[tuple[int, int, str, int]], cats: tuple[int, ...], **kw: object
) -> TrainData:
    """TrainData of ``rows`` (user, item, behaviour, ts) with everything in TRAIN."""
    u, i, b, t = (list(c) for c in zip(*rows))
    table = make_table(
        u, i, b, t, categories_per_item=cats, given=["train"] * len(rows), **kw
    )  # type: ignore[arg-type]
    split = make_split(
        table,
        SplitConfig(mode="given", target_behavior="buy", valid_from_train=False),
        seed=0,
    )
    return build_train_data(table, split, GraphConfig(), "all")


def _model(data: TrainData, seed: int = 0, **params: object) -> TGNNMigration:
    torch.manual_seed(seed)
    model = build_model(ModelSpec(name="tgnn_migration", params=params), data.meta)
    assert isinstance(model, TGNNMigration)
    model.prepare(data)
    return model


def _dense_adj(model: TGNNMigration) -> torch.Tensor:
    g = model._graph
    assert g is not None
    n = g["crow"].shape[0] - 1
    adj = torch.sparse_csr_tensor(
        g["crow"],
        g["col"],
        model.adjacency_values().detach(),
        size=(n, n),
        check_invariants=False,
    )
    return adj.to_dense()


# one user, two items viewed 10 h apart (item 0 old, item 1 recent); a buy so the target exists
TWO_EDGES = [(0, 0, "view", 0), (0, 1, "view", 10 * H), (0, 1, "buy", 10 * H)]


def test_decay_weights_exact_values() -> None:
    dt = torch.tensor([0.0, 10.0, 20.0])
    got = decay_weights(dt, torch.tensor(10.0), 0.0)
    torch.testing.assert_close(got, torch.tensor([1.0, math.exp(-1), math.exp(-2)]))
    got = decay_weights(dt, torch.tensor(10.0), 0.2)
    torch.testing.assert_close(
        got, torch.tensor([1.0, 0.2 + 0.8 * math.exp(-1), 0.2 + 0.8 * math.exp(-2)])
    )


def test_recent_edge_outweighs_old_edge_fixed_decay() -> None:
    data = _data(TWO_EDGES, (0, 0), num_categories=1)
    model = _model(
        data, decay="fixed", tau_hours=10.0, weight_floor=0.0, category_edges=False
    )
    # edge order: behaviours in graph order (view, buy), edges sorted by (user, item)
    w = model.edge_weights()
    torch.testing.assert_close(w, torch.tensor([math.exp(-1), 1.0, 1.0]))
    a = _dense_adj(model)  # nodes: user 0, item 0, item 1
    e = math.exp(-1)
    deg_u, deg_i0, deg_i1 = e + 2.0, e, 2.0  # item 1's pair weight: view 1 + buy 1
    expect = torch.zeros(3, 3)
    expect[0, 1] = expect[1, 0] = e / math.sqrt(deg_u * deg_i0)
    expect[0, 2] = expect[2, 0] = 2.0 / math.sqrt(deg_u * deg_i1)
    torch.testing.assert_close(a, expect)
    assert a[0, 2] > a[0, 1]  # the recent item is the stronger neighbour


def test_decay_none_is_unweighted_and_category_edges_join() -> None:
    data = _data(TWO_EDGES, (0, 0), num_categories=1)
    model = _model(
        data, decay="none", weight_floor=0.0, category_edges=True, category_weight=1.0
    )
    a = _dense_adj(model)  # nodes: user 0, items 0-1, category 0
    assert a.shape == (4, 4)
    torch.testing.assert_close(a, a.T)
    # degrees: user 1 + 2 = 3, item 0: 1 + 1 (category) = 2, item 1: 2 + 1 = 3, category: 2
    torch.testing.assert_close(a[1, 3], torch.tensor(1.0 / math.sqrt(2 * 2)))
    torch.testing.assert_close(a[0, 2], torch.tensor(2.0 / math.sqrt(3 * 3)))


def test_per_user_clock() -> None:
    # user 1 is active a day later: their own latest edge still has weight 1
    rows = [
        (0, 0, "buy", 0),
        (0, 1, "view", 5 * H),
        (1, 1, "buy", 24 * H),
        (1, 0, "view", 30 * H),
    ]
    data = _data(rows, (0, 0), num_categories=1)
    model = _model(
        data, decay="fixed", tau_hours=5.0, weight_floor=0.0, category_edges=False
    )
    g = model._graph
    assert g is not None
    assert g["clock"].tolist() == [5 * H, 30 * H]
    # edges (view: (0,1) 5h, (1,0) 30h; buy: (0,0) 0h, (1,1) 24h)
    torch.testing.assert_close(
        model.edge_weights(), torch.tensor([1.0, 1.0, math.exp(-1), math.exp(-6 / 5)])
    )


def test_learned_decay_gets_a_gradient_and_fixed_has_none() -> None:
    data = _data(TWO_EDGES, (0, 0), num_categories=1)
    learned = _model(data, decay="learned", tau_hours=10.0)
    emb = learned.encode(data)
    (emb["user"] @ emb["item"].T).sum().backward()
    assert learned.log_tau.grad is not None and learned.log_tau.grad[0].abs() > 0
    fixed = _model(data, decay="fixed")
    assert "log_tau" not in dict(fixed.named_parameters())


def test_tau_per_behaviour_and_bad_keys() -> None:
    data = _data(TWO_EDGES, (0, 0), num_categories=1)
    model = _model(data, decay="fixed", tau_hours={"view": 2.0, "buy": 8.0})
    torch.testing.assert_close(model.tau_hours(), torch.tensor([2.0, 8.0]))
    with pytest.raises(ConfigError, match="tau_hours: behaviour 'cart'"):
        _model(data, tau_hours={"view": 2.0, "buy": 8.0, "cart": 1.0})
    with pytest.raises(ConfigError, match="no value for behaviour 'buy'"):
        _model(data, tau_hours={"view": 2.0})


def test_recent_table_latest_distinct_items_first() -> None:
    # user 0: item 5 twice (latest at ts 9, behaviour 3), items 1, 2, 3; user 2: one item
    user = np.array([0, 0, 0, 0, 0, 2])
    item = np.array([5, 1, 5, 2, 3, 7])
    beh = np.array([0, 0, 3, 0, 0, 1])
    ts = np.array([1, 4, 9, 4, 2, 5])
    it, bh, t, m = recent_table(user, item, beh, ts, np.array([0, 1, 2]), 3)
    assert it.tolist() == [
        [5, 1, 2],
        [0, 0, 0],
        [7, 0, 0],
    ]  # ts tie 4: lower item first
    assert bh.tolist() == [[3, 0, 0], [0, 0, 0], [1, 0, 0]]
    assert t.tolist() == [[9, 4, 4], [0, 0, 0], [5, 0, 0]]
    assert m.tolist() == [
        [True, True, True],
        [False, False, False],
        [True, False, False],
    ]


def test_shapes_cold_user_and_readout_none() -> None:
    rows = [(0, 0, "view", 0), (0, 1, "buy", H), (1, 2, "buy", 2 * H)]
    data = _data(rows, (0, 1, 1), num_users=3, num_categories=2)  # user 2: no events
    model = _model(data)
    model.eval()
    with torch.no_grad():
        emb = model.encode(data)
        h_user, _, _ = model.propagate()
    assert emb["user"].shape == (3, 64) and emb["item"].shape == (3, 64)
    assert torch.isfinite(emb["user"]).all()
    torch.testing.assert_close(emb["user"][2], h_user[2])  # no recent items: z_u = h_u
    assert not torch.allclose(emb["user"][0], h_user[0])
    plain = _model(data, readout="none")
    with torch.no_grad():
        h_user, _, _ = plain.propagate()
        torch.testing.assert_close(plain.encode(data)["user"], h_user)


def test_decay_none_without_categories_and_readout_is_lightgcn() -> None:
    # on a one-behaviour graph the pair weights are all 1, so the propagation is LightGCN's
    rows = [
        (0, 0, "buy", 0),
        (0, 1, "buy", H),
        (1, 1, "buy", 2 * H),
        (1, 2, "buy", 3 * H),
        (2, 0, "buy", H),
    ]
    data = _data(rows, (0, 0, 1), num_categories=2)
    ours = _model(
        data, seed=5, decay="none", category_edges=False, readout="none", num_layers=3
    )
    torch.manual_seed(5)
    lgn = build_model(ModelSpec(name="lightgcn", params={"num_layers": 3}), data.meta)
    lgn.prepare(data)
    with torch.no_grad():
        a, b = ours.encode(data), lgn.encode(data)
    torch.testing.assert_close(a["user"], b["user"])
    torch.testing.assert_close(a["item"], b["item"])


def test_one_epoch_cli_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gnnrec.cli import main

    cfg = (
        Path(__file__).resolve().parents[2]
        / "experiments"
        / "tgnn_migration-synthetic.yaml"
    )
    out = tmp_path / "run"
    sets = [
        "data.synthetic.num_users=60",
        "data.synthetic.num_items=80",
        "data.synthetic.num_categories=5",
        "data.synthetic.events_per_user=15",
        "train.epochs=1",
        "device=cpu",
    ]
    args = ["run", str(cfg), "--out", str(out), "-q"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0, capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "tgnn_migration" and metrics["epochs"] == 1
    assert 0.0 <= metrics["test"]["ndcg@20"] <= 1.0


def test_shared_migration_case_recent_category_outweighs_old() -> None:
    """The shared ``migration`` log case: user 1 moves from category 100 (ts 1000-1020) to
    category 200 (ts 2000-2030); their category-200 edges weigh more and lead the recent list."""
    from gnnrec.data.types import TRAIN, Split
    from tests.conftest import case_table

    table = case_table("migration")
    split = Split(
        assign=np.full(len(table), TRAIN, dtype=np.int8),
        target=table.behavior_index("buy"),
        mode="given",
        info={},
    )
    data = build_train_data(table, split, GraphConfig(), "all")
    model = _model(data, decay="fixed", tau_hours=0.1, weight_floor=0.0)  # tau = 360 s
    g = model._graph
    assert g is not None
    user = int(np.flatnonzero(table.user_ids == "1")[0])
    cat = data.item_category
    new_cat = int(np.flatnonzero(table.category_ids == "200")[0])
    items = g["rec_item"][user][g["rec_mask"][user]]
    assert [int(cat[i]) for i in items[:3]] == [
        new_cat
    ] * 3  # the three 200-items first
    assert int(g["clock"][user]) == 2030
    edges = torch.cat([data.edge_index[b] for b in data.meta.behaviors], 1)
    w = model.edge_weights()
    mine = edges[0] == user
    new = mine & (cat[edges[1]] == new_cat)
    old = mine & (cat[edges[1]] != new_cat)
    assert float(w[new].min()) > float(w[old].max())
    torch.testing.assert_close(
        w[old].max(), torch.tensor(math.exp(-(2030 - 1020) / 360))
    )
