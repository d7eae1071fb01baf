"""``gnnrec associations RUN_DIR``: category association graph and user interests of a run."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import polars as pl
import pytest

from gnnrec.cli import main
from gnnrec.config import config_from_dict
from gnnrec.runner import run

TINY = {
    "name": "tiny",
    "seed": 0,
    "threads": 1,
    "data": {
        "dataset": "synthetic",
        "synthetic": {"num_users": 40, "num_items": 50, "num_categories": 5, "events_per_user": 15},
    },
    "split": {"mode": "random", "target_behavior": "buy"},
    "model": {"name": "mf_bpr", "params": {"dim": 8}},
    "train": {"epochs": 1, "positives": "all", "monitor": "ndcg@10"},
    "eval": {"ks": [10]},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, overrides in (("mf_bpr", []), ("pop", ["model.name=pop", "model.params={}"])):
        d = tmp_path_factory.mktemp(name)
        run(config_from_dict(TINY, overrides), d, progress=False)
        out[name] = d
    return out


def test_associations_written_and_consistent(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    d = runs["mf_bpr"]
    assert main(["associations", str(d), "--top-k", "2", "--top", "3"]) == 0
    assert "strongest category associations" in capsys.readouterr().out
    out = d / "associations"
    g = nx.read_graphml(out / "categories.graphml")
    cats = set(pl.read_csv(d / "vocab" / "categories.csv", schema_overrides={"id": pl.String})["id"].to_list())
    labels = {g.nodes[n]["label"] for n in g.nodes}
    assert labels <= cats and len(labels) >= 2
    # each category keeps its 2 most similar others (undirected: degree >= 2)
    assert min(dict(g.degree()).values()) >= 2
    edges = pl.read_csv(out / "categories.csv")
    assert edges.height == g.number_of_edges()
    assert ((edges["weight"] >= -1) & (edges["weight"] <= 1)).all()
    interests = pl.read_csv(out / "user_interests.csv", schema_overrides={"user_id": pl.String, "category_id": pl.String})
    users = pl.read_csv(d / "vocab" / "users.csv", schema_overrides={"id": pl.String})["id"]
    assert set(interests["user_id"]) == set(users)
    per_user = interests.group_by("user_id").agg(pl.len().alias("n"), pl.col("weight").sum().alias("w"))
    assert (per_user["n"] == 3).all()
    # softmax weights over all 5 categories: the top 3 carry less than all of it
    assert (per_user["w"] <= 1 + 1e-9).all()
    assert np.all(np.diff(interests.filter(pl.col("user_id") == users[0])["weight"].to_numpy()) <= 0)


def test_associations_need_item_embeddings(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["associations", str(runs["pop"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no item embeddings" in err[0]


def test_associations_missing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["associations", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err


def test_beyond_accuracy_pass_can_be_switched_off(tmp_path: Path) -> None:
    import json

    run(config_from_dict(TINY, ["eval.beyond_accuracy=false", "train.epochs=0"]), tmp_path, progress=False)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert "beyond_accuracy" not in m and "recall@10" in m["test"]
