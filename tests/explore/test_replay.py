"""Replay: reward accounting on a hand-made log, determinism, streaming updates.

The log (2 users, 4 items; items 0, 1 in category 0, items 2, 3 in category 1)::

    row user item beh  ts  split
     0    0    0  buy   1  TRAIN
     1    1    2  buy   2  TRAIN
     2    0    1  buy  10  TEST     step 0
     3    1    3  buy  11  TEST     step 0
     4    0    2  buy  20  TEST     step 1
     5    1    0  buy  21  TEST     step 1

The model's scores are fixed: user 0 ranks items (4, 3, 2, 1), user 1 ranks (1, 2, 3, 4).
With K = 1 and TRAIN buys masked:

* step 0: user 0 gets item 1 (hit, category 0 known), user 1 gets item 3 (hit, category 1
  known): 2 hits, 0 new-category hits, 0 new categories shown;
* reveal: user 0 knows items {0, 1}, user 1 knows {2, 3};
* step 1: user 0 gets item 2 (hit, category 1 is new -> a discovery), user 1 gets item 1
  (miss; category 0 new -> shown): 1 hit, 1 new-category hit, 2 new categories shown.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

from gnnrec.config import GraphConfig
from gnnrec.data.types import TEST, TRAIN, Split
from gnnrec.errors import ConfigError
from gnnrec.explore.replay import build_replay_log, replay
from gnnrec.graph.build import build_train_data
from gnnrec.models.base import Recommender
from tests.helpers import make_table

SCORES = torch.tensor([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])


class FixedModel(Recommender):
    """Dot-product model whose scores are :data:`SCORES` (item embeddings = identity)."""

    def __init__(self, meta):  # type: ignore[no-untyped-def]
        super().__init__(meta)
        self.user = torch.nn.Parameter(SCORES.clone())
        self.item = torch.nn.Parameter(torch.eye(4))

    def encode(self, data):  # type: ignore[no-untyped-def]
        return {"user": self.user, "item": self.item}


class StreamingModel(FixedModel):
    """Streaming variant: ``update`` records its calls and swaps user 1's preferences."""

    calls: ClassVar[list[tuple[list[int], list[int]]]] = []

    def update(self, events):  # type: ignore[no-untyped-def]
        StreamingModel.calls.append((events.user.tolist(), events.item.tolist()))
        with torch.no_grad():
            self.user[1] = torch.tensor([4.0, 3.0, 2.0, 1.0])
        return {1}


def _setup():  # type: ignore[no-untyped-def]
    table = make_table(
        [0, 1, 0, 1, 0, 1],
        [0, 2, 1, 3, 2, 0],
        ["buy"] * 6,
        [1, 2, 10, 11, 20, 21],
        categories_per_item=[0, 0, 1, 1],
    )
    split = Split(
        np.array([TRAIN, TRAIN, TEST, TEST, TEST, TEST], dtype=np.int8),
        target=3,
        mode="given",
    )
    data = build_train_data(table, split, GraphConfig())
    return table, split, data


def test_build_replay_log_orders_and_slices() -> None:
    table, split, _ = _setup()
    log = build_replay_log(table, split, 2)
    assert log.user.tolist() == [0, 1, 0, 1]
    assert log.item.tolist() == [1, 3, 2, 0]
    assert log.step.tolist() == [0, 0, 1, 1]
    with pytest.raises(ConfigError, match="unknown behaviour"):
        build_replay_log(table, split, 2, ["click"])


def test_reward_accounting_by_hand() -> None:
    table, split, data = _setup()
    model = FixedModel(data.meta)
    res = replay(model, data, table, split, build_replay_log(table, split, 2), "topk", 0.0, k=1)
    r0, r1 = res.rows
    assert (r0["hits"], r0["new_category_hits"], r0["new_categories_shown"]) == (
        2,
        0,
        0,
    )
    assert (r1["hits"], r1["new_category_hits"], r1["new_categories_shown"]) == (
        1,
        1,
        2,
    )
    assert (r1["cum_hits"], r1["cum_events"], r1["cum_new_category_hits"]) == (3, 4, 1)
    assert r1["coverage"] == pytest.approx(3 / 4)  # items 1, 3, 2 shown
    s = res.summary()
    assert s["hit_rate"] == pytest.approx(3 / 4)


@pytest.mark.parametrize(
    "strategy,knob",
    [("epsilon", 0.5), ("thompson", 1.0), ("linucb", 1.0), ("mmr", 0.5)],
)
def test_replay_is_deterministic(strategy: str, knob: float) -> None:
    table, split, data = _setup()
    model = FixedModel(data.meta)
    log = build_replay_log(table, split, 2)
    a = replay(model, data, table, split, log, strategy, knob, k=2, seed=3)
    b = replay(model, data, table, split, log, strategy, knob, k=2, seed=3)
    assert [dict(r) for r in a.rows] == [dict(r) for r in b.rows]


def test_streaming_model_is_updated_on_a_copy() -> None:
    table, split, data = _setup()
    model = StreamingModel(data.meta)
    StreamingModel.calls.clear()
    res = replay(model, data, table, split, build_replay_log(table, split, 2), "topk", 0.0, k=1)
    # step 0 revealed (0, 1) and (1, 3); the update swapped user 1 to prefer item 0 -> a hit
    assert StreamingModel.calls[0] == ([0, 1], [1, 3])
    assert res.rows[1]["hits"] == 2
    assert torch.equal(model.user.detach(), SCORES)  # the caller's model is untouched
    static = replay(
        model,
        data,
        table,
        split,
        build_replay_log(table, split, 2),
        "topk",
        0.0,
        k=1,
        update=False,
    )
    assert static.rows[1]["hits"] == 1


def test_unknown_strategy() -> None:
    table, split, data = _setup()
    with pytest.raises(ConfigError, match="unknown strategy"):
        replay(
            FixedModel(data.meta),
            data,
            table,
            split,
            build_replay_log(table, split, 2),
            "greedy",
            0.0,
        )
