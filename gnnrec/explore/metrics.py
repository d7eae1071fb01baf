"""Beyond-accuracy metrics of recommendation lists.

Inputs are the lists themselves: ``items`` int64 ``[B, K]`` (display order) and ``valid`` bool
``[B, K]`` (False = empty slot, see :func:`gnnrec.eval.evaluator.masked_topk`); the cut-off is
the list width ``K`` (slice the lists for a smaller cut-off). Per-user functions return
``[B]`` float64; averaging is the caller's business, except for catalogue coverage, which is
a property of all lists together.

Definitions (survey: Kaminskas & Bridge, "Diversity, Serendipity, Novelty, and Coverage",
ACM TiiS 7(1), 2016):

* ``coverage@K`` (catalogue coverage, Ge et al., RecSys 2010): distinct items in the union of
  all lists over the number of items in the catalogue.
* ``category_coverage@K``: per list, distinct *known* categories in the list over
  ``min(K, num_categories)`` — 1 when every slot shows another category (or every category
  is shown); items of unknown category (``-1``) count for nothing.
* ``ild@K`` (intra-list diversity, Ziegler et al., WWW 2005): mean pairwise distance over the
  ``n (n - 1) / 2`` pairs of the list's ``n`` valid items; distance ``1 - cos(e_i, e_j)`` of item
  embeddings, or, without embeddings, 0 for two items of the same known category and 1
  otherwise. Lists with fewer than two items have ILD 0.
* ``novelty@K`` (mean self-information, Zhou et al., PNAS 107(10), 2010): mean over the list of
  ``-log2 p(i)`` with ``p(i) = (n_i + 1) / (U + 1)``, ``n_i`` the number of distinct users with
  a TRAIN positive on ``i`` and ``U`` the number of users (add-one smoothing so an item nobody
  trained on has finite novelty ``log2(U + 1)``). Empty slots count 0; divided by the number of
  valid slots (0 for an empty list).
* ``serendipity@K`` (Ge et al. 2010; Kaminskas & Bridge 2016, "unexpected and relevant"): the
  share of the ``K`` slots showing an item that is relevant (a held-out item of the user) and
  unexpected — not in the user's list of a primitive recommender (by default the popularity
  top-K with the same masking).
"""

from __future__ import annotations

import torch

__all__ = [
    "beyond_accuracy",
    "catalogue_coverage",
    "category_coverage",
    "intra_list_diversity",
    "item_popularity",
    "novelty",
    "serendipity",
]

BEYOND_METRICS: tuple[str, ...] = (
    "coverage",
    "category_coverage",
    "ild",
    "novelty",
    "serendipity",
)


def catalogue_coverage(items: torch.Tensor, valid: torch.Tensor, num_items: int) -> float:
    """Distinct shown items over ``num_items`` (``items``/``valid`` ``[B, K]``)."""
    if num_items <= 0:
        return 0.0
    shown = torch.zeros(num_items, dtype=torch.bool, device=items.device)
    shown[items[valid]] = True
    return float(shown.sum()) / num_items


def category_coverage(
    items: torch.Tensor,
    valid: torch.Tensor,
    item_category: torch.Tensor,
    num_categories: int,
) -> torch.Tensor:
    """Per list: distinct known categories over ``min(K, num_categories)``; ``[B]`` float64."""
    b, k = items.shape
    denom = min(k, num_categories)
    if denom <= 0 or b == 0:
        return torch.zeros(b, dtype=torch.float64, device=items.device)
    cat = item_category.to(items.device)[items]
    cat = torch.where(valid, cat, torch.full_like(cat, -1))
    s = torch.sort(cat, dim=1).values
    first = torch.ones_like(s, dtype=torch.bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    distinct = (first & (s >= 0)).sum(1)
    return distinct.to(torch.float64) / denom


def intra_list_diversity(
    items: torch.Tensor,
    valid: torch.Tensor,
    *,
    item_emb: torch.Tensor | None = None,
    item_category: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean pairwise distance within each list (``1 - cos`` or category mismatch); ``[B]``."""
    if item_emb is None and item_category is None:
        raise ValueError("intra_list_diversity needs item embeddings or item categories")
    b, k = items.shape
    out = torch.zeros(b, dtype=torch.float64, device=items.device)
    step = max(1, 2**22 // max(1, k * k))
    pair = valid[:, :, None] & valid[:, None, :]
    pair &= ~torch.eye(k, dtype=torch.bool, device=items.device)
    for s in range(0, b, step):
        it = items[s : s + step]
        if item_emb is not None:
            e = torch.nn.functional.normalize(item_emb.to(items.device)[it].to(torch.float64), dim=-1)
            dist = 1.0 - e @ e.transpose(1, 2)
        else:
            cat = item_category.to(items.device)[it]  # type: ignore[union-attr]
            same = (cat[:, :, None] == cat[:, None, :]) & (cat[:, :, None] >= 0)
            dist = (~same).to(torch.float64)
        p = pair[s : s + step]
        n_pairs = p.sum((1, 2))
        total = torch.where(p, dist, torch.zeros_like(dist)).sum((1, 2))
        out[s : s + step] = torch.where(n_pairs > 0, total / n_pairs.clamp(min=1), torch.zeros_like(total))
    return out


def item_popularity(pairs: torch.Tensor, num_items: int) -> torch.Tensor:
    """Distinct users per item from unique ``[2, P]`` (user, item) TRAIN pairs; int64 ``[I]``."""
    return torch.bincount(pairs[1].long(), minlength=num_items)


def novelty(items: torch.Tensor, valid: torch.Tensor, item_pop: torch.Tensor, num_users: int) -> torch.Tensor:
    """Mean self-information ``-log2((n_i + 1) / (U + 1))`` of the valid slots; ``[B]``."""
    info = -torch.log2((item_pop.to(torch.float64) + 1.0) / (num_users + 1.0)).to(items.device)
    v = torch.where(
        valid,
        info[items],
        torch.zeros(items.shape, dtype=torch.float64, device=items.device),
    )
    # an empty list has sum 0 and divides by 1: novelty 0
    return v.sum(1) / valid.sum(1).to(torch.float64).clamp(min=1)


def serendipity(
    items: torch.Tensor,
    valid: torch.Tensor,
    relevant: torch.Tensor,
    primitive: torch.Tensor,
) -> torch.Tensor:
    """Share of the ``K`` slots that are relevant and not in the primitive list; ``[B]``.

    Args:
        items, valid: ``[B, K]`` the evaluated lists.
        relevant: bool ``[B, K]``: the slot's item is a held-out item of the user.
        primitive: int64 ``[B, K0]`` the primitive recommender's lists (e.g. popularity).
    """
    k = items.shape[1]
    if k == 0:
        return torch.zeros(items.shape[0], dtype=torch.float64, device=items.device)
    expected = (items[:, :, None] == primitive[:, None, :]).any(-1)
    hit = relevant & valid & ~expected
    return hit.to(torch.float64).sum(1) / k


def beyond_accuracy(
    items: torch.Tensor,
    valid: torch.Tensor,
    relevant: torch.Tensor,
    primitive: torch.Tensor,
    *,
    k: int,
    num_items: int,
    num_users: int,
    num_categories: int,
    item_category: torch.Tensor,
    item_pop: torch.Tensor,
    item_emb: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-user category coverage, ILD, novelty and serendipity at cut-off ``k``.

    Catalogue coverage is not per user: use :func:`catalogue_coverage` on all lists.

    Returns:
        ``{"category_coverage@k", "ild@k", "novelty@k", "serendipity@k"}`` -> ``[B]`` float64.
    """
    it, va, re = items[:, :k], valid[:, :k], relevant[:, :k]
    return {
        f"category_coverage@{k}": category_coverage(it, va, item_category, num_categories),
        f"ild@{k}": intra_list_diversity(it, va, item_emb=item_emb, item_category=item_category),
        f"novelty@{k}": novelty(it, va, item_pop, num_users),
        f"serendipity@{k}": serendipity(it, va, re, primitive[:, :k]),
    }
