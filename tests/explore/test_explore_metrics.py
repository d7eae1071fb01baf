"""Beyond-accuracy metrics on a hand-written 3-user, 6-item case.

Lists (K = 3) and their inputs::

    user  list        valid        truth    categories of the list
      0   [0, 1, 2]   all          {1, 2}   0, 0, 1
      1   [3, 4, 5]   all          {5}      1, 2, unknown
      2   [4, 5, 1]   last empty   {1}      2, unknown, (empty)

    item categories [0, 0, 1, 1, 2, -1] (3 categories); TRAIN users per item [2, 1, 0, 1, 0, 0]
    (3 users) so p(i) = (n_i + 1) / 4 and -log2 p = [0.41504, 1, 2, 1, 2, 2];
    primitive (popularity) list for everyone: [0, 1, 3].
"""

from __future__ import annotations

import math

import pytest
import torch

from gnnrec.explore.metrics import (
    beyond_accuracy,
    catalogue_coverage,
    category_coverage,
    intra_list_diversity,
    item_popularity,
    novelty,
    serendipity,
)

ITEMS = torch.tensor([[0, 1, 2], [3, 4, 5], [4, 5, 1]])
VALID = torch.tensor([[True, True, True], [True, True, True], [True, True, False]])
CAT = torch.tensor([0, 0, 1, 1, 2, -1])
POP = torch.tensor([2, 1, 0, 1, 0, 0])
TRUTH = [{1, 2}, {5}, {1}]
RELEVANT = torch.tensor([[i in TRUTH[u] for i in row] for u, row in enumerate(ITEMS.tolist())])
PRIMITIVE = torch.tensor([[0, 1, 3]] * 3)


def test_catalogue_coverage() -> None:
    assert catalogue_coverage(ITEMS, VALID, 6) == pytest.approx(6 / 6)
    # K = 2: {0, 1, 3, 4, 5}
    assert catalogue_coverage(ITEMS[:, :2], VALID[:, :2], 6) == pytest.approx(5 / 6)
    # user 2 alone: item 1 sits in an empty slot and does not count -> {4, 5}
    assert catalogue_coverage(ITEMS[2:], VALID[2:], 6) == pytest.approx(2 / 6)


def test_category_coverage() -> None:
    got = category_coverage(ITEMS, VALID, CAT, 3)
    assert got.tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 3])


def test_ild_categories_and_embeddings() -> None:
    got = intra_list_diversity(ITEMS, VALID, item_category=CAT)
    # user 0: pairs (0,1) same, (0,2) and (1,2) differ -> 2/3; user 1: all differ (unknown never
    # equals) -> 1; user 2: one valid pair (4, 5) -> 1
    assert got.tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    got = intra_list_diversity(ITEMS, VALID, item_emb=emb)
    c = 1 - 1 / math.sqrt(2)  # 1 - cos((1,1),(0,1))
    user1 = (c + (1 - (-1 / math.sqrt(2)))) + 1.0  # (3,4), (3,5), (4,5)
    assert got.tolist() == pytest.approx([2 / 3, user1 / 3, 1.0])


def test_novelty() -> None:
    info = [-math.log2(0.75), 1.0, 2.0, 1.0, 2.0, 2.0]
    got = novelty(ITEMS, VALID, POP, num_users=3)
    assert got.tolist() == pytest.approx([(info[0] + 1 + 2) / 3, 5 / 3, 2.0])


def test_item_popularity_counts_distinct_users() -> None:
    pairs = torch.tensor([[0, 1, 0, 2], [0, 0, 1, 3]])
    assert item_popularity(pairs, 6).tolist() == [2, 1, 0, 1, 0, 0]


def test_serendipity() -> None:
    # user 0: item 1 relevant but expected, item 2 relevant and unexpected -> 1/3
    # user 1: item 5 relevant and unexpected -> 1/3; user 2: item 1 sits in an empty slot -> 0
    got = serendipity(ITEMS, VALID, RELEVANT, PRIMITIVE)
    assert got.tolist() == pytest.approx([1 / 3, 1 / 3, 0.0])


def test_beyond_accuracy_cutoff() -> None:
    out = beyond_accuracy(
        ITEMS,
        VALID,
        RELEVANT,
        PRIMITIVE,
        k=2,
        num_items=6,
        num_users=3,
        num_categories=3,
        item_category=CAT,
        item_pop=POP,
    )
    assert set(out) == {"category_coverage@2", "ild@2", "novelty@2", "serendipity@2"}
    assert out["category_coverage@2"].tolist() == pytest.approx([1 / 2, 2 / 2, 1 / 2])
    assert out["serendipity@2"].tolist() == pytest.approx([0.0, 0.0, 0.0])


def test_popular_lists_skip_masked_items() -> None:
    from gnnrec.explore.evaluate import _popular_lists

    order = torch.tensor([4, 2, 0, 1, 3])  # most popular first
    mask = torch.tensor([[False] * 5, [False, False, True, False, True]])
    assert _popular_lists(order, mask, 3, 2).tolist() == [
        [4, 2, 0],
        [0, 1, 3],
    ]  # items 2, 4 masked
    assert _popular_lists(order, None, 2, 2).tolist() == [[4, 2], [4, 2]]
