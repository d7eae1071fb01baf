"""GF-CF (gnnrec.models.encoders.gf_cf) on hand-written and tiny random training data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnnrec.config import ModelSpec
from gnnrec.errors import ConfigError
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models import MODELS, build_model
from gnnrec.models.encoders import gf_cf
from gnnrec.models.encoders.gf_cf import (
    GFCF,
    CSRBags,
    binary_matrix,
    item_gram,
    normalize_rating,
    randomized_right_singular,
    right_singular_vectors,
    spmm,
)


def make_data(
    pairs: list[tuple[int, int]],
    num_users: int,
    num_items: int,
    extra: list[tuple[int, int]] | None = None,
) -> TrainData:
    """TrainData whose positives (``buy``) are ``pairs``; ``extra`` are ``view`` edges."""
    pos = torch.tensor(pairs, dtype=torch.long).T.contiguous()
    edges = {"buy": pos}
    behaviors: tuple[str, ...] = ("buy",)
    if extra is not None:
        edges = {
            "view": torch.tensor(extra, dtype=torch.long).T.contiguous(),
            "buy": pos,
        }
        behaviors = ("view", "buy")
    meta = GraphMeta(num_users, num_items, 1, behaviors, "buy")
    return TrainData(
        meta=meta,
        edge_index=edges,
        edge_ts={
            b: torch.zeros(e.shape[1], dtype=torch.long) for b, e in edges.items()
        },
        edge_count={
            b: torch.ones(e.shape[1], dtype=torch.long) for b, e in edges.items()
        },
        pos_index=pos,
        item_category=torch.zeros(num_items, dtype=torch.long),
    )


def fit(data: TrainData, **params: object) -> GFCF:
    model = build_model(ModelSpec(name="gf_cf", params=params), data.meta)
    assert isinstance(model, GFCF)
    model.prepare(data)
    model.eval()
    return model


def scores(
    model: GFCF, data: TrainData, users: list[int] | None = None
) -> torch.Tensor:
    idx = torch.arange(data.meta.num_users) if users is None else torch.tensor(users)
    with torch.no_grad():
        return model.score_all(model.encode(data), idx).contiguous()


# ---------------------------------------------------------------- the hand example
# 3 users x 4 items: u0 {0, 1}, u1 {1, 2}, u2 {0, 2, 3}; a connected bipartite graph.
# Degrees: users (2, 2, 3), items (2, 2, 2, 1), 7 edges.
HAND = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 2), (2, 3)]
S2 = math.sqrt(2) / 6  # 1 / sqrt(3 * 6): R~[u2, 3] * R~[u2, i] for i in {0, 2}

# Linear filter r_u R~^T R~ = sum of the rows i in u's history of G = R~^T R~, with
#   G00 = G22 = 1/4 + 1/6 = 5/12, G11 = 1/4 + 1/4 = 1/2, G33 = 1/3,
#   G01 = G12 = 1/4, G02 = 1/6, G03 = G23 = 1/(sqrt 6 sqrt 3) = sqrt(2)/6, G13 = 0.
HAND_LINEAR = np.array(
    [
        [5 / 12 + 1 / 4, 1 / 4 + 1 / 2, 1 / 6 + 1 / 4, S2],  # G0 + G1
        [1 / 4 + 1 / 6, 1 / 2 + 1 / 4, 1 / 4 + 5 / 12, S2],  # G1 + G2
        [
            5 / 12 + 1 / 6 + S2,
            1 / 4 + 1 / 4,
            1 / 6 + 5 / 12 + S2,
            2 * S2 + 1 / 3,
        ],  # G0 + G2 + G3
    ]
)
HAND_R = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1]], dtype=np.float64)


def numpy_gf_cf(r: np.ndarray, rank: int, alpha: float) -> np.ndarray:
    """Reference: the formula of the paper with numpy's dense SVD (float64)."""
    du, di = r.sum(1), r.sum(0)
    rn = r / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    _, _, vt = np.linalg.svd(rn)
    v = vt[:rank].T
    ideal = r @ np.diag(di**-0.5) @ v @ v.T @ np.diag(di**0.5)
    return r @ rn.T @ rn + alpha * ideal


def test_hand_example_linear_filter_by_hand() -> None:
    data = make_data(HAND, 3, 4)
    got = scores(fit(data, alpha=0.0), data)
    np.testing.assert_allclose(got.numpy(), HAND_LINEAR, rtol=0, atol=1e-6)
    np.testing.assert_allclose(numpy_gf_cf(HAND_R, 0, 0.0), HAND_LINEAR, atol=1e-12)


@pytest.mark.parametrize("dense_item_gram", [True, False])
def test_hand_example_full_rank(dense_item_gram: bool) -> None:
    # With all singular vectors, V V^T projects onto the row space of R~, which holds
    # r_u D^-1/2 (= sqrt(d_u) R~_u), so the ideal low-pass returns the history itself:
    # s_u = r_u R~^T R~ + alpha r_u.
    data = make_data(HAND, 3, 4)
    model = fit(data, alpha=0.3, rank=256, dense_item_gram=dense_item_gram)
    assert model.svd_method == "dense"
    expected = HAND_LINEAR + 0.3 * HAND_R
    np.testing.assert_allclose(scores(model, data).numpy(), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(numpy_gf_cf(HAND_R, 3, 0.3), expected, atol=1e-12)


@pytest.mark.parametrize("svd", ["dense", "randomized", "arpack"])
def test_hand_example_rank_one(svd: str) -> None:
    # The top singular pair of R~ of a connected graph is sigma = 1, v = sqrt(d_I) / sqrt(|E|),
    # so the rank-1 ideal low-pass is d_u d_j / |E|: popularity scaled by the user's degree.
    data = make_data(HAND, 3, 4)
    model = fit(data, alpha=0.5, rank=1, svd=svd)
    assert model.svd_method == svd
    np.testing.assert_allclose(model.singular_values, [1.0], atol=1e-6)
    ideal = np.outer([2, 2, 3], [2, 2, 2, 1]) / 7
    np.testing.assert_allclose(
        scores(model, data).numpy(), HAND_LINEAR + 0.5 * ideal, rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        numpy_gf_cf(HAND_R, 1, 0.5), HAND_LINEAR + 0.5 * ideal, atol=1e-12
    )


def test_embeddings_are_the_low_pass_factors() -> None:
    data = make_data(HAND, 3, 4)
    emb = fit(data, rank=1).encode(data)
    # user: R D^-1/2 v = sqrt(d_u) / sqrt(7); item: D^1/2 v = d_j / sqrt(7), up to one sign
    u, i = emb["user"].numpy().ravel(), emb["item"].numpy().ravel()
    sign = np.sign(u[0])
    np.testing.assert_allclose(
        sign * u, [2 / math.sqrt(7), 2 / math.sqrt(7), 3 / math.sqrt(7)], atol=1e-6
    )
    np.testing.assert_allclose(
        sign * i, np.array([2, 2, 2, 1]) / math.sqrt(7), atol=1e-6
    )


# ---------------------------------------------------------------- random data
def random_pairs(
    num_users: int, num_items: int, density: float, seed: int
) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    cells = rng.random((num_users, num_items)) < density
    cells[np.arange(num_users), rng.integers(0, num_items, num_users)] = (
        True  # no empty user
    )
    cells[:, -1] = False  # the last item never occurs in training
    u, i = np.nonzero(cells)
    return list(zip(u.tolist(), i.tolist()))


@pytest.fixture(scope="module")
def medium() -> TrainData:
    return make_data(random_pairs(40, 60, 0.12, seed=1), 41, 60)  # user 40: no history


def test_matches_numpy_reference(medium: TrainData) -> None:
    model = fit(medium, alpha=0.3, rank=12, svd="dense")
    r = np.zeros((41, 60))
    r[medium.pos_index[0].numpy(), medium.pos_index[1].numpy()] = 1
    ref = numpy_gf_cf(r[:40, :59], 12, 0.3)  # the reference needs non-zero degrees
    got = scores(model, medium).numpy()
    np.testing.assert_allclose(got[:40, :59], ref, rtol=1e-5, atol=1e-5)
    # an item without training interactions and a user without history score 0
    assert np.all(got[:, 59] == 0) and np.all(got[40] == 0)


def test_dense_and_sparse_item_gram_agree(medium: TrainData) -> None:
    dense = fit(medium, rank=10, dense_item_gram=True)
    sparse = fit(medium, rank=10, dense_item_gram=False)
    assert dense.gram is not None and sparse.gram is None
    torch.testing.assert_close(
        scores(dense, medium), scores(sparse, medium), rtol=1e-5, atol=1e-6
    )


def test_item_gram_in_row_blocks(medium: TrainData) -> None:
    rn, _ = normalize_rating(binary_matrix(medium.pos_index.numpy(), 41, 60))
    expected = (rn.T @ rn).toarray()
    for cells in (
        2**24,
        60,
        1,
    ):  # one block, one row per block, and a block smaller than a row
        np.testing.assert_allclose(
            item_gram(rn, block_cells=cells), expected, rtol=1e-6, atol=1e-7
        )


def test_auto_gram_follows_the_memory_budget(medium: TrainData) -> None:
    # 60^2 float32 = 14,400 bytes
    assert fit(medium, rank=2, gram_budget_mb=14_400 / 2**20).gram is not None
    assert fit(medium, rank=2, gram_budget_mb=14_399 / 2**20).gram is None


@pytest.mark.parametrize("dense_item_gram", [True, False])
def test_batching_invariance(medium: TrainData, dense_item_gram: bool) -> None:
    model = fit(medium, rank=8, dense_item_gram=dense_item_gram)
    full = scores(model, medium)
    order = [7, 40, 0, 3, 3, 25]  # unordered, repeated, the empty user
    torch.testing.assert_close(
        scores(model, medium, order), full[order], rtol=1e-6, atol=1e-6
    )
    single = torch.cat([scores(model, medium, [u]) for u in range(41)])
    torch.testing.assert_close(single, full, rtol=1e-6, atol=1e-6)


def test_user_blocks_of_the_sparse_path(
    medium: TrainData, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fit(medium, rank=8, dense_item_gram=False)
    full = scores(model, medium)
    monkeypatch.setattr(
        gf_cf, "SCORE_BLOCK_USERS", 3
    )  # 41 users: 13 full blocks and one of 2
    blocked = model.score_all(model.encode(medium), torch.arange(41))
    assert blocked.is_contiguous()
    torch.testing.assert_close(blocked, full, rtol=1e-6, atol=1e-6)


def test_score_agrees_with_score_all(medium: TrainData) -> None:
    model = fit(medium, rank=8, dense_item_gram=False)
    emb = model.encode(medium)
    users = torch.tensor([5, 0, 5, 40, 12])
    items = torch.tensor([3, 59, 8, 1, 0])
    pair = model.score(emb, users, items)
    torch.testing.assert_close(pair, scores(model, medium)[users, items])


def test_source_graph_uses_every_edge_behaviour() -> None:
    # buys u0 {0}, u1 {1}; views u0 {1}, u1 {2}: with source=graph R = buys | views
    data = make_data([(0, 0), (1, 1)], 2, 3, extra=[(0, 1), (1, 2)])
    both = make_data([(0, 0), (0, 1), (1, 1), (1, 2)], 2, 3)
    torch.testing.assert_close(
        scores(fit(data, source="graph"), data), scores(fit(both), both)
    )
    buys_only = make_data([(0, 0), (1, 1)], 2, 3)
    torch.testing.assert_close(
        scores(fit(data), data), scores(fit(buys_only), buys_only)
    )


def test_alpha_zero_or_rank_zero_is_the_linear_filter(medium: TrainData) -> None:
    lin = scores(fit(medium, alpha=0.0), medium)
    torch.testing.assert_close(scores(fit(medium, rank=0), medium), lin)
    assert not torch.allclose(scores(fit(medium, rank=4), medium), lin)


def test_deterministic_and_seeded(medium: TrainData) -> None:
    a = scores(
        fit(medium, rank=5, svd="randomized", svd_iters=1, svd_oversample=2), medium
    )
    b = scores(
        fit(medium, rank=5, svd="randomized", svd_iters=1, svd_oversample=2), medium
    )
    assert torch.equal(a, b)


# ---------------------------------------------------------------- SVD and sparse kernels
def spectrum_matrix(seed: int = 0) -> sp.csr_matrix:
    """A 120 x 80 sparse-ish matrix with singular values 1, 0.95, ..., decaying."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((120, 80)))
    v, _ = np.linalg.qr(rng.standard_normal((80, 80)))
    s = 0.95 ** np.arange(80)
    return sp.csr_matrix((u * s) @ v.T, dtype=np.float32)


def projector(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float64) @ v.T.astype(np.float64)


@pytest.mark.parametrize("method", ["randomized", "arpack"])
def test_svd_methods_agree_with_dense(method: str) -> None:
    a = spectrum_matrix()
    s_ref, v_ref, _ = right_singular_vectors(a, 10, "dense")
    s, v, used = right_singular_vectors(a, 10, method, oversample=10, iters=15, seed=3)
    assert used == method and v.shape == (80, 10)
    np.testing.assert_allclose(s, s_ref, rtol=1e-4)
    np.testing.assert_allclose(projector(v), projector(v_ref), atol=2e-3)
    np.testing.assert_allclose(v.T @ v, np.eye(10), atol=1e-5)


def test_randomized_svd_improves_with_iterations() -> None:
    a = spectrum_matrix(1)
    _, v_ref, _ = right_singular_vectors(a, 10, "dense")
    err = [
        np.abs(
            projector(
                randomized_right_singular(a, 10, oversample=4, iters=n, seed=0)[1]
            )
            - projector(v_ref)
        ).max()
        for n in (0, 8)
    ]
    assert err[1] < err[0] / 10


def test_svd_rank_capped_and_auto() -> None:
    a = spectrum_matrix()
    _, v, used = right_singular_vectors(a, 500, "randomized")
    assert used == "dense" and v.shape == (80, 80)  # full rank: exact
    assert right_singular_vectors(a, 4, "auto")[2] == "dense"  # 9,600 cells: small
    assert right_singular_vectors(a, 0, "auto")[1].shape == (80, 0)


def test_spmm_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a = sp.random(
        50, 30, density=0.2, format="csr", dtype=np.float32, random_state=1
    ).tolil()
    a[0, :] = 0  # empty first row
    a[45:, :] = 0  # empty trailing rows (embedding_bag: empty last bags)
    a = a.tocsr()
    x = rng.standard_normal((30, 7)).astype(np.float32)
    got = spmm(a, x)
    assert isinstance(got, torch.Tensor) and got.shape == (50, 7)
    np.testing.assert_allclose(got.numpy(), a @ x, rtol=1e-5, atol=1e-6)
    assert spmm(a, np.zeros((30, 0), dtype=np.float32)).shape == (50, 0)
    assert torch.equal(
        spmm(sp.csr_matrix((4, 30), dtype=np.float32), x), torch.zeros(4, 7)
    )
    with pytest.raises(ValueError):
        CSRBags(a).matmul(torch.zeros(29, 7))


def test_binary_and_normalized_matrices() -> None:
    r = binary_matrix(
        np.array([[0, 0, 1, 1, 1], [2, 2, 0, 3, 3]]), 2, 4
    )  # duplicates count once
    np.testing.assert_array_equal(r.toarray(), [[0, 0, 1, 0], [1, 0, 0, 1]])
    rn, di = normalize_rating(r)
    np.testing.assert_array_equal(di, [1, 0, 1, 1])
    np.testing.assert_allclose(
        rn.toarray(), [[0, 0, 1, 0], [0.5**0.5, 0, 0, 0.5**0.5]], atol=1e-7
    )


# ---------------------------------------------------------------- config and protocol
def test_registered_and_not_trainable() -> None:
    assert "gf_cf" in MODELS.names()
    assert MODELS.get("gf_cf").trainable is False
    assert "Shen" in MODELS.meta("gf_cf")["description"]


def test_config_validation() -> None:
    meta = GraphMeta(2, 2, 1, ("buy",), "buy")
    for bad in (
        {"alpha": -1},
        {"dense_item_gram": "maybe"},
        {"svd": "qr"},
        {"rank_k": 3},
    ):
        with pytest.raises(ConfigError, match="model.params"):
            build_model(ModelSpec(name="gf_cf", params=bad), meta)
    model = build_model(
        ModelSpec(name="gf_cf", params={"dense_item_gram": "auto"}), meta
    )
    assert model.config.dense_item_gram == "auto"  # type: ignore[attr-defined]


def test_state_dict_after_scoring(medium: TrainData, tmp_path) -> None:
    # the runner saves model.state_dict(); scoring caches must not be taken for buffers
    model = fit(medium, rank=4, dense_item_gram=False)
    scores(model, medium)
    assert model.state_dict() == {}
    torch.save(model.state_dict(), tmp_path / "model.pt")


def test_encode_before_prepare_raises() -> None:
    data = make_data(HAND, 3, 4)
    model = build_model(ModelSpec(name="gf_cf"), data.meta)
    with pytest.raises(RuntimeError, match="prepare"):
        model.encode(data)
