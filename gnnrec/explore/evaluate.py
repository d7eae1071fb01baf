"""The ``beyond_accuracy`` (and, with ``rerank:``, ``rerank``) blocks of ``metrics.json``.

:func:`beyond_accuracy_report` ranks the test users once more (in user batches, like the
evaluator) and computes :mod:`gnnrec.explore.metrics` on the plain top-K lists; when the
config has a ``rerank:`` strategy it also re-ranks those scores and reports the accuracy
metrics (same definitions as :mod:`gnnrec.eval.metrics`) and beyond-accuracy metrics of the
re-ranked lists. ``ild@K`` uses the category distance so that every model is comparable;
models with item embeddings also get ``ild_emb@K`` (``1 - cos``). Popularity and the
primitive recommender of serendipity come from TRAIN positives only.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from gnnrec.eval.evaluator import (
    _csr_to_torch,
    _infer_device,
    csr_rows_dense,
    masked_topk,
)
from gnnrec.eval.metrics import compute_metrics
from gnnrec.explore.metrics import (
    beyond_accuracy,
    catalogue_coverage,
    intra_list_diversity,
    item_popularity,
)
from gnnrec.explore.rerank import KNOB_FIELD, BanditState, apply_rerank

__all__ = ["beyond_accuracy_report", "item_features"]


def item_features(emb: dict[str, Any], num_items: int) -> torch.Tensor | None:
    """The model's item embeddings ``emb["item"]`` when it is a ``[num_items, d]`` tensor."""
    x = emb.get("item") if isinstance(emb, dict) else None
    if isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[0] == num_items:
        return x.detach()
    return None


def _batch_state(features: torch.Tensor, pos: torch.Tensor, users: torch.Tensor, ridge: float) -> BanditState:
    """Ridge statistics of just ``users`` (rows 0..B-1) from their TRAIN positives."""
    keep = torch.isin(pos[0], users)
    p = pos[:, keep]
    local = torch.searchsorted(users, p[0])  # users are sorted
    return BanditState.from_history(features, torch.stack([local, p[1]]), int(users.numel()), ridge)


def _popular_lists(
    pop_order: torch.Tensor,
    mask: torch.Tensor | None,
    k: int,
    b: int,
    max_masked: int | None = None,
) -> torch.Tensor:
    """Each row's ``k`` most popular unmasked items (the primitive recommender of serendipity).

    Walks the global popularity order only as far as needed (``k`` plus the longest row's
    masked count) instead of a ``[B, I]`` top-k; rows with fewer unmasked items are padded with
    masked ones, which are never relevant.
    """
    if mask is None:
        return pop_order[:k].expand(b, -1)
    if max_masked is None:
        max_masked = int(mask.sum(1).max())
    depth = min(pop_order.numel(), k + max_masked)
    cand = pop_order[:depth].expand(b, -1)
    blocked = mask.gather(1, cand)
    take = torch.sort(blocked.to(torch.int8), dim=1, stable=True).indices[:, :k]
    return cand.gather(1, take)


@torch.no_grad()
def beyond_accuracy_report(cfg: Any, model: Any, emb: dict[str, Any], prepared: Any) -> dict[str, Any]:
    """Beyond-accuracy metrics of the test lists (and of the re-ranked lists).

    Args:
        cfg: the :class:`~gnnrec.config.ExperimentConfig` (``eval`` and ``rerank``).
        model: the trained recommender (``score_all``).
        emb: its embeddings.
        prepared: the run's :class:`~gnnrec.runner.PreparedData`.

    Returns:
        ``{"beyond_accuracy": {...}, "beyond_accuracy_s": seconds}`` plus ``{"rerank": {...}}``
        when ``cfg.rerank.strategy`` is not ``none``.
    """
    t0 = time.perf_counter()
    targets = prepared.test
    data = prepared.data
    meta = data.meta
    ks = list(cfg.eval.ks)
    k_max = max(ks)
    device = _infer_device(model, emb, torch.device("cpu"))
    users_all = np.asarray(targets.users, dtype=np.int64)
    rcfg: Any = getattr(cfg, "rerank", None)
    strategy = "none" if rcfg is None else rcfg.strategy
    item_cat = data.item_category.to(device)
    pos = data.pos_index.to(device)
    pop = item_popularity(pos, meta.num_items).to(device)
    feats = item_features(emb, meta.num_items)
    feats = feats.to(device) if feats is not None else None
    pop_order = torch.sort(pop, descending=True, stable=True).indices  # the primitive recommender
    skipped: dict[str, Any] | None = None
    if strategy in ("linucb", "thompson") and feats is None:
        # no item embeddings (pop, itemknn, gf_cf): say so in metrics.json, don't fail the run
        skipped = {
            "strategy": strategy,
            "error": f"{strategy} needs a model with item embeddings",
        }
        strategy = "none"
    gen = None
    if strategy != "none":
        seed = cfg.seed if rcfg.seed is None else rcfg.seed
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
    truth_ptr, truth_idx = _csr_to_torch(targets.truth, device)
    excl = _csr_to_torch(targets.exclude, device) if targets.exclude is not None else None

    lists: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {
        "plain": [],
        "rerank": [],
    }
    per_user: dict[str, dict[str, list[torch.Tensor]]] = {"plain": {}, "rerank": {}}
    was_training = model.training
    model.eval()
    try:
        for s in range(0, users_all.shape[0], cfg.eval.batch_size):
            users = torch.as_tensor(users_all[s : s + cfg.eval.batch_size], device=device)
            scores = model.score_all(emb, users)
            mask = csr_rows_dense(*excl, users, meta.num_items) if excl is not None else None
            truth = csr_rows_dense(truth_ptr, truth_idx, users, meta.num_items)
            num_rel = truth_ptr[users + 1] - truth_ptr[users]
            n_masked = None if excl is None else int((excl[0][users + 1] - excl[0][users]).max())
            prim = _popular_lists(pop_order, mask, k_max, users.numel(), n_masked)
            variants = {"plain": masked_topk(scores, mask, k_max)}
            if strategy != "none":
                state = None
                if strategy in ("linucb", "thompson") and feats is not None:
                    state = _batch_state(feats, pos, users, rcfg.ridge)
                knob = getattr(rcfg, KNOB_FIELD[strategy])
                variants["rerank"] = apply_rerank(
                    strategy,
                    knob,
                    scores,
                    mask,
                    k_max,
                    users=torch.arange(users.numel(), device=device),
                    item_emb=feats,
                    item_category=item_cat,
                    state=state,
                    generator=gen,
                    options=rcfg,
                )
            for name, (items, valid) in variants.items():
                lists[name].append((items, valid))
                rel = truth.gather(1, items) & valid
                vals: dict[str, torch.Tensor] = {}
                for k in ks:
                    kk = min(k, items.shape[1])
                    vals.update(
                        {
                            key.replace(f"@{kk}", f"@{k}"): v
                            for key, v in beyond_accuracy(
                                items,
                                valid,
                                rel,
                                prim,
                                k=kk,
                                num_items=meta.num_items,
                                num_users=meta.num_users,
                                num_categories=meta.num_categories,
                                item_category=item_cat,
                                item_pop=pop,
                            ).items()
                        }
                    )
                    if feats is not None:
                        vals[f"ild_emb@{k}"] = intra_list_diversity(
                            items[:, :kk], valid[:, :kk], item_emb=feats
                        )
                if name == "rerank":
                    hits = rel
                    if hits.shape[1] < k_max:
                        hits = torch.cat(
                            [
                                hits,
                                hits.new_zeros(hits.shape[0], k_max - hits.shape[1]),
                            ],
                            1,
                        )
                    vals.update(compute_metrics(hits, num_rel, cfg.eval.metrics, ks))
                for key, v in vals.items():
                    per_user[name].setdefault(key, []).append(v.cpu())
    finally:
        model.train(was_training)

    def summarise(name: str) -> dict[str, float]:
        out: dict[str, float] = {}
        if not lists[name]:
            return out
        items = torch.cat([x for x, _ in lists[name]])
        valid = torch.cat([v for _, v in lists[name]])
        for k in ks:
            out[f"coverage@{k}"] = catalogue_coverage(items[:, :k], valid[:, :k], meta.num_items)
        for key, parts in per_user[name].items():
            out[key] = float(torch.cat(parts).to(torch.float64).mean())
        return out

    plain = summarise("plain")
    result: dict[str, Any] = {"beyond_accuracy": {k: v for k, v in plain.items()}}
    if skipped is not None:
        result["rerank"] = skipped
    if strategy != "none":
        rr = summarise("rerank")
        acc_keys = [f"{m}@{k}" for m in cfg.eval.metrics for k in ks]
        result["rerank"] = {
            "strategy": strategy,
            "knob": {KNOB_FIELD[strategy]: getattr(rcfg, KNOB_FIELD[strategy])},
            "test": {k: rr[k] for k in acc_keys if k in rr},
            "beyond_accuracy": {k: v for k, v in rr.items() if k not in acc_keys},
        }
    result["beyond_accuracy_s"] = time.perf_counter() - t0  # the extra scoring pass, for timing reports
    return result
