"""Full-ranking evaluator: targets, masking, batching, agreement with a naive loop."""

from __future__ import annotations

from math import log2

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID, InteractionTable, Split
from gnnrec.errors import ConfigError
from gnnrec.eval.evaluator import (
    EvalTargets,
    Evaluator,
    build_targets,
    csr_rows_dense,
    masked_topk,
)
from gnnrec.graph.data import GraphMeta
from gnnrec.models.base import EmbDict, Recommender

ALL_METRICS = ["recall", "precision", "hit", "ndcg", "mrr"]


class FixedScores(Recommender):
    """score_all returns rows of the fixed matrix ``emb["scores"]``."""

    trainable = False

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__(GraphMeta(num_users, num_items, 0, ("buy",), "buy"))

    def encode(self, data: object) -> EmbDict:  # pragma: no cover - not used
        raise NotImplementedError

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        return emb["scores"][user_index]


def _csr(pairs: set[tuple[int, int]], shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix(shape, dtype=bool)
    if pairs:
        u, i = zip(*sorted(pairs))
        m = sp.csr_matrix((np.ones(len(u), dtype=bool), (u, i)), shape=shape)
    m.sort_indices()
    return m


def _pairs(m: sp.csr_matrix | None) -> set[tuple[int, int]]:
    assert m is not None
    u, i = m.nonzero()
    return {(int(a), int(b)) for a, b in zip(u, i)}


def _naive(scores: np.ndarray, targets: EvalTargets, ks: list[int]) -> dict[str, list[float]]:
    """Reference: a per-user Python loop with stable argsort and textbook formulas."""
    out: dict[str, list[float]] = {f"{m}@{k}": [] for m in ALL_METRICS for k in ks}
    for u in targets.users:
        truth = set(targets.truth[u].indices.tolist())
        masked = set(targets.exclude[u].indices.tolist()) if targets.exclude is not None else set()
        order = [int(i) for i in np.argsort(-scores[u], kind="stable") if int(i) not in masked]
        for k in ks:
            top = order[:k]
            hit = [1 if i in truth else 0 for i in top]
            n_hit = sum(hit)
            dcg = sum(h / log2(r + 2) for r, h in enumerate(hit))
            idcg = sum(1 / log2(r + 2) for r in range(min(len(truth), k)))
            first = next((r for r, h in enumerate(hit) if h), None)
            out[f"recall@{k}"].append(n_hit / len(truth))
            out[f"precision@{k}"].append(n_hit / k)
            out[f"hit@{k}"].append(float(n_hit > 0))
            out[f"ndcg@{k}"].append(dcg / idcg)
            out[f"mrr@{k}"].append(0.0 if first is None else 1 / (first + 1))
    return out


def _random_targets(rng: np.random.Generator, nu: int, ni: int) -> EvalTargets:
    truth = rng.random((nu, ni)) < 0.2
    truth[::4] = False  # every 4th user has no held-out item
    exclude = rng.random((nu, ni)) < 0.3
    exclude[1] = True  # one user with every item masked: an empty list
    exclude[2, : ni - 2] = True  # one user with only 2 rankable items: a list shorter than K
    exclude[5] = exclude[5] | truth[5]  # repeat items: held out but masked, unreachable
    users = np.flatnonzero(truth.any(1)).astype(np.int64)
    return EvalTargets(users=users, truth=sp.csr_matrix(truth), exclude=sp.csr_matrix(exclude))


@pytest.mark.parametrize("batch_size", [1, 3, 10_000])
def test_evaluator_matches_naive_loop(batch_size: int) -> None:
    rng = np.random.default_rng(0)
    nu, ni = 23, 12
    scores = rng.standard_normal((nu, ni))  # continuous: no ties, so the order is unique
    targets = _random_targets(rng, nu, ni)
    ks = [1, 3, 10, 20]  # 20 > 12 items: the tail of every list is empty
    model = FixedScores(nu, ni)
    res = Evaluator(ks, ALL_METRICS, batch_size=batch_size).evaluate(
        model, {"scores": torch.tensor(scores)}, targets
    )
    want = _naive(scores, targets, ks)
    assert res.num_users == targets.users.shape[0] == len(res.per_user)
    assert res.per_user["user"].to_list() == targets.users.tolist()
    assert res.per_user.columns == ["user"] + [f"{m}@{k}" for m in ALL_METRICS for k in ks]
    for key, vals in want.items():
        np.testing.assert_allclose(res.per_user[key].to_numpy(), vals, atol=1e-6, rtol=0)
        assert res.metrics[key] == pytest.approx(float(np.mean(vals)), abs=1e-6)
    # the fully masked user and the repeat-item user contribute no hits from masked items
    row1 = res.per_user.filter(pl.col("user") == 1)
    assert row1["hit@20"].to_list() == [0.0]


def test_evaluator_without_mask_and_float32_scores() -> None:
    rng = np.random.default_rng(1)
    nu, ni = 9, 15
    scores = rng.standard_normal((nu, ni)).astype(np.float32)
    t = _random_targets(rng, nu, ni)
    targets = EvalTargets(users=t.users, truth=t.truth, exclude=None)
    res = Evaluator([5], ALL_METRICS, batch_size=4).evaluate(
        FixedScores(nu, ni), {"scores": torch.tensor(scores)}, targets
    )
    for key, vals in _naive(scores, targets, [5]).items():
        np.testing.assert_allclose(res.per_user[key].to_numpy(), vals, atol=1e-6, rtol=0)


@settings(max_examples=40, deadline=None)
@given(
    nu=st.integers(1, 6),
    ni=st.integers(1, 10),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    tied=st.booleans(),
)
def test_masked_items_never_ranked(nu: int, ni: int, k: int, seed: int, tied: bool) -> None:
    rng = np.random.default_rng(seed)
    # tied=True: few distinct values, so ties and -inf-like clashes are frequent
    scores = rng.integers(0, 3, (nu, ni)).astype(np.float64) if tied else rng.standard_normal((nu, ni))
    mask = rng.random((nu, ni)) < rng.random()
    items, valid = masked_topk(torch.tensor(scores), torch.tensor(mask), k)
    items_np, valid_np = items.numpy(), valid.numpy()
    assert items_np.shape == (nu, min(k, ni))
    for u in range(nu):
        unmasked = np.flatnonzero(~mask[u])
        n_valid = min(k, ni, unmasked.shape[0])
        # the valid slots come first, hold distinct unmasked items, and are the best ones
        assert valid_np[u].tolist() == [True] * n_valid + [False] * (items_np.shape[1] - n_valid)
        chosen = items_np[u, :n_valid]
        assert not mask[u, chosen].any()
        assert len(set(chosen.tolist())) == n_valid
        rest = np.setdiff1d(unmasked, chosen)
        if n_valid and rest.size:
            assert scores[u, chosen].min() >= scores[u, rest].max()
        assert np.all(np.diff(scores[u, chosen]) <= 0)

    # end to end: when the truth is exactly the masked items, nothing is ever a hit
    truth = sp.csr_matrix(mask)
    users = np.flatnonzero(mask.any(1)).astype(np.int64)
    if users.size:
        res = Evaluator([k], ["hit", "recall"], batch_size=2).evaluate(
            FixedScores(nu, ni),
            {"scores": torch.tensor(scores)},
            EvalTargets(users=users, truth=truth, exclude=sp.csr_matrix(mask)),
        )
        assert res.per_user[f"hit@{k}"].sum() == 0.0


def test_csr_rows_dense_selects_rows_in_order() -> None:
    m = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=bool))
    indptr = torch.as_tensor(m.indptr.astype(np.int64))
    indices = torch.as_tensor(m.indices.astype(np.int64))
    got = csr_rows_dense(indptr, indices, torch.tensor([2, 0, 1, 0]), 4)
    want = [[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]
    assert got.int().tolist() == want
    assert not csr_rows_dense(indptr, indices, torch.tensor([1]), 4).any()


# ---------------------------------------------------------------- build_targets on a hand table

# behaviours ("view", "buy"), target = buy (1); 4 users a-d, 5 items
ROWS = [
    # user, item, behaviour, assign
    (0, 0, 0, TRAIN),
    (0, 1, 1, TRAIN),
    (0, 2, 1, VALID),
    (0, 3, 1, TEST),
    (0, 1, 1, TEST),  # repeat purchase of a training item
    (1, 4, 0, TRAIN),
    (1, 0, 1, VALID),
    (1, 0, 1, VALID),  # duplicate held-out event: one truth pair
    (2, 2, 1, TRAIN),
    (2, 3, 0, EXCLUDED),
    (2, 4, 1, TEST),
    (3, 1, 0, TRAIN),  # user d has nothing held out: not evaluated
    (1, 3, 0, VALID),  # a held-out view: not truth, counted
    (2, 1, 1, EXCLUDED),  # excluded rows are never masked
]


def _table_split() -> tuple[InteractionTable, Split]:
    a = np.array(ROWS, dtype=np.int64)
    table = InteractionTable(
        user=a[:, 0],
        item=a[:, 1],
        behavior=a[:, 2].astype(np.int8),
        ts=None,
        item_category=np.full(5, -1, dtype=np.int64),
        behaviors=("view", "buy"),
        target_behavior="buy",
        user_ids=np.array(["a", "b", "c", "d"]),
        item_ids=np.array(["i0", "i1", "i2", "i3", "i4"]),
        category_ids=np.array([], dtype=str),
    )
    return table, Split(assign=a[:, 3].astype(np.int8), target=1, mode="given")


TRAIN_BUY = {(0, 1), (2, 2)}
TRAIN_ALL = {(0, 0), (0, 1), (1, 4), (2, 2), (3, 1)}
VALID_BUY = {(0, 2), (1, 0)}


@pytest.mark.parametrize(
    ("which", "mask", "users", "truth", "exclude", "truth_masked"),
    [
        ("valid", "target", [0, 1], VALID_BUY, TRAIN_BUY, 0),
        ("valid", "all", [0, 1], VALID_BUY, TRAIN_ALL, 0),
        ("valid", "none", [0, 1], VALID_BUY, None, 0),
        # test time: validation purchases are known history and masked too
        ("test", "target", [0, 2], {(0, 3), (0, 1), (2, 4)}, TRAIN_BUY | VALID_BUY, 1),
        ("test", "all", [0, 2], {(0, 3), (0, 1), (2, 4)}, TRAIN_ALL | VALID_BUY, 1),
        ("test", "none", [0, 2], {(0, 3), (0, 1), (2, 4)}, None, 0),
    ],
)
def test_build_targets(
    which: str,
    mask: str,
    users: list[int],
    truth: set[tuple[int, int]],
    exclude: set[tuple[int, int]] | None,
    truth_masked: int,
) -> None:
    table, split = _table_split()
    t = build_targets(table, split, which, mask)  # type: ignore[arg-type]
    assert t.users.dtype == np.int64 and t.users.tolist() == users
    assert t.truth.shape == (4, 5) and t.truth.dtype == bool and t.truth.has_canonical_format
    assert _pairs(t.truth) == truth
    if exclude is None:
        assert t.exclude is None
    else:
        assert t.exclude is not None and t.exclude.shape == (4, 5) and t.exclude.dtype == bool
        assert _pairs(t.exclude) == exclude
    assert t.info["truth_masked"] == truth_masked
    assert t.info["num_truth_pairs"] == len(truth)
    assert t.info["held_out_non_target"] == (1 if which == "valid" else 0)


def test_build_targets_bad_arguments() -> None:
    table, split = _table_split()
    with pytest.raises(ConfigError, match="'train'"):
        build_targets(table, split, "train", "target")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="eval.mask"):
        build_targets(table, split, "valid", "some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="entries for a table of 14 rows"):
        build_targets(table, Split(split.assign[:3], 1, "given"), "valid")


def test_end_to_end_hand_values() -> None:
    """build_targets + Evaluator on the hand table with hand-ranked scores."""
    table, split = _table_split()
    targets = build_targets(table, split, "valid", "target")
    scores = torch.tensor(
        [
            [0.5, 0.9, 0.1, 0.3, 0.2],  # user a: item 1 masked -> ranking 0, 3, 4, 2; truth {2}: rank 4
            [0.1, 0.2, 0.3, 0.4, 0.5],  # user b: nothing masked -> ranking 4, 3, 2, 1, 0; truth {0}: rank 5
            [0.0] * 5,
            [0.0] * 5,
        ]
    )
    res = Evaluator([1, 5, 10], ALL_METRICS, batch_size=1).evaluate(
        FixedScores(4, 5), {"scores": scores}, targets
    )
    pu = res.per_user
    assert pu["user"].to_list() == [0, 1]
    assert pu["recall@1"].to_list() == [0.0, 0.0]
    assert pu["recall@5"].to_list() == [1.0, 1.0]
    assert pu["recall@10"].to_list() == [1.0, 1.0]  # only 4 resp. 5 items exist: the rest is empty
    assert pu["precision@10"].to_list() == pytest.approx([0.1, 0.1])
    # ndcg@5: 1/log2(4+1) = 0.4306765581 and 1/log2(5+1) = 0.3868528072 (one relevant item: IDCG 1)
    assert pu["ndcg@5"].to_list() == pytest.approx([0.4306765581, 0.3868528072], abs=1e-9)
    assert pu["mrr@5"].to_list() == pytest.approx([1 / 4, 1 / 5])
    assert res.metrics["mrr@5"] == pytest.approx((1 / 4 + 1 / 5) / 2)
    assert res.metrics["hit@1"] == 0.0


def test_empty_targets_and_model_mode_restored() -> None:
    model = FixedScores(2, 3)
    model.train()
    empty = EvalTargets(users=np.zeros(0, dtype=np.int64), truth=sp.csr_matrix((2, 3), dtype=bool))
    res = Evaluator([2], ["ndcg"]).evaluate(model, {"scores": torch.zeros(2, 3)}, empty)
    assert res.num_users == 0 and res.per_user.columns == ["user", "ndcg@2"] and len(res.per_user) == 0
    assert np.isnan(res.metrics["ndcg@2"])

    targets = EvalTargets(users=np.array([1]), truth=_csr({(1, 2)}, (2, 3)))
    seen: list[bool] = []

    class Spy(FixedScores):
        def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
            seen.append(self.training)
            return super().score_all(emb, user_index)

    spy = Spy(2, 3)
    spy.train()
    res = Evaluator([1], ["hit"]).evaluate(spy, {"scores": torch.tensor([[0.0, 0, 0], [0, 0, 1.0]])}, targets)
    assert seen == [False] and spy.training  # scored in eval mode, training mode restored
    assert res.metrics["hit@1"] == 1.0


def test_scores_of_wrong_shape_are_reported() -> None:
    targets = EvalTargets(users=np.array([0]), truth=_csr({(0, 1)}, (1, 3)))
    with pytest.raises(ValueError, match=r"score_all returned shape \(1, 4\), expected \(1, 3\)"):
        Evaluator([1], ["hit"]).evaluate(FixedScores(1, 4), {"scores": torch.zeros(1, 4)}, targets)


def test_embedding_device_wins_over_evaluator_default() -> None:
    # "meta" tensors cannot be computed on: the evaluation only works if it follows the embeddings
    targets = EvalTargets(users=np.array([0]), truth=_csr({(0, 1)}, (1, 3)))
    res = Evaluator([1], ["hit"], device="meta").evaluate(
        FixedScores(1, 3), {"scores": torch.tensor([[0.0, 1.0, 0.5]])}, targets
    )
    assert res.metrics["hit@1"] == 1.0


def test_evaluator_rejects_bad_config() -> None:
    with pytest.raises(ConfigError, match="unknown metric"):
        Evaluator([10], ["auc"])
    with pytest.raises(ConfigError, match="batch_size"):
        Evaluator([10], ["hit"], batch_size=0)
    assert Evaluator([20, 10, 10], ["NDCG", "hit"]).keys == ["ndcg@10", "ndcg@20", "hit@10", "hit@20"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_embeddings_give_cpu_results_equal_to_cpu_run() -> None:
    rng = np.random.default_rng(3)
    nu, ni = 30, 40
    scores = rng.standard_normal((nu, ni))
    targets = _random_targets(rng, nu, ni)
    ev = Evaluator([5, 10], ALL_METRICS, batch_size=7)
    cpu = ev.evaluate(FixedScores(nu, ni), {"scores": torch.tensor(scores)}, targets)
    gpu = ev.evaluate(FixedScores(nu, ni), {"scores": torch.tensor(scores, device="cuda")}, targets)
    assert gpu.per_user.columns == cpu.per_user.columns
    for key in cpu.metrics:
        np.testing.assert_allclose(gpu.per_user[key].to_numpy(), cpu.per_user[key].to_numpy(), atol=1e-9)


class SharedRowScores(FixedScores):
    """score_all returns an expanded view of one score vector (like a popularity model)."""

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        return emb["row"].unsqueeze(0).expand(user_index.shape[0], -1)


def test_masking_never_writes_into_a_models_score_storage() -> None:
    # the evaluator writes -inf into masked entries in place; a view must be copied first
    rng = np.random.default_rng(3)
    nu, ni = 9, 7
    row = torch.tensor(rng.standard_normal(ni))
    targets = _random_targets(rng, nu, ni)
    before = row.clone()
    res = Evaluator([3], ["hit", "ndcg"], batch_size=4).evaluate(SharedRowScores(nu, ni), {"row": row}, targets)
    assert torch.equal(row, before)
    want = _naive(np.tile(row.numpy(), (nu, 1)), targets, [3])
    np.testing.assert_allclose(res.per_user["hit@3"].to_numpy(), want["hit@3"], atol=1e-9)
