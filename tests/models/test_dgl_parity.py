"""PyG / DGL parity: the DGL backend computes the PyG encoders' embeddings (PyG is the truth).

Both graphs are built from one table and split (make_table → make_split → build_train_data):
PyG's through the models' own ``prepare`` / ``encode`` (cached torch sparse operators over
``TrainData``), DGL's through :func:`gnnrec.graph.build_dgl.build_dgl_graph` /
``build_dgl_norm_graph`` and DGL message passing (:mod:`gnnrec.models.encoders.dgl_models`).
A second model gets the first one's weights (``load_state_dict``); embeddings and the
gradients of a fixed random projection of them must agree to 1e-5.

Marker ``dgl``: runs in the DGL environment (``make test-dgl``), skips elsewhere with one
reason. ``GNNREC_REQUIRE_DGL=1`` makes a missing DGL an error instead of a skip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gnnrec.config import GraphConfig, ModelSpec, SplitConfig
from gnnrec.data.splits import make_split
from gnnrec.graph.build import build_hetero_data, build_train_data
from gnnrec.graph.data import TrainData
from gnnrec.models import build_model
from gnnrec.models.base import Recommender
from tests.helpers import make_table

DGL_REASON = "DGL backend not installed (needs torch<=2.2.1: bash scripts/dgl_env.sh; make test-dgl)"
if os.environ.get("GNNREC_REQUIRE_DGL") == "1":
    import dgl  # noqa: F401  (the DGL environment: a failed import must fail, not skip)
else:
    pytest.importorskip("dgl", reason=DGL_REASON)

from gnnrec.graph.build_dgl import build_dgl_graph
from gnnrec.models.encoders.dgl_models import (
    dgl_hetero_graph,
    dgl_norm_graph,
    lightgcn_encode_dgl,
    rgcn_encode_dgl,
)

pytestmark = pytest.mark.dgl
ATOL = 1e-5
ROOT = Path(__file__).resolve().parents[2]


def random_table(seed: int = 0, num_users: int = 25, num_items: int = 30, n: int = 300) -> Any:
    """Random multi-behaviour log: 4 categories, item 29 without a category, user 24 and
    item 28 without events (isolated nodes), no ``fav`` events (an empty edge type when
    listed in graph.behaviors)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, num_users - 1, n)
    items = rng.integers(0, num_items - 2, n)
    items[0] = num_items - 1  # the uncategorised item has an event
    beh = rng.choice(["view", "cart", "buy"], n, p=[0.6, 0.15, 0.25])
    ts = rng.integers(0, 10_000, n)
    cats = np.arange(num_items) % 4
    cats[-1] = -1
    return make_table(users, items, list(beh), ts, cats, num_users=num_users, num_items=num_items)


def train_data(seed: int = 0, mode: str = "random", table: Any = None, **graph: Any) -> TrainData:
    table = random_table(seed) if table is None else table
    split = make_split(table, SplitConfig(mode=mode), seed)
    return build_train_data(table, split, GraphConfig(**graph))


def pair(name: str, data: TrainData, **params: Any) -> tuple[Recommender, Recommender]:
    """A ``backend: pyg`` and a ``backend: dgl`` model, built with different seeds; the DGL
    one gets the PyG one's weights."""
    torch.manual_seed(0)
    ref = build_model(ModelSpec(name=name, params={**params, "backend": "pyg"}), data.meta)
    torch.manual_seed(1)
    other = build_model(ModelSpec(name=name, params={**params, "backend": "dgl"}), data.meta)
    assert not all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), other.state_dict().values()))
    other.load_state_dict(ref.state_dict())
    ref.prepare(data)
    other.prepare(data)
    return ref.eval(), other.eval()


def dgl_cache_keys(data: TrainData) -> set[Any]:
    return {k for k in data.cache if isinstance(k, tuple) and str(k[0]).startswith("dgl_")}


def check_parity(ref: Recommender, other: Recommender, data: TrainData) -> None:
    """``other.encode`` (DGL) equals ``ref.encode`` (PyG); so do the gradients of the same
    scalar with respect to every parameter."""
    before = dgl_cache_keys(data)
    emb_pyg = ref.encode(data)
    assert dgl_cache_keys(data) == before  # the PyG model did not touch DGL
    emb_dgl = other.encode(data)
    assert dgl_cache_keys(data), "backend: dgl did not dispatch to the DGL path"
    assert emb_pyg.keys() == emb_dgl.keys()
    gen = torch.Generator().manual_seed(123)
    proj = {k: torch.randn(v.shape, generator=gen) for k, v in emb_pyg.items()}
    for k in emb_pyg:
        assert emb_pyg[k].shape == emb_dgl[k].shape, k
        torch.testing.assert_close(emb_dgl[k], emb_pyg[k], atol=ATOL, rtol=0, msg=k)
    # not a trivial graph: propagation moved the embeddings away from the ego ones
    ego = emb_pyg["user_ego"] if "user_ego" in emb_pyg else ref.user_emb.weight
    assert not torch.allclose(emb_pyg["user"], ego)
    sum(((emb_pyg[k] * proj[k]).sum() for k in emb_pyg), torch.zeros(())).backward()
    sum(((emb_dgl[k] * proj[k]).sum() for k in emb_dgl), torch.zeros(())).backward()
    grads_ref = dict(ref.named_parameters())
    for name, p in other.named_parameters():
        g_ref = grads_ref[name].grad
        if g_ref is None:  # a parameter the function does not use
            assert p.grad is None or not p.grad.any(), name
            continue
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, g_ref, atol=ATOL, rtol=0, msg=name)


# --------------------------------------------------------------------------- graphs
def test_graph_counts_equal_hetero_data() -> None:
    data = train_data(behaviors=("view", "cart", "fav", "buy"))
    g = build_dgl_graph(data)
    h = build_hetero_data(data)
    assert {t: g.num_nodes(t) for t in g.ntypes} == {t: h[t].num_nodes for t in h.node_types} == {
        "user": 25,
        "item": 30,
        "category": 4,
    }
    assert sorted(g.canonical_etypes) == sorted(h.edge_types)
    assert {et: g.num_edges(et) for et in g.canonical_etypes} == {et: h[et].num_edges for et in h.edge_types}
    assert g.num_edges(("user", "fav", "item")) == 0 and g.num_edges(("item", "belongs_to", "category")) == 29


def test_graphs_are_cached_on_the_data() -> None:
    data = train_data()
    assert dgl_norm_graph(data, ("buy",)) is dgl_norm_graph(data, ("buy",))
    assert dgl_norm_graph(data) is not dgl_norm_graph(data, ("buy",))
    assert dgl_hetero_graph(data) is dgl_hetero_graph(data)


# --------------------------------------------------------------------------- LightGCN
@pytest.mark.parametrize(
    "params",
    [
        {"dim": 16, "num_layers": 3},
        {"dim": 8, "num_layers": 2, "behaviors": ["buy"]},
        {"dim": 8, "num_layers": 1, "behaviors": ["view", "cart"], "init": "xavier"},
    ],
)
def test_lightgcn_parity(params: dict[str, Any]) -> None:
    data = train_data()
    ref, other = pair("lightgcn", data, **params)
    check_parity(ref, other, data)


def test_lightgcn_parity_leave_last_out_and_zero_layers() -> None:
    data = train_data(mode="leave_last_out")
    ref, other = pair("lightgcn", data, dim=8, num_layers=4)
    check_parity(ref, other, data)
    ref0, other0 = pair("lightgcn", data, dim=8, num_layers=0)  # K = 0: matrix factorisation
    emb = other0.encode(data)
    torch.testing.assert_close(emb["user"], ref0.encode(data)["user"], atol=0, rtol=0)
    torch.testing.assert_close(lightgcn_encode_dgl(ref0, data)["item"], emb["item"], atol=0, rtol=0)


# --------------------------------------------------------------------------- R-GCN
@pytest.mark.parametrize(
    ("params", "graph"),
    [
        ({"dim": 16, "num_layers": 2}, {}),
        ({"dim": 8, "num_layers": 3, "num_bases": 2, "residual": False}, {}),
        ({"dim": 8, "num_layers": 2, "dropout": 0.5}, {"add_reverse": False}),  # eval: no dropout
        ({"dim": 8, "num_layers": 1}, {"behaviors": ("view", "fav", "buy")}),  # empty fav type
    ],
)
def test_rgcn_parity(params: dict[str, Any], graph: dict[str, Any]) -> None:
    data = train_data(**graph)
    ref, other = pair("rgcn", data, **params)
    check_parity(ref, other, data)


def test_rgcn_parity_without_categories() -> None:
    rng = np.random.default_rng(3)
    n = 120
    table = make_table(
        rng.integers(0, 10, n), rng.integers(0, 12, n), list(rng.choice(["view", "buy"], n)),
        rng.integers(0, 500, n), num_users=10, num_items=12,
    )  # fmt: skip
    data = train_data(seed=3, table=table)
    assert data.meta.num_categories == 0
    ref, other = pair("rgcn", data, dim=8, num_layers=2)
    check_parity(ref, other, data)


def test_rgcn_dgl_training_mode_dropout_is_seeded() -> None:
    data = train_data()
    ref, other = pair("rgcn", data, dim=8, num_layers=2, dropout=0.5)
    ref.train(), other.train()
    torch.manual_seed(7)
    a = ref.encode(data)["user"]
    torch.manual_seed(7)
    b = other.encode(data)["user"]
    torch.manual_seed(7)
    c = rgcn_encode_dgl(ref, data)["user"]  # the function itself, on the PyG model's weights
    torch.testing.assert_close(c, b, atol=0, rtol=0)
    # same RNG stream, same dropout masks (hidden layers are computed in the same type order)
    torch.testing.assert_close(b, a, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("name", ["lightgcn", "rgcn"])
def test_one_epoch_run_with_dgl_backend(name: str, tmp_path: Path) -> None:
    """``gnnrec run`` with ``model.params.backend=dgl`` trains and evaluates through DGL."""
    import json

    from gnnrec.config import load_config
    from gnnrec.runner import run

    cfg = load_config(
        ROOT / f"experiments/{name}-synthetic.yaml",
        [
            "device=cpu",  # the PyPI DGL wheel is CPU-only
            "data.synthetic.num_users=60",
            "data.synthetic.num_items=80",
            "data.synthetic.num_categories=5",
            "data.synthetic.events_per_user=12",
            "train.epochs=1",
            "train.batch_size=256",
            "model.params.dim=8",
            "model.params.backend=dgl",
        ],
    )
    result = run(cfg, tmp_path / "run", progress=False)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["epochs"] == 1
    assert 0.0 <= metrics["test"]["ndcg@20"] <= 1.0
