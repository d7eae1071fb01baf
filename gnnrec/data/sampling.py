"""Negative sampling and epoch ordering of training pairs.

An epoch visits the training pairs either as a random permutation (:func:`pairs_for_epoch`,
every pair once: ``train.pair_sampling: pairs``) or as the LightGCN/NGCF reference samplers
do (:class:`UserUniformPairs`, ``train.pair_sampling: users``): as many draws as there are
pairs, each a uniform user (among users with a positive) and then a uniform positive of
that user, so every user weighs the same in the loss however many positives they have.

:class:`UniformNegativeSampler` draws items uniformly among those that are *not* a training
positive of the user. Membership is tested on a sorted key ``user * num_items + item`` with
``searchsorted`` (no per-user Python sets), so one call handles a whole batch; collisions
are re-drawn for a few rounds and whatever is left after that (users with nearly every item
as a positive) is drawn exactly by rank, so sampling always terminates.

:class:`BehaviorNegativeSampler` (``train.behavior_negatives``) replaces a share of those
uniform negatives with *behaviour* negatives: items the user interacted with in training
through another behaviour (e.g. viewed) but that are not a training positive — the
"viewed but not bought" level of multi-channel BPR (Loni et al., RecSys 2016). Uniform
negatives almost never hit them (a Tmall user views ~55 of ~12k items), so without them the
loss says little about which of the user's viewed items get bought.
"""

from __future__ import annotations

import torch

from gnnrec.errors import GnnrecError

__all__ = ["BehaviorNegativeSampler", "UniformNegativeSampler", "UserUniformPairs", "pairs_for_epoch"]


class UniformNegativeSampler:
    """Uniform negatives excluding each user's training positives.

    Args:
        num_items: number of items; negatives are drawn from ``0..num_items-1``.
        pos_index: training positive pairs ``[2, P]`` (row 0 user, row 1 item); duplicates
            are fine. Only training positives may be passed here (no leakage).
        generator: torch generator on the device of ``pos_index``; ``None`` uses torch's
            global generator (not reproducible across runs — pass one).
        rejection_rounds: rounds of re-drawing collisions before the exact fallback.
        candidates: item ids negatives are drawn from (uniformly, minus the user's positives);
            ``None`` = all items. Cold-start splits pass the items with a training event, so
            that a held-out new item is never a training negative. Internally the sampler
            then works on candidate ranks (``is_positive`` takes ranks) and maps back.

    Raises:
        GnnrecError: a user has every item as a training positive.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> s = UniformNegativeSampler(5, torch.tensor([[0, 0], [1, 2]]), g)
        >>> s.sample(torch.tensor([0, 1]), 3).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        num_items: int,
        pos_index: torch.Tensor,
        generator: torch.Generator | None = None,
        rejection_rounds: int = 8,
        candidates: torch.Tensor | None = None,
    ) -> None:
        self.candidates: torch.Tensor | None = None
        if candidates is not None:
            cand = torch.unique(candidates.long().to(pos_index.device), sorted=True)
            if cand.numel() == 0:
                raise GnnrecError("negative sampling needs at least one candidate item, got none")
            item = pos_index[1].long()
            rank = torch.searchsorted(cand, item).clamp(max=cand.numel() - 1)
            keep = cand[rank] == item  # positives outside the candidates can never be drawn
            pos_index = torch.stack([pos_index[0].long()[keep], rank[keep]])
            self.candidates = cand
            num_items = int(cand.numel())
        if num_items < 1:
            raise GnnrecError(f"negative sampling needs at least one item, got num_items={num_items}")
        if pos_index.dim() != 2 or pos_index.shape[0] != 2:
            raise ValueError(f"pos_index must have shape [2, P], got {list(pos_index.shape)}")
        self.num_items = int(num_items)
        self.generator = generator
        self.rejection_rounds = int(rejection_rounds)
        self.device = pos_index.device
        if pos_index.numel() and bool(((pos_index[1] < 0) | (pos_index[1] >= num_items)).any()):
            raise ValueError(f"pos_index has item ids outside 0..{num_items - 1}")
        keys = pos_index[0].long() * self.num_items + pos_index[1].long()
        # sorted unique keys: one user's positives form a contiguous, sorted run
        self.keys = torch.unique(keys, sorted=True)
        # checked once here (every user with a positive is sampled in training), so that
        # sample() needs no extra host sync per batch
        if self.keys.numel():
            users, n_pos = torch.unique_consecutive(self.keys // self.num_items, return_counts=True)
            full = n_pos >= self.num_items
            if bool(full.any()):
                raise GnnrecError(
                    f"user {int(users[full][0])} has every one of the {self.num_items} items as a "
                    "training positive, so no negative can be sampled (use fewer positives or a "
                    "larger catalogue)"
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, num_positives={self.keys.numel()})"

    def _count_le(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Number of positives of ``user`` with item id ``<= item`` (elementwise)."""
        base = torch.searchsorted(self.keys, user * self.num_items)
        return torch.searchsorted(self.keys, user * self.num_items + item, right=True) - base

    def is_positive(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """Boolean mask (same shape as ``item``): is ``item`` a training positive of ``user``."""
        if self.keys.numel() == 0:
            return torch.zeros(item.shape, dtype=torch.bool, device=item.device)
        q = user * self.num_items + item
        pos = torch.searchsorted(self.keys, q).clamp_(max=self.keys.numel() - 1)
        return self.keys[pos] == q

    def sample(self, user: torch.Tensor, n: int) -> torch.Tensor:
        """Draw ``n`` negatives per user (among ``candidates`` when set).

        Args:
            user: user ids ``[B]`` (on the sampler's device).
            n: negatives per user.

        Returns:
            Item ids ``[B, n]`` (int64).
        """
        neg = self._sample(user, n)
        return neg if self.candidates is None else self.candidates[neg]

    def sample_shared(self, n: int) -> torch.Tensor:
        """One pool of ``n`` negatives for a whole batch: ``[1, n]`` item ids drawn uniformly
        (with replacement) among all items, or among ``candidates`` when set.

        A shared pool cannot exclude every row's positives; losses that need it mask the
        row's own positive (see ``LightGCN.loss``); other positives of a user land in the pool
        with probability ``n_pos / num_items`` per draw (about 0.07 % on Gowalla).
        """
        neg = torch.randint(self.num_items, (1, n), generator=self.generator, device=self.device)
        return neg if self.candidates is None else self.candidates[neg]

    def _sample(self, user: torch.Tensor, n: int) -> torch.Tensor:
        """Draw ``n`` negatives per user (candidate ranks when ``candidates`` is set).

        Args:
            user: user ids ``[B]`` (on the sampler's device).
            n: negatives per user.

        Returns:
            Item ids ``[B, n]`` (int64); each is uniform over the items that are not a
            training positive of that row's user, independently (with replacement).
        """
        user = user.long().reshape(-1)
        b = user.numel()
        if b == 0 or n == 0:
            return torch.empty((b, n), dtype=torch.long, device=user.device)
        users = user.unsqueeze(1).expand(b, n)
        neg = torch.randint(self.num_items, (b, n), generator=self.generator, device=user.device)
        if self.keys.numel() == 0:
            return neg
        bad = self.is_positive(users, neg)
        rounds = 0
        while bool(bad.any()) and rounds < self.rejection_rounds:
            idx = bad.nonzero(as_tuple=True)
            redraw = torch.randint(
                self.num_items, (idx[0].numel(),), generator=self.generator, device=user.device
            )
            neg[idx] = redraw
            bad[idx] = self.is_positive(users[idx], redraw)
            rounds += 1
        if bool(bad.any()):
            idx = bad.nonzero(as_tuple=True)
            neg[idx] = self._exact(users[idx])
        return neg

    def _exact(self, user: torch.Tensor) -> torch.Tensor:
        """Uniform negatives by rank: draw ``r`` in ``[0, num_items - n_pos)`` and return the
        ``r``-th non-positive item of the user (0-based).

        The answer ``a`` is the fixed point of ``j -> r + #{positives <= j}``; iterating from
        ``j = r`` increases ``j`` monotonically and never passes ``a``, so it converges (in at
        most ``n_pos`` steps, usually a few).
        """
        n_pos = self._count_le(user, torch.full_like(user, self.num_items - 1))
        u01 = torch.rand(user.shape, generator=self.generator, device=user.device, dtype=torch.float64)
        r = (u01 * (self.num_items - n_pos).double()).long()
        r = torch.minimum(r, self.num_items - n_pos - 1)
        j = r
        while True:
            nxt = r + self._count_le(user, j)
            if bool((nxt == j).all()):
                return j
            j = nxt


def pairs_for_epoch(pos_index: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random order of the training pairs for one epoch.

    Args:
        pos_index: training positive pairs ``[2, P]``.
        generator: torch generator (on the device of ``pos_index``) for reproducibility.

    Returns:
        A permutation of ``0..P-1`` (int64, on ``pos_index``'s device); batches are
        consecutive slices of it, e.g. ``pos_index[:, perm[s:s + batch_size]]``.
    """
    return torch.randperm(pos_index.shape[1], generator=generator, device=pos_index.device)


class UserUniformPairs:
    """Draws training pairs user-first: a uniform user, then a uniform positive of theirs.

    The sampler of LightGCN's and NGCF's reference code (``UniformSample_original``): an
    epoch is ``P`` draws with replacement (``P`` = number of pairs), so a user's expected
    share of the epoch is ``1 / #users`` instead of ``deg(u) / P`` as in a permutation of
    the pairs. Per-user metrics (Recall@K averaged over users) reward that weighting.

    Args:
        pos_index: training positive pairs ``[2, P]`` (row 0 user, row 1 item).

    Example:
        >>> pairs = torch.tensor([[0, 0, 0, 1], [5, 6, 7, 8]])
        >>> idx = UserUniformPairs(pairs).draw(1000, torch.Generator().manual_seed(0))
        >>> round(float((pairs[0, idx] == 1).float().mean()), 1)  # user 1: half the draws
        0.5
    """

    def __init__(self, pos_index: torch.Tensor) -> None:
        users = pos_index[0]
        self.order = torch.sort(users, stable=True).indices  # pair columns grouped by user
        deg = torch.bincount(users) if users.numel() else torch.zeros(0, dtype=torch.long, device=users.device)
        self.active = torch.nonzero(deg).squeeze(1)  # users with at least one positive
        self.deg = deg[self.active]
        self.start = (torch.cumsum(deg, 0) - deg)[self.active]

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` pair column indices (int64, on ``pos_index``'s device), user-first."""
        if self.active.numel() == 0:
            return torch.zeros(0, dtype=torch.long, device=self.order.device)
        dev = self.order.device
        u = torch.randint(self.active.numel(), (n,), generator=generator, device=dev)
        r = (torch.rand(n, generator=generator, device=dev, dtype=torch.float64) * self.deg[u]).long()
        return self.order[self.start[u] + torch.minimum(r, self.deg[u] - 1)]


class BehaviorNegativeSampler:
    """Uniform negatives, a share of them replaced by the user's behaviour negatives.

    A *behaviour negative* of user ``u`` is an item that ``u`` has a training event with in
    one of the given behaviours (``aux_index``) and that is not a training positive of ``u``
    (the ``base`` sampler's positives): for buy as the target and views as the behaviour,
    an item viewed but not bought. Each drawn negative is, independently with probability
    ``share``, replaced by one of the user's behaviour negatives drawn uniformly; users with
    none keep their uniform negative. Only training events may be passed (no leakage).

    Args:
        base: the uniform sampler (its positives and generator are used).
        aux_index: training pairs ``[2, E]`` (user, item) of the auxiliary behaviours;
            duplicates and pairs that are positives are dropped.
        num_users: number of users (rows of the per-user lists).
        share: probability that a negative is a behaviour negative (``0..1``).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> base = UniformNegativeSampler(100, torch.tensor([[0], [1]]), g)
        >>> s = BehaviorNegativeSampler(base, torch.tensor([[0, 0], [1, 7]]), 1, share=1.0)
        >>> s.sample(torch.tensor([0, 0]), 2).tolist()  # item 1 is a positive, 7 is viewed only
        [[7, 7], [7, 7]]
    """

    def __init__(self, base: UniformNegativeSampler, aux_index: torch.Tensor, num_users: int, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {share}")
        if base.candidates is not None:
            raise GnnrecError("behaviour negatives cannot be combined with restricted negative candidates (cold-start splits)")
        self.base = base
        self.share = float(share)
        dev = base.device
        aux = aux_index.to(dev).long()
        keys = torch.unique(aux[0] * base.num_items + aux[1], sorted=True)
        user, item = keys // base.num_items, keys % base.num_items
        keep = ~base.is_positive(user, item)
        user, self.items = user[keep], item[keep]  # grouped by user (sorted keys)
        self.deg = torch.bincount(user, minlength=num_users)
        self.start = torch.cumsum(self.deg, 0) - self.deg

    def __repr__(self) -> str:
        return f"{type(self).__name__}(share={self.share}, behavior_negatives={self.items.numel()})"

    def sample(self, user: torch.Tensor, n: int) -> torch.Tensor:
        """``[B, n]`` negatives: uniform non-positives, each replaced with probability
        ``share`` by a uniform behaviour negative of the row's user (when it has one)."""
        neg = self.base.sample(user, n)
        if self.share == 0.0 or neg.numel() == 0:
            return neg
        gen = self.base.generator
        users = user.long().reshape(-1, 1).expand_as(neg)
        deg = self.deg[users]
        swap = (torch.rand(neg.shape, generator=gen, device=neg.device) < self.share) & (deg > 0)
        r = (torch.rand(neg.shape, generator=gen, device=neg.device, dtype=torch.float64) * deg).long()
        r = torch.minimum(r, (deg - 1).clamp(min=0))
        picked = self.items[(self.start[users] + r)[swap]]
        return neg.masked_scatter(swap, picked)

    def sample_shared(self, n: int) -> torch.Tensor:
        raise GnnrecError("behaviour negatives are per user; use train.neg_sampling 'per_pair'")
