"""Re-rankers on top of any model's scores.

Every re-ranker takes a score matrix ``scores [B, I]`` (one row per user, e.g. from
``model.score_all``), a bool mask ``exclude [B, I]`` of items that must never be shown
(known history) or ``None``, and a list length ``k``, and returns ``(items, valid)`` like
:func:`gnnrec.eval.evaluator.masked_topk`: ``items`` int64 ``[B, k']`` (``k' = min(k, I)``),
distinct per row, in display order; ``valid`` bool ``[B, k']`` False only for slots that had
to be filled with an excluded item because the row has fewer than ``k'`` unmasked items.
All work is batched over rows (loops run over the ``k`` list positions, never over users),
and the random strategies draw from an explicit ``torch.Generator`` (deterministic given it).

Strategies and their knob (each reduces to plain top-K at one end of its knob):

* :func:`mmr` — Maximal Marginal Relevance (Carbonell & Goldstein, SIGIR 1998): greedily pick
  ``argmax  lambda * rel(i) - (1 - lambda) * max_{j in list} sim(i, j)`` among the top
  ``candidates`` items; ``rel`` is the score min–max normalised to [0, 1] over the row's
  valid candidates (so ``lambda`` is scale-free); ``sim`` is the cosine of item embeddings
  or 1 for two items of the same known category. ``lambda = 1`` is plain top-K.
* :func:`category_diversity` — walk the top ``candidates`` in score order and keep an item
  only while its category has fewer than ``max_per_category`` items in the list (items
  without a category are never capped); if the pool runs out, the list is back-filled in
  score order. ``max_per_category >= k`` is plain top-K.
* :func:`epsilon_greedy` — each list slot independently (probability ``epsilon``) shows an
  item drawn uniformly from the unmasked items *outside* the greedy top-K; the other slots
  keep the greedy items in order. ``epsilon = 0`` is plain top-K.
* :func:`linucb` — optimism under embedding uncertainty (after Li et al., "A Contextual-Bandit
  Approach to Personalized News Article Recommendation", WWW 2010): arms are items with the
  model's item embeddings ``x_i`` as features; each user keeps ridge statistics
  ``A_u = ridge * I + sum x x^T`` over the items they were shown or consumed
  (:class:`BanditState`). Rank by ``z(s_ui) + alpha * w_ui / mean_i(w_ui)`` with
  ``w_ui = sqrt(x_i^T A_u^{-1} x_i)`` (the LinUCB confidence width) and ``z`` the per-row
  standardisation of the model's scores over unmasked items. *Difference from LinUCB*: the
  mean estimate is the trained model's score (refreshed by a streaming update where the model
  has one), not a per-user ridge regression of rewards, and both terms are put on a
  per-row scale so one ``alpha`` fits any model. ``alpha = 0`` is plain top-K.
* :func:`thompson` — Thompson sampling (Agrawal & Goyal, ICML 2013, linear payoffs): draw
  ``eps_u ~ N(0, A_u^{-1})`` per user and rank by ``z(s_ui) + v * x_i^T eps_u / std_i``
  (``std_i`` the row's standard deviation of the perturbation). ``v = 0`` is plain top-K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gnnrec.errors import ConfigError
from gnnrec.eval.evaluator import masked_topk

__all__ = [
    "BanditState",
    "apply_rerank",
    "category_diversity",
    "epsilon_greedy",
    "linucb",
    "mmr",
    "thompson",
    "topk",
]

#: a large finite penalty (not -inf, so argmax still sees distinct values)
_BIG = 1e30


def topk(scores: torch.Tensor, exclude: torch.Tensor | None, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain top-``k`` (the pure-exploitation baseline); see :func:`masked_topk`."""
    return masked_topk(scores, exclude, k)


def _candidates(
    scores: torch.Tensor, exclude: torch.Tensor | None, k: int, candidates: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Top ``max(k, candidates)`` items per row: (scores, items, valid, k_eff)."""
    num_items = scores.shape[1]
    k_eff = min(k, num_items)
    c = min(max(candidates, k_eff), num_items)
    masked = scores if exclude is None else scores.masked_fill(exclude, float("-inf"))
    vals, items = masked.topk(c, dim=1)
    valid = torch.ones_like(items, dtype=torch.bool) if exclude is None else ~exclude.gather(1, items)
    return vals, items, valid, k_eff


def _minmax(vals: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-row min–max normalisation to [0, 1] over the valid entries (0 elsewhere)."""
    v = vals.to(torch.float64)
    hi = torch.where(valid, v, torch.full_like(v, -_BIG)).amax(1, keepdim=True)
    lo = torch.where(valid, v, torch.full_like(v, _BIG)).amin(1, keepdim=True)
    span = (hi - lo).clamp(min=1e-12)
    return torch.where(valid, (v - lo) / span, torch.zeros_like(v))


def mmr(
    scores: torch.Tensor,
    exclude: torch.Tensor | None,
    k: int,
    lambda_: float,
    *,
    item_emb: torch.Tensor | None = None,
    item_category: torch.Tensor | None = None,
    candidates: int = 200,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximal Marginal Relevance re-ranking (see the module docstring).

    Args:
        scores: ``[B, I]`` model scores.
        exclude: bool ``[B, I]`` items never shown, or ``None``.
        k: list length.
        lambda_: relevance weight in [0, 1]; 1 = plain top-K, 0 = only diversity.
        item_emb: ``[I, d]`` item embeddings for cosine similarity; when ``None``,
            ``item_category`` (``[I]``, ``-1`` unknown) gives a same-category similarity.
        item_category: see ``item_emb``.
        candidates: size of the re-ranked pool of top-scored items.

    Returns:
        ``(items [B, k'], valid [B, k'])``.

    Raises:
        ConfigError: ``lambda_`` outside [0, 1] or neither similarity source given.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ConfigError(f"rerank.mmr_lambda must be in [0, 1], got {lambda_}")
    if item_emb is None and item_category is None:
        raise ConfigError("mmr needs item embeddings or item categories for the similarity")
    vals, items, valid, k_eff = _candidates(scores, exclude, k, candidates)
    b, c = items.shape
    rel = _minmax(vals, valid)
    out_items = torch.empty(b, k_eff, dtype=torch.long, device=items.device)
    out_valid = torch.empty(b, k_eff, dtype=torch.bool, device=items.device)
    # rows in chunks so the [chunk, C, C] similarity stays a few tens of MB
    step = max(1, 2**22 // max(1, c * c))
    for s in range(0, b, step):
        it = items[s : s + step]
        if item_emb is not None:
            e = torch.nn.functional.normalize(item_emb[it].to(torch.float64), dim=-1)
            sim = e @ e.transpose(1, 2)
        else:
            cat = item_category.to(items.device)[it]  # type: ignore[union-attr]
            sim = ((cat[:, :, None] == cat[:, None, :]) & (cat[:, :, None] >= 0)).to(torch.float64)
        r, v = rel[s : s + step], valid[s : s + step]
        n = it.shape[0]
        chosen = torch.zeros(n, c, dtype=torch.bool, device=it.device)
        max_sim = torch.zeros(n, c, dtype=torch.float64, device=it.device)
        rows = torch.arange(n, device=it.device)
        for pos in range(k_eff):
            obj = lambda_ * r - (1.0 - lambda_) * max_sim
            # invalid candidates only after every valid one; chosen ones never again
            obj = torch.where(v, obj, obj - _BIG)
            obj = obj.masked_fill(chosen, float("-inf"))
            pick = obj.argmax(1)  # first maximum = score order among ties
            chosen[rows, pick] = True
            max_sim = torch.maximum(max_sim, sim[rows, pick])
            out_items[s + rows, pos] = it[rows, pick]
            out_valid[s + rows, pos] = v[rows, pick]
    return out_items, out_valid


def category_diversity(
    scores: torch.Tensor,
    exclude: torch.Tensor | None,
    k: int,
    item_category: torch.Tensor,
    max_per_category: int,
    *,
    candidates: int = 200,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-K with at most ``max_per_category`` items of one category per list.

    Items are taken in score order from the top ``candidates``; an item whose category already
    has ``max_per_category`` items in the list is skipped. When fewer than ``k`` items pass,
    the skipped ones back-fill the list in score order (so the cap holds whenever the pool
    allows it). Items of unknown category (``-1``) are never capped.

    Args:
        scores: ``[B, I]`` model scores.
        exclude: bool ``[B, I]`` items never shown, or ``None``.
        k: list length.
        item_category: int64 ``[I]`` category per item, ``-1`` unknown.
        max_per_category: the cap (>= 1).
        candidates: pool size.

    Returns:
        ``(items [B, k'], valid [B, k'])``.
    """
    if max_per_category < 1:
        raise ConfigError(f"rerank.max_per_category must be at least 1, got {max_per_category}")
    _, items, valid, k_eff = _candidates(scores, exclude, k, candidates)
    b, c = items.shape
    cat = item_category.to(items.device)[items]
    cat = torch.where(valid, cat, torch.full_like(cat, -1))  # masked candidates never count
    # rank of each candidate among the earlier candidates of its category: a stable sort by
    # category keeps score order inside a category; rank = position - start of its group
    order = torch.sort(cat, dim=1, stable=True).indices
    sc = cat.gather(1, order)
    pos = torch.arange(c, device=items.device).expand(b, c)
    new = torch.ones_like(sc, dtype=torch.bool)
    new[:, 1:] = sc[:, 1:] != sc[:, :-1]
    start = torch.where(new, pos, torch.zeros_like(pos)).cummax(1).values
    rank = torch.empty_like(pos).scatter_(1, order, pos - start)
    allowed = (rank < max_per_category) | (cat < 0)
    priority = pos + c * (~allowed).long() + 2 * c * (~valid).long()
    take = torch.sort(priority, dim=1, stable=True).indices[:, :k_eff]
    return items.gather(1, take), valid.gather(1, take)


def epsilon_greedy(
    scores: torch.Tensor,
    exclude: torch.Tensor | None,
    k: int,
    epsilon: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Epsilon-greedy lists: each slot explores with probability ``epsilon``.

    An exploring slot shows an item drawn uniformly without replacement from the row's unmasked
    items outside its greedy top-K (so exploration always shows something the greedy list would
    not); the exploiting slots show the greedy items in order. When a row has too few such
    items, its surplus exploring slots exploit instead.

    Args:
        scores: ``[B, I]`` model scores.
        exclude: bool ``[B, I]`` items never shown, or ``None``.
        k: list length.
        epsilon: exploration probability per slot in [0, 1]; 0 = plain top-K.
        generator: source of randomness (on the CPU or ``scores``' device).

    Returns:
        ``(items [B, k'], valid [B, k'])``.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ConfigError(f"rerank.epsilon must be in [0, 1], got {epsilon}")
    greedy, g_valid = masked_topk(scores, exclude, k)
    b, k_eff = greedy.shape
    dev = scores.device
    gdev = generator.device
    noise = torch.rand(scores.shape, generator=generator, device=gdev).to(dev)
    blocked = torch.zeros_like(scores, dtype=torch.bool) if exclude is None else exclude.clone()
    blocked.scatter_(1, greedy, True)
    noise = noise.masked_fill(blocked, float("-inf"))
    rand_vals, rand_items = noise.topk(k_eff, dim=1)
    n_rand = torch.isfinite(rand_vals).sum(1, keepdim=True)  # valid random items form a prefix
    flag = (torch.rand((b, k_eff), generator=generator, device=gdev) < epsilon).to(dev)
    flag &= torch.cumsum(flag.long(), 1) <= n_rand
    i_rand = (torch.cumsum(flag.long(), 1) - 1).clamp(min=0)
    i_greedy = (torch.cumsum((~flag).long(), 1) - 1).clamp(min=0)
    items = torch.where(flag, rand_items.gather(1, i_rand), greedy.gather(1, i_greedy))
    valid = torch.where(flag, torch.ones_like(flag), g_valid.gather(1, i_greedy))
    return items, valid


@dataclass
class BanditState:
    """Per-user ridge statistics over item-embedding features (LinUCB / Thompson).

    ``A[u] = ridge * I + sum_{observed (u, i)} x_i x_i^T`` and its inverse, float64, dense
    ``[U, d, d]`` (memory ``2 * U * d^2 * 8`` bytes: 2000 users at d = 64 take 131 MB).

    Attributes:
        features: ``[I, d]`` item features (the model's item embeddings, float64).
        A: ``[U, d, d]`` statistics; ``A_inv`` their inverses.
        ridge: the prior ``lambda``.
    """

    features: torch.Tensor
    A: torch.Tensor
    A_inv: torch.Tensor
    ridge: float

    @classmethod
    def from_history(
        cls,
        features: torch.Tensor,
        pairs: torch.Tensor,
        num_users: int,
        ridge: float = 1.0,
    ) -> BanditState:
        """Statistics of users who were "shown" their training items.

        Args:
            features: ``[I, d]`` item embeddings.
            pairs: ``[2, P]`` (user, item) observations (e.g. training positives).
            num_users: number of users.
            ridge: prior ``lambda`` (> 0).
        """
        if ridge <= 0:
            raise ConfigError(f"rerank.ridge must be positive, got {ridge}")
        x = features.detach().to(torch.float64)
        d = x.shape[1]
        eye = torch.eye(d, dtype=torch.float64, device=x.device)
        a = eye.expand(num_users, d, d).clone() * ridge
        state = cls(
            features=x,
            A=a,
            A_inv=eye.expand(num_users, d, d).clone() / ridge,
            ridge=float(ridge),
        )
        state.observe(pairs[0], pairs[1])
        return state

    def observe(self, users: torch.Tensor, items: torch.Tensor) -> None:
        """Add ``x_i x_i^T`` to ``A[u]`` for each pair and refresh the touched inverses."""
        users = users.to(self.A.device).long().reshape(-1)
        items = items.to(self.A.device).long().reshape(-1)
        if users.numel() == 0:
            return
        d = self.features.shape[1]
        chunk = max(1, 2**22 // (d * d))
        for s in range(0, users.numel(), chunk):
            x = self.features[items[s : s + chunk]]
            self.A.index_add_(0, users[s : s + chunk], x[:, :, None] * x[:, None, :])
        touched = torch.unique(users)
        self.A_inv[touched] = torch.linalg.inv(self.A[touched])

    def width(self, users: torch.Tensor) -> torch.Tensor:
        """LinUCB widths ``sqrt(x_i^T A_u^{-1} x_i)``, ``[B, I]`` float64."""
        users = users.to(self.A.device).long()
        x = self.features
        n_items, d = x.shape
        out = torch.empty(users.numel(), n_items, dtype=torch.float64, device=x.device)
        step = max(1, 2**23 // max(1, n_items * d))
        for s in range(0, users.numel(), step):
            xa = torch.einsum("id,bde->bie", x, self.A_inv[users[s : s + step]])
            out[s : s + step] = (xa * x).sum(-1).clamp(min=0).sqrt()
        return out

    def sample(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x_i^T eps_u`` with ``eps_u ~ N(0, A_u^{-1})``: ``[B, I]`` float64."""
        users = users.to(self.A.device).long()
        d = self.features.shape[1]
        chol = torch.linalg.cholesky(self.A_inv[users])  # [B, d, d]
        z = torch.randn(
            (users.numel(), d),
            generator=generator,
            device=generator.device,
            dtype=torch.float64,
        )
        eps = (chol @ z.to(chol.device)[:, :, None]).squeeze(-1)  # [B, d]
        return eps @ self.features.T


def _zscore(scores: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
    """Per-row standardisation over the unmasked items (float64; excluded entries 0)."""
    s = scores.to(torch.float64)
    keep = torch.isfinite(s) if exclude is None else (~exclude & torch.isfinite(s))
    n = keep.sum(1, keepdim=True).clamp(min=1)
    s0 = torch.where(keep, s, torch.zeros_like(s))
    mean = s0.sum(1, keepdim=True) / n
    var = (torch.where(keep, s - mean, torch.zeros_like(s)) ** 2).sum(1, keepdim=True) / n
    return torch.where(keep, (s - mean) / var.sqrt().clamp(min=1e-12), torch.zeros_like(s))


def _row_mean(x: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
    keep = torch.ones_like(x, dtype=torch.bool) if exclude is None else ~exclude
    n = keep.sum(1, keepdim=True).clamp(min=1)
    return torch.where(keep, x, torch.zeros_like(x)).sum(1, keepdim=True) / n


def linucb(
    scores: torch.Tensor,
    exclude: torch.Tensor | None,
    k: int,
    alpha: float,
    state: BanditState,
    users: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank by ``z(score) + alpha * width / mean(width)`` (module docstring).

    Args:
        scores: ``[B, I]`` model scores of ``users``.
        exclude: bool ``[B, I]`` or ``None``.
        k: list length.
        alpha: bonus weight (>= 0); 0 = plain top-K.
        state: the users' ridge statistics.
        users: int64 ``[B]`` user indices of the rows.
    """
    if alpha < 0:
        raise ConfigError(f"rerank.alpha must be non-negative, got {alpha}")
    if alpha == 0:
        return masked_topk(scores, exclude, k)
    w = state.width(users).to(scores.device)
    bonus = w / _row_mean(w, exclude).clamp(min=1e-12)
    return masked_topk(_zscore(scores, exclude) + alpha * bonus, exclude, k)


def thompson(
    scores: torch.Tensor,
    exclude: torch.Tensor | None,
    k: int,
    v: float,
    state: BanditState,
    users: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank by ``z(score) + v * x^T eps_u / std`` with ``eps_u ~ N(0, A_u^{-1})``.

    Args:
        scores: ``[B, I]`` model scores of ``users``.
        exclude: bool ``[B, I]`` or ``None``.
        k: list length.
        v: posterior scale (>= 0); 0 = plain top-K.
        state: the users' ridge statistics.
        users: int64 ``[B]`` user indices of the rows.
        generator: source of randomness.
    """
    if v < 0:
        raise ConfigError(f"rerank.v must be non-negative, got {v}")
    if v == 0:
        return masked_topk(scores, exclude, k)
    p = state.sample(users, generator).to(scores.device)
    mean = _row_mean(p, exclude)
    std = _row_mean((p - mean) ** 2, exclude).sqrt().clamp(min=1e-12)
    return masked_topk(_zscore(scores, exclude) + v * p / std, exclude, k)


def apply_rerank(
    strategy: str,
    knob: float,
    scores: torch.Tensor,
    exclude: torch.Tensor | None,
    k: int,
    *,
    users: torch.Tensor | None = None,
    item_emb: torch.Tensor | None = None,
    item_category: torch.Tensor | None = None,
    state: BanditState | None = None,
    generator: torch.Generator | None = None,
    options: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch one strategy with its knob.

    ``strategy``: ``topk``/``none`` (knob ignored), ``mmr`` (lambda), ``category``
    (max per category, rounded), ``epsilon`` (epsilon), ``linucb`` (alpha), ``thompson`` (v).
    ``options`` is a :class:`gnnrec.config.RerankConfig` for the secondary settings
    (``candidates``, ``similarity``); the defaults apply when ``None``.

    Raises:
        ConfigError: an unknown strategy or a missing input the strategy needs.
    """
    candidates = int(getattr(options, "candidates", 200))
    similarity = getattr(options, "similarity", "embedding")
    if strategy in ("topk", "none"):
        return masked_topk(scores, exclude, k)
    if strategy == "mmr":
        emb = item_emb if similarity == "embedding" else None
        if emb is None and item_category is None:
            raise ConfigError("rerank mmr: the model has no item embeddings; set rerank.similarity: category")
        return mmr(
            scores,
            exclude,
            k,
            float(knob),
            item_emb=emb,
            item_category=item_category,
            candidates=candidates,
        )
    if strategy == "category":
        if item_category is None:
            raise ConfigError("rerank category needs item categories")
        return category_diversity(scores, exclude, k, item_category, round(knob), candidates=candidates)
    if strategy in ("epsilon", "thompson") and generator is None:
        raise ConfigError(f"rerank {strategy} needs a seeded generator")
    if strategy == "epsilon":
        return epsilon_greedy(scores, exclude, k, float(knob), generator)  # type: ignore[arg-type]
    if strategy in ("linucb", "thompson"):
        if state is None or users is None:
            raise ConfigError(
                f"rerank {strategy} needs a model with item embeddings (emb['item'] of shape [I, d])"
            )
        if strategy == "linucb":
            return linucb(scores, exclude, k, float(knob), state, users)
        return thompson(scores, exclude, k, float(knob), state, users, generator)  # type: ignore[arg-type]
    raise ConfigError(
        f"unknown re-ranking strategy '{strategy}' (known: topk, mmr, category, epsilon, linucb, thompson)"
    )


#: knob name of each strategy in :class:`gnnrec.config.RerankConfig`
KNOB_FIELD: dict[str, str] = {
    "mmr": "mmr_lambda",
    "category": "max_per_category",
    "epsilon": "epsilon",
    "linucb": "alpha",
    "thompson": "v",
}
