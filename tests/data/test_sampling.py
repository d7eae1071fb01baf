"""Tests of gnnrec.data.sampling (uniform negatives, epoch permutation)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.data.sampling import BehaviorNegativeSampler, UniformNegativeSampler, UserUniformPairs, pairs_for_epoch
from gnnrec.errors import GnnrecError

PROPS = settings(max_examples=50, deadline=None)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def positives_of(pos: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(pos[0].tolist(), pos[1].tolist()))


def test_never_positive_shape_and_dtype() -> None:
    # user 0: items 1, 2 (2 listed twice); user 1: item 0; user 2: none
    pos = torch.tensor([[0, 0, 0, 1], [1, 2, 2, 0]])
    s = UniformNegativeSampler(4, pos, gen())
    users = torch.tensor([0, 1, 2, 0, 0])
    neg = s.sample(users, 50)
    assert neg.shape == (5, 50) and neg.dtype == torch.long
    assert ((neg >= 0) & (neg < 4)).all()
    assert not (neg[[0, 3, 4]].unsqueeze(-1) == torch.tensor([1, 2])).any()
    assert not (neg[1] == 0).any()
    # every allowed item is reachable (support check, not a statistical test)
    assert set(neg[[0, 3, 4]].unique().tolist()) == {0, 3}
    assert set(neg[2].unique().tolist()) == {0, 1, 2, 3}


def test_is_positive() -> None:
    s = UniformNegativeSampler(5, torch.tensor([[0, 2], [4, 1]]), gen())
    got = s.is_positive(torch.tensor([0, 0, 2, 2, 1]), torch.tensor([4, 1, 1, 4, 4]))
    assert got.tolist() == [True, False, True, False, False]


def test_deterministic_for_a_seed() -> None:
    pos = torch.tensor([[0, 1, 1], [0, 2, 3]])
    users = torch.tensor([0, 1, 1, 0])
    a = UniformNegativeSampler(10, pos, gen(3)).sample(users, 7)
    b = UniformNegativeSampler(10, pos, gen(3)).sample(users, 7)
    c = UniformNegativeSampler(10, pos, gen(4)).sample(users, 7)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_dense_user_uses_exact_fallback() -> None:
    # user 0 has all but item 5 of 200 items as positives: rejection alone would rarely succeed
    items = torch.tensor([i for i in range(200) if i != 5])
    pos = torch.stack([torch.zeros_like(items), items])
    s = UniformNegativeSampler(200, pos, gen(), rejection_rounds=2)
    neg = s.sample(torch.tensor([0, 0, 1]), 20)
    assert (neg[:2] == 5).all()
    assert neg[2].unique().numel() > 1  # user 1 has no positives


def test_exact_fallback_is_uniform_over_negatives() -> None:
    # zero rejection rounds: everything that collides goes through the rank-based path
    pos = torch.tensor([[0] * 6, [0, 1, 3, 4, 6, 9]])
    s = UniformNegativeSampler(10, pos, gen(1), rejection_rounds=0)
    neg = s.sample(torch.zeros(4000, dtype=torch.long), 1).reshape(-1)
    counts = torch.bincount(neg, minlength=10)
    assert counts[[0, 1, 3, 4, 6, 9]].sum() == 0
    assert (counts[[2, 5, 7, 8]] > 800).all()  # expected 1000 each


def test_user_with_every_item_positive_is_an_error() -> None:
    pos = torch.tensor([[1, 1, 1, 0, 2, 2], [0, 1, 2, 0, 0, 2]])
    with pytest.raises(GnnrecError, match="user 1 has every one of the 3 items"):
        UniformNegativeSampler(3, pos, gen())
    assert UniformNegativeSampler(3, pos[:, 1:], gen()).sample(torch.tensor([1, 0, 2]), 2).shape == (3, 2)


def test_empty_inputs() -> None:
    s = UniformNegativeSampler(3, torch.zeros((2, 0), dtype=torch.long), gen())
    assert s.sample(torch.tensor([0, 1]), 4).shape == (2, 4)
    assert s.sample(torch.zeros(0, dtype=torch.long), 4).shape == (0, 4)


def test_pairs_for_epoch() -> None:
    pos = torch.tensor([[0, 0, 1, 2, 2], [1, 2, 0, 0, 3]])
    p = pairs_for_epoch(pos, gen(5))
    assert sorted(p.tolist()) == [0, 1, 2, 3, 4]
    assert torch.equal(p, pairs_for_epoch(pos, gen(5)))
    orders = {tuple(pairs_for_epoch(pos, gen(s)).tolist()) for s in range(10)}
    assert len(orders) > 1


def test_user_uniform_pairs_weights_users_equally() -> None:
    # user 0 has 4 positives, user 2 one, user 1 none (and must never be drawn)
    pos = torch.tensor([[2, 0, 0, 0, 0], [7, 1, 2, 3, 4]])
    sampler = UserUniformPairs(pos)
    idx = sampler.draw(40_000, gen(3))
    assert idx.shape == (40_000,) and torch.equal(idx, sampler.draw(40_000, gen(3)))
    users = pos[0, idx]
    assert set(users.tolist()) == {0, 2}
    # users: 1/2 each (a permutation of the pairs would give user 0 four fifths)
    assert abs(float((users == 2).float().mean()) - 0.5) < 0.01
    # within user 0, each of its 4 positives 1/4
    items = pos[1, idx[users == 0]]
    freq = torch.bincount(items, minlength=5)[1:].double() / items.numel()
    assert torch.allclose(freq, torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)
    assert (pos[1, idx[users == 2]] == 7).all()
    assert UserUniformPairs(torch.zeros((2, 0), dtype=torch.long)).draw(5).numel() == 0


@PROPS
@given(
    num_items=st.integers(2, 12),
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 11)), max_size=40),
    seed=st.integers(0, 2**16),
    n=st.integers(1, 6),
)
def test_negatives_never_positive_property(
    num_items: int, pairs: list[tuple[int, int]], seed: int, n: int
) -> None:
    pairs = [(u, i % num_items) for u, i in pairs]
    # keep at least one negative for every user
    pairs = [(u, i) for u, i in pairs if i != num_items - 1]
    pos = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T
    users = torch.arange(6).repeat(3)
    s = UniformNegativeSampler(num_items, pos, gen(seed), rejection_rounds=seed % 3)
    neg = s.sample(users, n)
    assert neg.shape == (users.numel(), n)
    known = positives_of(pos)
    assert not any((u, i) in known for u, row in zip(users.tolist(), neg.tolist()) for i in row)
    assert ((neg >= 0) & (neg < num_items)).all()
    assert torch.equal(
        neg, UniformNegativeSampler(num_items, pos, gen(seed), rejection_rounds=seed % 3).sample(users, n)
    )


# ------------------------------------------------------------------ behaviour negatives
def behavior_sampler(share: float, seed: int = 0) -> BehaviorNegativeSampler:
    # positives: user 0 bought 1, 2; user 1 bought 0. Views: user 0 viewed 1 (a positive),
    # 5 and 7 (twice); user 1 viewed 0 (a positive) only; user 2 viewed 3, no positive
    pos = torch.tensor([[0, 0, 1], [1, 2, 0]])
    views = torch.tensor([[0, 0, 0, 0, 1, 2], [1, 5, 7, 7, 0, 3]])
    return BehaviorNegativeSampler(UniformNegativeSampler(50, pos, gen(seed)), views, 4, share)


def test_behavior_negatives_share_one_draws_only_viewed_non_positives() -> None:
    s = behavior_sampler(1.0)
    assert s.items.tolist() == [5, 7, 3] and s.deg.tolist() == [2, 0, 1, 0]
    neg = s.sample(torch.tensor([0, 2, 1, 3]), 400)
    assert set(neg[0].tolist()) == {5, 7}  # both, each about half of the draws
    assert 150 < int((neg[0] == 5).sum()) < 250
    assert set(neg[1].tolist()) == {3}
    # users without a behaviour negative keep uniform non-positives
    assert 0 not in neg[2].tolist() and len(set(neg[2].tolist())) > 20
    assert len(set(neg[3].tolist())) > 20


def test_behavior_negatives_share_zero_is_the_uniform_sampler() -> None:
    users = torch.tensor([0, 1, 2, 0])
    plain = UniformNegativeSampler(50, torch.tensor([[0, 0, 1], [1, 2, 0]]), gen(3)).sample(users, 30)
    assert torch.equal(behavior_sampler(0.0, seed=3).sample(users, 30), plain)


def test_behavior_negative_share_and_determinism() -> None:
    a = behavior_sampler(0.3, seed=5).sample(torch.zeros(20000, dtype=torch.long), 1)
    b = behavior_sampler(0.3, seed=5).sample(torch.zeros(20000, dtype=torch.long), 1)
    assert torch.equal(a, b)
    hard = ((a == 5) | (a == 7)).float().mean().item()
    # 0.3 swapped, plus uniform draws that land on 5 or 7 (2 of 48 non-positives)
    assert hard == pytest.approx(0.3 + 0.7 * 2 / 48, abs=0.015)
    assert not ((a == 1) | (a == 2)).any()


def test_behavior_negatives_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="share must be in"):
        behavior_sampler(1.5)
    base = UniformNegativeSampler(10, torch.tensor([[0], [1]]), gen(), candidates=torch.arange(5))
    with pytest.raises(GnnrecError, match="cold-start"):
        BehaviorNegativeSampler(base, torch.tensor([[0], [2]]), 1, 0.5)
    with pytest.raises(GnnrecError, match="per_pair"):
        behavior_sampler(0.5).sample_shared(3)
