"""Streaming updates: EventBatch validation, tgnn_migration.update, FoldInStreamer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from gnnrec.config import (
    GraphConfig,
    ModelSpec,
    SplitConfig,
    SyntheticConfig,
    TrainConfig,
)
from gnnrec.data.splits import make_split
from gnnrec.data.synthetic import simulate
from gnnrec.errors import DataError, GnnrecError
from gnnrec.graph.build import build_train_data
from gnnrec.graph.data import TrainData
from gnnrec.models import build_model
from gnnrec.models.encoders.tgnn_migration import TGNNMigration
from gnnrec.models.streaming import (
    EventBatch,
    FoldInStreamer,
    StreamingRecommender,
    is_streaming,
)
from gnnrec.train.trainer import Trainer
from tests.helpers import make_table

TOP_K = 10


@pytest.fixture(scope="module")
def tiny() -> TrainData:
    """A tiny simulated log (ids are contiguous), leave-last-out on buys."""
    cfg = SyntheticConfig(
        num_users=40, num_items=60, num_categories=6, events_per_user=20
    )
    log, _ = simulate(cfg, seed=3)
    cats = np.full(cfg.num_items, -1, dtype=np.int64)
    cats[log["item"].to_numpy()] = log["category"].to_numpy()
    table = make_table(
        log["user"].to_numpy(),
        log["item"].to_numpy(),
        log["behavior"].to_list(),
        log["timestamp"].to_numpy(),
        categories_per_item=cats,
        num_users=cfg.num_users,
        num_items=cfg.num_items,
        num_categories=cfg.num_categories,
    )
    split = make_split(
        table, SplitConfig(mode="leave_last_out", target_behavior="buy"), seed=0
    )
    return build_train_data(table, split, GraphConfig(), "all")


def _trained(data: TrainData, seed: int = 0) -> TGNNMigration:
    torch.manual_seed(seed)
    model = build_model(
        ModelSpec(name="tgnn_migration", params={"dim": 16, "recent_k": 10}), data.meta
    )
    assert isinstance(model, TGNNMigration)
    cfg = TrainConfig(epochs=5, batch_size=256, lr=1e-2, positives="all", patience=0)
    Trainer(
        cfg, torch.device("cpu"), torch.Generator().manual_seed(seed), progress=False
    ).fit(model, data)
    model.eval()
    return model


@pytest.fixture(scope="module")
def trained(tiny: TrainData) -> TGNNMigration:
    return _trained(tiny)


def _scores(model: TGNNMigration, data: TrainData) -> torch.Tensor:
    with torch.no_grad():
        return model.score_all(model.encode(data), torch.arange(data.meta.num_users))


def _new_category_events(
    data: TrainData, user: int, n: int = 5
) -> tuple[int, EventBatch]:
    """``n`` view events of ``user`` on the most popular training items of the largest
    category the user never touched in training, one minute apart after their last event."""
    cat = data.item_category
    edges = torch.cat([data.edge_index[b] for b in data.meta.behaviors], 1)
    ts = torch.cat([data.edge_ts[b] for b in data.meta.behaviors])
    touched = set(cat[edges[1][edges[0] == user]].tolist())
    pop = torch.bincount(edges[1], minlength=data.meta.num_items)
    sizes = torch.bincount(cat[cat >= 0], minlength=data.meta.num_categories)
    order = torch.argsort(sizes, descending=True, stable=True).tolist()
    target = next(c for c in order if c not in touched and int(sizes[c]) >= n)
    items = torch.nonzero(cat == target).reshape(-1)
    items = items[torch.argsort(pop[items], descending=True, stable=True)][:n]
    t0 = int(ts[edges[0] == user].max())
    view = data.meta.behaviors.index("view")
    return target, EventBatch.from_arrays(
        [user] * n, items, [view] * n, t0 + 60 * torch.arange(1, n + 1)
    )


def _share(scores: torch.Tensor, cat: torch.Tensor, target: int) -> float:
    top = scores.topk(TOP_K).indices
    return float((cat[top] == target).float().mean())


def test_model_is_streaming(trained: TGNNMigration) -> None:
    assert is_streaming(trained) and isinstance(trained, StreamingRecommender)
    assert not is_streaming(build_model(ModelSpec(name="pop"), trained.meta))


def test_new_category_moves_top_k_and_others_are_unchanged(
    trained: TGNNMigration, tiny: TrainData
) -> None:
    model = copy.deepcopy(trained)  # its own copy: update changes the model's state
    user = 7
    target, events = _new_category_events(tiny, user)
    before = _scores(model, tiny)
    share_before = _share(before[user], tiny.item_category, target)
    params = {k: v.clone() for k, v in model.state_dict().items()}

    affected = model.update(events)
    after = _scores(model, tiny)

    assert affected == {user}
    share_after = _share(after[user], tiny.item_category, target)
    assert share_after > share_before, (share_before, share_after)
    print(
        f"share of the new category in the top-{TOP_K}: {share_before} -> {share_after}"
    )
    others = torch.arange(tiny.meta.num_users) != user
    assert torch.equal(after[others], before[others])  # bit-identical
    for k, v in model.state_dict().items():  # no gradient step, no parameter change
        assert torch.equal(v, params[k]), k
    # the new events are the user's most recent items, the clock advanced
    g = model._graph
    assert g is not None
    assert g["rec_item"][user, :5].tolist() == events.item.flip(0).tolist()
    assert int(g["clock"][user]) == int(events.ts.max())


def test_update_is_deterministic_and_train_drops_the_snapshot(tiny: TrainData) -> None:
    a, b = _trained(tiny, seed=1), _trained(tiny, seed=1)
    _, events = _new_category_events(tiny, 3)
    assert a.update(events) == b.update(events) == {3}
    sa, sb = _scores(a, tiny), _scores(b, tiny)
    assert torch.equal(sa, sb)
    # the full recomputation (no snapshot) agrees with the incremental one
    a.train()
    a.eval()
    torch.testing.assert_close(_scores(a, tiny), sa, rtol=1e-5, atol=1e-5)


def test_two_updates_accumulate(trained: TGNNMigration, tiny: TrainData) -> None:
    model = copy.deepcopy(trained)
    _, events = _new_category_events(tiny, 5)
    first = EventBatch(
        events.user[:2], events.item[:2], events.behavior[:2], events.ts[:2]
    )
    rest = EventBatch(
        events.user[2:], events.item[2:], events.behavior[2:], events.ts[2:]
    )
    model.update(first)
    model.update(rest)
    once = copy.deepcopy(trained)
    once.update(events)
    assert torch.equal(_scores(model, tiny), _scores(once, tiny))


def test_unknown_item_user_behaviour_rejected(trained: TGNNMigration) -> None:
    trained = copy.deepcopy(trained)
    n_items = trained.meta.num_items
    with pytest.raises(
        DataError,
        match=rf"row 2, column 'item': item index is not in the model's vocabulary \(0..{n_items - 1}\); new items need retraining \(got {n_items}\)",
    ):
        trained.update(EventBatch.from_arrays([0, 1], [0, n_items], [0, 0], [1, 2]))
    with pytest.raises(DataError, match=r"row 1, column 'user'.*\(got -1\)"):
        trained.update(EventBatch.from_arrays([-1], [0], [0], [1]))
    with pytest.raises(DataError, match=r"column 'behavior'.*\(got 9\)"):
        trained.update(EventBatch.from_arrays([0], [0], [9], [1]))
    with pytest.raises(GnnrecError, match="differ in length"):
        EventBatch.from_arrays([0, 1], [0], [0], [1])
    with pytest.raises(GnnrecError, match="integer"):
        EventBatch.from_arrays([0.5], [0], [0], [1])
    assert trained.update(EventBatch.from_arrays([], [], [], [])) == set()


def test_update_needs_prepare(tiny: TrainData) -> None:
    model = build_model(ModelSpec(name="tgnn_migration"), tiny.meta)
    with pytest.raises(GnnrecError, match="prepare"):
        model.update(EventBatch.from_arrays([0], [0], [0], [1]))  # type: ignore[attr-defined]


def test_fold_in_streamer_for_static_models(tiny: TrainData) -> None:
    torch.manual_seed(0)
    mf = build_model(ModelSpec(name="mf_bpr", params={"dim": 8}), tiny.meta)
    mf.prepare(tiny)
    stream = FoldInStreamer(mf, tiny, beta=0.5)
    before = stream.emb["user"].clone()
    events = EventBatch.from_arrays([2, 2, 4], [1, 3, 5], [0, 0, 0], [9, 9, 9])
    assert stream.update(events) == {2, 4}
    item = stream.emb["item"]
    torch.testing.assert_close(
        stream.emb["user"][2], before[2] + 0.5 * (item[1] + item[3]) / 2
    )
    torch.testing.assert_close(stream.emb["user"][4], before[4] + 0.5 * item[5])
    keep = torch.ones(tiny.meta.num_users, dtype=torch.bool)
    keep[[2, 4]] = False
    assert torch.equal(stream.emb["user"][keep], before[keep])
