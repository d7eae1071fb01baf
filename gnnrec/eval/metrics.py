"""Ranking-accuracy metrics as pure tensor functions over a hit matrix.

Every metric takes

* ``hits``: bool ``[B, Kmax]``; ``hits[u, r]`` is True when the item ranked at position ``r``
  (0-based) of user ``u``'s top-``Kmax`` list is in the user's held-out set;
* ``num_relevant``: long ``[B]``, the size of each user's held-out set;
* ``k``: the cut-off, ``1 <= k <= Kmax``;

and returns one value per user, ``[B]`` float (``dtype``, default float64). Averaging over
users (and any segmenting) is the caller's business.

Definitions (binary relevance, ``rank = r + 1``):

* ``recall@K    = |hits in top K| / num_relevant`` (0 when ``num_relevant == 0``);
* ``precision@K = |hits in top K| / K``;
* ``hit@K       = 1 if any hit in top K else 0``;
* ``ndcg@K      = DCG@K / IDCG@K`` with ``DCG@K = sum_{r<K} hits[r] / log2(r + 2)`` and the
  ideal DCG of ``min(num_relevant, K)`` hits in the first positions (0 when
  ``num_relevant == 0``);
* ``mrr@K       = 1 / rank of the first hit within K``, else 0.

Recall divides by the full ``num_relevant`` (RecBole, LightGCN), so a user with more held-out
items than ``K`` cannot reach 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gnnrec.errors import ConfigError

MetricFn = Callable[[torch.Tensor, torch.Tensor, int, torch.dtype], torch.Tensor]


def _check(hits: torch.Tensor, num_relevant: torch.Tensor, k: int) -> None:
    if hits.dim() != 2:
        raise ValueError(f"hits must be [B, Kmax], got shape {tuple(hits.shape)}")
    if num_relevant.shape != hits.shape[:1]:
        raise ValueError(
            f"num_relevant must be [B] = [{hits.shape[0]}], got shape {tuple(num_relevant.shape)}"
        )
    if not 1 <= k <= hits.shape[1]:
        raise ValueError(f"k must be in 1..{hits.shape[1]} (the hit matrix width), got {k}")


def _num_hits(hits: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    return hits[:, :k].to(dtype).sum(1)


def _discounts(k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``1 / log2(rank + 1)`` for ranks ``1..k``."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=dtype, device=device))


def recall_at_k(
    hits: torch.Tensor, num_relevant: torch.Tensor, k: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Per-user recall@k: hits in the top ``k`` over the held-out set size (0 if empty)."""
    _check(hits, num_relevant, k)
    # clamp: a user with nothing held out has no hits either, so 0 / 1 = 0 rather than NaN
    return _num_hits(hits, k, dtype) / num_relevant.to(dtype).clamp(min=1)


def precision_at_k(
    hits: torch.Tensor, num_relevant: torch.Tensor, k: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Per-user precision@k: hits in the top ``k`` over ``k``."""
    _check(hits, num_relevant, k)
    return _num_hits(hits, k, dtype) / k


def hit_at_k(
    hits: torch.Tensor, num_relevant: torch.Tensor, k: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Per-user hit@k: 1 when at least one held-out item is in the top ``k``, else 0."""
    _check(hits, num_relevant, k)
    return hits[:, :k].any(1).to(dtype)


def ndcg_at_k(
    hits: torch.Tensor, num_relevant: torch.Tensor, k: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Per-user NDCG@k with binary gains; the ideal list has ``min(num_relevant, k)`` hits."""
    _check(hits, num_relevant, k)
    disc = _discounts(k, dtype, hits.device)  # [k]
    dcg = (hits[:, :k].to(dtype) * disc).sum(1)
    # IDCG(n) = sum of the first n discounts; idcg_table[n] for n = 0..k (idcg_table[0] = 0)
    idcg_table = torch.cat([disc.new_zeros(1), disc.cumsum(0)])
    n_ideal = num_relevant.clamp(min=0, max=k).long()
    idcg = idcg_table[n_ideal]
    # users with nothing held out: IDCG = 0 and DCG = 0; define NDCG = 0 instead of NaN
    return torch.where(idcg > 0, dcg / idcg.clamp(min=torch.finfo(dtype).tiny), torch.zeros_like(dcg))


def mrr_at_k(
    hits: torch.Tensor, num_relevant: torch.Tensor, k: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Per-user reciprocal rank of the first hit within the top ``k`` (0 without a hit)."""
    _check(hits, num_relevant, k)
    rr = 1.0 / torch.arange(1, k + 1, dtype=dtype, device=hits.device)  # [k], decreasing
    # 1/rank is decreasing, so the largest hit-weighted value is the first hit's reciprocal rank
    return (hits[:, :k].to(dtype) * rr).amax(1)


#: metric name (lower case, as in ``eval.metrics``) -> per-user function
METRICS: dict[str, MetricFn] = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "hit": hit_at_k,
    "ndcg": ndcg_at_k,
    "mrr": mrr_at_k,
}


def metric_key(name: str, k: int) -> str:
    """The result key of metric ``name`` at cut-off ``k``: ``"ndcg@20"``."""
    return f"{name.lower()}@{int(k)}"


def check_metric_names(metrics: Sequence[str], ks: Sequence[int]) -> tuple[list[str], list[int]]:
    """Normalise and validate metric names and cut-offs.

    Returns:
        Lower-cased metric names (order kept, duplicates removed) and sorted unique ``ks``.

    Raises:
        ConfigError: an unknown metric name, no metric, no cut-off, or a cut-off below 1.
    """
    names: list[str] = []
    for m in metrics:
        name = str(m).lower()
        if name not in METRICS:
            raise ConfigError(f"eval.metrics: unknown metric '{m}' (known: {', '.join(sorted(METRICS))})")
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError("eval.metrics: at least one metric is needed")
    if not ks:
        raise ConfigError("eval.ks: at least one cut-off is needed")
    k_list = sorted({int(k) for k in ks})
    if k_list[0] < 1:
        raise ConfigError(f"eval.ks: cut-offs must be positive integers, got {list(ks)}")
    return names, k_list


def compute_metrics(
    hits: torch.Tensor,
    num_relevant: torch.Tensor,
    metrics: Sequence[str],
    ks: Sequence[int],
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """All requested metrics at all cut-offs, per user.

    Args:
        hits: bool ``[B, Kmax]`` hit matrix of the ranked top-``Kmax`` lists, ``Kmax >= max(ks)``.
        num_relevant: long ``[B]`` held-out set sizes.
        metrics: metric names from :data:`METRICS` (case-insensitive).
        ks: cut-offs.
        dtype: floating dtype of the results (float64 by default; use float32 on devices
            without float64 support).

    Returns:
        ``{"name@K": Tensor[B]}`` for every metric and cut-off, on ``hits``' device; keys are
        ordered by metric (as given) then by ``K`` (ascending).

    Raises:
        ConfigError: unknown metric names or non-positive cut-offs.
        ValueError: shapes do not match or ``max(ks)`` exceeds the hit matrix width.
    """
    names, k_list = check_metric_names(metrics, ks)
    hits = hits.bool()
    out: dict[str, torch.Tensor] = {}
    for name in names:
        fn = METRICS[name]
        for k in k_list:
            out[metric_key(name, k)] = fn(hits, num_relevant, k, dtype)
    return out
