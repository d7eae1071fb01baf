"""The contract every registered model keeps (baselines and graph encoders alike).

Parametrised over ``MODELS.names()``, so a newly registered model is covered automatically.
Each model is built with its *default* hyper-parameters (plus the few overrides in
``PARAMS``) on the tiny hand-written log below and must:

* return per-node-type embeddings of the right length (``user``: ``[U, *]``, ``item``:
  ``[I, *]`` when present; other keys are free), all finite;
* give ``score_all`` of shape ``[B, I]`` that agrees with ``score`` pair by pair;
* be deterministic under ``torch.manual_seed`` (two builds → identical scores);
* (trainable models) get a finite loss whose gradient reaches the parameters: every
  parameter connected to the loss gets a finite gradient that is non-zero under BPR or
  BCE (a bias shared by all scores cancels in BPR), and every embedding table is reached;
* be invariant to the order of the log's rows (the graph build sorts edges);
* run one epoch through :func:`gnnrec.runner.run` on a small synthetic log and write
  ``metrics.json``.

The tiny log (given split; every behaviour has training edges, every item a category)::

    user  item  behaviour  ts   split    note
      0     0   view      10   train
      0     0   cart      11   train
      0     0   buy       12   train
      0     1   view      13   train
      0     1   buy       14   train
      0     2   fav       15   train
      0     3   view      16   train
      0     3   buy       17   test
      1     1   view      10   train
      1     1   fav       11   train
      1     2   buy       12   train
      1     4   view      13   train
      1     4   buy       14   valid
      1     5   buy       15   test
      1     3   view      16   train
      2     0   view      20   train    user 2: cold (no buy)
      2     5   view      21   train
      2     5   view      22   train    repeated view
      3     3   cart      30   train
      3     3   buy       31   train
      3     6   buy       32   test     item 6: no training edge at all
      4     2   view      40   train
      4     2   buy       41   train
      4     4   cart      42   train
      4     5   buy       43   valid
      4     1   buy       44   train

Items 0-2 and 6 are in category 0, items 3-5 in category 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from gnnrec.config import ExperimentConfig, GraphConfig, ModelSpec, SplitConfig
from gnnrec.data.sampling import UniformNegativeSampler
from gnnrec.data.splits import make_split
from gnnrec.graph.build import build_train_data
from gnnrec.graph.data import TrainData
from gnnrec.models import MODELS, PairBatch, Recommender, build_model
from gnnrec.runner import PreparedData, prepare_data, run
from tests.helpers import make_table

LOG: tuple[tuple[int, int, str, int, str], ...] = (
    (0, 0, "view", 10, "train"),
    (0, 0, "cart", 11, "train"),
    (0, 0, "buy", 12, "train"),
    (0, 1, "view", 13, "train"),
    (0, 1, "buy", 14, "train"),
    (0, 2, "fav", 15, "train"),
    (0, 3, "view", 16, "train"),
    (0, 3, "buy", 17, "test"),
    (1, 1, "view", 10, "train"),
    (1, 1, "fav", 11, "train"),
    (1, 2, "buy", 12, "train"),
    (1, 4, "view", 13, "train"),
    (1, 4, "buy", 14, "valid"),
    (1, 5, "buy", 15, "test"),
    (1, 3, "view", 16, "train"),
    (2, 0, "view", 20, "train"),
    (2, 5, "view", 21, "train"),
    (2, 5, "view", 22, "train"),
    (3, 3, "cart", 30, "train"),
    (3, 3, "buy", 31, "train"),
    (3, 6, "buy", 32, "test"),
    (4, 2, "view", 40, "train"),
    (4, 2, "buy", 41, "train"),
    (4, 4, "cart", 42, "train"),
    (4, 5, "buy", 43, "valid"),
    (4, 1, "buy", 44, "train"),
)
CATEGORIES = (0, 0, 0, 1, 1, 1, 0)
NUM_USERS, NUM_ITEMS = 5, 7

#: Per-model overrides of the default hyper-parameters (keep empty unless a default is
#: far too slow for a unit test; the contract is about the defaults).
PARAMS: dict[str, dict[str, Any]] = {}

MODEL_NAMES = MODELS.names()


def build_data(order: np.ndarray | None = None, positives: str = "all") -> TrainData:
    """TrainData of :data:`LOG`, its rows taken in ``order`` (default: as listed)."""
    rows = [LOG[i] for i in (range(len(LOG)) if order is None else order)]
    u, i, b, t, s = (list(c) for c in zip(*rows))
    table = make_table(
        u, i, b, t, categories_per_item=CATEGORIES, num_users=NUM_USERS, num_items=NUM_ITEMS, given=s
    )
    split = make_split(table, SplitConfig(mode="given", target_behavior="buy"), seed=0)
    return build_train_data(table, split, GraphConfig(), positives)


@pytest.fixture(scope="module")
def data() -> TrainData:
    return build_data()


def make_model(name: str, data: TrainData, seed: int = 0) -> Recommender:
    torch.manual_seed(seed)
    model = build_model(ModelSpec(name=name, params=PARAMS.get(name, {})), data.meta)
    model.prepare(data)
    return model


def all_scores(model: Recommender, data: TrainData) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        emb = model.encode(data)
        return model.score_all(emb, torch.arange(data.meta.num_users))


def test_the_tiny_graph(data: TrainData) -> None:
    # the assumptions the contract relies on: every behaviour is an edge type with edges,
    # item 6 has no training edge, user 2 has no training buy
    assert data.meta.behaviors == ("view", "cart", "fav", "buy")
    assert all(data.edge_index[b].shape[1] > 0 for b in data.meta.behaviors)
    edges = torch.cat([data.edge_index[b] for b in data.meta.behaviors], 1)
    assert 6 not in edges[1].tolist() and 2 in edges[0].tolist()
    assert 2 not in data.edge_index["buy"][0].tolist()
    assert (data.meta.num_users, data.meta.num_items) == (NUM_USERS, NUM_ITEMS)


def test_models_are_registered() -> None:
    assert {"lightgcn", "ngcf", "mf_bpr", "pop"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_and_score_consistency(name: str, data: TrainData) -> None:
    model = make_model(name, data)
    model.eval()
    with torch.no_grad():
        emb = model.encode(data)
        assert isinstance(emb, dict)
        for key, rows in (("user", NUM_USERS), ("item", NUM_ITEMS)):
            if key in emb:
                assert emb[key].dim() >= 1 and emb[key].shape[0] == rows, (key, tuple(emb[key].shape))
        for key, value in emb.items():
            assert torch.isfinite(value).all(), key
        users = torch.tensor([4, 0, 2, 2, 3])  # unordered, repeated, and the cold user 2
        full = model.score_all(emb, users)
        assert full.shape == (5, NUM_ITEMS)
        assert torch.isfinite(full).all()
        pair = model.score(emb, users.repeat_interleave(NUM_ITEMS), torch.arange(NUM_ITEMS).repeat(5))
    assert pair.shape == (5 * NUM_ITEMS,)
    torch.testing.assert_close(pair.view(5, NUM_ITEMS), full, rtol=1e-5, atol=1e-5)
    scores, items = model.recommend(emb, users, 3)
    assert scores.shape == items.shape == (5, 3)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_deterministic_under_seed(name: str, data: TrainData) -> None:
    a = all_scores(make_model(name, data, seed=3), data)
    b = all_scores(make_model(name, data, seed=3), data)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_invariant_to_log_row_order(name: str, data: TrainData) -> None:
    order = np.random.default_rng(7).permutation(len(LOG))
    permuted = build_data(order)
    for b in data.meta.behaviors:  # the rebuild is identical, as build_train_data sorts edges
        assert torch.equal(permuted.edge_index[b], data.edge_index[b])
    a = all_scores(make_model(name, data, seed=1), data)
    b = all_scores(make_model(name, permuted, seed=1), permuted)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_parameters(name: str, data: TrainData) -> None:
    if not MODELS.get(name).trainable:
        pytest.skip(f"{name} is not trainable (fitted in prepare)")
    model = make_model(name, data)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params, f"{name} is trainable but has no trainable parameters"
    gen = torch.Generator().manual_seed(0)
    user, pos = data.pos_index[0], data.pos_index[1]
    batch = PairBatch(user, pos, UniformNegativeSampler(NUM_ITEMS, data.pos_index, gen).sample(user, 2))
    # A parameter may be connected to the loss and still have an exactly zero gradient
    # under one loss: a bias added to every score cancels in BPR's pos - neg. So "the loss
    # depends on it" means a non-zero gradient under BPR or BCE.
    grads: dict[str, list[torch.Tensor]] = {n: [] for n, _ in params}
    for kind in ("bpr", "bce"):
        model.zero_grad(set_to_none=True)
        model.train()
        torch.manual_seed(0)
        loss = model.loss(model.encode(data), batch, kind)
        assert loss.dim() == 0 and torch.isfinite(loss), kind
        loss.backward()
        for n, p in params:
            if p.grad is not None:
                assert torch.isfinite(p.grad).all(), (kind, n)
                grads[n].append(p.grad.detach().clone())
    reached = [n for n, g in grads.items() if g]
    assert reached, f"the loss of {name} depends on none of its parameters"
    for n in reached:
        assert any(g.abs().sum() > 0 for g in grads[n]), f"{n}: zero gradient under BPR and BCE"
    tables = [n for n, m in model.named_modules() if isinstance(m, nn.Embedding)]
    for n in tables:
        if model.get_parameter(f"{n}.weight").requires_grad:
            assert f"{n}.weight" in reached, f"embedding table {n} gets no gradient"


# ---------------------------------------------------------------- one-epoch smoke run
SMOKE = {
    "name": "smoke",
    "seed": 0,
    "device": "cpu",
    "data": {
        "dataset": "synthetic",
        "synthetic": {"num_users": 60, "num_items": 80, "num_categories": 5, "events_per_user": 15},
    },
    "split": {"mode": "random", "target_behavior": "buy"},
    "train": {"epochs": 1, "batch_size": 256, "positives": "all", "monitor": "ndcg@20"},
    "eval": {"ks": [10, 20]},
}


@pytest.fixture(scope="module")
def smoke_data() -> tuple[ExperimentConfig, PreparedData]:
    cfg = ExperimentConfig.model_validate(SMOKE)
    return cfg, prepare_data(cfg)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_epoch_run(name: str, smoke_data: tuple[ExperimentConfig, PreparedData], tmp_path: Path) -> None:
    base, prepared = smoke_data
    cfg = base.model_copy(update={"model": ModelSpec(name=name, params=PARAMS.get(name, {}))})
    result = run(cfg, tmp_path / name, progress=False, prepared=prepared)
    metrics = json.loads((tmp_path / name / "metrics.json").read_text())
    assert metrics["model"] == name
    assert metrics["epochs"] == (1 if MODELS.get(name).trainable else 0)
    assert 0.0 <= metrics["test"]["ndcg@20"] <= 1.0
    assert result.metrics["test"] == metrics["test"]
