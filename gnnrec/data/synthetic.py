"""Embedded e-commerce behaviour-log simulator with planted interest migration.

The simulator produces logs with the same columns as a real one (``user, item, category,
behavior, timestamp``) and a ground-truth table of each user's category interests, so
interest-association and interest-migration measures can be checked against known answers.

Generative model (all parameters in :class:`~gnnrec.config.SyntheticConfig`):

* **Catalogue.** Category sizes follow a Zipf law (exponent ``category_zipf``); items are
  assigned to categories by those sizes (every category gets at least one item when there are
  at least as many items as categories) in a random order. Inside a category, item popularity
  follows a Zipf law (exponent ``item_zipf``) over a random ranking of its items.
* **Users.** A user has a sparse interest mixture: ``interests_per_user`` distinct categories
  (drawn without replacement with probability proportional to category size) with
  Dirichlet(``interest_concentration``) weights, and a latent taste vector.
* **Views.** The number of views is Poisson(``events_per_user``); view times are uniform over
  the period and sorted per user. A view picks a category from the user's *active* mixture,
  or, with probability ``exploration``, uniformly among non-empty categories; then an item of
  that category by within-category popularity.
* **Funnel.** Each view independently leads to a ``cart`` (probability ``cart_rate * a``) and
  to a ``fav`` (``fav_rate * a``); a viewed item that was carted or faved is bought with
  probability ``buy_rate * a``. Cart and fav come after the view, buy after the earliest of
  cart/fav (random delays, clipped to the period, so ordering is earlier-or-equal at the end).
  The affinity ``a`` in [0, 1] is ``(1 - λ) * w / w_max + λ * taste`` where ``w`` is the active
  mixture's weight of the item's category (``w_max`` the user's largest weight) and ``taste``
  = sigmoid of a scaled dot product of user and item latent vectors (dimension 8, λ = 0.3).
  The taste term is low-rank on purpose: it gives a factorisation model signal beyond
  categories, which a per-pair random term would not.
* **Migration.** A ``migration_share`` of users get a change time uniform within
  ``migration_window`` (fractions of the period); views from then on use a *new* mixture over
  categories disjoint from the old ones (drawn in the same without-replacement draw, so they
  are disjoint by construction). A user can only migrate when there are enough categories for
  a disjoint new set.

Randomness and chunking: the catalogue comes from ``SeedSequence(seed, spawn_key=(0,))``; users
are simulated in fixed blocks of :data:`BLOCK_USERS` users, block ``b`` from
``SeedSequence(seed, spawn_key=(1, b))``. So the log of a user depends only on the seed and the
config (not on ``chunk_users``, nor on which chunks are consumed), and ``iter_chunks`` can
regroup blocks into chunks of any size with bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from gnnrec.config import DEFAULT_BEHAVIORS, SyntheticConfig
from gnnrec.errors import ConfigError

#: users simulated per independently seeded block (fixed so results never depend on chunking)
BLOCK_USERS = 1024
#: behaviour names in funnel order; codes 0..3 below index this tuple
BEHAVIORS: tuple[str, ...] = DEFAULT_BEHAVIORS
_VIEW, _CART, _FAV, _BUY = 0, 1, 2, 3
_TASTE_DIM = 8  # dimension of the latent taste vectors
_TASTE_WEIGHT = 0.3  # λ: share of the affinity coming from the latent taste term
_TASTE_SCALE = 2.0  # slope of the taste sigmoid (spreads taste over [0, 1])
_CART_DELAY_S = 900.0  # mean delay view -> cart / fav, seconds (exponential)
_BUY_DELAY_S = 3600.0  # mean delay cart/fav -> buy, seconds (exponential)

LOG_SCHEMA: dict[str, Any] = {
    "user": pl.Int64,
    "item": pl.Int64,
    "category": pl.Int64,
    "behavior": pl.String,
    "timestamp": pl.Int64,
}


@dataclass
class _World:
    """The catalogue shared by all users (depends on the seed and config only)."""

    item_category: np.ndarray  # int64 [num_items]
    nonempty: np.ndarray  # int64 ids of categories with at least one item
    prior: np.ndarray  # float64 [len(nonempty)] interest prior, proportional to size
    items_by_cat: np.ndarray  # int64 [num_items] item ids grouped by category
    keys: np.ndarray  # float64 [num_items] category index + within-category CDF (sorted)
    cat_lo: np.ndarray  # int64 [num_categories] first position of a category in items_by_cat
    cat_hi: np.ndarray  # int64 [num_categories] one past its last position
    item_factors: np.ndarray  # float32 [num_items, _TASTE_DIM]


def _check(cfg: SyntheticConfig, seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: the simulator needs a non-negative integer seed, got {seed!r}")
    lo, hi = cfg.migration_window
    if not 0.0 <= lo <= hi <= 1.0:
        raise ConfigError(
            "data.synthetic.migration_window: expected [a, b] with 0 <= a <= b <= 1, "
            f"got {list(cfg.migration_window)}"
        )


def _period_seconds(cfg: SyntheticConfig) -> int:
    return max(1, round(cfg.days * 86400))


def _largest_remainder(p: np.ndarray, n: int) -> np.ndarray:
    """Integer sizes summing to ``n`` closest to ``n * p`` (Hamilton apportionment)."""
    q = n * p
    base = np.floor(q).astype(np.int64)
    rest = n - int(base.sum())
    if rest > 0:
        order = np.argsort(-(q - base), kind="stable")
        base[order[:rest]] += 1
    return base


def _build_world(cfg: SyntheticConfig, seed: int) -> _World:
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    n_cat, n_items = cfg.num_categories, cfg.num_items
    zipf = np.arange(1, n_cat + 1, dtype=np.float64) ** -cfg.category_zipf
    zipf /= zipf.sum()
    if n_items >= n_cat:
        # one item per category first, so no category is empty; the rest by Zipf share
        sizes = 1 + _largest_remainder(zipf, n_items - n_cat)
    else:
        sizes = _largest_remainder(zipf, n_items)
    labels = np.repeat(np.arange(n_cat, dtype=np.int64), sizes)
    items_by_cat = rng.permutation(n_items).astype(np.int64)
    item_category = np.empty(n_items, dtype=np.int64)
    item_category[items_by_cat] = labels

    cat_hi = np.cumsum(sizes)
    cat_lo = cat_hi - sizes
    # within-category Zipf popularity over the (random) order of items_by_cat
    rank = np.arange(n_items, dtype=np.int64) - cat_lo[labels]
    weight = (rank + 1.0) ** -cfg.item_zipf
    csum = np.cumsum(weight)
    before = np.concatenate([[0.0], csum])[cat_lo]  # cumulative weight before each category
    total = csum[cat_hi[sizes > 0] - 1] - before[sizes > 0]
    seg_total = np.zeros(n_cat)
    seg_total[sizes > 0] = total
    cdf = (csum - before[labels]) / seg_total[labels]
    cdf[cat_hi[sizes > 0] - 1] = 1.0  # exact 1 at each category end (no rounding gap)
    keys = labels + cdf

    nonempty = np.flatnonzero(sizes > 0).astype(np.int64)
    prior = sizes[nonempty] / sizes[nonempty].sum()
    item_factors = rng.standard_normal((n_items, _TASTE_DIM)).astype(np.float32)
    return _World(item_category, nonempty, prior, items_by_cat, keys, cat_lo, cat_hi, item_factors)


def _dirichlet(rng: np.random.Generator, conc: float, shape: tuple[int, int]) -> np.ndarray:
    g = rng.standard_gamma(conc, size=shape)
    s = g.sum(axis=1, keepdims=True)
    # tiny concentrations can underflow every gamma draw to 0: fall back to uniform weights
    g = np.where(s > 0, g, 1.0)
    return g / g.sum(axis=1, keepdims=True)


def _list_series(name: str, values: np.ndarray, lengths: np.ndarray) -> pl.Series:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    arr = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values))
    out = pl.from_arrow(arr)
    assert isinstance(out, pl.Series)
    return out.alias(name)


def _simulate_block(
    cfg: SyntheticConfig, world: _World, seed: int, block: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Simulate users ``[block * BLOCK_USERS, ...)``: (log sorted by user, ts, funnel), truth."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1, block)))
    lo = block * BLOCK_USERS
    n = min(cfg.num_users, lo + BLOCK_USERS) - lo
    n_ne = world.nonempty.shape[0]
    k = min(cfg.interests_per_user, n_ne)
    k_new = min(cfg.interests_per_user, n_ne - k)
    start = int(cfg.start)
    period = _period_seconds(cfg)
    end = start + period

    # --- users: old + new interest sets in one draw without replacement, so the new set is
    # disjoint from the old by construction. Exponential race: the m smallest Exp(1) / p_c are
    # distributed as m sequential draws without replacement (same as Gumbel top-m, no logs).
    m = k + k_new
    race = rng.standard_exponential((n, n_ne), dtype=np.float32) / world.prior.astype(np.float32)
    top = np.argpartition(race, m - 1, axis=1)[:, :m]
    top = np.take_along_axis(top, np.argsort(np.take_along_axis(race, top, 1), 1), 1)
    del race
    old_c = world.nonempty[top[:, :k]]
    new_c = world.nonempty[top[:, k:m]]
    old_w = _dirichlet(rng, cfg.interest_concentration, (n, k))
    new_w = _dirichlet(rng, cfg.interest_concentration, (n, max(k_new, 1)))[:, :k_new]
    if k_new > 0:
        new_w = new_w / new_w.sum(axis=1, keepdims=True)
    migrates = (rng.random(n) < cfg.migration_share) & (k_new > 0)
    frac = rng.uniform(cfg.migration_window[0], cfg.migration_window[1], n)
    change_ts = start + np.floor(frac * period).astype(np.int64)
    user_factors = rng.standard_normal((n, _TASTE_DIM)).astype(np.float32)
    n_views = rng.poisson(cfg.events_per_user, n)

    # pad the new mixture to width k (zero weight) so old/new rows can be selected per event
    new_c_pad = np.full((n, k), -1, dtype=np.int64)
    new_w_pad = np.zeros((n, k))
    new_c_pad[:, :k_new] = new_c
    new_w_pad[:, :k_new] = new_w

    # --- views
    eu = np.repeat(np.arange(n, dtype=np.int64), n_views)
    n_ev = eu.shape[0]
    ts = start + np.floor(rng.random(n_ev) * period).astype(np.int64)
    # sort times within each user: eu is grouped and ascending, so sorting the combined key
    # keeps the user sequence and orders times inside each user
    ts = start + np.sort(eu * period + (ts - start)) - eu * period
    after = migrates[eu] & (ts >= change_ts[eu])
    act_c = np.where(after[:, None], new_c_pad[eu], old_c[eu])
    act_w = np.where(after[:, None], new_w_pad[eu], old_w[eu])
    cum = np.cumsum(act_w, axis=1)
    u_slot = rng.random(n_ev)
    slot = np.minimum((cum < (u_slot * cum[:, -1])[:, None]).sum(axis=1), k - 1)
    mix_cat = act_c[np.arange(n_ev), slot]
    explore = rng.random(n_ev) < cfg.exploration
    explore_cat = world.nonempty[rng.integers(0, n_ne, n_ev)]
    cat = np.where(explore, explore_cat, mix_cat)
    pos = np.searchsorted(world.keys, cat + rng.random(n_ev), side="right")
    pos = np.clip(pos, world.cat_lo[cat], world.cat_hi[cat] - 1)
    item = world.items_by_cat[pos]

    # --- affinity of each viewed (user, item) under the mixture active at view time
    w = (act_w * (act_c == cat[:, None])).sum(axis=1)
    w_norm = w / act_w.max(axis=1)
    dot = np.einsum("ij,ij->i", user_factors[eu], world.item_factors[item]).astype(np.float64)
    taste = 1.0 / (1.0 + np.exp(-_TASTE_SCALE * dot / np.sqrt(_TASTE_DIM)))
    aff = (1.0 - _TASTE_WEIGHT) * w_norm + _TASTE_WEIGHT * taste

    # --- funnel
    r = rng.random((3, n_ev))
    cart = r[0] < cfg.cart_rate * aff
    fav = r[1] < cfg.fav_rate * aff
    buy = (cart | fav) & (r[2] < cfg.buy_rate * aff)
    delay = rng.exponential(1.0, (3, n_ev))
    t_cart = np.minimum(ts + 1 + np.floor(delay[0] * _CART_DELAY_S).astype(np.int64), end - 1)
    t_fav = np.minimum(ts + 1 + np.floor(delay[1] * _CART_DELAY_S).astype(np.int64), end - 1)
    anchor = np.where(cart & fav, np.minimum(t_cart, t_fav), np.where(cart, t_cart, t_fav))
    t_buy = np.minimum(anchor + 1 + np.floor(delay[2] * _BUY_DELAY_S).astype(np.int64), end - 1)

    masks = (np.ones(n_ev, dtype=bool), cart, fav, buy)
    times = (ts, t_cart, t_fav, t_buy)
    l_user = np.concatenate([eu[mk] for mk in masks])
    l_item = np.concatenate([item[mk] for mk in masks])
    l_cat = np.concatenate([cat[mk] for mk in masks])
    l_ts = np.concatenate([t[mk] for t, mk in zip(times, masks)])
    l_beh = np.concatenate([np.full(int(mk.sum()), code, np.int8) for code, mk in enumerate(masks)])
    # order by user, time, funnel step (one int64 key: users < block, times < period)
    order = np.argsort((l_user * period + (l_ts - start)) * len(BEHAVIORS) + l_beh, kind="stable")
    log = pl.DataFrame(
        {
            "user": lo + l_user[order],
            "item": l_item[order],
            "category": l_cat[order],
            "behavior": pl.Series(l_beh[order]).replace_strict(
                list(range(len(BEHAVIORS))), list(BEHAVIORS), return_dtype=pl.String
            ),
            "timestamp": l_ts[order],
        },
        schema=LOG_SCHEMA,
    )

    n_new = np.where(migrates, k_new, 0)
    truth = pl.DataFrame(
        [
            pl.Series("user", lo + np.arange(n, dtype=np.int64)),
            pl.Series("migrates", migrates),
            pl.Series("change_ts", change_ts),
            _list_series("old_categories", old_c.ravel(), np.full(n, k)),
            _list_series("old_weights", old_w.ravel(), np.full(n, k)),
            _list_series("new_categories", new_c[migrates].ravel(), n_new),
            _list_series("new_weights", new_w[migrates].ravel(), n_new),
        ]
    ).with_columns(pl.when(pl.col("migrates")).then(pl.col("change_ts")).alias("change_ts"))
    return log, truth


def _empty_truth() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "user": pl.Int64,
            "migrates": pl.Boolean,
            "change_ts": pl.Int64,
            "old_categories": pl.List(pl.Int64),
            "old_weights": pl.List(pl.Float64),
            "new_categories": pl.List(pl.Int64),
            "new_weights": pl.List(pl.Float64),
        }
    )


def iter_chunks(cfg: SyntheticConfig, seed: int) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Simulate the log chunk by chunk with bounded memory.

    Yields one ``(log, ground_truth)`` pair per ``cfg.chunk_users`` consecutive users (users
    ``0..num_users-1``). Users are simulated in fixed, independently seeded blocks of
    :data:`BLOCK_USERS`, so every user's events are identical whatever ``chunk_users`` is, and
    concatenating the chunks gives :func:`simulate`'s result.

    Args:
        cfg: simulator settings.
        seed: non-negative integer seed.

    Yields:
        ``log`` (columns ``user, item, category, behavior, timestamp``; sorted by user, time and
        funnel order; users without events have no rows) and ``ground_truth`` (one row per
        user of the chunk; see :func:`simulate`).

    Raises:
        ConfigError: negative seed or an invalid ``migration_window``.
    """
    _check(cfg, seed)
    world = _build_world(cfg, seed)
    n_users, size = cfg.num_users, cfg.chunk_users
    logs: list[pl.DataFrame] = []
    truths: list[pl.DataFrame] = []
    simulated = 0  # users simulated so far (always a block boundary or num_users)
    block = 0
    for chunk_lo in range(0, n_users, size):
        chunk_hi = min(n_users, chunk_lo + size)
        while simulated < chunk_hi:
            log, truth = _simulate_block(cfg, world, seed, block)
            logs.append(log)
            truths.append(truth)
            block += 1
            simulated = min(n_users, block * BLOCK_USERS)
        log = pl.concat(logs) if logs else pl.DataFrame(schema=LOG_SCHEMA)
        truth = pl.concat(truths) if truths else _empty_truth()
        # both frames are sorted by user: split at the chunk's end, keep the rest buffered
        cut_log = int(np.searchsorted(log["user"].to_numpy(), chunk_hi, side="left"))
        cut_truth = chunk_hi - int(truth["user"][0]) if truth.height else 0
        yield log.slice(0, cut_log), truth.slice(0, cut_truth)
        logs = [log.slice(cut_log)]
        truths = [truth.slice(cut_truth)]


def simulate(cfg: SyntheticConfig, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Simulate a whole log in memory (the concatenation of :func:`iter_chunks`).

    Args:
        cfg: simulator settings.
        seed: non-negative integer seed; the same seed and config give identical frames.

    Returns:
        ``(log, ground_truth)``. ``log`` has Int64 ``user, item, category, timestamp`` (Unix
        seconds) and String ``behavior`` in ``view, cart, fav, buy``. ``ground_truth`` has one
        row per user: ``user``, ``migrates`` (bool), ``change_ts`` (Int64, null when not
        migrating), ``old_categories`` / ``old_weights`` (the initial mixture) and
        ``new_categories`` / ``new_weights`` (the mixture after the change; empty lists when
        not migrating).
    """
    logs, truths = [], []
    for log, truth in iter_chunks(cfg, seed):
        logs.append(log)
        truths.append(truth)
    return pl.concat(logs, rechunk=True), pl.concat(truths, rechunk=True)


def ground_truth_path(path: str | Path) -> Path:
    """The ground-truth file written beside a simulated log: ``<stem>.ground_truth.parquet``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.ground_truth.parquet")


def write_synthetic(path: str | Path, cfg: SyntheticConfig, seed: int) -> dict[str, Any]:
    """Simulate straight to Parquet, one chunk at a time (memory bounded by ``chunk_users``).

    Writes the log to ``path`` and the ground truth to :func:`ground_truth_path` beside it.
    Partial files are removed if simulation or writing fails.

    Args:
        path: output Parquet file; parent folders are created.
        cfg: simulator settings.
        seed: non-negative integer seed.

    Returns:
        ``{"rows", "users", "migrating_users", "path", "ground_truth_path"}``.
    """
    out = Path(path)
    gt_out = ground_truth_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = users = migrating = 0
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        for log, truth in iter_chunks(cfg, seed):
            for key, frame, target in (("log", log, out), ("truth", truth, gt_out)):
                table = frame.to_arrow()
                if key not in writers:
                    writers[key] = pq.ParquetWriter(target, table.schema, compression="zstd")
                else:
                    # later chunks must match the first chunk's Arrow types exactly
                    table = table.cast(writers[key].schema)
                writers[key].write_table(table)
            rows += log.height
            users += truth.height
            migrating += int(truth["migrates"].sum())
    except BaseException:
        for w in writers.values():
            w.close()
        out.unlink(missing_ok=True)
        gt_out.unlink(missing_ok=True)
        raise
    for w in writers.values():
        w.close()
    return {
        "rows": rows,
        "users": users,
        "migrating_users": migrating,
        "path": str(out),
        "ground_truth_path": str(gt_out),
    }
