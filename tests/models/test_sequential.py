"""Sequential / session models: shapes, history handling, learning a toy session set, and a
one-epoch run of each through ``gnnrec run``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gnnrec.config import GraphConfig, ModelSpec, SplitConfig, TrainConfig
from gnnrec.data.splits import make_split
from gnnrec.graph.build import build_train_data
from gnnrec.models import build_model
from gnnrec.models.sequential import SeqBatch
from gnnrec.models.sequential.srgnn import session_graph
from gnnrec.train.trainer import Trainer
from tests.helpers import make_table

SEQ_MODELS = ("gru4rec", "sasrec", "srgnn")
SMALL = {"dim": 16, "max_len": 6}


def session_data(n_repeat: int = 30):
    """Toy sessions with an obvious next item: 0 → 1 → 2 → 3 and 4 → 5 → 6, repeated;
    two test prefixes (context) ``0 1 2`` (next 3) and ``4 5`` (next 6)."""
    users, items, behs, ts, split = [], [], [], [], []
    u = 0
    for _ in range(n_repeat):
        for sess in ([0, 1, 2, 3], [4, 5, 6]):
            for t, it in enumerate(sess):
                (
                    users.append(u),
                    items.append(it),
                    behs.append("click"),
                    ts.append(t + 1),
                    split.append("train"),
                )
            u += 1
    for prefix, target in (([0, 1, 2], 3), ([4, 5], 6)):
        for t, it in enumerate(prefix):
            (
                users.append(u),
                items.append(it),
                behs.append("context"),
                ts.append(t + 1),
                split.append("train"),
            )
        (
            users.append(u),
            items.append(target),
            behs.append("click"),
            ts.append(len(prefix) + 1),
        )
        split.append("test")
        u += 1
    table = make_table(
        users,
        items,
        behs,
        ts,
        behaviors_vocab=("context", "click"),
        target="click",
        given=split,
    )
    s = make_split(table, SplitConfig(mode="given", valid_from_train=False), seed=0)
    return table, s, build_train_data(table, s, GraphConfig(), "target")


def test_session_graph_exact() -> None:
    # session 5 3 5 7 (right-aligned in width 5, pad 9): nodes 3 5 7, edges 5→3, 3→5, 5→7;
    # the graph is as wide as the row with the most distinct items (3), not the window (5)
    window = torch.tensor([[9, 5, 3, 5, 7], [9, 9, 9, 9, 2]])
    nodes, alias, a_in, a_out, real = session_graph(window, torch.tensor([4, 1]), pad=9)
    assert nodes.shape == (2, 3) and a_in.shape == a_out.shape == (2, 3, 3)
    assert nodes[0].tolist() == [3, 5, 7]
    assert alias[0].tolist() == [0, 1, 0, 1, 2]
    assert real[0].tolist() == [False, True, True, True, True]
    # out-degree of node 5 (index 1) is 2: to 3 and to 7
    assert a_out[0, 1, :3].tolist() == [0.5, 0.0, 0.5]
    assert a_out[0, 0, :3].tolist() == [0.0, 1.0, 0.0]
    # in-neighbours: 3 ← 5, 5 ← 3, 7 ← 5
    assert a_in[0, :3, :3].tolist() == [
        [0.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
    ]
    assert nodes[1].tolist() == [2, 9, 9] and a_out[1].abs().sum() == 0


def test_examples_are_prefixes_of_target_events() -> None:
    _, _, data = session_data(n_repeat=1)
    model = build_model(ModelSpec(name="srgnn", params=SMALL), data.meta)
    model.prepare(data)
    # sessions of 4 and 3 clicks give 3 + 2 examples; the context prefixes give none
    assert model.num_examples == 5
    batches = list(model.train_batches(data, 10, torch.Generator().manual_seed(0)))
    pairs = sorted(
        (tuple(w[w != model.pad].tolist()), int(p)) for b in batches for w, p in zip(b.window, b.pos)
    )
    assert pairs == [((0,), 1), ((0, 1), 2), ((0, 1, 2), 3), ((4,), 5), ((4, 5), 6)]
    # evaluation users read their context (the test prefix), never their target
    window, _length = model.user_window(torch.tensor([2, 3]))
    assert [w[w != model.pad].tolist() for w in window] == [[0, 1, 2], [4, 5]]


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_shapes_and_trimming_invariance(name: str) -> None:
    _, _, data = session_data(n_repeat=2)
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name, params=SMALL), data.meta)
    model.prepare(data)
    model.eval()
    with torch.no_grad():
        emb = model.encode(data)
        assert emb["item"].shape == (7, 16)
        users = torch.tensor([4, 5, 0])
        full = model.score_all(emb, users)
        assert full.shape == (3, 7) and torch.isfinite(full).all()
        # a user's scores do not depend on who else is in the batch (padding width)
        alone = model.score_all(emb, torch.tensor([5]))
        torch.testing.assert_close(alone[0], full[1], rtol=1e-5, atol=1e-5)
        window, length = model.user_window(users)
        batch = SeqBatch(user=users, window=window, length=length, pos=torch.tensor([3, 6, 1]))
    loss = model.loss(emb, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_learns_the_obvious_next_item(name: str) -> None:
    _table, _split, data = session_data()
    torch.manual_seed(0)
    params = dict(SMALL, dropout=0.0) if name != "srgnn" else dict(SMALL)
    model = build_model(ModelSpec(name=name, params=params), data.meta)
    cfg = TrainConfig(epochs=15, batch_size=16, lr=1e-2, monitor="mrr@20")
    Trainer(cfg, torch.device("cpu"), torch.Generator().manual_seed(0), progress=False).fit(model, data)
    with torch.no_grad():
        scores = model.score_all(model.encode(data), torch.tensor([60, 61]))
    assert scores.argmax(1).tolist() == [3, 6]


def smoke_config(name: str, tmp_path: Path) -> Path:
    cfg = {
        "name": f"{name}-smoke",
        "seed": 0,
        "device": "cpu",
        "threads": 1,
        "data": {
            "dataset": "synthetic",
            "synthetic": {
                "num_users": 40,
                "num_items": 50,
                "num_categories": 4,
                "events_per_user": 12,
            },
        },
        "split": {"mode": "leave_last_out", "target_behavior": "buy"},
        "model": {
            "name": name,
            "params": {"dim": 8, "max_len": 5, "train_targets": "all"},
        },
        "train": {"epochs": 1, "batch_size": 64, "monitor": "hit@20"},
        "eval": {"ks": [20], "metrics": ["hit", "mrr"], "mask": "none"},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("name", SEQ_MODELS)
def test_one_epoch_through_cli(name: str, tmp_path: Path) -> None:
    from gnnrec.cli import main

    out = tmp_path / "run"
    code = main(["run", str(smoke_config(name, tmp_path)), "--out", str(out), "--quiet"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["epochs"] == 1
    assert 0.0 <= metrics["test"]["hit@20"] <= 1.0
    assert np.isfinite(metrics["test"]["mrr@20"])
