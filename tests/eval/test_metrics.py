"""Ranking metrics against hand computations on a 3-user x 6-item example."""

from __future__ import annotations

import pytest
import torch

from gnnrec.errors import ConfigError
from gnnrec.eval.metrics import (
    METRICS,
    compute_metrics,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

# Full rankings of 6 items (Kmax = 6):
#   user 0: ranking [2, 0, 5, 1, 3, 4], held out {0, 1}    -> hits at ranks 2 and 4
#   user 1: ranking [4, 0, 1, 2, 3, 5], held out {4}       -> hit at rank 1
#   user 2: ranking [1, 2, 5, 4, 0, 3], held out {0, 3, 5} -> hits at ranks 3, 5 and 6
HITS = torch.tensor(
    [
        [False, True, False, True, False, False],
        [True, False, False, False, False, False],
        [False, False, True, False, True, True],
    ]
)
NUM_REL = torch.tensor([2, 1, 3])

# Discounts 1/log2(rank + 1): rank1 1, rank2 0.6309297536, rank3 0.5, rank4 0.4306765581,
# rank5 0.3868528072, rank6 0.3562071871.
# IDCG(2) = 1 + 0.6309297536 = 1.6309297536; IDCG(3) = 1.6309297536 + 0.5 = 2.1309297536.
EXPECTED = {
    # hits in top K / num_relevant
    "recall@1": [0 / 2, 1 / 1, 0 / 3],
    "recall@3": [1 / 2, 1 / 1, 1 / 3],
    "recall@5": [2 / 2, 1 / 1, 2 / 3],
    # hits in top K / K
    "precision@1": [0.0, 1.0, 0.0],
    "precision@3": [1 / 3, 1 / 3, 1 / 3],
    "precision@5": [2 / 5, 1 / 5, 2 / 5],
    "hit@1": [0.0, 1.0, 0.0],
    "hit@3": [1.0, 1.0, 1.0],
    "hit@5": [1.0, 1.0, 1.0],
    "ndcg@1": [0.0, 1.0, 0.0],
    # u0: 0.6309297536 / IDCG(2) 1.6309297536 = 0.3868528072
    # u1: 1 / 1
    # u2: 0.5 / IDCG(3) 2.1309297536 = 0.2346393630
    "ndcg@3": [0.3868528072, 1.0, 0.2346393630],
    # u0: (0.6309297536 + 0.4306765581) / 1.6309297536 = 1.0616063117 / 1.6309297536 = 0.6509209298
    # u2: (0.5 + 0.3868528072) / 2.1309297536 = 0.8868528072 / 2.1309297536 = 0.4161811555
    "ndcg@5": [0.6509209298, 1.0, 0.4161811555],
    # first hit: u0 rank 2, u1 rank 1, u2 rank 3
    "mrr@1": [0.0, 1.0, 0.0],
    "mrr@3": [1 / 2, 1.0, 1 / 3],
    "mrr@5": [1 / 2, 1.0, 1 / 3],
}


def test_compute_metrics_hand_example() -> None:
    out = compute_metrics(HITS, NUM_REL, ["recall", "precision", "hit", "ndcg", "mrr"], [5, 1, 3])
    assert list(out) == [f"{m}@{k}" for m in ["recall", "precision", "hit", "ndcg", "mrr"] for k in (1, 3, 5)]
    for key, want in EXPECTED.items():
        assert out[key].shape == (3,)
        assert out[key].dtype == torch.float64
        torch.testing.assert_close(out[key], torch.tensor(want, dtype=torch.float64), atol=1e-9, rtol=0)


def test_ndcg_full_list_and_ideal_truncation() -> None:
    # u2 at K=6: (0.5 + 0.3868528072 + 0.3562071871) / 2.1309297536 = 1.2430599943 / 2.1309297536
    got = ndcg_at_k(HITS, NUM_REL, 6)
    torch.testing.assert_close(got[2], torch.tensor(0.5833416105, dtype=torch.float64), atol=1e-9, rtol=0)
    # more relevant items than K: IDCG uses K ideal hits, so a perfect top-2 list scores 1
    perfect = torch.tensor([[True, True, False]])
    assert ndcg_at_k(perfect, torch.tensor([5]), 2).item() == pytest.approx(1.0)
    # ... while recall still divides by all 5 held-out items
    assert recall_at_k(perfect, torch.tensor([5]), 2).item() == pytest.approx(2 / 5)


def test_user_without_relevant_items_scores_zero_not_nan() -> None:
    hits = torch.zeros(1, 3, dtype=torch.bool)
    zero = torch.tensor([0])
    for fn in (recall_at_k, precision_at_k, hit_at_k, ndcg_at_k, mrr_at_k):
        v = fn(hits, zero, 3)
        assert v.item() == 0.0


def test_float32_dtype_and_case_insensitive_names() -> None:
    out = compute_metrics(HITS, NUM_REL, ["NDCG"], [3], dtype=torch.float32)
    assert list(out) == ["ndcg@3"]
    assert out["ndcg@3"].dtype == torch.float32
    torch.testing.assert_close(out["ndcg@3"], torch.tensor(EXPECTED["ndcg@3"], dtype=torch.float32))


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        compute_metrics(HITS, NUM_REL, ["auc"], [1])
    with pytest.raises(ConfigError, match="positive"):
        compute_metrics(HITS, NUM_REL, ["recall"], [0])
    with pytest.raises(ConfigError):
        compute_metrics(HITS, NUM_REL, [], [1])
    with pytest.raises(ValueError, match="k must be in 1..6"):
        compute_metrics(HITS, NUM_REL, ["recall"], [7])
    with pytest.raises(ValueError, match="num_relevant"):
        recall_at_k(HITS, torch.tensor([1, 2]), 1)


def test_registry_names() -> None:
    assert sorted(METRICS) == ["hit", "mrr", "ndcg", "precision", "recall"]
