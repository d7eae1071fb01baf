"""Baselines (pop, itemknn, mf_bpr, neumf, mlp) on hand-written tiny training data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnnrec.config import ModelSpec
from gnnrec.errors import ConfigError
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models import MODELS, PairBatch, build_model
from gnnrec.models.baselines.itemknn import item_similarity
from gnnrec.models.baselines.neumf import MLP, NeuMF, NeuMFConfig
from tests.helpers import buy_data


def make_data(pairs: list[tuple[int, int]], num_users: int, num_items: int) -> TrainData:
    return buy_data(pairs, num_users, num_items)


# 4 users x 6 items; item 5 has no positive, user 3 a single one
PAIRS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 3), (2, 4), (3, 1)]
SMALL = {
    "pop": {},
    "itemknn": {"k": 2, "shrink": 1.0},
    "mf_bpr": {"dim": 8},
    "neumf": {"dim": 4, "mlp_layers": [8, 6, 4]},
    "mlp": {"mlp_layers": [8, 6, 4]},
}


@pytest.fixture
def data() -> TrainData:
    return make_data(PAIRS, 4, 6)


def _build(name: str, data: TrainData, seed: int = 0, **params: object):
    torch.manual_seed(seed)
    model = build_model(ModelSpec(name=name, params={**SMALL[name], **params}), data.meta)
    model.prepare(data)
    model.eval()
    return model


def test_every_model_is_registered() -> None:
    assert {"pop", "itemknn", "mf_bpr", "neumf", "mlp"} <= set(MODELS.names())
    for name in SMALL:
        assert MODELS.meta(name)["description"]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_score_all_matches_score(name: str, data: TrainData) -> None:
    model = _build(name, data)
    with torch.no_grad():
        emb = model.encode(data)
        users = torch.tensor([0, 2, 3, 1])
        full = model.score_all(emb, users)
        assert full.shape == (4, 6)
        uu = users.repeat_interleave(6)
        ii = torch.arange(6).repeat(4)
        pair = model.score(emb, uu, ii)
    assert pair.shape == (24,)
    torch.testing.assert_close(pair.view(4, 6), full, rtol=1e-5, atol=1e-6)
    # not a constant model (pop is constant across users, never across items)
    assert full.std() > 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_recommend_excludes_and_orders(name: str, data: TrainData) -> None:
    model = _build(name, data)
    emb = model.encode(data)
    exclude = torch.zeros(2, 6, dtype=torch.bool)
    exclude[0, :3] = True
    scores, items = model.recommend(emb, torch.tensor([0, 1]), k=3, exclude=exclude)
    assert items.shape == (2, 3)
    assert not set(items[0].tolist()) & {0, 1, 2}
    assert torch.all(scores[:, :-1] >= scores[:, 1:])


@pytest.mark.parametrize("name", ["mf_bpr", "neumf", "mlp"])
def test_init_is_deterministic_and_seed_dependent(name: str, data: TrainData) -> None:
    a, b, c = _build(name, data, 0), _build(name, data, 0), _build(name, data, 1)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("name", ["mf_bpr", "neumf", "mlp"])
def test_loss_gradient_reaches_every_parameter(name: str, data: TrainData) -> None:
    model = _build(name, data, reg=0.1)
    model.train()
    batch = PairBatch(torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([[5, 4], [0, 5]]))
    loss = model.loss(model.encode(data), batch, "bce")
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_repr_shows_hyper_parameters(data: TrainData) -> None:
    assert "k=2" in repr(_build("itemknn", data)) and "shrink=1.0" in repr(_build("itemknn", data))
    assert "dim=8" in repr(_build("mf_bpr", data)) and "reg=0.0001" in repr(_build("mf_bpr", data))
    text = repr(_build("neumf", data))
    assert "mode=neumf" in text and "mlp_layers=(8, 6, 4)" in text
    assert "num_items=6" in repr(_build("pop", data))


def test_unknown_param_is_config_error(data: TrainData) -> None:
    with pytest.raises(ConfigError, match="model.params.depth: unknown key"):
        build_model(ModelSpec(name="mf_bpr", params={"depth": 3}), data.meta)
    with pytest.raises(ConfigError, match="mlp_layers"):
        build_model(ModelSpec(name="neumf", params={"mlp_layers": [7, 3]}), data.meta)


# ---------------------------------------------------------------- pop
def test_pop_counts(data: TrainData) -> None:
    model = _build("pop", data)
    # item 0: users 0, 1; item 1: users 0, 1, 2, 3; items 2, 3, 4: one user each; item 5: none
    expected = torch.tensor([2.0, 4.0, 1.0, 1.0, 1.0, 0.0])
    emb = model.encode(data)
    torch.testing.assert_close(model.score_all(emb, torch.tensor([3, 0])), expected.repeat(2, 1))
    assert model.trainable is False
    _, top = model.recommend(emb, torch.tensor([2]), k=2)
    assert top.tolist() == [[1, 0]]


def test_pop_counts_duplicate_pairs_once() -> None:
    d = make_data([(0, 1), (0, 1), (1, 1), (1, 0)], 2, 3)
    model = _build("pop", d)
    # the repeated (0, 1) pair counts once: item 1 has users 0 and 1
    assert model.encode(d)["pop"].tolist() == [1.0, 2.0, 0.0]


# ---------------------------------------------------------------- itemknn
# Hand example, 3 users x 4 items:
#   u0: i0 i1 i2      item degrees: i0=2, i1=3, i2=1, i3=1  (norms √2, √3, 1, 1)
#   u1: i0 i1         co-occurrences: c01=2, c02=1, c12=1, c13=1, c03=c23=0
#   u2: i1 i3
# shrink=10:  s01 = 2/(√2·√3+10) = 2/(√6+10) ≈ 0.16065
#             s02 = 1/(√2·1+10)  = 1/(√2+10) ≈ 0.08761
#             s12 = s13 = 1/(√3+10)          ≈ 0.08524
# k=1 keeps per row j the largest s(j, ·):
#   row 0: s01 > s02 → (0,1);  row 1: s10 > s12 = s13 → (1,0)
#   row 2: s20 > s21 → (2,0);  row 3: only s31 → (3,1)
# k=2, row 1 keeps s10 and the tie s12 = s13 is broken by the lower item index → (1,2).
KNN_PAIRS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 3)]
S01 = 2 / (math.sqrt(6) + 10)
S02 = 1 / (math.sqrt(2) + 10)
S12 = 1 / (math.sqrt(3) + 10)


def test_itemknn_similarity_exact_k1() -> None:
    pairs = np.array(KNN_PAIRS).T
    sim = item_similarity(pairs, 3, 4, k=1, shrink=10.0).toarray()
    expected = np.zeros((4, 4))
    expected[0, 1] = S01
    expected[1, 0] = S01
    expected[2, 0] = S02
    expected[3, 1] = S12
    np.testing.assert_allclose(sim, expected, rtol=1e-12)


def test_itemknn_similarity_exact_k2_tie_and_no_shrink() -> None:
    pairs = np.array(KNN_PAIRS).T
    sim = item_similarity(pairs, 3, 4, k=2, shrink=10.0).toarray()
    np.testing.assert_allclose(sim[1], [S01, 0, S12, 0], rtol=1e-12)  # i3 loses the tie to i2
    np.testing.assert_allclose(sim[0], [0, S01, S02, 0], rtol=1e-12)
    # shrink = 0 is the plain cosine; all neighbours kept with a large k; symmetric
    cos = item_similarity(pairs, 3, 4, k=100, shrink=0.0).toarray()
    c = 1 / math.sqrt(3)
    expected = np.array(
        [
            [0, 2 / math.sqrt(6), 1 / math.sqrt(2), 0],
            [2 / math.sqrt(6), 0, c, c],
            [1 / math.sqrt(2), c, 0, 0],
            [0, c, 0, 0],
        ]
    )
    np.testing.assert_allclose(cos, expected, rtol=1e-12)


def test_itemknn_scores_exact() -> None:
    d = make_data(KNN_PAIRS, 3, 4)
    torch.manual_seed(0)
    model = build_model(ModelSpec(name="itemknn", params={"k": 1, "shrink": 10.0}), d.meta)
    model.prepare(d)
    scores = model.score_all(model.encode(d), torch.tensor([2, 0]))
    # u2 history {i1, i3}: i0 gets s10 (row 1), i1 gets s31 (row 3)
    # u0 history {i0, i1, i2}: i0 gets s10 + s20, i1 gets s01
    expected = torch.tensor([[S01, S12, 0.0, 0.0], [S01 + S02, S01, 0.0, 0.0]])
    torch.testing.assert_close(scores, expected)


def test_itemknn_blocks_do_not_change_result() -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, 300)
    items = rng.integers(0, 40, 300)
    pairs = np.unique(np.stack([users, items]), axis=1)
    one = item_similarity(pairs, 30, 40, k=5, shrink=2.0)
    many = item_similarity(pairs, 30, 40, k=5, shrink=2.0, block_nnz=1)  # one item per block
    assert abs(one - many).max() == 0
    # k limits each row, diagonal is empty
    assert np.diff(one.indptr).max() <= 5
    assert one.diagonal().sum() == 0


# ---------------------------------------------------------------- mf_bpr
def test_mf_bpr_regularization_by_hand(data: TrainData) -> None:
    model = _build("mf_bpr", data, dim=2, reg=0.1)
    with torch.no_grad():
        model.user_emb.weight[0] = torch.tensor([1.0, 2.0])  # ||u0||² = 5
        model.user_emb.weight[1] = torch.tensor([0.0, 1.0])  # ||u1||² = 1
        model.item_emb.weight[1] = torch.tensor([0.0, 3.0])  # 9
        model.item_emb.weight[2] = torch.tensor([1.0, 1.0])  # 2
        model.item_emb.weight[3] = torch.tensor([2.0, 0.0])  # 4
    batch = PairBatch(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([[2, 3], [3, 3]]))
    emb = model.encode(data)
    # users 5 + 1, positives 9 + 2, negatives (2 + 4) + (4 + 4) → 31; 0.1 * 31 / 2 / B=2 = 0.775
    reg = model.regularization(emb, batch)
    assert reg.item() == pytest.approx(0.775)
    # BPR: u0·i1 = 6, u0·i2 = 3, u0·i3 = 2; u1·i2 = 1, u1·i3 = 0
    diffs = torch.tensor([6.0 - 3, 6 - 2, 1 - 0, 1 - 0])
    expected = -torch.nn.functional.logsigmoid(diffs).mean().item() + 0.775
    assert model.loss(emb, batch, "bpr").item() == pytest.approx(expected, rel=1e-6)


def test_mf_bpr_init_std(data: TrainData) -> None:
    torch.manual_seed(0)
    meta = GraphMeta(400, 500, 1, ("buy",), "buy")
    model = build_model(ModelSpec(name="mf_bpr", params={"dim": 64}), meta)
    assert model.user_emb.weight.std().item() == pytest.approx(0.1, rel=0.05)
    xav = build_model(ModelSpec(name="mf_bpr", params={"dim": 64, "init": "xavier"}), meta)
    bound = math.sqrt(6 / (500 + 64))
    assert xav.item_emb.weight.abs().max().item() <= bound


# ---------------------------------------------------------------- neumf / mlp
@pytest.mark.parametrize("mode", ["neumf", "gmf", "mlp"])
def test_neumf_chunked_score_all_equals_unchunked(mode: str, data: TrainData) -> None:
    big = _build("neumf", data, mode=mode)
    # 4 users x width 6 = 24 elements per item; 30 → one item per chunk
    small = _build("neumf", data, mode=mode, chunk_elements=30)
    users = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        a = big.score_all(big.encode(data), users)
        b = small.score_all(small.encode(data), users)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_neumf_modes_have_their_towers(data: TrainData) -> None:
    names = lambda m: {n.split(".")[0] for n, _ in m.named_parameters()}
    assert names(_build("neumf", data, mode="gmf")) == {"user_gmf", "item_gmf", "predict"}
    assert names(_build("neumf", data, mode="mlp")) == {"user_mlp", "item_mlp", "tower", "predict"}
    model = _build("neumf", data)
    assert model.predict.in_features == 4 + 4


def test_mlp_is_neumf_in_mlp_mode(data: TrainData) -> None:
    a = _build("mlp", data, seed=3)
    b = _build("neumf", data, seed=3, mode="mlp")
    assert isinstance(a, MLP) and isinstance(b, NeuMF)
    users = torch.tensor([0, 3])
    with torch.no_grad():
        torch.testing.assert_close(a.score_all(a.encode(data), users), b.score_all(b.encode(data), users))
    assert "mode" not in repr(a)
    # dim, when given, is the per-side embedding size and must agree with mlp_layers[0]
    c = build_model(ModelSpec(name="mlp", params={"dim": 4, "mlp_layers": [8, 4]}), data.meta)
    assert c.user_mlp.weight.shape == (4, 4)
    with pytest.raises(ConfigError, match=r"mlp_layers\[0\] must be 2 \* dim = 8"):
        build_model(ModelSpec(name="mlp", params={"dim": 4, "mlp_layers": [16, 4]}), data.meta)


def test_neumf_score_by_hand(data: TrainData) -> None:
    cfg = NeuMFConfig(mode="gmf", dim=2)
    model = NeuMF(data.meta, cfg)
    with torch.no_grad():
        model.user_gmf.weight[0] = torch.tensor([1.0, 2.0])
        model.item_gmf.weight[4] = torch.tensor([3.0, -1.0])
        model.predict.weight[:] = torch.tensor([[0.5, 2.0]])
        model.predict.bias[:] = 0.25
    # h · (p ⊙ q) + b = 0.5*3 + 2*(-2) + 0.25 = -2.25
    emb = model.encode(data)
    assert model.score(emb, torch.tensor([0]), torch.tensor([4])).item() == pytest.approx(-2.25)


def test_neumf_dropout_only_in_training(data: TrainData) -> None:
    model = _build("neumf", data, dropout=0.5)
    emb = model.encode(data)
    u, i = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3])
    with torch.no_grad():
        e1, e2 = model.score(emb, u, i), model.score(emb, u, i)
        assert torch.equal(e1, e2)
        model.train()
        torch.manual_seed(5)
        t1 = model.score(emb, u, i)
        t2 = model.score(emb, u, i)
    assert not torch.equal(t1, t2)


def test_itemknn_cold_user_scores_zero() -> None:
    d = make_data(KNN_PAIRS, 4, 4)  # user 3 has no training positive
    model = build_model(ModelSpec(name="itemknn", params={"k": 1}), d.meta)
    model.prepare(d)
    scores = model.score_all(model.encode(d), torch.tensor([3, 2, 3]))
    assert scores.shape == (3, 4)
    assert scores[0].abs().sum() == 0 and scores[2].abs().sum() == 0 and scores[1].abs().sum() > 0
    assert model.score(model.encode(d), torch.tensor([3, 2]), torch.tensor([0, 0])).tolist()[0] == 0.0


def test_itemknn_score_all_matches_sparse_product(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.sparse as sp

    import gnnrec.models.baselines.itemknn as knn

    rng = np.random.default_rng(1)
    pairs = np.unique(np.stack([rng.integers(0, 25, 200), rng.integers(0, 30, 200)]), axis=1)
    d = make_data([tuple(p) for p in pairs.T.tolist()], 25, 30)
    model = build_model(ModelSpec(name="itemknn", params={"k": 4, "shrink": 1.0}), d.meta)
    model.prepare(d)
    x = sp.csr_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(25, 30))
    users = torch.tensor([3, 0, 24, 3, 11])
    expected = torch.from_numpy((x[users.numpy()] @ model.sim).toarray()).float()
    torch.testing.assert_close(model.score_all(model.encode(d), users), expected)
    monkeypatch.setattr(knn, "_SCORE_CHUNK", 3)  # many chunks of (user, neighbour) terms
    torch.testing.assert_close(model.score_all(model.encode(d), users), expected)
