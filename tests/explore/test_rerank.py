"""Re-ranker invariants and hand-computed lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.errors import ConfigError
from gnnrec.eval.evaluator import masked_topk
from gnnrec.explore.rerank import (
    BanditState,
    apply_rerank,
    category_diversity,
    epsilon_greedy,
    linucb,
    mmr,
    thompson,
)

B, I, D, K = 7, 30, 4, 5


def _inputs(
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, BanditState]:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, I, generator=g, dtype=torch.float64)
    exclude = torch.rand(B, I, generator=g) < 0.3
    emb = torch.randn(I, D, generator=g, dtype=torch.float64)
    cat = torch.randint(0, 4, (I,), generator=g)
    cat[::7] = -1
    pairs = torch.stack(
        [
            torch.randint(0, B, (20,), generator=g),
            torch.randint(0, I, (20,), generator=g),
        ]
    )
    state = BanditState.from_history(emb, pairs, B, ridge=1.0)
    return scores, exclude, emb, cat, state


def _run(strategy: str, knob: float, seed: int = 0, gen_seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    scores, exclude, emb, cat, state = _inputs(seed)
    return apply_rerank(
        strategy,
        knob,
        scores,
        exclude,
        K,
        users=torch.arange(B),
        item_emb=emb,
        item_category=cat,
        state=state,
        generator=torch.Generator().manual_seed(gen_seed),
    )


@pytest.mark.parametrize(
    "strategy,knob",
    [
        ("mmr", 1.0),
        ("epsilon", 0.0),
        ("linucb", 0.0),
        ("thompson", 0.0),
        ("category", float(K)),
    ],
)
def test_neutral_knob_is_plain_topk(strategy: str, knob: float) -> None:
    scores, exclude, *_ = _inputs()
    items, valid = _run(strategy, knob)
    ref_items, ref_valid = masked_topk(scores, exclude, K)
    assert torch.equal(items, ref_items)
    assert torch.equal(valid, ref_valid)


ACTIVE = [
    ("mmr", 0.3),
    ("category", 1.0),
    ("epsilon", 0.5),
    ("linucb", 2.0),
    ("thompson", 1.0),
    ("topk", 0.0),
]


@pytest.mark.parametrize("strategy,knob", ACTIVE)
def test_lists_are_distinct_unmasked_items(strategy: str, knob: float) -> None:
    _, exclude, *_ = _inputs()
    items, valid = _run(strategy, knob)
    assert items.shape == (B, K)
    assert bool(valid.all())  # every row has more than K unmasked items
    for r in range(B):
        assert len(set(items[r].tolist())) == K
    assert not bool(exclude.gather(1, items).any())


@pytest.mark.parametrize("strategy,knob", ACTIVE)
def test_deterministic_given_seed(strategy: str, knob: float) -> None:
    a, _ = _run(strategy, knob)
    b, _ = _run(strategy, knob)
    assert torch.equal(a, b)


def test_random_strategies_depend_on_the_seed() -> None:
    a, _ = _run("epsilon", 0.5, gen_seed=1)
    b, _ = _run("epsilon", 0.5, gen_seed=2)
    assert not torch.equal(a, b)


def test_short_rows_mark_empty_slots_and_stay_distinct() -> None:
    scores = torch.arange(6, dtype=torch.float64).repeat(2, 1)
    exclude = torch.tensor([[True, True, True, True, False, False]] * 2)
    cat = torch.tensor([0, 0, 1, 1, 2, 2])
    emb = torch.eye(6, dtype=torch.float64)
    for strategy, knob in ACTIVE[:3]:
        items, valid = apply_rerank(
            strategy,
            knob,
            scores,
            exclude,
            4,
            item_emb=emb,
            item_category=cat,
            generator=torch.Generator().manual_seed(0),
        )
        assert valid.sum(1).tolist() == [2, 2]
        assert set(items[0][valid[0]].tolist()) == {4, 5}
        assert len(set(items[0].tolist())) == 4


def test_mmr_hand_example() -> None:
    # rel = (0.9, 0.8, 0.7, 0.1) min-max -> (1, .875, .75, 0); lambda .5, same-category sim
    # step 1: item 0; step 2: item 1: .4375 - .5 = -.0625, item 2: .375, item 3: 0 -> item 2
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1]], dtype=torch.float64)
    cat = torch.tensor([0, 0, 1, 1])
    items, _ = mmr(scores, None, 2, 0.5, item_category=cat)
    assert items.tolist() == [[0, 2]]
    items, _ = mmr(scores, None, 2, 1.0, item_category=cat)
    assert items.tolist() == [[0, 1]]


def test_category_cap_hand_example() -> None:
    scores = torch.tensor([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    cat = torch.tensor([0, 0, 0, 1, 1, 2])
    assert category_diversity(scores, None, 3, cat, 1)[0].tolist() == [[0, 3, 5]]
    assert category_diversity(scores, None, 4, cat, 2)[0].tolist() == [[0, 1, 3, 4]]
    # pool exhausted: back-filled in score order after the allowed items
    assert category_diversity(scores, None, 5, cat, 1)[0].tolist() == [[0, 3, 5, 1, 2]]


def test_category_cap_respected() -> None:
    scores, exclude, _, cat, _ = _inputs()
    items, _ = category_diversity(scores, exclude, K, cat, 2, candidates=I)
    c = cat[items]
    for r in range(B):
        known = c[r][c[r] >= 0]
        assert int(torch.bincount(known).max()) <= 2


def test_epsilon_one_explores_every_slot() -> None:
    scores, exclude, *_ = _inputs()
    greedy, _ = masked_topk(scores, exclude, K)
    items, _ = epsilon_greedy(scores, exclude, K, 1.0, torch.Generator().manual_seed(0))
    assert not bool((items[:, :, None] == greedy[:, None, :]).any())


def test_bandit_width_matches_closed_form() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    pairs = torch.tensor([[0, 0, 1], [0, 0, 2]])  # user 0 saw item 0 twice, user 1 saw item 2
    st = BanditState.from_history(x, pairs, 2, ridge=1.0)
    a0 = np.array([[3.0, 0.0], [0.0, 1.0]])
    a1 = np.eye(2) + np.array([[1.0, 1.0], [1.0, 1.0]])
    want = np.stack(
        [np.sqrt(np.einsum("id,de,ie->i", x.numpy(), np.linalg.inv(a), x.numpy())) for a in (a0, a1)]
    )
    np.testing.assert_allclose(st.width(torch.tensor([0, 1])).numpy(), want, rtol=1e-12)
    st.observe(torch.tensor([1]), torch.tensor([1]))
    a1 = a1 + np.array([[0.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(st.A_inv[1].numpy(), np.linalg.inv(a1), rtol=1e-12)


def test_linucb_prefers_unexplored_directions() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    st = BanditState.from_history(x, torch.tensor([[0] * 5, [0] * 5]), 1)
    scores = torch.tensor([[1.0, 0.9]], dtype=torch.float64)
    assert linucb(scores, None, 1, 0.0, st, torch.tensor([0]))[0].tolist() == [[0]]
    assert linucb(scores, None, 1, 5.0, st, torch.tensor([0]))[0].tolist() == [[1]]
    gen = torch.Generator().manual_seed(0)
    assert thompson(scores, None, 1, 0.0, st, torch.tensor([0]), gen)[0].tolist() == [[0]]


def test_bad_knobs_are_config_errors() -> None:
    scores = torch.zeros(1, 3)
    with pytest.raises(ConfigError):
        mmr(scores, None, 2, 1.5, item_category=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError):
        epsilon_greedy(scores, None, 2, -0.1, torch.Generator())
    with pytest.raises(ConfigError):
        apply_rerank("nope", 0.0, scores, None, 2)
    with pytest.raises(ConfigError, match="item embeddings"):
        apply_rerank("linucb", 1.0, scores, None, 2)


def _property_case(seed: int, b: int, i: int, k: int, p_mask: float):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, i, generator=g, dtype=torch.float64)
    exclude = torch.rand(b, i, generator=g) < p_mask
    emb = torch.randn(i, 3, generator=g, dtype=torch.float64)
    cat = torch.randint(-1, 3, (i,), generator=g)
    state = BanditState.from_history(emb, torch.zeros(2, 0, dtype=torch.long), b)
    return scores, exclude, emb, cat, state


def test_property_lists_are_permutations_of_unmasked_items() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None)
    @given(
        seed=st.integers(0, 10_000),
        b=st.integers(1, 4),
        i=st.integers(1, 12),
        k=st.integers(1, 8),
        p_mask=st.sampled_from([0.0, 0.3, 0.9]),
        which=st.sampled_from(ACTIVE),
    )
    def check(seed: int, b: int, i: int, k: int, p_mask: float, which: tuple[str, float]) -> None:
        scores, exclude, emb, cat, state = _property_case(seed, b, i, k, p_mask)
        strategy, knob = which
        items, valid = apply_rerank(
            strategy,
            knob,
            scores,
            exclude,
            k,
            users=torch.arange(b),
            item_emb=emb,
            item_category=cat,
            state=state,
            generator=torch.Generator().manual_seed(seed),
        )
        k_eff = min(k, i)
        assert items.shape == (b, k_eff)
        n_free = (~exclude).sum(1)
        for r in range(b):
            row = items[r].tolist()
            assert len(set(row)) == k_eff  # distinct
            assert int(valid[r].sum()) == min(k_eff, int(n_free[r]))  # every unmasked slot filled
            assert not bool(exclude[r, items[r][valid[r]]].any())  # a valid slot is never masked
            # the valid slots come first: empty slots only at the end
            assert valid[r].tolist() == sorted(valid[r].tolist(), reverse=True)

    check()
