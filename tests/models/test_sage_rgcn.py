"""GraphSAGE and R-GCN encoders: contract, PyG parity, leakage, inductiveness, smoke runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.nn import SAGEConv

from gnnrec.config import GraphConfig, ModelSpec, SplitConfig, TrainConfig, load_config
from gnnrec.data.splits import make_split
from gnnrec.data.types import TEST, TRAIN
from gnnrec.graph.build import build_train_data
from gnnrec.graph.data import TrainData
from gnnrec.models import MODELS, PairBatch, build_model
from gnnrec.models.encoders import rgcn as rgcn_mod  # noqa: F401  (registers "rgcn")
from gnnrec.models.encoders import sage as sage_mod  # noqa: F401  (registers "graphsage")
from gnnrec.models.encoders.rgcn import TypedRGCNConv, plan_relations, relation_types
from gnnrec.models.encoders.sage import FastSAGEConv, RelationAdjacency
from gnnrec.train.trainer import Trainer
from tests.helpers import make_table

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"graphsage": {"dim": 8}, "rgcn": {"dim": 8}}
NAMES = sorted(SMALL)


def random_table(seed: int = 0, num_users: int = 12, num_items: int = 15, n: int = 150):
    """A random multi-behaviour log with 3 categories (item 14: unknown category)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, num_users, n)
    items = rng.integers(0, num_items, n)
    beh = rng.choice(["view", "cart", "fav", "buy"], n, p=[0.5, 0.15, 0.1, 0.25])
    ts = rng.integers(0, 1000, n)
    cats = np.arange(num_items) % 3
    cats[-1] = -1
    return make_table(users, items, list(beh), ts, cats, num_users=num_users, num_items=num_items)


def train_data(seed: int = 0, mode: str = "random", **graph: object) -> tuple[TrainData, object]:
    table = random_table(seed)
    split = make_split(table, SplitConfig(mode=mode), seed)
    return build_train_data(table, split, GraphConfig(**graph), "all"), (table, split)


def build(name: str, data: TrainData, seed: int = 0, **params: object):
    torch.manual_seed(seed)
    model = build_model(ModelSpec(name=name, params={**SMALL[name], **params}), data.meta)
    model.prepare(data)
    return model


@pytest.fixture(scope="module")
def data() -> TrainData:
    return train_data()[0]


# --------------------------------------------------------------------------- contract
def test_registered_with_description() -> None:
    for name in NAMES:
        assert name in MODELS.names() and MODELS.meta(name)["description"]


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_score_all(name: str, data: TrainData) -> None:
    model = build(name, data).eval()
    with torch.no_grad():
        emb = model.encode(data)
    m = data.meta
    assert emb["user"].shape == (m.num_users, 8) and emb["item"].shape == (
        m.num_items,
        8,
    )
    assert torch.isfinite(emb["user"]).all() and torch.isfinite(emb["item"]).all()
    users = torch.tensor([0, 3, 7])
    full = model.score_all(emb, users)
    pair = model.score(emb, users.repeat_interleave(m.num_items), torch.arange(m.num_items).repeat(3))
    torch.testing.assert_close(pair.view(3, -1), full)
    assert full.std() > 0


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_seed_dependent(name: str, data: TrainData) -> None:
    with torch.no_grad():
        a = build(name, data, 0).eval().encode(data)
        b = build(name, data, 0).eval().encode(data)
        c = build(name, data, 1).eval().encode(data)
    assert torch.equal(a["item"], b["item"]) and torch.equal(a["user"], b["user"])
    assert not torch.allclose(a["item"], c["item"])


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_every_parameter(name: str, data: TrainData) -> None:
    model = build(name, data, reg=0.1).train()
    batch = PairBatch(torch.tensor([0, 2, 5]), torch.tensor([1, 3, 4]), torch.tensor([[5], [0], [14]]))
    # BCE: under BPR the last layer's item-side bias cancels in s(u, i+) - s(u, i-)
    model.loss(model.encode(data), batch, "bce").backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_invariant_to_edge_order(name: str, data: TrainData) -> None:
    g = torch.Generator().manual_seed(3)
    perms = {b: torch.randperm(e.shape[1], generator=g) for b, e in data.edge_index.items()}
    shuffled = TrainData(
        meta=data.meta,
        edge_index={b: e[:, perms[b]] for b, e in data.edge_index.items()},
        edge_ts={b: t[perms[b]] for b, t in data.edge_ts.items()},
        edge_count={b: c[perms[b]] for b, c in data.edge_count.items()},
        pos_index=data.pos_index.flip(1),
        item_category=data.item_category,
    )
    with torch.no_grad():
        a = build(name, data).eval().encode(data)
        b = build(name, shuffled).eval().encode(shuffled)
    torch.testing.assert_close(a["item"], b["item"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a["user"], b["user"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_structure_is_built_once(name: str, data: TrainData) -> None:
    model = build(name, data)
    cache = model._cache
    model.encode(data)
    model.encode(data)
    assert model._cache is cache  # not re-derived per step


# --------------------------------------------------------------------------- PyG parity
def test_relation_adjacency_mean_and_gradient() -> None:
    # dst 0 <- src {0, 1}; dst 1 <- src {1}; dst 2: none
    adj = RelationAdjacency(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), num_src=2, num_dst=3)
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]], requires_grad=True)
    out = adj.propagate(x)
    torch.testing.assert_close(out, torch.tensor([[2.0, 4.0], [3.0, 6.0], [0.0, 0.0]]))
    out.sum().backward()
    # d/dx0 = 1/2 (dst 0); d/dx1 = 1/2 + 1 (dst 0 and dst 1)
    torch.testing.assert_close(x.grad, torch.tensor([[0.5, 0.5], [1.5, 1.5]]))
    empty = RelationAdjacency(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 2, 3)
    assert torch.equal(empty.propagate(x), torch.zeros(3, 2))


def test_relation_adjacency_stacking_keeps_per_block_means() -> None:
    a = RelationAdjacency(torch.tensor([0, 1]), torch.tensor([0, 0]), num_src=2, num_dst=2)  # dst 0 <- {0, 1}
    b = RelationAdjacency(torch.tensor([0]), torch.tensor([0]), num_src=1, num_dst=2)  # dst 0 <- {0}
    xa, xb = torch.tensor([[1.0], [3.0]]), torch.tensor([[10.0]])
    h = RelationAdjacency.hstack([a, b])  # mean over a plus mean over b, not a mean over 3
    assert (h.num_src, h.num_dst) == (3, 2)
    torch.testing.assert_close(h.propagate(torch.cat([xa, xb])), torch.tensor([[2.0 + 10.0], [0.0]]))
    c = RelationAdjacency(torch.tensor([1]), torch.tensor([1]), num_src=2, num_dst=2)  # dst 1 <- {1}
    v = RelationAdjacency.vstack([a, c])
    assert (v.num_src, v.num_dst) == (2, 4)
    torch.testing.assert_close(v.propagate(xa), torch.tensor([[2.0], [0.0], [0.0], [3.0]]))
    with pytest.raises(ValueError, match="same number of destinations"):
        RelationAdjacency.hstack([a, RelationAdjacency(torch.tensor([0]), torch.tensor([0]), 1, 3)])


@pytest.mark.parametrize("num_src,num_dst", [(5, 4), (5, 7)])  # mean-then-W and W-then-mean
def test_fast_sage_conv_equals_pyg_sage_conv(num_src: int, num_dst: int) -> None:
    torch.manual_seed(0)
    src = torch.tensor([0, 1, 2, 2, 4, 3])
    dst = torch.tensor([0, 0, 1, 2, 2, 2])
    xs, xd = torch.randn(num_src, 4, requires_grad=True), torch.randn(num_dst, 4)
    conv = FastSAGEConv(4, 3)
    fast = conv((xs, xd), RelationAdjacency(src, dst, num_src, num_dst))
    (g_fast,) = torch.autograd.grad(fast.square().sum(), xs)
    ref = SAGEConv.forward(conv, (xs, xd), torch.stack([src, dst]), size=(num_src, num_dst))
    (g_ref,) = torch.autograd.grad(ref.square().sum(), xs)
    torch.testing.assert_close(fast, ref)
    torch.testing.assert_close(g_fast, g_ref)
    torch.testing.assert_close(fast[3], conv.lin_l.bias + conv.lin_r(xd[3]))  # no neighbours: root + bias


@pytest.mark.parametrize("params", [{}, {"num_layers": 3}, {"normalize": True}])
def test_graphsage_equals_hetero_conv_on_edge_lists(params: dict, data: TrainData) -> None:
    """The fused layers compute PyG's HeteroConv(SAGEConv) sum on plain edge lists."""
    model = build("graphsage", data, **params).eval()
    model.convs[0].convs[("item", "rev_interacts", "user")].lin_l.bias.data.normal_()
    emb = model.encode(data)
    x = model.inputs(data)
    edges = model.propagation_edges(data)
    for layer, conv in enumerate(model.convs):
        x = conv(x, {et: ei for et, ei in edges.items()})  # Tensor edge_index: PyG's SAGEConv path
        if layer < len(model.convs) - 1:
            x = {k: v.relu() for k, v in x.items()}
    torch.testing.assert_close(emb["item"], x["item"])
    torch.testing.assert_close(emb["user"], x["user"])


@pytest.mark.parametrize("num_bases", [None, 2])
def test_typed_rgcn_conv_equals_pyg_rgcn_conv(num_bases: int | None) -> None:
    torch.manual_seed(0)
    sizes = {"user": 3, "item": 4, "category": 2}
    rels = [
        ("user", "view", "item", [0, 0, 1, 2], [0, 1, 1, 3]),
        ("item", "rev_view", "user", [0, 1, 1, 3], [0, 0, 1, 2]),
        ("user", "buy", "item", [1, 2], [1, 2]),
        ("item", "belongs_to", "category", [0, 1, 2, 3], [0, 0, 1, 1]),
        ("category", "rev_belongs_to", "item", [0, 0, 1, 1], [0, 1, 2, 3]),
        ("user", "cart", "item", [], []),  # a behaviour without training edges
        ("item", "rev_buy", "user", [1, 2], [1, 2]),
    ]
    conv = TypedRGCNConv(5, 5, num_relations=len(rels), num_bases=num_bases, aggr="mean")
    with torch.no_grad():
        conv.bias.normal_()  # zero by default: make it count
    x = {t: torch.randn(n, 5) for t, n in sizes.items()}
    typed = [(r, (s, rel, d), RelationAdjacency(torch.tensor(a, dtype=torch.long), torch.tensor(b, dtype=torch.long),
                                                sizes[s], sizes[d]))
             for r, (s, rel, d, a, b) in enumerate(rels)]  # fmt: skip
    plans = {p.dst: p for p in plan_relations(typed)}
    # both fused forms are exercised: users/categories (3, 2 nodes) -> items (4) transform
    # first, items -> users (two relations) and items -> categories aggregate first
    assert [r for r, _ in plans["item"].transform_first] == [0, 2, 4]
    assert [rs for _, rs, _ in plans["user"].aggregate_first] == [[1, 6]]
    x = {t: v.requires_grad_() for t, v in x.items()}
    out = conv(x, list(plans.values()))
    grads = torch.autograd.grad(sum(v.square().sum() for v in out.values()), [x[t] for t in sizes])
    offset = {"user": 0, "item": 3, "category": 7}
    ei = torch.cat([torch.stack([torch.tensor(a, dtype=torch.long) + offset[s], torch.tensor(b, dtype=torch.long) + offset[d]])
                    for s, _, d, a, b in rels], dim=1)  # fmt: skip
    et = torch.cat([torch.full((len(a),), r) for r, (_, _, _, a, _) in enumerate(rels)])
    ref = conv(torch.cat([x["user"], x["item"], x["category"]]), ei, et)
    torch.testing.assert_close(torch.cat([out["user"], out["item"], out["category"]]), ref)
    g_ref = torch.autograd.grad(ref.square().sum(), [x[t] for t in sizes])
    for g_fast, g_pyg in zip(grads, g_ref):
        torch.testing.assert_close(g_fast, g_pyg)


# --------------------------------------------------------------------------- leakage
@pytest.mark.parametrize("name", NAMES)
def test_held_out_pairs_never_propagate(name: str) -> None:
    data, (table, split) = train_data(seed=1)
    assert (split.assign == TEST).sum() > 0
    ni = table.num_items
    test_keys = set((table.user[split.test_idx] * ni + table.item[split.test_idx]).tolist())
    train_keys = set((table.user[split.train_idx] * ni + table.item[split.train_idx]).tolist())
    assert test_keys and not (test_keys & train_keys)  # random split: held-out pairs only there
    model = build(name, data)
    prop: set[int] = set()
    for (s, _, d), ei in model.propagation_edges(data).items():
        if (s, d) == ("user", "item"):
            prop |= set((ei[0] * ni + ei[1]).tolist())
        elif (s, d) == ("item", "user"):
            prop |= set((ei[1] * ni + ei[0]).tolist())
    assert not (prop & test_keys)
    assert prop == train_keys  # exactly the training pairs (all behaviours) carry messages


# --------------------------------------------------------------------------- R-GCN specifics
def test_rgcn_relations_follow_behaviour_vocabulary() -> None:
    u, i, b = (
        [0, 0, 1, 2, 2],
        [0, 1, 1, 2, 0],
        ["click", "like", "click", "order", "order"],
    )
    table = make_table(u, i, b, [1, 2, 3, 4, 5], [0, 1, 1], behaviors_vocab=("click", "like", "order"),
                       target="order")  # fmt: skip
    split = make_split(table, SplitConfig(mode="random"), 0)
    data = build_train_data(table, split, GraphConfig(), "all")
    model = build("rgcn", data, num_bases=2)
    assert model.relations == relation_types(data.meta)
    assert set(model.relations) == set(data.hetero().edge_types)  # same edge types as HeteroData
    assert model.convs[0].weight.shape == (2, 8, 8) and model.convs[0].comp.shape == (
        len(model.relations),
        2,
    )
    no_rev = build_train_data(table, split, GraphConfig(add_reverse=False), "all")
    assert len(build("rgcn", no_rev).relations) == len(model.relations) // 2
    with torch.no_grad():
        assert torch.isfinite(model.encode(data)["item"]).all()


def test_rgcn_behaviour_types_matter(data: TrainData) -> None:
    """Moving a training edge from one behaviour to another changes R-GCN's embeddings
    (typed weights) but not GraphSAGE's (union of behaviours)."""
    ei = dict(data.edge_index)
    key = set((ei["view"][0] * 100 + ei["view"][1]).tolist())
    extra = next(k for k in (ei["buy"][0] * 100 + ei["buy"][1]).tolist() if k in key)
    moved = dict(ei)
    keep = (ei["buy"][0] * 100 + ei["buy"][1]) != extra
    moved["buy"] = ei["buy"][:, keep]  # the pair stays in the union (it is also a view)
    other = TrainData(data.meta, moved, {b: data.edge_ts[b][: moved[b].shape[1]] for b in moved},
                      {b: data.edge_count[b][: moved[b].shape[1]] for b in moved}, data.pos_index,
                      data.item_category)  # fmt: skip
    with torch.no_grad():
        r1, r2 = (
            build("rgcn", data).eval().encode(data),
            build("rgcn", other).eval().encode(other),
        )
        s1, s2 = (
            build("graphsage", data).eval().encode(data),
            build("graphsage", other).eval().encode(other),
        )
    assert not torch.allclose(r1["item"], r2["item"])
    torch.testing.assert_close(s1["item"], s2["item"])


# --------------------------------------------------------------------------- inductive GraphSAGE
def two_community_data() -> TrainData:
    """Users 0-5 use items 0-5 (category 0), users 6-11 items 6-11 (category 1); items 12
    (category 0) and 13 (category 1) have no event at all; user 12 neither."""
    users, items = [], []
    for u in range(12):
        base = 0 if u < 6 else 6
        for k in range(4):
            users.append(u)
            items.append(base + (u + k) % 6)
    beh = ["buy"] * len(users)
    cats = [0] * 6 + [1] * 6 + [0, 1]
    table = make_table(users, items, beh, list(range(len(users))), cats, num_users=13, num_items=14)
    split = make_split(table, SplitConfig(mode="random", ratios=(1.0, 0.0, 0.0)), 0)
    assert (split.assign == TRAIN).all()
    return build_train_data(table, split, GraphConfig(), "target")


def test_graphsage_unseen_item_uses_category_path_only() -> None:
    data = two_community_data()
    model = build("graphsage", data).eval()
    assert model.item_seen.tolist() == [True] * 12 + [False, False]
    assert model.user_seen.tolist() == [True] * 12 + [False]
    x = model.inputs(data)
    # unseen item input = its category embedding, without the (untrained) ID embedding
    assert torch.equal(x["item"][12], model.category_emb.weight[0])
    assert torch.equal(x["user"][12], torch.zeros(8))
    with torch.no_grad():
        emb = model.encode(data)
        # the unseen item's embedding does not depend on its own ID embedding
        model.item_emb.weight[12].normal_()
        again = model.encode(data)
    torch.testing.assert_close(emb["item"], again["item"])
    assert not torch.allclose(emb["item"][12], emb["item"][13])  # category makes the difference
    assert emb["item"][12].abs().sum() > 0


def test_graphsage_unseen_item_lands_in_its_category_after_training() -> None:
    data = two_community_data()
    model = build("graphsage", data, dim=16)
    cfg = TrainConfig(epochs=40, batch_size=16, lr=0.02, patience=0)
    Trainer(cfg, torch.device("cpu"), torch.Generator().manual_seed(0), progress=False).fit(model, data)
    with torch.no_grad():
        emb = model.encode(data)
    item = torch.nn.functional.normalize(emb["item"], dim=1)
    for new, own, other in (
        (12, slice(0, 6), slice(6, 12)),
        (13, slice(6, 12), slice(0, 6)),
    ):
        assert (item[own] @ item[new]).mean() > (item[other] @ item[new]).mean()
    # and the users of a community rank their category's new item above the other one
    scores = model.score_all(emb, torch.arange(12))
    assert (scores[:6, 12] > scores[:6, 13]).all() and (scores[6:, 13] > scores[6:, 12]).all()


def test_graphsage_new_graph_at_inference_keeps_training_masks() -> None:
    data = two_community_data()
    model = build("graphsage", data).eval()
    with torch.no_grad():
        before = model.encode(data)["item"][12].clone()
    # at inference item 12 gets interactions from users 0 and 1: its embedding changes, but
    # its ID embedding (never trained) stays unused
    ei = torch.cat([data.edge_index["buy"], torch.tensor([[0, 1], [12, 12]])], dim=1)
    new = TrainData(data.meta, {"buy": ei}, {"buy": torch.zeros(ei.shape[1], dtype=torch.long)},
                    {"buy": torch.ones(ei.shape[1], dtype=torch.long)}, data.pos_index, data.item_category)  # fmt: skip
    with torch.no_grad():
        after = model.encode(new)["item"][12]
    assert not torch.allclose(before, after)
    assert not bool(model.item_seen[12])


def test_graphsage_item_feature_hook() -> None:
    data = two_community_data()
    feats = torch.zeros(14, 3)
    feats[12, 0] = 5.0
    data.cache["item_features"] = feats
    model = build("graphsage", data).eval()
    assert model.feature_proj is not None and model.feature_proj.in_features == 3
    with torch.no_grad():
        x = model.inputs(data)
    torch.testing.assert_close(x["item"][12], model.category_emb.weight[0] + model.feature_proj(feats[12]))
    data.cache["item_features"] = torch.zeros(5, 3)
    with pytest.raises(ValueError, match="num_items=14"):
        model.prepare(data)


def test_graphsage_without_id_embeddings_has_only_shared_parameters(
    data: TrainData,
) -> None:
    model = build("graphsage", data, item_id_emb=False, user_id_emb=False)
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert names == {"category_emb", "convs"}
    with torch.no_grad():
        emb = model.eval().encode(data)
    assert emb["item"].std() > 0 and emb["user"].std() > 0


# --------------------------------------------------------------------------- smoke runs
@pytest.mark.parametrize("name", ["graphsage", "rgcn"])
def test_one_epoch_run(name: str, tmp_path: Path) -> None:
    from gnnrec.runner import run

    cfg = load_config(
        ROOT / f"experiments/{name}-synthetic.yaml",
        [
            "data.synthetic.num_users=80",
            "data.synthetic.num_items=100",
            "data.synthetic.num_categories=6",
            "data.synthetic.events_per_user=15",
            "train.epochs=1",
            "train.batch_size=256",
            "model.params.dim=16",
        ],
    )
    result = run(cfg, tmp_path / "run", progress=False)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["epochs"] == 1
    assert 0.0 <= metrics["test"]["ndcg@20"] <= 1.0
    assert (result.run_dir / "model.pt").exists()
