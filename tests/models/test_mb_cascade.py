"""mb_cascade: the multi-behaviour cascade encoder, on hand-computed tiny graphs.

Hand example (1 user, 2 items, d = 1; nodes u0, i0, i1; ego x = (1, 2, 3)):
view edge u0-i0, buy edge u0-i1, one layer per block, layer-mean readout.

* view block: A_v x = (2, 1, 0) (degrees 1, so the entries are 1);
  H_view = (x + A_v x) / 2 = (1.5, 1.5, 1.5).
* transform W_u = 2, W_i = 3 (1x1): X_buy = (3, 4.5, 4.5).
* buy block: A_b X_buy = (4.5, 0, 3); H_buy = (3.75, 2.25, 3.75).
* fusion sum: z = (5.25, 3.75, 5.25), so s(u0, i0) = 19.6875, s(u0, i1) = 27.5625.
* with identity W: X_buy = H_view, A_b X_buy = (1.5, 0, 1.5), H_buy = (1.5, 0.75, 1.5).
* residual (identity W): H_view = 1.5 + x = (2.5, 3.5, 4.5); A_b (2.5, 3.5, 4.5) =
  (4.5, 0, 2.5); H_buy = (3.5, 1.75, 3.5) + (2.5, 3.5, 4.5) = (6, 5.25, 8).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from gnnrec.config import ModelSpec, load_config
from gnnrec.errors import ConfigError
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models import PairBatch, build_model
from gnnrec.models.encoders.mb_cascade import EdgeCounts, MBCascade, cascade_candidates

ROOT = Path(__file__).resolve().parents[2]


def make_data(
    edges: dict[str, list[tuple[int, int]]],
    num_users: int,
    num_items: int,
    target: str = "buy",
    behaviors: tuple[str, ...] | None = None,
) -> TrainData:
    ei = {b: torch.tensor(p, dtype=torch.long).view(-1, 2).T.contiguous() for b, p in edges.items()}
    meta = GraphMeta(num_users, num_items, 1, behaviors or tuple(edges), target)
    return TrainData(
        meta=meta,
        edge_index=ei,
        edge_ts={b: torch.zeros(e.shape[1], dtype=torch.long) for b, e in ei.items()},
        edge_count={b: torch.ones(e.shape[1], dtype=torch.long) for b, e in ei.items()},
        pos_index=ei[target],
        item_category=torch.zeros(num_items, dtype=torch.long),
    )


def build(data: TrainData, **params: object) -> MBCascade:
    model = build_model(ModelSpec(name="mb_cascade", params=dict(params)), data.meta)
    assert isinstance(model, MBCascade)
    model.prepare(data)
    return model


def hand() -> TrainData:
    return make_data({"view": [(0, 0)], "buy": [(0, 1)]}, 1, 2)


def set_ego(model: MBCascade, users: list[float], items: list[float]) -> None:
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.tensor(users).view(-1, 1))
        model.item_emb.weight.copy_(torch.tensor(items).view(-1, 1))


def random_data(seed: int, nu: int = 10, ni: int = 12) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    edges = {}
    for b, n in (("view", 40), ("cart", 20), ("buy", 15)):
        u = torch.randint(0, nu, (n,), generator=g).tolist()
        i = torch.randint(0, ni, (n,), generator=g).tolist()
        edges[b] = list(zip(u, i))
    return make_data(edges, nu, ni)


# ------------------------------------------------------------------ exact values
def test_cascade_with_transform_exact() -> None:
    data = hand()
    model = build(data, dim=1, num_layers=1)
    set_ego(model, [1.0], [2.0, 3.0])
    with torch.no_grad():
        model.user_transform["view"].weight.fill_(2.0)
        model.item_transform["view"].weight.fill_(3.0)
        blocks = model.block_outputs(data)
        assert list(blocks) == ["view", "buy"]
        assert blocks["view"].view(-1).tolist() == pytest.approx([1.5, 1.5, 1.5])
        assert blocks["buy"].view(-1).tolist() == pytest.approx([3.75, 2.25, 3.75])
        emb = model.encode(data)
        assert emb["user"].view(-1).tolist() == pytest.approx([5.25])
        assert emb["item"].view(-1).tolist() == pytest.approx([3.75, 5.25])
        scores = model.score_all(emb, torch.tensor([0]))
        assert scores.view(-1).tolist() == pytest.approx([19.6875, 27.5625])


def test_identity_transform_fusions_and_residual_exact() -> None:
    data = hand()
    z = {
        "sum": [3.0, 2.25, 3.0],
        "last": [1.5, 0.75, 1.5],
        "weighted": [3.0, 2.25, 3.0],  # alpha initialised to 1
    }
    for fusion, expected in z.items():
        model = build(data, dim=1, num_layers=1, fusion=fusion)
        set_ego(model, [1.0], [2.0, 3.0])
        with torch.no_grad():
            emb = model.encode(data)
        got = torch.cat([emb["user"], emb["item"]]).view(-1).tolist()
        assert got == pytest.approx(expected), fusion
    model = build(data, dim=1, num_layers=1, fusion="concat")
    set_ego(model, [1.0], [2.0, 3.0])
    with torch.no_grad():
        emb = model.encode(data)
    assert torch.allclose(emb["user"], torch.tensor([[1.5, 1.5]]))
    assert torch.allclose(emb["item"], torch.tensor([[1.5, 0.75], [1.5, 1.5]]))
    # weighted with alpha = (2, -1)
    model = build(data, dim=1, num_layers=1, fusion="weighted")
    set_ego(model, [1.0], [2.0, 3.0])
    with torch.no_grad():
        assert model.fusion_weight is not None
        model.fusion_weight.copy_(torch.tensor([2.0, -1.0]))
        emb = model.encode(data)
    assert emb["item"].view(-1).tolist() == pytest.approx([3.0 - 0.75, 3.0 - 1.5])
    # CRGCN-style residual
    model = build(data, dim=1, num_layers=1, residual=True, fusion="last", transform="none")
    set_ego(model, [1.0], [2.0, 3.0])
    with torch.no_grad():
        blocks = model.block_outputs(data)
    assert blocks["view"].view(-1).tolist() == pytest.approx([2.5, 3.5, 4.5])
    assert blocks["buy"].view(-1).tolist() == pytest.approx([6.0, 5.25, 8.0])


def test_readout_last_and_block_norm() -> None:
    data = hand()
    model = build(data, dim=1, num_layers=1, readout="last", transform="none", fusion="last")
    set_ego(model, [1.0], [2.0, 3.0])
    with torch.no_grad():
        blocks = model.block_outputs(data)
    # view: A_v x = (2, 1, 0); buy: A_b (2, 1, 0) = (0, 0, 2)
    assert blocks["view"].view(-1).tolist() == pytest.approx([2.0, 1.0, 0.0])
    assert blocks["buy"].view(-1).tolist() == pytest.approx([0.0, 0.0, 2.0])
    model = build(data, dim=2, num_layers=1, block_norm=True, transform="none")
    with torch.no_grad():
        blocks = model.block_outputs(data)
    norms = blocks["buy"].norm(dim=1)
    assert torch.allclose(norms[norms > 0], torch.ones_like(norms[norms > 0]), atol=1e-6)


# ------------------------------------------------------------------ order / skipping
def test_block_order_follows_the_funnel_with_the_target_last() -> None:
    meta = GraphMeta(2, 2, 1, ("view", "cart", "fav", "buy"), "buy")
    assert cascade_candidates(None, meta) == ("view", "cart", "fav", "buy")
    meta = GraphMeta(2, 2, 1, ("view", "buy", "cart"), "buy")
    assert cascade_candidates(None, meta) == ("view", "cart", "buy")
    data = make_data(
        {"buy": [(0, 1)], "cart": [(1, 0)], "view": [(0, 0)]}, 2, 2, behaviors=("view", "cart", "buy")
    )
    model = build(data, dim=4)
    assert model.cascade_order(data) == ("view", "cart", "buy")
    assert list(model.block_outputs(data)) == ["view", "cart", "buy"]
    assert set(model.user_transform) == {"view", "cart"}  # the last block feeds nothing
    with pytest.raises(ConfigError, match="must end at the target behaviour 'buy'"):
        build(data, behaviors=["buy", "view"])
    with pytest.raises(ConfigError, match="unique"):
        build(data, behaviors=["view", "view", "buy"])


def test_behaviour_missing_from_train_data_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    data = random_data(0)
    with caplog.at_level(logging.WARNING, logger="gnnrec"):
        model = build(data, dim=4, behaviors=["view", "fav", "cart", "buy"], num_layers=[1, 2, 1, 2])
    assert "fav" in caplog.text and "skipped" in caplog.text
    assert model.behaviors == ("view", "cart", "buy")
    assert model.layers == {"view": 1, "fav": 2, "cart": 1, "buy": 2}
    assert model.cascade_order(data) == ("view", "cart", "buy")


def test_empty_behaviour_block_is_skipped() -> None:
    """A graph edge type without training edges: its block is left out and the previous
    block feeds the next directly (same result as a cascade without it)."""
    full = random_data(1)
    edges = {b: full.edge_index[b].T.tolist() for b in ("view", "buy")}
    edges["cart"] = []
    data = make_data(edges, 10, 12, behaviors=("view", "cart", "buy"))
    model = build(data, dim=4, num_layers=2)
    assert model.cascade_order(data) == ("view", "buy")
    no_cart = make_data({b: edges[b] for b in ("view", "buy")}, 10, 12)
    ref = build(no_cart, dim=4, num_layers=2)
    ref.load_state_dict({k: v for k, v in model.state_dict().items() if "cart" not in k}, strict=True)
    with torch.no_grad():
        a, b = model.encode(data), ref.encode(no_cart)
    assert torch.allclose(a["user"], b["user"]) and torch.allclose(a["item"], b["item"])


def test_layer_config_errors() -> None:
    data = random_data(2)
    with pytest.raises(ConfigError, match="needs model.params.behaviors"):
        build(data, num_layers=[1, 1, 3])
    with pytest.raises(ConfigError, match="2 layer counts for 3"):
        build(data, behaviors=["view", "cart", "buy"], num_layers=[1, 3])
    with pytest.raises(ConfigError, match="no layer count for behaviour 'cart'"):
        build(data, num_layers={"view": 1, "buy": 2})
    with pytest.raises(ConfigError, match="layer counts must be >= 0"):
        build(data, num_layers=-1)
    model = build(data, num_layers={"view": 0, "cart": 1, "buy": 3})
    assert model.layers == {"view": 0, "cart": 1, "buy": 3}


# ------------------------------------------------------------------ contract
@pytest.mark.parametrize("fusion", ["sum", "concat", "weighted", "last"])
def test_shapes(fusion: str) -> None:
    data = random_data(3)
    model = build(data, dim=8, fusion=fusion)
    with torch.no_grad():
        emb = model.encode(data)
    d = 24 if fusion == "concat" else 8
    assert emb["user"].shape == (10, d) and emb["item"].shape == (12, d)
    assert model.score_all(emb, torch.tensor([0, 3])).shape == (2, 12)
    assert model.score(emb, torch.tensor([0, 3]), torch.tensor([1, 2])).shape == (2,)


def test_determinism_under_a_seed_and_edge_order_invariance() -> None:
    data = random_data(4)
    torch.manual_seed(7)
    a = build(data, dim=8, transform_init="normal")
    torch.manual_seed(7)
    b = build(data, dim=8, transform_init="normal")
    with torch.no_grad():
        ea, eb = a.encode(data), b.encode(data)
    assert torch.equal(ea["user"], eb["user"]) and torch.equal(ea["item"], eb["item"])
    perm = {
        k: v[:, torch.randperm(v.shape[1], generator=torch.Generator().manual_seed(1))]
        for k, v in data.edge_index.items()
    }
    shuffled = make_data({k: v.T.tolist() for k, v in perm.items()}, 10, 12)
    with torch.no_grad():
        es = a.encode(shuffled)
    assert torch.allclose(es["user"], ea["user"], atol=1e-6)
    assert torch.allclose(es["item"], ea["item"], atol=1e-6)


@pytest.mark.parametrize("fusion", ["sum", "weighted"])
def test_gradients_reach_every_parameter(fusion: str) -> None:
    data = random_data(5)
    model = build(data, dim=8, fusion=fusion)
    emb = model.encode(data)
    batch = PairBatch(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([[3], [4], [5]]))
    loss = model.loss(emb, batch)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_regularization_covers_ego_and_transforms() -> None:
    data = hand()
    model = build(data, dim=1, num_layers=1, reg=0.5)
    set_ego(model, [1.0], [2.0, 3.0])
    with torch.no_grad():
        model.user_transform["view"].weight.fill_(2.0)
        model.item_transform["view"].weight.fill_(3.0)
    batch = PairBatch(torch.tensor([0]), torch.tensor([1]), torch.tensor([[0]]))
    # ego: 0.5 * (1 + 9 + 4) / 2 / 1 = 3.5; W: 0.5 * (4 + 9) / 2 / 1 = 3.25
    reg = model.regularization(model.encode(data), batch).detach()
    assert float(reg) == pytest.approx(6.75)
    model = build(data, dim=1, num_layers=1, reg=0.5, transform_reg=0.0)
    set_ego(model, [1.0], [2.0, 3.0])
    assert float(model.regularization(model.encode(data), batch).detach()) == pytest.approx(3.5)


# ------------------------------------------------------------------ pair term
def test_edge_counts_lookup_exact() -> None:
    ei = torch.tensor([[0, 0, 1, 3], [1, 4, 2, 0]])
    counts = EdgeCounts(ei, torch.tensor([1, 3, 2, 1]), num_users=5, num_items=6)
    ln2, ln3, ln4 = 0.6931472, 1.0986123, 1.3862944
    rows = counts.rows(torch.tensor([3, 0, 2, 1, 0]))
    expected = torch.zeros(5, 6)
    expected[0, 0], expected[1, 1], expected[1, 4], expected[3, 2] = ln2, ln2, ln4, ln3
    expected[4] = expected[1]
    assert torch.allclose(rows, expected)
    got = counts.pairs(torch.tensor([0, 0, 1, 4, 3, 3]), torch.tensor([4, 2, 2, 5, 0, 5]))
    assert got.tolist() == pytest.approx([ln4, 0.0, ln3, 0.0, ln2, 0.0])
    empty = EdgeCounts(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), 2, 3)
    assert empty.pairs(torch.tensor([1]), torch.tensor([2])).tolist() == [0.0]
    assert torch.equal(empty.rows(torch.tensor([0, 1])), torch.zeros(2, 3))
    # unsorted input with a repeated pair: counts are summed
    merged = EdgeCounts(torch.tensor([[1, 0, 1], [0, 1, 0]]), torch.tensor([1, 2, 2]), 2, 2)
    assert torch.allclose(merged.rows(torch.tensor([0, 1])), torch.tensor([[0.0, ln3], [ln4, 0.0]]))


def test_pair_term_exact_and_zero_when_untrained() -> None:
    # user 0 viewed item 0 three times and carted item 2 once; bought item 1
    data = make_data({"view": [(0, 0)], "cart": [(0, 2)], "buy": [(0, 1)]}, 1, 3)
    data.edge_count["view"] = torch.tensor([3])
    plain = build(data, dim=1, num_layers=1)
    model = build(data, dim=1, num_layers=1, pair_behaviors=["view", "cart"])
    assert model.pair_behaviors == ("view", "cart")
    for m in (plain, model):
        set_ego(m, [1.0], [2.0, 3.0, 1.0])
    emb = model.encode(data)
    users = torch.tensor([0])
    # alpha starts at 0: exactly the embedding score
    assert torch.equal(model.score_all(emb, users), plain.score_all(plain.encode(data), users))
    started = build(data, dim=1, num_layers=1, pair_behaviors=["view", "cart"], pair_init=3.0)
    assert started.pair_weight is not None and started.pair_weight.tolist() == [3.0, 3.0]
    # pair_feature: indicator reads 1 for the three views as for the one cart
    flag = build(data, dim=1, num_layers=1, pair_behaviors=["view", "cart"], pair_init=1.0, pair_feature="indicator")
    set_ego(flag, [1.0], [2.0, 3.0, 1.0])
    with torch.no_grad():
        diff = flag.score_all(flag.encode(data), users) - plain.score_all(plain.encode(data), users)
    assert diff.view(-1).tolist() == pytest.approx([1.0, 0.0, 1.0])
    with torch.no_grad():
        model.pair_weight.copy_(torch.tensor([2.0, -1.0]))
        base = plain.score_all(plain.encode(data), users)[0]
        want = base + torch.tensor([2.0 * torch.log(torch.tensor(4.0)).item(), 0.0, -0.6931472])
        got = model.score_all(emb, users)[0]
        assert torch.allclose(got, want, atol=1e-6)
        pairs = model.score(emb, torch.tensor([0, 0, 0]), torch.tensor([0, 1, 2]))
        assert torch.allclose(pairs, want, atol=1e-6)


def test_pair_term_scores_agree_and_learn_from_viewed_positives() -> None:
    data = random_data(11, nu=12, ni=15)
    torch.manual_seed(0)
    model = build(data, dim=8, pair_behaviors=["view"])
    emb = model.encode(data)
    users = torch.arange(12)
    with torch.no_grad():
        model.pair_weight.fill_(0.7)
        full = model.score_all(emb, users)
        u, i = torch.meshgrid(users, torch.arange(15), indexing="ij")
        assert torch.allclose(model.score(emb, u.reshape(-1), i.reshape(-1)).view(12, 15), full, atol=1e-6)
        model.pair_weight.zero_()
    # positives viewed, negatives not: BPR pushes alpha_view up
    view = data.edge_index["view"]
    viewed = set(zip(view[0].tolist(), view[1].tolist()))
    neg = [next(j for j in range(15) if (u, j) not in viewed) for u in view[0].tolist()]
    batch = PairBatch(view[0], view[1], torch.tensor(neg).view(-1, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        model.loss(model.encode(data), batch).backward()
        assert model.pair_weight.grad is not None
        opt.step()
    assert float(model.pair_weight.detach()) > 0.5


def test_pair_term_without_prepare_and_config_errors() -> None:
    data = random_data(12)
    model = build_model(ModelSpec(name="mb_cascade", params={"pair_behaviors": ["view"]}), data.meta)
    with pytest.raises(RuntimeError, match="prepare"):
        model.score_all(model.encode(data), torch.tensor([0]))
    with pytest.raises(ConfigError, match="target behaviour 'buy' cannot be a pair feature"):
        build(data, pair_behaviors=["view", "buy"])
    with pytest.raises(ConfigError, match="pair_behaviors: behaviour 'fav' is not an edge type"):
        build(data, pair_behaviors=["fav"])


# ------------------------------------------------------------------ pre-training
@pytest.mark.parametrize("layers", [0, 1])
def test_pretraining_fits_the_first_behaviour_deterministically(layers: int) -> None:
    data = random_data(6)
    params = dict(dim=8, pretrain_epochs=15, pretrain_layers=layers, pretrain_batch_size=16, reg=0.0)
    torch.manual_seed(3)
    model = build_model(ModelSpec(name="mb_cascade", params=params), data.meta)
    assert isinstance(model, MBCascade)
    before = model.item_emb.weight.detach().clone()
    model.prepare(data)  # pre-trains on 'view' (the first block)
    assert not torch.equal(model.item_emb.weight, before)
    torch.manual_seed(3)
    twin = build_model(ModelSpec(name="mb_cascade", params=params), data.meta)
    assert isinstance(twin, MBCascade)
    losses = twin.pretrain(data, "view")
    assert torch.equal(twin.item_emb.weight, model.item_emb.weight)
    assert losses[-1] < losses[0]
    # the transforms are not touched by pre-training
    assert torch.equal(model.user_transform["view"].weight, torch.eye(8))


def test_pretraining_needs_edges_of_its_behaviour() -> None:
    data = random_data(7)
    model = build(data, dim=4)
    with pytest.raises(ConfigError, match="behaviour 'fav' has no training edges"):
        model.pretrain(data, "fav")


# ------------------------------------------------------------------ smoke run
@pytest.mark.parametrize("extra", [[], ["model.params.pair_behaviors=[view,cart]", "model.params.pair_init=2.0"]])
def test_one_epoch_run(tmp_path: Path, extra: list[str]) -> None:
    from gnnrec.runner import run

    cfg = load_config(
        ROOT / "experiments/mb_cascade-synthetic.yaml",
        [
            "data.synthetic.num_users=80",
            "data.synthetic.num_items=100",
            "data.synthetic.num_categories=6",
            "data.synthetic.events_per_user=15",
            "train.epochs=1",
            "train.batch_size=256",
            "model.params.dim=16",
            *extra,
        ],
    )
    result = run(cfg, tmp_path / "run", progress=False)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["model"] == "mb_cascade" and metrics["epochs"] == 1
    assert 0.0 <= metrics["test"]["ndcg@20"] <= 1.0
    assert (result.run_dir / "model.pt").exists()
    if extra:  # the trained pair weights are saved with the model
        state = torch.load(result.run_dir / "model.pt", weights_only=True)
        assert state["pair_weight"].shape == (2,) and not torch.equal(state["pair_weight"], torch.full((2,), 2.0))
