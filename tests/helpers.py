"""Test helpers: build an :class:`InteractionTable` directly from Python lists.

The ingest path (reader → validate_log → build_interactions) is tested on its own; most other
stages only need a table, so tests build one here without touching files.

``tiny_table()`` is the hand-written log shared by split / graph tests (documented below).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gnnrec.data.types import GIVEN_CODES, InteractionTable

DEFAULT_VOCAB: tuple[str, ...] = ("view", "cart", "fav", "buy")


def make_table(
    users: Sequence[int] | np.ndarray,
    items: Sequence[int] | np.ndarray,
    behaviors: Sequence[str | int] | np.ndarray,
    ts: Sequence[int] | np.ndarray | None = None,
    categories_per_item: Sequence[int] | np.ndarray | None = None,
    behaviors_vocab: tuple[str, ...] = DEFAULT_VOCAB,
    target: str = "buy",
    *,
    num_users: int | None = None,
    num_items: int | None = None,
    num_categories: int | None = None,
    given: Sequence[str | int] | np.ndarray | None = None,
) -> InteractionTable:
    """Build an :class:`InteractionTable` from contiguous integer ids.

    Args:
        users, items: per-event ids, already contiguous (``0..num_users-1`` / ``0..num_items-1``).
        behaviors: per-event behaviour, as names from ``behaviors_vocab`` or integer indices.
        ts: per-event Unix seconds, or ``None`` for a log without timestamps.
        categories_per_item: category id per item (``-1`` = unknown); default all unknown.
        behaviors_vocab: behaviour vocabulary (funnel order).
        target: default evaluated behaviour (``table.target_behavior``).
        num_users, num_items, num_categories: vocabulary sizes; default ``max id + 1``
            (so ids that never occur are users/items without events).
        given: optional dataset split per event, as names (``train``/``valid``/``test``/
            ``unused``) or codes (0/1/2/-1).

    Returns:
        The table; vocabularies are the ids as strings (``"u0"``, ``"i3"``, ``"c1"``).
    """
    user = np.asarray(users, dtype=np.int64).reshape(-1)
    item = np.asarray(items, dtype=np.int64).reshape(-1)
    n = user.shape[0]
    if item.shape[0] != n:
        raise ValueError("users and items differ in length")
    beh_list = list(behaviors)
    if len(beh_list) != n:
        raise ValueError("behaviors differs in length from users")
    beh = np.array(
        [behaviors_vocab.index(b) if isinstance(b, str) else int(b) for b in beh_list], dtype=np.int8
    ).reshape(-1)
    ts_arr = None if ts is None else np.asarray(ts, dtype=np.int64).reshape(-1)
    if ts_arr is not None and ts_arr.shape[0] != n:
        raise ValueError("ts differs in length from users")
    nu = int(num_users) if num_users is not None else (int(user.max()) + 1 if n else 0)
    ni = int(num_items) if num_items is not None else (int(item.max()) + 1 if n else 0)
    if categories_per_item is None:
        cat = np.full(ni, -1, dtype=np.int64)
    else:
        cat = np.asarray(categories_per_item, dtype=np.int64).reshape(-1)
        if cat.shape[0] != ni:
            raise ValueError(f"categories_per_item needs {ni} entries, got {cat.shape[0]}")
    nc = int(num_categories) if num_categories is not None else (int(cat.max()) + 1 if cat.size else 0)
    nc = max(nc, 0)
    given_arr = None
    if given is not None:
        given_arr = np.array(
            [GIVEN_CODES[g] if isinstance(g, str) else int(g) for g in list(given)], dtype=np.int8
        )
        if given_arr.shape[0] != n:
            raise ValueError("given differs in length from users")
    return InteractionTable(
        user=user,
        item=item,
        behavior=beh,
        ts=ts_arr,
        item_category=cat,
        behaviors=tuple(behaviors_vocab),
        target_behavior=target,
        user_ids=np.array([f"u{i}" for i in range(nu)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(ni)], dtype=object),
        category_ids=np.array([f"c{i}" for i in range(nc)], dtype=object),
        given_split=given_arr,
    )


#: The hand-written tiny log (4 users, 6 items, 2 categories, all four behaviours).
#:
#: ====  ====  ====  ======  ====  ========================================
#:  row  user  item  beh      ts   note
#: ====  ====  ====  ======  ====  ========================================
#:   0     0     0   view     100
#:   1     0     0   cart     110
#:   2     0     0   buy      120
#:   3     0     1   view     130
#:   4     0     1   buy      140
#:   5     0     3   view     150
#:   6     0     3   buy      160   user 0: 3 buys → llo: VALID 140, TEST 160
#:   7     1     1   view     100
#:   8     1     1   fav      105
#:   9     1     2   view     105   timestamp tie with row 8
#:  10     1     2   buy      200
#:  11     1     4   view     210
#:  12     1     4   buy      220   user 1: 2 buys → llo: TEST 220 only
#:  13     1     3   view     220   tie with the held-out buy → EXCLUDED (strict <)
#:  14     2     0   view     300   user 2: cold (no buy)
#:  15     2     5   view     310   item 5 has no category
#:  16     2     5   view     320   repeat view → edge count 2, last ts 320
#:  17     3     3   cart      50
#:  18     3     3   buy       60
#:  19     3     3   buy       70   repeat purchase of the same item
#: ====  ====  ====  ======  ====  ========================================
#:
#: Item categories: items 0, 1, 2 → category 0; items 3, 4 → category 1; item 5 unknown (-1).
TINY_LOG: tuple[tuple[int, int, str, int], ...] = (
    (0, 0, "view", 100),
    (0, 0, "cart", 110),
    (0, 0, "buy", 120),
    (0, 1, "view", 130),
    (0, 1, "buy", 140),
    (0, 3, "view", 150),
    (0, 3, "buy", 160),
    (1, 1, "view", 100),
    (1, 1, "fav", 105),
    (1, 2, "view", 105),
    (1, 2, "buy", 200),
    (1, 4, "view", 210),
    (1, 4, "buy", 220),
    (1, 3, "view", 220),
    (2, 0, "view", 300),
    (2, 5, "view", 310),
    (2, 5, "view", 320),
    (3, 3, "cart", 50),
    (3, 3, "buy", 60),
    (3, 3, "buy", 70),
)
TINY_CATEGORIES: tuple[int, ...] = (0, 0, 0, 1, 1, -1)


def tiny_table(**kwargs: Any) -> InteractionTable:
    """The :data:`TINY_LOG` as a table (keyword arguments go to :func:`make_table`)."""
    u, i, b, t = zip(*TINY_LOG)
    return make_table(u, i, b, t, categories_per_item=TINY_CATEGORIES, **kwargs)


def random_tables(
    with_ts: bool = True,
    with_given: bool = False,
    max_events: int = 40,
    max_users: int = 5,
    max_items: int = 6,
) -> Any:
    """Hypothesis strategy of small random tables.

    Few users / items and timestamps in ``0..8`` so repeats, duplicates and timestamp ties
    are common; behaviours from the default vocabulary with at least one ``buy`` (target)
    event; item categories in ``{-1, 0, 1}``; optionally a random given split.
    """
    from hypothesis import strategies as st

    @st.composite
    def build(draw: Any) -> InteractionTable:
        nu = draw(st.integers(1, max_users))
        ni = draw(st.integers(1, max_items))
        n = draw(st.integers(1, max_events))

        def ints(lo: int, hi: int) -> Any:
            return st.lists(st.integers(lo, hi), min_size=n, max_size=n)

        users = draw(ints(0, nu - 1))
        items = draw(ints(0, ni - 1))
        behaviors = draw(ints(0, len(DEFAULT_VOCAB) - 1))
        behaviors[draw(st.integers(0, n - 1))] = DEFAULT_VOCAB.index("buy")
        ts = draw(ints(0, 8)) if with_ts else None
        cats = draw(st.lists(st.integers(-1, 1), min_size=ni, max_size=ni))
        given = (
            draw(st.lists(st.sampled_from([0, 0, 0, 1, 2, -1]), min_size=n, max_size=n))
            if with_given
            else None
        )
        return make_table(
            users, items, behaviors, ts, cats, num_users=nu, num_items=ni, num_categories=2, given=given
        )

    return build()


def run_cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """Run ``gnnrec`` in-process: (exit code, stdout, stderr)."""
    from gnnrec.cli import main

    try:
        code = main(args)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single ``error:`` line of a failed command (and no traceback)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def buy_data(pairs: Sequence[tuple[int, int]], num_users: int, num_items: int) -> Any:
    """A one-behaviour (``buy``) :class:`~gnnrec.graph.data.TrainData` whose edges and positives
    are ``pairs`` (zero timestamps, count 1, every item in category 0)."""
    import torch

    from gnnrec.graph.data import GraphMeta, TrainData

    pos = torch.tensor(list(pairs), dtype=torch.long).T.contiguous()
    meta = GraphMeta(num_users, num_items, 1, ("buy",), "buy")
    return TrainData(
        meta=meta,
        edge_index={"buy": pos},
        edge_ts={"buy": torch.zeros(pos.shape[1], dtype=torch.long)},
        edge_count={"buy": torch.ones(pos.shape[1], dtype=torch.long)},
        pos_index=pos,
        item_category=torch.zeros(num_items, dtype=torch.long),
    )
