"""Offline replay of a time-ordered log: exploration strategies vs pure exploitation.

The replayed log is every held-out row (``Split.assign != TRAIN``) of the replayed behaviours
(``replay.behaviors``; default the split's target behaviour), ordered by ``(timestamp, row)``
and cut into ``replay.steps`` slices of equal event counts. For each slice, in order:

1. **recommend** — every user with an event in the slice gets a list of ``K`` items from the
   strategy (model scores → re-ranker of :mod:`gnnrec.explore.rerank`), with the user's known
   items masked (TRAIN pairs per ``eval.mask`` plus everything revealed so far); users are
   scored in batches, one vectorised pass per slice;
2. **reward** — ``hits``: distinct (user, item) pairs of the slice whose item was in the
   user's list; ``new_category_hits``: hits whose category the user had never interacted
   with before (TRAIN rows of any behaviour plus earlier revealed events) — the discoveries
   the recommender made; ``new_categories_shown``: distinct (user, category) pairs shown that
   are new to the user; ``ild``: mean category intra-list diversity of the slice's lists;
3. **reveal** — the slice's events join the users' known items and categories; the bandit
   statistics (LinUCB / Thompson) observe every shown item and every revealed item; a model
   with ``update(events)`` (:class:`gnnrec.models.streaming.StreamingRecommender`) is
   advanced with the slice's events (when ``replay.update``) and re-encoded.

Everything random (epsilon-greedy, Thompson, user subsampling) draws from generators seeded
with the experiment seed, so two replays of the same config are identical. Static models are
shared between strategies; a streaming model is deep-copied per strategy.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnnrec.data.types import TRAIN
from gnnrec.errors import ConfigError
from gnnrec.eval.evaluator import _infer_device, csr_rows_dense
from gnnrec.explore.evaluate import item_features
from gnnrec.explore.metrics import intra_list_diversity
from gnnrec.explore.rerank import BanditState, apply_rerank

log = logging.getLogger("gnnrec")

__all__ = [
    "ReplayLog",
    "ReplayResult",
    "build_replay_log",
    "check_replay_config",
    "replay",
    "replay_suite",
    "tradeoff_rows",
]

STRATEGIES = ("topk", "mmr", "category", "epsilon", "linucb", "thompson")
STRATEGY_COLORS = {
    "topk": "black",
    "mmr": "tab:blue",
    "category": "tab:orange",
    "epsilon": "tab:green",
    "linucb": "tab:red",
    "thompson": "tab:purple",
}
KNOB_NAMES = {
    "topk": "-",
    "mmr": "lambda",
    "category": "max_per_category",
    "epsilon": "epsilon",
    "linucb": "alpha",
    "thompson": "v",
}


@dataclass
class ReplayLog:
    """Held-out events in time order, cut into steps.

    Attributes:
        user, item, behavior, ts: int64 ``[N]`` sorted by ``(ts, row)`` (``behavior`` indexes
            ``table.behaviors``; ``ts`` is the row number when the log has no timestamps).
        step: int64 ``[N]`` slice index ``0..steps-1`` (non-decreasing).
        num_steps: number of slices.
    """

    user: np.ndarray
    item: np.ndarray
    behavior: np.ndarray
    ts: np.ndarray
    step: np.ndarray
    num_steps: int

    def __len__(self) -> int:
        return int(self.user.shape[0])


def build_replay_log(table: Any, split: Any, steps: int, behaviors: Sequence[str] | None = None) -> ReplayLog:
    """The held-out rows of ``behaviors`` (default: the target) in time order, in ``steps`` slices.

    Raises:
        ConfigError: an unknown behaviour, or no held-out event to replay.
    """
    if behaviors is None:
        codes = [int(split.target)]
    else:
        unknown = [b for b in behaviors if b not in table.behaviors]
        if unknown:
            raise ConfigError(
                f"replay.behaviors: unknown behaviour '{unknown[0]}' (log: {list(table.behaviors)})"
            )
        codes = [table.behavior_index(b) for b in behaviors]
    rows = np.flatnonzero((np.asarray(split.assign) != TRAIN) & np.isin(table.behavior, codes))
    if rows.size == 0:
        raise ConfigError(
            "replay: no held-out event of the replayed behaviours (check split and replay.behaviors)"
        )
    ts = rows.astype(np.int64) if table.ts is None else np.asarray(table.ts, dtype=np.int64)[rows]
    order = np.lexsort((rows, ts))
    rows, ts = rows[order], ts[order]
    n_steps = int(min(steps, rows.size))
    # equal event counts per slice: slice of event j is floor(j * steps / N)
    step = (np.arange(rows.size, dtype=np.int64) * n_steps) // rows.size
    return ReplayLog(
        user=np.asarray(table.user, dtype=np.int64)[rows],
        item=np.asarray(table.item, dtype=np.int64)[rows],
        behavior=np.asarray(table.behavior, dtype=np.int64)[rows],
        ts=ts,
        step=step,
        num_steps=n_steps,
    )


@dataclass
class ReplayResult:
    """Per-step counts of one strategy and knob (``steps`` rows, cumulative columns too)."""

    strategy: str
    knob: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        last = self.rows[-1] if self.rows else {}
        recs = sum(r["recommended_users"] for r in self.rows)
        ild = sum(r["ild"] * r["recommended_users"] for r in self.rows) / recs if recs else 0.0
        return {
            "strategy": self.strategy,
            "knob": self.knob,
            "hits": last.get("cum_hits", 0),
            "hit_rate": last.get("cum_hits", 0) / max(1, last.get("cum_events", 0)),
            "new_category_hits": last.get("cum_new_category_hits", 0),
            "new_categories_shown": last.get("cum_new_categories_shown", 0),
            "ild": ild,
            "coverage": last.get("coverage", 0.0),
            "lists": recs,
            "seconds": self.seconds,
        }


def _keys(user: np.ndarray, item: np.ndarray, num_items: int) -> np.ndarray:
    return user.astype(np.int64) * np.int64(num_items) + item.astype(np.int64)


def _csr(keys: np.ndarray, num_users: int, num_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indptr, indices) tensors of unique sorted pair keys."""
    rows, cols = keys // num_items, keys % num_items
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_users), out=indptr[1:])
    return torch.from_numpy(indptr), torch.from_numpy(cols.astype(np.int64))


def replay(
    model: Any,
    data: Any,
    table: Any,
    split: Any,
    log_: ReplayLog,
    strategy: str,
    knob: float,
    *,
    k: int = 10,
    mask: str = "target",
    seed: int = 0,
    update: bool = True,
    options: Any = None,
    batch_size: int = 1024,
    max_users_per_step: int | None = None,
) -> ReplayResult:
    """Replay ``log_`` with one strategy (see the module docstring).

    Args:
        model: a trained recommender (``encode`` / ``score_all``); deep-copied first when it is
            streaming and ``update`` is set, so the caller's model is never changed.
        data: its training data.
        table, split: the interaction table and split (for TRAIN history and categories).
        log_: from :func:`build_replay_log`.
        strategy: ``topk``, ``mmr``, ``category``, ``epsilon``, ``linucb`` or ``thompson``.
        knob: the strategy's knob (see :func:`gnnrec.explore.rerank.apply_rerank`).
        k: list length.
        mask: ``eval.mask``: which TRAIN pairs are masked (``target`` / ``all`` / ``none``).
        seed: seed of the strategy's generator and of user subsampling.
        update: advance a streaming model with the revealed events.
        options: :class:`gnnrec.config.RerankConfig` for secondary settings (candidates, ridge).
        batch_size: users scored per batch.
        max_users_per_step: subsample this many users per step (seeded); ``None`` = all.

    Returns:
        The :class:`ReplayResult`.

    Raises:
        ConfigError: an unknown strategy, or a bandit strategy for a model without item
            embeddings.
    """
    from gnnrec.models.streaming import EventBatch, is_streaming

    if strategy not in STRATEGIES:
        raise ConfigError(
            f"replay.strategies: unknown strategy '{strategy}' (known: {', '.join(STRATEGIES)})"
        )
    t0 = time.perf_counter()
    streaming = update and is_streaming(model)
    if streaming:
        model = copy.deepcopy(model)
    model.eval()
    with torch.no_grad():
        emb = model.encode(data)
    device = _infer_device(model, emb, torch.device("cpu"))
    meta = data.meta
    nu, ni, nc = meta.num_users, meta.num_items, meta.num_categories
    item_cat_np = np.asarray(table.item_category, dtype=np.int64)
    item_cat = torch.as_tensor(item_cat_np, device=device)
    feats = item_features(emb, ni)
    feats = feats.to(device) if feats is not None else None

    # known items (masked) and known categories, from TRAIN rows
    assign = np.asarray(split.assign)
    tr = assign == TRAIN
    mrows = tr & (np.asarray(table.behavior) == split.target) if mask == "target" else tr
    seen = (
        np.unique(_keys(table.user[mrows], table.item[mrows], ni))
        if mask != "none"
        else np.zeros(0, np.int64)
    )
    known_cat = np.zeros((nu, max(nc, 1)), dtype=bool)
    tc = item_cat_np[table.item[tr]]
    known_cat[table.user[tr][tc >= 0], tc[tc >= 0]] = True

    # bandit statistics for the replayed users only (memory: users x d x d)
    state, local_of = None, None
    r_users = np.unique(log_.user)
    if strategy in ("linucb", "thompson"):
        if feats is None:
            raise ConfigError(f"replay strategy {strategy} needs a model with item embeddings (emb['item'])")
        pos = data.pos_index.cpu().numpy()
        keep = np.isin(pos[0], r_users)
        local = np.searchsorted(r_users, pos[0][keep])
        ridge = float(getattr(options, "ridge", 1.0))
        state = BanditState.from_history(
            feats,
            torch.as_tensor(np.stack([local, pos[1][keep]]), device=device),
            int(r_users.size),
            ridge,
        )
        local_of = r_users

    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    rng = np.random.default_rng(seed)
    shown_items = np.zeros(ni, dtype=bool)
    res = ReplayResult(strategy, float(knob))
    cum = {"hits": 0, "events": 0, "new_category_hits": 0, "new_categories_shown": 0}
    bounds = np.searchsorted(log_.step, np.arange(log_.num_steps + 1))
    beh_lut = np.full(len(table.behaviors), -1, dtype=np.int64)  # table behaviour -> graph behaviour
    for j, b in enumerate(meta.behaviors):
        beh_lut[table.behavior_index(b)] = j
    for t in range(log_.num_steps):  # loop over time slices; work inside is vectorised
        lo, hi = int(bounds[t]), int(bounds[t + 1])
        su, si = log_.user[lo:hi], log_.item[lo:hi]
        pair = np.unique(_keys(su, si, ni))
        users = np.unique(pair // ni)
        if max_users_per_step is not None and users.size > max_users_per_step:
            users = np.sort(rng.choice(users, size=max_users_per_step, replace=False))
        s_ptr, s_idx = _csr(seen, nu, ni)
        t_ptr, t_idx = _csr(pair, nu, ni)
        s_ptr, s_idx, t_ptr, t_idx = (x.to(device) for x in (s_ptr, s_idx, t_ptr, t_idx))
        hits_n = new_hits = new_shown = 0
        ild_sum = 0.0
        shown_pairs: list[np.ndarray] = []
        for b in range(0, users.size, batch_size):
            ub = torch.as_tensor(users[b : b + batch_size], device=device)
            with torch.no_grad():
                scores = model.score_all(emb, ub)
            excl = csr_rows_dense(s_ptr, s_idx, ub, ni) if mask != "none" else None
            lu = None
            if state is not None:
                lu = torch.as_tensor(np.searchsorted(local_of, users[b : b + batch_size]), device=device)  # type: ignore[arg-type]
            items, valid = apply_rerank(
                strategy,
                knob,
                scores,
                excl,
                k,
                users=lu,
                item_emb=feats,
                item_category=item_cat,
                state=state,
                generator=gen,
                options=options,
            )
            truth = csr_rows_dense(t_ptr, t_idx, ub, ni)
            hit = truth.gather(1, items) & valid
            cat = item_cat[items]
            ub_np = ub.cpu().numpy()
            kc = torch.as_tensor(known_cat[ub_np[:, None], cat.clamp(min=0).cpu().numpy()], device=device)
            new = (cat >= 0) & ~kc & valid
            hits_n += int(hit.sum())
            new_hits += int((hit & new).sum())
            # distinct new categories shown per user
            cn = torch.where(new, cat, torch.full_like(cat, -1)).sort(1).values
            first = torch.ones_like(cn, dtype=torch.bool)
            first[:, 1:] = cn[:, 1:] != cn[:, :-1]
            new_shown += int((first & (cn >= 0)).sum())
            ild_sum += float(intra_list_diversity(items, valid, item_category=item_cat).sum())
            it_np, va_np = items.cpu().numpy(), valid.cpu().numpy()
            shown_items[it_np[va_np]] = True
            if state is not None:
                lu_np = np.broadcast_to(lu.cpu().numpy()[:, None], va_np.shape)  # type: ignore[union-attr]
                shown_pairs.append(np.stack([lu_np[va_np], it_np[va_np]]))
        # reveal the slice
        if mask != "none":
            seen = np.union1d(seen, pair)
        sc = item_cat_np[si]
        known_cat[su[sc >= 0], sc[sc >= 0]] = True
        if state is not None:
            rev_local = np.searchsorted(local_of, su)  # type: ignore[arg-type]
            obs = (
                np.concatenate([*shown_pairs, np.stack([rev_local, si])], axis=1)
                if shown_pairs
                else np.stack([rev_local, si])
            )
            state.observe(
                torch.as_tensor(obs[0], device=device),
                torch.as_tensor(obs[1], device=device),
            )
        if streaming:
            gmap = beh_lut[log_.behavior[lo:hi]]
            ok = gmap >= 0  # behaviours that are not graph edge types cannot be folded in
            if ok.any():
                model.update(EventBatch.from_arrays(su[ok], si[ok], gmap[ok], log_.ts[lo:hi][ok]))
                model.eval()
                with torch.no_grad():
                    emb = model.encode(data)
        cum["hits"] += hits_n
        cum["events"] += int(pair.size)
        cum["new_category_hits"] += new_hits
        cum["new_categories_shown"] += new_shown
        res.rows.append(
            {
                "strategy": strategy,
                "knob": float(knob),
                "step": t,
                "ts_end": int(log_.ts[hi - 1]),
                "events": int(pair.size),
                "recommended_users": int(users.size),
                "hits": hits_n,
                "new_category_hits": new_hits,
                "new_categories_shown": new_shown,
                "ild": ild_sum / max(1, users.size),
                "coverage": float(shown_items.mean()) if ni else 0.0,
                "cum_hits": cum["hits"],
                "cum_events": cum["events"],
                "cum_new_category_hits": cum["new_category_hits"],
                "cum_new_categories_shown": cum["new_categories_shown"],
            }
        )
    res.seconds = time.perf_counter() - t0
    return res


def tradeoff_rows(results: Sequence[ReplayResult]) -> list[dict[str, Any]]:
    """One summary row per (strategy, knob)."""
    return [r.summary() for r in results]


def check_replay_config(cfg: Any) -> None:
    """Validate ``cfg.replay`` before any training (strategy names, knob ranges).

    Raises:
        ConfigError: an unknown strategy or an out-of-range knob.
    """
    limits = {
        "mmr": (0.0, 1.0),
        "epsilon": (0.0, 1.0),
        "category": (1.0, float("inf")),
        "linucb": (0.0, float("inf")),
        "thompson": (0.0, float("inf")),
        "topk": (-float("inf"), float("inf")),
    }
    for name, knobs in cfg.replay.strategies.items():
        if name not in STRATEGIES:
            raise ConfigError(
                f"replay.strategies: unknown strategy '{name}' (known: {', '.join(STRATEGIES)})"
            )
        lo, hi = limits[name]
        bad = [k for k in knobs if not lo <= float(k) <= hi]
        if bad:
            raise ConfigError(f"replay.strategies.{name}: knob {bad[0]} outside [{lo}, {hi}]")


def replay_suite(cfg: Any, model: Any, prepared: Any, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Replay every strategy and knob of ``cfg.replay.strategies``; write CSV/JSON and plots.

    Args:
        cfg: the experiment config (``replay``, ``rerank`` secondary settings, ``eval.mask``, ``seed``).
        model: the trained model.
        prepared: :class:`gnnrec.runner.PreparedData` of ``cfg``.
        out_dir: where ``replay.csv``, ``replay.json``, ``replay_summary.csv`` and the PNGs go;
            ``None`` writes nothing.

    Returns:
        ``{"summary": [...], "steps": [...], "log": {...}}``.
    """
    rc = cfg.replay
    check_replay_config(cfg)
    rlog = build_replay_log(prepared.table, prepared.split, rc.steps, rc.behaviors)
    results: list[ReplayResult] = []
    for name, knobs in rc.strategies.items():
        for knob in knobs or (0.0,):
            r = replay(
                model,
                prepared.data,
                prepared.table,
                prepared.split,
                rlog,
                name,
                float(knob),
                k=rc.k,
                mask=cfg.eval.mask,
                seed=cfg.seed,
                update=rc.update,
                options=cfg.rerank,
                batch_size=cfg.eval.batch_size,
                max_users_per_step=rc.max_users_per_step,
            )
            log.info("replay %s %s=%g: %s", name, KNOB_NAMES[name], knob, r.summary())
            results.append(r)
    summary = tradeoff_rows(results)
    steps = [row for r in results for row in r.rows]
    info = {
        "events": len(rlog),
        "steps": rlog.num_steps,
        "users": int(np.unique(rlog.user).size),
        "k": rc.k,
    }
    out = {"summary": summary, "steps": steps, "log": info}
    if out_dir is not None:
        write_outputs(out, Path(out_dir), title=f"{cfg.model.name} on {cfg.data.dataset}")
    return out


def write_outputs(out: dict[str, Any], d: Path, title: str = "") -> None:
    """``replay.json``, ``replay.csv`` (per step), ``replay_summary.csv`` and three PNGs."""
    import polars as pl

    d.mkdir(parents=True, exist_ok=True)
    (d / "replay.json").write_text(json.dumps(out, indent=2))
    pl.DataFrame(out["steps"]).write_csv(d / "replay.csv")
    pl.DataFrame(out["summary"]).write_csv(d / "replay_summary.csv")
    plot_replay(out, d, title)


def plot_replay(out: dict[str, Any], d: Path, title: str = "") -> list[Path]:
    """Cumulative hits vs step, new-category hits vs step, and the accuracy–diversity curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = out["steps"]
    series: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in steps:
        series.setdefault((row["strategy"], row["knob"]), []).append(row)
    # one colour per strategy, a line style per knob value (10 default colours are too few)
    knobs_of: dict[str, list[float]] = {}
    for name, knob in series:
        knobs_of.setdefault(name, []).append(knob)
    styles = ("-", "--", "-.", ":")
    paths = []
    for col, fname, ylabel in (
        ("cum_hits", "replay_reward.png", "cumulative hits"),
        (
            "cum_new_category_hits",
            "replay_discovery.png",
            "cumulative hits in categories new to the user",
        ),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (name, knob), rows in series.items():
            label = name if name == "topk" else f"{name} {KNOB_NAMES[name]}={knob:g}"
            j = knobs_of[name].index(knob)
            ax.plot(
                [r["step"] for r in rows],
                [r[col] for r in rows],
                label=label,
                lw=2.5 if name == "topk" else 1.2,
                color=STRATEGY_COLORS.get(name, "grey"),
                ls=styles[j % len(styles)],
            )
        ax.set_xlabel("replay step (time slice)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(d / fname, dpi=120)
        plt.close(fig)
        paths.append(d / fname)
    paths.append(plot_tradeoff(out["summary"], d / "replay_tradeoff.png", title))
    return paths


def plot_tradeoff(summary: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Hit rate (x) vs ILD and vs new-category hits (y), one line per strategy over its knob."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    by: dict[str, list[dict[str, Any]]] = {}
    for row in summary:
        by.setdefault(row["strategy"], []).append(row)
    for ax, col, ylabel in (
        (axes[0], "ild", "intra-list diversity (category)"),
        (axes[1], "new_category_hits", "hits in categories new to the user"),
    ):
        for name, rows in by.items():
            x = [r["hit_rate"] for r in rows]
            y = [r[col] for r in rows]
            if name == "topk":
                ax.scatter(
                    x,
                    y,
                    marker="*",
                    s=160,
                    color="black",
                    label="topk (exploit)",
                    zorder=3,
                )
                continue
            ax.plot(
                x,
                y,
                marker="o",
                label=f"{name} ({KNOB_NAMES[name]})",
                color=STRATEGY_COLORS.get(name, "grey"),
            )
            for r in rows:
                ax.annotate(f"{r['knob']:g}", (r["hit_rate"], r[col]), fontsize=6)
        ax.set_xlabel("hit rate (hits / replayed pairs)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(f"accuracy–diversity trade-off: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
